// Drives the crawler's read-only pages in headless Chromium on a phone-sized screen: search finds
// a status, the tag page lists it, the thread page shows the reply from another archive, the
// profile page shows the name, the trending page draws its chart (points for each tag), a hostile
// status stays text, a tall status is clamped until "Show more", the keyboard reaches the search
// box, a bad address is explained; no request leaves the crawler and no page throws. Screenshots
// go to the artifacts directory.
//
// Usage: node crawler-web-e2e.js '{"base":"http://127.0.0.1:P","artifacts":"DIR","chromium":"/usr/bin/chromium",
//   "root":"hyper://…/statuses/….json","ada":"<hex>","bob":"<hex>","hostile":"<text>","tall":"hyper://…"}'
// Prints one JSON line per step on stdout; exits 1 with the reason on failure.
'use strict';

const path = require('path');
const fs = require('fs');
const { chromium } = require('playwright-core');

const cfg = JSON.parse(process.argv[2]);
const TIMEOUT = 15000;
const step = (name, extra) => console.log(JSON.stringify({ step: name, ...extra }));

async function ready(page) {
  await page.waitForSelector('main[data-ready]', { timeout: TIMEOUT });
  const state = await page.getAttribute('main', 'data-ready');
  if (state !== '1') throw new Error(`${page.url()} failed: ${await page.textContent('main')}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(cfg.artifacts, name + '.png'), fullPage: true });
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
  const cspViolations = [];
  try {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 } });
    ctx.on('request', (req) => {
      if (!req.url().startsWith(cfg.base + '/')) external.push(req.url());
    });
    const page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text()); });

    // Search: type into the box, press Enter.
    await page.goto(cfg.base + '/');
    await ready(page);
    await page.fill('#q', 'weave looms');
    await page.press('#q', 'Enter');
    await page.waitForURL(/\?q=weave/, { timeout: TIMEOUT });
    await ready(page);
    const found = await page.locator('article.status .status-text').allTextContents();
    if (found.length !== 1 || !found[0].startsWith('Engines that weave')) throw new Error('search shows ' + JSON.stringify(found));
    await page.waitForFunction((ada) => {
      const a = document.querySelector(`article.status[data-archive="${ada}"] .name`);
      return a && a.textContent === 'Ada Lovelace';
    }, cfg.ada, { timeout: TIMEOUT });
    await shot(page, 'search');
    step('search finds the status');

    // The tag page, reached by following the tag link of the hit.
    await page.click('article.status a.tag[href="/tag/algebra"]');
    await page.waitForURL(/\/tag\/algebra$/, { timeout: TIMEOUT });
    await ready(page);
    const tagged = await page.locator('article.status').evaluateAll((els) => els.map((e) => e.dataset.uri));
    if (!tagged.includes(cfg.root) || tagged.length !== 3) throw new Error('tag page lists ' + JSON.stringify(tagged));
    if ((await page.textContent('h1')) !== '#algebra') throw new Error('tag page heading');
    await shot(page, 'tag');
    step('tag page lists it', { statuses: tagged.length });

    // The thread: the root, and Bob's reply nested under it with Bob's name.
    await page.goto(cfg.base + '/thread?uri=' + encodeURIComponent(cfg.root));
    await ready(page);
    const reply = `#thread .depth article.status[data-archive="${cfg.bob}"]`;
    await page.waitForSelector(reply, { timeout: TIMEOUT });
    const replyText = await page.textContent(reply + ' .status-text');
    if (replyText !== 'Replying from the workshop: lovely #algebra') throw new Error('the reply shows ' + replyText);
    await page.waitForFunction((sel) => document.querySelector(sel + ' .name').textContent === 'Bob Builder', reply, { timeout: TIMEOUT });
    if (!(await page.$(`#thread article.status.focus[data-uri="${cfg.root}"]`))) throw new Error('the asked status is not marked');
    await shot(page, 'thread');
    step('thread shows the reply');

    // The profile: follow the author link of the reply.
    await page.click(reply + ' a.name');
    await page.waitForURL(/\/profile\//, { timeout: TIMEOUT });
    await ready(page);
    const name = await page.textContent('h1.profile-name');
    if (name !== 'Bob Builder') throw new Error('the profile shows ' + name);
    const bio = await page.textContent('.profile .bio');
    if (bio !== "Bob Builder's bio") throw new Error('the bio shows ' + bio);
    if ((await page.locator('article.status').count()) !== 1) throw new Error('the profile lists the wrong statuses');
    await shot(page, 'profile');
    step('profile shows the name');

    // Trending: the chart has a series with points for each trending tag, counts matching.
    await page.click('nav a[data-nav="trending"]');
    await page.waitForURL(/\/trending$/, { timeout: TIMEOUT });
    await ready(page);
    const series = await page.$$eval('svg.chart g.series', (gs) => gs.map((g) => ({
      tag: g.dataset.tag,
      points: g.querySelectorAll('circle.point').length,
      total: [...g.querySelectorAll('circle.point')].reduce((n, c) => n + Number(c.dataset.count), 0),
      line: g.querySelector('polyline').getAttribute('points').split(' ').length,
    })));
    const byTag = Object.fromEntries(series.map((s) => [s.tag, s]));
    if (!byTag.algebra || byTag.algebra.total !== 3 || byTag.algebra.points !== 24 || byTag.algebra.line !== 24) throw new Error('chart: ' + JSON.stringify(series));
    if (!byTag.flowers || byTag.flowers.total !== 2) throw new Error('chart: ' + JSON.stringify(series));
    if (byTag.hostile) throw new Error('a tag of one author trends');
    const box = await page.$eval('svg.chart', (s) => { const r = s.getBoundingClientRect(); return { w: r.width, h: r.height }; });
    if (box.w > 390 || box.h < 50) throw new Error('the chart does not fit a phone: ' + JSON.stringify(box));
    await page.click('a.button[href="/trending?window=1h"]');
    await page.waitForURL(/window=1h/, { timeout: TIMEOUT });
    await ready(page);
    const points1h = await page.$$eval('svg.chart g.series[data-tag="algebra"] circle.point', (cs) => cs.length);
    if (points1h !== 12) throw new Error('1h chart has ' + points1h + ' points');
    await shot(page, 'trending');
    step('trending draws the chart', { series });

    // The hostile status, on the search page and its tag page, is text.
    for (const url of ['/?q=' + encodeURIComponent('#hostile'), '/tag/hostile']) {
      await page.goto(cfg.base + url);
      await ready(page);
      const texts = await page.locator('article.status .status-text').allTextContents();
      if (!texts.includes(cfg.hostile)) throw new Error(`${url} shows ${JSON.stringify(texts)}`);
      if (await page.evaluate(() => window.pwned) !== undefined) throw new Error('a status ran as code');
      if ((await page.$$('main img, main script')).length) throw new Error('a status became markup');
    }
    step('hostile text stayed text');

    // A status of 990 line breaks stays a few lines tall until "Show more" (reached with the
    // keyboard) opens it.
    await page.goto(cfg.base + '/thread?uri=' + encodeURIComponent(cfg.tall));
    await ready(page);
    const tallCard = page.locator(`article.status[data-uri="${cfg.tall}"]`);
    const tallMore = tallCard.locator('button.more');
    await tallMore.waitFor({ state: 'visible', timeout: TIMEOUT });
    const closed = (await tallCard.boundingBox()).height;
    if (closed > 600) throw new Error(`a tall status is ${closed} px tall before "Show more"`);
    await tallMore.focus();
    await page.keyboard.press('Enter');
    await page.waitForFunction((el) => el.getAttribute('aria-expanded') === 'true', await tallMore.elementHandle(), { timeout: TIMEOUT });
    const opened = (await tallCard.boundingBox()).height;
    if (opened < 10000) throw new Error(`"Show more" opened the tall status to ${opened} px only`);
    if (!/^Tall\n+end$/.test(await tallCard.locator('.status-text').textContent())) throw new Error('the tall status lost text');
    step('tall status clamped', { closed, opened });

    // Keyboard: the skip link comes first, the search box is reachable and submits with Enter.
    await page.goto(cfg.base + '/trending');
    await ready(page);
    await page.keyboard.press('Tab');
    if ((await page.evaluate(() => document.activeElement.className)) !== 'skip') throw new Error('the skip link is not first');
    let reached = false;
    for (let i = 0; i < 10 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement.id === 'q');
    }
    if (!reached) throw new Error('Tab never reaches the search box');
    await page.keyboard.type('#flowers');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\?q=%23flowers/, { timeout: TIMEOUT });
    await ready(page);
    if ((await page.locator('article.status').count()) !== 2) throw new Error('#flowers search');
    step('keyboard reaches the search box');

    // A bad address or query: the API's reason is shown, as text.
    await page.goto(cfg.base + '/thread?uri=' + encodeURIComponent('<b>nope</b>'));
    await page.waitForSelector('main[data-ready="error"]', { timeout: TIMEOUT });
    const why = await page.textContent('main .error');
    if (!why.includes('uri')) throw new Error('the error shows ' + why);
    if (await page.$('main b')) throw new Error('an error became markup');
    step('bad input is explained', { why });

    if (external.length) throw new Error('external requests: ' + external.join(', '));
    if (pageErrors.length) throw new Error('page errors: ' + pageErrors.join('; '));
    if (cspViolations.length) throw new Error('CSP violations: ' + cspViolations.join('; '));
    step('done');
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack || e);
  process.exit(1);
});
