//! The channels the fan-out iterates. Each says whether it can deliver yet: in-app and webhooks (step 3) do;
//! email (step 2) records its decision as a delivery row without sending (status
//! `suppressed`, reason `channel_unavailable` when it would have gone out), so nothing queued before their
//! sender existed is sent late.

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
        delivers: false,
    },
    ChannelSpec {
        channel: Channel::Webhook,
        delivers: true,
    },
];

/// The reason recorded on a delivery whose channel has no sender yet.
pub const UNAVAILABLE: &str = "channel_unavailable";
