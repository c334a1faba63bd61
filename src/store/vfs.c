/* A VFS over SQLite's default one that gathers a commit's WAL frames into few large writes. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plaza/log.h"
#include "store/db.h"

/* SQLite appends each WAL frame with two write calls, its 24-byte header
 * and its page: a commit of 300 pages was 600 system calls, a quarter of
 * the writer thread's time when sends come one by one. This VFS passes
 * every call through to the default VFS, except that it holds the WAL
 * writes that follow one another in a buffer and writes them in one call.
 *
 * What is held must reach the file before anyone can look for it:
 * - before any other call on the WAL file (a read, a sync, the size, a
 *   truncation, a write elsewhere, closing it);
 * - before the commit becomes visible: SQLite publishes new frames by
 *   writing the WAL index header in shared memory, with a memory barrier
 *   (xShmBarrier of the database file) between its two copies. The
 *   database file knows its WAL file (sqlite3_database_file_object), and
 *   its barrier writes out what the WAL holds first. Readers and the
 *   checkpointer see only frames the header counts, and plazad's syncer
 *   fdatasyncs only commits whose COMMIT returned: all of them written.
 * A write that fails there cannot be reported (xShmBarrier returns
 * nothing), and the header would count frames the file does not hold:
 * plazad stops, as for a failed fsync, and recovery reads the WAL as it
 * is on disk. Frames held when the process dies were never committed.
 * (With locking_mode=EXCLUSIVE SQLite keeps the WAL index in heap memory
 * and calls no barrier: plazad never sets it, and must not.) */

#define WAL_BUF_CAP (1024 * 1024)

typedef struct shim_file shim_file;
struct shim_file {
  sqlite3_file base;
  sqlite3_file *real;    /* the default VFS's file, allocated right after this struct */
  shim_file *wal;        /* database file: its WAL file while open */
  shim_file *db;         /* WAL file: its database file */
  unsigned char *buf;    /* WAL file: frames not yet written */
  size_t len;            /* bytes held in buf */
  sqlite3_int64 offset;  /* where buf goes in the file */
};

static sqlite3_vfs *base_vfs;

/* The unix VFS writes at most 128 KiB - 1 bytes a call (it masks larger
 * counts, and reports what it could not write as a full disk). */
#define WRITE_MAX (124 * 1024)

static int flush(shim_file *f) {
  int rc = SQLITE_OK;
  for (size_t done = 0; done < f->len && rc == SQLITE_OK; done += WRITE_MAX) {
    size_t n = f->len - done < WRITE_MAX ? f->len - done : WRITE_MAX;
    rc = f->real->pMethods->xWrite(f->real, f->buf + done, (int)n, f->offset + (sqlite3_int64)done);
  }
  f->len = 0;
  return rc;
}

static int x_close(sqlite3_file *file) {
  shim_file *f = (shim_file *)file;
  int rc = flush(f);
  if (f->db && f->db->wal == f) f->db->wal = NULL;
  if (f->wal && f->wal->db == f) f->wal->db = NULL;
  free(f->buf);
  f->buf = NULL;
  int rc2 = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
  return rc != SQLITE_OK ? rc : rc2;
}

static int x_read(sqlite3_file *file, void *out, int n, sqlite3_int64 off) {
  shim_file *f = (shim_file *)file;
  int rc = flush(f);
  return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, n, off);
}

static int x_write(sqlite3_file *file, const void *data, int n, sqlite3_int64 off) {
  shim_file *f = (shim_file *)file;
  if (f->db == NULL) return f->real->pMethods->xWrite(f->real, data, n, off);
  /* A WAL file: held while it follows what is held and fits. */
  if (f->len && (off != f->offset + (sqlite3_int64)f->len || f->len + (size_t)n > WAL_BUF_CAP)) {
    int rc = flush(f);
    if (rc != SQLITE_OK) return rc;
  }
  if ((size_t)n > WRITE_MAX) return f->real->pMethods->xWrite(f->real, data, n, off);
  if (f->buf == NULL && (f->buf = malloc(WAL_BUF_CAP)) == NULL)
    return f->real->pMethods->xWrite(f->real, data, n, off);
  if (f->len == 0) f->offset = off;
  memcpy(f->buf + f->len, data, (size_t)n);
  f->len += (size_t)n;
  return SQLITE_OK;
}

static int x_truncate(sqlite3_file *file, sqlite3_int64 size) {
  shim_file *f = (shim_file *)file;
  int rc = flush(f);
  return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int x_sync(sqlite3_file *file, int flags) {
  shim_file *f = (shim_file *)file;
  int rc = flush(f);
  return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int x_file_size(sqlite3_file *file, sqlite3_int64 *size) {
  shim_file *f = (shim_file *)file;
  int rc = flush(f);
  return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int x_lock(sqlite3_file *file, int level) {
  shim_file *f = (shim_file *)file;
  return f->real->pMethods->xLock(f->real, level);
}

static int x_unlock(sqlite3_file *file, int level) {
  shim_file *f = (shim_file *)file;
  return f->real->pMethods->xUnlock(f->real, level);
}

static int x_check_reserved(sqlite3_file *file, int *out) {
  shim_file *f = (shim_file *)file;
  return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int x_file_control(sqlite3_file *file, int op, void *arg) {
  shim_file *f = (shim_file *)file;
  if (op == SQLITE_FCNTL_VFSNAME) {
    /* Our name in front of the default VFS's, as SQLite's own shims do. */
    int rc = f->real->pMethods->xFileControl(f->real, op, arg);
    if (rc == SQLITE_OK) {
      char *inner = *(char **)arg;
      *(char **)arg = sqlite3_mprintf("plaza/%z", inner);
    }
    return rc;
  }
  return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int x_sector_size(sqlite3_file *file) {
  shim_file *f = (shim_file *)file;
  return f->real->pMethods->xSectorSize(f->real);
}

static int x_device_characteristics(sqlite3_file *file) {
  shim_file *f = (shim_file *)file;
  return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/* The default VFS's files have methods of version 3 (unix); should one
 * have fewer, what it lacks behaves as SQLite expects of a file without. */
static int x_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **out) {
  shim_file *f = (shim_file *)file;
  if (f->real->pMethods->iVersion < 2) return SQLITE_IOERR_SHMMAP;
  return f->real->pMethods->xShmMap(f->real, region, size, extend, out);
}

static int x_shm_lock(sqlite3_file *file, int offset, int n, int flags) {
  shim_file *f = (shim_file *)file;
  if (f->real->pMethods->iVersion < 2) return SQLITE_IOERR_SHMLOCK;
  return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void x_shm_barrier(sqlite3_file *file) {
  shim_file *f = (shim_file *)file;
  if (f->wal && f->wal->len && flush(f->wal) != SQLITE_OK) {
    PZ_LOG(PZ_LOG_ERROR, NULL, "write of the WAL failed before a commit was published: stopping", NULL);
    abort();
  }
  if (f->real->pMethods->iVersion >= 2) f->real->pMethods->xShmBarrier(f->real);
}

static int x_shm_unmap(sqlite3_file *file, int del) {
  shim_file *f = (shim_file *)file;
  return f->real->pMethods->iVersion >= 2 ? f->real->pMethods->xShmUnmap(f->real, del) : SQLITE_OK;
}

static int x_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **out) {
  shim_file *f = (shim_file *)file;
  *out = NULL; /* no memory map: SQLite reads instead */
  int rc = flush(f);
  if (rc != SQLITE_OK || f->real->pMethods->iVersion < 3) return rc;
  return f->real->pMethods->xFetch(f->real, off, n, out);
}

static int x_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p) {
  shim_file *f = (shim_file *)file;
  return f->real->pMethods->iVersion >= 3 ? f->real->pMethods->xUnfetch(f->real, off, p) : SQLITE_OK;
}

static const sqlite3_io_methods shim_methods = {
    3,           x_close,         x_read,        x_write,         x_truncate,          x_sync,
    x_file_size, x_lock,          x_unlock,      x_check_reserved, x_file_control,     x_sector_size,
    x_device_characteristics,     x_shm_map,     x_shm_lock,      x_shm_barrier,       x_shm_unmap,
    x_fetch,     x_unfetch,
};

static int x_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags) {
  (void)vfs;
  shim_file *f = (shim_file *)file;
  memset(f, 0, sizeof(*f));
  f->real = (sqlite3_file *)(f + 1);
  int rc = base_vfs->xOpen(base_vfs, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    /* SQLite calls xClose only when pMethods is set. */
    if (f->real->pMethods) f->real->pMethods->xClose(f->real);
    f->base.pMethods = NULL;
    return rc;
  }
  f->base.pMethods = &shim_methods;
  if ((flags & SQLITE_OPEN_WAL) && name) {
    shim_file *db = (shim_file *)sqlite3_database_file_object(name);
    if (db && db->base.pMethods == &shim_methods) {
      f->db = db;
      db->wal = f;
    }
  }
  return SQLITE_OK;
}

static int x_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
  (void)vfs;
  return base_vfs->xDelete(base_vfs, name, sync_dir);
}

static int x_access(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
  (void)vfs;
  return base_vfs->xAccess(base_vfs, name, flags, out);
}

static int x_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out) {
  (void)vfs;
  return base_vfs->xFullPathname(base_vfs, name, n, out);
}

static void *x_dl_open(sqlite3_vfs *vfs, const char *name) {
  (void)vfs;
  return base_vfs->xDlOpen(base_vfs, name);
}

static void x_dl_error(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs;
  base_vfs->xDlError(base_vfs, n, out);
}

static void (*x_dl_sym(sqlite3_vfs *vfs, void *lib, const char *sym))(void) {
  (void)vfs;
  return base_vfs->xDlSym(base_vfs, lib, sym);
}

static void x_dl_close(sqlite3_vfs *vfs, void *lib) {
  (void)vfs;
  base_vfs->xDlClose(base_vfs, lib);
}

static int x_randomness(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs;
  return base_vfs->xRandomness(base_vfs, n, out);
}

static int x_sleep(sqlite3_vfs *vfs, int us) {
  (void)vfs;
  return base_vfs->xSleep(base_vfs, us);
}

static int x_current_time(sqlite3_vfs *vfs, double *out) {
  (void)vfs;
  return base_vfs->xCurrentTime(base_vfs, out);
}

static int x_get_last_error(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs;
  return base_vfs->xGetLastError ? base_vfs->xGetLastError(base_vfs, n, out) : 0;
}

static int x_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
  (void)vfs;
  return base_vfs->xCurrentTimeInt64(base_vfs, out);
}

static sqlite3_vfs shim_vfs;
static const char *registered;

const char *pz__store_vfs_name(void) { return registered; }

void pz__store_vfs_register(void) {
  sqlite3_vfs *def = sqlite3_vfs_find(NULL);
  /* Version 2 or later for xCurrentTimeInt64; otherwise the default VFS as is. */
  if (def == NULL || def->iVersion < 2) return;
  base_vfs = def;
  shim_vfs = (sqlite3_vfs){
      .iVersion = 2,
      .szOsFile = (int)sizeof(shim_file) + def->szOsFile,
      .mxPathname = def->mxPathname,
      .zName = "plaza",
      .xOpen = x_open,
      .xDelete = x_delete,
      .xAccess = x_access,
      .xFullPathname = x_full_pathname,
      .xDlOpen = x_dl_open,
      .xDlError = x_dl_error,
      .xDlSym = x_dl_sym,
      .xDlClose = x_dl_close,
      .xRandomness = x_randomness,
      .xSleep = x_sleep,
      .xCurrentTime = x_current_time,
      .xGetLastError = x_get_last_error,
      .xCurrentTimeInt64 = x_current_time_int64,
  };
  if (sqlite3_vfs_register(&shim_vfs, 0) == SQLITE_OK) registered = shim_vfs.zName;
}
