/* Messages in the send log: their records, the seqs and client ids the log thread claimed, and their apply. */
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

struct pz__log_pending_s {
  map_t heads;   /* user id -> last seq claimed */
  map_t clients; /* hash of (conversation, sender, client id) -> 1 */
  map_t convs;   /* conversation id -> index in memo */
  memo_t *memo;
  size_t n_memo, cap_memo;
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

static void map_clear(map_t *m) {
  if (m->n == 0) return;
  memset(m->keys, 0, m->cap * sizeof(*m->keys));
  m->n = 0;
}

void pz__log_pending_clear(pz__log_pending_t *p) {
  if (p == NULL) return;
  map_clear(&p->heads);
  map_clear(&p->clients);
}

static void memo_clear(pz__log_pending_t *p) {
  for (size_t i = 0; i < p->n_memo; i++) {
    pz_free(p->memo[i].members);
    pz_free(p->memo[i].blocked);
  }
  p->n_memo = 0;
  map_clear(&p->convs);
}

void pz__log_pending_free(pz__log_pending_t *p) {
  if (p == NULL) return;
  memo_clear(p);
  pz_free(p->memo);
  pz_free(p->convs.keys);
  pz_free(p->convs.vals);
  pz_free(p->heads.keys);
  pz_free(p->heads.vals);
  pz_free(p->clients.keys);
  pz_free(p->clients.vals);
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
  map_put(&p->clients, h, 1);
  return true;
}

/* ---- what the log thread read ---- */

/* Conversations remembered at most; then all are forgotten at once. */
#define MEMO_MAX 4096

void pz__log_memo_begin(pz_db_t *db, uint64_t gen) {
  pz__log_pending_t *p = pending(db);
  if (p->memo_gen != gen) memo_clear(p);
  p->memo_gen = gen;
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
