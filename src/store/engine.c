/* The commit pipeline: one writer thread group-commits queued jobs; reads run on pooled read connections. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "plaza/id.h"
#include "plaza/log.h"
#include "plaza/metrics.h"
#include "store/db.h"
#include "store/sendlog.h"

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
  bool sync_wanted; /* a batch committed since the last fsync */
  uint64_t queued_upto;
  /* The count of committed (below) at the last batch that carried jobs:
   * what the log thread's answers wait for (batches of records alone carry
   * no answers to keep in order). */
  _Atomic uint64_t jobs_committed;
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

  /* The send log (sendlog.h). Jobs with a log callback go to the log
   * thread, which checks them on its own read connection (logdb), claims
   * their event seqs, appends their records with one fdatasync per batch
   * and answers them: their writes are durable then. The writer applies
   * the records afterwards (apply list), in the order of their lsns.
   *
   * Sequencing: the log thread claims seqs holding seq_mu; the writer holds
   * it for every batch of ordinary jobs, after waiting for every claimed
   * record to be durable and answered, and applying them all first. So a
   * stream's events reach the database in seq order, and the completions
   * reach the loop in that order too. A read waits until what was durable when it came
   * (log_target) is applied: an answered send is in every later read.
   * NULL log: no log thread; every job goes to the writer.
   * Guarded by lock: log_head/tail, apply_head/tail, free_from, apply_count,
   * apply_pos, log_exited, log_waiting. */
  pz__sendlog_t *log;
  pz_db_t logdb;
  uv_thread_t log_thread;
  bool log_started, log_exited, log_waiting;
  uv_cond_t log_wake, log_cond;
  uv_mutex_t seq_mu;
  pz_store_job_t *log_head, *log_tail;
  struct apply_s *apply_head, *apply_tail;
  /* Where the first record whose apply is not yet durable lies: the ring
   * keeps everything from there on (the writer's COMMIT is on disk only
   * once the syncer's fsync is). apply_count / apply_pos: the last batch
   * that applied records (its committed count) and where its records end. */
  pz__sendlog_pos_t free_from;
  uint64_t apply_count;
  pz__sendlog_pos_t apply_pos;
  /* The last lsn claimed (seq_mu), durable (written and synced), answered
   * (handed to the loop), applied (committed). */
  _Atomic uint64_t log_claimed, log_durable, log_answered, log_applied;
  unsigned apply_delay_ms;                     /* tests only */
  pz_store_job_t *lparked_head, *lparked_tail; /* reads waiting for the apply; loop thread */
  /* Records wait to be applied until APPLY_GATHER of them or APPLY_WAIT_MS
   * have gathered, unless a read waits for them (apply_now): a big apply
   * writes each page it touches once for many records. Guarded by lock. */
  unsigned apply_n;
  uint64_t apply_since; /* pz_mono_ns of the oldest record waiting */
  bool apply_now;
  /* The writer's nice value while it applies records (writer_nice). */
  pid_t writer_tid;
  bool renice_ok;
  _Atomic bool writer_niced;

  /* Loop thread only. */
  unsigned pending_writes, pending_reads;
  bool closing;
  bool sync_only;
  /* Jobs of pz_store_write_lazy: they wait here until an ordinary write
   * is queued, which takes them along ahead of itself, or until the
   * oldest has waited lazy_ms (lazy_timer). */
  pz_store_job_t *lazy_head, *lazy_tail;
  uv_timer_t lazy_timer;
  unsigned lazy_ms;
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
static const char SQL_SAVEPOINT_GROUP[] = "SAVEPOINT jobs";
static const char SQL_RELEASE_GROUP[] = "RELEASE jobs";
static const char SQL_ROLLBACK_TO_GROUP[] = "ROLLBACK TO jobs";

static int step_once(pz_db_t *db, const char *sql, pz_err_t *err) {
  pz_err_t ignored;
  if (err == NULL) err = &ignored;
  sqlite3_stmt *st = pz__db_stmt(db, sql, err);
  if (st == NULL) return err->code;
  int rc = pz__db_step_done(db, st, err);
  sqlite3_reset(st);
  return rc;
}

/* Records of one append of the log thread, for the writer to apply. */
typedef struct apply_s {
  struct apply_s *next;
  unsigned n;
  uint64_t first_lsn;
  pz_buf_t *recs;              /* n records */
  uint16_t *types;             /* n: their types (PZ__LOG_*) */
  pz__sendlog_pos_t *next_pos; /* n: where the chain goes on after each */
} apply_t;

static void apply_free(apply_t *a) {
  while (a) {
    apply_t *next = a->next;
    for (unsigned i = 0; i < a->n; i++)
      pz_buf_free(&a->recs[i]);
    pz_free(a->recs);
    pz_free(a->types);
    pz_free(a->next_pos);
    pz_free(a);
    a = next;
  }
}

static const char SQL_SENDLOG_STATE[] = "SELECT next_lsn, next_off, epoch FROM sendlog_state WHERE id = 1";
static const char SQL_SENDLOG_EPOCH[] = "UPDATE sendlog_state SET epoch = ?1 WHERE id = 1";
static const char SQL_SENDLOG_MOVE[] = "UPDATE sendlog_state SET next_lsn = ?1, next_off = ?2 WHERE id = 1";

/* Applies one logged record. The database refuses one (PZ_ECONFLICT,
 * PZ_EINVAL) only through a bug, as it was checked before it was logged.
 * When careful, the record gets a savepoint of its own and a refused one is
 * skipped with an error in the log rather than stopping every later one;
 * otherwise it writes straight into the batch's transaction and a refusal
 * returns false (the caller rolls everything back and applies again,
 * carefully). A savepoint per record cost the writer a copy of every page
 * a record touched into the savepoint's journal, a tenth of its time under
 * load. Anything else wrong with the database stops plazad, which applies
 * the record again at start: it is durable and answered. */
static bool apply_one(pz_db_t *db, uint64_t lsn, uint16_t type, const void *rec, uint32_t len, bool careful) {
  pz_err_t err = {0};
  if (careful && step_once(db, SQL_SAVEPOINT, &err) < 0) goto fatal;
  int rc = type == PZ__LOG_TRANSFER ? pz__store_transfer_log_apply(db, rec, len, &err)
                                    : pz__store_msg_log_apply(db, rec, len, &err);
  if (careful) reset_busy(db);
  if (rc == PZ_ECONFLICT || rc == PZ_EINVAL) {
    if (!careful) return false;
    PZ_LOG(PZ_LOG_ERROR, NULL, "a send log record was refused by the database: skipped", "lsn=%llu code=%d",
           (unsigned long long)lsn, rc);
    step_once(db, SQL_ROLLBACK_TO, NULL);
    pz__db_forget_writes(db);
  } else if (rc < 0) {
    goto fatal;
  }
  if (careful) step_once(db, SQL_RELEASE, NULL);
  if (sqlite3_get_autocommit(db->sql)) goto fatal;
  return true;
fatal:
  PZ_LOG(PZ_LOG_ERROR, NULL, "cannot apply the send log: stopping", "lsn=%llu", (unsigned long long)lsn);
  abort();
}

/* Applies every record of applies in the transaction begun on db; false
 * when one was refused (not careful: see apply_one). Statements are reset
 * as they are fetched again (pz__db_stmt), so once at the end will do. */
static bool apply_records(pz_db_t *db, const apply_t *applies, bool careful) {
  bool ok = true;
  for (const apply_t *a = applies; a && ok; a = a->next)
    for (unsigned i = 0; i < a->n && ok; i++)
      ok = apply_one(db, a->first_lsn + i, a->types[i], a->recs[i].data, (uint32_t)a->recs[i].len, careful);
  reset_busy(db);
  return ok;
}

/* Moves sendlog_state past what was applied, in the same transaction. */
static void apply_moved(pz_db_t *db, pz__sendlog_pos_t next) {
  pz_err_t err = {0};
  sqlite3_stmt *q = pz__db_stmt(db, SQL_SENDLOG_MOVE, &err);
  if (q == NULL || PZ__DB_BIND(db, q, &err, (int64_t)next.lsn, (int64_t)next.off) < 0 ||
      pz__db_step_done(db, q, &err) < 0) {
    PZ_LOG(PZ_LOG_ERROR, NULL, "cannot record the send log's position: stopping", NULL);
    abort();
  }
  sqlite3_reset(q);
}

/* After some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM) SQLite rolls
 * the whole transaction back by itself: every job of the batch is lost
 * then, and no later job may run outside a transaction (*rc, *err). */
static void check_rolled_back(pz_db_t *db, int *rc, pz_err_t *err) {
  if (sqlite3_get_autocommit(db->sql)) *rc = pz_err_set(err, PZ_EIO, NULL, NULL);
}

/* Runs job (in whatever savepoint the caller opened): job->rc, and
 * job->err filled whenever it failed. */
static void run_job(pz_db_t *db, pz_store_job_t *job) {
  job->rc = job->run(db, job);
  reset_busy(db);
  if (job->rc < 0 && job->err.code == 0) pz_err_set(&job->err, job->rc, NULL, NULL);
}

/* Runs job in a savepoint of its own: if it fails, what it wrote is
 * rolled back, and the batch's other jobs are not touched. */
static void run_alone(pz_db_t *db, pz_store_job_t *job, int *rc, pz_err_t *err) {
  memset(&job->err, 0, sizeof(job->err));
  if (step_once(db, SQL_SAVEPOINT, &job->err) < 0) {
    job->rc = job->err.code;
    return;
  }
  run_job(db, job);
  if (job->rc < 0) {
    step_once(db, SQL_ROLLBACK_TO, NULL);
    pz__db_forget_writes(db);
  }
  step_once(db, SQL_RELEASE, NULL);
  check_rolled_back(db, rc, err);
}

/* Runs first and the rerunnable jobs right after it (job->rerun) in one
 * savepoint for all of them. A savepoint copies each page the first time
 * it is written under it (SQLite's statement journal): a savepoint per
 * job copies the pages every transfer touches (a dozen or more, 4 KiB
 * each) once per transfer; one for the group, once per group. If a job
 * of the group fails after it changed rows, the group's savepoint is
 * rolled back, every job of the group is put back as it was (rerun) and
 * each runs again, alone, so that only the failing one loses its writes.
 * Returns the job after the group. */
static pz_store_job_t *run_group(pz_db_t *db, pz_store_job_t *first, int *rc, pz_err_t *err) {
  pz_store_job_t *end = first, *job;
  while (end && end->rerun)
    end = end->next;
  if (first->next == end) { /* a group of one: its own savepoint is the same */
    run_alone(db, first, rc, err);
    return end;
  }
  pz_err_t gerr = {0};
  if (step_once(db, SQL_SAVEPOINT_GROUP, &gerr) < 0) {
    for (job = first; job != end; job = job->next) {
      job->rc = gerr.code;
      job->err = gerr;
    }
    return end;
  }
  /* A job that fails having changed no row (a refusal before any write:
   * the usual failure) leaves nothing to roll back, and the group goes on.
   * (A statement that failed added nothing to the count of changes.) */
  bool failed = false;
  for (job = first; job != end && !failed; job = job->next) {
    memset(&job->err, 0, sizeof(job->err));
    sqlite3_int64 changes = sqlite3_total_changes64(db->sql);
    run_job(db, job);
    failed = job->rc < 0 && (sqlite3_total_changes64(db->sql) != changes || sqlite3_get_autocommit(db->sql));
  }
  if (failed && !sqlite3_get_autocommit(db->sql)) {
    pz_store_job_t *ran_end = job; /* the jobs that ran: first up to the failed one */
    step_once(db, SQL_ROLLBACK_TO_GROUP, NULL);
    pz__db_forget_writes(db);
    step_once(db, SQL_RELEASE_GROUP, NULL);
    pz_metrics_job_group_rerun();
    for (job = first; job != ran_end; job = job->next)
      job->rerun(job);
    for (job = first; job != end; job = job->next) {
      if (*rc < 0) {
        job->rc = *rc;
        job->err = *err;
      } else {
        run_alone(db, job, rc, err);
      }
    }
    return end;
  }
  if (!failed) step_once(db, SQL_RELEASE_GROUP, NULL);
  check_rolled_back(db, rc, err);
  return end;
}

/* Runs one batch in one transaction: first the logged records of applies
 * (none: NULL), then the jobs, a savepoint per job (or per group of
 * rerunnable jobs), so that a failing job rolls back alone. One COMMIT
 * (one fsync) serves the whole batch. */
static void run_batch(pz_store_t *st, apply_t *applies, pz_store_job_t *batch, unsigned n) {
  pz_db_t *db = &st->writer;
  pz_err_t err = {0};
  int rc = step_once(db, SQL_BEGIN, &err), began = rc;
  uint64_t applied = 0;
  if (applies && rc < 0) {
    PZ_LOG(PZ_LOG_ERROR, NULL, "cannot apply the send log: stopping", NULL);
    abort();
  }
  pz__sendlog_pos_t applied_pos = {0, 0};
  uint64_t first_applied = applies ? applies->first_lsn : 0;
  if (applies && !apply_records(db, applies, false)) {
    /* Nothing but the records is in the transaction yet: it starts over. */
    step_once(db, SQL_ROLLBACK, NULL);
    pz__db_forget_writes(db);
    db->batch_pending = 0;
    if (step_once(db, SQL_BEGIN, &err) < 0) {
      PZ_LOG(PZ_LOG_ERROR, NULL, "cannot apply the send log: stopping", NULL);
      abort();
    }
    apply_records(db, applies, true);
  }
  for (apply_t *a = applies; a; a = a->next) {
    applied = a->first_lsn + a->n - 1;
    applied_pos = a->next_pos[a->n - 1];
  }
  if (applied) apply_moved(db, applied_pos);
  for (pz_store_job_t *job = batch; job;) {
    if (rc < 0) {
      job->rc = rc;
      job->err = err;
      job = job->next;
    } else if (job->rerun) {
      job = run_group(db, job, &rc, &err);
    } else {
      run_alone(db, job, &rc, &err);
      job = job->next;
    }
  }
  if (began == 0 && rc < 0)
    PZ_LOG(PZ_LOG_ERROR, NULL, "a write batch was rolled back by the database", "jobs=%u", n);
  if (rc == 0 && db->batch_pending) {
    rc = pz__store_batch_end(db, &err);
    db->batch_pending = 0;
  }
  /* Counted before the COMMIT makes the batch visible: a reader that sees
   * it reads a count that covers it (see durable). */
  uint64_t count = atomic_fetch_add(&st->committed, 1) + 1;
  if (applied) {
    uv_mutex_lock(&st->lock);
    st->apply_count = count;
    st->apply_pos = applied_pos;
    uv_mutex_unlock(&st->lock);
  }
  if (batch) atomic_store(&st->jobs_committed, count);
  uint64_t t0 = pz_mono_ns();
  if (rc == 0) rc = step_once(db, SQL_COMMIT, &err);
  uint64_t t1 = pz_mono_ns();
  if (rc < 0) {
    if (applies) {
      PZ_LOG(PZ_LOG_ERROR, NULL, "cannot commit the send log's records: stopping", NULL);
      abort();
    }
    if (!sqlite3_get_autocommit(db->sql)) step_once(db, SQL_ROLLBACK, NULL);
    pz__db_forget_writes(db);
    for (pz_store_job_t *job = batch; job; job = job->next) {
      job->rc = PZ_EIO;
      pz_err_set(&job->err, PZ_EIO, NULL, NULL);
    }
    return;
  }
  if (applied) {
    atomic_store(&st->log_applied, applied);
    pz_metrics_sendlog_applied(applied - first_applied + 1);
  }
  if (st->wal_fd < 0) pz_metrics_commit(n, t1 - t0); /* else the syncer counts */
}

/* WAL sizes in pages (frames). The checkpointer is woken each time the
 * WAL has grown by CKPT_FRAMES since it was last woken: a checkpoint
 * copies each page once, however many commits rewrote it, so copying
 * in steps of many commits copies a hot page (an index leaf every send
 * or transfer touches) once per step, not once per commit. It cannot let
 * the WAL start over while the writer keeps appending, so past
 * CKPT_FORCE_FRAMES the writer checkpoints the frames still left itself:
 * complete, that lets the next transaction write the WAL from its start
 * again. The file stays near 256 MiB of 4 KiB pages, more while a
 * checkpoint in progress or a reader's snapshot keeps it from starting
 * over. Steps of 16,000 frames rather than 4,000 (and a WAL a quarter of
 * this size) halved the checkpointer's CPU per transfer (3.2 -> 1.7 µs)
 * and made transfers 11 % faster, with chat's latency unchanged
 * (docs/PERFORMANCE.md). */
#define CKPT_FRAMES 16000
#define CKPT_FORCE_FRAMES 64000

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

/* Once the batch that applied records is durable, the ring may write
 * over them. Called with lock held. */
static void log_freed(pz_store_t *st) {
  if (st->apply_count && st->apply_count <= atomic_load(&st->durable)) {
    st->free_from = st->apply_pos;
    st->apply_count = 0;
  }
}

/* Hands a committed batch (jobs may be none: records applied) to the
 * syncer, or answers it at once without one. Called with lock held. */
static void batch_committed(pz_store_t *st, pz_store_job_t *batch, pz_store_job_t *last, unsigned n) {
  if (st->wal_fd >= 0) {
    if (batch) list_append(&st->sync_head, &st->sync_tail, batch, last);
    st->sync_jobs += n;
    st->queued_upto = atomic_load(&st->committed);
    st->sync_wanted = true;
    uv_cond_signal(&st->sync_wake);
  } else {
    atomic_store(&st->durable, atomic_load(&st->committed));
    log_freed(st);
    if (batch) list_append(&st->done_head, &st->done_tail, batch, last);
    uv_cond_broadcast(&st->log_cond);
    uv_async_send(&st->async);
  }
}

/* Takes every record the log thread has made durable. Called with lock held. */
static apply_t *take_applies(pz_store_t *st) {
  apply_t *a = st->apply_head;
  st->apply_head = st->apply_tail = NULL;
  st->apply_n = 0;
  st->apply_now = false;
  return a;
}

/* Applies, in a batch of their own, the records taken (a may be NULL). */
static void apply_batch(pz_store_t *st, apply_t *a) {
  if (a == NULL) return;
  run_batch(st, a, NULL, 0);
  apply_free(a);
  uv_mutex_lock(&st->lock);
  batch_committed(st, NULL, NULL, 0);
  uv_mutex_unlock(&st->lock);
}

/* Records a batch of jobs may still find to apply once it holds seq_mu. */
#define SEQUENCE_BACKLOG 256

/* Before a batch of ordinary jobs: holds seq_mu, with every record claimed
 * so far durable, answered and taken into *applies. The backlog goes
 * first, without seq_mu, so that sends go on meanwhile: a job behind
 * thousands of records (a receipt under load) would otherwise stop the log
 * for as long as their apply takes. A few passes at most, as the log may
 * keep pace. While the log thread holds seq_mu it may be waiting for room
 * in the log, which only applying makes: so the writer applies what is
 * durable meanwhile instead of blocking. */
static void sequence_enter(pz_store_t *st, apply_t **applies) {
  for (int pass = 0; pass < 4; pass++) {
    uv_mutex_lock(&st->lock);
    apply_t *a = st->apply_n > SEQUENCE_BACKLOG ? take_applies(st) : NULL;
    uv_mutex_unlock(&st->lock);
    if (a == NULL) break;
    apply_batch(st, a);
  }
  while (uv_mutex_trylock(&st->seq_mu) != 0) {
    uv_mutex_lock(&st->lock);
    apply_t *a = take_applies(st);
    if (a == NULL) uv_cond_timedwait(&st->wake, &st->lock, 1000000); /* 1 ms */
    uv_mutex_unlock(&st->lock);
    apply_batch(st, a);
  }
  /* Claimed records are answered first: their events have lower seqs. */
  uv_mutex_lock(&st->lock);
  while (atomic_load(&st->log_answered) != atomic_load(&st->log_claimed))
    uv_cond_wait(&st->log_cond, &st->lock);
  *applies = take_applies(st);
  uv_mutex_unlock(&st->lock);
}

#define APPLY_NICE 19
#define APPLY_GATHER 4000
#define APPLY_WAIT_MS 50

/* Records alone answer nobody (unless a read waits for them): the writer
 * applies them at nice 19, yielding the CPU to the threads that answer, so
 * that the records stay behind rather than the answers (the log's room
 * holds them back if they fall too far). Whoever hands the writer
 * something that answers (a job, a read waiting for records) puts it back
 * to nice 0 at once, so that nothing waits behind a starved apply. Only
 * where a thread may raise its priority again (root, CAP_SYS_NICE or
 * RLIMIT_NICE: renice_ok); elsewhere everything runs at nice 0. */
static void writer_unnice(pz_store_t *st) {
  if (atomic_load(&st->writer_niced) && atomic_exchange(&st->writer_niced, false))
    setpriority(PRIO_PROCESS, (id_t)st->writer_tid, 0);
}

static void writer_nice(pz_store_t *st) {
  if (!st->renice_ok || atomic_load(&st->writer_niced)) return;
  if (setpriority(PRIO_PROCESS, (id_t)st->writer_tid, APPLY_NICE) != 0) return;
  atomic_store(&st->writer_niced, true);
  uv_mutex_lock(&st->lock);
  bool wanted = st->queue_head || st->apply_now || st->log_waiting;
  uv_mutex_unlock(&st->lock);
  if (wanted) writer_unnice(st);
}

/* Whether this process may lower a thread's nice value after raising it:
 * tried on a thread of its own, which ends either way. */
static void renice_probe(void *arg) {
  bool *ok = arg;
  id_t tid = (id_t)syscall(SYS_gettid);
  *ok = setpriority(PRIO_PROCESS, tid, 1) == 0 && setpriority(PRIO_PROCESS, tid, 0) == 0;
}

/* The most records the database may be behind the log (logged, not yet
 * applied and synced). A read waits for the apply of what is logged when
 * it comes: at some 20 µs a record, this keeps that wait under a fifth of
 * a second after a burst, where a full ring of 64 MiB would be seconds.
 * Beyond it, sends go at the apply's pace; past half of it, the writer
 * applies at once and at nice 0 (log_pressed), so that sends rarely meet it. */
#define LOG_MAX_BEHIND 8192

/* Whether the log is past half its bound. Called with lock held. */
static bool log_pressed(const pz_store_t *st) {
  return atomic_load(&st->log_durable) + 1 - st->free_from.lsn > LOG_MAX_BEHIND / 2;
}

/* Whether records alone are worth a batch now. Called with lock held. */
static bool apply_due(pz_store_t *st, uint64_t *wait_ns) {
  if (st->apply_head == NULL) return false;
  if (st->apply_now || st->log_waiting || st->apply_n >= APPLY_GATHER || st->stopping || log_pressed(st)) return true;
  uint64_t age = pz_mono_ns() - st->apply_since;
  if (age >= APPLY_WAIT_MS * 1000000ull) return true;
  *wait_ns = APPLY_WAIT_MS * 1000000ull - age;
  return false;
}

static void writer_main(void *arg) {
  pz_store_t *st = arg;
  pthread_setname_np(pthread_self(), "pz-writer");
  st->writer_tid = (pid_t)syscall(SYS_gettid);
  uv_mutex_lock(&st->lock);
  for (;;) {
    uint64_t wait_ns = 0;
    while (st->queue_head == NULL && !apply_due(st, &wait_ns) &&
           !(st->stopping && (!st->log_started || st->log_exited))) {
      if (wait_ns)
        uv_cond_timedwait(&st->wake, &st->lock, wait_ns);
      else
        uv_cond_wait(&st->wake, &st->lock);
      wait_ns = 0;
    }
    if (st->queue_head == NULL && st->apply_head == NULL) break; /* stopping, and everything is drained */
    /* Take what has queued up, at most max_batch jobs: while this batch
     * commits, the next one gathers. */
    pz_store_job_t *batch = st->queue_head, *last = batch;
    unsigned n = 0;
    if (batch) {
      n = 1;
      while (last->next && n < st->max_batch) {
        last = last->next;
        n++;
      }
      st->queue_head = last->next;
      if (st->queue_head == NULL) st->queue_tail = NULL;
      last->next = NULL;
    }
    bool urgent = st->apply_now || st->log_waiting || log_pressed(st); /* a read or the log waits for them */
    apply_t *applies = batch ? NULL : take_applies(st);
    uv_mutex_unlock(&st->lock);

    bool sequenced = batch && st->log;
    if (batch || urgent)
      writer_unnice(st); /* before the sequencing, whose applies a job waits for */
    else
      writer_nice(st);
    if (sequenced) sequence_enter(st, &applies);
    if (applies && st->apply_delay_ms && !sequenced) uv_sleep(st->apply_delay_ms);
    run_batch(st, applies, batch, n);
    if (sequenced) uv_mutex_unlock(&st->seq_mu); /* committed: the log thread's next snapshot has it */
    apply_free(applies);

    /* The ring's room comes once the apply is durable (log_freed). */
    uv_mutex_lock(&st->lock);
    batch_committed(st, batch, last, n);
  }
  st->writer_exited = true;
  uv_cond_signal(&st->sync_wake);
  uv_mutex_unlock(&st->lock);
}

/* ---- the log thread ---- */

static int log_checked(pz_store_t *st, pz_store_job_t *job) {
  pz_db_t *db = &st->logdb;
  memset(&job->err, 0, sizeof(job->err));
  job->rec.len = 0;
  int rc = job->log(db, job, &job->rec); /* its statements are reset with the batch's (log_batch) */
  if (rc < 0 && job->err.code == 0) pz_err_set(&job->err, rc, NULL, NULL);
  return rc;
}

/* How many of recs[0..n) (at least one) fit in the ring now, and within
 * LOG_MAX_BEHIND, waiting for the writer to apply and free records until
 * one does. */
static unsigned log_room(pz_store_t *st, const pz__sendlog_rec_t *recs, unsigned n) {
  uv_mutex_lock(&st->lock);
  for (;;) {
    pz__sendlog_pos_t end = pz__sendlog_end(st->log);
    uint64_t oldest = st->free_from.lsn == end.lsn ? PZ__SENDLOG_NONE : st->free_from.off;
    uint64_t behind = end.lsn - st->free_from.lsn;
    unsigned k = behind >= LOG_MAX_BEHIND ? 0 : n < LOG_MAX_BEHIND - behind ? n : (unsigned)(LOG_MAX_BEHIND - behind);
    while (k > 0 && !pz__sendlog_room(st->log, oldest, recs, k))
      k = k > 8 ? k / 2 : k - 1;
    if (k > 0) {
      st->log_waiting = false;
      uv_mutex_unlock(&st->lock);
      return k;
    }
    if (oldest == PZ__SENDLOG_NONE) {
      PZ_LOG(PZ_LOG_ERROR, NULL, "a record is larger than the send log: stopping", "bytes=%u", recs[0].len);
      abort();
    }
    st->log_waiting = true;
    uv_cond_signal(&st->wake);
    writer_unnice(st);
    uv_cond_wait(&st->log_cond, &st->lock);
  }
}

/* Appends recs[0..n) (lsns from first on) with one fdatasync, answers
 * their jobs (the chain jobs..last, n long) and only then hands the records
 * (bufs) to the writer: a read that finds a message in the database finds
 * its answer, and its live events, delivered before its own (read_after).
 * Answers wait for every batch the writer committed before these seqs were
 * claimed (horizon), so that each stream is answered in seq order. */
static void log_append(pz_store_t *st, const pz__sendlog_rec_t *recs, pz_buf_t *bufs, uint64_t first, unsigned n,
                       pz_store_job_t *jobs, pz_store_job_t *last, uint64_t horizon) {
  pz_err_t err = {0};
  apply_t *a = pz_calloc(1, sizeof(*a));
  a->n = n;
  a->first_lsn = first;
  a->next_pos = pz_malloc(n * sizeof(*a->next_pos));
  uint64_t t0 = pz_mono_ns();
  if (pz__sendlog_append(st->log, recs, n, a->next_pos, &err) < 0) {
    PZ_LOG(PZ_LOG_ERROR, NULL, "cannot write the send log: stopping", "error=%s", pz_err_message(&err));
    abort();
  }
  pz_metrics_sendlog(n, pz_mono_ns() - t0);
  a->recs = pz_malloc(n * sizeof(*a->recs));
  memcpy(a->recs, bufs, n * sizeof(*a->recs));
  a->types = pz_malloc(n * sizeof(*a->types));
  for (unsigned i = 0; i < n; i++)
    a->types[i] = recs[i].type;
  uv_mutex_lock(&st->lock);
  atomic_store(&st->log_durable, first + n - 1);
  while (atomic_load(&st->durable) < horizon)
    uv_cond_wait(&st->log_cond, &st->lock);
  list_append(&st->done_head, &st->done_tail, jobs, last);
  atomic_store(&st->log_answered, first + n - 1);
  bool was_empty = st->apply_tail == NULL; /* the writer starts its clock */
  if (was_empty) {
    st->apply_head = a;
    st->apply_since = pz_mono_ns();
  } else {
    st->apply_tail->next = a;
  }
  st->apply_tail = a;
  st->apply_n += n;
  uv_cond_broadcast(&st->log_cond); /* a writer waiting to run after these */
  bool pressed = log_pressed(st);
  if (was_empty || st->apply_n >= APPLY_GATHER || pressed) uv_cond_signal(&st->wake);
  uv_async_send(&st->async);
  uv_mutex_unlock(&st->lock);
  /* An apply already under way at nice 19 could take seconds to finish on
   * a busy machine: it goes on at nice 0. */
  if (pressed) writer_unnice(st);
}

/* One batch: checks every job under seq_mu on one snapshot, then appends
 * the records that were logged with one fdatasync and answers them. Jobs
 * the callback leaves to the writer join its queue; refused ones are
 * answered at once. */
static void log_batch(pz_store_t *st, pz_store_job_t *jobs) {
  pz_store_job_t *logged = NULL, *logged_tail = NULL, *slow = NULL, *slow_tail = NULL, *failed = NULL,
                 *failed_tail = NULL;
  unsigned n = 0;
  uv_mutex_lock(&st->seq_mu);
  uint64_t horizon = atomic_load(&st->jobs_committed);
  pz__sendlog_pos_t end = pz__sendlog_end(st->log);
  uint64_t applied = atomic_load(&st->log_applied), n_jobs = 0;
  for (pz_store_job_t *job = jobs; job; job = job->next)
    n_jobs++;
  pz__log_batch_begin(&st->logdb, horizon, end.lsn + n_jobs, applied);
  /* Everything logged is in the database: the claims start afresh from it. */
  if (applied + 1 == end.lsn) pz__log_pending_clear(st->logdb.pending);
  pz_err_t err = {0};
  int began = step_once(&st->logdb, SQL_BEGIN_READ, &err);
  for (pz_store_job_t *job = jobs, *next; job; job = next) {
    next = job->next;
    job->next = NULL;
    int rc = began < 0 ? 0 : log_checked(st, job);
    if (rc > 0) {
      PZ_ASSERT(rc == PZ__LOG_MSG || rc == PZ__LOG_TRANSFER);
      job->rc = rc; /* the record's type, until it is appended */
      list_append(&logged, &logged_tail, job, job);
      n++;
    } else {
      pz_buf_free(&job->rec);
      job->rc = rc;
      if (rc == 0)
        list_append(&slow, &slow_tail, job, job);
      else
        list_append(&failed, &failed_tail, job, job);
    }
  }
  reset_busy(&st->logdb);
  if (began == 0) step_once(&st->logdb, SQL_COMMIT, NULL);

  pz__sendlog_rec_t *recs = n ? pz_malloc(n * sizeof(*recs)) : NULL;
  pz_buf_t *bufs = n ? pz_malloc(n * sizeof(*bufs)) : NULL;
  unsigned i = 0;
  for (pz_store_job_t *job = logged; job; job = job->next, i++) {
    recs[i] = (pz__sendlog_rec_t){(uint16_t)job->rc, job->rec.data, (uint32_t)job->rec.len};
    bufs[i] = job->rec; /* the writer frees them once applied */
    job->rec = (pz_buf_t){0};
    job->rc = 0;
  }
  /* Appends in as few pieces as the ring's room allows: all at once
   * nearly always. While a piece waits for room this thread keeps seq_mu,
   * and the writer, which wants it, applies the pieces before meanwhile. */
  unsigned k = n ? log_room(st, recs, n) : 0;
  if (k == n) {
    if (n) atomic_store(&st->log_claimed, end.lsn + n - 1);
    uv_mutex_unlock(&st->seq_mu);
    if (n) log_append(st, recs, bufs, end.lsn, n, logged, logged_tail, horizon);
  } else {
    pz_store_job_t *chunk = logged;
    for (i = 0; i < n; i += k) {
      if (i) k = log_room(st, recs + i, n - i);
      pz_store_job_t *tail = chunk;
      for (unsigned j = 1; j < k; j++)
        tail = tail->next;
      pz_store_job_t *rest = tail->next; /* the next piece's jobs */
      tail->next = NULL;
      log_append(st, recs + i, bufs + i, end.lsn + i, k, chunk, tail, horizon);
      chunk = rest;
    }
    atomic_store(&st->log_claimed, end.lsn + n - 1);
    uv_mutex_unlock(&st->seq_mu);
  }
  pz_free(recs);
  pz_free(bufs);

  uv_mutex_lock(&st->lock);
  if (failed) list_append(&st->done_head, &st->done_tail, failed, failed_tail);
  if (slow) {
    list_append(&st->queue_head, &st->queue_tail, slow, slow_tail);
    uv_cond_signal(&st->wake);
  }
  if (failed) uv_async_send(&st->async);
  uv_mutex_unlock(&st->lock);
  if (slow) writer_unnice(st);
}

static void log_main(void *arg) {
  pz_store_t *st = arg;
  pthread_setname_np(pthread_self(), "pz-sendlog");
  uv_mutex_lock(&st->lock);
  for (;;) {
    while (st->log_head == NULL && !st->stopping)
      uv_cond_wait(&st->log_wake, &st->lock);
    if (st->log_head == NULL) break; /* stopping, and the queue is drained */
    pz_store_job_t *jobs = st->log_head;
    st->log_head = st->log_tail = NULL;
    uv_mutex_unlock(&st->lock);
    log_batch(st, jobs);
    uv_mutex_lock(&st->lock);
  }
  st->log_exited = true;
  uv_cond_signal(&st->wake);
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
    while (!st->sync_wanted && !st->writer_exited)
      uv_cond_wait(&st->sync_wake, &st->lock);
    if (!st->sync_wanted) break; /* the writer is gone and everything is synced */
    pz_store_job_t *head = st->sync_head, *tail = st->sync_tail;
    unsigned n = st->sync_jobs;
    uint64_t upto = st->queued_upto;
    st->sync_head = st->sync_tail = NULL;
    st->sync_jobs = 0;
    st->sync_wanted = false;
    uv_mutex_unlock(&st->lock);

    if (st->sync_delay_ms) uv_sleep(st->sync_delay_ms);
    uint64_t t0 = pz_mono_ns();
    if (fdatasync(st->wal_fd) != 0) {
      PZ_LOG(PZ_LOG_ERROR, NULL, "fsync of the WAL failed: stopping", "error=%s", strerror(errno));
      abort();
    }
    if (n) pz_metrics_commit(n, pz_mono_ns() - t0);

    uv_mutex_lock(&st->lock);
    atomic_store(&st->durable, upto);
    log_freed(st);
    if (head) list_append(&st->done_head, &st->done_tail, head, tail);
    uv_cond_broadcast(&st->log_cond);
    uv_async_send(&st->async);
  }
  uv_mutex_unlock(&st->lock);
}

static void finish_read(pz_store_t *st, pz_store_job_t *job);
static void read_work(uv_work_t *w);
static void read_after(uv_work_t *w, int status);

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
  /* Reads that waited for the writer to apply what the log made durable
   * before they came: they run now. */
  uint64_t applied = atomic_load(&st->log_applied);
  pz_store_job_t **lp = &st->lparked_head, *ltail = NULL;
  while ((job = *lp) != NULL) {
    if (job->log_target <= applied) {
      *lp = job->next;
      job->next = NULL;
      int rc = uv_queue_work(st->loop, &job->work, read_work, read_after);
      PZ_ASSERT(rc == 0);
    } else {
      ltail = job;
      lp = &job->next;
    }
  }
  st->lparked_tail = ltail;
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

/* How long a lazy job waits at most for an ordinary one to ride with, by
 * default. A batch of jobs makes the writer apply the send log's backlog
 * at once and hold the sequencing lock (writer_main): receipts, one per
 * message a device receives, would otherwise bring one such batch each. */
#define LAZY_MS 50

/* Moves the lazy jobs to the writer's queue. Called with lock held. */
static bool lazy_flush(pz_store_t *st) {
  if (st->lazy_head == NULL) return false;
  list_append(&st->queue_head, &st->queue_tail, st->lazy_head, st->lazy_tail);
  st->lazy_head = st->lazy_tail = NULL;
  return true;
}

static void on_lazy_timer(uv_timer_t *t) {
  pz_store_t *st = t->data;
  uv_mutex_lock(&st->lock);
  lazy_flush(st);
  uv_cond_signal(&st->wake);
  uv_mutex_unlock(&st->lock);
  writer_unnice(st);
}

static void write_prepare(pz_store_t *st, pz_store_job_t *job) {
  job->store = st;
  job->next = NULL;
  job->rc = 0;
  st->pending_writes++;
}

int pz_store_write(pz_store_t *st, pz_store_job_t *job) {
  if (st->closing) return PZ_ESHUTDOWN;
  write_prepare(st, job);
  bool flushed = false;
  uv_mutex_lock(&st->lock);
  if (job->log && st->log) {
    job->rec = (pz_buf_t){0};
    list_append(&st->log_head, &st->log_tail, job, job);
    uv_cond_signal(&st->log_wake);
  } else {
    flushed = lazy_flush(st); /* ahead of job: jobs run in the order they came */
    list_append(&st->queue_head, &st->queue_tail, job, job);
    uv_cond_signal(&st->wake);
  }
  uv_mutex_unlock(&st->lock);
  if (flushed) uv_timer_stop(&st->lazy_timer);
  if (!job->log) writer_unnice(st);
  return 0;
}

int pz_store_write_lazy(pz_store_t *st, pz_store_job_t *job) {
  PZ_ASSERT(job->log == NULL);
  if (st->closing) return PZ_ESHUTDOWN;
  write_prepare(st, job);
  /* The lazy list is the loop thread's own until a flush hands it over. */
  bool first = st->lazy_head == NULL;
  list_append(&st->lazy_head, &st->lazy_tail, job, job);
  if (first) uv_timer_start(&st->lazy_timer, on_lazy_timer, st->lazy_ms, 0);
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
  /* Writes the snapshot holds are answered first, their live events
   * pushed: a WebSocket's catch-up relies on it. Whatever is durable is in
   * the done list already (the syncer and the log thread put it there as
   * they mark it durable), though its async may not have run yet. */
  uv_mutex_lock(&st->lock);
  bool answers = st->done_head != NULL;
  uv_mutex_unlock(&st->lock);
  if (answers) deliver_done(st);
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
  /* Every send answered before this read came is in what it reads. */
  job->log_target = atomic_load(&st->log_durable);
  if (job->log_target > atomic_load(&st->log_applied)) {
    job->next = NULL;
    list_append(&st->lparked_head, &st->lparked_tail, job, job);
    uv_mutex_lock(&st->lock);
    st->apply_now = true;
    uv_cond_signal(&st->wake);
    uv_mutex_unlock(&st->lock);
    writer_unnice(st);
    return 0;
  }
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

/* ---- the send log at start ---- */

typedef struct {
  pz_db_t *db;
  pz__sendlog_pos_t next;
  uint64_t n;
} recover_t;

static int recover_one(void *arg, uint64_t lsn, uint16_t type, const void *data, uint32_t len, pz__sendlog_pos_t next,
                       pz_err_t *err) {
  recover_t *r = arg;
  if (type != PZ__LOG_MSG && type != PZ__LOG_TRANSFER)
    return pz_err_set(err, PZ_EIO, NULL, "record %llu of the send log has an unknown type %u", (unsigned long long)lsn,
                      type);
  apply_one(r->db, lsn, type, data, len, true);
  r->next = next;
  r->n++;
  return 0;
}

#define SENDLOG_DEFAULT_BYTES (64u << 20)
#define SENDLOG_MIN_BYTES (1u << 20)

/* DATA_DIR/sendlog, malloc'd. */
static char *log_path(const pz_store_t *st) {
  size_t n = strlen(st->path) + 1;
  char *path = pz_malloc(n);
  snprintf(path, n, "%.*ssendlog", (int)(strlen(st->path) - strlen("plaza.db")), st->path);
  return path;
}

/* Applies, in one transaction, every record durable in st->log and not
 * yet in the database (those a crash or kill -9 left unapplied), and
 * gives this process the next epoch: *n records, *end where appends go
 * on. */
static int log_recover(pz_store_t *st, uint64_t *n, pz__sendlog_pos_t *end, pz_err_t *err) {
  int rc;
  pz_db_t *db = &st->writer;
  pz__sendlog_pos_t start = {1, 0};
  sqlite3_stmt *q = pz__db_stmt(db, SQL_SENDLOG_STATE, err);
  if (q == NULL) return err->code;
  if ((rc = pz__db_step_row(db, q, err)) < 0) return rc;
  start.lsn = (uint64_t)sqlite3_column_int64(q, 0);
  start.off = (uint64_t)sqlite3_column_int64(q, 1);
  uint32_t epoch = (uint32_t)sqlite3_column_int64(q, 2);
  sqlite3_reset(q);
  uint32_t in_file = pz__sendlog_max_epoch(st->log);
  epoch = (in_file > epoch ? in_file : epoch) + 1;
  recover_t r = {db, start, 0};
  if ((rc = step_once(db, SQL_BEGIN, err)) < 0) return rc;
  rc = pz__sendlog_recover(st->log, start, recover_one, &r, end, err);
  if (rc == 0 && r.n) {
    apply_moved(db, r.next);
    if (db->batch_pending) rc = pz__store_batch_end(db, err);
    db->batch_pending = 0;
  }
  /* This process's epoch, on disk before its first record. */
  sqlite3_stmt *e = rc == 0 ? pz__db_stmt(db, SQL_SENDLOG_EPOCH, err) : NULL;
  if (e && (rc = PZ__DB_BIND(db, e, err, (int64_t)epoch)) == 0) rc = pz__db_step_done(db, e, err);
  if (rc == 0 && e == NULL) rc = err->code;
  if (rc == 0) rc = step_once(db, SQL_COMMIT, err);
  if (rc < 0) {
    step_once(db, SQL_ROLLBACK, NULL);
    pz__db_forget_writes(db);
    return rc;
  }
  pz__sendlog_set_epoch(st->log, epoch);
  *n = r.n;
  return 0;
}

/* Opens DATA_DIR/sendlog, applies what it holds beyond the database
 * (log_recover), and appends go on after the last whole record. */
static int log_open(pz_store_t *st, const pz_store_config_t *cfg, pz_err_t *err) {
  uint64_t bytes = cfg->sendlog_bytes ? cfg->sendlog_bytes : SENDLOG_DEFAULT_BYTES;
  /* A record is at most a few hundred KiB (a message of the longest text
   * and body, its JSON, 500 members' seqs): a ring of a MiB holds any. */
  if (bytes < SENDLOG_MIN_BYTES || bytes % 8)
    return pz_err_set(err, PZ_EINVAL, NULL, "the send log wants a multiple of 8 bytes from %u", SENDLOG_MIN_BYTES);
  char *path = log_path(st);
  int rc = pz__sendlog_open(&st->log, path, bytes, err);
  pz_free(path);
  uint64_t n = 0;
  pz__sendlog_pos_t end;
  if (rc < 0 || (rc = log_recover(st, &n, &end, err)) < 0) return rc;
  if (n) PZ_LOG(PZ_LOG_INFO, NULL, "send log records applied at start", "records=%llu", (unsigned long long)n);
  st->free_from = end;
  atomic_store(&st->log_claimed, end.lsn - 1);
  atomic_store(&st->log_durable, end.lsn - 1);
  atomic_store(&st->log_answered, end.lsn - 1);
  atomic_store(&st->log_applied, end.lsn - 1);
  st->apply_delay_ms = cfg->test_apply_delay_ms;
  return db_open(&st->logdb, st->path, true, err);
}

/* Releases what pz_store_open had opened when it failed (before any
 * thread or handle): connections, the send log, the directory's lock. */
static int open_failed(pz_store_t *st, int rc) {
  for (unsigned i = 0; st->readers && i < st->n_readers; i++)
    db_close(&st->readers[i]);
  pz_free(st->readers);
  pz_free(st->free_readers);
  db_close(&st->logdb);
  pz__sendlog_close(st->log);
  db_close(&st->writer);
  if (st->lock_fd >= 0) close(st->lock_fd);
  pz_free(st->path);
  pz_free(st);
  return rc;
}

int pz_store_open(pz_store_t **out, uv_loop_t *loop, const pz_store_config_t *cfg, pz_err_t *err) {
  pz_store_t *st;
  int rc = open_common(&st, cfg->data_dir, true, err);
  if (rc < 0) return rc;
  st->loop = loop;
  st->max_batch = cfg->max_batch ? cfg->max_batch : 1024;
  st->sync_delay_ms = cfg->test_sync_delay_ms;
  st->lazy_ms = cfg->lazy_ms ? cfg->lazy_ms : LAZY_MS;
  if ((rc = log_open(st, cfg, err)) < 0) return open_failed(st, rc);
  st->n_readers = cfg->readers ? cfg->readers : 4;
  st->readers = pz_calloc(st->n_readers, sizeof(pz_db_t));
  st->free_readers = pz_calloc(st->n_readers, sizeof(pz_db_t *));
  for (unsigned i = 0; i < st->n_readers; i++) {
    if ((rc = db_open(&st->readers[i], st->path, true, err)) < 0) return open_failed(st, rc);
    st->free_readers[st->n_free++] = &st->readers[i];
  }
  uv_mutex_init(&st->lock);
  uv_cond_init(&st->wake);
  uv_mutex_init(&st->rlock);
  uv_cond_init(&st->rfree);
  uv_async_init(loop, &st->async, on_async);
  st->async.data = st;
  uv_timer_init(loop, &st->lazy_timer);
  st->lazy_timer.data = st;
  uv_cond_init(&st->ckpt_wake);
  uv_cond_init(&st->sync_wake);
  uv_cond_init(&st->log_wake);
  uv_cond_init(&st->log_cond);
  uv_mutex_init(&st->seq_mu);
  st->wal_fd = open_wal(st);
  if (st->wal_fd >= 0) uv_thread_create(&st->sync_thread, sync_main, st);
  st->sync_started = st->wal_fd >= 0;
  if (db_open(&st->ckpt, st->path, false, NULL) == 0) {
    sqlite3_wal_hook(st->writer.sql, on_wal_commit, st);
    uv_thread_create(&st->ckpt_thread, ckpt_main, st);
    st->ckpt_started = true;
  } /* else the writer keeps SQLite's own checkpoints after commits */
  uv_thread_t probe;
  uv_thread_create(&probe, renice_probe, &st->renice_ok);
  uv_thread_join(&probe);
  uv_thread_create(&st->writer_thread, writer_main, st);
  st->writer_started = true;
  uv_thread_create(&st->log_thread, log_main, st);
  st->log_started = true;
  *out = st;
  return 0;
}

static void free_store(uv_handle_t *h) {
  pz_store_t *st = h->data;
  for (unsigned i = 0; i < st->n_readers; i++) db_close(&st->readers[i]);
  db_close(&st->ckpt);
  pz__log_pending_free(st->logdb.pending);
  st->logdb.pending = NULL;
  db_close(&st->logdb);
  pz__sendlog_close(st->log);
  db_close(&st->writer);
  uv_cond_destroy(&st->log_wake);
  uv_cond_destroy(&st->log_cond);
  uv_mutex_destroy(&st->seq_mu);
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

/* The async handle goes last: its close callback frees the store, which
 * holds the timer. */
static void lazy_timer_closed(uv_handle_t *h) {
  pz_store_t *st = h->data;
  uv_close((uv_handle_t *)&st->async, free_store);
}

static void finish_close(pz_store_t *st) { uv_close((uv_handle_t *)&st->lazy_timer, lazy_timer_closed); }

void pz_store_close(pz_store_t *st) {
  if (st == NULL) return;
  if (st->sync_only) {
    pz__sendlog_close(st->log); /* pz_store_apply_log's */
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
  uv_timer_stop(&st->lazy_timer);
  uv_mutex_lock(&st->lock);
  lazy_flush(st);
  st->stopping = true;
  uv_cond_signal(&st->wake);
  uv_cond_signal(&st->ckpt_wake);
  uv_cond_signal(&st->log_wake);
  uv_mutex_unlock(&st->lock);
  if (st->log_started) uv_thread_join(&st->log_thread); /* it drains first; the writer waits for it */
  uv_thread_join(&st->writer_thread);
  if (st->sync_started) uv_thread_join(&st->sync_thread); /* it drains first */
  if (st->ckpt_started) uv_thread_join(&st->ckpt_thread);
  deliver_done(st);
  /* Checkpoint so that the database file alone holds everything. */
  sqlite3_wal_checkpoint_v2(st->writer.sql, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
  if (st->pending_reads == 0) finish_close(st);
}

const char *pz_store_path(const pz_store_t *st) { return st->path; }

int pz_store_apply_log(pz_store_t *st, uint64_t *n, pz_err_t *err) {
  *n = 0;
  PZ_ASSERT(st->sync_only && st->lock_fd >= 0 && st->log == NULL);
  char *path = log_path(st);
  /* An existing log keeps its size: the one given is only for a new file. */
  int rc = access(path, F_OK) != 0 ? 0 : pz__sendlog_open(&st->log, path, SENDLOG_MIN_BYTES, err);
  pz_free(path);
  pz__sendlog_pos_t end;
  if (rc == 0 && st->log) rc = log_recover(st, n, &end, err);
  return rc;
}

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
  run_batch(st, NULL, job, 1);
  job->next = saved_next;
  return job->rc;
}
