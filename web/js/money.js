// Money as integers of minor units: exact parsing of what people type, formatting in their locale, idempotency keys.
// No amount ever passes through a float: "12.34" becomes 1234 by string arithmetic.

// The server's ceiling for one amount (docs/api.md, Wallet).
export const AMOUNT_MAX = 1e12;

const digitsCache = new Map();

// Digits after the decimal point of the currency's minor unit (ISO 4217):
// 2 for USD and EUR, 0 for JPY, 3 for KWD. The browser's table is ISO's.
export function currencyDigits(currency) {
  let d = digitsCache.get(currency);
  if (d === undefined) {
    try {
      d = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
    } catch {
      d = 2;
    }
    digitsCache.set(currency, d);
  }
  return d;
}

// Minor units (an integer, or a decimal string of one) as an exact decimal
// string in major units: 1234 USD -> "12.34", -5 USD -> "-0.05", 1200 JPY -> "1200".
export function toDecimal(minor, currency) {
  const d = currencyDigits(currency);
  let s = String(minor);
  const neg = s.startsWith('-');
  if (neg) s = s.slice(1);
  if (!/^\d+$/.test(s)) return '0';
  if (d === 0) return (neg ? '-' : '') + s;
  s = s.padStart(d + 1, '0');
  return `${neg ? '-' : ''}${s.slice(0, -d)}.${s.slice(-d)}`;
}

const fmtCache = new Map();

function formatter(currency, sign) {
  const key = `${currency}|${sign}`;
  let f = fmtCache.get(key);
  if (!f) {
    const d = currencyDigits(currency);
    f = new Intl.NumberFormat(undefined, {
      style: 'currency', currency, minimumFractionDigits: d, maximumFractionDigits: d, signDisplay: sign,
    });
    fmtCache.set(key, f);
  }
  return f;
}

// "$12.34", "€0.50", "¥1,200" in the reader's locale. Intl formats the
// decimal string exactly (a string is not rounded through a double).
export function formatMoney(minor, currency, { sign = 'auto' } = {}) {
  return formatter(currency, sign).format(toDecimal(minor, currency));
}

// The amount without its symbol, for the big figures: "12.34".
export function formatNumber(minor, currency) {
  const parts = formatter(currency, 'auto').formatToParts(toDecimal(minor, currency));
  return parts.filter((p) => p.type !== 'currency' && p.type !== 'literal').map((p) => p.value).join('').trim();
}

export function currencySymbol(currency) {
  const part = formatter(currency, 'auto').formatToParts(0).find((p) => p.type === 'currency');
  return part ? part.value : currency;
}

// What a person typed ("12.34", "12", "0.5", ".5", "1,000.25") -> minor
// units, or {error} saying what is wrong. Group commas are allowed; a comma
// as the decimal separator ("12,34") is too, when it cannot be a group.
export function parseAmount(text, currency) {
  const d = currencyDigits(currency);
  let s = String(text ?? '').trim().replace(/[\s\u00a0\u202f]/g, '');
  if (!s) return { error: 'Enter an amount.' };
  if (!s.includes('.') && /^\d+,\d{1,3}$/.test(s) && !/^\d{1,3},\d{3}$/.test(s)) s = s.replace(',', '.');
  if (/,/.test(s)) {
    if (!/^\d{1,3}(,\d{3})+(\.\d*)?$/.test(s)) return { error: 'Enter a number like 12.34.' };
    s = s.replace(/,/g, '');
  }
  const m = /^(\d*)(?:\.(\d*))?$/.exec(s);
  if (!m || (m[1] === '' && !m[2])) return { error: 'Enter a number like 12.34.' };
  const whole = m[1] || '0';
  const frac = m[2] || '';
  if (frac.length > d) {
    return { error: d === 0 ? `${currency} has no decimal places.` : `At most ${d} digit${d === 1 ? '' : 's'} after the point.` };
  }
  const digits = (whole + frac.padEnd(d, '0')).replace(/^0+(?=\d)/, '');
  // 10^12 has 13 digits: compare as strings before any conversion.
  if (digits.length > 13 || (digits.length === 13 && digits > '1000000000000')) {
    return { error: `At most ${formatMoney(AMOUNT_MAX, currency)}.` };
  }
  const minor = Number(digits);
  if (minor <= 0) return { error: 'Enter an amount above zero.' };
  return { minor };
}

// A fresh idempotency key for one money-moving intent, kept across its retries.
export function idemKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}
