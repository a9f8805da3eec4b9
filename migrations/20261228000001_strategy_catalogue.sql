-- The strategy catalogue (docs/admin.md#strategy-catalogue): strategies that admins author, version, publish or
-- hide and feature, and that traders create their own strategies from. The seven built-in templates are seeded
-- into it by `vortex migrate` / `vortex serve` (backend::backtest::catalogue::seed), once each: an admin may then
-- edit or hide them like any other entry. Entries are never deleted (strategies name the slug they came from).
create table catalogue_strategy (
    catalogue_id    uuid primary key,
    slug            text not null unique check (slug ~ '^[a-z0-9][a-z0-9_-]{0,47}$'),
    name            text not null check (length(name) between 1 and 80),
    description     text not null default '' check (length(description) <= 2000),
    published       boolean not null default false,
    featured        boolean not null default false,
    -- seeded from the built-in templates (engine::catalogue)
    builtin         boolean not null default false,
    latest_version  integer not null default 1 check (latest_version > 0),
    created_by      uuid references app_user (user_id) on delete set null,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);
create index catalogue_strategy_listing on catalogue_strategy (published, featured desc, name);

-- Each saved source of an entry; immutable (a change is a new version).
create table catalogue_strategy_version (
    catalogue_id    uuid not null references catalogue_strategy (catalogue_id) on delete cascade,
    version         integer not null check (version > 0),
    source          text not null check (length(source) <= 65536),
    -- the declared parameters (engine::strategy::ParamInfo), computed when the version was saved
    params          jsonb not null default '[]'::jsonb,
    note            text not null default '' check (length(note) <= 500),
    created_by      uuid references app_user (user_id) on delete set null,
    created_at      timestamptz not null default now(),
    primary key (catalogue_id, version)
);

-- Which version of the catalogue entry (named by `template`) a strategy was created from.
alter table strategy add column template_version integer check (template_version > 0);
-- "how many strategies were created from this entry" (the admin's entry page)
create index strategy_template_idx on strategy (template) where template is not null;
