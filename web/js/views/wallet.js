// Me -> Wallet: balances, top up, withdraw, payment PIN, transaction history and wallet settings.

import { h, clear, changeGate, nextId } from '../dom.js';
import { Plaza, downloadFile } from '../api.js';
import { icon } from '../icons.js';
import { topbar, group, row, tile, errorBox, loading, button, busy, field, formError, toast, emptyState } from '../ui.js';
import { goBack } from '../router.js';
import { formatMoney, toDecimal, idemKey } from '../money.js';
import { pinPad, pinSheet, amountField, currencyPicker, PIN_LENGTH } from '../pay.js';
import { wallet, loadWallet, currencies, balanceOf, person } from '../wallet.js';
import { checkPassword } from '../validate.js';

function nameOf(user) {
  return user ? user.display_name || user.username : '';
}

// ---------- home ----------

export function walletHome() {
  const body = h('div', { class: 'scroll' });
  const el = h('section', { class: 'screen wallet-screen' }, topbar({ title: 'Wallet', back: '/me' }), body);
  const gate = changeGate();
  let settings = null;
  let settingsError = null;
  let limits = null;
  let limitsError = null;
  let limitsRev = -1;

  // The allowance moves with every payment: it is fetched again whenever the
  // balances were (wallet.rev), and not more often.
  async function loadLimits() {
    limitsRev = wallet.rev;
    try {
      limits = await Plaza.limits();
      limitsError = null;
    } catch (e) {
      limitsError = e;
    }
    update(true);
  }

  function limitsRow() {
    if (!limits) return limitsError ? errorBox(limitsError, loadLimits) : null;
    const list = limits.limits || [];
    const capped = list.filter((l) => l.daily != null);
    const sub = capped.length
      ? `${capped.map((l) => formatMoney(l.remaining, l.currency)).join(' · ')} left today`
      : 'No daily limit on what you send.';
    return row({
      lead: tile('shield', '#7a5fe0'), title: 'Daily limit',
      subtitle: h('span', { class: 'limits-left' }, sub),
      label: `Daily limit: ${sub}`,
    });
  }

  async function loadSettings() {
    try {
      settings = await Plaza.walletSettings();
      settingsError = null;
    } catch (e) {
      settingsError = e;
    }
    update(true);
  }

  function balanceCard() {
    const list = wallet.balances;
    return h('section', { class: 'wallet-card', 'aria-label': 'Balances' },
      h('p', { class: 'wallet-card-label' }, icon('wallet'), h('span', null, 'Balance')),
      h('ul', { class: `wallet-balances wallet-balances-${Math.min(list.length, 3)}` },
        list.map((b) => h('li', { class: 'wallet-balance', dataset: { currency: b.currency } },
          h('span', { class: 'wallet-balance-cur' }, b.currency),
          h('span', { class: 'wallet-balance-amount' }, formatMoney(b.available, b.currency))))),
      h('div', { class: 'wallet-actions' },
        h('a', { class: 'wallet-action', href: '/me/wallet/topup' }, icon('topup'), h('span', null, 'Top up')),
        h('a', { class: 'wallet-action', href: '/me/wallet/withdraw' }, icon('withdraw'), h('span', null, 'Withdraw'))));
  }

  function autoAcceptRow() {
    if (!settings) return settingsError ? errorBox(settingsError, loadSettings) : null;
    const id = 'auto-accept';
    const sw = h('input', { type: 'checkbox', class: 'switch', id, role: 'switch', checked: !!settings.auto_accept_transfers });
    sw.addEventListener('change', async () => {
      const want = sw.checked;
      sw.disabled = true;
      try {
        settings = await Plaza.updateWalletSettings({ auto_accept_transfers: want });
        toast(want ? 'Transfers will be accepted automatically' : 'You will accept each transfer yourself');
      } catch (e) {
        sw.checked = !want;
        toast(e.message);
      } finally {
        sw.disabled = false;
      }
    });
    return h('label', { class: 'row row-setting', for: id },
      h('span', { class: 'row-lead' }, tile('check', '#2782d7')),
      h('span', { class: 'row-main' }, h('span', { class: 'row-title' }, 'Accept transfers automatically'),
        h('span', { class: 'row-sub' }, 'Money sent to you lands in your balance without a tap.')),
      sw);
  }

  function update(force = false) {
    if (wallet.balances && limitsRev !== wallet.rev && !wallet.pending) loadLimits();
    if (!gate([wallet.rev, settings, settingsError?.message, limits, limitsError?.message]) && !force) return;
    if (!wallet.balances) {
      clear(body, wallet.error ? errorBox(wallet.error, loadWallet) : loading('Loading your wallet…'));
      return;
    }
    clear(body,
      wallet.error ? errorBox(wallet.error, loadWallet) : null,
      balanceCard(),
      group(null,
        row({ href: '/me/wallet/history', lead: tile('list', '#f0883e'), title: 'Transactions' }),
        row({ href: '/me/wallet/statements', lead: tile('file', '#2782d7'), title: 'Monthly statements' }),
        limitsRow(),
        row({
          href: '/me/wallet/pin', lead: tile('lock', '#07c160'), title: wallet.pinSet ? 'Change payment PIN' : 'Set payment PIN',
          meta: wallet.pinSet ? null : h('span', { class: 'pill pill-soon' }, 'Not set'),
        })),
      group(null, autoAcceptRow()));
  }

  loadWallet();
  loadSettings();
  update(true);
  return { el, update, title: 'Wallet' };
}

// ---------- top up and withdraw ----------

function moneyForm({ kind }) {
  const withdraw = kind === 'withdraw';
  const title = withdraw ? 'Withdraw' : 'Top up';
  const body = h('div', { class: 'scroll' });
  const el = h('section', { class: 'screen' }, topbar({ title, back: '/me/wallet' }), body);
  let built = false;
  let currency = null;
  // One key per intent: a retry after a network failure sends the same key,
  // so the money moves once; a changed amount or currency is a new intent.
  let key = idemKey();
  let lastIntent = '';

  function build() {
    const list = currencies();
    currency = currency && list.includes(currency) ? currency : list[0];
    const amount = amountField({ currency, label: withdraw ? 'Amount to withdraw' : 'Amount to add' });
    const avail = h('p', { class: 'field-hint wallet-available' });
    const err = formError();
    function showAvail() {
      if (!withdraw) { avail.hidden = true; return; }
      const all = h('button', { type: 'button', class: 'link-btn' }, 'Withdraw all');
      all.addEventListener('click', () => {
        const a = balanceOf(currency);
        amount.input.value = a ? toDecimal(a, currency) : '';
        amount.input.focus();
      });
      clear(avail, `Available: ${formatMoney(balanceOf(currency), currency)}`, balanceOf(currency) > 0 ? ' · ' : null,
        balanceOf(currency) > 0 ? all : null);
    }
    const picker = currencyPicker(list, currency, (c) => { currency = c; amount.setCurrency(c); showAvail(); });
    const submit = button(title, { type: 'submit', block: true });
    const note = h('p', { class: 'form-note' }, withdraw
      ? 'The money is paid out to your account with the payment provider. This server uses a sandbox provider: no real money moves.'
      : 'Paid from your account with the payment provider. This server uses a sandbox provider: no real money moves.');
    const form = h('form', { class: 'card form money-form', novalidate: true },
      err.el, picker ? h('div', { class: 'field' }, h('span', { class: 'field-label' }, 'Currency'), picker) : null,
      amount.el, avail, submit, note);
    showAvail();
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const r = amount.parse();
      if (r.error) { amount.input.focus(); return; }
      if (withdraw && r.minor > balanceOf(currency)) {
        amount.setError(`You have ${formatMoney(balanceOf(currency), currency)} available.`);
        return;
      }
      const intent = `${currency}|${r.minor}`;
      if (intent !== lastIntent) { key = idemKey(); lastIntent = intent; }
      err.set('');
      const cur = currency;
      if (withdraw) {
        if (!wallet.pinSet) { err.set('Set a payment PIN first: it guards every withdrawal.'); return; }
        const res = await pinSheet({
          title: 'Enter payment PIN', detail: 'Withdraw', amount: formatMoney(r.minor, cur),
          submit: (pin) => Plaza.withdraw(r.minor, cur, pin, key),
        });
        if (!res) return;
        done(res.withdrawal, r.minor, cur, err);
        return;
      }
      await busy(submit, async () => {
        try {
          const res = await Plaza.topup(r.minor, cur, key);
          done(res.topup, r.minor, cur, err);
        } catch (e) {
          err.set(e.message);
        }
      });
    });
    return form;
  }

  function done(f, minor, cur, err) {
    loadWallet();
    if (f && f.status === 'failed') {
      key = idemKey();
      lastIntent = '';
      err.set(`The provider refused: ${f.failure_reason || 'no reason given'}. No money moved.`);
      return;
    }
    toast(withdraw ? `${formatMoney(minor, cur)} withdrawn` : `${formatMoney(minor, cur)} added`);
    goBack('/me/wallet');
  }

  function update() {
    if (built) return;
    if (!wallet.balances) { clear(body, wallet.error ? errorBox(wallet.error, loadWallet) : loading('Loading…')); return; }
    built = true;
    clear(body, build());
  }
  if (!wallet.balances) loadWallet();
  update();
  return { el, update, title };
}

export const topupView = () => moneyForm({ kind: 'topup' });
export const withdrawView = () => moneyForm({ kind: 'withdraw' });

// ---------- payment PIN ----------

export function pinView() {
  const body = h('div', { class: 'scroll' });
  const el = h('section', { class: 'screen' }, topbar({ title: 'Payment PIN', back: '/me/wallet' }), body);
  let step = 'new';
  let first = '';
  const changing = () => wallet.pinSet;

  function render() {
    if (!wallet.balances) { clear(body, wallet.error ? errorBox(wallet.error, loadWallet) : loading('Loading…')); return; }
    const heading = h('h2', { class: 'pin-title' });
    const text = h('p', { class: 'pin-text' });
    const msg = h('p', { class: 'sheet-error', role: 'alert' });
    if (step === 'new' || step === 'confirm') {
      const pad = pinPad({
        label: step === 'new' ? 'New payment PIN' : 'The same PIN again',
        onChange: () => { msg.textContent = ''; },
        onFull: (pin) => {
          if (step === 'new') {
            if (/^(\d)\1{5}$/.test(pin) || '0123456789'.includes(pin) || '9876543210'.includes(pin)) {
              msg.textContent = 'Too easy to guess: avoid repeated or consecutive digits.';
              pad.clear();
              return;
            }
            first = pin; step = 'confirm'; render();
          } else if (pin !== first) {
            first = ''; step = 'new'; render();
            toast('The PINs did not match. Start again.');
          } else {
            step = 'password'; render();
          }
        },
      });
      heading.textContent = step === 'new' ? (changing() ? 'Choose a new payment PIN' : 'Set a payment PIN') : 'Enter it again';
      text.textContent = step === 'new'
        ? `${PIN_LENGTH} digits that confirm every payment, transfer and withdrawal. Don't use your phone number or birthday.`
        : 'To make sure you typed what you meant.';
      clear(body, h('div', { class: 'card pin-card' }, heading, text, pad.el, msg, pad.keypad));
      pad.focus();
      return;
    }
    const pw = field({
      label: 'Password', name: 'password', type: 'password', autocomplete: 'current-password', rule: checkPassword, reveal: true,
      hint: 'Your account password confirms that it is you.',
    });
    const err = formError();
    const save = button(changing() ? 'Change PIN' : 'Set PIN', { type: 'submit', block: true });
    const again = h('button', { type: 'button', class: 'link-btn' }, 'Choose another PIN');
    again.addEventListener('click', () => { first = ''; step = 'new'; render(); });
    const f = h('form', { class: 'card form', novalidate: true },
      h('h2', { class: 'pin-title' }, 'Confirm with your password'), err.el, pw.el, save, h('p', { class: 'form-note' }, again));
    f.addEventListener('submit', (ev) => {
      ev.preventDefault();
      pw.touch();
      if (!pw.check()) { pw.input.focus(); return; }
      err.set('');
      busy(save, async () => {
        try {
          await Plaza.setPin(first, pw.input.value);
          const was = changing();
          await loadWallet();
          toast(was ? 'Payment PIN changed' : 'Payment PIN set');
          goBack('/me/wallet');
        } catch (e) {
          err.set(e.code === 'invalid_credentials' ? 'That password is not right.' : e.message);
          pw.input.select();
        }
      });
    });
    clear(body, f);
    pw.input.focus();
  }

  if (!wallet.balances) loadWallet().then(() => render());
  render();
  return { el, title: 'Payment PIN' };
}

// ---------- history ----------

const TYPE_LABEL = {
  topup: 'Top-up',
  withdrawal: 'Withdrawal',
  withdrawal_refund: 'Withdrawal refunded',
  transfer: 'Transfer sent',
  transfer_accept: 'Transfer received',
  transfer_return: 'Transfer returned',
  transfer_expire: 'Transfer refunded',
  red_packet: 'Red packet sent',
  red_packet_claim: 'Red packet received',
  red_packet_refund: 'Red packet refunded',
  merchant_payment: 'Payment',
  merchant_refund: 'Refund',
};

const TYPE_ICON = {
  topup: ['topup', '#07c160'],
  withdrawal: ['withdraw', '#2782d7'],
  withdrawal_refund: ['undo', '#2782d7'],
  red_packet: ['red-packet', '#e6453a'],
  red_packet_claim: ['red-packet', '#e6453a'],
  red_packet_refund: ['red-packet', '#e6453a'],
  merchant_payment: ['qr', '#2782d7'],
  merchant_refund: ['undo', '#2782d7'],
};

export function txTitle(tx) {
  return TYPE_LABEL[tx.type] || tx.type.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

function txTime(when) {
  const d = new Date(when);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
}

// The history's type filter: what people look for, each the server's types it covers.
const TYPE_FILTERS = [
  ['', 'All types'],
  ['topup', 'Top-ups'],
  ['withdrawal,withdrawal_refund', 'Withdrawals'],
  ['transfer,transfer_accept,transfer_return,transfer_expire', 'Transfers'],
  ['red_packet,red_packet_claim,red_packet_refund', 'Red packets'],
  ['merchant_payment,merchant_refund', 'Payments'],
];

function selectField(label, options, value, onPick) {
  const id = nextId('sel');
  const sel = h('select', { id, class: 'input select' },
    options.map(([v, text]) => h('option', { value: v, selected: v === value || undefined }, text)));
  sel.addEventListener('change', () => onPick(sel.value));
  return h('div', { class: 'filter' }, h('label', { class: 'filter-label', for: id }, label), sel);
}

export function historyView() {
  const list = h('div', { class: 'group-body tx-list' });
  const foot = h('div', { class: 'tx-foot' });
  const filters = { currency: '', type: '' };
  const filterBar = h('div', { class: 'tx-filters', role: 'group', 'aria-label': 'Filters' });
  const body = h('div', { class: 'scroll' }, filterBar, h('section', { class: 'group' }, list), foot);
  const csv = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Download CSV', title: 'Download CSV' }, icon('arrow-down'));
  const el = h('section', { class: 'screen' }, topbar({ title: 'Transactions', back: '/me/wallet', actions: [csv] }), body);
  let items = [];
  let next = null;
  let done = false;
  let busyLoad = false;
  let error = null;
  let alive = true;
  // Bumped by every filter change, so that a page answered for the old
  // filters is dropped rather than mixed into the new list.
  let gen = 0;

  function buildFilters() {
    const curs = currencies();
    clear(filterBar,
      curs.length > 1 ? selectField('Currency', [['', 'All currencies'], ...curs.map((c) => [c, c])], filters.currency, (v) => refilter('currency', v)) : null,
      selectField('Type', TYPE_FILTERS, filters.type, (v) => refilter('type', v)));
  }

  function refilter(k, v) {
    filters[k] = v;
    gen += 1;
    items = [];
    next = null;
    done = false;
    busyLoad = false;
    error = null;
    paint();
    more();
  }

  csv.addEventListener('click', async () => {
    if (csv.disabled) return;
    csv.disabled = true;
    try {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
      const qs = q.toString();
      await downloadFile(`/v1/wallet/transactions.csv${qs ? `?${qs}` : ''}`, 'plaza-transactions.csv');
      toast('CSV downloaded');
    } catch (e) {
      toast(e.message);
    } finally {
      csv.disabled = false;
    }
  });

  function txRow(tx) {
    const [ic, color] = TYPE_ICON[tx.type] || ['transfer', '#f0883e'];
    let sub = txTime(tx.created_at);
    if (tx.counterparty_id) {
      const u = person(tx.counterparty_id, () => { if (alive) paint(); });
      if (u) sub = `${nameOf(u)} · ${sub}`;
    }
    const amt = h('span', { class: `tx-amount${tx.amount > 0 ? ' is-in' : ''}` }, formatMoney(tx.amount, tx.currency, { sign: 'exceptZero' }));
    return h('div', { class: 'row tx-row', dataset: { type: tx.type } },
      h('span', { class: 'row-lead' }, tile(ic, color)),
      h('span', { class: 'row-main' }, h('span', { class: 'row-title' }, txTitle(tx)), h('span', { class: 'row-sub' }, sub)),
      amt);
  }

  function paint() {
    clear(list, items.map(txRow));
    list.parentElement.hidden = items.length === 0;
    if (error) clear(foot, errorBox(error, more));
    else if (!done) clear(foot, loading('Loading…'));
    else if (items.length === 0 && (filters.currency || filters.type)) clear(foot, emptyState({ iconName: 'list', title: 'Nothing matches', text: 'No transactions of this kind yet.' }));
    else if (items.length === 0) clear(foot, emptyState({ iconName: 'list', title: 'No transactions yet', text: 'Top-ups, transfers and payments show up here.' }));
    else clear(foot, h('p', { class: 'list-foot' }, 'That’s everything.'));
  }

  async function more() {
    if (busyLoad || done) return;
    busyLoad = true;
    error = null;
    paint();
    const my = gen;
    try {
      const b = await Plaza.transactions(next, filters);
      if (!alive || my !== gen) return;
      items = items.concat(b.transactions || []);
      next = b.next_before || null;
      done = !next;
    } catch (e) {
      if (my !== gen) return;
      error = e;
    } finally {
      if (my === gen) busyLoad = false;
    }
    if (!alive) return;
    paint();
    // A short first page may not fill the screen: the observer does not
    // fire again for a sentinel that never left view, so ask here.
    if (!done && !error && foot.getBoundingClientRect().top < body.getBoundingClientRect().bottom + 200) more();
  }

  const io = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) more();
  }, { root: body, rootMargin: '200px' });
  io.observe(foot);
  if (wallet.balances) buildFilters();
  else loadWallet().then(() => { if (alive) buildFilters(); });
  paint();
  more();
  return { el, title: 'Transactions', destroy() { alive = false; io.disconnect(); } };
}

// ---------- monthly statements ----------

function utcMonth(d) {
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

function shiftMonth(month, by) {
  const [y, m] = month.split('-').map(Number);
  return utcMonth(new Date(Date.UTC(y, m - 1 + by, 1)));
}

export function statementView() {
  const now = utcMonth(new Date());
  let month = now;
  const id = nextId('month');
  const input = h('input', { id, class: 'input', type: 'month', max: now, min: '1970-01', value: month });
  const prev = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Previous month' }, icon('back'));
  const next = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Next month' }, icon('chevron'));
  const csv = button('Download CSV', { variant: 'ghost', block: true });
  const out = h('div', { class: 'statement-body', 'aria-live': 'polite' });
  const body = h('div', { class: 'scroll' },
    h('div', { class: 'card statement-pick' },
      h('label', { class: 'field-label', for: id }, 'Month (UTC)'),
      h('div', { class: 'statement-pick-row' }, prev, input, next)),
    out, h('div', { class: 'pad' }, csv));
  const el = h('section', { class: 'screen' }, topbar({ title: 'Statements', back: '/me/wallet' }), body);
  let alive = true;
  let seq = 0;

  function label(m) {
    const [y, mo] = m.split('-').map(Number);
    return new Date(Date.UTC(y, mo - 1, 1)).toLocaleDateString(undefined, { month: 'long', year: 'numeric', timeZone: 'UTC' });
  }

  function line(name, minor, cur, cls) {
    return h('div', { class: `statement-line${cls ? ` ${cls}` : ''}${minor === 0 ? ' is-zero' : ''}` },
      h('dt', null, name), h('dd', null, formatMoney(minor, cur, cls === 'is-in' || cls === 'is-out' ? { sign: 'exceptZero' } : {})));
  }

  async function load() {
    const my = ++seq;
    prev.disabled = month <= '1970-01';
    next.disabled = month >= now;
    input.value = month;
    csv.disabled = true;
    clear(out, loading('Loading the statement…'));
    try {
      const b = await Plaza.statement(month);
      if (!alive || my !== seq) return;
      const st = b.statement;
      csv.disabled = false;
      clear(out, h('h2', { class: 'statement-title' }, label(st.month)),
        (st.currency || []).map((c) => h('section', { class: 'card statement-card', dataset: { currency: c.currency }, 'aria-label': `${c.currency} statement` },
          h('p', { class: 'statement-cur' }, c.currency,
            h('span', { class: 'statement-count' }, c.count === 1 ? '1 transaction' : `${c.count} transactions`)),
          h('dl', { class: 'statement-lines' },
            line('Opening balance', c.opening_balance, c.currency),
            line('Money in', c.credits, c.currency, 'is-in'),
            line('Money out', -c.debits, c.currency, 'is-out'),
            line('Closing balance', c.closing_balance, c.currency, 'is-total')))),
        month === now ? h('p', { class: 'list-foot' }, 'This month is not over: the closing balance is your balance now.') : null);
    } catch (e) {
      if (!alive || my !== seq) return;
      clear(out, errorBox(e, load));
    }
  }

  input.addEventListener('change', () => {
    if (!/^\d{4}-\d{2}$/.test(input.value)) { input.value = month; return; }
    month = input.value > now ? now : input.value;
    load();
  });
  prev.addEventListener('click', () => { month = shiftMonth(month, -1); load(); });
  next.addEventListener('click', () => { if (month < now) { month = shiftMonth(month, 1); load(); } });
  csv.addEventListener('click', () => busy(csv, async () => {
    try {
      await downloadFile(`/v1/wallet/statements/${month}.csv`, `plaza-statement-${month}.csv`);
      toast('Statement downloaded');
    } catch (e) {
      toast(e.message);
    }
  }));
  load();
  return { el, title: 'Statements', destroy() { alive = false; } };
}
