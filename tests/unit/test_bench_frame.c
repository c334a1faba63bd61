/* Unit tests of bench_chat's frame scanner: the fields the load generator counts by, from frames shaped like plazad's.
 */
#include "../../bench/chat/frame.c"
#include "test.h"

#define SCAN(lit, f) bc_frame_scan(lit, sizeof(lit) - 1, f)

static bool span_is(bc_span_t s, const char *lit) { return s.p != NULL && bc_span_eq(s, lit); }

static void test_event(void) {
  /* A message.new event: the message's own "type" and "client_id" must not
   * be taken for the frame's, and strings holding braces, quotes and
   * commas must not end the object early. */
  static const char ev[] =
      "{\"seq\":42,\"type\":\"message.new\",\"message\":{\"id\":\"7\",\"conversation_id\":\"99\","
      "\"sender_id\":\"5\",\"client_id\":\"ab-1\",\"type\":\"text\",\"text\":\"123 4 x}\\\"{,]\","
      "\"reply_to\":null,\"reactions\":{\"\\ud83d\\ude00\":[\"5\",\"6\"]},\"recalled\":false,"
      "\"mentions\":[],\"edited_at\":null},\"extra\":[{\"a\":[1,2,{\"b\":\"}\"}]}]}";
  bc_frame_t f;
  CHECK(SCAN(ev, &f) == 0);
  CHECK(span_is(f.type, "message.new"));
  CHECK(f.client_id.p == NULL);
  CHECK(span_is(f.msg_id, "7")); /* the message's id, for the receiver's delivered receipt */
  CHECK(span_is(f.msg_conv, "99"));
  CHECK(span_is(f.msg_sender, "5"));
  CHECK(span_is(f.msg_text, "123 4 x}\\\"{,]"));
  CHECK_EQ_INT(f.retry_after, -1);
}

static void test_ack_and_error(void) {
  static const char ack[] = "{ \"type\" : \"ack\" , \"client_id\" : \"r1-17\", \"message\": {\"text\":\"1 17 xx\"} }";
  bc_frame_t f;
  CHECK(SCAN(ack, &f) == 0);
  CHECK(span_is(f.type, "ack"));
  CHECK(span_is(f.client_id, "r1-17"));
  CHECK(span_is(f.msg_text, "1 17 xx"));

  static const char err[] =
      "{\"type\":\"error\",\"client_id\":\"r1-18\",\"code\":\"rate_limited\",\"message\":\"too "
      "many\",\"retry_after\":3}";
  CHECK(SCAN(err, &f) == 0);
  CHECK(span_is(f.type, "error"));
  CHECK(span_is(f.code, "rate_limited"));
  CHECK(span_is(f.client_id, "r1-18"));
  CHECK_EQ_INT(f.retry_after, 3);
  /* "message" as a string (an error's text) is no nested object. */
  CHECK(f.msg_text.p == NULL);

  /* A string that ends in an escaped backslash ends at the next quote. */
  static const char slash[] = "{\"client_id\":\"a\\\\\",\"type\":\"ack\",\"code\":\"\\\"\"}";
  CHECK(SCAN(slash, &f) == 0);
  CHECK(span_is(f.client_id, "a\\\\"));
  CHECK(span_is(f.type, "ack"));
  CHECK(span_is(f.code, "\\\""));
}

static void test_malformed(void) {
  bc_frame_t f;
  static const char *const bad[] = {
      "",
      "[]",
      "\"ready\"",
      "{",
      "{\"type\"",
      "{\"type\":",
      "{\"type\":\"ready\"",
      "{\"type\":\"rea",
      "{\"type\" \"ready\"}",
      "{\"type\":\"ready\",}",
      "{\"message\":{\"text\":\"x\"}",
      "{\"retry_after\":12",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (bc_frame_scan(bad[i], strlen(bad[i]), &f) != -1) {
      fprintf(stderr, "accepted: %s\n", bad[i]);
      pz_test_failures++;
    }
  }
  /* The length bounds the scan: a valid frame cut short is refused, not read past. */
  static const char ready[] = "{\"type\":\"ready\",\"user_id\":\"1\"}";
  CHECK(bc_frame_scan(ready, sizeof(ready) - 2, &f) == -1);
  CHECK(bc_frame_scan(ready, sizeof(ready) - 1, &f) == 0);
  CHECK(span_is(f.type, "ready"));
  CHECK(SCAN("{}", &f) == 0);
  CHECK(f.type.p == NULL);
}

int main(void) {
  RUN(test_event);
  RUN(test_ack_and_error);
  RUN(test_malformed);
  TEST_EXIT();
}
