/* HTTP/1.1 on http-parser: one request at a time per connection, limits, dispatch, answers, error envelopes. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "net/net_internal.h"
#include "plaza/id.h"
#include "plaza/log.h"
#include "plaza/metrics.h"

/* First block of a request's arena; most requests never need a second. */
#define ARENA_FIRST 4096
/* A body buffer larger than this is released after its request rather
 * than kept for the next one. */
#define BODY_KEEP (64 * 1024)

static int on_message_begin(http_parser *p);
static int on_url(http_parser *p, const char *at, size_t len);
static int on_header_field(http_parser *p, const char *at, size_t len);
static int on_header_value(http_parser *p, const char *at, size_t len);
static int on_headers_complete(http_parser *p);
static int on_body(http_parser *p, const char *at, size_t len);
static int on_message_complete(http_parser *p);

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void respond(pz_http_t *h, int status, const char *ctype, const void *body, size_t len, bool borrowed);
static void respond_err(pz_http_t *h, const pz_err_t *err);

/* ---- small formatting helpers (the hot path avoids printf) ---- */

static inline void put(pz_buf_t *b, const char *s, size_t n) { pz_buf_append(b, s, n); }
#define PUT_LIT(b, lit) put((b), (lit), sizeof(lit) - 1)

static void put_u64(pz_buf_t *b, uint64_t v) {
  char tmp[24];
  size_t i = sizeof(tmp);
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  put(b, tmp + i, sizeof(tmp) - i);
}

static void make_id(pz_http_t *h) {
  static const char hex[] = "0123456789abcdef";
  pz_server_t *srv = h->req.server;
  /* Adding an odd multiple of the counter is a bijection on 64 bits: ids
   * never repeat within a process, yet do not look sequential. */
  uint64_t x = srv->rid_base + ++srv->rid_seq * 0x9E3779B97F4A7C15ull;
  for (int i = 15; i >= 0; i--, x >>= 4)
    h->req.id[i] = hex[x & 15];
  h->req.id[16] = '\0';
}

void pz__http_date(pz_server_t *srv, pz_buf_t *out) {
  static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  uint64_t now = uv_now(srv->loop);
  /* time() is read at most once per loop millisecond, formatted once a second. */
  if (now != srv->date_checked || srv->date_len == 0) {
    srv->date_checked = now;
    time_t t = time(NULL);
    if ((int64_t)t != srv->date_sec || srv->date_len == 0) {
      struct tm tm;
      gmtime_r(&t, &tm);
      int n =
          snprintf(srv->date, sizeof(srv->date), "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n", days[tm.tm_wday % 7],
                   tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
      srv->date_len = n > 0 && (size_t)n < sizeof(srv->date) ? (size_t)n : 0;
      srv->date_sec = (int64_t)t;
    }
  }
  put(out, srv->date, srv->date_len);
}

/* ---- lifetime ---- */

pz_http_t *pz__http_new(pz_conn_t *c, const char *remote_addr) {
  pz_http_t *h = pz_calloc(1, sizeof(*h));
  h->conn = c;
  h->req.server = c->srv;
  h->req.arena = pz_arena_new(ARENA_FIRST);
  snprintf(h->req.remote_addr, sizeof(h->req.remote_addr), "%s", remote_addr);
  http_parser_init(&h->parser, HTTP_REQUEST);
  h->parser.data = h;
  return h;
}

/* Request bodies are bounded one by one (max_body), and together: 10 MiB
 * uploads on thousands of connections would otherwise hold more memory
 * than the machine has. A request holds its declared length from its
 * headers on, and more as a chunked body grows, until its answer is
 * written (or its connection ends first). */
static bool body_hold(pz_http_t *h, size_t n) {
  pz_server_t *srv = h->req.server;
  if (n > srv->lim.max_body_memory - srv->body_bytes) return false;
  srv->body_bytes += n;
  h->body_held += n;
  return true;
}

/* The request is done with its body: a large buffer goes (a small one is
 * kept for the connection's next request), and so does its hold. */
static void body_done(pz_http_t *h) {
  if (h->body.cap > BODY_KEEP) pz_buf_free(&h->body);
  h->body.len = 0;
  h->req.server->body_bytes -= h->body_held;
  h->body_held = 0;
}

void pz__http_free(pz_http_t *h) {
  if (h == NULL) return;
  body_done(h);
  pz_arena_free(h->req.arena);
  pz_buf_free(&h->hbuf);
  pz_buf_free(&h->hidx);
  pz_buf_free(&h->body);
  pz_buf_free(&h->rhdr);
  pz_free(h);
}

void pz__http_detach(pz_conn_t *c) {
  pz_http_t *h = c->http;
  if (h == NULL) return;
  c->http = NULL;
  if (h->phase != PZ__H_HANDLER) {
    pz__http_free(h);
    return;
  }
  /* The handler still holds the request: it stays valid until answered. */
  pz_server_t *srv = h->req.server;
  h->conn = NULL;
  h->oprev = NULL;
  h->onext = srv->orphans;
  if (srv->orphans) srv->orphans->oprev = h;
  srv->orphans = h;
}

/* ---- parser callbacks ---- */

static int fail_cb(pz_http_t *h, int code) {
  h->err = code;
  return -1;
}

static int count_header_bytes(pz_http_t *h, size_t n) {
  h->header_bytes += n;
  return h->header_bytes > h->req.server->lim.max_header_bytes ? -1 : 0;
}

/* Clears what the previous request on this connection left. */
static void reset_request(pz_http_t *h) {
  pz_req_t *r = &h->req;
  r->method = 0;
  r->method_name = r->path = r->query = r->body = PZ_STR_NULL;
  memset(r->params, 0, sizeof(r->params));
  r->n_params = 0;
  r->route_data = NULL;
  r->route_id = 0;
  r->user_id = r->session_id = 0;
  r->app = NULL;
  r->start_ns = pz_mono_ns();
  make_id(h);
  h->hbuf.len = h->hidx.len = h->rhdr.len = 0;
  body_done(h);
  h->url_len = 0;
  h->max_body = r->server->lim.max_body_bytes;
  /* The request line's method, spaces, version and CRLF. */
  h->header_bytes = 16;
  h->err = 0;
  h->in_value = 0;
  h->keep_alive = h->upgrade = h->http10 = 0;
}

static int on_message_begin(http_parser *p) {
  pz_http_t *h = p->data;
  reset_request(h);
  h->phase = PZ__H_READING;
  pz__conn_tl_set(h->conn, PZ__TL_REQ);
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  pz_http_t *h = p->data;
  if (count_header_bytes(h, len)) return fail_cb(h, PZ_EHDRTOOBIG);
  pz_buf_append(&h->hbuf, at, len);
  h->url_len += (uint32_t)len;
  return 0;
}

static pz__hdr_t *last_hdr(pz_http_t *h) { return (pz__hdr_t *)(h->hidx.data + h->hidx.len) - 1; }

static int on_header_field(http_parser *p, const char *at, size_t len) {
  pz_http_t *h = p->data;
  /* Names and values may arrive in pieces; a name after a value starts a new line. */
  if (h->hidx.len == 0 || h->in_value) {
    if (h->hidx.len / sizeof(pz__hdr_t) >= PZ__MAX_HEADERS) return fail_cb(h, PZ_EHDRTOOBIG);
    pz__hdr_t e = {(uint32_t)h->hbuf.len, 0, (uint32_t)h->hbuf.len, 0};
    pz_buf_append(&h->hidx, &e, sizeof(e));
    h->in_value = 0;
    if (count_header_bytes(h, 4)) return fail_cb(h, PZ_EHDRTOOBIG); /* ": " and CRLF */
  }
  if (count_header_bytes(h, len)) return fail_cb(h, PZ_EHDRTOOBIG);
  pz_buf_append(&h->hbuf, at, len);
  last_hdr(h)->name_len += (uint32_t)len;
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  pz_http_t *h = p->data;
  if (h->hidx.len == 0) return fail_cb(h, PZ_EINVAL);
  pz__hdr_t *e = last_hdr(h);
  if (!h->in_value) {
    h->in_value = 1;
    e->val_off = (uint32_t)h->hbuf.len;
    e->val_len = 0;
  }
  if (count_header_bytes(h, len)) return fail_cb(h, PZ_EHDRTOOBIG);
  pz_buf_append(&h->hbuf, at, len);
  last_hdr(h)->val_len += (uint32_t)len;
  return 0;
}

static int method_bit(unsigned m) {
  switch (m) {
    case HTTP_GET:
      return PZ_HTTP_GET;
    case HTTP_HEAD:
      return PZ_HTTP_HEAD;
    case HTTP_POST:
      return PZ_HTTP_POST;
    case HTTP_PUT:
      return PZ_HTTP_PUT;
    case HTTP_PATCH:
      return PZ_HTTP_PATCH;
    case HTTP_DELETE:
      return PZ_HTTP_DELETE;
    case HTTP_OPTIONS:
      return PZ_HTTP_OPTIONS;
    default:
      return 0;
  }
}

/* Splits the request target into its raw path and query: origin-form
 * ("/path?query"), the asterisk of "OPTIONS *", or absolute-form. Returns
 * 0, or -1 for a target that is none of them. */
static int split_target(const char *url, size_t url_len, pz_str_t *raw_path, pz_str_t *query) {
  *raw_path = *query = PZ_STR_NULL;
  if (url_len > 0 && url[0] == '/') {
    size_t i = 0;
    while (i < url_len && url[i] != '?' && url[i] != '#')
      i++;
    *raw_path = pz_str_n(url, i);
    if (i < url_len && url[i] == '?') {
      size_t q = ++i;
      while (i < url_len && url[i] != '#')
        i++;
      *query = pz_str_n(url + q, i - q);
    }
  } else if (url_len == 1 && url[0] == '*') {
    *raw_path = pz_str_n(url, 1);
  } else {
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (url_len == 0 || http_parser_parse_url(url, url_len, 0, &u) != 0) {
      return -1;
    }
    if (u.field_set & (1 << UF_PATH))
      *raw_path = pz_str_n(url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    else
      *raw_path = PZ_STR("/");
    if (u.field_set & (1 << UF_QUERY)) *query = pz_str_n(url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
  }
  return 0;
}

static int on_headers_complete(http_parser *p) {
  pz_http_t *h = p->data;
  pz_req_t *r = &h->req;
  pz_conn_t *c = h->conn;
  if (p->http_major != 1) return fail_cb(h, PZ_EINVAL);
  h->http10 = p->http_minor == 0;
  h->keep_alive = http_should_keep_alive(p) != 0;
  h->upgrade = p->upgrade;
  r->method = method_bit(p->method);
  r->method_name = pz_str(http_method_str((enum http_method)p->method));
  /* Refuse an oversized body before a byte of it is read or allocated. A
   * route with a limit of its own is looked up only for a body that could
   * need it: the others keep the plain comparison. */
  size_t max = r->server->lim.max_body_bytes;
  bool has_length = p->content_length != ULLONG_MAX && !(p->flags & F_CHUNKED);
  if ((p->flags & F_CHUNKED) || (has_length && p->content_length > max)) {
    pz_str_t raw_path, query;
    if (split_target(h->hbuf.data, h->url_len, &raw_path, &query) == 0)
      max = pz__router_max_body(&r->server->router, r, raw_path, max);
  }
  h->max_body = max;
  if (has_length && p->content_length > max) return fail_cb(h, PZ_ETOOBIG);
  if (has_length && p->content_length > 0 && !body_hold(h, (size_t)p->content_length)) return fail_cb(h, PZ_EUNAVAIL);
  /* Memory follows the bytes that actually arrive: a client that declares a
   * large body and sends nothing must not hold max_body_bytes per socket. */
  if (has_length && p->content_length > 0)
    pz_buf_reserve(&h->body, p->content_length < 16 * 1024 ? (size_t)p->content_length : 16 * 1024);
  /* A client that waits for "100 Continue" before sending its body gets it
   * here, once the headers have passed the limits. */
  bool body_follows = (p->flags & F_CHUNKED) || (has_length && p->content_length > 0);
  if (body_follows && !h->http10 && c && c->state == PZ__C_HTTP) {
    pz_str_t expect = pz_req_header(r, "Expect");
    /* Only queued: flushing may close c, which must not happen inside the
     * parser. pz__http_input flushes once http_parser_execute returns. */
    if (pz_str_ieq(expect, PZ_STR("100-continue"))) PUT_LIT(&c->pend, "HTTP/1.1 100 Continue\r\n\r\n");
  }
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  pz_http_t *h = p->data;
  if (len > h->max_body - h->body.len) return fail_cb(h, PZ_ETOOBIG);
  if (h->body.len + len > h->body_held && !body_hold(h, h->body.len + len - h->body_held)) return fail_cb(h, PZ_EUNAVAIL);
  pz_buf_append(&h->body, at, len);
  return 0;
}

static int on_message_complete(http_parser *p) {
  pz_http_t *h = p->data;
  h->phase = PZ__H_HANDLER;
  /* Stop here: the bytes after this request wait until it is answered. */
  http_parser_pause(p, 1);
  return 0;
}

/* ---- dispatch ---- */

long pz__pct_decode(const char *s, size_t len, char *out, bool plus) {
  size_t j = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '%') {
      if (len - i < 3) return -1;
      int v = 0;
      for (int k = 1; k <= 2; k++) {
        unsigned char d = (unsigned char)s[i + k];
        v <<= 4;
        if (d >= '0' && d <= '9')
          v |= d - '0';
        else if (d >= 'a' && d <= 'f')
          v |= d - 'a' + 10;
        else if (d >= 'A' && d <= 'F')
          v |= d - 'A' + 10;
        else
          return -1;
      }
      if (v == 0) return -1;
      out[j++] = (char)v;
      i += 2;
    } else if (ch == '+' && plus) {
      out[j++] = ' ';
    } else if (ch == '\0') {
      return -1;
    } else {
      out[j++] = (char)ch;
    }
  }
  return (long)j;
}

static void respond_error(pz_http_t *h, int code, int status, const char *api_code, const char *msg) {
  pz_err_t e;
  pz_err_set(&e, code, api_code, msg ? "%s" : NULL, msg);
  e.status = status;
  respond_err(h, &e);
}

static void dispatch(pz_http_t *h) {
  pz_req_t *r = &h->req;
  pz_server_t *srv = r->server;
  pz_conn_t *c = h->conn;
  pz__conn_tl_remove(c); /* the handler has all the time it needs */
  if (srv->stopping) h->keep_alive = 0;
  if (h->upgrade) h->keep_alive = 0; /* unless upgraded, the bytes after it are not HTTP */
  if (r->method == 0) {
    respond_error(h, PZ_EMETHOD, 501, "not_implemented", "method not implemented");
    return;
  }
  pz_str_t raw_path, query;
  if (split_target(h->hbuf.data, h->url_len, &raw_path, &query) < 0) {
    respond_error(h, PZ_EINVAL, 0, NULL, "invalid request target");
    return;
  }
  char *path = pz_arena_alloc(r->arena, raw_path.len + 1);
  long n = pz__pct_decode(raw_path.ptr, raw_path.len, path, false);
  if (n < 0) {
    respond_error(h, PZ_EINVAL, 0, NULL, "invalid percent-encoding in path");
    return;
  }
  path[n] = '\0';
  r->path = pz_str_n(path, (size_t)n);
  /* Empty views still point somewhere, so handlers may do arithmetic on them. */
  r->query = query.ptr ? query : PZ_STR("");
  r->body = h->body.len ? pz_str_n(h->body.data, h->body.len) : PZ_STR("");

  int allow = 0;
  pz_handler_cb handler = pz__router_match(&srv->router, r, raw_path, &allow);
  if (handler) {
    handler(r);
    return;
  }
  if (allow) {
    char list[80];
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    if (allow & PZ_HTTP_GET) allow |= PZ_HTTP_HEAD;
    size_t len = 0;
    for (int i = 0; i < 7; i++) {
      if (!(allow & (1 << i))) continue;
      len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", len ? ", " : "", names[i]);
    }
    pz_req_add_header(r, "Allow", list);
    pz_req_respond_code(r, PZ_EMETHOD);
    return;
  }
  if (srv->statics && pz__static_serve(srv, r)) return;
  pz_req_respond_code(r, PZ_ENOTFOUND);
}

/* A request that cannot be completed (malformed, too large, too slow):
 * answer it and close, since the rest of the stream cannot be trusted. */
static void fail(pz_http_t *h, int code) {
  pz_conn_t *c = h->conn;
  if (h->phase == PZ__H_IDLE) reset_request(h); /* failed before on_message_begin */
  h->phase = PZ__H_HANDLER;
  h->keep_alive = 0;
  pz__conn_tl_remove(c);
  const char *msg = NULL;
  if (code == PZ_EINVAL) msg = "malformed request";
  if (code == PZ_EUNAVAIL) msg = "the server is receiving too many request bodies at once: try again shortly";
  respond_error(h, code, 0, NULL, msg);
}

size_t pz__http_input(pz_conn_t *c, const char *data, size_t len) {
  pz_http_t *h = c->http;
  size_t off = 0;
  /* Checks of c come first: a response can close c, and then h is gone. */
  while (off < len && c->state == PZ__C_HTTP && c->http == h) {
    if (h->phase == PZ__H_HANDLER || h->phase == PZ__H_WRITING) break;
    size_t n = http_parser_execute(&h->parser, &settings, data + off, len - off);
    off += n;
    enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
    if (c->pend.len && (pz__conn_flush(c, NULL, 0) < 0 || c->state != PZ__C_HTTP)) return len;
    if (e == HPE_PAUSED) {
      http_parser_pause(&h->parser, 0);
      dispatch(h);
      continue;
    }
    if (e != HPE_OK) {
      int code = h->err ? h->err : e == HPE_HEADER_OVERFLOW ? PZ_EHDRTOOBIG : PZ_EINVAL;
      fail(h, code);
      return len;
    }
  }
  return off;
}

/* ---- responses ---- */

static bool status_has_body(int status) { return status >= 200 && status != 204 && status != 304; }

static void respond(pz_http_t *h, int status, const char *ctype, const void *body, size_t len, bool borrowed) {
  PZ_ASSERT(h->phase == PZ__H_HANDLER); /* exactly one answer per request */
  pz_req_t *r = &h->req;
  pz_server_t *srv = r->server;
  pz_conn_t *c = h->conn;
  uint64_t dur = pz_mono_ns() - r->start_ns;
  pz_metrics_request(r->route_id, status, dur);
  if (srv->access_log)
    PZ_LOG(PZ_LOG_INFO, r->id, "request", "method=%.*s path=%.*s status=%d bytes=%zu us=%llu", (int)r->method_name.len,
           r->method_name.ptr, (int)r->path.len, r->path.ptr, status, len, (unsigned long long)(dur / 1000));
  if (c == NULL) { /* the client went away meanwhile: drop the answer */
    if (h->oprev)
      h->oprev->onext = h->onext;
    else
      srv->orphans = h->onext;
    if (h->onext) h->onext->oprev = h->oprev;
    pz__http_free(h);
    return;
  }
  bool head = r->method == PZ_HTTP_HEAD;
  bool keep = h->keep_alive && !srv->stopping;
  h->keep_alive = keep;

  pz_buf_t *o = &c->pend;
  pz_buf_reserve(o, 160 + h->rhdr.len + (ctype ? strlen(ctype) : 0) + (borrowed || head ? 0 : len));
  PUT_LIT(o, "HTTP/1.1 ");
  put_u64(o, (uint64_t)status);
  PUT_LIT(o, " ");
  pz_buf_append_c(o, http_status_str((enum http_status)status));
  PUT_LIT(o, "\r\n");
  pz__http_date(srv, o);
  if (ctype) {
    PUT_LIT(o, "Content-Type: ");
    pz_buf_append_c(o, ctype);
    PUT_LIT(o, "\r\n");
  }
  bool with_body = status_has_body(status);
  if (with_body) {
    PUT_LIT(o, "Content-Length: ");
    put_u64(o, len);
    PUT_LIT(o, "\r\n");
  }
  if (!keep)
    PUT_LIT(o, "Connection: close\r\n");
  else if (h->http10)
    PUT_LIT(o, "Connection: keep-alive\r\n");
  put(o, h->rhdr.data, h->rhdr.len);
  PUT_LIT(o, "\r\n");
  const char *tail = NULL;
  size_t tail_len = 0;
  if (with_body && !head && len) {
    if (borrowed)
      tail = body, tail_len = len;
    else
      put(o, body, len);
  }
  /* Everything the handler allocated may go now: the answer is copied. */
  pz_arena_reset(r->arena);
  h->rhdr.len = 0;
  h->phase = PZ__H_WRITING;
  if (pz__conn_flush(c, tail, tail_len) < 0) return; /* c closed, h freed */
  if (c->flight) {
    pz__conn_tl_set(c, PZ__TL_REQ); /* a client that does not read is cut */
    return;
  }
  pz__http_written(c);
}

void pz__http_written(pz_conn_t *c) {
  pz_http_t *h = c->http;
  h->phase = PZ__H_IDLE;
  h->req.id[0] = '\0';
  /* The body was the handler's until now: a large one goes at once, not
   * when (if ever) the connection's next request comes. */
  body_done(h);
  h->req.body = PZ_STR_NULL;
  if (!h->keep_alive || (c->read_eof && c->in.len == 0)) {
    pz__conn_linger(c);
    return;
  }
  pz__conn_tl_set(c, PZ__TL_IDLE);
  /* Pipelined requests wait in c->in. Inside conn_input the loop goes on by
   * itself; otherwise (an asynchronous answer) continue on the next loop
   * iteration, outside the caller's stack. Reading resumes there too. */
  if (!c->in_input && (c->in.len || !c->reading)) pz__conn_defer(c);
}

static void respond_err(pz_http_t *h, const pz_err_t *err) {
  int status = pz_err_http_status(err);
  const char *code = pz_err_code_str(err), *msg = pz_err_message(err);
  PZ_LOG(PZ_LOG_WARN, h->req.id, "request failed", "status=%d code=%s method=%.*s", status, code,
         (int)h->req.method_name.len, h->req.method_name.ptr);
  pz_buf_t b = {0};
  PUT_LIT(&b, "{\"error\":{\"code\":\"");
  pz_buf_append_json_escaped(&b, code, strlen(code));
  PUT_LIT(&b, "\",\"message\":\"");
  pz_buf_append_json_escaped(&b, msg, strlen(msg));
  PUT_LIT(&b, "\"}}");
  respond(h, status, "application/json", b.data, b.len, false);
  pz_buf_free(&b);
}

void pz__http_reject(pz_conn_t *c) {
  static const char body[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections\"}}";
  pz_server_t *srv = c->srv;
  pz_buf_t *o = &c->pend;
  PUT_LIT(o, "HTTP/1.1 503 Service Unavailable\r\n");
  pz__http_date(srv, o);
  PUT_LIT(o, "Content-Type: application/json\r\nContent-Length: ");
  put_u64(o, sizeof(body) - 1);
  PUT_LIT(o, "\r\nConnection: close\r\n\r\n");
  PUT_LIT(o, body);
  PZ_LOG(PZ_LOG_WARN, NULL, "connection refused: limit reached", "status=%d max_connections=%u", 503,
         srv->lim.max_connections);
  pz_metrics_request(0, 503, 0);
  if (pz__conn_flush(c, NULL, 0) == 0) pz__conn_linger(c);
}

void pz__http_timeout(pz_conn_t *c) {
  pz_http_t *h = c->http;
  if (h && h->phase == PZ__H_READING) {
    fail(h, PZ_ETIMEDOUT);
    return;
  }
  pz__conn_abort(c); /* a response the client does not read */
}

void pz__http_shutdown(pz_conn_t *c) {
  pz_http_t *h = c->http;
  if (h == NULL || h->phase == PZ__H_IDLE) {
    pz__conn_close(c);
    return;
  }
  h->keep_alive = 0; /* answered with Connection: close, then closed */
}

/* ---- public request API ---- */

void pz_req_respond(pz_req_t *req, int status, const char *content_type, const void *body, size_t len) {
  respond((pz_http_t *)req, status, content_type, body, len, false);
}

void pz__req_respond_borrowed(pz_req_t *req, int status, const char *content_type, const void *body, size_t len) {
  respond((pz_http_t *)req, status, content_type, body, len, true);
}

void pz_req_respond_err(pz_req_t *req, const pz_err_t *err) { respond_err((pz_http_t *)req, err); }

void pz_req_respond_code(pz_req_t *req, int code) {
  pz_err_t e;
  pz_err_set(&e, code, NULL, NULL);
  respond_err((pz_http_t *)req, &e);
}

bool pz_req_connected(const pz_req_t *req) {
  const pz_http_t *h = (const pz_http_t *)req;
  return h->conn != NULL && h->conn->state == PZ__C_HTTP;
}

pz_str_t pz_req_header(const pz_req_t *req, const char *name) {
  const pz_http_t *h = (const pz_http_t *)req;
  pz_str_t want = pz_str(name);
  const pz__hdr_t *e = (const pz__hdr_t *)h->hidx.data;
  size_t n = h->hidx.len / sizeof(pz__hdr_t);
  for (size_t i = 0; i < n; i++) {
    if (pz_str_ieq(pz_str_n(h->hbuf.data + e[i].name_off, e[i].name_len), want))
      return pz_str_n(h->hbuf.data + e[i].val_off, e[i].val_len);
  }
  return pz_str_n("", 0);
}

static bool token_char(unsigned char ch) { return ch > 0x20 && ch < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", ch); }

void pz_req_add_header(pz_req_t *req, const char *name, const char *value) {
  pz_http_t *h = (pz_http_t *)req;
  size_t nlen = strlen(name), vlen = strlen(value);
  bool ok = nlen > 0;
  for (size_t i = 0; ok && i < nlen; i++)
    ok = token_char((unsigned char)name[i]);
  for (size_t i = 0; ok && i < vlen; i++)
    ok = value[i] != '\r' && value[i] != '\n';
  if (!ok) { /* a CR or LF would let a value write headers of its own */
    PZ_LOG(PZ_LOG_WARN, req->id, "invalid response header dropped", "name_len=%zu", nlen);
    return;
  }
  put(&h->rhdr, name, nlen);
  PUT_LIT(&h->rhdr, ": ");
  put(&h->rhdr, value, vlen);
  PUT_LIT(&h->rhdr, "\r\n");
}

bool pz_req_query(pz_req_t *req, const char *key, pz_str_t *out) {
  if (req->query.len == 0) return false;
  const char *q = req->query.ptr, *end = q + req->query.len;
  size_t klen = strlen(key);
  while (q < end) {
    const char *amp = memchr(q, '&', (size_t)(end - q));
    const char *pair_end = amp ? amp : end;
    const char *eq = memchr(q, '=', (size_t)(pair_end - q));
    const char *kend = eq ? eq : pair_end;
    size_t raw_klen = (size_t)(kend - q);
    /* A decoded key is never longer than its raw form. */
    if (raw_klen >= klen) {
      char small[128];
      char *k = raw_klen <= sizeof(small) ? small : pz_arena_alloc(req->arena, raw_klen);
      long n = pz__pct_decode(q, raw_klen, k, true);
      if (n == (long)klen && memcmp(k, key, klen) == 0) {
        const char *v = eq ? eq + 1 : pair_end;
        size_t vlen = (size_t)(pair_end - v);
        char *dst = pz_arena_alloc(req->arena, vlen + 1);
        long m = pz__pct_decode(v, vlen, dst, true);
        if (m < 0) return false;
        dst[m] = '\0';
        *out = pz_str_n(dst, (size_t)m);
        return true;
      }
    }
    q = amp ? amp + 1 : end;
  }
  return false;
}
