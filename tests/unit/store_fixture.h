/* For the unit tests that run domain rules against a real store: a job run on its own, and a user registered in one
 * call. */
#ifndef PLAZA_STORE_FIXTURE_H
#define PLAZA_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include "plaza/auth.h"
#include "plaza/chat.h"
#include "plaza/id.h"
#include "plaza/store.h"
#include "plaza/wallet.h"
#include "test.h"

/* Opens *st, a store whose jobs run synchronously (pz_store_run_sync), in
 * a fresh directory named after name; the directory (pz_fix_close takes
 * it), or NULL with the reason on stderr. */
static inline char *pz_fix_open(pz_store_t **st, const char *name) {
  char *dir = pz_test_tmpdir(name);
  pz_err_t err = {0};
  if (dir == NULL || pz_store_open_sync(st, dir, &err) < 0) {
    fprintf(stderr, "cannot open a store: %s\n", dir ? pz_err_message(&err) : "no directory");
    free(dir);
    return NULL;
  }
  return dir;
}

/* Closes st and removes its directory dir. */
static inline void pz_fix_close(pz_store_t *st, char *dir) {
  pz_store_close(st);
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  free(dir);
}

/* Runs run as one write job with data, in a batch of its own; *err (may
 * be NULL) gets the job's error. */
static inline int pz_fix_run(pz_store_t *st, pz_store_run_fn run, void *data, pz_err_t *err) {
  pz_store_job_t job = {0};
  job.run = run;
  job.data = data;
  int rc = pz_store_run_sync(st, &job);
  if (err) *err = job.err;
  return rc;
}

typedef struct {
  pz_user_rec_t user;
  pz_session_rec_t session;
  char token[PZ_TOKEN_LEN + 1];
} pz_fix_signup_t;

static inline int pz_fix_signup_run(pz_db_t *db, pz_store_job_t *job) {
  pz_fix_signup_t *s = job->data;
  /* A well-formed hash no password matches: these tests never sign in. */
  return pz_auth_register(db, &s->user, "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA", &s->session, &job->err);
}

/* Registers user name, shown as display (NULL: as name), with a first
 * session, at now; returns its id (and the check fails if it could not). */
static inline int64_t pz_fix_user(pz_store_t *st, const char *name, const char *display, int64_t now) {
  pz_fix_signup_t s;
  memset(&s, 0, sizeof(s));
  s.user.id = pz_id_next();
  snprintf(s.user.username, sizeof(s.user.username), "%s", name);
  snprintf(s.user.display_name, sizeof(s.user.display_name), "%s", display ? display : name);
  s.user.created_at = now;
  pz_auth_session_init(&s.session, s.token, s.user.id, PZ_STR("test"), "127.0.0.1", now);
  CHECK_EQ_INT(pz_fix_run(st, pz_fix_signup_run, &s, NULL), 0);
  return s.user.id;
}

typedef struct {
  int64_t a, b, now;
  pz_conv_rec_t conv;
} pz_fix_pair_t;

static inline int pz_fix_pair_run(pz_db_t *db, pz_store_job_t *job) {
  pz_fix_pair_t *p = job->data;
  bool created;
  int rc = pz_store_contact_add(db, p->a, p->b, p->now, &job->err);
  return rc < 0 ? rc : pz_chat_direct_open(db, p->a, p->b, pz_id_next(), p->now, &p->conv, &created, &job->err);
}

/* Makes a and b contacts and opens their direct chat, at now; returns its
 * id (and the check fails if it could not). */
static inline int64_t pz_fix_direct_chat(pz_store_t *st, int64_t a, int64_t b, int64_t now) {
  pz_fix_pair_t p = {a, b, now, {0}};
  CHECK_EQ_INT(pz_fix_run(st, pz_fix_pair_run, &p, NULL), 0);
  return p.conv.id;
}

/* The wallet's settings of the wallet tests: USD and EUR, a random PIN
 * secret, the default transfer expiry. */
static inline void pz_fix_wallet_config(pz_wallet_config_t *cfg) {
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_wallet_currencies_parse("USD,EUR", &cfg->currencies, &err), 0);
  randombytes_buf(cfg->pin_secret, sizeof(cfg->pin_secret));
  cfg->transfer_ttl_ms = PZ_WALLET_TRANSFER_TTL_MS;
}

/* *f: a new top-up of amount currency for user through the sandbox
 * provider, under key (NULL: none). */
static inline void pz_fix_topup_rec(pz_wallet_funding_rec_t *f, int64_t user, int64_t amount, const char *currency,
                                    const char *key) {
  memset(f, 0, sizeof(*f));
  f->id = pz_id_next();
  f->user_id = user;
  f->kind = PZ_FUNDING_TOPUP;
  f->amount = amount;
  snprintf(f->currency, sizeof(f->currency), "%s", currency);
  snprintf(f->provider, sizeof(f->provider), "sandbox");
  if (key) snprintf(f->idem_key, sizeof(f->idem_key), "%s", key);
}

#endif
