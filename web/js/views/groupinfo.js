// Group info (members and roles, add and remove, rename, invite link and QR code, leave) and joining a group by invite.

import { h, clear, avatar, changeGate } from '../dom.js';
import { icon } from '../icons.js';
import { Plaza } from '../api.js';
import { topbar, group, row, tile, emptyState, errorBox, loading, button, busy, field, formError, confirmDialog, toast } from '../ui.js';
import { state } from '../state.js';
import { navigate } from '../router.js';
import {
  chat, convTitle, nameOf, meId, myRole, isAdmin, renameGroup, addMembers, removeMember, setRole, joinInvite,
  fetchConversation, loadConversations, blobUrl,
} from '../chat.js';
import { convAvatar, contactPicker } from './chats.js';

const ROLE_LABEL = { owner: 'Owner', admin: 'Admin' };
const ROLE_ORDER = { owner: 0, admin: 1, member: 2 };

function checkTitle(v) {
  const t = v.trim();
  if (!t) return 'Name the group.';
  if (Array.from(t).length > 64) return 'At most 64 characters.';
  if (/[\u0000-\u001f\u007f-\u009f]/.test(v)) return 'Use a single line without special characters.';
  return '';
}

export function groupInfo({ id }) {
  const cid = String(id);
  const body = h('div', { class: 'scroll' });
  const el = h('section', { class: 'screen' }, topbar({ title: 'Group info', back: `/chats/${encodeURIComponent(cid)}` }), body);
  const gate = changeGate();
  let mode = null; // null | 'rename' | 'add'
  let invite = null; // {code, url, expires_at}
  let inviteError = null;
  let qrUrl = null;
  let fetchState = 'idle'; // 'loading' | 'done': GET of a group that is not in the list
  let fetchError = null;
  let picker = null;

  async function act(btn, fn, done) {
    await busy(btn, async () => {
      try {
        await fn();
        if (done) done();
      } catch (e) {
        toast(e.message);
      }
    });
  }

  function memberRow(conv, m, admin) {
    const me = String(m.user.id) === String(meId());
    const role = ROLE_LABEL[m.role];
    const mineRole = myRole(conv);
    const actions = [];
    if (!me && mineRole === 'owner') {
      const toAdmin = m.role !== 'admin';
      actions.push({ text: toAdmin ? 'Make admin' : 'Remove admin', fn: () => setRole(cid, m.user.id, toAdmin ? 'admin' : 'member'), done: toAdmin ? 'is now an admin' : 'is no longer an admin' });
    }
    // An admin cannot remove the owner or another admin; the owner anyone.
    if (!me && admin && m.role !== 'owner' && (mineRole === 'owner' || m.role === 'member')) {
      actions.push({ text: 'Remove', danger: true, fn: () => removeMember(cid, m.user.id), confirm: true, done: 'was removed' });
    }
    const trailing = h('span', { class: 'row-buttons' },
      role ? h('span', { class: `pill${m.role === 'owner' ? ' pill-accent' : ''}` }, role) : null,
      actions.map((a) => {
        const b = button(a.text, { small: true, variant: a.danger ? 'danger-ghost' : 'ghost', label: `${a.text}: ${nameOf(m.user)}` });
        b.addEventListener('click', async () => {
          if (a.confirm && !(await confirmDialog({ title: `Remove ${nameOf(m.user)}?`, message: 'They will no longer see new messages in this group.', confirm: 'Remove', danger: true }))) return;
          act(b, a.fn, () => toast(`${nameOf(m.user)} ${a.done}`));
        });
        return b;
      }));
    // The person is a link; the buttons beside it are not inside it.
    const href = me ? '/me' : `/contacts/${encodeURIComponent(m.user.id)}`;
    return h('div', { class: 'row member-row', dataset: { user: m.user.id } },
      h('a', { class: 'row-lead', href, tabindex: '-1', 'aria-hidden': 'true' }, avatar(m.user)),
      h('span', { class: 'row-main' },
        h('a', { class: 'row-title link-quiet', href }, me ? `${nameOf(m.user)} (you)` : nameOf(m.user)),
        h('span', { class: 'row-sub' }, `@${m.user.username}`)),
      trailing);
  }

  function renameCard(conv) {
    const f = field({ label: 'Group name', name: 'title', value: conv.title || '', rule: checkTitle, maxChars: 64 });
    const err = formError();
    const save = button('Save', { type: 'submit', small: true });
    const cancel = button('Cancel', { variant: 'ghost', small: true });
    cancel.addEventListener('click', () => { mode = null; update(true); });
    const form = h('form', { class: 'card form', novalidate: true }, err.el, f.el, h('div', { class: 'button-row' }, cancel, save));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      f.touch();
      if (!f.check()) { f.input.focus(); return; }
      if (f.input.value.trim() === conv.title) { mode = null; update(true); return; }
      busy(save, async () => {
        try {
          await renameGroup(cid, f.input.value.trim());
          toast('Group renamed');
          mode = null;
          update(true);
        } catch (e) {
          err.set(e.message);
        }
      });
    });
    queueMicrotask(() => f.input.focus());
    return form;
  }

  function addCard(conv) {
    const exclude = new Set(conv.members.map((m) => String(m.user.id)));
    const add = button('Add', { small: true });
    add.disabled = true;
    const cancel = button('Cancel', { variant: 'ghost', small: true });
    picker = contactPicker({ exclude, onChange: (picked) => { add.disabled = picked.size === 0; } });
    cancel.addEventListener('click', () => { mode = null; picker = null; update(true); });
    add.addEventListener('click', () => busy(add, async () => {
      try {
        const ids = [...picker.picked.keys()];
        await addMembers(cid, ids);
        toast(ids.length === 1 ? 'Member added' : `${ids.length} members added`);
        mode = null;
        picker = null;
        update(true);
      } catch (e) {
        toast(e.message);
      }
    }));
    return h('div', { class: 'add-members' },
      h('div', { class: 'add-members-head' }, h('h2', { class: 'group-title' }, 'Add members'), h('div', { class: 'button-row' }, cancel, add)),
      picker.el);
  }

  async function makeInvite(btn) {
    await busy(btn, async () => {
      try {
        invite = (await Plaza.createInvite(cid)).invite;
        inviteError = null;
        qrUrl = null;
        blobUrl(`/v1/invites/${encodeURIComponent(invite.code)}/qr.svg`).then((u) => { qrUrl = u; update(true); }, () => {});
      } catch (e) {
        inviteError = e;
      }
      update(true);
    });
  }

  function inviteCard() {
    const abs = new URL(invite.url || `/join/${invite.code}`, location.origin).href;
    const copyBtn = button('Copy link', { small: true });
    copyBtn.addEventListener('click', async () => {
      try { await navigator.clipboard.writeText(abs); toast('Link copied'); } catch { toast('Copying is not allowed here.'); }
    });
    const expires = invite.expires_at ? new Date(invite.expires_at).toLocaleDateString(undefined, { month: 'long', day: 'numeric' }) : null;
    return h('div', { class: 'card invite' },
      h('div', { class: 'invite-qr' }, qrUrl ? h('img', { src: qrUrl, alt: `QR code to join ${convTitle(chat.convs.get(cid))}`, width: 200, height: 200 }) : h('span', { class: 'spinner' })),
      h('p', { class: 'invite-hint' }, 'Anyone with this link or code can join the group.'),
      h('div', { class: 'invite-link' }, h('input', { class: 'input', value: abs, readonly: true, 'aria-label': 'Invite link', onfocus: (ev) => ev.target.select() }), copyBtn),
      expires ? h('p', { class: 'invite-expires' }, `Expires on ${expires}.`) : null);
  }

  function update(force = false) {
    const conv = chat.convs.get(cid);
    if (!force && !gate([chat.rev, state.contacts.data, mode])) { picker?.update(); return; }
    if (force) gate([chat.rev, state.contacts.data, mode]);
    if (!conv) {
      if (!chat.list.loaded) { clear(body, chat.list.error ? errorBox(chat.list.error, () => loadConversations()) : loading('Loading…')); return; }
      if (fetchState === 'idle') {
        fetchState = 'loading';
        fetchConversation(cid).then(() => { fetchState = 'done'; update(true); },
          (e) => { fetchState = 'done'; fetchError = e; update(true); });
      }
      if (fetchState === 'loading') { clear(body, loading('Loading…')); return; }
      if (fetchError && (fetchError.status === 0 || fetchError.status >= 500)) {
        clear(body, errorBox(fetchError, () => { fetchState = 'idle'; fetchError = null; update(true); }));
        return;
      }
      clear(body, emptyState({ iconName: 'people', title: 'Group not found', text: 'This group does not exist, or you are no longer in it.', action: h('a', { class: 'btn btn-ghost', href: '/chats' }, 'Back to chats') }));
      return;
    }
    if (conv.type === 'direct') {
      // A direct chat has no members to manage: its info is the other's profile.
      const other = conv.members.find((m) => String(m.user.id) !== String(meId()));
      queueMicrotask(() => navigate(other ? `/contacts/${encodeURIComponent(other.user.id)}` : `/chats/${encodeURIComponent(cid)}`, { replace: true }));
      return;
    }
    if (mode === 'add' && picker) { picker.update(); return; }
    const admin = isAdmin(conv);
    const members = [...conv.members].sort((a, b) => (ROLE_ORDER[a.role] ?? 3) - (ROLE_ORDER[b.role] ?? 3)
      || nameOf(a.user).localeCompare(nameOf(b.user), undefined, { sensitivity: 'base' }));
    const parts = [];
    parts.push(h('div', { class: 'profile-card group-card' },
      convAvatar(conv, 'xl'),
      h('div', { class: 'profile-text' },
        h('h2', { class: 'profile-name' }, convTitle(conv)),
        h('p', { class: 'profile-handle' }, `${conv.members.length} member${conv.members.length === 1 ? '' : 's'}`))));
    if (mode === 'rename') parts.push(renameCard(conv));
    if (mode === 'add') {
      parts.push(addCard(conv));
      clear(body, parts);
      return;
    }
    const top = [];
    if (admin && mode !== 'rename') {
      top.push(row({ lead: tile('edit', '#07c160'), title: 'Rename group', onclick: () => { mode = 'rename'; update(true); }, chevron: true }));
    }
    if (admin) {
      top.push(row({ lead: tile('user-plus', '#2782d7'), title: 'Add members', onclick: () => { mode = 'add'; update(true); }, chevron: true }));
    }
    if (admin) {
      const btn = row({ lead: tile('link', '#7a5fe0'), title: invite ? 'New invite link' : 'Invite via link', subtitle: 'A link and a QR code', onclick: () => makeInvite(btn), chevron: false });
      top.push(btn);
    }
    if (top.length) parts.push(group(null, top));
    if (inviteError) parts.push(errorBox(inviteError));
    if (invite) parts.push(inviteCard());
    parts.push(group(`Members · ${conv.members.length}`, members.map((m) => memberRow(conv, m, admin))));
    const leave = row({
      lead: tile('leave', '#fa5151'), title: 'Leave group', tone: 'danger', chevron: false,
      onclick: async () => {
        const owner = myRole(conv) === 'owner';
        const ok = await confirmDialog({
          title: `Leave ${convTitle(conv)}?`,
          message: owner && conv.members.length > 1 ? 'You own this group: ownership passes to an admin, or to the longest-standing member.' : 'You will stop getting its messages.',
          confirm: 'Leave', danger: true,
        });
        if (!ok) return;
        try {
          await removeMember(cid, meId());
          toast(`You left ${convTitle(conv)}`);
          navigate('/chats', { replace: true });
        } catch (e) {
          toast(e.message);
        }
      },
    });
    parts.push(group(null, leave));
    clear(body, parts);
  }

  update(true);
  return { el, update: () => update(), title: 'Group info' };
}

// /join/<code>: what the group is, and a button to join it.
export function joinView({ code }) {
  const body = h('div', { class: 'scroll' });
  const el = h('section', { class: 'screen' }, topbar({ title: 'Join group', back: '/chats' }), body);
  let info = null;
  let error = null;

  async function load() {
    error = null;
    render();
    try {
      info = (await Plaza.invite(code)).invite;
    } catch (e) {
      error = e;
    }
    render();
  }

  function render() {
    if (error) {
      const expired = error.code === 'invite_expired' || error.status === 410;
      clear(body, emptyState({
        iconName: 'people',
        title: expired ? 'This invite has expired' : error.status === 404 ? 'Invite not found' : 'Can’t open this invite',
        text: expired ? 'Ask someone in the group for a new link.' : error.status === 404 ? 'The link may have been revoked or mistyped.' : error.message,
        action: error.status === 0 || error.status >= 500 ? button('Try again', { onclick: load }) : h('a', { class: 'btn btn-ghost', href: '/chats' }, 'Back to chats'),
      }));
      return;
    }
    if (!info) { clear(body, loading('Opening invite…')); return; }
    const c = info.conversation || {};
    const already = chat.convs.get(String(c.id)) || (info.is_member ? { id: String(c.id) } : null);
    const join = button(already ? 'Open chat' : 'Join group', { block: true });
    join.addEventListener('click', () => busy(join, async () => {
      try {
        const conv = already || (await joinInvite(code));
        navigate(`/chats/${conv.id}`, { replace: true });
      } catch (e) {
        toast(e.message);
      }
    }));
    clear(body, h('div', { class: 'feature' },
      h('div', { class: 'feature-art', style: { background: '#07c160' } }, icon('people')),
      h('h2', { class: 'feature-title' }, c.title || 'Group chat'),
      h('p', { class: 'feature-note' }, `${c.member_count ?? '?'} member${c.member_count === 1 ? '' : 's'}`),
      already ? h('p', { class: 'feature-text' }, 'You are already in this group.') : null,
      h('div', { class: 'join-actions' }, join)));
  }
  load();
  return { el, update: render, title: 'Join group' };
}
