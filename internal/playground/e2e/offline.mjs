// Loads the GraphQL playground in headless Chromium with every request to
// another host than the page's blocked, for internal/playground's
// TestPlaygroundOffline: the page must render the GraphiQL editor, run
// `{ __typename }` over HTTP, run `{ me { name } }` with the headers
// editor's Bearer token, open a subscription over graphql-ws whose
// connection_init carries that token, and open a dialog, without asking
// for anything outside and without a Content-Security-Policy violation.
//
// usage: node offline.mjs <page url>
// env:   CHROMIUM (default /usr/bin/chromium), TOKEN (an agent's token),
//        NAME (that agent's name), SHOTS (a folder for screenshots).
// Prints STEP <name> as it goes and, last, RESULT <json>: {ok, failure,
// outside: [urls], violations: [..], errors: [..]}; exits 1 unless ok.
import { chromium } from 'playwright-core';
import { join } from 'node:path';

const pageURL = process.argv[2];
if (!pageURL) {
  console.error('usage: node offline.mjs <page url>');
  process.exit(2);
}
const host = new URL(pageURL).host;
const token = process.env.TOKEN || '';
const name = process.env.NAME || '';
const shots = process.env.SHOTS || '';
const step = (s) => console.log('STEP ' + s);

const result = { ok: false, failure: '', outside: [], violations: [], errors: [] };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ serviceWorkers: 'block' });
  // Only the test server answers; anything else is recorded and refused.
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.host === host) return route.continue();
    result.outside.push(u.href);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  const sockets = [];
  page.on('websocket', (ws) => {
    const s = { url: ws.url(), sent: [], received: [] };
    sockets.push(s);
    if (new URL(ws.url()).host !== host) result.outside.push(ws.url());
    ws.on('framesent', (f) => s.sent.push(String(f.payload)));
    ws.on('framereceived', (f) => s.received.push(String(f.payload)));
  });
  page.on('pageerror', (e) => result.errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') result.errors.push(m.text());
  });
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
    });
  });
  const shot = async (s) => {
    if (shots) await page.screenshot({ path: join(shots, s + '.png') });
  };

  // CodeMirror 5 keeps its editor on the element; GraphiQL's editors are
  // the query editor, the variables and headers editors, and the response.
  // GraphiQL reads an edit after a 100 ms debounce: give it time.
  const setEditor = async (selector, text) => {
    await page.evaluate(([sel, t]) => {
      const cm = document.querySelector(sel + ' .graphiql-editor:not(.hidden) > .CodeMirror');
      if (!cm) throw new Error('no editor shown in ' + sel);
      cm.CodeMirror.setValue(t);
    }, [selector, text]);
    await page.waitForTimeout(300);
  };
  const response = () => page.evaluate(() => {
    const cm = document.querySelector('.graphiql-response .CodeMirror');
    return cm ? cm.CodeMirror.getValue() : '';
  });
  // Runs query and waits for want in the response pane. A click that
  // GraphiQL takes before it has read the edit runs the previous operation
  // (or none): then the click is repeated, up to three times.
  const run = async (query, want, what) => {
    await setEditor('.graphiql-query-editor', query);
    for (let attempt = 1; ; attempt++) {
      await page.click('.graphiql-execute-button');
      try {
        await page.waitForFunction((w) => {
          const cm = document.querySelector('.graphiql-response .CodeMirror');
          return cm && cm.CodeMirror.getValue().includes(w);
        }, want, { timeout: 5000 });
        return;
      } catch {
        if (attempt === 3) {
          throw new Error(`${what}: the response pane shows ${JSON.stringify(await response())}, want it to contain ${JSON.stringify(want)}`);
        }
      }
    }
  };

  await page.goto(pageURL, { waitUntil: 'load' });
  if (result.outside.length) throw new Error('requests outside the server while loading');
  await page.waitForSelector('.graphiql-container .graphiql-query-editor .CodeMirror', { timeout: 15000 });
  step('rendered');
  await shot('rendered');

  await run('{ __typename }', '"__typename": "Query"', '{ __typename }');
  step('queried');

  // The headers editor's token reaches the server.
  await page.click('.graphiql-editor-tools button:has-text("Headers")');
  await setEditor('.graphiql-editor-tool', JSON.stringify({ Authorization: 'Bearer ' + token }));
  await run('{ me { name } }', JSON.stringify(name), '{ me { name } } with the token');
  step('authenticated');

  // A subscription goes over graphql-ws to the same host, with the token.
  await setEditor('.graphiql-query-editor', 'subscription { inboxEvents { __typename } }');
  const acked = () => sockets.some((s) => s.received.some((f) => f.includes('"connection_ack"')));
  for (let attempt = 1; attempt <= 3 && !acked(); attempt++) {
    if (sockets.length === 0) await page.click('.graphiql-execute-button'); // as in run
    for (let i = 0; i < 50 && !acked(); i++) await page.waitForTimeout(100);
  }
  const ws = sockets.find((s) => s.url === `${pageURL.startsWith('https:') ? 'wss' : 'ws'}://${host}/graphql`);
  if (!ws) throw new Error('no websocket to /graphql: ' + JSON.stringify(sockets.map((s) => s.url)));
  const init = ws.sent.find((f) => f.includes('"connection_init"')) || '';
  if (!init.includes(token)) throw new Error('connection_init without the token: ' + init);
  if (!acked()) throw new Error('no connection_ack; received ' + JSON.stringify(ws.received));
  await page.click('.graphiql-execute-button'); // stops the subscription
  step('subscribed');

  // A dialog adds a style element: the page's nonce must let it in.
  await page.click('[aria-label="Open settings dialog"]');
  await page.waitForSelector('.graphiql-dialog', { timeout: 5000 });
  await shot('dialog');
  await page.keyboard.press('Escape');
  step('dialog');

  result.violations = await page.evaluate(() => window.__violations);
  if (result.violations.length) throw new Error('Content-Security-Policy violations');
  if (result.outside.length) throw new Error('requests outside the server');
  if (result.errors.length) throw new Error('errors on the page');
  result.ok = true;
} catch (e) {
  result.failure = e.message;
} finally {
  await browser.close();
}
console.log('RESULT ' + JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
