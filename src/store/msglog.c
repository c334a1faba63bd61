/* The send log's records (messages and transfers), what the log thread claimed for them, and their apply. */
#include <stdlib.h>
#include <string.h>
#include "store/db.h"
#include "store/sendlog.h"

/* ---- what the log thread claimed ---- */

/* Open addressing, keys never 0 (user ids and hashes of client ids are
 * made non-zero), grown at half full. */
typedef struct {
  uint64_t *keys;
  int64_t *vals;
  size_t cap, n;
} map_t;

/* A conversation as pz_store_send_facts read it. */
typedef struct {
  int type;
  unsigned n;
  int64_t *members;
  bool *blocked; /* per member as the sender: the other member of a direct chat blocks them */
} memo_t;

/* A receiver as pz_store_wallet_payee_get read it for a sender. */
typedef struct {
  int64_t from_id, to_id;
  char currency[PZ_WALLET_CURRENCY_LEN + 1];
  pz_wallet_payee_rec_t facts;
} payee_memo_t;

struct pz__log_pending_s {
  map_t heads;   /* user id -> last seq claimed */
  map_t clients; /* hash of (conversation, sender, client id) -> lsn_bound when logged */
  /* Transfers (pz_store_wallet_log_*): an account's balance with every
   * transfer logged since the maps were last emptied; the day and amount
   * of the daily counter of the user the account belongs to; hashes of
   * (user, idempotency key) of transfers logged -> lsn_bound then. */
  map_t balances, daily_day, daily_amount, keys;
  uint64_t lsn_bound; /* no record of this batch has a higher lsn */
  map_t convs;   /* conversation id -> index in memo */
  memo_t *memo;
  size_t n_memo, cap_memo;
  map_t payees; /* hash of (sender, receiver, currency) -> index in payee */
  payee_memo_t *payee;
  size_t n_payee, cap_payee;
  uint64_t memo_gen;
};

static size_t map_find(const map_t *m, uint64_t key) {
  size_t i = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & (m->cap - 1);
  while (m->keys[i] != 0 && m->keys[i] != key)
    i = (i + 1) & (m->cap - 1);
  return i;
}

static int64_t *map_get(const map_t *m, uint64_t key) {
  if (m->cap == 0) return NULL;
  size_t i = map_find(m, key);
  return m->keys[i] == key ? &m->vals[i] : NULL;
}

static void map_put(map_t *m, uint64_t key, int64_t val) {
  if ((m->n + 1) * 2 > m->cap) {
    map_t old = *m;
    m->cap = old.cap ? old.cap * 2 : 1024;
    m->keys = pz_calloc(m->cap, sizeof(*m->keys));
    m->vals = pz_calloc(m->cap, sizeof(*m->vals));
    m->n = 0;
    for (size_t i = 0; i < old.cap; i++)
      if (old.keys[i]) map_put(m, old.keys[i], old.vals[i]);
    pz_free(old.keys);
    pz_free(old.vals);
  }
  size_t i = map_find(m, key);
  if (m->keys[i] == 0) m->n++;
  m->keys[i] = key;
  m->vals[i] = val;
}

/* Entries of the maps that grow with every record (clients, keys) past
 * which those of records the database has are dropped: the maps are only
 * emptied once everything logged is applied, which a steady load may not
 * let happen for hours. What stays is within LOG_MAX_BEHIND (engine.c). */
#define PRUNE_AT 65536

static void map_prune(map_t *m, uint64_t applied) {
  if (m->n < PRUNE_AT) return;
  map_t old = *m;
  m->keys = pz_calloc(m->cap, sizeof(*m->keys));
  m->vals = pz_calloc(m->cap, sizeof(*m->vals));
  m->n = 0;
  for (size_t i = 0; i < old.cap; i++)
    if (old.keys[i] && (uint64_t)old.vals[i] > applied) map_put(m, old.keys[i], old.vals[i]);
  pz_free(old.keys);
  pz_free(old.vals);
}

static void map_clear(map_t *m) {
  if (m->n == 0) return;
  memset(m->keys, 0, m->cap * sizeof(*m->keys));
  m->n = 0;
}

void pz__log_pending_clear(pz__log_pending_t *p) {
  if (p == NULL) return;
  map_clear(&p->heads);
  map_clear(&p->clients);
  map_clear(&p->balances);
  map_clear(&p->daily_day);
  map_clear(&p->daily_amount);
  map_clear(&p->keys);
}

static void memo_clear(pz__log_pending_t *p) {
  for (size_t i = 0; i < p->n_memo; i++) {
    pz_free(p->memo[i].members);
    pz_free(p->memo[i].blocked);
  }
  p->n_memo = 0;
  map_clear(&p->convs);
  p->n_payee = 0;
  map_clear(&p->payees);
}

void pz__log_pending_free(pz__log_pending_t *p) {
  if (p == NULL) return;
  memo_clear(p);
  pz_free(p->memo);
  pz_free(p->payee);
  map_t *maps[] = {&p->heads,        &p->clients, &p->balances, &p->daily_day,
                   &p->daily_amount, &p->keys,    &p->convs,    &p->payees};
  for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
    pz_free(maps[i]->keys);
    pz_free(maps[i]->vals);
  }
  pz_free(p);
}

static pz__log_pending_t *pending(pz_db_t *db) {
  if (db->pending == NULL) db->pending = pz_calloc(1, sizeof(*db->pending));
  return db->pending;
}

/* A stream nobody logged to since everything logged was applied has its
 * last seq in the database: the writer committed it before the log thread
 * began this snapshot (engine.c's sequencing lock). */
int pz_store_event_claim(pz_db_t *db, int64_t user_id, int64_t *seq, pz_err_t *err) {
  pz__log_pending_t *p = pending(db);
  int64_t *last = map_get(&p->heads, (uint64_t)user_id);
  if (last) {
    *seq = ++*last;
    return 0;
  }
  int64_t head = 0;
  int rc = pz_store_event_head(db, user_id, &head, err);
  if (rc < 0) return rc;
  *seq = head + 1;
  map_put(&p->heads, (uint64_t)user_id, *seq);
  return 0;
}

void pz_store_event_unclaim(pz_db_t *db, int64_t user_id) {
  int64_t *last = map_get(&pending(db)->heads, (uint64_t)user_id);
  if (last) --*last;
}

static uint64_t fnv(uint64_t h, const void *data, size_t len) {
  const uint8_t *b = data;
  for (size_t i = 0; i < len; i++)
    h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

bool pz_store_msg_log_claim_client(pz_db_t *db, int64_t conv_id, int64_t sender_id, pz_str_t client_id) {
  pz__log_pending_t *p = pending(db);
  uint64_t h = 0xcbf29ce484222325ull;
  h = fnv(h, &conv_id, sizeof(conv_id));
  h = fnv(h, &sender_id, sizeof(sender_id));
  h = fnv(h, client_id.ptr, client_id.len);
  if (h == 0) h = 1;
  /* A hash shared by two client ids only sends the second to the writer. */
  if (map_get(&p->clients, h)) return false;
  map_put(&p->clients, h, (int64_t)p->lsn_bound);
  return true;
}

/* Account ids are positive, never a map's empty key. */
bool pz_store_wallet_log_balance(pz_db_t *db, int64_t account_id, int64_t *balance) {
  int64_t *v = account_id > 0 ? map_get(&pending(db)->balances, (uint64_t)account_id) : NULL;
  if (v) *balance = *v;
  return v != NULL;
}

void pz_store_wallet_log_balance_set(pz_db_t *db, int64_t account_id, int64_t balance) {
  PZ_ASSERT(account_id > 0);
  map_put(&pending(db)->balances, (uint64_t)account_id, balance);
}

bool pz_store_wallet_log_daily(pz_db_t *db, int64_t account_id, pz_wallet_daily_rec_t *d) {
  pz__log_pending_t *p = pending(db);
  int64_t *day = account_id > 0 ? map_get(&p->daily_day, (uint64_t)account_id) : NULL;
  if (day == NULL) return false;
  d->day = *day;
  d->amount = *map_get(&p->daily_amount, (uint64_t)account_id);
  return true;
}

void pz_store_wallet_log_daily_set(pz_db_t *db, int64_t account_id, const pz_wallet_daily_rec_t *d) {
  PZ_ASSERT(account_id > 0);
  pz__log_pending_t *p = pending(db);
  map_put(&p->daily_day, (uint64_t)account_id, d->day);
  map_put(&p->daily_amount, (uint64_t)account_id, d->amount);
}

static uint64_t key_hash(int64_t user_id, pz_str_t key) {
  uint64_t h = fnv(0xcbf29ce484222325ull, &user_id, sizeof(user_id));
  h = fnv(h, key.ptr, key.len);
  return h ? h : 1;
}

bool pz_store_wallet_log_key_pending(pz_db_t *db, int64_t user_id, pz_str_t key) {
  return map_get(&pending(db)->keys, key_hash(user_id, key)) != NULL;
}

void pz_store_wallet_log_key_claim(pz_db_t *db, int64_t user_id, pz_str_t key) {
  pz__log_pending_t *p = pending(db);
  map_put(&p->keys, key_hash(user_id, key), (int64_t)p->lsn_bound);
}

/* ---- what the log thread read ---- */

/* Conversations remembered at most; then all are forgotten at once. */
#define MEMO_MAX 4096

void pz__log_batch_begin(pz_db_t *db, uint64_t gen, uint64_t lsn_bound, uint64_t applied) {
  pz__log_pending_t *p = pending(db);
  if (p->memo_gen != gen) memo_clear(p);
  p->memo_gen = gen;
  p->lsn_bound = lsn_bound;
  map_prune(&p->clients, applied);
  map_prune(&p->keys, applied);
}

static int collect(void *arg, int64_t user_id, pz_err_t *err) {
  (void)err;
  memo_t *e = arg;
  if ((e->n & (e->n - 1)) == 0) /* 0, 1, 2, 4, ...: full */
    e->members = pz_realloc(e->members, (e->n ? e->n * 2 : 2) * sizeof(*e->members));
  e->members[e->n++] = user_id;
  return 0;
}

/* Reads conversation conv_id into a new entry of p's memo. */
static int memo_read(pz_db_t *db, pz__log_pending_t *p, int64_t conv_id, memo_t **out, pz_err_t *err) {
  pz_conv_rec_t conv;
  int rc = pz_store_conv_get(db, conv_id, &conv, err);
  if (rc < 0) return rc;
  memo_t e = {.type = conv.type};
  if ((rc = pz_store_member_ids(db, conv_id, collect, &e, err)) == 0) {
    e.blocked = pz_calloc(e.n ? e.n : 1, sizeof(*e.blocked));
    for (unsigned i = 0; rc == 0 && e.type == PZ_CONV_DIRECT && e.n == 2 && i < 2; i++)
      rc = pz_store_block_exists(db, e.members[1 - i], e.members[i], &e.blocked[i], err);
  }
  if (rc < 0) {
    pz_free(e.members);
    pz_free(e.blocked);
    return rc;
  }
  if (p->n_memo == MEMO_MAX) memo_clear(p);
  if (p->n_memo == p->cap_memo) {
    p->cap_memo = p->cap_memo ? p->cap_memo * 2 : 64;
    p->memo = pz_realloc(p->memo, p->cap_memo * sizeof(*p->memo));
  }
  map_put(&p->convs, (uint64_t)conv_id, (int64_t)p->n_memo);
  p->memo[p->n_memo] = e;
  *out = &p->memo[p->n_memo++];
  return 0;
}

int pz_store_send_facts(pz_db_t *db, int64_t conv_id, int64_t sender_id, pz_store_send_facts_t *out, pz_err_t *err) {
  pz__log_pending_t *p = pending(db);
  /* Ids are positive: another is not found by memo_read, never remembered (no map key is 0). */
  int64_t *at = conv_id > 0 ? map_get(&p->convs, (uint64_t)conv_id) : NULL;
  memo_t *e = at ? &p->memo[*at] : NULL;
  if (e == NULL) {
    int rc = memo_read(db, p, conv_id, &e, err);
    if (rc < 0) return rc;
  }
  *out = (pz_store_send_facts_t){.type = e->type, .members = e->members, .n = e->n};
  for (unsigned i = 0; i < e->n; i++)
    if (e->members[i] == sender_id) {
      out->is_member = true;
      out->blocked = e->blocked[i];
    }
  return 0;
}

/* Only write jobs change blocks, the auto-accept setting and accounts:
 * what was read stays true while no write job committed (memo_gen). */
int pz_store_wallet_log_payee(pz_db_t *db, int64_t from_id, int64_t to_id, const char *currency,
                              pz_wallet_payee_rec_t *out, pz_err_t *err) {
  pz__log_pending_t *p = pending(db);
  uint64_t h = fnv(0xcbf29ce484222325ull, &from_id, sizeof(from_id));
  h = fnv(h, &to_id, sizeof(to_id));
  h = fnv(h, currency, strlen(currency));
  if (h == 0) h = 1;
  int64_t *at = map_get(&p->payees, h);
  if (at) {
    const payee_memo_t *e = &p->payee[*at];
    if (e->from_id == from_id && e->to_id == to_id && strcmp(e->currency, currency) == 0) {
      *out = e->facts;
      return 0;
    }
  }
  int rc = pz_store_wallet_payee_get(db, from_id, to_id, currency, out, err);
  if (rc < 0 || at || strlen(currency) > PZ_WALLET_CURRENCY_LEN) return rc; /* a hash shared: not remembered */
  if (p->n_payee == MEMO_MAX) {
    p->n_payee = 0;
    map_clear(&p->payees);
  }
  if (p->n_payee == p->cap_payee) {
    p->cap_payee = p->cap_payee ? p->cap_payee * 2 : 64;
    p->payee = pz_realloc(p->payee, p->cap_payee * sizeof(*p->payee));
  }
  payee_memo_t *e = &p->payee[p->n_payee];
  *e = (payee_memo_t){.from_id = from_id, .to_id = to_id, .facts = *out};
  memcpy(e->currency, currency, strlen(currency) + 1);
  map_put(&p->payees, h, (int64_t)p->n_payee++);
  return 0;
}

/* ---- records ----
 *
 * Little-endian, in this order: u8 version (1); i64 id, conversation,
 * sender, created_at, reply_to; u16 length and the client id; u32 and the
 * text; u8 and the type; u32 and the body; u16 count and the mentions
 * (i64 each); u32 and the message.new payload; u32 count and the (user,
 * seq) pairs (i64 each). */

static void put_u(pz_buf_t *b, uint64_t v, int bytes) {
  uint8_t x[8];
  pz__le_put(x, v, bytes);
  pz_buf_append(b, x, (size_t)bytes);
}

static void put_bytes(pz_buf_t *b, const void *p, size_t n, int len_bytes) {
  put_u(b, n, len_bytes);
  if (n) pz_buf_append(b, p, n);
}

void pz_store_msg_log_encode(const pz_msg_rec_t *m, pz_str_t event, const pz_store_user_seq_t *fan, unsigned n,
                             pz_buf_t *rec) {
  pz_buf_reserve(rec, 80 + strlen(m->client_id) + m->text_len + m->body_len + event.len + 8u * m->n_mentions + 16u * n);
  put_u(rec, 1, 1);
  put_u(rec, (uint64_t)m->id, 8);
  put_u(rec, (uint64_t)m->conversation_id, 8);
  put_u(rec, (uint64_t)m->sender_id, 8);
  put_u(rec, (uint64_t)m->created_at, 8);
  put_u(rec, (uint64_t)m->reply_to, 8);
  put_bytes(rec, m->client_id, strlen(m->client_id), 2);
  put_bytes(rec, m->text, m->text_len, 4);
  put_bytes(rec, m->type, strlen(m->type), 1);
  put_bytes(rec, m->body, m->body_len, 4);
  put_u(rec, m->n_mentions, 2);
  for (unsigned i = 0; i < m->n_mentions; i++)
    put_u(rec, (uint64_t)m->mentions[i], 8);
  put_bytes(rec, event.ptr, event.len, 4);
  put_u(rec, n, 4);
  for (unsigned i = 0; i < n; i++) {
    put_u(rec, (uint64_t)fan[i].user_id, 8);
    put_u(rec, (uint64_t)fan[i].seq, 8);
  }
}

typedef struct {
  const uint8_t *p, *end;
  bool bad;
} rd_t;

static uint64_t get_u(rd_t *r, int bytes) {
  if (r->bad || r->end - r->p < bytes) {
    r->bad = true;
    return 0;
  }
  uint64_t v = pz__le_get(r->p, bytes);
  r->p += bytes;
  return v;
}

/* A length-prefixed string of at most max bytes, copied into dst (cap max + 1). */
static size_t get_text(rd_t *r, int len_bytes, char *dst, size_t max) {
  uint64_t n = get_u(r, len_bytes);
  if (r->bad || n > max || (uint64_t)(r->end - r->p) < n) {
    r->bad = true;
    dst[0] = '\0';
    return 0;
  }
  memcpy(dst, r->p, (size_t)n);
  dst[n] = '\0';
  r->p += n;
  return (size_t)n;
}

int pz__store_msg_log_decode(const void *rec, uint32_t len, pz_msg_rec_t *m, pz_str_t *event, pz_store_user_seq_t **fan,
                             unsigned *n_fan) {
  rd_t r = {rec, (const uint8_t *)rec + len, false};
  *fan = NULL;
  *n_fan = 0;
  memset(m, 0, offsetof(pz_msg_rec_t, text));
  if (get_u(&r, 1) != 1) return PZ_EINVAL;
  m->id = (int64_t)get_u(&r, 8);
  m->conversation_id = (int64_t)get_u(&r, 8);
  m->sender_id = (int64_t)get_u(&r, 8);
  m->created_at = (int64_t)get_u(&r, 8);
  m->reply_to = (int64_t)get_u(&r, 8);
  get_text(&r, 2, m->client_id, PZ_CHAT_CLIENT_ID_MAX);
  m->text_len = get_text(&r, 4, m->text, PZ_CHAT_TEXT_MAX_BYTES);
  get_text(&r, 1, m->type, PZ_CHAT_MSG_TYPE_MAX);
  m->body_len = get_text(&r, 4, m->body, PZ_CHAT_BODY_MAX_BYTES);
  m->edited_at = m->recalled_at = 0;
  uint64_t nm = get_u(&r, 2);
  if (nm > PZ_CHAT_MENTIONS_MAX) r.bad = true;
  for (unsigned i = 0; !r.bad && i < nm; i++)
    m->mentions[i] = (int64_t)get_u(&r, 8);
  m->n_mentions = r.bad ? 0 : (unsigned)nm;
  uint64_t elen = get_u(&r, 4);
  if (r.bad || (uint64_t)(r.end - r.p) < elen) return PZ_EINVAL;
  *event = pz_str_n((const char *)r.p, (size_t)elen);
  r.p += elen;
  uint64_t nf = get_u(&r, 4);
  if (r.bad || nf == 0 || nf > (uint64_t)(r.end - r.p) / 16) return PZ_EINVAL;
  *fan = pz_malloc((size_t)nf * sizeof(**fan));
  for (unsigned i = 0; i < nf; i++) {
    (*fan)[i].user_id = (int64_t)get_u(&r, 8);
    (*fan)[i].seq = (int64_t)get_u(&r, 8);
  }
  if (r.bad || r.p != r.end || m->id <= 0 || m->conversation_id <= 0 || m->sender_id <= 0) {
    pz_free(*fan);
    *fan = NULL;
    return PZ_EINVAL;
  }
  *n_fan = (unsigned)nf;
  return 0;
}

int pz__store_msg_log_apply(pz_db_t *db, const void *rec, uint32_t len, pz_err_t *err) {
  pz_msg_rec_t *m = pz_malloc(sizeof(*m));
  pz_str_t event;
  pz_store_user_seq_t *fan;
  unsigned n;
  int rc = pz__store_msg_log_decode(rec, len, m, &event, &fan, &n);
  if (rc < 0) {
    pz_free(m);
    return pz_err_set(err, PZ_EINVAL, NULL, "a message record of the send log does not decode");
  }
  rc = pz_store_msg_insert(db, m, event, err);
  for (unsigned i = 0; rc == 0 && i < n; i++)
    rc = pz__store_event_put(db, fan[i].user_id, fan[i].seq, PZ_STR(PZ_EVENT_MESSAGE_NEW), m->id, PZ_STR(""),
                             m->created_at, err);
  pz_free(fan);
  pz_free(m);
  return rc;
}

/* ---- transfer records ----
 *
 * Little-endian, in this order: u8 version (1); i64 id, sender, receiver,
 * amount, created_at, expires_at; u8 and the currency; u16 and the note;
 * u16 and the idempotency key; i64 ledger transaction, sender's account,
 * receiver's account, the daily counter's day; the request's fingerprint
 * (PZ_WALLET_FP_LEN bytes); u8 and the event type; u32 and the event
 * payload; u32 and the idempotency record's body; i64 the sender's seq and
 * the receiver's. The transfer is completed from its first row, and
 * answered 201. */

int pz_store_wallet_transfer_log_encode(const pz_wallet_transfer_log_t *l, pz_str_t event_type, pz_str_t event,
                                        pz_str_t answer, pz_buf_t *rec) {
  const pz_wallet_transfer_rec_t *t = &l->t;
  PZ_ASSERT(t->status == PZ_TRANSFER_COMPLETED && t->conversation_id == 0);
  pz_buf_reserve(
      rec, 160 + strlen(t->note) + strlen(t->idem_key) + PZ_WALLET_FP_LEN + event_type.len + event.len + answer.len);
  put_u(rec, 1, 1);
  const int64_t head[] = {t->id, t->from_id, t->to_id, t->amount, t->created_at, t->expires_at};
  for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++)
    put_u(rec, (uint64_t)head[i], 8);
  put_bytes(rec, t->currency, strlen(t->currency), 1);
  put_bytes(rec, t->note, strlen(t->note), 2);
  put_bytes(rec, t->idem_key, strlen(t->idem_key), 2);
  const int64_t ledger[] = {l->txn_id, l->from_account, l->to_account, l->day};
  for (size_t i = 0; i < sizeof(ledger) / sizeof(ledger[0]); i++)
    put_u(rec, (uint64_t)ledger[i], 8);
  pz_buf_append(rec, l->fp, PZ_WALLET_FP_LEN);
  put_bytes(rec, event_type.ptr, event_type.len, 1);
  put_bytes(rec, event.ptr, event.len, 4);
  put_bytes(rec, answer.ptr, answer.len, 4);
  put_u(rec, (uint64_t)l->seqs[0], 8);
  put_u(rec, (uint64_t)l->seqs[1], 8);
  return PZ__LOG_TRANSFER;
}

/* A length-prefixed run of bytes, borrowed from the record. */
static pz_str_t get_str(rd_t *r, int len_bytes) {
  uint64_t n = get_u(r, len_bytes);
  if (r->bad || (uint64_t)(r->end - r->p) < n) {
    r->bad = true;
    return PZ_STR_NULL;
  }
  pz_str_t s = pz_str_n((const char *)r->p, (size_t)n);
  r->p += n;
  return s;
}

int pz__store_transfer_log_decode(const void *rec, uint32_t len, pz_wallet_transfer_log_t *l, pz_str_t *event_type,
                                  pz_str_t *event, pz_str_t *answer) {
  rd_t r = {rec, (const uint8_t *)rec + len, false};
  memset(l, 0, sizeof(*l));
  pz_wallet_transfer_rec_t *t = &l->t;
  if (get_u(&r, 1) != 1) return PZ_EINVAL;
  int64_t *head[] = {&t->id, &t->from_id, &t->to_id, &t->amount, &t->created_at, &t->expires_at};
  for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++)
    *head[i] = (int64_t)get_u(&r, 8);
  get_text(&r, 1, t->currency, PZ_WALLET_CURRENCY_LEN);
  get_text(&r, 2, t->note, PZ_WALLET_NOTE_MAX_BYTES);
  get_text(&r, 2, t->idem_key, PZ_WALLET_KEY_MAX);
  int64_t *ledger[] = {&l->txn_id, &l->from_account, &l->to_account, &l->day};
  for (size_t i = 0; i < sizeof(ledger) / sizeof(ledger[0]); i++)
    *ledger[i] = (int64_t)get_u(&r, 8);
  if (!r.bad && r.end - r.p >= PZ_WALLET_FP_LEN) {
    memcpy(l->fp, r.p, PZ_WALLET_FP_LEN);
    r.p += PZ_WALLET_FP_LEN;
  } else {
    r.bad = true;
  }
  *event_type = get_str(&r, 1);
  *event = get_str(&r, 4);
  *answer = get_str(&r, 4);
  l->seqs[0] = (int64_t)get_u(&r, 8);
  l->seqs[1] = (int64_t)get_u(&r, 8);
  t->status = PZ_TRANSFER_COMPLETED;
  t->updated_at = t->created_at;
  /* What the apply would otherwise trip on (an assertion, a row the
   * schema refuses) is refused here. */
  if (r.bad || r.p != r.end || t->id <= 0 || t->from_id <= 0 || t->to_id <= 0 || t->from_id == t->to_id ||
      t->amount <= 0 || l->txn_id <= 0 || l->from_account <= 0 || l->to_account <= 0 ||
      l->from_account == l->to_account || t->idem_key[0] == '\0' || event_type->len == 0 ||
      answer->len > PZ_WALLET_BODY_MAX || l->seqs[0] <= 0 || l->seqs[1] <= 0)
    return PZ_EINVAL;
  return 0;
}

int pz__store_transfer_log_apply(pz_db_t *db, const void *rec, uint32_t len, pz_err_t *err) {
  /* On the writer's stack, as transfer_run's: no allocation per record. */
  pz_wallet_transfer_log_t l;
  pz_str_t type, event, answer;
  if (pz__store_transfer_log_decode(rec, len, &l, &type, &event, &answer) < 0)
    return pz_err_set(err, PZ_EINVAL, NULL, "a transfer record of the send log does not decode");
  /* As pz_wallet_transfer_create and pz_wallet_move write it, less the
   * checks the log thread made against the same state. */
  const pz_wallet_transfer_rec_t *t = &l.t;
  const pz_wallet_entry_rec_t e[2] = {
      {l.txn_id, l.from_account, t->from_id, -t->amount},
      {l.txn_id, l.to_account, t->to_id, t->amount},
  };
  int rc = pz_store_wallet_transfer_insert(db, t, err);
  if (rc == 0) rc = pz_store_wallet_txn_insert(db, l.txn_id, PZ_TXN_TRANSFER, t->id, t->created_at, err);
  if (rc == 0) rc = pz_store_wallet_balance_move(db, l.from_account, -t->amount, err);
  if (rc == 0) rc = pz_store_wallet_daily_add(db, t->from_id, t->currency, l.day, t->amount, err);
  if (rc == 0) rc = pz_store_wallet_entries_insert(db, e, err);
  if (rc == 0) rc = pz_store_wallet_balance_move(db, l.to_account, t->amount, err);
  if (rc == 0) {
    pz_wallet_idem_rec_t idem; /* not zeroed: its 4 KiB body is only read up to body_len */
    idem.status = 201;
    idem.ref_id = t->id;
    idem.body_len = answer.len;
    memcpy(idem.fingerprint, l.fp, PZ_WALLET_FP_LEN);
    if (answer.len) memcpy(idem.body, answer.ptr, answer.len);
    idem.body[answer.len] = '\0';
    rc = pz_store_wallet_idem_put(db, t->from_id, pz_str(t->idem_key), &idem, t->created_at, err);
  }
  const int64_t users[2] = {t->from_id, t->to_id};
  for (int i = 0; rc == 0 && i < 2; i++)
    rc = pz__store_event_put(db, users[i], l.seqs[i], type, 0, event, t->created_at, err);
  return rc;
}
