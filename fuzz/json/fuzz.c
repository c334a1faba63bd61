/* libFuzzer: arbitrary bytes as JSON, by the flat-object fast path of api/json_flat.c and by jansson, alike. */
#include <jansson.h>
#include <stdlib.h>
#include "api/internal.h"

/* Whatever the fast path takes, jansson must parse to an equal object
 * (with the flags every caller passes); what it leaves is jansson's. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *fast = pz__api_json_load_flat((const char *)data, size);
  if (fast == NULL) return 0;
  json_t *slow = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
  if (slow == NULL || !json_equal(fast, slow)) abort();
  /* json_equal compares values, and 1 equals 1 whether integer or real:
   * the types must match too. */
  const char *key;
  json_t *v;
  json_object_foreach(fast, key, v) {
    if (json_typeof(v) != json_typeof(json_object_get(slow, key))) abort();
  }
  json_decref(fast);
  json_decref(slow);
  return 0;
}
