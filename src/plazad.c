/* plazad: flags and environment, wiring of net, api and store, signals and graceful stop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>
#include <sodium.h>
#include "plaza/api.h"
#include "plaza/auth.h"
#include "plaza/id.h"
#include "plaza/log.h"
#include "plaza/net.h"
#include "plaza/store.h"
#include "plaza/store_auth.h"
#include "plaza/wallet.h"

#define PZ_VERSION "0.1.0"

typedef struct {
  const char *listen;
  const char *data_dir;
  const char *db;
  const char *web_dir;
  const char *log_level;
  unsigned max_connections;
  unsigned long max_body;
  unsigned long max_body_memory;
  unsigned node;
  unsigned shutdown_ms;
  unsigned msg_rate;
  int msg_unlimited;
  int access_log;
  int private_webhooks;
  const char *currencies;
  const char *secret_file; /* NULL: DATA_DIR/pin.key, created at first start */
  const char *admin_token_file; /* NULL: no /v1/admin */
  pz_wallet_currencies_t currency_list;
  const char *daily_limits;
  pz_wallet_limits_t limits;
  unsigned event_retention_days;
} options_t;

typedef struct {
  uv_loop_t *loop;
  pz_server_t *server;
  pz_api_t *api;
  pz_store_t *store;
  pz_wallet_config_t wallet;
  pz_wallet_provider_t *provider;
  uv_signal_t sigterm, sigint;
  uv_timer_t drain_timer;
  int stopping;
  unsigned shutdown_ms;
} daemon_t;

static void usage(FILE *out) {
  fprintf(out,
          "usage: plazad [options]\n"
          "\n"
          "Plaza server: HTTP API, WebSocket events and the web client, on one libuv loop.\n"
          "\n"
          "options (each also read from the environment variable in brackets):\n"
          "  --listen ADDR          address to listen on, HOST:PORT or [V6]:PORT\n"
          "                         [PLAZA_LISTEN] (default 127.0.0.1:8080)\n"
          "  --data-dir DIR         where the embedded database lives, created if missing\n"
          "                         [PLAZA_DATA_DIR] (default ./var)\n"
          "  --db URL               storage backend: sqlite (the default, under --data-dir);\n"
          "                         postgres://... is not available in this build [PLAZA_DB]\n"
          "  --web-dir DIR          web client to serve at / [PLAZA_WEB_DIR] (default ./web)\n"
          "  --log-level LEVEL      debug, info, warn or error [PLAZA_LOG_LEVEL] (default info)\n"
          "  --access-log           one log line per request [PLAZA_ACCESS_LOG=1]\n"
          "  --max-connections N    open connections at most [PLAZA_MAX_CONNECTIONS]\n"
          "                         (default: the open-file limit less a reserve)\n"
          "  --max-body BYTES       largest request body [PLAZA_MAX_BODY] (default 1048576)\n"
          "  --max-body-memory BYTES  request bodies held at once, all connections together;\n"
          "                         beyond, 503 before the body is read [PLAZA_MAX_BODY_MEMORY]\n"
          "                         (default 268435456)\n"
          "  --node N               node number 0..1023 for ids [PLAZA_NODE] (default 0)\n"
          "  --msg-rate N           messages a user may send per second; 0 lifts the limit,\n"
          "                         for load tests only [PLAZA_MSG_RATE] (default 20)\n"
          "  --currencies LIST      enabled ISO 4217 currencies of the wallet, comma-separated\n"
          "                         [PLAZA_CURRENCIES] (default USD,EUR)\n"
          "  --secret-file PATH     the 32-byte secret that keys payment PIN hashes; kept out of\n"
          "                         the database [PLAZA_SECRET_FILE] (default DATA_DIR/pin.key,\n"
          "                         created with random bytes at first start)\n"
          "  --admin-token-file PATH  a file holding the operator's token (32 to 256 printable\n"
          "                         characters) for /v1/admin, e.g. GET /v1/admin/ledger/verify;\n"
          "                         without it those routes answer 404 [PLAZA_ADMIN_TOKEN_FILE]\n"
          "  --private-webhooks     let merchants' webhooks go to loopback and private addresses\n"
          "                         (a shop on this host or its network); without it they go to\n"
          "                         public addresses only [PLAZA_PRIVATE_WEBHOOKS=1]\n"
          "  --daily-limits LIST    what a user may send out per currency per UTC day, in minor\n"
          "                         units, by verification tier: tier:amount,... (0: no limit)\n"
          "                         [PLAZA_DAILY_LIMITS] (default " PZ_WALLET_DAILY_LIMITS_DEFAULT ")\n"
          "  --event-retention-days N  how long the events of the users' streams are kept for\n"
          "                         devices to catch up on; one offline for longer reloads its\n"
          "                         lists; 0 keeps them forever [PLAZA_EVENT_RETENTION_DAYS] (default 30)\n"
          "  --shutdown-timeout MS  how long a graceful stop waits [PLAZA_SHUTDOWN_TIMEOUT] (default 10000)\n"
          "  --version              print the version and exit\n"
          "  --help                 print this help and exit\n"
          "\n"
          "       plazad ledger verify [--data-dir DIR]\n"
          "\n"
          "checks the wallet ledger's invariants, prints each violation, exits 0 when all\n"
          "hold and 1 otherwise.\n"
          "\n"
          "       plazad user tier --username NAME --tier N [--data-dir DIR]\n"
          "\n"
          "sets a user's verification tier (0 to 9), which chooses their daily limit.\n"
          "\n"
          "wallet funding runs on the sandbox provider; PLAZA_SANDBOX_DELAY_MS=N makes it\n"
          "answer after N ms, PLAZA_SANDBOX_FAIL=1 makes it fail. PLAZA_TEST_TRANSFER_TTL_MS\n"
          "shortens the 24 h after which a pending transfer is refunded, and\n"
          "PLAZA_TEST_FAIL_TRANSFER_AMOUNT=N fails every transfer of N minor units after\n"
          "its writes, as a failing disk would: for tests only.\n"
          "PLAZA_TEST_SENDLOG_BYTES makes a new send log that small (at least 1 MiB), and\n"
          "PLAZA_TEST_APPLY_DELAY_MS holds messages in it that long before the database\n"
          "has them: for tests only.\n"
          "\n"
          "SIGTERM or SIGINT stops gracefully: no new connections, in-flight requests\n"
          "finish, WebSockets close with 1001, every acknowledged write is on disk.\n");
}

static const char *env_or(const char *name, const char *dflt) {
  const char *v = getenv(name);
  return v && *v ? v : dflt;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-' || v > max) return -1;
  *out = v;
  return 0;
}

static int parse_options(int argc, char **argv, options_t *o) {
  o->listen = env_or("PLAZA_LISTEN", "127.0.0.1:8080");
  o->data_dir = env_or("PLAZA_DATA_DIR", "./var");
  o->db = env_or("PLAZA_DB", "sqlite");
  o->web_dir = env_or("PLAZA_WEB_DIR", "./web");
  o->log_level = env_or("PLAZA_LOG_LEVEL", "info");
  o->access_log = strcmp(env_or("PLAZA_ACCESS_LOG", "0"), "1") == 0;
  o->private_webhooks = strcmp(env_or("PLAZA_PRIVATE_WEBHOOKS", "0"), "1") == 0;
  o->currencies = env_or("PLAZA_CURRENCIES", "USD,EUR");
  o->secret_file = env_or("PLAZA_SECRET_FILE", NULL);
  o->admin_token_file = env_or("PLAZA_ADMIN_TOKEN_FILE", NULL);
  o->daily_limits = env_or("PLAZA_DAILY_LIMITS", PZ_WALLET_DAILY_LIMITS_DEFAULT);
  const char *nums[7] = {env_or("PLAZA_MAX_CONNECTIONS", NULL), env_or("PLAZA_MAX_BODY", NULL),
                         env_or("PLAZA_NODE", NULL),            env_or("PLAZA_SHUTDOWN_TIMEOUT", NULL),
                         env_or("PLAZA_MSG_RATE", NULL),        env_or("PLAZA_MAX_BODY_MEMORY", NULL),
                         env_or("PLAZA_EVENT_RETENTION_DAYS", NULL)};
  enum { O_LISTEN = 256, O_DATA, O_DB, O_WEB, O_LOG, O_ACCESS, O_MAXCONN, O_MAXBODY, O_NODE, O_SHUT, O_RATE, O_BODYMEM, O_VER, O_HELP,
         O_CURRENCIES, O_SECRET, O_LIMITS, O_ADMIN, O_PRIVATE_HOOKS, O_RETENTION };
  static const struct option longopts[] = {
      {"listen", required_argument, 0, O_LISTEN},     {"data-dir", required_argument, 0, O_DATA},
      {"db", required_argument, 0, O_DB},             {"web-dir", required_argument, 0, O_WEB},
      {"log-level", required_argument, 0, O_LOG},     {"access-log", no_argument, 0, O_ACCESS},
      {"max-connections", required_argument, 0, O_MAXCONN}, {"max-body", required_argument, 0, O_MAXBODY},
      {"node", required_argument, 0, O_NODE},         {"shutdown-timeout", required_argument, 0, O_SHUT},
      {"msg-rate", required_argument, 0, O_RATE},
      {"max-body-memory", required_argument, 0, O_BODYMEM},
      {"currencies", required_argument, 0, O_CURRENCIES}, {"secret-file", required_argument, 0, O_SECRET},
      {"admin-token-file", required_argument, 0, O_ADMIN},
      {"daily-limits", required_argument, 0, O_LIMITS},
      {"private-webhooks", no_argument, 0, O_PRIVATE_HOOKS},
      {"event-retention-days", required_argument, 0, O_RETENTION},
      {"version", no_argument, 0, O_VER},             {"help", no_argument, 0, O_HELP},
      {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
      case O_LISTEN: o->listen = optarg; break;
      case O_DATA: o->data_dir = optarg; break;
      case O_DB: o->db = optarg; break;
      case O_WEB: o->web_dir = optarg; break;
      case O_LOG: o->log_level = optarg; break;
      case O_ACCESS: o->access_log = 1; break;
      case O_MAXCONN: nums[0] = optarg; break;
      case O_MAXBODY: nums[1] = optarg; break;
      case O_NODE: nums[2] = optarg; break;
      case O_SHUT: nums[3] = optarg; break;
      case O_RATE: nums[4] = optarg; break;
      case O_BODYMEM: nums[5] = optarg; break;
      case O_CURRENCIES: o->currencies = optarg; break;
      case O_SECRET: o->secret_file = optarg; break;
      case O_ADMIN: o->admin_token_file = optarg; break;
      case O_LIMITS: o->daily_limits = optarg; break;
      case O_PRIVATE_HOOKS: o->private_webhooks = 1; break;
      case O_RETENTION: nums[6] = optarg; break;
      case O_VER: printf("plazad %s\n", PZ_VERSION); exit(0);
      case 'h':
      case O_HELP: usage(stdout); exit(0);
      default: usage(stderr); return -1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "plazad: unexpected argument '%s'\n", argv[optind]);
    return -1;
  }
  unsigned long v;
  static const char *const names[7] = {"--max-connections", "--max-body",        "--node",
                                       "--shutdown-timeout", "--msg-rate",        "--max-body-memory",
                                       "--event-retention-days"};
  static const unsigned long maxes[7] = {10000000, 1UL << 30, 1023, 3600000, 1000000, 1UL << 40, 36500};
  for (int i = 0; i < 7; i++) {
    v = 0;
    if (nums[i] && parse_uint(nums[i], maxes[i], &v) < 0) {
      fprintf(stderr, "plazad: %s wants a whole number from 0 to %lu, not '%s'\n", names[i], maxes[i], nums[i]);
      return -1;
    }
    if (i == 0) o->max_connections = (unsigned)v;
    if (i == 1) o->max_body = v;
    if (i == 5) o->max_body_memory = v;
    if (i == 2) o->node = (unsigned)v;
    if (i == 3) o->shutdown_ms = nums[i] ? (unsigned)v : 10000;
    if (i == 6) o->event_retention_days = nums[i] ? (unsigned)v : 30;
    if (i == 6 && v > 0 && v < 7) {
      /* A device offline for a week must still catch up event by event. */
      fprintf(stderr, "plazad: --event-retention-days wants 0 (keep forever) or at least 7, not '%s'\n", nums[i]);
      return -1;
    }
    if (i == 4) {
      o->msg_rate = (unsigned)v;
      o->msg_unlimited = nums[i] != NULL && v == 0;
    }
  }
  int level = pz_log_parse_level(o->log_level);
  if (level < 0) {
    fprintf(stderr, "plazad: --log-level wants debug, info, warn or error, not '%s'\n", o->log_level);
    return -1;
  }
  pz_log_level = level;
  pz_err_t err = {0};
  if (pz_wallet_currencies_parse(o->currencies, &o->currency_list, &err) < 0) {
    fprintf(stderr, "plazad: --currencies: %s\n", pz_err_message(&err));
    return -1;
  }
  if (pz_wallet_limits_parse(o->daily_limits, &o->limits, &err) < 0) {
    fprintf(stderr, "plazad: --daily-limits: %s\n", pz_err_message(&err));
    return -1;
  }
  if (strcmp(o->db, "sqlite") != 0 && strncmp(o->db, "sqlite:", 7) != 0) {
    fprintf(stderr, "plazad: --db '%s' is not available in this build; use sqlite (the default)\n", o->db);
    return -1;
  }
  return 0;
}

/* Connections are file descriptors: a server meant for many of them runs
 * with the soft limit raised to the hard one. Returns the limit in force. */
static rlim_t raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rlim_t want = rl.rlim_max;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      PZ_LOG(PZ_LOG_WARN, NULL, "cannot raise open-file limit", "error=%s", strerror(errno));
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* After the server has drained, every write job a request started is
 * done; jobs started by WebSocket sessions may still be in the writer.
 * Poll until the store is idle, then close it: whatever was acknowledged
 * is already on disk, and what was queued is committed before exit. */
static void drain_store(uv_timer_t *t) {
  daemon_t *d = t->data;
  if (pz_store_pending(d->store) > 0) return;
  uv_timer_stop(t);
  close_handle((uv_handle_t *)t);
  pz_store_close(d->store);
  d->store = NULL;
  PZ_LOG(PZ_LOG_INFO, NULL, "stopped", "");
}

static void on_drained(pz_server_t *srv, void *arg) {
  daemon_t *d = arg;
  pz_api_free(d->api);
  d->api = NULL;
  uv_timer_start(&d->drain_timer, drain_store, 0, 10);
}

static void on_signal(uv_signal_t *h, int signum) {
  daemon_t *d = h->data;
  if (d->stopping++) {
    PZ_LOG(PZ_LOG_WARN, NULL, "second signal: stopping now", "signal=%d", signum);
    exit(1);
  }
  PZ_LOG(PZ_LOG_INFO, NULL, "stopping", "signal=%d", signum);
  close_handle((uv_handle_t *)&d->sigterm);
  close_handle((uv_handle_t *)&d->sigint);
  pz_server_shutdown(d->server, d->shutdown_ms, on_drained, d);
}

/* The job of `plazad ledger verify` and what it found. */
typedef struct {
  pz_store_job_t job;
  unsigned n_violations;
  int64_t n_txns;
} ledger_job_t;

static int ledger_verify_run(pz_db_t *db, pz_store_job_t *job) {
  ledger_job_t *v = job->data;
  return pz_wallet_verify(db, stdout, &v->n_violations, &v->n_txns, &job->err);
}

/* The wallet's settings: the PIN secret from its file, the sandbox
 * provider, and the transfer lifetime (shortened only by tests). */
static int wallet_setup(daemon_t *d, const options_t *o, pz_err_t *err) {
  pz_wallet_config_t *w = &d->wallet;
  w->currencies = o->currency_list;
  /* Before the first request can queue a job that moves money. */
  pz_wallet_limits_set(&o->limits);
  char path[4096];
  if (o->secret_file)
    snprintf(path, sizeof(path), "%s", o->secret_file);
  else
    snprintf(path, sizeof(path), "%s/pin.key", o->data_dir);
  /* A secret named by the operator that is missing is a mistake (an
   * unmounted volume): a new one would silently void every PIN. */
  int rc = pz_wallet_secret_load(path, o->secret_file == NULL, w->pin_secret, err);
  if (rc < 0) return rc;
  w->transfer_ttl_ms = PZ_WALLET_TRANSFER_TTL_MS;
  unsigned long v = 0;
  const char *ttl = env_or("PLAZA_TEST_TRANSFER_TTL_MS", NULL);
  if (ttl) {
    if (parse_uint(ttl, (unsigned long)PZ_WALLET_TRANSFER_TTL_MS, &v) < 0 || v == 0)
      return pz_err_set(err, PZ_EINVAL, NULL, "PLAZA_TEST_TRANSFER_TTL_MS wants 1 to %lld ms",
                        (long long)PZ_WALLET_TRANSFER_TTL_MS);
    w->transfer_ttl_ms = (int64_t)v;
    PZ_LOG(PZ_LOG_WARN, NULL, "test setting: pending transfers expire early", "ttl_ms=%lu", v);
  }
  const char *fail_amount = env_or("PLAZA_TEST_FAIL_TRANSFER_AMOUNT", NULL);
  if (fail_amount) {
    if (parse_uint(fail_amount, (unsigned long)INT32_MAX, &v) < 0 || v == 0)
      return pz_err_set(err, PZ_EINVAL, NULL, "PLAZA_TEST_FAIL_TRANSFER_AMOUNT wants a positive amount");
    w->test_fail_amount = (int64_t)v;
    PZ_LOG(PZ_LOG_WARN, NULL, "test setting: transfers of one amount fail after their writes", "amount=%lu", v);
  }
  const char *delay = env_or("PLAZA_SANDBOX_DELAY_MS", NULL);
  v = 0;
  if (delay && parse_uint(delay, 600000, &v) < 0)
    return pz_err_set(err, PZ_EINVAL, NULL, "PLAZA_SANDBOX_DELAY_MS wants 0 to 600000 ms");
  bool fail = strcmp(env_or("PLAZA_SANDBOX_FAIL", "0"), "1") == 0;
  d->provider = pz_wallet_sandbox_new(d->loop, (unsigned)v, fail);
  w->provider = d->provider;
  return 0;
}

/* Reads the operator's admin token from path into out (NUL-terminated):
 * 32 to 256 printable ASCII characters, a trailing newline allowed. */
static int admin_token_load(const char *path, char out[257], pz_err_t *err) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return pz_err_set(err, PZ_EINVAL, NULL, "cannot read admin token file %s: %s", path, strerror(errno));
  size_t n = fread(out, 1, 256, f);
  bool more = fgetc(f) != EOF;
  fclose(f);
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r')) n--;
  out[n] = '\0';
  bool printable = true;
  for (size_t i = 0; i < n; i++)
    if (out[i] <= ' ' || out[i] > '~') printable = false;
  if (more || n < 32 || !printable) {
    sodium_memzero(out, 257);
    return pz_err_set(err, PZ_EINVAL, NULL, "admin token in %s must be 32 to 256 printable characters", path);
  }
  return 0;
}

/* plazad ledger verify [--data-dir DIR]: argv[0] is "ledger". */
static int ledger_main(int argc, char **argv) {
  const char *data_dir = env_or("PLAZA_DATA_DIR", "./var");
  if (argc < 2 || strcmp(argv[1], "verify") != 0) {
    fprintf(stderr, "usage: plazad ledger verify [--data-dir DIR]\n");
    return 2;
  }
  static const struct option longopts[] = {{"data-dir", required_argument, 0, 'd'}, {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc - 1, argv + 1, "", longopts, NULL)) != -1) {
    if (c != 'd') {
      fprintf(stderr, "usage: plazad ledger verify [--data-dir DIR]\n");
      return 2;
    }
    data_dir = optarg;
  }
  if (optind < argc - 1) {
    fprintf(stderr, "plazad: unexpected argument '%s'\n", argv[1 + optind]);
    return 2;
  }
  pz_log_level = PZ_LOG_WARN;
  char db_path[4096];
  snprintf(db_path, sizeof(db_path), "%s/plaza.db", data_dir);
  if (access(db_path, F_OK) != 0) {
    fprintf(stderr, "plazad: no database at %s\n", db_path);
    return 2;
  }
  pz_store_t *st = NULL;
  pz_err_t err = {0};
  if (pz_store_open_sync(&st, data_dir, &err) < 0) {
    fprintf(stderr, "plazad: cannot open the database in %s: %s\n", data_dir, pz_err_message(&err));
    return 2;
  }
  ledger_job_t v = {0};
  v.job.run = ledger_verify_run;
  v.job.data = &v;
  /* With the directory to itself, the check holds the write lock (so that
   * a second connection can share the work). Beside a running plazad it
   * reads one snapshot instead, slower but without holding up its writes. */
  long holder = 0;
  pz_err_t cerr = {0};
  int rc;
  uint64_t applied = 0;
  if (pz_store_claim(st, &holder, &cerr) == 0) {
    /* What a crash left answered in the send log is part of the ledger:
     * applied first, as a start of plazad would. */
    rc = pz_store_apply_log(st, &applied, &cerr);
    if (rc < 0) {
      fprintf(stderr, "plazad: cannot apply the send log: %s\n", pz_err_message(&cerr));
      pz_store_close(st);
      return 2;
    }
    if (applied) fprintf(stderr, "plazad: applied %llu records of the send log first\n", (unsigned long long)applied);
    rc = pz_store_run_sync(st, &v.job);
  } else if (cerr.code == PZ_ECONFLICT) {
    fprintf(stderr, "plazad: a plazad (pid %ld) is running on %s: checking a snapshot of the ledger\n", holder,
            data_dir);
    rc = pz_store_run_sync_read(st, &v.job);
  } else {
    fprintf(stderr, "plazad: %s\n", pz_err_message(&cerr));
    pz_store_close(st);
    return 2;
  }
  pz_store_close(st);
  if (rc < 0) {
    fprintf(stderr, "plazad: ledger verify failed: %s\n", pz_err_message(&v.job.err));
    return 2;
  }
  if (v.n_violations) {
    printf("ledger verify: %u violations in %lld transactions\n", v.n_violations, (long long)v.n_txns);
    return 1;
  }
  printf("ledger verify: ok, %lld transactions\n", (long long)v.n_txns);
  return 0;
}

/* The job of `plazad user tier`: the user by name, then the tier. */
typedef struct {
  pz_store_job_t job;
  char username[PZ_USERNAME_MAX + 1];
  int tier;
} tier_job_t;

static int tier_set_run(pz_db_t *db, pz_store_job_t *job) {
  tier_job_t *t = job->data;
  pz_user_rec_t *u = pz_malloc(sizeof(*u));
  int rc = pz_store_user_find(db, pz_str(t->username), u, NULL, &job->err);
  if (rc == PZ_ENOTFOUND) pz_err_set(&job->err, rc, NULL, "no user named %s", t->username);
  if (rc == 0) rc = pz_wallet_tier_set(db, u->id, t->tier, pz_now_ms(), &job->err);
  pz_free(u);
  return rc;
}

/* plazad user tier --username NAME --tier N [--data-dir DIR]: argv[0] is "user". */
static int user_main(int argc, char **argv) {
  static const char usage_line[] = "usage: plazad user tier --username NAME --tier N [--data-dir DIR]\n";
  const char *data_dir = env_or("PLAZA_DATA_DIR", "./var");
  const char *username = NULL, *tier = NULL;
  if (argc < 2 || strcmp(argv[1], "tier") != 0) {
    fputs(usage_line, stderr);
    return 2;
  }
  static const struct option longopts[] = {
      {"data-dir", required_argument, 0, 'd'}, {"username", required_argument, 0, 'u'},
      {"tier", required_argument, 0, 't'}, {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc - 1, argv + 1, "", longopts, NULL)) != -1) {
    if (c == 'd') data_dir = optarg;
    else if (c == 'u') username = optarg;
    else if (c == 't') tier = optarg;
    else {
      fputs(usage_line, stderr);
      return 2;
    }
  }
  unsigned long n = 0;
  if (optind < argc - 1 || username == NULL || tier == NULL) {
    fputs(usage_line, stderr);
    return 2;
  }
  if (parse_uint(tier, PZ_WALLET_TIERS - 1, &n) < 0) {
    fprintf(stderr, "plazad: --tier wants a whole number from 0 to %d, not '%s'\n", PZ_WALLET_TIERS - 1, tier);
    return 2;
  }
  tier_job_t t = {.tier = (int)n};
  pz_err_t err = {0};
  if (pz_auth_username_norm(pz_str(username), t.username, &err) < 0) {
    fprintf(stderr, "plazad: --username: %s\n", pz_err_message(&err));
    return 2;
  }
  pz_log_level = PZ_LOG_WARN;
  char db_path[4096];
  snprintf(db_path, sizeof(db_path), "%s/plaza.db", data_dir);
  if (access(db_path, F_OK) != 0) {
    fprintf(stderr, "plazad: no database at %s\n", db_path);
    return 2;
  }
  pz_store_t *st = NULL;
  if (pz_store_open_sync(&st, data_dir, &err) < 0) {
    fprintf(stderr, "plazad: cannot open the database in %s: %s\n", data_dir, pz_err_message(&err));
    return 2;
  }
  t.job.run = tier_set_run;
  t.job.data = &t;
  int rc = pz_store_run_sync(st, &t.job);
  pz_store_close(st);
  if (rc < 0) {
    fprintf(stderr, "plazad: user tier: %s\n", pz_err_message(&t.job.err));
    return rc == PZ_ENOTFOUND ? 1 : 2;
  }
  printf("user %s is now tier %d\n", t.username, t.tier);
  return 0;
}

/* Tests only: PLAZA_TEST_SENDLOG_BYTES makes a new send log that small (so
 * that tests go round the ring), PLAZA_TEST_APPLY_DELAY_MS holds logged
 * messages back from the database that long (so that kill -9 finds them
 * unapplied). */
static int store_test_settings(pz_store_config_t *cfg, pz_err_t *err) {
  unsigned long v = 0;
  const char *bytes = env_or("PLAZA_TEST_SENDLOG_BYTES", NULL);
  if (bytes) {
    if (parse_uint(bytes, 1ul << 30, &v) < 0 || v < (1ul << 20) || v % 8)
      return pz_err_set(err, PZ_EINVAL, NULL, "PLAZA_TEST_SENDLOG_BYTES wants a multiple of 8 from 1048576");
    cfg->sendlog_bytes = v;
    PZ_LOG(PZ_LOG_WARN, NULL, "test setting: a small send log", "bytes=%lu", v);
  }
  const char *delay = env_or("PLAZA_TEST_APPLY_DELAY_MS", NULL);
  if (delay) {
    if (parse_uint(delay, 60000, &v) < 0)
      return pz_err_set(err, PZ_EINVAL, NULL, "PLAZA_TEST_APPLY_DELAY_MS wants 0 to 60000 ms");
    cfg->test_apply_delay_ms = (unsigned)v;
    PZ_LOG(PZ_LOG_WARN, NULL, "test setting: logged messages reach the database late", "delay_ms=%lu", v);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "ledger") == 0) return ledger_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "user") == 0) return user_main(argc - 1, argv + 1);
  options_t opt = {0};
  if (parse_options(argc, argv, &opt) < 0) return 2;
  if (sodium_init() < 0) {
    fprintf(stderr, "plazad: libsodium failed to initialise\n");
    return 1;
  }
  /* Before anything is opened: a bad token file is a configuration error. */
  char admin_token[257] = "";
  if (opt.admin_token_file) {
    pz_err_t terr = {0};
    if (admin_token_load(opt.admin_token_file, admin_token, &terr) < 0) {
      fprintf(stderr, "plazad: %s\n", pz_err_message(&terr));
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  /* libuv's pool runs store reads beside slow work (Argon2, at most two at
   * once; thumbnails): four threads would let the slow work starve reads.
   * Read before the pool's first use; an operator's setting wins. */
  setenv("UV_THREADPOOL_SIZE", "8", 0);
  pz_id_set_node(opt.node);
  rlim_t nofile = raise_nofile();

  daemon_t d = {0};
  d.loop = uv_default_loop();
  d.shutdown_ms = opt.shutdown_ms;
  pz_err_t err = {0};
  int rc;

  pz_store_config_t scfg = {.data_dir = opt.data_dir, .readers = 8};
  if ((rc = store_test_settings(&scfg, &err)) < 0) {
    PZ_LOG(PZ_LOG_ERROR, NULL, "bad test setting", "error=%s", pz_err_message(&err));
    return 1;
  }
  if ((rc = pz_store_open(&d.store, d.loop, &scfg, &err)) < 0) {
    PZ_LOG(PZ_LOG_ERROR, NULL, "cannot open store", "error=%s", pz_err_message(&err));
    return 1;
  }

  if ((rc = wallet_setup(&d, &opt, &err)) < 0) {
    PZ_LOG(PZ_LOG_ERROR, NULL, "cannot set up the wallet", "error=%s", pz_err_message(&err));
    return 1;
  }

  pz_server_config_t ncfg = {.listen = opt.listen, .access_log = opt.access_log != 0};
  /* Keep a reserve of descriptors for the database, its WAL and logs. */
  unsigned max_conn = nofile > 256 ? (unsigned)(nofile - 128) : 128;
  ncfg.limits.max_connections = opt.max_connections ? opt.max_connections : max_conn;
  ncfg.limits.max_body_bytes = opt.max_body;
  ncfg.limits.max_body_memory = opt.max_body_memory;
  if ((rc = pz_server_new(&d.server, d.loop, &ncfg, &err)) < 0 ||
      (rc = pz_api_new(&d.api, d.loop, d.server, d.store,
                       &(pz_api_config_t){.msg_rate = opt.msg_rate,
                                          .msg_unlimited = opt.msg_unlimited != 0,
                                          .wallet = &d.wallet,
                                          .admin_token = admin_token,
                                          .private_webhooks = opt.private_webhooks != 0,
                                          .event_retention_ms = (int64_t)opt.event_retention_days * 86400000},
                       &err)) < 0) {
    PZ_LOG(PZ_LOG_ERROR, NULL, "cannot set up server", "error=%s", pz_err_message(&err));
    return 1;
  }
  sodium_memzero(admin_token, sizeof(admin_token)); /* the api keeps only its hash */
  if ((rc = pz_server_serve_static(d.server, opt.web_dir, &err)) < 0)
    PZ_LOG(PZ_LOG_WARN, NULL, "web client not served", "dir=%s error=%s", opt.web_dir, pz_err_message(&err));
  if ((rc = pz_server_start(d.server, &err)) < 0) {
    PZ_LOG(PZ_LOG_ERROR, NULL, "cannot listen", "listen=%s error=%s", opt.listen, pz_err_message(&err));
    return 1;
  }

  uv_signal_init(d.loop, &d.sigterm);
  uv_signal_init(d.loop, &d.sigint);
  d.sigterm.data = d.sigint.data = &d;
  uv_signal_start(&d.sigterm, on_signal, SIGTERM);
  uv_signal_start(&d.sigint, on_signal, SIGINT);
  uv_timer_init(d.loop, &d.drain_timer);
  d.drain_timer.data = &d;

  PZ_LOG(PZ_LOG_INFO, NULL, "started", "listen=%s data_dir=%s version=%s max_connections=%u", opt.listen,
         opt.data_dir, PZ_VERSION, ncfg.limits.max_connections);
  uv_run(d.loop, UV_RUN_DEFAULT);

  pz_server_free(d.server);
  pz_wallet_sandbox_free(d.provider);
  sodium_memzero(d.wallet.pin_secret, sizeof(d.wallet.pin_secret));
  rc = uv_loop_close(d.loop);
  if (rc != 0) PZ_LOG(PZ_LOG_WARN, NULL, "loop closed with handles open", "error=%s", uv_strerror(rc));
  return 0;
}
