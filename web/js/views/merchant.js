// Me -> Merchant: open a merchant account, see its secrets once, show its static QR code, edit the webhook URL, rotate the API key.

import { h, clear, nextId } from '../dom.js';
import { icon } from '../icons.js';
import { Plaza } from '../api.js';
import { topbar, button, busy, field, formError, loading, errorBox, toast, confirmDialog, group } from '../ui.js';

const NAME_MAX = 64;
const URL_MAX = 512;

function checkName(v) {
  const s = v.trim();
  if (!s) return 'Enter the name payers will see.';
  if (Array.from(s).length > NAME_MAX) return `At most ${NAME_MAX} characters.`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(s)) return 'No line breaks or control characters.';
  return '';
}

// The server takes plain http:// URLs only in this build (docs/api.md).
function checkUrl(v) {
  const s = v.trim();
  if (!s) return '';
  if (s.length > URL_MAX) return `At most ${URL_MAX} characters.`;
  if (/^https:/i.test(s)) return 'This server sends webhooks over http:// only.';
  if (!/^http:\/\/[^\s/@#?]+(\/[^\s#]*)?(\?[^\s#]*)?$/i.test(s)) return 'Enter a URL like http://shop.example.com/hooks/plaza.';
  return '';
}

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    toast(`${what} copied`);
  } catch {
    toast('Copying is not allowed here: select the text and copy it.');
  }
}

// A secret in full, selectable, with its own copy button.
function secretBox(label, value) {
  const id = nextId('secret');
  const out = h('output', { class: 'secret-value', id }, value);
  return h('div', { class: 'secret' },
    h('label', { class: 'field-label', for: id }, label),
    h('div', { class: 'secret-row' }, out,
      h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'aria-label': `Copy ${label}`, onclick: () => copy(value, label) },
        icon('copy'), h('span', { class: 'btn-label' }, 'Copy'))));
}

function onceWarning() {
  return h('div', { class: 'notice notice-warn', role: 'note' }, icon('alert', 'notice-icon'),
    h('span', { class: 'notice-text' }, 'Shown only once. Plaza keeps no readable copy: save it now in your shop’s settings or a password manager.'));
}

function fileName(name) {
  const base = name.normalize('NFKD').replace(/[^\w-]+/g, '-').replace(/^-+|-+$/g, '').toLowerCase();
  return `plaza-qr-${base || 'merchant'}.svg`;
}

export function merchantView() {
  const body = h('div', { class: 'scroll' });
  const el = h('section', { class: 'screen merchant-screen' }, topbar({ title: 'Merchant', back: '/me' }), body);
  let merchant = null;
  let alive = true;

  async function load() {
    clear(body, loading('Loading your merchant account…'));
    try {
      const b = await Plaza.merchant();
      if (!alive) return;
      merchant = b.merchant;
      page();
    } catch (e) {
      if (!alive) return;
      if (e.status === 404) openForm();
      else clear(body, errorBox(e, load));
    }
  }

  // ---------- no account yet ----------
  function openForm() {
    const name = field({ label: 'Shop name', name: 'merchant_name', autocomplete: 'organization', rule: checkName, maxChars: NAME_MAX,
      hint: 'What payers see when they scan your code.' });
    const hook = field({ label: 'Webhook URL (optional)', name: 'webhook_url', type: 'url', autocomplete: 'off', rule: checkUrl,
      placeholder: 'http://shop.example.com/hooks/plaza', hint: 'Plaza tells your shop’s server here when an order is paid or refunded.' });
    const err = formError();
    const go = button('Open merchant account', { type: 'submit', block: true });
    const f = h('form', { class: 'card form', novalidate: true },
      h('div', { class: 'merchant-intro' },
        h('div', { class: 'feature-art merchant-art', 'aria-hidden': 'true' }, icon('qr')),
        h('h2', { class: 'merchant-intro-title' }, 'Get paid with a QR code'),
        h('p', { class: 'merchant-intro-text' }, 'Payments land in your own wallet. Your shop’s server can create orders with an API key.')),
      err.el, name.el, hook.el, go);
    f.addEventListener('submit', (ev) => {
      ev.preventDefault();
      name.touch(); hook.touch();
      const ok = [name.check(), hook.check()];
      if (!ok[0]) { name.input.focus(); return; }
      if (!ok[1]) { hook.input.focus(); return; }
      err.set('');
      const req = { name: name.input.value.trim() };
      if (hook.input.value.trim()) req.webhook_url = hook.input.value.trim();
      busy(go, async () => {
        try {
          const b = await Plaza.openMerchant(req);
          merchant = b.merchant;
          secrets(b.api_key, b.webhook_secret);
        } catch (e) {
          if (e.code === 'merchant_exists') { load(); return; }
          err.set(e.message);
        }
      });
    });
    clear(body, f);
    name.input.focus();
  }

  // ---------- the secrets, once ----------
  function secrets(apiKey, webhookSecret) {
    const next = button('I’ve saved them', { block: true, onclick: () => page() });
    clear(body, h('div', { class: 'card form merchant-secrets' },
      h('h2', { class: 'merchant-secrets-title' }, webhookSecret ? 'Your merchant account is open' : 'Your new API key'),
      onceWarning(),
      secretBox('API key', apiKey),
      webhookSecret ? secretBox('Webhook secret', webhookSecret) : null,
      h('p', { class: 'form-note' }, webhookSecret
        ? 'The API key lets your shop’s server create orders and refunds. The webhook secret checks that webhooks come from Plaza.'
        : 'The old key stopped working just now: put this one in your shop’s settings.'),
      next));
    next.focus();
  }

  // ---------- the merchant page ----------
  function page() {
    const m = merchant;
    const qr = h('img', { class: 'merchant-qr-img', src: m.qr_svg_url, width: 220, height: 220, alt: `QR code to pay ${m.name}` });
    const save = h('a', { class: 'btn btn-ghost btn-small', href: m.qr_svg_url, download: fileName(m.name) }, icon('arrow-down'), h('span', { class: 'btn-label' }, 'Save'));
    const copyCode = h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: () => copy(m.payment_code, 'Payment code') },
      icon('copy'), h('span', { class: 'btn-label' }, 'Copy code'));
    const qrCard = h('section', { class: 'card merchant-qr', 'aria-label': 'Payment QR code' },
      h('h2', { class: 'merchant-name' }, m.name),
      h('p', { class: 'merchant-qr-hint' }, 'Payers scan this and type the amount.'),
      h('div', { class: 'merchant-qr-frame' }, qr),
      h('code', { class: 'merchant-code' }, m.payment_code),
      h('div', { class: 'merchant-qr-actions' }, save, copyCode));

    const name = field({ label: 'Shop name', name: 'merchant_name', value: m.name, rule: checkName, maxChars: NAME_MAX });
    const hook = field({ label: 'Webhook URL', name: 'webhook_url', type: 'url', value: m.webhook_url || '', autocomplete: 'off', rule: checkUrl,
      placeholder: 'http://shop.example.com/hooks/plaza', hint: 'Leave empty to stop webhooks.' });
    const err = formError();
    const saveBtn = button('Save changes', { type: 'submit', block: true });
    const f = h('form', { class: 'card form', novalidate: true, 'aria-label': 'Merchant settings' }, err.el, name.el, hook.el, saveBtn);
    f.addEventListener('submit', (ev) => {
      ev.preventDefault();
      name.touch(); hook.touch();
      const ok = [name.check(), hook.check()];
      if (!ok[0]) { name.input.focus(); return; }
      if (!ok[1]) { hook.input.focus(); return; }
      const changes = {};
      const n = name.input.value.trim();
      const u = hook.input.value.trim();
      if (n !== m.name) changes.name = n;
      if (u !== (m.webhook_url || '')) changes.webhook_url = u || null;
      if (!Object.keys(changes).length) { toast('No changes to save'); return; }
      err.set('');
      busy(saveBtn, async () => {
        try {
          const b = await Plaza.updateMerchant(changes);
          merchant = b.merchant;
          toast('Merchant saved');
          page();
        } catch (e) {
          err.set(e.message);
        }
      });
    });

    const rotate = button('Rotate API key', { variant: 'danger-ghost', block: true });
    rotate.addEventListener('click', async () => {
      const ok = await confirmDialog({
        title: 'Rotate the API key?',
        message: 'The current key stops working at once: your shop can’t create orders or refunds until it has the new one.',
        confirm: 'Rotate', danger: true,
      });
      if (!ok) return;
      await busy(rotate, async () => {
        try {
          const b = await Plaza.rotateMerchantKey();
          secrets(b.api_key, null);
        } catch (e) {
          toast(e.message);
        }
      });
    });

    clear(body, qrCard, f,
      group('API key', h('div', { class: 'pad merchant-key' },
        h('p', { class: 'form-note merchant-key-note' }, 'Your shop’s server uses the API key to create orders. Plaza shows a key only when it is made.'),
        rotate)));
  }

  load();
  return { el, title: 'Merchant', destroy() { alive = false; } };
}
