/* The fast JSON path of api/json_flat.c: which inputs it takes (the frames and bodies clients send most), which it
 * leaves to jansson, and that what it takes parses as jansson parses it (fuzz/json checks arbitrary input). */
#include <jansson.h>
#include <string.h>
#include "api/internal.h"
#include "test.h"

static void check_taken(const char *text) {
  json_t *fast = pz__api_json_load_flat(text, strlen(text));
  json_t *slow = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
  CHECK(fast != NULL);
  CHECK(slow != NULL && fast != NULL && json_equal(fast, slow));
  if (fast == NULL) fprintf(stderr, "not taken: %s\n", text);
  json_decref(fast);
  json_decref(slow);
}

static void check_left(const char *text) {
  json_t *fast = pz__api_json_load_flat(text, strlen(text));
  CHECK(fast == NULL);
  if (fast) fprintf(stderr, "taken, but jansson's: %s\n", text);
  json_decref(fast);
  /* And the full path answers as jansson does. */
  json_error_t a, b;
  json_t *full = pz__api_json_load(text, strlen(text), JSON_REJECT_DUPLICATES, &a);
  json_t *slow = json_loads(text, JSON_REJECT_DUPLICATES, &b);
  CHECK((full == NULL) == (slow == NULL));
  CHECK(full == NULL || json_equal(full, slow));
  if (full == NULL && slow == NULL) CHECK_EQ_STR(a.text, b.text);
  json_decref(full);
  json_decref(slow);
}

static void test_taken(void) {
  check_taken("{\"type\":\"send\",\"conversation_id\":\"250010011935277056\",\"client_id\":\"c-1\",\"text\":\"hi\"}");
  check_taken("{\"to_user_id\":\"1\",\"amount\":100,\"currency\":\"USD\",\"pin\":\"123456\","
              "\"idempotency_key\":\"k\",\"note\":\"caf\xc3\xa9 \\\"ok\\\"\\n\\t\\/\\\\\"}");
  check_taken(" { \"a\" : true , \"b\" : false , \"c\" : null , \"d\" : -0 , \"e\" : -123456789012345678 } \n");
  check_taken("{}");
  check_taken("{\"hello\":\"\xf0\x9f\x91\x8b\"}");
}

static void test_left(void) {
  check_left("{\"a\":1,\"a\":2}");                        /* duplicate: jansson refuses it */
  check_left("{\"a\":1.5}");                              /* a real */
  check_left("{\"a\":1e3}");
  check_left("{\"a\":1234567890123456789}");              /* 19 digits */
  check_left("{\"a\":01}");                               /* not JSON */
  check_left("{\"a\":\"\\u00e9\"}");                      /* \u escapes */
  check_left("{\"a\":[1,2]}");                            /* nested */
  check_left("{\"a\":{\"b\":1}}");
  check_left("{\"a\":\"x\x01y\"}");                       /* a control character */
  check_left("{\"a\":\"\xed\xa0\x80\"}");                 /* a UTF-8 surrogate */
  check_left("{\"a\":\"\xc0\xaf\"}");                     /* overlong */
  check_left("{\"a\":1} x");                              /* bytes after the object */
  check_left("{\"a\":1,}");
  check_left("[1]");
  check_left("\"a\"");
  check_left("{\"a\":tru}");
  check_left("{\"a\":truex}");
  check_left("{\"a\"}");
  check_left("");
}

int main(void) {
  RUN(test_taken);
  RUN(test_left);
  TEST_EXIT();
}
