// Messaging state: conversations, message pages, the outbox of unsent messages, and the event stream applied idempotently.

import { Plaza, apiBytes } from './api.js';
import { state, emit } from './state.js';

const SYNC_KEY = 'plaza.sync';
const OUTBOX_KEY = 'plaza.outbox';
const HISTORY_PAGE = 50;
// A send with no answer by then is retried with the same client_id; the
// server answers a retry of a stored message with that message.
const SEND_TIMEOUT_MS = 20000;
// The server relays at most one typing frame per user and chat every 2 s.
const TYPING_SEND_MS = 2500;
const TYPING_SHOW_MS = 6000;
const EDIT_WINDOW_MS = 15 * 60 * 1000;
const RECALL_WINDOW_MS = 2 * 60 * 1000;
// Server codes after which the same send may succeed later.
const TRANSIENT = new Set(['rate_limited', 'internal', 'unavailable', 'shutting_down', 'request_timeout', 'network', 'offline']);

export const REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🙏'];

// Everything the chat screens read. rev changes whenever anything does, so a
// screen can tell cheaply whether to repaint.
export const chat = {
  rev: 0,
  me: null,
  convs: new Map(), // id -> conversation
  list: { loaded: false, loading: false, error: null, nextBefore: null, loadingMore: false },
  pages: new Map(), // conversation id -> message page (only chats that were opened)
  outbox: [], // unsent messages, oldest first
  typing: new Map(), // conversation id -> Map(user id -> until ms)
  presence: new Map(), // user id -> {online, last_seen_at}, for contacts whose chat was opened
};

// Unsent text per chat, kept while the app runs, shown as [Draft] in the list.
export const drafts = new Map();

let link = null;
let running = false;

function changed() {
  chat.rev += 1;
  emit();
}

// Money cards (transfers, red packets) keep their own state; they repaint
// the chats through this, and receive the wallet's events through the hook.
export function chatChanged() {
  changed();
}

let walletHook = null;
export function onWalletEvent(fn) {
  walletHook = fn;
}

// ---------- ids and times ----------

// Ids are decimal strings of up to 19 digits without leading zeros: longer
// is larger, and equal lengths compare as text. No BigInt, no rounding.
export function cmpId(a, b) {
  const x = String(a ?? '');
  const y = String(b ?? '');
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}

export function timeOf(when) {
  const ms = Date.parse(when);
  return Number.isNaN(ms) ? 0 : ms;
}

export function meId() {
  return chat.me || (state.me ? String(state.me.id) : null);
}

// ---------- persistence ----------

function readStore(key) {
  try {
    const raw = localStorage.getItem(key);
    const v = raw ? JSON.parse(raw) : null;
    return v && typeof v === 'object' && String(v.user_id) === String(meId()) ? v : null;
  } catch {
    return null;
  }
}

function writeStore(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify({ user_id: meId(), ...value }));
  } catch {
    // Storage full or refused: the outbox lives in memory for this tab only.
  }
}

let appliedSeq = 0;
let seqTimer = 0;

// The seq the next hello resumes from: the last event applied, not merely
// received, so a tab closed mid-way replays what it had not applied. A
// device that has none (a first log-in) asks for the end of the stream, not
// its whole past: the lists it loads once ready are its starting point.
export const STREAM_END = Number.MAX_SAFE_INTEGER;

export function syncSince() {
  return appliedSeq || STREAM_END;
}

function loadSeq() {
  const v = readStore(SYNC_KEY);
  appliedSeq = v && Number.isSafeInteger(v.seq) && v.seq > 0 ? v.seq : 0;
}

function saveSeq(seq) {
  if (!(seq > appliedSeq)) return;
  appliedSeq = seq;
  // A catch-up applies hundreds of events in a burst: write once at its end.
  if (!seqTimer) seqTimer = setTimeout(flushSeq, 300);
}

function flushSeq() {
  clearTimeout(seqTimer);
  seqTimer = 0;
  if (appliedSeq > 0 && meId()) writeStore(SYNC_KEY, { seq: appliedSeq });
}

function loadOutbox() {
  const v = readStore(OUTBOX_KEY);
  const items = v && Array.isArray(v.items) ? v.items : [];
  chat.outbox = items.filter((o) => o && typeof o.client_id === 'string' && typeof o.conversation_id === 'string' && (o.text || o.body))
    .map((o) => ({ ...o, state: o.state === 'failed' ? 'failed' : 'sending' }));
}

function saveOutbox() {
  // Local previews are blob: URLs of this tab; they do not survive a reload.
  writeStore(OUTBOX_KEY, { items: chat.outbox.filter((o) => o.text || o.body).map(({ preview, file, ...o }) => o) });
}

// Drops what this device kept for the signed-out user.
export function forgetChat() {
  try {
    localStorage.removeItem(SYNC_KEY);
    localStorage.removeItem(OUTBOX_KEY);
  } catch {
    // nothing stored
  }
}

// ---------- shapes ----------

// Members come as {user, role, read_up_to, delivered_up_to} or, from older
// servers, as bare users with the group's owner_id beside them.
function normMember(m, conv) {
  if (m && m.user) {
    return { user: m.user, role: m.role || 'member', read_up_to: m.read_up_to ?? null, delivered_up_to: m.delivered_up_to ?? null };
  }
  return { user: m, role: conv.owner_id && String(conv.owner_id) === String(m?.id) ? 'owner' : 'member', read_up_to: null, delivered_up_to: null };
}

function normConv(c, prev) {
  const members = Array.isArray(c.members) ? c.members.filter(Boolean).map((m) => normMember(m, c)) : prev?.members || [];
  const conv = {
    id: String(c.id),
    type: c.type === 'group' ? 'group' : 'direct',
    title: c.title ?? null,
    owner_id: c.owner_id ?? members.find((m) => m.role === 'owner')?.user.id ?? prev?.owner_id ?? null,
    created_at: c.created_at || prev?.created_at || null,
    members,
    member_count: c.member_count ?? members.length,
    last_message: c.last_message !== undefined ? (c.last_message ? normMessage(c.last_message) : null) : prev?.last_message ?? null,
    unread_count: Number.isFinite(c.unread_count) ? c.unread_count : prev?.unread_count ?? 0,
    last_read_id: c.last_read_id ?? c.read_up_to ?? prev?.last_read_id ?? null,
  };
  // A newer message known here than in the answer (it raced the request) stays.
  if (prev?.last_message && conv.last_message && cmpId(prev.last_message.id, conv.last_message.id) > 0) {
    conv.last_message = prev.last_message;
  }
  return conv;
}

function normMessage(m) {
  return {
    ...m,
    id: String(m.id),
    conversation_id: String(m.conversation_id),
    sender_id: m.sender_id == null ? null : String(m.sender_id),
    type: m.type || (m.body && m.body.type) || 'text',
    reactions: m.reactions && typeof m.reactions === 'object' ? m.reactions : {},
    recalled: !!m.recalled,
  };
}

// ---------- conversations ----------

export function conversations() {
  const list = [...chat.convs.values()];
  list.sort((a, b) => activity(b) - activity(a) || cmpId(b.last_message?.id ?? b.id, a.last_message?.id ?? a.id));
  return list;
}

function activity(conv) {
  let t = timeOf(conv.last_message?.created_at || conv.created_at);
  for (const o of chat.outbox) if (o.conversation_id === conv.id) t = Math.max(t, timeOf(o.created_at));
  return t;
}

export function totalUnread() {
  let n = 0;
  for (const c of chat.convs.values()) n += c.unread_count || 0;
  return n;
}

export function member(conv, userId) {
  return conv?.members.find((m) => String(m.user?.id) === String(userId)) || null;
}

export function otherMember(conv) {
  const me = meId();
  return conv?.members.find((m) => String(m.user?.id) !== String(me)) || null;
}

export function nameOf(user) {
  return user ? user.display_name || user.username || 'Someone' : 'Someone';
}

export function convTitle(conv) {
  if (!conv) return '';
  if (conv.type === 'group') return conv.title || 'Group chat';
  const other = otherMember(conv);
  return other ? nameOf(other.user) : 'Chat';
}

export function senderName(conv, userId) {
  if (String(userId) === String(meId())) return 'You';
  const m = member(conv, userId);
  return m ? nameOf(m.user) : 'Someone';
}

// "[Image]", "Ann recalled a message", the text itself: one line for lists and quotes.
export function summary(conv, m) {
  if (!m) return '';
  if (m.recalled) return `${senderName(conv, m.sender_id)} recalled a message`;
  const body = m.body || {};
  if (m.type === 'image') return body.caption ? `[Image] ${body.caption}` : '[Image]';
  if (m.type === 'file') return `[File] ${body.upload?.name || ''}`.trim();
  if (m.type === 'transfer') return '[Transfer]';
  if (m.type === 'red_packet') return `[Red packet] ${body.greeting || ''}`.trim();
  const text = m.text ?? body.text ?? '';
  return String(text).replace(/\s+/g, ' ').trim();
}

let listSeq = 0;
let liveLog = null; // events applied while a list request is out, re-applied on its answer

export async function loadConversations() {
  const l = chat.list;
  const mine = ++listSeq;
  l.loading = true;
  liveLog = [];
  changed();
  try {
    const body = await Plaza.conversations();
    if (mine !== listSeq || !running) return;
    const fresh = new Map();
    for (const c of body.conversations || []) fresh.set(String(c.id), normConv(c, null));
    // When the answer is one page of several, the older ones loaded before stay.
    if (body.next_before != null) for (const [id, c] of chat.convs) if (!fresh.has(id)) fresh.set(id, c);
    chat.convs = fresh;
    l.nextBefore = body.next_before ?? null;
    l.loaded = true;
    l.error = null;
    const log = liveLog;
    liveLog = null;
    for (const ev of log) applyEvent(ev, { replay: true });
    sendDeliveredForUnread();
  } catch (err) {
    if (mine !== listSeq || !running) return;
    l.error = err;
  } finally {
    if (mine === listSeq) {
      l.loading = false;
      liveLog = null;
      changed();
    }
  }
}

// The next page of older conversations, for long lists.
export async function loadMoreConversations() {
  const l = chat.list;
  if (!l.nextBefore || l.loadingMore) return;
  l.loadingMore = true;
  changed();
  try {
    const body = await Plaza.conversations(l.nextBefore);
    for (const c of body.conversations || []) {
      const id = String(c.id);
      chat.convs.set(id, normConv(c, chat.convs.get(id)));
    }
    l.nextBefore = body.next_before ?? null;
  } catch (err) {
    l.error = err;
  } finally {
    l.loadingMore = false;
    changed();
  }
}

let refreshTimer = 0;
// Counts the client cannot work out alone (a read marker set elsewhere that
// stops mid-way) come from the server, at most once a second.
function refreshSoon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = 0;
    if (running) loadConversations();
  }, 1000);
}

// A conversation that is not in the list (a link from elsewhere, or beyond
// the first page): from GET /v1/conversations/{id} when the server has it.
export async function fetchConversation(id) {
  const body = await Plaza.conversation(id);
  const conv = normConv(body.conversation, chat.convs.get(String(id)));
  chat.convs.set(conv.id, conv);
  changed();
  return conv;
}

export function upsertConversation(c) {
  const conv = normConv(c, chat.convs.get(String(c.id)));
  chat.convs.set(conv.id, conv);
  changed();
  return conv;
}

export async function openDirect(userId) {
  const body = await Plaza.openDirect(userId);
  return upsertConversation(body.conversation);
}

export async function createGroup(title, memberIds) {
  const body = await Plaza.createGroup(title, memberIds);
  return upsertConversation(body.conversation);
}

// ---------- message pages ----------

export function page(convId) {
  const id = String(convId);
  let p = chat.pages.get(id);
  if (!p) {
    p = { list: [], byId: new Map(), hasMore: true, loaded: false, loading: false, error: null, early: [], rev: 0 };
    chat.pages.set(id, p);
  }
  return p;
}

function touch(p) {
  p.rev += 1;
}

function indexOf(list, id) {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cmpId(list[mid].id, id) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Puts m into its page in id order (ids follow the server's order). A
// message older than the loaded range, while older pages remain, is left to
// paging: keeping it would leave a gap that "before=oldest" skips over.
function putInPage(p, m) {
  // While the newest page is read, what arrives is kept aside to be put
  // back into the answer, which may predate it.
  if (!p.loaded || p.reloading) {
    p.early.push(m);
    if (!p.loaded) return;
  }
  if (p.byId.has(m.id)) {
    const i = indexOf(p.list, m.id);
    p.list[i] = m;
    p.byId.set(m.id, m);
    touch(p);
    return;
  }
  if (p.hasMore && p.list.length && cmpId(m.id, p.list[0].id) < 0) return;
  p.list.splice(indexOf(p.list, m.id), 0, m);
  p.byId.set(m.id, m);
  touch(p);
}

export async function loadHistory(convId, { older = false } = {}) {
  const p = page(convId);
  if (p.loading) {
    // A newest page asked for while a read is out: read it again after,
    // as the one out may be older than what was asked.
    if (!older) p.again = true;
    return;
  }
  if (older && (!p.hasMore || !p.loaded)) return;
  p.loading = true;
  p.reloading = !older && p.loaded;
  p.error = null;
  touch(p);
  changed();
  try {
    const before = older && p.list.length ? p.list[0].id : null;
    const body = await Plaza.messages(convId, before, HISTORY_PAGE);
    const got = (body.messages || []).map(normMessage);
    if (!older) {
      // A fresh first page replaces what was there: the newest messages, and
      // what arrived live meanwhile.
      p.list = [];
      p.byId.clear();
    }
    for (const m of got) {
      if (!p.byId.has(m.id)) {
        p.list.splice(indexOf(p.list, m.id), 0, m);
        p.byId.set(m.id, m);
      }
    }
    if (!older || got.length < HISTORY_PAGE) p.hasMore = got.length >= HISTORY_PAGE;
    p.loaded = true;
    p.reloading = false;
    const early = p.early;
    p.early = [];
    for (const m of early) putInPage(p, m);
    noteFromOthers(convId, p.list);
  } catch (err) {
    p.error = err;
  } finally {
    p.loading = false;
    p.reloading = false;
    p.early = [];
    touch(p);
    changed();
    if (p.again && running) {
      p.again = false;
      loadHistory(convId);
    }
  }
}

export function pendingFor(convId) {
  return chat.outbox.filter((o) => o.conversation_id === String(convId));
}

// ---------- the event stream ----------

export function applyEvent(ev, { replay = false } = {}) {
  if (!ev || typeof ev.type !== 'string') return;
  if (liveLog && !replay && ev.seq !== undefined) liveLog.push(ev);
  switch (ev.type) {
    case 'message.new':
      if (ev.message) gotMessage(normMessage(ev.message), { live: !replay });
      break;
    case 'message.edited':
    case 'message.recalled':
      if (ev.message) replaceMessage(normMessage(ev.message));
      break;
    case 'message.deleted':
      removeMessage(String(ev.conversation_id), String(ev.message_id));
      break;
    case 'message.reaction':
      reaction(ev);
      break;
    case 'conversation.new':
    case 'conversation.updated':
      if (ev.conversation) upsertConversation(ev.conversation);
      break;
    case 'conversation.removed':
      removeConversation(String(ev.conversation_id));
      break;
    case 'conversation.read':
      readMarker(String(ev.conversation_id), ev.user_id, ev.read_up_to ?? ev.last_read_id, undefined);
      break;
    case 'receipt':
      readMarker(String(ev.conversation_id), ev.user_id, ev.read_up_to, ev.delivered_up_to);
      break;
    case 'typing':
      typing(String(ev.conversation_id), String(ev.user_id));
      break;
    case 'presence':
      if (ev.user_id) {
        const prev = chat.presence.get(String(ev.user_id));
        chat.presence.set(String(ev.user_id), { online: !!ev.online, last_seen_at: ev.online ? prev?.last_seen_at ?? null : new Date().toISOString() });
      }
      break;
    case 'ack':
      if (ev.client_id && ev.message) acked(ev.client_id, normMessage(ev.message));
      break;
    case 'error':
      frameError(ev);
      break;
    case 'reset': {
      // What this device missed is no longer kept by the server (its
      // retention, docs/protocol.md): the lists are read again, as at a
      // first start, and the stream goes on after next_since.
      const next = Number(ev.next_since);
      appliedSeq = 0;
      if (Number.isSafeInteger(next) && next > 0) saveSeq(next);
      loadConversations();
      for (const [cid, p] of chat.pages) if (p.loaded) loadHistory(cid);
      break;
    }
    case 'transfer.updated':
    case 'red_packet.claimed':
      if (walletHook) walletHook(ev, { replay });
      break;
    default:
      // Not a chat event (contacts, wallet) or one this client does not
      // know: nothing to show here, but it counts as handled.
      if (!replay && Number.isSafeInteger(Number(ev.seq))) saveSeq(Number(ev.seq));
      return;
  }
  const seq = Number(ev.seq);
  if (!replay && Number.isSafeInteger(seq)) saveSeq(seq);
  changed();
}

function gotMessage(m, { live }) {
  const me = meId();
  const cid = m.conversation_id;
  if (String(m.sender_id) === String(me) && m.client_id) dropFromOutbox(cid, m.client_id);
  if (chat.pages.has(cid)) putInPage(chat.pages.get(cid), m);
  const conv = chat.convs.get(cid);
  if (conv) {
    const last = conv.last_message;
    if (!last || cmpId(m.id, last.id) > 0) {
      conv.last_message = m;
      const fromOther = String(m.sender_id) !== String(me);
      if (fromOther && (!conv.last_read_id || cmpId(m.id, conv.last_read_id) > 0)) conv.unread_count = (conv.unread_count || 0) + 1;
    } else if (last.id === m.id) {
      conv.last_message = m;
    }
  } else if (chat.list.loaded) {
    // A conversation.new comes first; without it (a list cut at a page) the list is re-read.
    refreshSoon();
  }
  if (m.sender_id) clearTyping(cid, String(m.sender_id));
  if (live && String(m.sender_id) !== String(me)) delivered(cid, m.id);
}

function replaceMessage(m) {
  const p = chat.pages.get(m.conversation_id);
  if (p && p.byId.has(m.id)) putInPage(p, m);
  const conv = chat.convs.get(m.conversation_id);
  if (conv && conv.last_message && conv.last_message.id === m.id) conv.last_message = m;
}

function removeMessage(cid, mid) {
  const p = chat.pages.get(cid);
  if (p && p.byId.has(mid)) {
    p.list.splice(indexOf(p.list, mid), 1);
    p.byId.delete(mid);
    touch(p);
  }
  const conv = chat.convs.get(cid);
  if (conv && conv.last_message && conv.last_message.id === mid) {
    const prev = p && p.loaded ? p.list[p.list.length - 1] : null;
    if (prev || (p && p.loaded && !p.hasMore)) conv.last_message = prev || null;
    else refreshSoon();
  }
}

function reaction(ev) {
  const cid = String(ev.conversation_id);
  const p = chat.pages.get(cid);
  const m = p && p.byId.get(String(ev.message_id));
  if (!m) return;
  const uid = String(ev.user_id);
  const reactions = { ...m.reactions };
  const users = new Set((reactions[ev.emoji] || []).map(String));
  if (ev.added) users.add(uid);
  else users.delete(uid);
  if (users.size) reactions[ev.emoji] = [...users];
  else delete reactions[ev.emoji];
  putInPage(p, { ...m, reactions });
}

function removeConversation(cid) {
  chat.convs.delete(cid);
  chat.pages.delete(cid);
  const before = chat.outbox.length;
  chat.outbox = chat.outbox.filter((o) => o.conversation_id !== cid);
  if (chat.outbox.length !== before) saveOutbox();
}

// A member's read (and delivered) marker moved. Mine moves the unread count.
function readMarker(cid, userId, readUpTo, deliveredUpTo) {
  const conv = chat.convs.get(cid);
  if (!conv) return;
  const me = meId();
  const uid = userId == null ? me : String(userId);
  const m = member(conv, uid);
  if (m) {
    if (readUpTo && cmpId(readUpTo, m.read_up_to) > 0) m.read_up_to = String(readUpTo);
    if (deliveredUpTo && cmpId(deliveredUpTo, m.delivered_up_to) > 0) m.delivered_up_to = String(deliveredUpTo);
  }
  if (String(uid) !== String(me) || !readUpTo) return;
  if (conv.last_read_id && cmpId(readUpTo, conv.last_read_id) <= 0) return;
  conv.last_read_id = String(readUpTo);
  if (!conv.last_message || cmpId(readUpTo, conv.last_message.id) >= 0) conv.unread_count = 0;
  else refreshSoon();
}

// ---------- typing ----------

const typingTimers = new Map();

function typing(cid, uid) {
  if (uid === String(meId())) return;
  let users = chat.typing.get(cid);
  if (!users) chat.typing.set(cid, (users = new Map()));
  users.set(uid, Date.now() + TYPING_SHOW_MS);
  const key = `${cid}:${uid}`;
  clearTimeout(typingTimers.get(key));
  typingTimers.set(key, setTimeout(() => {
    typingTimers.delete(key);
    if (clearTyping(cid, uid)) changed();
  }, TYPING_SHOW_MS));
}

function clearTyping(cid, uid) {
  const users = chat.typing.get(cid);
  if (!users || !users.delete(uid)) return false;
  if (!users.size) chat.typing.delete(cid);
  return true;
}

export function typingIn(cid) {
  const users = chat.typing.get(String(cid));
  return users ? [...users.keys()] : [];
}

const typingSent = new Map();
let typingSupported = true;

// Tells the other members this person is typing: at most once per interval.
export function sendTyping(cid) {
  if (!typingSupported || !link || !link.ready()) return;
  const now = Date.now();
  if (now - (typingSent.get(cid) || 0) < TYPING_SEND_MS) return;
  typingSent.set(cid, now);
  link.send({ type: 'typing', conversation_id: cid });
}

// ---------- presence ----------

// Asks whether these contacts are online; presence frames keep it current.
export async function loadPresence(userIds) {
  if (!userIds.length) return;
  try {
    const b = await Plaza.presence(userIds);
    for (const p of b.presence || []) chat.presence.set(String(p.user_id), { online: !!p.online, last_seen_at: p.last_seen_at ?? null });
    changed();
  } catch {
    // Presence is a nicety: without it the header shows no status.
  }
}

// ---------- receipts ----------

const deliveredState = new Map(); // cid -> {sent, want, busy, timer}

// Says this device received the chat up to mid. A catch-up brings hundreds
// of messages in a burst: one receipt per chat and burst is enough.
function delivered(cid, mid) {
  let d = deliveredState.get(cid);
  if (!d) deliveredState.set(cid, (d = { sent: null, want: null, busy: false, timer: 0 }));
  if (cmpId(mid, d.want) > 0) d.want = mid;
  if (!d.timer) d.timer = setTimeout(() => { d.timer = 0; if (running) pushDelivered(cid, d); }, 200);
}

function pushDelivered(cid, d) {
  if (d.busy || !d.want || cmpId(d.want, d.sent) <= 0) return;
  // A read receipt on its way that covers it says as much: the server
  // moves the delivered marker with the read one. Its end sends what is
  // left (markRead).
  const r = readState.get(cid);
  if (r && r.busy && cmpId(r.id, d.want) >= 0) return;
  const id = d.want;
  // On the socket when it is up: no request per message received.
  if (link && link.ready() && link.send({ type: 'delivered', conversation_id: cid, message_id: id })) {
    d.sent = id;
    return;
  }
  d.busy = true;
  Plaza.markDelivered(cid, id).then(() => { d.sent = id; }, () => {}).finally(() => {
    d.busy = false;
    if (running) pushDelivered(cid, d);
  });
}

function sendDeliveredForUnread() {
  for (const c of chat.convs.values()) {
    if (c.unread_count > 0 && c.last_message && String(c.last_message.sender_id) !== String(meId())) delivered(c.id, c.last_message.id);
  }
}

function noteFromOthers(cid, list) {
  const me = String(meId());
  for (let i = list.length - 1; i >= 0; i--) {
    if (String(list[i].sender_id) !== me) {
      delivered(cid, list[i].id);
      return;
    }
  }
}

// Sent, Delivered or Read, for one of my messages; null when it is not mine.
export function receiptOf(conv, m) {
  if (!conv || String(m.sender_id) !== String(meId())) return null;
  const others = conv.members.filter((x) => String(x.user?.id) !== String(meId()));
  if (others.some((x) => x.read_up_to && cmpId(x.read_up_to, m.id) >= 0)) return 'read';
  if (others.some((x) => (x.delivered_up_to && cmpId(x.delivered_up_to, m.id) >= 0))) return 'delivered';
  return 'sent';
}

const readState = new Map(); // cid -> {busy, again, id (the newest asked for)}

// Marks the chat read up to its newest message: the screen calls it while
// the chat is open and visible.
export function markRead(cid) {
  const conv = chat.convs.get(cid);
  if (!conv) return;
  const p = chat.pages.get(cid);
  const newest = p && p.list.length ? p.list[p.list.length - 1] : conv.last_message;
  if (!newest) return;
  if (conv.unread_count === 0 && conv.last_read_id && cmpId(newest.id, conv.last_read_id) <= 0) return;
  let r = readState.get(cid);
  if (!r) readState.set(cid, (r = { busy: false, again: false }));
  if (r.busy) { r.again = true; return; }
  r.busy = true;
  const id = newest.id;
  r.id = id;
  conv.unread_count = 0;
  if (cmpId(id, conv.last_read_id) > 0) conv.last_read_id = id;
  changed();
  Plaza.markRead(cid, id).then((b) => {
    const c = chat.convs.get(cid);
    if (c && b && Number.isFinite(b.unread_count) && c.last_message && c.last_message.id === id) c.unread_count = b.unread_count;
    // Read is received too: no delivered receipt for what this covered.
    const d = deliveredState.get(cid);
    if (d && cmpId(id, d.sent) > 0) d.sent = id;
  }, () => {
    // The marker stays local until the next open; the server keeps its count.
  }).finally(() => {
    r.busy = false;
    if (r.again && running) { r.again = false; markRead(cid); }
    const d = deliveredState.get(cid);
    if (d && !d.timer && running) pushDelivered(cid, d);
  });
}

// ---------- the outbox ----------

let inflight = null; // { client_id, timer }
let pauseUntil = 0;
let pauseTimer = 0;
let backoff = 0;

function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// Queues a message: shown at once, kept across reloads, sent in order.
export function send(cid, { text, body, replyTo, preview } = {}) {
  const item = {
    client_id: newClientId(),
    conversation_id: String(cid),
    text: text ?? null,
    body: body ?? null,
    reply_to: replyTo ?? null,
    created_at: new Date().toISOString(),
    state: 'sending',
    error: null,
    preview,
  };
  chat.outbox.push(item);
  saveOutbox();
  changed();
  flush();
  return item;
}

export function retry(clientId) {
  const o = chat.outbox.find((x) => x.client_id === clientId);
  if (!o) return;
  if (!o.body && o.file) {
    upload(o);
    return;
  }
  o.state = 'sending';
  o.error = null;
  saveOutbox();
  changed();
  flush();
}

export function discard(clientId) {
  const o = chat.outbox.find((x) => x.client_id === clientId);
  if (!o || (inflight && inflight.client_id === clientId)) return;
  chat.outbox = chat.outbox.filter((x) => x !== o);
  if (o.preview) URL.revokeObjectURL(o.preview);
  saveOutbox();
  changed();
}

function dropFromOutbox(cid, clientId) {
  const i = chat.outbox.findIndex((o) => o.conversation_id === cid && o.client_id === clientId);
  if (i < 0) return;
  const [o] = chat.outbox.splice(i, 1);
  if (o.preview) URL.revokeObjectURL(o.preview);
  saveOutbox();
}

function doneInflight(clientId) {
  if (!inflight || inflight.client_id !== clientId) return false;
  clearTimeout(inflight.timer);
  if (inflight.abort) inflight.abort.abort();
  inflight = null;
  return true;
}

function acked(clientId, m) {
  doneInflight(clientId);
  backoff = 0;
  gotMessage(m, { live: false });
  flush();
}

function frameError(ev) {
  if (!ev.client_id) {
    // Only typing is optional among the frames this client sends: a server
    // without it answers unknown_type, and typing is not sent again.
    if (ev.code === 'unknown_type') typingSupported = false;
    return;
  }
  if (!doneInflight(ev.client_id)) return;
  sendFailed(ev.client_id, ev.code, ev.message, ev.retry_after);
}

function sendFailed(clientId, code, message, retryAfter) {
  const o = chat.outbox.find((x) => x.client_id === clientId);
  if (code === 'unauthorized') return; // the session ends; the outbox is dropped with it
  if (TRANSIENT.has(code) || !code) {
    // Try again after a pause; the message keeps its place and its client_id.
    backoff = Math.min(30000, backoff ? backoff * 2 : 1000);
    pause(retryAfter ? retryAfter * 1000 : backoff);
    return;
  }
  if (o) {
    o.state = 'failed';
    o.error = message || 'Not sent.';
    saveOutbox();
  }
  changed();
  flush();
}

function pause(ms) {
  pauseUntil = Date.now() + ms;
  clearTimeout(pauseTimer);
  pauseTimer = setTimeout(() => { pauseUntil = 0; flush(); }, ms);
}

// Sends the oldest queued message, one at a time so that they reach the
// server, and get their ids, in the order they were written. The socket is
// used when it is ready; otherwise HTTP, which also works while it reconnects.
export function flush() {
  if (!running || inflight || Date.now() < pauseUntil) return;
  const o = chat.outbox.find((x) => x.state === 'sending');
  if (!o) return;
  const fields = { client_id: o.client_id };
  if (o.body) fields.body = o.body;
  else fields.text = o.text;
  if (o.reply_to) fields.reply_to = o.reply_to;

  if (link && link.ready() && link.send({ type: 'send', conversation_id: o.conversation_id, ...fields })) {
    inflight = { client_id: o.client_id, timer: setTimeout(() => { inflight = null; flush(); }, SEND_TIMEOUT_MS) };
    return;
  }
  if (navigator.onLine === false) return; // 'online' or the next ready flushes
  const abort = new AbortController();
  const cid = o.client_id;
  inflight = { client_id: cid, abort, timer: setTimeout(() => abort.abort(), SEND_TIMEOUT_MS) };
  Plaza.sendMessage(o.conversation_id, fields, abort.signal).then((b) => {
    if (running) acked(cid, normMessage(b.message));
  }, (err) => {
    if (!running || !doneInflight(cid)) return;
    if (err.status === 0) {
      // No answer: the message may or may not be stored; the retry with the
      // same client_id settles it.
      backoff = Math.min(30000, backoff ? backoff * 2 : 2000);
      pause(backoff);
      return;
    }
    sendFailed(cid, err.status === 429 ? 'rate_limited' : err.status >= 500 ? 'internal' : err.code, err.message, err.retryAfter);
  }).finally(() => {
    if (running) changed();
  });
}

// ---------- message operations ----------

export function canEdit(m) {
  return isMine(m) && !m.recalled && m.type === 'text' && Date.now() - timeOf(m.created_at) < EDIT_WINDOW_MS;
}

export function canRecall(m) {
  return isMine(m) && !m.recalled && m.type !== 'system' && Date.now() - timeOf(m.created_at) < RECALL_WINDOW_MS;
}

export function isMine(m) {
  return String(m.sender_id) === String(meId());
}

export async function editMessage(m, text) {
  const b = await Plaza.editMessage(m.conversation_id, m.id, text);
  replaceMessage(normMessage(b.message));
  changed();
}

export async function recallMessage(m) {
  const b = await Plaza.recallMessage(m.conversation_id, m.id);
  replaceMessage(normMessage(b.message));
  changed();
}

export async function deleteForMe(m) {
  await Plaza.deleteMessage(m.conversation_id, m.id);
  removeMessage(m.conversation_id, m.id);
  changed();
}

export async function toggleReaction(m, emoji) {
  const mine = (m.reactions[emoji] || []).map(String).includes(String(meId()));
  const b = await Plaza.react(m.conversation_id, m.id, emoji, !mine);
  replaceMessage(normMessage(b.message));
  changed();
}

// ---------- groups ----------

export function myRole(conv) {
  return member(conv, meId())?.role || 'member';
}

export function isAdmin(conv) {
  const r = myRole(conv);
  return r === 'owner' || r === 'admin';
}

export async function renameGroup(cid, title) {
  return upsertConversation((await Plaza.renameGroup(cid, title)).conversation);
}

export async function addMembers(cid, userIds) {
  return upsertConversation((await Plaza.addMembers(cid, userIds)).conversation);
}

export async function setRole(cid, userId, role) {
  return upsertConversation((await Plaza.setRole(cid, userId, role)).conversation);
}

// Removes someone, or with one's own id leaves the group.
export async function removeMember(cid, userId) {
  await Plaza.removeMember(cid, userId);
  if (String(userId) === String(meId())) {
    removeConversation(String(cid));
  } else {
    const conv = chat.convs.get(String(cid));
    if (conv) conv.members = conv.members.filter((m) => String(m.user?.id) !== String(userId));
  }
  changed();
}

export async function joinInvite(code) {
  return upsertConversation((await Plaza.joinInvite(code)).conversation);
}

// ---------- attachments ----------

const blobs = new Map(); // API path -> Promise of a blob: URL

// An attachment as a blob: URL: fetched with the Authorization header (a
// token never goes into a URL), kept for the session.
export function blobUrl(path) {
  let p = blobs.get(path);
  if (!p) {
    p = apiBytes('GET', path).then((res) => res.blob()).then((b) => URL.createObjectURL(b));
    p.catch(() => blobs.delete(path));
    blobs.set(path, p);
  }
  return p;
}

// Shows the picture (or the file's name) at once from the local file,
// uploads it, then queues the message like any other. The file itself stays
// in this tab's memory: a reload before the upload finished drops the
// message (loadOutbox).
export function sendAttachment(cid, file) {
  const image = /^image\/(jpeg|png|gif|webp)$/.test(file.type);
  const item = {
    client_id: newClientId(),
    conversation_id: String(cid),
    text: null,
    body: null,
    reply_to: null,
    created_at: new Date().toISOString(),
    state: 'uploading',
    error: null,
    preview: image ? URL.createObjectURL(file) : null,
    kind: image ? 'image' : 'file',
    upload: { name: file.name, size: file.size },
    file,
  };
  chat.outbox.push(item);
  changed();
  upload(item);
  return item;
}

async function upload(item) {
  item.state = 'uploading';
  item.error = null;
  changed();
  try {
    const b = await Plaza.upload(item.file, item.file.name);
    if (!chat.outbox.includes(item)) return;
    const up = b.upload;
    item.body = { type: item.kind === 'image' && up.has_thumbnail !== false ? 'image' : 'file', upload_id: up.id };
    item.upload = up;
    item.state = 'sending';
    delete item.file;
    saveOutbox();
    flush();
  } catch (err) {
    if (!chat.outbox.includes(item)) return;
    item.state = 'failed';
    item.error = err.message;
  }
  changed();
}

// ---------- lifecycle ----------

export function startChat(eventLink) {
  if (running) return;
  running = true;
  link = eventLink;
  chat.me = state.me ? String(state.me.id) : null;
  loadSeq();
  loadOutbox();
  changed();
  loadConversations();
  // What a previous visit left unsent goes now, over HTTP if the socket is slow to come.
  flush();
}

// The socket said ready: (re)load the list, which the catch-up then
// corrects, and send what waited.
export function linkReady(info) {
  if (info && info.user_id) chat.me = String(info.user_id);
  if (appliedSeq === 0) {
    // Resumed from the end of the stream: what happened before this ready
    // comes from the lists, read now (a read that started earlier could
    // predate the end, and miss what came in between).
    loadConversations();
    for (const [cid, p] of chat.pages) if (p.loaded) loadHistory(cid);
  }
  // Otherwise no new list: the catch-up after ready brings every change
  // since, and a crowd reconnecting after a restart costs less so.
  backoff = 0;
  pauseUntil = 0;
  flush();
}

// The socket went away: a send on it got no answer and goes again later.
export function linkDown() {
  if (inflight && !inflight.abort) {
    clearTimeout(inflight.timer);
    inflight = null;
  }
}

export function stopChat() {
  running = false;
  link = null;
  flushSeq();
  clearTimeout(pauseTimer);
  clearTimeout(refreshTimer);
  refreshTimer = 0;
  if (inflight) doneInflight(inflight.client_id);
  for (const t of typingTimers.values()) clearTimeout(t);
  typingTimers.clear();
  for (const p of blobs.values()) p.then((u) => URL.revokeObjectURL(u), () => {});
  blobs.clear();
  chat.convs = new Map();
  chat.pages = new Map();
  chat.outbox = [];
  chat.typing = new Map();
  chat.presence = new Map();
  drafts.clear();
  chat.me = null;
  chat.list = { loaded: false, loading: false, error: null, nextBefore: null, loadingMore: false };
  appliedSeq = 0;
  listSeq++;
  for (const d of deliveredState.values()) clearTimeout(d.timer);
  deliveredState.clear();
  readState.clear();
  typingSent.clear();
  typingSupported = true;
  changed();
}

window.addEventListener('pagehide', flushSeq);
