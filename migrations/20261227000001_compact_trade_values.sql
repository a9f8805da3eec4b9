-- Compact trade values (issue 16): a trade's rule values were stored as jsonb pairs `[[name, value|null], …]`
-- twice per trade, which made storing a 27k-trade run's trades cost most of a backtest. The values are now a
-- `float8[]` per side (null where the value was not finite), and the names, which are the same for every
-- trade of a rule, are stored once per run in `backtest_result.value_names`: `{"<rule line>": [name, …]}`.
-- The API and the exports read both back into the same pairs as before.
--
-- Expand, then contract: the old `entry_values`/`exit_values` columns stay (backfilled rows keep them, new rows
-- get their default `[]`) so that a build from before this migration keeps working while a deploy rolls; a
-- later release drops them.

alter table backtest_result add column value_names jsonb not null default '{}'::jsonb;
alter table backtest_trade add column entry_vals float8[], add column exit_vals float8[];

-- The names of each rule, from its trades (every trade of a rule has the same names).
update backtest_result r
   set value_names = coalesce((
         select jsonb_object_agg(rule, names)
           from (select distinct on (rule) rule, names
                   from (select t.entry_rule as rule,
                                (select coalesce(jsonb_agg(e -> 0 order by o), '[]'::jsonb)
                                   from jsonb_array_elements(t.entry_values) with ordinality as x(e, o)) as names
                           from backtest_trade t
                          where t.backtest_run_id = r.backtest_run_id
                         union all
                         select t.exit_rule,
                                (select coalesce(jsonb_agg(e -> 0 order by o), '[]'::jsonb)
                                   from jsonb_array_elements(t.exit_values) with ordinality as x(e, o))
                           from backtest_trade t
                          where t.backtest_run_id = r.backtest_run_id and t.exit_rule is not null) u
                  order by rule, jsonb_array_length(names) desc) d), '{}'::jsonb)
 where exists (select 1 from backtest_trade t where t.backtest_run_id = r.backtest_run_id);

update backtest_trade
   set entry_vals = array(select (e ->> 1)::float8
                            from jsonb_array_elements(entry_values) with ordinality as x(e, o) order by o),
       exit_vals = array(select (e ->> 1)::float8
                           from jsonb_array_elements(exit_values) with ordinality as x(e, o) order by o);

alter table backtest_trade
  alter column entry_vals set not null,
  alter column entry_vals set default '{}',
  alter column exit_vals set not null,
  alter column exit_vals set default '{}';
