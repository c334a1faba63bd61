// Discover -> Scan: read a payment code (camera where the browser can decode QR codes, or pasted), then pay it with the PIN.

import { h, clear, avatar } from '../dom.js';
import { icon } from '../icons.js';
import { Plaza } from '../api.js';
import { topbar, button, busy, formError, loading, errorBox, field } from '../ui.js';
import { formatMoney, idemKey } from '../money.js';
import { pinSheet, amountField, currencyPicker } from '../pay.js';
import { wallet, loadWallet, currencies, balanceOf } from '../wallet.js';

// What a payment code looks like (docs/api.md, Merchants): a static code
// names a merchant by id, an order code carries 22 base64url characters.
const CODE_RE = /^plaza:pay\?(?:m=[1-9]\d{0,18}|o=[A-Za-z0-9_-]{22})$/;

// People paste what they were sent: the bare code, or the code
// percent-encoded as in a pay_url. Answers the code or null.
export function parsePayCode(text) {
  let s = String(text ?? '').trim();
  const at = s.search(/plaza(?::|%3A)pay/i);
  if (at > 0) s = s.slice(at);
  if (/^plaza%3Apay/i.test(s)) {
    try { s = decodeURIComponent(s.replace(/\/qr\.svg$/, '')); } catch { return null; }
  }
  return CODE_RE.test(s) ? s : null;
}

// The camera part: only where BarcodeDetector reads QR codes. Reports a
// decoded payment code through onCode; every failure becomes a sentence.
function cameraPanel(onCode) {
  const note = h('p', { class: 'scan-note' });
  const video = h('video', { class: 'scan-video', muted: true, playsinline: true, 'aria-label': 'Camera preview' });
  video.muted = true;
  const frame = h('div', { class: 'scan-frame', hidden: true }, video, h('span', { class: 'scan-target', 'aria-hidden': 'true' }));
  const start = button('Scan with camera', { variant: 'ghost', block: true });
  const stop = button('Stop camera', { variant: 'ghost', block: true });
  stop.hidden = true;
  start.hidden = true;
  const el = h('section', { class: 'card scan-camera', 'aria-label': 'Camera' },
    h('div', { class: 'scan-art', 'aria-hidden': 'true' }, icon('scan')), frame, note, start, stop);
  let stream = null;
  let timer = 0;
  let detector = null;
  let alive = true;

  function halt() {
    clearTimeout(timer);
    timer = 0;
    if (stream) for (const t of stream.getTracks()) t.stop();
    stream = null;
    video.srcObject = null;
    frame.hidden = true;
    stop.hidden = true;
    start.hidden = !detector;
  }

  async function tick() {
    timer = 0;
    if (!stream || !alive) return;
    try {
      const found = await detector.detect(video);
      for (const f of found) {
        const code = parsePayCode(f.rawValue);
        if (code) { halt(); onCode(code); return; }
      }
      if (found.length) note.textContent = 'That QR code is not a Plaza payment code.';
    } catch {
      // A frame that is not ready yet: try the next one.
    }
    if (stream && alive) timer = setTimeout(tick, 250);
  }

  start.addEventListener('click', () => busy(start, async () => {
    note.textContent = '';
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
    } catch (e) {
      stream = null;
      note.textContent = e && e.name === 'NotAllowedError'
        ? 'Camera access was refused. Allow it in your browser’s site settings, or paste the code below.'
        : e && (e.name === 'NotFoundError' || e.name === 'OverconstrainedError')
          ? 'No camera was found on this device. Paste the code below instead.'
          : 'The camera could not be started. Paste the code below instead.';
      return;
    }
    if (!alive) { halt(); return; }
    video.srcObject = stream;
    frame.hidden = false;
    start.hidden = true;
    stop.hidden = false;
    note.textContent = 'Point the camera at a Plaza payment QR code.';
    try { await video.play(); } catch { /* autoplay refusals still show frames once the user taps */ }
    tick();
  }));
  stop.addEventListener('click', () => { halt(); note.textContent = ''; });

  (async () => {
    const can = 'BarcodeDetector' in window && navigator.mediaDevices && navigator.mediaDevices.getUserMedia;
    let formats = [];
    if (can) {
      try { formats = await window.BarcodeDetector.getSupportedFormats(); } catch { formats = []; }
    }
    if (!alive) return;
    if (can && formats.includes('qr_code')) {
      try { detector = new window.BarcodeDetector({ formats: ['qr_code'] }); } catch { detector = null; }
    }
    if (detector) {
      start.hidden = false;
      note.textContent = 'Scan the QR code at the counter, or paste a code you were sent.';
    } else {
      note.textContent = 'This browser can’t read QR codes with the camera. Paste the payment code below instead.';
    }
  })();

  return { el, destroy() { alive = false; halt(); } };
}

export function scanView() {
  const body = h('div', { class: 'scroll' });
  const el = h('section', { class: 'screen scan-screen' }, topbar({ title: 'Scan', back: '/discover' }), body);
  let camera = null;
  let alive = true;

  function stopCamera() {
    if (camera) camera.destroy();
    camera = null;
  }

  // ---------- step 1: get a code ----------
  function entry(prefill = '') {
    stopCamera();
    camera = cameraPanel((code) => open(code));
    const code = field({
      label: 'Paste a payment code', name: 'pay_code', value: prefill, autocomplete: 'off', spellcheck: 'false',
      placeholder: 'plaza:pay?…', hint: 'The text under a merchant’s QR code, or a link a shop sent you.',
      rule: (v) => (parsePayCode(v) ? '' : v.trim() ? 'That is not a Plaza payment code: it starts with “plaza:pay?”.' : 'Paste a payment code.'),
    });
    const go = button('Continue', { type: 'submit', block: true });
    const f = h('form', { class: 'card form', novalidate: true }, code.el, go);
    f.addEventListener('submit', (ev) => {
      ev.preventDefault();
      code.touch();
      if (!code.check()) { code.input.focus(); return; }
      open(parsePayCode(code.input.value));
    });
    clear(body, camera.el, f);
  }

  // ---------- step 2: what am I paying? ----------
  async function open(code) {
    stopCamera();
    clear(body, loading('Looking up the code…'));
    let preview;
    try {
      [preview] = await Promise.all([Plaza.payPreview(code), wallet.balances ? null : loadWallet()]);
    } catch (e) {
      if (!alive) return;
      const back = button('Try another code', { variant: 'ghost', block: true, onclick: () => entry(code) });
      clear(body, errorBox(e.status === 404 ? { message: 'No merchant or order has this code.' } : e, () => open(code)),
        h('div', { class: 'pad' }, back));
      return;
    }
    if (alive) paySheet(code, preview);
  }

  function paySheet(code, p, carried = null) {
    const isOrder = p.order_id != null;
    const err = formError();
    const list = currencies();
    let currency = p.currency || list[0];
    let amount = null;
    let picker = null;
    let key = idemKey();
    let lastIntent = '';

    const head = h('div', { class: 'pay-merchant' },
      avatar({ id: p.merchant.id, display_name: p.merchant.name }, 'lg'),
      h('p', { class: 'pay-merchant-label' }, 'Pay to'),
      h('h2', { class: 'pay-merchant-name' }, p.merchant.name),
      p.description ? h('p', { class: 'pay-merchant-desc' }, p.description) : null);

    let blocker = null;
    if (p.own) blocker = 'This is your own merchant’s code: you can’t pay yourself.';
    else if (p.status === 'paid' || p.status === 'refunded') blocker = 'This order was paid already.';
    else if (p.status === 'expired') blocker = 'This order has expired. Ask the merchant for a new code.';
    else if (isOrder && !list.includes(p.currency)) blocker = `This server does not hold ${p.currency}.`;

    const another = button('Scan another code', { variant: 'ghost', block: true, onclick: () => entry() });
    if (blocker) {
      clear(body, h('div', { class: 'card pay-card' }, head,
        isOrder ? h('p', { class: 'pay-amount' }, formatMoney(p.amount, p.currency)) : null,
        h('div', { class: 'notice notice-error pay-blocked', role: 'alert' }, icon('alert', 'notice-icon'), h('span', { class: 'notice-text' }, blocker))),
      h('div', { class: 'pad' }, another));
      return;
    }

    const balance = h('p', { class: 'field-hint pay-balance' });
    const showBalance = () => { balance.textContent = `Balance: ${formatMoney(balanceOf(currency), currency)}`; };
    let fixed = null;
    if (isOrder) {
      fixed = h('p', { class: 'pay-amount' }, formatMoney(p.amount, p.currency));
    } else {
      amount = amountField({ currency, label: 'Amount to pay' });
      picker = currencyPicker(list, currency, (c) => { currency = c; amount.setCurrency(c); showBalance(); });
    }
    showBalance();
    const payBtn = button('Pay', { type: 'submit', block: true });
    const noPin = !wallet.pinSet
      ? h('p', { class: 'form-note' }, 'Payments need a payment PIN. ', h('a', { href: '/me/wallet/pin' }, 'Set one in Wallet'), '.')
      : null;
    const f = h('form', { class: 'card form pay-card', novalidate: true },
      head, err.el,
      picker ? h('div', { class: 'field' }, h('span', { class: 'field-label' }, 'Currency'), picker) : null,
      fixed, amount ? amount.el : null, balance, payBtn, noPin);
    if (carried) err.set(carried);

    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      let minor = p.amount;
      if (!isOrder) {
        const r = amount.parse();
        if (r.error) { amount.input.focus(); return; }
        minor = r.minor;
      }
      if (!wallet.pinSet) { err.set('Set a payment PIN first: it confirms every payment.'); return; }
      if (minor > balanceOf(currency)) {
        err.set(`Not enough money: you have ${formatMoney(balanceOf(currency), currency)}. Top up in Wallet first.`);
        return;
      }
      const intent = `${currency}|${minor}`;
      if (intent !== lastIntent) { key = idemKey(); lastIntent = intent; }
      err.set('');
      const cur = currency;
      const res = await pinSheet({
        title: 'Enter payment PIN', detail: `Pay ${p.merchant.name}`, amount: formatMoney(minor, cur),
        submit: async (pin) => {
          const req = { code, currency: cur, pin, idempotency_key: key };
          if (!isOrder) req.amount = minor;
          try {
            return await Plaza.pay(req);
          } catch (e) {
            // A wrong PIN or a lost connection is tried again in the sheet;
            // any other refusal is final for this key and is shown here.
            if (e.code === 'wrong_pin' || e.code === 'network') throw e;
            return { error: e };
          }
        },
      });
      if (!res || !alive) return;
      if (res.error) {
        key = idemKey();
        lastIntent = '';
        const e = res.error;
        if (e.code === 'order_paid') { paySheet(code, { ...p, status: 'paid' }); return; }
        if (e.code === 'order_expired') { paySheet(code, { ...p, status: 'expired' }); return; }
        err.set(e.message);
        loadWallet();
        return;
      }
      loadWallet();
      success(res.payment);
    });
    clear(body, f, h('div', { class: 'pad' }, another));
    if (amount) amount.input.focus();
  }

  // ---------- step 3: paid ----------
  function success(pay) {
    const done = button('Done', { block: true, onclick: () => entry() });
    clear(body, h('div', { class: 'card pay-success', role: 'status' },
      h('div', { class: 'pay-success-mark', 'aria-hidden': 'true' }, icon('check')),
      h('h2', { class: 'pay-success-title' }, 'Payment complete'),
      h('p', { class: 'pay-amount' }, formatMoney(pay.amount, pay.currency)),
      h('p', { class: 'pay-detail' }, `Paid to ${pay.merchant.name}`),
      done,
      h('a', { class: 'link-btn pay-success-link', href: '/me/wallet' }, 'View wallet')));
    done.focus();
  }

  entry();
  return { el, title: 'Scan', destroy() { alive = false; stopCamera(); } };
}
