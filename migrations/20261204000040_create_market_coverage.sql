-- Coverage kept as data (issue 11, item 8): the Market data page, `/api/market_overview` and
-- `/api/v1/market/coverage` read these two small tables instead of scanning every candle of every series.
-- Both are maintained by the candle writer (backend::market::store::upsert_candles) in the transaction that
-- writes the candles, which recomputes only the range it touched. `backend::market::coverage::scan` is the
-- full recomputation they must always equal (checked by the tests).

-- One row per series that has candles: first and last open time, candle count, and the gap totals.
create table market_coverage (
    instrument_id  integer not null,
    timeframe      text not null check (timeframe in ('1m', '5m', '15m', '30m', '1h', '4h', '1d', '1w')),
    first_open     timestamptz,
    last_open      timestamptz,
    candles        bigint not null default 0 check (candles >= 0),
    gap_count      bigint not null default 0 check (gap_count >= 0),
    missing        bigint not null default 0 check (missing >= 0),
    updated_at     timestamptz not null default now(),
    primary key (instrument_id, timeframe)
);

-- One row per gap: two consecutive stored candles further apart than the timeframe. `missing` is the number
-- of candles between them.
create table market_gap (
    instrument_id  integer not null,
    timeframe      text not null,
    prev_open      timestamptz not null,
    next_open      timestamptz not null,
    missing        bigint not null check (missing > 0),
    primary key (instrument_id, timeframe, prev_open)
);

-- Existing candles: one scan now, at migration time.
insert into market_gap (instrument_id, timeframe, prev_open, next_open, missing)
select instrument_id, timeframe, prev, open_time,
       (extract(epoch from open_time - prev) * 1000)::bigint
         / (case timeframe when '1m' then 60000 when '5m' then 300000 when '15m' then 900000
                           when '30m' then 1800000 when '1h' then 3600000 when '4h' then 14400000
                           when '1d' then 86400000 else 604800000 end)::bigint - 1
from (select instrument_id, timeframe, open_time,
             lag(open_time) over (partition by instrument_id, timeframe order by open_time) as prev
      from candle) s
where prev is not null
  and open_time - prev > (case timeframe when '1m' then interval '1 minute' when '5m' then interval '5 minutes'
                                         when '15m' then interval '15 minutes' when '30m' then interval '30 minutes'
                                         when '1h' then interval '1 hour' when '4h' then interval '4 hours'
                                         when '1d' then interval '1 day' else interval '7 days' end);

insert into market_coverage (instrument_id, timeframe, first_open, last_open, candles, gap_count, missing)
select c.instrument_id, c.timeframe, c.first_open, c.last_open, c.n, coalesce(g.n, 0), coalesce(g.missing, 0)
from (select instrument_id, timeframe, min(open_time) as first_open, max(open_time) as last_open, count(*) as n
      from candle group by instrument_id, timeframe) c
left join (select instrument_id, timeframe, count(*) as n, sum(missing)::bigint as missing
           from market_gap group by instrument_id, timeframe) g using (instrument_id, timeframe);
