/* bench_chat: server memory per idle authenticated WebSocket: worker processes hold the sockets, the parent reads
 * plazad's RSS. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "bench.h"

extern char **environ;

/* Handshakes under way at once in one worker: the server's listen backlog
 * is 1024 and several workers connect side by side. */
#define WORKER_CONNECTING 128
#define WORKER_READY_TIMEOUT_MS 180000
#define MAX_WORKERS 64
/* After the last socket is ready, the server's RSS is read this much later. */
#define SETTLE_S 2

/* ---- the worker: holds conns sockets until its stdin closes ---- */

typedef struct worker_s worker_t;

typedef struct {
  worker_t *w;
  unsigned idx;
  bool ready;
  bc_ws_t *ws;
} idle_conn_t;

struct worker_s {
  bc_loop_t l;
  const bc_state_t *st;
  struct sockaddr_in server, src;
  idle_conn_t *conns;
  unsigned n, first, next, connecting, n_ready, closed_early;
  bool stopping, all_ready;
  char failure[200];
  uv_pipe_t in;
  uv_timer_t deadline;
};

static void worker_stop(worker_t *w, const char *failure) {
  if (w->stopping) return;
  w->stopping = true;
  if (failure && !w->failure[0]) snprintf(w->failure, sizeof(w->failure), "%s", failure);
  uv_timer_stop(&w->deadline);
  if (uv_is_active((uv_handle_t *)&w->in)) uv_read_stop((uv_stream_t *)&w->in);
  for (unsigned i = 0; i < w->n; i++)
    if (w->conns[i].ws) bc_ws_close(w->conns[i].ws);
}

static const bc_ws_cbs_t idle_cbs;

static void connect_more(worker_t *w) {
  while (!w->stopping && w->next < w->n && w->connecting < WORKER_CONNECTING) {
    idle_conn_t *c = &w->conns[w->next];
    c->w = w;
    c->idx = w->next++;
    w->connecting++;
    c->ws = bc_ws_connect(&w->l, &w->server, &w->src, &idle_cbs, c);
  }
}

static void idle_open(bc_ws_t *ws) {
  idle_conn_t *c = bc_ws_udata(ws);
  char frame[256];
  int n = snprintf(frame, sizeof(frame), "{\"type\":\"hello\",\"token\":\"%s\",\"since\":9007199254740991}",
                   c->w->st->users[(c->w->first + c->idx) % c->w->st->n_users].token);
  bc_ws_send_text(ws, frame, (size_t)n);
}

static void idle_text(bc_ws_t *ws, const char *data, size_t len) {
  idle_conn_t *c = bc_ws_udata(ws);
  worker_t *w = c->w;
  if (c->ready) return; /* presence and other pushes: an idle device only reads them */
  bc_frame_t f;
  if (bc_frame_scan(data, len, &f) < 0 || !bc_span_eq(f.type, "ready")) {
    char why[200];
    snprintf(why, sizeof(why), "hello was answered with %.*s", (int)(len > 120 ? 120 : len), data);
    worker_stop(w, why);
    return;
  }
  c->ready = true;
  w->connecting--;
  if (++w->n_ready == w->n) {
    w->all_ready = true;
    uv_timer_stop(&w->deadline);
    printf("ready %u\n", w->n);
    fflush(stdout);
  }
  connect_more(w);
}

static void idle_close(bc_ws_t *ws, int error, int close_code) {
  idle_conn_t *c = bc_ws_udata(ws);
  worker_t *w = c->w;
  c->ws = NULL;
  if (w->stopping) return;
  if (w->all_ready) {
    w->closed_early++; /* counted, and said at the end: the figure would be off */
    return;
  }
  char why[200];
  snprintf(why, sizeof(why), "socket %u closed before ready: %s, close code %d", c->idx,
           error ? uv_strerror(error) : "by the server", close_code);
  worker_stop(w, why);
}

static const bc_ws_cbs_t idle_cbs = {idle_open, idle_text, idle_close};

static void stdin_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char b[256];
  *buf = uv_buf_init(b, sizeof(b));
}

static void stdin_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  if (nread < 0) worker_stop(s->data, NULL); /* the parent is done measuring */
}

static void worker_deadline(uv_timer_t *t) { worker_stop(t->data, "the sockets were not all ready in time"); }

int bc_run_idle_worker(const struct sockaddr_in *server, const bc_state_t *st, unsigned conns, unsigned first,
                       const char *src_ip) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < conns + 64)
    bc_die("a worker may open %lu files, fewer than %u sockets: use a smaller --per-proc", (unsigned long)rl.rlim_cur,
           conns);
  worker_t *w = bc_xcalloc(1, sizeof(*w));
  w->st = st;
  w->server = *server;
  w->n = conns;
  w->first = first;
  if (uv_ip4_addr(src_ip, 0, &w->src) < 0) bc_die("--src %s is not an IPv4 address", src_ip);
  w->conns = bc_xcalloc(conns, sizeof(*w->conns));
  bc_loop_init(&w->l);
  uv_pipe_init(&w->l.uv, &w->in, 0);
  w->in.data = w;
  if (uv_pipe_open(&w->in, 0) < 0) bc_die("stdin is not a pipe");
  uv_read_start((uv_stream_t *)&w->in, stdin_alloc, stdin_read);
  uv_timer_init(&w->l.uv, &w->deadline);
  w->deadline.data = w;
  uv_timer_start(&w->deadline, worker_deadline, WORKER_READY_TIMEOUT_MS, 0);
  connect_more(w);
  uv_run(&w->l.uv, UV_RUN_DEFAULT);
  /* Only the pipe and the timer are left once the sockets are closed. */
  uv_close((uv_handle_t *)&w->in, NULL);
  uv_close((uv_handle_t *)&w->deadline, NULL);
  bc_loop_close(&w->l);
  int rc = 0;
  if (w->failure[0]) {
    printf("failed %s\n", w->failure);
    rc = 1;
  } else {
    printf("closed_early %u\n", w->closed_early);
  }
  fflush(stdout);
  free(w->conns);
  free(w);
  return rc;
}

/* ---- the parent ---- */

typedef struct {
  pid_t pid;
  int to, from; /* the worker's stdin and stdout */
  FILE *out;
} child_t;

static void spawn_worker(child_t *c, const char *self_exe, const char *server, const char *state_path, unsigned conns,
                         unsigned first, unsigned index) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) bc_die("pipe: %s", strerror(errno));
  char conns_s[16], first_s[16], src[32];
  snprintf(conns_s, sizeof(conns_s), "%u", conns);
  snprintf(first_s, sizeof(first_s), "%u", first);
  /* A source address of its own per worker: each gives about 28,000
   * ephemeral ports towards the one server address. */
  snprintf(src, sizeof(src), "127.0.%u.%u", (index + 2) / 250, (index + 2) % 250);
  char *argv[] = {(char *)self_exe,
                  "idle-worker",
                  "--server",
                  (char *)server,
                  "--state",
                  (char *)state_path,
                  "--conns",
                  conns_s,
                  "--first",
                  first_s,
                  "--src",
                  src,
                  NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  int rc = posix_spawn(&c->pid, self_exe, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) bc_die("cannot start a worker: %s", strerror(rc));
  close(in[0]);
  close(out[1]);
  c->to = in[1];
  c->from = out[0];
  c->out = fdopen(c->from, "r");
  if (c->out == NULL) bc_die("fdopen failed");
}

/* Reads one line from the worker, waiting at most timeout_ms. */
static bool read_line(child_t *c, char *line, size_t cap, int timeout_ms) {
  struct pollfd p = {c->from, POLLIN, 0};
  int r;
  do
    r = poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r <= 0) return false;
  return fgets(line, (int)cap, c->out) != NULL;
}

int bc_run_idle(const struct sockaddr_in *server, const char *state_path, const char *self_exe, int pid,
                const unsigned *counts, unsigned n_counts, unsigned per_proc) {
  char server_s[64], ip[INET_ADDRSTRLEN];
  uv_ip4_name(server, ip, sizeof(ip));
  snprintf(server_s, sizeof(server_s), "%s:%u", ip, ntohs(server->sin_port));
  child_t kids[MAX_WORKERS];
  unsigned n_kids = 0, open = 0;
  int rc = 0;
  sleep(1);
  long rss0 = bc_rss_kib(pid);
  if (rss0 < 0) bc_die("cannot read the RSS of process %d", pid);
  for (unsigned t = 0; t < n_counts && rc == 0; t++) {
    unsigned first_new = n_kids;
    while (open < counts[t]) {
      unsigned n = counts[t] - open < per_proc ? counts[t] - open : per_proc;
      if (n_kids == MAX_WORKERS) bc_die("more than %d workers: raise --per-proc", MAX_WORKERS);
      spawn_worker(&kids[n_kids], self_exe, server_s, state_path, n, open, n_kids);
      n_kids++;
      open += n;
    }
    for (unsigned k = first_new; k < n_kids; k++) {
      char line[256];
      if (!read_line(&kids[k], line, sizeof(line), WORKER_READY_TIMEOUT_MS + 5000) || strncmp(line, "ready ", 6) != 0) {
        line[strcspn(line, "\n")] = '\0';
        printf("idle conns=%u failed=\"worker %u: %s\"\n", counts[t], k, line[0] ? line : "no answer");
        rc = 1;
        break;
      }
    }
    if (rc) break;
    sleep(SETTLE_S);
    long rss = bc_rss_kib(pid);
    printf("idle conns=%u workers=%u rss_before_kib=%ld rss_kib=%ld per_conn_bytes=%.0f\n", counts[t], n_kids, rss0,
           rss, (double)(rss - rss0) * 1024.0 / counts[t]);
    fflush(stdout);
  }
  /* Closing their stdin tells the workers to close their sockets and say
   * whether any closed while the server's memory was read. */
  unsigned closed_early = 0;
  for (unsigned k = 0; k < n_kids; k++)
    close(kids[k].to);
  for (unsigned k = 0; k < n_kids; k++) {
    char line[256] = "";
    unsigned n;
    if (read_line(&kids[k], line, sizeof(line), 60000) && sscanf(line, "closed_early %u", &n) == 1)
      closed_early += n;
    else if (rc == 0) {
      fprintf(stderr, "bench_chat: worker %u ended with: %s", k, line[0] ? line : "nothing\n");
      rc = 1;
    }
    fclose(kids[k].out);
    int status;
    waitpid(kids[k].pid, &status, 0);
  }
  if (closed_early) {
    printf("idle failed=\"%u sockets closed while idle\"\n", closed_early);
    rc = 1;
  }
  return rc;
}
