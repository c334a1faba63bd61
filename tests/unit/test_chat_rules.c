/* Unit tests of the messaging input rules and the per-user send rate limit. */
#include <string.h>
#include "plaza/chat.h"
#include "test.h"

static int text(const char *s) {
  pz_err_t err = {0};
  return pz_chat_text_check(pz_str(s), &err);
}

static void test_text(void) {
  CHECK_EQ_INT(text("hello"), 0);
  CHECK_EQ_INT(text("two\nlines\twith a tab\r\n"), 0);
  CHECK_EQ_INT(text("中文 and emoji 😀"), 0);
  CHECK_EQ_INT(text(""), PZ_EINVAL);
  CHECK_EQ_INT(text("   \n\t "), PZ_EINVAL);
  CHECK_EQ_INT(text("     "), PZ_EINVAL); /* printable ASCII only: the one-pass path */
  CHECK_EQ_INT(text(" ~ "), 0);
  CHECK_EQ_INT(text("del\x7f"), PZ_EINVAL);
  CHECK_EQ_INT(text("\xe3\x80\x80"), PZ_EINVAL); /* an ideographic space alone */
  CHECK_EQ_INT(text("bell\a"), PZ_EINVAL);
  CHECK_EQ_INT(text("esc\x1b[31m"), PZ_EINVAL);
  CHECK_EQ_INT(text("c1\xc2\x85"), PZ_EINVAL);
  CHECK_EQ_INT(text("bad \xc3\x28"), PZ_EUTF8);
  CHECK_EQ_INT(text("surrogate \xed\xa0\x80"), PZ_EUTF8);
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_chat_text_check(pz_str_n("a\0b", 3), &err), PZ_EINVAL);

  /* 4096 code points pass at any width; one more fails. */
  static char buf[PZ_CHAT_TEXT_MAX_BYTES + 8];
  for (int i = 0; i < PZ_CHAT_TEXT_MAX_CHARS; i++)
    memcpy(buf + i * 4, "\xf0\x9f\x98\x80", 4);
  CHECK_EQ_INT(pz_chat_text_check(pz_str_n(buf, PZ_CHAT_TEXT_MAX_BYTES), &err), 0);
  memset(buf, 'x', PZ_CHAT_TEXT_MAX_CHARS + 1);
  CHECK_EQ_INT(pz_chat_text_check(pz_str_n(buf, PZ_CHAT_TEXT_MAX_CHARS), &err), 0);
  CHECK_EQ_INT(pz_chat_text_check(pz_str_n(buf, PZ_CHAT_TEXT_MAX_CHARS + 1), &err), PZ_EINVAL);
  CHECK(strstr(pz_err_message(&err), "text") != NULL);
}

static int client_id(const char *s) {
  pz_err_t err = {0};
  return pz_chat_client_id_check(pz_str(s), &err);
}

static void test_client_id(void) {
  CHECK_EQ_INT(client_id("a"), 0);
  CHECK_EQ_INT(client_id("550e8400-e29b-41d4-a716-446655440000"), 0);
  CHECK_EQ_INT(client_id("with space ~!@#"), 0);
  CHECK_EQ_INT(client_id(""), PZ_EINVAL);
  CHECK_EQ_INT(client_id("tab\there"), PZ_EINVAL);
  CHECK_EQ_INT(client_id("del\x7f"), PZ_EINVAL);
  CHECK_EQ_INT(client_id("caf\xc3\xa9"), PZ_EINVAL);
  char id[PZ_CHAT_CLIENT_ID_MAX + 2];
  memset(id, 'k', sizeof(id));
  id[PZ_CHAT_CLIENT_ID_MAX] = '\0';
  CHECK_EQ_INT(client_id(id), 0);
  id[PZ_CHAT_CLIENT_ID_MAX] = 'k';
  id[PZ_CHAT_CLIENT_ID_MAX + 1] = '\0';
  CHECK_EQ_INT(client_id(id), PZ_EINVAL);
}

static void test_title(void) {
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_chat_title_check(pz_str("Family"), &err), 0);
  CHECK_EQ_INT(pz_chat_title_check(pz_str(""), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_chat_title_check(pz_str("  "), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_chat_title_check(pz_str("two\nlines"), &err), PZ_EINVAL);
  char t[80];
  memset(t, 'x', sizeof(t));
  CHECK_EQ_INT(pz_chat_title_check(pz_str_n(t, 64), &err), 0);
  CHECK_EQ_INT(pz_chat_title_check(pz_str_n(t, 65), &err), PZ_EINVAL);
}

static void test_limiter_burst_and_refill(void) {
  pz_chat_limiter_t *l = pz_chat_limiter_new(64, 20, 50);
  int64_t now = 1750000000000LL;
  unsigned retry = 0;
  for (int i = 0; i < 50; i++)
    CHECK_EQ_INT(pz_chat_limiter_take(l, 7, now, &retry), 0);
  CHECK_EQ_INT(pz_chat_limiter_take(l, 7, now, &retry), PZ_ERATE);
  CHECK_EQ_INT(retry, 1);
  /* Another user is not affected. */
  CHECK_EQ_INT(pz_chat_limiter_take(l, 8, now, &retry), 0);
  /* 20 a second: after 100 ms, two more. */
  CHECK_EQ_INT(pz_chat_limiter_take(l, 7, now + 100, &retry), 0);
  CHECK_EQ_INT(pz_chat_limiter_take(l, 7, now + 100, &retry), 0);
  CHECK_EQ_INT(pz_chat_limiter_take(l, 7, now + 100, &retry), PZ_ERATE);
  /* A clock that steps back gives nothing. */
  CHECK_EQ_INT(pz_chat_limiter_take(l, 7, now - 5000, &retry), PZ_ERATE);
  /* Long idle: the bucket is full again, not fuller. */
  int ok = 0;
  for (int i = 0; i < 60; i++)
    ok += pz_chat_limiter_take(l, 7, now + 3600 * 1000, &retry) == 0;
  CHECK_EQ_INT(ok, 50);
  pz_chat_limiter_free(l);
}

static void test_limiter_keeps_flooders(void) {
  /* A tiny table: 4 slots. A flooder with an empty bucket stays limited
   * however many other users come by, since the fullest slot goes first. */
  pz_chat_limiter_t *l = pz_chat_limiter_new(4, 20, 50);
  int64_t now = 1750000000000LL;
  unsigned retry = 0;
  for (int i = 0; i < 50; i++)
    pz_chat_limiter_take(l, 1, now, &retry);
  CHECK_EQ_INT(pz_chat_limiter_take(l, 1, now, &retry), PZ_ERATE);
  for (int64_t u = 100; u < 1100; u++)
    CHECK_EQ_INT(pz_chat_limiter_take(l, u, now, &retry), 0);
  CHECK_EQ_INT(pz_chat_limiter_take(l, 1, now, &retry), PZ_ERATE);
  pz_chat_limiter_free(l);
}

int main(void) {
  RUN(test_text);
  RUN(test_client_id);
  RUN(test_title);
  RUN(test_limiter_burst_and_refill);
  RUN(test_limiter_keeps_flooders);
  TEST_EXIT();
}
