/* What the media tests share: libvips started, and PNG's chunk CRC, computed here rather than by the code under test. */
#ifndef PZ_TEST_MEDIA_FIXTURE_H
#define PZ_TEST_MEDIA_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include "plaza/chat_upload.h"

/* Starts libvips as plazad does; false (said on stderr) when it cannot. */
static inline bool media_start(void) {
  pz_err_t err = {0};
  if (pz_media_init(&err) == 0) return true;
  fprintf(stderr, "%s\n", err.msg);
  return false;
}

/* The CRC-32 of a PNG chunk (ISO 3309, as in the PNG specification). */
static inline uint32_t crc32_of(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
  }
  return c ^ 0xffffffffu;
}

#endif
