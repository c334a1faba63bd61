/* Tests of the send log: records come back in order after a reopen, the ring wraps without losing a wanted record,
 * and a torn or stale record ends the chain; a transfer's record decodes to what was encoded, and nothing shorter
 * decodes. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "store/db.h"
#include "store/sendlog.h"
#include "test.h"

#define LOG_SIZE (64u * 1024u)

typedef struct {
  uint64_t lsn[4096];
  uint32_t len[4096];
  uint8_t first[4096]; /* each payload is len bytes of one value */
  pz__sendlog_pos_t next[4096];
  unsigned n;
} seen_t;

static int collect(void *arg, uint64_t lsn, uint16_t type, const void *data, uint32_t len, pz__sendlog_pos_t next,
                   pz_err_t *err) {
  (void)err;
  seen_t *s = arg;
  if (s->n == 4096 || type != 7) return -1;
  const uint8_t *p = data;
  for (uint32_t i = 1; i < len; i++)
    if (p[i] != p[0]) return -1;
  s->lsn[s->n] = lsn;
  s->len[s->n] = len;
  s->first[s->n] = len ? p[0] : 0;
  s->next[s->n] = next;
  s->n++;
  return 0;
}

static char *log_path(const char *name) {
  char *dir = pz_test_tmpdir(name);
  char *path = malloc(strlen(dir) + 16);
  sprintf(path, "%s/sendlog", dir);
  free(dir);
  return path;
}

/* Opens path and follows the chain from start into *seen. */
static pz__sendlog_t *reopen(const char *path, pz__sendlog_pos_t start, seen_t *seen) {
  pz__sendlog_t *log = NULL;
  pz_err_t err = {0};
  if (pz__sendlog_open(&log, path, LOG_SIZE, &err) != 0) return NULL;
  memset(seen, 0, sizeof(*seen));
  if (pz__sendlog_recover(log, start, collect, seen, NULL, &err) != 0) {
    pz__sendlog_close(log);
    return NULL;
  }
  return log;
}

static void test_new_log_and_reopen(void) {
  char *path = log_path("sendlog-new");
  seen_t *seen = calloc(1, sizeof(*seen));
  pz__sendlog_t *log = reopen(path, (pz__sendlog_pos_t){1, 0}, seen);
  NEED(log != NULL);
  CHECK_EQ_INT(seen->n, 0);
  CHECK_EQ_INT(pz__sendlog_size(log), LOG_SIZE);
  CHECK_EQ_INT(pz__sendlog_end(log).lsn, 1);

  uint8_t a[100], b[3000], c[1];
  memset(a, 'a', sizeof(a));
  memset(b, 'b', sizeof(b));
  memset(c, 'c', sizeof(c));
  pz__sendlog_rec_t recs[] = {{7, a, sizeof(a)}, {7, b, sizeof(b)}, {7, c, sizeof(c)}, {7, NULL, 0}};
  pz__sendlog_pos_t next[4];
  pz_err_t err = {0};
  CHECK(pz__sendlog_room(log, PZ__SENDLOG_NONE, recs, 4));
  NEED(pz__sendlog_append(log, recs, 4, next, &err) == 0);
  CHECK_EQ_INT(pz__sendlog_end(log).lsn, 5);
  CHECK_EQ_INT(next[3].lsn, 5);
  CHECK_EQ_INT(next[3].off, pz__sendlog_end(log).off);
  pz__sendlog_close(log);

  /* Everything from the start, then only what follows the first record. */
  log = reopen(path, (pz__sendlog_pos_t){1, 0}, seen);
  NEED(log != NULL);
  NEED(seen->n == 4);
  CHECK_EQ_INT(seen->lsn[0], 1);
  CHECK_EQ_INT(seen->len[1], 3000);
  CHECK_EQ_INT(seen->first[1], 'b');
  CHECK_EQ_INT(seen->first[2], 'c');
  CHECK_EQ_INT(seen->len[3], 0);
  CHECK_EQ_INT(seen->next[0].off, next[0].off);
  CHECK_EQ_INT(pz__sendlog_end(log).off, next[3].off);
  pz__sendlog_close(log);
  log = reopen(path, next[0], seen);
  NEED(log != NULL);
  CHECK_EQ_INT(seen->n, 3);
  CHECK_EQ_INT(seen->lsn[0], 2);
  pz__sendlog_close(log);
  /* A position outside the file is refused, not followed. */
  pz__sendlog_t *bad = NULL;
  NEED(pz__sendlog_open(&bad, path, LOG_SIZE, &err) == 0);
  CHECK(pz__sendlog_recover(bad, (pz__sendlog_pos_t){1, LOG_SIZE}, collect, seen, NULL, &err) == PZ_EIO);
  CHECK(pz__sendlog_append(bad, recs, 1, NULL, &err) == PZ_EIO); /* not recovered */
  pz__sendlog_close(bad);
  free(seen);
  free(path);
}

/* Laps around the ring with records applied as they come, then with some
 * left wanted: room refuses what would overwrite them, and a reopen from
 * the oldest wanted record gives exactly the wanted ones. */
static void test_wrap(void) {
  char *path = log_path("sendlog-wrap");
  seen_t *seen = calloc(1, sizeof(*seen));
  pz__sendlog_t *log = reopen(path, (pz__sendlog_pos_t){1, 0}, seen);
  NEED(log != NULL);
  pz_err_t err = {0};
  uint8_t buf[7000];
  pz__sendlog_pos_t applied = {1, 0}, next[3];
  unsigned value = 0;
  for (int round = 0; round < 40; round++) {
    /* Lengths that do not divide the ring, so the wrap lands anywhere. */
    pz__sendlog_rec_t recs[3];
    uint8_t *parts[3] = {buf, buf + 2000, buf + 4500};
    uint32_t lens[3] = {1999 - (uint32_t)round * 13, 2500, 2500 - (uint32_t)round * 7};
    for (int i = 0; i < 3; i++) {
      memset(parts[i], (int)(value + (unsigned)i) & 0xff, lens[i]);
      recs[i] = (pz__sendlog_rec_t){7, parts[i], lens[i]};
    }
    NEED(pz__sendlog_room(log, PZ__SENDLOG_NONE, recs, 3));
    NEED(pz__sendlog_append(log, recs, 3, next, &err) == 0);
    value += 3;
    applied = next[2];
  }
  /* Now keep records wanted: the ring fills up to them and no further. */
  pz__sendlog_pos_t oldest = applied;
  unsigned wanted = 0;
  memset(buf, 0x5a, 6000);
  pz__sendlog_rec_t big = {7, buf, 6000};
  while (pz__sendlog_room(log, wanted ? oldest.off : PZ__SENDLOG_NONE, &big, 1)) {
    NEED(pz__sendlog_append(log, &big, 1, next, &err) == 0);
    wanted++;
    NEED(wanted < 100);
  }
  CHECK(wanted >= 9 && wanted <= 11); /* 64 KiB of 6 KiB records */
  pz__sendlog_pos_t end = pz__sendlog_end(log);
  pz__sendlog_close(log);
  log = reopen(path, oldest, seen);
  NEED(log != NULL);
  CHECK_EQ_INT(seen->n, wanted);
  CHECK_EQ_INT(seen->lsn[0], oldest.lsn);
  CHECK_EQ_INT(seen->first[wanted - 1], 0x5a);
  CHECK_EQ_INT(pz__sendlog_end(log).lsn, end.lsn);
  CHECK_EQ_INT(pz__sendlog_end(log).off, end.off);
  /* Once the first is applied, the room it leaves is usable again. */
  CHECK(pz__sendlog_room(log, seen->next[0].off, &big, 1));
  pz__sendlog_close(log);
  free(seen);
  free(path);
}

/* A record torn by a crash (here: a byte of it changed) ends the chain;
 * the next append writes over it and the chain goes on from there. */
static void test_torn_record(void) {
  char *path = log_path("sendlog-torn");
  seen_t *seen = calloc(1, sizeof(*seen));
  pz__sendlog_t *log = reopen(path, (pz__sendlog_pos_t){1, 0}, seen);
  NEED(log != NULL);
  pz_err_t err = {0};
  uint8_t x[500];
  memset(x, 'x', sizeof(x));
  pz__sendlog_rec_t recs[] = {{7, x, 500}, {7, x, 500}, {7, x, 500}};
  pz__sendlog_pos_t next[3];
  NEED(pz__sendlog_append(log, recs, 3, next, &err) == 0);
  pz__sendlog_close(log);

  int fd = open(path, O_RDWR);
  NEED(fd >= 0);
  uint8_t flip = 'y';
  CHECK(pwrite(fd, &flip, 1, (off_t)(next[0].off + 100)) == 1); /* inside the second record's payload */
  close(fd);
  log = reopen(path, (pz__sendlog_pos_t){1, 0}, seen);
  NEED(log != NULL);
  CHECK_EQ_INT(seen->n, 1);
  CHECK_EQ_INT(pz__sendlog_end(log).lsn, 2);
  CHECK_EQ_INT(pz__sendlog_end(log).off, next[0].off);
  uint8_t z[10];
  memset(z, 'z', sizeof(z));
  pz__sendlog_rec_t again = {7, z, 10};
  NEED(pz__sendlog_append(log, &again, 1, NULL, &err) == 0);
  pz__sendlog_close(log);
  /* The third record of the old append is behind the new end: its lsn (3)
   * is the next one wanted, but it does not lie where the chain goes on. */
  log = reopen(path, (pz__sendlog_pos_t){1, 0}, seen);
  NEED(log != NULL);
  CHECK_EQ_INT(seen->n, 2);
  CHECK_EQ_INT(seen->first[1], 'z');
  CHECK_EQ_INT(pz__sendlog_end(log).lsn, 3);
  pz__sendlog_close(log);
  free(seen);
  free(path);
}

static void test_decode(void) {
  uint8_t buf[64];
  uint32_t n = pz__sendlog_encode(buf, 42, 3, 7, "hello", 5);
  CHECK_EQ_INT(n, 40);
  pz__sendlog_view_t v;
  CHECK(pz__sendlog_decode(buf, n, 42, &v) == 1);
  CHECK(v.type == 7 && v.epoch == 3 && v.len == 5 && v.step == 40 && memcmp(v.data, "hello", 5) == 0);
  CHECK(pz__sendlog_decode(buf, n, 41, &v) == 0); /* another lap's record */
  CHECK(pz__sendlog_decode(buf, n - 1, 42, &v) == 0);
  buf[38] ^= 1; /* padding is covered by the CRC too */
  CHECK(pz__sendlog_decode(buf, n, 42, &v) == 0);
  /* CRC-32C of "123456789" is e3069283 (RFC 3720's check value). */
  CHECK_EQ_INT(pz__crc32c(0, "123456789", 9), 0xe3069283u);
  /* Against a bit-at-a-time reference, at every length and alignment the
   * eight-byte steps of the hardware path meet, and chained. */
  uint8_t data[80];
  for (unsigned i = 0; i < sizeof(data); i++)
    data[i] = (uint8_t)(i * 131 + 7);
  for (unsigned off = 0; off < 8; off++)
    for (unsigned len = 0; off + len <= sizeof(data); len++) {
      uint32_t c = ~0u;
      for (unsigned i = off; i < off + len; i++) {
        c ^= data[i];
        for (int k = 0; k < 8; k++)
          c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      }
      if (pz__crc32c(0, data + off, len) != ~c) {
        CHECK_EQ_INT(pz__crc32c(0, data + off, len), ~c);
        return;
      }
      CHECK_EQ_INT(pz__crc32c(pz__crc32c(0, data + off, len / 2), data + off + len / 2, len - len / 2), ~c);
    }
}

/* A crash cut a batch: its first record torn, the next two whole. The
 * next run writes a record of the same size over the torn one and crashes
 * too: the chain is that record, not the whole records of the earlier run
 * behind it, whose lsns follow on but whose epoch is lower. */
static void test_stale_tail_after_restart(void) {
  char *path = log_path("sendlog-epoch");
  seen_t *seen = calloc(1, sizeof(*seen));
  pz__sendlog_t *log = reopen(path, (pz__sendlog_pos_t){1, 0}, seen);
  NEED(log != NULL);
  pz__sendlog_set_epoch(log, 1);
  pz_err_t err = {0};
  uint8_t p[300];
  memset(p, 'p', sizeof(p));
  pz__sendlog_rec_t first = {7, p, 300};
  pz__sendlog_pos_t next[3];
  NEED(pz__sendlog_append(log, &first, 1, next, &err) == 0);
  pz__sendlog_set_epoch(log, 2);
  pz__sendlog_rec_t batch[] = {{7, p, 300}, {7, p, 300}, {7, p, 300}};
  NEED(pz__sendlog_append(log, batch, 3, next, &err) == 0);
  pz__sendlog_close(log);
  int fd = open(path, O_RDWR);
  NEED(fd >= 0);
  uint8_t flip = 'q';
  CHECK(pwrite(fd, &flip, 1, 340 + 100) == 1); /* the batch's first record starts at 336 */
  close(fd);

  log = reopen(path, (pz__sendlog_pos_t){1, 0}, seen);
  NEED(log != NULL);
  CHECK_EQ_INT(seen->n, 1);
  /* The chain holds epoch 1 only; the whole records behind its end, 2. */
  CHECK_EQ_INT(pz__sendlog_max_epoch(log), 2);
  pz__sendlog_set_epoch(log, 3);
  uint8_t r[300];
  memset(r, 'r', sizeof(r));
  pz__sendlog_rec_t again = {7, r, 300};
  NEED(pz__sendlog_append(log, &again, 1, NULL, &err) == 0);
  pz__sendlog_close(log);

  log = reopen(path, (pz__sendlog_pos_t){1, 0}, seen);
  NEED(log != NULL);
  CHECK_EQ_INT(seen->n, 2);
  CHECK_EQ_INT(seen->first[1], 'r');
  CHECK_EQ_INT(pz__sendlog_end(log).lsn, 3);
  /* Every whole record counts, the crashed batch's tail behind the end too. */
  CHECK_EQ_INT(pz__sendlog_max_epoch(log), 3);
  pz__sendlog_close(log);
  free(seen);
  free(path);
}

/* A record whose header lies across two of the scan's 1 MiB reads still
 * counts: a new epoch must be above every epoch in the file. */
static void test_max_epoch_across_reads(void) {
  char *path = log_path("sendlog-epoch");
  const uint64_t size = 2u << 20;
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  NEED(fd >= 0 && ftruncate(fd, (off_t)size) == 0);
  uint8_t rec[64], payload[16];
  memset(payload, 'e', sizeof(payload));
  uint32_t n = pz__sendlog_encode(rec, 5, 9, 7, payload, sizeof(payload));
  NEED(n <= sizeof(rec));
  NEED(pwrite(fd, rec, n, (off_t)((1u << 20) - 8)) == (ssize_t)n);
  /* And one of a lower epoch inside the first read, found as before. */
  n = pz__sendlog_encode(rec, 2, 4, 7, payload, sizeof(payload));
  NEED(pwrite(fd, rec, n, 4096) == (ssize_t)n);
  close(fd);
  pz__sendlog_t *log = NULL;
  pz_err_t err = {0};
  NEED(pz__sendlog_open(&log, path, size, &err) == 0);
  CHECK_EQ_INT(pz__sendlog_max_epoch(log), 9);
  pz__sendlog_close(log);
  free(path);
}

static void test_transfer_record(void) {
  pz_wallet_transfer_log_t l = {.txn_id = 77, .from_account = 5, .to_account = 6, .day = 20717, .seqs = {3, 9}};
  l.t = (pz_wallet_transfer_rec_t){.id = 101,
                                   .from_id = 11,
                                   .to_id = 12,
                                   .amount = 2350,
                                   .status = PZ_TRANSFER_COMPLETED,
                                   .created_at = 1790000000000,
                                   .updated_at = 1790000000000,
                                   .expires_at = 1790086400000};
  strcpy(l.t.currency, "EUR");
  strcpy(l.t.note, "lunch \xe2\x9c\x93");
  strcpy(l.t.idem_key, "key-1");
  for (int i = 0; i < PZ_WALLET_FP_LEN; i++)
    l.fp[i] = (uint8_t)(i * 7);
  pz_buf_t rec = {0};
  CHECK_EQ_INT(pz_store_wallet_transfer_log_encode(&l, PZ_STR("transfer.updated"), PZ_STR("{\"e\":1}"),
                                                   PZ_STR("{\"transfer\":{}}"), &rec),
               PZ__LOG_TRANSFER);
  pz_wallet_transfer_log_t back;
  pz_str_t type, event, answer;
  CHECK_EQ_INT(pz__store_transfer_log_decode(rec.data, (uint32_t)rec.len, &back, &type, &event, &answer), 0);
  CHECK(memcmp(&back.t, &l.t, offsetof(pz_wallet_transfer_rec_t, currency)) == 0);
  CHECK_EQ_STR(back.t.currency, "EUR");
  CHECK_EQ_STR(back.t.note, l.t.note);
  CHECK_EQ_STR(back.t.idem_key, "key-1");
  CHECK(back.t.status == PZ_TRANSFER_COMPLETED && back.t.conversation_id == 0);
  CHECK(back.t.created_at == l.t.created_at && back.t.updated_at == l.t.created_at &&
        back.t.expires_at == l.t.expires_at);
  CHECK(back.txn_id == 77 && back.from_account == 5 && back.to_account == 6 && back.day == 20717);
  CHECK(back.seqs[0] == 3 && back.seqs[1] == 9);
  CHECK(memcmp(back.fp, l.fp, PZ_WALLET_FP_LEN) == 0);
  CHECK(pz_str_eq(type, PZ_STR("transfer.updated")) && pz_str_eq(event, PZ_STR("{\"e\":1}")) &&
        pz_str_eq(answer, PZ_STR("{\"transfer\":{}}")));
  /* Every shorter record, and one with a byte more, is refused. */
  for (size_t n = 0; n < rec.len; n++)
    CHECK_EQ_INT(pz__store_transfer_log_decode(rec.data, (uint32_t)n, &back, &type, &event, &answer), PZ_EINVAL);
  pz_buf_append(&rec, "x", 1);
  CHECK_EQ_INT(pz__store_transfer_log_decode(rec.data, (uint32_t)rec.len, &back, &type, &event, &answer), PZ_EINVAL);
  pz_buf_free(&rec);
  /* A record that would move nothing, or money from an account to itself, does not decode. */
  pz_wallet_transfer_log_t bad = l;
  bad.t.amount = 0;
  pz_store_wallet_transfer_log_encode(&bad, PZ_STR("t"), PZ_STR(""), PZ_STR(""), &rec);
  CHECK_EQ_INT(pz__store_transfer_log_decode(rec.data, (uint32_t)rec.len, &back, &type, &event, &answer), PZ_EINVAL);
  pz_buf_free(&rec);
  bad = l;
  bad.to_account = bad.from_account;
  pz_store_wallet_transfer_log_encode(&bad, PZ_STR("t"), PZ_STR(""), PZ_STR(""), &rec);
  CHECK_EQ_INT(pz__store_transfer_log_decode(rec.data, (uint32_t)rec.len, &back, &type, &event, &answer), PZ_EINVAL);
  pz_buf_free(&rec);
}

/* What the log thread claims per record (client ids, idempotency keys) is
 * forgotten once the database has the record, when there is much of it:
 * a steady load never lets everything be applied at once. */
static void test_claims_pruned(void) {
  pz_db_t db = {0};
  enum { N = 70000 };
  char id[32];
  pz__log_batch_begin(&db, 0, 100, 0);
  for (int i = 0; i < N; i++) {
    snprintf(id, sizeof(id), "c%d", i);
    CHECK(pz_store_msg_log_claim_client(&db, 1, 2, pz_str(id)));
  }
  pz_store_wallet_log_key_claim(&db, 2, PZ_STR("k"));
  /* Records up to lsn 99 applied: a claim of lsn up to 100 may not go. */
  pz__log_batch_begin(&db, 0, 200, 99);
  CHECK(!pz_store_msg_log_claim_client(&db, 1, 2, PZ_STR("c0")));
  CHECK(pz_store_wallet_log_key_pending(&db, 2, PZ_STR("k")));
  /* Applied up to 100: all of them go (the keys' map is small: it waits). */
  pz__log_batch_begin(&db, 0, 300, 100);
  CHECK(pz_store_msg_log_claim_client(&db, 1, 2, PZ_STR("c0")));
  CHECK(!pz_store_msg_log_claim_client(&db, 1, 2, PZ_STR("c0")));
  CHECK(pz_store_wallet_log_key_pending(&db, 2, PZ_STR("k")));
  pz__log_pending_free(db.pending);
}

int main(void) {
  RUN(test_decode);
  RUN(test_new_log_and_reopen);
  RUN(test_wrap);
  RUN(test_torn_record);
  RUN(test_stale_tail_after_restart);
  RUN(test_max_epoch_across_reads);
  RUN(test_transfer_record);
  RUN(test_claims_pruned);
  TEST_EXIT();
}
