/* Argon2id password hashing, and the bounded queue that runs it on libuv's thread pool. */
#include <sodium.h>
#include "plaza/auth.h"

_Static_assert(crypto_pwhash_STRBYTES == PZ_PASSWORD_HASH_MAX + 1, "PZ_PASSWORD_HASH_MAX must fit an Argon2 string");

int pz_auth_password_hash(pz_str_t pw, char out[PZ_PASSWORD_HASH_MAX + 1]) {
  /* The interactive limits (2 passes over 64 MiB) cost about a tenth of a
   * second: bearable once per log-in, ruinous for anyone trying guesses
   * against a stolen table. */
  if (crypto_pwhash_str_alg(out, pw.ptr ? pw.ptr : "", pw.len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                            crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    out[0] = '\0';
    return PZ_ENOMEM;
  }
  return 0;
}

int pz_auth_password_verify(const char *hash, pz_str_t pw) {
  return crypto_pwhash_str_verify(hash, pw.ptr ? pw.ptr : "", pw.len) == 0 ? 0 : PZ_EUNAUTH;
}

/* ---- the queue ---- */

struct pz_auth_pwq_s {
  uv_loop_t *loop;
  unsigned max_running, max_waiting;
  unsigned running, waiting;
  pz_auth_pw_job_t *head, *tail; /* waiting jobs, oldest first */
};

pz_auth_pwq_t *pz_auth_pwq_new(uv_loop_t *loop, unsigned max_running, unsigned max_waiting) {
  pz_auth_pwq_t *q = pz_calloc(1, sizeof(*q));
  q->loop = loop;
  q->max_running = max_running ? max_running : 1;
  q->max_waiting = max_waiting;
  return q;
}

void pz_auth_pwq_free(pz_auth_pwq_t *q) {
  if (q == NULL) return;
  PZ_ASSERT(q->running == 0 && q->waiting == 0);
  pz_free(q);
}

unsigned pz_auth_pwq_pending(const pz_auth_pwq_t *q) { return q->running + q->waiting; }

static void pw_work(uv_work_t *w) {
  pz_auth_pw_job_t *job = w->data;
  if (job->op == PZ_AUTH_PW_HASH) {
    job->rc = pz_auth_password_hash(job->password, job->hash_out);
  } else if (job->hash != NULL) {
    job->rc = pz_auth_password_verify(job->hash, job->password);
  } else {
    /* Unknown user: a hash with the same parameters costs what a
     * verification costs, and then the answer is the same "no". */
    char scratch[PZ_PASSWORD_HASH_MAX + 1];
    pz_auth_password_hash(job->password, scratch);
    job->rc = PZ_EUNAUTH;
  }
}

static void pw_after(uv_work_t *w, int status);

static void start_waiting(pz_auth_pwq_t *q) {
  while (q->head && q->running < q->max_running) {
    pz_auth_pw_job_t *job = q->head;
    q->head = job->next;
    if (q->head == NULL) q->tail = NULL;
    job->next = NULL;
    q->waiting--;
    q->running++;
    job->work.data = job;
    int rc = uv_queue_work(q->loop, &job->work, pw_work, pw_after);
    PZ_ASSERT(rc == 0); /* fails only for a NULL callback */
  }
}

static void pw_after(uv_work_t *w, int status) {
  pz_auth_pw_job_t *job = w->data;
  pz_auth_pwq_t *q = job->queue;
  q->running--;
  if (status == UV_ECANCELED) job->rc = PZ_ESHUTDOWN;
  start_waiting(q);
  job->done(job);
}

int pz_auth_pwq_submit(pz_auth_pwq_t *q, pz_auth_pw_job_t *job) {
  PZ_ASSERT(job->op == PZ_AUTH_PW_HASH || job->op == PZ_AUTH_PW_VERIFY);
  PZ_ASSERT(job->done != NULL);
  if (q->running >= q->max_running && q->waiting >= q->max_waiting) return PZ_EUNAVAIL;
  job->queue = q;
  job->next = NULL;
  job->rc = 0;
  if (q->tail)
    q->tail->next = job;
  else
    q->head = job;
  q->tail = job;
  q->waiting++;
  start_waiting(q);
  return 0;
}
