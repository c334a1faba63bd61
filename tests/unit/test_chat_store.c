/* Unit tests of the messaging rules against a real database: who may message whom, retries, gap-free event streams,
 * read markers. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plaza/auth.h"
#include "plaza/chat.h"
#include "plaza/id.h"
#include "store_fixture.h"

static pz_store_t *st;
static const int64_t now_ms = 1750000000000LL;

/* Inputs and outputs of the step being run; each step is one committed write job. */
static struct {
  int64_t a, b, conv_id, msg_id, was, marker;
  int64_t ids[8];
  unsigned n_ids, unread, count;
  pz_conv_rec_t conv;
  bool created;
  pz_msg_rec_t msg, stored;
  pz_chat_fanout_t fanout;
  int64_t seqs[64];
} T;

static int step(pz_store_run_fn run, pz_err_t *err) {
  return pz_fix_run(st, run, NULL, err);
}

static int64_t make_user(const char *name) {
  return pz_fix_user(st, name, NULL, now_ms);
}

static int run_befriend(pz_db_t *db, pz_store_job_t *job) {
  return pz_store_contact_add(db, T.a, T.b, now_ms, &job->err);
}
static int run_block(pz_db_t *db, pz_store_job_t *job) {
  bool created;
  int64_t since;
  pz_user_rec_t u;
  return pz_auth_block(db, T.a, T.b, now_ms, &created, &since, &u, &job->err);
}
static int run_unblock(pz_db_t *db, pz_store_job_t *job) { return pz_auth_unblock(db, T.a, T.b, &job->err); }

static void befriend(int64_t a, int64_t b) {
  T.a = a, T.b = b;
  CHECK_EQ_INT(step(run_befriend, NULL), 0);
}

static int run_direct(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_direct_open(db, T.a, T.b, pz_id_next(), now_ms, &T.conv, &T.created, &job->err);
}

static int run_group(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_group_create(db, T.a, PZ_STR("Group"), T.ids, T.n_ids, pz_id_next(), now_ms, &T.conv, &job->err);
}

static int run_send(pz_db_t *db, pz_store_job_t *job) {
  pz_chat_fanout_free(&T.fanout);
  return pz_chat_send(db, &T.msg, PZ_STR("{\"type\":\"message.new\"}"), &T.stored, &T.created, &T.fanout, &job->err);
}

static int run_read(pz_db_t *db, pz_store_job_t *job) {
  pz_chat_fanout_free(&T.fanout);
  return pz_chat_mark_read(db, T.a, T.conv_id, T.msg_id, PZ_STR("{\"type\":\"conversation.read\"}"), now_ms, &T.was,
                           &T.marker, &T.unread, &T.fanout, &job->err);
}

static int seq_row(void *arg, int64_t seq, pz_str_t type, pz_str_t payload, pz_err_t *err) {
  if (T.count < 64) T.seqs[T.count] = seq;
  T.count++;
  return 0;
}

static int run_events(pz_db_t *db, pz_store_job_t *job) {
  T.count = 0;
  return pz_store_event_list(db, T.a, 0, 1000, seq_row, NULL, &job->err);
}

static int msg_row(void *arg, const pz_msg_rec_t *m, pz_err_t *err) {
  T.count++;
  return 0;
}

static int run_count_msgs(pz_db_t *db, pz_store_job_t *job) {
  T.count = 0;
  return pz_store_msg_list(db, T.conv_id, 0, 1000, msg_row, NULL, &job->err);
}

/* Sends text from sender to conv with client_id; returns the result code. */
static int send_msg(int64_t sender, int64_t conv, const char *client_id, const char *text, pz_err_t *err) {
  memset(&T.msg, 0, sizeof(T.msg));
  T.msg.id = pz_id_next();
  T.msg.conversation_id = conv;
  T.msg.sender_id = sender;
  T.msg.created_at = now_ms;
  snprintf(T.msg.client_id, sizeof(T.msg.client_id), "%s", client_id);
  T.msg.text_len = (size_t)snprintf(T.msg.text, sizeof(T.msg.text), "%s", text);
  return step(run_send, err);
}

static unsigned stream_len(int64_t user) {
  T.a = user;
  CHECK_EQ_INT(step(run_events, NULL), 0);
  /* Gap-free from 1. */
  for (unsigned i = 0; i < T.count && i < 64; i++)
    CHECK_EQ_INT(T.seqs[i], i + 1);
  return T.count;
}

static unsigned messages_in(int64_t conv) {
  T.conv_id = conv;
  CHECK_EQ_INT(step(run_count_msgs, NULL), 0);
  return T.count;
}

static void test_direct_rules(void) {
  pz_err_t err;
  int64_t ann = make_user("ann"), ben = make_user("ben"), cat = make_user("cat");
  T.a = ann, T.b = ben;
  CHECK_EQ_INT(step(run_direct, &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(pz_err_code_str(&err), "not_contacts");
  T.a = ann, T.b = ann;
  CHECK_EQ_INT(step(run_direct, &err), PZ_EINVAL);
  T.a = ann, T.b = 12345;
  CHECK_EQ_INT(step(run_direct, &err), PZ_ENOTFOUND);

  befriend(ann, ben);
  T.a = ann, T.b = ben;
  CHECK_EQ_INT(step(run_direct, NULL), 0);
  CHECK(T.created);
  int64_t conv = T.conv.id;
  T.a = ben, T.b = ann;
  CHECK_EQ_INT(step(run_direct, NULL), 0);
  CHECK(!T.created);
  CHECK_EQ_INT(T.conv.id, conv);

  /* cat blocked ann: nothing between them, either way. */
  befriend(ann, cat);
  T.a = cat, T.b = ann;
  CHECK_EQ_INT(step(run_block, NULL), 0);
  T.a = ann, T.b = cat;
  CHECK_EQ_INT(step(run_direct, &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(pz_err_code_str(&err), "blocked");
  T.a = cat, T.b = ann;
  CHECK_EQ_INT(step(run_direct, &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(pz_err_code_str(&err), "blocked");
}

static void test_send_rules(void) {
  pz_err_t err;
  int64_t dan = make_user("dan"), eve = make_user("eve"), fay = make_user("fay");
  befriend(dan, eve);
  T.a = dan, T.b = eve;
  CHECK_EQ_INT(step(run_direct, NULL), 0);
  int64_t conv = T.conv.id;
  unsigned dan0 = stream_len(dan), eve0 = stream_len(eve);

  CHECK_EQ_INT(send_msg(dan, conv, "k1", "hello", NULL), 0);
  CHECK(T.created);
  CHECK_EQ_INT(T.fanout.n, 2);
  int64_t first_id = T.stored.id;
  /* The retry finds the first message, and adds no event. */
  CHECK_EQ_INT(send_msg(dan, conv, "k1", "hello again", NULL), 0);
  CHECK(!T.created);
  CHECK_EQ_INT(T.stored.id, first_id);
  CHECK_EQ_STR(T.stored.text, "hello");
  CHECK_EQ_INT(T.fanout.n, 0);
  CHECK_EQ_INT(messages_in(conv), 1);
  CHECK_EQ_INT(stream_len(dan), dan0 + 1);
  CHECK_EQ_INT(stream_len(eve), eve0 + 1);

  /* Outsiders may not write. */
  CHECK_EQ_INT(send_msg(fay, conv, "k1", "let me in", &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(pz_err_code_str(&err), "not_member");
  CHECK_EQ_INT(send_msg(fay, 999, "k1", "nowhere", &err), PZ_ENOTFOUND);

  /* eve blocks dan: dan's messages are refused and leave no trace; eve may still write. */
  T.a = eve, T.b = dan;
  CHECK_EQ_INT(step(run_block, NULL), 0);
  CHECK_EQ_INT(send_msg(dan, conv, "k2", "are you there?", &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(pz_err_code_str(&err), "blocked");
  CHECK_EQ_INT(messages_in(conv), 1);
  CHECK_EQ_INT(stream_len(eve), eve0 + 1);
  CHECK_EQ_INT(send_msg(eve, conv, "k2", "bye", NULL), 0);
  T.a = eve, T.b = dan;
  CHECK_EQ_INT(step(run_unblock, NULL), 0);
  CHECK_EQ_INT(send_msg(dan, conv, "k2", "back", NULL), 0);
  CHECK(T.created);

  /* reply_to another conversation's message: refused. */
  int64_t gus = make_user("gus");
  befriend(dan, gus);
  T.a = dan, T.b = gus;
  CHECK_EQ_INT(step(run_direct, NULL), 0);
  int64_t other = T.conv.id;
  memset(&T.msg, 0, sizeof(T.msg));
  T.msg.id = pz_id_next();
  T.msg.conversation_id = other;
  T.msg.sender_id = dan;
  T.msg.reply_to = first_id;
  T.msg.created_at = now_ms;
  strcpy(T.msg.client_id, "r1");
  T.msg.text_len = (size_t)sprintf(T.msg.text, "re");
  CHECK_EQ_INT(step(run_send, &err), PZ_EINVAL);
  T.msg.conversation_id = conv;
  CHECK_EQ_INT(step(run_send, NULL), 0);
  CHECK_EQ_INT(T.stored.reply_to, first_id);
  pz_chat_fanout_free(&T.fanout);
}

static void test_groups_and_reads(void) {
  pz_err_t err;
  int64_t own = make_user("own"), m1 = make_user("m1"), m2 = make_user("m2"), stranger = make_user("stranger");
  befriend(own, m1);
  befriend(m2, own);
  T.a = own;
  T.ids[0] = m1, T.ids[1] = stranger;
  T.n_ids = 2;
  CHECK_EQ_INT(step(run_group, &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(pz_err_code_str(&err), "not_contacts");
  T.ids[0] = own;
  T.n_ids = 1;
  CHECK_EQ_INT(step(run_group, &err), PZ_EINVAL);
  T.ids[0] = m1, T.ids[1] = m2, T.ids[2] = m1, T.ids[3] = own;
  T.n_ids = 4;
  CHECK_EQ_INT(step(run_group, NULL), 0);
  int64_t g = T.conv.id;
  CHECK_EQ_INT(T.conv.owner_id, own);

  CHECK_EQ_INT(send_msg(m1, g, "a", "one", NULL), 0);
  CHECK_EQ_INT(T.fanout.n, 3);
  int64_t one = T.stored.id;
  CHECK_EQ_INT(send_msg(m2, g, "a", "two", NULL), 0);
  int64_t two = T.stored.id;
  CHECK_EQ_INT(send_msg(own, g, "a", "mine", NULL), 0);

  unsigned before = stream_len(own);
  T.a = own, T.conv_id = g, T.msg_id = one;
  CHECK_EQ_INT(step(run_read, NULL), 0);
  CHECK_EQ_INT(T.marker, one);
  CHECK_EQ_INT(T.unread, 1); /* two; mine does not count */
  CHECK_EQ_INT(T.fanout.n, 1);
  CHECK_EQ_INT(T.fanout.items[0].user_id, own);
  T.msg_id = two;
  CHECK_EQ_INT(step(run_read, NULL), 0);
  CHECK_EQ_INT(T.was, one); /* where it was: a receipt goes to the senders of what it passed */
  CHECK_EQ_INT(T.unread, 0);
  /* Back to an older message: the marker stays, no event. */
  T.msg_id = one;
  CHECK_EQ_INT(step(run_read, NULL), 0);
  CHECK_EQ_INT(T.was, two);
  CHECK_EQ_INT(T.marker, two);
  CHECK_EQ_INT(T.fanout.n, 0);
  CHECK_EQ_INT(stream_len(own), before + 2);
  /* Only members read; only the conversation's messages are markers. */
  T.a = stranger;
  CHECK_EQ_INT(step(run_read, &err), PZ_EFORBIDDEN);
  T.a = own, T.msg_id = 42;
  CHECK_EQ_INT(step(run_read, &err), PZ_EINVAL);
  pz_chat_fanout_free(&T.fanout);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  char *dir = pz_fix_open(&st, "chat-store");
  if (dir == NULL) return 1;
  RUN(test_direct_rules);
  RUN(test_send_rules);
  RUN(test_groups_and_reads);
  pz_fix_close(st, dir);
  TEST_EXIT();
}
