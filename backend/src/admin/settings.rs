//! Platform settings: the sign-up policy (`open`, `invite`, `approval` or `closed`) and email-domain allow and deny lists,
//! single-use invitation links, the maintenance banner and whether administrators must use two-factor sign-in. Anyone may read the settings (the sign-up form and every page need them); only admins
//! change them (audited as `platform_settings_changed`) and create invitations (audited as `invite_created`).

use serde::Serialize;
use serde_json::json;

use crate::{
    Actor, Ctx,
    error::{Error, Result},
};

/// Longest banner, in characters.
pub const MAX_BANNER: usize = 500;
/// Days an invitation link works.
pub const INVITE_DAYS: i64 = 14;
/// The short-lived cookie that carries a new invitation link to the one page view that shows it.
pub const INVITE_COOKIE: &str = "vortex_invite";
/// The sign-up policies.
pub const POLICIES: &[&str] = &["open", "invite", "approval", "closed"];

/// The settings as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformSettings {
    /// `open` (anyone may sign up), `invite` (with an invitation link), `approval` (anyone may apply, with a
    /// reason; an administrator approves the account first, [`super::signups`]) or `closed` (nobody; admins
    /// create or promote accounts).
    pub signup_policy: String,
    /// Shown at the top of every page when not empty.
    pub banner: String,
    /// Administrators must turn on two-factor sign-in before they can use anything else
    /// (`account::two_factor::must_enrol`).
    pub admin_two_factor_required: bool,
    /// With entries, only addresses at these domains (or their subdomains) sign up.
    pub signup_allowed_domains: Vec<String>,
    /// Addresses at these domains (or their subdomains) never sign up.
    pub signup_denied_domains: Vec<String>,
}

/// A change of the settings: `None` keeps a value.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange<'a> {
    pub signup_policy: Option<&'a str>,
    pub banner: Option<&'a str>,
    pub admin_two_factor_required: Option<bool>,
    /// Domain names as typed (one per entry; a leading `@` is dropped, case ignored).
    pub signup_allowed_domains: Option<Vec<String>>,
    pub signup_denied_domains: Option<Vec<String>>,
}

/// Most entries of one domain list.
pub const MAX_DOMAINS: usize = 200;

/// Checks and normalises a domain list: lower case ASCII (an internationalised name in its `xn--` form, as
/// [`email_domain`] gives an address's domain), no leading `@`, no duplicates, sorted.
///
/// # Errors
/// [`Error::Invalid`] naming `field` and the entry.
pub fn parse_domains(field: &str, entries: &[String]) -> Result<Vec<String>> {
    let too_many = || Error::invalid(field, format!("at most {MAX_DOMAINS} domains"));
    // Duplicates and blanks are dropped, but not thousands of them.
    if entries.len() > 4 * MAX_DOMAINS {
        return Err(too_many());
    }
    let mut out = std::collections::BTreeSet::new();
    for raw in entries {
        let typed = raw.trim().trim_start_matches('@');
        if typed.is_empty() {
            continue;
        }
        let shown: String = raw.chars().take(60).collect();
        let not_a_domain = || {
            Error::invalid(
                field,
                format!("`{shown}` is not a domain name like example.com"),
            )
        };
        let d = email_domain(typed).ok_or_else(not_a_domain)?;
        let labels_ok = d.len() <= 253
            && d.contains('.')
            && d.split('.').all(|l| {
                (1..=63).contains(&l.len())
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !labels_ok {
            return Err(not_a_domain());
        }
        out.insert(d);
        if out.len() > MAX_DOMAINS {
            return Err(too_many());
        }
    }
    Ok(out.into_iter().collect())
}

/// A domain as mail delivery resolves it: IDNA-mapped to lower-case ASCII (`Fa\u{212A}e.com` and fullwidth
/// letters become `fake.com`, `bücher.example` becomes `xn--bcher-kva.example`); `None` when it is not a
/// domain name.
pub fn email_domain(domain: &str) -> Option<String> {
    match url::Host::parse(domain) {
        Ok(url::Host::Domain(d)) => Some(d.trim_end_matches('.').to_owned()),
        _ => None,
    }
}

/// Whether `domain` is one of `list` or a subdomain of one.
fn covered(domain: &str, list: &[String]) -> bool {
    list.iter().any(|d| {
        domain == d
            || domain
                .strip_suffix(d.as_str())
                .is_some_and(|head| head.ends_with('.'))
    })
}

/// The current settings (no permission needed: they are shown to everyone).
///
/// # Errors
/// Database errors.
pub async fn current(ctx: &Ctx) -> Result<PlatformSettings> {
    let r = sqlx::query_as!(
        PlatformSettings,
        "select signup_policy, banner, admin_two_factor_required, signup_allowed_domains, signup_denied_domains
         from platform_settings where id",
    )
    .fetch_optional(&ctx.db)
    .await?;
    Ok(r.unwrap_or_else(|| PlatformSettings {
        signup_policy: "open".into(),
        banner: String::new(),
        admin_two_factor_required: false,
        signup_allowed_domains: Vec::new(),
        signup_denied_domains: Vec::new(),
    }))
}

/// The maintenance banner (empty for none), as every page shows it: read at most once per
/// [`crate::ctx::BANNER_TTL`] per process, and at once after this process changed it.
///
/// # Errors
/// Database errors.
pub async fn banner(ctx: &Ctx) -> Result<String> {
    if let Some(b) = ctx.banner.get() {
        return Ok(b);
    }
    let stamp = ctx.banner.stamp();
    let b = current(ctx).await?.banner;
    ctx.banner.set(b.clone(), stamp);
    Ok(b)
}

fn token_hash(token: &str) -> String {
    crate::settings::hex(&crate::auth::sha256(token.trim()))
}

/// What [`check_signup`] allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignupGate {
    /// The invitation to use up (with [`use_invite`] once the account exists).
    pub invite: Option<String>,
    /// Sign-up is `approval`: the account waits for an administrator ([`super::signups`]).
    pub approval: bool,
}

/// Whether this sign-up may go ahead under the policy: always while `open` or `approval` (the account then
/// waits for an administrator); with a valid, unused, unexpired `invite` token while `invite`; never while
/// `closed`; and, whatever the policy, only for an `email` whose domain the deny list does not name and (when
/// it has entries) the allow list does.
///
/// # Errors
/// [`Error::Forbidden`] saying why (for the visitor), database.
pub async fn check_signup(ctx: &Ctx, invite: Option<&str>, email: &str) -> Result<SignupGate> {
    let settings = current(ctx).await?;
    let invite = check_policy(ctx, &settings, invite).await?;
    check_domain(&settings, email)?;
    Ok(SignupGate {
        invite,
        approval: settings.signup_policy == "approval",
    })
}

/// Whether sign-up currently needs an administrator's approval (the sign-up form then asks for a reason).
///
/// # Errors
/// Database errors.
pub async fn signup_needs_approval(ctx: &Ctx) -> Result<bool> {
    Ok(current(ctx).await?.signup_policy == "approval")
}

/// Whether the domain lists let `email` (an address [`crate::auth::users::parse_email`] accepted) have an
/// account: for sign-ups and for a change of address.
///
/// # Errors
/// [`Error::Forbidden`] saying why, database.
pub async fn check_email_domain(ctx: &Ctx, email: &str) -> Result<()> {
    check_domain(&current(ctx).await?, email)
}

fn check_domain(settings: &PlatformSettings, email: &str) -> Result<()> {
    if settings.signup_allowed_domains.is_empty() && settings.signup_denied_domains.is_empty() {
        return Ok(());
    }
    let Some((_, domain)) = email.rsplit_once('@') else {
        return Ok(());
    };
    // The form mail delivery uses: lists are kept in it too.
    let Some(domain) = email_domain(domain) else {
        return Err(Error::Forbidden(
            "This address's domain is not a domain name.".into(),
        ));
    };
    if covered(&domain, &settings.signup_denied_domains) {
        return Err(Error::Forbidden(format!(
            "Addresses at {domain} are not accepted on this instance."
        )));
    }
    if !settings.signup_allowed_domains.is_empty()
        && !covered(&domain, &settings.signup_allowed_domains)
    {
        return Err(Error::Forbidden(format!(
            "This instance is for addresses at {} only.",
            settings.signup_allowed_domains.join(", ")
        )));
    }
    Ok(())
}

/// The sign-up policy's part of [`check_signup`].
async fn check_policy(
    ctx: &Ctx,
    settings: &PlatformSettings,
    invite: Option<&str>,
) -> Result<Option<String>> {
    match settings.signup_policy.as_str() {
        "open" | "approval" => Ok(None),
        "invite" => {
            let Some(token) = invite
                .map(str::trim)
                .filter(|t| !t.is_empty() && t.len() <= 128)
            else {
                return Err(Error::Forbidden(
                    "Sign-up on this instance is by invitation: open the invitation link you were sent."
                        .into(),
                ));
            };
            let hash = token_hash(token);
            let valid = sqlx::query_scalar!(
                r#"select exists (select 1 from signup_invite
                   where token_hash = $1 and used_at is null and expires_at > now()) as "valid!""#,
                hash,
            )
            .fetch_one(&ctx.db)
            .await?;
            if !valid {
                return Err(invalid_invite());
            }
            Ok(Some(hash))
        }
        _ => Err(Error::Forbidden(
            "Sign-up is closed on this instance. Ask an administrator for an account.".into(),
        )),
    }
}

fn invalid_invite() -> Error {
    Error::Forbidden(
        "This invitation link is not valid: it expired or was used already. Ask for a new one."
            .into(),
    )
}

/// Uses up the invitation checked by [`check_signup`] for the new account, in the sign-up's transaction (a
/// concurrent sign-up with the same link loses: [`Error::Forbidden`]).
///
/// # Errors
/// [`Error::Forbidden`], database.
pub async fn use_invite(
    conn: &mut sqlx::PgConnection,
    hash: &str,
    user_id: uuid::Uuid,
) -> Result<()> {
    let used = sqlx::query!(
        "update signup_invite set used_at = now(), used_by = $2
         where token_hash = $1 and used_at is null and expires_at > now()",
        hash,
        user_id,
    )
    .execute(conn)
    .await?;
    if used.rows_affected() == 1 {
        Ok(())
    } else {
        Err(invalid_invite())
    }
}

/// Creates a single-use invitation link valid for [`INVITE_DAYS`] days (admins with a read-write credential);
/// audited as `invite_created`. The link is shown once; only its hash is stored.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], database.
pub async fn create_invite(actor: &Actor, ctx: &Ctx) -> Result<String> {
    actor.admin_writer()?;
    let token = crate::auth::random_secret();
    let hash = token_hash(&token);
    let expires = ctx.clock.now() + chrono::Duration::days(INVITE_DAYS);
    let mut tx = ctx.db.begin().await?;
    sqlx::query!(
        "insert into signup_invite (token_hash, created_by, expires_at) values ($1, $2, $3)",
        hash,
        actor.user_id(),
        expires,
    )
    .execute(&mut *tx)
    .await?;
    actor
        .audit(
            &mut tx,
            super::event::INVITE_CREATED,
            None,
            json!({ "invite": &hash[..16], "expires_at": expires }),
        )
        .await?;
    tx.commit().await?;
    let mut url = ctx.settings.public_url.clone();
    url.set_path("/signup");
    url.set_query(Some(&format!("invite={token}")));
    Ok(url.to_string())
}

/// Changes the sign-up policy, the banner, whether admins must use two-factor sign-in and the sign-up domain
/// lists (admins with a read-write credential); what `change` leaves `None` stays. Audited as
/// `platform_settings_changed` with the old and new values.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`] (`signup_policy`, `banner`,
/// `signup_allowed_domains`, `signup_denied_domains`), database.
pub async fn update(
    actor: &Actor,
    ctx: &Ctx,
    change: &SettingsChange<'_>,
) -> Result<PlatformSettings> {
    actor.admin_writer()?;
    if let Some(policy) = change.signup_policy
        && !POLICIES.contains(&policy.trim())
    {
        return Err(Error::invalid(
            "signup_policy",
            "choose open, invite, approval or closed",
        ));
    }
    if let Some(banner) = change.banner {
        let banner = banner.trim();
        if banner.chars().count() > MAX_BANNER || banner.chars().any(char::is_control) {
            return Err(Error::invalid(
                "banner",
                format!("use at most {MAX_BANNER} characters, on one line"),
            ));
        }
    }
    let allowed = change
        .signup_allowed_domains
        .as_deref()
        .map(|d| parse_domains("signup_allowed_domains", d))
        .transpose()?;
    let denied = change
        .signup_denied_domains
        .as_deref()
        .map(|d| parse_domains("signup_denied_domains", d))
        .transpose()?;
    let mut tx = ctx.db.begin().await?;
    let old = sqlx::query_as!(
        PlatformSettings,
        "select signup_policy, banner, admin_two_factor_required, signup_allowed_domains, signup_denied_domains
         from platform_settings where id for update",
    )
    .fetch_one(&mut *tx)
    .await?;
    let new = PlatformSettings {
        signup_policy: change
            .signup_policy
            .map_or_else(|| old.signup_policy.clone(), |p| p.trim().to_owned()),
        banner: change
            .banner
            .map_or_else(|| old.banner.clone(), |b| b.trim().to_owned()),
        admin_two_factor_required: change
            .admin_two_factor_required
            .unwrap_or(old.admin_two_factor_required),
        signup_allowed_domains: allowed.unwrap_or_else(|| old.signup_allowed_domains.clone()),
        signup_denied_domains: denied.unwrap_or_else(|| old.signup_denied_domains.clone()),
    };
    if new == old {
        // Nothing changes: nothing is written or audited.
        return Ok(new);
    }
    if old.admin_two_factor_required
        && !new.admin_two_factor_required
        && actor.auth_user().is_some_and(|u| u.session_id().is_none())
    {
        // An API token never passed a second factor: it may not lift the rule that admins need one.
        return Err(Error::Forbidden(
            "mandatory two-factor sign-in for admins is turned off in the browser, by an admin signed in with it"
                .into(),
        ));
    }
    sqlx::query!(
        "update platform_settings set signup_policy = $1, banner = $2, admin_two_factor_required = $4,
                signup_allowed_domains = $5, signup_denied_domains = $6, updated_by = $3, updated_at = now()
         where id",
        new.signup_policy,
        new.banner,
        actor.user_id(),
        new.admin_two_factor_required,
        &new.signup_allowed_domains,
        &new.signup_denied_domains,
    )
    .execute(&mut *tx)
    .await?;
    actor
        .audit(
            &mut tx,
            super::event::SETTINGS_CHANGED,
            None,
            json!({
                "signup_policy": { "from": old.signup_policy, "to": new.signup_policy },
                "banner": { "from": old.banner, "to": new.banner },
                "admin_two_factor_required": {
                    "from": old.admin_two_factor_required,
                    "to": new.admin_two_factor_required,
                },
                "signup_allowed_domains": { "from": old.signup_allowed_domains, "to": new.signup_allowed_domains },
                "signup_denied_domains": { "from": old.signup_denied_domains, "to": new.signup_denied_domains },
            }),
        )
        .await?;
    tx.commit().await?;
    ctx.banner.clear();
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_lists_are_normalised_and_cover_subdomains() {
        let list = parse_domains(
            "d",
            &[
                " @Example.COM ".into(),
                "example.com".into(),
                String::new(),
                "corp.io".into(),
            ],
        )
        .unwrap();
        assert_eq!(list, ["corp.io", "example.com"]);
        assert!(covered("example.com", &list));
        assert!(covered("mail.example.com", &list));
        assert!(!covered("badexample.com", &list));
        assert!(!covered("example.com.evil.io", &list));
        for bad in [
            "localhost",
            "exa mple.com",
            "-x.com",
            "a..b",
            "x.com/",
            "x@y.com",
        ] {
            assert!(parse_domains("d", &[bad.into()]).is_err(), "{bad}");
        }
        // Internationalised names are kept, and matched, in their ASCII form; look-alike letters map first.
        assert_eq!(
            parse_domains("d", &["Bücher.example".into()]).unwrap(),
            ["xn--bcher-kva.example"]
        );
        assert_eq!(
            email_domain("fa\u{212A}einbox.com").as_deref(),
            Some("fakeinbox.com")
        );
        assert_eq!(
            email_domain("\u{ff46}\u{ff41}\u{ff4b}\u{ff45}inbox.com").as_deref(),
            Some("fakeinbox.com")
        );
        let denied = PlatformSettings {
            signup_policy: "open".into(),
            banner: String::new(),
            admin_two_factor_required: false,
            signup_allowed_domains: vec![],
            signup_denied_domains: vec!["fakeinbox.com".into()],
        };
        for email in [
            "x@fa\u{212A}einbox.com",
            "x@\u{ff46}akeinbox.com",
            "x@mail.FAKEINBOX.com",
        ] {
            assert!(check_domain(&denied, email).is_err(), "{email}");
        }
        assert!(check_domain(&denied, "x@inbox.com").is_ok());
        let many: Vec<String> = (0..=MAX_DOMAINS).map(|i| format!("d{i}.com")).collect();
        assert!(parse_domains("d", &many).is_err());
        let repeated = vec!["a.com".to_owned(); 4 * MAX_DOMAINS + 1];
        assert!(parse_domains("d", &repeated).is_err());
    }
}
