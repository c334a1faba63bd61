/* SQL for red packets and their claims, behind the red packet section of store_wallet.h. */
#include <string.h>
#include "plaza/store_wallet.h"
#include "store/db.h"

static const char *const modes[] = {"random", "equal"};
static const char *const statuses[] = {"active", "finished", "refunded"};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- packets ---- */

#define PACKET_COLS                                                                                             \
  "id, sender_id, conversation_id, message_id, total, count, mode, currency, greeting, status, claimed_count, " \
  "claimed_amount, idem_key, created_at, expires_at, updated_at"

static void col_packet(sqlite3_stmt *st, pz_wallet_red_packet_rec_t *p) {
  memset(p, 0, sizeof(*p));
  p->id = sqlite3_column_int64(st, 0);
  p->sender_id = sqlite3_column_int64(st, 1);
  p->conversation_id = sqlite3_column_int64(st, 2);
  p->message_id = sqlite3_column_int64(st, 3);
  p->total = sqlite3_column_int64(st, 4);
  p->count = (unsigned)sqlite3_column_int(st, 5);
  p->mode = pz__db_col_enum(st, 6, modes, N_OF(modes), PZ_RED_PACKET_RANDOM);
  pz__db_col_text(st, 7, p->currency, sizeof(p->currency));
  pz__db_col_text(st, 8, p->greeting, sizeof(p->greeting));
  p->status = pz__db_col_enum(st, 9, statuses, N_OF(statuses), PZ_RED_PACKET_ACTIVE);
  p->claimed_count = (unsigned)sqlite3_column_int(st, 10);
  p->claimed_amount = sqlite3_column_int64(st, 11);
  pz__db_col_text(st, 12, p->idem_key, sizeof(p->idem_key));
  p->created_at = sqlite3_column_int64(st, 13);
  p->expires_at = sqlite3_column_int64(st, 14);
  p->updated_at = sqlite3_column_int64(st, 15);
}

static const char SQL_PACKET_INSERT[] = "INSERT INTO wallet_red_packets (" PACKET_COLS
                                        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, 0, ?11, ?12, ?13, ?14)";

int pz_store_wallet_red_packet_insert(pz_db_t *db, const pz_wallet_red_packet_rec_t *p, pz_err_t *err) {
  PZ_ASSERT(p->mode >= 0 && p->mode < N_OF(modes) && p->status >= 0 && p->status < N_OF(statuses));
  sqlite3_stmt *st = pz__db_stmt(db, SQL_PACKET_INSERT, err);
  if (st == NULL) return err->code;
  int rc =
      PZ__DB_BIND(db, st, err, p->id, p->sender_id, p->conversation_id, p->message_id, p->total, (int64_t)p->count);
  if (rc == 0) rc = pz__db_bind_text(db, st, 7, modes[p->mode], err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 8, p->currency, err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 9, p->greeting, err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 10, statuses[p->status], err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 11, p->idem_key, err);
  if (rc == 0 && ((rc = sqlite3_bind_int64(st, 12, p->created_at)) != SQLITE_OK ||
                  (rc = sqlite3_bind_int64(st, 13, p->expires_at)) != SQLITE_OK ||
                  (rc = sqlite3_bind_int64(st, 14, p->updated_at)) != SQLITE_OK))
    rc = pz__db_fail(db, rc, err);
  return rc < 0 ? rc : pz__db_step_done(db, st, err);
}

static const char SQL_PACKET_GET[] = "SELECT " PACKET_COLS " FROM wallet_red_packets WHERE id = ?1";

int pz_store_wallet_red_packet_get(pz_db_t *db, int64_t id, pz_wallet_red_packet_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_PACKET_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, id);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0) col_packet(st, out);
  return rc;
}

static const char SQL_PACKET_REFUND[] =
    "UPDATE wallet_red_packets SET status = 'refunded', updated_at = ?2 WHERE id = ?1 AND status = 'active'";

int pz_store_wallet_red_packet_refund(pz_db_t *db, int64_t id, int64_t now, bool *changed, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_PACKET_REFUND, err);
  *changed = false;
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, id, now);
  if (rc == 0) rc = pz__db_step_done(db, st, err);
  *changed = rc == 0 && sqlite3_changes(db->sql) > 0;
  return rc;
}

static const char SQL_PACKETS_EXPIRED[] = "SELECT " PACKET_COLS
                                          " FROM wallet_red_packets"
                                          " WHERE status = 'active' AND expires_at <= ?1"
                                          " ORDER BY expires_at LIMIT ?2";

int pz_store_wallet_red_packets_expired(pz_db_t *db, int64_t now, unsigned limit, pz_store_wallet_red_packet_cb cb,
                                        void *arg, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_PACKETS_EXPIRED, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, now, (int64_t)limit);
  if (rc < 0) return rc;
  /* Read whole before any is refunded: the refund updates the rows this
   * statement walks. */
  unsigned n = 0;
  pz_wallet_red_packet_rec_t *rows = pz_malloc((limit ? limit : 1) * sizeof(*rows));
  while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
    col_packet(st, &rows[n++]);
  if (n < limit && rc != SQLITE_DONE) {
    rc = pz__db_fail(db, rc, err);
    goto out;
  }
  sqlite3_reset(st);
  rc = 0;
  for (unsigned i = 0; i < n && rc == 0; i++)
    rc = cb(arg, &rows[i], err);
out:
  pz_free(rows);
  return rc;
}

/* ---- claims ---- */

static const char SQL_CLAIM_INSERT[] =
    "INSERT INTO wallet_red_packet_claims (red_packet_id, user_id, position, amount, claimed_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5)";
/* The guard in the WHERE clause, with the table's CHECKs, is the last line
 * of defence: a claim that would take more shares or money than the packet
 * holds changes no row. */
static const char SQL_CLAIM_COUNT[] =
    "UPDATE wallet_red_packets SET claimed_count = claimed_count + 1, claimed_amount = claimed_amount + ?2,"
    "  status = CASE WHEN claimed_count + 1 = count THEN 'finished' ELSE status END, updated_at = ?3"
    " WHERE id = ?1 AND status = 'active' AND claimed_count < count AND claimed_amount + ?2 <= total";

int pz_store_wallet_claim_add(pz_db_t *db, const pz_wallet_claim_rec_t *c, int64_t now, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_CLAIM_INSERT, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, c->red_packet_id, c->user_id, (int64_t)c->position, c->amount, c->claimed_at);
  if (rc == 0) rc = pz__db_step_done(db, st, err);
  if (rc < 0) return rc;
  if ((st = pz__db_stmt(db, SQL_CLAIM_COUNT, err)) == NULL) return err->code;
  if ((rc = PZ__DB_BIND(db, st, err, c->red_packet_id, c->amount, now)) < 0) return rc;
  if ((rc = pz__db_step_done(db, st, err)) < 0) return rc;
  return sqlite3_changes(db->sql) == 1 ? 0 : pz_err_set(err, PZ_ECONFLICT, NULL, "the red packet has no share left");
}

#define CLAIM_COLS "red_packet_id, user_id, position, amount, claimed_at"

static void col_claim(sqlite3_stmt *st, pz_wallet_claim_rec_t *c) {
  c->red_packet_id = sqlite3_column_int64(st, 0);
  c->user_id = sqlite3_column_int64(st, 1);
  c->position = (unsigned)sqlite3_column_int(st, 2);
  c->amount = sqlite3_column_int64(st, 3);
  c->claimed_at = sqlite3_column_int64(st, 4);
}

static const char SQL_CLAIM_GET[] =
    "SELECT " CLAIM_COLS " FROM wallet_red_packet_claims WHERE red_packet_id = ?1 AND user_id = ?2";

int pz_store_wallet_claim_get(pz_db_t *db, int64_t red_packet_id, int64_t user_id, pz_wallet_claim_rec_t *out,
                              pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_CLAIM_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, red_packet_id, user_id);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0) col_claim(st, out);
  return rc;
}

static const char SQL_CLAIMS_LIST[] =
    "SELECT " CLAIM_COLS " FROM wallet_red_packet_claims WHERE red_packet_id = ?1 ORDER BY position";

int pz_store_wallet_claims_list(pz_db_t *db, int64_t red_packet_id, pz_store_wallet_claim_cb cb, void *arg,
                                pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_CLAIMS_LIST, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, red_packet_id);
  if (rc < 0) return rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    pz_wallet_claim_rec_t c;
    col_claim(st, &c);
    int cb_rc = cb(arg, &c, err);
    if (cb_rc < 0) return cb_rc;
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}
