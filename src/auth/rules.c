/* Input rules of accounts: usernames, passwords, profile text, search prefixes, device labels, address keys. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include "plaza/auth.h"

static bool username_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

int pz_auth_username_norm(pz_str_t in, char out[PZ_USERNAME_MAX + 1], pz_err_t *err) {
  if (in.len < PZ_USERNAME_MIN || in.len > PZ_USERNAME_MAX) goto bad;
  for (size_t i = 0; i < in.len; i++) {
    if (!username_char((unsigned char)in.ptr[i])) goto bad;
    out[i] = lower(in.ptr[i]);
  }
  out[in.len] = '\0';
  return 0;
bad:
  out[0] = '\0';
  return pz_err_set(err, PZ_EINVAL, NULL, "username must be %d to %d characters of a-z, 0-9 and _",
                    PZ_USERNAME_MIN, PZ_USERNAME_MAX);
}

/* Checks free text: valid UTF-8, min..max code points, no controls, and
 * (when need_visible) something other than spaces. */
static int text_check(pz_str_t s, const char *field, size_t min, size_t max, bool need_visible, pz_err_t *err) {
  if (!pz_utf8_valid(s.ptr, s.len)) return pz_err_set(err, PZ_EUTF8, NULL, "%s is not valid UTF-8", field);
  size_t n = 0;
  bool visible = false;
  const unsigned char *p = (const unsigned char *)s.ptr, *end = p + s.len;
  while (p < end) {
    unsigned cp = pz_utf8_next(&p);
    if (pz_cp_is_control(cp))
      return pz_err_set(err, PZ_EINVAL, NULL, "%s must not contain control characters", field);
    if (!pz_cp_is_space(cp)) visible = true;
    n++;
  }
  if (n < min || n > max) {
    if (min > 0)
      return pz_err_set(err, PZ_EINVAL, NULL, "%s must be %zu to %zu characters", field, min, max);
    return pz_err_set(err, PZ_EINVAL, NULL, "%s must be at most %zu characters", field, max);
  }
  if (need_visible && !visible)
    return pz_err_set(err, PZ_EINVAL, NULL, "%s must not be only spaces", field);
  return 0;
}

int pz_auth_password_check(pz_str_t pw, pz_err_t *err) {
  /* The byte cap bounds the Argon2 input; it is checked first so that no
   * work is spent on a huge string. */
  if (pw.len > PZ_PASSWORD_MAX_BYTES)
    return pz_err_set(err, PZ_EINVAL, NULL, "password must be at most %d bytes", PZ_PASSWORD_MAX_BYTES);
  if (!pz_utf8_valid(pw.ptr, pw.len)) return pz_err_set(err, PZ_EUTF8, NULL, "password is not valid UTF-8");
  if (pz_utf8_count(pw.ptr, pw.len) < PZ_PASSWORD_MIN_CHARS)
    return pz_err_set(err, PZ_EINVAL, NULL, "password must be at least %d characters", PZ_PASSWORD_MIN_CHARS);
  return 0;
}

int pz_auth_display_name_check(pz_str_t s, pz_err_t *err) {
  return text_check(s, "display_name", 1, PZ_DISPLAY_NAME_MAX_CHARS, true, err);
}

int pz_auth_bio_check(pz_str_t s, pz_err_t *err) { return text_check(s, "bio", 0, PZ_BIO_MAX_CHARS, false, err); }

int pz_auth_greeting_check(pz_str_t s, pz_err_t *err) {
  return text_check(s, "greeting", 0, PZ_GREETING_MAX_CHARS, false, err);
}

bool pz_auth_search_prefix(pz_str_t q, char out[PZ_USERNAME_MAX + 1], size_t *out_len) {
  *out_len = 0;
  out[0] = '\0';
  if (q.len > PZ_USERNAME_MAX) return false;
  for (size_t i = 0; i < q.len; i++) {
    if (!username_char((unsigned char)q.ptr[i])) return false;
    out[i] = lower(q.ptr[i]);
  }
  out[q.len] = '\0';
  *out_len = q.len;
  return true;
}

void pz_auth_device_label(pz_str_t user_agent, char out[PZ_DEVICE_MAX_BYTES + 1]) {
  size_t n = user_agent.len < PZ_DEVICE_MAX_BYTES ? user_agent.len : PZ_DEVICE_MAX_BYTES;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)user_agent.ptr[i];
    out[i] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
  }
  out[n] = '\0';
  if (n == 0) snprintf(out, PZ_DEVICE_MAX_BYTES + 1, "unknown");
}

void pz_auth_addr_key(const char *addr, char out[PZ_IP_MAX_BYTES + 1]) {
  unsigned char a6[16];
  if (inet_pton(AF_INET6, addr, a6) == 1) {
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a6, v4mapped, sizeof(v4mapped)) == 0) {
      inet_ntop(AF_INET, a6 + 12, out, PZ_IP_MAX_BYTES + 1);
      return;
    }
    memset(a6 + 8, 0, 8);
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, a6, buf, sizeof(buf));
    /* With the low 64 bits zero the text is at most "xxxx:xxxx:xxxx:xxxx::". */
    snprintf(out, PZ_IP_MAX_BYTES + 1, "%.40s/64", buf);
    return;
  }
  snprintf(out, PZ_IP_MAX_BYTES + 1, "%s", addr);
}

int pz_auth_bearer(pz_str_t h, pz_str_t *token) {
  static const char scheme[] = "bearer ";
  const size_t n = sizeof(scheme) - 1;
  *token = PZ_STR_NULL;
  if (h.len <= n || !pz_str_ieq(pz_str_n(h.ptr, n), pz_str_n(scheme, n))) return PZ_EUNAUTH;
  const char *p = h.ptr + n, *end = h.ptr + h.len;
  while (p < end && *p == ' ') p++;
  while (end > p && end[-1] == ' ') end--;
  if (p == end) return PZ_EUNAUTH;
  *token = pz_str_n(p, (size_t)(end - p));
  return 0;
}
