/* The end of a write batch: work that jobs deferred so that it runs once per batch (db.h, PZ__DB_BATCH_*). */
#include "store/db.h"

/* Search indexing (migration 11): the messages above the mark go into the
 * index with their text as the batch leaves it, in one statement, and the
 * mark moves past them. It runs after every job's savepoint is gone, so
 * FTS5 writes the batch's terms once, as one segment. A message a
 * job inserted and then lost to a rollback is simply not there to index;
 * one edited in the batch it was sent in is indexed once, as edited. */
static const char SQL_FTS_INDEX[] =
    "INSERT INTO messages_fts (rowid, text)"
    " SELECT id, text FROM messages WHERE id > (SELECT indexed_up_to FROM messages_fts_state)";
static const char SQL_FTS_MARK[] =
    "UPDATE messages_fts_state SET indexed_up_to = (SELECT max(id) FROM messages)"
    " WHERE (SELECT max(id) FROM messages) > indexed_up_to";

static int fts_index(pz_db_t *db, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_FTS_INDEX, err);
  if (st == NULL) return err->code;
  int rc = pz__db_step_done(db, st, err);
  sqlite3_reset(st);
  if (rc < 0) return rc;
  if ((st = pz__db_stmt(db, SQL_FTS_MARK, err)) == NULL) return err->code;
  rc = pz__db_step_done(db, st, err);
  sqlite3_reset(st);
  db->fts_mark_gen = 0; /* moved: chat.c reads it again */
  return rc;
}

int pz__store_batch_end(pz_db_t *db, pz_err_t *err) {
  int rc = 0;
  if (db->batch_pending & PZ__DB_BATCH_FTS) rc = fts_index(db, err);
  db->batch_pending = 0;
  return rc;
}
