// Wallet state: balances and PIN status shared by the wallet screens and the chat's payment cards, reloaded after every movement.

import { Plaza } from './api.js';
import { emit } from './state.js';

export const wallet = {
  balances: null, // [{currency, available}] in the server's order
  pinSet: false,
  error: null,
  pending: null,
  rev: 0,
};

export function currencies() {
  return wallet.balances ? wallet.balances.map((b) => b.currency) : [];
}

export function balanceOf(currency) {
  const b = wallet.balances && wallet.balances.find((x) => x.currency === currency);
  return b ? b.available : 0;
}

// Concurrent reloads share one request.
export function loadWallet() {
  if (wallet.pending) return wallet.pending;
  wallet.pending = Plaza.wallet()
    .then((b) => {
      wallet.balances = Array.isArray(b.balances) ? b.balances : [];
      wallet.pinSet = !!b.pin_set;
      wallet.error = null;
    })
    .catch((e) => { wallet.error = e; })
    .finally(() => {
      wallet.pending = null;
      wallet.rev += 1;
      emit();
    });
  return wallet.pending;
}

export function resetWallet() {
  wallet.balances = null;
  wallet.pinSet = false;
  wallet.error = null;
  wallet.rev += 1;
}

// People named in history and on cards, fetched once per id.
const people = new Map();
export function person(id, onLoad) {
  const key = String(id);
  const got = people.get(key);
  if (got && !(got instanceof Promise)) return got;
  if (!got) {
    const p = Plaza.user(key).then((b) => { people.set(key, b.user || b); if (onLoad) onLoad(); })
      .catch(() => { people.delete(key); });
    people.set(key, p);
  }
  return null;
}
