// The crawler's read-only pages: search (/), a tag (/tag/NAME), a thread (/thread?uri=URL), a
// profile (/profile/KEY) and trending tags with a chart of their counts over time (/trending).
// Plain DOM, no framework, no external request. Everything that comes from an archive is put on
// the page with textContent (through el()), never as HTML.
'use strict';

(function () {
  const main = document.getElementById('main');
  const coverageEl = document.getElementById('coverage');
  const SVG = 'http://www.w3.org/2000/svg';
  const COLORS = ['#2b6cb0', '#c05621', '#2f855a', '#b83280', '#6b46c1', '#c53030', '#2c7a7b', '#975a16', '#4a5568', '#d69e2e'];

  // Builds an element; strings and numbers become text nodes, never markup.
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = String(v);
      else if (k === 'onclick') e.addEventListener('click', v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === undefined || kid === null || kid === false) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') e.textContent = String(v);
      else e.setAttribute(k, String(v));
    }
    return e;
  }

  function show(title, ...nodes) {
    document.title = title + ' · Fritter crawler';
    main.replaceChildren(...nodes);
  }

  function fail(title, err) {
    show(title, el('h1', { text: title }), el('p', { class: 'error', role: 'alert', text: String(err && err.message || err) }));
  }

  class ApiError extends Error {}

  // GET on the API of this server; an error answer becomes an ApiError with its message.
  async function api(path) {
    const r = await fetch(path, { headers: { accept: 'application/json' } });
    let body = null;
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const e = body && body.error;
      throw new ApiError(e && e.message ? e.message : `the crawler answered ${r.status}`);
    }
    if (body && body.coverage) showCoverage(body.coverage);
    return body;
  }

  function showCoverage(c) {
    coverageEl.textContent = `Coverage: ${c.archives} archives crawled, ${c.synced} fully indexed` +
      (c.lagging ? `, ${c.lagging} catching up` : '') + (c.errors ? `, ${c.errors} with errors` : '') +
      ` (as of ${c.asOf}).`;
  }

  // ---- names: archive key -> profile name, fetched once per archive ----

  const names = new Map();
  function nameOf(key) {
    if (!names.has(key)) {
      names.set(key, api('/v1/archives/' + encodeURIComponent(key))
        .then((a) => (a.profile && a.profile.profile && a.profile.profile.name) || null)
        .catch(() => null));
    }
    return names.get(key);
  }

  function short(key) {
    return String(key).slice(0, 8) + '…';
  }

  function authorLink(key) {
    const a = el('a', { class: 'name', href: '/profile/' + encodeURIComponent(key), text: short(key), title: key });
    nameOf(key).then((n) => { if (n) a.textContent = n; });
    return a;
  }

  function when(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return String(iso || '');
    return d.toLocaleString();
  }

  function threadHref(uri) {
    return '/thread?uri=' + encodeURIComponent(uri);
  }

  // A status of a thousand line breaks would fill many screens: its text is clamped by CSS and a
  // "Show more" button opens it. The button shows only when the text does not fit, which is known
  // once the text is laid out; the observer hears of that (and of every reflow).
  const moreButtons = new WeakMap();
  const clampObserver = new ResizeObserver((entries) => {
    for (const { target } of entries) {
      const more = moreButtons.get(target);
      if (!more || !target.classList.contains('clamped')) continue;
      const cut = target.scrollHeight > target.clientHeight + 1;
      target.classList.toggle('cut', cut);
      more.hidden = !cut;
    }
  });
  let clampIds = 0;

  // The text of a status, clamped, and its "Show more" button.
  function statusText(text) {
    const p = el('p', { class: 'status-text clamped', id: 'status-text-' + (++clampIds), text });
    const more = el('button', { type: 'button', class: 'more', hidden: true, 'aria-expanded': 'false', 'aria-controls': p.id, text: 'Show more' });
    more.addEventListener('click', () => {
      const open = !p.classList.toggle('clamped');
      more.setAttribute('aria-expanded', open ? 'true' : 'false');
      more.textContent = open ? 'Show less' : 'Show more';
    });
    moreButtons.set(p, more);
    clampObserver.observe(p);
    return [p, more];
  }

  // One status: author, time (a link to its thread), what it answers, text, tags.
  function statusCard(hit, opts) {
    const s = (hit && hit.status) || {};
    const card = el('article', { class: 'status' + (opts && opts.focus ? ' focus' : ''), 'data-uri': hit.uri, 'data-archive': hit.archive });
    card.append(el('header', null,
      authorLink(hit.archive),
      el('a', { class: 'when', href: threadHref(hit.uri), text: when(s.createdAt) })));
    if (s.threadParent && s.threadParent.url) {
      const parentKey = String(s.threadParent.url).replace(/^hyper:\/\//, '').split('/')[0];
      const p = el('div', { class: 'reply-to' }, 'Replying to ', el('a', { href: threadHref(s.threadParent.url), text: 'a status' }), ' by ');
      p.append(authorLink(parentKey));
      card.append(p);
    }
    card.append(...statusText(s.text || ''));
    const tags = Array.isArray(s.tags) ? s.tags : [];
    if (tags.length) {
      card.append(el('div', { class: 'tags' }, tags.map((t) => el('a', { class: 'tag', href: '/tag/' + encodeURIComponent(t), text: '#' + t }))));
    }
    return card;
  }

  // A list of hits with a "More" button while the API returns a cursor.
  async function hitList(title, heading, path, intro) {
    const list = el('div', { class: 'hits', 'aria-live': 'polite' });
    const more = el('button', { type: 'button', hidden: true, text: 'More' });
    show(title, heading, ...(intro || []), list, el('div', { class: 'row' }, more));
    let cursor = null;
    async function load() {
      more.disabled = true;
      const sep = path.includes('?') ? '&' : '?';
      const page = await api(path + (cursor ? sep + 'cursor=' + encodeURIComponent(cursor) : ''));
      for (const h of page.hits) list.append(statusCard(h));
      if (!list.children.length) list.append(el('p', { class: 'muted empty', text: 'Nothing found.' }));
      cursor = page.cursor || null;
      more.hidden = !cursor;
      more.disabled = false;
    }
    more.addEventListener('click', () => load().catch((e) => list.append(el('p', { class: 'error', role: 'alert', text: e.message }))));
    await load();
  }

  // ---- pages ----

  async function searchPage(params) {
    const q = params.get('q') || '';
    document.getElementById('q').value = q;
    if (!q) {
      return hitList('Latest', el('h1', { text: 'Latest statuses' }), '/v1/search?limit=20',
        [el('p', { class: 'muted', text: 'Search with words, "phrases", #tags, @names, -excluded words, OR and parentheses.' })]);
    }
    return hitList('Search: ' + q, el('h1', { text: 'Search: ' + q }), '/v1/search?limit=20&q=' + encodeURIComponent(q));
  }

  async function tagPage(tag) {
    return hitList('#' + tag, el('h1', { text: '#' + tag }), '/v1/search?limit=20&tag=' + encodeURIComponent(tag));
  }

  async function profilePage(key) {
    const a = await api('/v1/archives/' + encodeURIComponent(key));
    const p = (a.profile && a.profile.profile) || {};
    const name = p.name || short(a.archive);
    names.set(a.archive, Promise.resolve(p.name || null));
    const head = el('section', { class: 'card profile' },
      el('h1', { class: 'profile-name', text: name }),
      p.bio ? el('p', { class: 'bio', text: p.bio }) : null,
      el('p', { class: 'key', text: 'hyper://' + a.archive + '/' }),
      el('p', { class: 'muted small', text: `${a.statuses} statuses · following ${a.following} · ${a.followers} followers` }));
    return hitList(name, head, '/v1/search?limit=20&author=' + encodeURIComponent(a.archive),
      [el('h2', { text: 'Statuses' })]);
  }

  function threadNode(node, requested, depth) {
    const wrap = el('div', { class: depth ? 'depth' : 'thread-root' });
    if (node.post) wrap.append(statusCard(node.post, { focus: node.uri === requested }));
    else wrap.append(el('p', { class: 'status placeholder', 'data-uri': node.uri, text: 'A status the crawler does not hold.' }));
    if (node.parentChanged) wrap.append(el('p', { class: 'muted small', text: 'The status this answers was edited since.' }));
    for (const r of node.replies || []) wrap.append(threadNode(r, requested, depth + 1));
    return wrap;
  }

  async function threadPage(params) {
    const uri = params.get('uri');
    if (!uri) throw new ApiError('uri: give a status URL, /thread?uri=hyper://KEY/statuses/ID.json');
    const t = await api('/v1/thread?uri=' + encodeURIComponent(uri));
    show('Thread', el('h1', { text: 'Thread' }),
      el('p', { class: 'muted small', text: `${t.posts} statuses` + (t.truncated ? ' (cut short: too large to show whole)' : '') }),
      el('div', { id: 'thread' }, threadNode(t.thread, t.requested, 0)));
  }

  // The chart: one line per tag over the window's buckets, a point per bucket.
  function chart(trends, buckets) {
    const W = 400, H = 220, L = 30, R = 8, T = 12, B = 26;
    const n = Math.max(1, buckets.count);
    let max = 1;
    for (const t of trends) for (const v of t.series || []) max = Math.max(max, v);
    const x = (i) => L + (n === 1 ? (W - L - R) / 2 : i * (W - L - R) / (n - 1));
    const y = (v) => H - B - v * (H - T - B) / max;
    const root = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'chart-title' });
    root.append(svg('title', { id: 'chart-title', text: 'Posts per tag over time' }));
    root.append(svg('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }));
    root.append(svg('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }));
    root.append(svg('text', { x: L - 4, y: T + 8, 'text-anchor': 'end', text: String(max) }));
    root.append(svg('text', { x: L - 4, y: H - B, 'text-anchor': 'end', text: '0' }));
    const fmt = (ms) => new Date(ms).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
    root.append(svg('text', { x: L, y: H - 8, text: fmt(buckets.startMs) }));
    root.append(svg('text', { x: W - R, y: H - 8, 'text-anchor': 'end', text: 'now' }));
    trends.forEach((t, k) => {
      const color = COLORS[k % COLORS.length];
      const series = t.series || [];
      const g = svg('g', { class: 'series', 'data-tag': t.tag });
      g.append(svg('polyline', { fill: 'none', stroke: color, 'stroke-width': 2,
        points: series.map((v, i) => `${x(i)},${y(v)}`).join(' ') }));
      series.forEach((v, i) => {
        const c = svg('circle', { class: 'point', cx: x(i), cy: y(v), r: v ? 3 : 1.5, fill: color, 'data-tag': t.tag, 'data-count': v });
        c.append(svg('title', { text: `#${t.tag}: ${v} at ${fmt(buckets.startMs + i * buckets.widthMs)}` }));
        g.append(c);
      });
      root.append(g);
    });
    return root;
  }

  async function trendingPage(params) {
    const windows = ['1h', '24h', '7d'];
    const w = windows.includes(params.get('window')) ? params.get('window') : '24h';
    const t = await api('/v1/trending?window=' + w);
    const picker = el('div', { class: 'row', role: 'group', 'aria-label': 'Window' },
      windows.map((x) => el('a', { class: 'button', href: '/trending?window=' + x, 'aria-current': x === w ? 'true' : false, text: 'Last ' + x })));
    const nodes = [el('h1', { text: 'Trending tags' }), picker,
      el('p', { class: 'muted small', text: `Ranked by distinct authors; a tag needs at least ${t.minAuthors}.` })];
    if (!t.trends.length) {
      nodes.push(el('p', { class: 'muted empty', text: 'No tag is trending in this window.' }));
      return show('Trending', ...nodes);
    }
    nodes.push(chart(t.trends, t.buckets));
    nodes.push(el('ul', { class: 'legend' }, t.trends.map((tr, k) => {
      const sw = el('span', { class: 'swatch', 'aria-hidden': 'true' });
      sw.style.background = COLORS[k % COLORS.length];
      return el('li', null, sw, el('a', { href: '/tag/' + encodeURIComponent(tr.tag), text: '#' + tr.tag }));
    })));
    // The chart's numbers as a table, for screen readers and for reading exact counts.
    const head = el('tr', null, el('th', { scope: 'col', text: 'tag' }),
      (t.trends[0].series || []).map((_, i) => el('th', { scope: 'col', text: String(i + 1) })));
    const rows = t.trends.map((tr) => el('tr', null, el('th', { scope: 'row', text: '#' + tr.tag }),
      (tr.series || []).map((v) => el('td', { text: String(v) }))));
    nodes.push(el('details', null, el('summary', { text: `Counts per bucket (${t.buckets.count} of ${Math.round(t.buckets.widthMs / 60000)} minutes, oldest first)` }),
      el('table', { class: 'series' }, el('thead', null, head), el('tbody', null, rows))));
    nodes.push(el('ol', { class: 'trends' }, t.trends.map((tr) => el('li', { 'data-tag': tr.tag },
      el('a', { href: '/tag/' + encodeURIComponent(tr.tag), text: '#' + tr.tag }),
      el('span', { class: 'muted small', text: ` ${tr.posts} posts by ${tr.authors} authors` }),
      (tr.samples || []).slice(0, 1).map((h) => statusCard(h))))));
    show('Trending', ...nodes);
  }

  // ---- routing by address ----

  function route() {
    const path = location.pathname;
    const params = new URLSearchParams(location.search);
    const seg = (prefix) => decodeURIComponent(path.slice(prefix.length));
    let nav = null;
    let work;
    if (path === '/') { nav = 'search'; work = searchPage(params); }
    else if (path.startsWith('/tag/')) work = tagPage(seg('/tag/'));
    else if (path === '/thread') work = threadPage(params);
    else if (path.startsWith('/profile/')) work = profilePage(seg('/profile/'));
    else if (path === '/trending') { nav = 'trending'; work = trendingPage(params); }
    else work = Promise.reject(new ApiError('No such page.'));
    for (const a of document.querySelectorAll('nav a')) {
      if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    work.then(() => { main.dataset.ready = '1'; })
      .catch((e) => {
        fail('Error', e instanceof ApiError ? e : new Error('The crawler could not be reached: ' + e.message));
        main.dataset.ready = 'error';
      });
  }

  route();
})();
