/* SQL for users, sessions, contact requests, contacts and blocks, behind the typed functions of store_auth.h. */
#include <sodium.h>
#include <string.h>
#include "plaza/store_auth.h"
#include "store/db.h"

#define USER_COLS(t) t ".id, " t ".username, " t ".display_name, " t ".bio, " t ".created_at"
#define N_USER_COLS 5
#define SESSION_COLS "id, user_id, token_hash, device, ip, created_at, last_seen_at, expires_at"
#define REQ_COLS "r.id, r.from_user_id, r.to_user_id, r.greeting, r.status, r.created_at, r.updated_at"
#define N_REQ_COLS 7

/* ---- row helpers ---- */

static void col_user(sqlite3_stmt *st, int i, pz_user_rec_t *u) {
  u->id = sqlite3_column_int64(st, i);
  pz__db_col_text(st, i + 1, u->username, sizeof(u->username));
  pz__db_col_text(st, i + 2, u->display_name, sizeof(u->display_name));
  pz__db_col_text(st, i + 3, u->bio, sizeof(u->bio));
  u->created_at = sqlite3_column_int64(st, i + 4);
}

static void col_session(sqlite3_stmt *st, pz_session_rec_t *s) {
  s->id = sqlite3_column_int64(st, 0);
  s->user_id = sqlite3_column_int64(st, 1);
  const char *hex = (const char *)sqlite3_column_text(st, 2);
  memset(s->token_hash, 0, sizeof(s->token_hash));
  if (hex)
    sodium_hex2bin(s->token_hash, sizeof(s->token_hash), hex, (size_t)sqlite3_column_bytes(st, 2), NULL, NULL,
                   NULL);
  pz__db_col_text(st, 3, s->device, sizeof(s->device));
  pz__db_col_text(st, 4, s->ip, sizeof(s->ip));
  s->created_at = sqlite3_column_int64(st, 5);
  s->last_seen_at = sqlite3_column_int64(st, 6);
  s->expires_at = sqlite3_column_int64(st, 7);
}

static const char *const status_names[] = {"pending", "accepted", "declined"};

static int status_parse(const unsigned char *s) {
  for (int i = 0; i < 3; i++)
    if (s && strcmp((const char *)s, status_names[i]) == 0) return i;
  return PZ_CONTACT_REQ_PENDING;
}

static void col_req(sqlite3_stmt *st, pz_contact_req_rec_t *r) {
  r->id = sqlite3_column_int64(st, 0);
  r->from_id = sqlite3_column_int64(st, 1);
  r->to_id = sqlite3_column_int64(st, 2);
  pz__db_col_text(st, 3, r->greeting, sizeof(r->greeting));
  r->status = status_parse(sqlite3_column_text(st, 4));
  r->created_at = sqlite3_column_int64(st, 5);
  r->updated_at = sqlite3_column_int64(st, 6);
}

/* Steps a statement that returns no rows. */

/* Steps a statement that returns at most one row: 0 with a row, PZ_ENOTFOUND without. */

static int bind_ids(pz_db_t *db, sqlite3_stmt *st, int64_t a, int64_t b, pz_err_t *err) {
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, a)) != SQLITE_OK || (rc = sqlite3_bind_int64(st, 2, b)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  return 0;
}

static int exists(pz_db_t *db, const char *sql, int64_t a, int64_t b, bool *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, sql, err);
  if (st == NULL) return err->code;
  int rc = bind_ids(db, st, a, b, err);
  if (rc < 0) return rc;
  rc = pz__db_step_row(db, st, err);
  *out = rc == 0;
  return rc == PZ_ENOTFOUND ? 0 : rc;
}

/* Runs a two-id DELETE or UPDATE and reports whether it changed a row. */
static int run_pair(pz_db_t *db, const char *sql, int64_t a, int64_t b, bool *removed, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, sql, err);
  if (st == NULL) return err->code;
  int rc = bind_ids(db, st, a, b, err);
  if (rc == 0) rc = pz__db_step_done(db, st, err);
  if (rc == 0 && removed) *removed = sqlite3_changes(db->sql) > 0;
  return rc;
}

/* ---- users ---- */

static const char SQL_USER_INSERT[] =
    "INSERT INTO users (id, username, display_name, bio, password_hash, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)";

int pz_store_user_insert(pz_db_t *db, const pz_user_rec_t *user, const char *password_hash, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_USER_INSERT, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, user->id)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 2, user->username, -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 3, user->display_name, -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 4, user->bio, -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 5, password_hash, -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 6, user->created_at)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  return pz__db_step_done(db, st, err);
}

static const char SQL_USER_GET[] = "SELECT " USER_COLS("u") " FROM users u WHERE u.id = ?1";

int pz_store_user_get(pz_db_t *db, int64_t id, pz_user_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_USER_GET, err);
  if (st == NULL) return err->code;
  int rc = sqlite3_bind_int64(st, 1, id);
  if (rc != SQLITE_OK) return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_row(db, st, err)) < 0) return rc;
  col_user(st, 0, out);
  return 0;
}

static const char SQL_USER_FIND[] =
    "SELECT " USER_COLS("u") ", u.password_hash FROM users u WHERE u.username = ?1";

int pz_store_user_find(pz_db_t *db, pz_str_t username, pz_user_rec_t *out, char *password_hash, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_USER_FIND, err);
  if (st == NULL) return err->code;
  int rc = pz__db_bind_str(st, 1, username);
  if (rc != SQLITE_OK) return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_row(db, st, err)) < 0) return rc;
  col_user(st, 0, out);
  if (password_hash) pz__db_col_text(st, N_USER_COLS, password_hash, PZ_PASSWORD_HASH_MAX + 1);
  return 0;
}

/* NULL parameters keep the stored value. */
static const char SQL_USER_SET_PROFILE[] =
    "UPDATE users SET display_name = COALESCE(?2, display_name), bio = COALESCE(?3, bio), updated_at = ?4"
    " WHERE id = ?1";

int pz_store_user_set_profile(pz_db_t *db, int64_t id, const pz_str_t *display_name, const pz_str_t *bio,
                              int64_t now, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_USER_SET_PROFILE, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, id)) != SQLITE_OK ||
      (rc = display_name ? pz__db_bind_str(st, 2, *display_name) : sqlite3_bind_null(st, 2)) != SQLITE_OK ||
      (rc = bio ? pz__db_bind_str(st, 3, *bio) : sqlite3_bind_null(st, 3)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 4, now)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_done(db, st, err)) < 0) return rc;
  if (sqlite3_changes(db->sql) == 0) return pz_err_set(err, PZ_ENOTFOUND, NULL, NULL);
  return 0;
}

/* A prefix is the range [prefix, successor): with both bounds the scan of
 * the username index stops at the end of the range, whatever the limit.
 * LIKE would treat '_' as a wildcard and, case-insensitive by default,
 * could not use the index at all. */
static const char SQL_USER_SEARCH_RANGE[] = "SELECT " USER_COLS("u") " FROM users u"
                                            " WHERE u.username >= ?1 AND u.username < ?2"
                                            " ORDER BY u.username LIMIT ?3";
static const char SQL_USER_SEARCH_FROM[] =
    "SELECT " USER_COLS("u") " FROM users u WHERE u.username >= ?1 ORDER BY u.username LIMIT ?3";

int pz_store_user_search(pz_db_t *db, pz_str_t prefix, unsigned limit, pz_store_user_cb cb, void *arg,
                         pz_err_t *err) {
  /* The successor of the prefix: drop trailing 0xff bytes and bump the
   * last remaining byte. None exists for "" or all-0xff prefixes, which
   * are bounded by the end of the index instead. */
  char upper[PZ_USERNAME_MAX];
  if (prefix.len > sizeof(upper)) return 0; /* longer than any username */
  size_t n_upper = prefix.len;
  if (n_upper) memcpy(upper, prefix.ptr, n_upper);
  while (n_upper > 0 && (unsigned char)upper[n_upper - 1] == 0xff) n_upper--;
  if (n_upper > 0) upper[n_upper - 1] = (char)((unsigned char)upper[n_upper - 1] + 1);

  sqlite3_stmt *st = pz__db_stmt(db, n_upper ? SQL_USER_SEARCH_RANGE : SQL_USER_SEARCH_FROM, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = pz__db_bind_str(st, 1, prefix)) != SQLITE_OK ||
      (n_upper && (rc = pz__db_bind_str(st, 2, pz_str_n(upper, n_upper))) != SQLITE_OK) ||
      (rc = sqlite3_bind_int64(st, 3, limit)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  pz_user_rec_t u;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    col_user(st, 0, &u);
    int cb_rc = cb(arg, &u, err);
    if (cb_rc < 0) return cb_rc;
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

/* ---- sessions ---- */

static const char SQL_SESSION_INSERT[] = "INSERT INTO sessions (" SESSION_COLS ")"
                                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

int pz_store_session_insert(pz_db_t *db, const pz_session_rec_t *s, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_SESSION_INSERT, err);
  if (st == NULL) return err->code;
  char hex[PZ_TOKEN_HASH_LEN * 2 + 1];
  sodium_bin2hex(hex, sizeof(hex), s->token_hash, sizeof(s->token_hash));
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, s->id)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 2, s->user_id)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 3, hex, -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 4, s->device, -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 5, s->ip, -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 6, s->created_at)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 7, s->last_seen_at)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 8, s->expires_at)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  return pz__db_step_done(db, st, err);
}

static const char SQL_SESSION_BY_TOKEN[] =
    "SELECT " SESSION_COLS " FROM sessions WHERE token_hash = ?1 AND expires_at > ?2";

int pz_store_session_by_token(pz_db_t *db, const uint8_t token_hash[PZ_TOKEN_HASH_LEN], int64_t now,
                              pz_session_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_SESSION_BY_TOKEN, err);
  if (st == NULL) return err->code;
  char hex[PZ_TOKEN_HASH_LEN * 2 + 1];
  sodium_bin2hex(hex, sizeof(hex), token_hash, PZ_TOKEN_HASH_LEN);
  int rc;
  if ((rc = sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 2, now)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_row(db, st, err)) < 0) return rc;
  col_session(st, out);
  return 0;
}

static const char SQL_SESSION_GET[] = "SELECT " SESSION_COLS " FROM sessions WHERE id = ?1 AND user_id = ?2";

int pz_store_session_get(pz_db_t *db, int64_t user_id, int64_t session_id, pz_session_rec_t *out,
                         pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_SESSION_GET, err);
  if (st == NULL) return err->code;
  int rc = bind_ids(db, st, session_id, user_id, err);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0) col_session(st, out);
  return rc;
}

static const char SQL_SESSION_DELETE[] = "DELETE FROM sessions WHERE id = ?1 AND user_id = ?2";

int pz_store_session_delete(pz_db_t *db, int64_t user_id, int64_t session_id, pz_err_t *err) {
  bool removed = false;
  int rc = run_pair(db, SQL_SESSION_DELETE, session_id, user_id, &removed, err);
  if (rc == 0 && !removed) rc = pz_err_set(err, PZ_ENOTFOUND, NULL, NULL);
  return rc;
}

static const char SQL_SESSION_DELETE_EXPIRED[] = "DELETE FROM sessions WHERE user_id = ?1 AND expires_at <= ?2";

int pz_store_session_delete_expired(pz_db_t *db, int64_t user_id, int64_t now, pz_err_t *err) {
  return run_pair(db, SQL_SESSION_DELETE_EXPIRED, user_id, now, NULL, err);
}

static const char SQL_SESSION_COUNT[] = "SELECT COUNT(*) FROM sessions WHERE user_id = ?1 AND expires_at > ?2";
static const char SQL_SESSION_OLDEST[] = "SELECT " SESSION_COLS " FROM sessions"
                                         " WHERE user_id = ?1 AND expires_at > ?2"
                                         " ORDER BY last_seen_at, id LIMIT 1";

int pz_store_session_count(pz_db_t *db, int64_t user_id, int64_t now, unsigned *n, pz_session_rec_t *oldest,
                           pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_SESSION_COUNT, err);
  if (st == NULL) return err->code;
  int rc = bind_ids(db, st, user_id, now, err);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc < 0) return rc;
  *n = (unsigned)sqlite3_column_int64(st, 0);
  if (oldest == NULL || *n == 0) return 0;
  if ((st = pz__db_stmt(db, SQL_SESSION_OLDEST, err)) == NULL) return err->code;
  if ((rc = bind_ids(db, st, user_id, now, err)) == 0 && (rc = pz__db_step_row(db, st, err)) == 0) col_session(st, oldest);
  return rc;
}

static const char SQL_SESSION_LIST[] = "SELECT " SESSION_COLS " FROM sessions"
                                       " WHERE user_id = ?1 AND expires_at > ?2"
                                       " ORDER BY last_seen_at DESC, id DESC";

int pz_store_session_list(pz_db_t *db, int64_t user_id, int64_t now, pz_store_session_cb cb, void *arg,
                          pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_SESSION_LIST, err);
  if (st == NULL) return err->code;
  int rc = bind_ids(db, st, user_id, now, err);
  if (rc < 0) return rc;
  pz_session_rec_t s;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    col_session(st, &s);
    int cb_rc = cb(arg, &s, err);
    if (cb_rc < 0) return cb_rc;
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

static const char SQL_SESSION_TOUCH[] = "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1 AND last_seen_at < ?2";

int pz_store_session_touch(pz_db_t *db, int64_t session_id, int64_t now, pz_err_t *err) {
  return run_pair(db, SQL_SESSION_TOUCH, session_id, now, NULL, err);
}

/* ---- contact requests ---- */

static const char SQL_REQ_INSERT[] =
    "INSERT INTO contact_requests (id, from_user_id, to_user_id, greeting, status, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

int pz_store_contact_req_insert(pz_db_t *db, const pz_contact_req_rec_t *r, pz_err_t *err) {
  PZ_ASSERT(r->status >= 0 && r->status < 3);
  sqlite3_stmt *st = pz__db_stmt(db, SQL_REQ_INSERT, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, r->id)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 2, r->from_id)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 3, r->to_id)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 4, r->greeting, -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 5, status_names[r->status], -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 6, r->created_at)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 7, r->updated_at)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  return pz__db_step_done(db, st, err);
}

static const char SQL_REQ_GET[] = "SELECT " REQ_COLS " FROM contact_requests r WHERE r.id = ?1";

int pz_store_contact_req_get(pz_db_t *db, int64_t id, pz_contact_req_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_REQ_GET, err);
  if (st == NULL) return err->code;
  int rc = sqlite3_bind_int64(st, 1, id);
  if (rc != SQLITE_OK) return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_row(db, st, err)) == 0) col_req(st, out);
  return rc;
}

static const char SQL_REQ_PENDING[] = "SELECT " REQ_COLS " FROM contact_requests r"
                                      " WHERE r.from_user_id = ?1 AND r.to_user_id = ?2 AND r.status = 'pending'";

int pz_store_contact_req_pending(pz_db_t *db, int64_t from_id, int64_t to_id, pz_contact_req_rec_t *out,
                                 pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_REQ_PENDING, err);
  if (st == NULL) return err->code;
  int rc = bind_ids(db, st, from_id, to_id, err);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0) col_req(st, out);
  return rc;
}

static const char SQL_REQ_SET_STATUS[] = "UPDATE contact_requests SET status = ?2, updated_at = ?3 WHERE id = ?1";

int pz_store_contact_req_set_status(pz_db_t *db, int64_t id, int status, int64_t now, pz_err_t *err) {
  PZ_ASSERT(status >= 0 && status < 3);
  sqlite3_stmt *st = pz__db_stmt(db, SQL_REQ_SET_STATUS, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, id)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 2, status_names[status], -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 3, now)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_done(db, st, err)) < 0) return rc;
  if (sqlite3_changes(db->sql) == 0) return pz_err_set(err, PZ_ENOTFOUND, NULL, NULL);
  return 0;
}

/* One direction per statement, so that each is a lookup in the partial
 * index of pending requests rather than an OR that defeats it. */
static const char SQL_REQ_DELETE_PENDING[] =
    "DELETE FROM contact_requests WHERE from_user_id = ?1 AND to_user_id = ?2 AND status = 'pending'";

int pz_store_contact_req_delete_pending(pz_db_t *db, int64_t a, int64_t b, pz_err_t *err) {
  int rc = run_pair(db, SQL_REQ_DELETE_PENDING, a, b, NULL, err);
  if (rc == 0) rc = run_pair(db, SQL_REQ_DELETE_PENDING, b, a, NULL, err);
  return rc;
}

#define REQ_LIST_SELECT                                                                       \
  "SELECT " REQ_COLS ", " USER_COLS("f") ", " USER_COLS("t") " FROM contact_requests r"       \
  " JOIN users f ON f.id = r.from_user_id JOIN users t ON t.id = r.to_user_id"
static const char SQL_REQ_LIST_IN[] = REQ_LIST_SELECT " WHERE r.to_user_id = ?1 AND r.status = 'pending'"
                                                      " ORDER BY r.created_at DESC, r.id DESC LIMIT ?2";
static const char SQL_REQ_LIST_OUT[] = REQ_LIST_SELECT " WHERE r.from_user_id = ?1 AND r.status = 'pending'"
                                                       " ORDER BY r.created_at DESC, r.id DESC LIMIT ?2";

int pz_store_contact_req_list(pz_db_t *db, int64_t user_id, bool incoming, unsigned limit,
                              pz_store_contact_req_cb cb, void *arg, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, incoming ? SQL_REQ_LIST_IN : SQL_REQ_LIST_OUT, err);
  if (st == NULL) return err->code;
  int rc = bind_ids(db, st, user_id, (int64_t)limit, err);
  if (rc < 0) return rc;
  pz_contact_req_rec_t r;
  pz_user_rec_t from, to;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    col_req(st, &r);
    col_user(st, N_REQ_COLS, &from);
    col_user(st, N_REQ_COLS + N_USER_COLS, &to);
    int cb_rc = cb(arg, &r, &from, &to, err);
    if (cb_rc < 0) return cb_rc;
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

/* ---- contacts ---- */

static const char SQL_CONTACT_EXISTS[] = "SELECT 1 FROM contacts WHERE user_id = ?1 AND contact_id = ?2";

int pz_store_contact_exists(pz_db_t *db, int64_t user_id, int64_t other_id, bool *out, pz_err_t *err) {
  return exists(db, SQL_CONTACT_EXISTS, user_id, other_id, out, err);
}

static const char SQL_CONTACT_ADD[] =
    "INSERT INTO contacts (user_id, contact_id, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";

static int contact_add_one(pz_db_t *db, int64_t a, int64_t b, int64_t now, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_CONTACT_ADD, err);
  if (st == NULL) return err->code;
  int rc = bind_ids(db, st, a, b, err);
  if (rc < 0) return rc;
  if ((rc = sqlite3_bind_int64(st, 3, now)) != SQLITE_OK) return pz__db_fail(db, rc, err);
  return pz__db_step_done(db, st, err);
}

int pz_store_contact_add(pz_db_t *db, int64_t a, int64_t b, int64_t now, pz_err_t *err) {
  int rc = contact_add_one(db, a, b, now, err);
  if (rc == 0) rc = contact_add_one(db, b, a, now, err);
  return rc;
}

static const char SQL_CONTACT_REMOVE[] = "DELETE FROM contacts WHERE user_id = ?1 AND contact_id = ?2";

int pz_store_contact_remove(pz_db_t *db, int64_t a, int64_t b, bool *removed, pz_err_t *err) {
  bool r1 = false, r2 = false;
  int rc = run_pair(db, SQL_CONTACT_REMOVE, a, b, &r1, err);
  if (rc == 0) rc = run_pair(db, SQL_CONTACT_REMOVE, b, a, &r2, err);
  if (removed) *removed = r1 || r2;
  return rc;
}

static int list_relations(pz_db_t *db, const char *sql, int64_t user_id, pz_store_relation_cb cb, void *arg,
                          pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, sql, err);
  if (st == NULL) return err->code;
  int rc = sqlite3_bind_int64(st, 1, user_id);
  if (rc != SQLITE_OK) return pz__db_fail(db, rc, err);
  pz_user_rec_t u;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    col_user(st, 0, &u);
    int cb_rc = cb(arg, &u, sqlite3_column_int64(st, N_USER_COLS), err);
    if (cb_rc < 0) return cb_rc;
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

static const char SQL_CONTACT_LIST[] = "SELECT " USER_COLS("u") ", c.created_at FROM contacts c"
                                       " JOIN users u ON u.id = c.contact_id"
                                       " WHERE c.user_id = ?1 ORDER BY u.username";

int pz_store_contact_list(pz_db_t *db, int64_t user_id, pz_store_relation_cb cb, void *arg, pz_err_t *err) {
  return list_relations(db, SQL_CONTACT_LIST, user_id, cb, arg, err);
}

/* ---- blocks ---- */

static const char SQL_BLOCK_EXISTS[] = "SELECT 1 FROM blocks WHERE user_id = ?1 AND blocked_id = ?2";

int pz_store_block_exists(pz_db_t *db, int64_t user_id, int64_t blocked_id, bool *out, pz_err_t *err) {
  return exists(db, SQL_BLOCK_EXISTS, user_id, blocked_id, out, err);
}

static const char SQL_BLOCK_ADD[] =
    "INSERT INTO blocks (user_id, blocked_id, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";
static const char SQL_BLOCK_SINCE[] = "SELECT created_at FROM blocks WHERE user_id = ?1 AND blocked_id = ?2";

int pz_store_block_add(pz_db_t *db, int64_t user_id, int64_t blocked_id, int64_t now, bool *created,
                       int64_t *since, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_BLOCK_ADD, err);
  if (st == NULL) return err->code;
  int rc = bind_ids(db, st, user_id, blocked_id, err);
  if (rc < 0) return rc;
  if ((rc = sqlite3_bind_int64(st, 3, now)) != SQLITE_OK) return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_done(db, st, err)) < 0) return rc;
  *created = sqlite3_changes(db->sql) > 0;
  if ((st = pz__db_stmt(db, SQL_BLOCK_SINCE, err)) == NULL) return err->code;
  if ((rc = bind_ids(db, st, user_id, blocked_id, err)) == 0 && (rc = pz__db_step_row(db, st, err)) == 0)
    *since = sqlite3_column_int64(st, 0);
  return rc;
}

static const char SQL_BLOCK_REMOVE[] = "DELETE FROM blocks WHERE user_id = ?1 AND blocked_id = ?2";

int pz_store_block_remove(pz_db_t *db, int64_t user_id, int64_t blocked_id, bool *removed, pz_err_t *err) {
  return run_pair(db, SQL_BLOCK_REMOVE, user_id, blocked_id, removed, err);
}

static const char SQL_BLOCK_LIST[] = "SELECT " USER_COLS("u") ", b.created_at FROM blocks b"
                                     " JOIN users u ON u.id = b.blocked_id"
                                     " WHERE b.user_id = ?1 ORDER BY b.created_at DESC, u.id";

int pz_store_block_list(pz_db_t *db, int64_t user_id, pz_store_relation_cb cb, void *arg, pz_err_t *err) {
  return list_relations(db, SQL_BLOCK_LIST, user_id, cb, arg, err);
}
