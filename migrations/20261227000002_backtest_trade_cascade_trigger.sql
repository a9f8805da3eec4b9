-- Storing a run's trades (issue 16): the foreign key from `backtest_trade` to `backtest_result` was checked once
-- per inserted row, which made a 27k-trade COPY take ~190 ms instead of ~30 ms. Trades are written only by the
-- backtest job, in the transaction that inserts their result row just before, so the check never caught
-- anything; what the key also did, deleting a result's trades with it, is now a statement-level trigger.
-- (The `candle` table has no foreign key to `instrument` for the same reason; see docs/market-data.md.)

alter table backtest_trade drop constraint backtest_trade_backtest_run_id_fkey;

create function backtest_result_delete_trades() returns trigger
language plpgsql as $$
begin
    delete from backtest_trade t using gone where t.backtest_run_id = gone.backtest_run_id;
    return null;
end
$$;

create trigger backtest_result_delete_trades
    after delete on backtest_result
    referencing old table as gone
    for each statement execute function backtest_result_delete_trades();

-- Trades of results deleted before this migration ran cannot exist (the key cascaded), so nothing to clean.
