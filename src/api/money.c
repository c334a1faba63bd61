/* The requests that move money (wallet.c, red_packets.c): their idempotent answers, kept refusals and endings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/internal.h"
#include "plaza/id.h"

static void money_release(void *data) {
  pz__api_money_t *m = data;
  free(m->answer);
  m->answer = NULL;
  pz__api_events_release(&m->events);
}

void *pz__api_money_new(pz_req_t *req, size_t size, pz_store_run_fn run) {
  PZ_ASSERT(size >= sizeof(pz__api_money_t));
  pz__api_money_t *m = pz__api_ctx_new(req, size, run);
  m->cfg = m->base.api->wallet;
  m->me = req->user_id;
  m->now = pz_now_ms();
  pz_arena_on_reset(req->arena, money_release, m);
  return m;
}

void pz__api_money_rerun(pz_store_job_t *job) {
  pz__api_money_t *m = job->data;
  money_release(m); /* the answer and the events */
  m->answer_len = 0;
  m->answer_status = 0;
  m->failed = false;
  m->fail = (pz_err_t){0};
  m->retry_after_s = 0;
  json_decref(m->base.out);
  m->base.out = NULL;
}

int pz__api_money_keep(pz_db_t *db, pz__api_money_t *m, int status, char *text, int64_t ref_id, pz_err_t *err) {
  if (text == NULL) return pz_err_set(err, PZ_ENOMEM, NULL, NULL);
  m->answer = text;
  m->answer_len = strlen(text);
  m->answer_status = status;
  if (!m->has_key) return 0;
  return pz_wallet_idem_save(db, m->me, m->key, m->fp, ref_id, status, pz_str_n(text, m->answer_len), m->now, err);
}

int pz__api_money_save(pz_db_t *db, pz__api_money_t *m, int status, json_t *body, int64_t ref_id, pz_err_t *err) {
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  return pz__api_money_keep(db, m, status, text, ref_id, err);
}

/* The PIN errors authenticate the request rather than decide it: a retry
 * with the right PIN is the same request, so they are not stored. */
static bool pin_error(const pz_err_t *err) {
  const char *code = pz_err_code_str(err);
  return strcmp(code, "wrong_pin") == 0 || strcmp(code, "pin_locked") == 0 || strcmp(code, "pin_not_set") == 0;
}

int pz__api_money_refused(pz_db_t *db, pz__api_money_t *m, int rc, bool keep, pz_err_t *err) {
  if (!keep) return rc;
  if (pin_error(err) || pz_err_http_status(err) >= 500 || !m->has_key) {
    m->failed = true;
    m->fail = *err;
    *err = (pz_err_t){0};
    return 0;
  }
  int status = pz_err_http_status(err);
  json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", pz_err_code_str(err), "message", pz_err_message(err));
  *err = (pz_err_t){0};
  return pz__api_money_save(db, m, status, body, 0, err);
}

int pz__api_answer_replay(const pz_wallet_idem_rec_t *idem, char **answer, size_t *len, int *status, pz_err_t *err) {
  *answer = malloc(idem->body_len + 1);
  if (*answer == NULL) return pz_err_set(err, PZ_ENOMEM, NULL, NULL);
  memcpy(*answer, idem->body, idem->body_len + 1);
  *len = idem->body_len;
  *status = idem->status;
  return 0;
}

int pz__api_money_replay(pz__api_money_t *m, const pz_wallet_idem_rec_t *idem, pz_err_t *err) {
  return pz__api_answer_replay(idem, &m->answer, &m->answer_len, &m->answer_status, err);
}

void pz__api_money_fail(pz_req_t *req, const pz_err_t *err, unsigned retry_after_s) {
  if (err->code == PZ_ELOCKED && retry_after_s) {
    char secs[16];
    snprintf(secs, sizeof(secs), "%u", retry_after_s);
    pz_req_add_header(req, "Retry-After", secs);
  }
  pz__api_fail(req, err);
}

void pz__api_money_done(pz__api_ctx_t *base) {
  pz__api_money_t *m = (pz__api_money_t *)base;
  pz_req_t *req = base->req;
  if (base->job.rc < 0) {
    pz__api_fail(req, &base->job.err);
  } else if (m->failed) {
    pz__api_money_fail(req, &m->fail, m->retry_after_s);
  } else {
    pz__api_events_push(base->api, &m->events);
    pz_req_add_header(req, "Cache-Control", "no-store");
    pz_req_respond(req, m->answer_status, "application/json", m->answer, m->answer_len);
  }
}
