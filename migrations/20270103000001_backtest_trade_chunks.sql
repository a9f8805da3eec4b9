-- A run's trades as columnar chunks (issue 16). One row per trade cost ~330 bytes and a primary-key entry each,
-- which made storing a 27k-trade run's trades take 45–85 ms of Postgres time; the trades of a run are now
-- stored as rows of up to a few hundred trades each, every field an array with one element per trade (the rule
-- lines once per chunk, each trade pointing at its own), so a 27k-trade run is a few hundred rows of ~6 KB.
--
-- `backtest_trade` stays as a view with the columns the application used (trade by trade, `seq` from 1; not the
-- unused jsonb `entry_values`/`exit_values`, dropped with the table as 20261227000001 announced), for operators'
-- queries and the account export; the application reads and writes the chunks. Rows inserted into the view
-- (a previous release's worker) are stored as chunks of one trade.
--
-- Trade `first_seq + i - 1` of a chunk (i from 1) has `entry_time[i]`, …; its rule lines are
-- `rules[entry_rule[i]]` and `rules[exit_rule[i]]` (null: no exit rule), and its values are
-- `entry_vals[entry_ends[i-1] + 1 : entry_ends[i]]` (`entry_ends[0]` read as 0), likewise for the exit.

create table backtest_trade_chunk (
    backtest_run_id  uuid not null,
    first_seq        integer not null check (first_seq >= 1),
    n                integer not null check (n >= 1),
    entry_time       timestamptz[] not null,
    exit_time        timestamptz[] not null,
    entry_price      double precision[] not null,
    exit_price       double precision[] not null,
    units            double precision[] not null,
    fees             double precision[] not null,
    pnl              double precision[] not null,
    return_pct       double precision[] not null,
    bars_held        integer[] not null,
    exit_reason      text[] not null,
    rules            text[] not null,
    entry_rule       integer[] not null,
    exit_rule        integer[] not null,
    entry_ends       integer[] not null,
    entry_vals       double precision[] not null,
    exit_ends        integer[] not null,
    exit_vals        double precision[] not null,
    -- `n` in the key's index: a run's total and a page's chunks are read from the index alone.
    primary key (backtest_run_id, first_seq) include (n),
    check (cardinality(entry_time) = n and cardinality(exit_time) = n and cardinality(entry_price) = n
           and cardinality(exit_price) = n and cardinality(units) = n and cardinality(fees) = n
           and cardinality(pnl) = n and cardinality(return_pct) = n and cardinality(bars_held) = n
           and cardinality(exit_reason) = n and cardinality(entry_rule) = n and cardinality(exit_rule) = n
           and cardinality(entry_ends) = n and cardinality(exit_ends) = n)
)
-- A chunk is sized to ~6 KB: kept whole in its heap page, without the toaster trying to compress it.
with (toast_tuple_target = 8160);

-- The existing trades, 32 to a chunk. Values go through their shortest exact text form (round-trips in
-- PostgreSQL 12 and later when extra_float_digits is above 0, set here whatever the connection says).
-- Readers of `backtest_trade` wait while this runs (the rename takes the table's exclusive lock).
set local extra_float_digits = 3;

alter table backtest_trade rename to backtest_trade_row;

-- A chunk's trades are numbered from its first seq on, so every run's seqs must be 1..count (the backtest
-- job writes them so); a run with gaps (rows deleted by hand) stops the migration rather than renumbering.
do $$
declare
    bad uuid;
begin
    select backtest_run_id into bad from backtest_trade_row
     group by backtest_run_id having min(seq) <> 1 or max(seq) <> count(*) limit 1;
    if bad is not null then
        raise exception 'backtest run % has trades whose seq is not 1..count; renumber or delete them first', bad;
    end if;
end
$$;

insert into backtest_trade_chunk (backtest_run_id, first_seq, n, entry_time, exit_time, entry_price, exit_price,
                                  units, fees, pnl, return_pct, bars_held, exit_reason, rules, entry_rule,
                                  exit_rule, entry_ends, entry_vals, exit_ends, exit_vals)
with t as (
    select r.backtest_run_id, r.seq, r.entry_time, r.exit_time, r.entry_price, r.exit_price, r.units, r.fees,
           r.pnl, r.return_pct, r.bars_held, r.exit_reason, r.entry_rule, r.exit_rule, r.entry_vals, r.exit_vals,
           (r.seq - 1) / 32 as chunk,
           sum(cardinality(r.entry_vals)) over w as entry_end,
           sum(cardinality(r.exit_vals)) over w as exit_end
      from backtest_trade_row r
    window w as (partition by r.backtest_run_id, (r.seq - 1) / 32 order by r.seq)
), d as (
    select backtest_run_id, chunk, array_agg(distinct rule order by rule) as rules
      from (select backtest_run_id, chunk, entry_rule as rule from t
            union
            select backtest_run_id, chunk, exit_rule from t where exit_rule is not null) x
     group by backtest_run_id, chunk
)
select t.backtest_run_id, min(t.seq), count(*)::int,
       array_agg(t.entry_time order by t.seq), array_agg(t.exit_time order by t.seq),
       array_agg(t.entry_price order by t.seq), array_agg(t.exit_price order by t.seq),
       array_agg(t.units order by t.seq), array_agg(t.fees order by t.seq),
       array_agg(t.pnl order by t.seq), array_agg(t.return_pct order by t.seq),
       array_agg(t.bars_held order by t.seq), array_agg(t.exit_reason order by t.seq),
       d.rules,
       array_agg(array_position(d.rules, t.entry_rule) order by t.seq),
       array_agg(array_position(d.rules, t.exit_rule) order by t.seq),
       array_agg(t.entry_end::int order by t.seq),
       coalesce(string_to_array(string_agg(nullif(array_to_string(t.entry_vals, ',', 'NULL'), ''), ','
                                           order by t.seq), ',', 'NULL')::float8[], '{}'),
       array_agg(t.exit_end::int order by t.seq),
       coalesce(string_to_array(string_agg(nullif(array_to_string(t.exit_vals, ',', 'NULL'), ''), ','
                                           order by t.seq), ',', 'NULL')::float8[], '{}')
  from t join d using (backtest_run_id, chunk)
 group by t.backtest_run_id, t.chunk, d.rules;

drop table backtest_trade_row;

-- A result's trades go with it (as the trigger did for the rows).
create or replace function backtest_result_delete_trades() returns trigger
language plpgsql as $$
begin
    delete from backtest_trade_chunk t using gone where t.backtest_run_id = gone.backtest_run_id;
    return null;
end
$$;

create view backtest_trade as
select c.backtest_run_id,
       (c.first_seq + u.i - 1)::int as seq,
       u.entry_time, u.exit_time, u.entry_price, u.exit_price, u.units, u.fees, u.pnl, u.return_pct,
       u.bars_held, u.exit_reason,
       c.rules[u.entry_rule] as entry_rule,
       c.entry_vals[coalesce(c.entry_ends[u.i - 1], 0) + 1 : u.entry_end] as entry_vals,
       c.rules[u.exit_rule] as exit_rule,
       c.exit_vals[coalesce(c.exit_ends[u.i - 1], 0) + 1 : u.exit_end] as exit_vals
  from backtest_trade_chunk c
 cross join lateral unnest(c.entry_time, c.exit_time, c.entry_price, c.exit_price, c.units, c.fees, c.pnl,
                           c.return_pct, c.bars_held, c.exit_reason, c.entry_rule, c.exit_rule, c.entry_ends,
                           c.exit_ends)
       with ordinality as u(entry_time, exit_time, entry_price, exit_price, units, fees, pnl, return_pct,
                            bars_held, exit_reason, entry_rule, exit_rule, entry_end, exit_end, i);

comment on view backtest_trade is
    'One row per trade, read from backtest_trade_chunk (where trades are stored).';

-- A worker of the previous release writes trades a row each (`copy backtest_trade …`) until it is replaced: each
-- row becomes a chunk of one trade, so its backtests still finish during a rolling deploy.
create function backtest_trade_insert_row() returns trigger
language plpgsql as $$
declare
    rules text[] := case when new.exit_rule is null or new.exit_rule = new.entry_rule then array[new.entry_rule]
                         else array[new.entry_rule, new.exit_rule] end;
begin
    insert into backtest_trade_chunk (backtest_run_id, first_seq, n, entry_time, exit_time, entry_price,
                                      exit_price, units, fees, pnl, return_pct, bars_held, exit_reason, rules,
                                      entry_rule, exit_rule, entry_ends, entry_vals, exit_ends, exit_vals)
    values (new.backtest_run_id, new.seq, 1, array[new.entry_time], array[new.exit_time], array[new.entry_price],
            array[new.exit_price], array[new.units], array[new.fees], array[new.pnl], array[new.return_pct],
            array[new.bars_held], array[new.exit_reason], rules, array[1],
            array[array_position(rules, new.exit_rule)],
            array[coalesce(cardinality(new.entry_vals), 0)], coalesce(new.entry_vals, '{}'),
            array[coalesce(cardinality(new.exit_vals), 0)], coalesce(new.exit_vals, '{}'));
    return new;
end
$$;

create trigger backtest_trade_insert_row
    instead of insert on backtest_trade
    for each row execute function backtest_trade_insert_row();
