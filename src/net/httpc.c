/* A small HTTP/1.1 client on the loop for webhooks: resolve off the loop, connect, POST, read the status with
 * http-parser. */
#include "plaza/httpc.h"
#include <arpa/inet.h>
#include <http_parser.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

/* ---- URLs ---- */

static bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static bool ipv6_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

int pz_httpc_url_parse(pz_str_t url, pz_httpc_url_t *out, pz_err_t *err) {
  static const char scheme[] = "http://";
  const size_t slen = sizeof(scheme) - 1;
  memset(out, 0, sizeof(*out));
  if (url.len > PZ_HTTPC_URL_MAX)
    return pz_err_set(err, PZ_EINVAL, NULL, "webhook_url is longer than %d characters", PZ_HTTPC_URL_MAX);
  if (url.len < slen || !pz_str_ieq(pz_str_n(url.ptr, slen), pz_str_n(scheme, slen)))
    return pz_err_set(err, PZ_EINVAL, NULL, "webhook_url must be an http:// URL");
  for (size_t i = 0; i < url.len; i++)
    if (url.ptr[i] <= 0x20 || url.ptr[i] >= 0x7f || url.ptr[i] == '#')
      return pz_err_set(err, PZ_EINVAL, NULL, "webhook_url must not hold spaces, controls, a fragment or non-ASCII");
  const char *p = url.ptr + slen, *end = url.ptr + url.len;
  const char *auth_end = p;
  while (auth_end < end && *auth_end != '/' && *auth_end != '?')
    auth_end++;
  if (memchr(p, '@', (size_t)(auth_end - p)) != NULL)
    return pz_err_set(err, PZ_EINVAL, NULL, "webhook_url must not hold a user name or password");
  const char *host = p, *host_end;
  if (p < auth_end && *p == '[') {
    host = ++p;
    while (p < auth_end && *p != ']') {
      if (!ipv6_char(*p)) goto bad_host;
      p++;
    }
    if (p == auth_end || p == host) goto bad_host;
    host_end = p++;
    out->ipv6 = true;
  } else {
    while (p < auth_end && *p != ':') {
      if (!host_char(*p)) goto bad_host;
      p++;
    }
    host_end = p;
  }
  size_t hlen = (size_t)(host_end - host);
  if (hlen == 0 || hlen > PZ_HTTPC_HOST_MAX) goto bad_host;
  memcpy(out->host, host, hlen);
  out->host[hlen] = '\0';
  unsigned char addr[16];
  if (out->ipv6 && inet_pton(AF_INET6, out->host, addr) != 1) goto bad_host;
  out->port = 80;
  if (p < auth_end) {
    if (*p != ':') goto bad_host;
    p++;
    unsigned port = 0;
    size_t digits = (size_t)(auth_end - p);
    if (digits < 1 || digits > 5) goto bad_port;
    for (; p < auth_end; p++) {
      if (*p < '0' || *p > '9') goto bad_port;
      port = port * 10 + (unsigned)(*p - '0');
    }
    if (port < 1 || port > 65535) goto bad_port;
    out->port = (uint16_t)port;
  }
  size_t plen = (size_t)(end - auth_end);
  if (plen == 0 || *auth_end == '?') out->path[0] = '/';
  memcpy(out->path + strlen(out->path), auth_end, plen);
  return 0;
bad_host:
  return pz_err_set(err, PZ_EINVAL, NULL, "webhook_url has no valid host");
bad_port:
  return pz_err_set(err, PZ_EINVAL, NULL, "webhook_url has a port that is not 1 to 65535");
}

/* ---- which addresses are public ---- */

/* a.b.c.d as one number, a in the high byte. */
static bool v4_public(uint32_t a) {
  static const struct {
    uint32_t net, mask;
  } closed[] = {
      {0x00000000, 0xff000000}, /* 0/8: "this" network */
      {0x0a000000, 0xff000000}, /* 10/8: private */
      {0x64400000, 0xffc00000}, /* 100.64/10: shared (carrier NAT) */
      {0x7f000000, 0xff000000}, /* 127/8: loopback */
      {0xa9fe0000, 0xffff0000}, /* 169.254/16: link-local, cloud metadata */
      {0xac100000, 0xfff00000}, /* 172.16/12: private */
      {0xc0000000, 0xffffff00}, /* 192.0.0/24: protocol assignments */
      {0xc0000200, 0xffffff00}, /* 192.0.2/24: documentation */
      {0xc0586300, 0xffffff00}, /* 192.88.99/24: 6to4 relays */
      {0xc0a80000, 0xffff0000}, /* 192.168/16: private */
      {0xc6120000, 0xfffe0000}, /* 198.18/15: benchmarking */
      {0xc6336400, 0xffffff00}, /* 198.51.100/24: documentation */
      {0xcb007100, 0xffffff00}, /* 203.0.113/24: documentation */
      {0xe0000000, 0xe0000000}, /* 224/3: multicast, reserved, broadcast */
  };
  for (size_t i = 0; i < sizeof(closed) / sizeof(closed[0]); i++)
    if ((a & closed[i].mask) == closed[i].net) return false;
  return true;
}

static uint32_t v4_at(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool v6_public(const uint8_t b[16]) {
  static const uint8_t zero[10] = {0};
  /* ::/96 (unspecified, loopback, IPv4-compatible) and ::ffff:0:0/96
   * (IPv4-mapped: the IPv4 address decides). */
  if (memcmp(b, zero, 10) == 0) {
    if (b[10] == 0xff && b[11] == 0xff) return v4_public(v4_at(b + 12));
    return false;
  }
  /* 64:ff9b::/96, NAT64: the IPv4 address it reaches decides. */
  static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
  if (memcmp(b, nat64, 12) == 0) return v4_public(v4_at(b + 12));
  /* 2002::/16, 6to4: likewise, from bits 16..47. */
  if (b[0] == 0x20 && b[1] == 0x02) return v4_public(v4_at(b + 2));
  if ((b[0] & 0xfe) == 0xfc) return false;                      /* fc00::/7: unique local */
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false;      /* fe80::/10: link-local */
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return false;      /* fec0::/10: site-local */
  if (b[0] == 0xff) return false;                               /* ff00::/8: multicast */
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return false; /* 2001:db8::/32 */
  if (b[0] == 0x20 && b[1] == 0x01 && (b[2] & 0xfe) == 0) return false; /* 2001::/23: Teredo, protocols */
  if (b[0] == 0x01 && b[1] == 0 && memcmp(b + 2, zero, 6) == 0) return false; /* 100::/64: discard */
  return true;
}

bool pz_httpc_addr_public(const struct sockaddr *addr) {
  if (addr == NULL) return false;
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
    return v4_public(ntohl(in->sin_addr.s_addr));
  }
  if (addr->sa_family == AF_INET6) return v6_public(((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr);
  return false;
}

int pz_httpc_host_public(const pz_httpc_url_t *u) {
  struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
  struct sockaddr_in in = {.sin_family = AF_INET};
  if (u->ipv6)
    return inet_pton(AF_INET6, u->host, &in6.sin6_addr) == 1 ? pz_httpc_addr_public((struct sockaddr *)&in6) : -1;
  if (inet_pton(AF_INET, u->host, &in.sin_addr) == 1) return pz_httpc_addr_public((struct sockaddr *)&in);
  return -1;
}

/* ---- requests ---- */

struct pz_httpc_s {
  uv_loop_t *loop;
  pz_httpc_url_t url;
  pz_buf_t request;
  pz_httpc_done_cb done;
  void *data;
  uv_timer_t timer;
  uv_getaddrinfo_t gai;
  struct addrinfo *addrs, *next_addr;
  uv_tcp_t tcp;
  uv_connect_t conn;
  uv_write_t wr;
  http_parser parser;
  size_t n_read;
  int status;
  int fail_rc; /* a failure found before the loop ran: reported by the timer */
  unsigned flags;
  bool skipped; /* an address was passed over as not public */
  /* Handles open and requests under way; c is freed when none is left. */
  unsigned pending;
  bool gai_pending, tcp_open, head_done, finished;
  char rbuf[4096];
};

static void maybe_free(pz_httpc_t *c) {
  if (!c->finished || c->pending > 0) return;
  if (c->addrs) uv_freeaddrinfo(c->addrs);
  pz_buf_free(&c->request);
  pz_free(c);
}

static void on_closed(uv_handle_t *h);

/* Reports rc once and tears everything down; c lives on until the last
 * callback of libuv has come back. */
static void finish(pz_httpc_t *c, int rc) {
  if (c->finished) return;
  c->finished = true;
  c->done(c, rc, rc == 0 ? c->status : 0, c->data);
  uv_timer_stop(&c->timer);
  if (!uv_is_closing((uv_handle_t *)&c->timer)) uv_close((uv_handle_t *)&c->timer, on_closed);
  if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_closed);
  /* A resolution under way calls back (cancelled or not) before c goes. */
  if (c->gai_pending) uv_cancel((uv_req_t *)&c->gai);
  maybe_free(c);
}

static void try_connect(pz_httpc_t *c);

static void on_closed(uv_handle_t *h) {
  pz_httpc_t *c = h->data;
  c->pending--;
  if (h == (uv_handle_t *)&c->tcp) {
    c->tcp_open = false;
    if (!c->finished) {
      try_connect(c); /* the next address */
      return;
    }
  }
  maybe_free(c);
}

static void on_timer(uv_timer_t *t) {
  pz_httpc_t *c = t->data;
  finish(c, c->fail_rc ? c->fail_rc : PZ_ETIMEDOUT);
}

static int on_headers_complete(http_parser *p) {
  pz_httpc_t *c = p->data;
  c->status = (int)p->status_code;
  /* 1xx answers come before the real one. */
  if (c->status >= 200) {
    c->head_done = true;
    http_parser_pause(p, 1);
  }
  return 0;
}

static const http_parser_settings parser_settings = {.on_headers_complete = on_headers_complete};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  pz_httpc_t *c = h->data;
  *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  pz_httpc_t *c = s->data;
  if (c->finished) return;
  if (nread < 0) {
    finish(c, nread == UV_EOF ? PZ_EIO : PZ_EUNAVAIL);
    return;
  }
  c->n_read += (size_t)nread;
  http_parser_execute(&c->parser, &parser_settings, buf->base, (size_t)nread);
  if (c->head_done)
    finish(c, 0);
  else if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || c->n_read > PZ_HTTPC_RESPONSE_HEAD_MAX)
    finish(c, PZ_EIO);
}

static void on_write(uv_write_t *w, int status) {
  pz_httpc_t *c = w->data;
  if (status < 0 && !c->finished) finish(c, PZ_EUNAVAIL);
}

static void on_connect(uv_connect_t *req, int status) {
  pz_httpc_t *c = req->data;
  if (c->finished) return;
  if (status < 0) {
    uv_close((uv_handle_t *)&c->tcp, on_closed); /* on_closed tries the next address */
    return;
  }
  http_parser_init(&c->parser, HTTP_RESPONSE);
  c->parser.data = c;
  uv_buf_t b = uv_buf_init(c->request.data, (unsigned)c->request.len);
  c->wr.data = c;
  int rc = uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc == 0) rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc < 0) finish(c, PZ_EUNAVAIL);
}

static void try_connect(pz_httpc_t *c) {
  while (c->next_addr) {
    struct addrinfo *ai = c->next_addr;
    c->next_addr = ai->ai_next;
    /* Checked on the address connected to, not on the name: a name can
     * resolve to anything, and to something else the next time. */
    if ((c->flags & PZ_HTTPC_PUBLIC_ONLY) && !pz_httpc_addr_public(ai->ai_addr)) {
      c->skipped = true;
      continue;
    }
    if (uv_tcp_init(c->loop, &c->tcp) < 0) break;
    c->tcp.data = c;
    c->tcp_open = true;
    c->pending++;
    c->conn.data = c;
    if (uv_tcp_connect(&c->conn, &c->tcp, ai->ai_addr, on_connect) == 0) return;
    uv_close((uv_handle_t *)&c->tcp, on_closed); /* and the next address from there */
    return;
  }
  finish(c, c->skipped ? PZ_EFORBIDDEN : PZ_EUNAVAIL);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  pz_httpc_t *c = req->data;
  c->gai_pending = false;
  c->pending--;
  c->addrs = res; /* freed with c, whatever happens */
  if (c->finished) {
    maybe_free(c);
    return;
  }
  if (status < 0) {
    finish(c, PZ_EUNAVAIL);
    return;
  }
  c->next_addr = res;
  try_connect(c);
}

static bool header_ok(const char *s) { return s && strpbrk(s, "\r\n") == NULL; }

int pz_httpc_post(uv_loop_t *loop, pz_str_t url, const pz_httpc_header_t *headers, unsigned n_headers, pz_str_t body,
                  unsigned timeout_ms, unsigned flags, pz_httpc_done_cb done, void *data, pz_httpc_t **out,
                  pz_err_t *err) {
  if (out) *out = NULL;
  pz_httpc_url_t u;
  int rc = pz_httpc_url_parse(url, &u, err);
  if (rc < 0) return rc;
  for (unsigned i = 0; i < n_headers; i++)
    if (!header_ok(headers[i].name) || !header_ok(headers[i].value))
      return pz_err_set(err, PZ_EINVAL, NULL, "a header holds a line break");

  pz_httpc_t *c = pz_calloc(1, sizeof(*c));
  c->loop = loop;
  c->url = u;
  c->flags = flags;
  c->done = done;
  c->data = data;
  pz_buf_t *b = &c->request;
  pz_buf_printf(b, "POST %s HTTP/1.1\r\nHost: %s%s%s", u.path, u.ipv6 ? "[" : "", u.host, u.ipv6 ? "]" : "");
  if (u.port != 80) pz_buf_printf(b, ":%u", (unsigned)u.port);
  pz_buf_printf(b,
                "\r\nUser-Agent: Plaza-Webhooks/1\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                "Connection: close\r\n",
                body.len);
  for (unsigned i = 0; i < n_headers; i++)
    pz_buf_printf(b, "%s: %s\r\n", headers[i].name, headers[i].value);
  pz_buf_append_c(b, "\r\n");
  pz_buf_append(b, body.ptr, body.len);

  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->pending++;
  uv_timer_start(&c->timer, on_timer, timeout_ms, 0);

  char port[8];
  snprintf(port, sizeof(port), "%u", (unsigned)u.port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
  c->gai.data = c;
  if (uv_getaddrinfo(loop, &c->gai, on_resolved, u.host, port, &hints) == 0) {
    c->gai_pending = true;
    c->pending++;
  } else {
    /* Reported from the loop, as the interface promises. */
    c->fail_rc = PZ_EUNAVAIL;
    uv_timer_start(&c->timer, on_timer, 0, 0);
  }
  if (out) *out = c;
  return 0;
}

void pz_httpc_cancel(pz_httpc_t *c) { finish(c, PZ_ESHUTDOWN); }
