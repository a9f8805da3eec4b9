//! `vortex mock-exchange`: serve the repository's candles as a local Binance-compatible exchange, with
//! fault switches and a replayable clock.

use std::{path::PathBuf, process::ExitCode};

use backend::market::{iso, parse_time};
use clap::Args;

/// `vortex mock-exchange`.
#[derive(Debug, Args)]
pub struct MockExchangeArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 9100)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Folder of BASE-QUOTE-TF.csv files to serve.
    #[arg(long, default_value = "data/market")]
    data: PathBuf,
    /// Start the clock here (time replay), e.g. 2018-01-20T00:00:00Z; default: the real time.
    #[arg(long, value_parser = parse_time)]
    now: Option<i64>,
    /// How many times faster than real time the clock runs.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
}

/// Runs `vortex mock-exchange` until Ctrl-C.
///
/// # Errors
/// When the data cannot be loaded or the port bound.
pub async fn mock_exchange(args: MockExchangeArgs) -> anyhow::Result<ExitCode> {
    let mock = crate::mock_exchange::MockExchange::load(&args.data)?;
    if let Some(now) = args.now {
        mock.set_clock(now, args.speed);
    } else if (args.speed - 1.0).abs() > f64::EPSILON {
        mock.set_clock(mock.now(), args.speed);
    }
    let addr = mock.spawn((args.host, args.port).into()).await?;
    println!(
        "mock exchange on http://{addr} (clock {}); set MARKET_DATA_URL=http://{addr}",
        iso(mock.now())
    );
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}
