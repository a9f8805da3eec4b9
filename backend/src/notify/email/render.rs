//! Renders a notification email: subject, HTML and text parts (askama, sharing `templates/mail/base.*` through
//! `mail/notify/base.*`), the mail class and the headers (docs/design/notifications.md §5).

use askama::Template;
use uuid::Uuid;

use super::sparkline;
use crate::{
    auth::AuthKeys,
    mail::InlinePart,
    notify::{
        catalogue::{Category, EventSpec, MailClass},
        digest::Content,
        event::{BacktestFailed, BacktestFinished, Event, pct},
        release::BatchKind,
        unsubscribe,
    },
};

/// Where links point and how ids are spelled.
pub struct Site<'a> {
    /// `PUBLIC_URL`, without a trailing slash.
    pub public_url: &'a str,
    /// The domain of `Message-ID`s and `List-Id`s.
    pub domain: &'a str,
    pub keys: &'a AuthKeys,
}

impl Site<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url.trim_end_matches('/'))
    }
}

/// A rendered notification email.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `notify/<type>` (or `notify/generic`), stored on the outbox row.
    pub template: String,
    pub class: MailClass,
    /// Extra headers in the order they are written.
    pub headers: Vec<(String, String)>,
    /// Images the HTML shows by `cid:` (not stored: every attempt renders them again, the same bytes).
    pub inline: Vec<InlinePart>,
}

/// The footer's links and the names templates share.
struct Common {
    subject: String,
    prefs_url: String,
    unsubscribe_url: Option<String>,
    category_label: &'static str,
    link: String,
    /// The forgot-password page (security mail: "if this was not you").
    reset_url: String,
}

#[derive(Template)]
#[template(path = "mail/notify/backtest_finished.html")]
struct FinishedHtml<'a> {
    subject: &'a str,
    prefs_url: &'a str,
    unsubscribe_url: Option<&'a str>,
    category_label: &'a str,
    link: &'a str,
    strategy_name: &'a str,
    symbol: &'a str,
    timeframe: &'a str,
    range: &'a str,
    total_return: &'a str,
    sharpe: &'a str,
    max_drawdown: &'a str,
    trades: i32,
    final_equity: &'a str,
    /// The inline equity image's `Content-ID`, when the run has a curve to draw.
    #[allow(dead_code)] // used by the HTML part only
    sparkline_cid: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "mail/notify/backtest_finished.txt")]
struct FinishedText<'a> {
    #[allow(dead_code)] // the text layout has no title line; the struct shape follows the HTML one
    subject: &'a str,
    prefs_url: &'a str,
    unsubscribe_url: Option<&'a str>,
    category_label: &'a str,
    link: &'a str,
    strategy_name: &'a str,
    symbol: &'a str,
    timeframe: &'a str,
    range: &'a str,
    total_return: &'a str,
    sharpe: &'a str,
    max_drawdown: &'a str,
    trades: i32,
    final_equity: &'a str,
    /// The inline equity image's `Content-ID`, when the run has a curve to draw.
    #[allow(dead_code)] // used by the HTML part only
    sparkline_cid: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "mail/notify/backtest_failed.html")]
struct FailedHtml<'a> {
    subject: &'a str,
    prefs_url: &'a str,
    unsubscribe_url: Option<&'a str>,
    category_label: &'a str,
    link: &'a str,
    strategy_name: &'a str,
    symbol: &'a str,
    timeframe: &'a str,
    error: &'a str,
}

#[derive(Template)]
#[template(path = "mail/notify/backtest_failed.txt")]
struct FailedText<'a> {
    #[allow(dead_code)] // the text layout has no title line; the struct shape follows the HTML one
    subject: &'a str,
    prefs_url: &'a str,
    unsubscribe_url: Option<&'a str>,
    category_label: &'a str,
    link: &'a str,
    strategy_name: &'a str,
    symbol: &'a str,
    timeframe: &'a str,
    error: &'a str,
}

#[derive(Template)]
#[template(path = "mail/notify/security.html")]
struct SecurityHtml<'a> {
    subject: &'a str,
    prefs_url: &'a str,
    unsubscribe_url: Option<&'a str>,
    category_label: &'a str,
    link: &'a str,
    title: &'a str,
    body: &'a str,
    reset_url: &'a str,
}

#[derive(Template)]
#[template(path = "mail/notify/security.txt")]
struct SecurityText<'a> {
    #[allow(dead_code)] // the text layout has no title line; the struct shape follows the HTML one
    subject: &'a str,
    prefs_url: &'a str,
    unsubscribe_url: Option<&'a str>,
    category_label: &'a str,
    link: &'a str,
    title: &'a str,
    body: &'a str,
    reset_url: &'a str,
}

#[derive(Template)]
#[template(path = "mail/notify/generic.html")]
struct GenericHtml<'a> {
    subject: &'a str,
    prefs_url: &'a str,
    unsubscribe_url: Option<&'a str>,
    category_label: &'a str,
    link: &'a str,
    title: &'a str,
    body: &'a str,
}

#[derive(Template)]
#[template(path = "mail/notify/generic.txt")]
struct GenericText<'a> {
    #[allow(dead_code)] // the text layout has no title line; the struct shape follows the HTML one
    subject: &'a str,
    prefs_url: &'a str,
    unsubscribe_url: Option<&'a str>,
    category_label: &'a str,
    link: &'a str,
    title: &'a str,
    body: &'a str,
}

fn num(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite())
        .map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"))
}

/// What a reader calls the category in the footer.
fn category_label(c: Category) -> &'static str {
    match c {
        Category::Backtests => "backtest",
        Category::Paper => "paper trading",
        Category::Risk => "risk",
        Category::Billing => "billing",
        Category::Security => "security",
        Category::Account => "account",
        Category::Admin => "admin",
        Category::System => "system",
    }
}

/// Renders `event` for `user_id`; the class comes from its spec. Subscription mail gets `List-Id`, the RFC 8058
/// one-click headers and a footer with the preferences and unsubscribe links; transactional mail none of them.
///
/// # Errors
/// Template rendering errors.
pub fn render(
    site: &Site<'_>,
    spec: &EventSpec,
    event: &Event,
    user_id: Uuid,
) -> anyhow::Result<Rendered> {
    let class = spec.mail_class();
    let category = spec.category.as_str();
    let token = unsubscribe::sign(site.keys, user_id, spec.category);
    let subscription = class == MailClass::Subscription;
    let c = Common {
        subject: event.title(),
        prefs_url: site.url("/notifications/settings"),
        unsubscribe_url: subscription.then(|| site.url(&format!("/unsubscribe?t={token}"))),
        category_label: category_label(spec.category),
        link: site.url(event.url().as_deref().unwrap_or("/notifications")),
        reset_url: site.url("/forgot-password"),
    };
    let mut headers = Vec::new();
    if subscription {
        headers.push((
            "List-Id".to_owned(),
            format!("Vortex {category} <{category}.notify.{}>", site.domain),
        ));
        headers.push((
            "List-Unsubscribe".to_owned(),
            format!(
                "<{}>",
                site.url(&format!("/unsubscribe/one-click?t={token}"))
            ),
        ));
        headers.push((
            "List-Unsubscribe-Post".to_owned(),
            "List-Unsubscribe=One-Click".to_owned(),
        ));
    }
    headers.push(("Auto-Submitted".to_owned(), "auto-generated".to_owned()));
    headers.push(("X-Vortex-Event".to_owned(), spec.name.to_owned()));
    let (template, html, text) = parts(&c, event)?;
    Ok(Rendered {
        subject: c.subject.clone(),
        text,
        html,
        template,
        class,
        headers,
        inline: inline_parts(event),
    })
}

/// The images sent inside the message (`cid:` parts): the equity sparkline of a finished backtest. Drawn from
/// the payload, so the render that puts the `<img>` in the stored HTML and the send (every attempt) agree.
pub fn inline_parts(event: &Event) -> Vec<InlinePart> {
    match event {
        Event::BacktestFinished(b) => sparkline::png(&b.sparkline)
            .map(|bytes| InlinePart {
                content_id: sparkline::CONTENT_ID.to_owned(),
                content_type: "image/png",
                bytes,
            })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

fn parts(c: &Common, event: &Event) -> anyhow::Result<(String, String, String)> {
    let (subject, prefs_url, unsubscribe_url, category_label, link) = (
        c.subject.as_str(),
        c.prefs_url.as_str(),
        c.unsubscribe_url.as_deref(),
        c.category_label,
        c.link.as_str(),
    );
    Ok(match event {
        Event::BacktestFinished(BacktestFinished {
            strategy_name,
            symbol,
            timeframe,
            range_from,
            range_to,
            total_return,
            sharpe,
            max_drawdown,
            trade_count,
            final_equity,
            ..
        }) => {
            let range = format!(
                "{} to {}",
                range_from.format("%Y-%m-%d"),
                range_to.format("%Y-%m-%d")
            );
            let sparkline_cid =
                (!inline_parts(event).is_empty()).then(|| sparkline::CONTENT_ID.to_owned());
            let (total_return, sharpe, max_drawdown, final_equity) = (
                pct(*total_return),
                num(*sharpe),
                pct(*max_drawdown),
                num(*final_equity),
            );
            macro_rules! finished {
                ($t:ident) => {
                    $t {
                        subject,
                        prefs_url,
                        unsubscribe_url,
                        category_label,
                        link,
                        strategy_name,
                        symbol,
                        timeframe,
                        range: &range,
                        total_return: &total_return,
                        sharpe: &sharpe,
                        max_drawdown: &max_drawdown,
                        trades: *trade_count,
                        final_equity: &final_equity,
                        sparkline_cid: sparkline_cid.as_deref(),
                    }
                    .render()?
                };
            }
            (
                "notify/backtest.finished".to_owned(),
                finished!(FinishedHtml),
                finished!(FinishedText),
            )
        }
        Event::BacktestFailed(BacktestFailed {
            strategy_name,
            symbol,
            timeframe,
            error,
            ..
        }) => {
            macro_rules! failed {
                ($t:ident) => {
                    $t {
                        subject,
                        prefs_url,
                        unsubscribe_url,
                        category_label,
                        link,
                        strategy_name,
                        symbol,
                        timeframe,
                        error,
                    }
                    .render()?
                };
            }
            (
                "notify/backtest.failed".to_owned(),
                failed!(FailedHtml),
                failed!(FailedText),
            )
        }
        security @ (Event::SigninNewDevice(_)
        | Event::PasswordChanged(_)
        | Event::TokenCreated(_)
        | Event::TwoFactorChanged(_)
        | Event::TwoFactorFailed(_)) => {
            let (title, body) = (security.title(), security.body());
            macro_rules! security {
                ($t:ident) => {
                    $t {
                        subject,
                        prefs_url,
                        unsubscribe_url,
                        category_label,
                        link,
                        title: &title,
                        body: &body,
                        reset_url: &c.reset_url,
                    }
                    .render()?
                };
            }
            (
                format!("notify/{}", security.type_name()),
                security!(SecurityHtml),
                security!(SecurityText),
            )
        }
        other => {
            let (title, body) = (other.title(), other.body());
            macro_rules! generic {
                ($t:ident) => {
                    $t {
                        subject,
                        prefs_url,
                        unsubscribe_url,
                        category_label,
                        link,
                        title: &title,
                        body: &body,
                    }
                    .render()?
                };
            }
            (
                "notify/generic".to_owned(),
                generic!(GenericHtml),
                generic!(GenericText),
            )
        }
    })
}

/// One listed item of a batch message, ready for a template.
struct ItemView {
    title: String,
    body: String,
    link: String,
    when: String,
}

struct SectionView {
    label: &'static str,
    total: usize,
    more: usize,
    items: Vec<ItemView>,
}

macro_rules! batch_template {
    ($name:ident, $path:literal) => {
        #[derive(Template)]
        #[template(path = $path)]
        #[allow(dead_code)] // each layout uses some of the shared fields
        struct $name<'a> {
            subject: &'a str,
            prefs_url: &'a str,
            unsubscribe_url: Option<&'a str>,
            category_label: &'a str,
            link: &'a str,
            title: &'a str,
            intro: &'a str,
            sections: &'a [SectionView],
            counts: &'a [(String, usize)],
        }
    };
}

batch_template!(BatchHtml, "mail/notify/batch.html");
batch_template!(BatchText, "mail/notify/batch.txt");
batch_template!(DigestHtml, "mail/notify/digest.html");
batch_template!(DigestText, "mail/notify/digest.txt");
batch_template!(CapHtml, "mail/notify/cap.html");
batch_template!(CapText, "mail/notify/cap.txt");

/// Renders a batch message (coalesced, quiet hours, the cap's "N more", a digest) for its user. Subscription
/// mail whose items share one category gets that category's `List-Id` and one-click unsubscribe headers; the
/// footer always links the preferences.
///
/// # Errors
/// Template rendering errors.
pub fn render_batch(site: &Site<'_>, content: &Content) -> anyhow::Result<Rendered> {
    let subscription = content.class == MailClass::Subscription;
    // The categories the message speaks for: its one category, or every section's (a summary mixing
    // them unsubscribes from all of them at once). Security mail is never batched nor unsubscribable.
    let categories: Vec<Category> = match content.category {
        Some(c) => vec![c],
        None => content.sections.iter().map(|s| s.category).collect(),
    }
    .into_iter()
    .filter(|c| subscription && *c != Category::Security)
    .collect();
    let token = (!categories.is_empty())
        .then(|| unsubscribe::sign_set(site.keys, content.user_id, &categories));
    let unsubscribe_url = token
        .as_ref()
        .map(|t| site.url(&format!("/unsubscribe?t={t}")));
    let mut headers = Vec::new();
    if let Some(t) = &token {
        let list = match content.category {
            Some(c) => c.as_str(),
            None => "summary",
        };
        headers.push((
            "List-Id".to_owned(),
            format!("Vortex {list} <{list}.notify.{}>", site.domain),
        ));
        headers.push((
            "List-Unsubscribe".to_owned(),
            format!("<{}>", site.url(&format!("/unsubscribe/one-click?t={t}"))),
        ));
        headers.push((
            "List-Unsubscribe-Post".to_owned(),
            "List-Unsubscribe=One-Click".to_owned(),
        ));
    }
    headers.push(("Auto-Submitted".to_owned(), "auto-generated".to_owned()));
    headers.push(("X-Vortex-Event".to_owned(), content.type_name().to_owned()));
    let sections: Vec<SectionView> = content
        .sections
        .iter()
        .map(|s| SectionView {
            label: s.label,
            total: s.total,
            more: s.more(),
            items: s
                .items
                .iter()
                .map(|i| ItemView {
                    title: i.title.clone(),
                    body: crate::notify::event::clip(&i.body, 300),
                    link: site.url(i.url.as_deref().unwrap_or("/notifications")),
                    when: content.when(i),
                })
                .collect(),
        })
        .collect();
    let title = content.title();
    let intro = content.intro();
    let prefs_url = site.url("/notifications/settings");
    let link = site.url("/notifications");
    let category_label = content.category.map_or("these kinds of", category_label);
    macro_rules! view {
        ($t:ident) => {
            $t {
                subject: &title,
                prefs_url: &prefs_url,
                unsubscribe_url: unsubscribe_url.as_deref(),
                category_label,
                link: &link,
                title: &title,
                intro: &intro,
                sections: &sections,
                counts: &content.counts,
            }
            .render()?
        };
    }
    let (template, html, text) = match content.kind {
        BatchKind::Digest => ("notify/digest", view!(DigestHtml), view!(DigestText)),
        BatchKind::Cap => ("notify/cap", view!(CapHtml), view!(CapText)),
        BatchKind::Coalesce | BatchKind::Quiet => {
            ("notify/batch", view!(BatchHtml), view!(BatchText))
        }
    };
    Ok(Rendered {
        subject: title.clone(),
        text,
        html,
        template: template.to_owned(),
        class: content.class,
        headers,
        inline: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{notify::catalogue::find, settings::Settings};

    fn keys() -> AuthKeys {
        AuthKeys::from_settings(&Settings::from_map(&std::collections::HashMap::new()).unwrap())
    }

    #[test]
    fn notification_emails_render_both_parts_with_class_headers_and_footer() {
        let keys = keys();
        let site = Site {
            public_url: "https://v.example/",
            domain: "v.example",
            keys: &keys,
        };
        let user = Uuid::from_u128(7);
        for ty in crate::notify::event::TYPES {
            let e = Event::sample(ty, user).unwrap();
            let r = render(&site, e.spec(), &e, user).unwrap();
            // No remote images (tracking, blocked content): only the inline `cid:` sparkline.
            assert_eq!(
                r.html.matches("<img").count(),
                r.html.matches("<img src=\"cid:").count(),
                "{}",
                r.html
            );
            assert!(r.html.contains("https://v.example/notifications/settings"));
            assert!(r.text.contains("https://v.example/notifications/settings"));
            assert_eq!(r.class, e.spec().mail_class());
            if r.class == MailClass::Transactional {
                // Covered by the transactional test below.
                continue;
            }
            let token = unsubscribe::sign(&keys, user, e.spec().category);
            assert!(
                r.text
                    .contains(&format!("https://v.example/unsubscribe?t={token}"))
            );
            let h = |n: &str| {
                r.headers
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.clone())
            };
            assert_eq!(
                h("List-Unsubscribe").unwrap(),
                format!("<https://v.example/unsubscribe/one-click?t={token}>")
            );
            assert_eq!(
                h("List-Unsubscribe-Post").unwrap(),
                "List-Unsubscribe=One-Click"
            );
            assert!(h("List-Id").unwrap().ends_with(".notify.v.example>"));
            assert_eq!(h("X-Vortex-Event").unwrap(), *ty);
        }
        let e = Event::sample("backtest.finished", user).unwrap();
        let r = render(&site, find("backtest.finished").unwrap(), &e, user).unwrap();
        assert_eq!(r.template, "notify/backtest.finished");
        assert!(r.html.contains("Sharpe ratio") && r.html.contains("Max drawdown"));
        assert!(r.text.contains(&format!(
            "https://v.example/backtests/{}",
            match &e {
                Event::BacktestFinished(b) => b.run_id,
                _ => unreachable!(),
            }
        )));
        let e = Event::sample("backtest.failed", user).unwrap();
        let r = render(&site, e.spec(), &e, user).unwrap();
        assert_eq!(r.template, "notify/backtest.failed");
        assert!(r.text.contains("failed"));
    }

    #[test]
    fn security_emails_name_what_happened_and_link_the_account_and_password_reset() {
        let keys = keys();
        let site = Site {
            public_url: "https://v.example",
            domain: "v.example",
            keys: &keys,
        };
        let user = Uuid::from_u128(7);
        for ty in [
            "security.signin_new_device",
            "security.password_changed",
            "security.token_created",
            "security.two_factor_changed",
            "security.two_factor_failed",
        ] {
            let e = Event::sample(ty, user).unwrap();
            let r = render(&site, e.spec(), &e, user).unwrap();
            assert_eq!(r.class, MailClass::Transactional, "{ty}");
            assert_eq!(r.template, format!("notify/{ty}"));
            for part in [&r.html, &r.text] {
                assert!(part.contains("https://v.example/account"), "{ty}: {part}");
                assert!(part.contains("https://v.example/forgot-password"), "{ty}");
            }
            assert!(!r.headers.iter().any(|(k, _)| k.starts_with("List-")));
        }
        let e = Event::sample("security.password_changed", user).unwrap();
        let r = render(&site, e.spec(), &e, user).unwrap();
        assert_eq!(r.subject, "Your Vortex password was changed");
        assert!(r.text.contains("2 session(s), 1 token(s)"), "{}", r.text);
        let e = Event::sample("security.signin_new_device", user).unwrap();
        let r = render(&site, e.spec(), &e, user).unwrap();
        assert!(r.text.contains("Firefox on Linux") && r.text.contains("203.0.113.7"));
    }

    #[test]
    fn batch_emails_list_items_with_and_n_more_and_class_headers() {
        let keys = keys();
        let site = Site {
            public_url: "https://v.example",
            domain: "v.example",
            keys: &keys,
        };
        let user = Uuid::from_u128(7);
        let at = chrono::DateTime::parse_from_rfc3339("2027-03-12T22:05:00Z")
            .unwrap()
            .to_utc();
        let item = |i: u32, ty: &str, c: Category| crate::notify::digest::Item {
            event_id: Uuid::from_u128(u128::from(i)),
            event_type: ty.into(),
            category: c,
            title: format!("Backtest failed: run {i}"),
            body: "no data".into(),
            url: Some(format!("/backtests/{i}")),
            occurred_at: at,
        };
        let items: Vec<_> = (0..60)
            .map(|i| item(i, "backtest.failed", Category::Backtests))
            .collect();
        let c = crate::notify::digest::group(
            BatchKind::Coalesce,
            user,
            chrono_tz::Tz::UTC,
            items,
            &[],
            50,
        );
        let r = render_batch(&site, &c).unwrap();
        assert_eq!(r.subject, "Backtest failed (60)");
        assert!(r.text.contains("run 49") && !r.text.contains("run 50 "));
        assert!(r.text.contains("and 10 more") && r.html.contains("and 10 more"));
        assert!(r.text.contains("https://v.example/backtests/3"));
        let token = unsubscribe::sign(&keys, user, Category::Backtests);
        assert!(
            r.text
                .contains(&format!("https://v.example/unsubscribe?t={token}"))
        );
        assert!(r.headers.iter().any(|(k, _)| k == "List-Unsubscribe"));
        assert_eq!(r.template, "notify/batch");
        // A digest of two categories: sections, and one-click unsubscribe from both.
        let mixed = vec![
            item(1, "backtest.failed", Category::Backtests),
            item(2, "system.test", Category::System),
        ];
        let d = crate::notify::digest::group(
            BatchKind::Digest,
            user,
            chrono_tz::Tz::UTC,
            mixed,
            &[],
            50,
        );
        let r = render_batch(&site, &d).unwrap();
        assert_eq!(r.template, "notify/digest");
        assert!(r.html.contains("Backtests (1)") && r.text.contains("System (1)"));
        let both = unsubscribe::sign_set(&keys, user, &[Category::Backtests, Category::System]);
        assert!(r.headers.iter().any(|(k, v)| k == "List-Unsubscribe"
            && v == &format!("<https://v.example/unsubscribe/one-click?t={both}>")));
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| k == "List-Unsubscribe-Post" && v == "List-Unsubscribe=One-Click")
        );
        assert!(
            r.text
                .contains(&format!("https://v.example/unsubscribe?t={both}"))
        );
        assert!(
            r.text.contains("Unsubscribe from these kinds of email"),
            "{}",
            r.text
        );
        assert!(r.text.contains("https://v.example/notifications/settings"));
        let h = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(h("X-Vortex-Event").unwrap(), "notification.digest");
        // The cap's "N more": counts per type.
        let cap = crate::notify::digest::group(
            BatchKind::Cap,
            user,
            chrono_tz::Tz::UTC,
            (0..5)
                .map(|i| item(i, "backtest.failed", Category::Backtests))
                .collect(),
            &[],
            50,
        );
        let r = render_batch(&site, &cap).unwrap();
        assert_eq!(r.subject, "5 more notifications");
        assert!(r.text.contains("- Backtest failed: 5"), "{}", r.text);
    }

    #[test]
    fn transactional_notification_emails_have_no_unsubscribe() {
        let keys = keys();
        let site = Site {
            public_url: "https://v.example",
            domain: "v.example",
            keys: &keys,
        };
        let user = Uuid::from_u128(7);
        let spec = find("security.password_changed").unwrap();
        assert_eq!(spec.mail_class(), MailClass::Transactional);
        let e = Event::sample("system.test", user).unwrap();
        let r = render(&site, spec, &e, user).unwrap();
        assert_eq!(r.class, MailClass::Transactional);
        let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["Auto-Submitted", "X-Vortex-Event"]);
        assert!(!r.html.contains("/unsubscribe") && !r.text.contains("/unsubscribe"));
        assert!(r.text.contains("an action on your Vortex account"));
        assert!(r.html.contains("https://v.example/notifications/settings"));
    }
}
