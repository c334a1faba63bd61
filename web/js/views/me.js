// The Me tab: profile card, profile editing, devices (sessions), blocked people and log out.

import { h, clear, avatar, relativeTime, changeGate } from '../dom.js';
import { Plaza } from '../api.js';
import { icon } from '../icons.js';
import {
  topbar, group, row, tile, emptyState, errorBox, loading, button, busy, field, formError, confirmDialog, toast,
} from '../ui.js';
import { state, loadBlocks } from '../state.js';
import { checkDisplayName, checkBio, LIMITS } from '../validate.js';
import { rememberMe, signOut } from '../session.js';
import { currentPath } from '../router.js';

function nameOf(user) {
  return user.display_name || user.username;
}

export function meList() {
  const body = h('div', { class: 'scroll' });
  const el = h('section', { class: 'screen' }, topbar({ title: 'Me' }), body);
  const gate = changeGate();

  function logOutRow() {
    return row({
      title: 'Log out', tone: 'danger', chevron: false, lead: tile('logout', '#fa5151'),
      onclick: async () => {
        const ok = await confirmDialog({ title: 'Log out?', message: 'You can log back in any time with your username and password.', confirm: 'Log out', danger: true });
        if (ok) await signOut();
      },
    });
  }

  function update() {
    const me = state.me;
    const path = currentPath();
    const nBlocked = state.blocks.data ? state.blocks.data.length : null;
    if (!gate([me, path, nBlocked])) return;
    const card = me
      ? h('a', { class: 'me-card', href: '/me/profile', 'aria-current': path === '/me/profile' ? 'page' : null },
        avatar(me, 'lg'),
        h('span', { class: 'me-card-text' },
          h('span', { class: 'me-card-name' }, nameOf(me)),
          h('span', { class: 'me-card-handle' }, `Username: ${me.username}`),
          me.bio ? h('span', { class: 'me-card-bio' }, me.bio) : null),
        icon('chevron', 'row-chevron'))
      : loading('Loading your profile…');
    clear(body, card,
      group(null,
        row({ href: '/me/wallet', lead: tile('wallet', '#f0883e'), title: 'Wallet', current: path.startsWith('/me/wallet') }),
        row({ href: '/me/merchant', lead: tile('qr', '#2782d7'), title: 'Merchant', current: path === '/me/merchant' })),
      group(null,
        row({ href: '/me/profile', lead: tile('edit', '#07c160'), title: 'Profile', current: path === '/me/profile' }),
        row({ href: '/me/devices', lead: tile('device', '#2782d7'), title: 'Devices', current: path === '/me/devices' }),
        row({ href: '/me/blocked', lead: tile('block', '#8a8f99'), title: 'Blocked', meta: nBlocked ? String(nBlocked) : null, current: path === '/me/blocked' })),
      group(null, logOutRow()));
  }
  update();
  return { el, update, title: 'Me' };
}

export function profileEdit() {
  const body = h('div', { class: 'scroll' });
  const el = h('section', { class: 'screen' }, topbar({ title: 'Profile', back: '/me' }), body);
  let form = null;

  function build(me) {
    const displayName = field({
      label: 'Name', name: 'display_name', value: me.display_name || '', autocomplete: 'name',
      rule: checkDisplayName, maxChars: LIMITS.displayNameMax,
    });
    const bio = field({
      label: 'Bio', name: 'bio', value: me.bio || '', multiline: true, rule: checkBio, maxChars: LIMITS.bioMax,
      hint: 'A line about you, shown on your profile.',
    });
    const err = formError();
    const save = button('Save', { type: 'submit', block: true });
    const f = h('form', { class: 'card form', novalidate: true },
      h('div', { class: 'profile-preview' }, avatar(me, 'lg'),
        h('div', null, h('p', { class: 'profile-name' }, nameOf(me)), h('p', { class: 'profile-handle' }, `@${me.username}`))),
      err.el, displayName.el, bio.el, save);
    f.addEventListener('submit', (ev) => {
      ev.preventDefault();
      displayName.touch(); bio.touch();
      const ok = [displayName.check(), bio.check()];
      if (!ok[0]) { displayName.input.focus(); return; }
      if (!ok[1]) { bio.input.focus(); return; }
      const changes = {};
      const newName = displayName.input.value.trim();
      const newBio = bio.input.value.trim();
      if (newName !== (state.me.display_name || '')) changes.display_name = newName;
      if (newBio !== (state.me.bio || '')) changes.bio = newBio;
      if (Object.keys(changes).length === 0) { toast('No changes to save'); return; }
      err.set('');
      busy(save, async () => {
        try {
          const b = await Plaza.updateMe(changes);
          rememberMe(b.user);
          toast('Profile saved');
          form = null;
          render(true);
        } catch (e) {
          err.set(e.message);
        }
      });
    });
    return f;
  }

  function render(force = false) {
    if (form && !force) return;
    if (!state.me) { clear(body, loading('Loading your profile…')); return; }
    form = build(state.me);
    clear(body, form);
  }
  render();
  return { el, update: () => render(), title: 'Profile' };
}

// A readable name for a session's device string, which is usually a User-Agent.
export function deviceName(device) {
  const ua = String(device || '');
  if (!ua) return 'Unknown device';
  if (!/Mozilla|AppleWebKit|Gecko/.test(ua)) return ua.length > 48 ? `${ua.slice(0, 47)}…` : ua;
  const browser = /Edg\//.test(ua) ? 'Edge' : /OPR\//.test(ua) ? 'Opera' : /Firefox\//.test(ua) ? 'Firefox'
    : /Chrome\//.test(ua) || /Chromium\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const os = /iPhone/.test(ua) ? 'iPhone' : /iPad/.test(ua) ? 'iPad' : /Android/.test(ua) ? 'Android'
    : /Mac OS X/.test(ua) ? 'macOS' : /Windows/.test(ua) ? 'Windows' : /CrOS/.test(ua) ? 'ChromeOS' : /Linux/.test(ua) ? 'Linux' : '';
  return os ? `${browser} on ${os}` : browser;
}

function isPhone(device) {
  return /iPhone|Android|Mobile/.test(String(device || ''));
}

export function devices() {
  const body = h('div', { class: 'scroll' });
  const el = h('section', { class: 'screen' }, topbar({ title: 'Devices', back: '/me' }), body);
  let sessions = null;
  let error = null;

  async function load() {
    try {
      const b = await Plaza.sessions();
      sessions = b.sessions || [];
      error = null;
    } catch (e) {
      error = e;
    }
    render();
  }

  async function revoke(ids) {
    for (const id of ids) await Plaza.revokeSession(id);
  }

  function sessionRow(s) {
    const seen = s.current ? 'Active now' : `Last active ${relativeTime(s.last_seen_at || s.created_at)}`;
    const sub = [s.ip, seen].filter(Boolean).join(' · ');
    let trailing = null;
    if (s.current) {
      trailing = h('span', { class: 'pill pill-accent' }, 'This device');
    } else {
      const btn = button('Log out', { small: true, variant: 'ghost', label: `Log out ${deviceName(s.device)}` });
      btn.addEventListener('click', async () => {
        const ok = await confirmDialog({ title: 'Log out this device?', message: `${deviceName(s.device)} will need to log in again.`, confirm: 'Log out', danger: true });
        if (!ok) return;
        await busy(btn, async () => {
          try { await revoke([s.id]); toast('Device logged out'); } catch (e) { toast(e.message); }
          await load();
        });
      });
      trailing = btn;
    }
    return row({
      lead: tile(isPhone(s.device) ? 'phone' : 'device', s.current ? '#07c160' : '#8a8f99'),
      title: deviceName(s.device), subtitle: sub, trailing, chevron: false,
    });
  }

  function render() {
    if (!sessions) { clear(body, error ? errorBox(error, load) : loading('Loading devices…')); return; }
    const current = sessions.filter((s) => s.current);
    const others = sessions.filter((s) => !s.current);
    let endAll = null;
    if (others.length > 1) {
      endAll = button('Log out all other devices', { variant: 'danger-ghost', block: true });
      endAll.addEventListener('click', async () => {
        const ok = await confirmDialog({ title: 'Log out all other devices?', message: 'Every device except this one will need to log in again.', confirm: 'Log out all', danger: true });
        if (!ok) return;
        await busy(endAll, async () => {
          try { await revoke(others.map((s) => s.id)); toast('Other devices logged out'); } catch (e) { toast(e.message); }
          await load();
        });
      });
    }
    clear(body,
      error ? errorBox(error, load) : null,
      group('Current session', current.map(sessionRow)),
      others.length
        ? group('Other devices', others.map(sessionRow))
        : h('p', { class: 'list-foot' }, 'You are not logged in anywhere else.'),
      endAll ? h('div', { class: 'pad' }, endAll) : null);
  }

  render();
  load();
  return { el, title: 'Devices' };
}

export function blocked() {
  const body = h('div', { class: 'scroll' });
  const el = h('section', { class: 'screen' }, topbar({ title: 'Blocked', back: '/me' }), body);
  const gate = changeGate();
  loadBlocks();

  function update() {
    const r = state.blocks;
    if (!gate([r.data, r.error?.message])) return;
    if (!r.data) { clear(body, r.error ? errorBox(r.error, loadBlocks) : loading('Loading…')); return; }
    if (r.data.length === 0) {
      clear(body, emptyState({ iconName: 'shield', title: 'No one is blocked', text: 'People you block can’t send you friend requests.' }));
      return;
    }
    clear(body, group('Blocked people', r.data.map((u) => {
      const btn = button('Unblock', { small: true, variant: 'ghost', label: `Unblock ${nameOf(u)}` });
      btn.addEventListener('click', () => busy(btn, async () => {
        try { await Plaza.unblock(u.id); toast(`Unblocked ${nameOf(u)}`); } catch (e) { toast(e.message); }
        await loadBlocks();
      }));
      return row({ lead: avatar(u), title: nameOf(u), subtitle: `@${u.username}`, trailing: btn, chevron: false });
    })));
  }
  update();
  return { el, update, title: 'Blocked' };
}
