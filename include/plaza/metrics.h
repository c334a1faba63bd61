/* Process-wide metrics, rendered in the Prometheus text format at /metrics. */
#ifndef PLAZA_METRICS_H
#define PLAZA_METRICS_H

#include <stdint.h>
#include "plaza/str.h"

/* Registers a route pattern for per-route counters; returns its index.
 * Loop thread, at start-up. Unknown routes count under index 0 ("unmatched"). */
int pz_metrics_route(const char *method, const char *pattern);
/* One finished HTTP request. Loop thread. */
void pz_metrics_request(int route, int status, uint64_t duration_ns);
/* Gauges. Loop thread. */
void pz_metrics_connections(int delta);
void pz_metrics_websockets(int delta);
/* One commit of the writer: how many jobs it carried and how long fsync took. Writer thread. */
void pz_metrics_commit(unsigned jobs, uint64_t fsync_ns);
/* One append of the send log: its records and the time of its write and fdatasync. Log thread. */
void pz_metrics_sendlog(unsigned records, uint64_t ns);
/* A group of rerunnable write jobs was rolled back and run again job by
 * job, as one of them failed after it wrote (any thread). */
void pz_metrics_job_group_rerun(void);
/* Records of the send log the writer applied to the database (any thread). */
void pz_metrics_sendlog_applied(uint64_t records);
/* A named counter (e.g. "login_failures"); at most 32 names. Loop thread. */
void pz_metrics_count(const char *name, uint64_t n);
/* Appends the whole exposition to out. Loop thread. */
void pz_metrics_render(pz_buf_t *out);

#endif
