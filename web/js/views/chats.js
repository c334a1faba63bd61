// The Chats tab: the conversation list, starting a chat or a group, and the desktop placeholder.

import { h, clear, avatar, groupAvatar, listTime, changeGate, reconcile } from '../dom.js';
import { icon } from '../icons.js';
import { topbar, emptyState, errorBox, loading, menuButton, button, busy, field, formError, toast } from '../ui.js';
import { state, loadContacts } from '../state.js';
import { currentPath, navigate } from '../router.js';
import {
  chat, conversations, convTitle, otherMember, senderName, summary, pendingFor, typingIn, timeOf, nameOf,
  loadConversations, loadMoreConversations, openDirect, createGroup, drafts,
} from '../chat.js';

export function connectionChip() {
  const chip = h('span', { class: 'conn', role: 'status', 'aria-live': 'polite' });
  function update() {
    const s = state.events;
    // Only trouble is worth showing; a healthy link is silent.
    const text = s === 'online' ? '' : s === 'connecting' ? 'Connecting…' : 'Waiting for network…';
    chip.textContent = text;
    chip.hidden = !text || !state.me;
  }
  update();
  return { el: chip, update };
}

export function convAvatar(conv, size = 'md') {
  if (conv.type === 'group') return groupAvatar(conv.members.map((m) => m.user), size);
  const other = otherMember(conv);
  return avatar(other ? other.user : { id: conv.id, display_name: convTitle(conv) }, size);
}

function unreadLabel(n) {
  return `${n} unread message${n === 1 ? '' : 's'}`;
}

// What the second line of a row says, and how: typing beats a draft, which
// beats an unsent message, which beats the last one sent.
function preview(conv, current) {
  const typers = typingIn(conv.id);
  if (typers.length) {
    const who = conv.type === 'group' ? `${senderName(conv, typers[0])} is ` : '';
    return { tone: 'accent', text: `${who}typing…` };
  }
  const draft = drafts.get(conv.id);
  if (draft && !current) return { tone: 'draft', prefix: '[Draft] ', text: draft.replace(/\s+/g, ' ') };
  const pending = pendingFor(conv.id);
  const lastPending = pending[pending.length - 1];
  const last = conv.last_message;
  if (lastPending && (!last || timeOf(lastPending.created_at) >= timeOf(last.created_at))) {
    const failed = lastPending.state === 'failed';
    const text = lastPending.text ?? (lastPending.body?.type === 'file' ? '[File]' : '[Image]');
    return { icon: failed ? 'alert' : 'clock', tone: failed ? 'danger' : null, text: String(text).replace(/\s+/g, ' '), label: failed ? 'Not sent: ' : 'Sending: ' };
  }
  if (!last) return { text: conv.type === 'group' ? `${conv.members.length} members` : 'Say hi 👋' };
  const who = conv.type === 'group' && !last.recalled && last.type !== 'system' ? `${senderName(conv, last.sender_id)}: ` : '';
  return { text: `${who}${summary(conv, last)}` };
}

function rowSig(conv, current) {
  const p = preview(conv, current);
  return JSON.stringify([conv.id, convTitle(conv), conv.type, conv.members.map((m) => [m.user?.id, m.user?.display_name]).slice(0, 4),
    conv.unread_count, p, listTime(conv.last_message?.created_at || conv.created_at), current, new Date().toDateString()]);
}

function chatRow(conv, current) {
  const p = preview(conv, current);
  const n = conv.unread_count || 0;
  const pending = pendingFor(conv.id);
  const when = pending.length ? pending[pending.length - 1].created_at : conv.last_message?.created_at || conv.created_at;
  // One sentence for screen readers, in the order people scan a row.
  const label = [convTitle(conv), n ? unreadLabel(n) : null, `${p.label || p.prefix || ''}${p.text}`, listTime(when)].filter(Boolean).join(', ');
  return h('a', { class: 'chat-row', href: `/chats/${encodeURIComponent(conv.id)}`, 'aria-current': current ? 'page' : null, 'aria-label': label, dataset: { conv: conv.id } },
    h('span', { class: 'chat-row-lead' }, convAvatar(conv),
      n ? h('span', { class: 'badge chat-badge', 'aria-hidden': 'true' }, n > 99 ? '99+' : String(n)) : null),
    h('span', { class: 'chat-row-main' },
      h('span', { class: 'chat-row-top' },
        h('span', { class: 'chat-row-title' }, convTitle(conv)),
        h('span', { class: 'chat-row-time' }, listTime(when))),
      h('span', { class: `chat-row-sub${p.tone ? ` tone-${p.tone}` : ''}` },
        p.icon ? icon(p.icon, 'chat-row-icon') : null,
        p.prefix ? h('span', { class: 'chat-row-prefix' }, p.prefix) : null,
        h('span', { class: 'chat-row-preview' }, p.text))));
}

export function chatsList() {
  const chip = connectionChip();
  const menu = menuButton({
    iconName: 'plus-circle', label: 'New chat or group',
    items: [
      { href: '/chats/new', icon: 'message', text: 'New chat' },
      { href: '/chats/new-group', icon: 'people', text: 'New group' },
      { href: '/contacts/add', icon: 'user-plus', text: 'Add friends' },
    ],
  });
  const listEl = h('div', { class: 'chat-list', role: 'list' });
  const status = h('div');
  const more = h('div', { class: 'list-sentinel' });
  const body = h('div', { class: 'scroll' }, status, listEl, more);
  const el = h('section', { class: 'screen' },
    topbar({ title: 'Chats', actions: [chip.el, menu.el] }),
    body);

  const rows = new Map(); // conv id -> {sig, el}
  const gate = changeGate();
  let observer = null;
  if ('IntersectionObserver' in window) {
    observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) loadMoreConversations();
    }, { root: body, rootMargin: '200px' });
    observer.observe(more);
  }

  function renderStatus(convs) {
    const l = chat.list;
    const hasContacts = !!(state.contacts.data && state.contacts.data.length > 0);
    if (convs.length) {
      clear(status, l.error && !l.loading ? errorBox(l.error, () => loadConversations()) : null);
      return;
    }
    if (!l.loaded) {
      clear(status, l.error && !l.loading ? errorBox(l.error, () => loadConversations()) : loading('Loading chats…'));
      return;
    }
    clear(status, emptyState({
      iconName: 'chats',
      title: 'No chats yet',
      text: hasContacts
        ? 'Start a conversation with one of your contacts, or make a group.'
        : 'Add contacts to start chatting. Your conversations will appear here.',
      action: hasContacts
        ? h('a', { class: 'btn btn-primary', href: '/chats/new' }, 'Start a chat')
        : h('a', { class: 'btn btn-primary', href: '/contacts/add' }, 'Find people'),
    }));
  }

  function update() {
    chip.update();
    const path = currentPath();
    const hasContacts = !!(state.contacts.data && state.contacts.data.length > 0);
    if (!gate([chat.rev, path, hasContacts, chat.list.loaded])) return;
    const convs = conversations();
    renderStatus(convs);
    const seen = new Set();
    const els = convs.map((conv) => {
      const current = path === `/chats/${conv.id}` || path.startsWith(`/chats/${conv.id}/`);
      const sig = rowSig(conv, current);
      let r = rows.get(conv.id);
      if (!r || r.sig !== sig) {
        r = { sig, el: chatRow(conv, current) };
        rows.set(conv.id, r);
      }
      seen.add(conv.id);
      return r.el;
    });
    for (const id of rows.keys()) if (!seen.has(id)) rows.delete(id);
    reconcile(listEl, els);
    listEl.hidden = els.length === 0;
    more.hidden = !chat.list.nextBefore;
  }

  // The list is current from the moment the tab opens.
  if (!chat.list.loaded && !chat.list.loading) loadConversations();
  if (!state.contacts.data) loadContacts();
  // Times such as "Yesterday" roll over at midnight without any event.
  const clock = setInterval(() => { gate([]); update(); }, 60000);
  update();
  return { el, update, title: 'Chats', destroy() { clearInterval(clock); observer?.disconnect(); menu.close(); } };
}

function contactFilter() {
  const input = h('input', {
    class: 'search-input', type: 'search', placeholder: 'Search contacts', 'aria-label': 'Search contacts', autocomplete: 'off',
  });
  return { el: h('div', { class: 'search-box' }, icon('search', 'search-icon'), input), input };
}

function matches(user, q) {
  return !q || nameOf(user).toLocaleLowerCase().includes(q) || String(user.username).includes(q);
}

// New chat: pick a contact; their direct chat opens (it is created on first use).
export function newChat() {
  const filter = contactFilter();
  const body = h('div');
  const el = h('section', { class: 'screen' },
    topbar({ title: 'New chat', back: '/chats', actions: [h('a', { class: 'bar-link', href: '/chats/new-group' }, 'New group')] }),
    h('div', { class: 'scroll' }, filter.el, body));
  const gate = changeGate();
  let opening = false;
  loadContacts();

  async function open(user, btn) {
    if (opening) return;
    const existing = [...chat.convs.values()].find((c) => c.type === 'direct' && String(otherMember(c)?.user.id) === String(user.id));
    if (existing) { navigate(`/chats/${existing.id}`, { replace: true }); return; }
    opening = true;
    btn.classList.add('is-busy');
    try {
      const conv = await openDirect(user.id);
      navigate(`/chats/${conv.id}`, { replace: true });
    } catch (e) {
      toast(e.message);
    } finally {
      opening = false;
      btn.classList.remove('is-busy');
    }
  }

  function update() {
    const r = state.contacts;
    const q = filter.input.value.trim().toLocaleLowerCase();
    if (!gate([r.data, r.error?.message, q])) return;
    if (!r.data) { clear(body, r.error ? errorBox(r.error, loadContacts) : loading('Loading contacts…')); return; }
    if (!r.data.length) {
      clear(body, emptyState({ iconName: 'contacts', title: 'No contacts yet', text: 'You can chat with people once they are your contacts.',
        action: h('a', { class: 'btn btn-primary', href: '/contacts/add' }, 'Add friends') }));
      return;
    }
    const list = r.data.filter((c) => matches(c.user, q));
    if (!list.length) { clear(body, emptyState({ title: 'No matches', text: `No contact matches “${filter.input.value.trim()}”.` })); return; }
    clear(body, h('div', { class: 'group' }, h('div', { class: 'group-body' }, list.map((c) => {
      const btn = h('button', { type: 'button', class: 'row row-action pick-row' },
        h('span', { class: 'row-lead' }, avatar(c.user)),
        h('span', { class: 'row-main' }, h('span', { class: 'row-title' }, nameOf(c.user)), h('span', { class: 'row-sub' }, `@${c.user.username}`)),
        icon('chevron', 'row-chevron'));
      btn.addEventListener('click', () => open(c.user, btn));
      return btn;
    }))));
  }
  filter.input.addEventListener('input', update);
  update();
  return { el, update, title: 'New chat', focus: filter.input };
}

// Contacts to tick, shared by new groups and adding members. exclude: ids not offered.
export function contactPicker({ exclude = new Set(), onChange }) {
  const filter = contactFilter();
  const chips = h('div', { class: 'picked', 'aria-live': 'polite' });
  const body = h('div');
  const picked = new Map(); // id -> user
  const gate = changeGate();

  function toggle(user, on) {
    if (on) picked.set(String(user.id), user);
    else picked.delete(String(user.id));
    renderChips();
    onChange(picked);
  }

  function renderChips() {
    clear(chips, [...picked.values()].map((u) => {
      const b = h('button', { type: 'button', class: 'chip', 'aria-label': `Remove ${nameOf(u)}` }, avatar(u, 'xs'), h('span', null, nameOf(u)), icon('close'));
      b.addEventListener('click', () => {
        toggle(u, false);
        const box = body.querySelector(`input[data-user="${CSS.escape(String(u.id))}"]`);
        if (box) box.checked = false;
      });
      return b;
    }));
    chips.hidden = picked.size === 0;
  }

  function update() {
    const r = state.contacts;
    const q = filter.input.value.trim().toLocaleLowerCase();
    if (!gate([r.data, r.error?.message, q])) return;
    if (!r.data) { clear(body, r.error ? errorBox(r.error, loadContacts) : loading('Loading contacts…')); return; }
    const offer = r.data.filter((c) => !exclude.has(String(c.user.id)));
    if (!offer.length) {
      clear(body, emptyState({ iconName: 'contacts', title: 'No contacts to add', text: 'Everyone in your contacts is here already, or you have no contacts yet.',
        action: h('a', { class: 'btn btn-primary', href: '/contacts/add' }, 'Add friends') }));
      return;
    }
    const list = offer.filter((c) => matches(c.user, q));
    if (!list.length) { clear(body, emptyState({ title: 'No matches', text: `No contact matches “${filter.input.value.trim()}”.` })); return; }
    clear(body, h('div', { class: 'group' }, h('div', { class: 'group-body' }, list.map((c) => {
      const box = h('input', { type: 'checkbox', class: 'check', dataset: { user: c.user.id }, checked: picked.has(String(c.user.id)) });
      box.addEventListener('change', () => toggle(c.user, box.checked));
      return h('label', { class: 'row row-action pick-row' },
        h('span', { class: 'row-lead' }, avatar(c.user)),
        h('span', { class: 'row-main' }, h('span', { class: 'row-title' }, nameOf(c.user)), h('span', { class: 'row-sub' }, `@${c.user.username}`)),
        box);
    }))));
  }
  filter.input.addEventListener('input', update);
  loadContacts();
  renderChips();
  update();
  return { el: h('div', null, chips, filter.el, body), update, picked, input: filter.input };
}

export function newGroup() {
  const title = field({ label: 'Group name', name: 'title', maxChars: 64, rule: (v) => (!v.trim() ? 'Name the group.' : Array.from(v.trim()).length > 64 ? 'At most 64 characters.' : /[\u0000-\u001f\u007f-\u009f]/.test(v) ? 'Use a single line without special characters.' : '') });
  const err = formError();
  const create = button('Create', { small: true });
  create.disabled = true;
  const picker = contactPicker({ onChange: (picked) => { create.disabled = picked.size === 0; count.textContent = picked.size ? `${picked.size} selected` : 'Choose at least one contact'; } });
  const count = h('p', { class: 'group-title' }, 'Choose at least one contact');
  const form = h('form', { class: 'new-group', novalidate: true },
    h('div', { class: 'card form' }, err.el, title.el),
    count, picker.el);
  const el = h('section', { class: 'screen' },
    topbar({ title: 'New group', back: '/chats', actions: [create] }),
    h('div', { class: 'scroll' }, form));
  create.addEventListener('click', (ev) => { ev.preventDefault(); form.requestSubmit(); });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    title.touch();
    if (!title.check()) { title.input.focus(); return; }
    if (!picker.picked.size) return;
    err.set('');
    busy(create, async () => {
      try {
        const conv = await createGroup(title.input.value.trim(), [...picker.picked.keys()]);
        navigate(`/chats/${conv.id}`, { replace: true });
      } catch (e) {
        err.set(e.message);
      }
    });
  });
  return { el, update: picker.update, title: 'New group', focus: title.input };
}

export function placeholder(text) {
  return () => {
    const el = h('section', { class: 'screen screen-placeholder' },
      h('div', { class: 'placeholder' },
        h('img', { class: 'placeholder-logo', src: '/icons/logo.svg', width: 64, height: 64, alt: '' }),
        h('p', null, text)));
    return { el };
  };
}
