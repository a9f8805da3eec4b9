//! The process's fan-out of paper-run changes: `backend::paper::advance` (and control) do
//! `pg_notify('paper_run', '<run id>')` in the transaction that changed a run, so a change is announced on
//! commit, to every web replica. The process's one [`backend::live::Listener`] hands each signal to this
//! topic, which wakes the open streams of that run. A signal is just "look": a stream answers it (or a
//! resync after a reconnect, or a lag) with one re-read.

use backend::live::Topic;
use uuid::Uuid;

/// The Postgres channel.
pub const PG_CHANNEL: &str = "paper_run";

/// Paper-run changes keyed by run.
pub type Hub = Topic<()>;
/// One stream's subscription to a run's changes.
pub type Subscription = backend::live::Subscription<()>;

/// A new hub on [`PG_CHANNEL`]; it hears nothing until a listener is started with [`Hub::handle`].
pub fn hub() -> Hub {
    Topic::new(
        PG_CHANNEL,
        |p| Uuid::parse_str(p.trim()).ok().map(|run| (run, ())),
        (),
    )
}
