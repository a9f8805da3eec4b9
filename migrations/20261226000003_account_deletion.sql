-- Deleting an account (docs/account.md) keeps its audit rows with the user id (and clears their address): the
-- audit trail's user and actor ids stop being foreign keys, so deleting the user no longer nulls them.
alter table audit_event drop constraint audit_event_user_id_fkey;
alter table audit_event drop constraint audit_event_actor_id_fkey;
