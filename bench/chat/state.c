/* bench_chat: the state file that carries users, tokens and conversations from setup to the later phases and workers.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"

/* Format, one record a line:
 *   users N / u ID TOKEN (N times) / pairs P / p CONV_ID (P times) / group CONV_ID */

void bc_state_save(const bc_state_t *st, const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) bc_die("cannot write %s", path);
  FILE *f = fdopen(fd, "w");
  if (f == NULL) bc_die("cannot write %s", path);
  fprintf(f, "users %u\n", st->n_users);
  for (unsigned i = 0; i < st->n_users; i++)
    fprintf(f, "u %s %s\n", st->users[i].id, st->users[i].token);
  fprintf(f, "pairs %u\n", st->n_pairs);
  for (unsigned i = 0; i < st->n_pairs; i++)
    fprintf(f, "p %s\n", st->pair_conv[i]);
  fprintf(f, "group %s\n", st->group_conv);
  if (fclose(f) != 0) bc_die("cannot write %s", path);
}

/* Copies a token of at most cap - 1 bytes. */
static void field(char *dst, size_t cap, const char *src, const char *path) {
  size_t n = strlen(src);
  if (n == 0 || n >= cap) bc_die("%s: a field of bad length", path);
  memcpy(dst, src, n + 1);
}

void bc_state_load(bc_state_t *st, const char *path) {
  memset(st, 0, sizeof(*st));
  FILE *f = fopen(path, "re");
  if (f == NULL) bc_die("cannot read %s (run setup first)", path);
  char line[256], a[128], b[128];
  unsigned n_u = 0, n_p = 0;
  bool group = false;
  while (fgets(line, sizeof(line), f)) {
    unsigned n;
    if (sscanf(line, "users %u", &n) == 1) {
      if (st->users || n == 0 || n > 100000) bc_die("%s: bad users line", path);
      st->n_users = n;
      st->users = bc_xcalloc(n, sizeof(*st->users));
    } else if (sscanf(line, "pairs %u", &n) == 1) {
      if (st->pair_conv || n > 50000) bc_die("%s: bad pairs line", path);
      st->n_pairs = n;
      st->pair_conv = bc_xcalloc(n ? n : 1, sizeof(*st->pair_conv));
    } else if (sscanf(line, "u %127s %127s", a, b) == 2) {
      if (n_u >= st->n_users) bc_die("%s: more users than announced", path);
      field(st->users[n_u].id, sizeof(st->users[n_u].id), a, path);
      field(st->users[n_u].token, sizeof(st->users[n_u].token), b, path);
      n_u++;
    } else if (sscanf(line, "p %127s", a) == 1) {
      if (n_p >= st->n_pairs) bc_die("%s: more pairs than announced", path);
      field(st->pair_conv[n_p], sizeof(st->pair_conv[n_p]), a, path);
      n_p++;
    } else if (sscanf(line, "group %127s", a) == 1) {
      field(st->group_conv, sizeof(st->group_conv), a, path);
      group = true;
    } else {
      bc_die("%s: unexpected line", path);
    }
  }
  fclose(f);
  if (n_u != st->n_users || n_p != st->n_pairs || !group || st->n_users == 0) bc_die("%s: incomplete", path);
  if (2 * st->n_pairs + 1 > st->n_users) bc_die("%s: more pairs than users", path);
}

void bc_state_free(bc_state_t *st) {
  free(st->users);
  free(st->pair_conv);
  memset(st, 0, sizeof(*st));
}
