// Client state: the signed-in user and the server lists the screens show, with loading and error per list.

import { Plaza } from './api.js';

const listeners = new Set();
let scheduled = false;

function resource() {
  return { data: null, error: null, loading: false, pending: null };
}

export const state = {
  me: null,
  contacts: resource(),
  requests: resource(),
  blocks: resource(),
  events: 'offline', // 'connecting' | 'online' | 'offline': the /v1/ws link
};

// Renders are batched: several lists landing in one tick repaint once.
export function emit() {
  if (scheduled) return;
  scheduled = true;
  queueMicrotask(() => {
    scheduled = false;
    for (const fn of listeners) fn(state);
  });
}

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function setMe(user) {
  state.me = user;
  emit();
}

export function resetState() {
  state.me = null;
  state.contacts = resource();
  state.requests = resource();
  state.blocks = resource();
  state.events = 'offline';
  emit();
}

// Concurrent loads of one list share a request: focus, poll and an action
// finishing together must not triple the traffic.
function load(name, fetcher, pick) {
  const r = state[name];
  if (r.pending) return r.pending;
  r.loading = true;
  emit();
  const p = fetcher()
    .then((body) => {
      if (state[name] !== r) return; // signed out meanwhile
      r.data = pick(body);
      r.error = null;
    })
    .catch((err) => {
      if (state[name] !== r) return;
      r.error = err;
    })
    .finally(() => {
      r.loading = false;
      r.pending = null;
      emit();
    });
  r.pending = p;
  return p;
}

export function loadContacts() {
  return load('contacts', Plaza.contacts, (b) => sortContacts(b.contacts || []));
}

export function loadBlocks() {
  // {blocks:[{user,since}]}; the people are what the screens list.
  return load('blocks', Plaza.blocks, (b) => (b.blocks || []).map((x) => x.user));
}

function requestKey(reqs) {
  if (!reqs) return '';
  return [...reqs.incoming.map((r) => `i${r.id}`), ...reqs.outgoing.map((r) => `o${r.id}`)].sort().join(',');
}

// When the pending requests change, someone accepted or declined: the
// contact list changes with them, so it is reloaded only then.
export async function loadRequests() {
  const before = requestKey(state.requests.data);
  const hadData = state.requests.data !== null;
  await load('requests', Plaza.requests, (b) => ({ incoming: b.incoming || [], outgoing: b.outgoing || [] }));
  if (hadData && requestKey(state.requests.data) !== before) loadContacts();
}

export function incomingCount() {
  return state.requests.data ? state.requests.data.incoming.length : 0;
}

function sortContacts(list) {
  return list.slice().sort((a, b) =>
    String(a.user.display_name || a.user.username).localeCompare(String(b.user.display_name || b.user.username), undefined, { sensitivity: 'base' }));
}

export function findContact(userId) {
  const list = state.contacts.data;
  return list ? list.find((c) => String(c.user.id) === String(userId)) : undefined;
}

export function findIncoming(userId) {
  const reqs = state.requests.data;
  return reqs ? reqs.incoming.find((r) => String(r.from.id) === String(userId)) : undefined;
}

export function findOutgoing(userId) {
  const reqs = state.requests.data;
  return reqs ? reqs.outgoing.find((r) => String(r.to.id) === String(userId)) : undefined;
}

export function isBlocked(userId) {
  const list = state.blocks.data;
  return list ? list.some((u) => String(u.id) === String(userId)) : false;
}
