//! A small client of the Stripe REST API (form-encoded requests, JSON answers): the calls Vortex makes.
//! Bounded: 5 s to connect, 15 s per request, answers of at most [`MAX_RESPONSE`] bytes. The API key is sent
//! as a bearer token and never logged.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    settings::BillingSettings,
};

/// Largest answer read from the provider.
pub const MAX_RESPONSE: usize = 1024 * 1024;
/// Invoices listed on the plan page and in `GET /api/v1/me/billing`.
pub const INVOICES: usize = 12;

/// The provider's API, as configured.
pub struct Stripe {
    http: reqwest::Client,
    base: Url,
    key: SecretString,
}

/// A subscription, as the provider reports it (the fields Vortex reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    pub id: String,
    /// The customer's id (`cus_…`); expanded objects are not requested.
    pub customer: String,
    pub status: String,
    #[serde(default)]
    pub cancel_at_period_end: bool,
    /// Older API versions: on the subscription; newer: on each item.
    #[serde(default)]
    pub current_period_end: Option<i64>,
    #[serde(default)]
    pub trial_end: Option<i64>,
    pub items: Items,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Items {
    pub data: Vec<Item>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    pub price: Price,
    #[serde(default)]
    pub current_period_end: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Price {
    pub id: String,
}

impl Subscription {
    /// The price of the first item (Vortex sells one price per subscription).
    pub fn price_id(&self) -> Option<&str> {
        self.items.data.first().map(|i| i.price.id.as_str())
    }

    pub fn period_end(&self) -> Option<DateTime<Utc>> {
        self.current_period_end
            .or_else(|| self.items.data.first().and_then(|i| i.current_period_end))
            .and_then(|t| DateTime::from_timestamp(t, 0))
    }

    pub fn trial_end(&self) -> Option<DateTime<Utc>> {
        self.trial_end.and_then(|t| DateTime::from_timestamp(t, 0))
    }
}

#[derive(Debug, Clone, Deserialize)]
struct List<T> {
    data: Vec<T>,
}

/// One page of the provider's event list (newest first).
#[derive(Debug, Clone, Deserialize)]
pub struct EventPage {
    /// The events as the provider sends them (each is processed like a webhook delivery's body).
    pub data: Vec<serde_json::Value>,
    /// Older events match the filter: ask again with `starting_after` = the last event's id.
    #[serde(default)]
    pub has_more: bool,
}

/// Events one page of [`Stripe::events`] asks for (Stripe's maximum).
pub const EVENTS_PER_PAGE: usize = 100;

#[derive(Debug, Clone, Deserialize)]
struct Created {
    id: String,
}

#[derive(Debug, Clone, Deserialize)]
struct WithUrl {
    url: String,
}

/// An invoice, as the plan page lists it.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct Invoice {
    pub id: String,
    #[serde(default)]
    pub number: Option<String>,
    /// `draft`, `open`, `paid`, `uncollectible`, `void`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub amount_due: i64,
    #[serde(default)]
    pub amount_paid: i64,
    #[serde(default)]
    pub currency: String,
    pub created: i64,
    /// The provider's page of the invoice (to view and pay it).
    #[serde(default)]
    pub hosted_invoice_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
}

impl Stripe {
    /// The configured client.
    ///
    /// # Errors
    /// [`Error::Conflict`] when billing is off (`PAYMENT_PROVIDER=none`).
    pub fn from_settings(s: &BillingSettings) -> Result<Self> {
        let key = match (&s.api_key, s.enabled()) {
            (Some(k), true) => k.clone(),
            _ => return Err(super::billing_off()),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("vortex-billing")
            .build()
            .map_err(|e| Error::Internal(anyhow::anyhow!("payment client: {e}")))?;
        Ok(Self {
            http,
            base: s.api_base.clone(),
            key,
        })
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|e| Error::Internal(anyhow::anyhow!("payment provider URL: {e}")))
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T> {
        // The cause is short and names no secret (no URL, no key): it is logged and shown to the caller.
        let unavailable = |m: String| {
            tracing::warn!(call = what, error = %m, "payment provider call failed");
            Error::Unavailable {
                message: format!(
                    "the payment provider did not answer ({m}); please try again in a moment"
                ),
                retry_after: 5,
            }
        };
        let cause = |e: &reqwest::Error| {
            if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connect() {
                "could not connect".to_owned()
            } else {
                "the connection failed".to_owned()
            }
        };
        let mut resp = req
            .bearer_auth(self.key.expose_secret())
            .send()
            .await
            .map_err(|e| unavailable(cause(&e)))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| unavailable(cause(&e)))? {
            if body.len() + chunk.len() > MAX_RESPONSE {
                return Err(unavailable(format!(
                    "answer larger than {MAX_RESPONSE} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(unavailable(format!("HTTP {status}")));
        }
        if status.as_u16() == 404 {
            return Err(Error::NotFound);
        }
        if !status.is_success() {
            let msg = serde_json::from_slice::<ErrorBody>(&body)
                .ok()
                .and_then(|b| b.error.message)
                .unwrap_or_default();
            let msg: String = msg.chars().take(300).collect();
            return Err(Error::Internal(anyhow::anyhow!(
                "payment provider refused {what}: HTTP {status}: {msg}"
            )));
        }
        serde_json::from_slice(&body).map_err(|e| {
            Error::Internal(anyhow::anyhow!(
                "payment provider answer to {what} unreadable: {e}"
            ))
        })
    }

    /// Creates the customer of `user` (its id in the metadata); the idempotency key makes a retry return the
    /// same customer.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the provider does not answer; [`Error::Internal`] when it refuses.
    pub async fn create_customer(&self, user: Uuid, email: &str) -> Result<String> {
        let req = self
            .http
            .post(self.url("/v1/customers")?)
            .header("Idempotency-Key", format!("vortex-customer-{user}"))
            .form(&[
                ("email", email.to_owned()),
                ("metadata[user_id]", user.to_string()),
            ]);
        Ok(self.send::<Created>("create customer", req).await?.id)
    }

    /// A Checkout Session for one subscription to `price`; returns the page to send the trader to.
    ///
    /// # Errors
    /// As [`Stripe::create_customer`].
    pub async fn create_checkout(
        &self,
        customer: &str,
        price: &str,
        user: Uuid,
        trial_days: i32,
        success_url: &str,
        cancel_url: &str,
    ) -> Result<String> {
        let mut form = vec![
            ("mode", "subscription".to_owned()),
            ("customer", customer.to_owned()),
            ("client_reference_id", user.to_string()),
            ("line_items[0][price]", price.to_owned()),
            ("line_items[0][quantity]", "1".to_owned()),
            ("success_url", success_url.to_owned()),
            ("cancel_url", cancel_url.to_owned()),
            ("subscription_data[metadata][user_id]", user.to_string()),
        ];
        if trial_days > 0 {
            form.push((
                "subscription_data[trial_period_days]",
                trial_days.to_string(),
            ));
        }
        let req = self
            .http
            .post(self.url("/v1/checkout/sessions")?)
            .form(&form);
        Ok(self
            .send::<WithUrl>("create checkout session", req)
            .await?
            .url)
    }

    /// A Billing Portal session (payment method, invoices, cancel) returning to `return_url`.
    ///
    /// # Errors
    /// As [`Stripe::create_customer`].
    pub async fn create_portal(&self, customer: &str, return_url: &str) -> Result<String> {
        let req = self
            .http
            .post(self.url("/v1/billing_portal/sessions")?)
            .form(&[("customer", customer), ("return_url", return_url)]);
        Ok(self
            .send::<WithUrl>("create portal session", req)
            .await?
            .url)
    }

    /// One subscription, as the provider knows it now (a canceled one too).
    ///
    /// # Errors
    /// [`Error::NotFound`] when the provider has no such subscription; as [`Stripe::create_customer`].
    pub async fn subscription(&self, id: &str) -> Result<Subscription> {
        let mut url = self.url("/v1/subscriptions/")?;
        url.path_segments_mut()
            .map_err(|()| Error::Internal(anyhow::anyhow!("payment provider URL")))?
            .pop_if_empty()
            .push(id);
        self.send("retrieve subscription", self.http.get(url)).await
    }

    /// The customer's most recent subscriptions, any status, newest first.
    ///
    /// # Errors
    /// As [`Stripe::create_customer`].
    pub async fn subscriptions_of(&self, customer: &str) -> Result<Vec<Subscription>> {
        let req = self.http.get(self.url("/v1/subscriptions")?).query(&[
            ("customer", customer),
            ("status", "all"),
            ("limit", "10"),
        ]);
        Ok(self
            .send::<List<Subscription>>("list subscriptions", req)
            .await?
            .data)
    }

    /// One page of events (newest first) of the given `types` created in `[from, to]` (Unix seconds), after
    /// the event `starting_after` (the last id of the previous page). Stripe keeps events for 30 days.
    ///
    /// # Errors
    /// As [`Stripe::create_customer`]; an answer that is not an event list is [`Error::Internal`].
    pub async fn events(
        &self,
        types: &[&str],
        from: i64,
        to: i64,
        starting_after: Option<&str>,
    ) -> Result<EventPage> {
        let mut query: Vec<(&str, String)> = vec![
            ("created[gte]", from.to_string()),
            ("created[lte]", to.to_string()),
            ("limit", EVENTS_PER_PAGE.to_string()),
        ];
        query.extend(types.iter().map(|t| ("types[]", (*t).to_owned())));
        if let Some(id) = starting_after {
            query.push(("starting_after", id.to_owned()));
        }
        let req = self.http.get(self.url("/v1/events")?).query(&query);
        let page: EventPage = self.send("list events", req).await?;
        if page.data.len() > EVENTS_PER_PAGE {
            return Err(Error::Internal(anyhow::anyhow!(
                "payment provider answer to list events has {} events (at most {EVENTS_PER_PAGE} asked)",
                page.data.len()
            )));
        }
        Ok(page)
    }

    /// The customer's latest invoices, newest first.
    ///
    /// # Errors
    /// As [`Stripe::create_customer`].
    pub async fn invoices(&self, customer: &str) -> Result<Vec<Invoice>> {
        let req = self.http.get(self.url("/v1/invoices")?).query(&[
            ("customer", customer.to_owned()),
            ("limit", INVOICES.to_string()),
        ]);
        Ok(self.send::<List<Invoice>>("list invoices", req).await?.data)
    }
}
