// Drives two `fritter serve` web apps in headless Chromium, as two people would:
// A and B each choose a name on first run; B follows A by pasting A's address and sees A's post
// arrive live (no reload); A follows B back; B replies; A sees the reply and a notification.
// A hostile status text must stay text, a tall status is clamped until "Show more", and a page of
// another origin must not be able to post.
//
// Usage: node web-e2e.js '{"a":"http://127.0.0.1:P/","b":"http://127.0.0.1:Q/","artifacts":"DIR","chromium":"/usr/bin/chromium"}'
// Prints one JSON line per step on stdout; exits 1 with the reason on failure.
'use strict';

const path = require('path');
const fs = require('fs');
const { chromium } = require('playwright-core');

const cfg = JSON.parse(process.argv[2]);
const TIMEOUT = 15000;
const step = (name, extra) => console.log(JSON.stringify({ step: name, ...extra }));

async function setup(page, url, name) {
  await page.goto(url);
  await page.waitForSelector('#setup-name', { timeout: TIMEOUT });
  await page.fill('#setup-name', name);
  await page.click('form button[type="submit"]');
  await page.waitForSelector('#compose', { timeout: TIMEOUT });
  const me = await page.evaluate(async () => (await fetch('/api/me')).json());
  if (me.setup || me.name !== name) throw new Error(`setup of ${name} failed: ${JSON.stringify(me)}`);
  return me;
}

async function waitLive(page) {
  await page.waitForSelector('#live[data-live="1"]', { timeout: TIMEOUT });
}

async function main() {
  fs.mkdirSync(cfg.artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const external = [];
  const pageErrors = [];
  try {
    // Phone-sized screens: the app must be usable there.
    const ctxA = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const ctxB = await browser.newContext({ viewport: { width: 390, height: 844 } });
    for (const ctx of [ctxA, ctxB]) {
      ctx.on('request', (req) => {
        const u = req.url();
        if (!u.startsWith(cfg.a) && !u.startsWith(cfg.b)) external.push(u);
      });
    }
    const a = await ctxA.newPage();
    const b = await ctxB.newPage();
    for (const p of [a, b]) p.on('pageerror', (e) => pageErrors.push(String(e)));

    const meA = await setup(a, cfg.a, 'Ada Lovelace');
    const meB = await setup(b, cfg.b, 'Bob');
    step('identities', { a: meA.url, b: meB.url });

    // B follows A by pasting A's address.
    await b.goto(cfg.b + '#/follow');
    await b.waitForSelector('#follow-url', { timeout: TIMEOUT });
    await b.fill('#follow-url', meA.url);
    await b.press('#follow-url', 'Enter');
    await b.waitForFunction(() => document.getElementById('toast').textContent.includes('Following'), null, { timeout: TIMEOUT });
    step('b follows a');

    // B watches the feed; A posts (typing, with the character count).
    await b.goto(cfg.b + '#/');
    await b.waitForSelector('#compose', { timeout: TIMEOUT });
    await waitLive(b);
    const hostile = 'Hello from Ada <script>window.pwned = 1</script><img src=x onerror="window.pwned=2"> #fritter';
    await a.goto(cfg.a + '#/');
    await a.waitForSelector('#compose', { timeout: TIMEOUT });
    await a.fill('#compose', hostile);
    const count = await a.textContent('.compose .count');
    if (!count.startsWith(`${[...hostile].length} / 1000`)) throw new Error(`character count shows ${count}`);
    const posted = Date.now();
    await a.click('.compose button[type="submit"]');
    const selector = 'article.status[data-url^="' + meA.url + '"] .status-text';
    await b.waitForSelector(selector, { timeout: TIMEOUT });
    step('b sees a\'s post live', { ms: Date.now() - posted });
    const shown = await b.textContent(selector);
    if (shown !== hostile) throw new Error(`the status shows as ${JSON.stringify(shown)}`);
    const pwned = await b.evaluate(() => window.pwned);
    if (pwned !== undefined) throw new Error('a status text ran as code');
    if ((await b.$$('article.status img')).length) throw new Error('a status text became markup');
    const reloads = await b.evaluate(() => performance.getEntriesByType('navigation').length);
    step('hostile text stayed text', { navigations: reloads });

    // A status of 990 line breaks stays a few lines tall until "Show more" (reached with the
    // keyboard) opens it.
    const tall = 'Tall' + '\n'.repeat(990) + 'end';
    await a.fill('#compose', tall);
    await a.click('.compose button[type="submit"]');
    const tallCard = a.locator('article.status', { has: a.locator('.status-text', { hasText: /^Tall\s+end$/ }) }).first();
    const tallMore = tallCard.locator('button.more');
    await tallMore.waitFor({ state: 'visible', timeout: TIMEOUT });
    const closed = (await tallCard.boundingBox()).height;
    if (closed > 600) throw new Error(`a tall status is ${closed} px tall before "Show more"`);
    await tallMore.focus();
    await a.keyboard.press('Enter');
    await a.waitForFunction((el) => el.getAttribute('aria-expanded') === 'true', await tallMore.elementHandle(), { timeout: TIMEOUT });
    const opened = (await tallCard.boundingBox()).height;
    if (opened < 10000) throw new Error(`"Show more" opened the tall status to ${opened} px only`);
    if ((await tallCard.locator('.status-text').textContent()) !== tall) throw new Error('the tall status lost text');
    step('tall status clamped', { closed, opened });

    // A follows B back, so A holds B's archive and sees B's replies.
    const follow = await a.evaluate(async (url) => {
      const token = document.querySelector('meta[name="fritter-token"]').content;
      const r = await fetch('/api/follow', { method: 'POST', headers: { 'content-type': 'application/json', 'x-fritter-token': token }, body: JSON.stringify({ url }) });
      return r.status;
    }, meB.url);
    if (follow !== 200) throw new Error(`A could not follow B: ${follow}`);
    await waitLive(a);

    // B replies from the feed, with the keyboard shortcut to send.
    const card = b.locator('article.status[data-url^="' + meA.url + '"]', { hasText: 'Hello from Ada' }).first();
    await card.locator('button.reply').click();
    const replyBox = card.locator('.reply-box textarea');
    await replyBox.fill('Nice post, Ada!');
    await replyBox.press('Control+Enter');
    await b.waitForSelector('article.status[data-url^="' + meB.url + '"] .reply-to', { timeout: TIMEOUT });
    step('b replied');

    // A: the unread badge appears live, and the notification shows the reply.
    await a.waitForSelector('#unread:not([hidden])', { timeout: TIMEOUT });
    const unread = await a.textContent('#unread');
    await a.click('nav a[data-nav="notifications"]');
    await a.waitForSelector('.notification[data-reason="reply"] .status-text', { timeout: TIMEOUT });
    const note = await a.textContent('.notification[data-reason="reply"] .status-text');
    if (note !== 'Nice post, Ada!') throw new Error(`the notification shows ${note}`);
    step('a sees the reply notification', { unread });
    await a.click('#mark-read');
    await a.waitForSelector('#unread[hidden]', { state: 'attached', timeout: TIMEOUT });

    // A's thread view shows the post and the reply under it.
    await a.goto(cfg.a + '#/thread?url=' + encodeURIComponent(await card.getAttribute('data-url')));
    await a.waitForFunction(() => document.querySelectorAll('#thread article.status').length >= 2, null, { timeout: TIMEOUT });
    step('thread shows the conversation');

    // Another origin (B's page is another port, so another origin) cannot post as A.
    const attack = await b.evaluate(async (target) => {
      const results = [];
      try {
        await fetch(target + 'api/post', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{"text":"forged"}' });
        results.push('no-cors sent');
      } catch (e) { results.push('no-cors failed'); }
      try {
        const r = await fetch(target + 'api/post', { method: 'POST', headers: { 'content-type': 'application/json', 'x-fritter-token': 'guess' }, body: '{"text":"forged"}' });
        results.push('cors ' + r.status);
      } catch (e) { results.push('cors blocked'); }
      return results;
    }, cfg.a);
    const feedA = await a.evaluate(async () => (await fetch('/api/feed?limit=50')).json());
    if (feedA.items.some((i) => i.text === 'forged')) throw new Error('another origin posted as A: ' + attack.join(', '));
    step('cross-origin writes refused', { attack });

    // Artifact: B's feed with the post and the reply, as a phone shows it.
    await b.goto(cfg.b + '#/');
    await b.waitForSelector('article.status .reply-to', { timeout: TIMEOUT });
    const shot = path.join(cfg.artifacts, 'feed.png');
    await b.screenshot({ path: shot, fullPage: true });
    step('screenshot', { path: shot });

    if (external.length) throw new Error('external requests: ' + external.join(', '));
    if (pageErrors.length) throw new Error('page errors: ' + pageErrors.join('; '));
    step('done');
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.log(JSON.stringify({ error: String(err && err.stack || err) }));
  process.exit(1);
});
