/* Image metadata taken out of an upload without re-encoding it: EXIF (with its GPS position), XMP, IPTC and comments
 * go, the pixels, the colour profile and the orientation stay. JPEG, PNG, WebP and GIF. */
#include "plaza/chat_upload.h"

static int unreadable(pz_err_t *err) {
  return pz_err_set(err, PZ_EMEDIA, NULL, "the image's structure cannot be read");
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* ---- the copy ----
 * Kept bytes are copied as ranges of the input, and only from the first
 * change on: an image without metadata costs one walk over its structure
 * and no copy. */

typedef struct {
  const uint8_t *data;
  size_t len;
  size_t from; /* data[from..) is not in out yet */
  bool changed;
  pz_buf_t *out;
} copy_t;

/* At the first change the output gets room for all of it at once: a
 * photo of megabytes is not copied over and over as it grows. */
static void change(copy_t *c) {
  if (!c->changed) pz_buf_reserve(c->out, c->len + PZ_MEDIA_STRIP_MAX_GROWTH);
  c->changed = true;
}

/* Leaves data[a..b) out; a >= c->from. */
static void cut(copy_t *c, size_t a, size_t b) {
  change(c);
  pz_buf_append(c->out, c->data + c->from, a - c->from);
  c->from = b;
}

/* Puts n new bytes before data[at]; at >= c->from. */
static void insert(copy_t *c, size_t at, const void *bytes, size_t n) {
  change(c);
  pz_buf_append(c->out, c->data + c->from, at - c->from);
  pz_buf_append(c->out, bytes, n);
  c->from = at;
}

static void finish(copy_t *c) {
  if (c->changed) pz_buf_append(c->out, c->data + c->from, c->len - c->from);
}

/* ---- the orientation ----
 * Dropping the EXIF drops the orientation with it, and a phone photo,
 * stored sideways with orientation 6, would then show sideways. What goes
 * back is a TIFF structure with one tag and nothing else: little-endian
 * header, IFD0 at offset 8 holding Orientation (0x0112, SHORT, 1 value),
 * no next IFD. */

#define TIFF_LEN 26

static bool orientation_kept(int orientation) { return orientation >= 2 && orientation <= 8; }

static void orientation_tiff(uint8_t t[TIFF_LEN], int orientation) {
  static const uint8_t head[18] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0};
  memset(t, 0, TIFF_LEN);
  memcpy(t, head, sizeof(head));
  t[18] = (uint8_t)orientation;
}

/* ---- JPEG ----
 * Segments from SOI to EOI. Each SOS is followed by entropy-coded data,
 * copied as it is up to the next marker: a progressive image has several
 * scans, with tables (and sometimes comments) between them. Whatever comes
 * after EOI goes: phones append secondary images there (a depth map, an
 * HDR gain map, a preview, listed by an MPF index in APP2), each a JPEG
 * with an EXIF of its own. */

#define JPEG_APP1_LEN (4 + 6 + TIFF_LEN)

static void jpeg_app1(uint8_t seg[JPEG_APP1_LEN], int orientation) {
  static const uint8_t head[10] = {0xFF, 0xE1, 0, JPEG_APP1_LEN - 2, 'E', 'x', 'i', 'f', 0, 0};
  memcpy(seg, head, sizeof(head));
  orientation_tiff(seg + sizeof(head), orientation);
}

/* Whether an APPn or COM segment (payload p[0..n)) carries metadata rather
 * than what decoding needs. JFIF (APP0), the ICC profile (APP2) and
 * Adobe's colour transform (APP14) are needed; APP1 is EXIF and XMP, APP13
 * IPTC, the others maker notes and the like. Other APP2 segments go too:
 * the MPF index would point at the secondary images cut after EOI, and
 * FlashPix data holds a second set of properties. An APP0 other than JFIF
 * is dropped: JFXX holds a thumbnail of the original, which shows what a
 * crop took away. */
static bool jpeg_metadata(uint8_t marker, const uint8_t *p, size_t n) {
  if (marker == 0xFE) return true;
  if (marker < 0xE0 || marker > 0xEF) return false;
  if (marker == 0xE0) return !(n >= 5 && memcmp(p, "JFIF", 5) == 0);
  if (marker == 0xE2) return !(n >= 12 && memcmp(p, "ICC_PROFILE", 12) == 0);
  return marker != 0xEE;
}

/* Where the entropy-coded data that starts at d[pos] ends: at the next
 * marker, or len when the file ends first. In it, 0xFF is followed by 0x00
 * (a stuffed byte) or a restart marker; 0xFF may also pad before a marker. */
static size_t jpeg_scan_end(const uint8_t *d, size_t pos, size_t len) {
  while (pos < len) {
    const uint8_t *ff = memchr(d + pos, 0xFF, len - pos);
    if (ff == NULL || (size_t)(ff - d) + 1 >= len) return len;
    pos = (size_t)(ff - d);
    uint8_t b = d[pos + 1];
    if (b == 0x00 || (b >= 0xD0 && b <= 0xD7))
      pos += 2;
    else if (b == 0xFF)
      pos++;
    else
      return pos;
  }
  return len;
}

static int strip_jpeg(copy_t *c, size_t len, int orientation, pz_err_t *err) {
  const uint8_t *d = c->data;
  uint8_t app1[JPEG_APP1_LEN];
  jpeg_app1(app1, orientation);
  /* The new APP1 goes after SOI and the APP0 segments that follow it,
   * where JFIF wants its APP0 and readers look for EXIF. */
  bool placed = !orientation_kept(orientation);
  if (len < 2 || d[0] != 0xFF || d[1] != 0xD8) return unreadable(err);
  size_t pos = 2;
  for (;;) {
    size_t start = pos;
    if (pos >= len || d[pos] != 0xFF) return unreadable(err);
    /* Any number of 0xFF may pad the space before a marker. */
    while (pos < len && d[pos] == 0xFF)
      pos++;
    if (pos >= len) return unreadable(err);
    uint8_t marker = d[pos++];
    if (marker == 0x00 || marker == 0xD8) return unreadable(err);
    if (!placed && marker != 0xE0) {
      placed = true;
      /* Already ours (an upload of a stripped photo): left as it is. */
      if (len - start >= sizeof(app1) && memcmp(d + start, app1, sizeof(app1)) == 0) {
        pos = start + sizeof(app1);
        continue;
      }
      insert(c, start, app1, sizeof(app1));
    }
    /* TEM and RSTn stand alone, without a length. */
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;
    if (marker == 0xD9) {
      if (pos < len) cut(c, pos, len);
      break;
    }
    if (len - pos < 2) return unreadable(err);
    size_t seg_len = (size_t)d[pos] << 8 | d[pos + 1];
    if (seg_len < 2 || seg_len > len - pos) return unreadable(err);
    const uint8_t *payload = d + pos + 2;
    pos += seg_len;
    if (marker == 0xDA) {
      /* A file that ends inside a scan (libvips decoded it, so the scan
       * is whole) is kept to its end. */
      if ((pos = jpeg_scan_end(d, pos, len)) >= len) break;
      continue;
    }
    if (jpeg_metadata(marker, payload, seg_len - 2)) cut(c, start, pos);
  }
  finish(c);
  return 0;
}

/* ---- PNG ----
 * Chunks are copied whole, with their CRCs. */

#define PNG_EXIF_LEN (12 + TIFF_LEN)

static uint32_t crc32_png(const uint8_t *p, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
  }
  return crc ^ 0xFFFFFFFFu;
}

static void png_exif(uint8_t chunk[PNG_EXIF_LEN], int orientation) {
  static const uint8_t head[8] = {0, 0, 0, TIFF_LEN, 'e', 'X', 'I', 'f'};
  memcpy(chunk, head, sizeof(head));
  orientation_tiff(chunk + 8, orientation);
  uint32_t crc = crc32_png(chunk + 4, 4 + TIFF_LEN);
  uint8_t *p = chunk + 8 + TIFF_LEN;
  p[0] = (uint8_t)(crc >> 24), p[1] = (uint8_t)(crc >> 16), p[2] = (uint8_t)(crc >> 8), p[3] = (uint8_t)crc;
}

/* The chunks that decoding or colour need, APNG's included; cICP, mDCv
 * and cLLi describe the colour of HDR images. Every other ancillary chunk
 * goes: eXIf, the text chunks, tIME, and the ones nobody knows. */
static bool png_needed(const uint8_t *type) {
  static const char keep[][5] = {"IHDR", "PLTE", "IDAT", "IEND", "tRNS", "gAMA", "cHRM", "sRGB", "iCCP", "sBIT",
                                 "pHYs", "bKGD", "hIST", "acTL", "fcTL", "fdAT", "cICP", "mDCv", "cLLi"};
  for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
    if (memcmp(type, keep[i], 4) == 0) return true;
  return false;
}

static bool ascii_letter(uint8_t b) { return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z'); }

static int strip_png(copy_t *c, size_t len, int orientation, pz_err_t *err) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  const uint8_t *d = c->data;
  uint8_t exif[PNG_EXIF_LEN];
  png_exif(exif, orientation);
  /* The new eXIf goes right after IHDR: before IDAT, as it must. */
  bool placed = !orientation_kept(orientation);
  if (len < sizeof(sig) + 12 || memcmp(d, sig, sizeof(sig)) != 0) return unreadable(err);
  size_t pos = sizeof(sig);
  /* A file may end without IEND: decoders do not need it once the image
   * data is there. */
  while (pos < len) {
    if (len - pos < 12) return unreadable(err);
    uint32_t n = be32(d + pos);
    if (n > 0x7FFFFFFFu || n > len - pos - 12) return unreadable(err);
    const uint8_t *type = d + pos + 4;
    for (int i = 0; i < 4; i++)
      if (!ascii_letter(type[i])) return unreadable(err);
    /* IHDR first, as decoders require: without it there is no image. */
    if (pos == sizeof(sig) && memcmp(type, "IHDR", 4) != 0) return unreadable(err);
    size_t end = pos + 12 + n;
    if (!placed && memcmp(type, "IHDR", 4) != 0) {
      placed = true;
      if (len - pos >= sizeof(exif) && memcmp(d + pos, exif, sizeof(exif)) == 0) {
        pos += sizeof(exif);
        continue;
      }
      insert(c, pos, exif, sizeof(exif));
    }
    if (memcmp(type, "IEND", 4) == 0) {
      /* Bytes after IEND are no part of the image, whatever they hold. */
      if (end < len) cut(c, end, len);
      break;
    }
    if (!png_needed(type)) {
      /* A critical chunk (upper-case first letter) that no decoder knows
       * makes them all refuse the image, so there is no image to keep;
       * copying it would pass on bytes of unknown meaning. */
      if (type[0] >= 'A' && type[0] <= 'Z') return unreadable(err);
      cut(c, pos, end);
    }
    pos = end;
  }
  finish(c);
  return 0;
}

/* ---- WebP ----
 * A RIFF container: chunks of FourCC, little-endian size and payload, each
 * padded to an even length. EXIF and XMP need the extended format, whose
 * VP8X chunk comes first and flags them. */

#define WEBP_EXIF_LEN (8 + TIFF_LEN)
#define VP8X_FLAG_EXIF 0x08
#define VP8X_FLAG_XMP 0x04

static int strip_webp(copy_t *c, size_t len, int orientation, pz_err_t *err) {
  const uint8_t *d = c->data;
  if (len < 12 || memcmp(d, "RIFF", 4) != 0 || memcmp(d + 8, "WEBP", 4) != 0) return unreadable(err);
  uint32_t riff_size = le32(d + 4);
  if (riff_size < 4 || riff_size > len - 8) return unreadable(err);
  size_t end = 8 + (size_t)riff_size;
  bool vp8x = end - 12 >= 8 && memcmp(d + 12, "VP8X", 4) == 0;
  /* Without VP8X a reader looks for no EXIF: there is no orientation to keep. */
  bool want = vp8x && orientation_kept(orientation);
  uint8_t exif[WEBP_EXIF_LEN] = {'E', 'X', 'I', 'F', TIFF_LEN, 0, 0, 0};
  orientation_tiff(exif + 8, orientation);
  bool has_ours = false, unpadded = false;
  size_t pos = 12;
  while (pos < end) {
    if (end - pos < 8) return unreadable(err);
    uint32_t n = le32(d + pos + 4);
    if (n > end - pos - 8) return unreadable(err);
    size_t next = pos + 8 + n;
    /* The last chunk may lack its padding byte, as some encoders write
     * it: nothing follows that needs the alignment. */
    bool pad_missing = (n & 1) && next == end;
    if ((n & 1) && next < end) next++;
    if (pos == 12 && vp8x && n < 10) return unreadable(err);
    /* VP8X anywhere else is no VP8X a decoder reads; it would become one
     * once what comes before it were taken out. */
    if (pos > 12 && memcmp(d + pos, "VP8X", 4) == 0) return unreadable(err);
    if (memcmp(d + pos, "EXIF", 4) == 0 || memcmp(d + pos, "XMP ", 4) == 0) {
      /* Ours, last in the file, from an earlier pass: left as it is. */
      if (want && next == end && n == TIFF_LEN && memcmp(d + pos, exif, sizeof(exif)) == 0)
        has_ours = true;
      else
        cut(c, pos, next);
    } else {
      unpadded = pad_missing;
    }
    pos = next;
  }
  /* The new EXIF goes last, where the format puts metadata. */
  if (want && !has_ours) {
    if (unpadded) insert(c, end, "", 1);
    insert(c, end, exif, sizeof(exif));
  }
  if (end < len) cut(c, end, len);
  uint8_t flags = 0;
  if (vp8x) {
    flags = (uint8_t)((d[20] & ~(VP8X_FLAG_EXIF | VP8X_FLAG_XMP)) | (want ? VP8X_FLAG_EXIF : 0));
    if (flags != d[20]) change(c);
  }
  finish(c);
  if (!c->changed) return 0;
  /* VP8X is first and nothing before it changes: it is where it was. */
  if (vp8x) c->out->data[20] = (char)flags;
  size_t size = c->out->len - 8;
  if (size > UINT32_MAX) return unreadable(err);
  for (int i = 0; i < 4; i++)
    c->out->data[4 + i] = (char)(size >> (8 * i));
  return 0;
}

/* ---- GIF ----
 * A header, the screen descriptor with an optional global colour table,
 * then blocks: images (0x2C), extensions (0x21) and the trailer (0x3B).
 * Images and extensions both end in a chain of sub-blocks (a length
 * byte, then that many bytes) closed by an empty one. Metadata sits in
 * extensions: comments (0xFE) and application blocks such as XMP ("XMP
 * DataXMP", whose raw text a magic trailer makes walkable as sub-blocks)
 * or Photoshop's IPTC. What animation and colour need stays: graphic
 * control (0xF9), plain text (0x01), and the applications NETSCAPE2.0 and
 * ANIMEXTS1.0 (the loop count) and ICCRGBG1012 (the colour profile). A
 * file cut short is kept as far as it goes, as decoders show it. */

/* Where the chain of sub-blocks from d[pos] ends (past its empty block),
 * or len when it runs past the end. */
static size_t gif_blocks_end(const uint8_t *d, size_t pos, size_t len) {
  while (pos < len) {
    size_t n = d[pos];
    if (n == 0) return pos + 1;
    if (n >= len - pos) return len;
    pos += 1 + n;
  }
  return len;
}

/* An application extension's first sub-block (at d[pos]) names it. */
static bool gif_app_kept(const uint8_t *d, size_t pos, size_t len) {
  if (pos >= len || d[pos] != 11 || len - pos - 1 < 11) return false;
  const uint8_t *name = d + pos + 1;
  return memcmp(name, "NETSCAPE2.0", 11) == 0 || memcmp(name, "ANIMEXTS1.0", 11) == 0 ||
         memcmp(name, "ICCRGBG1012", 11) == 0;
}

static size_t gif_table(uint8_t flags) { return (flags & 0x80) ? (size_t)3 << ((flags & 7) + 1) : 0; }

static int strip_gif(copy_t *c, size_t len, pz_err_t *err) {
  const uint8_t *d = c->data;
  if (len < 13 || (memcmp(d, "GIF87a", 6) != 0 && memcmp(d, "GIF89a", 6) != 0)) return unreadable(err);
  size_t pos = 13 + gif_table(d[10]);
  if (pos > len) return unreadable(err);
  while (pos < len) {
    if (d[pos] == 0x3B) { /* the trailer: what follows is no part of the image */
      if (pos + 1 < len) cut(c, pos + 1, len);
      break;
    }
    if (d[pos] == 0x2C) {
      /* The descriptor, a local colour table, the LZW code size, the data. */
      if (len - pos < 10) break;
      size_t at = pos + 10 + gif_table(d[pos + 9]);
      if (at >= len) break;
      pos = gif_blocks_end(d, at + 1, len);
    } else if (d[pos] == 0x21) {
      if (len - pos < 2) break;
      uint8_t label = d[pos + 1];
      size_t next = gif_blocks_end(d, pos + 2, len);
      if (label != 0xF9 && label != 0x01 && !(label == 0xFF && gif_app_kept(d, pos + 2, len))) cut(c, pos, next);
      pos = next;
    } else {
      return unreadable(err);
    }
  }
  finish(c);
  return 0;
}

/* ---- the choice ---- */

int pz_media_strip(const uint8_t *data, size_t len, const char *content_type, int orientation, pz_buf_t *out,
                   pz_err_t *err) {
  PZ_ASSERT(out->len == 0);
  copy_t c = {.data = data, .len = len, .out = out};
  int rc = 0;
  if (content_type == NULL) return 0;
  if (strcmp(content_type, "image/jpeg") == 0)
    rc = strip_jpeg(&c, len, orientation, err);
  else if (strcmp(content_type, "image/png") == 0)
    rc = strip_png(&c, len, orientation, err);
  else if (strcmp(content_type, "image/webp") == 0)
    rc = strip_webp(&c, len, orientation, err);
  else if (strcmp(content_type, "image/gif") == 0)
    rc = strip_gif(&c, len, err); /* no EXIF, so no orientation to keep */
  if (rc < 0) pz_buf_free(out);
  return rc;
}
