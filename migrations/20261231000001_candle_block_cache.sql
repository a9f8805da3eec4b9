-- The candle block cache (issue 16): closed windows of a series kept as compressed columns, so a long load reads
-- a few rows of bytes instead of a row per candle. `candle` stays the truth; this table may be emptied at any
-- time (`truncate candle_block`) and refills as ranges are loaded. See backend/src/market/store/blocks.rs.
create table candle_block (
    instrument_id integer not null,
    timeframe text not null,
    -- The window's start in ms since the epoch, a multiple of 2^31 ms; the window is 2^31 ms long.
    block_start bigint not null,
    format smallint not null,
    candles integer not null check (candles >= 0),
    data bytea not null,
    built_at timestamptz not null default now(),
    primary key (instrument_id, timeframe, block_start)
);
-- The blocks are compressed already: no second compression by TOAST.
alter table candle_block alter column data set storage external;

-- Every change of `candle` removes the blocks of the windows it touches: statement triggers (one pass over the
-- statement's rows, grouped by series) for inserts (imports, the ETL, a hand-made insert), updates, deletes and
-- truncates. Each first locks the touched series' coverage rows, as the application's writer does before it
-- writes; a block is built holding that row shared, so a block never outlives a change of its candles.
create function candle_block_forget(changed_instrument integer[], changed_timeframe text[], lo timestamptz[],
                                    hi timestamptz[])
returns void language plpgsql as $$
begin
    perform 1 from market_coverage m
     where (m.instrument_id, m.timeframe) in (select * from unnest(changed_instrument, changed_timeframe))
     order by m.instrument_id, m.timeframe
       for update;
    delete from candle_block b
     using unnest(changed_instrument, changed_timeframe, lo, hi) as c(instrument_id, timeframe, lo, hi)
     where b.instrument_id = c.instrument_id and b.timeframe = c.timeframe
       and b.block_start between floor(extract(epoch from c.lo) * 1000 / 2147483648)::bigint * 2147483648
                             and floor(extract(epoch from c.hi) * 1000 / 2147483648)::bigint * 2147483648;
end $$;

create function candle_block_forget_inserted() returns trigger language plpgsql as $$
declare
    i integer[]; t text[]; lo timestamptz[]; hi timestamptz[];
begin
    select array_agg(instrument_id), array_agg(timeframe), array_agg(first), array_agg(last) into i, t, lo, hi
      from (select instrument_id, timeframe, min(open_time) as first, max(open_time) as last
              from new_rows group by instrument_id, timeframe) d;
    if i is not null then
        perform candle_block_forget(i, t, lo, hi);
    end if;
    return null;
end $$;

create function candle_block_forget_updated() returns trigger language plpgsql as $$
declare
    i integer[]; t text[]; lo timestamptz[]; hi timestamptz[];
begin
    select array_agg(instrument_id), array_agg(timeframe), array_agg(first), array_agg(last) into i, t, lo, hi
      from (select instrument_id, timeframe, min(open_time) as first, max(open_time) as last
              from (select instrument_id, timeframe, open_time from old_rows
                    union all
                    select instrument_id, timeframe, open_time from new_rows) r
             group by instrument_id, timeframe) d;
    if i is not null then
        perform candle_block_forget(i, t, lo, hi);
    end if;
    return null;
end $$;

create function candle_block_forget_deleted() returns trigger language plpgsql as $$
declare
    i integer[]; t text[]; lo timestamptz[]; hi timestamptz[];
begin
    select array_agg(instrument_id), array_agg(timeframe), array_agg(first), array_agg(last) into i, t, lo, hi
      from (select instrument_id, timeframe, min(open_time) as first, max(open_time) as last
              from old_rows group by instrument_id, timeframe) d;
    if i is not null then
        perform candle_block_forget(i, t, lo, hi);
    end if;
    return null;
end $$;

create function candle_block_forget_all() returns trigger language plpgsql as $$
begin
    delete from candle_block;
    return null;
end $$;

create trigger candle_block_on_insert after insert on candle
    referencing new table as new_rows
    for each statement execute function candle_block_forget_inserted();
create trigger candle_block_on_update after update on candle
    referencing old table as old_rows new table as new_rows
    for each statement execute function candle_block_forget_updated();
create trigger candle_block_on_delete after delete on candle
    referencing old table as old_rows
    for each statement execute function candle_block_forget_deleted();
create trigger candle_block_on_truncate after truncate on candle
    for each statement execute function candle_block_forget_all();
