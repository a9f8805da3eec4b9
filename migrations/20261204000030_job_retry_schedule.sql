-- Retries are scheduled from Postgres (issue 11, items 15 and 16).
--
-- run_at:    when the job is due. A failed attempt sets it to now() + an exponential back-off with jitter; the
--            reconciler pushes the job's id to Redis only once it is due, so a retry can never run early.
-- pushed_at: when the job's id was last handed to Redis; NULL means "not in Redis" (never pushed, a push that
--            failed, or a retry waiting for its run_at). Reconnecting workers push only such rows and rows whose
--            lease expired, not every unfinished job, so a rolling restart does not multiply deliveries.
alter table job add column run_at timestamptz not null default now();
alter table job add column pushed_at timestamptz;

-- Rows left pending by the previous version are delivered once by the new reconciler.
update job set run_at = now(), pushed_at = null where status in ('queued', 'running');

create index job_due_idx on job (run_at) where status = 'queued' and pushed_at is null;
create index job_pushed_idx on job (pushed_at) where status = 'queued' and pushed_at is not null;
create index job_lease_idx on job (lease_until) where status = 'running';

-- What each housekeeping run pruned, by table (retention, item 14).
alter table housekeeping_run add column pruned jsonb not null default '{}'::jsonb;

-- Retention deletes by age; without these indexes each run would scan the tables.
create index audit_event_created_idx on audit_event (created_at);
create index user_session_expires_idx on user_session (expires_at);
create index user_token_expires_idx on user_token (expires_at);
create index email_outbox_finished_idx on email_outbox (updated_at) where status in ('sent', 'failed');
