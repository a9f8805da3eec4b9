-- Shared helper: every table's updated_at is kept current by one trigger function.
create or replace function set_updated_at() returns trigger as $$
begin
    new.updated_at := now();
    return new;
end;
$$ language plpgsql;

-- Postgres is the source of truth for background jobs; Redis (apalis) only carries the job id.
-- A row is claimed with a lease: a worker that dies mid-job loses its lease and another worker re-runs the job.
-- Handlers key every side effect on job_id, so a re-run never repeats an effect.
create table job (
    job_id        uuid primary key,
    queue         text not null,
    kind          text not null,
    payload       jsonb not null default '{}'::jsonb,
    status        text not null default 'queued'
                  check (status in ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts      integer not null default 0 check (attempts >= 0),
    max_attempts  integer not null default 5 check (max_attempts > 0),
    last_error    text,
    worker        text,
    lease_until   timestamptz,
    request_id    text,
    -- at most one unfinished job per dedupe key (e.g. the scheduled housekeeping run)
    dedupe_key    text,
    enqueued_at   timestamptz not null default now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);

create index job_pending_idx on job (status, enqueued_at) where status in ('queued', 'running');
create index job_finished_idx on job (finished_at) where status in ('done', 'failed', 'cancelled');
create unique index job_dedupe_key on job (dedupe_key) where dedupe_key is not null and status in ('queued', 'running');

create trigger job_set_updated_at before update on job
    for each row execute function set_updated_at();

-- One row per completed housekeeping job: its effect, recorded in the same transaction as the pruning.
create table housekeeping_run (
    housekeeping_run_id bigint generated always as identity primary key,
    job_id              uuid not null unique references job (job_id) on delete cascade,
    jobs_pruned         bigint not null,
    created_at          timestamptz not null default now()
);
