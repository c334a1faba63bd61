/* The network core: one libuv loop, HTTP/1.1 (http-parser), a router, WebSocket (wslay), static files. */
#ifndef PLAZA_NET_H
#define PLAZA_NET_H

#include <stdint.h>
#include <stdbool.h>
#include <uv.h>
#include "plaza/str.h"
#include "plaza/error.h"

typedef struct pz_server_s pz_server_t;
typedef struct pz_req_s pz_req_t;
typedef struct pz_ws_s pz_ws_t;
typedef struct pz_router_s pz_router_t;

/* Limits of the network core; every one of them is enforced with a clear
 * error (HTTP status or WebSocket close code). Zero fields take defaults. */
typedef struct pz_net_limits_s {
  size_t max_header_bytes;    /* request line + headers; 431 beyond. Default 16 KiB */
  size_t max_body_bytes;      /* 413 beyond. Default 1 MiB */
  size_t max_body_memory;     /* bodies of all requests held at once (declared, then as they
                                 grow); 503 beyond, before a byte is read. Default 256 MiB */
  unsigned request_timeout_ms;/* a started request must arrive whole within; 408. Default 30 s */
  unsigned idle_timeout_ms;   /* keep-alive connection with no request; closed. Default 60 s */
  unsigned max_connections;   /* beyond: accept, answer 503, close. Default 10000 */
  size_t ws_max_message;      /* WebSocket message; close 1009 beyond. Default 64 KiB */
  size_t ws_max_backlog;      /* unsent bytes queued to one socket; close 1008 beyond. Default 1 MiB */
  unsigned ws_ping_ms;        /* ping an idle socket after; close if no pong by the next. Default 30 s */
} pz_net_limits_t;

enum {
  PZ_HTTP_GET = 1 << 0,
  PZ_HTTP_HEAD = 1 << 1,
  PZ_HTTP_POST = 1 << 2,
  PZ_HTTP_PUT = 1 << 3,
  PZ_HTTP_PATCH = 1 << 4,
  PZ_HTTP_DELETE = 1 << 5,
  PZ_HTTP_OPTIONS = 1 << 6,
};

/* A handler runs on the loop thread. It answers now or later, exactly once,
 * with one of the pz_req_respond* calls; until then the request (and its
 * arena) stays alive even if the client goes away, in which case the answer
 * is dropped. It must not block: disk and CPU-heavy work go to store/ jobs
 * or uv_queue_work. */
typedef void (*pz_handler_cb)(pz_req_t *req);

#define PZ_ROUTE_MAX_PARAMS 4

struct pz_req_s {
  pz_arena_t *arena;       /* temporary memory, freed after the response is sent */
  pz_server_t *server;
  int method;              /* one PZ_HTTP_* bit */
  pz_str_t method_name;    /* "GET", ... */
  pz_str_t path;           /* percent-decoded path without the query */
  pz_str_t query;          /* raw query string without '?', may be empty */
  pz_str_t body;           /* whole body (bounded by max_body_bytes) */
  pz_str_t params[PZ_ROUTE_MAX_PARAMS]; /* route parameters, in pattern order */
  int n_params;
  void *route_data;        /* the udata given to pz_router_add */
  int route_id;            /* for metrics */
  char id[17];             /* request id: 16 hex digits, NUL-terminated */
  char remote_addr[48];    /* client IP address, NUL-terminated */
  uint64_t start_ns;
  /* Free for the application (api/) to fill, e.g. after authentication. */
  int64_t user_id;
  int64_t session_id;
  void *app;
};

/* Header lookup, case-insensitive; returns an empty view when absent. */
pz_str_t pz_req_header(const pz_req_t *req, const char *name);
/* Query parameter `key`, percent-decoded into the arena; returns false when absent. */
bool pz_req_query(pz_req_t *req, const char *key, pz_str_t *out);
/* Adds a response header (copied). Call before responding. */
void pz_req_add_header(pz_req_t *req, const char *name, const char *value);
/* Answers the request: status, content type (NULL for none) and body
 * (copied). Exactly once per request. */
void pz_req_respond(pz_req_t *req, int status, const char *content_type, const void *body, size_t len);
/* Answers with the error envelope {"error":{"code","message"}} from err. */
void pz_req_respond_err(pz_req_t *req, const pz_err_t *err);
/* Shorthand for pz_req_respond_err with the table's defaults for code. */
void pz_req_respond_code(pz_req_t *req, int code);
/* True while the client connection is still open. */
bool pz_req_connected(const pz_req_t *req);

/* ---- router ---- */

/* Patterns are literal segments and `{name}` parameters: "/v1/contacts/requests/{id}/accept".
 * methods is a mask of PZ_HTTP_*. A path that matches a pattern but not its
 * method gets 405 with Allow; a path that matches nothing gets 404 (or a
 * static file, see pz_server_serve_static). */
void pz_router_add(pz_router_t *router, int methods, const char *pattern, pz_handler_cb handler, void *udata);
/* Gives the routes added with exactly this pattern a body limit of their
 * own in place of max_body_bytes (uploads take more than JSON calls). It
 * is applied when the headers are complete, before a byte of the body is
 * read: a request to any other route keeps the server's limit. Call after
 * pz_router_add and before the server starts. */
void pz_router_set_max_body(pz_router_t *router, const char *pattern, size_t max_body);

/* ---- WebSocket ---- */

typedef struct pz_ws_cbs_s {
  /* A whole message (text messages are checked to be valid UTF-8 first;
   * invalid text closes with 1007). data is borrowed for the call. */
  void (*on_message)(pz_ws_t *ws, bool is_text, const char *data, size_t len);
  /* The socket is gone (close handshake, error, timeout, backlog or server
   * stop). ws is freed after this returns; code is the close code. */
  void (*on_close)(pz_ws_t *ws, int code);
} pz_ws_cbs_t;

/* Upgrades the request's connection to a WebSocket (RFC 6455). On success
 * the 101 response is sent, the request is finished, and *out is the socket;
 * on failure (not a valid upgrade request) returns PZ_EINVAL and the caller
 * still has to answer req (usually 400). Returns PZ_EIO when the client has
 * gone already; req still has to be answered (the answer is dropped). */
int pz_req_upgrade_ws(pz_req_t *req, const pz_ws_cbs_t *cbs, void *udata, pz_ws_t **out);
/* Queues a message; returns PZ_EIO if the socket is closing, or closes it
 * with 1008 and returns PZ_ETOOBIG when the unsent backlog would pass
 * ws_max_backlog. Loop thread. */
int pz_ws_send(pz_ws_t *ws, bool is_text, const char *data, size_t len);
/* Starts the close handshake with code and a short reason. */
void pz_ws_close(pz_ws_t *ws, int code, const char *reason);
void *pz_ws_udata(const pz_ws_t *ws);
void pz_ws_set_udata(pz_ws_t *ws, void *udata);
/* The request id of the upgrade request, for logs. */
const char *pz_ws_id(const pz_ws_t *ws);

/* ---- server ---- */

typedef struct pz_server_config_s {
  const char *listen;       /* "127.0.0.1:8080" or "[::1]:8080" */
  pz_net_limits_t limits;
  bool access_log;          /* one log line per request at info level */
} pz_server_config_t;

/* Creates a server on loop; returns 0 or a negative PZ_E code with err filled.
 * Caller frees with pz_server_free after the loop has stopped. */
int pz_server_new(pz_server_t **out, uv_loop_t *loop, const pz_server_config_t *cfg, pz_err_t *err);
pz_router_t *pz_server_router(pz_server_t *srv);
/* Serves files under dir (read into memory now) for GET/HEAD paths that no
 * route matches and that do not start with /v1/; "/" serves index.html.
 * Content types by extension, a strong ETag, Cache-Control. Returns 0 or error. */
int pz_server_serve_static(pz_server_t *srv, const char *dir, pz_err_t *err);
/* Binds and listens. */
int pz_server_start(pz_server_t *srv, pz_err_t *err);
/* Graceful stop: stop accepting, let in-flight requests finish (their
 * responses are sent with Connection: close), close idle keep-alive
 * connections and WebSockets (1001). done is called on the loop thread once
 * every connection is closed, or after timeout_ms, when the rest are cut. */
void pz_server_shutdown(pz_server_t *srv, unsigned timeout_ms, void (*done)(pz_server_t *srv, void *arg), void *arg);
void pz_server_free(pz_server_t *srv);
/* Number of open connections (HTTP and WebSocket). */
unsigned pz_server_connections(const pz_server_t *srv);

#endif
