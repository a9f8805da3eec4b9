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

-- Writes through the application remove the blocks they touch themselves (upsert_candles, under the series'
-- coverage lock). These triggers do the same for any other change of `candle` (an operator's update or delete,
-- a truncate), taking the same lock so a block being built meanwhile cannot outlive the change.
create function candle_block_forget(changed_instrument integer[], changed_timeframe text[], changed_start bigint[])
returns void language plpgsql as $$
begin
    perform 1 from market_coverage m
     where (m.instrument_id, m.timeframe) in (select * from unnest(changed_instrument, changed_timeframe))
     order by m.instrument_id, m.timeframe
       for update;
    delete from candle_block b
     using unnest(changed_instrument, changed_timeframe, changed_start) as c(instrument_id, timeframe, block_start)
     where b.instrument_id = c.instrument_id and b.timeframe = c.timeframe and b.block_start = c.block_start;
end $$;

create function candle_block_forget_updated() returns trigger language plpgsql as $$
declare
    i integer[]; t text[]; s bigint[];
begin
    select array_agg(instrument_id), array_agg(timeframe), array_agg(block_start) into i, t, s
      from (select distinct instrument_id, timeframe,
                   floor(extract(epoch from open_time) * 1000 / 2147483648)::bigint * 2147483648 as block_start
              from (select instrument_id, timeframe, open_time from old_rows
                    union all
                    select instrument_id, timeframe, open_time from new_rows) r) d;
    if i is not null then
        perform candle_block_forget(i, t, s);
    end if;
    return null;
end $$;

create function candle_block_forget_deleted() returns trigger language plpgsql as $$
declare
    i integer[]; t text[]; s bigint[];
begin
    select array_agg(instrument_id), array_agg(timeframe), array_agg(block_start) into i, t, s
      from (select distinct instrument_id, timeframe,
                   floor(extract(epoch from open_time) * 1000 / 2147483648)::bigint * 2147483648 as block_start
              from old_rows) d;
    if i is not null then
        perform candle_block_forget(i, t, s);
    end if;
    return null;
end $$;

create function candle_block_forget_all() returns trigger language plpgsql as $$
begin
    delete from candle_block;
    return null;
end $$;

create trigger candle_block_on_update after update on candle
    referencing old table as old_rows new table as new_rows
    for each statement execute function candle_block_forget_updated();
create trigger candle_block_on_delete after delete on candle
    referencing old table as old_rows
    for each statement execute function candle_block_forget_deleted();
create trigger candle_block_on_truncate after truncate on candle
    for each statement execute function candle_block_forget_all();
