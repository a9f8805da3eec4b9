//! The channels the fan-out iterates. In-app, email (step 2) and webhooks (step 3) deliver; a channel that
//! could not deliver yet records its decision as a delivery row without sending (status `suppressed`, reason
//! `channel_unavailable` when it would have gone out), so nothing queued before its sender existed is sent
//! late. What goes out when (quiet hours, coalescing, the cap, digests) is the release decision's
//! (`super::release`).

use super::catalogue::Channel;

/// One channel of the fan-out.
#[derive(Debug, Clone, Copy)]
pub struct ChannelSpec {
    pub channel: Channel,
    /// A sender exists: deliveries that should go out are queued (else recorded as unavailable).
    pub delivers: bool,
}

/// Every channel, in the order the fan-out visits them.
pub static CHANNELS: &[ChannelSpec] = &[
    ChannelSpec {
        channel: Channel::InApp,
        delivers: true,
    },
    ChannelSpec {
        channel: Channel::Email,
        delivers: true,
    },
    ChannelSpec {
        channel: Channel::Webhook,
        delivers: true,
    },
];

/// The reason recorded on a delivery whose channel has no sender yet.
pub const UNAVAILABLE: &str = "channel_unavailable";
