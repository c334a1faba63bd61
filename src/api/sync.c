/* GET /v1/sync: a device catches up on its user's event stream, the same events the WebSocket pushes. */
#include <limits.h>
#include "api/internal.h"
#include "plaza/id.h"

typedef struct {
  pz__api_ctx_t base;
  int64_t me, since, last;
  unsigned limit, n;
  bool more;
  bool expired;  /* events after since were removed: last is the head to resume from */
  pz_buf_t text; /* the answer, written as the rows come */
} sync_ctx_t;

static void sync_release(void *data) { pz_buf_free(&((sync_ctx_t *)data)->text); }

static int event_row(void *arg, int64_t seq, pz_str_t type, pz_str_t payload, pz_err_t *err) {
  sync_ctx_t *c = arg;
  /* One row past the limit was asked for, to tell whether more follow. */
  if (c->n == c->limit) {
    c->more = true;
    return 0;
  }
  if (c->n++) pz_buf_append_c(&c->text, ",");
  /* Payloads are stored as the JSON text they are sent as: no parsing. */
  pz__api_event_frame(&c->text, seq, type, payload);
  c->last = seq;
  return 0;
}

static int sync_run(pz_db_t *db, pz_store_job_t *job) {
  sync_ctx_t *c = job->data;
  c->last = c->since;
  /* Events after since that retention removed: no answer can be whole. */
  int rc = pz_store_event_gone(db, c->me, c->since, &c->expired, &job->err);
  if (rc < 0) return rc;
  if (c->expired) return pz_store_event_head(db, c->me, &c->last, &job->err);
  pz_buf_append_c(&c->text, "{\"events\":[");
  rc = pz_store_event_list(db, c->me, c->since, c->limit + 1, event_row, c, &job->err);
  if (rc < 0) return rc;
  pz_buf_printf(&c->text, "],\"next_since\":%lld,\"has_more\":%s}", (long long)c->last, c->more ? "true" : "false");
  return 0;
}

static void sync_done(pz__api_ctx_t *base) {
  sync_ctx_t *c = (sync_ctx_t *)base;
  if (base->job.rc < 0) {
    pz__api_fail(base->req, &base->job.err);
    return;
  }
  pz_req_add_header(base->req, "Cache-Control", "no-store");
  if (c->expired) {
    c->text.len = 0;
    pz_buf_printf(&c->text,
                  "{\"error\":{\"code\":\"events_expired\",\"message\":\"the events after %lld are no longer kept:"
                  " reload the conversations, then sync from next_since\"},\"next_since\":%lld}",
                  (long long)c->since, (long long)c->last);
    pz_req_respond(base->req, 410, "application/json", c->text.data, c->text.len);
    return;
  }
  pz_req_respond(base->req, 200, "application/json", c->text.data, c->text.len);
}

/* A query number in [0, INT64_MAX], or the default when absent. */
static int query_num(pz_req_t *req, const char *key, int64_t dflt, int64_t *out, pz_err_t *err) {
  pz_str_t v;
  *out = dflt;
  if (!pz_req_query(req, key, &v)) return 0;
  int64_t n = 0;
  if (v.len == 0 || v.len > 18) goto bad;
  for (size_t i = 0; i < v.len; i++) {
    if (v.ptr[i] < '0' || v.ptr[i] > '9') goto bad;
    n = n * 10 + (v.ptr[i] - '0');
  }
  *out = n;
  return 0;
bad:
  return pz_err_set(err, PZ_EINVAL, NULL, "%s must be a whole number", key);
}

static void sync_authed(pz_req_t *req) {
  pz_err_t err = {0};
  int64_t limit;
  sync_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), sync_run);
  pz_arena_on_reset(req->arena, sync_release, c);
  c->base.done = sync_done;
  c->me = req->user_id;
  if (query_num(req, "since", 0, &c->since, &err) < 0 ||
      query_num(req, "limit", PZ_CHAT_SYNC_DEFAULT, &limit, &err) < 0)
    goto fail;
  if (limit < 1) {
    pz_err_set(&err, PZ_EINVAL, NULL, "limit must be from 1 to %d", PZ_CHAT_SYNC_MAX);
    goto fail;
  }
  c->limit = limit > PZ_CHAT_SYNC_MAX ? PZ_CHAT_SYNC_MAX : (unsigned)limit;
  pz__api_read(&c->base);
  return;
fail:
  pz__api_fail(req, &err);
}

static void sync_events(pz_req_t *req) { pz__api_authed(req, sync_authed); }

void pz__api_sync_routes(pz_api_t *api, pz_router_t *r) { pz_router_add(r, PZ_HTTP_GET, "/v1/sync", sync_events, api); }

/* ---- retention: the sweep of old events ---- */

#define EVENT_PRUNE_BATCH 2000

static int prune_run(pz__api_sweep_t *s, pz_db_t *db, pz_err_t *err) {
  pz_api_t *api = s->api;
  unsigned examined = 0;
  api->event_cursor_next = api->event_cursor;
  int rc = pz_store_event_prune(db, pz_now_ms() - api->event_retention_ms, EVENT_PRUNE_BATCH, &api->event_cursor_next,
                                &s->n, &examined, err);
  s->more = rc == 0 && examined == EVENT_PRUNE_BATCH;
  return rc;
}

/* What the sweep removed is durable: the next one starts after it. */
static void prune_after(pz__api_sweep_t *s) { s->api->event_cursor = s->api->event_cursor_next; }

static const pz__api_sweep_ops_t prune_sweep = {.what = "events past their retention",
                                                .metric = "events_pruned",
                                                .batch = UINT_MAX,
                                                .run = prune_run,
                                                .after = prune_after};

void pz__api_sync_start(pz_api_t *api) {
  int64_t ms = pz__api_test_knob("PLAZA_TEST_EVENT_RETENTION_MS", 1,
                                 api->event_retention_ms ? api->event_retention_ms : INT64_MAX, 0);
  if (ms) api->event_retention_ms = ms;
  if (api->event_retention_ms > 0) api->event_sweep = pz__api_sweep_start(api, &prune_sweep, api->event_retention_ms);
}

void pz__api_sync_stop(pz_api_t *api) {
  pz__api_sweep_stop(api->event_sweep);
  api->event_sweep = NULL;
}
