//! The typed events: one payload struct per type, serialised with its `type` tag into `notify_event.payload`.
//! A payload is self-contained (everything a title, an email or a chat message needs), because `notify` never
//! reads the emitter's tables (docs/design/notifications.md §0, "Layering").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::catalogue::{self, EventSpec};

mod admin;
mod billing;
mod paper;
mod security;
pub use admin::EtlFailing;
pub use billing::{
    BillingOverLimit, BillingPaymentFailed, BillingPlanChanged, BillingTrialEnding,
    BillingUsageWarning, OVER_LIMIT_NAMES,
};
pub use paper::{
    KillSwitchChange, PaperDataGap, PaperFill, PaperOrderCancelled, PaperRunRef, PaperSignal,
    PaperStoppedError, RiskLimitHit,
};
pub use security::{
    FlowMail, PasswordChanged, SigninNewDevice, TokenCreated, TwoFactorChanged, TwoFactorFailed,
    device,
};

/// At most this many points in a payload's sparkline.
pub const SPARKLINE_POINTS: usize = 200;

/// A backtest run finished (status `done`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestFinished {
    /// The run's owner.
    pub user_id: Uuid,
    pub run_id: Uuid,
    pub batch_id: Uuid,
    pub strategy_id: Uuid,
    pub strategy_name: String,
    pub symbol: String,
    pub timeframe: String,
    pub range_from: DateTime<Utc>,
    pub range_to: DateTime<Utc>,
    pub total_return: Option<f64>,
    pub sharpe: Option<f64>,
    pub max_drawdown: Option<f64>,
    pub trade_count: i32,
    pub final_equity: Option<f64>,
    /// The equity curve, at most [`SPARKLINE_POINTS`] points.
    pub sparkline: Vec<f32>,
}

/// A backtest run failed (not cancelled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestFailed {
    pub user_id: Uuid,
    pub run_id: Uuid,
    pub batch_id: Uuid,
    pub strategy_name: String,
    pub symbol: String,
    pub timeframe: String,
    /// What the trader sees on the run (never an infrastructure detail).
    pub error: String,
}

/// A test notification (admin or the user's own "send a test").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemTest {
    pub user_id: Uuid,
    /// `admin` or `self`.
    pub sent_by: String,
    pub note: String,
    /// Only this channel (a test of one channel); `None`: every channel, as the preferences say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<super::catalogue::Channel>,
}

/// A webhook was disabled: its destination is gone (HTTP 410/404) or failed too often in a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDisabled {
    /// The webhook's owner.
    pub user_id: Uuid,
    pub webhook_id: Uuid,
    pub name: String,
    /// `gone` or `failing`.
    pub reason: String,
    /// The delivery whose failure disabled it (one event per disabling).
    pub delivery_id: Uuid,
}

/// The relay refused the user's address for good: no more email goes to it until the mark is cleared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailUndeliverable {
    pub user_id: Uuid,
    pub smtp_code: Option<u16>,
    /// The relay's reply (clipped to 500 characters).
    pub smtp_message: String,
}

/// A background job gave up (attempts spent or a permanent error): for the administrators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDead {
    pub job_id: Uuid,
    pub kind: String,
    pub queue: String,
    /// The job's last error (first 500 characters).
    pub last_error: String,
}

/// A user was suspended by an administrator: for the other administrators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserSuspended {
    pub user_id: Uuid,
    /// The user's address, masked (`a…@example.org`).
    pub email: String,
    /// Who suspended them (the administrator's masked address, or `the operator`).
    pub by: String,
    pub reason: String,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Someone applied for an account while sign-up needs approval: for the sign-up approvers (every active
/// administrator when none is marked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignupRequested {
    /// The pending account.
    pub user_id: Uuid,
    /// The applicant's address, masked (`a…@example.org`); the console shows it in full.
    pub email: String,
    /// The address's domain.
    pub domain: String,
    /// The applicant's reason (first 500 characters).
    pub reason: String,
}

/// Every event with a payload. The `type` tag is the catalogue name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "backtest.finished")]
    BacktestFinished(BacktestFinished),
    #[serde(rename = "backtest.failed")]
    BacktestFailed(BacktestFailed),
    #[serde(rename = "system.test")]
    SystemTest(SystemTest),
    #[serde(rename = "notify.webhook_disabled")]
    WebhookDisabled(WebhookDisabled),
    #[serde(rename = "notify.email_undeliverable")]
    EmailUndeliverable(EmailUndeliverable),
    #[serde(rename = "security.signin_new_device")]
    SigninNewDevice(SigninNewDevice),
    #[serde(rename = "security.password_changed")]
    PasswordChanged(PasswordChanged),
    #[serde(rename = "security.token_created")]
    TokenCreated(TokenCreated),
    #[serde(rename = "security.two_factor_changed")]
    TwoFactorChanged(TwoFactorChanged),
    #[serde(rename = "security.two_factor_failed")]
    TwoFactorFailed(TwoFactorFailed),
    #[serde(rename = "admin.etl_failing")]
    EtlFailing(EtlFailing),
    #[serde(rename = "account.verification_requested")]
    VerificationRequested(FlowMail),
    #[serde(rename = "account.password_reset_requested")]
    PasswordResetRequested(FlowMail),
    #[serde(rename = "account.signup_attempt_existing")]
    SignupAttemptExisting(FlowMail),
    #[serde(rename = "admin.job_dead")]
    JobDead(JobDead),
    #[serde(rename = "admin.user_suspended")]
    UserSuspended(UserSuspended),
    #[serde(rename = "admin.signup_requested")]
    SignupRequested(SignupRequested),
    #[serde(rename = "paper.signal")]
    PaperSignal(PaperSignal),
    #[serde(rename = "paper.fill")]
    PaperFill(PaperFill),
    #[serde(rename = "paper.order_cancelled")]
    PaperOrderCancelled(PaperOrderCancelled),
    #[serde(rename = "paper.stopped_error")]
    PaperStoppedError(PaperStoppedError),
    #[serde(rename = "paper.data_gap")]
    PaperDataGap(PaperDataGap),
    #[serde(rename = "risk.limit_hit")]
    RiskLimitHit(RiskLimitHit),
    #[serde(rename = "kill_switch.thrown")]
    KillSwitchThrown(KillSwitchChange),
    #[serde(rename = "kill_switch.released")]
    KillSwitchReleased(KillSwitchChange),
    #[serde(rename = "billing.plan_changed")]
    BillingPlanChanged(BillingPlanChanged),
    #[serde(rename = "billing.payment_failed")]
    BillingPaymentFailed(BillingPaymentFailed),
    #[serde(rename = "billing.trial_ending")]
    BillingTrialEnding(BillingTrialEnding),
    #[serde(rename = "billing.usage_warning")]
    BillingUsageWarning(BillingUsageWarning),
    #[serde(rename = "billing.over_limit")]
    BillingOverLimit(BillingOverLimit),
}

/// Every type name with a payload variant (for tests and samples).
pub const TYPES: &[&str] = &[
    "backtest.finished",
    "backtest.failed",
    "system.test",
    "notify.webhook_disabled",
    "notify.email_undeliverable",
    "security.signin_new_device",
    "security.password_changed",
    "security.token_created",
    "security.two_factor_changed",
    "security.two_factor_failed",
    "admin.etl_failing",
    "account.verification_requested",
    "account.password_reset_requested",
    "account.signup_attempt_existing",
    "admin.job_dead",
    "admin.user_suspended",
    "admin.signup_requested",
    "paper.signal",
    "paper.fill",
    "paper.order_cancelled",
    "paper.stopped_error",
    "paper.data_gap",
    "risk.limit_hit",
    "kill_switch.thrown",
    "kill_switch.released",
    "billing.plan_changed",
    "billing.payment_failed",
    "billing.trial_ending",
    "billing.usage_warning",
    "billing.over_limit",
];

/// Cuts `s` to at most `max` characters, ending in `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// A fraction as a signed percentage (`+1.23 %`), `–` when missing or not finite.
pub fn pct(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite())
        .map_or_else(|| "–".to_owned(), |v| format!("{:+.2} %", v * 100.0))
}

impl Event {
    /// The catalogue name (`backtest.finished`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::BacktestFinished(_) => "backtest.finished",
            Event::BacktestFailed(_) => "backtest.failed",
            Event::SystemTest(_) => "system.test",
            Event::WebhookDisabled(_) => "notify.webhook_disabled",
            Event::EmailUndeliverable(_) => "notify.email_undeliverable",
            Event::SigninNewDevice(_) => "security.signin_new_device",
            Event::PasswordChanged(_) => "security.password_changed",
            Event::TokenCreated(_) => "security.token_created",
            Event::TwoFactorChanged(_) => "security.two_factor_changed",
            Event::TwoFactorFailed(_) => "security.two_factor_failed",
            Event::EtlFailing(_) => "admin.etl_failing",
            Event::VerificationRequested(_) => "account.verification_requested",
            Event::PasswordResetRequested(_) => "account.password_reset_requested",
            Event::SignupAttemptExisting(_) => "account.signup_attempt_existing",
            Event::JobDead(_) => "admin.job_dead",
            Event::UserSuspended(_) => "admin.user_suspended",
            Event::SignupRequested(_) => "admin.signup_requested",
            Event::PaperSignal(_) => "paper.signal",
            Event::PaperFill(_) => "paper.fill",
            Event::PaperOrderCancelled(_) => "paper.order_cancelled",
            Event::PaperStoppedError(_) => "paper.stopped_error",
            Event::PaperDataGap(_) => "paper.data_gap",
            Event::RiskLimitHit(_) => "risk.limit_hit",
            Event::KillSwitchThrown(_) => "kill_switch.thrown",
            Event::KillSwitchReleased(_) => "kill_switch.released",
            Event::BillingPlanChanged(_) => "billing.plan_changed",
            Event::BillingPaymentFailed(_) => "billing.payment_failed",
            Event::BillingTrialEnding(_) => "billing.trial_ending",
            Event::BillingUsageWarning(_) => "billing.usage_warning",
            Event::BillingOverLimit(_) => "billing.over_limit",
        }
    }

    /// The paper run the event is about (per-run preference overrides match it).
    pub fn paper_run(&self) -> Option<&PaperRunRef> {
        match self {
            Event::PaperSignal(PaperSignal { run, .. })
            | Event::PaperFill(PaperFill { run, .. })
            | Event::PaperOrderCancelled(PaperOrderCancelled { run, .. })
            | Event::PaperStoppedError(PaperStoppedError { run, .. })
            | Event::PaperDataGap(PaperDataGap { run, .. })
            | Event::RiskLimitHit(RiskLimitHit { run, .. }) => Some(run),
            _ => None,
        }
    }

    /// The type's catalogue entry.
    ///
    /// # Panics
    /// Never: a unit test checks every variant has one.
    pub fn spec(&self) -> &'static EventSpec {
        catalogue::find(self.type_name()).expect("every event type is in the catalogue")
    }

    /// The user the event is about (its recipient for `user` audience types).
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Event::BacktestFinished(e) => Some(e.user_id),
            Event::BacktestFailed(e) => Some(e.user_id),
            Event::SystemTest(e) => Some(e.user_id),
            Event::WebhookDisabled(e) => Some(e.user_id),
            Event::EmailUndeliverable(e) => Some(e.user_id),
            Event::SigninNewDevice(e) => Some(e.user_id),
            Event::PasswordChanged(e) => Some(e.user_id),
            Event::TokenCreated(e) => Some(e.user_id),
            Event::TwoFactorChanged(e) => Some(e.user_id),
            Event::TwoFactorFailed(e) => Some(e.user_id),
            Event::EtlFailing(_) => None,
            Event::VerificationRequested(e)
            | Event::PasswordResetRequested(e)
            | Event::SignupAttemptExisting(e) => e.user_id,
            // Every administrator.
            Event::JobDead(_) | Event::UserSuspended(_) | Event::SignupRequested(_) => None,
            Event::KillSwitchThrown(e) | Event::KillSwitchReleased(e) => Some(e.user_id),
            Event::BillingPlanChanged(e) => Some(e.user_id),
            Event::BillingPaymentFailed(e) => Some(e.user_id),
            Event::BillingTrialEnding(e) => Some(e.user_id),
            Event::BillingUsageWarning(e) => Some(e.user_id),
            Event::BillingOverLimit(e) => Some(e.user_id),
            paper => paper.paper_run().map(|r| r.user_id),
        }
    }

    /// A second emit with the same key is a no-op (`None`: every emit is a new event).
    pub fn dedupe_key(&self) -> Option<String> {
        match self {
            Event::BacktestFinished(e) => Some(format!("backtest.finished:{}", e.run_id)),
            Event::BacktestFailed(e) => Some(format!("backtest.failed:{}", e.run_id)),
            Event::SystemTest(_) | Event::EmailUndeliverable(_) => None,
            Event::WebhookDisabled(e) => Some(format!("notify.webhook_disabled:{}", e.delivery_id)),
            Event::SigninNewDevice(e) => Some(format!(
                "security.signin_new_device:{}",
                e.session_public_id
            )),
            Event::PasswordChanged(e) => Some(format!("security.password_changed:{}", e.change_id)),
            Event::TokenCreated(e) => Some(format!("security.token_created:{}", e.token_id)),
            Event::TwoFactorFailed(e) => Some(format!(
                "security.two_factor_failed:{}:{}",
                e.user_id, e.window
            )),
            Event::TwoFactorChanged(e) => {
                Some(format!("security.two_factor_changed:{}", e.change_id))
            }
            Event::EtlFailing(e) => Some(format!(
                "admin.etl_failing:{}:{}:{}:{}",
                e.source,
                e.symbol.as_deref().unwrap_or("*"),
                e.timeframe.as_deref().unwrap_or("*"),
                e.hour.timestamp()
            )),
            Event::VerificationRequested(e)
            | Event::PasswordResetRequested(e)
            | Event::SignupAttemptExisting(e) => {
                Some(format!("{}:{}", self.type_name(), e.email_id))
            }
            Event::JobDead(e) => Some(format!("job_dead:{}", e.job_id)),
            Event::UserSuspended(_) => None,
            Event::SignupRequested(e) => Some(format!("admin.signup_requested:{}", e.user_id)),
            // One per run and candle (and side): a replayed candle never notifies twice.
            Event::PaperSignal(e) => Some(format!(
                "paper.signal:{}:{}:{}",
                e.run.run_id,
                e.candle_time.timestamp_millis(),
                e.side
            )),
            Event::PaperFill(e) => Some(format!(
                "paper.fill:{}:{}:{}",
                e.run.run_id,
                e.candle_time.timestamp_millis(),
                e.side
            )),
            Event::PaperOrderCancelled(e) => Some(format!(
                "paper.order_cancelled:{}:{}",
                e.run.run_id,
                e.candle_time.timestamp_millis()
            )),
            Event::PaperStoppedError(e) => Some(format!("paper.stopped_error:{}", e.run.run_id)),
            Event::PaperDataGap(e) => Some(format!(
                "paper.data_gap:{}:{}",
                e.run.run_id,
                e.gap_from.timestamp_millis()
            )),
            // One per run, limit and candle: a recomputed or duplicate step never notifies twice.
            Event::RiskLimitHit(e) => Some(format!(
                "risk.limit_hit:{}:{}:{}",
                e.run.run_id,
                e.limit,
                e.candle_time.timestamp_millis()
            )),
            Event::KillSwitchThrown(e) => {
                Some(format!("kill_switch.thrown:{}:{}", e.switch_id, e.user_id))
            }
            Event::KillSwitchReleased(e) => Some(format!(
                "kill_switch.released:{}:{}",
                e.switch_id, e.user_id
            )),
            Event::BillingPlanChanged(e) => Some(format!("billing.plan_changed:{}", e.change_id)),
            Event::BillingPaymentFailed(e) => {
                Some(format!("billing.payment_failed:{}", e.change_id))
            }
            Event::BillingTrialEnding(e) => Some(format!(
                "billing.trial_ending:{}:{}",
                e.subscription_id,
                e.ends_at.map_or(0, |t| t.timestamp())
            )),
            Event::BillingUsageWarning(e) => Some(format!(
                "billing.usage_warning:{}:{}:{}:{}",
                e.user_id, e.limit, e.percent, e.day
            )),
            Event::BillingOverLimit(e) => {
                // Per allowed value too: a further cut has a notice of its own.
                Some(format!(
                    "billing.over_limit:{}:{}:{}",
                    e.overage_id,
                    e.stage,
                    e.allowed.map_or(-1, |a| a)
                ))
            }
        }
    }

    /// The key bursts are coalesced by (for coalescible types).
    pub fn coalesce_key(&self) -> Option<String> {
        match self {
            Event::BacktestFinished(BacktestFinished { batch_id, .. })
            | Event::BacktestFailed(BacktestFailed { batch_id, .. }) => {
                Some(format!("backtest.batch:{batch_id}"))
            }
            Event::SystemTest(_)
            | Event::WebhookDisabled(_)
            | Event::EmailUndeliverable(_)
            | Event::SigninNewDevice(_)
            | Event::PasswordChanged(_)
            | Event::TokenCreated(_)
            | Event::TwoFactorChanged(_)
            | Event::TwoFactorFailed(_)
            | Event::EtlFailing(_)
            | Event::VerificationRequested(_)
            | Event::PasswordResetRequested(_)
            | Event::SignupAttemptExisting(_) => None,
            Event::JobDead(_) => Some("admin.job_dead".to_owned()),
            Event::UserSuspended(_) | Event::SignupRequested(_) => None,
            Event::PaperSignal(_) | Event::PaperFill(_) | Event::PaperOrderCancelled(_) => self
                .paper_run()
                .map(|r| format!("{}:{}", self.type_name(), r.run_id)),
            Event::PaperStoppedError(_)
            | Event::PaperDataGap(_)
            | Event::RiskLimitHit(_)
            | Event::KillSwitchThrown(_)
            | Event::KillSwitchReleased(_)
            | Event::BillingPlanChanged(_)
            | Event::BillingPaymentFailed(_)
            | Event::BillingTrialEnding(_)
            | Event::BillingUsageWarning(_)
            | Event::BillingOverLimit(_) => None,
        }
    }

    /// The one-line title (≤ 200 characters).
    pub fn title(&self) -> String {
        let t = match self {
            Event::BacktestFinished(e) => format!(
                "Backtest finished: {} on {} {} ({})",
                e.strategy_name,
                e.symbol,
                e.timeframe,
                pct(e.total_return)
            ),
            Event::BacktestFailed(e) => format!(
                "Backtest failed: {} on {} {}",
                e.strategy_name, e.symbol, e.timeframe
            ),
            Event::SystemTest(_) => "Test notification".to_owned(),
            Event::WebhookDisabled(e) => format!("Webhook disabled: {}", e.name),
            Event::EmailUndeliverable(_) => "We cannot deliver email to your address".to_owned(),
            Event::SigninNewDevice(e) => {
                format!("New sign-in to your Vortex account from {}", e.device)
            }
            Event::PasswordChanged(e) if e.reset => "Your Vortex password was reset".to_owned(),
            Event::PasswordChanged(_) => "Your Vortex password was changed".to_owned(),
            Event::TokenCreated(e) => format!("New API token: {}", e.token_name),
            Event::TwoFactorChanged(e) => e.title(),
            Event::TwoFactorFailed(e) => e.title(),
            Event::EtlFailing(e) => match (&e.symbol, &e.timeframe) {
                (Some(s), Some(t)) => format!("Market data failing: {s} {t} from {}", e.source),
                _ => format!("Market data update failing from {}", e.source),
            },
            Event::VerificationRequested(_) => "Email address confirmation sent".to_owned(),
            Event::PasswordResetRequested(_) => "Password reset link sent".to_owned(),
            Event::SignupAttemptExisting(_) => {
                "Sign-up attempt with the account's address".to_owned()
            }
            Event::JobDead(e) => format!("Job gave up: {} ({})", e.kind, e.queue),
            Event::UserSuspended(e) => format!("User suspended: {}", e.email),
            Event::SignupRequested(e) => format!("Sign-up awaiting approval: {}", e.email),
            Event::PaperSignal(e) => e.title(),
            Event::PaperFill(e) => e.title(),
            Event::PaperOrderCancelled(e) => e.title(),
            Event::PaperStoppedError(e) => e.title(),
            Event::PaperDataGap(e) => e.title(),
            Event::RiskLimitHit(e) => e.title(),
            Event::KillSwitchThrown(e) => e.title(true),
            Event::KillSwitchReleased(e) => e.title(false),
            Event::BillingPlanChanged(e) => e.title(),
            Event::BillingPaymentFailed(e) => e.title(),
            Event::BillingTrialEnding(e) => e.title(),
            Event::BillingUsageWarning(e) => e.title(),
            Event::BillingOverLimit(e) => e.title(),
        };
        clip(&t, 200)
    }

    /// A short body for the in-app list (≤ 2 000 characters).
    pub fn body(&self) -> String {
        let b = match self {
            Event::BacktestFinished(e) => format!(
                "{} trades, return {}, max drawdown {}, from {} to {}.",
                e.trade_count,
                pct(e.total_return),
                pct(e.max_drawdown),
                e.range_from.format("%Y-%m-%d"),
                e.range_to.format("%Y-%m-%d"),
            ),
            Event::BacktestFailed(e) => e.error.clone(),
            Event::SystemTest(e) => {
                if e.note.is_empty() {
                    format!("Sent by {}: notifications reach you here.", e.sent_by)
                } else {
                    format!("Sent by {}: {}", e.sent_by, e.note)
                }
            }
            Event::WebhookDisabled(e) => {
                if e.reason == "gone" {
                    "The destination says this webhook no longer exists (HTTP 410 or 404), so nothing more is \
                     sent to it. Enable it again once it is fixed."
                        .to_owned()
                } else {
                    "Deliveries to this webhook failed too many times in a row, so nothing more is sent to it. \
                     Check the delivery log, fix the receiver and enable it again."
                        .to_owned()
                }
            }
            Event::EmailUndeliverable(e) => format!(
                "The mail server refused your address for good{}: {}. No more email is sent to it until you \
                 check the address and retry.",
                e.smtp_code.map(|c| format!(" ({c})")).unwrap_or_default(),
                e.smtp_message
            ),
            Event::SigninNewDevice(e) => format!(
                "Someone signed in to your account from {} at address {} on {} UTC. If this was you,                  nothing needs doing. If not, reset your password and end that session on your account page.",
                e.device,
                e.ip,
                e.at.format("%Y-%m-%d %H:%M")
            ),
            Event::PasswordChanged(e) => {
                let how = if e.reset {
                    "reset through an emailed link"
                } else {
                    "changed"
                };
                let what = if e.everywhere {
                    format!(
                        "Every session was signed out and every API token was revoked ({} session(s), {} \
                         token(s)); create new tokens for your scripts on your account page.",
                        e.sessions_ended, e.tokens_revoked
                    )
                } else {
                    "Your other sessions and your API tokens still work; you can end them on your account \
                     page."
                        .to_owned()
                };
                format!(
                    "The password of your Vortex account was just {how}. {what} If this was not you, reset \
                     your password now and review your sessions and API tokens."
                )
            }
            Event::TokenCreated(e) => format!(
                "An API token named \"{}\" with {} access was created on your account{}. If this was not \
                 you, revoke it on your account page and change your password.",
                e.token_name,
                if e.scope == "read" {
                    "read-only"
                } else {
                    "read-write"
                },
                e.expires_at
                    .map(|t| format!(" (it expires on {})", t.format("%Y-%m-%d")))
                    .unwrap_or_default()
            ),
            Event::TwoFactorChanged(e) => e.body(),
            Event::TwoFactorFailed(e) => e.body(),
            Event::EtlFailing(e) => format!(
                "The {} job gave up after its last attempt: {}. Candles stop arriving until the source \
                 answers again; check the source, the workers' logs and the failed jobs.",
                e.job_kind, e.last_error
            ),
            Event::VerificationRequested(_)
            | Event::PasswordResetRequested(_)
            | Event::SignupAttemptExisting(_) => {
                "An account email with a one-time link or notice was sent to the address."
                    .to_owned()
            }
            Event::JobDead(e) => format!(
                "Job {} ({} on queue {}) spent its attempts and is marked failed: {}. Inspect it with \
                 `vortex jobs show {}` and retry it once the cause is fixed.",
                e.job_id, e.kind, e.queue, e.last_error, e.job_id
            ),
            Event::UserSuspended(e) => format!(
                "{} was suspended by {}{}: {}. Their sessions ended, their API tokens were revoked and their \
                 paper runs paused; lift it on the user's admin page.",
                e.email,
                e.by,
                e.until
                    .map(|t| format!(" until {}", t.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default(),
                e.reason
            ),
            Event::SignupRequested(e) => format!(
                "{} (at {}) asks for an account: {}. Approve or reject it on the pending sign-ups page; the \
                 account cannot sign in until then.",
                e.email, e.domain, e.reason
            ),
            Event::PaperSignal(e) => e.body(),
            Event::PaperFill(e) => e.body(),
            Event::PaperOrderCancelled(e) => e.body(),
            Event::PaperStoppedError(e) => e.body(),
            Event::PaperDataGap(e) => e.body(),
            Event::RiskLimitHit(e) => e.body(),
            Event::KillSwitchThrown(e) => e.body(true),
            Event::KillSwitchReleased(e) => e.body(false),
            Event::BillingPlanChanged(e) => e.body(),
            Event::BillingPaymentFailed(e) => e.body(),
            Event::BillingTrialEnding(e) => e.body(),
            Event::BillingUsageWarning(e) => e.body(),
            Event::BillingOverLimit(e) => e.body(),
        };
        clip(&b, 2000)
    }

    /// Where the notification leads: a path on this site.
    pub fn url(&self) -> Option<String> {
        match self {
            Event::BacktestFinished(BacktestFinished { run_id, .. })
            | Event::BacktestFailed(BacktestFailed { run_id, .. }) => {
                Some(format!("/backtests/{run_id}"))
            }
            Event::SystemTest(_) => Some("/notifications".to_owned()),
            Event::WebhookDisabled(_) => Some("/notifications/settings".to_owned()),
            Event::EmailUndeliverable(_)
            | Event::SigninNewDevice(_)
            | Event::PasswordChanged(_)
            | Event::TokenCreated(_)
            | Event::TwoFactorChanged(_)
            | Event::TwoFactorFailed(_) => Some("/account".to_owned()),
            Event::EtlFailing(_) => Some("/market".to_owned()),
            Event::VerificationRequested(_)
            | Event::PasswordResetRequested(_)
            | Event::SignupAttemptExisting(_) => None,
            // No admin job page yet: the notification centre.
            Event::JobDead(_) => Some("/admin/jobs".to_owned()),
            Event::UserSuspended(e) => Some(format!("/admin/users/{}", e.user_id)),
            Event::SignupRequested(_) => Some("/admin/signups".to_owned()),
            Event::KillSwitchThrown(e) | Event::KillSwitchReleased(e) => Some(e.url()),
            Event::BillingPlanChanged(_)
            | Event::BillingPaymentFailed(_)
            | Event::BillingTrialEnding(_)
            | Event::BillingUsageWarning(_)
            | Event::BillingOverLimit(_) => Some("/account/plan".to_owned()),
            paper => paper.paper_run().map(PaperRunRef::url),
        }
    }

    /// A sample of `type_name` for `user_id` (tests, previews, "send a test").
    pub fn sample(type_name: &str, user_id: Uuid) -> Option<Event> {
        let run_id = Uuid::from_u128(0x5a4d_91e2);
        let t0 = DateTime::parse_from_rfc3339("2019-10-11T00:00:00Z")
            .ok()?
            .to_utc();
        Some(match type_name {
            "backtest.finished" => Event::BacktestFinished(BacktestFinished {
                user_id,
                run_id,
                batch_id: run_id,
                strategy_id: run_id,
                strategy_name: "MACD crossover".into(),
                symbol: "ETHBTC".into(),
                timeframe: "5m".into(),
                range_from: t0,
                range_to: t0 + chrono::Duration::days(2),
                total_return: Some(0.0412),
                sharpe: Some(1.3),
                max_drawdown: Some(-0.021),
                trade_count: 17,
                final_equity: Some(10_412.0),
                sparkline: (0..SPARKLINE_POINTS)
                    .map(|i| 10_000.0 + (i as f32 * 0.3).sin() * 50.0 + i as f32 * 2.0)
                    .collect(),
            }),
            "backtest.failed" => Event::BacktestFailed(BacktestFailed {
                user_id,
                run_id,
                batch_id: run_id,
                strategy_name: "MACD crossover".into(),
                symbol: "ETHBTC".into(),
                timeframe: "5m".into(),
                error: "only 1 candle(s) are stored for this range now; load market data for it and run again"
                    .into(),
            }),
            "system.test" => Event::SystemTest(SystemTest {
                user_id,
                sent_by: "self".into(),
                note: String::new(),
                channel: None,
            }),
            "notify.webhook_disabled" => Event::WebhookDisabled(WebhookDisabled {
                user_id,
                webhook_id: run_id,
                name: "Team channel".into(),
                reason: "failing".into(),
                delivery_id: run_id,
            }),
            "notify.email_undeliverable" => Event::EmailUndeliverable(EmailUndeliverable {
                user_id,
                smtp_code: Some(550),
                smtp_message: "5.1.1 no such user".into(),
            }),
            "security.signin_new_device" => Event::SigninNewDevice(SigninNewDevice {
                user_id,
                ip: "203.0.113.7".into(),
                device: "Firefox on Linux".into(),
                at: t0,
                session_public_id: "a1b2c3d4".into(),
            }),
            "security.password_changed" => Event::PasswordChanged(PasswordChanged {
                user_id,
                reset: false,
                everywhere: true,
                sessions_ended: 2,
                tokens_revoked: 1,
                change_id: run_id,
            }),
            "security.token_created" => Event::TokenCreated(TokenCreated {
                user_id,
                token_id: run_id,
                token_name: "backtest script".into(),
                scope: "read".into(),
                expires_at: Some(t0 + chrono::Duration::days(90)),
            }),
            "security.two_factor_changed" => Event::TwoFactorChanged(TwoFactorChanged {
                user_id,
                change: "enabled".into(),
                change_id: run_id,
            }),
            "security.two_factor_failed" => Event::TwoFactorFailed(TwoFactorFailed {
                user_id,
                ip: "203.0.113.7".into(),
                device: "Firefox on Linux".into(),
                at: t0,
                failures: 5,
                locked: false,
                window: 1_996_480,
            }),
            "admin.etl_failing" => Event::EtlFailing(EtlFailing {
                source: "binance".into(),
                symbol: Some("ETHBTC".into()),
                timeframe: Some("1m".into()),
                job_id: run_id,
                job_kind: "market_chunk".into(),
                last_error: "the source answered 503 Service Unavailable".into(),
                hour: t0,
            }),
            "account.verification_requested" => Event::VerificationRequested(FlowMail {
                user_id: Some(user_id),
                email_id: run_id,
            }),
            "account.password_reset_requested" => Event::PasswordResetRequested(FlowMail {
                user_id: Some(user_id),
                email_id: run_id,
            }),
            "account.signup_attempt_existing" => Event::SignupAttemptExisting(FlowMail {
                user_id: Some(user_id),
                email_id: run_id,
            }),
            "admin.job_dead" => Event::JobDead(JobDead {
                job_id: run_id,
                kind: "market_update".into(),
                queue: "market".into(),
                last_error: "exchange answered 503 for an hour".into(),
            }),
            "admin.user_suspended" => Event::UserSuspended(UserSuspended {
                user_id,
                email: "t…@example.org".into(),
                by: "r…@example.org".into(),
                reason: "chargeback under review".into(),
                until: Some(t0 + chrono::Duration::days(7)),
            }),
            "admin.signup_requested" => Event::SignupRequested(SignupRequested {
                user_id,
                email: "a…@example.org".into(),
                domain: "example.org".into(),
                reason: "I run the research desk at Example and want to test our strategies".into(),
            }),
            "paper.signal" => Event::PaperSignal(PaperSignal {
                run: paper::sample_run(user_id, run_id),
                side: "buy".into(),
                rule: "entry long when crosses_above(fast_ma, slow_ma)".into(),
                candle_time: t0,
                close: 0.021_43,
            }),
            "paper.fill" => Event::PaperFill(PaperFill {
                run: paper::sample_run(user_id, run_id),
                side: "sell".into(),
                price: 0.021_57,
                units: 463.1,
                fee: 0.009_99,
                reason: "signal".into(),
                pnl: Some(0.045),
                candle_time: t0,
            }),
            "paper.order_cancelled" => Event::PaperOrderCancelled(PaperOrderCancelled {
                run: paper::sample_run(user_id, run_id),
                side: "buy".into(),
                gate: "halt".into(),
                candle_time: t0,
            }),
            "paper.stopped_error" => Event::PaperStoppedError(PaperStoppedError {
                run: paper::sample_run(user_id, run_id),
                error: "the run reached its limit of 200000 candles; start a new run".into(),
            }),
            "paper.data_gap" => Event::PaperDataGap(PaperDataGap {
                run: paper::sample_run(user_id, run_id),
                gap_from: t0,
                gap_to: t0 + chrono::Duration::minutes(3),
                candles: 3,
            }),
            "risk.limit_hit" => Event::RiskLimitHit(RiskLimitHit {
                run: paper::sample_run(user_id, run_id),
                limit: "max_drawdown".into(),
                value: 21.3,
                threshold: 20.0,
                mode: "halt".into(),
                reason: "drawdown 21.30 % from the peak equity 10250 reached the limit of 20 %".into(),
                candle_time: t0,
                until: None,
            }),
            "kill_switch.thrown" | "kill_switch.released" => {
                let change = KillSwitchChange {
                    user_id,
                    switch_id: run_id,
                    scope: "platform".into(),
                    run_id: None,
                    mode: "halt".into(),
                    reason: "exchange maintenance at 02:00 UTC".into(),
                    by: "an administrator".into(),
                };
                if type_name == "kill_switch.thrown" {
                    Event::KillSwitchThrown(change)
                } else {
                    Event::KillSwitchReleased(change)
                }
            }
            "billing.plan_changed" => Event::BillingPlanChanged(BillingPlanChanged {
                user_id,
                from: "Free".into(),
                to: "Pro".into(),
                status: "active".into(),
                effective_at: t0,
                change_id: "evt_sample".into(),
            }),
            "billing.payment_failed" => Event::BillingPaymentFailed(BillingPaymentFailed {
                user_id,
                plan: "Pro".into(),
                amount_minor: Some(1900),
                currency: Some("usd".into()),
                retry_at: Some(t0 + chrono::Duration::days(3)),
                status: "past_due".into(),
                change_id: "evt_sample".into(),
            }),
            "billing.trial_ending" => Event::BillingTrialEnding(BillingTrialEnding {
                user_id,
                plan: "Pro".into(),
                ends_at: Some(t0 + chrono::Duration::days(3)),
                subscription_id: "sub_sample".into(),
            }),
            "billing.usage_warning" => Event::BillingUsageWarning(BillingUsageWarning {
                user_id,
                limit: "backtests_per_day".into(),
                label: "backtests per day".into(),
                usage: 40,
                value: 50,
                percent: 80,
                plan: "Free".into(),
                day: "2026-01-02".into(),
            }),
            "billing.over_limit" => Event::BillingOverLimit(BillingOverLimit {
                user_id,
                overage_id: run_id,
                stage: "enforced".into(),
                limit: "active_paper_runs".into(),
                label: "active paper runs".into(),
                usage: 3,
                allowed: Some(1),
                plan: "Free".into(),
                grace_ends_at: t0 + chrono::Duration::days(7),
                restricted: vec![
                    "MACD crossover on ETHBTC 5m".into(),
                    "SMA 3/8 on ETHBTC 5m".into(),
                ],
                restricted_count: 2,
            }),
            _ => return None,
        })
    }
}

/// Thins a series to at most [`SPARKLINE_POINTS`] finite points (every n-th, the last one kept).
pub fn sparkline(values: &[f64]) -> Vec<f32> {
    #[allow(clippy::cast_possible_truncation)]
    let f = |v: f64| v as f32;
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let values = finite.as_slice();
    if values.len() <= SPARKLINE_POINTS {
        return values.iter().copied().map(f).collect();
    }
    let step = values.len().div_ceil(SPARKLINE_POINTS);
    let mut out: Vec<f32> = values.iter().step_by(step).copied().map(f).collect();
    if let (Some(last), Some(&v)) = (out.last_mut(), values.last())
        && !(values.len() - 1).is_multiple_of(step)
    {
        *last = f(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notif_every_event_type_has_a_spec_a_sample_and_round_trips_through_json() {
        let user = Uuid::from_u128(7);
        for &t in TYPES {
            let e = Event::sample(t, user).unwrap_or_else(|| panic!("no sample for {t}"));
            assert_eq!(e.type_name(), t);
            assert_eq!(e.spec().name, t);
            let json = serde_json::to_value(&e).unwrap();
            assert_eq!(json["type"], t);
            assert_eq!(serde_json::from_value::<Event>(json).unwrap(), e);
            assert!(!e.title().is_empty() && e.title().chars().count() <= 200);
            assert!(e.body().chars().count() <= 2000);
            assert!(e.url().is_none_or(|u| u.starts_with('/')));
            if e.spec().audience == catalogue::Audience::User {
                assert_eq!(e.user_id(), Some(user));
            }
            assert_eq!(e.coalesce_key().is_some(), e.spec().coalescible, "{t}");
        }
        assert!(Event::sample("nope", user).is_none());
    }

    #[test]
    fn notif_titles_are_clipped_and_sparklines_thinned() {
        let mut e = Event::sample("backtest.failed", Uuid::nil()).unwrap();
        if let Event::BacktestFailed(p) = &mut e {
            p.strategy_name = "x".repeat(10_000);
            p.error = "y".repeat(10_000);
        }
        assert_eq!(e.title().chars().count(), 200);
        assert_eq!(e.body().chars().count(), 2000);
        let long: Vec<f64> = (0..1001).map(f64::from).collect();
        let s = sparkline(&long);
        assert!(s.len() <= SPARKLINE_POINTS && s.len() > 150, "{}", s.len());
        assert_eq!(s[0], 0.0);
        assert_eq!(*s.last().unwrap(), 1000.0);
        assert_eq!(sparkline(&[1.0, 2.0]), vec![1.0, 2.0]);
    }
}
