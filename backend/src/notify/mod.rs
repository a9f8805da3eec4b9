//! Notifications: one event stream, fanned out to an in-app centre, email and chat webhooks according to each
//! user's preferences. The design is docs/design/notifications.md; this holds its step 1 (the stream, the
//! fan-out, the in-app rows and the clock), the email channel of step 2 and step 3 (webhook delivery).
//!
//! * [`emit`] writes a `notify_event` row and its `notify_fanout` job row in the caller's transaction, so an
//!   event exists if and only if the effect that caused it committed; [`push`] the job after committing (the
//!   reconciler pushes it otherwise).
//! * [`fanout`] (the `notify_fanout` job) resolves preferences ([`prefs`]) per recipient and channel
//!   ([`channel`]) and writes the in-app rows and delivery rows with deterministic ids ([`ids`]), in the
//!   transaction that marks the job done: a re-run or a duplicate delivery writes nothing twice.
//! * [`prefs`]: rules, quiet hours and the digest schedule (the preferences document and its actions);
//!   [`schedule`]: the time-zone and DST-safe maths of digests and quiet hours.
//! * [`inapp`] holds the actions of the in-app centre (list, unread count, mark read).
//! * [`webhook`] (step 3): the webhook actions, the SSRF guard, signing, the chat/generic bodies and the
//!   `notify_webhook` delivery job.
//! * [`email`] (the `notify_email` job) renders and sends one email delivery, re-checking preferences,
//!   unsubscribes and the undeliverable mark at send time; [`unsubscribe`] signs and verifies the one-click
//!   tokens of subscription mail and turns a category's email off.
//!
//! Layering: `notify` uses `jobs`, `clock` and `actor`; emitters (`backtest`, later `account`, `market`,
//! `paper`, `billing`) use `notify`, never the reverse, so payloads carry everything a message needs.

pub mod admin;
pub mod catalogue;
pub mod channel;
pub mod email;
pub mod emit;
pub mod event;
pub mod fanout;
pub mod ids;
pub mod inapp;
pub mod live;
pub mod log;
pub mod prefs;
pub mod schedule;
pub mod unsubscribe;
pub mod webhook;

pub use catalogue::{Category, Channel, EventSpec, Mode};
pub use emit::{Emitted, emit, push};
pub use event::Event;

/// The Postgres channel of in-app changes (`pg_notify`, delivered on commit): `{"u": "<user id>"}`.
pub const PG_CHANNEL: &str = "vortex_notify";
