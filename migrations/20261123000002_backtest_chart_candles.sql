-- The candles a result's chart draws (resampled to at most 5,000 bars), stored with the result so the results
-- page does not reload a year of 1-minute candles to draw it. Null for results stored before this column.
alter table backtest_result add column chart_candles jsonb;
