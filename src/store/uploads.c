/* Uploads: their rows (SQL behind chat_upload.h) and their files under DATA_DIR/uploads, written durably. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "plaza/chat_upload.h"
#include "plaza/id.h"
#include "plaza/log.h"
#include "store/db.h"

/* ---- rows ---- */

static const char SQL_UPLOAD_INSERT[] =
    "INSERT INTO uploads (id, user_id, content_type, size, name, width, height, thumb_type, thumb_size, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

int pz_store_upload_insert(pz_db_t *db, const pz_upload_rec_t *u, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_UPLOAD_INSERT, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, u->id)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 2, u->user_id)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 3, u->content_type, -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 4, u->size)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 5, u->name, -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_int(st, 6, u->width)) != SQLITE_OK || (rc = sqlite3_bind_int(st, 7, u->height)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 8, u->thumb_type, -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 9, u->thumb_size)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 10, u->created_at)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  rc = sqlite3_step(st);
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

static const char SQL_UPLOAD_GET[] =
    "SELECT id, user_id, content_type, size, name, width, height, thumb_type, thumb_size, created_at"
    " FROM uploads WHERE id = ?1";

int pz_store_upload_get(pz_db_t *db, int64_t id, pz_upload_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_UPLOAD_GET, err);
  if (st == NULL) return err->code;
  int rc = sqlite3_bind_int64(st, 1, id);
  if (rc != SQLITE_OK) return pz__db_fail(db, rc, err);
  rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) return pz_err_set(err, PZ_ENOTFOUND, NULL, NULL);
  if (rc != SQLITE_ROW) return pz__db_fail(db, rc, err);
  out->id = sqlite3_column_int64(st, 0);
  out->user_id = sqlite3_column_int64(st, 1);
  pz__db_col_text(st, 2, out->content_type, sizeof(out->content_type));
  out->size = sqlite3_column_int64(st, 3);
  pz__db_col_text(st, 4, out->name, sizeof(out->name));
  out->width = sqlite3_column_int(st, 5);
  out->height = sqlite3_column_int(st, 6);
  pz__db_col_text(st, 7, out->thumb_type, sizeof(out->thumb_type));
  out->thumb_size = sqlite3_column_int64(st, 8);
  out->created_at = sqlite3_column_int64(st, 9);
  return 0;
}

/* The links of one upload are few (the chats it was sent to): the primary
 * key range finds them, the members' primary key checks each. A message
 * recalled (deleted for everyone) no longer shares what it carried. */
static const char SQL_UPLOAD_SHARED[] =
    "SELECT 1 FROM message_uploads mu"
    " JOIN conversation_members m ON m.conversation_id = mu.conversation_id AND m.user_id = ?2"
    " JOIN messages g ON g.id = mu.message_id AND g.recalled_at = 0"
    " WHERE mu.upload_id = ?1 LIMIT 1";

int pz_store_upload_shared(pz_db_t *db, int64_t id, int64_t user_id, bool *shared, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_UPLOAD_SHARED, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, id)) != SQLITE_OK || (rc = sqlite3_bind_int64(st, 2, user_id)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  rc = sqlite3_step(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return pz__db_fail(db, rc, err);
  *shared = rc == SQLITE_ROW;
  return 0;
}

static const char SQL_UPLOAD_LINK[] =
    "INSERT INTO message_uploads (upload_id, conversation_id, message_id) VALUES (?1, ?2, ?3)";
static const char SQL_UPLOAD_LINKED[] = "UPDATE uploads SET linked = 1 WHERE id = ?1 AND linked = 0";

int pz_store_upload_link(pz_db_t *db, int64_t upload_id, int64_t conv_id, int64_t message_id, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_UPLOAD_LINK, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, upload_id)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 2, conv_id)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 3, message_id)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  if ((rc = pz__db_step_done(db, st, err)) < 0) return rc;
  if ((st = pz__db_stmt(db, SQL_UPLOAD_LINKED, err)) == NULL) return err->code;
  if ((rc = sqlite3_bind_int64(st, 1, upload_id)) != SQLITE_OK) return pz__db_fail(db, rc, err);
  return pz__db_step_done(db, st, err);
}

/* Oldest first, through the partial index of uploads never sent. */
static const char SQL_UPLOAD_ABANDONED[] =
    "SELECT id FROM uploads WHERE linked = 0 AND created_at < ?1 ORDER BY created_at LIMIT ?2";
static const char SQL_UPLOAD_DELETE[] = "DELETE FROM uploads WHERE id = ?1 AND linked = 0";

int pz_store_upload_sweep(pz_db_t *db, int64_t before, unsigned max, int64_t *ids, unsigned *n, pz_err_t *err) {
  *n = 0;
  sqlite3_stmt *st = pz__db_stmt(db, SQL_UPLOAD_ABANDONED, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, before)) != SQLITE_OK || (rc = sqlite3_bind_int(st, 2, (int)max)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max)
    ids[(*n)++] = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return pz__db_fail(db, rc, err);
  for (unsigned i = 0; i < *n; i++) {
    if ((st = pz__db_stmt(db, SQL_UPLOAD_DELETE, err)) == NULL) return err->code;
    if ((rc = sqlite3_bind_int64(st, 1, ids[i])) != SQLITE_OK) return pz__db_fail(db, rc, err);
    if ((rc = pz__db_step_done(db, st, err)) < 0) return rc;
  }
  return 0;
}

/* ---- files ---- */

/* DATA_DIR/uploads/xx/yy/: two levels of 256 directories, picked by a hash
 * of the id (its low bits are a sequence that restarts every millisecond),
 * keep every directory small enough to list. */
typedef struct {
  char root[4096]; /* DATA_DIR/uploads */
  char l1[4096];   /* .../xx */
  char l2[4096];   /* .../xx/yy */
  char file[4096]; /* .../xx/yy/<id>[.thumb] */
} blob_paths_t;

static int blob_paths(const char *db_path, int64_t id, bool thumb, blob_paths_t *p, pz_err_t *err) {
  const char *slash = strrchr(db_path, '/');
  int dir_len = slash ? (int)(slash - db_path) : 1;
  const char *dir = slash ? db_path : ".";
  uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
  unsigned a = (unsigned)(h >> 56), b = (unsigned)(h >> 48) & 0xff;
  int n1 = snprintf(p->root, sizeof(p->root), "%.*s/uploads", dir_len, dir);
  int n2 = snprintf(p->l1, sizeof(p->l1), "%s/%02x", p->root, a);
  int n3 = snprintf(p->l2, sizeof(p->l2), "%s/%02x", p->l1, b);
  int n4 = snprintf(p->file, sizeof(p->file), "%s/%lld%s", p->l2, (long long)id, thumb ? ".thumb" : "");
  if (n1 < 0 || n2 < 0 || n3 < 0 || n4 < 0 || (size_t)n4 + 8 >= sizeof(p->file))
    return pz_err_set(err, PZ_EIO, NULL, "the data directory's path is too long");
  return 0;
}

static void sync_dir(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)fsync(fd);
  close(fd);
}

/* Creates dir if it is missing; a new entry is made durable in its parent. */
static int ensure_dir(const char *dir, const char *parent, pz_err_t *err) {
  if (mkdir(dir, 0700) == 0) {
    sync_dir(parent);
    return 0;
  }
  if (errno == EEXIST) return 0;
  return pz_err_set(err, PZ_EIO, NULL, "cannot create the uploads directory: %s", strerror(errno));
}

int pz_store_blob_write(const char *db_path, int64_t id, bool thumb, const void *data, size_t len, pz_err_t *err) {
  blob_paths_t *p = pz_malloc(sizeof(*p));
  char tmp[4200];
  int fd = -1, rc;
  bool made = false;
  if ((rc = blob_paths(db_path, id, thumb, p, err)) < 0) goto out;
  const char *slash = strrchr(p->root, '/');
  char data_dir[4096];
  snprintf(data_dir, sizeof(data_dir), "%.*s", (int)(slash - p->root), p->root);
  if ((rc = ensure_dir(p->root, data_dir, err)) < 0 || (rc = ensure_dir(p->l1, p->root, err)) < 0 ||
      (rc = ensure_dir(p->l2, p->l1, err)) < 0)
    goto out;
  snprintf(tmp, sizeof(tmp), "%s.tmp", p->file);
  /* O_TRUNC: a temporary file left by a crash is simply rewritten. */
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = pz_err_set(err, PZ_EIO, NULL, "cannot create an upload file: %s", strerror(errno));
    goto out;
  }
  made = true;
  const char *s = data;
  size_t left = len;
  while (left > 0) {
    ssize_t n = write(fd, s, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      rc = pz_err_set(err, PZ_EIO, NULL, "cannot write an upload file: %s", n < 0 ? strerror(errno) : "short write");
      goto out;
    }
    s += n;
    left -= (size_t)n;
  }
  /* The bytes, then the name: after a crash the file is either whole or absent. */
  if (fsync(fd) < 0) {
    rc = pz_err_set(err, PZ_EIO, NULL, "cannot sync an upload file: %s", strerror(errno));
    goto out;
  }
  close(fd);
  fd = -1;
  if (rename(tmp, p->file) < 0) {
    rc = pz_err_set(err, PZ_EIO, NULL, "cannot rename an upload file: %s", strerror(errno));
    goto out;
  }
  made = false;
  sync_dir(p->l2);
out:
  if (fd >= 0) close(fd);
  if (made) unlink(tmp);
  if (rc < 0) PZ_LOG(PZ_LOG_ERROR, NULL, "upload not stored", "error=%s", err->msg);
  pz_free(p);
  return rc;
}

int pz_store_blob_read(const char *db_path, int64_t id, bool thumb, size_t max, pz_buf_t *out, pz_err_t *err) {
  blob_paths_t *p = pz_malloc(sizeof(*p));
  int fd = -1, rc;
  if ((rc = blob_paths(db_path, id, thumb, p, err)) < 0) goto out;
  fd = open(p->file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = errno == ENOENT ? pz_err_set(err, PZ_ENOTFOUND, NULL, "no such upload")
                         : pz_err_set(err, PZ_EIO, NULL, "cannot open an upload file: %s", strerror(errno));
    goto out;
  }
  struct stat sb;
  if (fstat(fd, &sb) < 0 || sb.st_size < 0 || (uint64_t)sb.st_size > max) {
    rc = pz_err_set(err, PZ_EIO, NULL, "an upload file has the wrong size");
    goto out;
  }
  size_t want = (size_t)sb.st_size, got = 0;
  pz_buf_reserve(out, want);
  while (got < want) {
    ssize_t n = read(fd, out->data + out->len + got, want - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      rc = pz_err_set(err, PZ_EIO, NULL, "cannot read an upload file: %s", n < 0 ? strerror(errno) : "truncated");
      goto out;
    }
    got += (size_t)n;
  }
  out->len += got;
out:
  if (fd >= 0) close(fd);
  if (rc < 0 && rc != PZ_ENOTFOUND) PZ_LOG(PZ_LOG_ERROR, NULL, "upload not read", "error=%s", err->msg);
  pz_free(p);
  return rc;
}

void pz_store_blob_remove(const char *db_path, int64_t id) {
  blob_paths_t *p = pz_malloc(sizeof(*p));
  pz_err_t err;
  if (blob_paths(db_path, id, false, p, &err) == 0) unlink(p->file);
  if (blob_paths(db_path, id, true, p, &err) == 0) unlink(p->file);
  pz_free(p);
}

/* ---- files no row owns ---- */

static const char SQL_UPLOAD_EXISTS[] = "SELECT 1 FROM uploads WHERE id = ?1";

/* An upload's file name: the id in decimal, then "", ".thumb", ".tmp" or
 * ".thumb.tmp". Returns false for any other name. */
static bool blob_name(const char *name, int64_t *id, bool *tmp) {
  size_t n = strspn(name, "0123456789");
  const char *rest = name + n;
  if (pz_id_parse(name, n, id) < 0) return false;
  *tmp = strcmp(rest, ".tmp") == 0 || strcmp(rest, ".thumb.tmp") == 0;
  return *tmp || rest[0] == '\0' || strcmp(rest, ".thumb") == 0;
}

static int blob_owned(pz_db_t *db, int64_t id, bool *owned, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_UPLOAD_EXISTS, err);
  if (st == NULL) return err->code;
  int rc = sqlite3_bind_int64(st, 1, id);
  if (rc != SQLITE_OK) return pz__db_fail(db, rc, err);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return pz__db_fail(db, rc, err);
  *owned = rc == SQLITE_ROW;
  return 0;
}

int pz_store_blob_orphans(pz_db_t *db, const char *db_path, unsigned dir, int64_t below_id, unsigned *removed,
                          pz_err_t *err) {
  blob_paths_t *p = pz_malloc(sizeof(*p));
  int rc = blob_paths(db_path, 1, false, p, err); /* for p->root */
  DIR *d1 = NULL;
  if (rc < 0) goto out;
  /* blob_paths checked that a whole file name fits under root. */
  if ((size_t)snprintf(p->l1, sizeof(p->l1), "%s/%02x", p->root, dir & 0xff) >= sizeof(p->l1)) goto out;
  if ((d1 = opendir(p->l1)) == NULL) goto out; /* no upload ever hashed here */
  struct dirent *e1, *e2;
  while (rc == 0 && (e1 = readdir(d1)) != NULL) {
    if (strlen(e1->d_name) != 2 || strspn(e1->d_name, "0123456789abcdef") != 2) continue;
    if ((size_t)snprintf(p->l2, sizeof(p->l2), "%s/%s", p->l1, e1->d_name) >= sizeof(p->l2)) continue;
    DIR *d2 = opendir(p->l2);
    if (d2 == NULL) continue;
    bool any = false;
    while (rc == 0 && (e2 = readdir(d2)) != NULL) {
      int64_t id;
      bool tmp, owned = false;
      if (!blob_name(e2->d_name, &id, &tmp) || id >= below_id) continue;
      if (!tmp && (rc = blob_owned(db, id, &owned, err)) < 0) break;
      if (owned) continue;
      if ((size_t)snprintf(p->file, sizeof(p->file), "%s/%s", p->l2, e2->d_name) >= sizeof(p->file)) continue;
      if (unlink(p->file) == 0) {
        (*removed)++;
        any = true;
      } else if (errno != ENOENT) {
        PZ_LOG(PZ_LOG_WARN, NULL, "cannot remove an upload file no upload owns", "error=%s", strerror(errno));
      }
    }
    closedir(d2);
    if (any) sync_dir(p->l2);
  }
out:
  if (d1) closedir(d1);
  pz_free(p);
  return rc;
}
