// Plays a website visitor in headless Chromium against the widget on the
// demo page, while the Go test (internal/widget, TestWidgetInBrowser) plays
// the agent through the API and the network. They take turns:
//
//   this script prints   STEP <name>   when the page has reached a state;
//   the Go test writes   GO <name>     on stdin when the server has.
//
// usage: node chat.mjs <demo url> <shop url>
// (the shop is a page on another origin that embeds the widget with an
// account's snippet; the account allows that origin)
// env:   CHROMIUM (default /usr/bin/chromium), SHOTS (a folder for
//        screenshots; none when empty), TEXT_* (the messages, see below).
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

const [demoURL, shopURL] = process.argv.slice(2);
if (!demoURL || !shopURL) {
  console.error('usage: node chat.mjs <demo url> <shop url>');
  process.exit(2);
}
const env = (k, d) => process.env[k] || d;
const TEXT = {
  visitor1: env('TEXT_VISITOR1', 'Hello from the widget'),
  reply1: env('TEXT_REPLY1', 'Hi Lucía, how can I help?'),
  reply2: env('TEXT_REPLY2', 'Sorry, one moment please'),
  visitor2: env('TEXT_VISITOR2', 'Thanks, I am back online'),
  file: env('TEXT_FILE', 'photo.png'),
  shop: env('TEXT_SHOP', 'Hello from the shop'),
  shopReply: env('TEXT_SHOP_REPLY', 'Welcome to the shop'),
};
const shots = env('SHOTS', '');

const step = (name) => console.log('STEP ' + name);
const fail = (msg) => { throw new Error(msg); };

// Lines from the Go test.
const received = [];
const waiting = [];
createInterface({ input: process.stdin }).on('line', (line) => {
  const w = waiting.findIndex((x) => x.line === line.trim());
  if (w >= 0) waiting.splice(w, 1)[0].resolve();
  else received.push(line.trim());
});
const go = (name, ms = 20000) => new Promise((resolve, reject) => {
  const line = 'GO ' + name;
  const i = received.indexOf(line);
  if (i >= 0) { received.splice(i, 1); resolve(); return; }
  const t = setTimeout(() => reject(new Error('timed out waiting for ' + line)), ms);
  waiting.push({ line, resolve: () => { clearTimeout(t); resolve(); } });
});

// A 96x64 PNG (a lamp in front of tiles), to attach.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAGAAAABACAIAAABqVuVZAAAA20lEQVR42u3asQ3DIBAFUG+UBVJ7CC+RHbKfR4mUDZLWFSAC' +
  'xJyf9GskXsXxb7k9Xtmsz3c2Uc9ZAAECBAgQIECAAAECBKgD0JUvX3LO/4E++5bORYGyLgmp+EAVOkejyEDVNMeEBWqiU2g0H1BDnRKj' +
  'yYCa62SNAAUC6qSTNpoGqKtOwgjQKKDeb4oBQBNP8wN0es9rgAABAgQIECBAgAABOmUvZpoHBMiPoj9pQHqx4L2YZlU3b7vDfpANs1P2' +
  'YrZcAQECBOgHoPu6SSKAAAECBAgQIECABFBNvkoz/zZy9P2tAAAAAElFTkSuQmCC',
  'base64');

const browser = await chromium.launch({
  executablePath: env('CHROMIUM', '/usr/bin/chromium'),
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
context.setDefaultTimeout(10000);
const pageErrors = [];
const newPage = async () => {
  const p = await context.newPage();
  p.on('pageerror', (e) => pageErrors.push(String(e)));
  p.on('console', (m) => {
    if (m.type() === 'warning' || m.type() === 'error') console.log('console ' + m.type() + ': ' + m.text());
  });
  return p;
};
const page = await newPage();
const shot = async (name) => {
  if (shots) await page.screenshot({ path: join(shots, name + '.png') });
};

// Locators pierce the widget's open shadow root.
const msgs = (p) => p.locator('.pw-msg');
const msg = (p, kind, text) => p.locator('.pw-msg.' + kind, { hasText: text });

// noDuplicates checks every message is shown once and returns how many.
const noDuplicates = async (p) => {
  const ids = await msgs(p).evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
  if (new Set(ids).size !== ids.length) fail('duplicate messages: ' + ids.join(','));
  for (const t of [TEXT.visitor1, TEXT.reply1, TEXT.reply2, TEXT.visitor2]) {
    const n = await p.locator('.pw-bubble', { hasText: t }).count();
    if (n > 1) fail(`"${t}" is shown ${n} times`);
  }
  return ids.length;
};

try {
  // On a customer's website (another origin: CORS and the websocket's
  // origin check), a visitor chats without filling in the form.
  const shop = await newPage();
  await shop.goto(shopURL);
  await shop.locator('.pw-launcher').click();
  await shop.locator('.pw-form button[type=submit]').click();
  await shop.locator('.pw-status[data-state=online]').waitFor();
  await shop.locator('.pw-input').fill(TEXT.shop);
  await shop.locator('.pw-input').press('Enter');
  await msg(shop, 'pw-in', TEXT.shop).and(shop.locator(':not([data-pending])')).waitFor();
  step('shop-sent');
  await msg(shop, 'pw-out', TEXT.shopReply).waitFor({ timeout: 20000 });
  await shop.close();

  // The visitor opens the bubble and fills in the pre-chat form.
  await page.goto(demoURL);
  await page.locator('.pw-launcher').click();
  await page.locator('.pw-form input[name=name]').fill('Lucía');
  await page.locator('.pw-form input[name=email]').fill('lucia@example.com');
  await shot('1-form');
  await page.locator('.pw-form button[type=submit]').click();
  await page.locator('.pw-status[data-state=online]').waitFor();

  // Sends a message; the agent answers through the API.
  await page.locator('.pw-input').fill(TEXT.visitor1);
  await page.locator('.pw-input').press('Enter');
  await msg(page, 'pw-in', TEXT.visitor1).and(page.locator(':not([data-pending])')).waitFor();
  step('sent');
  await msg(page, 'pw-out', TEXT.reply1).waitFor({ timeout: 20000 });
  const who = await msg(page, 'pw-out', TEXT.reply1).locator('.pw-who').textContent();
  if (who !== 'Ana') fail('the reply is signed ' + JSON.stringify(who));

  // Attaches an image: uploaded, sent, shown as a thumbnail.
  await page.locator('.pw-composer input[type=file]').setInputFiles({ name: TEXT.file, mimeType: 'image/png', buffer: PNG });
  const thumb = page.locator('.pw-msg.pw-in:not([data-pending]) img.pw-thumb');
  await thumb.waitFor();
  await page.waitForFunction((el) => el.complete && el.naturalWidth === 96, await thumb.elementHandle());
  await shot('2-chat');
  step('attached');

  // A reload keeps the chat and shows its history, once; so does a second tab.
  await page.reload();
  await msg(page, 'pw-out', TEXT.reply1).waitFor();
  await page.locator('.pw-status[data-state=online]').waitFor();
  await thumb.waitFor();
  if ((await noDuplicates(page)) !== 3) fail('after the reload: ' + (await msgs(page).allTextContents()).join(' | '));
  const tab = await newPage();
  await tab.goto(demoURL);
  await tab.locator('.pw-launcher').click();
  await msg(tab, 'pw-out', TEXT.reply1).waitFor();
  if ((await noDuplicates(tab)) !== 3) fail('second tab: ' + (await msgs(tab).allTextContents()).join(' | '));
  await tab.close();
  await page.locator('.pw-close').click();
  step('reloaded');

  // The network goes away (the Go test cuts every connection); the agent
  // answers meanwhile; the widget reconnects, counts the answer as unread
  // on the closed bubble, and shows it once.
  await page.locator('.pw-status[data-state=reconnecting]').waitFor({ state: 'attached', timeout: 15000 });
  step('offline');
  await page.locator('.pw-badge', { hasText: '1' }).waitFor({ timeout: 30000 });
  await shot('3-unread');
  await page.locator('.pw-launcher').click();
  await msg(page, 'pw-out', TEXT.reply2).waitFor();
  if (await page.locator('.pw-badge').isVisible()) fail('the badge stays after opening');
  await page.locator('.pw-status[data-state=online]').waitFor();
  await page.waitForTimeout(2000); // the follow-up history fetch, which must not duplicate
  if ((await noDuplicates(page)) !== 4) fail('after reconnecting: ' + (await msgs(page).allTextContents()).join(' | '));
  await page.locator('.pw-input').fill(TEXT.visitor2);
  await page.locator('.pw-composer button[type=submit]').click();
  await msg(page, 'pw-in', TEXT.visitor2).and(page.locator(':not([data-pending])')).waitFor();
  step('reconnected');

  // The agent ends the chat: the widget says so and takes no more input.
  await page.locator('.pw-ended', { hasText: 'This chat has ended.' }).waitFor({ timeout: 20000 });
  if (!(await page.locator('.pw-input').isDisabled())) fail('the input is still enabled after the end');
  await shot('4-ended');
  step('ended');

  // Blocked: a new chat is refused politely.
  await go('blocked');
  await page.locator('.pw-ended button').click();
  await page.locator('.pw-form button[type=submit]').click();
  await page.locator('.pw-unavailable', { hasText: 'isn’t available' }).waitFor();
  await shot('5-refused');
  step('refused');

  if (pageErrors.length) fail('errors in the page: ' + pageErrors.join('; '));
  step('done');
} catch (e) {
  console.error(String(e && e.stack || e));
  try {
    if (shots) await page.screenshot({ path: join(shots, 'failure.png') });
    console.error('widget at failure: ' + (await page.locator('.pw-panel').textContent({ timeout: 1000 })));
  } catch (e2) { /* the page is gone */ }
  await browser.close();
  process.exit(1);
}
await browser.close();
process.exit(0);
