/* Attachment rules: allowed and declared types, names, captions, type detection, thumbnails and the durable files. */
#include <sys/stat.h>
#include <vips/vips.h>
#include "plaza/chat_upload.h"
#include "media_fixture.h"
#include "test.h"

/* ---- rules ---- */

static void test_declared_types(void) {
  CHECK_EQ_STR(pz_chat_upload_declared(PZ_STR("image/png")), "image/png");
  CHECK_EQ_STR(pz_chat_upload_declared(PZ_STR(" Image/PNG ; charset=binary")), "image/png");
  CHECK_EQ_STR(pz_chat_upload_declared(PZ_STR("image/jpg")), "image/jpeg");
  CHECK_EQ_STR(pz_chat_upload_declared(PZ_STR("application/x-zip-compressed")), "application/zip");
  CHECK_EQ_STR(pz_chat_upload_declared(PZ_STR("text/plain; charset=utf-8")), "text/plain");
  CHECK(pz_chat_upload_declared(PZ_STR("application/octet-stream")) == NULL);
  CHECK(pz_chat_upload_declared(PZ_STR("image/svg+xml")) == NULL);
  CHECK(pz_chat_upload_declared(PZ_STR("text/html")) == NULL);
  CHECK(pz_chat_upload_declared(PZ_STR("")) == NULL);
  CHECK(pz_chat_upload_declared(PZ_STR("image/pngx")) == NULL);
  CHECK_EQ_INT(pz_chat_upload_kind(PZ_STR("image/webp")), PZ_UPLOAD_IMAGE);
  CHECK_EQ_INT(pz_chat_upload_kind(PZ_STR("application/pdf")), PZ_UPLOAD_FILE);
  CHECK_EQ_INT(pz_chat_upload_kind(PZ_STR("application/x-executable")), PZ_UPLOAD_NONE);
  CHECK_EQ_STR(pz_chat_upload_ext("image/jpeg"), "jpg");
}

static void test_names(void) {
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_chat_upload_name_check(PZ_STR("report 2025.pdf"), &err), 0);
  CHECK_EQ_INT(pz_chat_upload_name_check(PZ_STR("\xe6\x8a\xa5\xe5\x91\x8a.pdf"), &err), 0);
  CHECK_EQ_INT(pz_chat_upload_name_check(PZ_STR(""), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_chat_upload_name_check(PZ_STR("../etc/passwd"), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_chat_upload_name_check(PZ_STR("a\\b"), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_chat_upload_name_check(PZ_STR(".."), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_chat_upload_name_check(PZ_STR("a\r\nX-Evil: 1"), &err), PZ_EINVAL);
  /* U+202E turns "gpj.exe" around on screen. */
  CHECK_EQ_INT(pz_chat_upload_name_check(PZ_STR("photo\xe2\x80\xaegpj.exe"), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_chat_upload_name_check(PZ_STR("bad\xff.txt"), &err), PZ_EUTF8);
  char longname[PZ_UPLOAD_NAME_MAX + 2];
  memset(longname, 'n', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  CHECK_EQ_INT(pz_chat_upload_name_check(pz_str_n(longname, PZ_UPLOAD_NAME_MAX), &err), 0);
  CHECK_EQ_INT(pz_chat_upload_name_check(pz_str_n(longname, PZ_UPLOAD_NAME_MAX + 1), &err), PZ_EINVAL);
}

static void test_captions(void) {
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_chat_caption_check(PZ_STR("Look at this!\nSunset."), &err), 0);
  CHECK_EQ_INT(pz_chat_caption_check(PZ_STR(""), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_chat_caption_check(PZ_STR("  \n "), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_chat_caption_check(PZ_STR("bell\x07"), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_chat_caption_check(PZ_STR("\xc3"), &err), PZ_EUTF8);
  size_t n = PZ_UPLOAD_CAPTION_MAX_CHARS + 1;
  char *s = malloc(n * 3);
  for (size_t i = 0; i < n; i++)
    memcpy(s + i * 3, "\xe4\xbd\xa0", 3); /* 你: 3 bytes, 1 character */
  CHECK_EQ_INT(pz_chat_caption_check(pz_str_n(s, (n - 1) * 3), &err), 0);
  CHECK_EQ_INT(pz_chat_caption_check(pz_str_n(s, n * 3), &err), PZ_EINVAL);
  free(s);
}

/* ---- detection and thumbnails ---- */

/* An image of w x h with bands channels (4: with alpha) encoded by libvips. */
static void *make_image(int w, int h, int bands, const char *format, size_t *len) {
  VipsImage *black = NULL, *img = NULL;
  void *buf = NULL;
  *len = 0;
  if (vips_black(&black, w, h, "bands", bands, NULL) != 0) goto out;
  if (vips_linear1(black, &img, 1.0, 128.0, "uchar", TRUE, NULL) != 0) goto out;
  int rc = strcmp(format, "png") == 0    ? vips_pngsave_buffer(img, &buf, len, NULL)
           : strcmp(format, "jpeg") == 0 ? vips_jpegsave_buffer(img, &buf, len, NULL)
           : strcmp(format, "gif") == 0  ? vips_gifsave_buffer(img, &buf, len, NULL)
                                         : vips_webpsave_buffer(img, &buf, len, NULL);
  if (rc != 0) buf = NULL;
out:
  if (black) g_object_unref(black);
  if (img) g_object_unref(img);
  return buf;
}

static void thumb_size(const pz_media_t *m, int *w, int *h) {
  *w = *h = 0;
  VipsImage *t = vips_image_new_from_buffer(m->thumb, m->thumb_len, "", NULL);
  if (t == NULL) return;
  *w = vips_image_get_width(t);
  *h = vips_image_get_height(t);
  g_object_unref(t);
}

static void test_images_are_measured_and_thumbnailed(void) {
  static const struct {
    const char *format, *mime;
    int bands;
    const char *thumb_type;
  } cases[] = {
      {"png", "image/png", 3, "image/jpeg"},
      {"png", "image/png", 4, "image/webp"}, /* transparency survives */
      {"jpeg", "image/jpeg", 3, "image/jpeg"},
      {"gif", "image/gif", 3, "image/webp"}, /* libvips reads GIFs with alpha */
      {"webp", "image/webp", 3, "image/jpeg"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    size_t len;
    void *img = make_image(640, 480, cases[i].bands, cases[i].format, &len);
    NEED(img != NULL);
    pz_media_t m;
    pz_err_t err = {0};
    int rc = pz_media_probe(img, len, cases[i].mime, &m, &err);
    if (rc != 0) fprintf(stderr, "%s: %s\n", cases[i].format, err.msg);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_STR(m.content_type, cases[i].mime);
    CHECK_EQ_INT(m.kind, PZ_UPLOAD_IMAGE);
    CHECK_EQ_INT(m.width, 640);
    CHECK_EQ_INT(m.height, 480);
    CHECK_EQ_STR(m.thumb_type, cases[i].thumb_type);
    int tw, th;
    thumb_size(&m, &tw, &th);
    CHECK_EQ_INT(tw, PZ_UPLOAD_THUMB_PX);
    CHECK_EQ_INT(th, PZ_UPLOAD_THUMB_PX * 480 / 640);
    CHECK(m.thumb_len > 0);
    pz_media_release(&m);
    g_free(img);
  }
  /* A small image is not blown up. */
  size_t len;
  void *img = make_image(40, 30, 3, "png", &len);
  NEED(img != NULL);
  pz_media_t m;
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_media_probe(img, len, "image/png", &m, &err), 0);
  int tw, th;
  thumb_size(&m, &tw, &th);
  CHECK_EQ_INT(tw, 40);
  CHECK_EQ_INT(th, 30);
  pz_media_release(&m);
  g_free(img);
}

static void test_types_come_from_the_bytes(void) {
  pz_media_t m;
  pz_err_t err = {0};
  size_t len;
  void *png = make_image(16, 16, 3, "png", &len);
  NEED(png != NULL);
  /* A PNG that says it is a PDF. */
  CHECK_EQ_INT(pz_media_probe(png, len, "application/pdf", &m, &err), PZ_EMEDIA);
  CHECK(strstr(err.msg, "image/png") != NULL);
  CHECK_EQ_INT(pz_media_probe(png, len, "image/jpeg", &m, &err), PZ_EMEDIA);
  g_free(png);
  /* An executable, whatever it claims. */
  static const unsigned char elf[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1,    0, 0, 0, 0, 0,
                                        0,    0,   0,   0,   2, 0, 0x3e, 0, 1, 0, 0, 0};
  CHECK_EQ_INT(pz_media_probe(elf, sizeof(elf), "application/pdf", &m, &err), PZ_EMEDIA);
  CHECK_EQ_INT(pz_media_probe(elf, sizeof(elf), "application/zip", &m, &err), PZ_EMEDIA);
  /* HTML is never served back as text/plain. */
  static const char html[] = "<!DOCTYPE html><html><body><script>alert(1)</script></body></html>\n";
  CHECK_EQ_INT(pz_media_probe(html, sizeof(html) - 1, "text/plain", &m, &err), PZ_EMEDIA);
  /* Files. */
  static const char pdf[] = "%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
  CHECK_EQ_INT(pz_media_probe(pdf, sizeof(pdf) - 1, "application/pdf", &m, &err), 0);
  CHECK_EQ_INT(m.kind, PZ_UPLOAD_FILE);
  CHECK(m.thumb == NULL);
  static const char text[] = "Meeting notes\n\xe2\x80\xa2 caf\xc3\xa9 at 10\n";
  CHECK_EQ_INT(pz_media_probe(text, sizeof(text) - 1, "text/plain", &m, &err), 0);
  CHECK_EQ_STR(m.content_type, "text/plain");
  static const char latin1[] =
      "caf\xe9 cr\xe8me br\xfbl\xe9"
      "e, na\xefve fa\xe7"
      "ade\n";
  CHECK_EQ_INT(pz_media_probe(latin1, sizeof(latin1) - 1, "text/plain", &m, &err), PZ_EMEDIA);
  CHECK_EQ_INT(pz_media_probe("", 0, "text/plain", &m, &err), PZ_EINVAL);
}

static void put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8),
  p[3] = (unsigned char)v;
}

static void test_broken_and_huge_images_are_refused(void) {
  pz_media_t m;
  pz_err_t err = {0};
  /* A PNG signature and header that claim 30000 x 30000 pixels, in 60 bytes. */
  unsigned char bomb[8 + 25 + 12 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  unsigned char *ihdr = bomb + 8;
  put32(ihdr, 13);
  memcpy(ihdr + 4, "IHDR", 4);
  put32(ihdr + 8, 30000);
  put32(ihdr + 12, 30000);
  ihdr[16] = 8, ihdr[17] = 2, ihdr[18] = 0, ihdr[19] = 0, ihdr[20] = 0;
  put32(ihdr + 21, crc32_of(ihdr + 4, 17));
  unsigned char *idat = ihdr + 25; /* an empty IDAT and IEND */
  put32(idat, 0);
  memcpy(idat + 4, "IDAT", 4);
  put32(idat + 8, crc32_of(idat + 4, 4));
  unsigned char *iend = idat + 12;
  put32(iend, 0);
  memcpy(iend + 4, "IEND", 4);
  put32(iend + 8, crc32_of(iend + 4, 4));
  CHECK_EQ_INT(pz_media_probe(bomb, sizeof(bomb), "image/png", &m, &err), PZ_EUNPROCESSABLE);
  /* A real PNG cut in half: the type is right, the pixels are not there. */
  size_t len;
  void *png = make_image(300, 300, 3, "png", &len);
  NEED(png != NULL);
  CHECK_EQ_INT(pz_media_probe(png, len / 2, "image/png", &m, &err), PZ_EMEDIA);
  CHECK(strstr(err.msg, "decoded") != NULL);
  g_free(png);
}

/* ---- files ---- */

static void test_files_round_trip(void) {
  char *dir = pz_test_tmpdir("uploads");
  NEED(dir != NULL);
  char db_path[600];
  snprintf(db_path, sizeof(db_path), "%s/plaza.db", dir);
  pz_err_t err = {0};
  pz_buf_t out = {0};
  const char data[] = "the bytes of an upload";
  CHECK_EQ_INT(pz_store_blob_read(db_path, 1234567, false, 1 << 20, &out, &err), PZ_ENOTFOUND);
  CHECK_EQ_INT(pz_store_blob_write(db_path, 1234567, false, data, sizeof(data), &err), 0);
  CHECK_EQ_INT(pz_store_blob_write(db_path, 1234567, true, "thumb", 5, &err), 0);
  CHECK_EQ_INT(pz_store_blob_read(db_path, 1234567, false, 1 << 20, &out, &err), 0);
  CHECK_EQ_INT(out.len, sizeof(data));
  CHECK(out.len == sizeof(data) && memcmp(out.data, data, sizeof(data)) == 0);
  out.len = 0;
  CHECK_EQ_INT(pz_store_blob_read(db_path, 1234567, true, 1 << 20, &out, &err), 0);
  CHECK(out.len == 5 && memcmp(out.data, "thumb", 5) == 0);
  /* A file larger than its row says is not served. */
  out.len = 0;
  CHECK_EQ_INT(pz_store_blob_read(db_path, 1234567, false, 4, &out, &err), PZ_EIO);
  /* No temporary file is left beside it. */
  char cmd[800];
  snprintf(cmd, sizeof(cmd), "test -z \"$(find '%s/uploads' -name '*.tmp')\"", dir);
  CHECK_EQ_INT(system(cmd), 0);
  pz_store_blob_remove(db_path, 1234567);
  out.len = 0;
  CHECK_EQ_INT(pz_store_blob_read(db_path, 1234567, false, 1 << 20, &out, &err), PZ_ENOTFOUND);
  CHECK_EQ_INT(pz_store_blob_read(db_path, 1234567, true, 1 << 20, &out, &err), PZ_ENOTFOUND);
  pz_buf_free(&out);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  CHECK_EQ_INT(system(cmd), 0);
  free(dir);
}

int main(void) {
  if (!media_start()) return 1;
  RUN(test_declared_types);
  RUN(test_names);
  RUN(test_captions);
  RUN(test_images_are_measured_and_thumbnailed);
  RUN(test_types_come_from_the_bytes);
  RUN(test_broken_and_huge_images_are_refused);
  RUN(test_files_round_trip);
  TEST_EXIT();
}
