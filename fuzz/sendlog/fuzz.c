/* libFuzzer: arbitrary bytes as a send log file: recovery follows only whole records with the next lsn, stays inside
 * the file, and a record appended after it is found by the next recovery; and as a message record and a transfer
 * record, each of which decodes within its bounds or not at all. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "store/db.h"
#include "store/sendlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
  uint64_t lsn, size;
  unsigned n;
} walk_t;

static int check(void *arg, uint64_t lsn, uint16_t type, const void *rec, uint32_t len, pz__sendlog_pos_t next,
                 pz_err_t *err) {
  (void)rec;
  (void)err;
  walk_t *w = arg;
  if (lsn != w->lsn || type == PZ__SENDLOG_WRAP || len > PZ__SENDLOG_MAX_PAYLOAD || next.lsn != lsn + 1 ||
      next.off > w->size || next.off % 8)
    abort();
  w->lsn++;
  w->n++;
  return 0;
}

static pz_msg_rec_t msg;

static void decode_message(const uint8_t *data, size_t size) {
  pz_str_t event;
  pz_store_user_seq_t *fan;
  unsigned n;
  if (pz__store_msg_log_decode(data, (uint32_t)size, &msg, &event, &fan, &n) == 0) {
    if (n == 0 || fan == NULL || msg.text_len > PZ_CHAT_TEXT_MAX_BYTES || msg.body_len > PZ_CHAT_BODY_MAX_BYTES ||
        msg.n_mentions > PZ_CHAT_MENTIONS_MAX || event.len > size || strlen(msg.client_id) > PZ_CHAT_CLIENT_ID_MAX)
      abort();
    /* It encodes again without trouble. */
    pz_buf_t again = {0};
    pz_store_msg_log_encode(&msg, event, fan, n, &again);
    if (again.len == 0 || again.len > size) abort();
    pz_buf_free(&again);
    pz_free(fan);
  } else if (fan != NULL || n != 0) {
    abort();
  }
}

static pz_wallet_transfer_log_t transfer;

static void decode_transfer(const uint8_t *data, size_t size) {
  pz_str_t type, event, answer;
  if (pz__store_transfer_log_decode(data, (uint32_t)size, &transfer, &type, &event, &answer) != 0) return;
  const pz_wallet_transfer_rec_t *t = &transfer.t;
  if (t->amount <= 0 || t->from_id == t->to_id || transfer.from_account == transfer.to_account ||
      strlen(t->currency) > PZ_WALLET_CURRENCY_LEN || strlen(t->note) > PZ_WALLET_NOTE_MAX_BYTES ||
      strlen(t->idem_key) > PZ_WALLET_KEY_MAX || t->idem_key[0] == '\0' || answer.len > PZ_WALLET_BODY_MAX ||
      type.len == 0 || type.len + event.len + answer.len > size || t->status != PZ_TRANSFER_COMPLETED ||
      t->conversation_id != 0)
    abort();
  /* It encodes again, to a record no longer than the one it came from. */
  pz_buf_t again = {0};
  if (pz_store_wallet_transfer_log_encode(&transfer, type, event, answer, &again) != PZ__LOG_TRANSFER ||
      again.len == 0 || again.len > size)
    abort();
  pz_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  decode_message(data, size);
  decode_transfer(data, size);
  /* The first 8 bytes choose where recovery starts; the rest is the file,
   * padded with zeros to the smallest log. */
  if (size < 8 || size > (1u << 20)) return 0;
  uint64_t start_off = 0;
  memcpy(&start_off, data, 8);
  uint64_t file_size = size - 8 < 65536 ? 65536 : (size - 8 + 7) & ~(uint64_t)7;
  start_off = (start_off % file_size) & ~(uint64_t)7;
  int fd = memfd_create("sendlog", 0);
  if (fd < 0) return 0;
  if (ftruncate(fd, (off_t)file_size) != 0 || (size > 8 && pwrite(fd, data + 8, size - 8, 0) != (ssize_t)(size - 8))) {
    close(fd);
    return 0;
  }
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  pz__sendlog_t *log = NULL;
  pz_err_t err = {0};
  if (pz__sendlog_open(&log, path, file_size, &err) != 0) abort();
  /* lsn 1 at start_off: the records of a fresh log, or an arbitrary guess. */
  walk_t w = {1, file_size, 0};
  pz__sendlog_pos_t end;
  if (pz__sendlog_recover(log, (pz__sendlog_pos_t){1, start_off}, check, &w, &end, &err) != 0) abort();
  if (end.lsn != 1 + w.n || end.off >= file_size || end.off % 8) abort();
  /* A new run's epoch is above every epoch in the file (the store keeps
   * the count): the highest a header anywhere names, plus one. */
  uint32_t top = 0;
  for (size_t o = 8; o + 32 <= size; o += 8) {
    const uint8_t *h = data + o;
    if (h[0] == 'P' && h[1] == 'Z' && h[2] == 'S' && h[3] == 'L') {
      uint32_t e = (uint32_t)h[24] | (uint32_t)h[25] << 8 | (uint32_t)h[26] << 16 | (uint32_t)h[27] << 24;
      if (e > top) top = e;
    }
  }
  if (top == UINT32_MAX) {
    pz__sendlog_close(log);
    close(fd);
    return 0;
  }
  pz__sendlog_set_epoch(log, top + 1);
  static const char payload[] = "appended";
  pz__sendlog_rec_t rec = {9, payload, sizeof(payload)};
  if (pz__sendlog_room(log, PZ__SENDLOG_NONE, &rec, 1)) {
    pz__sendlog_pos_t next;
    if (pz__sendlog_append(log, &rec, 1, &next, &err) != 0) abort();
    pz__sendlog_close(log);
    log = NULL;
    if (pz__sendlog_open(&log, path, file_size, &err) != 0) abort();
    walk_t again = {1, file_size, 0};
    if (pz__sendlog_recover(log, (pz__sendlog_pos_t){1, start_off}, check, &again, &end, &err) != 0) abort();
    /* The chain is the one found before and the appended record. */
    if (again.n != w.n + 1 || end.lsn != next.lsn || end.off != next.off) abort();
  }
  pz__sendlog_close(log);
  close(fd);
  return 0;
}
