/* Internal to store/: the send log, a ring file of records that one fdatasync makes durable, ahead of the database. */
#ifndef PLAZA_STORE_SENDLOG_H
#define PLAZA_STORE_SENDLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "plaza/error.h"

/* The log is one preallocated file used as a ring. Appends write whole
 * records after the last one and fdatasync: the blocks are allocated and
 * written once, when the file is made, so that sync carries no metadata.
 * Each record names its log sequence number (lsn, gap-free from 1); a
 * reader starts from a known (lsn, offset) and follows the chain while
 * each record is whole (its CRC-32C holds) and carries the next lsn, so a
 * record torn by a crash, zeros, or the older lap of the ring behind the
 * last append all end the chain.
 *
 * A record also names the epoch of the process that wrote it, one more
 * at every start (the caller keeps the count): after a crash cut a batch
 * short, its later records may still be whole behind the new end, and the
 * next run may write a record of the same size over the torn one. Its
 * records carry a higher epoch, and a record of a lower epoch than the one
 * before it ends the chain.
 *
 * Layout of a record, little-endian, at an offset that is a multiple of 8:
 *   u32 magic "PZSL"  u32 crc32c of everything after it (header and payload)
 *   u64 lsn  u32 payload length  u16 type  u16 zero  u32 epoch  u32 zero
 *   payload  zeros to 8
 * Type 0 (PZ__SENDLOG_WRAP, empty, lsn of the next record) says that the
 * chain goes on at offset 0; so does an end of file too close for a
 * header. */

/* The little-endian fields of the records' headers (sendlog.c) and of
 * their payloads (msglog.c): bytes of v, or the value of bytes at p. */
static inline void pz__le_put(uint8_t *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t pz__le_get(const uint8_t *p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

#define PZ__SENDLOG_HEADER 32u
#define PZ__SENDLOG_MAX_PAYLOAD (1u << 20)
#define PZ__SENDLOG_WRAP 0u

typedef struct pz__sendlog_s pz__sendlog_t;

/* A position in the log: the record with lsn lies at off. */
typedef struct pz__sendlog_pos_s {
  uint64_t lsn;
  uint64_t off;
} pz__sendlog_pos_t;

/* A record to append: type (1..65535) and payload, borrowed for the call. */
typedef struct pz__sendlog_rec_s {
  uint16_t type;
  const void *data;
  uint32_t len;
} pz__sendlog_rec_t;

/* Opens path, creating it with size bytes (a multiple of 8, at least 64
 * KiB) of zeros, synced with its directory, if it does not exist. An
 * existing file keeps its size. Appends go nowhere until
 * pz__sendlog_recover has found the end. */
int pz__sendlog_open(pz__sendlog_t **out, const char *path, uint64_t size, pz_err_t *err);
void pz__sendlog_close(pz__sendlog_t *log);
uint64_t pz__sendlog_size(const pz__sendlog_t *log);

/* Called with each record of the chain, in order, and the position after it. */
typedef int (*pz__sendlog_cb)(void *arg, uint64_t lsn, uint16_t type, const void *data, uint32_t len,
                              pz__sendlog_pos_t next, pz_err_t *err);

/* Follows the chain from start (the first record not yet applied; {1, 0}
 * for a new log), calls cb for each record (a negative return stops and is
 * returned), and sets the append position to the end of the chain: *end. */
int pz__sendlog_recover(pz__sendlog_t *log, pz__sendlog_pos_t start, pz__sendlog_cb cb, void *arg,
                        pz__sendlog_pos_t *end, pz_err_t *err);

/* Whether recs[0..n) can be appended without writing over a record still
 * wanted: those from offset oldest up to the append position, or none
 * when oldest is PZ__SENDLOG_NONE. */
#define PZ__SENDLOG_NONE UINT64_MAX
bool pz__sendlog_room(const pz__sendlog_t *log, uint64_t oldest, const pz__sendlog_rec_t *recs, unsigned n);

/* Appends recs[0..n) (n >= 1), with lsns from the append position's on,
 * in at most two writes, and fdatasyncs; the append position moves past
 * the last. next (may be NULL) gets, for each record, the position after
 * it: where the chain goes on once that record is applied. The caller has
 * checked pz__sendlog_room. A failure (PZ_EIO) leaves the file in doubt:
 * the caller stops, as after a failed fsync of the database. */
int pz__sendlog_append(pz__sendlog_t *log, const pz__sendlog_rec_t *recs, unsigned n, pz__sendlog_pos_t *next,
                       pz_err_t *err);
/* The append position: the lsn and offset the next record will get. */
pz__sendlog_pos_t pz__sendlog_end(const pz__sendlog_t *log);

/* The epoch of the records appended from now on: one more than any
 * earlier process of this log used. */
void pz__sendlog_set_epoch(pz__sendlog_t *log, uint32_t epoch);
/* The highest epoch of any whole record anywhere in the file, in the
 * chain or not (0: none): a log copied beside an older database may hold
 * epochs beyond the count the database kept. Reads the whole file. */
uint32_t pz__sendlog_max_epoch(pz__sendlog_t *log);

/* A decoded record: data points into the bytes it was decoded from; step
 * is its size in the ring, padding included. */
typedef struct pz__sendlog_view_s {
  uint16_t type;
  uint32_t epoch;
  const uint8_t *data;
  uint32_t len;
  uint32_t step;
} pz__sendlog_view_t;

/* Decodes the record at buf[0..len) (bytes read at an offset of the log)
 * if it is whole and carries lsn: 1 with *out set, 0 otherwise. Pure, for
 * recovery and the fuzz target. */
int pz__sendlog_decode(const uint8_t *buf, size_t len, uint64_t lsn, pz__sendlog_view_t *out);
/* Writes the record (lsn, epoch, type, data) into out, which has room for
 * PZ__SENDLOG_HEADER + len rounded up to 8; returns the bytes written. */
uint32_t pz__sendlog_encode(uint8_t *out, uint64_t lsn, uint32_t epoch, uint16_t type, const void *data, uint32_t len);
uint32_t pz__crc32c(uint32_t crc, const void *data, size_t len);

#endif
