/* Input rules of messaging: message text, client ids and group titles. */
#include "plaza/chat.h"

/* Valid UTF-8 of 1..max code points with something visible; line breaks
 * and tabs are allowed only where allow_breaks (message text). */
static int text_check(pz_str_t s, const char *field, size_t max, bool allow_breaks, pz_err_t *err) {
  /* Bytes first: no scan of a string that cannot fit. */
  if (s.len > max * 4) return pz_err_set(err, PZ_EINVAL, NULL, "%s must be 1 to %zu characters", field, max);
  /* Plain ASCII with nothing to refuse, nearly every message: one pass
   * without decoding. Anything else takes the full path below. */
  const unsigned char *a = (const unsigned char *)s.ptr;
  size_t i = 0;
  bool seen = false;
  for (; i < s.len && a[i] >= 0x20 && a[i] < 0x7F; i++)
    seen |= a[i] != ' ';
  if (i == s.len && s.len > 0 && s.len <= max) {
    if (!seen) return pz_err_set(err, PZ_EINVAL, NULL, "%s must not be only white space", field);
    return 0;
  }
  if (!pz_utf8_valid(s.ptr, s.len)) return pz_err_set(err, PZ_EUTF8, NULL, "%s is not valid UTF-8", field);
  size_t n = 0;
  bool visible = false;
  const unsigned char *p = (const unsigned char *)s.ptr, *end = p + s.len;
  while (p < end) {
    unsigned cp = pz_utf8_next(&p);
    bool brk = cp == 0x09 || cp == 0x0A || cp == 0x0D;
    if (pz_cp_is_control(cp) && !(allow_breaks && brk))
      return pz_err_set(err, PZ_EINVAL, NULL, "%s must not contain control characters", field);
    if (!pz_cp_is_space(cp)) visible = true;
    n++;
  }
  if (n < 1 || n > max) return pz_err_set(err, PZ_EINVAL, NULL, "%s must be 1 to %zu characters", field, max);
  if (!visible) return pz_err_set(err, PZ_EINVAL, NULL, "%s must not be only white space", field);
  return 0;
}

int pz_chat_text_check(pz_str_t text, pz_err_t *err) {
  return text_check(text, "text", PZ_CHAT_TEXT_MAX_CHARS, true, err);
}

int pz_chat_title_check(pz_str_t title, pz_err_t *err) {
  return text_check(title, "title", PZ_CHAT_TITLE_MAX_CHARS, false, err);
}

int pz_chat_client_id_check(pz_str_t id, pz_err_t *err) {
  if (id.len < 1 || id.len > PZ_CHAT_CLIENT_ID_MAX) goto bad;
  for (size_t i = 0; i < id.len; i++)
    if ((unsigned char)id.ptr[i] < 0x20 || (unsigned char)id.ptr[i] > 0x7E) goto bad;
  return 0;
bad:
  return pz_err_set(err, PZ_EINVAL, NULL, "client_id must be 1 to %d characters of printable ASCII",
                    PZ_CHAT_CLIENT_ID_MAX);
}
