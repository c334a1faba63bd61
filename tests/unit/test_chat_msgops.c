/* Unit tests of message operations: input rules, edit/recall windows, reactions, delete for me, the typing throttle,
 * FTS queries. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plaza/auth.h"
#include "plaza/chat.h"
#include "plaza/id.h"
#include "store_fixture.h"

static pz_store_t *st;
static const int64_t t0 = 1750000000000LL;

/* Inputs and outputs of the step being run; each step is one committed write job. */
static struct {
  int64_t a, b, conv_id, msg_id, now, window;
  const char *text, *emoji, *query;
  bool add, changed, created;
  pz_msg_rec_t msg, out, stored;
  pz_chat_fanout_t fanout;
  int64_t found[16];
  unsigned n_found;
  int64_t mentions[2];
  unsigned n_mentions;
} T;

static int step(pz_store_run_fn run, pz_err_t *err) {
  return pz_fix_run(st, run, NULL, err);
}

/* ---- pure rules ---- */

static int emoji(const char *s) {
  pz_err_t err = {0};
  return pz_chat_emoji_check(pz_str(s), &err);
}

static void test_emoji(void) {
  CHECK_EQ_INT(emoji("👍"), 0);
  CHECK_EQ_INT(emoji("👨‍👩‍👧‍👦"), 0); /* a family: joiners inside are not space */
  CHECK_EQ_INT(emoji("+1"), 0);
  CHECK_EQ_INT(emoji(""), PZ_EINVAL);
  CHECK_EQ_INT(emoji("a b"), PZ_EINVAL);
  CHECK_EQ_INT(emoji("tab\t"), PZ_EINVAL);
  CHECK_EQ_INT(emoji("\xc2\xa0"), PZ_EINVAL);     /* no-break space */
  CHECK_EQ_INT(emoji("\xe3\x80\x80"), PZ_EINVAL); /* ideographic space */
  CHECK_EQ_INT(emoji("\xe2\x80\x83"), PZ_EINVAL); /* em space */
  CHECK_EQ_INT(emoji("\xc2\x85"), PZ_EINVAL);     /* C1 control */
  CHECK_EQ_INT(emoji("\xff"), PZ_EINVAL);
  char buf[40];
  memset(buf, 'x', sizeof(buf));
  buf[32] = '\0';
  CHECK_EQ_INT(emoji(buf), 0);
  buf[32] = 'x';
  buf[33] = '\0';
  CHECK_EQ_INT(emoji(buf), PZ_EINVAL);
}

static void test_search_check(void) {
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_chat_search_check(PZ_STR("hello"), &err), 0);
  CHECK_EQ_INT(pz_chat_search_check(PZ_STR(""), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_chat_search_check(PZ_STR(" \t\n"), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_chat_search_check(PZ_STR("bad \xc3\x28"), &err), PZ_EUTF8);
  static char buf[PZ_CHAT_SEARCH_MAX_CHARS * 4 + 8];
  for (int i = 0; i < PZ_CHAT_SEARCH_MAX_CHARS; i++)
    memcpy(buf + i * 4, "\xf0\x9f\x98\x80", 4);
  CHECK_EQ_INT(pz_chat_search_check(pz_str_n(buf, PZ_CHAT_SEARCH_MAX_CHARS * 4), &err), 0);
  memset(buf, 'q', PZ_CHAT_SEARCH_MAX_CHARS + 1);
  CHECK_EQ_INT(pz_chat_search_check(pz_str_n(buf, PZ_CHAT_SEARCH_MAX_CHARS + 1), &err), PZ_EINVAL);
}

static void fts(const char *in, const char *want) {
  pz_buf_t b = {0};
  pz_store_fts_query(pz_str(in), &b);
  pz_buf_append(&b, "", 1);
  CHECK_EQ_STR(b.data, want);
  pz_buf_free(&b);
}

static void test_fts_query(void) {
  fts("hello", "\"hello\"*");
  fts("  two   words ", "\"two\" \"words\"*");
  fts("say \"hi\"", "\"say\" \"\"\"hi\"\"\"*");
  fts("NEAR(a", "\"NEAR(a\"*");
  fts(" \t ", "");
}

static void test_throttle(void) {
  pz_chat_throttle_t *t = pz_chat_throttle_new(8, 2000);
  CHECK(pz_chat_throttle_take(t, 1, 10, t0));
  CHECK(!pz_chat_throttle_take(t, 1, 10, t0 + 1999));
  CHECK(pz_chat_throttle_take(t, 1, 11, t0 + 1)); /* another conversation */
  CHECK(pz_chat_throttle_take(t, 2, 10, t0 + 1)); /* another user */
  CHECK(pz_chat_throttle_take(t, 1, 10, t0 + 2000));
  CHECK(!pz_chat_throttle_take(t, 1, 10, t0 + 2001));
  CHECK(pz_chat_throttle_take(t, 1, 10, t0 - 5000)); /* the clock stepped back: let it through */
  /* Many pairs in a small table: each new pair goes through at once. */
  for (int64_t u = 100; u < 1100; u++)
    CHECK(pz_chat_throttle_take(t, u, 7, t0 + 3000));
  pz_chat_throttle_free(t);
}

/* ---- against a database ---- */

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
  T.msg.created_at = T.now;
  T.msg.n_mentions = T.n_mentions;
  memcpy(T.msg.mentions, T.mentions, sizeof(T.mentions));
  pz_chat_fanout_free(&T.fanout);
  return pz_chat_send(db, &T.msg, PZ_STR("{\"type\":\"message.new\"}"), &T.stored, &T.created, &T.fanout, &job->err);
}

static int64_t send_text(int64_t from, const char *text, int64_t at) {
  T.a = from, T.text = text, T.now = at;
  CHECK_EQ_INT(step(run_send, NULL), 0);
  return T.msg.id;
}

static int run_edit(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_edit(db, T.a, T.conv_id, T.msg_id, pz_str(T.text), NULL, 0, T.now, T.window, &T.out, &job->err);
}
static int run_recall(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_recall(db, T.a, T.conv_id, T.msg_id, T.now, T.window, &T.out, &T.changed, &job->err);
}
static int run_react(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_react(db, T.a, T.conv_id, T.msg_id, pz_str(T.emoji), T.add, T.now, &T.out, &T.changed, &job->err);
}
static int run_hide(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_delete_for_me(db, T.a, T.conv_id, T.msg_id, T.now, &T.changed, &job->err);
}
static int found_row(void *arg, const pz_msg_rec_t *m, pz_err_t *err) {
  if (T.n_found < 16) T.found[T.n_found++] = m->id;
  return 0;
}
static int run_search(pz_db_t *db, pz_store_job_t *job) {
  T.n_found = 0;
  return pz_store_msg_search(db, T.a, pz_str(T.query), 0, 16, found_row, NULL, &job->err);
}
static int run_history(pz_db_t *db, pz_store_job_t *job) {
  T.n_found = 0;
  return pz_store_msg_list_visible(db, T.a, T.conv_id, 0, 16, found_row, NULL, &job->err);
}

static unsigned search(int64_t as, const char *q) {
  T.a = as, T.query = q;
  pz_err_t err = {0};
  int rc = step(run_search, &err);
  if (rc != 0) fprintf(stderr, "query %s: %s\n", q, pz_err_message(&err));
  CHECK_EQ_INT(rc, 0);
  return T.n_found;
}

static int64_t ann, bob;

static void setup_chat(void) {
  ann = make_user("ann");
  bob = make_user("bob");
  T.a = ann, T.b = bob;
  T.conv_id = pz_fix_direct_chat(st, ann, bob, t0);
}

static void test_edit_window(void) {
  pz_err_t err = {0};
  int64_t id = send_text(ann, "first words", t0);
  T.msg_id = id, T.window = PZ_CHAT_EDIT_WINDOW_MS;
  /* bob may not; ann may, up to the last millisecond of the window. */
  T.a = bob, T.text = "hijack", T.now = t0 + 1;
  CHECK_EQ_INT(step(run_edit, &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(pz_err_code_str(&err), "not_sender");
  T.a = ann, T.text = "second words", T.now = t0 + PZ_CHAT_EDIT_WINDOW_MS;
  CHECK_EQ_INT(step(run_edit, &err), 0);
  CHECK_EQ_STR(T.out.text, "second words");
  CHECK_EQ_INT(T.out.edited_at, t0 + PZ_CHAT_EDIT_WINDOW_MS);
  T.text = "third words", T.now = t0 + PZ_CHAT_EDIT_WINDOW_MS + 1;
  CHECK_EQ_INT(step(run_edit, &err), PZ_ECONFLICT);
  CHECK_EQ_STR(pz_err_code_str(&err), "edit_window_passed");
  CHECK_EQ_INT(search(ann, "first"), 0);
  CHECK_EQ_INT(search(ann, "second"), 1);
  CHECK_EQ_INT(search(ann, "third"), 0);
}

static void test_recall_window(void) {
  pz_err_t err = {0};
  int64_t late = send_text(ann, "late recall", t0);
  T.a = ann, T.msg_id = late, T.window = PZ_CHAT_RECALL_WINDOW_MS, T.now = t0 + PZ_CHAT_RECALL_WINDOW_MS + 1;
  CHECK_EQ_INT(step(run_recall, &err), PZ_ECONFLICT);
  CHECK_EQ_STR(pz_err_code_str(&err), "recall_window_passed");
  int64_t id = send_text(ann, "regrettable remark", t0);
  T.a = ann, T.msg_id = id, T.now = t0 + PZ_CHAT_RECALL_WINDOW_MS;
  /* A reaction goes with the recall. */
  T.emoji = "😮", T.add = true;
  CHECK_EQ_INT(step(run_react, &err), 0);
  CHECK_EQ_INT(step(run_recall, &err), 0);
  CHECK(T.changed);
  CHECK(T.out.recalled_at == t0 + PZ_CHAT_RECALL_WINDOW_MS);
  CHECK_EQ_INT((int)T.out.text_len, 0);
  CHECK_EQ_INT(search(bob, "regrettable"), 0);
  T.a = ann;
  CHECK_EQ_INT(step(run_recall, &err), 0); /* again: nothing changes */
  CHECK(!T.changed);
  T.emoji = "😮", T.add = true;
  CHECK_EQ_INT(step(run_react, &err), PZ_ECONFLICT);
  CHECK_EQ_STR(pz_err_code_str(&err), "message_recalled");
  T.text = "edited after recall", T.window = PZ_CHAT_EDIT_WINDOW_MS;
  CHECK_EQ_INT(step(run_edit, &err), PZ_ECONFLICT);
  CHECK_EQ_STR(pz_err_code_str(&err), "message_recalled");
}

static void test_reactions_limit(void) {
  pz_err_t err = {0};
  int64_t id = send_text(ann, "react", t0);
  T.msg_id = id, T.add = true, T.now = t0;
  char e[8];
  for (int i = 0; i < PZ_CHAT_REACTIONS_MAX; i++) {
    snprintf(e, sizeof(e), "e%d", i);
    T.a = i % 2 ? ann : bob, T.emoji = e;
    CHECK_EQ_INT(step(run_react, &err), 0);
    CHECK(T.changed);
  }
  T.a = ann, T.emoji = "new";
  CHECK_EQ_INT(step(run_react, &err), PZ_ECONFLICT);
  CHECK_EQ_STR(pz_err_code_str(&err), "too_many_reactions");
  T.emoji = "e0"; /* bob's emoji: ann joins it */
  CHECK_EQ_INT(step(run_react, &err), 0);
  CHECK(T.changed);
  CHECK_EQ_INT(step(run_react, &err), 0);
  CHECK(!T.changed);
  T.add = false, T.emoji = "e1"; /* ann's own: removing it frees a place */
  CHECK_EQ_INT(step(run_react, &err), 0);
  CHECK(T.changed);
  T.add = true, T.emoji = "new";
  CHECK_EQ_INT(step(run_react, &err), 0);
}

static void test_hide_and_search(void) {
  pz_err_t err = {0};
  int64_t keep = send_text(bob, "zebra crossing", t0);
  int64_t gone = send_text(bob, "zebra stripes", t0);
  CHECK_EQ_INT(search(ann, "zebra"), 2);
  T.a = ann, T.msg_id = gone, T.now = t0;
  CHECK_EQ_INT(step(run_hide, &err), 0);
  CHECK(T.changed);
  CHECK_EQ_INT(step(run_hide, &err), 0);
  CHECK(!T.changed);
  CHECK_EQ_INT(search(ann, "zebra"), 1);
  CHECK(T.found[0] == keep);
  CHECK_EQ_INT(search(bob, "zebra"), 2);
  CHECK(T.found[0] == gone); /* newest first */
  T.a = ann;
  CHECK_EQ_INT(step(run_history, &err), 0);
  for (unsigned i = 0; i < T.n_found; i++)
    CHECK(T.found[i] != gone);
  /* A stranger finds nothing of this chat. */
  int64_t eve = make_user("eve");
  CHECK_EQ_INT(search(eve, "zebra"), 0);
  /* Hostile queries are plain text to FTS5: no syntax error, ever. */
  const char *nasty[] = {"\"", "\"\"",       "*",       "AND",    "OR",     "NOT",         "(",
                         ")",  "NEAR(zebra", "zebra:x", "-zebra", "^zebra", "{a}",         "'",
                         "\\", "zebra\"*",   "\"zebra", "😀",      "%",      "\xe2\x80\x83"};
  for (size_t i = 0; i < sizeof(nasty) / sizeof(nasty[0]); i++)
    search(ann, nasty[i]);
  CHECK_EQ_INT(search(ann, "\"zebra"), 1); /* the quote is punctuation: the word still counts */
  CHECK_EQ_INT(search(ann, "zeb"), 1);     /* the last word is a prefix */
  CHECK_EQ_INT(search(ann, "zeb crossing"), 0);
}

static void test_mentions(void) {
  pz_err_t err = {0};
  int64_t eve = make_user("eve2");
  T.mentions[0] = bob, T.n_mentions = 1;
  send_text(ann, "hey @bob", t0);
  CHECK_EQ_INT((int)T.stored.n_mentions, 1);
  T.mentions[0] = eve;
  T.a = ann, T.text = "hey @eve", T.now = t0;
  CHECK_EQ_INT(step(run_send, &err), PZ_EINVAL);
  T.n_mentions = 0;
}

int main(void) {
  if (sodium_init() < 0) return 1;
  RUN(test_emoji);
  RUN(test_search_check);
  RUN(test_fts_query);
  RUN(test_throttle);
  char *dir = pz_fix_open(&st, "chat-msgops");
  if (dir == NULL) return 1;
  setup_chat();
  RUN(test_edit_window);
  RUN(test_recall_window);
  RUN(test_reactions_limit);
  RUN(test_hide_and_search);
  RUN(test_mentions);
  pz_chat_fanout_free(&T.fanout);
  pz_fix_close(st, dir);
  TEST_EXIT();
}
