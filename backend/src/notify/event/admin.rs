//! The payloads of operator alerts (audience: every admin).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The market data ETL gave up: an update or a chunk of a series ran out of attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtlFailing {
    /// The exchange (`MARKET_EXCHANGE`).
    pub source: String,
    /// The series, when one series failed (`None`: the whole scheduled update).
    pub symbol: Option<String>,
    pub timeframe: Option<String>,
    /// The job that gave up (`market_update` or `market_chunk`).
    pub job_id: Uuid,
    pub job_kind: String,
    /// The job's last error (first 500 characters).
    pub last_error: String,
    /// The hour it failed in: one alert per series and hour, however many chunks fail.
    pub hour: DateTime<Utc>,
}
