/* bench_chat: group fan-out: one message at a time to the group, the time until every member's socket has it. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

#define SETTLE_MS 300
/* One message that has not reached every member in this long fails the phase. */
#define MESSAGE_TIMEOUT_MS 10000

typedef struct fan_s fan_t;

typedef struct {
  fan_t *fan;
  unsigned idx; /* users[idx]; 0 is the owner, who sends */
  bool ready;
  unsigned long got; /* the number of the last message this socket received, plus one */
  bc_ws_t *ws;
} member_t;

struct fan_s {
  bc_loop_t l;
  const bc_opts_t *o;
  member_t *members;
  unsigned n, n_ready;
  unsigned long k;  /* the message under way */
  unsigned reached; /* sockets that have message k */
  uint64_t stamp;   /* when k was sent */
  unsigned long acked, rate_limited;
  bool started, stopping;
  char failure[256];
  char run[12];
  bc_samples_t all, each; /* time until the last member; time to each member */
  uv_timer_t settle, timeout, retry;
};

static void on_settle(uv_timer_t *t);
static void on_timeout(uv_timer_t *t);
static void on_retry(uv_timer_t *t);

static void stop(fan_t *fan, const char *failure) {
  if (fan->stopping) return;
  fan->stopping = true;
  if (failure && !fan->failure[0]) snprintf(fan->failure, sizeof(fan->failure), "%s", failure);
  uv_timer_stop(&fan->settle);
  uv_timer_stop(&fan->timeout);
  uv_timer_stop(&fan->retry);
  for (unsigned i = 0; i < fan->n; i++)
    if (fan->members[i].ws) bc_ws_close(fan->members[i].ws);
}

static void send_k(fan_t *fan) {
  char text[BC_TEXT_MAX + 1], frame[BC_TEXT_MAX + 256];
  int n = snprintf(text, sizeof(text), "%" PRIu64 " %lu ", fan->stamp, fan->k);
  size_t len = (size_t)n < fan->o->size ? fan->o->size : (size_t)n;
  memset(text + n, 'x', len - (size_t)n);
  int fl = snprintf(frame, sizeof(frame),
                    "{\"type\":\"send\",\"conversation_id\":\"%s\",\"client_id\":\"%s-%lu\",\"text\":\"%.*s\"}",
                    fan->o->st->group_conv, fan->run, fan->k, (int)len, text);
  bc_ws_send_text(fan->members[0].ws, frame, (size_t)fl);
}

static void next_message(fan_t *fan) {
  if (fan->k == fan->o->fanout_messages) {
    stop(fan, NULL);
    return;
  }
  fan->reached = 0;
  fan->stamp = bc_now_ns();
  send_k(fan);
  uv_timer_start(&fan->timeout, on_timeout, MESSAGE_TIMEOUT_MS, 0);
}

/* The next message goes once every member has this one and the sender
 * has its ack: one message in flight at a time. */
static void maybe_next(fan_t *fan) {
  if (fan->reached < fan->n || fan->acked < fan->k + 1) return;
  uv_timer_stop(&fan->timeout);
  fan->k++;
  next_message(fan);
}

static void on_received(member_t *m, const bc_frame_t *f) {
  fan_t *fan = m->fan;
  char buf[64];
  size_t n = f->msg_text.n < sizeof(buf) - 1 ? f->msg_text.n : sizeof(buf) - 1;
  memcpy(buf, f->msg_text.p, n);
  buf[n] = '\0';
  unsigned long long stamp;
  unsigned long k;
  if (sscanf(buf, "%llu %lu", &stamp, &k) != 2 || k != fan->k || m->got != k) {
    stop(fan, "a member got a message other than the one under way, or got it twice");
    return;
  }
  uint64_t now = bc_now_ns();
  m->got = k + 1;
  bc_samples_add(&fan->each, now - fan->stamp);
  if (++fan->reached == fan->n) {
    bc_samples_add(&fan->all, now - fan->stamp);
    maybe_next(fan);
  }
}

static void on_text(bc_ws_t *ws, const char *data, size_t len) {
  member_t *m = bc_ws_udata(ws);
  fan_t *fan = m->fan;
  bc_frame_t f;
  if (bc_frame_scan(data, len, &f) < 0) {
    stop(fan, "a frame that is not a JSON object");
    return;
  }
  if (!m->ready) {
    if (!bc_span_eq(f.type, "ready")) {
      stop(fan, "hello was not answered with ready");
      return;
    }
    m->ready = true;
    if (++fan->n_ready == fan->n) uv_timer_start(&fan->settle, on_settle, SETTLE_MS, 0);
    return;
  }
  if (bc_span_eq(f.type, "message.new") && bc_span_eq(f.msg_conv, fan->o->st->group_conv)) {
    on_received(m, &f);
  } else if (m->idx == 0 && bc_span_eq(f.type, "ack")) {
    fan->acked++;
    maybe_next(fan);
  } else if (m->idx == 0 && bc_span_eq(f.type, "error") && bc_span_eq(f.code, "rate_limited")) {
    /* The owner sends one message at a time, each after the last arrived
     * everywhere; a limited one is sent again when the server allows. */
    fan->rate_limited++;
    uv_timer_start(&fan->retry, on_retry, (uint64_t)(f.retry_after > 0 ? f.retry_after : 1) * 1000, 0);
  } else if (m->idx == 0 && bc_span_eq(f.type, "error")) {
    stop(fan, "the server refused a send");
  }
}

static void on_open(bc_ws_t *ws) {
  member_t *m = bc_ws_udata(ws);
  char frame[256];
  int n = snprintf(frame, sizeof(frame), "{\"type\":\"hello\",\"token\":\"%s\",\"since\":9007199254740991}",
                   m->fan->o->st->users[m->idx].token);
  bc_ws_send_text(ws, frame, (size_t)n);
}

static void on_close(bc_ws_t *ws, int error, int close_code) {
  member_t *m = bc_ws_udata(ws);
  m->ws = NULL;
  if (!m->fan->stopping) {
    char why[200];
    snprintf(why, sizeof(why), "a socket closed: %s, close code %d", error ? uv_strerror(error) : "by the server",
             close_code);
    stop(m->fan, why);
  }
}

static const bc_ws_cbs_t cbs = {on_open, on_text, on_close};

static void on_settle(uv_timer_t *t) {
  fan_t *fan = t->data;
  fan->started = true;
  next_message(fan);
}

static void on_timeout(uv_timer_t *t) { stop(t->data, "a message did not reach every member within 10 s"); }
static void on_deadline(uv_timer_t *t) { stop(t->data, "the phase ran out of time"); }

static void on_retry(uv_timer_t *t) {
  fan_t *fan = t->data;
  /* The stamp stays the first attempt's: the wait counts. */
  send_k(fan);
  uv_timer_start(&fan->timeout, on_timeout, MESSAGE_TIMEOUT_MS, 0);
}

int bc_run_fanout(const bc_opts_t *o) {
  const bc_state_t *st = o->st;
  if (o->size < BC_TEXT_MIN || o->size > BC_TEXT_MAX) bc_die("--size must be %d..%d", BC_TEXT_MIN, BC_TEXT_MAX);
  if (o->fanout_messages == 0) bc_die("--messages must be at least 1");
  fan_t *fan = bc_xcalloc(1, sizeof(*fan));
  fan->o = o;
  fan->n = st->n_users;
  uint8_t rnd[4];
  randombytes_buf(rnd, sizeof(rnd));
  snprintf(fan->run, sizeof(fan->run), "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
  bc_loop_init(&fan->l);
  uv_timer_init(&fan->l.uv, &fan->settle);
  uv_timer_init(&fan->l.uv, &fan->timeout);
  uv_timer_init(&fan->l.uv, &fan->retry);
  fan->settle.data = fan->timeout.data = fan->retry.data = fan;
  fan->members = bc_xcalloc(fan->n, sizeof(*fan->members));
  for (unsigned i = 0; i < fan->n; i++) {
    member_t *m = &fan->members[i];
    m->fan = fan;
    m->idx = i;
    m->ws = bc_ws_connect(&fan->l, &o->server, NULL, &cbs, m);
  }
  uv_timer_t deadline;
  uv_timer_init(&fan->l.uv, &deadline);
  deadline.data = fan;
  uv_timer_start(&deadline, on_deadline, (uint64_t)(o->timeout_s * 1000), 0);
  uv_unref((uv_handle_t *)&deadline);
  uv_run(&fan->l.uv, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&deadline, NULL);
  uv_close((uv_handle_t *)&fan->settle, NULL);
  uv_close((uv_handle_t *)&fan->timeout, NULL);
  uv_close((uv_handle_t *)&fan->retry, NULL);
  bc_loop_close(&fan->l);

  int rc = fan->failure[0] ? 1 : 0;
  printf(
      "fanout members=%u size=%u messages=%lu acked=%lu rate_limited=%lu all_p50_ms=%.2f all_p99_ms=%.2f "
      "all_max_ms=%.2f each_p50_ms=%.2f each_p99_ms=%.2f",
      fan->n, o->size, fan->k, fan->acked, fan->rate_limited, (double)bc_samples_quantile(&fan->all, 0.50) / 1e6,
      (double)bc_samples_quantile(&fan->all, 0.99) / 1e6, (double)bc_samples_quantile(&fan->all, 1.0) / 1e6,
      (double)bc_samples_quantile(&fan->each, 0.50) / 1e6, (double)bc_samples_quantile(&fan->each, 0.99) / 1e6);
  if (rc) printf(" failed=\"%s\"", fan->failure);
  printf("\n");
  fflush(stdout);
  free(fan->members);
  bc_samples_free(&fan->all);
  bc_samples_free(&fan->each);
  free(fan);
  return rc;
}
