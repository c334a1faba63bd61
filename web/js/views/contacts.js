// The Contacts tab: contact list, new friend requests, search to add friends, and a person's page.

import { h, clear, avatar, relativeTime, changeGate } from '../dom.js';
import { icon } from '../icons.js';
import { Plaza } from '../api.js';
import {
  topbar, group, row, tile, emptyState, errorBox, loading, button, busy, field, formError,
  confirmDialog, toast, iconLink,
} from '../ui.js';
import {
  state, loadContacts, loadRequests, loadBlocks, incomingCount, findContact, findIncoming, findOutgoing, isBlocked,
} from '../state.js';
import { checkGreeting, LIMITS } from '../validate.js';
import { navigate, currentPath } from '../router.js';
import { chat, otherMember, openDirect } from '../chat.js';

function handle(user) {
  return `@${user.username}`;
}

function nameOf(user) {
  return user.display_name || user.username;
}

function requestBadge() {
  const n = incomingCount();
  return n ? { count: n > 99 ? '99+' : n, label: `${n} new friend request${n === 1 ? '' : 's'}` } : undefined;
}

function sectionLetter(user) {
  const first = Array.from(nameOf(user).trim())[0] || '#';
  const up = first.toLocaleUpperCase();
  return /\p{L}/u.test(up) ? up : '#';
}

export function contactsList() {
  const filter = h('input', {
    class: 'search-input', type: 'search', placeholder: 'Search contacts', 'aria-label': 'Search contacts', autocomplete: 'off',
  });
  const top = h('div');
  const body = h('div');
  filter.addEventListener('input', () => renderList());
  // Opening the tab is when people expect the list to be current.
  loadContacts();

  const el = h('section', { class: 'screen' },
    topbar({ title: 'Contacts', actions: [iconLink('/contacts/add', 'user-plus', 'Add friends')] }),
    h('div', { class: 'scroll' },
      h('div', { class: 'search-box' }, icon('search', 'search-icon'), filter),
      top, body));

  const topGate = changeGate();
  const listGate = changeGate();

  function renderTop() {
    const path = currentPath();
    if (!topGate([path, incomingCount()])) return;
    clear(top, group(null,
      row({ href: '/contacts/new', lead: tile('user-plus', '#fa9d3b'), title: 'New friends', badge: requestBadge(), current: path === '/contacts/new' }),
      row({ href: '/contacts/add', lead: tile('search', '#2782d7'), title: 'Add friends', current: path === '/contacts/add' })));
  }

  function renderList() {
    const r = state.contacts;
    if (!listGate([r.data, r.data ? null : r.error?.message, filter.value, currentPath(), incomingCount()])) return;
    if (!r.data) {
      clear(body, r.error ? errorBox(r.error, () => loadContacts()) : loading('Loading contacts…'));
      return;
    }
    const q = filter.value.trim().toLocaleLowerCase();
    const list = q
      ? r.data.filter((c) => nameOf(c.user).toLocaleLowerCase().includes(q) || c.user.username.includes(q))
      : r.data;
    const waiting = incomingCount();
    if (r.data.length === 0 && waiting > 0) {
      clear(body, emptyState({
        iconName: 'wave', title: 'No contacts yet',
        text: `${waiting === 1 ? 'Someone wants' : `${waiting} people want`} to add you. Accept to start your contact list.`,
        action: h('a', { class: 'btn btn-primary', href: '/contacts/new' }, 'See requests'),
      }));
      return;
    }
    if (r.data.length === 0) {
      clear(body, emptyState({
        iconName: 'contacts', title: 'No contacts yet',
        text: 'Find friends by their username and send a request. Once they accept, they show up here.',
        action: h('a', { class: 'btn btn-primary', href: '/contacts/add' }, 'Add friends'),
      }));
      return;
    }
    if (list.length === 0) {
      clear(body, emptyState({ title: 'No matches', text: `No contact matches “${filter.value.trim()}”.` }));
      return;
    }
    const path = currentPath();
    const sections = new Map();
    for (const c of list) {
      const letter = sectionLetter(c.user);
      if (!sections.has(letter)) sections.set(letter, []);
      sections.get(letter).push(c);
    }
    const groups = [];
    for (const [letter, items] of sections) {
      groups.push(group(letter, items.map((c) => row({
        href: `/contacts/${encodeURIComponent(c.user.id)}`,
        lead: avatar(c.user),
        title: nameOf(c.user),
        subtitle: handle(c.user),
        chevron: false,
        current: path === `/contacts/${c.user.id}`,
      }))));
    }
    clear(body, h('div', { class: 'contact-groups', 'aria-label': 'Contacts' }, groups),
      h('p', { class: 'list-foot' }, `${r.data.length} contact${r.data.length === 1 ? '' : 's'}`));
  }

  function update() {
    renderTop();
    renderList();
  }
  update();
  return { el, update, title: 'Contacts' };
}

function requestRow(req, { incoming }) {
  const user = incoming ? req.from : req.to;
  const href = `/contacts/${encodeURIComponent(user.id)}`;
  let trailing;
  if (incoming) {
    const accept = button('Accept', { small: true, label: `Accept ${nameOf(user)}` });
    const decline = button('Decline', { small: true, variant: 'ghost', label: `Decline ${nameOf(user)}` });
    accept.addEventListener('click', () => busy(accept, () => acceptRequest(req, user)));
    decline.addEventListener('click', () => busy(decline, () => declineRequest(req, user)));
    trailing = h('span', { class: 'row-buttons' }, decline, accept);
  } else {
    trailing = h('span', { class: 'pill' }, 'Waiting');
  }
  // Incoming requests put the buttons under the greeting, so a long name and
  // greeting stay readable on a phone.
  return h('div', { class: `row request${incoming ? ' request-in' : ''}` },
    h('a', { class: 'row-lead', href, 'aria-label': `View ${nameOf(user)}`, tabindex: '-1' }, avatar(user)),
    h('span', { class: 'row-main' },
      h('span', { class: 'request-head' },
        h('a', { class: 'row-title link-quiet', href }, nameOf(user)),
        incoming ? h('span', { class: 'request-time' }, relativeTime(req.created_at)) : null),
      h('span', { class: 'row-sub' }, incoming ? (req.greeting || handle(user)) : `${handle(user)} · sent ${relativeTime(req.created_at)}`),
      incoming ? trailing : null),
    incoming ? null : trailing);
}

async function acceptRequest(req, user) {
  try {
    await Plaza.accept(req.id);
    toast(`${nameOf(user)} is now a contact`);
  } catch (err) {
    toast(err.message);
  }
  await Promise.all([loadRequests(), loadContacts()]);
}

async function declineRequest(req, user) {
  try {
    await Plaza.decline(req.id);
    toast(`Declined ${nameOf(user)}`);
  } catch (err) {
    toast(err.message);
  }
  await loadRequests();
}

export function newFriends() {
  const body = h('div', { class: 'scroll' });
  const el = h('section', { class: 'screen' },
    topbar({ title: 'New friends', back: '/contacts', actions: [iconLink('/contacts/add', 'user-plus', 'Add friends')] }),
    body);
  loadRequests();
  const gate = changeGate();

  function update() {
    const r = state.requests;
    if (!gate([r.data, r.error?.message])) return;
    if (!r.data) {
      clear(body, r.error ? errorBox(r.error, () => loadRequests()) : loading('Loading requests…'));
      return;
    }
    const { incoming, outgoing } = r.data;
    if (incoming.length === 0 && outgoing.length === 0) {
      clear(body, r.error ? errorBox(r.error, () => loadRequests()) : null, emptyState({
        iconName: 'wave', title: 'No friend requests',
        text: 'When someone asks to add you, it shows up here.',
        action: h('a', { class: 'btn btn-primary', href: '/contacts/add' }, 'Add friends'),
      }));
      return;
    }
    clear(body,
      r.error ? errorBox(r.error, () => loadRequests()) : null,
      incoming.length ? group('Requests', incoming.map((q) => requestRow(q, { incoming: true }))) : null,
      outgoing.length ? group('Sent', outgoing.map((q) => requestRow(q, { incoming: false }))) : null);
  }
  update();
  return { el, update, title: 'New friends' };
}

export function addFriends() {
  const input = h('input', {
    class: 'search-input', type: 'search', placeholder: 'Search by username', 'aria-label': 'Search by username',
    autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', enterkeyhint: 'search',
  });
  const results = h('div', { 'aria-live': 'polite' });
  const el = h('section', { class: 'screen' },
    topbar({ title: 'Add friends', back: '/contacts' }),
    h('div', { class: 'scroll' },
      h('div', { class: 'search-box search-box-prominent' }, icon('search', 'search-icon'), input),
      results));

  let timer = 0;
  let seq = 0;
  let last = { q: '', users: null, error: null, busy: false };

  function render() {
    const q = input.value.trim();
    if (!q) {
      clear(results, emptyState({
        iconName: 'search', title: 'Find people on Plaza',
        text: state.me ? `Type the start of a username. Your username is @${state.me.username}.` : 'Type the start of a username.',
      }));
      return;
    }
    if (last.error) { clear(results, errorBox(last.error, () => search(true))); return; }
    if (!last.users || last.busy) { clear(results, loading('Searching…')); return; }
    if (last.users.length === 0) {
      clear(results, emptyState({ title: 'No one found', text: `No username starts with “${q}”.` }));
      return;
    }
    clear(results, group('People', last.users.map((u) => {
      const me = state.me && String(state.me.id) === String(u.id);
      const status = me ? 'You' : findContact(u.id) ? 'Contact' : findOutgoing(u.id) ? 'Sent' : findIncoming(u.id) ? 'Wants to add you' : null;
      return row({
        href: `/contacts/${encodeURIComponent(u.id)}`,
        lead: avatar(u), title: nameOf(u), subtitle: handle(u),
        meta: status ? h('span', { class: 'pill' }, status) : null,
      });
    })));
  }

  async function search(now = false) {
    clearTimeout(timer);
    const q = input.value.trim().toLowerCase();
    if (!q) { last = { q: '', users: null, error: null, busy: false }; render(); return; }
    const run = async () => {
      const mine = ++seq;
      last = { q, users: last.users, error: null, busy: true };
      render();
      try {
        const body = await Plaza.searchUsers(q);
        if (mine !== seq) return; // a newer search superseded this one
        last = { q, users: body.users || [], error: null, busy: false };
      } catch (err) {
        if (mine !== seq) return;
        last = { q, users: null, error: err, busy: false };
      }
      render();
    };
    // Typing fires a search per pause, not per key.
    if (now) run(); else timer = setTimeout(run, 250);
  }

  input.addEventListener('input', () => search());
  input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') search(true); });
  render();
  return { el, update: render, title: 'Add friends', focus: input, destroy() { clearTimeout(timer); seq++; } };
}

export function userPage({ id }) {
  const body = h('div', { class: 'scroll' });
  const el = h('section', { class: 'screen' }, topbar({ title: '', back: '/contacts' }), body);
  let user = findContact(id)?.user || findIncoming(id)?.from || findOutgoing(id)?.to || null;
  let loadError = null;
  let greeting = null; // the send-request form, kept across updates so typing survives
  let sendDone = false;
  // What this page offers depends on the relationship, so it starts from fresh lists.
  loadContacts();
  loadRequests();
  loadBlocks();

  function fetchUser() {
    loadError = null;
    update();
    Plaza.user(id).then((b) => { user = b.user; update(); })
      .catch((err) => { loadError = err; update(); });
  }

  function profileCard(u) {
    return h('div', { class: 'profile-card' },
      avatar(u, 'xl'),
      h('div', { class: 'profile-text' },
        h('h2', { class: 'profile-name' }, nameOf(u)),
        h('p', { class: 'profile-handle' }, handle(u)),
        u.bio ? h('p', { class: 'profile-bio' }, u.bio) : null));
  }

  function greetingForm(u) {
    if (greeting) return greeting.el;
    const myName = state.me ? state.me.display_name || state.me.username : '';
    const f = field({
      label: 'Greeting', name: 'greeting', multiline: true, value: myName ? `Hi, I'm ${myName}` : 'Hi!',
      rule: checkGreeting, maxChars: LIMITS.greetingMax, hint: `${nameOf(u)} sees this with your request.`,
    });
    const err = formError();
    const send = button('Send friend request', { type: 'submit', block: true });
    const form = h('form', { class: 'card form', novalidate: true }, err.el, f.el, send);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      f.touch();
      if (!f.check()) { f.input.focus(); return; }
      err.set('');
      busy(send, async () => {
        try {
          const b = await Plaza.sendRequest(u.id, f.input.value.trim());
          sendDone = true;
          if (b.request && b.request.status === 'accepted') toast(`${nameOf(u)} is now a contact`);
          else toast('Friend request sent');
          await Promise.all([loadRequests(), loadContacts()]);
        } catch (e) {
          err.set(e.message);
          if (e.code === 'already_contacts') loadContacts();
        }
        update();
      });
    });
    greeting = { el: form };
    return form;
  }

  async function confirmThen(opts, action, done) {
    if (!(await confirmDialog(opts))) return;
    try {
      await action();
      done();
    } catch (e) {
      toast(e.message);
    }
  }

  function contactActions(u, contact) {
    const remove = row({
      lead: tile('remove', '#fa5151'), title: 'Remove contact', tone: 'danger', chevron: false,
      onclick: () => confirmThen(
        { title: `Remove ${nameOf(u)}?`, message: `${nameOf(u)} will be removed from your contacts, and you from theirs.`, confirm: 'Remove', danger: true },
        () => Plaza.removeContact(u.id),
        () => { toast(`Removed ${nameOf(u)}`); loadContacts(); navigate('/contacts', { replace: true }); }),
    });
    const message = button('Message', { block: true });
    message.prepend(icon('message', 'btn-icon'));
    message.addEventListener('click', () => busy(message, async () => {
      try {
        const known = [...chat.convs.values()].find((c) => c.type === 'direct' && String(otherMember(c)?.user.id) === String(u.id));
        const conv = known || (await openDirect(u.id));
        navigate(`/chats/${encodeURIComponent(conv.id)}`);
      } catch (e) {
        toast(e.message);
      }
    }));
    return [
      h('div', { class: 'profile-actions' }, message),
      group(null, row({ lead: tile('message', '#07c160'), title: 'Contact since', meta: relativeTime(contact.since) || '—', chevron: false })),
      group(null, remove, blockRow(u)),
    ];
  }

  function blockRow(u) {
    return row({
      lead: tile('block', '#8a8f99'), title: 'Block', tone: 'danger', chevron: false,
      onclick: () => confirmThen(
        { title: `Block ${nameOf(u)}?`, message: 'They will not be able to send you friend requests. If they are a contact, they are removed.', confirm: 'Block', danger: true },
        () => Plaza.block(u.id),
        () => { toast(`Blocked ${nameOf(u)}`); loadBlocks(); loadContacts(); loadRequests(); update(); }),
    });
  }

  const gate = changeGate();

  function update() {
    const u0 = user;
    if (!gate([u0, loadError?.message, state.me?.id, state.me?.display_name, u0 && findContact(u0.id), u0 && findIncoming(u0.id),
      u0 && findOutgoing(u0.id), u0 && isBlocked(u0.id), sendDone])) return;
    if (!user) {
      clear(body, loadError ? errorBox(loadError, fetchUser) : loading('Loading profile…'));
      return;
    }
    const u = user;
    const isMe = state.me && String(state.me.id) === String(u.id);
    const contact = findContact(u.id);
    const incoming = findIncoming(u.id);
    const outgoing = findOutgoing(u.id);
    const blocked = isBlocked(u.id);
    const parts = [profileCard(u)];

    if (isMe) {
      parts.push(h('div', { class: 'card note' }, h('p', null, 'This is you.'),
        h('a', { class: 'btn btn-ghost btn-small', href: '/me/profile' }, 'Edit profile')));
    } else if (blocked) {
      const unblock = button('Unblock', { variant: 'ghost', block: true });
      unblock.addEventListener('click', () => busy(unblock, async () => {
        try { await Plaza.unblock(u.id); toast(`Unblocked ${nameOf(u)}`); await loadBlocks(); } catch (e) { toast(e.message); }
        update();
      }));
      parts.push(h('div', { class: 'card note' }, h('p', null, `You blocked ${nameOf(u)}. They can’t send you requests.`), unblock));
    } else if (contact) {
      parts.push(...contactActions(u, contact));
    } else if (incoming) {
      const accept = button('Accept', { block: true });
      const decline = button('Decline', { variant: 'ghost', block: true });
      accept.addEventListener('click', () => busy(accept, () => acceptRequest(incoming, u)));
      decline.addEventListener('click', () => busy(decline, () => declineRequest(incoming, u)));
      parts.push(h('div', { class: 'card' },
        h('p', { class: 'card-label' }, `${nameOf(u)} wants to add you`),
        incoming.greeting ? h('blockquote', { class: 'greeting' }, incoming.greeting) : null,
        h('div', { class: 'button-row' }, decline, accept)));
      parts.push(group(null, blockRow(u)));
    } else if (outgoing) {
      parts.push(h('div', { class: 'card note' },
        icon('check', 'note-icon'),
        h('p', null, h('strong', null, 'Request sent. '), `Waiting for ${nameOf(u)} to accept.`)));
    } else {
      if (sendDone) greeting = null;
      sendDone = false;
      parts.push(greetingForm(u), group(null, blockRow(u)));
    }
    clear(body, parts);
    const title = el.querySelector('.bar-title');
    title.textContent = isMe ? 'You' : contact ? 'Contact' : 'Profile';
  }
  fetchUser();
  return { el, update, title: 'Profile' };
}
