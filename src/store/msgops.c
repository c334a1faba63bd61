/* SQL of message operations: edits, recalls, delete-for-me, reactions, receipts, settings, presence and search. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plaza/store_chat.h"
#include "store/db.h"

/* Prepares sql and binds its leading int64 parameters. */
#define PREPARE(st, db, sql, err, ...)                 \
  sqlite3_stmt *st = pz__db_stmt((db), (sql), (err));  \
  if (st == NULL) return (err)->code;                  \
  do {                                                 \
    int bind_rc_ = PZ__DB_BIND((db), st, (err), __VA_ARGS__); \
    if (bind_rc_ < 0) return bind_rc_;                 \
  } while (0)

void pz__store_ids_format(const int64_t *ids, unsigned n, char *out) {
  char *p = out;
  for (unsigned i = 0; i < n; i++)
    p += sprintf(p, i ? " %lld" : "%lld", (long long)ids[i]);
  *p = '\0';
}

unsigned pz__store_ids_parse(const char *text, int64_t *ids, unsigned max) {
  unsigned n = 0;
  const char *p = text;
  while (*p && n < max) {
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p) {
      p++; /* not a number: a damaged row; skip the byte */
      continue;
    }
    if (v > 0) ids[n++] = v;
    p = end;
  }
  return n;
}

/* Ids of messages chosen by a query whose first column is the id; each is
 * then read with pz_store_msg_get, so that every column another feature
 * adds to messages comes with it without a second copy of the row code.
 * A page is at most a few hundred primary-key look-ups. */
static int list_ids_then_get(pz_db_t *db, sqlite3_stmt *st, int64_t conv_id, unsigned limit, pz_store_msg_cb cb,
                             void *arg, pz_err_t *err) {
  int rc = 0;
  int64_t *ids = pz_malloc((limit ? limit : 1) * sizeof(int64_t)),
          *convs = pz_malloc((limit ? limit : 1) * sizeof(int64_t));
  unsigned n = 0;
  pz_msg_rec_t *m = NULL;
  while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    ids[n] = sqlite3_column_int64(st, 0);
    convs[n] = conv_id ? conv_id : sqlite3_column_int64(st, 1);
    n++;
  }
  if (n < limit && rc != SQLITE_DONE) {
    rc = pz__db_fail(db, rc, err);
    goto out;
  }
  sqlite3_reset(st); /* pz_store_msg_get must not find this read half-done */
  rc = 0;
  m = pz_malloc(sizeof(*m));
  for (unsigned i = 0; i < n; i++) {
    if ((rc = pz_store_msg_get(db, convs[i], ids[i], m, err)) < 0 || (rc = cb(arg, m, err)) < 0) goto out;
  }
out:
  pz_free(m);
  pz_free(ids);
  pz_free(convs);
  return rc;
}

/* ---- edits, recalls, delete for me ---- */

static const char SQL_MSG_EDIT[] =
    "UPDATE messages SET text = ?4, mentions = ?5, edited_at = ?3 WHERE id = ?1 AND conversation_id = ?2";

int pz_store_msg_edit(pz_db_t *db, int64_t conv_id, int64_t id, pz_str_t text, const int64_t *mentions,
                      unsigned n_mentions, int64_t now, pz_err_t *err) {
  PREPARE(st, db, SQL_MSG_EDIT, err, id, conv_id, now);
  char list[PZ__STORE_IDS_TEXT_MAX(PZ_CHAT_MENTIONS_MAX)];
  PZ_ASSERT(n_mentions <= PZ_CHAT_MENTIONS_MAX);
  pz__store_ids_format(mentions, n_mentions, list);
  int rc;
  if ((rc = pz__db_bind_str(st, 4, text)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 5, list, -1, SQLITE_STATIC)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_done(db, st, err)) < 0) return rc;
  return sqlite3_changes(db->sql) ? 0 : pz_err_set(err, PZ_ENOTFOUND, NULL, NULL);
}

/* The text goes ('' takes it out of the search index by trigger), and so
 * do the body, the mentions and the reactions. */
static const char SQL_MSG_RECALL[] =
    "UPDATE messages SET text = '', body = '', mentions = '', recalled_at = ?3"
    " WHERE id = ?1 AND conversation_id = ?2";
static const char SQL_REACTIONS_CLEAR[] = "DELETE FROM message_reactions WHERE message_id = ?1";

int pz_store_msg_recall(pz_db_t *db, int64_t conv_id, int64_t id, int64_t now, pz_err_t *err) {
  PREPARE(st, db, SQL_MSG_RECALL, err, id, conv_id, now);
  int rc = pz__db_step_done(db, st, err);
  if (rc < 0) return rc;
  if (sqlite3_changes(db->sql) == 0) return pz_err_set(err, PZ_ENOTFOUND, NULL, NULL);
  PREPARE(clear, db, SQL_REACTIONS_CLEAR, err, id);
  return pz__db_step_done(db, clear, err);
}

static const char SQL_MSG_HIDE[] =
    "INSERT INTO message_hidden (user_id, message_id, conversation_id, hidden_at) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (user_id, message_id) DO NOTHING";

int pz_store_msg_hide(pz_db_t *db, int64_t user_id, int64_t conv_id, int64_t message_id, int64_t now, bool *created,
                      pz_err_t *err) {
  PREPARE(st, db, SQL_MSG_HIDE, err, user_id, message_id, conv_id, now);
  int rc = pz__db_step_done(db, st, err);
  *created = rc == 0 && sqlite3_changes(db->sql) > 0;
  return rc;
}

static const char SQL_MSG_HIDDEN[] = "SELECT 1 FROM message_hidden WHERE user_id = ?1 AND message_id = ?2";

int pz_store_msg_hidden(pz_db_t *db, int64_t user_id, int64_t message_id, bool *out, pz_err_t *err) {
  PREPARE(st, db, SQL_MSG_HIDDEN, err, user_id, message_id);
  int rc = pz__db_step_row(db, st, err);
  *out = rc == 0;
  if (rc == PZ_ENOTFOUND) {
    *err = (pz_err_t){0};
    rc = 0;
  }
  return rc;
}

static const char SQL_MSG_LIST_VISIBLE[] =
    "SELECT g.id FROM messages g WHERE g.conversation_id = ?2 AND g.id < ?3"
    " AND NOT EXISTS (SELECT 1 FROM message_hidden h WHERE h.user_id = ?1 AND h.message_id = g.id)"
    " ORDER BY g.id DESC LIMIT ?4";

int pz_store_msg_list_visible(pz_db_t *db, int64_t viewer, int64_t conv_id, int64_t before, unsigned limit,
                              pz_store_msg_cb cb, void *arg, pz_err_t *err) {
  PREPARE(st, db, SQL_MSG_LIST_VISIBLE, err, viewer, conv_id, before > 0 ? before : INT64_MAX, (int64_t)limit);
  return list_ids_then_get(db, st, conv_id, limit, cb, arg, err);
}

/* ---- reactions ---- */

static const char SQL_REACTION_STATS[] =
    "SELECT count(DISTINCT emoji), coalesce(max(emoji = ?2), 0) FROM message_reactions WHERE message_id = ?1";

int pz_store_reaction_stats(pz_db_t *db, int64_t message_id, pz_str_t emoji, unsigned *n_emoji, bool *has_emoji,
                            pz_err_t *err) {
  PREPARE(st, db, SQL_REACTION_STATS, err, message_id);
  int rc = pz__db_bind_str(st, 2, emoji);
  if (rc != SQLITE_OK) return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_row(db, st, err)) < 0) return rc;
  *n_emoji = (unsigned)sqlite3_column_int64(st, 0);
  *has_emoji = sqlite3_column_int64(st, 1) != 0;
  return 0;
}

static const char SQL_REACTION_ADD[] =
    "INSERT INTO message_reactions (message_id, user_id, created_at, emoji) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (message_id, emoji, user_id) DO NOTHING";
static const char SQL_REACTION_REMOVE[] =
    "DELETE FROM message_reactions WHERE message_id = ?1 AND user_id = ?2 AND emoji = ?3";

int pz_store_reaction_set(pz_db_t *db, int64_t message_id, int64_t user_id, pz_str_t emoji, bool add, int64_t now,
                          bool *changed, pz_err_t *err) {
  *changed = false;
  sqlite3_stmt *st = pz__db_stmt(db, add ? SQL_REACTION_ADD : SQL_REACTION_REMOVE, err);
  if (st == NULL) return err->code;
  int rc = add ? PZ__DB_BIND(db, st, err, message_id, user_id, now) : PZ__DB_BIND(db, st, err, message_id, user_id);
  if (rc < 0) return rc;
  if ((rc = pz__db_bind_str(st, add ? 4 : 3, emoji)) != SQLITE_OK) return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_done(db, st, err)) < 0) return rc;
  *changed = sqlite3_changes(db->sql) > 0;
  return 0;
}

/* Emoji in the order each was first used on the message, users in the
 * order they reacted. */
static const char SQL_REACTION_LIST[] =
    "SELECT r.emoji, r.user_id FROM message_reactions r"
    " JOIN (SELECT emoji, min(created_at) AS first FROM message_reactions WHERE message_id = ?1 GROUP BY emoji) f"
    " ON f.emoji = r.emoji WHERE r.message_id = ?1 ORDER BY f.first, r.emoji, r.created_at, r.user_id";

int pz_store_reaction_list(pz_db_t *db, int64_t message_id, pz_store_reaction_cb cb, void *arg, pz_err_t *err) {
  PREPARE(st, db, SQL_REACTION_LIST, err, message_id);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    pz_str_t emoji = pz_str_n((const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    int cb_rc = cb(arg, emoji, sqlite3_column_int64(st, 1), err);
    if (cb_rc < 0) return cb_rc;
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

/* ---- receipts ---- */

/* Monotonic, as the read marker is. */
static const char SQL_MEMBER_SET_DELIVERED[] =
    "UPDATE conversation_members SET delivered_up_to = ?3"
    " WHERE conversation_id = ?1 AND user_id = ?2 AND delivered_up_to < ?3";

int pz_store_member_set_delivered(pz_db_t *db, int64_t conv_id, int64_t user_id, int64_t message_id, bool *moved,
                                  pz_err_t *err) {
  PREPARE(st, db, SQL_MEMBER_SET_DELIVERED, err, conv_id, user_id, message_id);
  int rc = pz__db_step_done(db, st, err);
  *moved = rc == 0 && sqlite3_changes(db->sql) > 0;
  return rc;
}

static const char SQL_MEMBER_MARKERS[] =
    "SELECT user_id, last_read_id, delivered_up_to FROM conversation_members WHERE conversation_id = ?1";
static const char SQL_MEMBER_MARKER[] =
    "SELECT user_id, last_read_id, delivered_up_to FROM conversation_members"
    " WHERE conversation_id = ?1 AND user_id = ?2";

int pz_store_member_markers(pz_db_t *db, int64_t conv_id, pz_store_marker_cb cb, void *arg, pz_err_t *err) {
  PREPARE(st, db, SQL_MEMBER_MARKERS, err, conv_id);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int cb_rc = cb(arg, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2), err);
    if (cb_rc < 0) return cb_rc;
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

int pz_store_member_marker(pz_db_t *db, int64_t conv_id, int64_t user_id, int64_t *read_up_to, int64_t *delivered_up_to,
                           pz_err_t *err) {
  PREPARE(st, db, SQL_MEMBER_MARKER, err, conv_id, user_id);
  int rc = pz__db_step_row(db, st, err);
  if (rc < 0) return rc;
  *read_up_to = sqlite3_column_int64(st, 1);
  *delivered_up_to = sqlite3_column_int64(st, 2);
  return 0;
}

/* Newest first: with a cap, the messages nearest the marker count. */
static const char SQL_MSG_SENDERS[] =
    "SELECT sender_id FROM messages WHERE conversation_id = ?1 AND id > ?2 AND id <= ?3 ORDER BY id DESC LIMIT ?4";

int pz_store_msg_senders(pz_db_t *db, int64_t conv_id, int64_t after, int64_t up_to, unsigned max,
                         pz_store_member_cb cb, void *arg, unsigned *rows, pz_err_t *err) {
  *rows = 0;
  PREPARE(st, db, SQL_MSG_SENDERS, err, conv_id, after, up_to, (int64_t)max);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    (*rows)++;
    int cb_rc = cb(arg, sqlite3_column_int64(st, 0), err);
    if (cb_rc < 0) {
      sqlite3_reset(st);
      return cb_rc;
    }
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

/* ---- settings ---- */

static const char SQL_SETTINGS_GET[] = "SELECT direct_chat_from FROM user_settings WHERE user_id = ?1";
static const char SQL_SETTINGS_SET[] =
    "INSERT INTO user_settings (user_id, direct_chat_from) VALUES (?1, ?2)"
    " ON CONFLICT (user_id) DO UPDATE SET direct_chat_from = excluded.direct_chat_from";

int pz_store_settings_get(pz_db_t *db, int64_t user_id, pz_settings_rec_t *out, pz_err_t *err) {
  PREPARE(st, db, SQL_SETTINGS_GET, err, user_id);
  int rc = pz__db_step_row(db, st, err);
  out->direct_chat_from = PZ_DIRECT_FROM_CONTACTS;
  if (rc == PZ_ENOTFOUND) {
    *err = (pz_err_t){0};
    return 0;
  }
  if (rc < 0) return rc;
  const char *v = (const char *)sqlite3_column_text(st, 0);
  if (v && strcmp(v, "everyone") == 0) out->direct_chat_from = PZ_DIRECT_FROM_EVERYONE;
  return 0;
}

int pz_store_settings_set(pz_db_t *db, int64_t user_id, const pz_settings_rec_t *s, pz_err_t *err) {
  PREPARE(st, db, SQL_SETTINGS_SET, err, user_id);
  const char *v = s->direct_chat_from == PZ_DIRECT_FROM_EVERYONE ? "everyone" : "contacts";
  int rc = sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
  if (rc != SQLITE_OK) return pz__db_fail(db, rc, err);
  return pz__db_step_done(db, st, err);
}

/* ---- presence ---- */

/* Sessions that expired still tell when the user was last seen. */
static const char SQL_LAST_SEEN[] = "SELECT max(last_seen_at) FROM sessions WHERE user_id = ?1";

int pz_store_user_last_seen(pz_db_t *db, int64_t user_id, int64_t *out, pz_err_t *err) {
  PREPARE(st, db, SQL_LAST_SEEN, err, user_id);
  int rc = pz__db_step_row(db, st, err);
  *out = rc == 0 ? sqlite3_column_int64(st, 0) : 0; /* NULL reads as 0: never seen */
  return rc;
}

/* ---- search ---- */

void pz_store_fts_query(pz_str_t q, pz_buf_t *out) {
  /* Every run of non-space bytes becomes one FTS5 string, "..." with its
   * quotes doubled: inside a string no byte is an operator, so no input
   * is a syntax error. The strings are ANDed; the last is a prefix, so
   * that a word being typed already matches. */
  size_t i = 0;
  bool first = true;
  out->len = 0;
  while (i < q.len) {
    while (i < q.len && (q.ptr[i] == ' ' || q.ptr[i] == '\t' || q.ptr[i] == '\n' || q.ptr[i] == '\r'))
      i++;
    if (i == q.len) break;
    if (!first) pz_buf_append_c(out, " ");
    first = false;
    pz_buf_append_c(out, "\"");
    while (i < q.len && !(q.ptr[i] == ' ' || q.ptr[i] == '\t' || q.ptr[i] == '\n' || q.ptr[i] == '\r')) {
      if (q.ptr[i] == '"') pz_buf_append_c(out, "\"");
      pz_buf_append(out, &q.ptr[i], 1);
      i++;
    }
    pz_buf_append_c(out, "\"");
  }
  if (!first) pz_buf_append_c(out, "*");
}

/* Newest first: the FTS match gives row ids, the join keeps the caller's
 * conversations, and the filters drop recalled messages (their text is
 * '' and out of the index already) and the ones the caller deleted. */
static const char SQL_SEARCH[] =
    "SELECT g.id, g.conversation_id FROM messages_fts f"
    " JOIN messages g ON g.id = f.rowid"
    " JOIN conversation_members m ON m.conversation_id = g.conversation_id AND m.user_id = ?1"
    " WHERE messages_fts MATCH ?4 AND (?2 = 0 OR g.conversation_id = ?2) AND g.recalled_at = 0 AND g.type = 'text'"
    " AND NOT EXISTS (SELECT 1 FROM message_hidden h WHERE h.user_id = ?1 AND h.message_id = g.id)"
    " ORDER BY g.id DESC LIMIT ?3";

int pz_store_msg_search(pz_db_t *db, int64_t viewer, pz_str_t query, int64_t conv_id, unsigned limit,
                        pz_store_msg_cb cb, void *arg, pz_err_t *err) {
  PREPARE(st, db, SQL_SEARCH, err, viewer, conv_id, (int64_t)limit);
  pz_buf_t fts = {0};
  pz_store_fts_query(query, &fts);
  int rc = 0;
  if (fts.len == 0) goto out; /* nothing to look for */
  if ((rc = sqlite3_bind_text(st, 4, fts.data, (int)fts.len, SQLITE_STATIC)) != SQLITE_OK) {
    rc = pz__db_fail(db, rc, err);
    goto out;
  }
  rc = list_ids_then_get(db, st, 0, limit, cb, arg, err);
out:
  pz_buf_free(&fts);
  return rc;
}
