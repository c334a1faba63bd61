/* The transfer's JSON written by hand on the writer (pz__api_transfer_text) says what the jansson tree
 * (pz__api_transfer_json) says, for notes with quotes, escapes, control characters and non-ASCII text. */
#include <jansson.h>
#include "api/internal.h"
#include "test.h"

static void check_same(const pz_wallet_transfer_rec_t *t) {
  char *text = pz__api_transfer_text(t);
  CHECK(text != NULL);
  json_error_t jerr;
  json_t *got = text ? json_loads(text, 0, &jerr) : NULL;
  if (got == NULL) fprintf(stderr, "not JSON: %s (%s)\n", text ? text : "(null)", jerr.text);
  json_t *want = pz__api_transfer_json(t);
  CHECK(got != NULL && json_equal(got, want));
  /* The same bytes as jansson's: members in the same order, escapes alike. */
  char *want_text = json_dumps(want, JSON_COMPACT);
  CHECK_EQ_STR(text, want_text);
  free(want_text);
  json_decref(got);
  json_decref(want);
  free(text);
}

static void test_notes_and_states(void) {
  pz_wallet_transfer_rec_t t = {.id = 7357001,
                                .from_id = 1,
                                .to_id = INT64_MAX,
                                .amount = 1234567890123,
                                .status = PZ_TRANSFER_COMPLETED,
                                .created_at = 1795305599999LL,
                                .expires_at = 1795391999999LL,
                                .updated_at = 1795305600000LL};
  memcpy(t.currency, "USD", 4);
  static const char *const notes[] = {"",
                                      "lunch",
                                      "say \"thanks\"",
                                      "back\\slash and / slash",
                                      "tab\there\nnew line\r\x01\x1f\b\f",
                                      "caf\xc3\xa9 \xe7\xba\xa2\xe5\x8c\x85 \xf0\x9f\xa7\xa7"};
  for (unsigned i = 0; i < sizeof(notes) / sizeof(notes[0]); i++) {
    snprintf(t.note, sizeof(t.note), "%s", notes[i]);
    t.status = (int)(i % 4);
    t.conversation_id = i % 2 ? 99 : 0;
    check_same(&t);
  }
}

int main(void) {
  RUN(test_notes_and_states);
  TEST_EXIT();
}
