-- Payments (issue 15, "Payments" and "States"; docs/billing.md).
--
-- Vortex holds no card data: the provider (Stripe) keeps cards, invoices and the subscription; Vortex keeps a
-- copy of each user's subscription state, fetched from the provider whenever one of its webhooks says something
-- changed, and the ids of the webhook events it has processed (idempotency).

-- The provider's price id of each paid plan (a Stripe `price_…`): a checkout for the plan buys this price, and a
-- subscription on this price entitles its user to the plan. NULL: the plan cannot be bought.
alter table plan add column provider_price_id text
    check (provider_price_id ~ '^[A-Za-z0-9_]{1,100}$');
create unique index plan_provider_price_key on plan (provider_price_id) where provider_price_id is not null;

-- One row per user who ever started a checkout: the provider customer (created with the user's id in its
-- metadata before the first checkout; one per user) and the latest state of the user's subscription, as the
-- provider last reported it. `observed_at` is when that state was read from the provider: a state read earlier
-- than the stored one is never written over it (two deliveries racing, or an old event processed late).
create table subscription (
    user_id               uuid primary key references app_user (user_id) on delete cascade,
    customer_id           text not null check (length(customer_id) between 1 and 255),
    subscription_id       text check (length(subscription_id) between 1 and 255),
    status                text check (status in ('incomplete', 'incomplete_expired', 'trialing', 'active',
                                                 'past_due', 'unpaid', 'canceled', 'paused')),
    -- The plan the subscription's price maps to (NULL: no subscription yet, or a price no plan has).
    plan_id               uuid references plan (plan_id) on delete set null,
    price_id              text check (length(price_id) between 1 and 255),
    current_period_end    timestamptz,
    cancel_at_period_end  boolean not null default false,
    trial_end             timestamptz,
    observed_at           timestamptz,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    constraint subscription_customer_key unique (customer_id),
    constraint subscription_subscription_key unique (subscription_id)
);
create trigger subscription_set_updated_at before update on subscription
    for each row execute function set_updated_at();

-- Every webhook event processed (or deliberately ignored), by the provider's event id: a second delivery of the
-- same id does nothing. Recorded in the same transaction as the event's effect.
create table billing_event (
    event_id     text primary key check (length(event_id) between 1 and 255),
    event_type   text not null check (length(event_type) between 1 and 100),
    received_at  timestamptz not null default now(),
    outcome      text not null check (length(outcome) <= 500)
);
create index billing_event_received_idx on billing_event (received_at);
