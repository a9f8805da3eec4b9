//! The candle block cache (issue 16): a load served from cached blocks is the stored candles bit for bit, on a
//! miss and on a hit, with the open window after the cached ones; every change of the candles (an import, an
//! insert, update, delete or truncate by hand) removes the blocks it touches; a damaged or deleted block is
//! rebuilt; a load while a write holds the series caches nothing; a cached load abandoned half-way leaves no
//! connection or lock behind.

use std::time::Duration;

use backend::market::{Pair, Timeframe, store, store::blocks};
use engine::candles::Candles;
use secrecy::ExposeSecret;
use sqlx::PgPool;

use super::app_with_mock;

fn bits(c: &Candles) -> Vec<[u64; 6]> {
    (0..c.len())
        .map(|i| {
            [
                c.time[i] as u64,
                c.open[i].to_bits(),
                c.high[i].to_bits(),
                c.low[i].to_bits(),
                c.close[i].to_bits(),
                c.volume[i].to_bits(),
            ]
        })
        .collect()
}

/// One-minute candles from three windows before the current one to ten minutes ago (a closed first window
/// entered part-way, two whole closed windows, the open current window), with prices of irregular decimals.
fn series() -> Candles {
    let now = chrono::Utc::now().timestamp_millis();
    let start = blocks::block_start(now) - 3 * blocks::SPAN_MS + 12_345 * 60_000;
    let end = now - now.rem_euclid(60_000) - 10 * 60_000;
    let mut c = Candles::new(Timeframe::M1);
    let mut price = 0.001_620_7_f64;
    let mut t = start;
    let mut i = 0u64;
    while t <= end {
        price *= 1.0 + (((i * 7919) % 17) as f64 - 8.0) * 1.3e-4;
        c.push(
            t,
            price,
            price * 1.0007,
            price * 0.9991,
            price * 1.0002,
            (i % 1000) as f64 * 0.173,
        );
        // A gap now and then, as real series have.
        t += if i % 5003 == 17 { 7 * 60_000 } else { 60_000 };
        i += 1;
    }
    c
}

async fn load(db: &PgPool, id: i32, from: i64, to: Option<i64>) -> Candles {
    // The cache serves bounded ranges: "to the end" is a bound a year ahead.
    let to = to.unwrap_or(chrono::Utc::now().timestamp_millis() + 365 * 86_400_000);
    store::load_candles(db, id, Timeframe::M1, Some(from), Some(to), None)
        .await
        .unwrap()
}

/// The same range by COPY alone (`last` never takes the cache).
async fn by_copy(db: &PgPool, id: i32, from: i64, to: Option<i64>) -> Candles {
    let all = store::load_candles(db, id, Timeframe::M1, None, to, Some(10_000_000))
        .await
        .unwrap();
    let lo = all.time.partition_point(|&t| t < from);
    all.slice(lo..all.len())
}

async fn block_rows(db: &PgPool, id: i32) -> Vec<(i64, i32)> {
    sqlx::query_as(
        "select block_start, candles from candle_block where instrument_id = $1 order by block_start",
    )
    .bind(id)
    .fetch_all(db)
    .await
    .unwrap()
}

async fn setup(db: &PgPool) -> (i32, Candles) {
    let mut tx = db.begin().await.unwrap();
    let id = store::ensure_instrument(&mut tx, "demo", &Pair::parse("BLK/USDT").unwrap())
        .await
        .unwrap()
        .instrument_id;
    let want = series();
    store::upsert_candles(&mut tx, id, &want).await.unwrap();
    tx.commit().await.unwrap();
    (id, want)
}

#[tokio::test]
async fn cached_loads_are_the_stored_candles_and_follow_every_change() {
    let (app, _mock) = app_with_mock(false, vec![]).await;
    let db = &app.ctx.db;
    let (id, mut want) = setup(db).await;
    let from = want.time[17];
    let w0 = blocks::block_start(want.time[0]);
    let w = |k: i64| w0 + k * blocks::SPAN_MS;

    // Counts before anything is cached (all by the index).
    let n = want.len();
    let count = store::count_candles(db, id, Timeframe::M1, want.time[3], want.time[n - 3])
        .await
        .unwrap();
    assert_eq!(count, (n - 6) as i64);
    // A miss builds the three closed windows; the open window comes by COPY.
    let got = load(db, id, from, None).await;
    assert_eq!(
        bits(&got),
        bits(&want.slice(17..want.len())),
        "first (cold) load"
    );
    let rows = block_rows(db, id).await;
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![w(0), w(1), w(2)]
    );
    let in_window = |k: i64| {
        want.time
            .iter()
            .filter(|&&t| blocks::block_start(t) == w(k))
            .count() as i32
    };
    assert_eq!(
        rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        vec![in_window(0), in_window(1), in_window(2)]
    );
    let built: Vec<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "select built_at from candle_block where instrument_id = $1 order by block_start",
    )
    .bind(id)
    .fetch_all(db)
    .await
    .unwrap();

    // A hit, and ranges cut anywhere: the same as COPY, and nothing rebuilt.
    assert_eq!(
        bits(&load(db, id, from, None).await),
        bits(&got),
        "second (cached) load"
    );
    for (lo, hi) in [(0, n / 2), (40_000, 90_000), (1, n - 1), (n / 3, n)] {
        let to = (hi < n).then(|| want.time[hi]);
        let count = store::count_candles(
            db,
            id,
            Timeframe::M1,
            want.time[lo],
            to.unwrap_or(want.time[n - 1] + 60_000),
        )
        .await
        .unwrap();
        assert_eq!(count, (hi - lo) as i64, "count of {lo}..{hi}");
        let cut = load(db, id, want.time[lo], to).await;
        assert_eq!(bits(&cut), bits(&want.slice(lo..hi)), "range {lo}..{hi}");
        assert_eq!(bits(&cut), bits(&by_copy(db, id, want.time[lo], to).await));
    }
    // Ranges on window boundaries, and one reaching far before and after the data (builds nothing more).
    let on = load(db, id, w(1), Some(w(2))).await;
    let (a, b) = (
        want.time.partition_point(|&t| t < w(1)),
        want.time.partition_point(|&t| t < w(2)),
    );
    assert_eq!(bits(&on), bits(&want.slice(a..b)), "exactly window 1");
    let wide = load(
        db,
        id,
        w(0) - 40 * blocks::SPAN_MS,
        Some(w(0) + 400 * blocks::SPAN_MS),
    )
    .await;
    assert_eq!(bits(&wide), bits(&want), "a range far wider than the data");
    assert_eq!(block_rows(db, id).await.len(), 3, "no empty windows built");
    let again: Vec<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "select built_at from candle_block where instrument_id = $1 order by block_start",
    )
    .bind(id)
    .fetch_all(db)
    .await
    .unwrap();
    assert_eq!(again, built, "hits rebuild nothing");

    // An import revising one candle of window 1 removes that window's block only.
    let k = want
        .time
        .iter()
        .position(|&t| blocks::block_start(t) == w(1))
        .unwrap()
        + 500;
    want.close[k] *= 1.5;
    want.high[k] = want.high[k].max(want.close[k]);
    let mut tx = db.begin().await.unwrap();
    store::upsert_candles(&mut tx, id, &want.slice(k..k + 1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        block_rows(db, id)
            .await
            .iter()
            .map(|r| r.0)
            .collect::<Vec<_>>(),
        vec![w(0), w(2)]
    );
    assert_eq!(
        bits(&load(db, id, from, None).await),
        bits(&want.slice(17..n)),
        "after an import"
    );
    assert_eq!(block_rows(db, id).await.len(), 3, "rebuilt");

    // An operator's update and delete (not through the application): the triggers remove the blocks.
    let k0 = 1000;
    sqlx::query("update candle set volume = volume + 1 where instrument_id = $1 and open_time = to_timestamp($2 / 1000.0)")
        .bind(id)
        .bind(want.time[k0] as f64)
        .execute(db)
        .await
        .unwrap();
    want.volume[k0] += 1.0;
    assert_eq!(
        block_rows(db, id)
            .await
            .iter()
            .map(|r| r.0)
            .collect::<Vec<_>>(),
        vec![w(1), w(2)]
    );
    assert_eq!(
        bits(&load(db, id, from, None).await),
        bits(&want.slice(17..n)),
        "after an update"
    );
    let k2 = want
        .time
        .iter()
        .position(|&t| blocks::block_start(t) == w(2))
        .unwrap()
        + 3;
    sqlx::query(
        "delete from candle where instrument_id = $1 and open_time = to_timestamp($2 / 1000.0)",
    )
    .bind(id)
    .bind(want.time[k2] as f64)
    .execute(db)
    .await
    .unwrap();
    let mut rest = want.slice(0..k2);
    let after = want.slice(k2 + 1..n);
    for i in 0..after.len() {
        rest.push(
            after.time[i],
            after.open[i],
            after.high[i],
            after.low[i],
            after.close[i],
            after.volume[i],
        );
    }
    want = rest;
    let n = want.len();
    assert_eq!(
        block_rows(db, id)
            .await
            .iter()
            .map(|r| r.0)
            .collect::<Vec<_>>(),
        vec![w(0), w(1)]
    );
    assert_eq!(
        bits(&load(db, id, from, None).await),
        bits(&want.slice(17..n)),
        "after a delete"
    );

    // A hand-made insert into a gap of a cached window removes that block too.
    let gap = (1..want.len())
        .find(|&i| {
            blocks::block_start(want.time[i]) == w(0) && want.time[i] - want.time[i - 1] > 60_000
        })
        .unwrap();
    let t_new = want.time[gap - 1] + 60_000;
    assert_eq!(block_rows(db, id).await.len(), 3);
    sqlx::query(
        "insert into candle (instrument_id, timeframe, open_time, open, high, low, close, volume)
         values ($1, '1m', to_timestamp($2 / 1000.0), 1, 2, 0.5, 1.5, 10)",
    )
    .bind(id)
    .bind(t_new as f64)
    .execute(db)
    .await
    .unwrap();
    assert_eq!(
        block_rows(db, id)
            .await
            .iter()
            .map(|r| r.0)
            .collect::<Vec<_>>(),
        vec![w(1), w(2)]
    );
    let mut with = want.slice(0..gap);
    with.push(t_new, 1.0, 2.0, 0.5, 1.5, 10.0);
    let after = want.slice(gap..want.len());
    for i in 0..after.len() {
        with.push(
            after.time[i],
            after.open[i],
            after.high[i],
            after.low[i],
            after.close[i],
            after.volume[i],
        );
    }
    want = with;
    let n = want.len();
    assert_eq!(
        bits(&load(db, id, from, None).await),
        bits(&want.slice(17..n)),
        "after a hand insert"
    );

    // A damaged block is ignored and rebuilt; an emptied cache refills.
    sqlx::query("update candle_block set data = '\\x5658434201ffffff7f00'::bytea where instrument_id = $1 and block_start = $2")
        .bind(id)
        .bind(w(1))
        .execute(db)
        .await
        .unwrap();
    assert_eq!(
        bits(&load(db, id, from, None).await),
        bits(&want.slice(17..n)),
        "damaged block"
    );
    let size: i32 = sqlx::query_scalar(
        "select length(data) from candle_block where instrument_id = $1 and block_start = $2",
    )
    .bind(id)
    .bind(w(1))
    .fetch_one(db)
    .await
    .unwrap();
    assert!(size > 1000, "the damaged block was rebuilt ({size} bytes)");
    sqlx::query("truncate candle_block")
        .execute(db)
        .await
        .unwrap();
    assert_eq!(
        bits(&load(db, id, from, None).await),
        bits(&want.slice(17..n)),
        "after truncate"
    );
    assert_eq!(block_rows(db, id).await.len(), 3);
    // Truncating candle empties the cache with it.
    sqlx::query("truncate candle").execute(db).await.unwrap();
    assert!(block_rows(db, id).await.is_empty());
    assert!(load(db, id, from, None).await.is_empty());
}

#[tokio::test]
async fn a_load_during_a_write_caches_nothing_and_abandoned_loads_leave_nothing_behind() {
    let (app, _mock) = app_with_mock(false, vec![]).await;
    let db = &app.ctx.db;
    let (id, want) = setup(db).await;
    let from = want.time[0];
    let n = want.len();

    // A write in progress holds the series (as an import does) and changes a candle of the first window: a
    // load meanwhile does not wait, reads the committed candles and caches nothing.
    sqlx::query("truncate candle_block")
        .execute(db)
        .await
        .unwrap();
    let mut writer = db.begin().await.unwrap();
    sqlx::query("select 1 from market_coverage where instrument_id = $1 for update")
        .bind(id)
        .execute(&mut *writer)
        .await
        .unwrap();
    sqlx::query("update candle set close = 99 where instrument_id = $1 and open_time = to_timestamp($2 / 1000.0)")
        .bind(id)
        .bind(want.time[5] as f64)
        .execute(&mut *writer)
        .await
        .unwrap();
    let during = tokio::time::timeout(Duration::from_secs(5), load(db, id, from, None))
        .await
        .expect("a load does not wait for a write");
    assert_eq!(bits(&during), bits(&want), "the committed candles");
    assert!(
        block_rows(db, id).await.is_empty(),
        "nothing cached while a write holds the series"
    );
    writer.commit().await.unwrap();
    let got = load(db, id, from, None).await;
    assert_eq!(got.close[5], 99.0, "the load sees the committed write");
    assert_eq!(block_rows(db, id).await.len(), 3);
    assert_eq!(
        bits(&load(db, id, from, None).await),
        bits(&got),
        "the stored block holds it too"
    );
    assert_eq!(got.len(), n);

    // Cached loads on a one-connection pool, abandoned after ever more polls while blocks are being built:
    // the next query gets its answer, no transaction or lock is left, and a whole load is still whole.
    let url = app.ctx.settings.database_url.expose_secret().to_owned();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect(&url)
        .await
        .unwrap();
    let mut interrupted = 0;
    for polls in [1usize, 2, 3, 4, 6, 8, 12, 16, 24, 32] {
        sqlx::query("truncate candle_block")
            .execute(&pool)
            .await
            .unwrap();
        {
            let mut cached = std::pin::pin!(load(&pool, id, from, None));
            let mut finished = false;
            for _ in 0..polls {
                if futures::poll!(cached.as_mut()).is_ready() {
                    finished = true;
                    break;
                }
                tokio::time::sleep(Duration::from_micros(300)).await;
            }
            interrupted += usize::from(!finished);
        }
        let answer: i64 = sqlx::query_scalar("select 42::bigint")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(answer, 42, "after a load abandoned after {polls} polls");
        let mut tx = db.begin().await.unwrap();
        sqlx::query("set local lock_timeout = '2s'")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("select 1 from market_coverage where instrument_id = $1 for update")
            .bind(id)
            .execute(&mut *tx)
            .await
            .expect("no lock left behind");
        tx.rollback().await.unwrap();
        assert_eq!(
            bits(&load(&pool, id, from, None).await),
            bits(&got),
            "after {polls} polls"
        );
    }
    assert!(interrupted > 0, "no load was abandoned half-way");
}
