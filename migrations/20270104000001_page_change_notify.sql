-- Change signals for the signed-in page cache of every web process (server/src/signed_in_cache.rs).
--
-- A web process keeps a signed-in page (today: the backtests list) as rendered and answers later visits of the
-- same session from it, without a database round trip. It must then hear of every change to anything such a
-- page shows: each table below announces its changes on channel `page_change`, on commit, with the user whose
-- pages change as the payload, or `*` when the change can concern anyone. A process forgets the pages it was
-- told of; it forgets all of them, and serves none, while its listener connection is down.
--
-- A page may be cached only if everything it shows comes from these tables, read at render time (an
-- in-process cache such as the banner's must be cleared by the signal too: docs/architecture.md#page-caches).
-- Only changes a page can show are announced: not a session's last use, not a run's progress (the list's
-- progress bars and "running · N %" texts follow `status.json` in the browser at once; a kept page is at
-- most 10 s old), not a no-op upsert.

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

-- A backtest run's job: its status decides whether the list shows an unfinished run as lost (failed). Only
-- status changes and deletions matter (a running job's lease renewals do not), and only for unfinished runs
-- (housekeeping prunes the jobs of finished ones).
create function page_change_job() returns trigger language plpgsql as $$
begin
    perform pg_notify('page_change', r.user_id::text)
       from backtest_run r
      where r.job_id = old.job_id and r.status in ('queued', 'running');
    return null;
end
$$;

-- An undeliverable address: the mail banner of the users with that address.
create function page_change_mail_suppression() returns trigger language plpgsql as $$
begin
    perform pg_notify('page_change', u.user_id::text)
       from app_user u
      where lower(u.email) in (
          case when tg_op <> 'INSERT' then old.address end,
          case when tg_op <> 'DELETE' then new.address end);
    return null;
end
$$;

-- Per-user tables: the session and account (who is signed in, their name, role, time zone, whether they are
-- disabled, pending approval, enrolled in two-factor sign-in), the bell, the strategies and runs.
create trigger app_user_page_change after insert or update or delete on app_user
    for each row execute function page_change_user();
create trigger user_session_page_change after insert or delete on user_session
    for each row execute function page_change_user();
create trigger user_session_page_change_update after update of user_id, revoked_at, expires_at on user_session
    for each row execute function page_change_user();
create trigger signup_request_page_change after insert or update or delete on signup_request
    for each row execute function page_change_user();
create trigger user_totp_page_change after insert or update or delete on user_totp
    for each row execute function page_change_user();
create trigger notification_page_change after insert or update or delete on notification
    for each row execute function page_change_user();
create trigger strategy_page_change after insert or update or delete on strategy
    for each row execute function page_change_user();
create trigger backtest_run_page_change after insert or delete on backtest_run
    for each row execute function page_change_user();
create trigger backtest_run_page_change_update after update on backtest_run
    for each row
    when ((to_jsonb(old) - 'progress' - 'updated_at') is distinct from (to_jsonb(new) - 'progress' - 'updated_at'))
    execute function page_change_user();
create trigger strategy_version_page_change after insert or update or delete on strategy_version
    for each row execute function page_change_strategy_version();
create trigger job_page_change after update of status on job
    for each row when (old.status is distinct from new.status) execute function page_change_job();
create trigger job_page_change_delete after delete on job
    for each row execute function page_change_job();

create trigger mail_suppression_page_change after insert or update or delete on mail_suppression
    for each row execute function page_change_mail_suppression();

-- Tables whose rows can show on anyone's page: instruments, the platform settings (maintenance banner,
-- two-factor requirement). Updates that change nothing but the time stamp are not announced.
create trigger instrument_page_change after insert or delete on instrument
    for each row execute function page_change_all();
create trigger instrument_page_change_update after update on instrument
    for each row when ((to_jsonb(old) - 'updated_at') is distinct from (to_jsonb(new) - 'updated_at'))
    execute function page_change_all();
create trigger platform_settings_page_change after insert or delete on platform_settings
    for each row execute function page_change_all();
create trigger platform_settings_page_change_update after update on platform_settings
    for each row when ((to_jsonb(old) - 'updated_at') is distinct from (to_jsonb(new) - 'updated_at'))
    execute function page_change_all();

-- Emptying a table (tests, restores) concerns everyone.
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
create trigger instrument_page_change_truncate after truncate on instrument
    for each statement execute function page_change_all();
create trigger platform_settings_page_change_truncate after truncate on platform_settings
    for each statement execute function page_change_all();
create trigger mail_suppression_page_change_truncate after truncate on mail_suppression
    for each statement execute function page_change_all();
