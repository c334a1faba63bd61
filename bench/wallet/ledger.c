/* bench_wallet: builds a ledger of many completed transfers through the wallet's own rules, and counts what a ledger holds. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "plaza/auth.h"
#include "plaza/id.h"
#include "plaza/log.h"
#include "plaza/store.h"
#include "plaza/store_auth.h"
#include "plaza/wallet.h"
#include "store/db.h" /* gen: settings of the job's connection */

#define GEN_PIN "482913"
#define GEN_CURRENCY "USD"
#define GEN_TOPUP 1000000000LL /* per user: far more than the transfers below can move away from anyone */

static void usage(FILE *out) {
  fprintf(out,
          "usage: bench_wallet gen --data-dir DIR [--transfers N] [--users U] [--batch B]\n"
          "       bench_wallet count --data-dir DIR\n"
          "\n"
          "gen    makes U users (PIN set, auto-accept on, one top-up each) and N transfers\n"
          "       between them, each through the same store and wallet functions as\n"
          "       POST /v1/wallet/transfers (idempotency record and daily counter\n"
          "       included; not the events on the users' streams), B per transaction,\n"
          "       with pz_store_open_sync: the ledger's rows are those plazad writes.\n"
          "       For speed, the build's connection differs from plazad's in what\n"
          "       changes no row: a 2 GiB page cache, no foreign key checks, and\n"
          "       PRAGMA synchronous=OFF (a power cut mid-build can corrupt DIR:\n"
          "       remove it and build again).\n"
          "       Defaults: N 10000000, U 1000, B 100000. DIR must not hold a ledger yet.\n"
          "count  prints, read-only, one line: transfers=N completed=N pending=N\n"
          "       transfer_keys=N (idempotency records answering a transfer with 201) txns=N\n");
}

/* ---- gen ---- */

typedef struct {
  pz_store_job_t job;
  pz_wallet_config_t cfg;
  int64_t *users;
  unsigned n_users;
  char password_hash[PZ_PASSWORD_HASH_MAX + 1];
  uint64_t from, to; /* the transfers of the job under way: [from, to) */
} gen_t;

/* The body that src/api/wallet.c stores and answers for a transfer or a
 * top-up: the same members in the same order. Caller frees. */
static char *transfer_body(const pz_wallet_transfer_rec_t *t) {
  static const char *const status[] = {"pending", "completed", "returned", "expired"};
  char id[24], from[24], to[24], created[32], expires[32], updated[32];
  pz_id_format(t->id, id);
  pz_id_format(t->from_id, from);
  pz_id_format(t->to_id, to);
  pz_time_format(t->created_at, created);
  pz_time_format(t->expires_at, expires);
  pz_time_format(t->updated_at, updated);
  json_t *o = json_pack("{s:{s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:n}}", "transfer", "id", id, "from_user_id", from,
                        "to_user_id", to, "amount", (json_int_t)t->amount, "currency", t->currency, "note", t->note,
                        "status", status[t->status], "created_at", created, "expires_at", expires, "updated_at",
                        updated, "conversation_id");
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}

static char *topup_body(const pz_wallet_funding_rec_t *f) {
  char id[24], created[32];
  pz_id_format(f->id, id);
  pz_time_format(f->created_at, created);
  json_t *o = json_pack("{s:{s:s,s:s,s:I,s:s,s:s,s:n,s:s}}", "topup", "id", id, "status", "completed", "amount",
                        (json_int_t)f->amount, "currency", f->currency, "provider", f->provider, "failure_reason",
                        "created_at", created);
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}

static int save_body(pz_db_t *db, int64_t user_id, pz_str_t key, const uint8_t fp[PZ_WALLET_FP_LEN], int64_t ref_id,
                     char *body, int64_t now, pz_err_t *err) {
  if (body == NULL) return pz_err_set(err, PZ_ENOMEM, NULL, "cannot encode a response");
  int rc = pz_wallet_idem_save(db, user_id, key, fp, ref_id, 201, pz_str(body), now, err);
  free(body);
  return rc;
}

/* Sign-up's row, the PIN, auto-accept, and a top-up run as the API's two
 * funding jobs do: pending with a placeholder record, then settled by the
 * sandbox provider with the answer stored under the key. */
static int users_run(pz_db_t *db, pz_store_job_t *job) {
  gen_t *g = job->data;
  pz_err_t *err = &job->err;
  int rc = 0;
  pz_user_rec_t *u = pz_calloc(1, sizeof(*u));
  for (unsigned i = 0; i < g->n_users && rc == 0; i++) {
    int64_t now = pz_now_ms();
    memset(u, 0, sizeof(*u));
    u->id = pz_id_next();
    u->created_at = now;
    snprintf(u->username, sizeof(u->username), "wbgen_%u", i);
    snprintf(u->display_name, sizeof(u->display_name), "Bench %u", i);
    g->users[i] = u->id;
    if ((rc = pz_store_user_insert(db, u, g->password_hash, err)) < 0 ||
        (rc = pz_wallet_pin_set(db, &g->cfg, u->id, PZ_STR(GEN_PIN), now, err)) < 0 ||
        (rc = pz_store_wallet_user_set_auto_accept(db, u->id, true, now, err)) < 0)
      break;
    pz_wallet_funding_rec_t f = {.id = pz_id_next(), .user_id = u->id, .kind = PZ_FUNDING_TOPUP, .amount = GEN_TOPUP};
    memcpy(f.currency, GEN_CURRENCY, sizeof(GEN_CURRENCY));
    snprintf(f.provider, sizeof(f.provider), "sandbox");
    snprintf(f.idem_key, sizeof(f.idem_key), "gen-topup");
    uint8_t fp[PZ_WALLET_FP_LEN];
    pz_wallet_fp_t fpb;
    pz_wallet_fp_init(&fpb, "topup");
    pz_wallet_fp_int(&fpb, f.amount);
    pz_wallet_fp_str(&fpb, pz_str(f.currency));
    pz_wallet_fp_final(&fpb, fp);
    unsigned retry = 0;
    bool keep = false, changed = false;
    char ref[PZ_WALLET_REF_MAX + 1];
    snprintf(ref, sizeof(ref), "sandbox-%" PRId64, f.id);
    pz_wallet_funding_rec_t settled;
    if ((rc = pz_wallet_funding_begin(db, &g->cfg, &f, PZ_STR_NULL, now, &retry, &keep, err)) < 0 ||
        (rc = pz_wallet_idem_save(db, u->id, pz_str(f.idem_key), fp, f.id, 0, PZ_STR(""), now, err)) < 0 ||
        (rc = pz_wallet_funding_settle(db, f.id, true, ref, NULL, now, &settled, &changed, err)) < 0 ||
        (rc = save_body(db, u->id, pz_str(f.idem_key), fp, f.id, topup_body(&settled), now, err)) < 0)
      break;
  }
  pz_free(u);
  return rc;
}

/* Transfers [from, to): what POST /v1/wallet/transfers runs in its write
 * job (src/api/wallet.c, transfer_run), with the request built as
 * transfer_authed builds it, less the two transfer.updated events that the
 * api layer appends to the users' streams (no ledger row, nothing that
 * `plazad ledger verify` reads). Sender and receiver walk every ordered
 * pair, so that each user sends and receives about as much. */
static int transfers_run(pz_db_t *db, pz_store_job_t *job) {
  gen_t *g = job->data;
  pz_err_t *err = &job->err;
  int rc = 0;
  pz_wallet_transfer_rec_t *t = pz_calloc(2, sizeof(*t)), *stored = t + 1;
  pz_wallet_idem_rec_t *idem = pz_malloc(sizeof(*idem));
  for (uint64_t n = g->from; n < g->to && rc == 0; n++) {
    unsigned from = (unsigned)(n % g->n_users);
    unsigned to = (unsigned)((from + 1 + (n / g->n_users) % (g->n_users - 1)) % g->n_users);
    memset(t, 0, sizeof(*t));
    t->id = pz_id_next();
    t->from_id = g->users[from];
    t->to_id = g->users[to];
    t->amount = 1 + (int64_t)(n % 97);
    memcpy(t->currency, GEN_CURRENCY, sizeof(GEN_CURRENCY));
    snprintf(t->idem_key, sizeof(t->idem_key), "gen-%" PRIu64, n);
    pz_str_t key = pz_str(t->idem_key);
    uint8_t fp[PZ_WALLET_FP_LEN];
    pz_wallet_fp_t fpb;
    pz_wallet_fp_init(&fpb, "transfer");
    pz_wallet_fp_int(&fpb, t->to_id);
    pz_wallet_fp_int(&fpb, t->amount);
    pz_wallet_fp_str(&fpb, pz_str(t->currency));
    pz_wallet_fp_str(&fpb, PZ_STR(""));
    pz_wallet_fp_final(&fpb, fp);
    int64_t now = pz_now_ms();
    unsigned retry = 0;
    bool found = false, keep = false;
    if ((rc = pz_wallet_idem_lookup(db, t->from_id, key, fp, idem, &found, err)) < 0) break;
    if (found) {
      rc = pz_err_set(err, PZ_ECONFLICT, NULL, "idempotency key %s was used before: DIR holds a ledger already",
                      t->idem_key);
      break;
    }
    if ((rc = pz_wallet_transfer_create(db, &g->cfg, t, PZ_STR(GEN_PIN), now, stored, &retry, &keep, err)) < 0 ||
        (rc = save_body(db, t->from_id, key, fp, stored->id, transfer_body(stored), now, err)) < 0)
      break;
    if (stored->status != PZ_TRANSFER_COMPLETED)
      rc = pz_err_set(err, PZ_EIO, NULL, "transfer %" PRId64 " was not accepted at once", stored->id);
  }
  pz_free(idem);
  pz_free(t);
  return rc;
}

/* The build only, on its own connection: a page cache that holds the
 * indexes the transfers insert into at random places (the idempotency
 * keys' above all), no fsync at commit, and no foreign key lookups (the
 * rows are made by the wallet's code, which keeps them). None changes a
 * row; plazad opens the ledger with its own settings. */
static int tune_run(pz_db_t *db, pz_store_job_t *job) {
  /* SQLite changes the safety level only between transactions: this job
   * ends the engine's, and opens the same again for the engine to end. */
  return pz__db_exec(db,
                     "COMMIT; PRAGMA synchronous=OFF; PRAGMA cache_size=-2097152; PRAGMA foreign_keys=OFF;"
                     " BEGIN IMMEDIATE; SAVEPOINT job;",
                     &job->err);
}

static int gen_main(const char *data_dir, uint64_t n_transfers, unsigned n_users, unsigned batch) {
  pz_store_t *st = NULL;
  pz_err_t err = {0};
  int rc, status = 1;
  gen_t *g = pz_calloc(1, sizeof(*g));
  g->n_users = n_users;
  g->users = pz_calloc(n_users, sizeof(*g->users));
  char path[4096];
  snprintf(path, sizeof(path), "%s/pin.key", data_dir);
  /* The store makes DIR; the secret is made beside the database, as plazad makes it, so that it could serve this
   * ledger afterwards. */
  /* It writes as plazad's writer does, beside none: a running plazad
   * keeps what it last wrote (stream heads) in memory. */
  if ((rc = pz_store_open_sync(&st, data_dir, &err)) < 0 || (rc = pz_store_claim(st, NULL, &err)) < 0 ||
      (rc = pz_wallet_currencies_parse("USD,EUR", &g->cfg.currencies, &err)) < 0 ||
      (rc = pz_wallet_secret_load(path, true, g->cfg.pin_secret, &err)) < 0) {
    fprintf(stderr, "bench_wallet: %s\n", pz_err_message(&err));
    goto out;
  }
  g->cfg.transfer_ttl_ms = PZ_WALLET_TRANSFER_TTL_MS;
  /* One Argon2id hash for every user: the password matters to no step here. */
  if (pz_auth_password_hash(PZ_STR("bench-password"), g->password_hash) < 0) {
    fprintf(stderr, "bench_wallet: cannot hash a password\n");
    goto out;
  }
  uint64_t t0 = pz_mono_ns();
  g->job = (pz_store_job_t){.run = tune_run, .data = g};
  if (pz_store_run_sync(st, &g->job) < 0) {
    fprintf(stderr, "bench_wallet: %s\n", pz_err_message(&g->job.err));
    goto out;
  }
  g->job = (pz_store_job_t){.run = users_run, .data = g};
  if (pz_store_run_sync(st, &g->job) < 0) {
    fprintf(stderr, "bench_wallet: making users failed: %s\n", pz_err_message(&g->job.err));
    goto out;
  }
  for (g->from = 0; g->from < n_transfers; g->from = g->to) {
    g->to = g->from + batch < n_transfers ? g->from + batch : n_transfers;
    g->job = (pz_store_job_t){.run = transfers_run, .data = g};
    if (pz_store_run_sync(st, &g->job) < 0) {
      fprintf(stderr, "bench_wallet: transfers %" PRIu64 "..%" PRIu64 " failed: %s\n", g->from, g->to,
              pz_err_message(&g->job.err));
      goto out;
    }
    double s = (double)(pz_mono_ns() - t0) / 1e9;
    fprintf(stderr, "bench_wallet: %" PRIu64 " of %" PRIu64 " transfers, %.0f s, %.0f/s\n", g->to, n_transfers, s,
            (double)g->to / s);
  }
  printf("users=%u transfers=%" PRIu64 " seconds=%.1f\n", n_users, n_transfers, (double)(pz_mono_ns() - t0) / 1e9);
  status = 0;
out:
  pz_store_close(st);
  sodium_memzero(g->cfg.pin_secret, sizeof(g->cfg.pin_secret));
  pz_free(g->users);
  pz_free(g);
  return status;
}

/* ---- count ---- */

/* Read-only, beside the store rather than through it: these are totals
 * that no request needs, so the store has no function for them. */
static const char SQL_COUNT[] =
    "SELECT (SELECT count(*) FROM wallet_transfers),"
    " (SELECT count(*) FROM wallet_transfers WHERE status = 'completed'),"
    " (SELECT count(*) FROM wallet_transfers WHERE status = 'pending'),"
    " (SELECT count(*) FROM wallet_idempotency i JOIN wallet_transfers t ON t.id = i.ref_id"
    "   AND t.from_user_id = i.user_id AND t.idem_key = i.key WHERE i.status = 201),"
    " (SELECT count(*) FROM wallet_txns)";

static int count_main(const char *data_dir) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/plaza.db", data_dir);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int status = 1;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, SQL_COUNT, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
    fprintf(stderr, "bench_wallet: cannot count in %s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
    goto out;
  }
  printf("transfers=%lld completed=%lld pending=%lld transfer_keys=%lld txns=%lld\n", sqlite3_column_int64(st, 0),
         sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
         sqlite3_column_int64(st, 4));
  status = 0;
out:
  sqlite3_finalize(st);
  sqlite3_close(db);
  return status;
}

/* ---- command line ---- */

static int parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || *end || s[0] == '-' || v < min || v > max) return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "gen") != 0 && strcmp(argv[1], "count") != 0)) {
    usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
    return 2;
  }
  const char *cmd = argv[1], *data_dir = NULL;
  uint64_t n_transfers = 10000000, n_users = 1000, batch = 100000;
  enum { O_DATA = 256, O_TRANSFERS, O_USERS, O_BATCH };
  static const struct option longopts[] = {{"data-dir", required_argument, 0, O_DATA},
                                           {"transfers", required_argument, 0, O_TRANSFERS},
                                           {"users", required_argument, 0, O_USERS},
                                           {"batch", required_argument, 0, O_BATCH},
                                           {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc - 1, argv + 1, "", longopts, NULL)) != -1) {
    int bad = 0;
    switch (c) {
      case O_DATA: data_dir = optarg; break;
      case O_TRANSFERS: bad = parse_count(optarg, 1, 1000000000, &n_transfers); break;
      case O_USERS: bad = parse_count(optarg, 2, 1000000, &n_users); break;
      case O_BATCH: bad = parse_count(optarg, 1, 10000000, &batch); break;
      default: bad = -1;
    }
    if (bad) {
      usage(stderr);
      return 2;
    }
  }
  if (data_dir == NULL || optind < argc - 1) {
    usage(stderr);
    return 2;
  }
  if (sodium_init() < 0) {
    fprintf(stderr, "bench_wallet: libsodium failed to initialise\n");
    return 1;
  }
  pz_log_level = PZ_LOG_WARN;
  if (strcmp(cmd, "count") == 0) return count_main(data_dir);
  pz_id_set_node(0);
  return gen_main(data_dir, n_transfers, (unsigned)n_users, (unsigned)batch);
}
