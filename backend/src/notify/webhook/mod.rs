//! Chat and generic webhooks (docs/design/notifications.md §6): where a destination may point ([`ssrf`]),
//! how a generic body is signed ([`sign`]) and the Slack, Discord and generic bodies ([`format`]).

pub mod format;
pub mod sign;
pub mod ssrf;

pub use ssrf::NetGuard;
