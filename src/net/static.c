/* Static files of the web client: held in memory, served with strong ETags, Cache-Control, SPA fallback. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "net/net_internal.h"
#include "plaza/log.h"
#include "plaza/metrics.h"

/* Everything is held in memory, so both are bounded; a tree beyond them
 * is refused at start rather than served in part. */
#define MAX_TOTAL (64u << 20)
#define MAX_FILE (16u << 20)
#define MAX_FILES 10000
#define MAX_DEPTH 16

typedef struct sfile_s {
  char *path; /* URL path, "/assets/app.js" */
  size_t path_len;
  char *data;
  size_t len;
  const char *ctype;
  const char *cache;
  char etag[20]; /* "\"" 16 hex digits "\"" */
} sfile_t;

struct pz__static_s {
  /* A table replaced by a later pz_server_serve_static: responses being
   * written may still point into it, so it lives as long as the server. */
  pz__static_t *prev;
  sfile_t *files;
  size_t n, cap;
  size_t total;
  const sfile_t *index;
};

static const struct {
  const char *ext;
  const char *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"webmanifest", "application/manifest+json"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"txt", "text/plain; charset=utf-8"},
    {"woff2", "font/woff2"},
    {"wasm", "application/wasm"},
};

static const char *content_type(const char *name) {
  const char *dot = strrchr(name, '.');
  if (dot)
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
      if (strcasecmp(dot + 1, types[i].ext) == 0) return types[i].type;
  return "application/octet-stream";
}

/* The files a client must re-check on every load, so that a new release
 * reaches it: the page, the service worker and the manifest. */
static const char *cache_control(const char *name) {
  const char *dot = strrchr(name, '.');
  if (strcmp(name, "index.html") == 0 || strcmp(name, "sw.js") == 0 || strcmp(name, "manifest.json") == 0 ||
      (dot && strcmp(dot, ".webmanifest") == 0))
    return "no-cache";
  return "public, max-age=3600";
}

static int read_file(const char *fs_path, size_t size, char **out, pz_err_t *err) {
  int rc = 0;
  char *data = NULL;
  int fd = open(fs_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = pz_err_set(err, PZ_EIO, NULL, "cannot read %s: %s", fs_path, strerror(errno));
    goto out;
  }
  data = pz_malloc(size ? size : 1);
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, data + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      rc = pz_err_set(err, PZ_EIO, NULL, "cannot read %s: %s", fs_path, n < 0 ? strerror(errno) : "file shrank");
      goto out;
    }
    got += (size_t)n;
  }
  *out = data;
  data = NULL;
out:
  pz_free(data);
  if (fd >= 0) close(fd);
  return rc;
}

static int add_file(pz__static_t *st, const char *fs_path, const char *url, const char *name, size_t size,
                    pz_err_t *err) {
  if (size > MAX_FILE || st->total + size > MAX_TOTAL || st->n >= MAX_FILES)
    return pz_err_set(err, PZ_ETOOBIG, NULL, "static files exceed %u MiB (or %u MiB per file): %s", MAX_TOTAL >> 20,
                      MAX_FILE >> 20, fs_path);
  char *data = NULL;
  int rc = read_file(fs_path, size, &data, err);
  if (rc) return rc;
  if (st->n == st->cap) {
    st->cap = st->cap ? st->cap * 2 : 64;
    st->files = pz_realloc(st->files, st->cap * sizeof(*st->files));
  }
  sfile_t *f = &st->files[st->n++];
  f->path = pz_strdup(url);
  f->path_len = strlen(url);
  f->data = data;
  f->len = size;
  f->ctype = content_type(name);
  f->cache = cache_control(name);
  uint8_t hash[8];
  crypto_generichash(hash, sizeof(hash), (const unsigned char *)data, size, NULL, 0);
  static const char hex[] = "0123456789abcdef";
  f->etag[0] = '"';
  for (int i = 0; i < 8; i++) {
    f->etag[1 + 2 * i] = hex[hash[i] >> 4];
    f->etag[2 + 2 * i] = hex[hash[i] & 15];
  }
  f->etag[17] = '"';
  f->etag[18] = '\0';
  st->total += size;
  return 0;
}

static int load_dir(pz__static_t *st, const char *fs_dir, const char *url_dir, int depth, pz_err_t *err) {
  int rc = 0;
  if (depth > MAX_DEPTH) return pz_err_set(err, PZ_EINVAL, NULL, "static directory nested too deep: %s", fs_dir);
  DIR *d = opendir(fs_dir);
  if (d == NULL) return pz_err_set(err, PZ_EIO, NULL, "cannot open %s: %s", fs_dir, strerror(errno));
  struct dirent *e;
  char fs_path[4096], url[4096];
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue; /* ".", "..", and hidden files are not served */
    if (snprintf(fs_path, sizeof(fs_path), "%s/%s", fs_dir, e->d_name) >= (int)sizeof(fs_path) ||
        snprintf(url, sizeof(url), "%s/%s", url_dir, e->d_name) >= (int)sizeof(url)) {
      rc = pz_err_set(err, PZ_EINVAL, NULL, "static path too long under %s", fs_dir);
      goto out;
    }
    struct stat sb;
    if (stat(fs_path, &sb) != 0) continue; /* a dangling link */
    if (S_ISDIR(sb.st_mode))
      rc = load_dir(st, fs_path, url, depth + 1, err);
    else if (S_ISREG(sb.st_mode))
      rc = add_file(st, fs_path, url, e->d_name, (size_t)sb.st_size, err);
    if (rc) goto out;
  }
out:
  closedir(d);
  return rc;
}

static int cmp_file(const void *a, const void *b) {
  return strcmp(((const sfile_t *)a)->path, ((const sfile_t *)b)->path);
}

void pz__static_free(pz__static_t *st) {
  if (st == NULL) return;
  pz__static_free(st->prev);
  for (size_t i = 0; i < st->n; i++) {
    pz_free(st->files[i].path);
    pz_free(st->files[i].data);
  }
  pz_free(st->files);
  pz_free(st);
}

static const sfile_t *find(const pz__static_t *st, pz_str_t path) {
  size_t lo = 0, hi = st->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    const sfile_t *f = &st->files[mid];
    size_t n = f->path_len < path.len ? f->path_len : path.len;
    int c = memcmp(f->path, path.ptr, n);
    if (c == 0) c = f->path_len < path.len ? -1 : f->path_len > path.len ? 1 : 0;
    if (c == 0) return f;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

int pz_server_serve_static(pz_server_t *srv, const char *dir, pz_err_t *err) {
  pz__static_t *st = pz_calloc(1, sizeof(*st));
  size_t len = strlen(dir);
  while (len > 1 && dir[len - 1] == '/')
    len--;
  char *root = pz_malloc(len + 1);
  memcpy(root, dir, len);
  root[len] = '\0';
  int rc = load_dir(st, root, "", 0, err);
  if (rc) goto out;
  if (st->n) qsort(st->files, st->n, sizeof(*st->files), cmp_file);
  st->index = find(st, PZ_STR("/index.html"));
  st->prev = srv->statics;
  srv->statics = st;
  st = NULL;
  if (!srv->static_route_id) srv->static_route_id = pz_metrics_route("GET", "static");
  PZ_LOG(PZ_LOG_INFO, NULL, "static files loaded", "dir=%s files=%zu bytes=%zu", root, srv->statics->n,
         srv->statics->total);
out:
  pz__static_free(st);
  pz_free(root);
  return rc;
}

/* If-None-Match holds "*" or a list of entity tags; the comparison is the
 * weak one (RFC 9110 section 13.1.2), so W/ prefixes are ignored. */
static bool etag_matches(pz_str_t inm, const char *etag) {
  size_t elen = strlen(etag);
  const char *p = inm.ptr, *end = inm.ptr + inm.len;
  while (p < end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
      p++;
    const char *start = p;
    while (p < end && *p != ',')
      p++;
    const char *stop = p;
    while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
      stop--;
    if (stop - start == 1 && *start == '*') return true;
    if (stop - start >= 2 && start[0] == 'W' && start[1] == '/') start += 2;
    if ((size_t)(stop - start) == elen && memcmp(start, etag, elen) == 0) return true;
  }
  return false;
}

bool pz__static_serve(pz_server_t *srv, pz_req_t *req) {
  const pz__static_t *st = srv->statics;
  pz_str_t path = req->path;
  if (req->method != PZ_HTTP_GET && req->method != PZ_HTTP_HEAD) return false;
  if (pz_str_has_prefix(path, PZ_STR("/v1/")) || pz_str_eq_c(path, "/v1")) return false;
  const sfile_t *f = pz_str_eq_c(path, "/") ? st->index : find(st, path);
  if (f == NULL) {
    /* A path without an extension is a route of the single-page app. */
    const char *last = path.ptr + path.len;
    while (last > path.ptr && last[-1] != '/')
      last--;
    if (memchr(last, '.', (size_t)(path.ptr + path.len - last)) == NULL) f = st->index;
  }
  if (f == NULL) return false;
  req->route_id = srv->static_route_id;
  pz_req_add_header(req, "ETag", f->etag);
  pz_req_add_header(req, "Cache-Control", f->cache);
  pz_req_add_header(req, "X-Content-Type-Options", "nosniff");
  if (etag_matches(pz_req_header(req, "If-None-Match"), f->etag)) {
    pz__req_respond_borrowed(req, 304, NULL, NULL, 0);
    return true;
  }
  pz__req_respond_borrowed(req, 200, f->ctype, f->data, f->len);
  return true;
}
