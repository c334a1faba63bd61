/* The send log: records appended to a preallocated ring file and made durable by one fdatasync per batch. */
#include "store/sendlog.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "plaza/str.h"

#define MAGIC 0x4c535a50u /* "PZSL" read as a little-endian u32 */
#define MIN_SIZE (64u * 1024u)

struct pz__sendlog_s {
  int fd;
  uint32_t epoch; /* of the records this process appends */
  uint64_t size;
  pz__sendlog_pos_t end;
  bool recovered;
  uint8_t *buf; /* encoding and reading room */
  size_t cap;
};

/* ---- CRC-32C (Castagnoli) ----
 *
 * With SSE4.2's crc32 instruction where the CPU has it (eight bytes a
 * step), else table-driven, a byte at a time: the same function either
 * way. The table's loop was 12 % of the log thread's instructions. */

#if defined(__x86_64__)
#include <nmmintrin.h>
#define HAVE_CRC_HW 1
#endif

static uint32_t crc_table[256];
static bool crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    crc_table[i] = c;
  }
#ifdef HAVE_CRC_HW
  __builtin_cpu_init();
  crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#ifdef HAVE_CRC_HW
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const uint8_t *p, size_t len) {
  uint64_t c = crc;
  for (; len >= 8; p += 8, len -= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
  }
  crc = (uint32_t)c;
  while (len--)
    crc = _mm_crc32_u8(crc, *p++);
  return crc;
}
#endif

uint32_t pz__crc32c(uint32_t crc, const void *data, size_t len) {
  pthread_once(&crc_once, crc_init);
  const uint8_t *p = data;
  crc = ~crc;
#ifdef HAVE_CRC_HW
  if (crc_hw) return ~crc_sse42(crc, p, len);
#endif
  while (len--)
    crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

/* ---- records ---- */

static void put32(uint8_t *p, uint32_t v) { pz__le_put(p, v, 4); }
static void put64(uint8_t *p, uint64_t v) { pz__le_put(p, v, 8); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)pz__le_get(p, 4); }
static uint64_t get64(const uint8_t *p) { return pz__le_get(p, 8); }

static uint32_t rec_bytes(uint32_t len) { return (PZ__SENDLOG_HEADER + len + 7u) & ~7u; }

uint32_t pz__sendlog_encode(uint8_t *out, uint64_t lsn, uint32_t epoch, uint16_t type, const void *data, uint32_t len) {
  uint32_t n = rec_bytes(len);
  put32(out, MAGIC);
  put64(out + 8, lsn);
  put32(out + 16, len);
  out[20] = (uint8_t)type;
  out[21] = (uint8_t)(type >> 8);
  out[22] = out[23] = 0;
  put32(out + 24, epoch);
  put32(out + 28, 0);
  if (len) memcpy(out + PZ__SENDLOG_HEADER, data, len);
  memset(out + PZ__SENDLOG_HEADER + len, 0, n - PZ__SENDLOG_HEADER - len);
  put32(out + 4, pz__crc32c(0, out + 8, n - 8));
  return n;
}

int pz__sendlog_decode(const uint8_t *buf, size_t len, uint64_t lsn, pz__sendlog_view_t *out) {
  if (len < PZ__SENDLOG_HEADER || get32(buf) != MAGIC || get64(buf + 8) != lsn) return 0;
  uint32_t plen = get32(buf + 16);
  if (plen > PZ__SENDLOG_MAX_PAYLOAD || buf[22] || buf[23] || get32(buf + 28)) return 0;
  uint32_t n = rec_bytes(plen);
  if (n > len || pz__crc32c(0, buf + 8, n - 8) != get32(buf + 4)) return 0;
  uint16_t t = (uint16_t)(buf[20] | buf[21] << 8);
  if (t == PZ__SENDLOG_WRAP && plen != 0) return 0;
  out->type = t;
  out->epoch = get32(buf + 24);
  out->data = buf + PZ__SENDLOG_HEADER;
  out->len = plen;
  out->step = n;
  return 1;
}

/* ---- the file ---- */

static void grow(pz__sendlog_t *log, size_t need) {
  if (log->cap >= need) return;
  size_t cap = log->cap ? log->cap : 64 * 1024;
  while (cap < need)
    cap *= 2;
  pz_free(log->buf);
  log->buf = pz_malloc(cap);
  log->cap = cap;
}

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t off) {
  while (n) {
    ssize_t w = pwrite(fd, p, n, (off_t)off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
    off += (uint64_t)w;
  }
  return 0;
}

static int read_all(int fd, uint8_t *p, size_t n, uint64_t off) {
  while (n) {
    ssize_t r = pread(fd, p, n, (off_t)off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
    off += (uint64_t)r;
  }
  return 0;
}

static void sync_parent(const char *path) {
  char *copy = pz_malloc(strlen(path) + 1);
  strcpy(copy, path);
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  pz_free(copy);
}

/* Writes size bytes of zeros to path.tmp, syncs it, and renames it to
 * path: a crash half-way leaves only the .tmp, made again next time. */
static int create_file(const char *path, uint64_t size, pz_err_t *err) {
  size_t n = strlen(path) + sizeof(".tmp");
  char *tmp = pz_malloc(n);
  snprintf(tmp, n, "%s.tmp", path);
  int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int rc = 0;
  if (fd < 0) {
    rc = pz_err_set(err, PZ_EIO, NULL, "cannot create %s: %s", tmp, strerror(errno));
    goto out;
  }
  size_t chunk = 1u << 20;
  uint8_t *zeros = pz_calloc(1, chunk);
  for (uint64_t off = 0; off < size && rc == 0; off += chunk) {
    size_t w = size - off < chunk ? (size_t)(size - off) : chunk;
    if (write_all(fd, zeros, w, off) != 0) rc = -1;
  }
  pz_free(zeros);
  if (rc == 0 && fdatasync(fd) != 0) rc = -1;
  if (rc == 0 && rename(tmp, path) != 0) rc = -1;
  if (rc < 0) {
    rc = pz_err_set(err, PZ_EIO, NULL, "cannot create %s: %s", path, strerror(errno));
    unlink(tmp);
  } else {
    sync_parent(path);
  }
  close(fd);
out:
  pz_free(tmp);
  return rc;
}

int pz__sendlog_open(pz__sendlog_t **out, const char *path, uint64_t size, pz_err_t *err) {
  *out = NULL;
  struct stat sb;
  if (stat(path, &sb) != 0) {
    if (errno != ENOENT) return pz_err_set(err, PZ_EIO, NULL, "cannot read %s: %s", path, strerror(errno));
    if (size < MIN_SIZE || size % 8)
      return pz_err_set(err, PZ_EINVAL, NULL, "send log size %llu", (unsigned long long)size);
    int rc = create_file(path, size, err);
    if (rc < 0) return rc;
    if (stat(path, &sb) != 0) return pz_err_set(err, PZ_EIO, NULL, "cannot read %s: %s", path, strerror(errno));
  }
  if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size < MIN_SIZE || sb.st_size % 8)
    return pz_err_set(err, PZ_EIO, NULL, "%s is not a send log (size %lld)", path, (long long)sb.st_size);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return pz_err_set(err, PZ_EIO, NULL, "cannot open %s: %s", path, strerror(errno));
  pz__sendlog_t *log = pz_calloc(1, sizeof(*log));
  log->fd = fd;
  log->size = (uint64_t)sb.st_size;
  *out = log;
  return 0;
}

void pz__sendlog_close(pz__sendlog_t *log) {
  if (log == NULL) return;
  close(log->fd);
  pz_free(log->buf);
  pz_free(log);
}

uint64_t pz__sendlog_size(const pz__sendlog_t *log) { return log->size; }
void pz__sendlog_set_epoch(pz__sendlog_t *log, uint32_t epoch) { log->epoch = epoch; }
pz__sendlog_pos_t pz__sendlog_end(const pz__sendlog_t *log) { return log->end; }

int pz__sendlog_recover(pz__sendlog_t *log, pz__sendlog_pos_t start, pz__sendlog_cb cb, void *arg,
                        pz__sendlog_pos_t *end, pz_err_t *err) {
  pz__sendlog_pos_t at = start;
  if (at.off % 8 || at.off >= log->size || at.lsn == 0)
    return pz_err_set(err, PZ_EIO, NULL, "send log position %llu at %llu is outside the log",
                      (unsigned long long)at.lsn, (unsigned long long)at.off);
  /* Bytes walked: a chain longer than the ring is damage, not records. */
  uint64_t walked = 0;
  uint32_t epoch = 0;
  int rc = 0;
  uint8_t head[PZ__SENDLOG_HEADER];
  while (walked <= log->size) {
    if (at.off + PZ__SENDLOG_HEADER > log->size) {
      walked += log->size - at.off;
      at.off = 0;
      continue;
    }
    if (read_all(log->fd, head, sizeof(head), at.off) != 0) break;
    if (get32(head) != MAGIC || get64(head + 8) != at.lsn) break;
    uint32_t plen = get32(head + 16);
    if (plen > PZ__SENDLOG_MAX_PAYLOAD || at.off + rec_bytes(plen) > log->size) break;
    uint32_t n = rec_bytes(plen);
    grow(log, n);
    if (read_all(log->fd, log->buf, n, at.off) != 0) break;
    pz__sendlog_view_t v;
    /* A record older than the one before it lies behind the end of an
     * earlier run (its unanswered tail, cut by the crash): not the chain. */
    if (!pz__sendlog_decode(log->buf, n, at.lsn, &v) || v.epoch < epoch) break;
    epoch = v.epoch;
    if (v.type == PZ__SENDLOG_WRAP) {
      walked += log->size - at.off;
      at.off = 0;
      continue;
    }
    walked += v.step;
    pz__sendlog_pos_t next = {at.lsn + 1, at.off + v.step};
    if ((rc = cb(arg, at.lsn, v.type, v.data, v.len, next, err)) < 0) break;
    at = next;
  }
  /* An end so close to the end of the file that no header fits is the
   * start of the file for the next append. */
  if (at.off + PZ__SENDLOG_HEADER > log->size) at.off = 0;
  log->end = at;
  log->recovered = rc == 0;
  if (epoch >= log->epoch) log->epoch = epoch; /* never below what the chain holds */
  if (end) *end = at;
  return rc;
}

uint32_t pz__sendlog_max_epoch(pz__sendlog_t *log) {
  /* The file is read a chunk at a time, each with the next chunk's first
   * header behind it, so that a header across two chunks is seen; records
   * begin at multiples of 8, found by memmem at memory speed (it is every
   * start's read of the whole ring). */
  uint8_t magic[4];
  put32(magic, MAGIC); /* as the records' headers hold it */
  uint32_t top = 0;
  const size_t chunk = 1u << 20;
  uint8_t *buf = pz_malloc(chunk + PZ__SENDLOG_HEADER);
  for (uint64_t base = 0; base < log->size; base += chunk) {
    uint64_t left = log->size - base;
    size_t n = left < chunk + PZ__SENDLOG_HEADER ? (size_t)left : chunk + PZ__SENDLOG_HEADER;
    if (read_all(log->fd, buf, n, base) != 0) break;
    const uint8_t *p = buf;
    while ((p = memmem(p, n - (size_t)(p - buf), magic, sizeof(magic))) != NULL) {
      size_t o = (size_t)(p - buf);
      if (o >= chunk) break; /* the next chunk's */
      p++;
      if (o % 8 != 0 || o + PZ__SENDLOG_HEADER > n) continue;
      uint32_t plen = get32(buf + o + 16), epoch = get32(buf + o + 24);
      if (epoch <= top || plen > PZ__SENDLOG_MAX_PAYLOAD || base + o + rec_bytes(plen) > log->size) continue;
      /* A whole record (its own lsn, wherever it lies), not bytes that look like one. */
      grow(log, rec_bytes(plen));
      pz__sendlog_view_t v;
      if (read_all(log->fd, log->buf, rec_bytes(plen), base + o) == 0 &&
          pz__sendlog_decode(log->buf, rec_bytes(plen), get64(buf + o + 8), &v))
        top = v.epoch;
    }
  }
  pz_free(buf);
  return top;
}

/* Where the records would go: the append starts at off, and the records
 * from index split on (n: none) go at offset 0 after a wrap. *stop is the
 * offset after the last record. */
static void place(const pz__sendlog_t *log, const pz__sendlog_rec_t *recs, unsigned n, unsigned *split,
                  uint64_t *stop) {
  uint64_t o = log->end.off;
  *split = n;
  for (unsigned i = 0; i < n; i++) {
    uint32_t b = rec_bytes(recs[i].len);
    if (o + b > log->size) {
      *split = i;
      o = 0;
    }
    o += b;
  }
  *stop = o;
}

bool pz__sendlog_room(const pz__sendlog_t *log, uint64_t oldest, const pz__sendlog_rec_t *recs, unsigned n) {
  uint64_t total = 0;
  for (unsigned i = 0; i < n; i++) {
    if (recs[i].len > PZ__SENDLOG_MAX_PAYLOAD) return false;
    total += rec_bytes(recs[i].len);
  }
  if (total + PZ__SENDLOG_HEADER > log->size) return false;
  unsigned split;
  uint64_t stop;
  place(log, recs, n, &split, &stop);
  uint64_t at = log->end.off;
  if (oldest == PZ__SENDLOG_NONE) return split == n || stop <= at;
  if (oldest == at) return false; /* the wanted records fill the ring */
  if (oldest < at) return split == n || stop <= oldest;
  /* The wanted records wrap: the room is from at up to oldest. */
  return split == n && stop <= oldest;
}

int pz__sendlog_append(pz__sendlog_t *log, const pz__sendlog_rec_t *recs, unsigned n, pz__sendlog_pos_t *next,
                       pz_err_t *err) {
  if (!log->recovered) return pz_err_set(err, PZ_EIO, NULL, "the send log was not recovered");
  unsigned split;
  uint64_t stop;
  place(log, recs, n, &split, &stop);
  size_t total = PZ__SENDLOG_HEADER;
  for (unsigned i = 0; i < n; i++)
    total += rec_bytes(recs[i].len);
  grow(log, total);
  uint64_t lsn = log->end.lsn, at = log->end.off;
  size_t a = 0; /* bytes of the part written at `at` */
  for (unsigned i = 0; i < split; i++)
    a += pz__sendlog_encode(log->buf + a, lsn + i, log->epoch, recs[i].type, recs[i].data, recs[i].len);
  if (split < n && at + a + PZ__SENDLOG_HEADER <= log->size)
    a += pz__sendlog_encode(log->buf + a, lsn + split, log->epoch, PZ__SENDLOG_WRAP, NULL, 0);
  size_t b = a;
  for (unsigned i = split; i < n; i++)
    b += pz__sendlog_encode(log->buf + b, lsn + i, log->epoch, recs[i].type, recs[i].data, recs[i].len);
  if ((a && write_all(log->fd, log->buf, a, at) != 0) || (b > a && write_all(log->fd, log->buf + a, b - a, 0) != 0) ||
      fdatasync(log->fd) != 0)
    return pz_err_set(err, PZ_EIO, NULL, "cannot write the send log: %s", strerror(errno));
  log->end.lsn = lsn + n;
  log->end.off = stop + PZ__SENDLOG_HEADER > log->size ? 0 : stop;
  if (next) {
    uint64_t o = at;
    for (unsigned i = 0; i < n; i++) {
      if (i == split) o = 0;
      o += rec_bytes(recs[i].len);
      next[i] = i + 1 == n ? log->end : (pz__sendlog_pos_t){lsn + i + 1, i + 1 == split ? 0 : o};
    }
  }
  return 0;
}
