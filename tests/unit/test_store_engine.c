/* Tests of the commit pipeline: group commit, per-job rollback, reads beside the writer, drain on close, reopen, the
 * WAL writes of the plaza VFS, lazy writes, rerunnable jobs, and migrations 15 and 18. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "plaza/metrics.h"
#include "plaza/store.h"
#include "store/db.h"
#include "test.h"

#define N_JOBS 2000

typedef struct {
  pz_store_job_t job;
  int value;
  int done;
  long long read_count;
} item_t;

static int n_done;

static int create_table(pz_db_t *db, pz_store_job_t *job) {
  return pz__db_exec(db, "CREATE TABLE IF NOT EXISTS t (v INTEGER PRIMARY KEY)", &job->err);
}

static int insert_value(pz_db_t *db, pz_store_job_t *job) {
  item_t *it = job->data;
  sqlite3_stmt *st = pz__db_stmt(db, "INSERT INTO t (v) VALUES (?1)", &job->err);
  if (st == NULL) return job->err.code;
  sqlite3_bind_int(st, 1, it->value);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) return pz__db_fail(db, rc, &job->err);
  /* Odd values fail after their insert: the savepoint must undo it alone. */
  if (it->value % 2) return pz_err_set(&job->err, PZ_EUNPROCESSABLE, "odd", "odd value %d", it->value);
  return 0;
}

static int count_rows(pz_db_t *db, pz_store_job_t *job) {
  item_t *it = job->data;
  sqlite3_stmt *st = pz__db_stmt(db, "SELECT count(*) FROM t", &job->err);
  if (st == NULL) return job->err.code;
  if (sqlite3_step(st) != SQLITE_ROW) return pz__db_fail(db, sqlite3_errcode(db->sql), &job->err);
  it->read_count = sqlite3_column_int64(st, 0);
  return 0;
}

static void on_done(pz_store_job_t *job) {
  item_t *it = job->data;
  it->done++;
  n_done++;
}

/* An async store on a loop of its own, in a fresh directory: one test's. */
typedef struct {
  char *dir;
  uv_loop_t loop;
  pz_store_t *st;
} env_t;

static bool env_open_lazy(env_t *e, const char *name, unsigned sync_delay_ms, unsigned lazy_ms) {
  e->dir = pz_test_tmpdir(name);
  uv_loop_init(&e->loop);
  e->st = NULL;
  pz_err_t err = {0};
  pz_store_config_t cfg = {.data_dir = e->dir, .test_sync_delay_ms = sync_delay_ms, .lazy_ms = lazy_ms};
  CHECK_EQ_INT(pz_store_open(&e->st, &e->loop, &cfg, &err), 0);
  return e->st != NULL;
}

static bool env_open(env_t *e, const char *name, unsigned sync_delay_ms) {
  return env_open_lazy(e, name, sync_delay_ms, 0);
}

static void env_close(env_t *e) {
  pz_store_close(e->st);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(&e->loop), 0);
  free(e->dir);
}

/* Runs job it (its run and done set) as a write or a read, and waits for its answer. */
static void env_run(env_t *e, item_t *it, bool write) {
  it->job.data = it;
  CHECK_EQ_INT(write ? pz_store_write(e->st, &it->job) : pz_store_read(e->st, &it->job), 0);
  while (!it->done) uv_run(&e->loop, UV_RUN_ONCE);
}

static item_t *items;

static void test_group_commit(void) {
  char *dir = pz_test_tmpdir("store");
  CHECK(dir != NULL);
  uv_loop_t loop;
  uv_loop_init(&loop);
  pz_store_t *st = NULL;
  pz_err_t err = {0};
  pz_store_config_t cfg = {.data_dir = dir};
  CHECK_EQ_INT(pz_store_open(&st, &loop, &cfg, &err), 0);
  if (st == NULL) return;

  item_t create = {.job = {.run = create_table, .done = on_done}};
  create.job.data = &create;
  CHECK_EQ_INT(pz_store_write(st, &create.job), 0);
  items = calloc(N_JOBS, sizeof(item_t));
  for (int i = 0; i < N_JOBS; i++) {
    items[i].value = i + 1;
    items[i].job.run = insert_value;
    items[i].job.done = on_done;
    items[i].job.data = &items[i];
    CHECK_EQ_INT(pz_store_write(st, &items[i].job), 0);
  }
  while (n_done < N_JOBS + 1) uv_run(&loop, UV_RUN_ONCE);
  CHECK_EQ_INT(create.job.rc, 0);
  int ok = 0, odd_failed = 0;
  for (int i = 0; i < N_JOBS; i++) {
    CHECK_EQ_INT(items[i].done, 1);
    if (items[i].job.rc == 0) ok++;
    if (items[i].job.rc == PZ_EUNPROCESSABLE && strcmp(items[i].job.err.api_code, "odd") == 0) odd_failed++;
  }
  CHECK_EQ_INT(ok, N_JOBS / 2);
  /* Group commit: the jobs queued together shared commits (and fsyncs). */
  pz_buf_t m = {0};
  pz_metrics_render(&m);
  pz_buf_append(&m, "", 1);
  const char *line = strstr(m.data, "plaza_commit_batch_jobs_count ");
  CHECK(line != NULL);
  if (line) {
    long long commits = atoll(line + strlen("plaza_commit_batch_jobs_count "));
    CHECK(commits >= 1);
    CHECK(commits <= N_JOBS / 4);
  }
  pz_buf_free(&m);
  CHECK_EQ_INT(odd_failed, N_JOBS / 2);

  /* A read connection sees exactly the committed even values. */
  item_t reader = {.job = {.run = count_rows, .done = on_done}};
  reader.job.data = &reader;
  CHECK_EQ_INT(pz_store_read(st, &reader.job), 0);
  while (!reader.done) uv_run(&loop, UV_RUN_ONCE);
  CHECK_EQ_INT(reader.job.rc, 0);
  CHECK_EQ_INT(reader.read_count, N_JOBS / 2);

  /* Jobs queued just before close are committed by it, not dropped. */
  item_t late[10];
  for (int i = 0; i < 10; i++) {
    late[i] = (item_t){.value = 100000 + 2 * i, .job = {.run = insert_value, .done = on_done}};
    late[i].job.data = &late[i];
    CHECK_EQ_INT(pz_store_write(st, &late[i].job), 0);
  }
  pz_store_close(st);
  for (int i = 0; i < 10; i++) {
    CHECK_EQ_INT(late[i].done, 1);
    CHECK_EQ_INT(late[i].job.rc, 0);
  }
  item_t refused = {.job = {.run = insert_value, .done = on_done}};
  CHECK_EQ_INT(pz_store_write(st, &refused.job), PZ_ESHUTDOWN);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);

  /* Everything acknowledged is there after reopening. */
  pz_store_t *again = NULL;
  CHECK_EQ_INT(pz_store_open_sync(&again, dir, &err), 0);
  if (again) {
    item_t counter = {.job = {.run = count_rows}};
    counter.job.data = &counter;
    CHECK_EQ_INT(pz_store_run_sync(again, &counter.job), 0);
    CHECK_EQ_INT(counter.read_count, N_JOBS / 2 + 10);
    pz_store_close(again);
  }
  free(items);
  free(dir);
}

/* A job that changes thousands of existing pages: its savepoint's journal
 * runs to many MiB, which must neither fail (SQLite 3.40 answered
 * SQLITE_FULL once it spilled past a large SQLITE_CONFIG_STMTJRNL_SPILL)
 * nor leave the job half done. */
static int fill_big(pz_db_t *db, pz_store_job_t *job) {
  return pz__db_exec(db,
                     "CREATE TABLE big (id INTEGER PRIMARY KEY, k TEXT UNIQUE, v TEXT);"
                     "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 40000)"
                     " INSERT INTO big SELECT x, hex(randomblob(16)), hex(randomblob(100)) FROM s",
                     &job->err);
}

static int rewrite_big(pz_db_t *db, pz_store_job_t *job) {
  for (int i = 0; i < 8000; i++) {
    sqlite3_stmt *st = pz__db_stmt(db, "UPDATE big SET k = hex(randomblob(16)), v = hex(randomblob(100)) WHERE id = ?1",
                                   &job->err);
    if (st == NULL) return job->err.code;
    sqlite3_bind_int(st, 1, 1 + (i * 7919) % 40000);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return pz__db_fail(db, rc, &job->err);
  }
  return 0;
}

static int count_changed(pz_db_t *db, pz_store_job_t *job) {
  item_t *it = job->data;
  sqlite3_stmt *st = pz__db_stmt(db, "SELECT count(*) FROM big WHERE length(v) = 200", &job->err);
  if (st == NULL) return job->err.code;
  if (sqlite3_step(st) != SQLITE_ROW) return pz__db_fail(db, sqlite3_errcode(db->sql), &job->err);
  it->read_count = sqlite3_column_int64(st, 0);
  return 0;
}

static void test_big_job(void) {
  env_t e;
  if (!env_open(&e, "store-big", 0)) return;
  item_t fill = {.job = {.run = fill_big, .done = on_done}}, big = {.job = {.run = rewrite_big, .done = on_done}},
         count = {.job = {.run = count_changed, .done = on_done}};
  fill.job.data = &fill;
  CHECK_EQ_INT(pz_store_write(e.st, &fill.job), 0); /* queued together: likely one batch */
  env_run(&e, &big, true);
  CHECK_EQ_INT(fill.job.rc, 0);
  CHECK_EQ_INT(big.job.rc, 0);
  if (big.job.rc) fprintf(stderr, "big job: %s\n", pz_err_message(&big.job.err));
  env_run(&e, &count, false);
  CHECK_EQ_INT(count.read_count, 40000);
  env_close(&e);
}

/* Some errors make SQLite roll back the whole transaction (a full disk,
 * here a page limit). Whatever the batches turn out to be, every job the
 * store reports done is in the database and no job reported failed is. */
static int fill_to_limit(pz_db_t *db, pz_store_job_t *job) {
  int rc = pz__db_exec(db, "PRAGMA max_page_count = 60", &job->err);
  if (rc == 0)
    rc = pz__db_exec(db,
                     "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 20000)"
                     " INSERT INTO t (v) SELECT 1000000 + 2 * x FROM s",
                     &job->err);
  return rc;
}

static int has_value(pz_db_t *db, pz_store_job_t *job) {
  item_t *it = job->data;
  sqlite3_stmt *st = pz__db_stmt(db, "SELECT count(*) FROM t WHERE v = ?1", &job->err);
  if (st == NULL) return job->err.code;
  sqlite3_bind_int(st, 1, it->value);
  if (sqlite3_step(st) != SQLITE_ROW) return pz__db_fail(db, sqlite3_errcode(db->sql), &job->err);
  it->read_count = sqlite3_column_int64(st, 0);
  return 0;
}

static void test_rolled_back_batch(void) {
  env_t e;
  if (!env_open(&e, "store-full", 0)) return;
  item_t create = {.job = {.run = create_table, .done = on_done}}, full = {.job = {.run = fill_to_limit, .done = on_done}};
  env_run(&e, &create, true);
  full.job.data = &full;
  enum { N = 40 };
  item_t jobs[N];
  for (int i = 0; i < N; i++) {
    jobs[i] = (item_t){.value = 2 * (i + 1), .job = {.run = insert_value, .done = on_done}};
    jobs[i].job.data = &jobs[i];
    CHECK_EQ_INT(pz_store_write(e.st, &jobs[i].job), 0);
    if (i == N / 2) CHECK_EQ_INT(pz_store_write(e.st, &full.job), 0);
  }
  for (int i = 0; i < N; i++)
    while (!jobs[i].done) uv_run(&e.loop, UV_RUN_ONCE);
  while (!full.done) uv_run(&e.loop, UV_RUN_ONCE);
  CHECK(full.job.rc < 0); /* it cannot fit */
  for (int i = 0; i < N; i++) {
    item_t q = {.value = jobs[i].value, .job = {.run = has_value, .done = on_done}};
    env_run(&e, &q, false);
    CHECK_EQ_INT(q.read_count, jobs[i].job.rc == 0 ? 1 : 0);
  }
  env_close(&e);
}

/* A read whose snapshot holds a commit that is not yet on disk waits for
 * the fsync: here the syncer is held back 300 ms, the read is sent while
 * the write is committed but not synced, and it must not be answered
 * before the write is (and it sees the row). */
static int order, write_at, read_at;
static void on_write_done(pz_store_job_t *job) {
  on_done(job);
  write_at = ++order;
}
static void on_read_done(pz_store_job_t *job) {
  on_done(job);
  read_at = ++order;
}

static void test_read_waits_for_fsync(void) {
  env_t e;
  if (!env_open(&e, "store-durable", 300)) return;
  item_t create = {.job = {.run = create_table, .done = on_done}};
  env_run(&e, &create, true);
  item_t w = {.value = 42, .job = {.run = insert_value, .done = on_write_done}};
  w.job.data = &w;
  CHECK_EQ_INT(pz_store_write(e.st, &w.job), 0);
  /* Reads until one sees the row: reads from before the commit may be
   * answered at once; the first that sees it must come after the write. */
  item_t r;
  do {
    uv_sleep(20);
    r = (item_t){.job = {.run = count_rows, .done = on_read_done}};
    env_run(&e, &r, false);
  } while (r.read_count == 0);
  while (!w.done) uv_run(&e.loop, UV_RUN_ONCE);
  CHECK_EQ_INT(w.job.rc, 0);
  CHECK_EQ_INT(r.read_count, 1);
  CHECK(write_at < read_at);
  env_close(&e);
}

static void test_bad_data_dir(void) {
  pz_store_t *st = NULL;
  pz_err_t err = {0};
  CHECK(pz_store_open_sync(&st, "/proc/version/nope", &err) < 0);
  CHECK(st == NULL);
  CHECK(strstr(pz_err_message(&err), "/proc/version/nope") != NULL);
}

/* ---- the plaza VFS (src/store/vfs.c) ---- */

static char vfs_name[64];

/* Job: value rows of 4,000 random bytes in table w, in one transaction
 * (2.4 MB for 600: more than the VFS holds at once). */
static int insert_blobs(pz_db_t *db, pz_store_job_t *job) {
  item_t *it = job->data;
  char *name = NULL;
  if (sqlite3_file_control(db->sql, "main", SQLITE_FCNTL_VFSNAME, &name) == SQLITE_OK && name)
    snprintf(vfs_name, sizeof(vfs_name), "%s", name);
  sqlite3_free(name);
  if (pz__db_exec(db, "CREATE TABLE IF NOT EXISTS w (id INTEGER PRIMARY KEY, v BLOB)", &job->err) < 0)
    return job->err.code;
  sqlite3_stmt *st = pz__db_stmt(db, "INSERT INTO w (v) VALUES (randomblob(4000))", &job->err);
  if (st == NULL) return job->err.code;
  for (int i = 0; i < it->value; i++) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return pz__db_fail(db, rc, &job->err);
  }
  return 0;
}

/* What another process would see now: a connection of SQLite's own VFS,
 * reading the WAL through a descriptor of its own. */
static void check_from_outside(const char *dir, long long rows) {
  char path[512];
  snprintf(path, sizeof(path), "%s/plaza.db", dir);
  sqlite3 *db = NULL;
  CHECK_EQ_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  CHECK_EQ_INT(sqlite3_prepare_v2(db, "SELECT count(*), sum(length(v)) FROM w", -1, &st, NULL), SQLITE_OK);
  CHECK_EQ_INT(sqlite3_step(st), SQLITE_ROW);
  CHECK_EQ_INT(sqlite3_column_int64(st, 0), rows);
  CHECK_EQ_INT(sqlite3_column_int64(st, 1), rows * 4000);
  sqlite3_finalize(st);
  CHECK_EQ_INT(sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL), SQLITE_OK);
  CHECK_EQ_INT(sqlite3_step(st), SQLITE_ROW);
  CHECK_EQ_STR((const char *)sqlite3_column_text(st, 0), "ok");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

/* Every frame of a commit is in the WAL file once the job is answered,
 * large commits (several buffers' worth) and small ones alike, without
 * closing the store. */
static void test_vfs_commits_reach_the_file(void) {
  env_t e;
  if (!env_open(&e, "store-vfs", 0)) return;
  item_t big = {.job = {.run = insert_blobs, .done = on_done}, .value = 600};
  env_run(&e, &big, true);
  CHECK_EQ_INT(big.job.rc, 0);
  CHECK(strncmp(vfs_name, "plaza/", 6) == 0);
  check_from_outside(e.dir, 600);
  /* Many small commits, one at a time. */
  for (int i = 0; i < 50; i++) {
    item_t one = {.job = {.run = insert_blobs, .done = on_done}, .value = 3};
    env_run(&e, &one, true);
    CHECK_EQ_INT(one.job.rc, 0);
  }
  check_from_outside(e.dir, 750);
  env_close(&e);
}

/* ---- migrations ---- */

/* What one query on raw gives as an integer (its first column), or -1. */
static long long raw_int(sqlite3 *raw, const char *sql) {
  sqlite3_stmt *st = NULL;
  long long v = -1;
  if (sqlite3_prepare_v2(raw, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* How many steps of the plan of sql are opcode. */
static int plan_ops(sqlite3 *db, const char *sql, const char *opcode) {
  char explain[1024];
  snprintf(explain, sizeof(explain), "EXPLAIN %s", sql);
  sqlite3_stmt *st = NULL;
  int n = 0;
  if (sqlite3_prepare_v2(db, explain, -1, &st, NULL) != SQLITE_OK) return -1;
  while (sqlite3_step(st) == SQLITE_ROW)
    n += strcmp((const char *)sqlite3_column_text(st, 1), opcode) == 0;
  sqlite3_finalize(st);
  return n;
}

/* How many OpenEphemeral steps (a temporary b-tree) the plan of sql has. */
static int ephemeral_ops(sqlite3 *db, const char *sql) { return plan_ops(db, sql, "OpenEphemeral"); }

#define TRANSFER_ROW(id, from, to, status)                                                                      \
  "INSERT INTO wallet_transfers (id, from_user_id, to_user_id, amount, currency, status, idem_key, created_at," \
  " expires_at, updated_at) VALUES (" #id ", " #from ", " #to ", 5, 'USD', '" status "', 'k" #id "', 1, 2, 1)"

static int transfer_plan;

/* Job: the writer's own plan of a transfer insert, and a row whose status the CHECK refuses. */
static int writer_checks(pz_db_t *db, pz_store_job_t *job) {
  transfer_plan = ephemeral_ops(db->sql, TRANSFER_ROW(8, 2, 3, "pending"));
  return pz__db_exec(db, TRANSFER_ROW(9, 2, 3, "bogus"), &job->err);
}

/* Migration 15 on a database of migration 14 with transfers in it: the
 * status CHECK of wallet_transfers is rewritten in place (it made every
 * insert build a temporary b-tree), the indexes by sender and receiver
 * go, and the rows and every other constraint stay. */
/* Removes a test's directory and frees its name. */
static void rm_dir(char *dir) {
  char cmd[700];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  CHECK_EQ_INT(system(cmd), 0);
  free(dir);
}

/* A database in a new directory (*dir, its file's name in path) at
 * schema version v, as an older plazad left it; the connection is raw's. */
static sqlite3 *db_at_version(const char *name, unsigned v, char **dir, char *path, size_t path_len) {
  *dir = pz_test_tmpdir(name);
  snprintf(path, path_len, "%s/plaza.db", *dir);
  sqlite3 *raw = NULL;
  CHECK_EQ_INT(sqlite3_open(path, &raw), SQLITE_OK);
  CHECK_EQ_INT(sqlite3_exec(raw, "PRAGMA journal_mode=WAL", NULL, NULL, NULL), SQLITE_OK);
  for (unsigned i = 0; i < v; i++)
    CHECK_EQ_INT(sqlite3_exec(raw, pz__migrations[i], NULL, NULL, NULL), SQLITE_OK);
  char sql[64];
  snprintf(sql, sizeof(sql), "PRAGMA user_version=%u", v);
  CHECK_EQ_INT(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
  return raw;
}

/* Opens the store on dir (which migrates it), runs one writer job, closes:
 * the job's result, or 1 when the store did not open. */
static int migrate_and_run(const char *dir, pz_store_run_fn run) {
  pz_store_t *st = NULL;
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_store_open_sync(&st, dir, &err), 0);
  if (st == NULL) return 1;
  pz_store_job_t job = {.run = run};
  int rc = pz_store_run_sync(st, &job);
  pz_store_close(st);
  return rc;
}

static void test_migration_15(void) {
  char *dir, path[600];
  sqlite3 *raw = db_at_version("store-migration-15", 14, &dir, path, sizeof(path));
  CHECK_EQ_INT(sqlite3_exec(raw, TRANSFER_ROW(1, 2, 3, "pending"), NULL, NULL, NULL), SQLITE_OK);
  CHECK_EQ_INT(sqlite3_exec(raw, TRANSFER_ROW(2, 3, 2, "completed"), NULL, NULL, NULL), SQLITE_OK);
  CHECK(ephemeral_ops(raw, TRANSFER_ROW(8, 2, 3, "pending")) > 0); /* the cost this migration removes */
  sqlite3_close(raw);

  CHECK_EQ_INT(migrate_and_run(dir, writer_checks), PZ_ECONFLICT); /* 'bogus' is no status */
  CHECK_EQ_INT(transfer_plan, 0);                                  /* the writer reloaded its schema */

  CHECK_EQ_INT(sqlite3_open(path, &raw), SQLITE_OK);
  CHECK_EQ_INT(raw_int(raw, "PRAGMA user_version"), (long long)pz__n_migrations);
  CHECK_EQ_INT(ephemeral_ops(raw, TRANSFER_ROW(8, 2, 3, "pending")), 0);
  CHECK_EQ_INT(raw_int(raw,
                       "SELECT count(*) FROM sqlite_schema WHERE name = 'wallet_transfers' AND sql LIKE"
                       " '%CHECK (status = ''pending'' OR status = ''completed'' OR status = ''returned'''"
                       " || ' OR status = ''expired'')%' AND sql NOT LIKE '%status IN%'"),
               1);
  CHECK_EQ_INT(raw_int(raw,
                       "SELECT group_concat(name) = 'wallet_transfers_pending' FROM sqlite_schema"
                       " WHERE tbl_name = 'wallet_transfers' AND type = 'index'"),
               1);
  CHECK_EQ_INT(raw_int(raw, "SELECT sum(amount) FROM wallet_transfers WHERE id IN (1, 2)"), 10);
  CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'"), 0);
  /* Every status passes, and the other CHECKs of the table hold as before. */
  CHECK_EQ_INT(sqlite3_exec(raw, TRANSFER_ROW(3, 2, 3, "returned"), NULL, NULL, NULL), SQLITE_OK);
  CHECK_EQ_INT(sqlite3_exec(raw, TRANSFER_ROW(4, 2, 3, "expired"), NULL, NULL, NULL), SQLITE_OK);
  CHECK_EQ_INT(sqlite3_exec(raw, TRANSFER_ROW(5, 2, 2, "pending"), NULL, NULL, NULL), SQLITE_CONSTRAINT);
  CHECK_EQ_INT(sqlite3_exec(raw, TRANSFER_ROW(6, 2, 3, "Pending"), NULL, NULL, NULL), SQLITE_CONSTRAINT);
  sqlite3_close(raw);
  rm_dir(dir);
}

#define ENTRY_ROW(txn, acct, amount) \
  "INSERT INTO wallet_entries (txn_id, account_id, user_id, amount) VALUES (" #txn ", " #acct ", 2, " #amount ")"

/* How many tables the plan of sql opens to read (OpenRead): in an insert,
 * the look-ups of its foreign keys' parents. */
static int fk_ops(sqlite3 *db, const char *sql) { return plan_ops(db, sql, "OpenRead"); }

static int entry_plan;

/* Job: the writer's own plan of an entry insert, and an entry of no
 * transaction and no account, which only ledger verify names now. */
static int writer_entry(pz_db_t *db, pz_store_job_t *job) {
  entry_plan = fk_ops(db->sql, ENTRY_ROW(70, 80, 5));
  return pz__db_exec(db, ENTRY_ROW(70, 80, 5), &job->err);
}

/* Migration 18 on a database of migration 17 with a movement in it: the
 * REFERENCES of wallet_entries go (the writer checked two parents per
 * entry), the rows and every other constraint stay. */
static void test_migration_18(void) {
  char *dir, path[600];
  sqlite3 *raw = db_at_version("store-migration-18", 17, &dir, path, sizeof(path));
  CHECK_EQ_INT(sqlite3_exec(raw,
                            "PRAGMA foreign_keys=ON;"
                            "INSERT INTO wallet_accounts (id, user_id, kind, currency, balance, created_at)"
                            " VALUES (10, 2, 'user', 'USD', 5, 1), (11, NULL, 'external', 'USD', -5, 1);"
                            "INSERT INTO wallet_txns (id, kind, ref_id, created_at) VALUES (20, 'topup', 1, 1);"
                            "INSERT INTO wallet_entries (txn_id, account_id, user_id, amount)"
                            " VALUES (20, 11, NULL, -5), (20, 10, 2, 5);",
                            NULL, NULL, NULL),
               SQLITE_OK);
  CHECK_EQ_INT(fk_ops(raw, ENTRY_ROW(21, 10, 5)), 2); /* the cost this migration removes */
  CHECK_EQ_INT(sqlite3_exec(raw, ENTRY_ROW(70, 80, 5), NULL, NULL, NULL), SQLITE_CONSTRAINT);
  sqlite3_close(raw);

  CHECK_EQ_INT(migrate_and_run(dir, writer_entry), 0);
  CHECK_EQ_INT(entry_plan, 0); /* the writer reloaded its schema */

  CHECK_EQ_INT(sqlite3_open(path, &raw), SQLITE_OK);
  CHECK_EQ_INT(raw_int(raw, "PRAGMA user_version"), (long long)pz__n_migrations);
  CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM pragma_foreign_key_list('wallet_entries')"), 0);
  CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM sqlite_schema WHERE sql LIKE '%REFERENCES wallet_txns%'"), 0);
  CHECK_EQ_INT(raw_int(raw,
                       "SELECT count(*) FROM sqlite_schema WHERE tbl_name = 'wallet_entries' AND type = 'index'"
                       " AND name = 'wallet_entries_user'"),
               1);
  CHECK_EQ_INT(raw_int(raw, "SELECT sum(amount) FROM wallet_entries WHERE txn_id = 20"), 0);
  CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'"), 0);
  /* The table's own constraints hold as before: no zero amount, one entry per account and transaction. */
  CHECK_EQ_INT(sqlite3_exec(raw, ENTRY_ROW(21, 10, 0), NULL, NULL, NULL), SQLITE_CONSTRAINT);
  CHECK_EQ_INT(sqlite3_exec(raw, ENTRY_ROW(20, 10, 7), NULL, NULL, NULL), SQLITE_CONSTRAINT);
  sqlite3_close(raw);
  rm_dir(dir);
}

/* ---- rerunnable jobs: one savepoint for a group of them ---- */

enum { WRITES, FAILS_BEFORE_WRITING, FAILS_AFTER_WRITING };

typedef struct {
  item_t it;
  int mode, runs, reruns;
} rerun_item_t;

static int insert_rerunnable(pz_db_t *db, pz_store_job_t *job) {
  rerun_item_t *r = job->data;
  r->runs++;
  if (r->mode == FAILS_BEFORE_WRITING) return pz_err_set(&job->err, PZ_EUNPROCESSABLE, "refused", "refused");
  sqlite3_stmt *st = pz__db_stmt(db, "INSERT INTO t (v) VALUES (?1)", &job->err);
  if (st == NULL) return job->err.code;
  sqlite3_bind_int(st, 1, r->it.value);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return pz__db_fail(db, rc, &job->err);
  return r->mode == FAILS_AFTER_WRITING ? pz_err_set(&job->err, PZ_EUNPROCESSABLE, "late", "failed late") : 0;
}

static void rerun_count(pz_store_job_t *job) { ((rerun_item_t *)job->data)->reruns++; }

static int slow_job(pz_db_t *db, pz_store_job_t *job) {
  (void)db;
  (void)job;
  uv_sleep(100); /* the jobs queued meanwhile make the next batch together */
  return 0;
}

static void rerun_done(pz_store_job_t *job) {
  rerun_item_t *r = job->data;
  r->it.done++;
  n_done++;
}

/* Queues a slow job, then jobs n of values and modes (rerunnable unless
 * the mode is negative: then a plain job that writes), and waits for all. */
static void run_rerunnable(env_t *e, rerun_item_t *r, unsigned n) {
  item_t slow = {.job = {.run = slow_job, .done = on_done}};
  slow.job.data = &slow;
  CHECK_EQ_INT(pz_store_write(e->st, &slow.job), 0);
  for (unsigned i = 0; i < n; i++) {
    bool plain = r[i].mode < 0;
    if (plain) r[i].mode = WRITES;
    r[i].it.job = (pz_store_job_t){.run = insert_rerunnable, .done = rerun_done, .data = &r[i]};
    if (!plain) r[i].it.job.rerun = rerun_count;
    CHECK_EQ_INT(pz_store_write(e->st, &r[i].it.job), 0);
  }
  for (;;) {
    unsigned left = !slow.done;
    for (unsigned i = 0; i < n; i++)
      left += !r[i].it.done;
    if (left == 0) break;
    uv_run(&e->loop, UV_RUN_ONCE);
  }
}

static long long rows_with(env_t *e, const char *where) {
  char sql[128];
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM t WHERE %s", where);
  sqlite3 *raw = NULL;
  char path[512];
  snprintf(path, sizeof(path), "%s/plaza.db", e->dir);
  CHECK_EQ_INT(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  long long v = -1;
  if (sqlite3_prepare_v2(raw, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(raw);
  return v;
}

static void test_rerunnable_jobs(void) {
  env_t e;
  if (!env_open(&e, "store-rerun", 0)) return;
  item_t create = {.job = {.run = create_table, .done = on_done}};
  env_run(&e, &create, true);

  /* A group whose failing job wrote nothing: no rollback, nothing run
   * twice, the others' rows are in. */
  rerun_item_t a[3] = {{.it.value = 2}, {.it.value = 4, .mode = FAILS_BEFORE_WRITING}, {.it.value = 6}};
  run_rerunnable(&e, a, 3);
  for (int i = 0; i < 3; i++) {
    CHECK_EQ_INT(a[i].it.done, 1);
    CHECK_EQ_INT(a[i].runs, 1);
    CHECK_EQ_INT(a[i].reruns, 0);
  }
  CHECK_EQ_INT(a[0].it.job.rc, 0);
  CHECK_EQ_INT(a[1].it.job.rc, PZ_EUNPROCESSABLE);
  CHECK_EQ_INT(a[2].it.job.rc, 0);
  CHECK_EQ_INT(rows_with(&e, "v IN (2, 4, 6)"), 2);

  /* A job that fails after writing: its group is rolled back, the jobs
   * that had run are put back (rerun) and every job of the group runs
   * again alone; only the failing one's row is missing. A plain job ends
   * the group; the rerunnable one after it is a group of its own. */
  rerun_item_t b[5] = {{.it.value = 8},
                       {.it.value = 9, .mode = FAILS_AFTER_WRITING},
                       {.it.value = 10},
                       {.it.value = 12, .mode = -1},
                       {.it.value = 14}};
  run_rerunnable(&e, b, 5);
  static const int runs[5] = {2, 2, 1, 1, 1}, reruns[5] = {1, 1, 0, 0, 0}, rcs[5] = {0, PZ_EUNPROCESSABLE, 0, 0, 0};
  for (int i = 0; i < 5; i++) {
    CHECK_EQ_INT(b[i].it.done, 1);
    CHECK_EQ_INT(b[i].runs, runs[i]);
    CHECK_EQ_INT(b[i].reruns, reruns[i]);
    CHECK_EQ_INT(b[i].it.job.rc, rcs[i]);
  }
  CHECK_EQ_INT(rows_with(&e, "v IN (8, 10, 12, 14)"), 4);
  CHECK_EQ_INT(rows_with(&e, "v = 9"), 0);
  env_close(&e);
}

/* ---- lazy writes (receipts) ---- */

static int run_seq;

static int insert_in_order(pz_db_t *db, pz_store_job_t *job) {
  item_t *it = job->data;
  it->read_count = ++run_seq; /* the order the writer ran it in */
  return insert_value(db, job);
}

static void test_lazy_writes(void) {
  /* Alone, a lazy job is written once its wait is over (the default). */
  env_t e;
  if (!env_open(&e, "store-lazy", 0)) return;
  item_t create = {.job = {.run = create_table, .done = on_done}};
  env_run(&e, &create, true);
  item_t alone = {.value = 2, .job = {.run = insert_in_order, .done = on_done}};
  alone.job.data = &alone;
  CHECK_EQ_INT(pz_store_write_lazy(e.st, &alone.job), 0);
  while (!alone.done)
    uv_run(&e.loop, UV_RUN_ONCE);
  CHECK_EQ_INT(alone.job.rc, 0);
  env_close(&e);

  /* With a wait longer than the test: lazy jobs stay unwritten while reads
   * come and go, then an ordinary write takes them along ahead of itself,
   * in the order they came. A failing lazy job fails alone. */
  if (!env_open_lazy(&e, "store-lazy", 0, 3600 * 1000)) return;
  create = (item_t){.job = {.run = create_table, .done = on_done}};
  env_run(&e, &create, true);
  run_seq = 0;
  enum { N = 20 };
  item_t lazy[N], plain = {.value = 1000, .job = {.run = insert_in_order, .done = on_done}};
  for (int i = 0; i < N; i++) {
    lazy[i] = (item_t){.value = 10 + i, .job = {.run = insert_in_order, .done = on_done}};
    lazy[i].job.data = &lazy[i];
    CHECK_EQ_INT(pz_store_write_lazy(e.st, &lazy[i].job), 0);
  }
  for (int i = 0; i < 20; i++) {
    item_t count = {.job = {.run = count_rows, .done = on_done}};
    env_run(&e, &count, false);
    CHECK_EQ_INT(count.read_count, 0);
  }
  for (int i = 0; i < N; i++)
    CHECK_EQ_INT(lazy[i].done, 0);
  plain.job.data = &plain;
  CHECK_EQ_INT(pz_store_write(e.st, &plain.job), 0);
  while (!plain.done)
    uv_run(&e.loop, UV_RUN_ONCE);
  for (int i = 0; i < N; i++) {
    CHECK_EQ_INT(lazy[i].done, 1);
    CHECK_EQ_INT(lazy[i].job.rc, lazy[i].value % 2 ? PZ_EUNPROCESSABLE : 0);
    CHECK_EQ_INT(lazy[i].read_count, 1 + i);
  }
  CHECK_EQ_INT(plain.job.rc, 0);
  CHECK_EQ_INT(plain.read_count, 1 + N);

  /* Close writes what still waits, and refuses what comes after. */
  item_t late = {.value = 2000, .job = {.run = insert_in_order, .done = on_done}};
  late.job.data = &late;
  CHECK_EQ_INT(pz_store_write_lazy(e.st, &late.job), 0);
  pz_store_close(e.st);
  CHECK_EQ_INT(late.done, 1);
  CHECK_EQ_INT(late.job.rc, 0);
  item_t refused = {.job = {.run = insert_in_order, .done = on_done}};
  CHECK_EQ_INT(pz_store_write_lazy(e.st, &refused.job), PZ_ESHUTDOWN);
  uv_run(&e.loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(&e.loop), 0);

  pz_store_t *again = NULL;
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_store_open_sync(&again, e.dir, &err), 0);
  if (again) {
    item_t count = {.job = {.run = count_rows}};
    count.job.data = &count;
    CHECK_EQ_INT(pz_store_run_sync_read(again, &count.job), 0);
    CHECK_EQ_INT(count.read_count, N / 2 + 2); /* the even lazy ones, plain, late */
    pz_store_close(again);
  }
  rm_dir(e.dir);
}

int main(void) {
  RUN(test_migration_15);
  RUN(test_migration_18);
  RUN(test_group_commit);
  RUN(test_vfs_commits_reach_the_file);
  RUN(test_big_job);
  RUN(test_rolled_back_batch);
  RUN(test_read_waits_for_fsync);
  RUN(test_bad_data_dir);
  RUN(test_lazy_writes);
  RUN(test_rerunnable_jobs);
  TEST_EXIT();
}
