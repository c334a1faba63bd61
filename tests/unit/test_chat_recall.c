/* Unit tests of the rewrite of stored events on recall (which events change, and that seq and type never do), and of
 * message.new events that serve the payload kept with their message. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plaza/auth.h"
#include "plaza/chat.h"
#include "plaza/id.h"
#include "plaza/store_groups.h"
#include "store_fixture.h"

static pz_store_t *st;
static const int64_t t0 = 1750000000000LL;

#define MAX_EVENTS 16

typedef struct {
  int64_t seq;
  char type[PZ_CHAT_EVENT_TYPE_MAX + 1];
  char payload[96];
} ev_t;

/* Inputs and outputs of the step being run; each step is one committed write job. */
static struct {
  int64_t a, b, conv_id, msg_id, list_user;
  const char *text, *type, *payload, *new_payload, *edited_payload;
  bool created;
  unsigned n_changed;
  pz_msg_rec_t msg, stored;
  pz_chat_fanout_t fanout;
  ev_t events[MAX_EVENTS];
  unsigned n_events;
} T;

static int step(pz_store_run_fn run) {
  pz_err_t err = {0};
  int rc = pz_fix_run(st, run, NULL, &err);
  if (rc < 0) fprintf(stderr, "step: %s\n", pz_err_message(&err));
  return rc;
}

static int64_t make_user(const char *name) {
  return pz_fix_user(st, name, NULL, t0);
}


static int run_send(pz_db_t *db, pz_store_job_t *job) {
  memset(&T.msg, 0, sizeof(T.msg));
  T.msg.id = pz_id_next();
  T.msg.conversation_id = T.conv_id;
  T.msg.sender_id = T.a;
  snprintf(T.msg.client_id, sizeof(T.msg.client_id), "c%lld", (long long)T.msg.id);
  T.msg.text_len = (size_t)snprintf(T.msg.text, sizeof(T.msg.text), "%s", T.text);
  T.msg.created_at = t0;
  pz_chat_fanout_free(&T.fanout);
  return pz_chat_send(db, &T.msg, pz_str(T.payload), &T.stored, &T.created, &T.fanout, &job->err);
}

static int64_t send_text(const char *text, const char *payload) {
  T.text = text, T.payload = payload;
  CHECK_EQ_INT(step(run_send), 0);
  return T.msg.id;
}

/* An event about message T.msg_id (0: about none) to every member. */
static int run_publish(pz_db_t *db, pz_store_job_t *job) {
  pz_chat_fanout_free(&T.fanout);
  return pz_chat_publish_msg(db, T.conv_id, T.msg_id, pz_str(T.type), pz_str(T.payload), t0, &T.fanout, &job->err);
}

static void publish(int64_t msg_id, const char *type, const char *payload) {
  T.msg_id = msg_id, T.type = type, T.payload = payload;
  CHECK_EQ_INT(step(run_publish), 0);
}

static int run_recall_events(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_recall_events(db, T.msg_id, pz_str(T.new_payload), pz_str(T.edited_payload), &job->err);
}

static int run_rewrite(pz_db_t *db, pz_store_job_t *job) {
  return pz_store_event_rewrite_msg(db, T.msg_id, pz_str(T.type), pz_str(T.payload), &T.n_changed, &job->err);
}

static int event_row(void *arg, int64_t seq, pz_str_t type, pz_str_t payload, pz_err_t *err) {
  if (T.n_events == MAX_EVENTS) return 0;
  ev_t *e = &T.events[T.n_events++];
  e->seq = seq;
  snprintf(e->type, sizeof(e->type), "%.*s", (int)type.len, type.ptr);
  snprintf(e->payload, sizeof(e->payload), "%.*s", (int)payload.len, payload.ptr);
  return 0;
}

static int run_conv_delete(pz_db_t *db, pz_store_job_t *job) {
  return pz_store_conv_delete(db, T.conv_id, &job->err);
}

static int run_list(pz_db_t *db, pz_store_job_t *job) {
  T.n_events = 0;
  return pz_store_event_list(db, T.list_user, 0, MAX_EVENTS, event_row, NULL, &job->err);
}

static void list_events(int64_t user_id) {
  T.list_user = user_id;
  CHECK_EQ_INT(step(run_list), 0);
}

static void test_rewrite(void) {
  T.a = make_user("ann");
  T.b = make_user("bob");
  T.conv_id = pz_fix_direct_chat(st, T.a, T.b, t0);
  int64_t gone = send_text("take this back", "new:gone");
  int64_t kept = send_text("keep this", "new:kept");
  /* A message.new with a copy of the payload of its own, as every one
   * was before migration 13. */
  int64_t old = pz_id_next();
  publish(old, PZ_EVENT_MESSAGE_NEW, "new:old");
  publish(gone, PZ_EVENT_MESSAGE_EDITED, "edited:gone");
  publish(kept, PZ_EVENT_MESSAGE_EDITED, "edited:kept");
  publish(gone, PZ_EVENT_MESSAGE_REACTION, "reaction:gone");
  /* A message.new stored without its message id, as before migration 7:
   * the rewrite cannot find it. */
  publish(0, PZ_EVENT_MESSAGE_NEW, "new:unknown");

  T.msg_id = gone, T.new_payload = "new:recalled", T.edited_payload = "edited:recalled";
  CHECK_EQ_INT(step(run_recall_events), 0);
  T.msg_id = old, T.new_payload = "new:old-recalled", T.edited_payload = "edited:old-recalled";
  CHECK_EQ_INT(step(run_recall_events), 0);

  /* Both members' streams: the events above, each where it was (the
   * domain publishes no conversation.new: api/ does). */
  static const struct {
    const char *type, *payload;
  } want[] = {
      {PZ_EVENT_MESSAGE_NEW, "new:recalled"},       {PZ_EVENT_MESSAGE_NEW, "new:kept"},
      {PZ_EVENT_MESSAGE_NEW, "new:old-recalled"},   {PZ_EVENT_MESSAGE_EDITED, "edited:recalled"},
      {PZ_EVENT_MESSAGE_EDITED, "edited:kept"},     {PZ_EVENT_MESSAGE_REACTION, "reaction:gone"},
      {PZ_EVENT_MESSAGE_NEW, "new:unknown"},
  };
  int64_t users[] = {T.a, T.b};
  for (unsigned u = 0; u < 2; u++) {
    list_events(users[u]);
    CHECK_EQ_INT(T.n_events, sizeof(want) / sizeof(want[0]));
    for (unsigned i = 0; i < T.n_events && i < sizeof(want) / sizeof(want[0]); i++) {
      CHECK_EQ_INT(T.events[i].seq, (int64_t)i + 1);
      CHECK_EQ_STR(T.events[i].type, want[i].type);
      CHECK_EQ_STR(T.events[i].payload, want[i].payload);
    }
  }

  /* The rewrite finds one event per member among those with a payload of
   * their own; those that serve their message's are not rewritten there
   * (the recall rewrote the message's). None for a message without events. */
  T.msg_id = old, T.type = PZ_EVENT_MESSAGE_NEW, T.payload = "new:again";
  CHECK_EQ_INT(step(run_rewrite), 0);
  CHECK_EQ_INT(T.n_changed, 2);
  T.msg_id = gone;
  CHECK_EQ_INT(step(run_rewrite), 0);
  CHECK_EQ_INT(T.n_changed, 0);
  T.msg_id = pz_id_next();
  CHECK_EQ_INT(step(run_rewrite), 0);
  CHECK_EQ_INT(T.n_changed, 0);
  list_events(T.b);
  CHECK_EQ_STR(T.events[0].payload, "new:recalled");
  CHECK_EQ_STR(T.events[1].payload, "new:kept");
  CHECK_EQ_STR(T.events[2].payload, "new:again");

  /* The conversation ends and its messages with it: their events keep
   * their seq and say which message is gone; copies stay as they were. */
  CHECK_EQ_INT(step(run_conv_delete), 0);
  list_events(T.a);
  CHECK_EQ_INT(T.n_events, sizeof(want) / sizeof(want[0]));
  char gone_json[96];
  int64_t ids[] = {gone, kept};
  for (unsigned i = 0; i < 2; i++) {
    snprintf(gone_json, sizeof(gone_json), "{\"type\":\"message.gone\",\"message_id\":\"%lld\"}", (long long)ids[i]);
    CHECK_EQ_INT(T.events[i].seq, (int64_t)i + 1);
    CHECK_EQ_STR(T.events[i].type, "message.gone");
    CHECK_EQ_STR(T.events[i].payload, gone_json);
  }
  CHECK_EQ_STR(T.events[2].type, PZ_EVENT_MESSAGE_NEW);
  CHECK_EQ_STR(T.events[2].payload, "new:again");
}

int main(void) {
  if (sodium_init() < 0) return 1;
  char *dir = pz_fix_open(&st, "chat-recall");
  if (dir == NULL) return 1;
  RUN(test_rewrite);
  pz_chat_fanout_free(&T.fanout);
  pz_fix_close(st, dir);
  TEST_EXIT();
}
