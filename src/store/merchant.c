/* SQL for merchants, their orders, payments and refunds, and the webhook outbox, behind store_merchant.h. */
#include <string.h>
#include "plaza/store_merchant.h"
#include "store/db.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const order_kinds[] = {"dynamic", "static"};
static const char *const order_statuses[] = {"pending", "paid", "refunded"};
static const char *const webhook_statuses[] = {"pending", "delivered", "failed"};

/* ---- row helpers ---- */

/* Binds texts from parameter first on; stops at the first failure. */
static int bind_texts(pz_db_t *db, sqlite3_stmt *st, int first, const char *const *texts, int n, pz_err_t *err) {
  for (int i = 0; i < n; i++) {
    int rc = pz__db_bind_text(db, st, first + i, texts[i], err);
    if (rc < 0) return rc;
  }
  return 0;
}

static int bind_i64_at(pz_db_t *db, sqlite3_stmt *st, int first, const int64_t *v, int n, pz_err_t *err) {
  for (int i = 0; i < n; i++) {
    int rc = sqlite3_bind_int64(st, first + i, v[i]);
    if (rc != SQLITE_OK) return pz__db_fail(db, rc, err);
  }
  return 0;
}

/* ---- merchants ---- */

#define MERCHANT_COLS "id, owner_id, name, webhook_url, api_key_hash, webhook_secret, created_at, updated_at"

static void col_merchant(sqlite3_stmt *st, pz_merchant_rec_t *m) {
  m->id = sqlite3_column_int64(st, 0);
  m->owner_id = sqlite3_column_int64(st, 1);
  pz__db_col_text(st, 2, m->name, sizeof(m->name));
  pz__db_col_text(st, 3, m->webhook_url, sizeof(m->webhook_url));
  pz__db_col_blob(st, 4, m->api_key_hash, sizeof(m->api_key_hash));
  pz__db_col_text(st, 5, m->webhook_secret, sizeof(m->webhook_secret));
  m->created_at = sqlite3_column_int64(st, 6);
  m->updated_at = sqlite3_column_int64(st, 7);
}

static const char SQL_MERCHANT_INSERT[] =
    "INSERT INTO merchants (" MERCHANT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

int pz_store_merchant_insert(pz_db_t *db, const pz_merchant_rec_t *m, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MERCHANT_INSERT, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, m->id, m->owner_id);
  if (rc == 0) rc = bind_texts(db, st, 3, (const char *const[]){m->name, m->webhook_url}, 2, err);
  if (rc == 0 && (rc = sqlite3_bind_blob(st, 5, m->api_key_hash, PZ_MERCHANT_KEY_HASH_LEN, SQLITE_STATIC)) != SQLITE_OK)
    rc = pz__db_fail(db, rc, err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 6, m->webhook_secret, err);
  if (rc == 0) rc = bind_i64_at(db, st, 7, (int64_t[]){m->created_at, m->updated_at}, 2, err);
  return rc < 0 ? rc : pz__db_step_done(db, st, err);
}

static int merchant_one(pz_db_t *db, sqlite3_stmt *st, pz_merchant_rec_t *out, pz_err_t *err) {
  int rc = pz__db_step_row(db, st, err);
  if (rc == 0) col_merchant(st, out);
  return rc;
}

static const char SQL_MERCHANT_GET[] = "SELECT " MERCHANT_COLS " FROM merchants WHERE id = ?1";
static const char SQL_MERCHANT_BY_OWNER[] = "SELECT " MERCHANT_COLS " FROM merchants WHERE owner_id = ?1";
static const char SQL_MERCHANT_BY_KEY[] = "SELECT " MERCHANT_COLS " FROM merchants WHERE api_key_hash = ?1";

int pz_store_merchant_get(pz_db_t *db, int64_t id, pz_merchant_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MERCHANT_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, id);
  return rc < 0 ? rc : merchant_one(db, st, out, err);
}

int pz_store_merchant_by_owner(pz_db_t *db, int64_t owner_id, pz_merchant_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MERCHANT_BY_OWNER, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, owner_id);
  return rc < 0 ? rc : merchant_one(db, st, out, err);
}

int pz_store_merchant_by_key(pz_db_t *db, const uint8_t hash[PZ_MERCHANT_KEY_HASH_LEN], pz_merchant_rec_t *out,
                             pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MERCHANT_BY_KEY, err);
  if (st == NULL) return err->code;
  int rc = sqlite3_bind_blob(st, 1, hash, PZ_MERCHANT_KEY_HASH_LEN, SQLITE_STATIC);
  if (rc != SQLITE_OK) return pz__db_fail(db, rc, err);
  return merchant_one(db, st, out, err);
}

static const char SQL_MERCHANT_UPDATE[] =
    "UPDATE merchants SET name = ?2, webhook_url = ?3, api_key_hash = ?4, updated_at = ?5 WHERE id = ?1";

int pz_store_merchant_update(pz_db_t *db, const pz_merchant_rec_t *m, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MERCHANT_UPDATE, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, m->id);
  if (rc == 0) rc = bind_texts(db, st, 2, (const char *const[]){m->name, m->webhook_url}, 2, err);
  if (rc == 0 && (rc = sqlite3_bind_blob(st, 4, m->api_key_hash, PZ_MERCHANT_KEY_HASH_LEN, SQLITE_STATIC)) != SQLITE_OK)
    rc = pz__db_fail(db, rc, err);
  if (rc == 0) rc = bind_i64_at(db, st, 5, &m->updated_at, 1, err);
  if (rc == 0) rc = pz__db_step_done(db, st, err);
  if (rc == 0 && sqlite3_changes(db->sql) == 0) rc = pz_err_set(err, PZ_ENOTFOUND, NULL, NULL);
  return rc;
}

/* ---- orders ---- */

#define ORDER_COLS                                                                                       \
  "id, merchant_id, code, kind, status, amount, currency, description, merchant_order_id, paid_amount, " \
  "refunded_amount, payer_id, payment_id, idem_key, created_at, expires_at, paid_at, updated_at"

static void col_order(sqlite3_stmt *st, pz_merchant_order_rec_t *o) {
  o->id = sqlite3_column_int64(st, 0);
  o->merchant_id = sqlite3_column_int64(st, 1);
  pz__db_col_text(st, 2, o->code, sizeof(o->code));
  o->kind = pz__db_col_enum(st, 3, order_kinds, N_OF(order_kinds), PZ_ORDER_DYNAMIC);
  o->status = pz__db_col_enum(st, 4, order_statuses, N_OF(order_statuses), PZ_ORDER_PENDING);
  o->amount = sqlite3_column_int64(st, 5);
  pz__db_col_text(st, 6, o->currency, sizeof(o->currency));
  pz__db_col_text(st, 7, o->description, sizeof(o->description));
  pz__db_col_text(st, 8, o->merchant_order_id, sizeof(o->merchant_order_id));
  o->paid_amount = sqlite3_column_int64(st, 9);
  o->refunded_amount = sqlite3_column_int64(st, 10);
  o->payer_id = sqlite3_column_int64(st, 11);
  o->payment_id = sqlite3_column_int64(st, 12);
  pz__db_col_text(st, 13, o->idem_key, sizeof(o->idem_key));
  o->created_at = sqlite3_column_int64(st, 14);
  o->expires_at = sqlite3_column_int64(st, 15);
  o->paid_at = sqlite3_column_int64(st, 16);
  o->updated_at = sqlite3_column_int64(st, 17);
}

static const char SQL_ORDER_INSERT[] = "INSERT INTO merchant_orders (" ORDER_COLS
                                       ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                                       "?16, ?17, ?18)";

int pz_store_merchant_order_insert(pz_db_t *db, const pz_merchant_order_rec_t *o, pz_err_t *err) {
  PZ_ASSERT(o->kind >= 0 && o->kind < N_OF(order_kinds) && o->status >= 0 && o->status < N_OF(order_statuses));
  sqlite3_stmt *st = pz__db_stmt(db, SQL_ORDER_INSERT, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, o->id, o->merchant_id);
  if (rc == 0)
    rc = bind_texts(db, st, 3, (const char *const[]){o->code, order_kinds[o->kind], order_statuses[o->status]}, 3, err);
  if (rc == 0) rc = bind_i64_at(db, st, 6, &o->amount, 1, err);
  if (rc == 0)
    rc = bind_texts(db, st, 7, (const char *const[]){o->currency, o->description, o->merchant_order_id}, 3, err);
  if (rc == 0)
    rc = bind_i64_at(db, st, 10, (int64_t[]){o->paid_amount, o->refunded_amount, o->payer_id, o->payment_id}, 4, err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 14, o->idem_key, err);
  if (rc == 0)
    rc = bind_i64_at(db, st, 15, (int64_t[]){o->created_at, o->expires_at, o->paid_at, o->updated_at}, 4, err);
  return rc < 0 ? rc : pz__db_step_done(db, st, err);
}

static const char SQL_ORDER_GET[] = "SELECT " ORDER_COLS " FROM merchant_orders WHERE id = ?1";
static const char SQL_ORDER_BY_CODE[] = "SELECT " ORDER_COLS " FROM merchant_orders WHERE code = ?1";

int pz_store_merchant_order_get(pz_db_t *db, int64_t id, pz_merchant_order_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_ORDER_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, id);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0) col_order(st, out);
  return rc;
}

int pz_store_merchant_order_by_code(pz_db_t *db, const char *code, pz_merchant_order_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_ORDER_BY_CODE, err);
  if (st == NULL) return err->code;
  int rc = pz__db_bind_text(db, st, 1, code, err);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0) col_order(st, out);
  return rc;
}

static const char SQL_ORDER_PAY[] =
    "UPDATE merchant_orders SET status = 'paid', paid_amount = amount, payer_id = ?2, payment_id = ?3, paid_at = ?4,"
    " updated_at = ?4 WHERE id = ?1 AND status = 'pending'";

int pz_store_merchant_order_pay(pz_db_t *db, int64_t id, int64_t payer_id, int64_t payment_id, int64_t now,
                                bool *changed, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_ORDER_PAY, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, id, payer_id, payment_id, now);
  if (rc == 0) rc = pz__db_step_done(db, st, err);
  *changed = rc == 0 && sqlite3_changes(db->sql) > 0;
  return rc;
}

static const char SQL_ORDER_REFUND[] =
    "UPDATE merchant_orders SET refunded_amount = refunded_amount + ?2,"
    " status = CASE WHEN refunded_amount + ?2 = paid_amount THEN 'refunded' ELSE status END, updated_at = ?3"
    " WHERE id = ?1 AND status = 'paid' AND refunded_amount + ?2 <= paid_amount";

int pz_store_merchant_order_refund(pz_db_t *db, int64_t id, int64_t amount, int64_t now, bool *changed, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_ORDER_REFUND, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, id, amount, now);
  if (rc == 0) rc = pz__db_step_done(db, st, err);
  *changed = rc == 0 && sqlite3_changes(db->sql) > 0;
  return rc;
}

/* ---- payments and refunds ---- */

static const char SQL_PAYMENT_INSERT[] =
    "INSERT INTO merchant_payments (id, order_id, merchant_id, payer_id, amount, currency, idem_key, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

int pz_store_merchant_payment_insert(pz_db_t *db, const pz_merchant_payment_rec_t *p, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_PAYMENT_INSERT, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, p->id, p->order_id, p->merchant_id, p->payer_id, p->amount);
  if (rc == 0) rc = bind_texts(db, st, 6, (const char *const[]){p->currency, p->idem_key}, 2, err);
  if (rc == 0) rc = bind_i64_at(db, st, 8, &p->created_at, 1, err);
  return rc < 0 ? rc : pz__db_step_done(db, st, err);
}

static const char SQL_PAYMENT_GET[] =
    "SELECT id, order_id, merchant_id, payer_id, amount, currency, idem_key, created_at FROM merchant_payments"
    " WHERE id = ?1";

int pz_store_merchant_payment_get(pz_db_t *db, int64_t id, pz_merchant_payment_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_PAYMENT_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, id);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc < 0) return rc;
  out->id = sqlite3_column_int64(st, 0);
  out->order_id = sqlite3_column_int64(st, 1);
  out->merchant_id = sqlite3_column_int64(st, 2);
  out->payer_id = sqlite3_column_int64(st, 3);
  out->amount = sqlite3_column_int64(st, 4);
  pz__db_col_text(st, 5, out->currency, sizeof(out->currency));
  pz__db_col_text(st, 6, out->idem_key, sizeof(out->idem_key));
  out->created_at = sqlite3_column_int64(st, 7);
  return 0;
}

static const char SQL_REFUND_INSERT[] =
    "INSERT INTO merchant_refunds (id, order_id, merchant_id, payer_id, amount, currency, reason, idem_key,"
    " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

int pz_store_merchant_refund_insert(pz_db_t *db, const pz_merchant_refund_rec_t *r, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_REFUND_INSERT, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, r->id, r->order_id, r->merchant_id, r->payer_id, r->amount);
  if (rc == 0) rc = bind_texts(db, st, 6, (const char *const[]){r->currency, r->reason, r->idem_key}, 3, err);
  if (rc == 0) rc = bind_i64_at(db, st, 9, &r->created_at, 1, err);
  return rc < 0 ? rc : pz__db_step_done(db, st, err);
}

/* ---- the webhook outbox ---- */

static const char SQL_WEBHOOK_INSERT[] =
    "INSERT INTO merchant_webhooks (id, merchant_id, type, body, status, attempts, next_at, last_status, created_at,"
    " updated_at) VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, 0, ?6, ?6)";

int pz_store_merchant_webhook_insert(pz_db_t *db, const pz_merchant_webhook_rec_t *w, int64_t now, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_WEBHOOK_INSERT, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, w->id, w->merchant_id);
  if (rc == 0) rc = pz__db_bind_text(db, st, 3, w->type, err);
  if (rc == 0 && (rc = sqlite3_bind_text(st, 4, w->body, (int)w->body_len, SQLITE_STATIC)) != SQLITE_OK)
    rc = pz__db_fail(db, rc, err);
  if (rc == 0) rc = bind_i64_at(db, st, 5, (int64_t[]){w->next_at, now}, 2, err);
  return rc < 0 ? rc : pz__db_step_done(db, st, err);
}

static const char SQL_WEBHOOK_ANY_DUE[] =
    "SELECT 1 FROM merchant_webhooks WHERE status = 'pending' AND next_at <= ?1 LIMIT 1";

int pz_store_merchant_webhook_any_due(pz_db_t *db, int64_t now, bool *found, pz_err_t *err) {
  *found = false;
  sqlite3_stmt *st = pz__db_stmt(db, SQL_WEBHOOK_ANY_DUE, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, now);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == PZ_ENOTFOUND) {
    *err = (pz_err_t){0};
    return 0;
  }
  *found = rc == 0;
  return rc;
}

#define WEBHOOK_COLS "w.id, w.merchant_id, w.type, w.status, w.attempts, w.next_at, w.last_status, w.created_at, w.body"

static void col_webhook(sqlite3_stmt *st, pz_merchant_webhook_rec_t *w) {
  w->id = sqlite3_column_int64(st, 0);
  w->merchant_id = sqlite3_column_int64(st, 1);
  pz__db_col_text(st, 2, w->type, sizeof(w->type));
  w->status = pz__db_col_enum(st, 3, webhook_statuses, N_OF(webhook_statuses), PZ_WEBHOOK_PENDING);
  w->attempts = sqlite3_column_int(st, 4);
  w->next_at = sqlite3_column_int64(st, 5);
  w->last_status = sqlite3_column_int(st, 6);
  w->created_at = sqlite3_column_int64(st, 7);
  w->body_len = pz__db_col_text(st, 8, w->body, sizeof(w->body));
}

static const char SQL_WEBHOOKS_DUE[] = "SELECT " WEBHOOK_COLS
                                       ", m.webhook_url, m.webhook_secret FROM merchant_webhooks w"
                                       " JOIN merchants m ON m.id = w.merchant_id"
                                       " WHERE w.status = 'pending' AND w.next_at <= ?1 ORDER BY w.next_at LIMIT ?2";

int pz_store_merchant_webhooks_due(pz_db_t *db, int64_t now, unsigned limit, pz_store_merchant_webhook_cb cb, void *arg,
                                   pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_WEBHOOKS_DUE, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, now, (int64_t)limit);
  if (rc < 0) return rc;
  /* The rows are read whole before any is handed over: the callback
   * updates the table this statement walks. */
  unsigned n = 0;
  pz_merchant_webhook_rec_t *rows = pz_calloc(limit ? limit : 1, sizeof(*rows));
  while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    col_webhook(st, &rows[n]);
    pz__db_col_text(st, 9, rows[n].url, sizeof(rows[n].url));
    pz__db_col_text(st, 10, rows[n].secret, sizeof(rows[n].secret));
    n++;
  }
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

static const char SQL_WEBHOOK_SET[] =
    "UPDATE merchant_webhooks SET status = ?2, attempts = ?3, next_at = ?4, last_status = ?5, updated_at = ?6"
    " WHERE id = ?1";

int pz_store_merchant_webhook_set(pz_db_t *db, int64_t id, int status, int attempts, int64_t next_at, int last_status,
                                  int64_t now, pz_err_t *err) {
  PZ_ASSERT(status >= 0 && status < N_OF(webhook_statuses));
  sqlite3_stmt *st = pz__db_stmt(db, SQL_WEBHOOK_SET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, id);
  if (rc == 0) rc = pz__db_bind_text(db, st, 2, webhook_statuses[status], err);
  if (rc == 0) rc = bind_i64_at(db, st, 3, (int64_t[]){attempts, next_at, last_status, now}, 4, err);
  if (rc == 0) rc = pz__db_step_done(db, st, err);
  if (rc == 0 && sqlite3_changes(db->sql) == 0) rc = pz_err_set(err, PZ_ENOTFOUND, NULL, NULL);
  return rc;
}

static const char SQL_WEBHOOK_GET[] = "SELECT " WEBHOOK_COLS " FROM merchant_webhooks w WHERE w.id = ?1";

int pz_store_merchant_webhook_get(pz_db_t *db, int64_t id, pz_merchant_webhook_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_WEBHOOK_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, id);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc < 0) return rc;
  col_webhook(st, out);
  out->url[0] = out->secret[0] = '\0';
  return 0;
}

/* ---- verification ---- */

/* Columns fill a violation: id, user_id, currency, key, a, b. */
static const char SQL_VERIFY_PAID[] =
    "SELECT o.id, 0, o.currency, '', o.paid_amount, coalesce(p.total, 0) FROM merchant_orders o"
    " LEFT JOIN (SELECT order_id, SUM(amount) AS total FROM merchant_payments GROUP BY order_id) p"
    "  ON p.order_id = o.id WHERE o.paid_amount <> coalesce(p.total, 0)";
static const char SQL_VERIFY_REFUNDED[] =
    "SELECT o.id, 0, o.currency, '', o.refunded_amount, coalesce(r.total, 0) FROM merchant_orders o"
    " LEFT JOIN (SELECT order_id, SUM(amount) AS total FROM merchant_refunds GROUP BY order_id) r"
    "  ON r.order_id = o.id WHERE o.refunded_amount <> coalesce(r.total, 0) OR o.refunded_amount > o.paid_amount";
static const char SQL_VERIFY_LEDGER[] =
    "SELECT x.id, 0, x.currency, '', count(t.id), 0 FROM ("
    "  SELECT id, currency, 'merchant_payment' AS kind FROM merchant_payments"
    "  UNION ALL SELECT id, currency, 'merchant_refund' FROM merchant_refunds) x"
    " LEFT JOIN wallet_txns t ON t.ref_id = x.id AND t.kind = x.kind"
    " GROUP BY x.id HAVING count(t.id) <> 1";
/* Payments are keyed by their payer; dynamic orders and refunds by their merchant. */
static const char SQL_VERIFY_KEYS[] =
    "SELECT o.id, o.scope, '', o.idem_key, 0, 0 FROM ("
    "  SELECT id, payer_id AS scope, idem_key FROM merchant_payments"
    "  UNION ALL SELECT id, merchant_id, idem_key FROM merchant_refunds"
    "  UNION ALL SELECT id, merchant_id, idem_key FROM merchant_orders WHERE kind = 'dynamic') o"
    " LEFT JOIN wallet_idempotency i ON i.user_id = o.scope AND i.key = o.idem_key AND i.ref_id = o.id"
    " WHERE i.user_id IS NULL";

int pz_store_merchant_verify(pz_db_t *db, pz_store_wallet_violation_cb cb, void *arg, pz_err_t *err) {
  static const struct {
    const char *sql;
    int kind;
  } checks[] = {
      {SQL_VERIFY_PAID, PZ_VERIFY_ORDER_TOTALS},
      {SQL_VERIFY_REFUNDED, PZ_VERIFY_ORDER_REFUNDS},
      {SQL_VERIFY_LEDGER, PZ_VERIFY_PAYMENT_LEDGER},
      {SQL_VERIFY_KEYS, PZ_VERIFY_MERCHANT_KEY},
  };
  for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
    sqlite3_stmt *st = pz__db_stmt(db, checks[i].sql, err);
    if (st == NULL) return err->code;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      pz_wallet_violation_t v = {.kind = checks[i].kind};
      v.id = sqlite3_column_int64(st, 0);
      v.user_id = sqlite3_column_int64(st, 1);
      pz__db_col_text(st, 2, v.currency, sizeof(v.currency));
      pz__db_col_text(st, 3, v.key, sizeof(v.key));
      v.a = sqlite3_column_int64(st, 4);
      v.b = sqlite3_column_int64(st, 5);
      int cb_rc = cb(arg, &v, err);
      if (cb_rc < 0) return cb_rc;
    }
    if (rc != SQLITE_DONE) return pz__db_fail(db, rc, err);
  }
  return 0;
}
