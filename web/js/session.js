// Signing in and out, and the live parts of a session: request polling, the event link and messaging.

import { Plaza, setToken, getToken } from './api.js';
import { state, emit, setMe, resetState, loadRequests, loadContacts, loadBlocks } from './state.js';
import { resetWallet } from './wallet.js';
import { createEventLink } from './events.js';
import { navigate } from './router.js';
import { startChat, stopChat, forgetChat, applyEvent, linkReady, linkDown, syncSince, flush } from './chat.js';

const ME_KEY = 'plaza.me';
const POLL_MS = 15000;

let pollTimer = 0;
let live = false;

const link = createEventLink({
  getToken,
  getSince: syncSince,
  onStatus(s) {
    state.events = s;
    if (s !== 'online') linkDown();
    emit();
  },
  onReady(info) {
    linkReady(info);
  },
  onUnauthorized() {
    sessionEnded();
  },
  onEvent(msg) {
    // Anything about contacts (requests, accepts, removals) refreshes both lists.
    if (typeof msg.type === 'string' && /contact|friend|request|block/.test(msg.type)) {
      loadRequests();
      loadContacts();
    }
    applyEvent(msg);
  },
});

function cachedMe() {
  try {
    const raw = localStorage.getItem(ME_KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export function rememberMe(user) {
  setMe(user);
  try {
    localStorage.setItem(ME_KEY, JSON.stringify(user));
  } catch {
    // Only a cache for the offline start; nothing is lost without it.
  }
}

export function hasSession() {
  return !!getToken();
}

function refreshAll() {
  loadRequests();
  loadContacts();
}

function onVisibility() {
  if (document.visibilityState === 'visible') {
    refreshAll();
    link.nudge();
    startPolling();
  } else {
    stopPolling();
  }
}

function onFocus() {
  loadRequests();
}

function onOnline() {
  refreshAll();
  link.nudge();
  flush();
}

function onOffline() {
  link.drop();
}

function startPolling() {
  stopPolling();
  // Only while visible: a hidden tab costs the server nothing.
  if (document.visibilityState !== 'visible') return;
  pollTimer = setInterval(() => loadRequests(), POLL_MS);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = 0;
}

// Starts everything a signed-in shell needs; safe to call more than once.
export function startSession() {
  if (!state.me) setMe(cachedMe());
  if (live) return;
  live = true;
  Plaza.me().then((b) => rememberMe(b.user)).catch(() => {
    // Shown where it matters (Me tab); a 401 already signed us out.
  });
  refreshAll();
  loadBlocks();
  startPolling();
  startChat(link);
  link.start();
  document.addEventListener('visibilitychange', onVisibility);
  window.addEventListener('focus', onFocus);
  window.addEventListener('online', onOnline);
  window.addEventListener('offline', onOffline);
}

function stopSession() {
  live = false;
  stopPolling();
  link.stop();
  stopChat();
  document.removeEventListener('visibilitychange', onVisibility);
  window.removeEventListener('focus', onFocus);
  window.removeEventListener('online', onOnline);
  window.removeEventListener('offline', onOffline);
}

const AFTER_KEY = 'plaza.after-login';

// A path to open once logged in (an invite link), for this tab only.
export function returnAfterLogin(path) {
  try {
    sessionStorage.setItem(AFTER_KEY, path);
  } catch {
    // Without storage people land on Chats and open the link again.
  }
}

function takeReturnPath() {
  try {
    const path = sessionStorage.getItem(AFTER_KEY);
    sessionStorage.removeItem(AFTER_KEY);
    return path && /^\/join\/[^/]+$/.test(path) ? path : null;
  } catch {
    return null;
  }
}

export function signIn({ token, user }) {
  setToken(token);
  rememberMe(user);
  startSession();
  navigate(takeReturnPath() || '/chats', { replace: true });
}

function forget() {
  stopSession();
  setToken(null);
  forgetChat();
  try {
    localStorage.removeItem(ME_KEY);
  } catch {
    // nothing to forget
  }
  resetState();
  resetWallet();
}

// Logs this device out on the server, then forgets the token whatever the
// answer: a person who taps "Log out" must end up logged out.
export async function signOut() {
  try {
    await Plaza.logout();
  } catch {
    // The token is dropped anyway; an unreachable server cannot keep us in.
  }
  forget();
  navigate('/welcome', { replace: true });
}

export function sessionEnded() {
  if (!getToken()) return;
  const username = state.me ? state.me.username : '';
  forget();
  navigate('/login', { replace: true, flash: { message: 'Your session has ended. Log in again to continue.', username } });
}
