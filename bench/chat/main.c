/* bench_chat: the messaging load generator's command line: setup, then one phase per run, each printing one result
 * line. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: bench_chat COMMAND --server HOST:PORT --state FILE [options]\n"
          "\n"
          "Load generator for plazad's messaging (HTTP setup, WebSocket phases). Each\n"
          "phase prints one line of key=value results on stdout and exits 1 if it failed.\n"
          "\n"
          "commands:\n"
          "  setup        create --users accounts, contacts, --pairs direct chats and a group\n"
          "               of all users; write the state FILE (mode 0600: it holds tokens)\n"
          "  throughput   --messages in all over --pairs sender/receiver sockets, each sender\n"
          "               keeping --window sends unacknowledged; the rate of ack + delivery\n"
          "  latency      --rate messages a second for --seconds over --pairs, paced; the\n"
          "               send-to-delivery latency; with --receipts MS each receiver sends a\n"
          "               delivered receipt per chat at most every MS ms, as the web client\n"
          "               does (0: one per message)\n"
          "  fanout       --messages one at a time to the group, every member with a socket;\n"
          "               the time until all have it\n"
          "  idle         open --counts idle authenticated sockets (e.g. 10000,19000) from\n"
          "               worker processes of --per-proc sockets, each from its own source\n"
          "               address; plazad's RSS (--pid) per socket\n"
          "\n"
          "options:\n"
          "  --users N (500)  --pairs N (100)  --window N (32)  --messages N  --size BYTES (64)\n"
          "  --rate N  --seconds S (10)  --counts N,N  --per-proc N (5000)  --pid PID\n"
          "  --receipts MS  --timeout S (300): the bound of a whole phase\n");
}

enum {
  O_SERVER = 256,
  O_STATE,
  O_USERS,
  O_PAIRS,
  O_WINDOW,
  O_MESSAGES,
  O_SIZE,
  O_RATE,
  O_SECONDS,
  O_COUNTS,
  O_PER_PROC,
  O_PID,
  O_TIMEOUT,
  O_CONNS,
  O_FIRST,
  O_SRC,
  O_RECEIPTS,
  O_HELP
};

static unsigned long num(const char *flag, const char *s, unsigned long min, unsigned long max) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
    bc_die("%s wants a whole number from %lu to %lu, not '%s'", flag, min, max, s);
  return v;
}

static double real(const char *flag, const char *s, double min, double max) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end || !(v >= min && v <= max))
    bc_die("%s wants a number from %g to %g, not '%s'", flag, min, max, s);
  return v;
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (sodium_init() < 0) bc_die("libsodium failed to start");
  /* A socket the server closed must fail a write, not kill the bench. */
  signal(SIGPIPE, SIG_IGN);
  const char *cmd = argv[1];
  const char *server = NULL, *state = NULL, *src = NULL, *counts_s = "10000,19000";
  unsigned long users = 500, conns = 0, first = 0, per_proc = 5000;
  bc_opts_t o = {
      .pairs = 100, .window = 32, .size = 64, .seconds = 10, .fanout_messages = 50, .timeout_s = 300, .receipt_ms = -1};
  bool messages_given = false;
  static const struct option longopts[] = {{"server", required_argument, 0, O_SERVER},
                                           {"state", required_argument, 0, O_STATE},
                                           {"users", required_argument, 0, O_USERS},
                                           {"pairs", required_argument, 0, O_PAIRS},
                                           {"window", required_argument, 0, O_WINDOW},
                                           {"messages", required_argument, 0, O_MESSAGES},
                                           {"size", required_argument, 0, O_SIZE},
                                           {"rate", required_argument, 0, O_RATE},
                                           {"seconds", required_argument, 0, O_SECONDS},
                                           {"counts", required_argument, 0, O_COUNTS},
                                           {"per-proc", required_argument, 0, O_PER_PROC},
                                           {"pid", required_argument, 0, O_PID},
                                           {"timeout", required_argument, 0, O_TIMEOUT},
                                           {"conns", required_argument, 0, O_CONNS},
                                           {"first", required_argument, 0, O_FIRST},
                                           {"src", required_argument, 0, O_SRC},
                                           {"receipts", required_argument, 0, O_RECEIPTS},
                                           {"help", no_argument, 0, O_HELP},
                                           {0, 0, 0, 0}};
  optind = 2;
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case O_SERVER:
        server = optarg;
        break;
      case O_STATE:
        state = optarg;
        break;
      case O_USERS:
        users = num("--users", optarg, 2, 500);
        break;
      case O_PAIRS:
        o.pairs = (unsigned)num("--pairs", optarg, 1, 10000);
        break;
      case O_WINDOW:
        o.window = (unsigned)num("--window", optarg, 1, 100000);
        break;
      case O_MESSAGES:
        o.messages = num("--messages", optarg, 1, 100000000);
        messages_given = true;
        break;
      case O_SIZE:
        o.size = (unsigned)num("--size", optarg, BC_TEXT_MIN, BC_TEXT_MAX);
        break;
      case O_RATE:
        o.rate = real("--rate", optarg, 1, 10000000);
        break;
      case O_SECONDS:
        o.seconds = real("--seconds", optarg, 0.1, 3600);
        break;
      case O_COUNTS:
        counts_s = optarg;
        break;
      case O_PER_PROC:
        per_proc = num("--per-proc", optarg, 1, 19000);
        break;
      case O_PID:
        o.server_pid = (int)num("--pid", optarg, 1, 1u << 30);
        break;
      case O_TIMEOUT:
        o.timeout_s = real("--timeout", optarg, 1, 7200);
        break;
      case O_CONNS:
        conns = num("--conns", optarg, 1, 60000);
        break;
      case O_FIRST:
        first = num("--first", optarg, 0, 1000000);
        break;
      case O_SRC:
        src = optarg;
        break;
      case O_RECEIPTS:
        o.receipt_ms = (long)num("--receipts", optarg, 0, 60000);
        break;
      case O_HELP:
        usage(stdout);
        return 0;
      default:
        usage(stderr);
        return 2;
    }
  }
  if (optind < argc) bc_die("unexpected argument '%s'", argv[optind]);
  if (server == NULL || state == NULL) bc_die("--server and --state are needed (see --help)");
  if (bc_parse_addr(server, &o.server) < 0) bc_die("--server wants IPv4 HOST:PORT, not '%s'", server);

  if (strcmp(cmd, "setup") == 0) {
    bc_state_t st;
    if (2 * o.pairs + 1 > users) bc_die("--pairs %u needs at least %u --users", o.pairs, 2 * o.pairs + 1);
    bc_setup(&o.server, (unsigned)users, o.pairs, &st);
    bc_state_save(&st, state);
    bc_state_free(&st);
    return 0;
  }
  if (strcmp(cmd, "idle") == 0) {
    if (o.server_pid == 0) bc_die("idle needs --pid of plazad");
    unsigned counts[16], n_counts = 0;
    char *copy = strdup(counts_s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
      if (n_counts == 16) bc_die("--counts: at most 16");
      counts[n_counts] = (unsigned)num("--counts", t, 1, 1000000);
      if (n_counts && counts[n_counts] <= counts[n_counts - 1]) bc_die("--counts must increase");
      n_counts++;
    }
    free(copy);
    if (n_counts == 0) bc_die("--counts is empty");
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) bc_die("cannot find my own executable");
    self[n] = '\0';
    return bc_run_idle(&o.server, state, self, o.server_pid, counts, n_counts, (unsigned)per_proc);
  }

  bc_state_t st;
  bc_state_load(&st, state);
  o.st = &st;
  int rc;
  if (strcmp(cmd, "throughput") == 0) {
    if (!messages_given) o.messages = 200000;
    rc = bc_run_throughput(&o);
  } else if (strcmp(cmd, "latency") == 0) {
    if (o.rate <= 0) bc_die("latency needs --rate");
    rc = bc_run_latency(&o);
  } else if (strcmp(cmd, "fanout") == 0) {
    if (messages_given) o.fanout_messages = (unsigned)(o.messages > 100000 ? 100000 : o.messages);
    rc = bc_run_fanout(&o);
  } else if (strcmp(cmd, "idle-worker") == 0) {
    if (conns == 0 || src == NULL) bc_die("idle-worker needs --conns and --src");
    rc = bc_run_idle_worker(&o.server, &st, (unsigned)conns, (unsigned)first, src);
  } else {
    bc_die("unknown command '%s' (see --help)", cmd);
  }
  bc_state_free(&st);
  return rc;
}
