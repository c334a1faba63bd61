/* libFuzzer: arbitrary bytes through metadata stripping, checking what must hold of every answer: a bounded output,
 * and nothing left to strip from it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "plaza/chat_upload.h"

/* Input layout: one byte picks the type, one byte the orientation (0 to
 * 9, so that values libvips never gives are tried too), the rest is the
 * image. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const types[] = {"image/jpeg", "image/png", "image/webp", "image/gif"};
  if (size < 2) return 0;
  const char *type = types[data[0] % 4];
  int orientation = data[1] % 10;
  pz_buf_t out = {0};
  pz_err_t err = {0};
  int rc = pz_media_strip(data + 2, size - 2, type, orientation, &out, &err);
  if (rc < 0) {
    PZ_ASSERT(rc == PZ_EMEDIA && out.len == 0 && err.msg[0] != '\0');
    return 0;
  }
  PZ_ASSERT(rc == 0);
  /* GIF only loses blocks: it never grows. */
  if (strcmp(type, "image/gif") == 0) PZ_ASSERT(out.len < size - 2 || out.len == 0);
  if (out.len > 0) {
    PZ_ASSERT(out.len <= size - 2 + PZ_MEDIA_STRIP_MAX_GROWTH);
    /* A copy of exactly its length, so that a read past its end is seen. */
    uint8_t *copy = malloc(out.len);
    PZ_ASSERT(copy != NULL);
    memcpy(copy, out.data, out.len);
    pz_buf_t again = {0};
    rc = pz_media_strip(copy, out.len, type, orientation, &again, &err);
    /* What stripping wrote, it reads, and finds nothing more to remove. */
    PZ_ASSERT(rc == 0 && again.len == 0);
    free(copy);
  }
  pz_buf_free(&out);
  return 0;
}
