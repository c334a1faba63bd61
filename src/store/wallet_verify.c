/* SQL and passes of `plazad ledger verify`: the wallet ledger's invariants in one read of each large table. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "plaza/store_wallet_verify.h"
#include "store/db.h"

/* A ledger of ten million transfers holds twenty million transactions and
 * forty million entries. A GROUP BY per invariant would sort or seek its way
 * through them once per check; here entries and transactions (in id order)
 * are merged in one pass, and the per-transaction, per-account and per-day
 * sums are kept in C. Small tables keep their one query each. */

/* ---- growing arrays and an (int64, int64) -> index map ---- */

/* Makes room for need elements of size in *p (capacity *cap); false when
 * memory runs out, which the caller turns into PZ_ENOMEM: a ledger's
 * accounts are bounded by nothing but its users. */
static bool grow(void *p, size_t *cap, size_t need, size_t size) {
  void **arr = p;
  if (need <= *cap) return true;
  size_t n = *cap ? *cap : 16;
  while (n < need)
    n *= 2;
  void *q = realloc(*arr, n * size);
  if (q == NULL) return false;
  *arr = q;
  *cap = n;
  return true;
}

#define NONE UINT32_MAX

typedef struct {
  int64_t a, b;
  uint32_t idx; /* the value + 1; 0 marks a free slot */
} slot_t;

typedef struct {
  slot_t *slots;
  size_t cap; /* a power of two, or 0 */
  size_t n;
} map_t;

static size_t slot_of(int64_t a, int64_t b, size_t mask) {
  uint64_t x = (uint64_t)a * 0x9e3779b97f4a7c15u ^ ((uint64_t)b + 0x632be59bd9b4e019u);
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9u;
  x ^= x >> 29;
  return (size_t)x & mask;
}

static uint32_t map_find(const map_t *m, int64_t a, int64_t b) {
  if (m->cap == 0) return NONE;
  for (size_t i = slot_of(a, b, m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    const slot_t *s = &m->slots[i];
    if (s->idx == 0) return NONE;
    if (s->a == a && s->b == b) return s->idx - 1;
  }
}

/* Adds a key that is not in m yet. */
static bool map_add(map_t *m, int64_t a, int64_t b, uint32_t idx) {
  if ((m->n + 1) * 2 > m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    slot_t *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL) return false;
    for (size_t i = 0; i < m->cap; i++) {
      if (m->slots[i].idx == 0) continue;
      size_t j = slot_of(m->slots[i].a, m->slots[i].b, cap - 1);
      while (slots[j].idx)
        j = (j + 1) & (cap - 1);
      slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
  }
  size_t i = slot_of(a, b, m->cap - 1);
  while (m->slots[i].idx)
    i = (i + 1) & (m->cap - 1);
  m->slots[i] = (slot_t){a, b, idx + 1};
  m->n++;
  return true;
}

/* ---- the state of one verify ---- */

typedef struct {
  char *text; /* NUL-terminated; len bytes (a hand-edited row could hold a NUL) */
  size_t len;
} currency_t;

typedef struct {
  int64_t id, user_id, balance;
  int64_t sum; /* of its entries */
  uint32_t cur;
} account_t;

/* A user's debits in one currency against the counter of wallet_daily_out. */
typedef struct {
  int64_t user_id;
  uint32_t cur;
  bool counter;                 /* the counter's row exists */
  bool debits;                  /* debits of counted kinds exist */
  int64_t day, amount;          /* the counter's */
  int64_t on_day;               /* the debits of the counter's day */
  int64_t last_day, last_total; /* the last day with debits, and theirs */
} daily_t;

typedef struct {
  uint32_t cur;
  int64_t sum;
} txn_sum_t;

/* A violation about a transaction: unbalanced (in currency cur, by a) or short (of a entries). */
typedef struct {
  int kind;
  uint32_t cur;
  int64_t id, a;
} held_t;

typedef struct {
  pz_db_t *db;
  const char *exempt;
  size_t exempt_len;
  pz_store_wallet_violation_cb cb;
  void *arg;
  pz_err_t *err;

  currency_t *curs;
  size_t n_curs, cap_curs;
  map_t cur_map; /* (hash, n-th string of that hash) -> currency */

  account_t *accts; /* in id order */
  size_t n_accts, cap_accts;
  map_t acct_map; /* (id, 0) -> account */

  daily_t *days;
  size_t n_days, cap_days;
  map_t day_map; /* (user_id, currency) -> daily */

  /* Transaction kinds seen, and whether their debits count. */
  struct {
    char name[32];
    size_t len;
    bool counts;
  } kinds[16];
  unsigned n_kinds;

  txn_sum_t *grp; /* the sums of one transaction's entries, by currency */
  size_t cap_grp;

  /* While the pass reads entries in rowid order, what it finds about
   * transactions waits here: should it have to start over in key order,
   * nothing may have been said twice. */
  bool holding;
  held_t *held;
  size_t n_held, cap_held;
} verify_t;

static int no_memory(verify_t *v) { return pz_err_set(v->err, PZ_ENOMEM, NULL, "ledger verify ran out of memory"); }

/* SQLite's sum() fails on an overflow; so does this. */
static bool add(int64_t *acc, int64_t x) { return !__builtin_add_overflow(*acc, x, acc); }

static int overflow(verify_t *v) {
  return pz_err_set(v->err, PZ_EIO, NULL, "a sum of ledger amounts overflows 64 bits");
}

static uint64_t text_hash(const unsigned char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ s[i]) * 0x100000001b3u;
  return h;
}

/* The index of column i's text among the currencies, added if new. */
static int currency_of(verify_t *v, sqlite3_stmt *st, int i, uint32_t *out) {
  const unsigned char *s = sqlite3_column_text(st, i);
  size_t n = s ? (size_t)sqlite3_column_bytes(st, i) : 0;
  uint64_t h = text_hash(s, n);
  /* Strings of equal hash take the keys (h, 0), (h, 1)...: compared, never trusted. */
  int64_t k = 0;
  for (uint32_t c; (c = map_find(&v->cur_map, (int64_t)h, k)) != NONE; k++) {
    if (v->curs[c].len == n && (n == 0 || memcmp(v->curs[c].text, s, n) == 0)) {
      *out = c;
      return 0;
    }
  }
  if (!grow(&v->curs, &v->cap_curs, v->n_curs + 1, sizeof(*v->curs))) return no_memory(v);
  char *text = malloc(n + 1);
  if (text == NULL) return no_memory(v);
  if (n) memcpy(text, s, n);
  text[n] = '\0';
  v->curs[v->n_curs] = (currency_t){text, n};
  if (!map_add(&v->cur_map, (int64_t)h, k, (uint32_t)v->n_curs)) return no_memory(v);
  *out = (uint32_t)v->n_curs++;
  return 0;
}

static void copy_text(char *dst, size_t cap, const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n >= cap) n = cap - 1;
  if (n) memcpy(dst, s, n);
  dst[n] = '\0';
}

static int report(verify_t *v, int kind, int64_t id, int64_t user_id, const char *currency, int64_t a, int64_t b) {
  pz_wallet_violation_t x = {.kind = kind, .id = id, .user_id = user_id, .a = a, .b = b};
  copy_text(x.currency, sizeof(x.currency), currency);
  return v->cb(v->arg, &x, v->err);
}

static void verify_free(verify_t *v) {
  for (size_t i = 0; i < v->n_curs; i++)
    free(v->curs[i].text);
  free(v->curs);
  free(v->cur_map.slots);
  free(v->accts);
  free(v->acct_map.slots);
  free(v->days);
  free(v->day_map.slots);
  free(v->grp);
  free(v->held);
}

/* ---- loading accounts and daily counters ---- */

static const char SQL_ACCOUNTS[] =
    "SELECT id, coalesce(user_id, 0), currency, balance FROM wallet_accounts ORDER BY id";
static const char SQL_DAILY[] = "SELECT user_id, currency, day, amount FROM wallet_daily_out";

static int load_accounts(verify_t *v) {
  sqlite3_stmt *st = pz__db_stmt(v->db, SQL_ACCOUNTS, v->err);
  if (st == NULL) return v->err->code;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (!grow(&v->accts, &v->cap_accts, v->n_accts + 1, sizeof(*v->accts))) return no_memory(v);
    account_t *a = &v->accts[v->n_accts];
    *a = (account_t){.id = sqlite3_column_int64(st, 0),
                     .user_id = sqlite3_column_int64(st, 1),
                     .balance = sqlite3_column_int64(st, 3)};
    int crc = currency_of(v, st, 2, &a->cur);
    if (crc < 0) return crc;
    if (!map_add(&v->acct_map, a->id, 0, (uint32_t)v->n_accts)) return no_memory(v);
    v->n_accts++;
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(v->db, rc, v->err);
}

static int daily_get(verify_t *v, int64_t user_id, uint32_t cur, daily_t **out) {
  uint32_t i = map_find(&v->day_map, user_id, cur);
  if (i == NONE) {
    if (!grow(&v->days, &v->cap_days, v->n_days + 1, sizeof(*v->days))) return no_memory(v);
    i = (uint32_t)v->n_days;
    v->days[i] = (daily_t){.user_id = user_id, .cur = cur};
    if (!map_add(&v->day_map, user_id, cur, i)) return no_memory(v);
    v->n_days++;
  }
  *out = &v->days[i];
  return 0;
}

static int load_daily(verify_t *v) {
  sqlite3_stmt *st = pz__db_stmt(v->db, SQL_DAILY, v->err);
  if (st == NULL) return v->err->code;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    uint32_t cur;
    daily_t *d;
    int lrc = currency_of(v, st, 1, &cur);
    if (lrc == 0) lrc = daily_get(v, sqlite3_column_int64(st, 0), cur, &d);
    if (lrc < 0) return lrc;
    /* (user_id, currency) is the table's primary key: one row each. */
    d->counter = true;
    d->day = sqlite3_column_int64(st, 2);
    d->amount = sqlite3_column_int64(st, 3);
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(v->db, rc, v->err);
}

/* ---- the merged pass over entries and transactions ---- */

/* Entries are written in the order of their transactions' ids (one writer
 * thread takes each id just before it writes the entries), so the table in
 * rowid order, read with no index, is in transaction order too. Should a
 * ledger break that (a clock set back across a restart), the pass starts
 * over in the order of the primary key, which costs a seek per entry. */
static const char SQL_ENTRIES_BY_ROWID[] =
    "SELECT txn_id, account_id, user_id, amount FROM wallet_entries ORDER BY rowid";
static const char SQL_ENTRIES_BY_TXN[] =
    "SELECT txn_id, account_id, user_id, amount FROM wallet_entries ORDER BY txn_id";
static const char SQL_TXNS[] = "SELECT id, created_at, kind FROM wallet_txns ORDER BY id";
/* Held violations at most before the pass gives up holding and starts over. */
#define HELD_MAX 65536
#define START_OVER 1

/* Whether debits of the transaction under ts count against the daily
 * limit: its kind is not in exempt, as instr(exempt, ',' || kind || ',')
 * would say. Kinds are few, so each is looked up in exempt once. */
static bool kind_counts(verify_t *v, sqlite3_stmt *ts) {
  if (v->exempt_len == 0) return true;
  const char *k = (const char *)sqlite3_column_text(ts, 2);
  size_t n = k ? (size_t)sqlite3_column_bytes(ts, 2) : 0;
  for (unsigned i = 0; i < v->n_kinds; i++)
    if (v->kinds[i].len == n && memcmp(v->kinds[i].name, k, n) == 0) return v->kinds[i].counts;
  bool exempt = false;
  const char *end = v->exempt + v->exempt_len;
  for (const char *p = v->exempt, *q; !exempt && p < end && (q = memmem(p, (size_t)(end - p), k ? k : "", n));
       p = q + 1)
    exempt = q > v->exempt && q[-1] == ',' && q + n < end && q[n] == ',';
  if (n < sizeof(v->kinds[0].name) && v->n_kinds < sizeof(v->kinds) / sizeof(v->kinds[0])) {
    if (n) memcpy(v->kinds[v->n_kinds].name, k, n);
    v->kinds[v->n_kinds].len = n;
    v->kinds[v->n_kinds++].counts = !exempt;
  }
  return !exempt;
}

/* A debit of amount (> 0) by user_id in currency cur on day. */
static int daily_debit(verify_t *v, int64_t user_id, uint32_t cur, int64_t day, int64_t amount) {
  daily_t *d;
  int rc = daily_get(v, user_id, cur, &d);
  if (rc < 0) return rc;
  if (d->counter && day == d->day && !add(&d->on_day, amount)) return overflow(v);
  if (!d->debits || day > d->last_day) {
    d->debits = true;
    d->last_day = day;
    d->last_total = amount;
  } else if (day == d->last_day && !add(&d->last_total, amount)) {
    return overflow(v);
  }
  return 0;
}

/* Currencies in the order of SQLite's BINARY collation. */
static int currency_cmp(const verify_t *v, uint32_t a, uint32_t b) {
  const currency_t *ca = &v->curs[a], *cb = &v->curs[b];
  int c = memcmp(ca->text, cb->text, ca->len < cb->len ? ca->len : cb->len);
  return c ? c : (ca->len > cb->len) - (ca->len < cb->len);
}

static int sum_by_currency(const void *x, const void *y, void *arg) {
  return currency_cmp(arg, ((const txn_sum_t *)x)->cur, ((const txn_sum_t *)y)->cur);
}

static int txn_report(verify_t *v, int kind, int64_t id, uint32_t cur, int64_t a) {
  if (!v->holding) return report(v, kind, id, 0, kind == PZ_VERIFY_TXN_UNBALANCED ? v->curs[cur].text : "", a, 0);
  if (v->n_held == HELD_MAX) return START_OVER;
  if (!grow(&v->held, &v->cap_held, v->n_held + 1, sizeof(*v->held))) return no_memory(v);
  v->held[v->n_held++] = (held_t){kind, cur, id, a};
  return 0;
}

/* The entries of transaction txn_id, from the row es is on to the last of
 * them (es is left on the next transaction's first entry, *erc its step's
 * result). ts is on the transaction's row, or NULL when wallet_txns has
 * none: that is a violation of its own (the schema does not enforce it:
 * migration 18), and its entries still count in balances and sums, as a
 * missing transaction row cannot make money appear. An entry of no
 * account is a violation, and in no account's sum nor any currency. */
static int txn_entries(verify_t *v, sqlite3_stmt *es, int *erc, int64_t txn_id, sqlite3_stmt *ts) {
  size_t n_grp = 0;
  int64_t n_entries = 0, day = 0;
  int counts = -1; /* whether its user debits count against the daily limit: looked up at the first */
  do {
    n_entries++;
    int64_t acct_id = sqlite3_column_int64(es, 1);
    uint32_t ai = map_find(&v->acct_map, acct_id, 0);
    if (ai == NONE) {
      int rc = txn_report(v, PZ_VERIFY_ENTRY_ACCOUNT, txn_id, 0, acct_id);
      if (rc != 0) return rc;
    } else {
      account_t *a = &v->accts[ai];
      int64_t amount = sqlite3_column_int64(es, 3);
      if (!add(&a->sum, amount)) return overflow(v);
      size_t g = 0;
      while (g < n_grp && v->grp[g].cur != a->cur)
        g++;
      if (g == n_grp) {
        if (!grow(&v->grp, &v->cap_grp, n_grp + 1, sizeof(*v->grp))) return no_memory(v);
        v->grp[n_grp].cur = a->cur;
        v->grp[n_grp++].sum = 0;
      }
      if (!add(&v->grp[g].sum, amount)) return overflow(v);
      if (ts && amount < 0 && sqlite3_column_type(es, 2) != SQLITE_NULL) {
        if (counts < 0) {
          counts = kind_counts(v, ts);
          day = sqlite3_column_int64(ts, 1) / 86400000;
        }
        if (counts) {
          if (amount == INT64_MIN) return overflow(v);
          int rc = daily_debit(v, sqlite3_column_int64(es, 2), a->cur, day, -amount);
          if (rc < 0) return rc;
        }
      }
    }
    *erc = sqlite3_step(es);
  } while (*erc == SQLITE_ROW && sqlite3_column_int64(es, 0) == txn_id);

  size_t n_bad = 0;
  for (size_t g = 0; g < n_grp; g++)
    if (v->grp[g].sum != 0) v->grp[n_bad++] = v->grp[g];
  if (n_bad > 1) qsort_r(v->grp, n_bad, sizeof(*v->grp), sum_by_currency, v);
  for (size_t i = 0; i < n_bad; i++) {
    int rc = txn_report(v, PZ_VERIFY_TXN_UNBALANCED, txn_id, v->grp[i].cur, v->grp[i].sum);
    if (rc != 0) return rc;
  }
  if (ts == NULL) return txn_report(v, PZ_VERIFY_TXN_MISSING, txn_id, 0, n_entries);
  if (n_entries < 2) return txn_report(v, PZ_VERIFY_TXN_SHORT, txn_id, 0, n_entries);
  return 0;
}

/* Each transaction balanced and of two entries at least; sums the entries
 * into their accounts and the debits into their days on the way. Entries
 * come in the order of es_sql; in rowid order, START_OVER when that is not
 * the order of their transactions after all. */
static int merge_pass(verify_t *v, const char *es_sql, int64_t *n_txns) {
  sqlite3_stmt *es = pz__db_stmt(v->db, es_sql, v->err), *ts;
  if (es == NULL || (ts = pz__db_stmt(v->db, SQL_TXNS, v->err)) == NULL) return v->err->code;
  int erc = sqlite3_step(es), trc = sqlite3_step(ts), rc = 0;
  int64_t last = INT64_MIN;
  while (rc == 0) {
    if (erc != SQLITE_ROW && erc != SQLITE_DONE) return pz__db_fail(v->db, erc, v->err);
    if (trc != SQLITE_ROW && trc != SQLITE_DONE) return pz__db_fail(v->db, trc, v->err);
    if (erc == SQLITE_DONE && trc == SQLITE_DONE) break;
    int64_t txn_id = erc == SQLITE_ROW ? sqlite3_column_int64(es, 0) : 0;
    int64_t id = trc == SQLITE_ROW ? sqlite3_column_int64(ts, 0) : 0;
    if (erc == SQLITE_ROW) {
      if (txn_id < last) return START_OVER;
      last = txn_id;
    }
    if (trc == SQLITE_ROW && (erc == SQLITE_DONE || id < txn_id)) {
      (*n_txns)++;
      rc = txn_report(v, PZ_VERIFY_TXN_SHORT, id, 0, 0);
      trc = sqlite3_step(ts);
    } else if (trc == SQLITE_ROW && id == txn_id) {
      (*n_txns)++;
      rc = txn_entries(v, es, &erc, txn_id, ts);
      trc = sqlite3_step(ts);
    } else {
      rc = txn_entries(v, es, &erc, txn_id, NULL);
    }
  }
  return rc;
}

static int ledger_pass(verify_t *v, int64_t *n_txns) {
  v->holding = true;
  int rc = merge_pass(v, SQL_ENTRIES_BY_ROWID, n_txns);
  v->holding = false;
  if (rc == 0) {
    for (size_t i = 0; i < v->n_held && rc == 0; i++)
      rc = txn_report(v, v->held[i].kind, v->held[i].id, v->held[i].cur, v->held[i].a);
    return rc;
  }
  if (rc != START_OVER) return rc;
  /* Out of order, or too much to hold: forget the sums and read again. */
  pz__db_stmt(v->db, SQL_ENTRIES_BY_ROWID, v->err); /* which resets it, ending its read */
  for (size_t i = 0; i < v->n_accts; i++)
    v->accts[i].sum = 0;
  for (size_t i = 0; i < v->n_days; i++) {
    daily_t *d = &v->days[i];
    d->debits = false;
    d->on_day = d->last_day = d->last_total = 0;
  }
  v->n_held = 0;
  *n_txns = 0;
  return merge_pass(v, SQL_ENTRIES_BY_TXN, n_txns);
}

/* ---- after the pass ---- */

static int check_balances(verify_t *v) {
  for (size_t i = 0; i < v->n_accts; i++) {
    const account_t *a = &v->accts[i];
    if (a->balance == a->sum) continue;
    int rc = report(v, PZ_VERIFY_BALANCE_CACHE, a->id, a->user_id, v->curs[a->cur].text, a->balance, a->sum);
    if (rc < 0) return rc;
  }
  return 0;
}

static int by_user_currency(const void *x, const void *y, void *arg) {
  const daily_t *a = x, *b = y;
  if (a->user_id != b->user_id) return a->user_id < b->user_id ? -1 : 1;
  return currency_cmp(arg, a->cur, b->cur);
}

/* Each counter against the debits of its day. A counter may hold more
 * than them (a debit made while the clock stood behind the counter's day
 * is added to that day), never less: less is what would let a user send
 * past their limit. Then each user's last day of debits without its
 * counter (none, or one of an earlier day). */
static int check_daily(verify_t *v) {
  if (v->n_days > 1) qsort_r(v->days, v->n_days, sizeof(*v->days), by_user_currency, v);
  for (size_t i = 0; i < v->n_days; i++) {
    const daily_t *d = &v->days[i];
    if (!d->counter || d->amount >= d->on_day) continue;
    int rc = report(v, PZ_VERIFY_DAILY_OUT, 0, d->user_id, v->curs[d->cur].text, d->amount, d->on_day);
    if (rc < 0) return rc;
  }
  for (size_t i = 0; i < v->n_days; i++) {
    const daily_t *d = &v->days[i];
    if (!d->debits || (d->counter && d->day >= d->last_day)) continue;
    int rc =
        report(v, PZ_VERIFY_DAILY_OUT, 0, d->user_id, v->curs[d->cur].text, d->counter ? d->amount : 0, d->last_total);
    if (rc < 0) return rc;
  }
  return 0;
}

/* Queries over small tables; columns fill a violation: id, user_id,
 * currency, key, a, b. */
static const char SQL_CURRENCY[] =
    "SELECT 0, 0, currency, '', SUM(balance), 0 FROM wallet_accounts GROUP BY currency HAVING SUM(balance) <> 0";
static const char SQL_NEGATIVE[] =
    "SELECT id, user_id, currency, '', balance, 0 FROM wallet_accounts WHERE kind = 'user' AND balance < 0";
static const char SQL_ESCROW[] =
    "SELECT 0, 0, c.currency, '', coalesce(a.balance, 0), coalesce(p.held, 0)"
    " FROM (SELECT currency FROM wallet_accounts GROUP BY currency) c"
    " LEFT JOIN wallet_accounts a ON a.kind = 'escrow' AND a.currency = c.currency"
    " LEFT JOIN (SELECT currency, SUM(amount) AS held FROM ("
    "   SELECT currency, amount FROM wallet_transfers WHERE status = 'pending'"
    "   UNION ALL SELECT currency, amount FROM wallet_fundings WHERE status = 'pending' AND kind = 'withdrawal'"
    "   UNION ALL SELECT currency, total - claimed_amount FROM wallet_red_packets WHERE status = 'active')"
    "  GROUP BY currency) p ON p.currency = c.currency"
    " WHERE coalesce(a.balance, 0) <> coalesce(p.held, 0)";
/* A red packet's counters against its claims, and a finished one paid out whole. */
static const char SQL_RED_PACKET[] =
    "SELECT p.id, p.sender_id, p.currency, '', p.claimed_amount, coalesce(c.paid, 0) FROM wallet_red_packets p"
    " LEFT JOIN (SELECT red_packet_id, SUM(amount) AS paid, count(*) AS n FROM wallet_red_packet_claims"
    "  GROUP BY red_packet_id) c ON c.red_packet_id = p.id"
    " WHERE p.claimed_amount <> coalesce(c.paid, 0) OR p.claimed_count <> coalesce(c.n, 0)"
    "  OR (p.status = 'finished' AND (p.claimed_amount <> p.total OR p.claimed_count <> p.count))";
/* Which keys were reused or lack their record: sorts and seeks through
 * every operation, so only run when the count below says one is wrong. */
static const char SQL_KEY_REUSED[] =
    "SELECT 0, user_id, '', idem_key, count(*), 0 FROM ("
    "  SELECT from_user_id AS user_id, idem_key FROM wallet_transfers"
    "  UNION ALL SELECT user_id, idem_key FROM wallet_fundings"
    "  UNION ALL SELECT sender_id, idem_key FROM wallet_red_packets)"
    " GROUP BY user_id, idem_key HAVING count(*) > 1";
static const char SQL_KEY_MISSING[] =
    "SELECT o.id, o.user_id, '', o.idem_key, 0, 0 FROM ("
    "  SELECT id, from_user_id AS user_id, idem_key FROM wallet_transfers"
    "  UNION ALL SELECT id, user_id, idem_key FROM wallet_fundings"
    "  UNION ALL SELECT id, sender_id, idem_key FROM wallet_red_packets) o"
    " LEFT JOIN wallet_idempotency i ON i.user_id = o.user_id AND i.key = o.idem_key AND i.ref_id = o.id"
    " WHERE i.user_id IS NULL";

static int run_check(verify_t *v, const char *sql, int kind) {
  sqlite3_stmt *st = pz__db_stmt(v->db, sql, v->err);
  if (st == NULL) return v->err->code;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    pz_wallet_violation_t x = {.kind = kind};
    x.id = sqlite3_column_int64(st, 0);
    x.user_id = sqlite3_column_int64(st, 1);
    copy_text(x.currency, sizeof(x.currency), (const char *)sqlite3_column_text(st, 2));
    copy_text(x.key, sizeof(x.key), (const char *)sqlite3_column_text(st, 3));
    x.a = sqlite3_column_int64(st, 4);
    x.b = sqlite3_column_int64(st, 5);
    int cb_rc = v->cb(v->arg, &x, v->err);
    if (cb_rc < 0) return cb_rc;
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(v->db, rc, v->err);
}

/* ---- idempotency keys: one pass over the records ---- */

/* Records are unique per (user, key), so a record can answer for one
 * operation of that key at most. Hence the records that answer for an
 * operation (name it by ref_id, with its user and key) are as many as the
 * operations only if every operation has its own record: none lacks one,
 * and no two share a key (they would share one record). Counting them is
 * one pass over the records in rowid order, which is about the order of
 * the operations' ids, so each seek lands near the one before. */
static const char SQL_OPS[] =
    "SELECT (SELECT count(*) FROM wallet_transfers) + (SELECT count(*) FROM wallet_fundings)"
    " + (SELECT count(*) FROM wallet_red_packets)";
static const char SQL_ANSWERED[] =
    "SELECT count(*) FROM wallet_idempotency i"
    " WHERE EXISTS (SELECT 1 FROM wallet_transfers t"
    "   WHERE t.id = i.ref_id AND t.from_user_id = i.user_id AND t.idem_key = i.key)"
    "  OR EXISTS (SELECT 1 FROM wallet_fundings f"
    "   WHERE f.id = i.ref_id AND f.user_id = i.user_id AND f.idem_key = i.key)"
    "  OR EXISTS (SELECT 1 FROM wallet_red_packets p"
    "   WHERE p.id = i.ref_id AND p.sender_id = i.user_id AND p.idem_key = i.key)";

/* Sets *ok when every operation has its record and no key started two. */
static int keys_count(pz_db_t *db, bool *ok, pz_err_t *err) {
  int64_t n[2];
  const char *sql[2] = {SQL_OPS, SQL_ANSWERED};
  for (int i = 0; i < 2; i++) {
    sqlite3_stmt *st = pz__db_stmt(db, sql[i], err);
    if (st == NULL) return err->code;
    int rc = pz__db_step_row(db, st, err);
    if (rc < 0) return rc;
    n[i] = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
  }
  *ok = n[0] == n[1];
  return 0;
}

/* The count on a read connection of its own, on its own thread. */
typedef struct {
  const char *path;
  bool opened, ok;
  int rc;
  pz_err_t err;
} keys_side_t;

static void keys_side_main(void *arg) {
  keys_side_t *k = arg;
  pz_db_t *db = calloc(1, sizeof(*db));
  if (db == NULL) return;
  if (sqlite3_open_v2(k->path, &db->sql, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK &&
      sqlite3_exec(db->sql, "PRAGMA busy_timeout=10000; PRAGMA query_only=1; PRAGMA cache_size=-65536; BEGIN", NULL,
                   NULL, NULL) == SQLITE_OK) {
    sqlite3_extended_result_codes(db->sql, 1);
    k->opened = true;
    k->rc = keys_count(db, &k->ok, &k->err);
  }
  for (unsigned i = 0; i < PZ_DB_STMT_CACHE; i++)
    sqlite3_finalize(db->cache[i].stmt);
  sqlite3_close(db->sql); /* ends the read transaction */
  free(db);
}

/* ---- the whole check ---- */

int pz_store_wallet_ledger_verify(pz_db_t *db, const char *exempt, pz_store_wallet_violation_cb cb, void *arg,
                                  int64_t *n_txns, pz_err_t *err) {
  verify_t v = {.db = db, .exempt = exempt, .exempt_len = strlen(exempt), .cb = cb, .arg = arg, .err = err};
  *n_txns = 0;
  /* A second connection sees what this one does only while nothing can
   * commit: while this one holds the write lock. A reader's snapshot may
   * already be behind the database, so a reader does it all itself. */
  keys_side_t side = {.path = sqlite3_db_filename(db->sql, "main")};
  uv_thread_t thread;
  bool beside = sqlite3_txn_state(db->sql, "main") == SQLITE_TXN_WRITE && side.path && side.path[0] &&
                uv_thread_create(&thread, keys_side_main, &side) == 0;
  bool keys_ok = false;
  int rc = load_accounts(&v);
  if (rc == 0) rc = load_daily(&v);
  if (rc == 0) rc = ledger_pass(&v, n_txns);
  if (rc == 0) rc = check_balances(&v);
  if (rc == 0) rc = run_check(&v, SQL_CURRENCY, PZ_VERIFY_CURRENCY_SUM);
  if (rc == 0) rc = run_check(&v, SQL_NEGATIVE, PZ_VERIFY_NEGATIVE);
  if (rc == 0) rc = run_check(&v, SQL_ESCROW, PZ_VERIFY_ESCROW);
  if (beside) {
    uv_thread_join(&thread);
    beside = side.opened;
    if (rc == 0 && beside && (rc = side.rc) < 0) *err = side.err;
    keys_ok = side.ok;
  }
  if (rc == 0 && !beside) rc = keys_count(db, &keys_ok, err);
  if (rc == 0 && !keys_ok) rc = run_check(&v, SQL_KEY_REUSED, PZ_VERIFY_KEY_REUSED);
  if (rc == 0 && !keys_ok) rc = run_check(&v, SQL_KEY_MISSING, PZ_VERIFY_KEY_MISSING);
  if (rc == 0) rc = run_check(&v, SQL_RED_PACKET, PZ_VERIFY_RED_PACKET);
  if (rc == 0) rc = check_daily(&v);
  verify_free(&v);
  return rc;
}
