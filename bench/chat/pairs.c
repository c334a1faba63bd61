/* bench_chat: 1:1 messaging between pairs of sockets: the durable throughput (windowed) and the latency at a fixed rate
 * (paced). */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"

/* After the last socket is ready the server may still be reading each
 * socket's (empty) catch-up; the clock starts once that has settled. */
#define SETTLE_MS 300
#define PACE_MS 1

typedef struct phase_s phase_t;
typedef struct pair_s pair_t;

typedef struct {
  pair_t *pair;
  bool sender;
  bool ready;
  bc_ws_t *ws;
} end_t;

typedef struct {
  unsigned long k;
  uint64_t stamp, due;
} retry_t;

struct pair_s {
  phase_t *ph;
  unsigned idx;
  end_t ends[2]; /* [0] sender, [1] receiver */
  const char *conv, *sender_id;
  unsigned long quota; /* messages this pair sends (throughput) */
  unsigned long sent, acked, delivered, echoed;
  uint8_t *seen;     /* a bit per message number: delivered to the receiver */
  unsigned long cap; /* bits in seen */
  retry_t *retries;
  unsigned n_retries, cap_retries;
  char got_id[24], said_id[24]; /* newest message the receiver has, and told the server of */
  uint64_t receipt_due;         /* when the receiver says so (0: nothing to say) */
};

struct phase_s {
  bc_loop_t l;
  const bc_opts_t *o;
  bool paced;
  pair_t *pairs;
  unsigned n_pairs, n_ready, n_closed;
  unsigned long total; /* messages in all */
  unsigned long sent, acked, delivered, dups, rate_limited, receipts;
  uint64_t t_start, t_acked, t_done;
  double cpu_self, cpu_server;
  bool started, stopping;
  char failure[256];
  char run[12]; /* client_id prefix: unique per run, or a resent client_id would be a duplicate */
  bc_samples_t lat;
  uv_timer_t settle, pacer, retry, deadline, receipt;
};

static void stop(phase_t *ph, const char *failure) {
  if (ph->stopping) return;
  ph->stopping = true;
  if (failure && !ph->failure[0]) snprintf(ph->failure, sizeof(ph->failure), "%s", failure);
  uv_timer_stop(&ph->pacer);
  uv_timer_stop(&ph->retry);
  uv_timer_stop(&ph->deadline);
  uv_timer_stop(&ph->settle);
  uv_timer_stop(&ph->receipt);
  for (unsigned i = 0; i < ph->n_pairs; i++)
    for (int e = 0; e < 2; e++)
      if (ph->pairs[i].ends[e].ws) bc_ws_close(ph->pairs[i].ends[e].ws);
}

/* The text carries the send stamp and the message number, padded to the
 * message size: "<stamp_ns> <k> xxxx". */
static void send_one(pair_t *p, unsigned long k, uint64_t stamp) {
  phase_t *ph = p->ph;
  char text[BC_TEXT_MAX + 1], frame[BC_TEXT_MAX + 256];
  int n = snprintf(text, sizeof(text), "%" PRIu64 " %lu ", stamp, k);
  size_t len = (size_t)n < ph->o->size ? ph->o->size : (size_t)n;
  memset(text + n, 'x', len - (size_t)n);
  int fl = snprintf(frame, sizeof(frame),
                    "{\"type\":\"send\",\"conversation_id\":\"%s\",\"client_id\":\"%s-%lu\",\"text\":\"%.*s\"}",
                    p->conv, ph->run, k, (int)len, text);
  bc_ws_send_text(p->ends[0].ws, frame, (size_t)fl);
}

static void send_next(pair_t *p, uint64_t stamp) {
  p->ph->sent++;
  send_one(p, p->sent++, stamp);
}

static bool parse_text(bc_span_t t, uint64_t *stamp, unsigned long *k) {
  char buf[64];
  size_t n = t.n < sizeof(buf) - 1 ? t.n : sizeof(buf) - 1;
  memcpy(buf, t.p, n);
  buf[n] = '\0';
  unsigned long long s;
  return sscanf(buf, "%llu %lu", &s, k) == 2 && (*stamp = s, true);
}

static void maybe_done(phase_t *ph) {
  if (ph->acked == ph->total && !ph->t_acked) ph->t_acked = bc_now_ns();
  if (ph->acked == ph->total && ph->delivered == ph->total) {
    ph->t_done = bc_now_ns();
    stop(ph, NULL);
  }
}

/* Ids are decimal strings without leading zeros: the longer is the larger. */
static bool id_newer(bc_span_t id, const char *than) {
  size_t n = strlen(than);
  return id.n != n ? id.n > n : memcmp(id.p, than, n) > 0;
}

/* The receiver's delivered receipt for the newest message it has. */
static void say_delivered(pair_t *p) {
  if (strcmp(p->got_id, p->said_id) == 0 || p->ends[1].ws == NULL) return;
  char frame[160];
  int n = snprintf(frame, sizeof(frame), "{\"type\":\"delivered\",\"conversation_id\":\"%s\",\"message_id\":\"%s\"}",
                   p->conv, p->got_id);
  bc_ws_send_text(p->ends[1].ws, frame, (size_t)n);
  memcpy(p->said_id, p->got_id, sizeof(p->said_id));
  p->ph->receipts++;
}

/* Each chat's receipt goes receipt_ms after the first message it says it
 * received, as the web client's debounce does: spread over time, not
 * all chats at once. */
static void on_receipt_tick(uv_timer_t *t) {
  phase_t *ph = t->data;
  uint64_t now = bc_now_ns();
  for (unsigned i = 0; i < ph->n_pairs; i++) {
    pair_t *p = &ph->pairs[i];
    if (p->receipt_due && p->receipt_due <= now) {
      p->receipt_due = 0;
      say_delivered(p);
    }
  }
}

static void on_delivered(pair_t *p, const bc_frame_t *f) {
  phase_t *ph = p->ph;
  uint64_t stamp, now = bc_now_ns();
  unsigned long k;
  if (!parse_text(f->msg_text, &stamp, &k) || k >= p->cap) {
    stop(ph, "a message.new with a text the bench did not send");
    return;
  }
  if (p->seen[k / 8] & (1u << (k % 8))) {
    ph->dups++;
    return;
  }
  p->seen[k / 8] |= (uint8_t)(1u << (k % 8));
  p->delivered++;
  ph->delivered++;
  if (ph->paced) bc_samples_add(&ph->lat, now > stamp ? now - stamp : 0);
  if (ph->o->receipt_ms >= 0 && f->msg_id.n && f->msg_id.n < sizeof(p->got_id) && id_newer(f->msg_id, p->got_id)) {
    memcpy(p->got_id, f->msg_id.p, f->msg_id.n);
    p->got_id[f->msg_id.n] = '\0';
    if (ph->o->receipt_ms == 0)
      say_delivered(p);
    else if (p->receipt_due == 0)
      p->receipt_due = now + (uint64_t)ph->o->receipt_ms * 1000000u;
  }
  maybe_done(ph);
}

static void queue_retry(pair_t *p, const bc_frame_t *f) {
  /* The number after the run prefix says which message to send again. */
  const char *dash = memchr(f->client_id.p, '-', f->client_id.n);
  if (dash == NULL) {
    stop(p->ph, "an error frame without our client_id");
    return;
  }
  unsigned long k = strtoul(dash + 1, NULL, 10);
  if (p->n_retries == p->cap_retries) {
    p->cap_retries = p->cap_retries ? 2 * p->cap_retries : 16;
    p->retries = bc_xrealloc(p->retries, p->cap_retries * sizeof(*p->retries));
  }
  /* The stamp is the first attempt's: the wait is part of the latency. */
  uint64_t now = bc_now_ns();
  long long wait_s = f->retry_after > 0 ? f->retry_after : 1;
  p->retries[p->n_retries++] = (retry_t){k, now, now + (uint64_t)wait_s * 1000000000u};
  p->ph->rate_limited++;
}

static void on_sender_frame(pair_t *p, const bc_frame_t *f) {
  phase_t *ph = p->ph;
  if (bc_span_eq(f->type, "ack")) {
    p->acked++;
    ph->acked++;
    if (!ph->paced && p->sent < p->quota) send_next(p, bc_now_ns());
    maybe_done(ph);
  } else if (bc_span_eq(f->type, "message.new")) {
    p->echoed++; /* the sender's own devices get its messages too */
  } else if (bc_span_eq(f->type, "error") && bc_span_eq(f->code, "rate_limited")) {
    queue_retry(p, f);
  } else if (bc_span_eq(f->type, "error")) {
    char why[200];
    snprintf(why, sizeof(why), "the server refused a send: %.*s", (int)f->code.n, f->code.p);
    stop(ph, why);
  }
}

static void on_settle(uv_timer_t *t);

static void on_text(bc_ws_t *ws, const char *data, size_t len) {
  end_t *e = bc_ws_udata(ws);
  pair_t *p = e->pair;
  phase_t *ph = p->ph;
  bc_frame_t f;
  if (bc_frame_scan(data, len, &f) < 0) {
    stop(ph, "a frame that is not a JSON object");
    return;
  }
  if (!e->ready) {
    if (bc_span_eq(f.type, "ready")) {
      e->ready = true;
      if (++ph->n_ready == 2 * ph->n_pairs) uv_timer_start(&ph->settle, on_settle, SETTLE_MS, 0);
    } else {
      char why[200];
      snprintf(why, sizeof(why), "hello was answered with %.*s", (int)(len > 150 ? 150 : len), data);
      stop(ph, why);
    }
    return;
  }
  if (e->sender) {
    on_sender_frame(p, &f);
  } else if (bc_span_eq(f.type, "message.new") && f.msg_sender.n && bc_span_eq(f.msg_sender, p->sender_id)) {
    on_delivered(p, &f);
  } else if (bc_span_eq(f.type, "error")) {
    char why[200];
    snprintf(why, sizeof(why), "the server refused a receiver's frame: %.*s", (int)f.code.n, f.code.p);
    stop(ph, why);
  }
}

static void send_hello(bc_ws_t *ws, const char *token) {
  char frame[256];
  /* A since past the stream's end starts at its end: no catch-up of the
   * events earlier rounds left (docs/protocol.md, the server clamps it). */
  int n = snprintf(frame, sizeof(frame), "{\"type\":\"hello\",\"token\":\"%s\",\"since\":9007199254740991}", token);
  bc_ws_send_text(ws, frame, (size_t)n);
}

static void on_open(bc_ws_t *ws) {
  end_t *e = bc_ws_udata(ws);
  pair_t *p = e->pair;
  const bc_state_t *st = p->ph->o->st;
  send_hello(ws, st->users[2 * p->idx + (e->sender ? 1 : 2)].token);
}

static void on_close(bc_ws_t *ws, int error, int close_code) {
  end_t *e = bc_ws_udata(ws);
  phase_t *ph = e->pair->ph;
  e->ws = NULL;
  ph->n_closed++;
  if (!ph->stopping) {
    char why[200];
    snprintf(why, sizeof(why), "a socket closed: %s, close code %d", error ? uv_strerror(error) : "by the server",
             close_code);
    stop(ph, why);
  }
}

static const bc_ws_cbs_t cbs = {on_open, on_text, on_close};

/* ---- pacing (latency) and retries ---- */

static void on_pace(uv_timer_t *t) {
  phase_t *ph = t->data;
  uint64_t now = bc_now_ns();
  double elapsed = (double)(now - ph->t_start) / 1e9;
  unsigned long due = (unsigned long)(elapsed * ph->o->rate);
  if (due > ph->total) due = ph->total;
  /* Each message is stamped with the time it was due, not the time this
   * timer got to it: a late tick counts against the latency, so that a
   * slow turn cannot hide its own delay (no coordinated omission). */
  while (ph->sent < due) {
    unsigned long i = ph->sent;
    uint64_t stamp = ph->t_start + (uint64_t)((double)i * 1e9 / ph->o->rate);
    send_next(&ph->pairs[i % ph->n_pairs], stamp);
  }
  if (ph->sent == ph->total) uv_timer_stop(&ph->pacer);
}

static void on_retry(uv_timer_t *t) {
  phase_t *ph = t->data;
  uint64_t now = bc_now_ns();
  for (unsigned i = 0; i < ph->n_pairs; i++) {
    pair_t *p = &ph->pairs[i];
    unsigned kept = 0;
    for (unsigned r = 0; r < p->n_retries; r++) {
      if (p->retries[r].due <= now)
        send_one(p, p->retries[r].k, ph->paced ? p->retries[r].stamp : now);
      else
        p->retries[kept++] = p->retries[r];
    }
    p->n_retries = kept;
  }
}

static void on_deadline(uv_timer_t *t) { stop(t->data, "the phase ran out of time"); }

static void on_settle(uv_timer_t *t) {
  phase_t *ph = t->data;
  if (ph->stopping) return;
  ph->started = true;
  ph->cpu_self = bc_cpu_seconds(getpid());
  ph->cpu_server = ph->o->server_pid ? bc_cpu_seconds(ph->o->server_pid) : -1;
  ph->t_start = bc_now_ns();
  if (ph->paced) {
    uv_timer_start(&ph->pacer, on_pace, PACE_MS, PACE_MS);
    if (ph->o->receipt_ms > 0) uv_timer_start(&ph->receipt, on_receipt_tick, 1, 1);
  } else {
    for (unsigned i = 0; i < ph->n_pairs; i++) {
      pair_t *p = &ph->pairs[i];
      for (unsigned w = 0; w < ph->o->window && p->sent < p->quota; w++)
        send_next(p, ph->t_start);
    }
  }
  uv_timer_start(&ph->retry, on_retry, 100, 100);
}

/* ---- the phase ---- */

static int run(const bc_opts_t *o, bool paced) {
  const bc_state_t *st = o->st;
  if (o->pairs == 0 || o->pairs > st->n_pairs) bc_die("--pairs must be 1..%u (the pairs setup made)", st->n_pairs);
  if (o->size < BC_TEXT_MIN || o->size > BC_TEXT_MAX) bc_die("--size must be %d..%d", BC_TEXT_MIN, BC_TEXT_MAX);
  phase_t *ph = bc_xcalloc(1, sizeof(*ph));
  ph->o = o;
  ph->paced = paced;
  ph->n_pairs = o->pairs;
  ph->total = paced ? (unsigned long)(o->rate * o->seconds) : o->messages;
  if (ph->total == 0) bc_die("nothing to send");
  uint8_t rnd[4];
  randombytes_buf(rnd, sizeof(rnd));
  snprintf(ph->run, sizeof(ph->run), "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
  bc_loop_init(&ph->l);
  uv_timer_init(&ph->l.uv, &ph->settle);
  uv_timer_init(&ph->l.uv, &ph->pacer);
  uv_timer_init(&ph->l.uv, &ph->retry);
  uv_timer_init(&ph->l.uv, &ph->deadline);
  uv_timer_init(&ph->l.uv, &ph->receipt);
  ph->settle.data = ph->pacer.data = ph->retry.data = ph->deadline.data = ph->receipt.data = ph;
  ph->pairs = bc_xcalloc(ph->n_pairs, sizeof(*ph->pairs));
  for (unsigned i = 0; i < ph->n_pairs; i++) {
    pair_t *p = &ph->pairs[i];
    p->ph = ph;
    p->idx = i;
    p->conv = st->pair_conv[i];
    p->sender_id = st->users[2 * i + 1].id;
    /* Throughput: the messages split evenly, the first pairs take the rest. */
    p->quota = ph->total / ph->n_pairs + (i < ph->total % ph->n_pairs);
    p->cap = paced ? ph->total / ph->n_pairs + 1 : p->quota;
    p->seen = bc_xcalloc(p->cap / 8 + 1, 1);
    for (int e = 0; e < 2; e++) {
      p->ends[e].pair = p;
      p->ends[e].sender = e == 0;
      p->ends[e].ws = bc_ws_connect(&ph->l, &o->server, NULL, &cbs, &p->ends[e]);
    }
  }
  uv_timer_start(&ph->deadline, on_deadline, (uint64_t)(o->timeout_s * 1000), 0);
  uv_run(&ph->l.uv, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&ph->settle, NULL);
  uv_close((uv_handle_t *)&ph->pacer, NULL);
  uv_close((uv_handle_t *)&ph->retry, NULL);
  uv_close((uv_handle_t *)&ph->deadline, NULL);
  uv_close((uv_handle_t *)&ph->receipt, NULL);
  bc_loop_close(&ph->l);

  unsigned long echoed = 0;
  for (unsigned i = 0; i < ph->n_pairs; i++)
    echoed += ph->pairs[i].echoed;
  double secs = ph->t_done ? (double)(ph->t_done - ph->t_start) / 1e9 : 0;
  double secs_acked = ph->t_acked ? (double)(ph->t_acked - ph->t_start) / 1e9 : 0;
  double cpu_self = ph->started ? bc_cpu_seconds(getpid()) - ph->cpu_self : 0;
  double cpu_server = ph->started && ph->cpu_server >= 0 ? bc_cpu_seconds(o->server_pid) - ph->cpu_server : -1;
  double wall = ph->started ? (double)((ph->t_done ? ph->t_done : bc_now_ns()) - ph->t_start) / 1e9 : 0;
  int rc = ph->failure[0] ? 1 : 0;
  if (paced) {
    printf(
        "latency pairs=%u size=%u rate=%.0f seconds=%.1f messages=%lu acked=%lu delivered=%lu lost=%lu dup=%lu "
        "rate_limited=%lu p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f",
        ph->n_pairs, o->size, o->rate, o->seconds, ph->total, ph->acked, ph->delivered, ph->total - ph->delivered,
        ph->dups, ph->rate_limited, (double)bc_samples_quantile(&ph->lat, 0.50) / 1e6,
        (double)bc_samples_quantile(&ph->lat, 0.99) / 1e6, (double)bc_samples_quantile(&ph->lat, 0.999) / 1e6,
        (double)bc_samples_quantile(&ph->lat, 1.0) / 1e6);
    if (o->receipt_ms >= 0) printf(" receipt_ms=%ld receipts=%lu", o->receipt_ms, ph->receipts);
  } else {
    printf(
        "throughput pairs=%u window=%u size=%u messages=%lu acked=%lu delivered=%lu echoed=%lu lost=%lu dup=%lu "
        "rate_limited=%lu seconds_acked=%.3f seconds=%.3f rate=%.0f",
        ph->n_pairs, o->window, o->size, ph->total, ph->acked, ph->delivered, echoed, ph->total - ph->delivered,
        ph->dups, ph->rate_limited, secs_acked, secs, secs > 0 ? (double)ph->total / secs : 0);
  }
  if (wall > 0) printf(" cpu_bench=%.2f", cpu_self / wall);
  if (wall > 0 && cpu_server >= 0) printf(" cpu_server=%.2f", cpu_server / wall);
  if (rc) printf(" failed=\"%s\"", ph->failure);
  printf("\n");
  fflush(stdout);
  for (unsigned i = 0; i < ph->n_pairs; i++) {
    free(ph->pairs[i].seen);
    free(ph->pairs[i].retries);
  }
  free(ph->pairs);
  bc_samples_free(&ph->lat);
  free(ph);
  return rc;
}

int bc_run_throughput(const bc_opts_t *o) { return run(o, false); }
int bc_run_latency(const bc_opts_t *o) { return run(o, true); }
