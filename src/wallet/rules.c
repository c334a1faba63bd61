/* Wallet input rules, the currency list, the PIN's keyed hash, request fingerprints and the PIN secret file. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "plaza/log.h"
#include "plaza/wallet.h"

/* ---- configuration ---- */

int pz_wallet_currencies_parse(const char *list, pz_wallet_currencies_t *out, pz_err_t *err) {
  memset(out, 0, sizeof(*out));
  const char *p = list ? list : "";
  for (;;) {
    while (*p == ' ')
      p++;
    const char *start = p;
    while (*p && *p != ',' && *p != ' ')
      p++;
    size_t len = (size_t)(p - start);
    while (*p == ' ')
      p++;
    if (len != PZ_WALLET_CURRENCY_LEN || start[0] < 'A' || start[0] > 'Z' || start[1] < 'A' || start[1] > 'Z' ||
        start[2] < 'A' || start[2] > 'Z')
      return pz_err_set(err, PZ_EINVAL, NULL,
                        "currencies must be ISO 4217 codes (three capital letters) "
                        "separated by commas, like USD,EUR");
    for (unsigned i = 0; i < out->n; i++)
      if (memcmp(out->codes[i], start, PZ_WALLET_CURRENCY_LEN) == 0)
        return pz_err_set(err, PZ_EINVAL, NULL, "currency %.3s is listed twice", start);
    if (out->n == PZ_WALLET_CURRENCIES_MAX)
      return pz_err_set(err, PZ_EINVAL, NULL, "at most %d currencies", PZ_WALLET_CURRENCIES_MAX);
    memcpy(out->codes[out->n++], start, PZ_WALLET_CURRENCY_LEN);
    if (*p == '\0') return 0;
    if (*p != ',') return pz_err_set(err, PZ_EINVAL, NULL, "currencies are separated by commas");
    p++;
  }
}

/* Makes path with mode 0600 and random content. O_EXCL: should two
 * processes start at once, one secret wins and the other reads it. */
static int secret_create(const char *path, uint8_t out[PZ_WALLET_SECRET_LEN], pz_err_t *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return 1; /* made meanwhile: read it */
    return pz_err_set(err, PZ_EIO, NULL, "cannot create the PIN secret %s: %s", path, strerror(errno));
  }
  randombytes_buf(out, PZ_WALLET_SECRET_LEN);
  int rc = 0;
  ssize_t n = write(fd, out, PZ_WALLET_SECRET_LEN);
  if (n != PZ_WALLET_SECRET_LEN || fsync(fd) != 0) {
    rc = pz_err_set(err, PZ_EIO, NULL, "cannot write the PIN secret %s: %s", path,
                    n < 0 ? strerror(errno) : "short write");
    unlink(path);
  }
  close(fd);
  if (rc < 0) return rc;
  /* The new name must survive a power cut, or every PIN set under this
   * secret would stop matching after it. */
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s", path);
  int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  PZ_LOG(PZ_LOG_INFO, NULL, "created the PIN secret", "path=%s", path);
  return 0;
}

int pz_wallet_secret_load(const char *path, bool create, uint8_t out[PZ_WALLET_SECRET_LEN], pz_err_t *err) {
  int rc = 0, fd = -1;
  for (int attempt = 0; attempt < 2; attempt++) {
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT || !create) break;
    if ((rc = secret_create(path, out, err)) <= 0) return rc;
  }
  if (fd < 0) return pz_err_set(err, PZ_EIO, NULL, "cannot open the PIN secret %s: %s", path, strerror(errno));
  struct stat sb;
  uint8_t extra;
  if (fstat(fd, &sb) != 0 || read(fd, out, PZ_WALLET_SECRET_LEN) != PZ_WALLET_SECRET_LEN || read(fd, &extra, 1) != 0) {
    sodium_memzero(out, PZ_WALLET_SECRET_LEN);
    rc = pz_err_set(err, PZ_EIO, NULL, "the PIN secret %s must hold exactly %d bytes", path, PZ_WALLET_SECRET_LEN);
    goto out;
  }
  if (sb.st_mode & 077)
    PZ_LOG(PZ_LOG_WARN, NULL, "the PIN secret is readable by other users: chmod 600 it", "path=%s", path);
out:
  close(fd);
  return rc;
}

/* ---- input rules ---- */

int pz_wallet_amount_check(int64_t amount, pz_err_t *err) {
  if (amount < 1 || amount > PZ_WALLET_AMOUNT_MAX)
    return pz_err_set(err, PZ_EINVAL, NULL, "amount must be a whole number of minor units from 1 to %lld",
                      (long long)PZ_WALLET_AMOUNT_MAX);
  return 0;
}

int pz_wallet_currency_check(const pz_wallet_currencies_t *cur, pz_str_t code, char out[PZ_WALLET_CURRENCY_LEN + 1],
                             pz_err_t *err) {
  if (code.len == PZ_WALLET_CURRENCY_LEN)
    for (unsigned i = 0; i < cur->n; i++)
      if (memcmp(cur->codes[i], code.ptr, PZ_WALLET_CURRENCY_LEN) == 0) {
        memcpy(out, cur->codes[i], PZ_WALLET_CURRENCY_LEN + 1);
        return 0;
      }
  return pz_err_set(err, PZ_EINVAL, "unknown_currency", "currency is not one this server accepts");
}

int pz_wallet_pin_check(pz_str_t pin, pz_err_t *err) {
  bool ok = pin.len == PZ_WALLET_PIN_LEN;
  for (size_t i = 0; ok && i < pin.len; i++)
    ok = pin.ptr[i] >= '0' && pin.ptr[i] <= '9';
  return ok ? 0 : pz_err_set(err, PZ_EINVAL, NULL, "pin must be %d digits, as a string", PZ_WALLET_PIN_LEN);
}

int pz_wallet_key_check(pz_str_t key, pz_err_t *err) {
  bool ok = key.len >= 1 && key.len <= PZ_WALLET_KEY_MAX;
  for (size_t i = 0; ok && i < key.len; i++)
    ok = key.ptr[i] >= 0x20 && key.ptr[i] <= 0x7e;
  return ok ? 0
            : pz_err_set(err, PZ_EINVAL, NULL, "idempotency_key must be 1 to %d characters of printable ASCII",
                         PZ_WALLET_KEY_MAX);
}

int pz_wallet_note_check(pz_str_t note, pz_err_t *err) {
  if (!pz_utf8_valid(note.ptr, note.len)) return pz_err_set(err, PZ_EUTF8, NULL, "note is not valid UTF-8");
  if (pz_utf8_count(note.ptr, note.len) > PZ_WALLET_NOTE_MAX_CHARS)
    return pz_err_set(err, PZ_EINVAL, NULL, "note is longer than %d characters", PZ_WALLET_NOTE_MAX_CHARS);
  for (size_t i = 0; i < note.len; i++) {
    unsigned char c = (unsigned char)note.ptr[i];
    /* C0 controls and DEL; C1 controls are U+0080-U+009F, 0xC2 0x80-0x9F in UTF-8. */
    if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < note.len && (unsigned char)note.ptr[i + 1] < 0xa0))
      return pz_err_set(err, PZ_EINVAL, NULL, "note must not contain control characters");
  }
  return 0;
}

/* ---- hashes ---- */

static void put_i64(uint8_t out[8], int64_t v) {
  for (int i = 0; i < 8; i++)
    out[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
}

void pz_wallet_pin_hash(const uint8_t secret[PZ_WALLET_SECRET_LEN], int64_t user_id, pz_str_t pin,
                        uint8_t out[PZ_WALLET_PIN_HASH_LEN]) {
  crypto_generichash_state h;
  uint8_t uid[8];
  put_i64(uid, user_id);
  crypto_generichash_init(&h, secret, PZ_WALLET_SECRET_LEN, PZ_WALLET_PIN_HASH_LEN);
  crypto_generichash_update(&h, uid, sizeof(uid));
  crypto_generichash_update(&h, (const uint8_t *)pin.ptr, pin.len);
  crypto_generichash_final(&h, out, PZ_WALLET_PIN_HASH_LEN);
  sodium_memzero(&h, sizeof(h));
}

void pz_wallet_fp_init(pz_wallet_fp_t *fp, const char *op) {
  memset(fp, 0, sizeof(*fp));
  pz_wallet_fp_str(fp, pz_str(op));
}

void pz_wallet_fp_str(pz_wallet_fp_t *fp, pz_str_t s) {
  uint8_t len[8];
  put_i64(len, (int64_t)s.len);
  pz_buf_append(&fp->buf, len, sizeof(len));
  pz_buf_append(&fp->buf, s.ptr, s.len);
}

void pz_wallet_fp_int(pz_wallet_fp_t *fp, int64_t v) {
  uint8_t b[8];
  put_i64(b, v);
  pz_buf_append(&fp->buf, b, sizeof(b));
}

void pz_wallet_fp_final(pz_wallet_fp_t *fp, uint8_t out[PZ_WALLET_FP_LEN]) {
  crypto_generichash(out, PZ_WALLET_FP_LEN, (const uint8_t *)fp->buf.data, fp->buf.len, NULL, 0);
  pz_buf_free(&fp->buf);
}
