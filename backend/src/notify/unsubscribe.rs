//! One-click unsubscribe (RFC 8058; docs/design/notifications.md §5): a signed token per user and category,
//! carried by the `List-Unsubscribe` header and the footer of subscription mail, and the action that turns that
//! category's email off.
//!
//! Token: `v1.{user_id, base64url}.{categories}.{mac}` with `mac = base64url(HMAC-SHA256(k,
//! "vortex-unsubscribe\0v1\0{user_id}\0{categories}")[..16])`, where `categories` is one category or, for a
//! summary mixing several (a digest), their names in catalogue order joined by `+`; `k` derived with the label `vortex/unsubscribe/v1`
//! from `UNSUBSCRIBE_SECRET` if set, else from `JWT_SECRET`. No expiry: all it can do is turn one category's
//! email off. Rotating that secret invalidates the links in delivered mail.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use uuid::Uuid;

use super::catalogue::Category;
use crate::{
    Ctx,
    actor::Actor,
    auth::{AuthKeys, constant_time_eq},
    error::{Error, Result},
};

/// The audit event of a one-click unsubscribe.
pub const AUDIT_EVENT: &str = "notify_unsubscribed";

fn mac(keys: &AuthKeys, user_id: Uuid, category: &str) -> String {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&keys.unsubscribe)
        .expect("HMAC takes keys of any length");
    m.update(format!("vortex-unsubscribe\0v1\0{user_id}\0{category}").as_bytes());
    let tag = m.finalize().into_bytes();
    URL_SAFE_NO_PAD.encode(&tag[..16])
}

/// The token that unsubscribes `user_id` from `category`'s email.
pub fn sign(keys: &AuthKeys, user_id: Uuid, category: Category) -> String {
    sign_set(keys, user_id, &[category])
}

/// The token that unsubscribes `user_id` from the email of every category in `categories` (a summary that
/// mixes them). The set is put in catalogue order without repeats, so one set has one token.
pub fn sign_set(keys: &AuthKeys, user_id: Uuid, categories: &[Category]) -> String {
    let c = canonical(categories)
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join("+");
    format!(
        "v1.{}.{c}.{}",
        URL_SAFE_NO_PAD.encode(user_id.as_bytes()),
        mac(keys, user_id, &c)
    )
}

fn canonical(categories: &[Category]) -> Vec<Category> {
    let mut v = categories.to_vec();
    v.sort_by_key(|c| Category::ALL.iter().position(|x| x == c));
    v.dedup();
    v
}

/// The user and category of a genuine single-category token; `None` for anything else (malformed, tampered,
/// another key, a set).
pub fn verify(keys: &AuthKeys, token: &str) -> Option<(Uuid, Category)> {
    match verify_set(keys, token)? {
        (user, set) if set.len() == 1 => Some((user, set[0])),
        _ => None,
    }
}

/// The user and categories of a genuine token (one or several); `None` for anything else.
pub fn verify_set(keys: &AuthKeys, token: &str) -> Option<(Uuid, Vec<Category>)> {
    let mut parts = token.split('.');
    let (Some("v1"), Some(user), Some(category), Some(tag), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let user_id = Uuid::from_slice(&URL_SAFE_NO_PAD.decode(user).ok()?).ok()?;
    let set = category
        .split('+')
        .map(Category::parse)
        .collect::<Option<Vec<_>>>()?;
    // Only the canonical spelling of a set (no repeats, catalogue order) is genuine.
    if set.is_empty() || set != canonical(&set) {
        return None;
    }
    constant_time_eq(mac(keys, user_id, category).as_bytes(), tag.as_bytes())
        .then_some((user_id, set))
}

/// What the unsubscribe page shows before the reader confirms (nothing changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The categories the link turns off (one, or several for a digest).
    pub categories: Vec<Category>,
    /// The address, masked: `a•••@example.org`.
    pub masked_email: String,
}

/// Masks the local part of an address but its first character: `ann@example.org` → `a•••@example.org`.
pub fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_owned(),
    }
}

/// The category and masked address of a genuine token, for the page a footer link opens. Changes nothing
/// (link scanners follow GETs). Any actor.
///
/// # Errors
/// [`Error::invalid`] on `token` for a bad token or a user that no longer exists; database errors.
pub async fn preview(ctx: &Ctx, token: &str) -> Result<Preview> {
    let bad = || Error::invalid("token", "this unsubscribe link is not valid");
    let (user_id, categories) = verify_set(&ctx.keys, token).ok_or_else(bad)?;
    let email = sqlx::query_scalar!("select email from app_user where user_id = $1", user_id)
        .fetch_optional(&ctx.db)
        .await?
        .ok_or_else(bad)?;
    Ok(Preview {
        categories,
        masked_email: mask_email(&email),
    })
}

/// What a one-click unsubscribe did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribed {
    pub user_id: Uuid,
    pub categories: Vec<Category>,
    /// Email deliveries of these categories that were waiting and are now cancelled.
    pub cancelled: u64,
}

/// Turns off the email of the token's category for the token's user (a `source = 'unsubscribe'` rule, a veto
/// until the user sets that category's email again), cancels the category's waiting email deliveries and
/// audits, in one transaction. Any actor (the token is the authority); idempotent.
///
/// # Errors
/// [`Error::invalid`] on `token` for a bad token or a user that no longer exists; database errors.
pub async fn one_click(ctx: &Ctx, actor: &Actor, token: &str) -> Result<Unsubscribed> {
    let bad = || Error::invalid("token", "this unsubscribe link is not valid");
    let (user_id, categories) = verify_set(&ctx.keys, token).ok_or_else(bad)?;
    let mut tx = ctx.db.begin().await?;
    let exists = sqlx::query_scalar!(
        r#"select exists (select 1 from app_user where user_id = $1) as "x!""#,
        user_id,
    )
    .fetch_one(&mut *tx)
    .await?;
    if !exists {
        return Err(bad());
    }
    let names: Vec<String> = categories.iter().map(|c| c.as_str().to_owned()).collect();
    for category in &categories {
        sqlx::query!(
        r#"insert into notify_rule (rule_id, user_id, paper_run_id, category, event_type, channel, mode, source)
           values ($1, $2, null, $3, '*', 'email', 'off', 'unsubscribe')
           on conflict (user_id, paper_run_id, category, event_type, channel)
           do update set mode = 'off', source = 'unsubscribe', updated_at = now()
           -- an admin's rule that already turns it off stays the admin's (the user cannot lift it)
           where not (notify_rule.source = 'admin' and notify_rule.mode = 'off')"#,
        Uuid::new_v4(),
        user_id,
        category.as_str(),
    )
    .execute(&mut *tx)
    .await?;
    }
    let cancelled = sqlx::query!(
        r#"update notify_delivery set status = 'cancelled', reason = 'unsubscribed'
           where user_id = $1 and category = any($2) and channel = 'email' and status in ('pending', 'queued')
             -- a critical email (a failed payment) is locked on: unsubscribing never stops one already waiting
             and not critical"#,
        user_id,
        &names,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    actor
        .audit(
            &mut tx,
            AUDIT_EVENT,
            Some(user_id),
            serde_json::json!({ "categories": names, "cancelled": cancelled }),
        )
        .await?;
    tx.commit().await?;
    Ok(Unsubscribed {
        user_id,
        categories,
        cancelled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    fn keys(secret: &str) -> AuthKeys {
        let mut env = std::collections::HashMap::new();
        env.insert("JWT_SECRET".to_owned(), secret.to_owned());
        AuthKeys::from_settings(&Settings::from_map(&env).expect("settings"))
    }

    #[test]
    fn unsubscribe_preview_masks_the_address() {
        assert_eq!(mask_email("ann@example.org"), "a•••@example.org");
        assert_eq!(mask_email("x@y.z"), "x•••@y.z");
        assert_eq!(mask_email("nonsense"), "•••");
    }

    #[test]
    fn unsubscribe_secret_when_set_keys_the_tokens() {
        let mut env = std::collections::HashMap::new();
        env.insert(
            "JWT_SECRET".to_owned(),
            "0123456789abcdef0123456789abcdef-one".to_owned(),
        );
        let from_jwt = AuthKeys::from_settings(&Settings::from_map(&env).unwrap());
        env.insert(
            "UNSUBSCRIBE_SECRET".to_owned(),
            "fedcba9876543210fedcba9876543210-uns".to_owned(),
        );
        let own = AuthKeys::from_settings(&Settings::from_map(&env).unwrap());
        let user = Uuid::new_v4();
        let t = sign(&own, user, Category::Backtests);
        assert_eq!(verify(&own, &t), Some((user, Category::Backtests)));
        assert_eq!(verify(&from_jwt, &t), None);
        // The session keys do not depend on it.
        assert_eq!(own.csrf, from_jwt.csrf);
    }

    #[test]
    fn unsubscribe_token_round_trips_and_refuses_tampering() {
        let k = keys("0123456789abcdef0123456789abcdef-one");
        let user = Uuid::new_v4();
        let t = sign(&k, user, Category::Backtests);
        assert!(t.starts_with("v1.") && t.contains(".backtests."), "{t}");
        assert_eq!(verify(&k, &t), Some((user, Category::Backtests)));
        // Another category, another user, a cut or extended token, another key: refused.
        assert_eq!(verify(&k, &t.replace(".backtests.", ".paper.")), None);
        let other = sign(&k, Uuid::new_v4(), Category::Backtests);
        let forged = format!(
            "{}.{}",
            t.rsplit_once('.').unwrap().0,
            other.rsplit_once('.').unwrap().1
        );
        assert_eq!(verify(&k, &forged), None);
        assert_eq!(verify(&k, &t[..t.len() - 1]), None);
        assert_eq!(verify(&k, &format!("{t}.x")), None);
        assert_eq!(verify(&k, ""), None);
        assert_eq!(verify(&k, "v1.x.backtests.y"), None);
        let k2 = keys("0123456789abcdef0123456789abcdef-two");
        assert_eq!(verify(&k2, &t), None);
        // Deterministic: the same mail always carries the same link.
        assert_eq!(sign(&k, user, Category::Backtests), t);
    }

    #[test]
    fn unsubscribe_set_tokens_are_canonical_and_tamper_proof() {
        let k = keys("0123456789abcdef0123456789abcdef-one");
        let user = Uuid::new_v4();
        let t = sign_set(
            &k,
            user,
            &[Category::Paper, Category::Backtests, Category::Paper],
        );
        assert!(t.contains(".backtests+paper."), "{t}");
        assert_eq!(
            verify_set(&k, &t),
            Some((user, vec![Category::Backtests, Category::Paper]))
        );
        // A set is not a single-category token, and one category's set token is the single token.
        assert_eq!(verify(&k, &t), None);
        assert_eq!(
            sign_set(&k, user, &[Category::Backtests]),
            sign(&k, user, Category::Backtests)
        );
        // Widening, reordering or repeating the set breaks it.
        for bad in [
            t.replace(".backtests+paper.", ".backtests+paper+risk."),
            t.replace(".backtests+paper.", ".paper+backtests."),
            t.replace(".backtests+paper.", ".backtests+backtests+paper."),
            t.replace(".backtests+paper.", ".backtests+."),
        ] {
            assert_eq!(verify_set(&k, &bad), None, "{bad}");
        }
        assert_eq!(
            sign_set(&k, user, &[Category::Paper, Category::Backtests]),
            t
        );
    }
}
