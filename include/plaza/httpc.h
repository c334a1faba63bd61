/* A small HTTP/1.1 client on the libuv loop, for webhooks: one POST per connection, http:// only, status only. */
#ifndef PLAZA_HTTPC_H
#define PLAZA_HTTPC_H

#include <stdint.h>
#include <uv.h>
#include "plaza/error.h"
#include "plaza/str.h"

#define PZ_HTTPC_URL_MAX 512
#define PZ_HTTPC_HOST_MAX 253
/* Response bytes read at most before the status line and headers are whole. */
#define PZ_HTTPC_RESPONSE_HEAD_MAX (64 * 1024)

/* A parsed "http://host[:port][/path[?query]]" URL. host is a name, an
 * IPv4 address or a bracketed IPv6 address (kept without the brackets). */
typedef struct pz_httpc_url_s {
  char host[PZ_HTTPC_HOST_MAX + 1];
  uint16_t port; /* 80 unless given */
  bool ipv6;
  char path[PZ_HTTPC_URL_MAX + 1]; /* "/" when absent */
} pz_httpc_url_t;

/* Parses url; PZ_EINVAL with err saying why (another scheme than http,
 * user info, a fragment, spaces or controls, a bad host or port, longer
 * than PZ_HTTPC_URL_MAX). Pure; any thread. */
int pz_httpc_url_parse(pz_str_t url, pz_httpc_url_t *out, pz_err_t *err);

/* Whether addr (AF_INET or AF_INET6) is on the public internet. False for
 * what lies inside the server's host or networks: unspecified, loopback,
 * private (10/8, 172.16/12, 192.168/16, fc00::/7), shared (100.64/10),
 * link-local (169.254/16 with the clouds' metadata services, fe80::/10),
 * multicast, documentation and reserved ranges, and IPv6 forms that embed
 * such an IPv4 address (mapped, NAT64, 6to4). Pure; any thread. */
bool pz_httpc_addr_public(const struct sockaddr *addr);
/* The same for a numeric host as pz_httpc_url_parse leaves it: -1 when
 * host is a name, not an address. */
int pz_httpc_host_public(const pz_httpc_url_t *u);

/* pz_httpc_post's flags. PUBLIC_ONLY: connect only to public addresses
 * (pz_httpc_addr_public), whatever the name resolves to at the time, so
 * that a URL given by a user cannot make the server call its own
 * network's services. */
#define PZ_HTTPC_PUBLIC_ONLY 1u

typedef struct pz_httpc_s pz_httpc_t;

/* The outcome of a request: rc 0 with the response's status, or a
 * negative code: PZ_EUNAVAIL (the name did not resolve, or the connection
 * was refused or cut), PZ_EFORBIDDEN (PZ_HTTPC_PUBLIC_ONLY, and every
 * address the name resolved to is not public), PZ_ETIMEDOUT, PZ_EIO (not
 * an HTTP response), PZ_ESHUTDOWN (cancelled). Loop thread. */
typedef void (*pz_httpc_done_cb)(pz_httpc_t *c, int rc, int status, void *data);

/* One extra request header. Names and values must not hold CR or LF. */
typedef struct pz_httpc_header_s {
  const char *name, *value;
} pz_httpc_header_t;

/* POSTs body (copied) as application/json to url, with the extra headers,
 * giving up after timeout_ms in all; flags are PZ_HTTPC_* bits. Resolves
 * the host with uv_getaddrinfo (in the thread pool), tries each address
 * (each public one, with PZ_HTTPC_PUBLIC_ONLY) in turn,
 * writes the request (Connection: close), and reads until the status line
 * and headers are whole. Returns 0 and calls done exactly once later, on
 * the loop thread; or returns PZ_EINVAL (a bad URL or header) and never
 * calls done. *out (may be NULL) is the request until done returns; the
 * client frees it itself. Loop thread. */
int pz_httpc_post(uv_loop_t *loop, pz_str_t url, const pz_httpc_header_t *headers, unsigned n_headers, pz_str_t body,
                  unsigned timeout_ms, unsigned flags, pz_httpc_done_cb done, void *data, pz_httpc_t **out,
                  pz_err_t *err);
/* Stops c: done is called now with PZ_ESHUTDOWN (unless it was called
 * already, when c is no longer valid: do not cancel after done). Loop thread. */
void pz_httpc_cancel(pz_httpc_t *c);

#endif
