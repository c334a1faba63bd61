/* Attachment rules: the allowed types, file names and captions, and who may read an upload. */
#include <strings.h>
#include "plaza/chat_upload.h"

/* ---- types ---- */

static const struct {
  const char *mime, *ext;
  int kind;
} allowed[] = {
    {"image/jpeg", "jpg", PZ_UPLOAD_IMAGE},     {"image/png", "png", PZ_UPLOAD_IMAGE},
    {"image/gif", "gif", PZ_UPLOAD_IMAGE},      {"image/webp", "webp", PZ_UPLOAD_IMAGE},
    {"application/pdf", "pdf", PZ_UPLOAD_FILE}, {"text/plain", "txt", PZ_UPLOAD_FILE},
    {"application/zip", "zip", PZ_UPLOAD_FILE},
};
#define N_ALLOWED (sizeof(allowed) / sizeof(allowed[0]))

/* Names that browsers and operating systems give to the allowed types. */
static const struct {
  const char *alias, *mime;
} aliases[] = {
    {"image/jpg", "image/jpeg"},
    {"image/pjpeg", "image/jpeg"},
    {"application/x-zip-compressed", "application/zip"},
    {"application/x-zip", "application/zip"},
};

int pz_chat_upload_kind(pz_str_t mime) {
  for (size_t i = 0; i < N_ALLOWED; i++)
    if (pz_str_eq_c(mime, allowed[i].mime)) return allowed[i].kind;
  return PZ_UPLOAD_NONE;
}

const char *pz_chat_upload_declared(pz_str_t ct) {
  /* The essence: what comes before parameters such as "; charset=utf-8",
   * without the white space around it. */
  size_t n = 0;
  while (n < ct.len && ct.ptr[n] != ';')
    n++;
  size_t b = 0;
  while (b < n && (ct.ptr[b] == ' ' || ct.ptr[b] == '\t'))
    b++;
  while (n > b && (ct.ptr[n - 1] == ' ' || ct.ptr[n - 1] == '\t'))
    n--;
  pz_str_t essence = pz_str_n(ct.ptr + b, n - b);
  for (size_t i = 0; i < N_ALLOWED; i++)
    if (pz_str_ieq(essence, pz_str(allowed[i].mime))) return allowed[i].mime;
  for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
    if (pz_str_ieq(essence, pz_str(aliases[i].alias))) return aliases[i].mime;
  return NULL;
}

const char *pz_chat_upload_ext(const char *mime) {
  for (size_t i = 0; i < N_ALLOWED; i++)
    if (strcmp(mime, allowed[i].mime) == 0) return allowed[i].ext;
  return "bin";
}

/* ---- names and captions ---- */

/* Bidirectional overrides and isolates turn "photo\u202Egpj.exe" into what
 * reads as "photoexe.jpg": a name never needs them. */
static bool is_bidi_control(unsigned cp) { return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069); }

int pz_chat_upload_name_check(pz_str_t name, pz_err_t *err) {
  if (name.len < 1 || name.len > PZ_UPLOAD_NAME_MAX)
    return pz_err_set(err, PZ_EINVAL, NULL, "name must be 1 to %d bytes", PZ_UPLOAD_NAME_MAX);
  if (!pz_utf8_valid(name.ptr, name.len)) return pz_err_set(err, PZ_EUTF8, NULL, "name is not valid UTF-8");
  if (pz_str_eq_c(name, ".") || pz_str_eq_c(name, ".."))
    return pz_err_set(err, PZ_EINVAL, NULL, "name must be a file name");
  const unsigned char *p = (const unsigned char *)name.ptr, *end = p + name.len;
  while (p < end) {
    unsigned cp = pz_utf8_next(&p);
    if (cp == '/' || cp == '\\') return pz_err_set(err, PZ_EINVAL, NULL, "name must not contain a slash");
    if (pz_cp_is_control(cp) || is_bidi_control(cp))
      return pz_err_set(err, PZ_EINVAL, NULL, "name must not contain control characters");
  }
  return 0;
}

int pz_chat_caption_check(pz_str_t caption, pz_err_t *err) {
  if (caption.len > (size_t)PZ_UPLOAD_CAPTION_MAX_CHARS * 4) goto too_long;
  if (!pz_utf8_valid(caption.ptr, caption.len)) return pz_err_set(err, PZ_EUTF8, NULL, "caption is not valid UTF-8");
  size_t n = 0;
  bool visible = false;
  const unsigned char *p = (const unsigned char *)caption.ptr, *end = p + caption.len;
  while (p < end) {
    unsigned cp = pz_utf8_next(&p);
    bool brk = cp == '\t' || cp == '\n' || cp == '\r';
    if (pz_cp_is_control(cp) && !brk) return pz_err_set(err, PZ_EINVAL, NULL, "caption must not contain control characters");
    if (cp != ' ' && !brk && cp != 0xA0 && cp != 0x3000) visible = true;
    n++;
  }
  if (n < 1 || n > PZ_UPLOAD_CAPTION_MAX_CHARS) goto too_long;
  if (!visible) return pz_err_set(err, PZ_EINVAL, NULL, "caption must not be only white space");
  return 0;
too_long:
  return pz_err_set(err, PZ_EINVAL, NULL, "caption must be 1 to %d characters", PZ_UPLOAD_CAPTION_MAX_CHARS);
}

/* ---- access ---- */

int pz_chat_upload_access(pz_db_t *db, int64_t user_id, int64_t id, pz_upload_rec_t *out, pz_err_t *err) {
  int rc = pz_store_upload_get(db, id, out, err);
  if (rc == PZ_ENOTFOUND) goto not_found;
  if (rc < 0 || out->user_id == user_id) return rc;
  bool shared = false;
  if ((rc = pz_store_upload_shared(db, id, user_id, &shared, err)) < 0) return rc;
  if (shared) return 0;
not_found:
  return pz_err_set(err, PZ_ENOTFOUND, NULL, "no such upload");
}

int pz_chat_upload_link(pz_db_t *db, int64_t upload_id, int64_t conv_id, int64_t message_id, pz_err_t *err) {
  return pz_store_upload_link(db, upload_id, conv_id, message_id, err);
}
