/* Internal to net/: the server, connection and request structs shared by the files of src/net. */
#ifndef PLAZA_NET_INTERNAL_H
#define PLAZA_NET_INTERNAL_H

#include <http_parser.h>
#include <stdint.h>
#include "plaza/net.h"

/* Size of the loop-wide read buffer. Every socket reads into it; only bytes
 * a connection cannot consume yet are copied to that connection. */
#define PZ__READ_BUF (64 * 1024)
/* Unconsumed input a connection may hold before we stop reading from it. */
#define PZ__IN_MAX (64 * 1024)
/* How long a closing connection waits for the peer's FIN (or a WebSocket
 * close reply) before the socket is cut. */
#define PZ__LINGER_MS 2000u
/* Bytes discarded while lingering before the socket is cut. */
#define PZ__LINGER_MAX (256 * 1024)
/* Corked output a connection may gather before it is written at once,
 * without waiting for the end of the loop turn: it keeps writes large
 * and the backlog bound close to what the kernel holds. */
#define PZ__CORK_MAX (64 * 1024)
/* Header lines per request; 431 beyond. */
#define PZ__MAX_HEADERS 100

typedef struct pz_conn_s pz_conn_t;
typedef struct pz_http_s pz_http_t;
typedef struct pz__static_s pz__static_t;
typedef struct pz__route_s pz__route_t;

/* Timer lists. A connection waits on at most one of them. Every entry of a
 * list has the same timeout, so appending at the tail keeps the list sorted
 * by deadline and the sweep only looks at the heads. */
enum { PZ__TL_NONE, PZ__TL_REQ, PZ__TL_IDLE, PZ__TL_WS, PZ__TL_LINGER, PZ__TL_N };

typedef struct pz__tlist_s {
  pz_conn_t *head, *tail;
  uint64_t timeout_ms;
} pz__tlist_t;

enum {
  PZ__C_HTTP,   /* HTTP/1.1: between requests, reading one, running its handler or writing its response */
  PZ__C_WS,     /* upgraded */
  PZ__C_LINGER, /* last bytes queued, FIN sent, discarding input until the peer's FIN */
  PZ__C_CLOSED, /* uv_close called; freed in its callback */
};

/* Bytes handed to uv_write that the kernel did not take at once: the
 * head is owned, the tail borrowed (a static file, alive as long as the
 * server). Allocated only when a write does not complete at once. */
typedef struct pz__flight_s {
  uv_write_t req;
  pz_buf_t buf;
  size_t off;
  const char *tail;
  size_t tail_len;
} pz__flight_t;

struct pz_conn_s {
  uv_tcp_t tcp;
  pz_server_t *srv;
  pz_conn_t *prev, *next;   /* every connection of the server */
  pz_conn_t *tprev, *tnext; /* timer list */
  pz_conn_t *dprev, *dnext; /* deferred-work list */
  pz_conn_t *cprev, *cnext; /* corked list: output to write at the end of this loop turn */
  uint64_t deadline;        /* loop time (ms) at which the timer list expires us */
  pz_http_t *http;          /* HTTP state; NULL once upgraded, or handed to a pending request */
  pz_ws_t *ws;              /* WebSocket state once upgraded */
  pz_buf_t in;              /* input not consumed yet (a pipelined request, early frames) */
  pz_buf_t pend;            /* output not handed to the kernel yet */
  pz__flight_t *flight;     /* the write libuv holds, if any */
  uv_shutdown_t *shut;
  size_t discarded; /* bytes read and dropped while lingering */
  uint8_t state;
  uint8_t tlist;
  unsigned in_input : 1;    /* inside conn_input: nested resumes are no-ops */
  unsigned deferred : 1;    /* on the deferred-work list */
  unsigned corked : 1;      /* on the corked list */
  unsigned reading : 1;     /* uv_read_start is in effect */
  unsigned read_eof : 1;    /* the peer sent FIN */
  unsigned rejected : 1;    /* accepted beyond max_connections: answered 503 and closed */
  unsigned fake : 1;        /* driven from memory by pz__conn_feed, no socket */
  unsigned fake_closed : 1; /* fake: "uv_close" happened, the close callback is due */
};

/* One header line: offsets into pz_http_t.hbuf (which may move while it grows). */
typedef struct pz__hdr_s {
  uint32_t name_off, name_len, val_off, val_len;
} pz__hdr_t;

enum {
  PZ__H_IDLE,    /* between requests */
  PZ__H_READING, /* a request has started and is not complete */
  PZ__H_HANDLER, /* complete, dispatched; waiting for pz_req_respond */
  PZ__H_WRITING, /* answered; the response is still being written */
};

/* A connection's request state, reused from one request to the next. A
 * request whose connection closes while its handler runs keeps this
 * struct (conn == NULL) until the handler answers. */
struct pz_http_s {
  pz_req_t req; /* first: pz_req_t * converts to pz_http_t * */
  pz_conn_t *conn;
  pz_http_t *oprev, *onext; /* server's orphan list while conn == NULL */
  http_parser parser;
  pz_buf_t hbuf; /* the URL, then header names and values */
  pz_buf_t hidx; /* pz__hdr_t entries */
  pz_buf_t body;
  pz_buf_t rhdr; /* extra response header lines, "Name: value\r\n" */
  uint32_t url_len;
  size_t header_bytes;
  size_t max_body; /* this request's body limit: the route's, or the server's */
  size_t body_held; /* bytes of the server's max_body_memory this request holds */
  int err; /* PZ_E code set by a parser callback that failed */
  uint8_t phase;
  unsigned in_value : 1;   /* the last header callback was a value */
  unsigned keep_alive : 1; /* the connection stays open after this response */
  unsigned upgrade : 1;    /* the request asked for a protocol upgrade */
  unsigned http10 : 1;
};

struct pz_router_s {
  pz__route_t *routes;
  int n_routes, cap;
  size_t max_route_body; /* the largest limit of pz_router_set_max_body; 0 for none */
};

struct pz_server_s {
  uv_loop_t *loop;
  char *listen;
  pz_net_limits_t lim;
  size_t body_bytes; /* what the requests on every connection hold of lim.max_body_memory */
  bool access_log;
  uv_tcp_t listener;
  uv_timer_t timer;       /* sweeps the timer lists */
  uv_timer_t stop_timer;  /* graceful shutdown deadline */
  uv_idle_t defer;        /* runs deferred work on the next loop iteration */
  uv_check_t cork_check;  /* writes corked output after the poll phase's callbacks */
  uv_prepare_t cork_prep; /* and, before the loop blocks, what timers and close callbacks corked */
  int handles_open;       /* of listener, timer, stop_timer, defer, cork_check, cork_prep */
  bool started, stopping, listener_open, done_called;
  void (*done)(pz_server_t *srv, void *arg);
  void *done_arg;
  pz_router_t router;
  pz__static_t *statics;
  int static_route_id;
  pz_conn_t *conns;
  unsigned n_conns, n_rejecting;
  pz_conn_t *dhead, *dtail; /* deferred work */
  pz_conn_t *chead, *ctail; /* corked connections */
  pz_http_t *orphans;
  pz__tlist_t tl[PZ__TL_N];
  int port;
  uint64_t rid_base, rid_seq;
  char date[40]; /* "Date: ...\r\n", refreshed once a second */
  size_t date_len;
  int64_t date_sec;
  uint64_t date_checked;
  pz_buf_t *fake_sink; /* pz__conn_feed: where fake connections' output goes */
  bool ws_slow_only;   /* fuzzing: every WebSocket frame through wslay, to compare with the fast path */
  char rbuf[PZ__READ_BUF];
};

/* ---- server.c ---- */
void pz__conn_tl_set(pz_conn_t *c, int list);
void pz__conn_tl_remove(pz_conn_t *c);
/* Hands pend, then tail (borrowed), to the socket; what does not go at
 * once is queued. Returns 0, or a negative code after closing the
 * connection. */
int pz__conn_flush(pz_conn_t *c, const char *tail, size_t tail_len);
/* The caller appended to c->pend: it is written within this loop turn,
 * together with whatever else the connection gets meanwhile (one write
 * for many WebSocket frames), or at once past PZ__CORK_MAX. A connection
 * without a socket writes at once. A direct pz__conn_flush takes the
 * corked bytes along. */
void pz__conn_cork(pz_conn_t *c);
/* Bytes queued for the socket and not yet taken by the kernel (corked
 * ones included). */
size_t pz__conn_backlog(const pz_conn_t *c);
/* Graceful end: queued output goes, FIN follows, input is drained and dropped. */
void pz__conn_linger(pz_conn_t *c);
/* Abrupt end: the socket is closed now; what libuv still holds is lost
 * (what the kernel took is still delivered). */
void pz__conn_close(pz_conn_t *c);
/* Abrupt end with a reset: the kernel drops what it has not sent either,
 * for a peer that does not read. */
void pz__conn_abort(pz_conn_t *c);
/* Runs pz__conn_resume on the next loop iteration. */
void pz__conn_defer(pz_conn_t *c);
/* Processes input held in c->in (after an asynchronous answer or upgrade). */
void pz__conn_resume(pz_conn_t *c);
void pz__conn_read_start(pz_conn_t *c);
void pz__conn_read_stop(pz_conn_t *c);
/* The bound port (after pz_server_start), for tests that listen on port 0. */
int pz__server_port(const pz_server_t *srv);

/* Fuzzing and tests: a connection without a socket. Its output is
 * appended to *sink (which may be NULL to drop it). Caller ends it with
 * pz__conn_fake_end, which simulates the peer going away. */
pz_conn_t *pz__conn_fake_new(pz_server_t *srv, pz_buf_t *sink);
/* Feeds bytes as if read from the socket. Returns 0, or -1 once the
 * connection is closed (further input is ignored). */
int pz__conn_feed(pz_conn_t *c, const char *data, size_t len);
void pz__conn_fake_end(pz_conn_t *c);

/* ---- http.c ---- */
pz_http_t *pz__http_new(pz_conn_t *c, const char *remote_addr);
/* Frees h (which no connection references any more). */
void pz__http_free(pz_http_t *h);
/* Consumes HTTP input; returns bytes consumed (less than len when a
 * request waits for its answer, or the connection changed protocol). */
size_t pz__http_input(pz_conn_t *c, const char *data, size_t len);
/* The connection is closing: detach or free its request state. */
void pz__http_detach(pz_conn_t *c);
/* Timer list expiry while reading a request (408) or writing a response. */
void pz__http_timeout(pz_conn_t *c);
/* A queued response has been fully written. */
void pz__http_written(pz_conn_t *c);
/* Server shutdown: idle connections close now, busy ones after their response. */
void pz__http_shutdown(pz_conn_t *c);
/* Appends the cached "Date: ...\r\n" line. */
void pz__http_date(pz_server_t *srv, pz_buf_t *out);
/* The 503 answer to a connection accepted beyond max_connections. */
void pz__http_reject(pz_conn_t *c);
/* Answers with a borrowed body that outlives the server's connections
 * (static files): no copy. Extra headers as with pz_req_add_header. */
void pz__req_respond_borrowed(pz_req_t *req, int status, const char *content_type, const void *body, size_t len);
/* Decodes %XX escapes (and '+' as space when plus is set) into out, which
 * has room for len bytes; returns the decoded length, or -1 for an invalid
 * escape or a NUL byte. */
long pz__pct_decode(const char *s, size_t len, char *out, bool plus);

/* ---- router.c ---- */
void pz__router_free(pz_router_t *r);
/* Routes req (its path is decoded already): on a match sets route_data,
 * params and route_id and returns the handler; otherwise returns NULL and
 * *allow is the mask of methods the path accepts (0: no pattern matched). */
pz_handler_cb pz__router_match(pz_router_t *r, pz_req_t *req, pz_str_t raw_path, int *allow);
/* The body limit of the route that req (method set, path not decoded yet)
 * goes to: its own from pz_router_set_max_body, else dflt. */
size_t pz__router_max_body(pz_router_t *r, pz_req_t *req, pz_str_t raw_path, size_t dflt);

/* ---- static.c ---- */
void pz__static_free(pz__static_t *st);
/* Answers req from the in-memory files if a file (or the single-page
 * fallback) fits; returns false (req unanswered) otherwise. */
bool pz__static_serve(pz_server_t *srv, pz_req_t *req);

/* ---- ws.c ---- */
/* Consumes WebSocket input; returns bytes consumed (all of them unless the
 * socket started closing). */
size_t pz__ws_input(pz_conn_t *c, const char *data, size_t len);
/* The peer sent FIN or the socket failed: the socket goes without a close frame. */
void pz__ws_eof(pz_conn_t *c);
/* Timer list expiry: ping, or give up on a peer that did not answer the last one. */
void pz__ws_timeout(pz_conn_t *c);
/* The socket is closed: calls on_close and frees the WebSocket. */
void pz__ws_closed(pz_conn_t *c);
/* Server shutdown: close 1001. */
void pz__ws_shutdown(pz_conn_t *c);

/* ---- sha1.c ---- */
/* SHA-1 of data into out (20 bytes). Only for the WebSocket handshake,
 * which RFC 6455 defines with it; never for anything secret. */
void pz__sha1(const void *data, size_t len, uint8_t out[20]);

#endif
