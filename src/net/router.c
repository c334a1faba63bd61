/* Routes: patterns of literal segments and {name} parameters, matched by a scan over pre-split patterns. */
#include <string.h>
#include "net/net_internal.h"
#include "plaza/metrics.h"

/* A path with more segments than this matches no route. */
#define MAX_SEGS 32

typedef struct seg_s {
  const char *ptr; /* into the route's pattern copy */
  uint32_t len;
  bool param;
} seg_t;

struct pz__route_s {
  int methods;
  char *pattern;
  int n_segs;
  seg_t segs[MAX_SEGS];
  /* Segments that are parameters, first segment in the highest bit: when
   * several patterns match, the one with literals further left wins, so
   * "/v1/users/me" beats "/v1/users/{id}" whatever the order of registration. */
  uint32_t param_mask;
  pz_handler_cb handler;
  void *udata;
  size_t max_body; /* 0: the server's */
  int metric[7];   /* per method bit */
};

static const char *const method_names[7] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};

void pz_router_add(pz_router_t *r, int methods, const char *pattern, pz_handler_cb handler, void *udata) {
  /* Routes are our own code: a bad pattern is a bug, caught at start-up. */
  PZ_ASSERT(pattern && pattern[0] == '/' && handler && methods && (methods & ~0x7f) == 0);
  if (r->n_routes == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 16;
    r->routes = pz_realloc(r->routes, (size_t)r->cap * sizeof(*r->routes));
  }
  pz__route_t *rt = &r->routes[r->n_routes];
  memset(rt, 0, sizeof(*rt));
  rt->methods = methods;
  rt->pattern = pz_strdup(pattern);
  rt->handler = handler;
  rt->udata = udata;
  int n_params = 0;
  const char *p = rt->pattern + 1;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    PZ_ASSERT(rt->n_segs < MAX_SEGS);
    seg_t *s = &rt->segs[rt->n_segs];
    if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
      PZ_ASSERT(len > 2 && ++n_params <= PZ_ROUTE_MAX_PARAMS);
      s->param = true;
      rt->param_mask |= 1u << (MAX_SEGS - 1 - rt->n_segs);
    } else {
      PZ_ASSERT(memchr(p, '{', len) == NULL && memchr(p, '}', len) == NULL);
    }
    s->ptr = p;
    s->len = (uint32_t)len;
    rt->n_segs++;
    if (!slash) break;
    p = slash + 1;
  }
  for (int i = 0; i < 7; i++)
    if (methods & (1 << i)) rt->metric[i] = pz_metrics_route(method_names[i], rt->pattern);
  r->n_routes++;
}

void pz_router_set_max_body(pz_router_t *r, const char *pattern, size_t max_body) {
  bool found = false;
  for (int i = 0; i < r->n_routes; i++) {
    if (strcmp(r->routes[i].pattern, pattern) != 0) continue;
    r->routes[i].max_body = max_body;
    found = true;
  }
  PZ_ASSERT(found); /* our own code: a limit for no route is a bug */
  if (max_body > r->max_route_body) r->max_route_body = max_body;
}

void pz__router_free(pz_router_t *r) {
  for (int i = 0; i < r->n_routes; i++)
    pz_free(r->routes[i].pattern);
  pz_free(r->routes);
  r->routes = NULL;
  r->n_routes = r->cap = 0;
}

static int bit_index(int bit) {
  int i = 0;
  while (bit > 1)
    bit >>= 1, i++;
  return i;
}

/* The route for req's method and raw_path, with the decoded segments in
 * segs[0..*n_segs) and the method bit it matched in *bit; NULL with *allow
 * the methods of the path when none. */
static const pz__route_t *find(pz_router_t *r, pz_req_t *req, pz_str_t raw_path, int *allow, pz_str_t *segs,
                               int *n_segs, int *bit_out) {
  *allow = 0;
  if (raw_path.len == 0 || raw_path.ptr[0] != '/') return NULL;
  /* Split the raw path and decode each segment on its own, so that an
   * escaped slash (%2F) stays inside its segment. The whole path decoded
   * already, so no segment can fail to. */
  int n = 0;
  const char *p = raw_path.ptr + 1, *end = raw_path.ptr + raw_path.len;
  for (;;) {
    if (n == MAX_SEGS) return NULL;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *seg_end = slash ? slash : end;
    size_t len = (size_t)(seg_end - p);
    if (memchr(p, '%', len)) {
      char *d = pz_arena_alloc(req->arena, len + 1);
      long m = pz__pct_decode(p, len, d, false);
      if (m < 0) return NULL;
      segs[n++] = pz_str_n(d, (size_t)m);
    } else {
      segs[n++] = pz_str_n(p, len);
    }
    if (!slash) break;
    p = slash + 1;
  }

  int want = req->method;
  const pz__route_t *best = NULL;
  int best_bit = 0;
  for (int i = 0; i < r->n_routes; i++) {
    const pz__route_t *rt = &r->routes[i];
    if (rt->n_segs != n) continue;
    bool match = true;
    for (int k = 0; k < n && match; k++) {
      const seg_t *s = &rt->segs[k];
      match = s->param ? segs[k].len > 0 : pz_str_eq(segs[k], pz_str_n(s->ptr, s->len));
    }
    if (!match) continue;
    int bit = (rt->methods & want) ? want : (want == PZ_HTTP_HEAD && (rt->methods & PZ_HTTP_GET)) ? PZ_HTTP_GET : 0;
    if (!bit) {
      *allow |= rt->methods;
      continue;
    }
    /* An exact method beats HEAD served by a GET route. */
    if (!best || rt->param_mask < best->param_mask ||
        (rt->param_mask == best->param_mask && bit == want && best_bit != want)) {
      best = rt;
      best_bit = bit;
    }
  }
  if (!best) return NULL;
  *allow = 0;
  *n_segs = n;
  *bit_out = best_bit;
  return best;
}

pz_handler_cb pz__router_match(pz_router_t *r, pz_req_t *req, pz_str_t raw_path, int *allow) {
  pz_str_t segs[MAX_SEGS];
  int n = 0, best_bit = 0;
  const pz__route_t *best = find(r, req, raw_path, allow, segs, &n, &best_bit);
  if (!best) return NULL;
  req->n_params = 0;
  for (int k = 0; k < n; k++)
    if (best->segs[k].param) req->params[req->n_params++] = segs[k];
  req->route_data = best->udata;
  req->route_id = best->metric[bit_index(best_bit)];
  return best->handler;
}

size_t pz__router_max_body(pz_router_t *r, pz_req_t *req, pz_str_t raw_path, size_t dflt) {
  if (r->max_route_body == 0) return dflt; /* no route has its own: no lookup */
  pz_str_t segs[MAX_SEGS];
  int n = 0, bit = 0, allow = 0;
  const pz__route_t *rt = find(r, req, raw_path, &allow, segs, &n, &bit);
  return rt && rt->max_body ? rt->max_body : dflt;
}
