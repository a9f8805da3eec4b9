-- Change signals for the signed-in page cache of every web process (server/src/signed_in_cache.rs).
--
-- A web process keeps a signed-in page (today: the backtests list) as rendered and answers later visits of the
-- same session from it, without a database round trip. It must then hear of every change to anything such a
-- page shows: each table below announces its changes on channel `page_change`, on commit, with the user whose
-- pages change as the payload, or `*` when the change can concern anyone. A process forgets the pages it was
-- told of; it forgets all of them, and serves none, while its listener connection is down.
--
-- A page may be cached only if everything it shows comes from these tables (docs/architecture.md#page-caches).

create function page_change_user() returns trigger language plpgsql as $$
begin
    -- Identical payloads of one transaction are delivered once.
    if tg_op <> 'INSERT' then
        perform pg_notify('page_change', old.user_id::text);
    end if;
    if tg_op <> 'DELETE' then
        perform pg_notify('page_change', new.user_id::text);
    end if;
    return null;
end
$$;

create function page_change_all() returns trigger language plpgsql as $$
begin
    perform pg_notify('page_change', '*');
    return null;
end
$$;

-- A strategy version belongs to its strategy's owner.
create function page_change_strategy_version() returns trigger language plpgsql as $$
begin
    perform pg_notify('page_change', s.user_id::text)
       from strategy s
      where s.strategy_id in (
          case when tg_op <> 'INSERT' then old.strategy_id end,
          case when tg_op <> 'DELETE' then new.strategy_id end);
    return null;
end
$$;

-- A backtest run's job: its status decides whether the list shows the run as lost (failed). Only status
-- changes and deletions matter (a running job's lease renewals do not).
create function page_change_job() returns trigger language plpgsql as $$
begin
    perform pg_notify('page_change', r.user_id::text)
       from backtest_run r
      where r.job_id = old.job_id;
    return null;
end
$$;

-- Per-user tables: the session and account (who is signed in, their name, role, time zone, whether they are
-- disabled, pending approval, enrolled in two-factor sign-in), the bell, the strategies and runs.
create trigger app_user_page_change after insert or update or delete on app_user
    for each row execute function page_change_user();
create trigger user_session_page_change after insert or update or delete on user_session
    for each row execute function page_change_user();
create trigger signup_request_page_change after insert or update or delete on signup_request
    for each row execute function page_change_user();
create trigger user_totp_page_change after insert or update or delete on user_totp
    for each row execute function page_change_user();
create trigger notification_page_change after insert or update or delete on notification
    for each row execute function page_change_user();
create trigger strategy_page_change after insert or update or delete on strategy
    for each row execute function page_change_user();
create trigger backtest_run_page_change after insert or update or delete on backtest_run
    for each row execute function page_change_user();
create trigger strategy_version_page_change after insert or update or delete on strategy_version
    for each row execute function page_change_strategy_version();
create trigger job_page_change after update of status on job
    for each row when (old.status is distinct from new.status) execute function page_change_job();
create trigger job_page_change_delete after delete on job
    for each row execute function page_change_job();

-- Tables whose rows can show on anyone's page: instruments, the platform settings (maintenance banner,
-- two-factor requirement), undeliverable addresses (the mail banner). Once per statement.
create trigger instrument_page_change after insert or update or delete or truncate on instrument
    for each statement execute function page_change_all();
create trigger platform_settings_page_change after insert or update or delete or truncate on platform_settings
    for each statement execute function page_change_all();
create trigger mail_suppression_page_change after insert or update or delete or truncate on mail_suppression
    for each statement execute function page_change_all();

-- Emptying a per-user table (tests, restores) concerns everyone.
create trigger app_user_page_change_truncate after truncate on app_user
    for each statement execute function page_change_all();
create trigger user_session_page_change_truncate after truncate on user_session
    for each statement execute function page_change_all();
create trigger signup_request_page_change_truncate after truncate on signup_request
    for each statement execute function page_change_all();
create trigger user_totp_page_change_truncate after truncate on user_totp
    for each statement execute function page_change_all();
create trigger notification_page_change_truncate after truncate on notification
    for each statement execute function page_change_all();
create trigger strategy_page_change_truncate after truncate on strategy
    for each statement execute function page_change_all();
create trigger strategy_version_page_change_truncate after truncate on strategy_version
    for each statement execute function page_change_all();
create trigger backtest_run_page_change_truncate after truncate on backtest_run
    for each statement execute function page_change_all();
create trigger job_page_change_truncate after truncate on job
    for each statement execute function page_change_all();
