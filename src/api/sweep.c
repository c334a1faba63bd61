/* Periodic write jobs that settle what time ran out on (expired transfers, red packets): one timer, one job at a time. */
#include "api/internal.h"
#include "plaza/log.h"
#include "plaza/metrics.h"

static void sweep_now(pz__api_sweep_t *s);

static int sweep_run(pz_db_t *db, pz_store_job_t *job) {
  pz__api_sweep_t *s = job->data;
  s->n = 0;
  s->more = false;
  return s->ops->run(s, db, &job->err);
}

static void sweep_done(pz_store_job_t *job) {
  pz__api_sweep_t *s = job->data;
  pz_api_t *api = s->api;
  s->running = false;
  if (job->rc < 0) {
    PZ_LOG(PZ_LOG_ERROR, NULL, "sweep failed", "what=%s error=%s", s->ops->what, pz_err_message(&job->err));
  } else if (s->n > 0) {
    pz_metrics_count(s->ops->metric, s->n);
    PZ_LOG(PZ_LOG_INFO, NULL, "swept", "what=%s count=%u", s->ops->what, s->n);
  }
  if (job->rc == 0 && s->ops->after) s->ops->after(s);
  if (job->rc == 0 && !api->closing) pz__api_events_push(api, &s->events);
  pz__api_events_release(&s->events);
  /* A full batch may have left more behind: go on at once. */
  bool more = job->rc == 0 && (s->n == s->ops->batch || s->more) && !s->closing;
  if (s->closed)
    pz_free(s);
  else if (more)
    sweep_now(s);
  pz__api_unbusy(api);
}

static void sweep_now(pz__api_sweep_t *s) {
  if (s->running || s->closing) return;
  s->job = (pz_store_job_t){.run = sweep_run, .done = sweep_done, .data = s};
  if (pz_store_write(s->api->st, &s->job) < 0) return; /* the store is closing */
  s->running = true;
  pz__api_busy(s->api);
}

static void on_timer(uv_timer_t *t) { sweep_now(t->data); }

static void on_closed(uv_handle_t *h) {
  pz__api_sweep_t *s = h->data;
  /* A job under way frees it when it ends. */
  s->closed = true;
  if (!s->running) pz_free(s);
}

pz__api_sweep_t *pz__api_sweep_start(pz_api_t *api, const pz__api_sweep_ops_t *ops, int64_t ttl_ms) {
  pz__api_sweep_t *s = pz_calloc(1, sizeof(*s));
  s->api = api;
  s->ops = ops;
  uv_timer_init(api->loop, &s->timer);
  s->timer.data = s;
  /* Every minute, and at start for what expired while the server was
   * down; a test's short lifetime sweeps as often as it expires. */
  uint64_t every = ttl_ms < 60000 ? (uint64_t)ttl_ms : 60000;
  if (every < 50) every = 50;
  uv_timer_start(&s->timer, on_timer, 0, every);
  /* The loop may end while a sweep is the only thing left: it must not hold it open. */
  uv_unref((uv_handle_t *)&s->timer);
  return s;
}

void pz__api_sweep_stop(pz__api_sweep_t *s) {
  if (s == NULL) return;
  s->closing = true;
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, on_closed);
}
