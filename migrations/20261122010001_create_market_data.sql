-- Market data: instruments, their candles, the series we keep fresh, and ETL progress.
-- See docs/market-data.md for how `candle` scales past a billion rows.

-- A tradable pair on one exchange. `instrument_id` is a 4-byte integer, not a uuid, because it is repeated in
-- every candle row (and in its primary-key index).
create table instrument (
    instrument_id  integer generated always as identity primary key,
    exchange       text not null check (exchange ~ '^[a-z0-9_.-]{1,32}$'),
    symbol         text not null check (symbol ~ '^[A-Z0-9]{2,32}$'),
    base           text not null check (base ~ '^[A-Z0-9]{1,16}$'),
    quote          text not null check (quote ~ '^[A-Z0-9]{1,16}$'),
    price_tick     double precision check (price_tick > 0),
    quantity_step  double precision check (quantity_step > 0),
    active         boolean not null default true,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    constraint instrument_exchange_symbol_key unique (exchange, symbol)
);

create trigger instrument_set_updated_at before update on instrument
    for each row execute function set_updated_at();

-- One candle per (instrument, timeframe, open time). Prices in the quote asset, volume in the base asset.
-- double precision (not numeric): the engine computes in f64 and loads a million rows at a time.
-- The primary key is the only index: loading a range for a backtest is one scan of it.
-- No foreign key to instrument: its per-row check costs ~40% of a bulk import (measured, docs/market-data.md),
-- and instruments are never deleted (they are deactivated); every writer creates the instrument first.
create table candle (
    instrument_id  integer not null,
    timeframe      text not null check (timeframe in ('1m', '5m', '15m', '30m', '1h', '4h', '1d', '1w')),
    open_time      timestamptz not null,
    open           double precision not null,
    high           double precision not null,
    low            double precision not null,
    close          double precision not null,
    volume         double precision not null,
    primary key (instrument_id, timeframe, open_time)
);

-- A series (instrument + timeframe) we know about: `tracked` ones are refreshed by the scheduled update;
-- `last_update_at` is when new candles were last written to it.
create table market_series (
    instrument_id   integer not null references instrument (instrument_id) on delete cascade,
    timeframe       text not null check (timeframe in ('1m', '5m', '15m', '30m', '1h', '4h', '1d', '1w')),
    tracked         boolean not null default false,
    last_update_at  timestamptz,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    primary key (instrument_id, timeframe)
);

create trigger market_series_set_updated_at before update on market_series
    for each row execute function set_updated_at();

-- Chunks of exchange history fetched completely (their end was in the past when fetched), so a re-run of a
-- backfill skips them: this is how an interrupted backfill resumes where it stopped.
create table market_chunk (
    instrument_id  integer not null references instrument (instrument_id) on delete cascade,
    timeframe      text not null,
    chunk_start    timestamptz not null,
    chunk_end      timestamptz not null,
    candles        integer not null,
    fetched_at     timestamptz not null default now(),
    primary key (instrument_id, timeframe, chunk_start)
);

-- One ETL run (a CLI invocation, an enqueued backfill, a scheduled update of one series): progress is rows
-- fetched against rows expected; each chunk adds to it in the transaction that stores its candles.
create table market_etl_run (
    market_etl_run_id  uuid primary key,
    instrument_id      integer not null references instrument (instrument_id) on delete cascade,
    timeframe          text not null,
    mode               text not null check (mode in ('backfill', 'daily', 'csv')),
    source             text not null,
    range_from         timestamptz not null,
    range_to           timestamptz not null,
    chunks_total       integer not null default 0,
    chunks_done        integer not null default 0,
    candles_expected   bigint not null default 0,
    candles_fetched    bigint not null default 0,
    status             text not null default 'running' check (status in ('running', 'done', 'failed')),
    error              text,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now()
);

create index market_etl_run_recent_idx on market_etl_run (created_at desc);

create trigger market_etl_run_set_updated_at before update on market_etl_run
    for each row execute function set_updated_at();
