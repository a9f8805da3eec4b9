-- Compare-and-swap for a strategy's one draft slot (issue 11, item 12): every write of the draft bumps
-- `draft_rev`; a save carries the revision its page showed, and a refused save from a stale page (another tab)
-- no longer overwrites a newer draft.
alter table strategy add column draft_rev integer not null default 0;
