/* Upload contents: the type from the bytes (libmagic) and the size and thumbnail of images (libvips), off the loop. */
#include <magic.h>
#include <uv.h>
#include <vips/vips.h>
#include "plaza/chat_upload.h"
#include "plaza/log.h"

/* ---- libmagic: a handle is used by one thread at a time ----
 * A magic_t is not thread-safe and costs a load of the database, so idle
 * handles wait in a small pool for the next thread that needs one. */

#define MAGIC_POOL 16

static uv_once_t magic_once = UV_ONCE_INIT;
static uv_mutex_t magic_lock;
static magic_t magic_idle[MAGIC_POOL];
static unsigned n_magic_idle;

static void magic_init(void) { PZ_ASSERT(uv_mutex_init(&magic_lock) == 0); }

static magic_t magic_take(pz_err_t *err) {
  uv_once(&magic_once, magic_init);
  magic_t m = NULL;
  uv_mutex_lock(&magic_lock);
  if (n_magic_idle > 0) m = magic_idle[--n_magic_idle];
  uv_mutex_unlock(&magic_lock);
  if (m) return m;
  /* MAGIC_NO_CHECK_COMPRESS: a gzip is what it is, not what it holds. */
  m = magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS | MAGIC_ERROR);
  if (m == NULL || magic_load(m, NULL) != 0) {
    pz_err_set(err, PZ_EIO, NULL, "cannot load the file type database: %s", m ? magic_error(m) : "out of memory");
    if (m) magic_close(m);
    return NULL;
  }
  return m;
}

static void magic_give(magic_t m) {
  uv_mutex_lock(&magic_lock);
  if (n_magic_idle < MAGIC_POOL) {
    magic_idle[n_magic_idle++] = m;
    m = NULL;
  }
  uv_mutex_unlock(&magic_lock);
  if (m) magic_close(m);
}

/* ---- libvips ---- */

static uv_once_t vips_once = UV_ONCE_INIT;
static int vips_rc;
static char vips_msg[160];

/* libvips warns on stderr about damaged input, which is the uploader's
 * business: those lines go to the log at debug level. */
static void on_vips_log(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data) {
  PZ_LOG(PZ_LOG_DEBUG, NULL, "libvips", "message=%s", message);
}

static void vips_start(void) {
  if (VIPS_INIT("plazad") != 0) {
    vips_rc = PZ_EIO;
    snprintf(vips_msg, sizeof(vips_msg), "libvips failed to start: %s", vips_error_buffer());
    vips_error_clear();
    return;
  }
  /* Each upload is one job of the thread pool already: more threads per
   * image would only fight over the same cores. Nothing is decoded twice,
   * so a cache of operations only holds memory. */
  vips_concurrency_set(1);
  vips_cache_set_max(0);
  vips_cache_set_max_mem(0);
  g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO, on_vips_log, NULL);
}

int pz_media_init(pz_err_t *err) {
  uv_once(&vips_once, vips_start);
  return vips_rc < 0 ? pz_err_set(err, vips_rc, NULL, "%s", vips_msg) : 0;
}

/* libvips errors go to a global buffer: clear it, it is not ours to show. */
static int not_decodable(pz_err_t *err) {
  vips_error_clear();
  return pz_err_set(err, PZ_EMEDIA, NULL, "the image cannot be decoded");
}

static int probe_image(const void *data, size_t len, pz_media_t *out, pz_err_t *err) {
  VipsImage *img = NULL, *thumb = NULL;
  int rc = 0;
  /* The header alone gives the size: refuse a pixel bomb before decoding. */
  img = vips_image_new_from_buffer(data, len, "", "access", VIPS_ACCESS_SEQUENTIAL, NULL);
  if (img == NULL) {
    rc = not_decodable(err);
    goto out;
  }
  int w = vips_image_get_width(img), h = vips_image_get_height(img);
  if (w <= 0 || h <= 0) {
    rc = not_decodable(err);
    goto out;
  }
  if ((uint64_t)w * (uint64_t)h > PZ_UPLOAD_MAX_PIXELS) {
    rc = pz_err_set(err, PZ_EUNPROCESSABLE, "image_too_large", "the image has more than %d megapixels",
                    PZ_UPLOAD_MAX_PIXELS / (1024 * 1024));
    goto out;
  }
  /* The size as shown: a photo taken upright is stored sideways with an
   * EXIF orientation, which the thumbnail applies too. */
  bool swap = vips_image_get_orientation_swap(img);
  out->width = swap ? h : w;
  out->height = swap ? w : h;
  /* Down only: a small image is its own thumbnail's size. A truncated
   * file fails rather than showing grey where its pixels are missing. */
  if (vips_thumbnail_buffer((void *)data, len, &thumb, PZ_UPLOAD_THUMB_PX, "height", PZ_UPLOAD_THUMB_PX, "size",
                            VIPS_SIZE_DOWN, "option_string", "fail_on=truncated", NULL) != 0) {
    rc = not_decodable(err);
    goto out;
  }
  /* The pipeline runs here, where a decoding error is the image's fault;
   * the encoder below then reads pixels from memory only. */
  VipsImage *pixels = vips_image_copy_memory(thumb);
  g_object_unref(thumb);
  thumb = pixels;
  if (thumb == NULL) {
    rc = not_decodable(err);
    goto out;
  }
  /* JPEG for opaque images; WebP keeps transparency. Metadata (EXIF with
   * its GPS position) stays out of the thumbnail. */
  bool alpha = vips_image_hasalpha(thumb);
  int vrc = alpha ? vips_webpsave_buffer(thumb, &out->thumb, &out->thumb_len, "Q", 80, "strip", TRUE, NULL)
                  : vips_jpegsave_buffer(thumb, &out->thumb, &out->thumb_len, "Q", 80, "strip", TRUE, NULL);
  if (vrc != 0) {
    vips_error_clear();
    rc = pz_err_set(err, PZ_EIO, NULL, "the thumbnail cannot be made");
    goto out;
  }
  out->thumb_type = alpha ? "image/webp" : "image/jpeg";
  /* libvips 8.14 writes the EXIF into a WebP whatever "strip" says
   * (libvips issue 3340), so the thumbnail's bytes are stripped here too.
   * It is upright already: nothing is added, and it only shrinks. */
  pz_buf_t clean = {0};
  if (pz_media_strip(out->thumb, out->thumb_len, out->thumb_type, 1, &clean, NULL) < 0) {
    rc = pz_err_set(err, PZ_EIO, NULL, "the thumbnail cannot be made");
    goto out;
  }
  PZ_ASSERT(clean.len <= out->thumb_len);
  if (clean.len > 0) {
    memcpy(out->thumb, clean.data, clean.len);
    out->thumb_len = clean.len;
  }
  pz_buf_free(&clean);
  /* Every member of the conversation downloads the original: it goes
   * without its metadata, and keeps the orientation libvips read so that
   * it shows as the size above says. */
  rc = pz_media_strip(data, len, out->content_type, vips_image_get_orientation(img), &out->stripped, err);
out:
  if (thumb) g_object_unref(thumb);
  if (img) g_object_unref(img);
  return rc;
}

int pz_media_probe(const void *data, size_t len, const char *declared, pz_media_t *out, pz_err_t *err) {
  memset(out, 0, sizeof(*out));
  if (len == 0) return pz_err_set(err, PZ_EINVAL, NULL, "the upload is empty");
  magic_t m = magic_take(err);
  if (m == NULL) return PZ_EIO;
  const char *found = magic_buffer(m, data, len);
  /* found belongs to m: compare it before m goes back to the pool. */
  pz_str_t type = pz_str(found ? found : "");
  int kind = pz_chat_upload_kind(type);
  const char *detected = NULL;
  if (kind != PZ_UPLOAD_NONE) detected = declared && strcmp(declared, found) == 0 ? declared : NULL;
  char seen[64];
  snprintf(seen, sizeof(seen), "%s", found ? found : "unknown");
  magic_give(m);
  if (kind == PZ_UPLOAD_NONE) return pz_err_set(err, PZ_EMEDIA, NULL, "files of type %s cannot be uploaded", seen);
  if (detected == NULL) return pz_err_set(err, PZ_EMEDIA, NULL, "the content is %s, not what Content-Type says", seen);
  out->content_type = detected;
  out->kind = kind;
  /* Text is shown as UTF-8: other encodings would turn to mojibake. */
  if (strcmp(detected, "text/plain") == 0 && !pz_utf8_valid(data, len))
    return pz_err_set(err, PZ_EMEDIA, NULL, "text files must be UTF-8");
  if (kind != PZ_UPLOAD_IMAGE) return 0;
  int rc = pz_media_init(err);
  if (rc == 0) rc = probe_image(data, len, out, err);
  if (rc < 0) pz_media_release(out);
  return rc;
}

void pz_media_release(pz_media_t *m) {
  if (m->thumb) g_free(m->thumb);
  m->thumb = NULL;
  m->thumb_len = 0;
  pz_buf_free(&m->stripped);
}
