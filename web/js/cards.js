// Money in chats: transfer and red packet cards, their live state, and the sheets that send, accept, open and detail them.

import { h, clear, avatar, nextId } from './dom.js';
import { icon } from './icons.js';
import { Plaza } from './api.js';
import { button, busy, field, formError, toast } from './ui.js';
import { chatChanged, onWalletEvent, meId, nameOf, member, otherMember } from './chat.js';
import { wallet, loadWallet, currencies, balanceOf } from './wallet.js';
import { formatMoney, idemKey } from './money.js';
import { pinSheet, amountField, currencyPicker } from './pay.js';
import { navigate } from './router.js';

const transfers = new Map(); // transfer id -> transfer object, the newest we saw
const packets = new Map(); // red packet id -> {packet (with claims), mine: amount or null}
const asked = new Set(); // ids whose current state was fetched once this session

const TRANSFER_STATUS = { pending: 'Pending', completed: 'Accepted', returned: 'Returned', expired: 'Refunded' };

onWalletEvent((ev) => {
  if (ev.type === 'transfer.updated' && ev.transfer) {
    transfers.set(String(ev.transfer.id), ev.transfer);
    loadWallet();
  } else if (ev.type === 'red_packet.claimed') {
    // Someone opened my packet: its details are stale.
    const id = String(ev.red_packet_id);
    if (packets.has(id)) refreshPacket(id);
  }
});

function refreshTransfer(id) {
  asked.add(`t${id}`);
  Plaza.transfer(id).then((b) => { transfers.set(id, b.transfer); chatChanged(); }, () => {});
}

function refreshPacket(id) {
  asked.add(`r${id}`);
  return Plaza.redPacket(id).then((b) => {
    const p = b.red_packet;
    const me = String(meId());
    const mine = (p.claims || []).find((c) => String(c.user?.id) === me);
    packets.set(id, { packet: p, mine: mine ? mine.amount : null });
    chatChanged();
    return p;
  }, () => null);
}

function transferOf(m) {
  const b = m.body || {};
  const id = String(b.transfer_id);
  const t = transfers.get(id);
  if (!t && !asked.has(`t${id}`)) refreshTransfer(id);
  return t || { id, amount: b.amount, currency: b.currency, note: b.note, status: b.status, from_user_id: m.sender_id };
}

function packetOf(m) {
  const id = String(m.body?.red_packet_id);
  if (!packets.has(id) && !asked.has(`r${id}`)) refreshPacket(id);
  return packets.get(id) || null;
}

// What a card shows, for the chat's repaint signatures.
export function cardSig(m) {
  if (m.type === 'transfer') return transferOf(m).status;
  if (m.type === 'red_packet') {
    const p = packetOf(m);
    return p ? [p.packet.status, p.mine, p.packet.remaining_count] : null;
  }
  return null;
}

export function isCard(m) {
  return m.type === 'transfer' || m.type === 'red_packet';
}

// ---------- transfer cards ----------

function transferCard(m, conv) {
  const t = transferOf(m);
  const mine = String(m.sender_id) === String(meId());
  const status = TRANSFER_STATUS[t.status] || t.status;
  const done = t.status !== 'pending';
  let line;
  if (t.status === 'pending') line = mine ? 'Waiting to be accepted' : 'Tap to accept';
  else line = status;
  const card = h('button', {
    type: 'button', class: `money-card transfer-card${done ? ' is-done' : ''}`, dataset: { status: t.status },
    'aria-label': `Transfer ${formatMoney(t.amount, t.currency)}${t.note ? `, ${t.note}` : ''}: ${status}`,
  },
  h('span', { class: 'money-card-main' },
    h('span', { class: 'money-card-icon' }, icon(t.status === 'completed' ? 'check' : t.status === 'pending' ? 'transfer' : 'undo')),
    h('span', { class: 'money-card-text' },
      h('span', { class: 'money-card-amount' }, formatMoney(t.amount, t.currency)),
      h('span', { class: 'money-card-note' }, t.note || line))),
  h('span', { class: 'money-card-foot' }, h('span', null, 'Transfer'), h('span', { class: 'money-card-status' }, status)));
  card.addEventListener('click', () => transferSheet(t, conv, mine));
  return card;
}

function transferSheet(t0, conv, mine) {
  const t = transfers.get(String(t0.id)) || t0;
  const other = mine ? otherMember(conv)?.user : member(conv, t.from_user_id)?.user;
  const status = TRANSFER_STATUS[t.status] || t.status;
  const err = formError();
  const actions = [];
  let text;
  if (t.status === 'pending' && !mine) {
    text = `${nameOf(other)} sent you money. Accept it within 24 hours, or it goes back.`;
    const accept = button('Accept', { block: true });
    const giveBack = h('button', { type: 'button', class: 'link-btn' }, 'Return');
    accept.addEventListener('click', () => busy(accept, async () => {
      try {
        const b = await Plaza.acceptTransfer(t.id);
        transfers.set(String(t.id), b.transfer);
        loadWallet();
        chatChanged();
        dlg.close();
        toast(`${formatMoney(t.amount, t.currency)} added to your balance`);
      } catch (e) { err.set(e.message); refreshTransfer(String(t.id)); }
    }));
    giveBack.addEventListener('click', async () => {
      try {
        const b = await Plaza.returnTransfer(t.id);
        transfers.set(String(t.id), b.transfer);
        chatChanged();
        dlg.close();
        toast('Transfer returned');
      } catch (e) { err.set(e.message); }
    });
    actions.push(accept, h('p', { class: 'form-note' }, giveBack));
  } else if (t.status === 'pending') {
    text = `Waiting for ${nameOf(other)} to accept. If they don't within 24 hours, it comes back to you.`;
  } else if (t.status === 'completed') {
    text = mine ? `${nameOf(other)} accepted it.` : 'Added to your balance.';
    actions.push(h('a', { class: 'btn btn-ghost btn-block', href: '/me/wallet', onclick: () => dlg.close() }, 'Open wallet'));
  } else if (t.status === 'returned') {
    text = mine ? `${nameOf(other)} sent it back to you.` : 'You sent it back.';
  } else {
    text = mine ? 'Not accepted within 24 hours: refunded to you.' : 'Not accepted within 24 hours: refunded to the sender.';
  }
  const dlg = sheet('Transfer', h('div', { class: 'transfer-detail' },
    h('span', { class: `transfer-detail-icon is-${t.status}` }, icon(t.status === 'completed' ? 'check' : t.status === 'pending' ? 'clock' : 'undo')),
    h('p', { class: 'transfer-detail-status' }, status),
    h('p', { class: 'pay-amount' }, formatMoney(t.amount, t.currency)),
    t.note ? h('p', { class: 'transfer-detail-note' }, t.note) : null,
    h('p', { class: 'pin-text' }, text),
    err.el, actions));
}

// ---------- red packet cards ----------

function packetState(p, m) {
  if (!p) return { label: '', done: false };
  const mineSent = String(m.sender_id) === String(meId());
  if (p.mine !== null) return { label: 'Opened', done: true };
  const st = p.packet.status;
  if (st === 'finished') return { label: 'All claimed', done: true };
  if (st === 'expired' || st === 'refunded') return { label: 'Expired', done: true };
  if (mineSent && p.packet.count === 1 && p.packet.remaining_count === 1) return { label: 'Not opened yet', done: false };
  return { label: '', done: false };
}

function packetCard(m, conv) {
  const p = packetOf(m);
  const b = m.body || {};
  const st = packetState(p, m);
  const card = h('button', {
    type: 'button', class: `money-card packet-card${st.done ? ' is-done' : ''}`,
    'aria-label': `Red packet: ${b.greeting || 'Best wishes'}${st.label ? `, ${st.label}` : ''}`,
  },
  h('span', { class: 'money-card-main' },
    h('span', { class: 'money-card-icon packet-icon' }, icon('red-packet')),
    h('span', { class: 'money-card-text' },
      h('span', { class: 'money-card-greeting' }, b.greeting || 'Best wishes'),
      st.label ? h('span', { class: 'money-card-note' }, st.label) : null)),
  h('span', { class: 'money-card-foot' }, h('span', null, 'Red packet')));
  card.addEventListener('click', () => openPacket(m, conv));
  return card;
}

async function openPacket(m, conv) {
  const id = String(m.body?.red_packet_id);
  let p = packets.get(id);
  if (!p) { await refreshPacket(id); p = packets.get(id); }
  if (!p) { toast('This red packet could not be loaded.'); return; }
  const mineSent = String(m.sender_id) === String(meId());
  const st = p.packet.status;
  // Nothing to open: mine in a direct chat, already opened, or over.
  if (p.mine !== null || st !== 'active' || (mineSent && conv.type === 'direct')) {
    packetDetails(id, conv);
    return;
  }
  const sender = member(conv, m.sender_id)?.user || { id: m.sender_id };
  const msg = h('p', { class: 'envelope-msg' });
  const openBtn = h('button', { type: 'button', class: 'envelope-open', 'aria-label': 'Open' }, h('span', null, 'Open'));
  const close = h('button', { type: 'button', class: 'icon-btn envelope-close', 'aria-label': 'Close' }, icon('close'));
  const titleId = nextId('env');
  const dlg = h('dialog', { class: 'envelope', 'aria-labelledby': titleId },
    h('div', { class: 'envelope-body' }, close,
      h('div', { class: 'envelope-top' },
        avatar(sender, 'md'),
        h('p', { class: 'envelope-from', id: titleId }, `${nameOf(sender)}’s red packet`),
        h('p', { class: 'envelope-greeting' }, m.body?.greeting || 'Best wishes'),
        msg),
      openBtn));
  close.addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => dlg.remove());
  openBtn.addEventListener('click', async () => {
    if (openBtn.disabled) return;
    openBtn.disabled = true;
    openBtn.classList.add('is-spinning');
    try {
      await Plaza.claimRedPacket(id, idemKey());
      await refreshPacket(id);
      loadWallet();
      dlg.close();
      packetDetails(id, conv);
    } catch (e) {
      openBtn.classList.remove('is-spinning');
      if (e.code === 'already_claimed') { dlg.close(); await refreshPacket(id); packetDetails(id, conv); return; }
      openBtn.hidden = true;
      msg.textContent = e.code === 'red_packet_empty' ? 'Better luck next time: every share was taken.'
        : e.code === 'red_packet_expired' ? 'This red packet has expired.' : e.message;
      const details = h('button', { type: 'button', class: 'envelope-link' }, 'See who got it');
      details.addEventListener('click', () => { dlg.close(); refreshPacket(id).then(() => packetDetails(id, conv)); });
      msg.after(details);
      refreshPacket(id);
    }
  });
  document.body.appendChild(dlg);
  dlg.showModal();
}

function packetDetails(id, conv) {
  const p = packets.get(id);
  if (!p) return;
  const pk = p.packet;
  const sender = member(conv, pk.sender_id)?.user || { id: pk.sender_id };
  const claims = pk.claims || [];
  const claimedSum = claims.reduce((s, c) => s + c.amount, 0);
  const st = pk.status === 'finished' ? 'All claimed'
    : pk.status === 'expired' || pk.status === 'refunded' ? 'Expired: what was left went back to the sender' : null;
  const list = h('ul', { class: 'claims', 'aria-label': 'Who opened it' }, claims.map((c) => {
    const u = member(conv, c.user?.id)?.user || c.user;
    const lucky = pk.luckiest_user_id && String(pk.luckiest_user_id) === String(c.user?.id);
    return h('li', { class: 'claim' },
      avatar(u, 'md'),
      h('span', { class: 'claim-main' }, h('span', { class: 'claim-name' }, String(u?.id) === String(meId()) ? `${nameOf(u)} (you)` : nameOf(u)),
        h('span', { class: 'claim-time' }, new Date(c.claimed_at).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' }))),
      h('span', { class: 'claim-side' }, h('span', { class: 'claim-amount' }, formatMoney(c.amount, pk.currency)),
        lucky ? h('span', { class: 'claim-lucky' }, icon('star'), 'Luckiest') : null));
  }));
  const body = h('div', { class: 'packet-detail' },
    h('div', { class: 'packet-detail-head' },
      avatar(sender, 'lg'),
      h('p', { class: 'packet-detail-from' }, `${nameOf(sender)}’s red packet`),
      h('p', { class: 'packet-detail-greeting' }, pk.greeting || 'Best wishes'),
      p.mine !== null ? h('p', { class: 'packet-detail-mine' }, formatMoney(p.mine, pk.currency)) : null,
      p.mine !== null ? h('p', { class: 'packet-detail-note' }, 'Added to your balance') : null),
    h('p', { class: 'packet-detail-summary' },
      `${claims.length}/${pk.count} opened, ${formatMoney(claimedSum, pk.currency)}/${formatMoney(pk.total, pk.currency)}`,
      st ? ` · ${st}` : ''),
    list);
  sheet('Red packet', body, 'packet-sheet');
}

// ---------- sending ----------

function sheet(title, content, extra = '') {
  const titleId = nextId('sheet');
  const close = h('button', { type: 'button', class: 'icon-btn sheet-close', 'aria-label': 'Close' }, icon('close'));
  const dlg = h('dialog', { class: `sheet ${extra}`, 'aria-labelledby': titleId },
    h('div', { class: 'sheet-body' },
      h('div', { class: 'sheet-head' }, close, h('h2', { class: 'sheet-title', id: titleId }, title)),
      content));
  close.addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => dlg.remove());
  dlg.addEventListener('click', (ev) => { if (ev.target === dlg) dlg.close(); });
  document.body.appendChild(dlg);
  dlg.showModal();
  return dlg;
}

async function walletReady() {
  if (!wallet.balances) await loadWallet();
  if (!wallet.balances) { toast(wallet.error?.message || 'The wallet is not available.'); return false; }
  if (!wallet.pinSet) {
    toast('Set a payment PIN first');
    navigate('/me/wallet/pin');
    return false;
  }
  return true;
}

function noteRule(v) {
  if (/[\u0000-\u001f\u007f-\u009f]/.test(v)) return 'Use a single line without special characters.';
  if (Array.from(v).length > 140) return 'At most 140 characters.';
  return '';
}

export async function sendMoneySheet(conv) {
  if (!(await walletReady())) return;
  const other = otherMember(conv)?.user;
  let currency = currencies()[0];
  let key = idemKey();
  let lastIntent = '';
  const amount = amountField({ currency, label: 'Amount' });
  const avail = h('p', { class: 'field-hint' });
  const showAvail = () => { avail.textContent = `Balance: ${formatMoney(balanceOf(currency), currency)}`; };
  showAvail();
  const picker = currencyPicker(currencies(), currency, (c) => { currency = c; amount.setCurrency(c); showAvail(); });
  const note = field({ label: 'Note (optional)', name: 'note', rule: noteRule, maxChars: 140, placeholder: 'What is it for?' });
  const err = formError();
  const submit = button('Transfer', { type: 'submit', block: true });
  const form = h('form', { class: 'form send-money', novalidate: true },
    h('div', { class: 'send-to' }, avatar(other, 'md'), h('span', null, 'To ', h('strong', null, nameOf(other)))),
    err.el, picker, amount.el, avail, note.el, submit);
  const dlg = sheet('Send money', form);
  amount.input.focus();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const r = amount.parse();
    if (r.error) { amount.input.focus(); return; }
    if (!note.check()) { note.input.focus(); return; }
    if (r.minor > balanceOf(currency)) { amount.setError(`Your balance is ${formatMoney(balanceOf(currency), currency)}.`); return; }
    const text = note.input.value.trim();
    const intent = `${currency}|${r.minor}|${text}`;
    if (intent !== lastIntent) { key = idemKey(); lastIntent = intent; }
    const cur = currency;
    const res = await pinSheet({
      detail: `To ${nameOf(other)}`, amount: formatMoney(r.minor, cur),
      submit: (pin) => Plaza.sendTransfer({
        to_user_id: String(other.id), conversation_id: conv.id, amount: r.minor, currency: cur, pin, idempotency_key: key,
        ...(text ? { note: text } : {}),
      }),
    });
    if (!res) return;
    transfers.set(String(res.transfer.id), res.transfer);
    loadWallet();
    dlg.close();
  });
}

export async function redPacketSheet(conv) {
  if (!(await walletReady())) return;
  const group = conv.type === 'group';
  let currency = currencies()[0];
  let mode = 'random';
  let key = idemKey();
  let lastIntent = '';
  const amount = amountField({ currency, label: 'Total' });
  const count = group ? field({ label: 'Number of red packets', name: 'count', type: 'text', inputmode: 'numeric', value: '', placeholder: `Up to 100 · ${conv.members.length} in this group` }) : null;
  const greet = field({ label: 'Greeting', name: 'greeting', placeholder: 'Best wishes', maxChars: 60, rule: (v) => (Array.from(v).length > 60 ? 'At most 60 characters.' : noteRule(v)) });
  const totalLine = h('p', { class: 'packet-total' });
  const err = formError();
  const submit = button('Prepare red packet', { type: 'submit', block: true, variant: 'red' });
  const modeName = nextId('mode');
  const modes = group ? h('div', { class: 'segmented', role: 'radiogroup', 'aria-label': 'Amounts' },
    [['random', 'Random amounts'], ['equal', 'Same amount each']].map(([v, label]) => {
      const input = h('input', { type: 'radio', name: modeName, value: v, checked: v === mode, class: 'sr-only', id: `${modeName}-${v}` });
      input.addEventListener('change', () => { if (input.checked) { mode = v; relabel(); } });
      return h('label', { class: 'segment', for: `${modeName}-${v}` }, input, h('span', null, label));
    })) : null;
  const picker = currencyPicker(currencies(), currency, (c) => { currency = c; amount.setCurrency(c); paintTotal(); });

  function nShares() {
    if (!group) return { n: 1 };
    const v = count.input.value.trim();
    if (!/^\d{1,3}$/.test(v) || Number(v) < 1 || Number(v) > 100) return { error: 'Enter a number from 1 to 100.' };
    return { n: Number(v) };
  }
  // The total in minor units: the amount as typed, or each times count.
  function total() {
    const a = amount.parse();
    if (a.error) return a;
    const c = nShares();
    if (c.error) return c;
    const t = mode === 'equal' ? a.minor * c.n : a.minor;
    if (t < c.n) return { error: `Give each of the ${c.n} at least ${formatMoney(1, currency)}.` };
    return { minor: t, n: c.n };
  }
  function paintTotal() {
    const a = amount.input.value.trim() ? total() : { minor: 0 };
    clear(totalLine, formatMoney(a.minor || 0, currency));
  }
  function relabel() {
    amount.el.querySelector('.field-label').textContent = mode === 'equal' ? 'Amount each' : 'Total';
    paintTotal();
  }
  amount.input.addEventListener('input', paintTotal);
  if (count) count.input.addEventListener('input', paintTotal);

  const form = h('form', { class: 'form send-money', novalidate: true },
    err.el, picker, count ? count.el : null, modes, amount.el, greet.el, totalLine, submit);
  const dlg = sheet('Red packet', form, 'red-sheet');
  (count ? count.input : amount.input).focus();
  paintTotal();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.set('');
    if (count) {
      const c = nShares();
      count.setError(c.error || '');
      if (c.error) { count.input.focus(); return; }
    }
    const t = total();
    if (t.error) { amount.setError(t.error); amount.input.focus(); return; }
    if (!greet.check()) return;
    if (t.minor > balanceOf(currency)) { amount.setError(`Your balance is ${formatMoney(balanceOf(currency), currency)}.`); return; }
    const greeting = greet.input.value.trim();
    const intent = `${currency}|${t.minor}|${t.n}|${mode}|${greeting}`;
    if (intent !== lastIntent) { key = idemKey(); lastIntent = intent; }
    const cur = currency;
    const res = await pinSheet({
      detail: group ? `Red packet · ${t.n} share${t.n === 1 ? '' : 's'}` : 'Red packet', amount: formatMoney(t.minor, cur),
      submit: (pin) => Plaza.sendRedPacket(conv.id, {
        total: t.minor, count: t.n, mode: group ? mode : 'random', currency: cur, pin, idempotency_key: key,
        ...(greeting ? { greeting } : {}),
      }),
    });
    if (!res) return;
    loadWallet();
    dlg.close();
  });
}

export function cardContent(m, conv) {
  return m.type === 'transfer' ? transferCard(m, conv) : packetCard(m, conv);
}
