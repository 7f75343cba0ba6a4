// Drives Parley's websocket endpoint with the graphql-ws reference client,
// as a mobile or browser app would, and prints one JSON line per outcome:
//   node client.mjs URL TOKEN MODE
// MODE "no-retry": retryAttempts 0; "default": the client's default retry
// count (waits shortened so the test is quick); "ok": prints
// {"result":"ready"} once acknowledged, then the first event.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, mode] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let opened = 0;

const options = {
  url,
  webSocketImpl: WebSocket,
  connectionParams: token ? { authToken: token } : {},
  // Keep the default number of retries but not its seconds-long waits.
  retryWait: () => new Promise((resolve) => setTimeout(resolve, 20)),
  on: {
    opened: () => { opened++; },
    connected: () => { if (mode === 'ok') out({ result: 'ready' }); },
  },
};
if (mode === 'no-retry') options.retryAttempts = 0;
const client = createClient(options);

const timer = setTimeout(() => {
  out({ result: 'timeout', opened });
  process.exit(2);
}, 20000);

function end(o) {
  clearTimeout(timer);
  out({ ...o, opened });
  client.dispose();
  setTimeout(() => process.exit(0), 50);
}

client.subscribe(
  { query: 'subscription { inboxEvents { kind message { body } } }' },
  {
    next: (value) => end({ result: 'next', data: value.data ?? null, errors: value.errors ?? null }),
    error: (err) => end({ result: 'error', code: err?.code ?? null, reason: err?.reason ?? String(err) }),
    complete: () => end({ result: 'complete' }),
  },
);
