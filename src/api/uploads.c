/* /v1/uploads: files and images sent in chats — upload, download with thumbnails, and the body of image and file
 * messages. */
#include <stdio.h>
#include <stdlib.h>
#include "api/internal.h"
#include "plaza/id.h"
#include "plaza/log.h"
#include "plaza/metrics.h"

/* ---- encoding ---- */

static json_t *upload_json(const pz_upload_rec_t *u) {
  bool image = u->width > 0;
  return json_pack("{s:o,s:s,s:I,s:o,s:o,s:o,s:b}", "id", pz__api_id_json(u->id), "content_type", u->content_type,
                   "size", (json_int_t)u->size, "name", pz__api_text(u->name), "width",
                   image ? json_integer(u->width) : json_null(), "height",
                   image ? json_integer(u->height) : json_null(), "has_thumbnail", u->thumb_type[0] != '\0');
}

/* ---- request contexts ---- */

typedef struct {
  pz__api_ctx_t base;
  uv_work_t work;
  const char *db_path; /* pz_store_path: where the files go */
  pz_upload_rec_t rec;
  /* POST: the type the client declared, and what the bytes turned out to be */
  const char *declared;
  pz_media_t media;
  /* GET */
  int64_t id;
  bool thumb;
  pz_buf_t bytes;
  /* the thread pool's result */
  int work_rc;
  pz_err_t work_err;
} upload_ctx_t;

static void upload_ctx_release(void *data) {
  upload_ctx_t *c = data;
  pz_media_release(&c->media);
  pz_buf_free(&c->bytes);
}

static upload_ctx_t *upload_ctx_new(pz_req_t *req, pz_store_run_fn run) {
  upload_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), run);
  c->db_path = pz_store_path(c->base.api->st);
  c->work.data = c;
  pz_arena_on_reset(req->arena, upload_ctx_release, c);
  return c;
}

/* ---- POST /v1/uploads ---- */

typedef struct {
  uv_work_t work;
  char *db_path;
  int64_t id;
} remove_t;

static void remove_work(uv_work_t *w) {
  remove_t *r = w->data;
  pz_store_blob_remove(r->db_path, r->id);
}

static void remove_after(uv_work_t *w, int status) {
  remove_t *r = w->data;
  pz_free(r->db_path);
  pz_free(r);
}

/* The files of an upload whose row did not commit are nobody's: removed
 * in the background, since the answer does not wait for them. */
static void remove_files(pz_api_t *api, const char *db_path, int64_t id) {
  remove_t *r = pz_calloc(1, sizeof(*r));
  r->db_path = pz_strdup(db_path);
  r->id = id;
  r->work.data = r;
  if (uv_queue_work(api->loop, &r->work, remove_work, remove_after) != 0) remove_after(&r->work, 0);
}

static int insert_run(pz_db_t *db, pz_store_job_t *job) {
  upload_ctx_t *c = job->data;
  int rc = pz_store_upload_insert(db, &c->rec, &job->err);
  if (rc < 0) return rc;
  c->base.status = 201;
  c->base.out = json_pack("{s:o}", "upload", upload_json(&c->rec));
  return 0;
}

static void insert_done(pz__api_ctx_t *base) {
  upload_ctx_t *c = (upload_ctx_t *)base;
  if (base->job.rc < 0) {
    remove_files(base->api, c->db_path, c->rec.id);
  } else {
    pz_metrics_count("uploads_stored", 1);
    pz_metrics_count("upload_bytes_stored", (uint64_t)c->rec.size);
  }
  pz__api_finish(base);
}

/* Thread pool: check the bytes, make the thumbnail, write both to disk. */
static void store_work(uv_work_t *w) {
  upload_ctx_t *c = w->data;
  pz_req_t *req = c->base.req;
  c->work_rc = pz_media_probe(req->body.ptr, req->body.len, c->declared, &c->media, &c->work_err);
  if (c->work_rc < 0) return;
  /* An image with metadata is stored without it; anything else as
   * uploaded. The size is what is stored: what a download serves. */
  pz_buf_t *stripped = &c->media.stripped;
  const void *bytes = stripped->len > 0 ? stripped->data : req->body.ptr;
  size_t len = stripped->len > 0 ? stripped->len : req->body.len;
  c->rec.size = (int64_t)len;
  c->work_rc = pz_store_blob_write(c->db_path, c->rec.id, false, bytes, len, &c->work_err);
  if (c->work_rc < 0 || c->media.thumb == NULL) return;
  c->work_rc = pz_store_blob_write(c->db_path, c->rec.id, true, c->media.thumb, c->media.thumb_len, &c->work_err);
  if (c->work_rc < 0) pz_store_blob_remove(c->db_path, c->rec.id);
}

static void store_after(uv_work_t *w, int status) {
  upload_ctx_t *c = w->data;
  pz_api_t *api = c->base.api;
  if (c->work_rc < 0) {
    if (c->work_rc == PZ_EMEDIA) pz_metrics_count("uploads_refused", 1);
    pz__api_fail(c->base.req, &c->work_err);
  } else {
    /* On disk and synced: now the row, and the answer once it commits. */
    pz_upload_rec_t *u = &c->rec;
    snprintf(u->content_type, sizeof(u->content_type), "%s", c->media.content_type);
    if (u->name[0] == '\0')
      snprintf(u->name, sizeof(u->name), "%lld.%s", (long long)u->id, pz_chat_upload_ext(u->content_type));
    u->width = c->media.width;
    u->height = c->media.height;
    if (c->media.thumb) {
      snprintf(u->thumb_type, sizeof(u->thumb_type), "%s", c->media.thumb_type);
      u->thumb_size = (int64_t)c->media.thumb_len;
    }
    pz_media_release(&c->media);
    pz__api_write(&c->base);
  }
  pz__api_unbusy(api);
}

static void upload_authed(pz_req_t *req) {
  pz_err_t err = {0};
  pz_api_t *api = req->route_data;
  upload_ctx_t *c = upload_ctx_new(req, insert_run);
  c->base.done = insert_done;
  pz_str_t ct = pz_req_header(req, "Content-Type"), name;
  /* Refused before any CPU is spent: a type that can never be stored. */
  if (ct.len == 0) {
    pz_err_set(&err, PZ_EMEDIA, NULL, "Content-Type is required: the type of the file");
    goto fail;
  }
  if ((c->declared = pz_chat_upload_declared(ct)) == NULL) {
    pz_err_set(&err, PZ_EMEDIA, NULL, "files of type %.*s cannot be uploaded", (int)(ct.len > 64 ? 64 : ct.len),
               ct.ptr);
    goto fail;
  }
  if (req->body.len == 0) {
    pz_err_set(&err, PZ_EINVAL, NULL, "the body must hold the file's bytes");
    goto fail;
  }
  if (pz_req_query(req, "name", &name)) {
    if (pz_chat_upload_name_check(name, &err) < 0) goto fail;
    memcpy(c->rec.name, name.ptr, name.len);
    c->rec.name[name.len] = '\0';
  }
  c->rec.id = pz_id_next();
  c->rec.user_id = req->user_id;
  c->rec.created_at = pz_now_ms();
  if (uv_queue_work(api->loop, &c->work, store_work, store_after) != 0) {
    pz_err_set(&err, PZ_EIO, NULL, NULL);
    goto fail;
  }
  pz__api_busy(api);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- GET /v1/uploads/{id} and /v1/uploads/{id}/thumbnail ---- */

static int access_run(pz_db_t *db, pz_store_job_t *job) {
  upload_ctx_t *c = job->data;
  int rc = pz_chat_upload_access(db, c->base.req->user_id, c->id, &c->rec, &job->err);
  if (rc == 0 && c->thumb && c->rec.thumb_type[0] == '\0')
    rc = pz_err_set(&job->err, PZ_ENOTFOUND, NULL, "this upload has no thumbnail");
  return rc;
}

/* filename="..." for old clients (ASCII, without quotes or backslashes)
 * and filename*= with the name in UTF-8, percent-encoded (RFC 6266). */
static void disposition(pz_buf_t *out, const char *kind, const char *name) {
  static const char hex[] = "0123456789ABCDEF";
  pz_buf_printf(out, "%s; filename=\"", kind);
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
    char ch = *p >= 0x20 && *p < 0x7F && *p != '"' && *p != '\\' ? (char)*p : '_';
    pz_buf_append(out, &ch, 1);
  }
  pz_buf_append_c(out, "\"; filename*=UTF-8''");
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
    unsigned char ch = *p;
    bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 strchr("!#$&+-.^_`|~", ch) != NULL;
    if (plain && ch != '\0') {
      pz_buf_append(out, p, 1);
    } else {
      char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
      pz_buf_append(out, esc, 3);
    }
  }
  pz_buf_append(out, "", 1); /* NUL-terminated for pz_req_add_header */
}

/* The headers of every answer with an upload's bytes, 304 included. */
static void common_headers(upload_ctx_t *c, const char *etag) {
  pz_req_t *req = c->base.req;
  pz_req_add_header(req, "ETag", etag);
  pz_req_add_header(req, "Cache-Control", "private, max-age=86400");
  pz_req_add_header(req, "X-Content-Type-Options", "nosniff");
  /* Opened directly, the bytes run no script and load nothing. */
  pz_req_add_header(req, "Content-Security-Policy", "default-src 'none'; sandbox");
}

static void read_work(uv_work_t *w) {
  upload_ctx_t *c = w->data;
  int64_t size = c->thumb ? c->rec.thumb_size : c->rec.size;
  c->work_rc = pz_store_blob_read(c->db_path, c->rec.id, c->thumb, (size_t)size, &c->bytes, &c->work_err);
}

static void read_after(uv_work_t *w, int status) {
  upload_ctx_t *c = w->data;
  pz_api_t *api = c->base.api;
  pz_req_t *req = c->base.req;
  if (c->work_rc < 0) {
    /* The row is there, so the file must be: its loss is ours, not a 404. */
    PZ_LOG(PZ_LOG_ERROR, req->id, "upload file unreadable", "upload_id=%lld error=%s", (long long)c->rec.id,
           c->work_err.msg);
    pz_err_t err;
    pz_err_set(&err, PZ_EIO, NULL, NULL);
    pz__api_fail(req, &err);
  } else {
    char etag[40];
    snprintf(etag, sizeof(etag), "\"%lld%s\"", (long long)c->rec.id, c->thumb ? "-t" : "");
    common_headers(c, etag);
    const char *type = c->thumb ? c->rec.thumb_type : c->rec.content_type;
    bool image = pz_chat_upload_kind(pz_str(c->rec.content_type)) == PZ_UPLOAD_IMAGE;
    pz_buf_t value = {0};
    disposition(&value, image || c->thumb ? "inline" : "attachment", c->rec.name);
    pz_req_add_header(req, "Content-Disposition", value.data);
    pz_buf_free(&value);
    pz_metrics_count("upload_bytes_served", c->bytes.len);
    /* The last use of c: answering may free the request's arena, and the
     * bytes go with it (upload_ctx_release). */
    pz_req_respond(req, 200, strcmp(type, "text/plain") == 0 ? "text/plain; charset=utf-8" : type, c->bytes.data,
                   c->bytes.len);
  }
  pz__api_unbusy(api);
}

static void access_done(pz__api_ctx_t *base) {
  upload_ctx_t *c = (upload_ctx_t *)base;
  pz_req_t *req = base->req;
  if (base->job.rc < 0) {
    pz__api_fail(req, &base->job.err);
    return;
  }
  /* The bytes of an id never change: a cached copy with the tag is good. */
  char etag[40];
  snprintf(etag, sizeof(etag), "\"%lld%s\"", (long long)c->rec.id, c->thumb ? "-t" : "");
  pz_str_t inm = pz_req_header(req, "If-None-Match");
  if (inm.len >= strlen(etag) && memmem(inm.ptr, inm.len, etag, strlen(etag)) != NULL) {
    common_headers(c, etag);
    pz_req_respond(req, 304, NULL, NULL, 0);
    return;
  }
  if (uv_queue_work(base->api->loop, &c->work, read_work, read_after) != 0) {
    pz_err_t err;
    pz_err_set(&err, PZ_EIO, NULL, NULL);
    pz__api_fail(req, &err);
    return;
  }
  pz__api_busy(base->api);
}

static void get_common(pz_req_t *req, bool thumb) {
  pz_err_t err = {0};
  upload_ctx_t *c = upload_ctx_new(req, access_run);
  c->base.done = access_done;
  c->thumb = thumb;
  if (pz__api_param_id(req, 0, "upload id", &c->id, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  pz__api_read(&c->base);
}

static void get_authed(pz_req_t *req) { get_common(req, false); }
static void thumb_authed(pz_req_t *req) { get_common(req, true); }

/* ---- image and file messages ---- */

int pz__api_attach_decode(pz__api_send_t *s, json_t *body, pz_err_t *err) {
  pz_str_t type, caption;
  bool has_caption = false;
  int rc;
  if (!json_is_object(body)) return pz_err_set(err, PZ_EINVAL, NULL, "body must be an object");
  if ((rc = pz__api_str(body, "type", true, &type, NULL, err)) < 0) return rc;
  if (!pz_str_eq_c(type, "image") && !pz_str_eq_c(type, "file"))
    return pz_err_set(err, PZ_EINVAL, NULL, "body.type must be \"image\" or \"file\"");
  snprintf(s->msg.type, sizeof(s->msg.type), "%.*s", (int)type.len, type.ptr);
  if ((rc = pz__api_id(body, "upload_id", &s->upload_id, err)) < 0) return rc;
  json_t *cap = json_object_get(body, "caption");
  if (cap != NULL && !json_is_null(cap)) {
    if ((rc = pz__api_str(body, "caption", true, &caption, &has_caption, err)) < 0 ||
        (rc = pz_chat_caption_check(caption, err)) < 0)
      return rc;
    s->caption = pz_malloc(caption.len + 1);
    memcpy(s->caption, caption.ptr, caption.len);
    s->caption[caption.len] = '\0';
  }
  return 0;
}

int pz__api_attach_prepare(pz_db_t *db, pz__api_send_t *s, pz_err_t *err) {
  pz_upload_rec_t u;
  pz_msg_rec_t *m = &s->msg;
  int rc = pz_chat_upload_access(db, m->sender_id, s->upload_id, &u, err);
  if (rc == PZ_ENOTFOUND) return pz_err_set(err, PZ_EINVAL, NULL, "upload_id is not an upload you can send");
  if (rc < 0) return rc;
  bool image = strcmp(m->type, "image") == 0;
  if (image && pz_chat_upload_kind(pz_str(u.content_type)) != PZ_UPLOAD_IMAGE)
    return pz_err_set(err, PZ_EINVAL, NULL, "upload_id is not an image: send it as a file");

  char url[64], thumb_url[80];
  snprintf(url, sizeof(url), "/v1/uploads/%lld", (long long)u.id);
  snprintf(thumb_url, sizeof(thumb_url), "%s/thumbnail", url);
  json_t *body = json_pack("{s:s,s:o,s:s,s:o,s:o}", "type", m->type, "upload", upload_json(&u), "url", url,
                           "thumbnail_url", u.thumb_type[0] ? json_string(thumb_url) : json_null(), "caption",
                           s->caption ? json_string(s->caption) : json_null());
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (text == NULL) return pz_err_set(err, PZ_ENOMEM, NULL, NULL);
  size_t len = strlen(text);
  if (len > PZ_CHAT_BODY_MAX_BYTES) {
    free(text);
    return pz_err_set(err, PZ_EINVAL, NULL, "the message body is too large");
  }
  memcpy(m->body, text, len + 1);
  m->body_len = len;
  free(text);

  json_t *ev = json_pack("{s:s,s:o}", "type", PZ_EVENT_MESSAGE_NEW, "message", pz__api_message_json(m));
  free(s->payload);
  s->payload = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
  json_decref(ev);
  if (s->payload == NULL) return pz_err_set(err, PZ_ENOMEM, NULL, NULL);
  s->payload_len = strlen(s->payload);
  return 0;
}

/* ---- the sweep of uploads never sent ---- */

static int sweep_unsent(pz__api_sweep_t *s, pz_db_t *db, pz_err_t *err) {
  return pz_store_upload_sweep(db, pz_now_ms() - s->api->upload_ttl_ms, PZ_UPLOAD_SWEEP_BATCH, s->ids, &s->n, err);
}

/* The rows are gone for good: now the files. */
static void sweep_files(pz__api_sweep_t *s) {
  for (unsigned i = 0; i < s->n; i++)
    remove_files(s->api, pz_store_path(s->api->st), s->ids[i]);
}

static const pz__api_sweep_ops_t unsent_sweep = {.what = "uploads never sent",
                                                 .metric = "uploads_swept",
                                                 .batch = PZ_UPLOAD_SWEEP_BATCH,
                                                 .run = sweep_unsent,
                                                 .after = sweep_files};

/* ---- files no upload owns, found once at start ---- */

static void orphans_next(pz_api_t *api);

static int orphans_run(pz_db_t *db, pz_store_job_t *job) {
  pz_api_t *api = job->data;
  return pz_store_blob_orphans(db, pz_store_path(api->st), api->orphans.dir, api->orphans.below, &api->orphans.removed,
                               &job->err);
}

static void orphans_done(pz_store_job_t *job) {
  pz_api_t *api = job->data;
  if (job->rc < 0) {
    PZ_LOG(PZ_LOG_ERROR, NULL, "the scan for upload files without an upload failed", "error=%s",
           pz_err_message(&job->err));
  } else if (++api->orphans.dir < 256) {
    orphans_next(api);
  } else {
    pz_metrics_count("upload_files_orphaned", api->orphans.removed);
    PZ_LOG(api->orphans.removed ? PZ_LOG_INFO : PZ_LOG_DEBUG, NULL, "upload files without an upload removed",
           "count=%u", api->orphans.removed);
  }
  pz__api_unbusy(api);
}

/* One directory at a time, on a read connection: a read transaction per
 * directory, never one as long as the whole scan (it would keep the WAL
 * from starting over). */
static void orphans_next(pz_api_t *api) {
  if (api->closing) return;
  api->orphans.job = (pz_store_job_t){.run = orphans_run, .done = orphans_done, .data = api};
  if (pz_store_read(api->st, &api->orphans.job) < 0) return; /* the store is closing */
  pz__api_busy(api);
}

void pz__api_uploads_start(pz_api_t *api) {
  api->upload_ttl_ms =
      pz__api_test_knob("PLAZA_TEST_UPLOAD_TTL_MS", 1, PZ_UPLOAD_UNSENT_TTL_MS, PZ_UPLOAD_UNSENT_TTL_MS);
  api->upload_sweep = pz__api_sweep_start(api, &unsent_sweep, api->upload_ttl_ms);
  api->orphans.below = pz_id_next();
  orphans_next(api);
}

void pz__api_uploads_stop(pz_api_t *api) {
  pz__api_sweep_stop(api->upload_sweep);
  api->upload_sweep = NULL;
}

/* ---- routes ---- */

static void upload(pz_req_t *req) { pz__api_authed(req, upload_authed); }
static void get_upload(pz_req_t *req) { pz__api_authed(req, get_authed); }
static void get_thumbnail(pz_req_t *req) { pz__api_authed(req, thumb_authed); }

void pz__api_uploads_routes(pz_api_t *api, pz_router_t *r) {
  pz_err_t err = {0};
  /* libvips starts now rather than inside the first upload; should it
   * fail, images are refused with that error and the rest works. */
  if (pz_media_init(&err) < 0) PZ_LOG(PZ_LOG_ERROR, NULL, "images cannot be thumbnailed", "error=%s", err.msg);
  pz_router_add(r, PZ_HTTP_POST, "/v1/uploads", upload, api);
  pz_router_set_max_body(r, "/v1/uploads", PZ_UPLOAD_MAX_BYTES);
  pz_router_add(r, PZ_HTTP_GET, "/v1/uploads/{id}", get_upload, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/uploads/{id}/thumbnail", get_thumbnail, api);
}
