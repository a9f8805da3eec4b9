//! Loading candles by binary COPY (issue 16): exactly the stored candles for every kind of range, and a load
//! abandoned half-way (a cancelled request, a timed-out job) never leaves its connection to the next query.

use std::time::Duration;

use backend::market::{Timeframe, store};
use secrecy::ExposeSecret;

use super::{app_with_mock, csv, data_dir, import_opts, t};

#[tokio::test]
async fn loads_give_exactly_the_stored_candles_and_an_abandoned_load_never_reaches_the_next_query()
{
    let (app, _mock) = app_with_mock(false, vec![]).await;
    let db = &app.ctx.db;
    let file = "DASH-BTC-5m.csv";
    let id = backend::market::csv_import::import_file(
        db,
        &data_dir().join(file),
        &import_opts("DASH/BTC", false),
    )
    .await
    .unwrap()
    .instrument_id;
    let want = csv(file);
    let n = want.len();
    assert!(n > 5000);

    let all = store::load_candles(db, id, Timeframe::M5, None, None, None)
        .await
        .unwrap();
    assert_eq!(all, want, "every candle, bit for bit");
    // A range [from, to), a lower bound only, the newest k of a range, an empty range.
    let (from, to) = (want.time[1000], want.time[3000]);
    let range = store::load_candles(db, id, Timeframe::M5, Some(from), Some(to), None)
        .await
        .unwrap();
    assert_eq!(range, want.slice(1000..3000));
    let tail = store::load_candles(db, id, Timeframe::M5, Some(from), None, None)
        .await
        .unwrap();
    assert_eq!(tail, want.slice(1000..n));
    let last = store::load_candles(db, id, Timeframe::M5, None, Some(to), Some(7))
        .await
        .unwrap();
    assert_eq!(last, want.slice(2993..3000));
    let none = store::load_candles(db, id, Timeframe::M5, Some(t("2030-01-01")), None, None)
        .await
        .unwrap();
    assert!(none.is_empty());
    let other_tf = store::load_candles(db, id, Timeframe::H1, None, None, None)
        .await
        .unwrap();
    assert!(other_tf.is_empty());

    // One connection, loads abandoned after ever more polls (the first after one poll: the COPY is sent and
    // nothing read yet; later ones part-way through its rows): wherever each stopped, the next query on the
    // pool gets its own answer and a whole load is still whole. No ping before each acquire: the loader
    // itself must not hand back a connection in the middle of a COPY. (Polls, not timeouts: a timer's
    // millisecond resolution let a fast machine finish every load before its deadline.)
    let url = app.ctx.settings.database_url.expose_secret().to_owned();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect(&url)
        .await
        .unwrap();
    let mut interrupted = 0;
    for polls in [1usize, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64] {
        {
            let mut load = std::pin::pin!(store::load_candles(
                &pool,
                id,
                Timeframe::M5,
                None,
                None,
                None
            ));
            let mut finished = false;
            for _ in 0..polls {
                if futures::poll!(load.as_mut()).is_ready() {
                    finished = true;
                    break;
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            if !finished {
                interrupted += 1;
            }
        }
        let answer: i64 = sqlx::query_scalar("select 42::bigint")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(answer, 42, "after a load abandoned after {polls} polls");
        let whole = store::load_candles(&pool, id, Timeframe::M5, None, None, None)
            .await
            .unwrap();
        assert_eq!(whole, want, "after a load abandoned after {polls} polls");
    }
    assert!(interrupted > 0, "no load was abandoned half-way");
}
