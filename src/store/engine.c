/* The commit pipeline: one writer thread group-commits queued jobs; reads run on pooled read connections. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "plaza/id.h"
#include "plaza/log.h"
#include "plaza/metrics.h"
#include "store/db.h"

struct pz_store_s {
  uv_loop_t *loop;
  char *path;
  unsigned max_batch;

  pz_db_t writer;
  uv_thread_t writer_thread;
  bool writer_started;

  /* Guarded by lock: jobs waiting for the writer, and jobs it finished
   * whose done callbacks the loop has not run yet. */
  uv_mutex_t lock;
  uv_cond_t wake;
  pz_store_job_t *queue_head, *queue_tail;
  pz_store_job_t *done_head, *done_tail;
  bool stopping;

  uv_async_t async; /* writer -> loop: completions are ready */

  /* The checkpointer copies the WAL back into the database file on a
   * connection and thread of its own, so that the writer does not spend its
   * time (and an fsync of the database file) doing it. ckpt_wanted is
   * guarded by lock; ckpt_woken_at (the WAL's frames when the writer last
   * woke it) is the writer's own. */
  pz_db_t ckpt;
  uv_thread_t ckpt_thread;
  uv_cond_t ckpt_wake;
  bool ckpt_started, ckpt_wanted;
  int ckpt_woken_at;

  /* The syncer. The writer commits without waiting for the disk
   * (synchronous=NORMAL) and hands each committed batch here; this thread
   * fdatasyncs the WAL (wal_fd, our own descriptor of the same file) once
   * for every batch committed since the last time, and only then are the
   * batches' jobs done. So the writer runs the next batch while the disk
   * works, and nothing is acknowledged before it is on disk. wal_fd < 0:
   * each COMMIT fsyncs itself (synchronous=FULL) and there is no syncer.
   * Guarded by lock: the list, queued_upto, writer_exited. */
  int wal_fd;
  unsigned sync_delay_ms; /* tests only */
  uv_thread_t sync_thread;
  uv_cond_t sync_wake;
  bool sync_started, writer_exited;
  pz_store_job_t *sync_head, *sync_tail;
  unsigned sync_jobs;
  uint64_t queued_upto;
  /* Batches begun (counted before their COMMIT) and batches on disk. A read
   * whose snapshot may hold commit N is not answered before durable >= N:
   * no client sees what a power cut could still take back. */
  _Atomic uint64_t committed, durable;
  pz_store_job_t *parked_head, *parked_tail; /* reads waiting for durable; loop thread */

  /* Read connections, handed out to thread-pool workers. */
  uv_mutex_t rlock;
  uv_cond_t rfree;
  pz_db_t *readers;
  pz_db_t **free_readers;
  unsigned n_readers, n_free;

  /* DATA_DIR/plazad.lock, held (flock) while this store serves the
   * directory; -1 when not claimed. */
  int lock_fd;

  /* Loop thread only. */
  unsigned pending_writes, pending_reads;
  bool closing;
  bool sync_only;
};

/* ---- connections and statements ---- */

static int db_open(pz_db_t *db, const char *path, bool readonly, pz_err_t *err) {
  memset(db, 0, sizeof(*db));
  int flags = SQLITE_OPEN_NOMUTEX | (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path, &db->sql, flags, pz__store_vfs_name());
  if (rc != SQLITE_OK) {
    pz_err_set(err, PZ_EIO, NULL, "cannot open database %s: %s", path,
               db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc));
    sqlite3_close(db->sql);
    db->sql = NULL;
    return PZ_EIO;
  }
  sqlite3_extended_result_codes(db->sql, 1);
  /* WAL lets readers run beside the writer; synchronous=FULL makes every
   * COMMIT fsync the WAL, so an acknowledged write survives power loss, not
   * only a crash of the process (pz_store_open then hands that fsync to the
   * syncer). The statement journal (a copy of each page a job changes,
   * for its savepoint) stays in memory: SQLITE_CONFIG_STMTJRNL_SPILL above
   * 64 KiB would make it one chunk instead of 1 KiB pieces, but SQLite
   * 3.40 then fails a job whose journal outgrows it with SQLITE_FULL
   * (test_store_engine.c's big job). */
  static const char *const rw_pragmas =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
      "PRAGMA busy_timeout=10000; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;";
  static const char *const ro_pragmas =
      "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000; PRAGMA query_only=1; PRAGMA cache_size=-8192;";
  return pz__db_exec(db, readonly ? ro_pragmas : rw_pragmas, err);
}

static void db_close(pz_db_t *db) {
  if (db->sql == NULL) return;
  for (unsigned i = 0; i < PZ_DB_STMT_CACHE; i++) {
    if (db->cache[i].stmt == NULL) continue;
    /* A statement prepared once should stay prepared; one re-prepared over
     * and over costs a parse per use (see SQL_ACCOUNT_SYSTEM in wallet.c). */
    int n = sqlite3_stmt_status(db->cache[i].stmt, SQLITE_STMTSTATUS_REPREPARE, 0);
    if (n > 16) {
      char head[64];
      snprintf(head, sizeof(head), "%s", db->cache[i].key);
      PZ_LOG(PZ_LOG_WARN, NULL, "statement re-prepared", "times=%d sql=%s", n, head);
    }
    sqlite3_finalize(db->cache[i].stmt);
  }
  sqlite3_close(db->sql);
  sqlite3_free(db->seqs);
  memset(db, 0, sizeof(*db));
}

sqlite3_stmt *pz__db_stmt(pz_db_t *db, const char *sql, pz_err_t *err) {
  unsigned i = (unsigned)(((uintptr_t)sql >> 3) * 2654435761u) & (PZ_DB_STMT_CACHE - 1);
  while (db->cache[i].key != NULL && db->cache[i].key != sql) i = (i + 1) & (PZ_DB_STMT_CACHE - 1);
  if (db->cache[i].key == sql) {
    sqlite3_stmt *st = db->cache[i].stmt;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
  }
  /* The SQL texts are static strings of our own, so the cache can only fill
   * up by a change to the code: that is an invariant, not an input. */
  PZ_ASSERT(db->n_cache < PZ_DB_STMT_CACHE * 3 / 4);
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v3(db->sql, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
  if (rc != SQLITE_OK) {
    pz__db_fail(db, rc, err);
    return NULL;
  }
  db->cache[i].key = sql;
  db->cache[i].stmt = st;
  db->n_cache++;
  return st;
}

int pz__db_fail(pz_db_t *db, int sqlite_rc, pz_err_t *err) {
  int primary = sqlite_rc & 0xff;
  if (primary == SQLITE_CONSTRAINT) return pz_err_set(err, PZ_ECONFLICT, NULL, NULL);
  PZ_LOG(PZ_LOG_ERROR, NULL, "database error", "code=%d error=%s", sqlite_rc,
         db && db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(sqlite_rc));
  return pz_err_set(err, PZ_EIO, NULL, NULL);
}

int pz__db_exec(pz_db_t *db, const char *sql, pz_err_t *err) {
  char *msg = NULL;
  int rc = sqlite3_exec(db->sql, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    PZ_LOG(PZ_LOG_ERROR, NULL, "database error", "code=%d error=%s", rc, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return pz_err_set(err, (rc & 0xff) == SQLITE_CONSTRAINT ? PZ_ECONFLICT : PZ_EIO, NULL, NULL);
  }
  return 0;
}

/* A statement left mid-step keeps its read transaction, and with it an old
 * WAL snapshot, open: every job ends by resetting what it used. */
static void reset_busy(pz_db_t *db) {
  for (sqlite3_stmt *st = sqlite3_next_stmt(db->sql, NULL); st; st = sqlite3_next_stmt(db->sql, st))
    if (sqlite3_stmt_busy(st)) sqlite3_reset(st);
}

/* ---- migrations ---- */

static int migrate(pz_db_t *db, pz_err_t *err) {
  int rc = 0;
  sqlite3_stmt *st = NULL;
  int version = 0;
  if (sqlite3_prepare_v2(db->sql, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
      sqlite3_step(st) != SQLITE_ROW) {
    rc = pz__db_fail(db, sqlite3_errcode(db->sql), err);
    goto out;
  }
  version = sqlite3_column_int(st, 0);
  sqlite3_reset(st); /* a statement left running would keep DROP TABLE from working in a migration */
  if (version > (int)pz__n_migrations) {
    rc = pz_err_set(err, PZ_EIO, NULL, "database schema version %d is newer than this plazad (%u)", version,
                    pz__n_migrations);
    goto out;
  }
  for (unsigned v = (unsigned)version; v < pz__n_migrations; v++) {
    char bump[64];
    snprintf(bump, sizeof(bump), "PRAGMA user_version=%u;", v + 1);
    if ((rc = pz__db_exec(db, "BEGIN IMMEDIATE", err)) < 0) goto out;
    if ((rc = pz__db_exec(db, pz__migrations[v], err)) < 0 || (rc = pz__db_exec(db, bump, err)) < 0 ||
        (rc = pz__db_exec(db, "COMMIT", err)) < 0) {
      pz__db_exec(db, "ROLLBACK", NULL);
      pz__db_forget_writes(db);
      pz_err_set(err, PZ_EIO, NULL, "migration %u failed", v + 1);
      goto out;
    }
    PZ_LOG(PZ_LOG_INFO, NULL, "migration applied", "version=%u", v + 1);
  }
out:
  sqlite3_finalize(st);
  return rc;
}

/* ---- the writer ---- */

/* The transaction and savepoint statements run for every job: prepared
 * once and kept in the writer's statement cache, not parsed per job. */
static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_BEGIN_READ[] = "BEGIN";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT job";
static const char SQL_RELEASE[] = "RELEASE job";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO job";

static int step_once(pz_db_t *db, const char *sql, pz_err_t *err) {
  pz_err_t ignored;
  if (err == NULL) err = &ignored;
  sqlite3_stmt *st = pz__db_stmt(db, sql, err);
  if (st == NULL) return err->code;
  int rc = pz__db_step_done(db, st, err);
  sqlite3_reset(st);
  return rc;
}

/* Runs one batch in one transaction, a savepoint per job, so that a failing
 * job rolls back alone. One COMMIT (one fsync) serves the whole batch. */
static void run_batch(pz_store_t *st, pz_store_job_t *batch, unsigned n) {
  pz_db_t *db = &st->writer;
  pz_err_t err = {0};
  int rc = step_once(db, SQL_BEGIN, &err);
  for (pz_store_job_t *job = batch; job; job = job->next) {
    if (rc < 0) {
      job->rc = rc;
      job->err = err;
      continue;
    }
    memset(&job->err, 0, sizeof(job->err));
    if (step_once(db, SQL_SAVEPOINT, &job->err) < 0) {
      job->rc = job->err.code;
      continue;
    }
    job->rc = job->run(db, job);
    reset_busy(db);
    if (job->rc < 0) {
      if (job->err.code == 0) pz_err_set(&job->err, job->rc, NULL, NULL);
      step_once(db, SQL_ROLLBACK_TO, NULL);
      pz__db_forget_writes(db);
    }
    step_once(db, SQL_RELEASE, NULL);
    /* After some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM) SQLite
     * rolls the whole transaction back by itself: every job of the batch
     * is lost then, and no later job may run outside a transaction. */
    if (sqlite3_get_autocommit(db->sql)) {
      PZ_LOG(PZ_LOG_ERROR, NULL, "a write batch was rolled back by the database", "jobs=%u", n);
      rc = pz_err_set(&err, PZ_EIO, NULL, NULL);
    }
  }
  if (rc == 0 && db->batch_pending) {
    rc = pz__store_batch_end(db, &err);
    db->batch_pending = 0;
  }
  /* Counted before the COMMIT makes the batch visible: a reader that sees
   * it reads a count that covers it (see durable). */
  atomic_fetch_add(&st->committed, 1);
  uint64_t t0 = pz_mono_ns();
  if (rc == 0) rc = step_once(db, SQL_COMMIT, &err);
  uint64_t t1 = pz_mono_ns();
  if (rc < 0) {
    if (!sqlite3_get_autocommit(db->sql)) step_once(db, SQL_ROLLBACK, NULL);
    pz__db_forget_writes(db);
    for (pz_store_job_t *job = batch; job; job = job->next) {
      job->rc = PZ_EIO;
      pz_err_set(&job->err, PZ_EIO, NULL, NULL);
    }
    return;
  }
  if (st->wal_fd < 0) pz_metrics_commit(n, t1 - t0); /* else the syncer counts */
}

/* WAL sizes in pages (frames). The checkpointer is woken each time the
 * WAL has grown by CKPT_FRAMES since it was last woken: a checkpoint
 * copies each page once, however many commits rewrote it, so copying
 * in steps of many commits copies a hot page (an index leaf every send
 * touches) once per step, not once per commit. It cannot let the WAL
 * start over while the writer keeps appending, so past CKPT_FORCE_FRAMES
 * the writer checkpoints the few frames still left itself: complete, that
 * lets the next transaction write the WAL from its start again, and the
 * file stays bounded (64 MiB of 4 KiB pages). */
#define CKPT_FRAMES 4000
#define CKPT_FORCE_FRAMES 16000

static int on_wal_commit(void *arg, sqlite3 *sql, const char *name, int frames) {
  pz_store_t *st = arg;
  if (frames < st->ckpt_woken_at) st->ckpt_woken_at = 0; /* the WAL started over */
  if (frames >= CKPT_FORCE_FRAMES) {
    sqlite3_wal_checkpoint_v2(sql, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
  } else if (frames - st->ckpt_woken_at >= CKPT_FRAMES) {
    st->ckpt_woken_at = frames;
    uv_mutex_lock(&st->lock);
    if (!st->ckpt_wanted) {
      st->ckpt_wanted = true;
      uv_cond_signal(&st->ckpt_wake);
    }
    uv_mutex_unlock(&st->lock);
  }
  return SQLITE_OK;
}

static void ckpt_main(void *arg) {
  pz_store_t *st = arg;
  pthread_setname_np(pthread_self(), "pz-checkpoint");
  uv_mutex_lock(&st->lock);
  for (;;) {
    while (!st->ckpt_wanted && !st->stopping) uv_cond_wait(&st->ckpt_wake, &st->lock);
    if (st->stopping) break;
    st->ckpt_wanted = false;
    uv_mutex_unlock(&st->lock);
    /* PASSIVE: copies what no reader still needs, never waits for the writer. */
    int rc = sqlite3_wal_checkpoint_v2(st->ckpt.sql, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
      PZ_LOG(PZ_LOG_WARN, NULL, "checkpoint failed", "error=%s", sqlite3_errmsg(st->ckpt.sql));
    uv_mutex_lock(&st->lock);
  }
  uv_mutex_unlock(&st->lock);
}

/* Appends the chain first..last (linked by next) to the list *head..*tail. */
static void list_append(pz_store_job_t **head, pz_store_job_t **tail, pz_store_job_t *first, pz_store_job_t *last) {
  if (*tail)
    (*tail)->next = first;
  else
    *head = first;
  *tail = last;
}

/* Hands finished jobs to the loop. Called with lock held. */
static void append_done(pz_store_t *st, pz_store_job_t *head, pz_store_job_t *tail) {
  list_append(&st->done_head, &st->done_tail, head, tail);
  uv_async_send(&st->async);
}

static void writer_main(void *arg) {
  pz_store_t *st = arg;
  pthread_setname_np(pthread_self(), "pz-writer");
  uv_mutex_lock(&st->lock);
  for (;;) {
    while (st->queue_head == NULL && !st->stopping) uv_cond_wait(&st->wake, &st->lock);
    if (st->queue_head == NULL) break; /* stopping, and the queue is drained */
    /* Take what has queued up, at most max_batch jobs: while this batch
     * commits, the next one gathers. */
    pz_store_job_t *batch = st->queue_head, *last = batch;
    unsigned n = 1;
    while (last->next && n < st->max_batch) {
      last = last->next;
      n++;
    }
    st->queue_head = last->next;
    if (st->queue_head == NULL) st->queue_tail = NULL;
    last->next = NULL;
    uv_mutex_unlock(&st->lock);

    run_batch(st, batch, n);

    uv_mutex_lock(&st->lock);
    if (st->wal_fd >= 0) {
      list_append(&st->sync_head, &st->sync_tail, batch, last);
      st->sync_jobs += n;
      st->queued_upto = atomic_load(&st->committed);
      uv_cond_signal(&st->sync_wake);
    } else {
      atomic_store(&st->durable, atomic_load(&st->committed));
      append_done(st, batch, last);
    }
  }
  st->writer_exited = true;
  uv_cond_signal(&st->sync_wake);
  uv_mutex_unlock(&st->lock);
}

/* One fdatasync makes every batch committed before it durable. An fsync
 * that fails leaves the kernel's copy of the WAL in doubt (it may have
 * dropped the pages it could not write): no answer can be trusted after
 * it, so plazad stops, as PostgreSQL does, and recovers from the WAL. */
static void sync_main(void *arg) {
  pz_store_t *st = arg;
  pthread_setname_np(pthread_self(), "pz-fsync");
  uv_mutex_lock(&st->lock);
  for (;;) {
    while (st->sync_head == NULL && !st->writer_exited) uv_cond_wait(&st->sync_wake, &st->lock);
    if (st->sync_head == NULL) break; /* the writer is gone and everything is synced */
    pz_store_job_t *head = st->sync_head, *tail = st->sync_tail;
    unsigned n = st->sync_jobs;
    uint64_t upto = st->queued_upto;
    st->sync_head = st->sync_tail = NULL;
    st->sync_jobs = 0;
    uv_mutex_unlock(&st->lock);

    if (st->sync_delay_ms) uv_sleep(st->sync_delay_ms);
    uint64_t t0 = pz_mono_ns();
    if (fdatasync(st->wal_fd) != 0) {
      PZ_LOG(PZ_LOG_ERROR, NULL, "fsync of the WAL failed: stopping", "error=%s", strerror(errno));
      abort();
    }
    pz_metrics_commit(n, pz_mono_ns() - t0);

    uv_mutex_lock(&st->lock);
    atomic_store(&st->durable, upto);
    append_done(st, head, tail);
  }
  uv_mutex_unlock(&st->lock);
}

static void finish_read(pz_store_t *st, pz_store_job_t *job);

static void deliver_done(pz_store_t *st) {
  uv_mutex_lock(&st->lock);
  pz_store_job_t *job = st->done_head;
  st->done_head = st->done_tail = NULL;
  uv_mutex_unlock(&st->lock);
  while (job) {
    pz_store_job_t *next = job->next;
    job->next = NULL;
    st->pending_writes--;
    job->done(job);
    job = next;
  }
  /* Reads that waited for the disk to catch up with their snapshot, in
   * the order they came. */
  uint64_t durable = atomic_load(&st->durable);
  pz_store_job_t **link = &st->parked_head, *last = NULL;
  while ((job = *link) != NULL) {
    if (job->horizon <= durable) {
      *link = job->next;
      job->next = NULL;
      finish_read(st, job);
    } else {
      last = job;
      link = &job->next;
    }
  }
  st->parked_tail = last;
}

static void on_async(uv_async_t *h) { deliver_done(h->data); }

int pz_store_write(pz_store_t *st, pz_store_job_t *job) {
  if (st->closing) return PZ_ESHUTDOWN;
  job->store = st;
  job->next = NULL;
  job->rc = 0;
  st->pending_writes++;
  uv_mutex_lock(&st->lock);
  list_append(&st->queue_head, &st->queue_tail, job, job);
  uv_cond_signal(&st->wake);
  uv_mutex_unlock(&st->lock);
  return 0;
}

/* ---- readers ---- */

static pz_db_t *reader_take(pz_store_t *st) {
  uv_mutex_lock(&st->rlock);
  while (st->n_free == 0) uv_cond_wait(&st->rfree, &st->rlock);
  pz_db_t *db = st->free_readers[--st->n_free];
  uv_mutex_unlock(&st->rlock);
  return db;
}

static void reader_give(pz_store_t *st, pz_db_t *db) {
  uv_mutex_lock(&st->rlock);
  st->free_readers[st->n_free++] = db;
  uv_cond_signal(&st->rfree);
  uv_mutex_unlock(&st->rlock);
}

/* One read transaction per job: every statement of it sees one snapshot. */
static int run_read(pz_db_t *db, pz_store_job_t *job) {
  memset(&job->err, 0, sizeof(job->err));
  job->rc = step_once(db, SQL_BEGIN_READ, &job->err);
  if (job->rc == 0) {
    job->rc = job->run(db, job);
    if (job->rc < 0 && job->err.code == 0) pz_err_set(&job->err, job->rc, NULL, NULL);
    reset_busy(db);
    step_once(db, SQL_COMMIT, NULL);
  }
  return job->rc;
}

static void read_work(uv_work_t *w) {
  pz_store_job_t *job = w->data;
  pz_store_t *st = job->store;
  pz_db_t *db = reader_take(st);
  run_read(db, job);
  job->horizon = atomic_load(&st->committed);
  reader_give(st, db);
}

static void finish_close(pz_store_t *st);

static void finish_read(pz_store_t *st, pz_store_job_t *job) {
  st->pending_reads--;
  job->done(job);
  if (st->closing && st->pending_reads == 0) finish_close(st);
}

static void read_after(uv_work_t *w, int status) {
  pz_store_job_t *job = w->data;
  pz_store_t *st = job->store;
  if (status == UV_ECANCELED) {
    pz_err_set(&job->err, job->rc = PZ_ESHUTDOWN, NULL, NULL);
  } else if (job->horizon > atomic_load(&st->durable)) {
    job->next = NULL;
    list_append(&st->parked_head, &st->parked_tail, job, job);
    return;
  }
  finish_read(st, job);
}

int pz_store_read(pz_store_t *st, pz_store_job_t *job) {
  if (st->closing) return PZ_ESHUTDOWN;
  job->store = st;
  job->work.data = job;
  st->pending_reads++;
  int rc = uv_queue_work(st->loop, &job->work, read_work, read_after);
  PZ_ASSERT(rc == 0); /* fails only for a NULL callback */
  return 0;
}

unsigned pz_store_pending(const pz_store_t *st) { return st->pending_writes + st->pending_reads; }

/* ---- open and close ---- */

static int make_dir(const char *dir, pz_err_t *err) {
  if (mkdir(dir, 0700) == 0 || errno == EEXIST) {
    struct stat sb;
    if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) return 0;
    return pz_err_set(err, PZ_EIO, NULL, "data directory %s is not a directory", dir);
  }
  return pz_err_set(err, PZ_EIO, NULL, "cannot create data directory %s: %s", dir, strerror(errno));
}

/* Creating plaza.db and its WAL adds directory entries: fsync the
 * directory so that the files themselves survive a power cut. */
static void sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

/* Two servers on one data directory would both write: each with its own
 * idea of every stream's last seq and of who is connected, and a second
 * `make run` would look as if it worked. The first to start holds an
 * exclusive flock on DATA_DIR/plazad.lock, with its pid inside for the
 * operator; the kernel lets go of it when the process ends, kill -9
 * included, so nothing stale is left to clean up. */
static int dir_lock(pz_store_t *st, long *holder, pz_err_t *err) {
  if (holder) *holder = 0;
  /* The directory is the database's: st->path is DATA_DIR/plaza.db. */
  int dir_len = (int)(strlen(st->path) - sizeof("/plaza.db") + 1);
  char path[4096];
  snprintf(path, sizeof(path), "%.*s/plazad.lock", dir_len, st->path);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return pz_err_set(err, PZ_EIO, NULL, "cannot open %s: %s", path, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    char buf[24] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    if (e != EWOULDBLOCK) return pz_err_set(err, PZ_EIO, NULL, "cannot lock %s: %s", path, strerror(e));
    long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
    if (holder) *holder = pid;
    return pz_err_set(err, PZ_ECONFLICT, NULL, "data directory %.*s is in use by another plazad (pid %ld)", dir_len,
                      st->path, pid);
  }
  char pid[24];
  int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
    /* The lock holds all the same; only the pid shown to others is lost. */
    PZ_LOG(PZ_LOG_WARN, NULL, "cannot write the pid into the data directory's lock", "error=%s", strerror(errno));
  }
  st->lock_fd = fd;
  return 0;
}

int pz_store_claim(pz_store_t *st, long *holder, pz_err_t *err) {
  if (st->lock_fd >= 0) return 0;
  return dir_lock(st, holder, err);
}

static int open_common(pz_store_t **out, const char *data_dir, bool claim, pz_err_t *err) {
  pz__store_sqlite_setup();
  pz_store_t *st = pz_calloc(1, sizeof(*st));
  st->wal_fd = -1;
  st->lock_fd = -1;
  int rc = make_dir(data_dir, err);
  if (rc < 0) goto out;
  size_t n = strlen(data_dir) + sizeof("/plaza.db");
  st->path = pz_malloc(n);
  snprintf(st->path, n, "%s/plaza.db", data_dir);
  /* Before the migrations: they are writes too. */
  if (claim && (rc = dir_lock(st, NULL, err)) < 0) goto out;
  if ((rc = db_open(&st->writer, st->path, false, err)) < 0) goto out;
  if ((rc = migrate(&st->writer, err)) < 0) goto out;
  sync_dir(data_dir);
out:
  if (rc < 0) {
    db_close(&st->writer);
    if (st->lock_fd >= 0) close(st->lock_fd);
    pz_free(st->path);
    pz_free(st);
    st = NULL;
  }
  *out = st;
  return rc;
}

/* Our own descriptor of the WAL, for the syncer, and the writer's commits
 * no longer wait for the disk. The WAL exists once a connection has read
 * in WAL mode (the migrations did), and SQLite removes it only when the
 * last connection closes, so the descriptor stays the file's. -1: keep
 * synchronous=FULL. */
static int open_wal(pz_store_t *st) {
  size_t n = strlen(st->path) + sizeof("-wal");
  char *wal = pz_malloc(n);
  snprintf(wal, n, "%s-wal", st->path);
  int fd = open(wal, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    PZ_LOG(PZ_LOG_WARN, NULL, "cannot open the WAL: commits fsync one by one", "path=%s error=%s", wal,
           strerror(errno));
  pz_free(wal);
  if (fd >= 0 && pz__db_exec(&st->writer, "PRAGMA synchronous=NORMAL", NULL) < 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

int pz_store_open(pz_store_t **out, uv_loop_t *loop, const pz_store_config_t *cfg, pz_err_t *err) {
  pz_store_t *st;
  int rc = open_common(&st, cfg->data_dir, true, err);
  if (rc < 0) return rc;
  st->loop = loop;
  st->max_batch = cfg->max_batch ? cfg->max_batch : 1024;
  st->sync_delay_ms = cfg->test_sync_delay_ms;
  st->n_readers = cfg->readers ? cfg->readers : 4;
  st->readers = pz_calloc(st->n_readers, sizeof(pz_db_t));
  st->free_readers = pz_calloc(st->n_readers, sizeof(pz_db_t *));
  for (unsigned i = 0; i < st->n_readers; i++) {
    if ((rc = db_open(&st->readers[i], st->path, true, err)) < 0) {
      for (unsigned j = 0; j <= i; j++) db_close(&st->readers[j]);
      db_close(&st->writer);
      pz_free(st->readers);
      pz_free(st->free_readers);
      pz_free(st->path);
      pz_free(st);
      return rc;
    }
    st->free_readers[st->n_free++] = &st->readers[i];
  }
  uv_mutex_init(&st->lock);
  uv_cond_init(&st->wake);
  uv_mutex_init(&st->rlock);
  uv_cond_init(&st->rfree);
  uv_async_init(loop, &st->async, on_async);
  st->async.data = st;
  uv_cond_init(&st->ckpt_wake);
  uv_cond_init(&st->sync_wake);
  st->wal_fd = open_wal(st);
  if (st->wal_fd >= 0) uv_thread_create(&st->sync_thread, sync_main, st);
  st->sync_started = st->wal_fd >= 0;
  if (db_open(&st->ckpt, st->path, false, NULL) == 0) {
    sqlite3_wal_hook(st->writer.sql, on_wal_commit, st);
    uv_thread_create(&st->ckpt_thread, ckpt_main, st);
    st->ckpt_started = true;
  } /* else the writer keeps SQLite's own checkpoints after commits */
  uv_thread_create(&st->writer_thread, writer_main, st);
  st->writer_started = true;
  *out = st;
  return 0;
}

static void free_store(uv_handle_t *h) {
  pz_store_t *st = h->data;
  for (unsigned i = 0; i < st->n_readers; i++) db_close(&st->readers[i]);
  db_close(&st->ckpt);
  db_close(&st->writer);
  uv_mutex_destroy(&st->lock);
  uv_cond_destroy(&st->wake);
  uv_cond_destroy(&st->ckpt_wake);
  uv_cond_destroy(&st->sync_wake);
  if (st->wal_fd >= 0) close(st->wal_fd);
  if (st->lock_fd >= 0) close(st->lock_fd); /* last: the directory is free once everything is closed */
  uv_mutex_destroy(&st->rlock);
  uv_cond_destroy(&st->rfree);
  pz_free(st->readers);
  pz_free(st->free_readers);
  pz_free(st->path);
  pz_free(st);
}

static void finish_close(pz_store_t *st) { uv_close((uv_handle_t *)&st->async, free_store); }

void pz_store_close(pz_store_t *st) {
  if (st == NULL) return;
  if (st->sync_only) {
    db_close(&st->writer);
    if (st->lock_fd >= 0) close(st->lock_fd);
    pz_free(st->path);
    pz_free(st);
    return;
  }
  if (st->closing) return;
  st->closing = true;
  /* The writer runs what is queued, then exits; its completions are
   * delivered here, before the handles go. */
  uv_mutex_lock(&st->lock);
  st->stopping = true;
  uv_cond_signal(&st->wake);
  uv_cond_signal(&st->ckpt_wake);
  uv_mutex_unlock(&st->lock);
  uv_thread_join(&st->writer_thread);
  if (st->sync_started) uv_thread_join(&st->sync_thread); /* it drains first */
  if (st->ckpt_started) uv_thread_join(&st->ckpt_thread);
  deliver_done(st);
  /* Checkpoint so that the database file alone holds everything. */
  sqlite3_wal_checkpoint_v2(st->writer.sql, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
  if (st->pending_reads == 0) finish_close(st);
}

const char *pz_store_path(const pz_store_t *st) { return st->path; }

int pz_store_open_sync(pz_store_t **out, const char *data_dir, pz_err_t *err) {
  int rc = open_common(out, data_dir, false, err);
  if (rc == 0) (*out)->sync_only = true;
  return rc;
}

int pz_store_run_sync_read(pz_store_t *st, pz_store_job_t *job) {
  job->store = st;
  return run_read(&st->writer, job);
}

int pz_store_run_sync(pz_store_t *st, pz_store_job_t *job) {
  pz_store_job_t *saved_next = job->next;
  job->next = NULL;
  job->store = st;
  run_batch(st, job, 1);
  job->next = saved_next;
  return job->rc;
}
