//! The bodies of a webhook delivery, one function per kind (docs/design/notifications.md §6, "Formats"):
//!
//! * Slack: `{"text": fallback ≤ 3 000, "blocks": [header, section (mrkdwn), context (link)]}` with `&<>`
//!   escaped as Slack requires;
//! * Discord: `{"content": ≤ 2 000, "embeds": [one embed within Discord's limits], "allowed_mentions":
//!   {"parse": []}}` so text such as a strategy name never pings `@everyone`; trimmed, never split, so one
//!   delivery stays one message;
//! * generic: `{"type", "timestamp", "data": {event_id, category, critical, title, body, url, …payload}}`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use url::Url;
use uuid::Uuid;

pub use crate::notify::event::clip;
use crate::notify::{
    digest::{Content, Item},
    event::{Event, pct},
};

/// Slack: the fallback `text` and a section's text.
pub const SLACK_TEXT_MAX: usize = 3000;
/// Slack: a header block's plain text.
pub const SLACK_HEADER_MAX: usize = 150;
/// Discord: message content.
pub const DISCORD_CONTENT_MAX: usize = 2000;
pub const DISCORD_TITLE_MAX: usize = 256;
pub const DISCORD_DESCRIPTION_MAX: usize = 4096;
pub const DISCORD_FIELDS_MAX: usize = 25;
pub const DISCORD_FIELD_NAME_MAX: usize = 256;
pub const DISCORD_FIELD_VALUE_MAX: usize = 1024;
/// Discord: all text of all embeds of a message together.
pub const DISCORD_EMBED_TOTAL_MAX: usize = 6000;

/// One event as a webhook sees it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub event_id: Uuid,
    pub event: &'a Event,
    /// When it happened (clock time).
    pub occurred_at: DateTime<Utc>,
    /// `PUBLIC_URL`, to make the event's path absolute.
    pub public_url: &'a Url,
}

impl Message<'_> {
    fn link(&self) -> Option<String> {
        self.event
            .url()
            .and_then(|p| self.public_url.join(&p).ok())
            .map(String::from)
    }
}

/// The key figures of an event, as name/value pairs (Discord fields, Slack lines).
pub fn facts(event: &Event) -> Vec<(String, String)> {
    match event {
        Event::BacktestFinished(e) => vec![
            ("Return".into(), pct(e.total_return)),
            (
                "Sharpe".into(),
                e.sharpe
                    .filter(|v| v.is_finite())
                    .map_or_else(|| "–".into(), |v| format!("{v:.2}")),
            ),
            ("Max drawdown".into(), pct(e.max_drawdown)),
            ("Trades".into(), e.trade_count.to_string()),
            ("Market".into(), format!("{} {}", e.symbol, e.timeframe)),
        ],
        Event::BacktestFailed(e) => {
            vec![("Market".into(), format!("{} {}", e.symbol, e.timeframe))]
        }
        Event::SystemTest(e) => vec![("Sent by".into(), e.sent_by.clone())],
        Event::WebhookDisabled(e) => vec![
            ("Webhook".into(), e.name.clone()),
            ("Reason".into(), e.reason.clone()),
        ],
        Event::UserSuspended(e) => vec![
            ("User".into(), e.email.clone()),
            ("By".into(), e.by.clone()),
            ("Reason".into(), e.reason.clone()),
        ],
        Event::SignupRequested(e) => vec![
            ("Applicant".into(), e.email.clone()),
            ("Reason".into(), e.reason.clone()),
        ],
        Event::JobDead(e) => vec![
            ("Kind".into(), e.kind.clone()),
            ("Queue".into(), e.queue.clone()),
            ("Job".into(), e.job_id.to_string()),
        ],
        Event::EmailUndeliverable(e) => vec![(
            "SMTP reply".into(),
            match e.smtp_code {
                Some(code) => format!("{code} {}", e.smtp_message),
                None => e.smtp_message.clone(),
            },
        )],
        Event::SigninNewDevice(e) => vec![
            ("Device".into(), e.device.clone()),
            ("Address".into(), e.ip.clone()),
        ],
        Event::PasswordChanged(e) => vec![(
            "Sessions ended".into(),
            if e.everywhere {
                format!(
                    "{} session(s), {} token(s)",
                    e.sessions_ended, e.tokens_revoked
                )
            } else {
                "this session only".into()
            },
        )],
        Event::TokenCreated(e) => vec![
            ("Token".into(), e.token_name.clone()),
            ("Scope".into(), e.scope.clone()),
        ],
        Event::TwoFactorChanged(e) => vec![("Change".into(), e.change.replace('_', " "))],
        Event::TwoFactorFailed(e) => vec![
            ("Device".into(), e.device.clone()),
            ("Address".into(), e.ip.clone()),
            ("Wrong codes".into(), e.failures.to_string()),
        ],
        Event::EtlFailing(e) => vec![
            ("Source".into(), e.source.clone()),
            (
                "Series".into(),
                match (&e.symbol, &e.timeframe) {
                    (Some(s), Some(t)) => format!("{s} {t}"),
                    _ => "every tracked series".into(),
                },
            ),
        ],
        Event::VerificationRequested(_)
        | Event::PasswordResetRequested(_)
        | Event::SignupAttemptExisting(_) => Vec::new(),
        Event::PaperSignal(e) => vec![
            ("Run".into(), e.run.label()),
            ("Side".into(), e.side.clone()),
            ("Rule".into(), e.rule.clone()),
        ],
        Event::PaperFill(e) => vec![
            ("Run".into(), e.run.label()),
            ("Side".into(), e.side.clone()),
            ("Price".into(), e.price.to_string()),
            ("Units".into(), e.units.to_string()),
            ("Reason".into(), e.reason.clone()),
        ],
        Event::PaperOrderCancelled(e) => {
            vec![
                ("Run".into(), e.run.label()),
                ("Gate".into(), e.gate.clone()),
            ]
        }
        Event::PaperStoppedError(e) => {
            vec![
                ("Run".into(), e.run.label()),
                ("Error".into(), e.error.clone()),
            ]
        }
        Event::KillSwitchThrown(e) | Event::KillSwitchReleased(e) => vec![
            ("Scope".into(), e.scope.clone()),
            ("Mode".into(), e.mode.clone()),
            ("Reason".into(), e.reason.clone()),
        ],
        Event::PaperDataGap(e) => vec![
            ("Run".into(), e.run.label()),
            ("Missing candles".into(), e.candles.to_string()),
        ],
        Event::RiskLimitHit(e) => vec![
            ("Run".into(), e.run.label()),
            ("Limit".into(), e.limit.replace('_', " ")),
            ("Mode".into(), e.mode.replace('_', "-")),
            ("Why".into(), e.reason.clone()),
        ],
        Event::BillingPlanChanged(e) => vec![
            ("From".into(), e.from.clone()),
            ("To".into(), e.to.clone()),
            ("Subscription".into(), e.status.clone()),
        ],
        Event::BillingPaymentFailed(e) => vec![
            ("Plan".into(), e.plan.clone()),
            ("Subscription".into(), e.status.clone()),
        ],
        Event::BillingTrialEnding(e) => vec![("Plan".into(), e.plan.clone())],
        Event::BillingUsageWarning(e) => vec![
            ("Plan".into(), e.plan.clone()),
            ("Limit".into(), e.label.clone()),
            ("Usage".into(), format!("{} of {}", e.usage, e.value)),
        ],
        Event::BillingOverLimit(e) => vec![
            ("Plan".into(), e.plan.clone()),
            ("Limit".into(), e.label.clone()),
            (
                "Usage".into(),
                match e.allowed {
                    Some(a) => format!("{} of {a}", e.usage),
                    None => e.usage.to_string(),
                },
            ),
            ("Stage".into(), e.stage.clone()),
        ],
    }
}

/// Escapes the three characters Slack reserves in text (`&`, `<`, `>`).
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Slack's incoming-webhook body.
pub fn slack(m: &Message<'_>) -> Value {
    let title = m.event.title();
    let body = m.event.body();
    let link = m.link();
    let facts = facts(m.event)
        .into_iter()
        .map(|(k, v)| format!("*{}:* {}", slack_escape(&k), slack_escape(&v)))
        .collect::<Vec<_>>()
        .join("  ·  ");
    let mut section = slack_escape(&body);
    if !facts.is_empty() {
        section = format!("{facts}\n{section}");
    }
    let fallback = match &link {
        Some(l) => format!("{} <{}|Open>", slack_escape(&title), l),
        None => slack_escape(&title),
    };
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip(&title, SLACK_HEADER_MAX), "emoji": false}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&section, SLACK_TEXT_MAX)}}),
    ];
    if let Some(l) = &link {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("<{l}|Open in Vortex>")}]}));
    }
    json!({"text": clip(&fallback, SLACK_TEXT_MAX), "blocks": blocks})
}

/// Discord's execute-webhook body (sent to `{url}?wait=true`).
pub fn discord(m: &Message<'_>) -> Value {
    let title = clip(&m.event.title(), DISCORD_TITLE_MAX);
    let mut budget = DISCORD_EMBED_TOTAL_MAX.saturating_sub(title.chars().count());
    let mut fields = Vec::new();
    for (name, value) in facts(m.event).into_iter().take(DISCORD_FIELDS_MAX) {
        let name = clip(&name, DISCORD_FIELD_NAME_MAX);
        let value = clip(&value, DISCORD_FIELD_VALUE_MAX);
        let cost = name.chars().count() + value.chars().count();
        if cost > budget {
            break;
        }
        budget -= cost;
        fields.push(json!({"name": name, "value": value, "inline": true}));
    }
    let description = clip(&m.event.body(), DISCORD_DESCRIPTION_MAX.min(budget));
    let color = if m.event.spec().critical {
        0x00d9_3025
    } else {
        0x0034_6fd0
    };
    let mut embed = json!({
        "title": title,
        "description": description,
        "fields": fields,
        "timestamp": m.occurred_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "color": color,
    });
    if let Some(l) = m.link() {
        embed["url"] = Value::String(l);
    }
    json!({
        "content": clip(&m.event.title(), DISCORD_CONTENT_MAX),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    })
}

/// The generic JSON body.
pub fn generic(m: &Message<'_>) -> Value {
    let spec = m.event.spec();
    let mut data = Map::new();
    data.insert("event_id".into(), json!(m.event_id));
    data.insert("category".into(), json!(spec.category.as_str()));
    data.insert("critical".into(), json!(spec.critical));
    data.insert("title".into(), json!(m.event.title()));
    data.insert("body".into(), json!(m.event.body()));
    data.insert("url".into(), json!(m.link()));
    if let Ok(Value::Object(payload)) = serde_json::to_value(m.event) {
        for (k, v) in payload {
            if k != "type" {
                data.entry(k).or_insert(v);
            }
        }
    }
    json!({
        "type": m.event.type_name(),
        "timestamp": m.occurred_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "data": data,
    })
}

/// The body for a webhook kind (`slack`, `discord`, `generic`).
pub fn body(kind: &str, m: &Message<'_>) -> Value {
    match kind {
        "slack" => slack(m),
        "discord" => discord(m),
        _ => generic(m),
    }
}

/// Slack: lines a batch message lists before "and N more".
pub const SLACK_BATCH_LINES: usize = 20;

/// The body of a batch message (coalesced, quiet hours, the cap's "N more", a digest) for a webhook kind.
pub fn batch_body(kind: &str, c: &Content, public_url: &Url, at: DateTime<Utc>) -> Value {
    let link = |p: Option<&str>| {
        public_url
            .join(p.unwrap_or("/notifications"))
            .map(String::from)
            .unwrap_or_default()
    };
    let title = c.title();
    let listed: Vec<&Item> = c.items().collect();
    let more = c.total.saturating_sub(listed.len());
    match kind {
        "slack" => {
            // Whole lines within Slack's section limit, so "and N more" always fits.
            let mut lines: Vec<String> = Vec::new();
            let mut used = 0;
            for i in listed.iter().take(SLACK_BATCH_LINES) {
                let line = format!(
                    "• <{}|{}>",
                    link(i.url.as_deref()),
                    slack_escape(&clip(&i.title, 150))
                );
                if used + line.chars().count() + 1 > SLACK_TEXT_MAX - 40 {
                    break;
                }
                used += line.chars().count() + 1;
                lines.push(line);
            }
            let rest = c.total - lines.len();
            if rest > 0 {
                lines.push(format!("and {rest} more"));
            }
            let text = clip(&lines.join("\n"), SLACK_TEXT_MAX);
            json!({
                "text": clip(&slack_escape(&title), SLACK_TEXT_MAX),
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": clip(&title, SLACK_HEADER_MAX), "emoji": false}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("<{}|Open in Vortex>", link(None))}]},
                ],
            })
        }
        "discord" => {
            let title = clip(&title, DISCORD_TITLE_MAX);
            let budget =
                DISCORD_DESCRIPTION_MAX.min(DISCORD_EMBED_TOTAL_MAX - title.chars().count()) - 40;
            let mut description = String::new();
            let mut shown = 0;
            for i in &listed {
                let line = format!("• [{}]({})\n", clip(&i.title, 200), link(i.url.as_deref()));
                if description.chars().count() + line.chars().count() > budget {
                    break;
                }
                description.push_str(&line);
                shown += 1;
            }
            let rest = c.total - shown;
            if rest > 0 {
                description.push_str(&format!("and {rest} more"));
            }
            json!({
                "content": clip(&title, DISCORD_CONTENT_MAX),
                "embeds": [{
                    "title": title,
                    "description": description,
                    "url": link(None),
                    "timestamp": at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    "color": 0x0034_6fd0,
                }],
                "allowed_mentions": {"parse": []},
            })
        }
        _ => json!({
            "type": c.type_name(),
            "timestamp": at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "data": {
                "kind": c.kind.as_str(),
                "title": title,
                "total": c.total,
                "more": more,
                "url": link(None),
                "items": listed.iter().map(|i| json!({
                    "event_id": i.event_id,
                    "type": i.event_type,
                    "category": i.category.as_str(),
                    "title": i.title,
                    "url": link(i.url.as_deref()),
                    "occurred_at": i.occurred_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                })).collect::<Vec<_>>(),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notif_batch_bodies_stay_within_limits_and_say_and_n_more() {
        use crate::notify::{catalogue::Category, digest, release::BatchKind};
        let at = DateTime::parse_from_rfc3339("2027-03-12T22:05:00Z")
            .unwrap()
            .to_utc();
        let items: Vec<Item> = (0..300u32)
            .map(|i| Item {
                event_id: Uuid::from_u128(u128::from(i)),
                event_type: "backtest.failed".into(),
                category: Category::Backtests,
                title: format!("@everyone {} {i}", "x".repeat(300)),
                body: String::new(),
                url: Some(format!("/backtests/{i}")),
                occurred_at: at,
            })
            .collect();
        let c = digest::group(
            BatchKind::Coalesce,
            Uuid::nil(),
            chrono_tz::Tz::UTC,
            items,
            &[],
            50,
        );
        let s = batch_body("slack", &c, &public(), at);
        let text = s["blocks"][1]["text"]["text"].as_str().unwrap();
        let listed = text.lines().count() - 1;
        assert!(
            text.chars().count() <= SLACK_TEXT_MAX && (1..=SLACK_BATCH_LINES).contains(&listed)
        );
        assert!(
            text.ends_with(&format!("and {} more", 300 - listed)),
            "{text}"
        );
        let d = batch_body("discord", &c, &public(), at);
        let desc = d["embeds"][0]["description"].as_str().unwrap();
        assert!(desc.chars().count() <= DISCORD_DESCRIPTION_MAX && desc.contains(" more"));
        assert_eq!(d["allowed_mentions"]["parse"], json!([]));
        let g = batch_body("generic", &c, &public(), at);
        assert_eq!(g["type"], "notification.batch");
        assert_eq!(
            (g["data"]["total"].as_u64(), g["data"]["more"].as_u64()),
            (Some(300), Some(250))
        );
        assert_eq!(g["data"]["items"].as_array().unwrap().len(), 50);
    }
    use crate::notify::event::{Event, TYPES};

    fn public() -> Url {
        Url::parse("https://vortex.example.org/").unwrap()
    }

    /// The types a webhook can carry (the account flow mails go to their address only).
    fn webhook_types() -> impl Iterator<Item = &'static str> {
        TYPES.iter().copied().filter(|t| {
            crate::notify::catalogue::find(t).map(|s| s.audience)
                != Some(crate::notify::catalogue::Audience::Address)
        })
    }

    fn sample(t: &str) -> Event {
        Event::sample(t, Uuid::from_u128(7)).unwrap()
    }

    fn huge() -> Event {
        let mut e = sample("backtest.failed");
        if let Event::BacktestFailed(f) = &mut e {
            f.strategy_name = format!("@everyone <!channel> & {}", "x".repeat(10_000));
            f.error = "e".repeat(10_000);
            f.symbol = "s".repeat(5_000);
        }
        e
    }

    fn msg<'a>(e: &'a Event, url: &'a Url) -> Message<'a> {
        Message {
            event_id: Uuid::from_u128(42),
            event: e,
            occurred_at: DateTime::parse_from_rfc3339("2027-03-14T12:00:00Z")
                .unwrap()
                .to_utc(),
            public_url: url,
        }
    }

    fn chars(v: &Value) -> usize {
        v.as_str().map_or(0, |s| s.chars().count())
    }

    #[test]
    fn slack_shape_and_limits() {
        let url = public();
        for t in webhook_types() {
            let e = sample(t);
            let v = slack(&msg(&e, &url));
            assert!(chars(&v["text"]) <= SLACK_TEXT_MAX);
            let blocks = v["blocks"].as_array().unwrap();
            assert_eq!(blocks.len(), 3);
            assert_eq!(blocks[0]["type"], "header");
            assert!(
                blocks[2]["elements"][0]["text"]
                    .as_str()
                    .unwrap()
                    .contains("https://vortex.example.org/")
            );
        }
        let e = huge();
        let v = slack(&msg(&e, &url));
        assert!(chars(&v["text"]) <= SLACK_TEXT_MAX);
        assert!(chars(&v["blocks"][0]["text"]["text"]) <= SLACK_HEADER_MAX);
        assert!(chars(&v["blocks"][1]["text"]["text"]) <= SLACK_TEXT_MAX);
        let text = v["text"].as_str().unwrap();
        assert!(text.contains("&lt;!channel&gt; &amp;"), "{}", &text[..80]);
        assert!(!text.contains("<!channel>"));
    }

    #[test]
    fn discord_shape_and_limits() {
        let url = public();
        for t in webhook_types().map(sample).chain([huge()]) {
            let v = discord(&msg(&t, &url));
            assert_eq!(v["allowed_mentions"], json!({"parse": []}));
            assert!(chars(&v["content"]) <= DISCORD_CONTENT_MAX);
            let embeds = v["embeds"].as_array().unwrap();
            assert_eq!(embeds.len(), 1);
            let e = &embeds[0];
            assert!(chars(&e["title"]) <= DISCORD_TITLE_MAX);
            assert!(chars(&e["description"]) <= DISCORD_DESCRIPTION_MAX);
            let fields = e["fields"].as_array().unwrap();
            assert!(fields.len() <= DISCORD_FIELDS_MAX);
            let mut total = chars(&e["title"]) + chars(&e["description"]);
            for f in fields {
                assert!(chars(&f["name"]) <= DISCORD_FIELD_NAME_MAX);
                assert!(chars(&f["value"]) <= DISCORD_FIELD_VALUE_MAX);
                total += chars(&f["name"]) + chars(&f["value"]);
            }
            assert!(total <= DISCORD_EMBED_TOTAL_MAX, "{total}");
            assert_eq!(e["timestamp"], "2027-03-14T12:00:00Z");
        }
        let finished = sample("backtest.finished");
        let v = discord(&msg(&finished, &url));
        assert_eq!(
            v["embeds"][0]["url"],
            "https://vortex.example.org/backtests/00000000-0000-0000-0000-00005a4d91e2"
        );
        assert_eq!(v["embeds"][0]["fields"][0]["name"], "Return");
    }

    #[test]
    fn generic_carries_the_payload() {
        let url = public();
        let e = sample("backtest.finished");
        let v = generic(&msg(&e, &url));
        assert_eq!(v["type"], "backtest.finished");
        assert_eq!(v["timestamp"], "2027-03-14T12:00:00Z");
        let d = &v["data"];
        assert_eq!(d["event_id"], "00000000-0000-0000-0000-00000000002a");
        assert_eq!(d["category"], "backtests");
        assert_eq!(d["critical"], false);
        assert_eq!(d["title"], json!(e.title()));
        assert_eq!(d["strategy_name"], "MACD crossover");
        assert_eq!(d["trade_count"], 17);
        assert!(d.get("type").is_none());
        assert_eq!(body("generic", &msg(&e, &url)), v);
        assert_eq!(body("slack", &msg(&e, &url)), slack(&msg(&e, &url)));
        assert_eq!(body("discord", &msg(&e, &url)), discord(&msg(&e, &url)));
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("héllo", 5), "héllo");
        assert_eq!(clip("héllo!", 5), "héll…");
    }
}
