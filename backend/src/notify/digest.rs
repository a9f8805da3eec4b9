//! What a batch message says (docs/design/notifications.md §4.5, §4.6): the items of a flushed batch (a
//! coalescing window, quiet hours, the hourly cap's "N more", a digest), grouped in sections per category of at
//! most `NOTIFY_DIGEST_MAX_ITEMS` with "and N more". Read when the message is sent ([`load`]), so items whose
//! category the user unsubscribed from (or turned off) since they were batched are dropped, and a digest lists
//! nothing older than `NOTIFY_DIGEST_LOOKBACK_DAYS`.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    catalogue::{self, Category, Channel, MailClass, Mode},
    event::Event,
    prefs::{
        self,
        doc::{category_label, type_label},
    },
    release::BatchKind,
};
use crate::settings::NotifySettings;

/// One notification in a batch message.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub event_id: Uuid,
    pub event_type: String,
    pub category: Category,
    pub title: String,
    pub body: String,
    /// A path on this site.
    pub url: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// The items of one category: at most the listing limit, `total` counts them all.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub category: Category,
    pub label: &'static str,
    pub total: usize,
    pub items: Vec<Item>,
}

impl Section {
    /// Items not listed ("and N more").
    pub fn more(&self) -> usize {
        self.total - self.items.len()
    }
}

/// A batch message's content.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    pub kind: BatchKind,
    pub user_id: Uuid,
    /// The recipient's time zone (for the times shown).
    pub tz: Tz,
    /// Items still wanted, in all sections.
    pub total: usize,
    pub sections: Vec<Section>,
    /// Items per type (label, count), most first: what the cap's "N more" message lists.
    pub counts: Vec<(String, usize)>,
    /// The one category of every item, if they share one (the unsubscribe link and `List-Id` are for it).
    pub category: Option<Category>,
    /// The one type of every item, if they share one.
    pub event_type: Option<String>,
    /// Transactional when every item is (account notices deferred by quiet hours), else subscription.
    pub class: MailClass,
}

impl Content {
    /// The subject line / message title.
    pub fn title(&self) -> String {
        let n = self.total;
        let many = |s: &str| {
            if n == 1 {
                s.to_owned()
            } else {
                format!("{s}s")
            }
        };
        match self.kind {
            BatchKind::Digest => format!("Your Vortex digest: {n} {}", many("notification")),
            BatchKind::Cap => format!("{n} more {}", many("notification")),
            BatchKind::Quiet => format!("While you were away: {n} {}", many("notification")),
            BatchKind::Coalesce => match &self.event_type {
                Some(t) => format!("{} ({n})", type_label(t)),
                None => format!("{n} {}", many("notification")),
            },
        }
    }

    /// The line under the title.
    pub fn intro(&self) -> String {
        match self.kind {
            BatchKind::Digest => "What happened since your last digest.".to_owned(),
            BatchKind::Cap => "You reached the hourly limit of notification messages, so these were held \
                               back and are summed up here. All of them are in your notification centre."
                .to_owned(),
            BatchKind::Quiet => "These arrived during your quiet hours.".to_owned(),
            BatchKind::Coalesce => "These arrived within a short time, so they come as one message.".to_owned(),
        }
    }

    /// The `type` of the generic webhook body and of the `X-Vortex-Event` header.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            BatchKind::Digest => "notification.digest",
            _ => "notification.batch",
        }
    }

    /// When an item happened, in the recipient's zone (`12 Mar 22:05`).
    pub fn when(&self, item: &Item) -> String {
        item.occurred_at
            .with_timezone(&self.tz)
            .format("%-d %b %H:%M")
            .to_string()
    }

    /// Every listed item, section by section.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.sections.iter().flat_map(|s| s.items.iter())
    }

    /// Items not listed, over all sections.
    pub fn more(&self) -> usize {
        self.sections.iter().map(Section::more).sum()
    }
}

/// The content of batch `batch_id` for `channel`, at `now` (clock time); `None` when the batch is gone. Items
/// whose mode for `channel` is now `off` (an unsubscribe, a changed preference) are dropped; digests also drop
/// items older than the look-back. Content with `total == 0` means nothing is left to send.
///
/// # Errors
/// Database errors.
pub async fn load(
    conn: &mut PgConnection,
    volume: &NotifySettings,
    now: DateTime<Utc>,
    batch_id: Uuid,
    channel: Channel,
) -> sqlx::Result<Option<Content>> {
    let Some(b) = sqlx::query!(
        "select user_id, kind from notify_batch where batch_id = $1",
        batch_id
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let kind = BatchKind::parse(&b.kind).unwrap_or(BatchKind::Coalesce);
    let rows = sqlx::query!(
        r#"select e.event_id, e.event_type, e.payload, e.occurred_at, e.paper_run_id
           from notify_delivery d join notify_event e on e.event_id = d.event_id
           where d.batch_id = $1 and d.status = 'batched' and not d.is_batch_message
           order by e.occurred_at, e.event_id"#,
        batch_id,
    )
    .fetch_all(&mut *conn)
    .await?;
    let rules = prefs::load(conn, b.user_id).await?;
    let tz = prefs::schedule_of(conn, b.user_id)
        .await?
        .map_or(Tz::UTC, |s| s.tz);
    let oldest = now - Duration::days(volume.digest_lookback_days);
    let mut items = Vec::new();
    let mut classes = Vec::new();
    for r in rows {
        let Some(spec) = catalogue::find(&r.event_type) else {
            continue;
        };
        if !prefs::locked(spec, channel)
            && prefs::resolve(spec, channel, r.paper_run_id, &rules) == Mode::Off
        {
            continue;
        }
        if kind == BatchKind::Digest && r.occurred_at < oldest {
            continue;
        }
        let (title, body, url) = match serde_json::from_value::<Event>(r.payload) {
            Ok(e) => (e.title(), e.body(), e.url()),
            Err(_) => (type_label(spec.name), String::new(), None),
        };
        classes.push(spec.mail_class());
        items.push(Item {
            event_id: r.event_id,
            event_type: spec.name.to_owned(),
            category: spec.category,
            title,
            body,
            url,
            occurred_at: r.occurred_at,
        });
    }
    Ok(Some(group(
        kind,
        b.user_id,
        tz,
        items,
        &classes,
        volume.digest_max_items,
    )))
}

/// Groups items into sections of at most `max_items` (pure).
pub fn group(
    kind: BatchKind,
    user_id: Uuid,
    tz: Tz,
    items: Vec<Item>,
    classes: &[MailClass],
    max_items: usize,
) -> Content {
    let total = items.len();
    let category = items
        .first()
        .map(|i| i.category)
        .filter(|c| items.iter().all(|i| i.category == *c));
    let event_type = items
        .first()
        .map(|i| i.event_type.clone())
        .filter(|t| items.iter().all(|i| &i.event_type == t));
    let mut counts: Vec<(String, usize)> = Vec::new();
    for i in &items {
        let label = type_label(&i.event_type);
        match counts.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += 1,
            None => counts.push((label, 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut sections = Vec::new();
    for c in Category::ALL {
        let of: Vec<Item> = items.iter().filter(|i| i.category == c).cloned().collect();
        if of.is_empty() {
            continue;
        }
        sections.push(Section {
            category: c,
            label: category_label(c),
            total: of.len(),
            items: of.into_iter().take(max_items).collect(),
        });
    }
    let class = if !classes.is_empty() && classes.iter().all(|c| *c == MailClass::Transactional) {
        MailClass::Transactional
    } else {
        MailClass::Subscription
    };
    Content {
        kind,
        user_id,
        tz,
        total,
        sections,
        counts,
        category,
        event_type,
        class,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(i: u32, ty: &str, cat: Category) -> Item {
        Item {
            event_id: Uuid::from_u128(u128::from(i)),
            event_type: ty.into(),
            category: cat,
            title: format!("item {i}"),
            body: String::new(),
            url: Some(format!("/x/{i}")),
            occurred_at: DateTime::parse_from_rfc3339("2027-03-12T22:05:00Z")
                .unwrap()
                .to_utc(),
        }
    }

    #[test]
    fn notif_digest_sections_list_at_most_the_limit_and_count_the_rest() {
        let mut items: Vec<Item> = (0..100)
            .map(|i| item(i, "backtest.failed", Category::Backtests))
            .collect();
        let c = group(
            BatchKind::Coalesce,
            Uuid::nil(),
            Tz::UTC,
            items.clone(),
            &[],
            50,
        );
        assert_eq!((c.total, c.sections.len(), c.more()), (100, 1, 50));
        assert_eq!(c.sections[0].items.len(), 50);
        assert_eq!(c.title(), "Backtest failed (100)");
        assert_eq!(c.category, Some(Category::Backtests));
        items.push(item(200, "system.test", Category::System));
        let c = group(BatchKind::Digest, Uuid::nil(), tz_ny(), items, &[], 10);
        assert_eq!(c.sections.len(), 2);
        assert_eq!((c.sections[0].total, c.sections[0].more()), (100, 90));
        assert_eq!(c.sections[1].label, "System");
        assert_eq!(c.category, None);
        assert_eq!(c.title(), "Your Vortex digest: 101 notifications");
        assert_eq!(c.counts[0], ("Backtest failed".to_owned(), 100));
        assert_eq!(c.when(&c.sections[1].items[0]), "12 Mar 17:05");
        assert_eq!(c.type_name(), "notification.digest");
        let cap = group(
            BatchKind::Cap,
            Uuid::nil(),
            Tz::UTC,
            vec![item(1, "system.test", Category::System); 5],
            &[],
            50,
        );
        assert_eq!(cap.title(), "5 more notifications");
    }

    fn tz_ny() -> Tz {
        "America/New_York".parse().unwrap()
    }
}
