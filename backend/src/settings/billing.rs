//! Payments: the provider, its API key, webhook signing secrets and API address, the reconciliation schedule
//! and how long processed event ids are kept (docs/billing.md).

use std::{fmt, str::FromStr, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::reader::Reader;

/// `PAYMENT_PROVIDER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentProvider {
    /// No billing: plans are assigned by administrators only (the default; a self-hosted install).
    None,
    /// Stripe (or a server speaking its API): Checkout, the Billing Portal and signed webhooks.
    Stripe,
}

impl FromStr for PaymentProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "stripe" => Ok(Self::Stripe),
            _ => Err("must be none or stripe".into()),
        }
    }
}

impl fmt::Display for PaymentProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Stripe => "stripe",
        })
    }
}

/// `PAYMENT_PROVIDER`, `STRIPE_*`.
#[derive(Clone)]
pub struct BillingSettings {
    pub provider: PaymentProvider,
    /// `STRIPE_API_KEY` / `STRIPE_API_KEY_FILE` (a secret or restricted key); required with `stripe`.
    pub api_key: Option<SecretString>,
    /// `STRIPE_WEBHOOK_SECRET` / `_FILE`: one or more `whsec_…` signing secrets, comma-separated (several during
    /// a rotation: a signature by any of them is accepted); at least one with `stripe`.
    pub webhook_secrets: Vec<SecretString>,
    /// `STRIPE_API_BASE`: the API's address (`https://api.stripe.com`; tests point it at a local mock).
    pub api_base: Url,
    /// `BILLING_RECONCILE_INTERVAL_SECS`: how often the reconciliation with the provider runs (default a day;
    /// zero: never by schedule, "Reconcile now" still works). Only with a provider.
    pub reconcile_interval: Duration,
    /// `BILLING_RECONCILE_MAX_PAGES`: pages of 100 events one reconciliation run reads at most (the next run
    /// continues where it stopped).
    pub reconcile_max_pages: u32,
    /// `BILLING_EVENT_RETENTION_DAYS`: processed event ids (`billing_event`) and reconciliation runs are
    /// pruned by housekeeping after this long; never under [`MIN_EVENT_RETENTION_DAYS`].
    pub event_retention: Duration,
}

impl fmt::Debug for BillingSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BillingSettings")
            .field("provider", &self.provider)
            .field("api_base", &self.api_base.as_str())
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("reconcile_interval", &self.reconcile_interval)
            .field("reconcile_max_pages", &self.reconcile_max_pages)
            .field("event_retention", &self.event_retention)
            .finish_non_exhaustive()
    }
}

impl BillingSettings {
    /// Whether a payment provider is configured.
    pub fn enabled(&self) -> bool {
        self.provider != PaymentProvider::None
    }

    /// The origins a form on our pages may lead to by redirect, besides our own: the provider's hosted checkout
    /// and billing portal (browsers apply the CSP's `form-action` to a form's redirects, so "Upgrade" and
    /// "Manage billing" need them). Stripe hosts them at `checkout.stripe.com` and `billing.stripe.com`; an API
    /// base elsewhere (a proxy, a test's mock) is taken to host them too. Empty when billing is off.
    pub fn redirect_origins(&self) -> Vec<String> {
        if !self.enabled() {
            return Vec::new();
        }
        let mut out = vec![
            "https://checkout.stripe.com".to_owned(),
            "https://billing.stripe.com".to_owned(),
        ];
        let base = self.api_base.origin().ascii_serialization();
        if base != "https://api.stripe.com" && base != "null" {
            out.push(base);
        }
        out
    }
}

/// Most webhook secrets accepted at once (a rotation needs two).
pub const MAX_WEBHOOK_SECRETS: usize = 5;

/// The shortest `BILLING_EVENT_RETENTION_DAYS`: Stripe lists and resends an event for 30 days, so an event id
/// must be remembered longer than that, or a late delivery or a reconciliation would process it a second time.
pub const MIN_EVENT_RETENTION_DAYS: u64 = 35;

/// The shortest and longest non-zero `BILLING_RECONCILE_INTERVAL_SECS` (five minutes, a week).
pub const RECONCILE_INTERVAL_SECS: (u64, u64) = (300, 604_800);

/// `BILLING_RECONCILE_INTERVAL_SECS`, `BILLING_RECONCILE_MAX_PAGES`, `BILLING_EVENT_RETENTION_DAYS`.
fn reconcile(r: &mut Reader<'_>) -> (Duration, u32, Duration) {
    let (min, max) = RECONCILE_INTERVAL_SECS;
    let mut interval = r.parsed("BILLING_RECONCILE_INTERVAL_SECS", 86_400u64);
    if interval != 0 && !(min..=max).contains(&interval) {
        r.problem(
            "BILLING_RECONCILE_INTERVAL_SECS",
            format!("must be 0 (no scheduled reconciliation) or between {min} and {max} seconds (got {interval})"),
        );
        interval = 86_400;
    }
    let pages = r.bounded("BILLING_RECONCILE_MAX_PAGES", 20u32, 1, 100);
    let mut days = r.parsed("BILLING_EVENT_RETENTION_DAYS", 90u64);
    if days < MIN_EVENT_RETENTION_DAYS {
        r.problem(
            "BILLING_EVENT_RETENTION_DAYS",
            format!(
                "must be at least {MIN_EVENT_RETENTION_DAYS} days (got {days}): Stripe lists and resends an event \
                 for 30 days, and an event whose id was pruned before then would be processed a second time"
            ),
        );
        days = 90;
    } else if days > 36_500 {
        r.problem(
            "BILLING_EVENT_RETENTION_DAYS",
            format!("must be at most 36500 days (got {days})"),
        );
        days = 90;
    }
    (
        Duration::from_secs(interval),
        pages,
        Duration::from_secs(days * 86_400),
    )
}

pub(super) fn parse(r: &mut Reader<'_>, prod: bool) -> BillingSettings {
    let provider: PaymentProvider = r.parsed("PAYMENT_PROVIDER", PaymentProvider::None);
    let api_key = r.secret("STRIPE_API_KEY");
    let webhook_secrets: Vec<SecretString> = r
        .secret("STRIPE_WEBHOOK_SECRET")
        .map(|s| {
            s.expose_secret()
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| SecretString::from(p.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let base = r.string("STRIPE_API_BASE", "https://api.stripe.com");
    // The host is a plain name or address: its origin goes into the pages' CSP (`redirect_origins`), where
    // `;`, `,` or quotes (which URL parsers accept in host names) would break the policy.
    let plain_host = |u: &Url| match u.host() {
        Some(url::Host::Domain(d)) => d
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
        Some(_) => true,
        None => false,
    };
    let api_base = match Url::parse(&base) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && plain_host(&u) => u,
        _ => {
            r.problem(
                "STRIPE_API_BASE",
                "must be an http(s) URL such as https://api.stripe.com",
            );
            Url::parse("https://api.stripe.com").expect("static URL")
        }
    };
    let (reconcile_interval, reconcile_max_pages, event_retention) = reconcile(r);
    if provider == PaymentProvider::Stripe {
        if api_key.is_none() {
            r.problem(
                "STRIPE_API_KEY",
                "is required with PAYMENT_PROVIDER=stripe (a secret or restricted key, see docs/billing.md)",
            );
        }
        if webhook_secrets.is_empty() {
            r.problem(
                "STRIPE_WEBHOOK_SECRET",
                "is required with PAYMENT_PROVIDER=stripe (the endpoint's signing secret, whsec_…)",
            );
        }
        if webhook_secrets.len() > MAX_WEBHOOK_SECRETS {
            r.problem(
                "STRIPE_WEBHOOK_SECRET",
                format!("at most {MAX_WEBHOOK_SECRETS} comma-separated secrets"),
            );
        }
        if prod && api_base.scheme() != "https" {
            r.problem("STRIPE_API_BASE", "must use https:// in production");
        }
    }
    BillingSettings {
        provider,
        api_key,
        webhook_secrets,
        api_base,
        reconcile_interval,
        reconcile_max_pages,
        event_retention,
    }
}
