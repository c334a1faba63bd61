/* bench_chat: shared declarations of the messaging load generator (a WebSocket client on libuv, setup over HTTP, the
 * phases). */
#ifndef BENCH_CHAT_H
#define BENCH_CHAT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Every wait of the bench is bounded: a phase that does not finish within
 * its limit stops and says so instead of hanging the run. */
#define BC_CONNECT_TIMEOUT_MS 30000
#define BC_DRAIN_TIMEOUT_MS 60000
/* Larger than any frame the server sends (64 KiB messages, catch-up pages
 * of 256 KiB are many frames): a bigger length is a broken stream. */
#define BC_MAX_FRAME (4u << 20)
/* Text of a benchmark message: the send time, the message number, padding. */
#define BC_TEXT_MIN 40
#define BC_TEXT_MAX 4000

/* ---- util.c ---- */

/* CLOCK_MONOTONIC in nanoseconds: one clock for every process of the
 * machine, so a stamp taken by one process is comparable in another. */
uint64_t bc_now_ns(void);
/* Prints "bench_chat: <message>" to stderr and exits 1: the bench has no
 * way to go on when its setup fails. */
_Noreturn void bc_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *bc_xmalloc(size_t n);
void *bc_xcalloc(size_t n, size_t size);
void *bc_xrealloc(void *p, size_t n);

/* A growable byte buffer; zero-initialised is empty. */
typedef struct {
  char *data;
  size_t len, cap;
} bc_buf_t;

void bc_buf_reserve(bc_buf_t *b, size_t extra);
void bc_buf_append(bc_buf_t *b, const void *p, size_t n);
void bc_buf_printf(bc_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void bc_buf_consume(bc_buf_t *b, size_t n);
void bc_buf_free(bc_buf_t *b);

/* Latency samples in nanoseconds. */
typedef struct {
  uint64_t *v;
  size_t n, cap;
} bc_samples_t;

void bc_samples_add(bc_samples_t *s, uint64_t ns);
/* The q-quantile (0..1) by nearest rank; sorts the samples. 0 when empty. */
uint64_t bc_samples_quantile(bc_samples_t *s, double q);
void bc_samples_free(bc_samples_t *s);

/* VmRSS of a process in KiB from /proc/PID/status, or -1. */
long bc_rss_kib(int pid);
/* User plus system CPU time of a process in seconds from /proc/PID/stat, or -1. */
double bc_cpu_seconds(int pid);
/* "HOST:PORT" (IPv4 only: the bench runs on loopback) into addr. */
int bc_parse_addr(const char *s, struct sockaddr_in *addr);

/* A fast generator for WebSocket masking keys and padding: the mask only
 * keeps proxies from mistaking frames for HTTP, and there is no proxy on
 * loopback, so a cryptographic generator would spend the client's CPU for
 * nothing. Seeded from libsodium. */
uint32_t bc_rand32(uint64_t *state);

/* ---- state.c: the users, tokens and conversations made by setup ---- */

typedef struct {
  char id[24];
  char token[64];
} bc_user_t;

typedef struct {
  unsigned n_users;
  bc_user_t *users; /* users[0] owns the group; users[1..n_users) are its members */
  unsigned n_pairs;
  char (*pair_conv)[24]; /* the direct chat of users[2p+1] (sender) and users[2p+2] (receiver) */
  char group_conv[24];
} bc_state_t;

/* Writes st to path with mode 0600 (it holds tokens). */
void bc_state_save(const bc_state_t *st, const char *path);
/* Reads path into st; exits on a malformed file. */
void bc_state_load(bc_state_t *st, const char *path);
void bc_state_free(bc_state_t *st);

/* ---- setup.c ---- */

/* Creates n_users accounts (Argon2 on the server, a few at a time), makes
 * users[1..n) contacts of users[0] and each pair a pair of contacts, opens
 * the pairs' direct chats and the group of users[0..n). */
void bc_setup(const struct sockaddr_in *server, unsigned n_users, unsigned n_pairs, bc_state_t *st);

/* ---- frame.c: the fields of a server frame the bench needs ---- */

/* A view of a JSON string's raw contents (escapes left as they are: the
 * bench compares only values it wrote itself, which have none). */
typedef struct {
  const char *p;
  size_t n;
} bc_span_t;

typedef struct {
  bc_span_t type, client_id, code;          /* top level */
  bc_span_t msg_id, msg_text, msg_conv, msg_sender; /* of "message" */
  long long retry_after;                    /* top level, -1 when absent */
} bc_frame_t;

/* Scans one JSON object for the members above in a single pass without
 * building a tree (the bench parses hundreds of thousands of frames a
 * second on a core it shares with the server). Returns 0, or -1 when the
 * text is not a JSON object. */
int bc_frame_scan(const char *json, size_t len, bc_frame_t *f);
bool bc_span_eq(bc_span_t s, const char *lit);

/* ---- wsc.c: WebSocket client connections on a libuv loop ---- */

typedef struct bc_loop_s bc_loop_t;
typedef struct bc_ws_s bc_ws_t;

typedef struct {
  /* The upgrade was answered with 101. */
  void (*on_open)(bc_ws_t *ws);
  /* One whole text message; data is valid during the call. */
  void (*on_text)(bc_ws_t *ws, const char *data, size_t len);
  /* The connection is gone (error is a libuv error or 0, close_code the
   * peer's close code or 0). ws is freed after this returns. */
  void (*on_close)(bc_ws_t *ws, int error, int close_code);
} bc_ws_cbs_t;

/* A loop with the bench's write coalescing: frames queued during one turn
 * of the loop go out in one write per connection, after the turn. */
struct bc_loop_s {
  uv_loop_t uv;
  /* Frames queued by timers go out before the loop polls, frames queued by
   * reads and writes after it: either way in the turn that made them. */
  uv_prepare_t flush_before;
  uv_check_t flush_after;
  bc_ws_t *dirty; /* connections with queued frames */
  uint64_t rng;
  unsigned n_open; /* connections not yet closed */
  /* Reads land here and only a frame's incomplete tail is copied to the
   * connection: 19,000 idle sockets must not each hold a read buffer. */
  char rbuf[64 * 1024];
};

void bc_loop_init(bc_loop_t *l);
/* Runs the loop until every handle is closed, then closes it. */
void bc_loop_close(bc_loop_t *l);

/* Connects to server (from src when not NULL: a loopback source address
 * other than 127.0.0.1 gives another 28,000 ephemeral ports) and upgrades
 * to a WebSocket at /v1/ws. The callbacks follow; udata is the caller's. */
bc_ws_t *bc_ws_connect(bc_loop_t *l, const struct sockaddr_in *server, const struct sockaddr_in *src,
                       const bc_ws_cbs_t *cbs, void *udata);
void *bc_ws_udata(const bc_ws_t *ws);
/* Queues one masked text frame; it is written after this turn of the loop. */
void bc_ws_send_text(bc_ws_t *ws, const char *data, size_t len);
/* Closes the TCP connection now (on_close follows). */
void bc_ws_close(bc_ws_t *ws);

/* ---- the phases ---- */

typedef struct {
  struct sockaddr_in server;
  const bc_state_t *st;
  unsigned pairs, window, size;
  /* throughput: messages in all; latency: rate a second for seconds */
  unsigned long messages;
  double rate, seconds;
  unsigned fanout_messages;
  int server_pid;   /* plazad, for its CPU time; 0: not reported */
  double timeout_s; /* the whole phase, connections to last delivery */
  /* latency: each receiver says what it received, as the web client does:
   * at most one delivered receipt per chat per receipt_ms (-1: none) */
  long receipt_ms;
} bc_opts_t;

/* (1) and (2): 1:1 messages between pair sockets; print one result line. */
int bc_run_throughput(const bc_opts_t *o);
int bc_run_latency(const bc_opts_t *o);
/* (3): one message at a time to the group, every member with a socket. */
int bc_run_fanout(const bc_opts_t *o);
/* (4): idle authenticated sockets, opened by worker processes. */
int bc_run_idle(const struct sockaddr_in *server, const char *state_path, const char *self_exe, int pid,
                const unsigned *counts, unsigned n_counts, unsigned per_proc);
int bc_run_idle_worker(const struct sockaddr_in *server, const bc_state_t *st, unsigned conns, unsigned first,
                       const char *src_ip);

#endif
