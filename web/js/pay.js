// Payment building blocks: the six-digit PIN pad, the PIN sheet that confirms a payment, and the amount field.

import { h, clear, nextId } from './dom.js';
import { icon } from './icons.js';
import { parseAmount, currencySymbol, currencyDigits } from './money.js';

export const PIN_LENGTH = 6;

// Six boxes showing dots, a keypad for touch, and a real (visually hidden)
// input so a keyboard, a screen reader and a password manager's refusal all
// behave. onFull(pin) runs when the sixth digit lands.
export function pinPad({ label = 'Payment PIN', onFull, onChange } = {}) {
  const id = nextId('pin');
  const input = h('input', {
    id, class: 'pin-input', type: 'password', inputmode: 'numeric', pattern: '[0-9]*', maxlength: String(PIN_LENGTH),
    autocomplete: 'off', 'aria-label': label, enterkeyhint: 'done',
  });
  const cells = Array.from({ length: PIN_LENGTH }, () => h('span', { class: 'pin-cell' }));
  const boxes = h('label', { class: 'pin-boxes', for: id }, cells);

  function paint() {
    const n = input.value.length;
    cells.forEach((c, i) => {
      c.classList.toggle('is-filled', i < n);
      c.classList.toggle('is-next', i === n && document.activeElement === input);
    });
  }
  function changed() {
    const v = input.value.replace(/\D/g, '').slice(0, PIN_LENGTH);
    if (v !== input.value) input.value = v;
    paint();
    if (onChange) onChange(v);
    if (v.length === PIN_LENGTH && onFull) onFull(v);
  }
  input.addEventListener('input', changed);
  input.addEventListener('focus', paint);
  input.addEventListener('blur', paint);

  function key(text, fn, extra = {}) {
    return h('button', { type: 'button', class: `pin-key${extra.cls ? ` ${extra.cls}` : ''}`, tabindex: '-1', 'aria-label': extra.label, onclick: fn }, text);
  }
  const digit = (d) => key(String(d), () => {
    if (input.value.length >= PIN_LENGTH) return;
    input.value += String(d);
    changed();
  });
  const keypad = h('div', { class: 'pin-keypad', 'aria-hidden': 'true' },
    [1, 2, 3, 4, 5, 6, 7, 8, 9].map(digit),
    h('span', { class: 'pin-key is-blank' }),
    digit(0),
    key(icon('back'), () => { input.value = input.value.slice(0, -1); changed(); }, { cls: 'pin-key-del', label: 'Delete' }));

  const el = h('div', { class: 'pin-pad' }, input, boxes);
  paint();
  return {
    el,
    keypad,
    input,
    value: () => input.value,
    clear() { input.value = ''; paint(); },
    focus() { input.focus({ preventScroll: true }); },
    setDisabled(on) { input.disabled = on; keypad.classList.toggle('is-disabled', on); },
  };
}

// A sheet asking for the PIN to confirm one payment. submit(pin) does the
// request; a wrong PIN keeps the sheet open with the server's message (how
// many tries are left) and an empty pad. Resolves to submit's answer, or
// null when the person cancels.
export function pinSheet({ title = 'Enter payment PIN', amount, detail, submit }) {
  return new Promise((resolve) => {
    const titleId = nextId('sheet');
    const err = h('p', { class: 'sheet-error', role: 'alert' });
    const spin = h('div', { class: 'sheet-busy', hidden: true }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', null, 'Paying…'));
    let working = false;
    let result = null;
    const pad = pinPad({
      onChange: () => { if (pad.value()) err.textContent = ''; },
      onFull: async (pin) => {
        if (working) return;
        working = true;
        pad.setDisabled(true);
        spin.hidden = false;
        err.textContent = '';
        try {
          result = await submit(pin);
          dlg.close('ok');
        } catch (e) {
          err.textContent = e.message || 'The payment failed.';
          pad.clear();
          // A refusal on the merits will not change with another PIN: the
          // message stays and the pad is put away.
          const final = e.code !== 'wrong_pin' && e.code !== 'network';
          pad.setDisabled(final);
          if (!final) pad.focus();
        } finally {
          working = false;
          spin.hidden = true;
        }
      },
    });
    const close = h('button', { type: 'button', class: 'icon-btn sheet-close', 'aria-label': 'Cancel' }, icon('close'));
    const dlg = h('dialog', { class: 'sheet pay-sheet', 'aria-labelledby': titleId },
      h('div', { class: 'sheet-body' },
        h('div', { class: 'sheet-head' }, close, h('h2', { class: 'sheet-title', id: titleId }, title)),
        detail ? h('p', { class: 'pay-detail' }, detail) : null,
        amount ? h('p', { class: 'pay-amount' }, amount) : null,
        pad.el, err, spin, pad.keypad));
    close.addEventListener('click', () => { if (!working) dlg.close('cancel'); });
    dlg.addEventListener('cancel', (ev) => { if (working) ev.preventDefault(); });
    dlg.addEventListener('close', () => {
      resolve(dlg.returnValue === 'ok' ? result : null);
      dlg.remove();
    });
    document.body.appendChild(dlg);
    dlg.showModal();
    pad.focus();
  });
}

// An amount input with the currency's symbol in front; parse() answers
// {minor} or {error} and shows the error under the field.
export function amountField({ label = 'Amount', currency, hint, autofocus = false } = {}) {
  const id = nextId('amount');
  let cur = currency;
  const prefix = h('span', { class: 'amount-prefix', 'aria-hidden': 'true' }, currencySymbol(cur));
  const input = h('input', {
    id, class: 'amount-input', type: 'text', inputmode: 'decimal', autocomplete: 'off', placeholder: '0.00',
    'aria-describedby': `${id}-err`, autofocus: autofocus || undefined,
  });
  const err = h('p', { class: 'field-error', id: `${id}-err`, 'aria-live': 'polite' });
  const el = h('div', { class: 'field amount-field' },
    h('label', { class: 'field-label', for: id }, label),
    h('div', { class: 'amount-wrap' }, prefix, input),
    hint ? h('p', { class: 'field-hint' }, hint) : null,
    err);
  function placeholder() {
    const d = currencyDigits(cur);
    input.placeholder = d ? `0.${'0'.repeat(d)}` : '0';
  }
  placeholder();
  input.addEventListener('input', () => { if (el.classList.contains('has-error')) parse(); });
  function setError(msg) {
    err.textContent = msg || '';
    el.classList.toggle('has-error', !!msg);
    input.setAttribute('aria-invalid', msg ? 'true' : 'false');
  }
  function parse() {
    const r = parseAmount(input.value, cur);
    setError(r.error || '');
    return r;
  }
  return {
    el, input, parse, setError,
    setCurrency(c) { cur = c; clear(prefix, currencySymbol(c)); placeholder(); if (input.value) parse(); },
  };
}

// A segmented choice of currency (when the server offers more than one).
export function currencyPicker(currencies, value, onPick) {
  if (currencies.length < 2) return null;
  const name = nextId('cur');
  const el = h('div', { class: 'segmented', role: 'radiogroup', 'aria-label': 'Currency' },
    currencies.map((c) => {
      const input = h('input', { type: 'radio', name, value: c, checked: c === value, class: 'sr-only', id: `${name}-${c}` });
      input.addEventListener('change', () => { if (input.checked) onPick(c); });
      return h('label', { class: 'segment', for: `${name}-${c}` }, input, h('span', null, c));
    }));
  return el;
}
