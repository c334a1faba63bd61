/* The writer's apply of the send log: records go into its batch without a savepoint each, and one the database
 * refuses makes it start the batch over, a savepoint per record, so that only that record is lost. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "plaza/id.h"
#include "plaza/store.h"
#include "plaza/store_chat.h"
#include "store/db.h"
#include "store_fixture.h"
#include "test.h"

typedef struct {
  pz_store_job_t job;
  int64_t conv, sender, other;
  bool twice; /* the record names the sender's event twice: the database refuses the second */
  int64_t id;
  int done;
  long long count;
} rec_job_t;

/* The log thread's side of a send, as pz_chat_send_log does it, with the
 * record made wrong on purpose when twice. */
static int log_rec(pz_db_t *db, pz_store_job_t *job, pz_buf_t *rec) {
  rec_job_t *r = job->data;
  pz_msg_rec_t *m = calloc(1, sizeof(*m));
  m->id = r->id = pz_id_next();
  m->conversation_id = r->conv;
  m->sender_id = r->sender;
  snprintf(m->client_id, sizeof(m->client_id), "c%lld", (long long)m->id);
  m->text_len = (size_t)snprintf(m->text, sizeof(m->text), "record %lld", (long long)m->id);
  m->created_at = 1700000000000;
  pz_store_user_seq_t fan[2];
  int rc = pz_store_event_claim(db, r->sender, &fan[0].seq, &job->err);
  fan[0].user_id = r->sender;
  if (rc == 0 && r->twice) {
    fan[1] = fan[0];
  } else if (rc == 0) {
    fan[1].user_id = r->other;
    rc = pz_store_event_claim(db, r->other, &fan[1].seq, &job->err);
  }
  if (rc == 0) pz_store_msg_log_encode(m, PZ_STR("{}"), fan, 2, rec);
  free(m);
  return rc < 0 ? rc : 1;
}

static int never_run(pz_db_t *db, pz_store_job_t *job) {
  (void)db;
  return pz_err_set(&job->err, PZ_EIO, NULL, "a logged record's job ran on the writer");
}

static void on_done(pz_store_job_t *job) { ((rec_job_t *)job->data)->done++; }

static const char SQL_COUNT[] =
    "SELECT (SELECT count(*) FROM messages WHERE id = ?1)"
    " + 10 * (SELECT count(*) FROM events WHERE message_id = ?1)";

/* A read: 1 for the message row plus 10 per event of it. */
static int count_rec(pz_db_t *db, pz_store_job_t *job) {
  rec_job_t *r = job->data;
  sqlite3_stmt *st = pz__db_stmt(db, SQL_COUNT, &job->err);
  if (st == NULL) return job->err.code;
  sqlite3_bind_int64(st, 1, r->id);
  if (sqlite3_step(st) != SQLITE_ROW) return pz__db_fail(db, sqlite3_errcode(db->sql), &job->err);
  r->count = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return 0;
}

#define N_RECS 9

/* The refused record left nothing, not even the message row written
 * before its second event failed; every other one is whole. */
static void check_counts(uv_loop_t *loop, pz_store_t *st, rec_job_t *recs) {
  for (int i = 0; i < N_RECS; i++) {
    recs[i].done = 0;
    recs[i].job = (pz_store_job_t){.run = count_rec, .done = on_done, .data = &recs[i]};
    CHECK_EQ_INT(pz_store_read(st, &recs[i].job), 0);
    while (!recs[i].done)
      uv_run(loop, UV_RUN_ONCE);
    CHECK_EQ_INT(recs[i].job.rc, 0);
    CHECK_EQ_INT(recs[i].count, i == N_RECS / 2 ? 0 : 21);
  }
}

static void test_refused_record_is_skipped_alone(void) {
  pz_store_t *sync = NULL;
  char *dir = pz_fix_open(&sync, "store_apply");
  CHECK(dir != NULL);
  if (dir == NULL) return;
  int64_t a = pz_fix_user(sync, "alice", NULL, 1700000000000);
  int64_t b = pz_fix_user(sync, "bob", NULL, 1700000000000);
  int64_t conv = pz_fix_direct_chat(sync, a, b, 1700000000000);
  pz_store_close(sync);

  uv_loop_t loop;
  uv_loop_init(&loop);
  pz_store_t *st = NULL;
  pz_err_t err = {0};
  /* The writer waits before it applies, so that the records gather into one batch. */
  pz_store_config_t cfg = {.data_dir = dir, .test_apply_delay_ms = 200};
  CHECK_EQ_INT(pz_store_open(&st, &loop, &cfg, &err), 0);
  if (st == NULL) return;
  rec_job_t recs[N_RECS];
  memset(recs, 0, sizeof(recs));
  for (int i = 0; i < N_RECS; i++) {
    recs[i] = (rec_job_t){.conv = conv, .sender = i % 2 ? b : a, .other = i % 2 ? a : b, .twice = i == N_RECS / 2};
    recs[i].job = (pz_store_job_t){.run = never_run, .log = log_rec, .done = on_done, .data = &recs[i]};
    CHECK_EQ_INT(pz_store_write(st, &recs[i].job), 0);
  }
  for (int i = 0; i < N_RECS; i++)
    while (!recs[i].done)
      uv_run(&loop, UV_RUN_ONCE);
  /* Every record was logged and answered before any was applied. */
  for (int i = 0; i < N_RECS; i++)
    CHECK_EQ_INT(recs[i].job.rc, 0);

  /* Reads wait for the apply of what was logged before them. */
  check_counts(&loop, st, recs);
  pz_store_close(st);
  uv_run(&loop, UV_RUN_DEFAULT);

  /* Reopened: the log's position moved past all of them, the refused one
   * included, and nothing is applied twice at start. */
  st = NULL;
  CHECK_EQ_INT(pz_store_open(&st, &loop, &cfg, &err), 0);
  if (st) {
    check_counts(&loop, st, recs);
    pz_store_close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
  CHECK_EQ_INT(pz_store_open_sync(&sync, dir, &err), 0);
  if (sync) pz_fix_close(sync, dir);
}

int main(void) {
  RUN(test_refused_record_is_skipped_alone);
  TEST_EXIT();
}
