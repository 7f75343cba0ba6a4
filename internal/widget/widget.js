/*
 * Parley live-chat widget. A website embeds it with
 *
 *   <script src="https://PARLEY/widget.js" data-parley-account="ID" async></script>
 *
 * It reads the account from its own tag and the API from its own src,
 * renders a chat bubble inside a shadow root (so the page's CSS and ours
 * leave each other alone), and talks to Parley's visitor API: StartLiveChat,
 * VisitorSendMessage and VisitorConversation over HTTP, VisitorEvents over
 * graphql-transport-ws. The visitor token lives in localStorage per account,
 * so a reload or a second tab continues the same chat.
 *
 * Optional attributes: data-parley-title (the panel's title) and
 * data-parley-color (the accent colour, #rgb or #rrggbb).
 *
 * Plain ES2017, no dependencies, no build step. Text from the network is
 * only ever set with textContent, never parsed as HTML.
 */
(() => {
  'use strict';

  const script = document.currentScript ||
    document.querySelector('script[data-parley-account][src*="widget.js"]');
  if (!script) return;
  const account = (script.getAttribute('data-parley-account') || '').trim();
  if (!account || account.length > 64) {
    console.warn('Parley widget: data-parley-account is missing on the script tag');
    return;
  }
  const src = new URL(script.src, location.href);
  const base = src.origin + src.pathname.replace(/\/widget\.js$/, '');
  const gqlURL = base + '/graphql';
  const wsURL = gqlURL.replace(/^http/, 'ws');

  // One widget per account and server, even if the snippet is pasted twice.
  const instanceKey = base + '#' + account;
  const instances = (window.__parleyWidgets = window.__parleyWidgets || {});
  if (instances[instanceKey]) return;
  instances[instanceKey] = true;

  const title = (script.getAttribute('data-parley-title') || 'Chat with us').slice(0, 60);
  const accent = script.getAttribute('data-parley-color') || '';

  // ------------------------------------------------------------ operations
  // The contract's visitor operations (../shared/api/operations.graphql),
  // with the agent's name and attachments added to each message.
  const MESSAGE = 'id direction body createdAt ' +
    'sender { __typename ... on Agent { name } } ' +
    'attachments { id filename contentType size url }';
  const START = 'mutation StartLiveChat($input: StartLiveChatInput!) { ' +
    'startLiveChat(input: $input) { visitorToken conversation { id } } }';
  const SEND = 'mutation VisitorSendMessage($body: String, $attachmentIDs: [ID!]) { ' +
    'visitorSendMessage(body: $body, attachmentIDs: $attachmentIDs) { ' + MESSAGE + ' } }';
  const CONVERSATION = 'query VisitorConversation { visitorConversation { id status ' +
    'messages(last: 50) { edges { node { ' + MESSAGE + ' } } } } }';
  const EVENTS = 'subscription VisitorEvents { visitorEvents { kind message { ' + MESSAGE + ' } } }';
  const UPLOAD = 'mutation UploadAttachment($file: Upload!) { ' +
    'uploadAttachment(file: $file) { id filename contentType size } }';

  const MAX_FILE = 25 << 20;
  const ACCEPT = '.pdf,.doc,.docx,.ppt,.pptx,.xls,.xlsx,.txt,.rtf,.jpg,.jpeg,.png,.gif,' +
    '.bmp,.webp,.tif,.tiff,.heif,.heic';

  const TEXT = {
    intro: 'Hi! Leave your name and email if you like, so that we can get back to you. Both are optional.',
    name: 'Name',
    email: 'Email',
    start: 'Start chat',
    starting: 'Starting…',
    placeholder: 'Type your message…',
    send: 'Send',
    attach: 'Attach a file',
    ended: 'This chat has ended.',
    newChat: 'Start a new chat',
    unavailable: 'Sorry, chat isn’t available right now. Please try again later or reach us another way.',
    empty: 'Send us a message and we’ll answer here.',
    online: 'We reply here in real time',
    connecting: 'Connecting…',
    reconnecting: 'Reconnecting…',
    offline: 'Offline',
    sending: 'Sending…',
    noNetwork: 'We couldn’t reach the chat. Check your connection and try again.',
    notSent: 'Your message wasn’t sent. Check your connection and try again.',
    tooBig: 'That file is too large (at most 25 MB).',
    open: 'Open chat',
    close: 'Close chat',
  };

  // ------------------------------------------------------------ storage
  const storeKey = 'parley-chat:' + instanceKey;
  const memory = {};
  const storage = (kind) => {
    try {
      const s = window[kind];
      s.getItem(storeKey);
      return s;
    } catch (e) {
      return {
        getItem: (k) => (k in memory ? memory[k] : null),
        setItem: (k, v) => { memory[k] = String(v); },
        removeItem: (k) => { delete memory[k]; },
      };
    }
  };
  const local = storage('localStorage'); // the session, shared by tabs
  const perTab = storage('sessionStorage'); // whether this tab's panel is open

  const loadSession = () => {
    try {
      const s = JSON.parse(local.getItem(storeKey) || 'null');
      return s && typeof s.token === 'string' ? s : null;
    } catch (e) {
      return null;
    }
  };
  const saveSession = (s) => {
    try { local.setItem(storeKey, JSON.stringify(s)); } catch (e) { /* full or disabled */ }
  };
  const clearSession = () => {
    try { local.removeItem(storeKey); } catch (e) { /* disabled */ }
  };

  // ------------------------------------------------------------ API
  class ChatError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  const parse = async (res) => {
    let body;
    try {
      body = await res.json();
    } catch (e) {
      throw new ChatError(res.status === 403 ? 'FORBIDDEN' : 'HTTP', 'HTTP ' + res.status);
    }
    const errors = body.errors || [];
    const data = body.data || null;
    // A failing field deep inside (say an attachment's url) leaves the rest
    // of the answer usable; only a missing root is a failure.
    const root = data && Object.keys(data).length ? data[Object.keys(data)[0]] : null;
    if (root === null || root === undefined) {
      const e = errors[0] || {};
      throw new ChatError((e.extensions && e.extensions.code) || 'HTTP', e.message || 'HTTP ' + res.status);
    }
    return data;
  };

  const post = async (init) => {
    let res;
    try {
      res = await fetch(gqlURL, Object.assign({ method: 'POST', mode: 'cors', credentials: 'omit' }, init));
    } catch (e) {
      throw new ChatError('NETWORK', String(e && e.message || e));
    }
    return parse(res);
  };

  const call = (query, variables, token) => {
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    return post({ headers, body: JSON.stringify({ query, variables: variables || {} }) });
  };

  // upload sends a file per the GraphQL multipart request spec.
  const upload = (file, token) => {
    const form = new FormData();
    form.append('operations', JSON.stringify({ query: UPLOAD, variables: { file: null } }));
    form.append('map', JSON.stringify({ 0: ['variables.file'] }));
    form.append('0', file, file.name);
    return post({ headers: { Authorization: 'Bearer ' + token }, body: form });
  };

  // ------------------------------------------------------------ DOM helpers
  const h = (tag, props, children) => {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children || []) if (c) el.append(c);
    return el;
  };
  const SVG = 'http://www.w3.org/2000/svg';
  const icon = (d, filled) => {
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', d);
    if (filled) {
      path.setAttribute('fill', 'currentColor');
    } else {
      path.setAttribute('fill', 'none');
      path.setAttribute('stroke', 'currentColor');
      path.setAttribute('stroke-width', '2');
      path.setAttribute('stroke-linecap', 'round');
      path.setAttribute('stroke-linejoin', 'round');
    }
    svg.append(path);
    return svg;
  };
  const ICON_CHAT = 'M5 4h14a3 3 0 0 1 3 3v8a3 3 0 0 1-3 3h-8l-5 4v-4H5a3 3 0 0 1-3-3V7a3 3 0 0 1 3-3z';
  const ICON_CLOSE = 'M6 6l12 12M18 6L6 18';
  const ICON_CLIP = 'M20.5 11.5l-8.3 8.3a5 5 0 0 1-7-7l8.8-8.8a3.4 3.4 0 0 1 4.8 4.8l-8.8 8.8a1.7 1.7 0 0 1-2.4-2.4l8-8';

  // linkify appends text to el, with http(s) URLs as links.
  const linkify = (el, text) => {
    const re = /\bhttps?:\/\/[^\s<>"']+/gi;
    let at = 0;
    let m;
    while ((m = re.exec(text))) {
      let url = m[0];
      const trail = /[.,;:!?)\]]+$/.exec(url);
      if (trail) url = url.slice(0, -trail[0].length);
      el.append(document.createTextNode(text.slice(at, m.index)));
      el.append(h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', text: url }));
      at = m.index + url.length;
      re.lastIndex = at;
    }
    el.append(document.createTextNode(text.slice(at)));
  };

  const safeURL = (raw) => {
    try {
      const u = new URL(raw, base + '/');
      return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
    } catch (e) {
      return null;
    }
  };

  const fileSize = (n) => {
    if (!(n >= 0)) return '';
    if (n < 1024) return n + ' B';
    if (n < 1 << 20) return Math.round(n / 1024) + ' KB';
    return (n / (1 << 20)).toFixed(1) + ' MB';
  };

  const clock = (iso) => {
    const d = new Date(iso);
    return isNaN(d) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  };

  // ------------------------------------------------------------ styles
  const CSS = `
:host { all: initial; position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1d2330; --pw-accent: #2f6fed; --pw-accent-text: #fff; }
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
button, input, textarea { font: inherit; color: inherit; }
.pw-launcher { position: relative; display: grid; place-items: center; width: 58px; height: 58px;
  margin-left: auto; border: 0; border-radius: 50%; background: var(--pw-accent); color: var(--pw-accent-text);
  cursor: pointer; box-shadow: 0 6px 20px rgba(20, 30, 60, .28); transition: transform .15s ease; }
.pw-launcher:hover { transform: scale(1.06); }
.pw-launcher:focus-visible, .pw-panel button:focus-visible { outline: 3px solid rgba(47, 111, 237, .45); outline-offset: 2px; }
.pw-launcher svg { width: 28px; height: 28px; }
.pw-badge { position: absolute; top: -3px; right: -3px; min-width: 20px; height: 20px; padding: 0 6px;
  border-radius: 10px; background: #e5484d; color: #fff; font-size: 12px; font-weight: 600; line-height: 20px; text-align: center; }
.pw-panel { position: absolute; right: 0; bottom: 74px; display: flex; flex-direction: column;
  width: 370px; height: 540px; max-height: calc(100vh - 120px); overflow: hidden;
  border-radius: 16px; background: #fff; box-shadow: 0 16px 48px rgba(20, 30, 60, .28); }
.pw-header { display: flex; align-items: center; gap: 12px; padding: 16px 18px;
  background: var(--pw-accent); color: var(--pw-accent-text); }
.pw-heading { min-width: 0; }
.pw-title { font-size: 16px; font-weight: 650; }
.pw-status { font-size: 12px; opacity: .88; }
.pw-status:empty { display: none; }
.pw-status::before { content: ""; display: inline-block; width: 8px; height: 8px; margin-right: 6px;
  border-radius: 50%; background: #9aa3b5; vertical-align: 0; }
.pw-status[data-state="online"]::before { background: #3ddc84; }
.pw-status[data-state="reconnecting"]::before, .pw-status[data-state="connecting"]::before { background: #ffc53d; }
.pw-close { margin-left: auto; display: grid; place-items: center; width: 32px; height: 32px; padding: 0;
  border: 0; border-radius: 8px; background: transparent; color: inherit; cursor: pointer; }
.pw-close:hover { background: rgba(255, 255, 255, .18); }
.pw-close svg { width: 20px; height: 20px; }
.pw-body { flex: 1; display: flex; flex-direction: column; gap: 10px; padding: 16px; overflow-y: auto;
  background: #f5f6f9; }
.pw-notice { padding: 8px 12px; border-radius: 10px; background: #fff4e5; color: #7a4b00; font-size: 13px; }
.pw-form { display: flex; flex-direction: column; gap: 12px; padding: 16px; border-radius: 12px; background: #fff;
  box-shadow: 0 1px 3px rgba(20, 30, 60, .1); }
.pw-form p { margin: 0; color: #4a5468; }
.pw-form label { display: flex; flex-direction: column; gap: 4px; font-size: 13px; font-weight: 600; color: #4a5468; }
.pw-form input { padding: 9px 11px; border: 1px solid #cfd5e1; border-radius: 8px; background: #fff; font-weight: 400; }
.pw-form input:focus, .pw-input:focus { outline: none; border-color: var(--pw-accent); box-shadow: 0 0 0 3px rgba(47, 111, 237, .18); }
.pw-primary { padding: 10px 14px; border: 0; border-radius: 8px; background: var(--pw-accent); color: var(--pw-accent-text);
  font-weight: 600; cursor: pointer; }
.pw-primary:disabled { opacity: .6; cursor: default; }
.pw-error { margin: 0; color: #c4272d; font-size: 13px; }
.pw-log { display: flex; flex-direction: column; gap: 6px; }
.pw-empty { margin: auto 0; text-align: center; color: #7a8499; }
.pw-msg { display: flex; flex-direction: column; max-width: 82%; }
.pw-msg.pw-in { align-self: flex-end; align-items: flex-end; }
.pw-msg.pw-out { align-self: flex-start; align-items: flex-start; }
.pw-msg.pw-sys { align-self: center; max-width: 90%; text-align: center; color: #7a8499; font-size: 12px; }
.pw-who { margin: 4px 0 2px 4px; font-size: 12px; color: #7a8499; }
.pw-bubble { padding: 9px 13px; border-radius: 16px; white-space: pre-wrap; overflow-wrap: anywhere; }
.pw-in .pw-bubble { border-bottom-right-radius: 5px; background: var(--pw-accent); color: var(--pw-accent-text); }
.pw-out .pw-bubble { border-bottom-left-radius: 5px; background: #fff; box-shadow: 0 1px 2px rgba(20, 30, 60, .12); }
.pw-sys .pw-bubble { padding: 2px 8px; background: transparent; }
.pw-bubble a { color: inherit; }
.pw-meta { margin: 2px 4px 0; font-size: 11px; color: #8a93a6; }
.pw-msg[data-pending] .pw-bubble { opacity: .65; }
.pw-files { display: flex; flex-direction: column; gap: 6px; margin-top: 6px; }
.pw-files:first-child { margin-top: 0; }
.pw-bubble.pw-files-only { padding: 0; background: transparent; box-shadow: none; }
.pw-files-only .pw-file { background: #e8ecf3; color: #1d2330; }
.pw-file { display: inline-flex; align-items: center; gap: 6px; padding: 6px 10px; border-radius: 10px;
  background: rgba(0, 0, 0, .06); color: inherit; text-decoration: none; font-size: 13px; }
.pw-file svg { width: 16px; height: 16px; flex: none; }
.pw-thumb { display: block; max-width: 220px; max-height: 180px; border-radius: 10px; }
.pw-ended { display: flex; flex-direction: column; align-items: center; gap: 10px; padding: 14px;
  border-radius: 12px; background: #fff; text-align: center; box-shadow: 0 1px 3px rgba(20, 30, 60, .1); }
.pw-ended p, .pw-unavailable p { margin: 0; }
.pw-unavailable { padding: 16px; border-radius: 12px; background: #fff; color: #4a5468; text-align: center;
  box-shadow: 0 1px 3px rgba(20, 30, 60, .1); }
.pw-composer { display: flex; align-items: flex-end; gap: 8px; padding: 10px 12px; border-top: 1px solid #e3e7ef; background: #fff; }
.pw-input { flex: 1; min-height: 40px; max-height: 120px; padding: 9px 12px; resize: none;
  border: 1px solid #cfd5e1; border-radius: 10px; background: #fff; }
.pw-input:disabled { background: #f0f2f6; }
.pw-attach { display: grid; place-items: center; width: 40px; height: 40px; padding: 0; border: 0; border-radius: 10px;
  background: transparent; color: #5b6579; cursor: pointer; }
.pw-attach:hover:not(:disabled) { background: #eef1f6; }
.pw-attach svg { width: 22px; height: 22px; }
.pw-composer .pw-primary { height: 40px; }
.pw-composer button:disabled { cursor: default; opacity: .5; }
@media (max-width: 480px) {
  :host { right: 12px; bottom: 12px; }
  .pw-panel { position: fixed; inset: 0; width: auto; height: auto; max-height: none; border-radius: 0; }
  .pw-launcher[aria-expanded="true"] { display: none; }
}
`;

  // ------------------------------------------------------------ the widget
  const host = h('div', { 'data-parley-widget': account });
  const root = host.attachShadow({ mode: 'open' });
  if (/^#[0-9a-f]{3}([0-9a-f]{3})?$/i.test(accent)) host.style.setProperty('--pw-accent', accent);
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    root.append(h('style', { text: CSS }));
  }

  const badge = h('span', { class: 'pw-badge', hidden: true });
  const launcherIcon = h('span', {}, [icon(ICON_CHAT, true)]);
  const launcher = h('button', {
    class: 'pw-launcher', type: 'button', 'aria-label': TEXT.open, 'aria-expanded': 'false',
    onclick: () => setOpen(!ui.open),
  }, [launcherIcon, badge]);

  const status = h('div', { class: 'pw-status', 'data-state': 'offline', text: '' });
  const notice = h('div', { class: 'pw-notice', role: 'status', hidden: true });

  const nameInput = h('input', { name: 'name', type: 'text', maxlength: '100', autocomplete: 'name' });
  const emailInput = h('input', { name: 'email', type: 'email', maxlength: '200', autocomplete: 'email' });
  const startButton = h('button', { class: 'pw-primary', type: 'submit', text: TEXT.start });
  const formError = h('p', { class: 'pw-error', role: 'alert', hidden: true });
  const form = h('form', { class: 'pw-form', novalidate: true, onsubmit: (e) => { e.preventDefault(); start(); } }, [
    h('p', { text: TEXT.intro }),
    h('label', {}, [h('span', { text: TEXT.name }), nameInput]),
    h('label', {}, [h('span', { text: TEXT.email }), emailInput]),
    formError,
    startButton,
  ]);

  const log = h('div', { class: 'pw-log', role: 'log', 'aria-live': 'polite' });
  const empty = h('p', { class: 'pw-empty', text: TEXT.empty, hidden: true });
  const ended = h('div', { class: 'pw-ended', hidden: true }, [
    h('p', { text: TEXT.ended }),
    h('button', { class: 'pw-primary', type: 'button', text: TEXT.newChat, onclick: () => newChat() }),
  ]);
  const unavailable = h('div', { class: 'pw-unavailable', role: 'alert', hidden: true }, [h('p', { text: TEXT.unavailable })]);
  const body = h('div', { class: 'pw-body' }, [notice, form, empty, log, ended, unavailable]);

  const input = h('textarea', { class: 'pw-input', rows: '1', placeholder: TEXT.placeholder, 'aria-label': TEXT.placeholder, maxlength: '4000' });
  const fileInput = h('input', { type: 'file', accept: ACCEPT, hidden: true });
  const attachButton = h('button', { class: 'pw-attach', type: 'button', title: TEXT.attach, 'aria-label': TEXT.attach }, [icon(ICON_CLIP)]);
  const sendButton = h('button', { class: 'pw-primary', type: 'submit', text: TEXT.send });
  const composer = h('form', { class: 'pw-composer', onsubmit: (e) => { e.preventDefault(); sendText(); } },
    [attachButton, fileInput, input, sendButton]);

  const panel = h('div', { class: 'pw-panel', role: 'dialog', 'aria-label': title, hidden: true }, [
    h('div', { class: 'pw-header' }, [
      h('div', { class: 'pw-heading' }, [h('div', { class: 'pw-title', text: title }), status]),
      h('button', { class: 'pw-close', type: 'button', 'aria-label': TEXT.close, onclick: () => setOpen(false) }, [icon(ICON_CLOSE)]),
    ]),
    body,
    composer,
  ]);
  root.append(panel, launcher);

  // ------------------------------------------------------------ state
  const ui = {
    open: perTab.getItem(storeKey) === 'open',
    // view: form (no chat yet), chat, ended, unavailable (refused).
    view: 'form',
    conn: 'offline',
    unread: 0,
  };
  let session = loadSession();
  let messages = new Map(); // id -> message; de-duplicates everything
  let tempSeq = 0;

  // sentence capitalizes a server's message for display.
  const sentence = (text) => (text ? text.charAt(0).toUpperCase() + text.slice(1) : '');

  const setNotice = (text) => {
    notice.textContent = sentence(text);
    notice.hidden = !text;
  };

  const render = () => {
    panel.hidden = !ui.open;
    launcher.setAttribute('aria-expanded', String(ui.open));
    launcher.setAttribute('aria-label', ui.open ? TEXT.close : TEXT.open);
    launcherIcon.replaceChildren(icon(ui.open ? ICON_CLOSE : ICON_CHAT, !ui.open));
    badge.hidden = ui.open || ui.unread === 0;
    badge.textContent = ui.unread > 9 ? '9+' : String(ui.unread);

    const chatting = ui.view === 'chat' || ui.view === 'ended';
    form.hidden = ui.view !== 'form';
    log.hidden = !chatting;
    empty.hidden = !(ui.view === 'chat' && messages.size === 0);
    ended.hidden = ui.view !== 'ended';
    unavailable.hidden = ui.view !== 'unavailable';
    composer.hidden = ui.view === 'form' || ui.view === 'unavailable';
    const live = ui.view === 'chat';
    input.disabled = !live;
    sendButton.disabled = !live;
    attachButton.disabled = !live;

    const conn = ui.view === 'chat' ? ui.conn : 'offline';
    status.dataset.state = conn;
    status.textContent = ui.view === 'ended' ? TEXT.ended : ui.view !== 'chat' ? '' :
      conn === 'online' ? TEXT.online : conn === 'connecting' ? TEXT.connecting :
        conn === 'reconnecting' ? TEXT.reconnecting : TEXT.offline;
  };

  const setOpen = (open) => {
    ui.open = open;
    if (open) ui.unread = 0;
    try { perTab.setItem(storeKey, open ? 'open' : 'closed'); } catch (e) { /* disabled */ }
    render();
    if (open) {
      scrollToEnd();
      (ui.view === 'form' ? nameInput : input).focus({ preventScroll: true });
    }
  };

  // ------------------------------------------------------------ messages
  const order = (a, b) => (Date.parse(a.createdAt) - Date.parse(b.createdAt)) ||
    ((Number(a.id) || Infinity) - (Number(b.id) || Infinity));

  const messageElement = (m, prev) => {
    const kind = m.direction === 'INBOUND' ? 'pw-in' : m.direction === 'OUTBOUND' ? 'pw-out' : 'pw-sys';
    const el = h('div', { class: 'pw-msg ' + kind, 'data-id': m.id, 'data-pending': m.pending ? 'true' : null });
    const who = m.sender && m.sender.__typename === 'Agent' ? m.sender.name : '';
    const prevWho = prev && prev.sender && prev.sender.__typename === 'Agent' ? prev.sender.name : '';
    if (kind === 'pw-out' && who && (!prev || prev.direction !== 'OUTBOUND' || prevWho !== who)) {
      el.append(h('div', { class: 'pw-who', text: who }));
    }
    const bubble = h('div', { class: 'pw-bubble' });
    if (m.body) linkify(bubble, m.body);
    const files = (m.attachments || []).map((a) => {
      const url = a.url ? safeURL(a.url) : null;
      const label = (a.filename || 'file') + (a.size ? ' (' + fileSize(a.size) + ')' : '');
      if (url && /^image\//.test(a.contentType || '')) {
        return h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', title: label },
          [h('img', { class: 'pw-thumb', src: url, alt: a.filename || 'image', loading: 'lazy' })]);
      }
      const children = [icon(ICON_CLIP), document.createTextNode(label)];
      return url ? h('a', { class: 'pw-file', href: url, target: '_blank', rel: 'noopener noreferrer', download: a.filename || true }, children)
        : h('span', { class: 'pw-file' }, children);
    });
    if (m.pendingFile) files.push(h('span', { class: 'pw-file' }, [icon(ICON_CLIP), document.createTextNode(m.pendingFile)]));
    if (files.length) bubble.append(h('div', { class: 'pw-files' }, files));
    if (!m.body && files.length) bubble.classList.add('pw-files-only');
    el.append(bubble);
    if (kind !== 'pw-sys') el.append(h('div', { class: 'pw-meta', text: m.pending ? TEXT.sending : clock(m.createdAt) }));
    return el;
  };

  const atEnd = () => body.scrollHeight - body.scrollTop - body.clientHeight < 40;
  const scrollToEnd = () => { body.scrollTop = body.scrollHeight; };

  const renderLog = (forceScroll) => {
    const stick = forceScroll || atEnd();
    const sorted = Array.from(messages.values()).sort(order);
    log.replaceChildren(...sorted.map((m, i) => messageElement(m, sorted[i - 1])));
    render();
    if (stick) scrollToEnd();
  };

  // upsert adds or replaces messages by id. Agents' messages that arrive
  // while the panel is closed count as unread, except for the history shown
  // when the page loads.
  let historyLoaded = false;
  const upsert = (list) => {
    for (const m of list) {
      if (!m || !m.id) continue;
      if (!messages.has(m.id) && historyLoaded && !ui.open && m.direction === 'OUTBOUND') ui.unread++;
      messages.set(m.id, m);
    }
  };

  // ------------------------------------------------------------ history
  let refreshing = null;
  let refreshTimer = 0;

  // refresh fetches the conversation (the history and its status) and
  // merges it: messages missed while offline appear once, never twice.
  const refresh = () => {
    if (!session) return Promise.resolve();
    if (refreshing) return refreshing;
    const token = session.token;
    refreshing = call(CONVERSATION, null, token).then((d) => {
      if (!session || session.token !== token) return;
      const c = d.visitorConversation;
      const nodes = ((c.messages && c.messages.edges) || []).map((e) => e && e.node);
      upsert(nodes);
      historyLoaded = true;
      if (c.status !== 'OPEN') endChat();
      renderLog(false);
    }, (e) => {
      if (e.code === 'UNAUTHENTICATED' || e.code === 'NOT_FOUND') forget();
      else if (e.code !== 'NETWORK') console.warn('Parley widget:', e.message);
    }).then(() => { refreshing = null; });
    return refreshing;
  };

  // refreshSoon refreshes now and once more shortly, to cover a reply
  // stored while the subscription was still being set up.
  const refreshSoon = () => {
    refresh();
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 1500);
  };

  // ------------------------------------------------------------ realtime
  let ws = null;
  let acked = false;
  let attempt = 0;
  let retryTimer = 0;
  let lastSeen = 0;
  let subSeq = 0;
  let subID = '';

  const setConn = (c) => {
    ui.conn = c;
    render();
  };

  const wsSend = (sock, msg) => {
    if (sock.readyState === 1) sock.send(JSON.stringify(msg));
  };

  const subscribe = (sock) => {
    subID = 'visitor-' + (++subSeq);
    wsSend(sock, { id: subID, type: 'subscribe', payload: { query: EVENTS } });
  };

  const disconnect = () => {
    clearTimeout(retryTimer);
    const sock = ws;
    ws = null;
    acked = false;
    if (sock) {
      try { wsSend(sock, { type: 'complete', id: subID }); sock.close(1000); } catch (e) { /* closed */ }
    }
  };

  const scheduleReconnect = () => {
    clearTimeout(retryTimer);
    if (!session || ui.view !== 'chat') return;
    const delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.75 + Math.random() * 0.5);
    attempt = Math.min(attempt + 1, 10);
    retryTimer = setTimeout(connect, delay);
  };

  // drop abandons a connection that failed or went quiet and tries again.
  const drop = (sock) => {
    if (sock !== ws) return;
    ws = null;
    acked = false;
    try { sock.close(); } catch (e) { /* closed */ }
    if (session && ui.view === 'chat') {
      setConn('reconnecting');
      scheduleReconnect();
    }
  };

  const onEvent = (payload) => {
    const ev = payload && payload.data && payload.data.visitorEvents;
    if (!ev) {
      if (payload && payload.errors) refresh();
      return;
    }
    if (ev.kind === 'MESSAGE_ADDED' && ev.message) {
      upsert([ev.message]);
      renderLog(false);
    } else if (ev.kind === 'SESSION_ENDED') {
      endChat();
    }
  };

  function connect() {
    clearTimeout(retryTimer);
    if (!session || ui.view !== 'chat' || ws) return;
    const token = session.token;
    let opened = false;
    let sock;
    try {
      sock = new WebSocket(wsURL, 'graphql-transport-ws');
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    acked = false;
    lastSeen = Date.now();
    setConn(attempt === 0 ? 'connecting' : 'reconnecting');
    sock.onopen = () => {
      opened = true;
      wsSend(sock, { type: 'connection_init', payload: { authToken: token } });
    };
    sock.onmessage = (e) => {
      if (sock !== ws) return;
      lastSeen = Date.now();
      let m;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      switch (m.type) {
        case 'connection_ack':
          acked = true;
          attempt = 0;
          setConn('online');
          subscribe(sock);
          refreshSoon();
          break;
        case 'ping':
          wsSend(sock, { type: 'pong' });
          break;
        case 'next':
          if (m.id === subID) onEvent(m.payload);
          break;
        case 'error':
          // The subscription was refused: find out why (the token may be
          // gone), and try again later.
          if (m.id === subID) {
            refresh();
            drop(sock);
          }
          break;
        case 'complete':
          // The server ends the stream after SESSION_ENDED, or when this
          // subscriber fell behind: then catch up and listen again.
          if (m.id === subID && ui.view === 'chat') {
            subscribe(sock);
            refreshSoon();
          }
          break;
        case 'connection_error':
          refresh();
          break;
        default:
      }
    };
    sock.onclose = () => {
      if (sock !== ws) return;
      // Refused at connection_init: the token may be gone; refresh tells.
      if (opened && !acked) refresh();
      drop(sock);
    };
    sock.onerror = () => { /* onclose follows */ };
  }

  // A connection that hears nothing (not even the server's pings) for this
  // long is presumed dead: half-open TCP after a network change.
  setInterval(() => {
    if (ws && acked && Date.now() - lastSeen > 50000) drop(ws);
  }, 10000);
  window.addEventListener('online', () => {
    if (session && ui.view === 'chat' && !ws) { attempt = 0; connect(); }
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && session && ui.view === 'chat' && !ws) { attempt = 0; connect(); }
  });

  // ------------------------------------------------------------ flows
  const touch = () => {
    if (session) saveSession(Object.assign({}, session, { touched: Date.now() }));
  };

  // forget drops a session the server no longer knows.
  const forget = () => {
    disconnect();
    clearSession();
    session = null;
    messages = new Map();
    ui.view = 'form';
    renderLog(true);
  };

  function endChat() {
    if (ui.view === 'ended') return;
    ui.view = 'ended';
    disconnect();
    setNotice('');
    render();
    scrollToEnd();
  }

  const refuse = (why) => {
    console.warn('Parley widget: chat refused:', why);
    disconnect();
    ui.view = 'unavailable';
    render();
  };

  function newChat() {
    disconnect();
    clearSession();
    session = null;
    messages = new Map();
    ui.view = 'form';
    setNotice('');
    renderLog(true);
    nameInput.focus();
  }

  const resume = (s) => {
    session = s;
    messages = new Map();
    historyLoaded = false;
    ui.view = 'chat';
    ui.conn = 'connecting';
    renderLog(true);
    refresh().then(() => {
      if (session === s) connect();
    });
  };

  async function start() {
    formError.hidden = true;
    startButton.disabled = true;
    startButton.textContent = TEXT.starting;
    const name = nameInput.value.trim();
    const email = emailInput.value.trim();
    const page = /^https?:/.test(location.protocol)
      ? (location.href.length <= 2000 ? location.href : location.origin + location.pathname).slice(0, 2000) : null;
    try {
      const d = await call(START, {
        input: { channelAccountID: account, name: name || null, email: email || null, pageURL: page },
      });
      const s = { token: d.startLiveChat.visitorToken, conversationID: d.startLiveChat.conversation.id, touched: Date.now() };
      saveSession(s);
      session = s;
      messages = new Map();
      historyLoaded = true; // a new chat has no history
      ui.view = 'chat';
      attempt = 0;
      renderLog(true);
      connect();
      input.focus();
    } catch (e) {
      if (e.code === 'FORBIDDEN' || e.code === 'NOT_FOUND') {
        refuse(e.message);
      } else {
        formError.textContent = e.code === 'NETWORK' ? TEXT.noNetwork : sentence(e.message);
        formError.hidden = false;
      }
    } finally {
      startButton.disabled = false;
      startButton.textContent = TEXT.start;
    }
  }

  // deliver stores a visitor message: optimistic first, then the server's.
  const deliver = async (text, file) => {
    if (!session) return;
    const token = session.token;
    const temp = {
      id: 'pending-' + (++tempSeq), direction: 'INBOUND', body: text,
      createdAt: new Date().toISOString(), pending: true, pendingFile: file ? file.name : null,
    };
    upsert([temp]);
    renderLog(true);
    setNotice('');
    try {
      let ids;
      if (file) {
        const up = await upload(file, token);
        ids = [up.uploadAttachment.id];
      }
      const d = await call(SEND, { body: text || null, attachmentIDs: ids || null }, token);
      messages.delete(temp.id);
      upsert([d.visitorSendMessage]);
      renderLog(true);
      touch();
    } catch (e) {
      messages.delete(temp.id);
      renderLog(false);
      if (text && !input.value) input.value = text;
      if (e.code === 'NETWORK') setNotice(TEXT.notSent);
      else if (e.code === 'FORBIDDEN') {
        // Ended (a refetch shows it) or refused (blocked).
        await refresh();
        if (ui.view === 'chat') refuse(e.message);
      } else if (e.code === 'UNAUTHENTICATED') forget();
      else setNotice(e.message);
    }
  };

  const sendText = () => {
    const text = input.value.trim();
    if (!text || ui.view !== 'chat') return;
    input.value = '';
    autosize();
    deliver(text, null);
  };

  const autosize = () => {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 120) + 'px';
  };
  input.addEventListener('input', autosize);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendText();
    }
  });
  attachButton.addEventListener('click', () => fileInput.click());
  fileInput.addEventListener('change', () => {
    const file = fileInput.files && fileInput.files[0];
    fileInput.value = '';
    if (!file || ui.view !== 'chat') return;
    if (file.size > MAX_FILE) {
      setNotice(TEXT.tooBig);
      return;
    }
    const text = input.value.trim();
    input.value = '';
    autosize();
    deliver(text, file);
  });
  root.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && ui.open) {
      setOpen(false);
      launcher.focus();
    }
  });

  // Another tab started, ended or wrote in the chat: follow it.
  window.addEventListener('storage', (e) => {
    if (e.key !== storeKey) return;
    const s = loadSession();
    if (!s) {
      if (session) newChat();
    } else if (!session || s.token !== session.token) {
      disconnect();
      attempt = 0;
      resume(s);
    } else {
      refresh();
    }
  });

  const mount = () => {
    document.body.append(host);
    if (session) resume(session);
    else render();
  };
  if (document.body) mount();
  else document.addEventListener('DOMContentLoaded', mount);
})();
