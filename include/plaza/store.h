/* The store engine: SQLite in WAL mode, versioned migrations, and the commit pipeline of DESIGN.md. */
#ifndef PLAZA_STORE_H
#define PLAZA_STORE_H

#include <stdint.h>
#include <uv.h>
#include "plaza/error.h"
#include "plaza/str.h"

typedef struct pz_store_s pz_store_t;
/* A database connection, used by one thread at a time: the writer's or a
 * reader's. Only store/ looks inside; typed store functions take it first. */
typedef struct pz_db_s pz_db_t;
typedef struct pz_store_job_s pz_store_job_t;

/* Runs on the writer thread (inside its own savepoint of the batch's
 * transaction) or on a reader thread (inside a read transaction). Returns 0
 * or a negative PZ_E code with job->err filled; a failing write job's
 * changes are rolled back, the other jobs of the batch commit. */
typedef int (*pz_store_run_fn)(pz_db_t *db, pz_store_job_t *job);
/* Runs on the loop thread when the job is over: for a write job, only once
 * the batch that carried it is durable (committed and fsynced). */
typedef void (*pz_store_done_cb)(pz_store_job_t *job);

/* The caller owns the job (usually embedded in its request context) and
 * keeps it alive until done is called. */
struct pz_store_job_s {
  pz_store_run_fn run;
  pz_store_done_cb done;
  void *data;            /* the caller's */
  int rc;                /* run's result; PZ_EIO for all jobs of a batch whose commit failed */
  pz_err_t err;
  /* Optional: a write that may be made durable in the send log instead
   * (engine.c). Called on the log thread, inside a read transaction,
   * while no other write claims event seqs: when it appended a record to
   * rec, the record's type, 1 for a message (pz_store_msg_log_encode) or
   * what pz_store_wallet_transfer_log_encode returned; the job is then done
   * once that record is durable, and run is never called. 0 leaves the
   * job to the writer (run), as if log were NULL; a negative PZ_E code
   * with err filled ends the job with it, nothing written. */
  int (*log)(pz_db_t *db, pz_store_job_t *job, pz_buf_t *rec);
  /* Optional: makes the job rerunnable. The writer then runs it, with the
   * rerunnable jobs next to it in the batch, under one savepoint for all of
   * them rather than one each, which is cheaper (engine.c, run_group). If
   * one of them fails, all their writes are rolled back, rerun is called
   * for each, on the writer, to put what run changed in the job and its
   * data back as it was before run, and each runs again in a savepoint of
   * its own. Worth it for a job that checks before it writes, and so
   * rarely fails once it has written. */
  void (*rerun)(pz_store_job_t *job);
  /* private to the store */
  pz_store_job_t *next;
  pz_buf_t rec;        /* the logged record, until it is applied */
  uint64_t log_target; /* a read: the last logged record it must see applied */
  uv_work_t work;
  pz_store_t *store;
  uint64_t horizon; /* a read: the last commit its snapshot may hold */
};

typedef struct pz_store_config_s {
  const char *data_dir;   /* the database is DATA_DIR/plaza.db */
  unsigned max_batch;     /* jobs per commit at most; default 1024 */
  unsigned readers;       /* read connections; default 4 */
  unsigned test_sync_delay_ms; /* tests only: the syncer waits this long before each fsync */
  uint64_t sendlog_bytes;      /* size of a new send log, DATA_DIR/sendlog; default 64 MiB */
  unsigned test_apply_delay_ms; /* tests only: the writer waits this long before applying logged records */
  unsigned lazy_ms;             /* how long a lazy write waits at most (pz_store_write_lazy); default 50 */
} pz_store_config_t;

/* Claims the data directory (an exclusive lock on DATA_DIR/plazad.lock:
 * PZ_ECONFLICT, saying which pid has it, while another process holds it),
 * opens (creating if needed) the database, applies pending migrations, and
 * starts the writer thread. Loop thread. Caller frees with pz_store_close. */
int pz_store_open(pz_store_t **out, uv_loop_t *loop, const pz_store_config_t *cfg, pz_err_t *err);
/* Queues a write job; returns 0, or PZ_ESHUTDOWN once pz_store_close began
 * (then done is never called). Loop thread. */
int pz_store_write(pz_store_t *st, pz_store_job_t *job);
/* Queues a write job (without a log callback) whose answer may wait: it
 * goes to the writer with the next ordinary write, ahead of it, or alone
 * after at most lazy_ms. For receipts, which come with every message a
 * device receives and would otherwise each cost the writer a batch.
 * Returns as pz_store_write does. Loop thread. */
int pz_store_write_lazy(pz_store_t *st, pz_store_job_t *job);
/* Runs a read job on a read connection in libuv's thread pool; returns 0
 * or PZ_ESHUTDOWN as pz_store_write does. Loop thread. */
int pz_store_read(pz_store_t *st, pz_store_job_t *job);
/* Runs every job already queued, stops the writer and closes the
 * connections. Loop thread; jobs' done callbacks run before it returns
 * only if the loop runs, so call it after the server has drained. */
void pz_store_close(pz_store_t *st);
/* Jobs waiting for or inside the writer, and read jobs under way. Loop thread. */
unsigned pz_store_pending(const pz_store_t *st);
/* The database file, DATA_DIR/plaza.db: files kept beside the database
 * (uploads) find their directory from it. Borrowed for the store's life. Any thread. */
const char *pz_store_path(const pz_store_t *st);

/* Opens the database at data_dir without threads, for offline tools and
 * tests; run jobs with pz_store_run_sync. */
int pz_store_open_sync(pz_store_t **out, const char *data_dir, pz_err_t *err);
/* Runs job->run as a write (in a transaction, committed) on the calling thread. */
int pz_store_run_sync(pz_store_t *st, pz_store_job_t *job);
/* Runs job->run as a read, on one snapshot, on the calling thread: it
 * holds up no writer, a running server's included. */
int pz_store_run_sync_read(pz_store_t *st, pz_store_job_t *job);
/* Claims st's data directory, as pz_store_open does (a store opened
 * with pz_store_open_sync does not): 0, or PZ_ECONFLICT when a process
 * holds it, with *holder (may be NULL) its pid as it wrote it (0 if
 * unknown). Kept until pz_store_close. */
int pz_store_claim(pz_store_t *st, long *holder, pz_err_t *err);
/* Applies what the send log (DATA_DIR/sendlog, if there is one) holds
 * beyond the database, as pz_store_open does at start: the messages and
 * transfers a crash left answered but unapplied. *n is how many. For a
 * store opened with pz_store_open_sync that holds its directory
 * (pz_store_claim). */
int pz_store_apply_log(pz_store_t *st, uint64_t *n, pz_err_t *err);

#endif
