/* libFuzzer: arbitrary bytes through the upload checks: the declared type, the file name, the caption, and detection
 * and thumbnailing of the content. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "plaza/chat_upload.h"
#include "plaza/log.h"

/* Input layout: one byte n, then n bytes of Content-Type; one byte m, then
 * m bytes used as both a file name and a caption; the rest is the body. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool ready;
  if (!ready) {
    pz_log_level = PZ_LOG_ERROR + 1; /* silence */
    pz_err_t err;
    if (pz_media_init(&err) != 0) abort();
    ready = true;
  }
  size_t off = 0;
  if (off >= size) return 0;
  size_t n = data[off++];
  if (n > size - off) n = size - off;
  pz_str_t ct = pz_str_n((const char *)data + off, n);
  off += n;
  size_t m = off < size ? data[off++] : 0;
  if (m > size - off) m = size - off;
  pz_str_t text = pz_str_n((const char *)data + off, m);
  off += m;

  pz_err_t err = {0};
  const char *declared = pz_chat_upload_declared(ct);
  if (declared) {
    PZ_ASSERT(pz_chat_upload_kind(pz_str(declared)) != PZ_UPLOAD_NONE);
    PZ_ASSERT(strcmp(pz_chat_upload_ext(declared), "bin") != 0);
  }
  if (pz_chat_upload_name_check(text, &err) == 0) {
    /* An accepted name never carries what would break a header or a path. */
    PZ_ASSERT(memchr(text.ptr, '/', text.len) == NULL && memchr(text.ptr, '\r', text.len) == NULL &&
              memchr(text.ptr, '\n', text.len) == NULL && memchr(text.ptr, '\0', text.len) == NULL);
  }
  (void)pz_chat_caption_check(text, &err);

  pz_media_t media;
  int rc = pz_media_probe(data + off, size - off, declared ? declared : "image/png", &media, &err);
  if (rc == 0) {
    PZ_ASSERT(media.kind != PZ_UPLOAD_NONE && media.content_type != NULL);
    if (media.kind == PZ_UPLOAD_IMAGE) {
      PZ_ASSERT(media.width > 0 && media.height > 0 && media.thumb != NULL && media.thumb_len > 0);
      PZ_ASSERT((uint64_t)media.width * (uint64_t)media.height <= PZ_UPLOAD_MAX_PIXELS);
    }
    pz_media_release(&media);
  }
  return 0;
}
