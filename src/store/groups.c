/* SQL for groups: member roles, titles, ownership, the end of a group and invite links, behind store_groups.h. */
#include <stddef.h>
#include <string.h>
#include "plaza/store_groups.h"
#include "store/db.h"

/* ---- row helpers ---- */

/* An UPDATE or DELETE of one row: PZ_ENOTFOUND when it touched none. */
static int step_one(pz_db_t *db, sqlite3_stmt *st, pz_err_t *err) {
  int rc = pz__db_step_done(db, st, err);
  if (rc == 0 && sqlite3_changes(db->sql) == 0) rc = pz_err_set(err, PZ_ENOTFOUND, NULL, NULL);
  return rc;
}

static int bind2(pz_db_t *db, sqlite3_stmt *st, int64_t a, int64_t b, pz_err_t *err) {
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, a)) != SQLITE_OK || (rc = sqlite3_bind_int64(st, 2, b)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  return 0;
}

const char *pz_store_role_name(int role) {
  return role == PZ_MEMBER_OWNER ? "owner" : role == PZ_MEMBER_ADMIN ? "admin" : "member";
}

static int role_of(sqlite3_stmt *st, int i) {
  const char *s = (const char *)sqlite3_column_text(st, i);
  if (s && strcmp(s, "owner") == 0) return PZ_MEMBER_OWNER;
  if (s && strcmp(s, "admin") == 0) return PZ_MEMBER_ADMIN;
  return PZ_MEMBER_MEMBER;
}

/* ---- members ---- */

static const char SQL_MEMBER_LIST[] =
    "SELECT u.id, u.username, u.display_name, u.bio, u.created_at,"
    " m.role, m.joined_at, m.last_read_id, m.delivered_up_to"
    " FROM conversation_members m JOIN users u ON u.id = m.user_id"
    " WHERE m.conversation_id = ?1 ORDER BY m.joined_at, m.user_id";

int pz_store_member_list(pz_db_t *db, int64_t conv_id, pz_store_member_rec_cb cb, void *arg, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MEMBER_LIST, err);
  if (st == NULL) return err->code;
  int rc = sqlite3_bind_int64(st, 1, conv_id);
  if (rc != SQLITE_OK) return pz__db_fail(db, rc, err);
  pz_member_rec_t m;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    m.user.id = sqlite3_column_int64(st, 0);
    pz__db_col_text(st, 1, m.user.username, sizeof(m.user.username));
    pz__db_col_text(st, 2, m.user.display_name, sizeof(m.user.display_name));
    pz__db_col_text(st, 3, m.user.bio, sizeof(m.user.bio));
    m.user.created_at = sqlite3_column_int64(st, 4);
    m.role = role_of(st, 5);
    m.joined_at = sqlite3_column_int64(st, 6);
    m.last_read_id = sqlite3_column_int64(st, 7);
    m.delivered_up_to = sqlite3_column_int64(st, 8);
    int cb_rc = cb(arg, &m, err);
    if (cb_rc < 0) return cb_rc;
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

static const char SQL_MEMBER_ROLE[] =
    "SELECT role, joined_at FROM conversation_members WHERE conversation_id = ?1 AND user_id = ?2";

int pz_store_member_role(pz_db_t *db, int64_t conv_id, int64_t user_id, int *role, int64_t *joined_at, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MEMBER_ROLE, err);
  if (st == NULL) return err->code;
  int rc = bind2(db, st, conv_id, user_id, err);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc < 0) return rc;
  if (role) *role = role_of(st, 0);
  if (joined_at) *joined_at = sqlite3_column_int64(st, 1);
  return 0;
}

static const char SQL_MEMBER_SET_ROLE[] =
    "UPDATE conversation_members SET role = ?3 WHERE conversation_id = ?1 AND user_id = ?2";

int pz_store_member_set_role(pz_db_t *db, int64_t conv_id, int64_t user_id, int role, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MEMBER_SET_ROLE, err);
  if (st == NULL) return err->code;
  int rc = bind2(db, st, conv_id, user_id, err);
  if (rc < 0) return rc;
  if ((rc = sqlite3_bind_text(st, 3, pz_store_role_name(role), -1, SQLITE_STATIC)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  return step_one(db, st, err);
}

static const char SQL_MEMBER_REMOVE[] = "DELETE FROM conversation_members WHERE conversation_id = ?1 AND user_id = ?2";

int pz_store_member_remove(pz_db_t *db, int64_t conv_id, int64_t user_id, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MEMBER_REMOVE, err);
  if (st == NULL) return err->code;
  int rc = bind2(db, st, conv_id, user_id, err);
  return rc < 0 ? rc : step_one(db, st, err);
}

static const char SQL_MEMBER_COUNT[] = "SELECT COUNT(*) FROM conversation_members WHERE conversation_id = ?1";

int pz_store_member_count(pz_db_t *db, int64_t conv_id, unsigned *n, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MEMBER_COUNT, err);
  if (st == NULL) return err->code;
  int rc = sqlite3_bind_int64(st, 1, conv_id);
  if (rc != SQLITE_OK) return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_row(db, st, err)) < 0) return rc;
  *n = (unsigned)sqlite3_column_int64(st, 0);
  return 0;
}

/* Admins first, then by seniority: one range of the primary key, sorted
 * in memory (a group has at most a few hundred members). */
static const char SQL_MEMBER_SUCCESSOR[] =
    "SELECT user_id FROM conversation_members WHERE conversation_id = ?1 AND user_id <> ?2"
    " ORDER BY role = 'admin' DESC, joined_at, user_id LIMIT 1";

int pz_store_member_successor(pz_db_t *db, int64_t conv_id, int64_t except, int64_t *user_id, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MEMBER_SUCCESSOR, err);
  if (st == NULL) return err->code;
  int rc = bind2(db, st, conv_id, except, err);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0) *user_id = sqlite3_column_int64(st, 0);
  return rc;
}

/* ---- conversations ---- */

static const char SQL_CONV_SET_TITLE[] = "UPDATE conversations SET title = ?2 WHERE id = ?1 AND type = 'group'";

int pz_store_conv_set_title(pz_db_t *db, int64_t conv_id, pz_str_t title, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_CONV_SET_TITLE, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, conv_id)) != SQLITE_OK || (rc = pz__db_bind_str(st, 2, title)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  return step_one(db, st, err);
}

static const char SQL_CONV_SET_OWNER[] = "UPDATE conversations SET owner_id = ?2 WHERE id = ?1 AND type = 'group'";

int pz_store_conv_set_owner(pz_db_t *db, int64_t conv_id, int64_t owner_id, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_CONV_SET_OWNER, err);
  if (st == NULL) return err->code;
  int rc = bind2(db, st, conv_id, owner_id, err);
  return rc < 0 ? rc : step_one(db, st, err);
}

/* The foreign keys cascade to the members, the messages and what hangs
 * on them, and the invites. */
static const char SQL_CONV_DELETE[] = "DELETE FROM conversations WHERE id = ?1";

int pz_store_conv_delete(pz_db_t *db, int64_t conv_id, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_CONV_DELETE, err);
  if (st == NULL) return err->code;
  int rc = sqlite3_bind_int64(st, 1, conv_id);
  if (rc != SQLITE_OK) return pz__db_fail(db, rc, err);
  return step_one(db, st, err);
}

/* One row of the conversation list: activity ids are message or
 * conversation ids, unique across conversations, so the page of one that
 * starts at a member's own activity id holds exactly their conversation,
 * read by the very query of the list (hidden last messages and all). */
static const char SQL_MEMBER_ACTIVITY[] =
    "SELECT max(m.activity_id, coalesce((SELECT max(x.id) FROM messages x WHERE x.conversation_id = m.conversation_id), 0))"
    " FROM conversation_members m WHERE m.conversation_id = ?1 AND m.user_id = ?2";

typedef struct {
  int64_t conv_id;
  pz_conv_view_t *out;
  bool found;
} view_arg_t;

static int view_row(void *arg, const pz_conv_view_t *v, pz_err_t *err) {
  view_arg_t *a = arg;
  if (v->conv.id != a->conv_id) return 0;
  memcpy(a->out, v, v->has_last ? sizeof(*v) : offsetof(pz_conv_view_t, last));
  a->out->has_last = v->has_last;
  a->found = true;
  return 0;
}

int pz_store_conv_view(pz_db_t *db, int64_t user_id, int64_t conv_id, pz_conv_view_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MEMBER_ACTIVITY, err);
  if (st == NULL) return err->code;
  int rc = bind2(db, st, conv_id, user_id, err);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc < 0) return rc;
  int64_t activity = sqlite3_column_int64(st, 0);
  sqlite3_reset(st); /* the list below runs its own statement */
  view_arg_t a = {conv_id, out, false};
  memset(out, 0, offsetof(pz_conv_view_t, last));
  if ((rc = pz_store_conv_list(db, user_id, activity + 1, 1, view_row, &a, err)) < 0) return rc;
  return a.found ? 0 : pz_err_set(err, PZ_ENOTFOUND, NULL, NULL);
}

/* ---- invites ---- */

#define INVITE_COLS "code, conversation_id, created_by, created_at, expires_at, revoked_at"

static const char SQL_INVITE_INSERT[] = "INSERT INTO group_invites (" INVITE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, 0)";

int pz_store_invite_insert(pz_db_t *db, const pz_invite_rec_t *inv, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_INVITE_INSERT, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = sqlite3_bind_text(st, 1, inv->code, -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 2, inv->conversation_id)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 3, inv->created_by)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 4, inv->created_at)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 5, inv->expires_at)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  return pz__db_step_done(db, st, err);
}

static const char SQL_INVITE_GET[] = "SELECT " INVITE_COLS " FROM group_invites WHERE code = ?1";

int pz_store_invite_get(pz_db_t *db, pz_str_t code, pz_invite_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_INVITE_GET, err);
  if (st == NULL) return err->code;
  int rc = pz__db_bind_str(st, 1, code);
  if (rc != SQLITE_OK) return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_row(db, st, err)) < 0) return rc;
  pz__db_col_text(st, 0, out->code, sizeof(out->code));
  out->conversation_id = sqlite3_column_int64(st, 1);
  out->created_by = sqlite3_column_int64(st, 2);
  out->created_at = sqlite3_column_int64(st, 3);
  out->expires_at = sqlite3_column_int64(st, 4);
  out->revoked_at = sqlite3_column_int64(st, 5);
  return 0;
}

static const char SQL_INVITE_REVOKE[] = "UPDATE group_invites SET revoked_at = ?2 WHERE code = ?1 AND revoked_at = 0";

int pz_store_invite_revoke(pz_db_t *db, pz_str_t code, int64_t now, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_INVITE_REVOKE, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = pz__db_bind_str(st, 1, code)) != SQLITE_OK || (rc = sqlite3_bind_int64(st, 2, now)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  return pz__db_step_done(db, st, err);
}
