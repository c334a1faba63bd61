// One chat: messages grouped by sender and day, history paging, the composer, replies, reactions and message actions.

import { h, clear, avatar, colorFor, clockTime, dayLabel, dayKey, relativeTime, reconcile } from '../dom.js';
import { icon } from '../icons.js';
import { emptyState, errorBox, loading, confirmDialog, toast } from '../ui.js';
import { state } from '../state.js';
import {
  chat, page, loadHistory, loadConversations, fetchConversation, pendingFor, send, sendAttachment, retry, discard, markRead,
  convTitle, otherMember, senderName, summary, member, typingIn, sendTyping, receiptOf, timeOf, meId, isMine, nameOf,
  canEdit, canRecall, editMessage, recallMessage, deleteForMe, toggleReaction, blobUrl, drafts, REACTIONS, cmpId, loadPresence,
} from '../chat.js';
import { convAvatar } from './chats.js';
import { cardContent, cardSig, isCard, sendMoneySheet, redPacketSheet } from '../cards.js';
import { wallet, loadWallet } from '../wallet.js';

const TEXT_MAX = 4096;
const UPLOAD_MAX = 10 * 1024 * 1024;
// What the server accepts (docs/api.md, Attachments); it checks the bytes too.
const SENDABLE = ['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'application/pdf', 'application/zip', 'text/plain'];
// Bubbles of one sender closer than this in time read as one run.
const RUN_GAP_MS = 5 * 60 * 1000;
const LONG_PRESS_MS = 450;
// Within this distance of the end, the view follows new messages.
const STICK_PX = 80;

const URL_RE = /\bhttps?:\/\/[^\s<>"']+/g;

// Text with its web addresses as links; everything else stays text nodes.
function richText(text) {
  const out = [];
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let url = match[0];
    const trail = url.match(/[.,!?;:)\]]+$/);
    if (trail) url = url.slice(0, -trail[0].length);
    if (match.index > last) out.push(text.slice(last, match.index));
    out.push(h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, url));
    last = match.index + url.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

const EMOJI_ONLY = /^(?:\p{Extended_Pictographic}(?:\uFE0F|\p{Emoji_Modifier})?(?:\u200D\p{Extended_Pictographic}(?:\uFE0F|\p{Emoji_Modifier})?)*|\p{Regional_Indicator}{2}|\s)+$/u;

function isJumbo(text) {
  if (!text || text.length > 40 || !EMOJI_ONLY.test(text)) return false;
  const seg = typeof Intl.Segmenter === 'function' ? [...new Intl.Segmenter().segment(text.trim())].length : Array.from(text.trim()).length;
  return seg <= 3;
}

function formatSize(n) {
  if (!Number.isFinite(n)) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

const STATUS_TEXT = { sending: 'Sending', sent: 'Sent', delivered: 'Delivered', read: 'Read', failed: 'Not sent', uploading: 'Uploading' };

function statusMark(st) {
  const name = st === 'sending' || st === 'uploading' ? 'clock' : st === 'sent' ? 'tick' : st === 'failed' ? 'alert' : 'ticks';
  return h('span', { class: `msg-status status-${st}`, title: STATUS_TEXT[st] }, icon(name), h('span', { class: 'sr-only' }, STATUS_TEXT[st]));
}

// An attachment shown through a blob: URL once fetched with the token.
function authImage(path, { alt = '', width, height, onclick } = {}) {
  const img = h('img', { class: 'msg-img', alt, width, height, decoding: 'async' });
  const box = h('button', { type: 'button', class: 'msg-img-box is-loading', 'aria-label': alt || 'Image', onclick },
    img);
  if (width && height) box.style.aspectRatio = `${width} / ${height}`;
  blobUrl(path).then((u) => {
    img.src = u;
    box.classList.remove('is-loading');
  }, () => {
    box.classList.remove('is-loading');
    box.classList.add('is-broken');
    box.append(h('span', { class: 'msg-img-error' }, icon('image'), h('span', null, 'Image unavailable')));
  });
  return box;
}

function lightbox(path, alt) {
  const img = h('img', { class: 'lightbox-img', alt });
  const dlg = h('dialog', { class: 'lightbox', 'aria-label': alt || 'Image' },
    h('button', { type: 'button', class: 'icon-btn lightbox-close', 'aria-label': 'Close' }, icon('close')), img);
  dlg.addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => dlg.remove());
  document.body.appendChild(dlg);
  dlg.showModal();
  blobUrl(path).then((u) => { img.src = u; }, () => { dlg.close(); toast('The image could not be loaded.'); });
}

async function download(path, name) {
  try {
    const u = await blobUrl(path);
    const a = h('a', { href: u, download: name || 'file' });
    document.body.appendChild(a);
    a.click();
    a.remove();
  } catch (e) {
    toast(e.message || 'The file could not be loaded.');
  }
}

export function conversationView({ id }) {
  const cid = String(id);
  const titleEl = h('h1', { class: 'chat-title' });
  const subEl = h('p', { class: 'chat-sub', 'aria-live': 'polite' });
  const infoLink = h('a', { class: 'icon-btn', 'aria-label': 'Chat info', title: 'Chat info' }, icon('more'));
  const header = h('header', { class: 'bar chat-bar' },
    h('div', { class: 'bar-side bar-start' },
      h('a', { class: 'icon-btn bar-back', href: '/chats', 'aria-label': 'Back', dataset: { back: '1' } }, icon('back')),
      h('span', { class: 'chat-bar-badge', hidden: true })),
    h('div', { class: 'chat-head' }, titleEl, subEl),
    h('div', { class: 'bar-side bar-end' }, infoLink));
  const backBadge = header.querySelector('.chat-bar-badge');

  const top = h('div', { class: 'chat-top' });
  const msgsEl = h('div', { class: 'chat-msgs', role: 'log', 'aria-label': 'Messages', 'aria-live': 'polite' });
  const scroller = h('div', { class: 'chat-scroll' }, top, msgsEl);
  const jump = h('button', { type: 'button', class: 'chat-jump', hidden: true, 'aria-label': 'Go to the newest messages' }, icon('arrow-down'), h('span', { class: 'chat-jump-count' }));
  const menuEl = h('div', { class: 'msg-menu', role: 'menu', 'aria-label': 'Message actions', hidden: true });
  const bodyEl = h('div', { class: 'chat-body' }, scroller, jump, menuEl);

  // composer
  const ctxBar = h('div', { class: 'composer-ctx', hidden: true });
  const input = h('textarea', {
    class: 'composer-input', rows: 1, placeholder: 'Message', 'aria-label': 'Message', enterkeyhint: 'send', autocomplete: 'off',
  });
  const sendBtn = h('button', { type: 'submit', class: 'composer-send', 'aria-label': 'Send', title: 'Send (Enter)', disabled: true }, icon('send'));
  const fileInput = h('input', { type: 'file', accept: SENDABLE.join(','), hidden: true, multiple: true });
  const attachBtn = h('button', { type: 'button', class: 'icon-btn composer-attach', 'aria-label': 'More: photo, file, money', title: 'Photo, file, money' }, icon('plus-circle'));
  const hint = h('p', { class: 'composer-hint', 'aria-live': 'polite', hidden: true });
  const form = h('form', { class: 'composer', novalidate: true },
    ctxBar,
    h('div', { class: 'composer-row' }, attachBtn, fileInput, h('div', { class: 'composer-field' }, input), sendBtn),
    hint);
  const el = h('section', { class: 'screen chat-screen' }, header, bodyEl, form);

  let conv = chat.convs.get(cid) || null;
  let fetchState = 'idle'; // 'loading' | 'done': GET of a chat that is not in the list
  let presenceAsked = false;
  let notFound = null;
  let replyTo = null;
  let editing = null;
  let lastRev = -1;
  let lastPageRev = -1;
  let lastLink = null;
  let firstPaint = true;
  let unseen = 0;
  let lastNewest = null;
  let menuFor = null;
  let pinned = true; // the view shows the newest message and follows new ones
  let unreadFrom; // the read marker when the chat opened: undefined until known, null when all was read
  const items = new Map(); // key -> {sig, el}

  // ---------- header ----------

  function renderHeader() {
    titleEl.textContent = conv ? convTitle(conv) : notFound ? 'Chat' : '';
    if (conv && conv.type === 'group') titleEl.append(h('span', { class: 'chat-count' }, ` (${conv.members.length})`));
    const typers = conv ? typingIn(cid) : [];
    let sub = '';
    // A link that is down matters more than who is typing: what is shown may be stale.
    const conn = state.events === 'online' ? '' : state.events === 'connecting' ? 'Connecting…' : 'Waiting for network…';
    if (conn) sub = conn;
    else if (typers.length === 1) sub = conv.type === 'group' ? `${senderName(conv, typers[0])} is typing…` : 'typing…';
    else if (typers.length > 1) sub = `${typers.length} people are typing…`;
    else if (conv && conv.type === 'direct') {
      const other = otherMember(conv);
      const p = other && chat.presence.get(String(other.user.id));
      if (p && p.online) sub = 'online';
      else if (p && p.last_seen_at) sub = `last seen ${relativeTime(p.last_seen_at)}`;
    }
    subEl.textContent = sub;
    subEl.hidden = !sub;
    subEl.classList.toggle('is-typing', !conn && typers.length > 0);
    subEl.classList.toggle('is-conn', !!conn);
    if (conv) {
      const other = conv.type === 'direct' ? otherMember(conv) : null;
      infoLink.href = other ? `/contacts/${encodeURIComponent(other.user.id)}` : `/chats/${encodeURIComponent(cid)}/info`;
      infoLink.setAttribute('aria-label', other ? `${nameOf(other.user)}’s profile` : 'Group info');
      infoLink.title = infoLink.getAttribute('aria-label');
    }
    infoLink.hidden = !conv;
    // Unread elsewhere, on the phone's back button as in other messengers.
    let others = 0;
    for (const c of chat.convs.values()) if (c.id !== cid) others += c.unread_count || 0;
    backBadge.hidden = others === 0;
    backBadge.textContent = others > 99 ? '99+' : String(others);
  }

  // ---------- message list ----------

  function fullMessage(m) {
    const p = chat.pages.get(cid);
    return (p && p.byId.get(String(m))) || null;
  }

  function quote(m) {
    const target = fullMessage(m.reply_to);
    const who = target ? senderName(conv, target.sender_id) : '';
    const text = target ? summary(conv, target) : 'An earlier message';
    const q = h('button', { type: 'button', class: 'msg-quote', 'aria-label': target ? `Reply to ${who}: ${text}` : 'Reply to an earlier message' },
      who ? h('span', { class: 'msg-quote-name', style: { color: conv.type === 'group' ? colorFor(target.sender_id) : null } }, who) : null,
      h('span', { class: 'msg-quote-text' }, text));
    q.addEventListener('click', (ev) => {
      ev.stopPropagation();
      const node = msgsEl.querySelector(`[data-id="${CSS.escape(String(m.reply_to))}"]`);
      if (node) {
        node.scrollIntoView({ block: 'center', behavior: 'smooth' });
        node.classList.remove('flash');
        void node.offsetWidth;
        node.classList.add('flash');
      }
    });
    return q;
  }

  // meta (time, edited, status) goes at the end of the last line of text,
  // floated so that it takes a line of its own only when the text is full.
  function content(m, pending, meta) {
    const body = m.body || {};
    if (isCard(m) && !pending) return [cardContent(m, conv), h('div', { class: 'msg-text msg-card-meta' }, meta)];
    if (m.type === 'image') {
      const up = body.upload || {};
      const caption = body.caption;
      let pic;
      if (pending && pending.preview) {
        pic = h('span', { class: 'msg-img-box' }, h('img', { class: 'msg-img', src: pending.preview, alt: 'Photo being sent' }),
          pending.state !== 'failed' ? h('span', { class: 'msg-img-progress' }, h('span', { class: 'spinner' })) : null);
      } else if (body.thumbnail_url || body.url) {
        const path = body.thumbnail_url || body.url;
        pic = authImage(path, { alt: caption || 'Photo', width: up.width, height: up.height, onclick: () => lightbox(body.url || path, caption || 'Photo') });
      } else {
        pic = h('span', { class: 'msg-img-box is-broken' }, h('span', { class: 'msg-img-error' }, icon('image'), h('span', null, 'Photo')));
      }
      return [pic, caption ? h('div', { class: 'msg-text msg-caption' }, h('span', { class: 'msg-body' }, richText(caption)), meta) : meta];
    }
    if (m.type === 'file') {
      const up = body.upload || pending?.upload || {};
      const busyNow = pending && pending.state !== 'failed';
      const btn = h('button', { type: 'button', class: 'msg-file', disabled: !!pending },
        h('span', { class: 'msg-file-icon' }, busyNow ? h('span', { class: 'spinner' }) : icon('file')),
        h('span', { class: 'msg-file-text' }, h('span', { class: 'msg-file-name' }, up.name || 'File'), h('span', { class: 'msg-file-size' }, formatSize(up.size))));
      if (body.url && !pending) btn.addEventListener('click', () => download(body.url, up.name));
      return [btn, body.caption ? h('div', { class: 'msg-text msg-caption' }, h('span', { class: 'msg-body' }, richText(body.caption)), meta) : h('div', { class: 'msg-text' }, meta)];
    }
    const text = m.text ?? body.text ?? '';
    return [h('div', { class: `msg-text${isJumbo(text) ? ' jumbo' : ''}` }, h('span', { class: 'msg-body' }, richText(String(text))), meta)];
  }

  function reactionsEl(m) {
    const entries = Object.entries(m.reactions || {}).filter(([, users]) => users && users.length);
    if (!entries.length) return null;
    const me = String(meId());
    return h('div', { class: 'msg-reactions' }, entries.map(([emoji, users]) => {
      const mine = users.map(String).includes(me);
      const names = users.map((u) => senderName(conv, u)).join(', ');
      const chip = h('button', {
        type: 'button', class: `reaction${mine ? ' is-mine' : ''}`, 'aria-pressed': String(mine),
        'aria-label': `${emoji} ${users.length}: ${names}`, title: names,
      }, h('span', { class: 'reaction-emoji' }, emoji), h('span', { class: 'reaction-count' }, String(users.length)));
      chip.addEventListener('click', () => react(m, emoji));
      return chip;
    }));
  }

  // One bubble row. pos: {first, last} in its run, to shape corners and show the name and avatar once.
  function messageRow(m, pos, pending) {
    const mine = pending ? true : isMine(m);
    const group = conv.type === 'group';
    const st = pending ? pending.state : receiptOf(conv, m);
    const meta = h('span', { class: 'msg-meta' },
      !pending && m.edited_at ? h('span', { class: 'msg-edited' }, 'edited') : null,
      h('time', { datetime: m.created_at }, clockTime(timeOf(m.created_at))),
      mine ? statusMark(st) : null);
    const bubble = h('div', { class: `bubble${m.reply_to ? ' has-quote' : ''}`, tabindex: '-1' },
      m.reply_to ? quote(m) : null,
      content(m, pending, meta));
    const name = group && !mine && pos.first
      ? h('div', { class: 'msg-name', style: { color: colorFor(m.sender_id) } }, senderName(conv, m.sender_id)) : null;
    const lead = group && !mine
      ? h('div', { class: 'msg-avatar' }, pos.last ? avatar(member(conv, m.sender_id)?.user || { id: m.sender_id, display_name: '?' }, 'sm') : null)
      : null;
    const tools = h('button', { type: 'button', class: 'msg-tools', 'aria-label': 'Message actions', 'aria-haspopup': 'menu' }, icon('more'));
    tools.addEventListener('click', (ev) => { ev.stopPropagation(); openMenu(m, pending, row); });
    const failed = pending && pending.state === 'failed'
      ? h('button', { type: 'button', class: 'msg-failed', 'aria-label': `Not sent: ${pending.error || ''} Tap to retry`, title: pending.error || 'Not sent' }, '!')
      : null;
    if (failed) failed.addEventListener('click', (ev) => { ev.stopPropagation(); openMenu(m, pending, row); });
    const row = h('div', {
      class: `msg-row ${mine ? 'mine' : 'theirs'}${pos.first ? ' run-first' : ''}${pos.last ? ' run-last' : ''}${group ? ' in-group' : ''}`,
      dataset: pending ? { clientId: pending.client_id, state: pending.state } : { id: m.id, state: st || 'received' },
    },
    lead,
    h('div', { class: 'msg-col' }, name, h('div', { class: 'msg-line' }, failed, bubble, tools), reactionsEl(m)));
    attachPress(bubble, () => openMenu(m, pending, row));
    return row;
  }

  function noticeRow(text, key) {
    return h('div', { class: 'msg-notice', dataset: { key } }, h('span', null, text));
  }

  // The rows to show, in order, each with a key and a signature of what it
  // shows: rows whose signature did not change are kept as they are.
  function buildItems() {
    const p = page(cid);
    const out = [];
    const pending = pendingFor(cid);
    const all = p.list.map((m) => ({ m, pending: null }))
      .concat(pending.map((o) => ({ m: { id: null, client_id: o.client_id, sender_id: meId(), conversation_id: cid, type: o.body?.type || o.kind || 'text', text: o.text, body: o.body, reply_to: o.reply_to, created_at: o.created_at, reactions: {} }, pending: o })));
    let prevDay = null;
    let unreadShown = false;
    const names = conv.type === 'group' ? conv.members.map((x) => [x.user?.id, x.user?.display_name]) : null;
    for (let i = 0; i < all.length; i++) {
      const { m, pending: o } = all[i];
      const t = timeOf(m.created_at);
      const day = dayKey(t);
      if (day !== prevDay) {
        out.push({ key: `day:${day}`, sig: `${day}|${dayLabel(t)}`, make: () => h('div', { class: 'msg-day', role: 'separator' }, h('span', null, dayLabel(t))) });
        prevDay = day;
      }
      // Where reading stopped when the chat was opened, for this visit.
      if (unreadFrom !== null && !unreadShown && !o && m.id && !isMine(m) && cmpId(m.id, unreadFrom) > 0) {
        unreadShown = true;
        out.push({ key: 'unread', sig: 'unread', make: () => h('div', { class: 'msg-unread', role: 'separator' }, h('span', null, 'Unread messages')) });
      }
      if (m.recalled || m.type === 'system') {
        const text = m.recalled ? `${senderName(conv, m.sender_id)} recalled a message` : (m.text || m.body?.text || '');
        out.push({ key: `m:${m.id}`, sig: text, make: () => { const n = noticeRow(text, m.id); n.dataset.id = m.id; return n; } });
        continue;
      }
      const prev = all[i - 1]?.m;
      const next = all[i + 1]?.m;
      const joins = (a, b) => a && b && !a.recalled && !b.recalled && a.type !== 'system' && b.type !== 'system'
        && String(a.sender_id) === String(b.sender_id) && dayKey(timeOf(a.created_at)) === dayKey(timeOf(b.created_at))
        && Math.abs(timeOf(b.created_at) - timeOf(a.created_at)) < RUN_GAP_MS;
      const pos = { first: !joins(prev, m), last: !joins(m, next) };
      const replied = m.reply_to ? fullMessage(m.reply_to) : null;
      const sig = JSON.stringify([m, pos, o && [o.state, o.error, !!o.preview, o.body], o ? null : receiptOf(conv, m), names, cardSig(m),
        replied && [replied.text, replied.recalled, replied.sender_id]]);
      const key = o ? `p:${o.client_id}` : `m:${m.id}`;
      out.push({ key, sig, make: () => messageRow(m, pos, o) });
    }
    return out;
  }

  let topSig = null;
  let wasLoading = false;
  let observer = null; /* the top's IntersectionObserver, made below */

  function renderTop() {
    const p = page(cid);
    // The observer below reports the top only when it comes into view or
    // leaves it: reaching it while a page was loading (the newest one read
    // again on reconnect, say) would be lost, and the reader stuck at the
    // top with more to load. Once a load is over, ask where the top is now.
    if (wasLoading && !p.loading && observer) {
      observer.unobserve(top);
      observer.observe(top);
    }
    wasLoading = p.loading;
    const sig = JSON.stringify([!!p.error, p.loading, p.loaded, p.hasMore, convTitle(conv), conv.members.length,
      conv.members.slice(0, 4).map((x) => x.user?.id)]);
    if (sig === topSig) return;
    topSig = sig;
    if (p.error && p.loaded) clear(top, errorBox(p.error, () => loadHistory(cid, { older: true })));
    else if (p.loading && p.loaded) clear(top, loading('Loading earlier messages…'));
    else if (p.loaded && !p.hasMore) {
      const other = conv.type === 'direct' ? otherMember(conv) : null;
      clear(top, h('div', { class: 'chat-start' },
        convAvatar(conv, 'lg'),
        h('p', { class: 'chat-start-title' }, convTitle(conv)),
        h('p', { class: 'chat-start-text' }, other
          ? `This is the beginning of your chat with ${nameOf(other.user)}.`
          : `You are in this group with ${conv.members.length - 1} other${conv.members.length === 2 ? '' : 's'}.`)));
    } else clear(top);
  }

  function isNearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < STICK_PX;
  }

  // The first row whose bottom is below the top edge: it stays put on screen
  // when rows are added above it (older pages) or below it.
  function anchor() {
    const top0 = scroller.getBoundingClientRect().top;
    for (const child of msgsEl.children) {
      const r = child.getBoundingClientRect();
      if (r.bottom > top0) return { node: child, offset: r.top - top0 };
    }
    return null;
  }

  function renderMessages() {
    const p = page(cid);
    if (!p.loaded) {
      if (p.error) clear(msgsEl, errorBox(p.error, () => loadHistory(cid)));
      else clear(msgsEl, loading('Loading messages…'));
      items.clear();
      clear(top);
      topSig = null;
      firstPaint = true;
      return;
    }
    if (firstPaint && unreadFrom === undefined) {
      unreadFrom = conv.unread_count > 0 ? conv.last_read_id || '0' : null;
    }
    const stick = firstPaint || pinned;
    const anc = stick ? null : anchor();
    const list = buildItems();
    const keep = new Set();
    const els = list.map((it) => {
      let r = items.get(it.key);
      if (!r || r.sig !== it.sig) {
        r = { sig: it.sig, el: it.make() };
        items.set(it.key, r);
      }
      keep.add(it.key);
      return r.el;
    });
    for (const k of items.keys()) if (!keep.has(k)) items.delete(k);
    reconcile(msgsEl, els);
    renderTop();

    // New messages from others while scrolled up: count them on the jump button.
    const newest = p.list[p.list.length - 1];
    if (newest && lastNewest && !stick) {
      for (let i = p.list.length - 1; i >= 0 && cmpId(p.list[i].id, lastNewest) > 0; i--) if (!isMine(p.list[i])) unseen += 1;
    }
    if (newest) lastNewest = newest.id;

    const sep = firstPaint ? items.get('unread')?.el : null;
    if (sep && scroller.scrollHeight - sep.offsetTop > scroller.clientHeight) {
      // More unread than fits: start at the first of them, not at the end.
      scroller.scrollTop = sep.offsetTop - 8;
      pinned = false;
    } else if (stick) {
      scroller.scrollTop = scroller.scrollHeight;
      unseen = 0;
    } else if (anc && anc.node.isConnected) {
      const now = anc.node.getBoundingClientRect().top - scroller.getBoundingClientRect().top;
      scroller.scrollTop += now - anc.offset;
    }
    firstPaint = false;
    updateJump();
    // The top's observer speaks only when the top crosses its margin. A
    // page that leaves the top inside it (a start at an unread mark near
    // the top, a short page) would never ask for the one before: looking
    // again after each paint does, once per page, as loading guards it.
    if (observer && p.loaded && p.hasMore && !p.loading && !p.error) {
      observer.unobserve(top);
      observer.observe(top);
    }
  }

  function updateJump() {
    const away = !isNearBottom();
    jump.hidden = !away;
    const count = jump.querySelector('.chat-jump-count');
    count.textContent = unseen ? String(unseen) : '';
    count.hidden = !unseen;
  }

  // ---------- composer ----------

  function setCtx(kind, m) {
    replyTo = kind === 'reply' ? m : null;
    editing = kind === 'edit' ? m : null;
    if (!kind) {
      ctxBar.hidden = true;
      clear(ctxBar);
      return;
    }
    const close = h('button', { type: 'button', class: 'icon-btn composer-ctx-close', 'aria-label': kind === 'edit' ? 'Cancel editing' : 'Cancel reply' }, icon('close'));
    close.addEventListener('click', () => {
      if (editing) { input.value = drafts.get(cid) || ''; }
      setCtx(null);
      autosize();
      input.focus();
    });
    clear(ctxBar,
      icon(kind === 'edit' ? 'edit' : 'reply', 'composer-ctx-icon'),
      h('div', { class: 'composer-ctx-text' },
        h('span', { class: 'composer-ctx-title' }, kind === 'edit' ? 'Edit message' : `Reply to ${senderName(conv, m.sender_id)}`),
        h('span', { class: 'composer-ctx-body' }, summary(conv, m))),
      close);
    ctxBar.hidden = false;
  }

  function autosize() {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
    const text = input.value;
    const n = Array.from(text).length;
    sendBtn.disabled = !text.trim() || n > TEXT_MAX;
    hint.hidden = n <= TEXT_MAX - 200;
    hint.textContent = n > TEXT_MAX ? `Too long: ${n - TEXT_MAX} characters over the limit of ${TEXT_MAX}.` : `${TEXT_MAX - n} characters left`;
    hint.classList.toggle('over', n > TEXT_MAX);
  }

  async function submit() {
    const text = input.value;
    if (!text.trim() || Array.from(text).length > TEXT_MAX || !conv) return;
    if (editing) {
      const m = editing;
      if (text === m.text) { setCtx(null); input.value = drafts.get(cid) || ''; autosize(); return; }
      sendBtn.disabled = true;
      try {
        await editMessage(m, text);
        setCtx(null);
        input.value = drafts.get(cid) || '';
      } catch (e) {
        toast(e.message);
      }
      autosize();
      return;
    }
    send(cid, { text, replyTo: replyTo ? replyTo.id : null });
    input.value = '';
    drafts.delete(cid);
    setCtx(null);
    autosize();
    firstPaint = true; // one's own message always brings the view to the end
    update(true);
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
    input.focus();
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      submit();
    } else if (ev.key === 'Escape' && (replyTo || editing)) {
      ev.preventDefault();
      if (editing) input.value = drafts.get(cid) || '';
      setCtx(null);
      autosize();
    } else if (ev.key === 'ArrowUp' && !input.value && !editing) {
      // As in desktop messengers: up in an empty box edits one's last message.
      const p = chat.pages.get(cid);
      const mine = p ? [...p.list].reverse().find((m) => isMine(m) && !m.recalled) : null;
      if (mine && canEdit(mine)) { ev.preventDefault(); startEdit(mine); }
    }
  });
  input.addEventListener('input', () => {
    autosize();
    if (!editing) {
      if (input.value) drafts.set(cid, input.value);
      else drafts.delete(cid);
      if (input.value.trim()) sendTyping(cid);
    }
  });
  input.addEventListener('paste', (ev) => {
    const files = [...(ev.clipboardData?.files || [])].filter((f) => f.type.startsWith('image/'));
    if (!files.length) return;
    ev.preventDefault();
    for (const f of files) sendFile(f);
  });
  // The "+" opens a panel of what can be sent: files, and money when this
  // server has a wallet (its /v1/wallet answers).
  const panelId = `attach-${cid}`;
  const panel = h('div', { class: 'attach-panel', id: panelId, hidden: true, role: 'group', 'aria-label': 'Send' });
  form.insertBefore(panel, hint);
  attachBtn.setAttribute('aria-expanded', 'false');
  attachBtn.setAttribute('aria-controls', panelId);
  function panelItem(iconName, text, color, fn) {
    const b = h('button', { type: 'button', class: 'attach-item' }, h('span', { class: 'attach-tile', style: { color } }, icon(iconName)), h('span', null, text));
    b.addEventListener('click', () => { togglePanel(false); fn(); });
    return b;
  }
  function togglePanel(open) {
    if (open && !conv) return;
    panel.hidden = !open;
    attachBtn.setAttribute('aria-expanded', String(open));
    if (!open) return;
    clear(panel, panelItem('image', 'Photo or file', '#2782d7', () => fileInput.click()),
      wallet.balances && conv.type === 'direct' ? panelItem('transfer', 'Send money', '#f0883e', () => sendMoneySheet(conv)) : null,
      wallet.balances ? panelItem('red-packet', 'Red packet', '#e6453a', () => redPacketSheet(conv)) : null);
    if (!wallet.balances && !wallet.pending) loadWallet().then(() => { if (!panel.hidden) togglePanel(true); });
  }
  attachBtn.addEventListener('click', () => togglePanel(panel.hidden));
  if (!wallet.balances) loadWallet();
  fileInput.addEventListener('change', () => {
    for (const f of fileInput.files) sendFile(f);
    fileInput.value = '';
  });

  function sendFile(f) {
    if (f.size > UPLOAD_MAX) { toast(`${f.name} is larger than 10 MB.`); return; }
    if (!SENDABLE.includes(f.type)) { toast('Photos (JPEG, PNG, GIF, WebP), PDF, ZIP and text files can be sent.'); return; }
    sendAttachment(cid, f);
    firstPaint = true;
    update(true);
  }

  function startEdit(m) {
    setCtx('edit', m);
    input.value = m.text || '';
    autosize();
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  // ---------- message menu ----------

  // Long press on touch screens, right click with a mouse. Android also
  // fires contextmenu after a long press: one opening, not two; and the tap
  // that ends a long press does not open the picture under the finger.
  function attachPress(target, open) {
    let timer = 0;
    let start = null;
    let openedAt = 0;
    const fire = () => {
      if (Date.now() - openedAt < 800) return;
      openedAt = Date.now();
      open();
    };
    const cancel = () => { clearTimeout(timer); timer = 0; };
    target.addEventListener('contextmenu', (ev) => {
      if (ev.target.closest('a')) return;
      ev.preventDefault();
      cancel();
      fire();
    });
    target.addEventListener('pointerdown', (ev) => {
      if (ev.pointerType !== 'touch') return;
      start = { x: ev.clientX, y: ev.clientY };
      timer = setTimeout(() => { timer = 0; fire(); }, LONG_PRESS_MS);
    });
    target.addEventListener('pointermove', (ev) => {
      if (start && Math.hypot(ev.clientX - start.x, ev.clientY - start.y) > 8) cancel();
    });
    target.addEventListener('pointerup', cancel);
    target.addEventListener('pointercancel', cancel);
    target.addEventListener('click', (ev) => {
      if (Date.now() - openedAt < 800) {
        ev.preventDefault();
        ev.stopPropagation();
      }
    }, true);
  }

  function menuItem(iconName, text, fn, tone) {
    const b = h('button', { type: 'button', class: `msg-menu-item${tone ? ` tone-${tone}` : ''}`, role: 'menuitem' }, icon(iconName), h('span', null, text));
    b.addEventListener('click', () => { closeMenu(); fn(); });
    return b;
  }

  function openMenu(m, pending, row) {
    if (menuFor === row && !menuEl.hidden) { closeMenu(); return; }
    closeMenu();
    const parts = [];
    if (!pending) {
      const mine = new Set(Object.entries(m.reactions || {}).filter(([, u]) => u.map(String).includes(String(meId()))).map(([e]) => e));
      parts.push(h('div', { class: 'msg-menu-emoji', role: 'group', 'aria-label': 'React' }, REACTIONS.map((e) => {
        const b = h('button', { type: 'button', class: `msg-menu-react${mine.has(e) ? ' is-mine' : ''}`, role: 'menuitem', 'aria-label': `React ${e}`, 'aria-pressed': String(mine.has(e)) }, e);
        b.addEventListener('click', () => { closeMenu(); react(m, e); });
        return b;
      })));
      const actions = [menuItem('reply', 'Reply', () => { setCtx('reply', m); input.focus(); })];
      const text = m.text ?? m.body?.caption;
      if (text) actions.push(menuItem('copy', 'Copy', () => copy(text)));
      if (canEdit(m)) actions.push(menuItem('edit', 'Edit', () => startEdit(m)));
      if (canRecall(m)) actions.push(menuItem('undo', 'Recall', () => recall(m)));
      actions.push(menuItem('trash', 'Delete', () => remove(m), 'danger'));
      parts.push(h('div', { class: 'msg-menu-actions' }, actions));
    } else {
      const actions = [];
      if (pending.state === 'failed') {
        if (pending.error) parts.push(h('p', { class: 'msg-menu-error' }, pending.error));
        actions.push(menuItem('send', 'Retry', () => retry(pending.client_id)));
      }
      if (pending.text) actions.push(menuItem('copy', 'Copy', () => copy(pending.text)));
      if (pending.state === 'failed' || pending.state === 'sending') actions.push(menuItem('trash', 'Delete', () => discard(pending.client_id), 'danger'));
      parts.push(h('div', { class: 'msg-menu-actions' }, actions));
    }
    clear(menuEl, parts);
    menuEl.hidden = false;
    menuFor = row;
    row.classList.add('is-selected');
    // Above the bubble when there is room, else below; inside the chat area.
    const bubble = row.querySelector('.bubble') || row;
    const br = bubble.getBoundingClientRect();
    const area = bodyEl.getBoundingClientRect();
    const mw = menuEl.offsetWidth;
    const mh = menuEl.offsetHeight;
    let y = br.top - area.top - mh - 8;
    if (y < 8) y = Math.min(br.bottom - area.top + 8, area.height - mh - 8);
    let x = (row.classList.contains('mine') ? br.right - area.left - mw : br.left - area.left);
    x = Math.max(8, Math.min(x, area.width - mw - 8));
    menuEl.style.transform = `translate(${Math.round(x)}px, ${Math.round(Math.max(8, y))}px)`;
    const first = menuEl.querySelector('button');
    if (first) first.focus({ preventScroll: true });
    document.addEventListener('pointerdown', outside, true);
  }

  function outside(ev) {
    if (!menuEl.contains(ev.target)) closeMenu();
  }

  function closeMenu() {
    if (menuEl.hidden) return;
    menuEl.hidden = true;
    if (menuFor) menuFor.classList.remove('is-selected');
    menuFor = null;
    document.removeEventListener('pointerdown', outside, true);
  }

  menuEl.addEventListener('keydown', (ev) => {
    const buttons = [...menuEl.querySelectorAll('button')];
    const i = buttons.indexOf(document.activeElement);
    if (ev.key === 'Escape') { ev.preventDefault(); closeMenu(); input.focus(); }
    else if (ev.key === 'ArrowDown' || ev.key === 'ArrowRight') { ev.preventDefault(); buttons[(i + 1) % buttons.length].focus(); }
    else if (ev.key === 'ArrowUp' || ev.key === 'ArrowLeft') { ev.preventDefault(); buttons[(i - 1 + buttons.length) % buttons.length].focus(); }
    else if (ev.key === 'Tab') closeMenu();
  });

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
      toast('Copied');
    } catch {
      toast('Copying is not allowed here.');
    }
  }

  async function react(m, emoji) {
    try { await toggleReaction(m, emoji); } catch (e) { toast(e.message); }
  }

  async function recall(m) {
    try { await recallMessage(m); } catch (e) { toast(e.message); }
  }

  async function remove(m) {
    const ok = await confirmDialog({ title: 'Delete message?', message: 'It is removed from this device and your other devices. Others in the chat still see it.', confirm: 'Delete', danger: true });
    if (!ok) return;
    try { await deleteForMe(m); toast('Message deleted'); } catch (e) { toast(e.message); }
  }

  // ---------- paging, scrolling, reading ----------

  function loadOlder() {
    const p = page(cid);
    if (p.loaded && p.hasMore && !p.loading && !p.error) loadHistory(cid, { older: true });
  }
  if ('IntersectionObserver' in window) {
    observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) loadOlder();
    }, { root: scroller, rootMargin: '400px 0px 0px 0px' });
    observer.observe(top);
  }

  scroller.addEventListener('scroll', () => {
    // Near the top: the next page, whatever the observer saw last.
    if (scroller.scrollTop < 400) loadOlder();
    closeMenu();
    pinned = isNearBottom();
    if (pinned) unseen = 0;
    updateJump();
  }, { passive: true });
  // A picture that loads, a composer that grows: the end stays in view when it was.
  const resize = 'ResizeObserver' in window ? new ResizeObserver(() => {
    if (pinned) scroller.scrollTop = scroller.scrollHeight;
  }) : null;
  resize?.observe(msgsEl);
  resize?.observe(scroller);
  jump.addEventListener('click', () => {
    scroller.scrollTo({ top: scroller.scrollHeight, behavior: 'smooth' });
    unseen = 0;
    updateJump();
  });

  function readIfVisible() {
    if (conv && document.visibilityState === 'visible' && page(cid).loaded) markRead(cid);
  }
  const onVisible = () => readIfVisible();
  document.addEventListener('visibilitychange', onVisible);

  // ---------- update ----------

  function update(force = false) {
    conv = chat.convs.get(cid) || null;
    const p = page(cid);
    if (!force && chat.rev === lastRev && p.rev === lastPageRev && state.events === lastLink) return;
    lastRev = chat.rev;
    lastPageRev = p.rev;
    lastLink = state.events;

    if (!conv) {
      renderHeader();
      if (!chat.list.loaded) {
        clear(msgsEl, chat.list.error ? errorBox(chat.list.error, () => loadConversations()) : loading('Loading chat…'));
        form.hidden = true;
        return;
      }
      if (fetchState === 'idle') {
        // Not in the list (a link, or beyond its first page): ask for it.
        fetchState = 'loading';
        fetchConversation(cid).then(() => { fetchState = 'done'; update(true); },
          (e) => { fetchState = 'done'; notFound = e; update(true); });
      }
      if (fetchState === 'loading') {
        clear(msgsEl, loading('Loading chat…'));
        form.hidden = true;
        return;
      }
      form.hidden = true;
      clear(top);
      topSig = null;
      items.clear();
      if (notFound && (notFound.status === 0 || notFound.status >= 500)) {
        clear(msgsEl, errorBox(notFound, () => { fetchState = 'idle'; notFound = null; update(true); }));
        return;
      }
      clear(msgsEl, emptyState({
        iconName: 'chats', title: 'Chat not found', text: 'This chat does not exist, or you are no longer in it.',
        action: h('a', { class: 'btn btn-ghost', href: '/chats' }, 'Back to chats'),
      }));
      return;
    }
    form.hidden = false;
    if (!presenceAsked && conv.type === 'direct') {
      presenceAsked = true;
      const other = otherMember(conv);
      if (other) loadPresence([String(other.user.id)]);
    }
    renderHeader();
    if (!p.loaded && !p.loading && !p.error) loadHistory(cid);
    renderMessages();
    readIfVisible();
  }

  // A chat opened from a list is loaded; one opened by link may need the list first.
  input.value = drafts.get(cid) || '';
  autosize();
  update(true);

  return {
    el,
    update: () => update(),
    title: conv ? convTitle(conv) : 'Chat',
    focus: input,
    destroy() {
      observer?.disconnect();
      resize?.disconnect();
      closeMenu();
      document.removeEventListener('visibilitychange', onVisible);
    },
  };
}
