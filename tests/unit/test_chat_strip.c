/* Metadata stripping: what a member downloads holds no EXIF, GPS, XMP or comments, decodes to the same pixels and keeps
 * its colour profile and orientation. */
#include <vips/vips.h>
#include "media_fixture.h"
#include "plaza/chat_upload.h"
#include "test.h"

/* ---- building images ---- */

static void put16be(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v; }
static void put32be(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}
static void put32le(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32le(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* libvips writes an EXIF chunk into a WebP even when told to strip: only
 * its image chunk is kept, in the simple format. */
static void webp_simple(uint8_t *d, size_t *len) {
  size_t pos = 12;
  while (pos + 8 <= *len) {
    uint32_t n = get32le(d + pos + 4);
    if (memcmp(d + pos, "VP8 ", 4) == 0 || memcmp(d + pos, "VP8L", 4) == 0) {
      size_t chunk = 8 + n + (n & 1);
      memmove(d + 12, d + pos, chunk);
      *len = 12 + chunk;
      put32le(d + 4, (uint32_t)(*len - 8));
      return;
    }
    pos += 8 + n + (n & 1);
  }
}

/* A w x h gradient encoded by libvips as format, without metadata. Free
 * with g_free. */
static void *make_image(int w, int h, const char *format, size_t *len) {
  VipsImage *x = NULL, *img = NULL;
  void *buf = NULL;
  *len = 0;
  if (vips_xyz(&x, w, h, NULL) != 0) goto out;
  /* Three bands from the two of x and y coordinates: x, y, x. */
  VipsImage *three = NULL;
  VipsImage *bands[2] = {x, NULL};
  if (vips_extract_band(x, &bands[1], 0, NULL) != 0) goto out;
  int rc = vips_bandjoin(bands, &three, 2, NULL);
  g_object_unref(bands[1]);
  if (rc != 0) goto out;
  rc = vips_cast_uchar(three, &img, NULL);
  g_object_unref(three);
  if (rc != 0) goto out;
  if (strcmp(format, "png-alpha") == 0) {
    VipsImage *alpha = NULL;
    rc = vips_addalpha(img, &alpha, NULL);
    g_object_unref(img);
    img = alpha;
    if (rc != 0) goto out;
  }
  if (strcmp(format, "jpeg") == 0)
    rc = vips_jpegsave_buffer(img, &buf, len, "strip", TRUE, NULL);
  else if (strcmp(format, "jpeg-progressive") == 0)
    rc = vips_jpegsave_buffer(img, &buf, len, "strip", TRUE, "interlace", TRUE, NULL);
  else if (strncmp(format, "png", 3) == 0)
    rc = vips_pngsave_buffer(img, &buf, len, "strip", TRUE, NULL);
  else if (strcmp(format, "gif") == 0)
    rc = vips_gifsave_buffer(img, &buf, len, "strip", TRUE, NULL);
  else
    rc = vips_webpsave_buffer(img, &buf, len, "strip", TRUE, NULL);
  if (rc != 0) {
    fprintf(stderr, "libvips: %s\n", vips_error_buffer());
    buf = NULL;
  }
  if (buf && strcmp(format, "webp") == 0) webp_simple(buf, len);
out:
  if (x) g_object_unref(x);
  if (img) g_object_unref(img);
  return buf;
}

/* A big-endian TIFF as cameras write it: IFD0 with Make, Orientation and
 * a GPS IFD with latitude 48 51' 24.23" N. */
static size_t camera_tiff(uint8_t *t, int orientation) {
  memset(t, 0, 114);
  memcpy(t, "MM\0\x2a\0\0\0\x08", 8);
  uint8_t *ifd = t + 8;
  put16be(ifd, 3);
  put16be(ifd + 2, 0x010F), put16be(ifd + 4, 2), put32be(ifd + 6, 10), put32be(ifd + 10, 50); /* Make */
  put16be(ifd + 14, 0x0112), put16be(ifd + 16, 3), put32be(ifd + 18, 1), put16be(ifd + 22, (unsigned)orientation);
  put16be(ifd + 26, 0x8825), put16be(ifd + 28, 4), put32be(ifd + 30, 1), put32be(ifd + 34, 60); /* GPSInfo */
  memcpy(t + 50, "SecretCam", 10);
  uint8_t *gps = t + 60;
  put16be(gps, 2);
  put16be(gps + 2, 0x0001), put16be(gps + 4, 2), put32be(gps + 6, 2), memcpy(gps + 10, "N", 2);
  put16be(gps + 14, 0x0002), put16be(gps + 16, 5), put32be(gps + 18, 3), put32be(gps + 22, 90);
  uint32_t lat[6] = {48, 1, 51, 1, 2423, 100};
  for (int i = 0; i < 6; i++)
    put32be(t + 90 + 4 * i, lat[i]);
  return 114;
}

typedef struct {
  uint8_t *data;
  size_t len;
} bytes_t;

static void bytes_add(bytes_t *b, const void *p, size_t n) {
  b->data = realloc(b->data, b->len + n);
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void jpeg_segment(bytes_t *b, uint8_t marker, const void *payload, size_t n) {
  uint8_t head[4] = {0xFF, marker};
  put16be(head + 2, (unsigned)n + 2);
  bytes_add(b, head, 4);
  bytes_add(b, payload, n);
}

/* A string literal as pointer and length, NULs inside included. */
#define LIT(s) (s), (sizeof(s) - 1)

/* base (from libvips: SOI, then the tables) with what a photo editor
 * writes: JFIF, an Adobe APP14 and the sRGB profile in APP2; with meta,
 * a camera's metadata too: EXIF with GPS, XMP, IPTC and a comment. */
static bytes_t jpeg_with_segments(const uint8_t *base, size_t len, bool meta, int orientation) {
  bytes_t b = {0};
  bytes_add(&b, base, 2);
  jpeg_segment(&b, 0xE0, LIT("JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
  if (meta) {
    uint8_t exif[6 + 114] = "Exif";
    camera_tiff(exif + 6, orientation);
    jpeg_segment(&b, 0xE1, exif, sizeof(exif));
    jpeg_segment(&b, 0xE1,
                 LIT("http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">"
                     "<exif:GPSLatitude>48,51.40N</exif:GPSLatitude></x:xmpmeta>"));
    jpeg_segment(&b, 0xED,
                 LIT("Photoshop 3.0\0"
                     "8BIM\x04\x04\0\0\0\0\0\x0a\x1c\x02\x5a\0\x05Paris"));
    /* Fill bytes before a marker belong to it. */
    bytes_add(&b, "\xff\xff", 2);
    jpeg_segment(&b, 0xFE, LIT("taken at home"));
  }
  jpeg_segment(&b, 0xEE, LIT("Adobe\0\x64\0\0\0\0\x01"));
  VipsBlob *icc = NULL;
  if (vips_profile_load("srgb", &icc, NULL) == 0) {
    size_t n;
    const void *profile = vips_blob_get(icc, &n);
    uint8_t *app2 = malloc(14 + n);
    memcpy(app2, "ICC_PROFILE\0\x01\x01", 14);
    memcpy(app2 + 14, profile, n);
    jpeg_segment(&b, 0xE2, app2, 14 + n);
    free(app2);
    vips_area_unref((VipsArea *)icc);
  }
  bytes_add(&b, base + 2, len - 2);
  return b;
}

static bytes_t jpeg_with_metadata(const uint8_t *base, size_t len, int orientation) {
  return jpeg_with_segments(base, len, true, orientation);
}

/* The markers before SOS, in order, as a string of hex pairs ("e0e1db"). */
static void jpeg_markers(const uint8_t *d, size_t len, char *out, size_t cap) {
  size_t pos = 2, n = 0;
  out[0] = '\0';
  while (pos + 4 <= len && n + 3 < cap) {
    while (pos < len && d[pos] == 0xFF && d[pos + 1] == 0xFF)
      pos++;
    uint8_t m = d[pos + 1];
    n += (size_t)snprintf(out + n, cap - n, "%02x", m);
    if (m == 0xDA) break;
    pos += 2 + ((size_t)d[pos + 2] << 8 | d[pos + 3]);
  }
}

/* Where the header of the first scan (SOS) ends; 0 when there is none. */
static size_t jpeg_header_end(const uint8_t *d, size_t len) {
  size_t pos = 2;
  while (pos + 4 <= len) {
    while (pos + 1 < len && d[pos] == 0xFF && d[pos + 1] == 0xFF)
      pos++;
    uint8_t m = d[pos + 1];
    pos += 2 + ((size_t)d[pos + 2] << 8 | d[pos + 3]);
    if (m == 0xDA) return pos;
  }
  return 0;
}

static bool contains(const uint8_t *d, size_t len, const char *s) { return memmem(d, len, s, strlen(s)) != NULL; }

/* ---- checking images ---- */

typedef struct {
  int width, height, bands, orientation;
  bool icc, exif, gps;
  void *pixels;
  size_t n_pixels;
} decoded_t;

/* Decodes every pixel, failing on any warning (damage, extra bytes). */
static bool decode(const void *data, size_t len, decoded_t *d) {
  memset(d, 0, sizeof(*d));
  VipsImage *img = vips_image_new_from_buffer(data, len, "", "fail_on", VIPS_FAIL_ON_WARNING, NULL);
  if (img == NULL) {
    fprintf(stderr, "libvips: %s\n", vips_error_buffer());
    vips_error_clear();
    return false;
  }
  d->width = vips_image_get_width(img);
  d->height = vips_image_get_height(img);
  d->bands = vips_image_get_bands(img);
  d->orientation = vips_image_get_orientation(img);
  d->icc = vips_image_get_typeof(img, VIPS_META_ICC_NAME) != 0;
  d->exif = vips_image_get_typeof(img, VIPS_META_EXIF_NAME) != 0;
  d->gps = vips_image_get_typeof(img, "exif-ifd3-GPSLatitude") != 0;
  d->pixels = vips_image_write_to_memory(img, &d->n_pixels);
  g_object_unref(img);
  if (d->pixels == NULL) {
    fprintf(stderr, "libvips: %s\n", vips_error_buffer());
    vips_error_clear();
  }
  return d->pixels != NULL;
}

static bool same_pixels(const decoded_t *a, const decoded_t *b) {
  return a->width == b->width && a->height == b->height && a->n_pixels == b->n_pixels &&
         memcmp(a->pixels, b->pixels, a->n_pixels) == 0;
}

/* Strips d from a copy of exactly len bytes, so that ASan sees a read past the end. */
static int strip(const uint8_t *d, size_t len, const char *type, int orientation, pz_buf_t *out, pz_err_t *err) {
  uint8_t *copy = malloc(len ? len : 1);
  memcpy(copy, d, len);
  int rc = pz_media_strip(copy, len, type, orientation, out, err);
  free(copy);
  return rc;
}

/* Stripping what was stripped changes nothing. */
static void check_idempotent(const pz_buf_t *out, const char *type, int orientation) {
  pz_buf_t again = {0};
  pz_err_t err = {0};
  CHECK_EQ_INT(strip((const uint8_t *)out->data, out->len, type, orientation, &again, &err), 0);
  CHECK_EQ_INT(again.len, 0);
  pz_buf_free(&again);
}

/* ---- JPEG ---- */

static void test_jpeg_loses_exif_xmp_iptc_and_comments(void) {
  size_t base_len;
  uint8_t *base = make_image(64, 48, "jpeg", &base_len);
  NEED(base != NULL);
  bytes_t in = jpeg_with_metadata(base, base_len, 1);
  decoded_t before, after;
  NEED(decode(in.data, in.len, &before));
  /* The test image is what a phone makes: libvips finds the GPS in it. */
  CHECK(before.exif && before.gps && before.icc);
  char markers[64];
  jpeg_markers(in.data, in.len, markers, sizeof(markers));
  CHECK_EQ_STR(markers, "e0e1e1edfeeee2dbdbc0c4c4c4c4da");

  pz_buf_t out = {0};
  pz_err_t err = {0};
  CHECK_EQ_INT(strip(in.data, in.len, "image/jpeg", 1, &out, &err), 0);
  NEED(out.len > 0);
  const uint8_t *o = (const uint8_t *)out.data;
  jpeg_markers(o, out.len, markers, sizeof(markers));
  /* APP0, the ICC profile, Adobe and every table stay, in their order. */
  CHECK_EQ_STR(markers, "e0eee2dbdbc0c4c4c4c4da");
  CHECK(!contains(o, out.len, "Exif") && !contains(o, out.len, "SecretCam") && !contains(o, out.len, "GPS"));
  CHECK(!contains(o, out.len, "Paris") && !contains(o, out.len, "taken at home"));
  CHECK(contains(o, out.len, "JFIF") && contains(o, out.len, "ICC_PROFILE"));
  /* The entropy-coded data is the original's, to the last byte. */
  CHECK(out.len < in.len && memcmp(o + out.len - 200, in.data + in.len - 200, 200) == 0);
  NEED(decode(out.data, out.len, &after));
  CHECK(same_pixels(&before, &after));
  CHECK(after.icc && !after.exif && !after.gps);
  CHECK_EQ_INT(after.orientation, 1);
  check_idempotent(&out, "image/jpeg", 1);
  g_free(before.pixels), g_free(after.pixels);
  pz_buf_free(&out);
  free(in.data);
  g_free(base);
}

/* A phone's photo: a progressive image (several scans, a comment between
 * two of them), an MPF index in APP2, and after EOI a secondary image with
 * its own EXIF and GPS, as phones append depth and gain maps. */
static void test_jpeg_loses_what_follows_the_image_and_what_sits_between_scans(void) {
  size_t base_len, second_len;
  uint8_t *base = make_image(64, 48, "jpeg-progressive", &base_len);
  uint8_t *second = make_image(16, 12, "jpeg", &second_len);
  NEED(base != NULL && second != NULL);
  bytes_t head = jpeg_with_segments(base, base_len, false, 1);
  /* The MPF index, then everything up to the second scan, a comment, the rest. */
  bytes_t in = {0};
  bytes_add(&in, head.data, 2);
  jpeg_segment(&in, 0xE2, LIT("MPF\0MM\0\x2a\0\0\0\x08\0\0"));
  size_t first_sos = jpeg_header_end(head.data, head.len);
  NEED(first_sos > 0);
  const uint8_t *sos2 = memmem(head.data + first_sos, head.len - first_sos, "\xff\xda", 2);
  NEED(sos2 != NULL);
  size_t at = (size_t)(sos2 - head.data);
  bytes_add(&in, head.data + 2, at - 2);
  jpeg_segment(&in, 0xFE, LIT("between scans: home"));
  bytes_add(&in, head.data + at, head.len - at);
  bytes_t extra = jpeg_with_metadata(second, second_len, 1);
  bytes_add(&in, extra.data, extra.len);
  decoded_t before, after;
  NEED(decode(head.data, head.len, &before));

  pz_buf_t out = {0};
  pz_err_t err = {0};
  CHECK_EQ_INT(strip(in.data, in.len, "image/jpeg", 1, &out, &err), 0);
  NEED(out.len > 0);
  const uint8_t *o = (const uint8_t *)out.data;
  CHECK(!contains(o, out.len, "MPF") && !contains(o, out.len, "between scans"));
  CHECK(!contains(o, out.len, "Exif") && !contains(o, out.len, "SecretCam") && !contains(o, out.len, "GPS"));
  CHECK(contains(o, out.len, "ICC_PROFILE"));
  /* What is left is the image as it was made, to its EOI. */
  CHECK_EQ_INT(out.len, head.len);
  CHECK(memcmp(o, head.data, head.len) == 0);
  NEED(decode(out.data, out.len, &after));
  CHECK(same_pixels(&before, &after));
  check_idempotent(&out, "image/jpeg", 1);
  g_free(before.pixels), g_free(after.pixels);
  pz_buf_free(&out);
  free(in.data), free(head.data), free(extra.data);
  g_free(base), g_free(second);
}

static void test_jpeg_keeps_its_orientation_alone(void) {
  size_t base_len;
  uint8_t *base = make_image(64, 48, "jpeg", &base_len);
  NEED(base != NULL);
  bytes_t in = jpeg_with_metadata(base, base_len, 6);
  decoded_t before, after;
  NEED(decode(in.data, in.len, &before));
  CHECK_EQ_INT(before.orientation, 6);

  pz_buf_t out = {0};
  pz_err_t err = {0};
  CHECK_EQ_INT(strip(in.data, in.len, "image/jpeg", 6, &out, &err), 0);
  NEED(out.len > 0);
  const uint8_t *o = (const uint8_t *)out.data;
  char markers[64];
  jpeg_markers(o, out.len, markers, sizeof(markers));
  /* One APP1, right after JFIF. */
  CHECK_EQ_STR(markers, "e0e1eee2dbdbc0c4c4c4c4da");
  size_t app1 = 2 + 2 + ((size_t)o[4] << 8 | o[5]);
  static const uint8_t want[36] = {0xFF, 0xE1, 0,    34, 'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0,
                                   1,    0,    0x12, 1,  3,   0,   1,   0,   0, 0, 6,   0,   0,  0, 0, 0, 0, 0};
  CHECK(out.len > app1 + sizeof(want) && memcmp(o + app1, want, sizeof(want)) == 0);
  CHECK(!contains(o, out.len, "SecretCam") && !contains(o, out.len, "GPS"));
  NEED(decode(out.data, out.len, &after));
  CHECK(same_pixels(&before, &after));
  CHECK_EQ_INT(after.orientation, 6);
  CHECK(after.exif && !after.gps && after.icc);
  check_idempotent(&out, "image/jpeg", 6);
  /* Growth is bounded even when there was nothing to replace. */
  pz_buf_t grown = {0};
  CHECK_EQ_INT(strip(base, base_len, "image/jpeg", 8, &grown, &err), 0);
  CHECK_EQ_INT(grown.len, base_len + 36);
  CHECK(grown.len <= base_len + PZ_MEDIA_STRIP_MAX_GROWTH);
  g_free(before.pixels), g_free(after.pixels);
  pz_buf_free(&grown);
  pz_buf_free(&out);
  free(in.data);
  g_free(base);
}

/* The whole path of an upload: the probe measures the photo as shown and
 * hands over the bytes to store. */
static void test_probe_hands_over_the_stripped_photo(void) {
  size_t base_len;
  uint8_t *base = make_image(64, 48, "jpeg", &base_len);
  NEED(base != NULL);
  bytes_t in = jpeg_with_metadata(base, base_len, 6);
  pz_media_t m;
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_media_probe(in.data, in.len, "image/jpeg", &m, &err), 0);
  CHECK_EQ_INT(m.width, 48);
  CHECK_EQ_INT(m.height, 64);
  CHECK(m.stripped.len > 0 && m.stripped.len < in.len);
  CHECK(!contains((const uint8_t *)m.stripped.data, m.stripped.len, "SecretCam"));
  pz_media_release(&m);
  CHECK(m.stripped.data == NULL && m.stripped.len == 0);
  /* Without metadata there is nothing else to store. */
  CHECK_EQ_INT(pz_media_probe(base, base_len, "image/jpeg", &m, &err), 0);
  CHECK_EQ_INT(m.stripped.len, 0);
  pz_media_release(&m);
  free(in.data);
  g_free(base);
}

/* ---- PNG ---- */

static void png_chunk(bytes_t *b, const char *type, const void *data, size_t n) {
  uint8_t *c = malloc(12 + n);
  put32be(c, (uint32_t)n);
  memcpy(c + 4, type, 4);
  memcpy(c + 8, data, n);
  put32be(c + 8 + n, crc32_of(c + 4, 4 + n));
  bytes_add(b, c, 12 + n);
  free(c);
}

/* The chunk types in order, joined by spaces. */
static void png_types(const uint8_t *d, size_t len, char *out, size_t cap) {
  size_t pos = 8, n = 0;
  out[0] = '\0';
  while (pos + 12 <= len && n + 6 < cap) {
    uint32_t clen = (uint32_t)d[pos] << 24 | (uint32_t)d[pos + 1] << 16 | (uint32_t)d[pos + 2] << 8 | d[pos + 3];
    n += (size_t)snprintf(out + n, cap - n, "%s%.4s", n ? " " : "", (const char *)d + pos + 4);
    pos += 12 + clen;
  }
}

/* base with eXIf (GPS, orientation), tEXt, zTXt, iTXt (XMP), tIME, a
 * private ancillary chunk and bytes after IEND. */
static bytes_t png_with_metadata(const uint8_t *base, size_t len, int orientation) {
  bytes_t b = {0};
  size_t ihdr_end = 8 + 25;
  bytes_add(&b, base, ihdr_end);
  uint8_t tiff[114];
  camera_tiff(tiff, orientation);
  png_chunk(&b, "eXIf", tiff, sizeof(tiff));
  png_chunk(&b, "tEXt", LIT("Comment\0taken at home"));
  png_chunk(&b, "zTXt", LIT("Author\0\0x\x9c\x03\0\0\0\0\x01"));
  png_chunk(&b, "iTXt", LIT("XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta>GPS</x:xmpmeta>"));
  png_chunk(&b, "tIME", LIT("\x07\xe9\x01\x02\x03\x04\x05"));
  png_chunk(&b, "prVt", LIT("SecretCam"));
  bytes_add(&b, base + ihdr_end, len - ihdr_end);
  bytes_add(&b, LIT("PK\x03\x04 a zip after the image"));
  return b;
}

static void test_png_loses_its_text_and_exif(void) {
  size_t base_len;
  uint8_t *base = make_image(40, 30, "png", &base_len);
  NEED(base != NULL);
  char base_types[128], types[128];
  png_types(base, base_len, base_types, sizeof(base_types));
  for (int orientation = 1; orientation <= 6; orientation += 5) {
    bytes_t in = png_with_metadata(base, base_len, orientation);
    decoded_t before, after;
    NEED(decode(in.data, in.len, &before));
    CHECK(before.exif);
    CHECK_EQ_INT(before.orientation, orientation);
    pz_buf_t out = {0};
    pz_err_t err = {0};
    CHECK_EQ_INT(strip(in.data, in.len, "image/png", orientation, &out, &err), 0);
    NEED(out.len > 0);
    const uint8_t *o = (const uint8_t *)out.data;
    png_types(o, out.len, types, sizeof(types));
    if (orientation == 1) {
      /* Exactly the chunks libvips wrote, byte for byte. */
      CHECK_EQ_STR(types, base_types);
      CHECK(out.len == base_len && memcmp(o, base, base_len) == 0);
    } else {
      char want[160];
      snprintf(want, sizeof(want), "IHDR eXIf%s", base_types + 4);
      CHECK_EQ_STR(types, want);
    }
    CHECK(!contains(o, out.len, "SecretCam") && !contains(o, out.len, "home") && !contains(o, out.len, "GPS") &&
          !contains(o, out.len, "PK"));
    NEED(decode(out.data, out.len, &after));
    CHECK(same_pixels(&before, &after));
    CHECK_EQ_INT(after.orientation, orientation);
    CHECK(!after.gps);
    check_idempotent(&out, "image/png", orientation);
    g_free(before.pixels), g_free(after.pixels);
    pz_buf_free(&out);
    free(in.data);
  }
  g_free(base);
}

/* libvips writes the EXIF into WebP thumbnails, those of images with
 * transparency, whatever its "strip" says: they are stripped too. */
static void test_thumbnails_hold_no_metadata(void) {
  size_t base_len;
  uint8_t *base = make_image(64, 64, "png-alpha", &base_len);
  NEED(base != NULL);
  bytes_t in = png_with_metadata(base, base_len, 1);
  pz_media_t m;
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_media_probe(in.data, in.len, "image/png", &m, &err), 0);
  CHECK_EQ_STR(m.thumb_type, "image/webp");
  CHECK(m.thumb_len > 0 && !contains(m.thumb, m.thumb_len, "SecretCam"));
  decoded_t t;
  CHECK(decode(m.thumb, m.thumb_len, &t));
  CHECK(!t.exif && !t.gps);
  g_free(t.pixels);
  pz_media_release(&m);
  free(in.data);
  g_free(base);
}

/* ---- WebP ---- */

static void riff_chunk(bytes_t *b, const char *fourcc, const void *data, size_t n) {
  uint8_t head[8];
  memcpy(head, fourcc, 4);
  put32le(head + 4, (uint32_t)n);
  bytes_add(b, head, 8);
  bytes_add(b, data, n);
  if (n & 1) bytes_add(b, "", 1);
}

/* The extended format around base's image chunk: VP8X with the EXIF and
 * XMP flags, the image, EXIF (odd-sized, padded) and XMP. */
static bytes_t webp_with_metadata(const uint8_t *base, size_t len, int w, int h) {
  bytes_t b = {0};
  bytes_add(&b, "RIFF\0\0\0\0WEBP", 12);
  uint8_t vp8x[10] = {0x08 | 0x04};
  vp8x[4] = (uint8_t)(w - 1), vp8x[5] = (uint8_t)((w - 1) >> 8);
  vp8x[7] = (uint8_t)(h - 1), vp8x[8] = (uint8_t)((h - 1) >> 8);
  riff_chunk(&b, "VP8X", vp8x, sizeof(vp8x));
  bytes_add(&b, base + 12, len - 12);
  uint8_t tiff[115];
  camera_tiff(tiff, 1);
  tiff[114] = 0;
  riff_chunk(&b, "EXIF", tiff, sizeof(tiff));
  riff_chunk(&b, "XMP ", LIT("<x:xmpmeta>GPS</x:xmpmeta>"));
  put32le(b.data + 4, (uint32_t)(b.len - 8));
  return b;
}

static void test_webp_loses_exif_and_xmp(void) {
  size_t base_len;
  uint8_t *base = make_image(40, 30, "webp", &base_len);
  NEED(base != NULL);
  bytes_t in = webp_with_metadata(base, base_len, 40, 30);
  decoded_t before, after;
  NEED(decode(in.data, in.len, &before));
  CHECK(before.exif && before.gps);
  pz_buf_t out = {0};
  pz_err_t err = {0};
  CHECK_EQ_INT(strip(in.data, in.len, "image/webp", 1, &out, &err), 0);
  NEED(out.len > 0);
  const uint8_t *o = (const uint8_t *)out.data;
  /* VP8X with no flag left, then the image chunk as it was. */
  CHECK_EQ_INT(out.len, 12 + 18 + (base_len - 12));
  CHECK(memcmp(o, "RIFF", 4) == 0 && memcmp(o + 12, "VP8X", 4) == 0);
  CHECK_EQ_INT(get32le(o + 4), out.len - 8);
  CHECK_EQ_INT(o[20], 0);
  CHECK(memcmp(o + 30, base + 12, base_len - 12) == 0);
  CHECK(!contains(o, out.len, "SecretCam") && !contains(o, out.len, "GPS") && !contains(o, out.len, "EXIF"));
  NEED(decode(out.data, out.len, &after));
  CHECK(same_pixels(&before, &after));
  CHECK(!after.exif);
  check_idempotent(&out, "image/webp", 1);

  /* With orientation 6: one EXIF chunk holding only that, flagged. */
  pz_buf_t turned = {0};
  CHECK_EQ_INT(strip(in.data, in.len, "image/webp", 6, &turned, &err), 0);
  NEED(turned.len == out.len + 34);
  o = (const uint8_t *)turned.data;
  CHECK_EQ_INT(o[20], 0x08);
  CHECK_EQ_INT(get32le(o + 4), turned.len - 8);
  CHECK(memcmp(o + turned.len - 34, "EXIF\x1a\0\0\0II*\0", 12) == 0);
  g_free(after.pixels);
  NEED(decode(turned.data, turned.len, &after));
  CHECK_EQ_INT(after.orientation, 6);
  CHECK(same_pixels(&before, &after) && !after.gps);
  check_idempotent(&turned, "image/webp", 6);
  /* A simple-format WebP has no place for it. */
  pz_buf_t simple = {0};
  CHECK_EQ_INT(strip(base, base_len, "image/webp", 6, &simple, &err), 0);
  CHECK_EQ_INT(simple.len, 0);
  g_free(before.pixels), g_free(after.pixels);
  pz_buf_free(&turned);
  pz_buf_free(&out);
  free(in.data);
  g_free(base);
}

/* ---- nothing to do, and what cannot be read ---- */

static void test_clean_files_are_kept_as_they_are(void) {
  static const char *const formats[][2] = {
      {"jpeg", "image/jpeg"}, {"png", "image/png"}, {"webp", "image/webp"}, {"gif", "image/gif"}};
  for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
    size_t len;
    uint8_t *img = make_image(32, 32, formats[i][0], &len);
    NEED(img != NULL);
    pz_buf_t out = {0};
    pz_err_t err = {0};
    int rc = strip(img, len, formats[i][1], 1, &out, &err);
    if (rc != 0 || out.len != 0) fprintf(stderr, "%s: rc %d, %zu bytes\n", formats[i][0], rc, out.len);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(out.len, 0);
    pz_buf_free(&out);
    g_free(img);
  }
  pz_buf_t out = {0};
  pz_err_t err = {0};
  CHECK_EQ_INT(strip((const uint8_t *)"%PDF-1.4", 8, "application/pdf", 6, &out, &err), 0);
  CHECK_EQ_INT(out.len, 0);
}

static void check_unreadable(const uint8_t *d, size_t len, const char *type, const char *what) {
  pz_buf_t out = {0};
  pz_err_t err = {0};
  int rc = strip(d, len, type, 6, &out, &err);
  if (rc != PZ_EMEDIA) fprintf(stderr, "%s: rc %d\n", what, rc);
  CHECK_EQ_INT(rc, PZ_EMEDIA);
  CHECK(rc != PZ_EMEDIA || strstr(err.msg, "structure") != NULL);
  CHECK(out.len == 0 && out.data == NULL);
}

static void test_broken_structures_are_refused(void) {
  size_t base_len;
  uint8_t *base = make_image(64, 48, "jpeg", &base_len);
  NEED(base != NULL);
  bytes_t jpeg = jpeg_with_metadata(base, base_len, 6);
  size_t sos_end = jpeg_header_end(jpeg.data, jpeg.len);
  NEED(sos_end > 0);
  /* Every cut before the scan's header ends. */
  for (size_t len = 0; len < sos_end; len++)
    check_unreadable(jpeg.data, len, "image/jpeg", "cut jpeg");
  /* A length running past the end, garbage between segments, no SOI. */
  uint8_t *bad = malloc(jpeg.len);
  memcpy(bad, jpeg.data, jpeg.len);
  put16be(bad + 22, 0xFFFF);
  check_unreadable(bad, 200, "image/jpeg", "long segment");
  memcpy(bad, jpeg.data, jpeg.len);
  bad[20] = 0x00;
  check_unreadable(bad, jpeg.len, "image/jpeg", "garbage");
  check_unreadable(jpeg.data + 2, jpeg.len - 2, "image/jpeg", "no SOI");
  free(bad);

  bytes_t png = {0};
  uint8_t *png_base = make_image(16, 16, "png", &base_len);
  NEED(png_base != NULL);
  png = png_with_metadata(png_base, base_len, 1);
  for (size_t len = 0; len < 8 + 25; len++)
    check_unreadable(png.data, len, "image/png", "cut png");
  check_unreadable(png.data, 8 + 25 + 40, "image/png", "cut chunk");
  bytes_t crit = {0};
  bytes_add(&crit, png_base, 33);
  png_chunk(&crit, "CgBI", "\0\0\0\0", 4);
  bytes_add(&crit, png_base + 33, base_len - 33);
  check_unreadable(crit.data, crit.len, "image/png", "unknown critical chunk");

  uint8_t *webp_base = make_image(16, 16, "webp", &base_len);
  NEED(webp_base != NULL);
  bytes_t webp = webp_with_metadata(webp_base, base_len, 16, 16);
  check_unreadable(webp.data, webp.len - 1, "image/webp", "riff past the end");
  check_unreadable(webp.data, 11, "image/webp", "no header");
  put32le(webp.data + 16, 4); /* VP8X too short for its flags */
  check_unreadable(webp.data, webp.len, "image/webp", "short vp8x");
  put32le(webp.data + 16, 0x7FFFFFF0);
  check_unreadable(webp.data, webp.len, "image/webp", "long chunk");

  free(jpeg.data), free(png.data), free(crit.data), free(webp.data);
  g_free(base), g_free(png_base), g_free(webp_base);
}

/* ---- GIF ---- */

static size_t gif_header_end(const uint8_t *d) { return 13 + ((d[10] & 0x80) ? (size_t)3 << ((d[10] & 7) + 1) : 0); }

/* An extension: introducer, label, the payload in sub-blocks of at most 255 bytes, the empty block. */
static void gif_extension(bytes_t *b, uint8_t label, const void *payload, size_t n) {
  uint8_t head[2] = {0x21, label};
  bytes_add(b, head, 2);
  const uint8_t *p = payload;
  while (n > 0) {
    uint8_t len = n > 255 ? 255 : (uint8_t)n;
    bytes_add(b, &len, 1);
    bytes_add(b, p, len);
    p += len, n -= len;
  }
  bytes_add(b, "", 1);
}

/* An application extension: its 11-byte name as the first sub-block, then data in sub-blocks. */
static void gif_application(bytes_t *b, const char *name, const char *data) {
  bytes_add(b, "\x21\xFF\x0B", 3);
  bytes_add(b, name, 11);
  size_t n = strlen(data);
  uint8_t len = (uint8_t)n;
  bytes_add(b, &len, 1);
  bytes_add(b, data, n);
  bytes_add(b, "", 1);
}

/* XMP as Adobe writes it into a GIF: the packet's raw bytes, then the
 * "magic trailer" (0x01, 0xFF down to 0x00, and the empty block) that
 * lets a reader walking sub-blocks from anywhere in the text land on the
 * end. */
static void gif_xmp(bytes_t *b, const char *xmp) {
  bytes_add(b, "\x21\xFF\x0BXMP DataXMP", 14);
  bytes_add(b, xmp, strlen(xmp));
  for (int v = 256; v >= 0; v--) {
    uint8_t x = (uint8_t)(v == 256 ? 1 : v);
    bytes_add(b, &x, 1);
  }
  bytes_add(b, "", 1);
}

static const char NETSCAPE_LOOP[] = "\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00";

static void test_gif_loses_comments_xmp_and_iptc(void) {
  size_t base_len;
  uint8_t *base = make_image(40, 30, "gif", &base_len);
  NEED(base != NULL);
  size_t head = gif_header_end(base);
  NEED(head < base_len);
  /* The loop count stays; a comment, XMP, Photoshop's IPTC and bytes
   * after the trailer go. */
  bytes_t in = {0};
  bytes_add(&in, base, head);
  bytes_add(&in, LIT(NETSCAPE_LOOP));
  gif_extension(&in, 0xFE, LIT("SecretCam, 51.5074 N 0.1278 W"));
  gif_xmp(&in, "<x:xmpmeta xmlns:x='adobe:ns:meta/'><exif:GPSLatitude>51,30.44N</exif:GPSLatitude></x:xmpmeta>");
  gif_application(&in, "MGK8BIM0000", "IPTC SecretCam owner");
  bytes_add(&in, base + head, base_len - head);
  bytes_add(&in, LIT("TRAILING SecretCam"));

  pz_buf_t out = {0};
  pz_err_t err = {0};
  CHECK_EQ_INT(strip(in.data, in.len, "image/gif", 6, &out, &err), 0);
  NEED(out.len == base_len + sizeof(NETSCAPE_LOOP) - 1);
  const uint8_t *o = (const uint8_t *)out.data;
  CHECK(memcmp(o, base, head) == 0);
  CHECK(memcmp(o + head, NETSCAPE_LOOP, sizeof(NETSCAPE_LOOP) - 1) == 0);
  CHECK(memcmp(o + head + sizeof(NETSCAPE_LOOP) - 1, base + head, base_len - head) == 0);
  CHECK(!contains(o, out.len, "SecretCam") && !contains(o, out.len, "GPS") && !contains(o, out.len, "XMP"));
  decoded_t before, after;
  NEED(decode(base, base_len, &before));
  NEED(decode(out.data, out.len, &after));
  CHECK(same_pixels(&before, &after));
  check_idempotent(&out, "image/gif", 6);

  /* Cut short inside the comment: kept up to where the comment began, as
   * a decoder would show it. */
  pz_buf_t cut = {0};
  size_t comment = head + sizeof(NETSCAPE_LOOP) - 1;
  CHECK_EQ_INT(strip(in.data, comment + 10, "image/gif", 1, &cut, &err), 0);
  CHECK_EQ_INT(cut.len, comment);
  CHECK(cut.len == comment && memcmp(cut.data, in.data, comment) == 0);
  /* Cut short inside the image: nothing to take out. */
  pz_buf_t short_image = {0};
  CHECK_EQ_INT(strip(base, base_len - 5, "image/gif", 1, &short_image, &err), 0);
  CHECK_EQ_INT(short_image.len, 0);

  /* What is no GIF block. */
  uint8_t *bad = malloc(base_len);
  memcpy(bad, base, base_len);
  bad[head] = 0x00;
  check_unreadable(bad, base_len, "image/gif", "gif garbage block");
  check_unreadable(base, 12, "image/gif", "gif header cut");
  check_unreadable((const uint8_t *)"GIF90a\x01\x00\x01\x00\x00\x00\x00;", 14, "image/gif", "gif version");
  free(bad);

  g_free(before.pixels), g_free(after.pixels);
  pz_buf_free(&cut);
  pz_buf_free(&out);
  free(in.data);
  g_free(base);
}

int main(void) {
  if (!media_start()) return 1;
  RUN(test_jpeg_loses_exif_xmp_iptc_and_comments);
  RUN(test_jpeg_loses_what_follows_the_image_and_what_sits_between_scans);
  RUN(test_jpeg_keeps_its_orientation_alone);
  RUN(test_probe_hands_over_the_stripped_photo);
  RUN(test_png_loses_its_text_and_exif);
  RUN(test_thumbnails_hold_no_metadata);
  RUN(test_webp_loses_exif_and_xmp);
  RUN(test_clean_files_are_kept_as_they_are);
  RUN(test_broken_structures_are_refused);
  RUN(test_gif_loses_comments_xmp_and_iptc);
  TEST_EXIT();
}
