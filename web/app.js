// The Plaza web client: builds the shell (tab bar or sidebar), routes paths to screens, registers the service worker.

import { h, clear, avatar } from './js/dom.js';
import { icon } from './js/icons.js';
import { onUnauthorized } from './js/api.js';
import { state, subscribe, incomingCount } from './js/state.js';
import { onRoute, startRouter, navigate } from './js/router.js';
import { hasSession, startSession, sessionEnded, returnAfterLogin } from './js/session.js';
import { welcomeView, loginView, registerView } from './js/views/auth.js';
import { chatsList, newChat, newGroup, placeholder } from './js/views/chats.js';
import { conversationView } from './js/views/conversation.js';
import { groupInfo, joinView } from './js/views/groupinfo.js';
import { totalUnread } from './js/chat.js';
import { contactsList, newFriends, addFriends, userPage } from './js/views/contacts.js';
import { discoverList, featurePage } from './js/views/discover.js';
import { meList, profileEdit, devices, blocked } from './js/views/me.js';
import { walletHome, topupView, withdrawView, pinView, historyView, statementView } from './js/views/wallet.js';
import { scanView } from './js/views/scan.js';
import { merchantView } from './js/views/merchant.js';

const TABS = [
  { id: 'chats', label: 'Chats', href: '/chats', list: chatsList, empty: placeholder('Select a chat to start messaging.') },
  { id: 'contacts', label: 'Contacts', href: '/contacts', list: contactsList, empty: placeholder('Select a contact to see their profile.') },
  { id: 'discover', label: 'Discover', href: '/discover', list: discoverList, empty: placeholder('Scan a payment code, or see what is coming next.') },
  { id: 'me', label: 'Me', href: '/me', list: meList, empty: placeholder('Manage your profile, devices and privacy.') },
];

// Patterns are matched in order; the first match wins, so fixed words come before {params}.
const ROUTES = [
  { pattern: '/welcome', screen: welcomeView },
  { pattern: '/login', screen: loginView },
  { pattern: '/register', screen: registerView },
  { pattern: '/chats', tab: 'chats' },
  { pattern: '/chats/new', tab: 'chats', detail: newChat },
  { pattern: '/chats/new-group', tab: 'chats', detail: newGroup },
  { pattern: '/chats/{id}', tab: 'chats', detail: conversationView },
  { pattern: '/chats/{id}/info', tab: 'chats', detail: groupInfo },
  { pattern: '/join/{code}', tab: 'chats', detail: joinView },
  { pattern: '/contacts', tab: 'contacts' },
  { pattern: '/contacts/new', tab: 'contacts', detail: newFriends },
  { pattern: '/contacts/add', tab: 'contacts', detail: addFriends },
  { pattern: '/contacts/{id}', tab: 'contacts', detail: userPage },
  { pattern: '/discover', tab: 'discover' },
  { pattern: '/discover/scan', tab: 'discover', detail: scanView },
  { pattern: '/discover/{feature}', tab: 'discover', detail: featurePage },
  { pattern: '/me', tab: 'me' },
  { pattern: '/me/profile', tab: 'me', detail: profileEdit },
  { pattern: '/me/devices', tab: 'me', detail: devices },
  { pattern: '/me/blocked', tab: 'me', detail: blocked },
  { pattern: '/me/wallet', tab: 'me', detail: walletHome },
  { pattern: '/me/wallet/topup', tab: 'me', detail: topupView },
  { pattern: '/me/wallet/withdraw', tab: 'me', detail: withdrawView },
  { pattern: '/me/wallet/pin', tab: 'me', detail: pinView },
  { pattern: '/me/wallet/history', tab: 'me', detail: historyView },
  { pattern: '/me/wallet/statements', tab: 'me', detail: statementView },
  { pattern: '/me/merchant', tab: 'me', detail: merchantView },
];

function match(path) {
  const segs = path.replace(/\/+$/, '').split('/').filter(Boolean);
  for (const route of ROUTES) {
    const pat = route.pattern.split('/').filter(Boolean);
    if (pat.length !== segs.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < pat.length && ok; i++) {
      if (pat[i].startsWith('{')) {
        try {
          params[pat[i].slice(1, -1)] = decodeURIComponent(segs[i]);
        } catch {
          ok = false;
        }
      } else if (pat[i] !== segs[i]) ok = false;
    }
    if (ok) return { route, params };
  }
  return null;
}

const root = document.getElementById('root');
const offlineBanner = document.getElementById('offline');

let shell = null; // { el, nav, list, detail, items, meSlot }
let listView = null;
let listTab = null;
let detailView = null;
let detailKey = null;
let screenView = null;

function buildShell() {
  const items = {};
  const navList = TABS.map((t) => {
    const badge = h('span', { class: 'badge nav-badge', 'aria-hidden': 'true', hidden: true });
    const sr = h('span', { class: 'sr-only' });
    const a = h('a', { class: 'nav-item', href: t.href, dataset: { tab: t.id } },
      h('span', { class: 'nav-icon' }, icon(t.id), badge),
      h('span', { class: 'nav-label' }, t.label), sr);
    items[t.id] = { a, badge, sr };
    return h('li', null, a);
  });
  const meSlot = h('a', { class: 'nav-me', href: '/me' });
  const nav = h('nav', { class: 'nav', 'aria-label': 'Main' },
    h('a', { class: 'nav-brand', href: '/chats', 'aria-label': 'Plaza' },
      h('img', { src: '/icons/logo.svg', width: 32, height: 32, alt: '' }), h('span', null, 'Plaza')),
    h('ul', { class: 'nav-list' }, navList),
    meSlot);
  const list = h('div', { class: 'pane pane-list' });
  const detail = h('div', { class: 'pane pane-detail' });
  const el = h('div', { class: 'app' }, nav, h('main', { class: 'main' }, list, detail));
  return { el, nav, list, detail, items, meSlot };
}

function updateShell() {
  if (!shell) return;
  const unread = totalUnread();
  const ch = shell.items.chats;
  ch.badge.hidden = unread === 0;
  ch.badge.textContent = unread > 99 ? '99+' : String(unread);
  ch.sr.textContent = unread ? `, ${unread} unread message${unread === 1 ? '' : 's'}` : '';
  showUnread(unread);
  const n = incomingCount();
  const c = shell.items.contacts;
  c.badge.hidden = n === 0;
  c.badge.textContent = n > 99 ? '99+' : String(n);
  c.sr.textContent = n ? `, ${n} new friend request${n === 1 ? '' : 's'}` : '';
  const me = state.me;
  const key = me ? `${me.id}|${me.display_name}|${me.username}` : '';
  if (shell.meSlot.dataset.key !== key) {
    shell.meSlot.dataset.key = key;
    clear(shell.meSlot, me ? [avatar(me, 'sm'), h('span', { class: 'nav-me-text' },
      h('span', { class: 'nav-me-name' }, me.display_name || me.username), h('span', { class: 'nav-me-handle' }, `@${me.username}`))] : null);
    shell.meSlot.setAttribute('aria-label', me ? `Me: ${me.display_name || me.username}` : 'Me');
  }
}

let baseTitle = document.title;
let shownUnread = -1;

// The unread count in the tab's title and on the installed app's icon.
function showUnread(n) {
  const title = n ? `(${n > 99 ? '99+' : n}) ${baseTitle}` : baseTitle;
  if (document.title !== title) document.title = title;
  if (n === shownUnread) return;
  shownUnread = n;
  if ('setAppBadge' in navigator) {
    (n ? navigator.setAppBadge(n) : navigator.clearAppBadge()).catch(() => {
      // Not installed, or the platform has no badges: the title says it.
    });
  }
}

function setTitle(title) {
  baseTitle = title;
  document.title = title;
  showUnread(shell ? totalUnread() : 0);
}

function unmount(view) {
  if (view && view.destroy) view.destroy();
}

// Moves focus into the new screen so keyboard and screen-reader users land
// on it: a form's first field on devices with a keyboard, else the heading.
function focusScreen(view) {
  if (view.focus && matchMedia('(pointer: fine)').matches) {
    view.focus.focus();
    return;
  }
  const heading = view.el.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

function render() {
  const m = match(location.pathname);
  const signedIn = hasSession();
  if (!m) {
    navigate(signedIn ? '/chats' : '/welcome', { replace: true });
    return;
  }
  const { route, params } = m;

  if (route.screen) {
    if (signedIn) { navigate('/chats', { replace: true }); return; }
    unmount(listView); unmount(detailView); unmount(screenView);
    listView = detailView = null; listTab = detailKey = null; shell = null;
    screenView = route.screen();
    clear(root, screenView.el);
    setTitle(screenView.title);
    focusScreen(screenView);
    return;
  }

  if (!signedIn) {
    // An invite opened while logged out is where people land after logging in.
    if (route.detail === joinView) returnAfterLogin(location.pathname);
    navigate('/welcome', { replace: true });
    return;
  }
  if (screenView) { unmount(screenView); screenView = null; }
  if (!shell) {
    shell = buildShell();
    clear(root, shell.el);
  }
  startSession();

  const tab = TABS.find((t) => t.id === route.tab);
  for (const t of TABS) {
    const item = shell.items[t.id];
    if (t.id === tab.id) item.a.setAttribute('aria-current', 'page');
    else item.a.removeAttribute('aria-current');
  }
  shell.el.dataset.tab = tab.id;

  if (listTab !== tab.id) {
    unmount(listView);
    listView = tab.list();
    listTab = tab.id;
    clear(shell.list, listView.el);
    shell.list.scrollTop = 0;
  } else if (listView.update) {
    listView.update(state);
  }

  const key = route.detail ? location.pathname : `empty:${tab.id}`;
  if (detailKey !== key) {
    unmount(detailView);
    detailView = route.detail ? route.detail(params) : tab.empty();
    if (!detailView) { navigate(tab.href, { replace: true }); return; }
    detailKey = key;
    clear(shell.detail, detailView.el);
  }
  shell.el.classList.toggle('has-detail', !!route.detail);
  updateShell();

  const focusTarget = route.detail ? detailView : listView;
  setTitle(`${focusTarget.title || tab.label} · Plaza`);
  if (document.activeElement === document.body || !root.contains(document.activeElement) || route.detail) {
    focusScreen(focusTarget);
  }
}

subscribe(() => {
  updateShell();
  if (listView && listView.update) listView.update(state);
  if (detailView && detailView.update) detailView.update(state);
});

onUnauthorized(() => sessionEnded());
onRoute(render);
startRouter();

function updateOnline() {
  const offline = navigator.onLine === false;
  offlineBanner.hidden = !offline;
  // The banner takes its own room rather than covering the top bar.
  document.body.classList.toggle('is-offline', offline);
}
window.addEventListener('online', updateOnline);
window.addEventListener('offline', updateOnline);
updateOnline();

render();

if ('serviceWorker' in navigator) {
  window.addEventListener('load', () => {
    navigator.serviceWorker.register('/sw.js').catch(() => {
      // Without a service worker the app still works online; nothing to tell the user.
    });
  });
}
