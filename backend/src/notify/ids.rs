//! Deterministic ids (UUIDv5): a fan-out or delivery that runs twice computes the same ids, and `on conflict
//! do nothing` makes the second run a no-op (docs/design/notifications.md §1, "Deterministic ids").

use uuid::Uuid;

use super::catalogue::Channel;

/// The namespace of every notification id. Never change it: stored ids would no longer match.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x3c6f_a1d2_58e4_4b0f_9a77_0d2e_61c5_b48e);

fn v5(name: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

/// The event of a deduplicated emit (`dedupe_key`), so the id is known before the row is written.
pub fn event(dedupe_key: &str) -> Uuid {
    v5(&format!("event|{dedupe_key}"))
}

/// The in-app row of `event_id` for `user_id`.
pub fn notification(event_id: Uuid, user_id: Uuid) -> Uuid {
    v5(&format!("notification|{event_id}|{user_id}"))
}

/// Where a delivery goes: the user's own address, or one of their webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The account's email address.
    SelfAddress,
    Webhook(Uuid),
}

/// The delivery of `event_id` to `user_id` over `channel` to `target`.
pub fn delivery(event_id: Uuid, user_id: Uuid, channel: Channel, target: Target) -> Uuid {
    let target = match target {
        Target::SelfAddress => "self".to_owned(),
        Target::Webhook(id) => id.to_string(),
    };
    v5(&format!(
        "delivery|{event_id}|{user_id}|{}|{target}",
        channel.as_str()
    ))
}

/// The message that flushes batch `batch_id`.
pub fn batch_message(batch_id: Uuid) -> Uuid {
    v5(&format!("batch|{batch_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct_per_name() {
        let (e, u, w) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        assert_eq!(notification(e, u), notification(e, u));
        assert_eq!(notification(e, u).get_version_num(), 5);
        assert_ne!(notification(e, u), notification(u, e));
        let email = delivery(e, u, Channel::Email, Target::SelfAddress);
        assert_eq!(email, delivery(e, u, Channel::Email, Target::SelfAddress));
        assert_ne!(email, delivery(e, u, Channel::Webhook, Target::Webhook(w)));
        assert_ne!(
            delivery(e, u, Channel::Webhook, Target::Webhook(w)),
            delivery(e, u, Channel::Webhook, Target::Webhook(e))
        );
        assert_ne!(batch_message(e), notification(e, u));
        assert_eq!(event("backtest.finished:x"), event("backtest.finished:x"));
        assert_ne!(event("backtest.finished:x"), event("backtest.failed:x"));
        // A fixed known answer: the namespace and the name format are part of the stored data.
        assert_eq!(
            notification(e, u),
            Uuid::new_v5(
                &NAMESPACE,
                b"notification|00000000-0000-0000-0000-000000000001|00000000-0000-0000-0000-000000000002"
            )
        );
    }
}
