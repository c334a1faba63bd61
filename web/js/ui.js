// Shared building blocks for screens: bars, list rows, states, form fields, dialogs and toasts.

import { h, clear, nextId } from './dom.js';
import { icon } from './icons.js';

export function topbar({ title, back, actions = [], large = false }) {
  return h('header', { class: `bar${large ? ' bar-large' : ''}` },
    h('div', { class: 'bar-side bar-start' },
      back ? h('a', { class: 'icon-btn bar-back', href: back, 'aria-label': 'Back', dataset: { back: '1' } }, icon('back')) : null),
    h('h1', { class: 'bar-title' }, title),
    h('div', { class: 'bar-side bar-end' }, actions));
}

export function iconLink(href, iconName, label, extra = {}) {
  return h('a', { class: 'icon-btn', href, 'aria-label': label, title: label, ...extra }, icon(iconName));
}

export function group(title, ...rows) {
  const headingId = title ? nextId('group') : null;
  return h('section', { class: 'group', 'aria-labelledby': headingId },
    title ? h('h2', { class: 'group-title', id: headingId }, title) : null,
    h('div', { class: 'group-body' }, rows));
}

// One list row: a link when it has href, a button when it has onclick, plain otherwise.
export function row({ href, onclick, lead, title, subtitle, meta, trailing, chevron = !!href, badge, tone, current, label }) {
  const tag = href ? 'a' : onclick ? 'button' : 'div';
  const props = { class: `row${tone ? ` row-${tone}` : ''}${href || onclick ? ' row-action' : ''}` };
  if (href) props.href = href;
  if (onclick) { props.type = 'button'; props.onclick = onclick; }
  if (current) props['aria-current'] = 'page';
  if (label) props['aria-label'] = label;
  return h(tag, props,
    lead ? h('span', { class: 'row-lead' }, lead) : null,
    h('span', { class: 'row-main' },
      h('span', { class: 'row-title' }, title),
      subtitle ? h('span', { class: 'row-sub' }, subtitle) : null),
    meta ? h('span', { class: 'row-meta' }, meta) : null,
    badge ? h('span', { class: 'badge', 'aria-label': badge.label }, String(badge.count)) : null,
    trailing || null,
    chevron ? icon('chevron', 'row-chevron') : null);
}

export function tile(iconName, color) {
  return h('span', { class: 'tile', style: { background: color } }, icon(iconName));
}

export function emptyState({ iconName, title, text, action, tone }) {
  return h('div', { class: `empty${tone ? ` empty-${tone}` : ''}` },
    iconName ? h('div', { class: 'empty-art' }, icon(iconName)) : null,
    h('p', { class: 'empty-title' }, title),
    text ? h('p', { class: 'empty-text' }, text) : null,
    action || null);
}

export function errorBox(err, retry) {
  return h('div', { class: 'notice notice-error', role: 'alert' },
    icon('alert', 'notice-icon'),
    h('span', { class: 'notice-text' }, err?.message || 'Something went wrong.'),
    retry ? h('button', { type: 'button', class: 'btn btn-small btn-ghost', onclick: retry }, 'Try again') : null);
}

export function loading(label = 'Loading…') {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', null, label));
}

export function button(text, { variant = 'primary', type = 'button', onclick, small = false, block = false, disabled = false, label } = {}) {
  return h('button', {
    type, class: `btn btn-${variant}${small ? ' btn-small' : ''}${block ? ' btn-block' : ''}`,
    onclick, disabled, 'aria-label': label,
  }, h('span', { class: 'btn-label' }, text));
}

// Runs an action with the button showing a spinner; the button is disabled
// meanwhile so a double tap does not send twice.
export async function busy(btn, fn) {
  if (btn.disabled) return undefined;
  btn.disabled = true;
  btn.classList.add('is-busy');
  btn.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    btn.disabled = false;
    btn.classList.remove('is-busy');
    btn.removeAttribute('aria-busy');
  }
}

// A labelled input with hint and inline error; check() runs the rule and
// shows its message, returning true when the value is fine.
// multiline wraps long text over several rows but keeps it one line, as the
// server refuses line breaks in names, bios and greetings: Enter submits and
// pasted line breaks become spaces. normalize rewrites the value as people type.
export function field({ label, name, type = 'text', value = '', hint, rule, autocomplete, multiline = false, maxChars, prefix, reveal = false, normalize, ...attrs }) {
  const id = nextId(name);
  const hintId = `${id}-hint`;
  const errId = `${id}-err`;
  const input = h(multiline ? 'textarea' : 'input', {
    id, name, class: 'input', autocomplete,
    type: multiline ? undefined : type,
    'aria-describedby': `${hint ? hintId : ''} ${errId}`.trim(),
    rows: multiline ? 3 : undefined,
    spellcheck: type === 'text' && !multiline && autocomplete === 'username' ? 'false' : undefined,
    ...attrs,
  });
  input.value = value;
  const err = h('p', { class: 'field-error', id: errId, 'aria-live': 'polite' });
  const counter = maxChars ? h('span', { class: 'field-counter', 'aria-hidden': 'true' }) : null;
  let touched = false;

  function updateCounter() {
    if (!counter) return;
    const n = Array.from(input.value).length;
    counter.textContent = `${n}/${maxChars}`;
    counter.classList.toggle('over', n > maxChars);
  }

  function setError(msg) {
    err.textContent = msg || '';
    input.setAttribute('aria-invalid', msg ? 'true' : 'false');
    wrap.classList.toggle('has-error', !!msg);
  }

  function check() {
    const msg = rule ? rule(input.value) : '';
    setError(msg);
    return !msg;
  }

  if (normalize) {
    input.addEventListener('input', () => {
      const v = normalize(input.value);
      if (v === input.value) return;
      const pos = input.selectionStart;
      input.value = v;
      input.setSelectionRange(pos, pos);
    });
  }
  if (multiline) {
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.isComposing) {
        ev.preventDefault();
        if (input.form) input.form.requestSubmit();
      }
    });
    input.addEventListener('input', () => {
      if (/[\r\n]/.test(input.value)) input.value = input.value.replace(/\s*[\r\n]+\s*/g, ' ');
    });
  }

  input.addEventListener('blur', () => {
    if (input.value !== '' || touched) { touched = true; check(); }
  });
  input.addEventListener('input', () => {
    updateCounter();
    if (touched || wrap.classList.contains('has-error')) check();
  });

  let toggle = null;
  if (reveal) {
    toggle = h('button', { type: 'button', class: 'input-toggle', 'aria-label': 'Show password', 'aria-pressed': 'false' }, 'Show');
    toggle.addEventListener('click', () => {
      const show = input.type === 'password';
      input.type = show ? 'text' : 'password';
      toggle.textContent = show ? 'Hide' : 'Show';
      toggle.setAttribute('aria-pressed', String(show));
      toggle.setAttribute('aria-label', show ? 'Hide password' : 'Show password');
    });
  }

  const wrap = h('div', { class: 'field' },
    h('div', { class: 'field-head' }, h('label', { class: 'field-label', for: id }, label), counter),
    h('div', { class: `input-wrap${prefix ? ' has-prefix' : ''}${toggle ? ' has-toggle' : ''}` },
      prefix ? h('span', { class: 'input-prefix', 'aria-hidden': 'true' }, prefix) : null,
      input, toggle),
    hint ? h('p', { class: 'field-hint', id: hintId }, hint) : null,
    err);
  updateCounter();
  return { el: wrap, input, setError, check, touch() { touched = true; } };
}

export function formError() {
  const el = h('div', { class: 'form-error', role: 'alert', hidden: true });
  return {
    el,
    set(msg) {
      clear(el, msg ? icon('alert', 'notice-icon') : null, msg ? h('span', null, msg) : null);
      el.hidden = !msg;
    },
  };
}

// A modal confirmation built on <dialog>, which traps focus and closes on Escape.
export function confirmDialog({ title, message, confirm = 'OK', cancel = 'Cancel', danger = false }) {
  return new Promise((resolve) => {
    const titleId = nextId('dlg');
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': titleId },
      h('form', { method: 'dialog', class: 'dialog-body' },
        h('h2', { class: 'dialog-title', id: titleId }, title),
        message ? h('p', { class: 'dialog-text' }, message) : null,
        h('div', { class: 'dialog-actions' },
          h('button', { class: 'btn btn-ghost', value: 'cancel' }, cancel),
          h('button', { class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, value: 'ok' }, confirm))));
    dlg.addEventListener('close', () => {
      resolve(dlg.returnValue === 'ok');
      dlg.remove();
    });
    dlg.addEventListener('click', (ev) => {
      if (ev.target === dlg) dlg.close('cancel');
    });
    document.body.appendChild(dlg);
    dlg.showModal();
  });
}

let toastTimer = 0;
export function toast(text) {
  let region = document.getElementById('toast');
  if (!region) {
    region = h('div', { id: 'toast', class: 'toast', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(region);
  }
  clear(region, h('span', { class: 'toast-inner' }, icon('check'), h('span', null, text)));
  region.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => region.classList.remove('show'), 2600);
}

// A button that opens a small menu of links and actions (the "+" in Chats).
// Arrow keys move between items, Escape and a click outside close it.
export function menuButton({ iconName, label, items }) {
  const menuId = nextId('menu');
  const btn = h('button', {
    type: 'button', class: 'icon-btn', 'aria-label': label, title: label, 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': menuId,
  }, icon(iconName));
  const entries = items.map((it) => {
    const props = { class: 'menu-item', role: 'menuitem', tabindex: '-1' };
    const content = [it.icon ? icon(it.icon) : null, h('span', null, it.text)];
    const el = it.href ? h('a', { ...props, href: it.href }, content) : h('button', { ...props, type: 'button' }, content);
    el.addEventListener('click', () => {
      close();
      if (it.onclick) it.onclick();
    });
    return el;
  });
  const menu = h('div', { class: 'menu', id: menuId, role: 'menu', 'aria-label': label, hidden: true }, entries);
  const wrap = h('div', { class: 'menu-wrap' }, btn, menu);

  function onDoc(ev) {
    if (!wrap.contains(ev.target)) close();
  }
  function open() {
    menu.hidden = false;
    btn.setAttribute('aria-expanded', 'true');
    document.addEventListener('pointerdown', onDoc, true);
    entries[0]?.focus();
  }
  function close() {
    if (menu.hidden) return;
    menu.hidden = true;
    btn.setAttribute('aria-expanded', 'false');
    document.removeEventListener('pointerdown', onDoc, true);
  }
  btn.addEventListener('click', () => (menu.hidden ? open() : close()));
  menu.addEventListener('keydown', (ev) => {
    const i = entries.indexOf(document.activeElement);
    if (ev.key === 'Escape') { ev.preventDefault(); close(); btn.focus(); }
    else if (ev.key === 'ArrowDown') { ev.preventDefault(); entries[(i + 1) % entries.length].focus(); }
    else if (ev.key === 'ArrowUp') { ev.preventDefault(); entries[(i - 1 + entries.length) % entries.length].focus(); }
    else if (ev.key === 'Tab') close();
  });
  return { el: wrap, close };
}
