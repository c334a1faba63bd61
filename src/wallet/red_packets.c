/* Red packets in write jobs (sender to escrow, a share per claim, the rest back at expiry) and transfers in chats. */
#include <sodium.h>
#include <string.h>
#include "plaza/chat.h"
#include "plaza/id.h"
#include "plaza/store_auth.h"
#include "plaza/wallet.h"

/* ---- input rules ---- */

int pz_wallet_greeting_check(pz_str_t greeting, pz_err_t *err) {
  if (!pz_utf8_valid(greeting.ptr, greeting.len)) return pz_err_set(err, PZ_EUTF8, NULL, "greeting is not valid UTF-8");
  if (pz_utf8_count(greeting.ptr, greeting.len) > PZ_RED_PACKET_GREETING_MAX_CHARS)
    return pz_err_set(err, PZ_EINVAL, NULL, "greeting is longer than %d characters", PZ_RED_PACKET_GREETING_MAX_CHARS);
  for (size_t i = 0; i < greeting.len; i++) {
    unsigned char c = (unsigned char)greeting.ptr[i];
    /* C0 controls and DEL; C1 controls are U+0080-U+009F, 0xC2 0x80-0x9F in UTF-8. */
    if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < greeting.len && (unsigned char)greeting.ptr[i + 1] < 0xa0))
      return pz_err_set(err, PZ_EINVAL, NULL, "greeting must not contain control characters");
  }
  return 0;
}

int pz_wallet_red_packet_check(int64_t total, int64_t count, pz_err_t *err) {
  if (count < 1 || count > PZ_RED_PACKET_COUNT_MAX)
    return pz_err_set(err, PZ_EINVAL, NULL, "count must be a whole number from 1 to %d", PZ_RED_PACKET_COUNT_MAX);
  if (total < 1 || total > PZ_WALLET_AMOUNT_MAX)
    return pz_err_set(err, PZ_EINVAL, NULL, "total must be a whole number of minor units from 1 to %lld",
                      (long long)PZ_WALLET_AMOUNT_MAX);
  if (total < count)
    return pz_err_set(err, PZ_EINVAL, NULL, "total must give every one of the %lld shares at least one minor unit",
                      (long long)count);
  return 0;
}

/* ---- shares ---- */

/* Uniform in [0, upper): libsodium's generator, without modulo bias
 * beyond the 32 bits randombytes_uniform covers. */
static uint64_t uniform(uint64_t upper) {
  if (upper <= UINT32_MAX) return randombytes_uniform((uint32_t)upper);
  uint64_t limit = UINT64_MAX - UINT64_MAX % upper, v;
  do
    randombytes_buf(&v, sizeof(v));
  while (v >= limit);
  return v % upper;
}

int64_t pz_wallet_red_packet_share(int mode, int64_t total, unsigned count, int64_t left, unsigned n_left) {
  PZ_ASSERT(n_left >= 1 && n_left <= count && left >= (int64_t)n_left);
  if (mode == PZ_RED_PACKET_EQUAL) {
    unsigned position = count - n_left;
    return total / count + ((int64_t)position < total % count ? 1 : 0);
  }
  if (n_left == 1) return left;
  /* Double the average that is left, minus one so that the mean of
   * [1, 2R/n - 1] is R/n; the cap keeps a unit for each later claimant
   * (it binds only when the floor of 2R/n rounds a long way down). */
  int64_t max = 2 * left / (int64_t)n_left - 1, keep = left - (int64_t)(n_left - 1);
  if (max > keep) max = keep;
  if (max < 1) max = 1;
  return 1 + (int64_t)uniform((uint64_t)max);
}

/* ---- conversations ---- */

typedef struct {
  int64_t me, other;
} pair_t;

static int find_other(void *arg, int64_t user_id, pz_err_t *err) {
  pair_t *p = arg;
  if (user_id != p->me) p->other = user_id;
  return 0;
}

/* The other member of direct chat conv_id, as me sees it (0 when gone). */
static int direct_other(pz_db_t *db, int64_t conv_id, int64_t me, int64_t *other, pz_err_t *err) {
  pair_t p = {me, 0};
  int rc = pz_store_member_ids(db, conv_id, find_other, &p, err);
  *other = p.other;
  return rc;
}

static int either_blocked(pz_db_t *db, int64_t a, int64_t b, bool *out, pz_err_t *err) {
  *out = false;
  int rc = pz_store_block_exists(db, a, b, out, err);
  if (rc == 0 && !*out) rc = pz_store_block_exists(db, b, a, out, err);
  return rc;
}

int pz_wallet_transfer_chat_check(pz_db_t *db, int64_t from_id, int64_t to_id, int64_t conv_id, pz_err_t *err) {
  pz_conv_rec_t conv;
  int rc = pz_store_conv_get(db, conv_id, &conv, err);
  bool ok = rc == 0 && conv.type == PZ_CONV_DIRECT;
  if (rc < 0 && rc != PZ_ENOTFOUND) return rc;
  if (ok && (rc = pz_store_member_get(db, conv_id, from_id, NULL, err)) < 0 && rc != PZ_ENOTFOUND) return rc;
  ok = ok && rc == 0;
  if (ok && (rc = pz_store_member_get(db, conv_id, to_id, NULL, err)) < 0 && rc != PZ_ENOTFOUND) return rc;
  ok = ok && rc == 0;
  if (!ok) return pz_err_set(err, PZ_EINVAL, NULL, "conversation_id must be your direct chat with the receiver");
  *err = (pz_err_t){0};
  return 0;
}

/* ---- red packets ---- */

static int no_packet(pz_err_t *err) { return pz_err_set(err, PZ_ENOTFOUND, NULL, "no such red packet"); }

int pz_wallet_red_packet_create(pz_db_t *db, const pz_wallet_config_t *cfg, const pz_wallet_red_packet_rec_t *p,
                                pz_str_t pin, int64_t now, int64_t ttl_ms, pz_wallet_red_packet_rec_t *out,
                                unsigned *retry_after_s, bool *keep, pz_err_t *err) {
  /* Until the money moves, a failure has written nothing but, at most,
   * the PIN's state. */
  *keep = true;
  pz_conv_rec_t conv;
  int rc = pz_chat_member_check(db, p->sender_id, p->conversation_id, &conv, err);
  if (rc < 0) return rc;
  if (conv.type == PZ_CONV_DIRECT) {
    if (p->count != 1)
      return pz_err_set(err, PZ_EINVAL, NULL, "a red packet in a direct chat has one share: count must be 1");
    int64_t other = 0;
    bool flag = false;
    if ((rc = direct_other(db, conv.id, p->sender_id, &other, err)) < 0) return rc;
    if (other && (rc = either_blocked(db, p->sender_id, other, &flag, err)) < 0) return rc;
    if (flag) return pz_err_set(err, PZ_EFORBIDDEN, "blocked", "one of you blocked the other");
  }
  /* Checked before anything moves, so that the refusal is kept as the
   * key's answer; pz_wallet_move enforces balance and limit again. */
  pz_wallet_account_rec_t from, escrow;
  rc = pz_wallet_spend_check(db, cfg, p->sender_id, p->currency, p->total, pin, now, &from, retry_after_s, err);
  if (rc < 0) return rc;
  *keep = false;

  *out = *p;
  out->status = PZ_RED_PACKET_ACTIVE;
  out->claimed_count = 0;
  out->claimed_amount = 0;
  out->created_at = out->updated_at = now;
  out->expires_at = now + ttl_ms;
  if ((rc = pz_store_wallet_red_packet_insert(db, out, err)) < 0 ||
      (rc = pz_wallet_account(db, 0, PZ_ACCT_ESCROW, p->currency, now, &escrow, err)) < 0)
    return rc;
  return pz_wallet_move(db, pz_id_next(), PZ_TXN_RED_PACKET, out->id, &from, &escrow, p->total, now, err);
}

int pz_wallet_red_packet_get(pz_db_t *db, int64_t me, int64_t id, pz_wallet_red_packet_rec_t *out, pz_err_t *err) {
  int rc = pz_store_wallet_red_packet_get(db, id, out, err);
  if (rc == PZ_ENOTFOUND) return no_packet(err);
  if (rc < 0) return rc;
  /* Only the people of the chat may see it, as they see its message. */
  rc = pz_chat_member_check(db, me, out->conversation_id, NULL, err);
  return rc == PZ_ENOTFOUND ? no_packet(err) : rc;
}

int pz_wallet_red_packet_claim(pz_db_t *db, int64_t me, int64_t id, int64_t now, pz_wallet_red_packet_rec_t *out,
                               pz_wallet_claim_rec_t *claim, bool *keep, pz_err_t *err) {
  *keep = true;
  pz_conv_rec_t conv;
  int rc = pz_wallet_red_packet_get(db, me, id, out, err);
  if (rc < 0) return rc;
  if ((rc = pz_store_conv_get(db, out->conversation_id, &conv, err)) < 0) return rc;
  if (conv.type == PZ_CONV_DIRECT && out->sender_id == me)
    return pz_err_set(err, PZ_EFORBIDDEN, "not_recipient", "this red packet is for the other person in the chat");
  rc = pz_store_wallet_claim_get(db, id, me, claim, err);
  if (rc == 0) return pz_err_set(err, PZ_ECONFLICT, "already_claimed", "you opened this red packet already");
  if (rc != PZ_ENOTFOUND) return rc;
  *err = (pz_err_t){0};
  if (out->status == PZ_RED_PACKET_FINISHED || out->claimed_count >= out->count)
    return pz_err_set(err, PZ_ECONFLICT, "red_packet_empty", "every share of this red packet was taken");
  if (out->status == PZ_RED_PACKET_REFUNDED || out->expires_at <= now) {
    /* 410 Gone: its time is up and what was left goes back to the sender. */
    pz_err_set(err, PZ_ECONFLICT, "red_packet_expired", "this red packet expired");
    err->status = 410;
    return PZ_ECONFLICT;
  }
  /* Decided here, on the writer, which runs claims one after another:
   * what is left cannot change between the draw and the move. */
  int64_t left = out->total - out->claimed_amount;
  unsigned n_left = out->count - out->claimed_count;
  memset(claim, 0, sizeof(*claim));
  claim->red_packet_id = id;
  claim->user_id = me;
  claim->position = out->claimed_count;
  claim->amount = pz_wallet_red_packet_share(out->mode, out->total, out->count, left, n_left);
  claim->claimed_at = now;
  *keep = false;
  pz_wallet_account_rec_t escrow, to;
  if ((rc = pz_store_wallet_claim_add(db, claim, now, err)) < 0 ||
      (rc = pz_wallet_account(db, 0, PZ_ACCT_ESCROW, out->currency, now, &escrow, err)) < 0 ||
      (rc = pz_wallet_account(db, me, PZ_ACCT_USER, out->currency, now, &to, err)) < 0 ||
      (rc = pz_wallet_move(db, pz_id_next(), PZ_TXN_RED_PACKET_CLAIM, id, &escrow, &to, claim->amount, now, err)) < 0)
    return rc;
  out->claimed_count++;
  out->claimed_amount += claim->amount;
  if (out->claimed_count == out->count) out->status = PZ_RED_PACKET_FINISHED;
  out->updated_at = now;
  return 0;
}

typedef struct {
  pz_db_t *db;
  int64_t now;
  unsigned n;
} expire_t;

static int expire_row(void *arg, const pz_wallet_red_packet_rec_t *p, pz_err_t *err) {
  expire_t *e = arg;
  bool changed = false;
  int rc = pz_store_wallet_red_packet_refund(e->db, p->id, e->now, &changed, err);
  if (rc < 0 || !changed) return rc;
  int64_t left = p->total - p->claimed_amount;
  e->n++;
  if (left == 0) return 0; /* cannot happen for an active packet; nothing to move */
  pz_wallet_account_rec_t escrow, to;
  if ((rc = pz_wallet_account(e->db, 0, PZ_ACCT_ESCROW, p->currency, e->now, &escrow, err)) < 0 ||
      (rc = pz_wallet_account(e->db, p->sender_id, PZ_ACCT_USER, p->currency, e->now, &to, err)) < 0)
    return rc;
  return pz_wallet_move(e->db, pz_id_next(), PZ_TXN_RED_PACKET_REFUND, p->id, &escrow, &to, left, e->now, err);
}

int pz_wallet_red_packet_expire(pz_db_t *db, int64_t now, unsigned limit, unsigned *n, pz_err_t *err) {
  expire_t e = {db, now, 0};
  int rc = pz_store_wallet_red_packets_expired(db, now, limit, expire_row, &e, err);
  *n = e.n;
  return rc;
}
