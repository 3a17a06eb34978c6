// The side-by-side webhook benchmark's Node half (scripts/bench-peer drives it).
//
//   node peer.mjs serve URL PORT SECRET   the peer: @supabase/stripe-sync-engine's
//                                         processWebhook behind Node's HTTP server
//   node peer.mjs load ENDPOINT SECRET CUSTOMERS ORDER CONCURRENCY TAG
//                                         posts the signed events, prints JSON
//
// The events: for each customer (CUSTOMERS, a file of ids, one a line) ten
// `customer.updated` renames a second apart, and for the first customer one more
// pair of the same second ("<name> stale" and "<name> current"); ORDER is
// `in-order` or `shuffled` (seeded, so both apps get the same order).

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'serve') {
  await serve(...args);
} else if (mode === 'load') {
  await load(...args);
} else {
  console.error('usage: peer.mjs serve URL PORT SECRET | load ENDPOINT SECRET CUSTOMERS ORDER CONCURRENCY TAG');
  process.exit(2);
}

async function serve(databaseUrl, port, secret) {
  // The CommonJS build: the ES one finds its migrations through `__dirname`,
  // which an ES module lacks, and runMigrations swallows the error.
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const { StripeSync, runMigrations } = require('@supabase/stripe-sync-engine');
  let failed = null;
  const logger = { info() {}, warn() {}, debug() {}, error: (error) => (failed = error) };
  await runMigrations({ databaseUrl, schema: 'stripe', logger });
  if (failed) throw failed;
  const sync = new StripeSync({
    schema: 'stripe',
    stripeSecretKey: 'sk_test_peer_never_called',
    stripeWebhookSecret: secret,
    poolConfig: { connectionString: databaseUrl, max: 16 },
  });
  http
    .createServer((request, response) => {
      const chunks = [];
      request.on('data', (chunk) => chunks.push(chunk));
      request.on('end', async () => {
        try {
          await sync.processWebhook(Buffer.concat(chunks), request.headers['stripe-signature']);
          response.writeHead(200).end('ok');
        } catch (error) {
          response.writeHead(400).end(String(error?.message ?? error));
        }
      });
    })
    .listen(Number(port), '127.0.0.1', () => console.log(`peer listening on ${port}`));
}

/// The same events for both apps: names and `created` depend only on the
/// customer and the step; ids carry TAG so each app's run is its own.
export function events(customers, tag, base) {
  const list = [];
  customers.forEach((id, n) => {
    for (let step = 1; step <= 10; step++) {
      list.push(event(`${tag}_${n}_${step}`, id, n, `Customer ${n} v${step}`, base + step));
    }
  });
  // Two events of one second: which is newer only Stripe can say.
  list.push(event(`${tag}_pair_stale`, customers[0], 0, 'Customer 0 stale', base + 20));
  list.push(event(`${tag}_pair_current`, customers[0], 0, 'Customer 0 current', base + 20));
  return list;
}

function event(id, customer, n, name, created) {
  return JSON.stringify({
    id: `evt_${id}`,
    object: 'event',
    type: 'customer.updated',
    created,
    api_version: '2020-08-27',
    livemode: false,
    data: {
      object: {
        id: customer,
        object: 'customer',
        address: null,
        balance: 0,
        created: 1700000000,
        currency: null,
        default_source: null,
        delinquent: false,
        description: null,
        discount: null,
        email: `user${n}@example.com`,
        invoice_prefix: `P${n}`,
        invoice_settings: { custom_fields: null, default_payment_method: null, footer: null },
        livemode: false,
        metadata: { user_id: String(n) },
        name,
        next_invoice_sequence: 1,
        phone: null,
        preferred_locales: [],
        shipping: null,
        tax_exempt: 'none',
      },
      previous_attributes: { name: 'before' },
    },
  });
}

function sign(payload, secret) {
  const t = Math.floor(Date.now() / 1000);
  const v1 = crypto.createHmac('sha256', secret).update(`${t}.${payload}`).digest('hex');
  return `t=${t},v1=${v1}`;
}

/// A seeded shuffle (mulberry32), the same on every run.
function shuffle(list, seed) {
  let state = seed;
  const random = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}

async function load(endpoint, secret, customersFile, order, concurrency, tag) {
  const customers = fs.readFileSync(customersFile, 'utf8').split('\n').filter(Boolean);
  const base = Math.floor(Date.now() / 1000) - 120;
  let list = events(customers, tag, base);
  if (order === 'shuffled') list = shuffle(list, 42);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) });
  const url = new URL(endpoint);
  const latencies = [];
  let next = 0;
  let failed = 0;
  const post = (payload) =>
    new Promise((resolve) => {
      const request = http.request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'stripe-signature': sign(payload, secret),
            'content-length': Buffer.byteLength(payload),
          },
        },
        (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode));
        },
      );
      request.on('error', () => resolve(0));
      request.end(payload);
    });
  const worker = async () => {
    while (next < list.length) {
      const payload = list[next++];
      const started = process.hrtime.bigint();
      const status = await post(payload);
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      if (status !== 200) failed++;
    }
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Number(concurrency) }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  const at = (share) => latencies[Math.min(latencies.length - 1, Math.floor(share * latencies.length))];
  agent.destroy();
  console.log(
    JSON.stringify({
      events: list.length,
      failed,
      seconds,
      events_per_second: list.length / seconds,
      p50_ms: at(0.5),
      p95_ms: at(0.95),
    }),
  );
}
