//! A mock of the parts of Stripe's API that Vortex calls, speaking its wire format (form-encoded requests with
//! a bearer key, JSON objects and lists, `{"error": …}` refusals), keeping customers, checkout sessions,
//! subscriptions, invoices and events in memory, and delivering webhooks as Stripe does: a JSON event POSTed
//! with a `Stripe-Signature: t=…,v1=…` header computed here (its own HMAC code, not the backend's). Every
//! event made is kept and listed by `GET /v1/events` as Stripe lists them (newest first, `created[gte|lte]`,
//! `types[]`, `limit`, `starting_after`, `has_more`), whether or not it was delivered; the list can be made
//! to fail (HTTP 500, a body that is not JSON, an answer slower than the client waits).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Form, Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

pub const API_KEY: &str = "sk_test_vortex_mock_key";

#[derive(Default)]
struct Inner {
    next: u64,
    customers: HashMap<String, Value>,
    idempotency: HashMap<String, String>,
    sessions: HashMap<String, Value>,
    /// In creation order (lists answer newest first).
    subscriptions: Vec<Value>,
    invoices: Vec<Value>,
    /// Every event made, in creation order.
    events: Vec<Value>,
    /// How `GET /v1/events` fails from its `after`-th call on (0: at once), if it does.
    events_failure: Option<(usize, Failure)>,
    /// The query of each `GET /v1/events` call.
    events_calls: Vec<Vec<(String, String)>>,
    /// `GET /v1/subscriptions/{id}` calls.
    subscription_reads: usize,
}

/// How the event list fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 500 with Stripe's error body.
    ServerError,
    /// HTTP 200 with a body that is not JSON.
    Garbage,
    /// No answer for this long.
    Slow(Duration),
}

impl Inner {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}_mock{:06}", self.next)
    }
}

#[derive(Clone)]
pub struct MockStripe {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn stripe_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "type": "invalid_request_error", "message": message } })),
    )
        .into_response()
}

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {API_KEY}"))
}

async fn create_customer(
    State(s): State<MockStripe>,
    h: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    if !authorized(&h) {
        return stripe_error(StatusCode::UNAUTHORIZED, "Invalid API Key provided");
    }
    let mut inner = s.inner.lock().unwrap();
    let key = h
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = key.as_ref().and_then(|k| inner.idempotency.get(k)).cloned() {
        return Json(inner.customers[&id].clone()).into_response();
    }
    let id = inner.id("cus");
    let c = json!({
        "id": id, "object": "customer", "created": now(), "email": f.get("email"),
        "metadata": { "user_id": f.get("metadata[user_id]") },
    });
    inner.customers.insert(id.clone(), c.clone());
    if let Some(k) = key {
        inner.idempotency.insert(k, id);
    }
    Json(c).into_response()
}

async fn create_session(
    State(s): State<MockStripe>,
    h: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    if !authorized(&h) {
        return stripe_error(StatusCode::UNAUTHORIZED, "Invalid API Key provided");
    }
    let mut inner = s.inner.lock().unwrap();
    let Some(customer) = f
        .get("customer")
        .filter(|c| inner.customers.contains_key(*c))
    else {
        return stripe_error(StatusCode::BAD_REQUEST, "No such customer");
    };
    if f.get("mode").map(String::as_str) != Some("subscription") {
        return stripe_error(StatusCode::BAD_REQUEST, "mode must be subscription");
    }
    let id = inner.id("cs_test");
    let session = json!({
        "id": id, "object": "checkout.session", "mode": "subscription", "status": "open",
        "customer": customer, "client_reference_id": f.get("client_reference_id"),
        "success_url": f.get("success_url"), "cancel_url": f.get("cancel_url"),
        "url": format!("{}/c/pay/{id}", s.url),
        "subscription": null,
        "price": f.get("line_items[0][price]"),
        "trial_period_days": f.get("subscription_data[trial_period_days]"),
    });
    inner.sessions.insert(id, session.clone());
    Json(session).into_response()
}

async fn create_portal(
    State(s): State<MockStripe>,
    h: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    if !authorized(&h) {
        return stripe_error(StatusCode::UNAUTHORIZED, "Invalid API Key provided");
    }
    let mut inner = s.inner.lock().unwrap();
    let id = inner.id("bps");
    Json(json!({
        "id": id, "object": "billing_portal.session", "customer": f.get("customer"),
        "return_url": f.get("return_url"), "url": format!("{}/p/session/{id}", s.url),
    }))
    .into_response()
}

async fn get_subscription(
    State(s): State<MockStripe>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&h) {
        return stripe_error(StatusCode::UNAUTHORIZED, "Invalid API Key provided");
    }
    s.inner.lock().unwrap().subscription_reads += 1;
    match s.subscription(&id) {
        Some(sub) => Json(sub).into_response(),
        None => stripe_error(
            StatusCode::NOT_FOUND,
            &format!("No such subscription: '{id}'"),
        ),
    }
}

async fn list_subscriptions(
    State(s): State<MockStripe>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&h) {
        return stripe_error(StatusCode::UNAUTHORIZED, "Invalid API Key provided");
    }
    let inner = s.inner.lock().unwrap();
    let data: Vec<Value> = inner
        .subscriptions
        .iter()
        .rev()
        .filter(|sub| {
            q.get("customer")
                .is_none_or(|c| sub["customer"] == c.as_str())
        })
        .cloned()
        .collect();
    Json(json!({ "object": "list", "url": "/v1/subscriptions", "has_more": false, "data": data }))
        .into_response()
}

async fn list_invoices(
    State(s): State<MockStripe>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&h) {
        return stripe_error(StatusCode::UNAUTHORIZED, "Invalid API Key provided");
    }
    let inner = s.inner.lock().unwrap();
    let data: Vec<Value> = inner
        .invoices
        .iter()
        .rev()
        .filter(|i| {
            q.get("customer")
                .is_none_or(|c| i["customer"] == c.as_str())
        })
        .cloned()
        .collect();
    Json(json!({ "object": "list", "url": "/v1/invoices", "has_more": false, "data": data }))
        .into_response()
}

/// `GET /v1/events`: the events made, newest first (then the later-made first within one second), filtered as
/// Stripe filters them, 1–100 a page.
async fn list_events(
    State(s): State<MockStripe>,
    h: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    if !authorized(&h) {
        return stripe_error(StatusCode::UNAUTHORIZED, "Invalid API Key provided");
    }
    let failure = {
        let mut inner = s.inner.lock().unwrap();
        inner.events_calls.push(q.clone());
        let call = inner.events_calls.len() - 1;
        inner
            .events_failure
            .filter(|(after, _)| call >= *after)
            .map(|(_, f)| f)
    };
    match failure {
        Some(Failure::ServerError) => {
            return stripe_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unknown error occurred",
            );
        }
        Some(Failure::Garbage) => return (StatusCode::OK, "<html>gateway</html>").into_response(),
        Some(Failure::Slow(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let num = |k: &str| get(k).map(|v| v.parse::<i64>());
    let (gte, lte, limit) = match (num("created[gte]"), num("created[lte]"), num("limit")) {
        (Some(Err(_)), _, _) | (_, Some(Err(_)), _) | (_, _, Some(Err(_))) => {
            return stripe_error(StatusCode::BAD_REQUEST, "Invalid integer");
        }
        (g, l, n) => (
            g.and_then(Result::ok),
            l.and_then(Result::ok),
            n.and_then(Result::ok).unwrap_or(10),
        ),
    };
    if !(1..=100).contains(&limit) {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "This value must be between 1 and 100",
        );
    }
    let types: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "types[]")
        .map(|(_, v)| v.as_str())
        .collect();
    let inner = s.inner.lock().unwrap();
    let mut matching: Vec<&Value> = inner
        .events
        .iter()
        .rev()
        .filter(|e| {
            let c = e["created"].as_i64().unwrap();
            gte.is_none_or(|g| c >= g)
                && lte.is_none_or(|l| c <= l)
                && (types.is_empty() || types.contains(&e["type"].as_str().unwrap()))
        })
        .collect();
    // Newest first; events of one second in reverse order of making (a stable sort keeps that).
    matching.sort_by_key(|e| std::cmp::Reverse(e["created"].as_i64().unwrap()));
    let start = match get("starting_after") {
        None => 0,
        Some(id) => match matching.iter().position(|e| e["id"] == id) {
            Some(i) => i + 1,
            None => {
                return stripe_error(StatusCode::NOT_FOUND, &format!("No such event: '{id}'"));
            }
        },
    };
    let rest = &matching[start.min(matching.len())..];
    let n = usize::try_from(limit).unwrap().min(rest.len());
    Json(json!({
        "object": "list", "url": "/v1/events", "has_more": rest.len() > n,
        "data": rest[..n].iter().map(|e| (*e).clone()).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// Stripe's signature: hex HMAC-SHA256 of `"{t}.{body}"` keyed with the whole `whsec_…` string.
pub fn sign(secret: &str, t: i64, body: &str) -> String {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(format!("{t}.{body}").as_bytes());
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl MockStripe {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mock = MockStripe {
            url,
            inner: Arc::default(),
            http: reqwest::Client::new(),
        };
        let app = Router::new()
            .route("/v1/customers", post(create_customer))
            .route("/v1/checkout/sessions", post(create_session))
            .route("/v1/billing_portal/sessions", post(create_portal))
            .route("/v1/subscriptions", get(list_subscriptions))
            .route("/v1/subscriptions/{id}", get(get_subscription))
            .route("/v1/invoices", get(list_invoices))
            .route("/v1/events", get(list_events))
            .with_state(mock.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        mock
    }

    /// The app settings that point Vortex at this mock with `secrets` as its webhook secret(s).
    pub fn env(&self, secrets: &str) -> Vec<(&'static str, String)> {
        vec![
            ("PAYMENT_PROVIDER", "stripe".into()),
            ("STRIPE_API_KEY", API_KEY.into()),
            ("STRIPE_WEBHOOK_SECRET", secrets.into()),
            ("STRIPE_API_BASE", self.url.clone()),
        ]
    }

    pub fn customers(&self) -> Vec<Value> {
        self.inner
            .lock()
            .unwrap()
            .customers
            .values()
            .cloned()
            .collect()
    }

    pub fn subscription(&self, id: &str) -> Option<Value> {
        let inner = self.inner.lock().unwrap();
        inner.subscriptions.iter().find(|s| s["id"] == id).cloned()
    }

    /// The latest checkout session.
    pub fn last_session(&self) -> Value {
        let inner = self.inner.lock().unwrap();
        inner
            .sessions
            .values()
            .max_by_key(|s| s["id"].as_str().unwrap().to_owned())
            .cloned()
            .expect("a checkout session")
    }

    /// The trader pays on the checkout page: the session completes, a subscription on its price starts
    /// (trialing when the session asked for trial days) and its first invoice is paid. Returns the completed
    /// session object (the `data.object` of `checkout.session.completed`).
    pub fn complete_checkout(&self, session_id: &str) -> Value {
        let mut inner = self.inner.lock().unwrap();
        let sub_id = inner.id("sub");
        let item_id = inner.id("si");
        let in_id = inner.id("in");
        let session = inner.sessions.get_mut(session_id).expect("session");
        session["status"] = json!("complete");
        session["subscription"] = json!(sub_id);
        let session = session.clone();
        let trial = session["trial_period_days"]
            .as_str()
            .and_then(|d| d.parse::<i64>().ok());
        let t = now();
        let status = if trial.is_some() {
            "trialing"
        } else {
            "active"
        };
        let sub = json!({
            "id": sub_id, "object": "subscription", "customer": session["customer"], "status": status,
            "cancel_at_period_end": false, "created": t, "start_date": t,
            "current_period_start": t, "current_period_end": t + 30 * 86_400,
            "trial_end": trial.map(|d| t + d * 86_400),
            "metadata": { "user_id": session["client_reference_id"] },
            "items": { "object": "list", "data": [{
                "id": item_id, "object": "subscription_item", "quantity": 1,
                "current_period_end": t + 30 * 86_400,
                "price": { "id": session["price"], "object": "price", "recurring": { "interval": "month" } },
            }]},
        });
        inner.subscriptions.push(sub);
        let number = format!("MOCK-{:04}", inner.next);
        inner.invoices.push(json!({
            "id": in_id, "object": "invoice", "customer": session["customer"], "subscription": sub_id,
            "number": number, "status": "paid", "amount_due": 1900,
            "amount_paid": 1900, "currency": "usd", "created": t,
            "hosted_invoice_url": format!("https://invoice.stripe.com/i/{in_id}"),
        }));
        session
    }

    /// Changes a subscription's state (what the provider does on a failed payment, a cancel, …); returns it.
    pub fn set(&self, sub_id: &str, f: impl FnOnce(&mut Value)) -> Value {
        let mut inner = self.inner.lock().unwrap();
        let sub = inner
            .subscriptions
            .iter_mut()
            .find(|s| s["id"] == sub_id)
            .expect("subscription");
        f(sub);
        sub.clone()
    }

    /// A failed invoice of the subscription (the `data.object` of `invoice.payment_failed`).
    pub fn failed_invoice(&self, sub_id: &str) -> Value {
        let mut inner = self.inner.lock().unwrap();
        let id = inner.id("in");
        let customer = inner
            .subscriptions
            .iter()
            .find(|s| s["id"] == sub_id)
            .expect("subscription")["customer"]
            .clone();
        let inv = json!({
            "id": id, "object": "invoice", "customer": customer, "subscription": sub_id, "status": "open",
            "amount_due": 1900, "amount_paid": 0, "currency": "usd", "created": now(), "attempt_count": 1,
            "next_payment_attempt": now() + 3 * 86_400,
        });
        inner.invoices.push(inv.clone());
        inv
    }

    /// An event as Stripe sends it (a new `evt_…` id), made now; kept for the event list.
    pub fn event(&self, kind: &str, object: Value) -> String {
        self.event_at(kind, object, now())
    }

    /// [`MockStripe::event`] made at `created` (Unix seconds).
    pub fn event_at(&self, kind: &str, object: Value, created: i64) -> String {
        let mut inner = self.inner.lock().unwrap();
        let n = inner.events.len() + 1;
        let e = json!({
            "id": format!("evt_mock{n:06}"), "object": "event", "api_version": "2024-06-20",
            "created": created, "livemode": false, "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "type": kind, "data": { "object": object },
        });
        inner.events.push(e.clone());
        e.to_string()
    }

    /// Drops an event from the list (as Stripe does after 30 days): a list `starting_after` it answers 404.
    pub fn forget_event(&self, id: &str) {
        self.inner.lock().unwrap().events.retain(|e| e["id"] != id);
    }

    /// From the `after`-th call on (0: the next), `GET /v1/events` fails this way; `None` mends it.
    pub fn fail_events(&self, how: Option<(usize, Failure)>) {
        let mut inner = self.inner.lock().unwrap();
        let calls = inner.events_calls.len();
        inner.events_failure = how.map(|(after, f)| (calls + after, f));
    }

    /// The query of every `GET /v1/events` call so far.
    pub fn event_list_calls(&self) -> Vec<Vec<(String, String)>> {
        self.inner.lock().unwrap().events_calls.clone()
    }

    /// How many times a subscription was read (`GET /v1/subscriptions/{id}`).
    pub fn subscription_reads(&self) -> usize {
        self.inner.lock().unwrap().subscription_reads
    }

    /// POSTs `body` to Vortex's webhook signed at `t` with each of `secrets` (one `v1` per secret, as Stripe
    /// does while an endpoint's secret is rolled); `None` sends no signature header.
    pub async fn deliver_at(
        &self,
        app_url: &str,
        body: &str,
        secrets: Option<&[&str]>,
        t: i64,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{app_url}/api/v1/billing/webhook"))
            .header("content-type", "application/json; charset=utf-8")
            .header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .body(body.to_owned());
        if let Some(secrets) = secrets {
            let mut h = format!("t={t}");
            for s in secrets {
                h.push_str(&format!(",v1={}", sign(s, t, body)));
            }
            req = req.header("stripe-signature", h);
        }
        req.send().await.unwrap()
    }

    /// [`MockStripe::deliver_at`] now.
    pub async fn deliver(&self, app_url: &str, body: &str, secret: &str) -> reqwest::Response {
        self.deliver_at(app_url, body, Some(&[secret]), now()).await
    }
}
