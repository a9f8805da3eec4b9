-- Sign-up email-domain lists (docs/admin.md#overview): addresses at a denied domain never sign up; with an
-- allow list, only addresses at those domains do. Lower-case domain names; a domain covers its subdomains.
alter table platform_settings
    add column signup_allowed_domains text[] not null default '{}',
    add column signup_denied_domains text[] not null default '{}';
