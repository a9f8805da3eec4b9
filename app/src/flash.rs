//! The outcome a form handler redirects with (`?ok=<code>` or `?error=<code>`) and the page shows: one enum
//! shared by the form handlers in `server` and the pages in `app`, so a code cannot be misspelt on one side.

/// A form's outcome, carried in the redirect's query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flash {
    CheckEmail,
    Verified,
    SignedOut,
    PasswordReset,
    Sent,
    Profile,
    Password,
    SessionRevoked,
    TokenCreated,
    TokenRevoked,
    VerificationSent,
    StrategyCreated,
    StrategySaved,
    StrategyUnchanged,
    StrategyDuplicated,
    StrategyArchived,
    StrategyDeleted,
    StrategyRestored,
    DraftDiscarded,
    CancelRequested,
    Unsubscribed,
    AllRead,
    PrefsSaved,
    WebhookCreated,
    WebhookTestOk,
    WebhookEnabled,
    WebhookRotated,
    WebhookDeleted,
    EmailRetried,
    AdminTestSent,
    AdminCleared,
    AdminNotMarked,
    AdminSuspended,
    AdminUnsuspended,
    AdminRoleChanged,
    AdminSignedOut,
    AdminBulkDone,
    AdminVerificationSent,
    AdminUserDeleted,
    AdminPlanAssigned,
    AdminPlanSaved,
    AdminCatalogueSaved,
    AdminJobRetried,
    AdminJobCancelled,
    AdminMarketTracked,
    AdminMarketUpdate,
    AdminMarketBackfill,
    AdminHousekeeping,
    AdminReconcileQueued,
    AdminSwitchThrown,
    AdminSwitchReleased,
    AdminSettingsSaved,
    AdminInviteCreated,
    AccountDeleted,
    EmailChangeSent,
    EmailChanged,
    TwoFactorStarted,
    TwoFactorEnabled,
    TwoFactorDisabled,
    TwoFactorCodes,
    AdminTwoFactorReset,
    SignupPending,
    AdminSignupApproved,
    AdminSignupRejected,
    AdminApproverChanged,
    PaperPaused,
    PaperResumed,
    PaperStopped,
    PaperStopping,
    PaperRiskChanged,
    PaperRiskReleased,
    PaperSignalsChanged,
    PaperSwitchThrown,
    PaperSwitchReleased,
    // errors
    Invalid,
    StrategyInvalid,
    StrategyStale,
    StrategyIsArchived,
    StrategyDraftStale,
    StrategyQuota,
    StrategyReadOnly,
    StrategyInUse,
    StrategyDeleteUnconfirmed,
    StrategyName,
    StrategyDescription,
    StrategyTemplate,
    StrategySource,
    AlreadyFinished,
    SigninRequired,
    Email,
    DisplayName,
    TimeZone,
    InvalidToken,
    CurrentPassword,
    ReadOnly,
    TokenName,
    TokenScope,
    TokenExpiry,
    TokenExists,
    TokenUnverified,
    PasswordShort,
    PasswordLong,
    PasswordCommon,
    PasswordRepetitive,
    PasswordEmail,
    PasswordControl,
    UnsubscribeInvalid,
    PrefsInvalid,
    WebhookInvalid,
    WebhookTestFailed,
    AdminRefused,
    PaperNotNow,
    PaperFormInvalid,
    ConfirmEmail,
    NewEmail,
    TwoFactorCode,
    TwoFactorExpired,
    TwoFactorRequired,
    TwoFactorState,
    SignupReason,
}

impl Flash {
    /// Every outcome.
    pub const ALL: &[Flash] = &[
        Flash::CheckEmail,
        Flash::Verified,
        Flash::SignedOut,
        Flash::PasswordReset,
        Flash::Sent,
        Flash::Profile,
        Flash::Password,
        Flash::SessionRevoked,
        Flash::TokenCreated,
        Flash::TokenRevoked,
        Flash::VerificationSent,
        Flash::StrategyCreated,
        Flash::StrategySaved,
        Flash::StrategyUnchanged,
        Flash::StrategyDuplicated,
        Flash::StrategyArchived,
        Flash::StrategyDeleted,
        Flash::StrategyRestored,
        Flash::DraftDiscarded,
        Flash::CancelRequested,
        Flash::Unsubscribed,
        Flash::AllRead,
        Flash::PrefsSaved,
        Flash::WebhookCreated,
        Flash::WebhookTestOk,
        Flash::WebhookEnabled,
        Flash::WebhookRotated,
        Flash::WebhookDeleted,
        Flash::EmailRetried,
        Flash::AdminTestSent,
        Flash::AdminCleared,
        Flash::AdminNotMarked,
        Flash::AdminSuspended,
        Flash::AdminUnsuspended,
        Flash::AdminRoleChanged,
        Flash::AdminSignedOut,
        Flash::AdminBulkDone,
        Flash::AdminVerificationSent,
        Flash::AdminUserDeleted,
        Flash::AdminPlanAssigned,
        Flash::AdminPlanSaved,
        Flash::AdminCatalogueSaved,
        Flash::AdminJobRetried,
        Flash::AdminJobCancelled,
        Flash::AdminMarketTracked,
        Flash::AdminMarketUpdate,
        Flash::AdminMarketBackfill,
        Flash::AdminHousekeeping,
        Flash::AdminReconcileQueued,
        Flash::AdminSwitchThrown,
        Flash::AdminSwitchReleased,
        Flash::AdminSettingsSaved,
        Flash::AdminInviteCreated,
        Flash::AccountDeleted,
        Flash::EmailChangeSent,
        Flash::EmailChanged,
        Flash::TwoFactorStarted,
        Flash::TwoFactorEnabled,
        Flash::TwoFactorDisabled,
        Flash::TwoFactorCodes,
        Flash::AdminTwoFactorReset,
        Flash::SignupPending,
        Flash::AdminSignupApproved,
        Flash::AdminSignupRejected,
        Flash::AdminApproverChanged,
        Flash::SignupReason,
        Flash::PaperPaused,
        Flash::PaperResumed,
        Flash::PaperStopped,
        Flash::PaperStopping,
        Flash::PaperRiskChanged,
        Flash::PaperRiskReleased,
        Flash::PaperSignalsChanged,
        Flash::PaperSwitchThrown,
        Flash::PaperSwitchReleased,
        Flash::Invalid,
        Flash::StrategyInvalid,
        Flash::StrategyStale,
        Flash::StrategyIsArchived,
        Flash::StrategyDraftStale,
        Flash::StrategyQuota,
        Flash::StrategyReadOnly,
        Flash::StrategyInUse,
        Flash::StrategyDeleteUnconfirmed,
        Flash::StrategyName,
        Flash::StrategyDescription,
        Flash::StrategyTemplate,
        Flash::StrategySource,
        Flash::AlreadyFinished,
        Flash::SigninRequired,
        Flash::Email,
        Flash::DisplayName,
        Flash::TimeZone,
        Flash::InvalidToken,
        Flash::CurrentPassword,
        Flash::ReadOnly,
        Flash::TokenName,
        Flash::TokenScope,
        Flash::TokenExpiry,
        Flash::TokenExists,
        Flash::TokenUnverified,
        Flash::PasswordShort,
        Flash::PasswordLong,
        Flash::PasswordCommon,
        Flash::PasswordRepetitive,
        Flash::PasswordEmail,
        Flash::PasswordControl,
        Flash::UnsubscribeInvalid,
        Flash::PrefsInvalid,
        Flash::WebhookInvalid,
        Flash::WebhookTestFailed,
        Flash::AdminRefused,
        Flash::PaperNotNow,
        Flash::PaperFormInvalid,
        Flash::ConfirmEmail,
        Flash::NewEmail,
        Flash::TwoFactorCode,
        Flash::TwoFactorExpired,
        Flash::TwoFactorRequired,
        Flash::TwoFactorState,
    ];

    /// The code in the query string.
    pub fn code(self) -> &'static str {
        match self {
            Flash::CheckEmail => "check_email",
            Flash::Verified => "verified",
            Flash::SignedOut => "signed_out",
            Flash::PasswordReset => "password_reset",
            Flash::Sent => "sent",
            Flash::Profile => "profile",
            Flash::Password => "password",
            Flash::SessionRevoked => "session_revoked",
            Flash::TokenCreated => "token_created",
            Flash::TokenRevoked => "token_revoked",
            Flash::VerificationSent => "verification_sent",
            Flash::StrategyCreated => "strategy_created",
            Flash::StrategySaved => "strategy_saved",
            Flash::StrategyUnchanged => "strategy_unchanged",
            Flash::StrategyDuplicated => "strategy_duplicated",
            Flash::StrategyArchived => "strategy_archived",
            Flash::StrategyDeleted => "strategy_deleted",
            Flash::StrategyRestored => "strategy_restored",
            Flash::DraftDiscarded => "draft_discarded",
            Flash::CancelRequested => "cancel_requested",
            Flash::Invalid => "invalid",
            Flash::StrategyInvalid => "strategy_invalid",
            Flash::StrategyStale => "strategy_stale",
            Flash::StrategyIsArchived => "strategy_is_archived",
            Flash::StrategyDraftStale => "strategy_draft_stale",
            Flash::StrategyQuota => "strategy_quota",
            Flash::StrategyReadOnly => "strategy_read_only",
            Flash::StrategyInUse => "strategy_in_use",
            Flash::StrategyDeleteUnconfirmed => "strategy_delete_unconfirmed",
            Flash::StrategyName => "strategy_name",
            Flash::StrategyDescription => "strategy_description",
            Flash::StrategyTemplate => "strategy_template",
            Flash::StrategySource => "strategy_source",
            Flash::AlreadyFinished => "already_finished",
            Flash::SigninRequired => "signin_required",
            Flash::Email => "email",
            Flash::DisplayName => "display_name",
            Flash::TimeZone => "time_zone",
            Flash::InvalidToken => "invalid_token",
            Flash::CurrentPassword => "current_password",
            Flash::ReadOnly => "read_only",
            Flash::TokenName => "token_name",
            Flash::TokenScope => "token_scope",
            Flash::TokenExpiry => "token_expiry",
            Flash::TokenExists => "token_exists",
            Flash::TokenUnverified => "token_unverified",
            Flash::PasswordShort => "password_short",
            Flash::PasswordLong => "password_long",
            Flash::PasswordCommon => "password_common",
            Flash::PasswordRepetitive => "password_repetitive",
            Flash::PasswordEmail => "password_email",
            Flash::PasswordControl => "password_control",
            Flash::Unsubscribed => "unsubscribed",
            Flash::AllRead => "all_read",
            Flash::PrefsSaved => "prefs_saved",
            Flash::WebhookCreated => "webhook_created",
            Flash::WebhookTestOk => "webhook_test_ok",
            Flash::WebhookEnabled => "webhook_enabled",
            Flash::WebhookRotated => "webhook_rotated",
            Flash::WebhookDeleted => "webhook_deleted",
            Flash::EmailRetried => "email_retried",
            Flash::UnsubscribeInvalid => "unsubscribe_invalid",
            Flash::PrefsInvalid => "prefs_invalid",
            Flash::WebhookInvalid => "webhook_invalid",
            Flash::PaperPaused => "paper_paused",
            Flash::PaperResumed => "paper_resumed",
            Flash::PaperStopped => "paper_stopped",
            Flash::PaperStopping => "paper_stopping",
            Flash::PaperNotNow => "paper_not_now",
            Flash::PaperRiskChanged => "paper_risk_changed",
            Flash::PaperRiskReleased => "paper_risk_released",
            Flash::PaperSignalsChanged => "paper_signals_changed",
            Flash::PaperSwitchThrown => "paper_switch_thrown",
            Flash::PaperSwitchReleased => "paper_switch_released",
            Flash::PaperFormInvalid => "paper_form_invalid",
            Flash::WebhookTestFailed => "webhook_test_failed",
            Flash::AdminTestSent => "admin_test_sent",
            Flash::AdminCleared => "admin_cleared",
            Flash::AdminNotMarked => "admin_not_marked",
            Flash::AdminSuspended => "admin_suspended",
            Flash::AdminUnsuspended => "admin_unsuspended",
            Flash::AdminRoleChanged => "admin_role_changed",
            Flash::AdminSignedOut => "admin_signed_out",
            Flash::AdminBulkDone => "admin_bulk_done",
            Flash::AdminVerificationSent => "admin_verification_sent",
            Flash::AdminUserDeleted => "admin_user_deleted",
            Flash::AdminPlanAssigned => "admin_plan_assigned",
            Flash::AdminPlanSaved => "admin_plan_saved",
            Flash::AdminCatalogueSaved => "admin_catalogue_saved",
            Flash::AdminJobRetried => "admin_job_retried",
            Flash::AdminJobCancelled => "admin_job_cancelled",
            Flash::AdminMarketTracked => "admin_market_tracked",
            Flash::AdminMarketUpdate => "admin_market_update",
            Flash::AdminMarketBackfill => "admin_market_backfill",
            Flash::AdminHousekeeping => "admin_housekeeping",
            Flash::AdminReconcileQueued => "admin_reconcile_queued",
            Flash::AdminSwitchThrown => "admin_switch_thrown",
            Flash::AdminSwitchReleased => "admin_switch_released",
            Flash::AdminSettingsSaved => "admin_settings_saved",
            Flash::AdminInviteCreated => "admin_invite_created",
            Flash::AdminRefused => "admin_refused",
            Flash::AccountDeleted => "account_deleted",
            Flash::ConfirmEmail => "confirm_email",
            Flash::EmailChangeSent => "email_change_sent",
            Flash::EmailChanged => "email_changed",
            Flash::NewEmail => "new_email",
            Flash::TwoFactorStarted => "two_factor_started",
            Flash::TwoFactorEnabled => "two_factor_enabled",
            Flash::TwoFactorDisabled => "two_factor_disabled",
            Flash::TwoFactorCodes => "two_factor_codes",
            Flash::AdminTwoFactorReset => "admin_two_factor_reset",
            Flash::SignupPending => "signup_pending",
            Flash::AdminSignupApproved => "admin_signup_approved",
            Flash::AdminSignupRejected => "admin_signup_rejected",
            Flash::AdminApproverChanged => "admin_approver_changed",
            Flash::SignupReason => "signup_reason",
            Flash::TwoFactorCode => "two_factor_code",
            Flash::TwoFactorExpired => "two_factor_expired",
            Flash::TwoFactorRequired => "two_factor_required",
            Flash::TwoFactorState => "two_factor_state",
        }
    }

    /// Whether this outcome is an error (`?error=`) rather than a success (`?ok=`).
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Flash::Invalid
                | Flash::StrategyInvalid
                | Flash::StrategyStale
                | Flash::StrategyIsArchived
                | Flash::StrategyDraftStale
                | Flash::StrategyQuota
                | Flash::StrategyReadOnly
                | Flash::StrategyInUse
                | Flash::StrategyDeleteUnconfirmed
                | Flash::StrategyName
                | Flash::StrategyDescription
                | Flash::StrategyTemplate
                | Flash::StrategySource
                | Flash::AlreadyFinished
                | Flash::SigninRequired
                | Flash::Email
                | Flash::DisplayName
                | Flash::TimeZone
                | Flash::InvalidToken
                | Flash::CurrentPassword
                | Flash::ReadOnly
                | Flash::TokenName
                | Flash::TokenScope
                | Flash::TokenExpiry
                | Flash::TokenExists
                | Flash::TokenUnverified
                | Flash::PasswordShort
                | Flash::PasswordLong
                | Flash::PasswordCommon
                | Flash::PasswordRepetitive
                | Flash::PasswordEmail
                | Flash::PasswordControl
                | Flash::UnsubscribeInvalid
                | Flash::PrefsInvalid
                | Flash::WebhookInvalid
                | Flash::WebhookTestFailed
                | Flash::AdminRefused
                | Flash::PaperNotNow
                | Flash::PaperFormInvalid
                | Flash::ConfirmEmail
                | Flash::NewEmail
                | Flash::TwoFactorCode
                | Flash::TwoFactorExpired
                | Flash::TwoFactorRequired
                | Flash::TwoFactorState
                | Flash::SignupReason
        )
    }

    /// The outcome named by a query-string code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.code() == code)
    }

    /// `ok=<code>` or `error=<code>`, for a redirect's query string.
    pub fn query(self) -> String {
        format!(
            "{}={}",
            if self.is_error() { "error" } else { "ok" },
            self.code()
        )
    }

    /// `path?ok=<code>` (or `&` when `path` has a query already).
    pub fn redirect_to(self, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}{}", self.query())
    }

    /// The sentence the page shows.
    pub fn message(self) -> &'static str {
        match self {
            Flash::AccountDeleted => {
                "Your account was deleted. The audit trail keeps its entries about it, without your address."
            }
            Flash::ConfirmEmail => {
                "Nothing was deleted: type your account's email address exactly to confirm."
            }
            Flash::EmailChangeSent => {
                "A confirmation link is on its way to the new address. Your address changes when you open it (within 24 hours)."
            }
            Flash::EmailChanged => "Your email address was changed. The old address was told.",
            Flash::NewEmail => {
                "That new address cannot be used: it is not a valid address, it is your current one, or another account has it."
            }
            Flash::TwoFactorStarted => {
                "Add the secret below to your authenticator app, then enter the code it shows to turn two-factor sign-in on."
            }
            Flash::TwoFactorEnabled => {
                "Two-factor sign-in is on. Save your recovery codes now: they are shown only once."
            }
            Flash::TwoFactorDisabled => "Two-factor sign-in is off.",
            Flash::TwoFactorCodes => {
                "New recovery codes were made; the old ones no longer work. Save them now: they are shown only once."
            }
            Flash::SignupPending => {
                "Thanks! Check your inbox for a link to confirm your email address. An administrator reviews your request; you will get an email when it is decided, and can sign in once it is approved."
            }
            Flash::AdminSignupApproved => {
                "The sign-up was approved; the applicant was told by email and can sign in."
            }
            Flash::AdminSignupRejected => {
                "The sign-up was rejected and the account deleted; the applicant was mailed your reason."
            }
            Flash::AdminApproverChanged => "Saved: who is notified of new sign-up requests.",
            Flash::SignupReason => {
                "Sign-ups on this instance are approved by an administrator: say why you want an account (at most 1000 characters)."
            }
            Flash::AdminTwoFactorReset => {
                "The user's two-factor sign-in was turned off; they were told by email."
            }
            Flash::TwoFactorCode => {
                "The code is not correct: enter the 6-digit code your authenticator app shows now, or an unused recovery code."
            }
            Flash::TwoFactorExpired => {
                "This sign-in expired or used up its attempts: sign in again with your password."
            }
            Flash::TwoFactorRequired => {
                "Administrators of this instance must turn on two-factor sign-in before anything else: do it below."
            }
            Flash::TwoFactorState => {
                "Nothing was changed: two-factor sign-in is not in the state this form expects (reload the page)."
            }
            Flash::CheckEmail => {
                "Thanks! Check your inbox for a link to confirm your email address, then sign in."
            }
            Flash::Verified => "Your email address is confirmed.",
            Flash::SignedOut => "You are signed out.",
            Flash::PasswordReset => {
                "Your password was changed and all sessions were signed out. Sign in with the new password."
            }
            Flash::Sent => {
                "If an account exists for that address, we sent a link to reset the password. It expires in 30 minutes."
            }
            Flash::Profile => "Profile saved.",
            Flash::Password => "Password changed.",
            Flash::SessionRevoked => "The session was signed out.",
            Flash::TokenCreated => "API token created. Copy it now: it is shown only once.",
            Flash::TokenRevoked => "The API token was revoked.",
            Flash::VerificationSent => "We sent a new confirmation link.",
            Flash::StrategyCreated => "Strategy created. Edit it below or run a backtest.",
            Flash::StrategySaved => "Saved as a new version.",
            Flash::StrategyUnchanged => {
                "Saved. The source did not change, so no new version was made."
            }
            Flash::StrategyDuplicated => "This is your copy of the strategy.",
            Flash::StrategyArchived => "The strategy was archived. Its runs are kept.",
            Flash::StrategyDeleted => {
                "The strategy was deleted for good, with its versions, backtests and finished paper runs."
            }
            Flash::StrategyRestored => "The strategy was restored.",
            Flash::DraftDiscarded => {
                "The draft was discarded; the editor shows the newest saved version."
            }
            Flash::CancelRequested => "Cancelling the backtest.",
            Flash::Invalid => "The email or password is not correct.",
            Flash::StrategyInvalid => {
                "The strategy does not compile, so it was not saved as a version. Your edit is kept as a draft; the problems are listed under the editor."
            }
            Flash::StrategyStale => {
                "A newer version was saved while you were editing (another tab?). Your edit was not saved as a version: it is kept as the draft shown below. Check it against the newest version (listed under Versions) and save again."
            }
            Flash::StrategyIsArchived => {
                "This strategy is archived, so it cannot be edited; your edit is kept as its draft. Restore it from My strategies first."
            }
            Flash::StrategyDraftStale => {
                "The draft was changed in another tab or window after this page was opened, so this edit was not stored (the editor shows that newer draft). Copy your change in again and save."
            }
            Flash::StrategyReadOnly => {
                "This strategy is read-only: you are over your plan's limit of strategies and the grace period has ended, so it cannot be edited, backtested or paper-traded (your edit is kept as its draft). Delete strategies you no longer need (archived ones count) or move to a larger plan: it is writable again as soon as you are within the limit (Account → Plan and usage, /account/plan)."
            }
            Flash::StrategyInUse => {
                "This strategy was not deleted: it has paper runs that are active, paused or stopping, or backtests queued or running. Stop or cancel them first (deleting never stops open work), or archive it instead."
            }
            Flash::StrategyDeleteUnconfirmed => {
                "Nothing was deleted: tick the box to confirm that the strategy, its versions, backtests and finished paper runs are deleted for good."
            }
            Flash::StrategyQuota => {
                "Your account has reached its limit of strategies or saved versions, so nothing was stored (your limits: Account → Plan and usage, /account/plan)."
            }
            Flash::StrategyName => "Give the strategy a name of 1 to 80 characters.",
            Flash::StrategyDescription => "Use at most 2000 characters for the description.",
            Flash::StrategyTemplate => "Choose one of the listed templates.",
            Flash::StrategySource => "The source is too long (at most 64 KiB).",
            Flash::AlreadyFinished => "This backtest has already finished.",
            Flash::SigninRequired => "Please sign in to continue.",
            Flash::Email => "Enter a valid email address.",
            Flash::DisplayName => "Use at most 80 characters for your name.",
            Flash::TimeZone => "Unknown time zone; use a name like Europe/Zurich or UTC.",
            Flash::InvalidToken => {
                "This link is invalid, already used or expired. Request a new one."
            }
            Flash::CurrentPassword => "The current password is not correct.",
            Flash::ReadOnly => "Your account is read-only.",
            Flash::TokenName => "Give the token a name of 1 to 80 characters.",
            Flash::TokenScope => "Choose a scope for the token.",
            Flash::TokenExpiry => "The expiry must be between 1 and 3650 days, or never.",
            Flash::TokenExists => "You already have a token with that name.",
            Flash::TokenUnverified => "Confirm your email address before creating API tokens.",
            Flash::PasswordShort => "Use at least 12 characters for the password.",
            Flash::PasswordLong => "Use at most 128 characters for the password.",
            Flash::PasswordCommon => {
                "This password is too common; choose another one (a phrase of several words works well)."
            }
            Flash::PasswordRepetitive => {
                "This password repeats too few characters; choose another one."
            }
            Flash::PasswordEmail => "The password must not be your email address.",
            Flash::PasswordControl => "The password contains invisible control characters.",
            Flash::Unsubscribed => {
                "You are unsubscribed: no more email of this kind. In-app notifications are unchanged; turn the email on again in the settings below."
            }
            Flash::AllRead => "All notifications are marked read.",
            Flash::PrefsSaved => "Notification settings saved.",
            Flash::WebhookCreated => "Webhook added.",
            Flash::WebhookTestOk => "The test message was delivered.",
            Flash::WebhookEnabled => "The webhook is enabled again.",
            Flash::WebhookRotated => {
                "A new signing secret was made. The old one keeps signing for 24 hours."
            }
            Flash::WebhookDeleted => "The webhook was deleted.",
            Flash::EmailRetried => {
                "The mark was cleared and a test notification is on its way. If it arrives, notification email works again."
            }
            Flash::UnsubscribeInvalid => {
                "This unsubscribe link is not valid. Sign in to manage your notifications."
            }
            Flash::PrefsInvalid => "The settings were not saved; see the message below.",
            Flash::WebhookInvalid => "The webhook was not changed; see the message below.",
            Flash::WebhookTestFailed => "The test message was not accepted; see the message below.",
            Flash::AdminTestSent => {
                "A test notification is on its way; its deliveries show below in a moment (reload)."
            }
            Flash::AdminCleared => {
                "The undeliverable mark was cleared and a test notification is on its way to the address."
            }
            Flash::AdminNotMarked => {
                "The address was not marked undeliverable; nothing was changed."
            }
            Flash::AdminRefused => "Nothing was done; see the message below.",
            Flash::AdminSuspended => {
                "Suspended: the user's sessions ended, their API tokens were revoked and their active paper runs paused."
            }
            Flash::AdminUnsuspended => {
                "The suspension is lifted: the user can sign in again (paused paper runs stay paused until they resume them)."
            }
            Flash::AdminRoleChanged => "The role was changed; the user's sessions ended.",
            Flash::AdminSignedOut => "Every browser session of the user ended.",
            Flash::AdminBulkDone => {
                "The bulk action ran; what it did for each user is summed up below."
            }
            Flash::AdminVerificationSent => "A new confirmation link is on its way to the user.",
            Flash::AdminUserDeleted => {
                "The account is deleted. The audit log keeps its entries, by user id."
            }
            Flash::AdminPlanAssigned => "The plan was assigned.",
            Flash::AdminPlanSaved => "The plan was saved.",
            Flash::AdminCatalogueSaved => "The catalogue strategy was saved.",
            Flash::AdminJobRetried => "The job is queued again with a fresh attempt budget.",
            Flash::AdminJobCancelled => {
                "The job is cancelled; it will not run (it can be retried later)."
            }
            Flash::AdminMarketTracked => {
                "Saved: the schedule keeps exactly the tracked series updated."
            }
            Flash::AdminMarketUpdate => "The update of every tracked series is queued.",
            Flash::AdminMarketBackfill => {
                "The backfill is queued: its chunks appear under the newest ETL runs as they finish."
            }
            Flash::AdminHousekeeping => "A housekeeping run is queued.",
            Flash::AdminReconcileQueued => {
                "A reconciliation with the payment provider is queued: its result appears below when it finishes."
            }
            Flash::AdminSwitchThrown => "The kill switch is thrown; affected users are notified.",
            Flash::AdminSwitchReleased => "The kill switch is released.",
            Flash::AdminSettingsSaved => "The platform settings were saved.",
            Flash::AdminInviteCreated => {
                "An invitation link was created; copy it now, it is shown only once."
            }
            Flash::PaperPaused => {
                "Paused: the run keeps marking its position and protective stops, but places no new orders."
            }
            Flash::PaperResumed => "Resumed: the run decides again from its next candle.",
            Flash::PaperStopped => "Stopped: no more candles are processed.",
            Flash::PaperStopping => {
                "Stopping: the position is sold at the next fill (decided at the next close), then the run stops."
            }
            Flash::PaperRiskChanged => {
                "Risk limits changed: they apply from the run's next candle."
            }
            Flash::PaperRiskReleased => {
                "Risk locks released: the run trades again from its next candle unless another gate applies."
            }
            Flash::PaperSignalsChanged => {
                "Signal settings saved: they apply from the run's next candle."
            }
            Flash::PaperSwitchThrown => {
                "Kill switch thrown: it applies from the run's next candle (protective stops keep working)."
            }
            Flash::PaperSwitchReleased => {
                "Kill switch released: it no longer applies from the run's next candle."
            }
            Flash::PaperFormInvalid => "Nothing was changed; see the message below.",
            Flash::PaperNotNow => {
                "The run's state does not allow that (it changed meanwhile?); see its status below."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Flash;

    #[test]
    fn every_code_round_trips_and_is_unique() {
        for f in Flash::ALL {
            assert_eq!(Flash::from_code(f.code()), Some(*f));
            assert!(!f.message().is_empty());
        }
        let mut codes: Vec<_> = Flash::ALL.iter().map(|f| f.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Flash::ALL.len());
        assert_eq!(
            Flash::StrategyQuota.redirect_to("/strategies"),
            "/strategies?error=strategy_quota"
        );
        assert_eq!(
            Flash::Verified.redirect_to("/signin?next=%2F"),
            "/signin?next=%2F&ok=verified"
        );
    }
}
