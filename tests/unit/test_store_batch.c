/* Unit tests of work done once per write batch (src/store/batch.c): search indexing at the end of the batch, across
 * edits, recalls, rollbacks and late ids; and the send path that feeds it. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plaza/auth.h"
#include "plaza/chat.h"
#include "plaza/id.h"
#include "store/db.h"
#include "store_fixture.h"

static pz_store_t *st;
static const int64_t now_ms = 1750000000000LL;

/* Inputs and outputs of the step being run; each step is one write job, in a batch of its own. */
static struct {
  int64_t a, b, conv_id, msg_id, id;
  const char *text, *text2, *query;
  bool created, changed;
  pz_msg_rec_t msg, stored, out;
  pz_chat_fanout_t fanout;
  unsigned n_found;
  int64_t count;
  int64_t seqs[64];
  unsigned n_seqs;
} T;

static int step(pz_store_run_fn run, pz_err_t *err) {
  return pz_fix_run(st, run, NULL, err);
}

static int64_t make_user(const char *name) {
  return pz_fix_user(st, name, NULL, now_ms);
}

static int run_block(pz_db_t *db, pz_store_job_t *job) {
  bool created;
  int64_t since;
  pz_user_rec_t u;
  return pz_auth_block(db, T.a, T.b, now_ms, &created, &since, &u, &job->err);
}

/* Sends T.text from T.a as message T.id (0: a new id) with client id "c<id>". */
static int send_text(pz_db_t *db, pz_err_t *err) {
  memset(&T.msg, 0, sizeof(T.msg));
  T.msg.id = T.id ? T.id : pz_id_next();
  T.msg.conversation_id = T.conv_id;
  T.msg.sender_id = T.a;
  snprintf(T.msg.client_id, sizeof(T.msg.client_id), "c%lld", (long long)T.msg.id);
  T.msg.text_len = (size_t)snprintf(T.msg.text, sizeof(T.msg.text), "%s", T.text);
  T.msg.created_at = now_ms;
  pz_chat_fanout_free(&T.fanout);
  return pz_chat_send(db, &T.msg, PZ_STR("{\"type\":\"message.new\"}"), &T.stored, &T.created, &T.fanout, err);
}

static int run_send(pz_db_t *db, pz_store_job_t *job) { return send_text(db, &job->err); }

/* Sent, then edited to T.text2 in the same job, so in the same batch. */
static int run_send_edit(pz_db_t *db, pz_store_job_t *job) {
  int rc = send_text(db, &job->err);
  if (rc == 0)
    rc = pz_chat_edit(db, T.a, T.conv_id, T.msg.id, pz_str(T.text2), NULL, 0, now_ms, PZ_CHAT_EDIT_WINDOW_MS, &T.out,
                      &job->err);
  return rc;
}

static int run_send_recall(pz_db_t *db, pz_store_job_t *job) {
  int rc = send_text(db, &job->err);
  if (rc == 0)
    rc = pz_chat_recall(db, T.a, T.conv_id, T.msg.id, now_ms, PZ_CHAT_RECALL_WINDOW_MS, &T.out, &T.changed, &job->err);
  return rc;
}

/* Sent, then the job fails: its savepoint takes the message back. */
static int run_send_fail(pz_db_t *db, pz_store_job_t *job) {
  int rc = send_text(db, &job->err);
  return rc < 0 ? rc : pz_err_set(&job->err, PZ_EINVAL, NULL, "the job fails after its send");
}

static int run_edit(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_edit(db, T.a, T.conv_id, T.msg_id, pz_str(T.text), NULL, 0, now_ms, PZ_CHAT_EDIT_WINDOW_MS, &T.out,
                      &job->err);
}

static int found_row(void *arg, const pz_msg_rec_t *m, pz_err_t *err) {
  (void)arg, (void)m, (void)err;
  T.n_found++;
  return 0;
}
static int run_search(pz_db_t *db, pz_store_job_t *job) {
  T.n_found = 0;
  return pz_store_msg_search(db, T.a, pz_str(T.query), 0, 16, found_row, NULL, &job->err);
}

static unsigned search(const char *q) {
  T.query = q;
  CHECK_EQ_INT(step(run_search, NULL), 0);
  return T.n_found;
}

/* How many term instances the index holds for message T.msg_id: the
 * words of its text once each, never those of an older text, never twice. */
static int run_instances(pz_db_t *db, pz_store_job_t *job) {
  int rc = pz__db_exec(
      db, "CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts_words USING fts5vocab(main, messages_fts, instance)", &job->err);
  if (rc < 0) return rc;
  sqlite3_stmt *q = NULL;
  if (sqlite3_prepare_v2(db->sql, "SELECT count(*) FROM temp.fts_words WHERE doc = ?1", -1, &q, NULL) != SQLITE_OK)
    return pz__db_fail(db, sqlite3_errcode(db->sql), &job->err);
  sqlite3_bind_int64(q, 1, T.msg_id);
  rc = sqlite3_step(q) == SQLITE_ROW ? 0 : pz__db_fail(db, sqlite3_errcode(db->sql), &job->err);
  T.count = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  return rc;
}

static int64_t instances(int64_t msg_id) {
  T.msg_id = msg_id;
  CHECK_EQ_INT(step(run_instances, NULL), 0);
  return T.count;
}

static int seq_row(void *arg, int64_t seq, pz_str_t type, pz_str_t payload, pz_err_t *err) {
  (void)arg, (void)type, (void)payload, (void)err;
  if (T.n_seqs < 64) T.seqs[T.n_seqs] = seq;
  T.n_seqs++;
  return 0;
}
static int run_events(pz_db_t *db, pz_store_job_t *job) {
  T.n_seqs = 0;
  int rc = pz_store_event_list(db, T.b, 0, 1000, seq_row, NULL, &job->err);
  if (rc == 0) rc = pz_store_event_head(db, T.b, &T.count, &job->err);
  return rc;
}

static int64_t ann, bob;

static void setup_chat(void) {
  ann = make_user("ann");
  bob = make_user("bob");
  T.a = ann, T.b = bob;
  T.conv_id = pz_fix_direct_chat(st, ann, bob, now_ms);
}

static void test_sent_and_found(void) {
  T.a = ann, T.id = 0, T.text = "alpha bravo";
  CHECK_EQ_INT(step(run_send, NULL), 0);
  /* The batch that sent it indexed it: found as soon as it is committed. */
  CHECK_EQ_INT(search("alpha"), 1);
  CHECK_EQ_INT(instances(T.msg.id), 2);
}

static void test_edited_in_its_batch(void) {
  T.a = ann, T.id = 0, T.text = "apple pie", T.text2 = "banana split";
  CHECK_EQ_INT(step(run_send_edit, NULL), 0);
  CHECK_EQ_INT(search("apple"), 0);
  CHECK_EQ_INT(search("banana"), 1);
  CHECK_EQ_INT(instances(T.msg.id), 2);
  /* And edited again in a later batch: out with the old words, in with the new. */
  T.msg_id = T.msg.id, T.text = "cherry tart";
  CHECK_EQ_INT(step(run_edit, NULL), 0);
  CHECK_EQ_INT(search("banana"), 0);
  CHECK_EQ_INT(search("cherry"), 1);
  CHECK_EQ_INT(instances(T.msg_id), 2);
}

static void test_recalled_in_its_batch(void) {
  T.a = ann, T.id = 0, T.text = "grapefruit";
  CHECK_EQ_INT(step(run_send_recall, NULL), 0);
  CHECK(T.changed);
  CHECK_EQ_INT(search("grapefruit"), 0);
  CHECK_EQ_INT(instances(T.msg.id), 0);
}

static void test_rolled_back(void) {
  T.b = bob;
  CHECK_EQ_INT(step(run_events, NULL), 0);
  unsigned events_before = T.n_seqs;
  T.a = ann, T.id = 0, T.text = "damson";
  CHECK_EQ_INT(step(run_send_fail, NULL), PZ_EINVAL);
  CHECK_EQ_INT(search("damson"), 0);
  CHECK_EQ_INT(instances(T.msg.id), 0);
  /* Its events went with it: the stream stays gap-free. */
  T.text = "elderberry";
  CHECK_EQ_INT(step(run_send, NULL), 0);
  CHECK_EQ_INT(search("elderberry"), 1);
  T.b = bob;
  CHECK_EQ_INT(step(run_events, NULL), 0);
  CHECK_EQ_INT(T.n_seqs, events_before + 1);
  for (unsigned i = 0; i < T.n_seqs && i < 64; i++)
    CHECK_EQ_INT(T.seqs[i], i + 1);
  CHECK_EQ_INT(T.count, T.n_seqs); /* the head is the last seq */
}

static void test_late_id(void) {
  /* An id made before another message committed lands below the index's
   * mark: it is indexed at once, and edits of it stay exact. */
  int64_t late = pz_id_next();
  T.a = ann, T.id = 0, T.text = "fig";
  CHECK_EQ_INT(step(run_send, NULL), 0);
  T.id = late, T.text = "guava";
  CHECK_EQ_INT(step(run_send, NULL), 0);
  T.id = 0;
  CHECK_EQ_INT(search("guava"), 1);
  CHECK_EQ_INT(instances(late), 1);
  T.msg_id = late, T.text = "honeydew melon";
  CHECK_EQ_INT(step(run_edit, NULL), 0);
  CHECK_EQ_INT(search("guava"), 0);
  CHECK_EQ_INT(search("honeydew"), 1);
  CHECK_EQ_INT(instances(late), 2);
}

static void test_retry_after_block(void) {
  /* A retry gets the first message back even when the rules would now
   * refuse a new one; a new message is refused. */
  int64_t cat = make_user("cat"), dan = make_user("dan");
  int64_t conv = pz_fix_direct_chat(st, cat, dan, now_ms), keep = T.conv_id;
  T.conv_id = conv, T.a = cat, T.id = 0, T.text = "iceberg";
  CHECK_EQ_INT(step(run_send, NULL), 0);
  int64_t first = T.msg.id;
  T.a = dan, T.b = cat;
  CHECK_EQ_INT(step(run_block, NULL), 0);
  T.a = cat, T.id = first, T.text = "iceberg again";
  CHECK_EQ_INT(step(run_send, NULL), 0);
  CHECK(!T.created);
  CHECK(T.stored.id == first);
  CHECK_EQ_STR(T.stored.text, "iceberg");
  CHECK_EQ_INT(T.fanout.n, 0);
  pz_err_t err = {0};
  T.id = 0, T.text = "jackfruit";
  CHECK_EQ_INT(step(run_send, &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(pz_err_code_str(&err), "blocked");
  T.id = 0;
  T.conv_id = keep;
}

int main(void) {
  if (sodium_init() < 0) return 1;
  char *dir = pz_fix_open(&st, "store-batch");
  if (dir == NULL) return 1;
  setup_chat();
  RUN(test_sent_and_found);
  RUN(test_edited_in_its_batch);
  RUN(test_recalled_in_its_batch);
  RUN(test_rolled_back);
  RUN(test_late_id);
  RUN(test_retry_after_block);
  pz_chat_fanout_free(&T.fanout);
  pz_fix_close(st, dir);
  TEST_EXIT();
}
