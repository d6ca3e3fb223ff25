// Fritter's local web app. Plain DOM, no framework, no external request. Everything that came
// from an archive is put on the page with textContent (never innerHTML), so a status can only
// ever show as text.
'use strict';

const TOKEN = document.querySelector('meta[name="fritter-token"]').content;
const MAX_CHARS = 1000;
const main = document.getElementById('main');
let me = null;
let route = null;
let feedSeen = new Set();

// ---- helpers ----

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-fritter-token': TOKEN },
    body: JSON.stringify(body),
  };
  const res = await fetch(path, opts);
  let data;
  try { data = await res.json(); } catch (_) { data = { error: res.statusText }; }
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

let toastTimer;
function toast(msg) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.remove('show'), 4000);
}

function chars(s) { return [...s].length; }

function when(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 60) return s < 5 ? 'now' : `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return new Date(t).toLocaleDateString();
}

function shortKey(key) { return key.slice(0, 8) + '…'; }
function nameOf(a) { return a.name || shortKey(a.key); }
function profileHref(url) { return '#/profile?url=' + encodeURIComponent(url); }
function threadHref(url) { return '#/thread?url=' + encodeURIComponent(url); }

// ---- statuses ----

function authorLink(a) {
  return h('a', { class: 'name', href: a.self ? '#/me' : profileHref(a.url) }, nameOf(a),
    a.self ? h('span', { class: 'muted small' }, ' (you)') : null);
}

function composer(opts) {
  const area = h('textarea', {
    id: opts.id, 'aria-label': opts.label, placeholder: opts.placeholder, rows: 3,
  });
  const count = h('span', { class: 'count muted small', 'aria-live': 'polite' }, `0 / ${MAX_CHARS}`);
  const send = h('button', { class: 'primary', type: 'submit', disabled: true }, opts.button);
  const update = () => {
    const n = chars(area.value);
    count.textContent = `${n} / ${MAX_CHARS}`;
    count.classList.toggle('over', n > MAX_CHARS);
    send.disabled = n === 0 || n > MAX_CHARS || area.value.trim() === '';
  };
  area.addEventListener('input', update);
  const form = h('form', { class: 'card compose', 'aria-label': opts.label }, area, h('div', { class: 'row' }, count, send));
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !send.disabled) form.requestSubmit();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    send.disabled = true;
    try {
      const r = await opts.submit(area.value);
      area.value = '';
      update();
      for (const w of (r && r.warnings) || []) toast(w);
    } catch (err) {
      toast(err.message);
      update();
    }
  });
  return form;
}

// ---- tall statuses ----
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
  const p = h('p', { class: 'status-text clamped', id: 'status-text-' + (++clampIds) }, text);
  const more = h('button', { type: 'button', class: 'more', hidden: true, 'aria-expanded': 'false', 'aria-controls': p.id }, 'Show more');
  more.addEventListener('click', () => {
    const open = !p.classList.toggle('clamped');
    more.setAttribute('aria-expanded', open ? 'true' : 'false');
    more.textContent = open ? 'Show less' : 'Show more';
  });
  moreButtons.set(p, more);
  clampObserver.observe(p);
  return [p, more];
}

function statusCard(item, opts = {}) {
  const card = h('article', {
    class: 'status' + (opts.focus ? ' focus' : '') + (opts.fresh ? ' new' : ''),
    'data-url': item.url, 'aria-label': `Status by ${nameOf(item.author)}`,
  });
  const head = h('header', {}, authorLink(item.author),
    h('a', { class: 'when', href: threadHref(item.url), title: item.createdAt }, when(item.createdAt)));
  if (opts.fromCrawler) head.append(h('span', { class: 'pill', title: 'Found by the crawler: you do not follow this person' }, 'not followed'));
  card.append(head);
  if (item.replyTo) {
    const p = item.replyTo;
    const quote = h('div', { class: 'quote reply-to' });
    if (p.item) {
      quote.append(h('span', {}, 'In reply to ', h('a', { href: threadHref(p.url) }, nameOf(p.author)), ': '),
        h('span', { class: 'quote-text' }, p.item.text));
    } else {
      quote.append(h('span', {}, 'In reply to ', h('a', { href: threadHref(p.url) }, nameOf(p.author)),
        h('span', { class: 'placeholder' }, ' (not held here)')));
    }
    card.append(quote);
  }
  card.append(...statusText(item.text));
  if (item.tags && item.tags.length) {
    card.append(h('div', { class: 'small' }, item.tags.map((t) => [h('span', { class: 'tag' }, '#' + t), ' '])));
  }
  if (opts.readOnly) return card;
  const replyBox = h('div', { class: 'reply-box' });
  const likeBtn = h('button', { type: 'button', 'aria-pressed': item.liked ? 'true' : 'false', class: 'like' },
    (item.liked ? 'Unlike' : 'Like') + (item.likes ? ` · ${item.likes}` : ''));
  likeBtn.addEventListener('click', async () => {
    try {
      await api(item.liked ? '/api/unlike' : '/api/like', { url: item.url });
      item.liked = !item.liked;
      item.likes += item.liked ? 1 : -1;
      likeBtn.setAttribute('aria-pressed', item.liked ? 'true' : 'false');
      likeBtn.textContent = (item.liked ? 'Unlike' : 'Like') + (item.likes ? ` · ${item.likes}` : '');
    } catch (err) { toast(err.message); }
  });
  const replyBtn = h('button', { type: 'button', class: 'reply', 'aria-expanded': 'false' }, 'Reply' + (item.replies ? ` · ${item.replies}` : ''));
  replyBtn.addEventListener('click', () => {
    if (replyBox.firstChild) { replyBox.replaceChildren(); replyBtn.setAttribute('aria-expanded', 'false'); return; }
    replyBtn.setAttribute('aria-expanded', 'true');
    const form = composer({
      id: 'reply-' + item.id, label: `Reply to ${nameOf(item.author)}`, placeholder: 'Your reply', button: 'Reply',
      submit: async (text) => {
        const r = await api('/api/reply', { url: item.url, text });
        replyBox.replaceChildren();
        replyBtn.setAttribute('aria-expanded', 'false');
        toast('Replied');
        return r;
      },
    });
    replyBox.append(form);
    form.querySelector('textarea').focus();
  });
  const actions = h('div', { class: 'actions' }, replyBtn, likeBtn,
    h('a', { class: 'button', href: threadHref(item.url) }, 'Thread'));
  if (item.author.self) {
    actions.append(h('button', {
      type: 'button', class: 'delete',
      onclick: async () => {
        if (!confirm('Delete this status? Your archive\'s history keeps that it existed.')) return;
        try { await api('/api/delete', { url: item.url }); card.remove(); toast('Deleted'); } catch (err) { toast(err.message); }
      },
    }, 'Delete'));
  }
  card.append(actions, replyBox);
  return card;
}

// ---- pages ----

function setupPage() {
  const name = h('input', { type: 'text', id: 'setup-name', maxlength: 64, required: true, autocomplete: 'name' });
  const bio = h('textarea', { id: 'setup-bio', rows: 2 });
  const form = h('form', { class: 'card', 'aria-labelledby': 'setup-title' },
    h('h1', { id: 'setup-title' }, 'Welcome to Fritter'),
    h('p', {}, 'Choose the name others see. This creates your identity and your archive on this machine.'),
    h('label', { for: 'setup-name' }, 'Name'), name,
    h('label', { for: 'setup-bio' }, 'About you (optional)'), bio,
    h('div', { class: 'row' }, h('span'), h('button', { class: 'primary', type: 'submit' }, 'Create my archive')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api('/api/identity', { name: name.value, bio: bio.value });
      await loadMe();
      location.hash = '#/';
      render();
    } catch (err) { toast(err.message); }
  });
  main.replaceChildren(form);
  name.focus();
}

async function feedPage() {
  const list = h('div', { id: 'feed', 'aria-live': 'polite' });
  const more = h('button', { type: 'button', id: 'more', hidden: true }, 'Older statuses');
  const compose = composer({
    id: 'compose', label: 'New status', placeholder: "What's happening? #tags and @names of people you follow work",
    button: 'Post',
    submit: async (text) => {
      const r = await api('/api/post', { text });
      await refreshFeed();
      return r;
    },
  });
  const status = h('p', { class: 'muted small', id: 'feed-status' });
  main.replaceChildren(h('h1', {}, 'Feed'), compose, status, list, more);
  feedSeen = new Set();
  let cursor = null;
  const load = async () => {
    const page = await api('/api/feed?limit=20' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
    for (const item of page.items) {
      if (feedSeen.has(item.url)) continue;
      feedSeen.add(item.url);
      list.append(statusCard(item));
    }
    cursor = page.next || null;
    more.hidden = !cursor;
    status.textContent = page.indexing ? 'Still reading the archives you follow…' : '';
    if (!list.firstChild) {
      list.append(h('p', { class: 'muted empty' }, 'Nothing yet. Post something, or follow someone by their hyper:// address.'));
    }
  };
  more.addEventListener('click', () => load().catch((e) => toast(e.message)));
  await load();
}

// New statuses at the top, without disturbing what is shown.
async function refreshFeed() {
  const list = document.getElementById('feed');
  if (!list) return;
  const page = await api('/api/feed?limit=20');
  const fresh = page.items.filter((i) => !feedSeen.has(i.url));
  const empty = list.querySelector('.empty');
  if (empty && fresh.length) empty.remove();
  for (const item of fresh.reverse()) {
    feedSeen.add(item.url);
    list.prepend(statusCard(item, { fresh: true }));
  }
  const status = document.getElementById('feed-status');
  if (status) status.textContent = page.indexing ? 'Still reading the archives you follow…' : '';
}

async function removeDeleted(urls) {
  for (const url of urls || []) {
    for (const el of document.querySelectorAll('article.status')) {
      if (el.dataset.url === url) el.remove();
    }
  }
}

async function threadPage(params) {
  const url = params.get('url');
  main.replaceChildren(h('h1', {}, 'Thread'), h('p', { class: 'muted' }, 'Loading…'));
  const t = await api('/api/thread?url=' + encodeURIComponent(url));
  const list = h('div', { id: 'thread' });
  for (const node of t.items) {
    const indent = Math.min(node.depth, 6);
    const wrap = h('div', { class: indent ? 'depth' : '', style: null });
    wrap.style.marginLeft = `${indent * 0.9}rem`;
    if (node.item) wrap.append(statusCard(node.item, { focus: node.focus, fromCrawler: node.fromCrawler }));
    else wrap.append(h('div', { class: 'card placeholder', 'data-url': node.url }, 'A status not held here. ',
      h('span', { class: 'key' }, node.url)));
    list.append(wrap);
  }
  const notes = [];
  if (t.crawlerError) notes.push(h('p', { class: 'muted small' }, 'The crawler could not be asked: ' + t.crawlerError));
  main.replaceChildren(h('h1', {}, 'Thread'), ...notes, list);
}

async function profilePage(params, own) {
  const url = own ? me.url : params.get('url');
  main.replaceChildren(h('h1', {}, 'Profile'), h('p', { class: 'muted' }, 'Loading…'));
  const p = await api('/api/profile?url=' + encodeURIComponent(url));
  const a = p.author;
  const parts = [h('h1', {}, nameOf(a), a.self ? h('span', { class: 'muted small' }, ' (you)') : null)];
  const card = h('section', { class: 'card', 'aria-label': 'About' },
    p.bio ? h('p', { class: 'status-text' }, p.bio) : null,
    h('p', { class: 'key' }, a.url));
  if (!a.self) {
    const followBtn = h('button', { type: 'button', class: a.followed ? '' : 'primary' }, a.followed ? 'Unfollow' : 'Follow');
    followBtn.addEventListener('click', async () => {
      try {
        const r = await api(a.followed ? '/api/unfollow' : '/api/follow', { url: a.url });
        toast(r.text);
        render();
      } catch (err) { toast(err.message); }
    });
    card.append(followBtn);
  }
  if (p.skipped) card.append(h('p', { class: 'muted small skipped' }, `${p.skipped} invalid entries of this archive were skipped.`));
  parts.push(card);
  if (a.self) parts.push(profileEditor(p));
  if (!p.held) {
    parts.push(h('p', { class: 'muted' }, 'This archive is not held here. Follow it to replicate it and see its statuses.'));
  }
  parts.push(h('h2', {}, 'Statuses'));
  const list = h('div', { id: 'profile-statuses' });
  for (const item of p.statuses.items) list.append(statusCard(item));
  if (!p.statuses.items.length) list.append(h('p', { class: 'muted' }, 'No statuses.'));
  parts.push(list);
  if (p.follows && p.follows.length) {
    parts.push(h('h2', {}, `Follows (${p.follows.length})`));
    parts.push(h('ul', { class: 'plain' }, p.follows.map((f) => h('li', {}, authorLink(f), ' ', h('span', { class: 'key muted' }, f.url)))));
  }
  main.replaceChildren(...parts);
}

function profileEditor(p) {
  const name = h('input', { type: 'text', id: 'edit-name', maxlength: 64 });
  name.value = p.author.name || '';
  const bio = h('textarea', { id: 'edit-bio', rows: 2 });
  bio.value = p.bio || '';
  const form = h('form', { class: 'card', 'aria-label': 'Edit profile' },
    h('h2', {}, 'Edit profile'),
    h('label', { for: 'edit-name' }, 'Name'), name,
    h('label', { for: 'edit-bio' }, 'About you'), bio,
    h('div', { class: 'row' }, h('span'), h('button', { class: 'primary', type: 'submit' }, 'Save')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api('/api/profile', { name: name.value, bio: bio.value });
      await loadMe();
      toast('Profile saved');
      render();
    } catch (err) { toast(err.message); }
  });
  return form;
}

async function notificationsPage() {
  const n = await api('/api/notifications');
  const list = h('div', { id: 'notifications' });
  const verb = { reply: 'replied to you', mention: 'mentioned you', like: 'liked your status' };
  for (const item of n.items) {
    const head = h('p', { class: 'small' }, authorLink(item.from), ' ', verb[item.reason] || item.reason, ' · ',
      h('span', { class: 'muted', title: item.time }, when(item.time)),
      item.fromCrawler ? h('span', { class: 'pill' }, 'not followed') : null);
    if (item.subject) head.append(' · ', h('a', { href: threadHref(item.subject) }, 'your status'));
    const box = h('div', { class: 'card notification' + (item.unread ? ' unread' : ''), 'data-reason': item.reason }, head);
    if (item.status) box.append(statusCard(item.status, { fromCrawler: item.fromCrawler }));
    list.append(box);
  }
  if (!n.items.length) list.append(h('p', { class: 'muted' }, 'No notifications yet.'));
  const mark = h('button', { type: 'button', id: 'mark-read' }, 'Mark all as read');
  mark.addEventListener('click', async () => {
    try { const r = await api('/api/notifications/read', {}); setUnread(r.unread); render(); } catch (err) { toast(err.message); }
  });
  const notes = n.crawlerError ? [h('p', { class: 'muted small' }, 'The crawler could not be asked: ' + n.crawlerError)] : [];
  main.replaceChildren(h('div', { class: 'row' }, h('h1', {}, 'Notifications'), mark), ...notes, list);
}

async function followPage() {
  const input = h('input', { type: 'url', id: 'follow-url', placeholder: 'hyper://…/', autocomplete: 'off', required: true });
  const form = h('form', { class: 'card', 'aria-label': 'Follow' },
    h('label', { for: 'follow-url' }, 'Follow someone by pasting their address'), input,
    h('div', { class: 'row' }, h('span', { class: 'muted small' }, 'Their statuses join your feed once replicated.'),
      h('button', { class: 'primary', type: 'submit' }, 'Follow')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const r = await api('/api/follow', { url: input.value.trim() });
      input.value = '';
      toast(r.text);
      render();
    } catch (err) { toast(err.message); }
  });
  const mine = h('p', { class: 'small' }, 'Your address, to share: ', h('span', { class: 'key', id: 'my-url' }, me.url));
  const sugg = await api('/api/suggestions');
  const list = h('ul', { class: 'plain', id: 'suggestions' });
  for (const s of sugg.items) {
    const btn = h('button', { type: 'button' }, 'Follow');
    btn.addEventListener('click', async () => {
      try { const r = await api('/api/follow', { url: s.author.url }); toast(r.text); render(); } catch (err) { toast(err.message); }
    });
    list.append(h('li', {}, h('a', { href: profileHref(s.author.url) }, nameOf(s.author)), ' ',
      h('span', { class: 'muted small' }, `followed by ${s.followedBy} you follow (${s.via.map(nameOf).join(', ')})`), ' ', btn));
  }
  if (!sugg.items.length) list.append(h('li', { class: 'muted' }, 'No suggestions yet: they come from the people your follows follow.'));
  main.replaceChildren(h('h1', {}, 'Follow'), form, mine, h('h2', {}, 'Who to follow'), list);
  input.focus();
}

// ---- routing, live updates ----

function setUnread(n) {
  const b = document.getElementById('unread');
  b.hidden = !n;
  b.textContent = n ? String(n) : '';
  b.setAttribute('aria-label', `${n} unread`);
}

async function loadMe() {
  me = await api('/api/me');
  if (!me.setup) setUnread(me.unread);
  return me;
}

async function render() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query] = hash.split('?');
  const params = new URLSearchParams(query || '');
  route = path;
  for (const a of document.querySelectorAll('nav a')) {
    const target = a.getAttribute('href').slice(1);
    if (target === path) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  try {
    if (!me || me.setup || me.starting) await loadMe();
    if (me.starting) {
      // Not live yet: still opening, or waiting for another process to release the archive
      // (the error says which); the server keeps trying, so the page keeps asking.
      main.replaceChildren(h('p', { class: 'muted' }, me.error ? 'Fritter is not serving yet: ' + me.error : 'Starting: opening your archives…'));
      setTimeout(render, me.error ? 1000 : 300);
      return;
    }
    if (me.setup) return setupPage();
    if (path === '/') await feedPage();
    else if (path === '/thread') await threadPage(params);
    else if (path === '/profile') await profilePage(params, false);
    else if (path === '/me') await profilePage(params, true);
    else if (path === '/notifications') await notificationsPage();
    else if (path === '/follow') await followPage();
    else main.replaceChildren(h('p', {}, 'No such page. ', h('a', { href: '#/' }, 'Back to the feed')));
  } catch (err) {
    main.replaceChildren(h('p', { class: 'error' }, err.message));
  }
}

let rerenderTimer;
function rerenderSoon() {
  clearTimeout(rerenderTimer);
  rerenderTimer = setTimeout(() => {
    // Do not throw away what the user is typing.
    const typing = document.activeElement && ['TEXTAREA', 'INPUT'].includes(document.activeElement.tagName) && document.activeElement.value;
    if (!typing) render();
  }, 300);
}

function listen() {
  const live = document.getElementById('live');
  const es = new EventSource('/api/events');
  es.addEventListener('hello', () => { live.dataset.live = '1'; live.title = 'Live updates: on'; });
  es.addEventListener('error', () => { live.dataset.live = '0'; live.title = 'Live updates: reconnecting'; });
  es.addEventListener('feed', (e) => {
    let data = {};
    try { data = JSON.parse(e.data); } catch (_) { /* a reload of what is shown is enough */ }
    if (route === '/') {
      removeDeleted(data.deleted);
      refreshFeed().catch((err) => toast(err.message));
    } else if (route === '/thread' || route === '/profile' || route === '/me') {
      rerenderSoon();
    }
  });
  es.addEventListener('notifications', (e) => {
    try { setUnread(JSON.parse(e.data).unread); } catch (_) { /* ignore */ }
    if (route === '/notifications') rerenderSoon();
  });
  es.addEventListener('ready', async () => { await loadMe(); rerenderSoon(); });
}

document.addEventListener('keydown', (e) => {
  if (e.target.closest('input, textarea') || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === 'n') { const c = document.getElementById('compose'); if (c) { e.preventDefault(); c.focus(); } }
  else if (e.key === 'g') { location.hash = '#/'; }
});
document.getElementById('skip').addEventListener('click', (e) => { e.preventDefault(); main.focus(); });
window.addEventListener('hashchange', () => { render(); main.focus({ preventScroll: true }); });
listen();
render();
