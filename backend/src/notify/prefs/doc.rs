//! The preferences document (what `GET`/`PUT /api/v1/notifications/preferences` and the settings page
//! exchange), its validation, and the catalogue document the settings page is built from.

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Rule, RuleSource, locked};
use crate::{
    error::{Error, Result},
    notify::{
        catalogue::{Audience, Category, Channel, EventSpec, Mode, SPECS, find},
        event::clip,
        schedule::Frequency,
    },
};

/// At most this many rules per user.
pub const MAX_RULES: usize = 200;

/// A user's notification preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// The rules; on `put` they replace the user's rules (unsubscribe vetoes stay unless overridden).
    pub rules: Vec<RuleDoc>,
    pub quiet_hours: QuietHours,
    pub digest: DigestDoc,
    /// The profile's time zone (IANA name) the local times are read in. Read-only: ignored on `put`.
    #[serde(default)]
    pub time_zone: String,
}

/// One rule: `*` is a wildcard; the most specific matching rule wins (run, event type, category, channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    /// A category (`backtests`) or `*`.
    #[serde(default = "wildcard")]
    pub category: String,
    /// An event type (`backtest.finished`) or `*`.
    #[serde(default = "wildcard")]
    pub event_type: String,
    /// `inapp`, `email`, `webhook` or `*`.
    #[serde(default = "wildcard")]
    pub channel: String,
    pub mode: Mode,
    /// A paper run the rule is limited to (`null`: every run).
    #[serde(default)]
    pub paper_run_id: Option<Uuid>,
    /// `user` (the default); `unsubscribe` marks an unsubscribe link's veto, which a `put` may only echo back.
    #[serde(default)]
    pub source: RuleSource,
}

fn wildcard() -> String {
    "*".to_owned()
}

/// What happens to email and webhook messages during quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuietAction {
    /// Held and sent as one message when the quiet hours end.
    Defer,
    /// Put in the next digest.
    Digest,
}

impl QuietAction {
    pub fn as_str(self) -> &'static str {
        match self {
            QuietAction::Defer => "defer",
            QuietAction::Digest => "digest",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [QuietAction::Defer, QuietAction::Digest]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

/// Quiet hours, in the profile's time zone; the window may wrap midnight (`22:00`–`07:00`). Criticals are never
/// held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    pub enabled: bool,
    /// Local `HH:MM`.
    pub start: String,
    /// Local `HH:MM`.
    pub end: String,
    pub action: QuietAction,
}

impl Default for QuietHours {
    fn default() -> Self {
        Self {
            enabled: false,
            start: "22:00".into(),
            end: "07:00".into(),
            action: QuietAction::Defer,
        }
    }
}

/// The digest schedule, in the profile's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestDoc {
    pub frequency: Frequency,
    /// ISO weekday of a weekly digest: Monday = 1 … Sunday = 7.
    pub weekday: u8,
    /// Local `HH:MM`.
    pub time: String,
}

impl Default for DigestDoc {
    fn default() -> Self {
        Self {
            frequency: Frequency::Daily,
            weekday: 1,
            time: "08:00".into(),
        }
    }
}

/// Formats a local time as `HH:MM`.
pub fn hhmm(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

fn parse_hhmm(field: &str, s: &str) -> Result<NaiveTime> {
    let bad = || Error::invalid(field, "a local time as HH:MM, from 00:00 to 23:59");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    NaiveTime::from_hms_opt(
        h.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        0,
    )
    .ok_or_else(bad)
}

/// A validated document, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Valid {
    /// The user's rules (source `user`).
    pub rules: Vec<Rule>,
    /// Categories whose unsubscribe veto the user overrides (sets that category's email again).
    pub lift_vetoes: Vec<String>,
    pub quiet: Option<(NaiveTime, NaiveTime)>,
    pub quiet_action: QuietAction,
    pub frequency: Frequency,
    pub weekday: u8,
    pub digest_time: NaiveTime,
}

/// Types that have preferences (the account flow mails carry one-time links and are always sent).
fn configurable(spec: &EventSpec) -> bool {
    spec.audience != Audience::Address
}

/// Checks `doc` against the catalogue, the locks and the stored rules (`stored`: vetoes and admin rules may
/// only be echoed back). Errors name the field (`rules[3].mode`).
pub(crate) fn validate(doc: &Preferences, stored: &[Rule]) -> Result<Valid> {
    if doc.rules.len() > MAX_RULES {
        return Err(Error::invalid(
            "rules",
            format!("at most {MAX_RULES} rules (got {})", doc.rules.len()),
        ));
    }
    let mut rules: Vec<Rule> = Vec::with_capacity(doc.rules.len());
    let mut echoed: Vec<Rule> = Vec::new();
    let mut seen: Vec<(Rule, usize)> = Vec::with_capacity(doc.rules.len());
    for (i, r) in doc.rules.iter().enumerate() {
        let f = |name: &str| format!("rules[{i}].{name}");
        let rule = validate_rule(r, &f)?;
        if let Some(j) = seen
            .iter()
            .find(|(o, _)| o.key() == rule.key())
            .map(|(_, j)| *j)
        {
            return Err(Error::invalid(
                &format!("rules[{i}]"),
                format!("the same category, event type, channel and run as rules[{j}]"),
            ));
        }
        // A stored admin rule's key cannot be taken over.
        if let Some(admin) = stored
            .iter()
            .find(|s| s.source == RuleSource::Admin && s.key() == rule.key())
            && (rule.source != RuleSource::Admin || admin.mode != rule.mode)
        {
            return Err(Error::invalid(
                &format!("rules[{i}]"),
                "set by an administrator; it cannot be changed here",
            ));
        }
        seen.push((rule.clone(), i));
        match rule.source {
            RuleSource::User => rules.push(rule),
            RuleSource::Unsubscribe | RuleSource::Admin => {
                if !stored.contains(&rule) {
                    return Err(Error::invalid(
                        &f("source"),
                        match rule.source {
                            RuleSource::Unsubscribe => {
                                "only an unsubscribe link sets this; use `user`"
                            }
                            _ => "only an administrator sets this; use `user`",
                        },
                    ));
                }
                echoed.push(rule);
            }
        }
    }
    // A veto is lifted when the user sets the category's email (for every run) to something new.
    let lift_vetoes = stored
        .iter()
        .filter(|v| v.source == RuleSource::Unsubscribe && !echoed.contains(v))
        .filter_map(|v| v.category.clone())
        .filter(|c| {
            rules.iter().any(|r| {
                r.paper_run_id.is_none()
                    && r.category.as_deref() == Some(c.as_str())
                    && r.channel.is_none_or(|ch| ch == Channel::Email)
                    && !stored.contains(r)
            })
        })
        .collect();

    let q = &doc.quiet_hours;
    let start = parse_hhmm("quiet_hours.start", &q.start)?;
    let end = parse_hhmm("quiet_hours.end", &q.end)?;
    if q.enabled && start == end {
        return Err(Error::invalid(
            "quiet_hours.end",
            "quiet hours must end at another time than they start",
        ));
    }
    if !(1..=7).contains(&doc.digest.weekday) {
        return Err(Error::invalid(
            "digest.weekday",
            "a weekday from 1 (Monday) to 7 (Sunday)",
        ));
    }
    let digest_time = parse_hhmm("digest.time", &doc.digest.time)?;
    Ok(Valid {
        rules,
        lift_vetoes,
        quiet: q.enabled.then_some((start, end)),
        quiet_action: q.action,
        frequency: doc.digest.frequency,
        weekday: doc.digest.weekday,
        digest_time,
    })
}

fn validate_rule(r: &RuleDoc, f: &dyn Fn(&str) -> String) -> Result<Rule> {
    let wild = |s: &str| s == "*";
    let mut category = if wild(&r.category) {
        None
    } else {
        Some(Category::parse(&r.category).ok_or_else(|| {
            Error::invalid(
                &f("category"),
                format!(
                    "unknown category `{}` (one of {} or *)",
                    clip(&r.category, 40),
                    Category::ALL.map(Category::as_str).join(", ")
                ),
            )
        })?)
    };
    let spec = if wild(&r.event_type) {
        None
    } else {
        let spec = find(&r.event_type).ok_or_else(|| {
            Error::invalid(
                &f("event_type"),
                format!("unknown event type `{}`", clip(&r.event_type, 60)),
            )
        })?;
        if !configurable(spec) {
            return Err(Error::invalid(
                &f("event_type"),
                format!(
                    "`{}` is always sent (it carries a one-time link)",
                    spec.name
                ),
            ));
        }
        match category {
            Some(c) if c != spec.category => {
                return Err(Error::invalid(
                    &f("category"),
                    format!(
                        "`{}` is in the category {}",
                        spec.name,
                        spec.category.as_str()
                    ),
                ));
            }
            _ => category = Some(spec.category),
        }
        Some(spec)
    };
    let channel = if wild(&r.channel) {
        None
    } else {
        Some(Channel::parse(&r.channel).ok_or_else(|| {
            Error::invalid(
                &f("channel"),
                format!(
                    "unknown channel `{}` (inapp, email, webhook or *)",
                    clip(&r.channel, 40)
                ),
            )
        })?)
    };
    if channel == Some(Channel::InApp) && r.mode == Mode::Digest {
        return Err(Error::invalid(
            &f("mode"),
            "in-app notifications are immediate or off (there is no in-app digest)",
        ));
    }
    // A rule aimed only at locked cells cannot do anything but `immediate`.
    if let Some(ch) = channel
        && r.mode != Mode::Immediate
    {
        let mut covered = SPECS.iter().filter(|s| {
            configurable(s)
                && category.is_none_or(|c| c == s.category)
                && spec.is_none_or(|t| t.name == s.name)
        });
        if covered.all(|s| locked(s, ch)) {
            let what = match (spec, category) {
                (Some(s), _) if s.critical => {
                    format!("`{}` is critical: its {}", s.name, ch.as_str())
                }
                (_, Some(Category::Security)) => "security email".to_owned(),
                (_, Some(c)) => format!("{} {}", c.as_str(), ch.as_str()),
                _ => ch.as_str().to_owned(),
            };
            let verb = if r.mode == Mode::Off {
                "cannot be turned off"
            } else {
                "is always sent at once"
            };
            return Err(Error::invalid(&f("mode"), format!("{what} {verb}")));
        }
    }
    Ok(Rule {
        paper_run_id: r.paper_run_id,
        category: category.map(|c| c.as_str().to_owned()),
        event_type: spec.map(|s| s.name.to_owned()),
        channel,
        mode: r.mode,
        source: r.source,
    })
}

/// A rule as the document shows it.
pub(crate) fn to_doc(r: &Rule) -> RuleDoc {
    RuleDoc {
        category: r.category.clone().unwrap_or_else(wildcard),
        event_type: r.event_type.clone().unwrap_or_else(wildcard),
        channel: r.channel.map_or_else(wildcard, |c| c.as_str().to_owned()),
        mode: r.mode,
        paper_run_id: r.paper_run_id,
        source: r.source,
    }
}

/// The catalogue document: what can be configured, the defaults and the locks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalogue {
    pub categories: Vec<CategoryEntry>,
    pub channels: Vec<ChannelEntry>,
    pub types: Vec<TypeEntry>,
    pub max_rules: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryEntry {
    pub name: Category,
    pub label: String,
    /// The channels whose every type of this category is locked on (security: email).
    pub locked: Vec<Channel>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelEntry {
    pub name: Channel,
    pub label: String,
    /// The modes a rule may set for this channel.
    pub modes: Vec<Mode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeEntry {
    /// `backtest.finished`.
    pub name: String,
    /// `Backtest finished`.
    pub label: String,
    pub category: Category,
    /// Bypasses digests, quiet hours, coalescing and the hourly cap.
    pub critical: bool,
    /// Bursts of it are combined into one message.
    pub coalescible: bool,
    /// The default mode of `inapp`, `email` and `webhook`.
    pub defaults: std::collections::BTreeMap<String, Mode>,
    /// Channels that are always immediate for this type.
    pub locked: Vec<Channel>,
}

fn category_label(c: Category) -> &'static str {
    match c {
        Category::Backtests => "Backtests",
        Category::Paper => "Paper trading",
        Category::Risk => "Risk and kill switch",
        Category::Billing => "Billing",
        Category::Security => "Security",
        Category::Account => "Account",
        Category::Admin => "Administration",
        Category::System => "System",
    }
}

/// `backtest.finished` → `Backtest finished`.
fn type_label(name: &str) -> String {
    let words = name.replace(['.', '_'], " ");
    let mut c = words.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The catalogue document (static: the same for everyone).
pub fn catalogue() -> Catalogue {
    let types: Vec<TypeEntry> = SPECS
        .iter()
        .filter(|s| configurable(s))
        .map(|s| TypeEntry {
            name: s.name.to_owned(),
            label: type_label(s.name),
            category: s.category,
            critical: s.critical,
            coalescible: s.coalescible,
            defaults: Channel::ALL
                .into_iter()
                .map(|c| (c.as_str().to_owned(), s.default_mode(c)))
                .collect(),
            locked: Channel::ALL.into_iter().filter(|&c| locked(s, c)).collect(),
        })
        .collect();
    Catalogue {
        categories: Category::ALL
            .into_iter()
            .map(|c| CategoryEntry {
                name: c,
                label: category_label(c).to_owned(),
                locked: Channel::ALL
                    .into_iter()
                    .filter(|&ch| {
                        let mut of = SPECS.iter().filter(|s| configurable(s) && s.category == c);
                        of.clone().next().is_some() && of.all(|s| locked(s, ch))
                    })
                    .collect(),
            })
            .collect(),
        channels: Channel::ALL
            .into_iter()
            .map(|c| ChannelEntry {
                name: c,
                label: match c {
                    Channel::InApp => "In-app",
                    Channel::Email => "Email",
                    Channel::Webhook => "Webhooks",
                }
                .to_owned(),
                modes: match c {
                    Channel::InApp => vec![Mode::Off, Mode::Immediate],
                    _ => vec![Mode::Off, Mode::Immediate, Mode::Digest],
                },
            })
            .collect(),
        types,
        max_rules: MAX_RULES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(cat: &str, ty: &str, ch: &str, mode: Mode) -> RuleDoc {
        RuleDoc {
            category: cat.into(),
            event_type: ty.into(),
            channel: ch.into(),
            mode,
            paper_run_id: None,
            source: RuleSource::User,
        }
    }

    fn doc(rules: Vec<RuleDoc>) -> Preferences {
        Preferences {
            rules,
            quiet_hours: QuietHours::default(),
            digest: DigestDoc::default(),
            time_zone: String::new(),
        }
    }

    fn err(d: &Preferences, stored: &[Rule]) -> (String, String) {
        match validate(d, stored) {
            Err(Error::Invalid { field, message }) => (field, message),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    use Mode::{Digest, Immediate, Off};

    #[test]
    fn notif_prefs_doc_validation_names_the_field() {
        let ok = r("backtests", "*", "email", Immediate);
        // (rule at index 1, field, message fragment)
        let cases: Vec<(RuleDoc, &str, &str)> = vec![
            (
                r("security", "*", "email", Off),
                "rules[1].mode",
                "security email cannot be turned off",
            ),
            (
                r("security", "*", "email", Digest),
                "rules[1].mode",
                "security email is always sent at once",
            ),
            (
                r("*", "kill_switch.thrown", "inapp", Off),
                "rules[1].mode",
                "`kill_switch.thrown` is critical",
            ),
            (
                r("risk", "risk.limit_hit", "email", Digest),
                "rules[1].mode",
                "critical",
            ),
            (
                r("*", "*", "inapp", Digest),
                "rules[1].mode",
                "no in-app digest",
            ),
            (
                r("*", "backtest.exploded", "*", Off),
                "rules[1].event_type",
                "unknown event type",
            ),
            (
                r("*", "account.verification_requested", "email", Off),
                "rules[1].event_type",
                "always sent",
            ),
            (
                r("paper", "backtest.finished", "*", Off),
                "rules[1].category",
                "in the category backtests",
            ),
            (
                r("weather", "*", "*", Off),
                "rules[1].category",
                "unknown category `weather`",
            ),
            (
                r("*", "*", "pigeon", Off),
                "rules[1].channel",
                "unknown channel",
            ),
            (r("backtests", "*", "email", Off), "rules[1]", "as rules[0]"),
        ];
        for (bad, field, msg) in cases {
            let (f, m) = err(&doc(vec![ok.clone(), bad.clone()]), &[]);
            assert_eq!(f, field, "{bad:?}: {m}");
            assert!(m.contains(msg), "{bad:?}: {m}");
        }
        // Allowed: rules that also reach unlocked cells, and `immediate` on a locked one.
        for fine in [
            r("security", "*", "*", Off),
            r("risk", "*", "email", Off),
            r("risk", "kill_switch.thrown", "webhook", Off),
            r("security", "*", "email", Immediate),
            r("*", "*", "*", Digest),
        ] {
            assert!(validate(&doc(vec![fine.clone()]), &[]).is_ok(), "{fine:?}");
        }
        // An event type fills in its category, so it collides with the same rule spelled with it.
        let (f, _) = err(
            &doc(vec![
                r("*", "backtest.failed", "email", Off),
                r("backtests", "backtest.failed", "email", Immediate),
            ]),
            &[],
        );
        assert_eq!(f, "rules[1]");
        let too_many = doc(vec![ok; MAX_RULES + 1]);
        assert_eq!(err(&too_many, &[]).0, "rules");
    }

    #[test]
    fn notif_prefs_doc_validates_quiet_hours_and_digest() {
        let mut d = doc(vec![]);
        d.quiet_hours.start = "7:00".into();
        assert_eq!(err(&d, &[]).0, "quiet_hours.start");
        d.quiet_hours.start = "24:00".into();
        assert_eq!(err(&d, &[]).0, "quiet_hours.start");
        d.quiet_hours = QuietHours {
            enabled: true,
            start: "22:00".into(),
            end: "22:00".into(),
            action: QuietAction::Digest,
        };
        assert_eq!(err(&d, &[]).0, "quiet_hours.end");
        d.quiet_hours.end = "06:30".into();
        let v = validate(&d, &[]).unwrap();
        assert_eq!(
            v.quiet,
            Some((
                NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
                NaiveTime::from_hms_opt(6, 30, 0).unwrap()
            ))
        );
        d.digest.weekday = 8;
        assert_eq!(err(&d, &[]).0, "digest.weekday");
        d.digest.weekday = 7;
        d.digest.time = "08:00:00".into();
        assert_eq!(err(&d, &[]).0, "digest.time");
        // Unknown fields are refused, the time zone is optional.
        let json = serde_json::json!({"rules": [], "quiet_hours": QuietHours::default(),
            "digest": DigestDoc::default(), "extra": 1});
        assert!(serde_json::from_value::<Preferences>(json).is_err());
        let json = serde_json::json!({"rules": [{"category": "paper", "mode": "off"}],
            "quiet_hours": QuietHours::default(), "digest": DigestDoc::default()});
        let p: Preferences = serde_json::from_value(json).unwrap();
        assert_eq!(p.rules[0], r("paper", "*", "*", Off));
    }

    #[test]
    fn notif_prefs_vetoes_are_echoed_or_lifted_by_setting_the_category_email() {
        let veto = Rule {
            paper_run_id: None,
            category: Some("backtests".into()),
            event_type: None,
            channel: Some(Channel::Email),
            mode: Off,
            source: RuleSource::Unsubscribe,
        };
        let stored = [veto.clone()];
        // Not mentioned, or echoed back: kept.
        assert!(
            validate(&doc(vec![]), &stored)
                .unwrap()
                .lift_vetoes
                .is_empty()
        );
        let echo = RuleDoc {
            source: RuleSource::Unsubscribe,
            ..r("backtests", "*", "email", Off)
        };
        let v = validate(
            &doc(vec![echo.clone(), r("paper", "*", "email", Off)]),
            &stored,
        )
        .unwrap();
        assert!(v.lift_vetoes.is_empty() && v.rules.len() == 1);
        // Another category's email, or the category's in-app: kept.
        let v = validate(&doc(vec![r("backtests", "*", "inapp", Off)]), &stored).unwrap();
        assert!(v.lift_vetoes.is_empty());
        // Setting the category's email (any type, or all channels): lifted.
        for set in [
            r("backtests", "*", "email", Immediate),
            r("backtests", "backtest.finished", "email", Digest),
            r("backtests", "*", "*", Immediate),
        ] {
            let v = validate(&doc(vec![set.clone()]), &stored).unwrap();
            assert_eq!(v.lift_vetoes, ["backtests"], "{set:?}");
        }
        // A veto that is not stored cannot be written by a put.
        let (f, _) = err(&doc(vec![echo]), &[]);
        assert_eq!(f, "rules[0].source");
    }

    #[test]
    fn notif_prefs_catalogue_lists_types_locks_and_defaults() {
        let c = catalogue();
        assert!(c.types.iter().all(|t| !t.name.starts_with("account.")));
        let token = c
            .types
            .iter()
            .find(|t| t.name == "security.token_created")
            .unwrap();
        assert_eq!(token.locked, [Channel::InApp, Channel::Email]);
        assert_eq!(token.label, "Security token created");
        let fin = c
            .types
            .iter()
            .find(|t| t.name == "backtest.finished")
            .unwrap();
        assert_eq!(fin.defaults["email"], Digest);
        assert!(fin.locked.is_empty() && fin.coalescible);
        let sec = c
            .categories
            .iter()
            .find(|x| x.name == Category::Security)
            .unwrap();
        assert!(sec.locked.contains(&Channel::Email));
        let bt = c
            .categories
            .iter()
            .find(|x| x.name == Category::Backtests)
            .unwrap();
        assert!(bt.locked.is_empty());
        assert_eq!(c.channels[0].modes, [Off, Immediate]);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["channels"][1]["name"], "email");
    }
}
