// A local stand-in for Stripe for the browser test: the parts of its REST API Vortex calls, in its wire format
// (form-encoded requests with a bearer key; JSON objects, lists and `{"error": …}` refusals), a hosted checkout
// page a browser can pay on, and webhooks delivered as Stripe delivers them (a JSON event POSTed with
// `Stripe-Signature: t=…,v1=<hex HMAC-SHA256 of "t.body">`). State is in memory.
import http from 'node:http';
import { createHmac } from 'node:crypto';

const now = () => Math.floor(Date.now() / 1000);

export class MockStripe {
  constructor({ port, apiKey, webhookSecret, appUrl }) {
    Object.assign(this, { port, apiKey, webhookSecret, appUrl });
    this.url = `http://127.0.0.1:${port}`;
    this.next = 0;
    this.customers = new Map();
    this.sessions = new Map();
    this.subscriptions = []; // creation order
    this.invoices = [];
    this.events = [];
    this.deliveries = []; // { type, status }
  }

  id(prefix) { this.next += 1; return `${prefix}_e2e${String(this.next).padStart(6, '0')}`; }

  async start() {
    this.server = http.createServer((req, res) => this.handle(req, res).catch((e) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'api_error', message: String(e) } }));
    }));
    await new Promise((r) => this.server.listen(this.port, '127.0.0.1', r));
    return this;
  }

  close() { this.server?.close(); }

  async handle(req, res) {
    const url = new URL(req.url, this.url);
    let body = '';
    for await (const chunk of req) body += chunk;
    const form = new URLSearchParams(body);
    const json = (status, value) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    const error = (status, message) => json(status, { error: { type: 'invalid_request_error', message } });
    const path = url.pathname;

    // The hosted checkout page (a browser, no API key).
    const pay = path.match(/^\/c\/pay\/([\w]+)$/);
    if (pay) {
      const session = this.sessions.get(pay[1]);
      if (!session) { res.writeHead(404); res.end('no such checkout'); return; }
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(`<!doctype html><title>Checkout</title><link rel="icon" href="data:,"><h1>Pay for ${session.price}</h1>
          <form method="post"><button id="pay" type="submit">Pay</button></form>`);
        return;
      }
      const completed = this.completeCheckout(session.id);
      res.writeHead(303, { location: completed.success_url });
      res.end();
      // Stripe's webhooks arrive on their own schedule: after the browser has been sent back here.
      setTimeout(() => this.deliverAll([
        ['checkout.session.completed', completed],
        ['customer.subscription.created', this.subscription(completed.subscription)],
        ['invoice.paid', this.invoices.at(-1)],
      ]), 300);
      return;
    }

    if (!path.startsWith('/v1/')) { res.writeHead(404); res.end(); return; }
    if (req.headers.authorization !== `Bearer ${this.apiKey}`) return error(401, 'Invalid API Key provided');
    if (req.method === 'POST' && path === '/v1/customers') {
      const id = this.id('cus');
      const c = { id, object: 'customer', created: now(), email: form.get('email'),
        metadata: { user_id: form.get('metadata[user_id]') } };
      this.customers.set(id, c);
      return json(200, c);
    }
    if (req.method === 'POST' && path === '/v1/checkout/sessions') {
      if (!this.customers.has(form.get('customer'))) return error(400, 'No such customer');
      if (form.get('mode') !== 'subscription') return error(400, 'mode must be subscription');
      const id = this.id('cs_test');
      const s = { id, object: 'checkout.session', mode: 'subscription', status: 'open',
        customer: form.get('customer'), client_reference_id: form.get('client_reference_id'),
        success_url: form.get('success_url'), cancel_url: form.get('cancel_url'),
        url: `${this.url}/c/pay/${id}`, subscription: null, price: form.get('line_items[0][price]'),
        trial_period_days: form.get('subscription_data[trial_period_days]') };
      this.sessions.set(id, s);
      return json(200, s);
    }
    if (req.method === 'POST' && path === '/v1/billing_portal/sessions') {
      const id = this.id('bps');
      return json(200, { id, object: 'billing_portal.session', customer: form.get('customer'),
        return_url: form.get('return_url'), url: `${this.url}/p/session/${id}` });
    }
    const sub = path.match(/^\/v1\/subscriptions\/([\w]+)$/);
    if (req.method === 'GET' && sub) {
      const s = this.subscription(sub[1]);
      return s ? json(200, s) : error(404, `No such subscription: '${sub[1]}'`);
    }
    const list = (items, p) => json(200, { object: 'list', url: p, has_more: false, data: items });
    const customer = url.searchParams.get('customer');
    if (req.method === 'GET' && path === '/v1/subscriptions') {
      return list([...this.subscriptions].reverse().filter((s) => !customer || s.customer === customer), path);
    }
    if (req.method === 'GET' && path === '/v1/invoices') {
      return list([...this.invoices].reverse().filter((i) => !customer || i.customer === customer), path);
    }
    if (req.method === 'GET' && path === '/v1/events') {
      const gte = Number(url.searchParams.get('created[gte]') ?? 0);
      const types = url.searchParams.getAll('types[]');
      const limit = Number(url.searchParams.get('limit') ?? 10);
      let all = [...this.events].reverse()
        .filter((e) => e.created >= gte && (types.length === 0 || types.includes(e.type)));
      const after = url.searchParams.get('starting_after');
      if (after) {
        const i = all.findIndex((e) => e.id === after);
        if (i < 0) return error(404, `No such event: '${after}'`);
        all = all.slice(i + 1);
      }
      return json(200, { object: 'list', url: path, has_more: all.length > limit, data: all.slice(0, limit) });
    }
    return error(404, `Unrecognized request URL (${req.method}: ${path})`);
  }

  subscription(id) { return this.subscriptions.find((s) => s.id === id); }

  /** The trader paid: the session completes, a subscription on its price starts, its first invoice is paid. */
  completeCheckout(sessionId) {
    const session = this.sessions.get(sessionId);
    const subId = this.id('sub');
    const t = now();
    const trial = Number(session.trial_period_days ?? 0);
    session.status = 'complete';
    session.subscription = subId;
    const end = t + 30 * 86400;
    this.subscriptions.push({
      id: subId, object: 'subscription', customer: session.customer, status: trial > 0 ? 'trialing' : 'active',
      cancel_at_period_end: false, created: t, start_date: t, current_period_start: t, current_period_end: end,
      trial_end: trial > 0 ? t + trial * 86400 : null, metadata: { user_id: session.client_reference_id },
      items: { object: 'list', data: [{ id: this.id('si'), object: 'subscription_item', quantity: 1,
        current_period_end: end, price: { id: session.price, object: 'price', recurring: { interval: 'month' } } }] },
    });
    const inv = this.id('in');
    this.invoices.push({ id: inv, object: 'invoice', customer: session.customer, subscription: subId,
      number: `E2E-${this.next}`, status: 'paid', amount_due: 1900, amount_paid: 1900, currency: 'usd', created: t,
      hosted_invoice_url: `https://invoice.stripe.com/i/${inv}` });
    return session;
  }

  /** A renewal fails: the subscription goes past_due while the provider retries; Stripe says so. */
  async failPayment(subId) {
    const s = this.subscription(subId);
    s.status = 'past_due';
    const inv = { id: this.id('in'), object: 'invoice', customer: s.customer, subscription: subId, status: 'open',
      number: `E2E-${this.next}`, amount_due: 1900, amount_paid: 0, currency: 'usd', created: now(),
      attempt_count: 1, next_payment_attempt: now() + 3 * 86400 };
    this.invoices.push(inv);
    await this.deliverAll([['invoice.payment_failed', inv], ['customer.subscription.updated', s]]);
  }

  /** The retries ran out: the provider cancels the subscription. */
  async cancel(subId) {
    const s = this.subscription(subId);
    s.status = 'canceled';
    s.ended_at = now();
    await this.deliverAll([['customer.subscription.deleted', s]]);
  }

  event(type, object) {
    const e = { id: `evt_e2e${String(this.events.length + 1).padStart(6, '0')}`, object: 'event',
      api_version: '2024-06-20', created: now(), livemode: false, pending_webhooks: 1,
      request: { id: null, idempotency_key: null }, type, data: { object: structuredClone(object) } };
    this.events.push(e);
    return e;
  }

  async deliverAll(list) {
    for (const [type, object] of list) await this.deliver(this.event(type, object));
  }

  /** POSTs the event to Vortex's webhook signed as Stripe signs it; a failure is kept, not thrown. */
  async deliver(event) {
    const body = JSON.stringify(event);
    const t = now();
    const v1 = createHmac('sha256', this.webhookSecret).update(`${t}.${body}`).digest('hex');
    try {
      const r = await fetch(`${this.appUrl}/api/v1/billing/webhook`, { method: 'POST', body,
        headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': `t=${t},v1=${v1}`,
          'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' } });
      this.deliveries.push({ type: event.type, status: r.status });
    } catch (e) {
      this.deliveries.push({ type: event.type, status: String(e) });
    }
  }
}
