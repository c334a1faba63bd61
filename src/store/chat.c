/* SQL for conversations, members, messages and event streams, behind the typed functions of store_chat.h. */
#include <stddef.h>
#include <string.h>
#include "plaza/store_chat.h"
#include "store/db.h"

/* A conversation's last message is the last entry of its range of the
 * history index (one descent), not a column that every send would have
 * to rewrite (migration 11). */
#define CONV_LAST_ID "(SELECT max(x.id) FROM messages x WHERE x.conversation_id = c.id)"
#define CONV_COLS "c.id, c.type, c.title, c.owner_id, c.created_at, coalesce(" CONV_LAST_ID ", 0)"
/* Where member m's conversation c sits in m's list: its last message, or
 * for a conversation without any, the conversation's own id
 * (conversation_members.activity_id, written once at the join and moved
 * by sends before migration 13). Computed when a list is read, so that a
 * send rewrites no member row. */
#define CONV_ACTIVITY "max(m.activity_id, coalesce(" CONV_LAST_ID ", 0))"
#define N_CONV_COLS 6
#define MSG_COLS(t) \
  t ".id, " t ".conversation_id, " t ".sender_id, " t ".client_id, " t ".reply_to, " t ".created_at, " t ".text, " t \
  ".type, " t ".body, " t ".edited_at, " t ".recalled_at, " t ".mentions"
#define N_MSG_COLS 12
#define USER_COLS "u.id, u.username, u.display_name, u.bio, u.created_at"

/* ---- row helpers ---- */

static void col_conv(sqlite3_stmt *st, int i, pz_conv_rec_t *c) {
  c->id = sqlite3_column_int64(st, i);
  const unsigned char *type = sqlite3_column_text(st, i + 1);
  c->type = type && strcmp((const char *)type, "group") == 0 ? PZ_CONV_GROUP : PZ_CONV_DIRECT;
  pz__db_col_text(st, i + 2, c->title, sizeof(c->title));
  c->owner_id = sqlite3_column_int64(st, i + 3);
  c->created_at = sqlite3_column_int64(st, i + 4);
  c->last_message_id = sqlite3_column_int64(st, i + 5);
}

static void col_msg(sqlite3_stmt *st, int i, pz_msg_rec_t *m) {
  m->id = sqlite3_column_int64(st, i);
  m->conversation_id = sqlite3_column_int64(st, i + 1);
  m->sender_id = sqlite3_column_int64(st, i + 2);
  pz__db_col_text(st, i + 3, m->client_id, sizeof(m->client_id));
  m->reply_to = sqlite3_column_int64(st, i + 4);
  m->created_at = sqlite3_column_int64(st, i + 5);
  m->text_len = pz__db_col_text(st, i + 6, m->text, sizeof(m->text));
  pz__db_col_text(st, i + 7, m->type, sizeof(m->type));
  m->body_len = pz__db_col_text(st, i + 8, m->body, sizeof(m->body));
  m->edited_at = sqlite3_column_int64(st, i + 9);
  m->recalled_at = sqlite3_column_int64(st, i + 10);
  const char *mentions = (const char *)sqlite3_column_text(st, i + 11);
  m->n_mentions = mentions ? pz__store_ids_parse(mentions, m->mentions, PZ_CHAT_MENTIONS_MAX) : 0;
}

static void col_user(sqlite3_stmt *st, int i, pz_user_rec_t *u) {
  u->id = sqlite3_column_int64(st, i);
  pz__db_col_text(st, i + 1, u->username, sizeof(u->username));
  pz__db_col_text(st, i + 2, u->display_name, sizeof(u->display_name));
  pz__db_col_text(st, i + 3, u->bio, sizeof(u->bio));
  u->created_at = sqlite3_column_int64(st, i + 4);
}

/* ---- conversations ---- */

static const char SQL_CONV_INSERT[] =
    "INSERT INTO conversations (id, type, title, owner_id, direct_a, direct_b, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

int pz_store_conv_insert(pz_db_t *db, const pz_conv_rec_t *conv, int64_t user_a, int64_t user_b, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_CONV_INSERT, err);
  if (st == NULL) return err->code;
  bool direct = conv->type == PZ_CONV_DIRECT;
  int64_t lo = user_a < user_b ? user_a : user_b, hi = user_a < user_b ? user_b : user_a;
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, conv->id)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 2, direct ? "direct" : "group", -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 3, conv->title, -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = conv->owner_id ? sqlite3_bind_int64(st, 4, conv->owner_id) : sqlite3_bind_null(st, 4)) != SQLITE_OK ||
      (rc = direct ? sqlite3_bind_int64(st, 5, lo) : sqlite3_bind_null(st, 5)) != SQLITE_OK ||
      (rc = direct ? sqlite3_bind_int64(st, 6, hi) : sqlite3_bind_null(st, 6)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 7, conv->created_at)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  return pz__db_step_done(db, st, err);
}

static const char SQL_CONV_GET[] = "SELECT " CONV_COLS " FROM conversations c WHERE c.id = ?1";

int pz_store_conv_get(pz_db_t *db, int64_t id, pz_conv_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_CONV_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, id);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0) col_conv(st, 0, out);
  return rc;
}

static const char SQL_CONV_FIND_DIRECT[] =
    "SELECT " CONV_COLS " FROM conversations c WHERE c.direct_a = ?1 AND c.direct_b = ?2 AND c.type = 'direct'";

int pz_store_conv_find_direct(pz_db_t *db, int64_t a, int64_t b, pz_conv_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_CONV_FIND_DIRECT, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, a < b ? a : b, a < b ? b : a);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0) col_conv(st, 0, out);
  return rc;
}

/* The last message comes with the conversation by a join on the primary
 * key; the unread count is a range of the history index per row. The
 * order is computed per membership (one descent of the history index
 * each) rather than read from an index that every send would update. */
static const char SQL_CONV_LIST[] =
    "SELECT " CONV_COLS ", m.last_read_id, " CONV_ACTIVITY " AS activity, " MSG_COLS("g") " FROM conversation_members m"
    " JOIN conversations c ON c.id = m.conversation_id"
    /* A last message the member deleted for themselves gives way to their
     * newest one still shown (msgops.c). */
    " LEFT JOIN messages g ON g.id = (CASE WHEN NOT EXISTS (SELECT 1 FROM message_hidden h"
    "   WHERE h.user_id = ?1 AND h.message_id = " CONV_LAST_ID ") THEN " CONV_LAST_ID
    "   ELSE (SELECT max(x.id) FROM messages x WHERE x.conversation_id = c.id AND NOT EXISTS"
    "     (SELECT 1 FROM message_hidden h2 WHERE h2.user_id = ?1 AND h2.message_id = x.id)) END)"
    " WHERE m.user_id = ?1 AND activity < ?2"
    " ORDER BY activity DESC LIMIT ?3";

int pz_store_conv_list(pz_db_t *db, int64_t user_id, int64_t before, unsigned limit, pz_store_conv_view_cb cb,
                       void *arg, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_CONV_LIST, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, user_id, before > 0 ? before : INT64_MAX, (int64_t)limit);
  if (rc < 0) return rc;
  pz_conv_view_t *v = sqlite3_malloc(sizeof(*v)); /* a message record is too large for every stack */
  if (v == NULL) return pz_err_set(err, PZ_ENOMEM, NULL, NULL);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    memset(v, 0, offsetof(pz_conv_view_t, last));
    col_conv(st, 0, &v->conv);
    v->last_read_id = sqlite3_column_int64(st, N_CONV_COLS);
    v->activity_id = sqlite3_column_int64(st, N_CONV_COLS + 1);
    v->has_last = sqlite3_column_type(st, N_CONV_COLS + 2) != SQLITE_NULL;
    if (v->has_last) col_msg(st, N_CONV_COLS + 2, &v->last);
    int cb_rc = pz_store_unread_count(db, v->conv.id, user_id, v->last_read_id, &v->unread, err);
    if (cb_rc == 0) cb_rc = cb(arg, v, err);
    if (cb_rc < 0) {
      sqlite3_free(v);
      return cb_rc;
    }
  }
  sqlite3_free(v);
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

/* ---- members ---- */

static const char SQL_MEMBER_ADD[] =
    "INSERT INTO conversation_members (conversation_id, user_id, role, joined_at, last_read_id, activity_id)"
    " VALUES (?1, ?2, ?3, ?4, 0, ?1)";

int pz_store_member_add(pz_db_t *db, int64_t conv_id, int64_t user_id, int role, int64_t now, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MEMBER_ADD, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, conv_id)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 2, user_id)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 3, pz_store_role_name(role), -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 4, now)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  return pz__db_step_done(db, st, err);
}

static const char SQL_MEMBER_GET[] =
    "SELECT last_read_id FROM conversation_members WHERE conversation_id = ?1 AND user_id = ?2";

int pz_store_member_get(pz_db_t *db, int64_t conv_id, int64_t user_id, int64_t *last_read_id, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MEMBER_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, conv_id, user_id);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0 && last_read_id) *last_read_id = sqlite3_column_int64(st, 0);
  return rc;
}

/* joined_at, then user_id: a stable order for equal times. */
static const char SQL_MEMBER_IDS[] =
    "SELECT user_id FROM conversation_members WHERE conversation_id = ?1 ORDER BY joined_at, user_id";

int pz_store_member_ids(pz_db_t *db, int64_t conv_id, pz_store_member_cb cb, void *arg, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MEMBER_IDS, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, conv_id);
  if (rc < 0) return rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int cb_rc = cb(arg, sqlite3_column_int64(st, 0), err);
    if (cb_rc < 0) return cb_rc;
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

static const char SQL_MEMBER_USERS[] = "SELECT " USER_COLS
                                       " FROM conversation_members m"
                                       " JOIN users u ON u.id = m.user_id"
                                       " WHERE m.conversation_id = ?1 ORDER BY m.joined_at, m.user_id";

int pz_store_member_users(pz_db_t *db, int64_t conv_id, pz_store_user_cb cb, void *arg, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MEMBER_USERS, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, conv_id);
  if (rc < 0) return rc;
  pz_user_rec_t u;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    col_user(st, 0, &u);
    int cb_rc = cb(arg, &u, err);
    if (cb_rc < 0) return cb_rc;
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

/* The condition keeps the marker monotonic whatever order requests come in. */
static const char SQL_MEMBER_SET_READ[] =
    "UPDATE conversation_members SET last_read_id = ?3"
    " WHERE conversation_id = ?1 AND user_id = ?2 AND last_read_id < ?3";

int pz_store_member_set_read(pz_db_t *db, int64_t conv_id, int64_t user_id, int64_t message_id, bool *moved,
                             pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MEMBER_SET_READ, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, conv_id, user_id, message_id);
  if (rc == 0) rc = pz__db_step_done(db, st, err);
  *moved = rc == 0 && sqlite3_changes(db->sql) > 0;
  return rc;
}

static const char SQL_UNREAD[] =
    "SELECT COUNT(*) FROM messages WHERE conversation_id = ?1 AND id > ?3 AND sender_id <> ?2";

int pz_store_unread_count(pz_db_t *db, int64_t conv_id, int64_t user_id, int64_t after, unsigned *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_UNREAD, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, conv_id, user_id, after);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0) *out = (unsigned)sqlite3_column_int64(st, 0);
  return rc;
}

/* ---- messages ---- */

/* Search: a message above the index's mark is indexed at the end of the
 * batch (migration 11, batch.c); one at or below it, at once, as the mark
 * says that all those are in the index. */
static const char SQL_FTS_MARK_GET[] = "SELECT indexed_up_to FROM messages_fts_state";
static const char SQL_FTS_INSERT_ONE[] = "INSERT INTO messages_fts (rowid, text) VALUES (?1, ?2)";

static int fts_added(pz_db_t *db, const pz_msg_rec_t *m, pz_err_t *err) {
  sqlite3_stmt *st;
  int rc;
  if (db->fts_mark_gen != db->seq_gen + 1) {
    if ((st = pz__db_stmt(db, SQL_FTS_MARK_GET, err)) == NULL) return err->code;
    if ((rc = pz__db_step_row(db, st, err)) < 0) return rc;
    db->fts_mark = sqlite3_column_int64(st, 0);
    db->fts_mark_gen = db->seq_gen + 1;
    sqlite3_reset(st);
  }
  if (m->id > db->fts_mark) {
    db->batch_pending |= PZ__DB_BATCH_FTS;
    return 0;
  }
  if ((st = pz__db_stmt(db, SQL_FTS_INSERT_ONE, err)) == NULL) return err->code;
  if ((rc = PZ__DB_BIND(db, st, err, m->id)) < 0) return rc;
  if ((rc = sqlite3_bind_text(st, 2, m->text, (int)m->text_len, SQLITE_STATIC)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  return pz__db_step_done(db, st, err);
}

static const char SQL_MSG_INSERT[] =
    "INSERT INTO messages (id, conversation_id, sender_id, client_id, type, text, reply_to, created_at, body, mentions,"
    " event) VALUES (?1, ?2, ?3, ?4, ?8, ?5, ?6, ?7, ?9, ?10, ?11)";

int pz_store_msg_insert(pz_db_t *db, const pz_msg_rec_t *m, pz_str_t event, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MSG_INSERT, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, m->id)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 2, m->conversation_id)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 3, m->sender_id)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 4, m->client_id, -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 5, m->text, (int)m->text_len, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 6, m->reply_to)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 7, m->created_at)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 8, m->type[0] ? m->type : "text", -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 9, m->body, (int)m->body_len, SQLITE_STATIC)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  char mentions[PZ__STORE_IDS_TEXT_MAX(PZ_CHAT_MENTIONS_MAX)];
  pz__store_ids_format(m->mentions, m->n_mentions, mentions);
  if ((rc = sqlite3_bind_text(st, 10, mentions, -1, SQLITE_TRANSIENT)) != SQLITE_OK ||
      (rc = pz__db_bind_str(st, 11, event)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_done(db, st, err)) < 0) return rc;
  return fts_added(db, m, err);
}

static const char SQL_MSG_GET[] = "SELECT " MSG_COLS("g") " FROM messages g WHERE g.id = ?1 AND g.conversation_id = ?2";

static const char SQL_MSG_EXISTS[] = "SELECT 1 FROM messages WHERE id = ?1 AND conversation_id = ?2";

/* Steps st, bound (rc: the binding's result), for whether it has a row. */
static int step_found(pz_db_t *db, sqlite3_stmt *st, int rc, bool *found, pz_err_t *err) {
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  sqlite3_reset(st);
  *found = rc == 0;
  if (rc == PZ_ENOTFOUND) {
    *err = (pz_err_t){0};
    rc = 0;
  }
  return rc;
}

int pz_store_msg_exists(pz_db_t *db, int64_t conv_id, int64_t id, bool *found, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MSG_EXISTS, err);
  if (st == NULL) return err->code;
  return step_found(db, st, PZ__DB_BIND(db, st, err, id, conv_id), found, err);
}

int pz_store_msg_get(pz_db_t *db, int64_t conv_id, int64_t id, pz_msg_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MSG_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, id, conv_id);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0) col_msg(st, 0, out);
  return rc;
}

static const char SQL_MSG_BY_CLIENT[] = "SELECT " MSG_COLS("g") " FROM messages g"
                                        " WHERE g.conversation_id = ?1 AND g.sender_id = ?2 AND g.client_id = ?3";

/* Binds (conversation, sender, client id) as parameters 1, 2, 3. */
static int bind_client(pz_db_t *db, sqlite3_stmt *st, int64_t conv_id, int64_t sender_id, pz_str_t client_id,
                       pz_err_t *err) {
  int rc = PZ__DB_BIND(db, st, err, conv_id, sender_id);
  if (rc == 0 && (rc = pz__db_bind_str(st, 3, client_id)) != SQLITE_OK) rc = pz__db_fail(db, rc, err);
  return rc;
}

int pz_store_msg_by_client(pz_db_t *db, int64_t conv_id, int64_t sender_id, pz_str_t client_id, pz_msg_rec_t *out,
                           pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MSG_BY_CLIENT, err);
  if (st == NULL) return err->code;
  int rc = bind_client(db, st, conv_id, sender_id, client_id, err);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0) col_msg(st, 0, out);
  return rc;
}

static const char SQL_MSG_CLIENT_EXISTS[] =
    "SELECT 1 FROM messages WHERE conversation_id = ?1 AND sender_id = ?2 AND client_id = ?3";

int pz_store_msg_client_exists(pz_db_t *db, int64_t conv_id, int64_t sender_id, pz_str_t client_id, bool *found,
                               pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MSG_CLIENT_EXISTS, err);
  if (st == NULL) return err->code;
  return step_found(db, st, bind_client(db, st, conv_id, sender_id, client_id, err), found, err);
}

static const char SQL_MSG_LIST[] = "SELECT " MSG_COLS("g") " FROM messages g"
                                   " WHERE g.conversation_id = ?1 AND g.id < ?2 ORDER BY g.id DESC LIMIT ?3";

int pz_store_msg_list(pz_db_t *db, int64_t conv_id, int64_t before, unsigned limit, pz_store_msg_cb cb, void *arg,
                      pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MSG_LIST, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, conv_id, before > 0 ? before : INT64_MAX, (int64_t)limit);
  if (rc < 0) return rc;
  pz_msg_rec_t *m = sqlite3_malloc(sizeof(*m));
  if (m == NULL) return pz_err_set(err, PZ_ENOMEM, NULL, NULL);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    col_msg(st, 0, m);
    int cb_rc = cb(arg, m, err);
    if (cb_rc < 0) {
      sqlite3_free(m);
      return cb_rc;
    }
  }
  sqlite3_free(m);
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

/* ---- event streams ---- */

/* A user's last seq is the last key of their range of the primary key:
 * one descent of the index, and no counter row to write beside every
 * event (migration 11). So a user's last event leaves the stream only
 * with the user: retention (pz_store_event_prune) keeps it, and the first
 * seq still kept tells a device whether what it asks for is gone. */
static const char SQL_EVENT_LAST[] = "SELECT seq FROM events WHERE user_id = ?1 ORDER BY seq DESC LIMIT 1";
static const char SQL_EVENT_FIRST[] = "SELECT seq FROM events WHERE user_id = ?1 ORDER BY seq LIMIT 1";
static const char SQL_EVENT_INSERT[] =
    "INSERT INTO events (user_id, seq, type, payload, created_at, message_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/* A user's last seq, as this connection last wrote it: one look-up
 * fewer per event for users with events in every batch. Only the writer
 * appends events, and each append goes through here; a rollback voids
 * the slots (pz__db_forget_writes). Should a slot still go wrong, the
 * primary key refuses a seq used twice. */
#define SEQ_SLOTS 4096 /* a power of two */

struct pz__seq_slot {
  int64_t user_id, seq;
  uint64_t gen;
};

static struct pz__seq_slot *seq_slot(pz_db_t *db, int64_t user_id) {
  if (db->seqs == NULL && (db->seqs = sqlite3_malloc(SEQ_SLOTS * sizeof(*db->seqs))) != NULL)
    memset(db->seqs, 0, SEQ_SLOTS * sizeof(*db->seqs)); /* user 0 does not exist */
  if (db->seqs == NULL) return NULL;
  uint64_t h = (uint64_t)user_id * 0x9e3779b97f4a7c15ull;
  return &db->seqs[(h >> 32) & (SEQ_SLOTS - 1)];
}

/* The seq that sql (SQL_EVENT_LAST or SQL_EVENT_FIRST) finds; 0 when the user has no events. */
static int event_edge(pz_db_t *db, const char *sql, int64_t user_id, int64_t *seq, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, sql, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, user_id);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  *seq = rc == 0 ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  if (rc == PZ_ENOTFOUND) { /* no events yet */
    *err = (pz_err_t){0};
    rc = 0;
  }
  return rc;
}

static int event_last_read(pz_db_t *db, int64_t user_id, int64_t *seq, pz_err_t *err) {
  return event_edge(db, SQL_EVENT_LAST, user_id, seq, err);
}

/* The writer's: from its slot when it has one. */
static int event_last(pz_db_t *db, int64_t user_id, int64_t *seq, pz_err_t *err) {
  struct pz__seq_slot *slot = seq_slot(db, user_id);
  if (slot && slot->user_id == user_id && slot->gen == db->seq_gen) {
    *seq = slot->seq;
    return 0;
  }
  return event_last_read(db, user_id, seq, err);
}

int pz_store_event_append(pz_db_t *db, int64_t user_id, pz_str_t type, pz_str_t payload, int64_t now, int64_t *seq,
                          pz_err_t *err) {
  return pz_store_event_append_msg(db, user_id, type, 0, payload, now, seq, err);
}

int pz_store_event_append_msg(pz_db_t *db, int64_t user_id, pz_str_t type, int64_t message_id, pz_str_t payload,
                              int64_t now, int64_t *seq, pz_err_t *err) {
  int rc = event_last(db, user_id, seq, err);
  if (rc < 0) return rc;
  ++*seq;
  return pz__store_event_put(db, user_id, *seq, type, message_id, payload, now, err);
}

int pz__store_event_put(pz_db_t *db, int64_t user_id, int64_t seq, pz_str_t type, int64_t message_id, pz_str_t payload,
                        int64_t now, pz_err_t *err) {
  int rc;
  sqlite3_stmt *st = pz__db_stmt(db, SQL_EVENT_INSERT, err);
  if (st == NULL) return err->code;
  if ((rc = PZ__DB_BIND(db, st, err, user_id, seq)) < 0) return rc;
  /* NULL, not 0, for an event about no message: the index leaves those out. */
  if ((rc = pz__db_bind_str(st, 3, type)) != SQLITE_OK || (rc = pz__db_bind_str(st, 4, payload)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 5, now)) != SQLITE_OK ||
      (rc = message_id ? sqlite3_bind_int64(st, 6, message_id) : sqlite3_bind_null(st, 6)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_done(db, st, err)) < 0) return rc;
  struct pz__seq_slot *slot = seq_slot(db, user_id);
  if (slot) *slot = (struct pz__seq_slot){user_id, seq, db->seq_gen};
  return 0;
}

int pz_store_event_append_shared(pz_db_t *db, int64_t user_id, pz_str_t type, int64_t message_id, int64_t now,
                                 int64_t *seq, pz_err_t *err) {
  /* The empty payload stands for the message's own (messages.event). */
  return pz_store_event_append_msg(db, user_id, type, message_id, PZ_STR(""), now, seq, err);
}

/* Only the payload changes: the rows keep their place (user, seq) and
 * type, so every stream stays gap-free and in order. Events that take
 * their payload from the message are left out (and are not in the index
 * this uses): pz_store_msg_set_event rewrites theirs. */
static const char SQL_EVENT_REWRITE_MSG[] =
    "UPDATE events SET payload = ?3 WHERE message_id = ?1 AND type = ?2 AND payload <> ''";

int pz_store_event_rewrite_msg(pz_db_t *db, int64_t message_id, pz_str_t type, pz_str_t payload, unsigned *n,
                               pz_err_t *err) {
  if (n) *n = 0;
  sqlite3_stmt *st = pz__db_stmt(db, SQL_EVENT_REWRITE_MSG, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, message_id);
  if (rc < 0) return rc;
  if ((rc = pz__db_bind_str(st, 2, type)) != SQLITE_OK || (rc = pz__db_bind_str(st, 3, payload)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_done(db, st, err)) < 0) return rc;
  if (n) *n = (unsigned)sqlite3_changes(db->sql);
  return 0;
}

/* An event with an empty payload serves its message's (migration 13). A
 * message that is gone (its group ended when its last member left) is
 * told as message.gone, with its id: the seq stays in the stream. */
static const char SQL_EVENT_LIST[] =
    "SELECT e.seq, CASE WHEN e.payload <> '' OR g.id IS NOT NULL THEN e.type ELSE 'message.gone' END,"
    " CASE WHEN e.payload <> '' THEN e.payload WHEN g.id IS NOT NULL THEN g.event"
    "   ELSE '{\"type\":\"message.gone\",\"message_id\":\"' || e.message_id || '\"}' END"
    " FROM events e LEFT JOIN messages g ON e.payload = '' AND g.id = e.message_id"
    " WHERE e.user_id = ?1 AND e.seq > ?2 ORDER BY e.seq LIMIT ?3";

int pz_store_event_list(pz_db_t *db, int64_t user_id, int64_t after, unsigned limit, pz_store_event_cb cb, void *arg,
                        pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_EVENT_LIST, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, user_id, after, (int64_t)limit);
  if (rc < 0) return rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    pz_str_t type = pz_str_n((const char *)sqlite3_column_text(st, 1), (size_t)sqlite3_column_bytes(st, 1));
    pz_str_t payload = pz_str_n((const char *)sqlite3_column_text(st, 2), (size_t)sqlite3_column_bytes(st, 2));
    int cb_rc = cb(arg, sqlite3_column_int64(st, 0), type, payload, err);
    if (cb_rc < 0) return cb_rc;
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

static const char SQL_MSG_SET_EVENT[] = "UPDATE messages SET event = ?2 WHERE id = ?1 AND event <> ''";

int pz_store_msg_set_event(pz_db_t *db, int64_t message_id, pz_str_t event, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_MSG_SET_EVENT, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, message_id);
  if (rc < 0) return rc;
  if ((rc = pz__db_bind_str(st, 2, event)) != SQLITE_OK) return pz__db_fail(db, rc, err);
  return pz__db_step_done(db, st, err);
}

int pz_store_event_head(pz_db_t *db, int64_t user_id, int64_t *seq, pz_err_t *err) {
  return event_last_read(db, user_id, seq, err);
}

int pz_store_event_gone(pz_db_t *db, int64_t user_id, int64_t after, bool *gone, pz_err_t *err) {
  int64_t first = 0;
  int rc = event_edge(db, SQL_EVENT_FIRST, user_id, &first, err);
  *gone = rc == 0 && first > after + 1;
  return rc;
}

/* Retention. Events are appended in time order, so rowid order is age
 * order: the oldest come first, and a pass stops at the first one young
 * enough to keep. A user's last event stays however old, as it carries
 * the stream's head (the next seq follows it). */
static const char SQL_EVENT_OLDEST[] =
    "SELECT rowid, user_id, created_at FROM events WHERE rowid > ?1 ORDER BY rowid LIMIT ?2";
static const char SQL_EVENT_PRUNE[] =
    "DELETE FROM events WHERE rowid = ?1 AND seq < (SELECT max(seq) FROM events WHERE user_id = ?2)";

int pz_store_event_prune(pz_db_t *db, int64_t before, unsigned max, int64_t *cursor, unsigned *n, unsigned *examined,
                         pz_err_t *err) {
  *n = 0;
  *examined = 0;
  if (max == 0) return 0;
  int64_t(*rows)[2] = pz_malloc(max * sizeof(*rows));
  unsigned k = 0;
  sqlite3_stmt *st = pz__db_stmt(db, SQL_EVENT_OLDEST, err);
  int rc = st ? PZ__DB_BIND(db, st, err, *cursor, (int64_t)max) : err->code;
  while (rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    rc = 0;
    if (sqlite3_column_int64(st, 2) >= before) break;
    rows[k][0] = sqlite3_column_int64(st, 0);
    rows[k][1] = sqlite3_column_int64(st, 1);
    k++;
  }
  if (st) sqlite3_reset(st);
  *examined = k;
  if (rc == SQLITE_DONE || rc == SQLITE_ROW)
    rc = 0;
  else if (rc > 0)
    rc = pz__db_fail(db, rc, err);
  for (unsigned i = 0; rc == 0 && i < k; i++) {
    if ((st = pz__db_stmt(db, SQL_EVENT_PRUNE, err)) == NULL) {
      rc = err->code;
      break;
    }
    if ((rc = PZ__DB_BIND(db, st, err, rows[i][0], rows[i][1])) == 0 && (rc = pz__db_step_done(db, st, err)) == 0) {
      *n += (unsigned)sqlite3_changes(db->sql);
      *cursor = rows[i][0];
    }
  }
  pz_free(rows);
  return rc;
}
