/* Process-wide counters, gauges and histograms, rendered in Prometheus text format. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "plaza/metrics.h"

#define MAX_ROUTES 128
#define MAX_STATUSES 16
#define MAX_COUNTERS 32

/* Upper bounds in seconds; the last bucket is +Inf. */
static const double latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
#define N_LAT (sizeof(latency_bounds) / sizeof(latency_bounds[0]))
static const double fsync_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5};
#define N_FSYNC (sizeof(fsync_bounds) / sizeof(fsync_bounds[0]))
#define N_BATCH 12 /* 1, 2, 4, ... 1024, then +Inf */

typedef struct {
  const char *method;
  const char *pattern;
  struct {
    int status;
    uint64_t n;
  } statuses[MAX_STATUSES];
  unsigned n_statuses;
  uint64_t lat_buckets[N_LAT + 1];
  uint64_t lat_count;
  double lat_sum;
} route_t;

/* Route counters are touched by the loop thread only; the writer's come
 * from another thread and are atomics. */
static route_t routes[MAX_ROUTES] = {{.method = "", .pattern = "unmatched"}};
static unsigned n_routes = 1;
static int64_t connections, websockets;
static struct {
  const char *name;
  uint64_t n;
} counters[MAX_COUNTERS];
static unsigned n_counters;

static _Atomic uint64_t batch_buckets[N_BATCH + 1];
static _Atomic uint64_t batch_count, batch_sum;
static _Atomic uint64_t fsync_buckets[N_FSYNC + 1];
static _Atomic uint64_t fsync_count, fsync_sum_ns;
static _Atomic uint64_t sendlog_records, sendlog_appends, sendlog_ns, sendlog_applied, job_group_reruns;

int pz_metrics_route(const char *method, const char *pattern) {
  if (n_routes >= MAX_ROUTES) return 0;
  routes[n_routes].method = method;
  routes[n_routes].pattern = pattern;
  return (int)n_routes++;
}

void pz_metrics_request(int route, int status, uint64_t duration_ns) {
  route_t *r = &routes[(route > 0 && (unsigned)route < n_routes) ? route : 0];
  unsigned i;
  for (i = 0; i < r->n_statuses && r->statuses[i].status != status; i++) {
  }
  if (i == r->n_statuses) {
    if (i == MAX_STATUSES) i = MAX_STATUSES - 1; /* folds rare statuses into the last slot */
    else r->n_statuses++;
    r->statuses[i].status = status;
  }
  r->statuses[i].n++;
  double secs = (double)duration_ns / 1e9;
  unsigned b;
  for (b = 0; b < N_LAT && secs > latency_bounds[b]; b++) {
  }
  r->lat_buckets[b]++;
  r->lat_count++;
  r->lat_sum += secs;
}

void pz_metrics_connections(int delta) { connections += delta; }
void pz_metrics_websockets(int delta) { websockets += delta; }

void pz_metrics_sendlog(unsigned records, uint64_t ns) {
  atomic_fetch_add_explicit(&sendlog_records, records, memory_order_relaxed);
  atomic_fetch_add_explicit(&sendlog_appends, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&sendlog_ns, ns, memory_order_relaxed);
}

void pz_metrics_job_group_rerun(void) { atomic_fetch_add_explicit(&job_group_reruns, 1, memory_order_relaxed); }

void pz_metrics_sendlog_applied(uint64_t records) {
  atomic_fetch_add_explicit(&sendlog_applied, records, memory_order_relaxed);
}

void pz_metrics_commit(unsigned jobs, uint64_t fsync_ns) {
  unsigned b = 0;
  while (b < N_BATCH - 1 && jobs > (1u << b)) b++;
  if (jobs > (1u << (N_BATCH - 1))) b = N_BATCH;
  atomic_fetch_add_explicit(&batch_buckets[b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&batch_count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&batch_sum, jobs, memory_order_relaxed);
  double secs = (double)fsync_ns / 1e9;
  unsigned f;
  for (f = 0; f < N_FSYNC && secs > fsync_bounds[f]; f++) {
  }
  atomic_fetch_add_explicit(&fsync_buckets[f], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&fsync_count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&fsync_sum_ns, fsync_ns, memory_order_relaxed);
}

void pz_metrics_count(const char *name, uint64_t n) {
  unsigned i;
  for (i = 0; i < n_counters && strcmp(counters[i].name, name) != 0; i++) {
  }
  if (i == n_counters) {
    if (n_counters == MAX_COUNTERS) return;
    counters[n_counters++].name = name;
  }
  counters[i].n += n;
}

static void route_labels(pz_buf_t *out, const route_t *r) {
  pz_buf_append_c(out, "method=\"");
  pz_buf_append_c(out, r->method);
  pz_buf_append_c(out, "\",route=\"");
  pz_buf_append_json_escaped(out, r->pattern, strlen(r->pattern));
  pz_buf_append_c(out, "\"");
}

void pz_metrics_render(pz_buf_t *out) {
  pz_buf_append_c(out, "# HELP plaza_http_requests_total HTTP requests by route and status.\n"
                       "# TYPE plaza_http_requests_total counter\n");
  for (unsigned i = 0; i < n_routes; i++) {
    const route_t *r = &routes[i];
    for (unsigned s = 0; s < r->n_statuses; s++) {
      pz_buf_append_c(out, "plaza_http_requests_total{");
      route_labels(out, r);
      pz_buf_printf(out, ",status=\"%d\"} %llu\n", r->statuses[s].status, (unsigned long long)r->statuses[s].n);
    }
  }
  pz_buf_append_c(out, "# HELP plaza_http_request_duration_seconds Time from request start to response written.\n"
                       "# TYPE plaza_http_request_duration_seconds histogram\n");
  for (unsigned i = 0; i < n_routes; i++) {
    const route_t *r = &routes[i];
    if (r->lat_count == 0) continue;
    uint64_t cum = 0;
    for (unsigned b = 0; b <= N_LAT; b++) {
      cum += r->lat_buckets[b];
      pz_buf_append_c(out, "plaza_http_request_duration_seconds_bucket{");
      route_labels(out, r);
      if (b < N_LAT)
        pz_buf_printf(out, ",le=\"%g\"} %llu\n", latency_bounds[b], (unsigned long long)cum);
      else
        pz_buf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    pz_buf_append_c(out, "plaza_http_request_duration_seconds_sum{");
    route_labels(out, r);
    pz_buf_printf(out, "} %.6f\n", r->lat_sum);
    pz_buf_append_c(out, "plaza_http_request_duration_seconds_count{");
    route_labels(out, r);
    pz_buf_printf(out, "} %llu\n", (unsigned long long)r->lat_count);
  }
  pz_buf_printf(out,
                "# HELP plaza_open_connections Open client connections (HTTP and WebSocket).\n"
                "# TYPE plaza_open_connections gauge\nplaza_open_connections %lld\n"
                "# HELP plaza_websocket_sessions Open WebSocket sessions.\n"
                "# TYPE plaza_websocket_sessions gauge\nplaza_websocket_sessions %lld\n",
                (long long)connections, (long long)websockets);

  pz_buf_append_c(out, "# HELP plaza_commit_batch_jobs Write jobs made durable by one fsync of the WAL (group commit).\n"
                       "# TYPE plaza_commit_batch_jobs histogram\n");
  uint64_t cum = 0;
  for (unsigned b = 0; b <= N_BATCH; b++) {
    cum += atomic_load_explicit(&batch_buckets[b], memory_order_relaxed);
    if (b < N_BATCH)
      pz_buf_printf(out, "plaza_commit_batch_jobs_bucket{le=\"%u\"} %llu\n", 1u << b, (unsigned long long)cum);
    else
      pz_buf_printf(out, "plaza_commit_batch_jobs_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
  }
  pz_buf_printf(out, "plaza_commit_batch_jobs_sum %llu\nplaza_commit_batch_jobs_count %llu\n",
                (unsigned long long)atomic_load(&batch_sum), (unsigned long long)atomic_load(&batch_count));

  pz_buf_append_c(out, "# HELP plaza_commit_fsync_seconds Time of one fsync of the WAL (one or more committed batches).\n"
                       "# TYPE plaza_commit_fsync_seconds histogram\n");
  cum = 0;
  for (unsigned f = 0; f <= N_FSYNC; f++) {
    cum += atomic_load_explicit(&fsync_buckets[f], memory_order_relaxed);
    if (f < N_FSYNC)
      pz_buf_printf(out, "plaza_commit_fsync_seconds_bucket{le=\"%g\"} %llu\n", fsync_bounds[f], (unsigned long long)cum);
    else
      pz_buf_printf(out, "plaza_commit_fsync_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
  }
  pz_buf_printf(out, "plaza_commit_fsync_seconds_sum %.6f\nplaza_commit_fsync_seconds_count %llu\n",
                (double)atomic_load(&fsync_sum_ns) / 1e9, (unsigned long long)atomic_load(&fsync_count));

  pz_buf_printf(out,
                "# HELP plaza_sendlog_records_total Records (messages, transfers) made durable in the send log.\n"
                "# TYPE plaza_sendlog_records_total counter\nplaza_sendlog_records_total %llu\n"
                "# HELP plaza_sendlog_appends_total Appends to the send log, one fdatasync each.\n"
                "# TYPE plaza_sendlog_appends_total counter\nplaza_sendlog_appends_total %llu\n"
                "# HELP plaza_sendlog_append_seconds_total Time spent writing and syncing the send log.\n"
                "# TYPE plaza_sendlog_append_seconds_total counter\nplaza_sendlog_append_seconds_total %.6f\n"
                "# HELP plaza_sendlog_applied_total Records of the send log applied to the database since start.\n"
                "# TYPE plaza_sendlog_applied_total counter\nplaza_sendlog_applied_total %llu\n"
                "# HELP plaza_job_group_reruns_total Groups of write jobs rolled back and run again job by job, "
                "because one failed after it wrote.\n"
                "# TYPE plaza_job_group_reruns_total counter\nplaza_job_group_reruns_total %llu\n",
                (unsigned long long)atomic_load(&sendlog_records), (unsigned long long)atomic_load(&sendlog_appends),
                (double)atomic_load(&sendlog_ns) / 1e9, (unsigned long long)atomic_load(&sendlog_applied),
                (unsigned long long)atomic_load(&job_group_reruns));
  for (unsigned i = 0; i < n_counters; i++)
    pz_buf_printf(out, "# TYPE plaza_%s_total counter\nplaza_%s_total %llu\n", counters[i].name, counters[i].name,
                  (unsigned long long)counters[i].n);
  pz_buf_printf(out, "# HELP plaza_heap_bytes Bytes held by long-lived objects.\n"
                     "# TYPE plaza_heap_bytes gauge\nplaza_heap_bytes %zu\n", pz_mem_live());
}
