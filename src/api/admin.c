/* /v1/admin: operator endpoints, behind a token the operator configures (--admin-token-file); absent otherwise. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include "api/internal.h"
#include "plaza/wallet.h"

typedef struct {
  pz__api_ctx_t base;
} admin_ctx_t;

/* The operator's token, not a user's session: compared by hash in
 * constant time. Answers 404 when no token is configured, so that a
 * server without one shows no admin surface at all. Returns true when
 * the request may go on; otherwise it has been answered. */
static bool admin_check(pz_api_t *api, pz_req_t *req) {
  pz_err_t err = {0};
  if (!api->admin_enabled) {
    pz_err_set(&err, PZ_ENOTFOUND, NULL, "no route for this path");
    pz__api_fail(req, &err);
    return false;
  }
  pz_str_t token;
  uint8_t hash[crypto_generichash_BYTES];
  if (pz_auth_bearer(pz_req_header(req, "Authorization"), &token) < 0 || token.len == 0 ||
      crypto_generichash(hash, sizeof(hash), (const unsigned char *)token.ptr, token.len, NULL, 0) != 0 ||
      sodium_memcmp(hash, api->admin_hash, sizeof(hash)) != 0) {
    pz_err_set(&err, PZ_EUNAUTH, NULL, "this endpoint takes the operator's admin token");
    pz__api_fail(req, &err);
    return false;
  }
  return true;
}

/* On a reader: one snapshot of the whole ledger, so the check neither sees
 * half of a movement nor holds up the writer while it runs. */
static int verify_run(pz_db_t *db, pz_store_job_t *job) {
  admin_ctx_t *c = job->data;
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  if (out == NULL) return pz_err_set(&job->err, PZ_ENOMEM, NULL, NULL);
  unsigned n_violations = 0;
  int64_t n_txns = 0;
  int rc = pz_wallet_verify(db, out, &n_violations, &n_txns, &job->err);
  fclose(out);
  if (rc == 0) {
    json_t *list = json_array();
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
      nl = strchr(line, '\n');
      json_array_append_new(list, json_stringn(line, nl ? (size_t)(nl - line) : strlen(line)));
    }
    c->base.out = json_pack("{s:b,s:I,s:I,s:o}", "ok", n_violations == 0, "transactions", (json_int_t)n_txns,
                            "violation_count", (json_int_t)n_violations, "violations", list);
  }
  free(text);
  return rc;
}

static void ledger_verify(pz_req_t *req) {
  pz_api_t *api = req->route_data;
  if (!admin_check(api, req)) return;
  if (api->wallet == NULL) {
    pz_err_t err = {0};
    pz_err_set(&err, PZ_ENOTFOUND, NULL, "the wallet is not enabled on this server");
    pz__api_fail(req, &err);
    return;
  }
  admin_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), verify_run);
  pz__api_read(&c->base);
}

void pz__api_admin_routes(pz_api_t *api, pz_router_t *r) {
  api->admin_enabled = api->cfg.admin_token != NULL && api->cfg.admin_token[0] != '\0';
  if (api->admin_enabled)
    crypto_generichash(api->admin_hash, sizeof(api->admin_hash), (const unsigned char *)api->cfg.admin_token,
                       strlen(api->cfg.admin_token), NULL, 0);
  pz_router_add(r, PZ_HTTP_GET, "/v1/admin/ledger/verify", ledger_verify, api);
}
