-- The admin audit log (docs/admin.md#audit-log) pages newest first by id, filtered by the user an event is
-- about, by who acted or by event name: one index per filter, in the order of the pages. (The audit trail is
-- append-only; on a large table, build these by hand with `create index concurrently` before migrating.)
create index if not exists audit_event_user_id_idx on audit_event (user_id, audit_event_id desc)
    where user_id is not null;
create index if not exists audit_event_actor_id_idx on audit_event (actor_id, audit_event_id desc)
    where actor_id is not null;
create index if not exists audit_event_event_id_idx on audit_event (event, audit_event_id desc);
