/* 64-bit time-ordered ids: 41 bits of milliseconds since 2025-01-01, 10 bits of node, 12 of sequence. */
#ifndef PLAZA_ID_H
#define PLAZA_ID_H

#include <stdint.h>
#include <stddef.h>

#define PZ_ID_EPOCH_MS 1735689600000LL /* 2025-01-01T00:00:00Z */

/* Sets this process's node number (0..1023). Call before any pz_id_next. */
void pz_id_set_node(unsigned node);
/* A new id, strictly greater than every id this process made before. Any thread. */
int64_t pz_id_next(void);
/* Writes id as decimal into out (at least 21 bytes); returns the length. */
size_t pz_id_format(int64_t id, char *out);
/* Parses a decimal id; returns 0 on success, -1 unless s is 1..19 digits of a positive int64. */
int pz_id_parse(const char *s, size_t len, int64_t *out);

/* Wall-clock milliseconds since the Unix epoch. */
int64_t pz_now_ms(void);
/* Monotonic nanoseconds, for durations. */
uint64_t pz_mono_ns(void);
/* Formats ms since the epoch as RFC 3339 UTC with milliseconds into out (>= 25 bytes). */
void pz_time_format(int64_t ms, char *out);

#endif
