-- Inbound signals per paper run (docs/paper-trading.md, "Inbound signals"; docs/design/paper-trading.md).
--
-- signal_mode: off (the strategy's rules alone) or gate (an entry needs an accepted `buy` signal since the
-- previous processed close; an accepted `exit` closes the position at the next fill). The secret is shown once
-- and never stored: only its SHA-256 (the token check compares hashes; signers use the hash's hex as HMAC key).
alter table paper_run
    add column signal_mode text not null default 'off' check (signal_mode in ('off', 'gate')),
    add column signal_secret_hash bytea check (octet_length(signal_secret_hash) = 32),
    add column signal_allow_ips text[] not null default '{}' check (cardinality(signal_allow_ips) <= 16),
    -- when the mode last changed: signals accepted before it do not gate the run
    add column signal_since timestamptz,
    add column signal_rotated_at timestamptz;

-- no_entry: the gate of a candle without an accepted buy signal (entries decided there are refused).
alter table paper_candle drop constraint paper_candle_gate_check;
alter table paper_candle add constraint paper_candle_gate_check
    check (gate in ('open', 'no_entry', 'reduce_only', 'halt', 'flatten'));

-- Every request to a run's signal URL (once the run has a secret), with its verdict. Requests for unknown runs or
-- runs without signals are answered 404 and not stored. Retention: the newest 1,000 per run (older rows are
-- deleted as new ones arrive; accepted signals not yet used by the step stay).
create table paper_signal (
    signal_id        uuid primary key,
    paper_run_id     uuid not null references paper_run (paper_run_id) on delete cascade,
    received_at      timestamptz not null,
    -- the body as received (at most 8 KiB; a token in it is replaced by "[redacted]")
    body             text not null check (octet_length(body) <= 8192),
    action           text check (action in ('buy', 'exit')),
    ticker           text check (char_length(ticker) <= 64),
    signal_time      timestamptz,
    client_id        text check (char_length(client_id) <= 128),
    idempotency_key  text check (char_length(idempotency_key) <= 256),
    auth             text check (auth in ('signature', 'token')),
    verdict          text not null check (verdict in ('accepted', 'rejected', 'duplicate')),
    status           smallint not null,
    reason           text check (char_length(reason) <= 500),
    source_ip        text check (char_length(source_ip) <= 64),
    -- accepted signals: the candle whose gate it set (written by the step that used it, in its transaction)
    applied_to       timestamptz
);
create unique index paper_signal_idempotency on paper_signal (paper_run_id, idempotency_key)
    where verdict = 'accepted';
create index paper_signal_run on paper_signal (paper_run_id, received_at desc);
create index paper_signal_pending on paper_signal (paper_run_id, received_at)
    where verdict = 'accepted' and applied_to is null;
