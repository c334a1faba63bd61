/* `plazad ledger verify`: the ledger's invariants over the whole database, one line per violation. */
#include <inttypes.h>
#include <stdio.h>
#include "plaza/merchant.h"
#include "plaza/store_wallet_verify.h"
#include "plaza/wallet.h"

typedef struct {
  FILE *out;
  unsigned n;
} report_t;

static int violation(void *arg, const pz_wallet_violation_t *v, pz_err_t *err) {
  report_t *r = arg;
  FILE *o = r->out;
  r->n++;
  switch (v->kind) {
    case PZ_VERIFY_TXN_UNBALANCED:
      fprintf(o, "unbalanced transaction %" PRId64 ": its %s entries sum to %" PRId64 ", not 0\n", v->id, v->currency,
              v->a);
      break;
    case PZ_VERIFY_TXN_SHORT:
      fprintf(o, "transaction %" PRId64 " has %" PRId64 " entries; every movement has two\n", v->id, v->a);
      break;
    case PZ_VERIFY_TXN_MISSING:
      fprintf(o, "transaction %" PRId64 " has %" PRId64 " entries but no transaction row\n", v->id, v->a);
      break;
    case PZ_VERIFY_ENTRY_ACCOUNT:
      fprintf(o, "an entry of transaction %" PRId64 " names account %" PRId64 ", which does not exist\n", v->id, v->a);
      break;
    case PZ_VERIFY_BALANCE_CACHE:
      fprintf(o,
              "account %" PRId64 " (user %" PRId64 ", %s): cached balance %" PRId64 " but its entries sum to %" PRId64
              "\n",
              v->id, v->user_id, v->currency, v->a, v->b);
      break;
    case PZ_VERIFY_CURRENCY_SUM:
      fprintf(o, "currency %s: all balances sum to %" PRId64 ", not 0\n", v->currency, v->a);
      break;
    case PZ_VERIFY_NEGATIVE:
      fprintf(o, "account %" PRId64 " of user %" PRId64 " is negative: %" PRId64 " %s\n", v->id, v->user_id, v->a,
              v->currency);
      break;
    case PZ_VERIFY_ESCROW:
      fprintf(o, "currency %s: escrow holds %" PRId64 " but pending transfers and withdrawals add up to %" PRId64 "\n",
              v->currency, v->a, v->b);
      break;
    case PZ_VERIFY_KEY_REUSED:
      fprintf(o, "idempotency key \"%s\" of user %" PRId64 " started %" PRId64 " operations\n", v->key, v->user_id,
              v->a);
      break;
    case PZ_VERIFY_KEY_MISSING:
      fprintf(o, "operation %" PRId64 " of user %" PRId64 " has no idempotency record for its key \"%s\"\n", v->id,
              v->user_id, v->key);
      break;
    case PZ_VERIFY_RED_PACKET:
      fprintf(o,
              "red packet %" PRId64 " of user %" PRId64 " (%s): says %" PRId64
              " was claimed, its claims add up to %" PRId64 " (or their count, or a finished one's total, differs)\n",
              v->id, v->user_id, v->currency, v->a, v->b);
      break;
    case PZ_VERIFY_DAILY_OUT:
      fprintf(o, "user %" PRId64 " (%s): the daily limit counter holds %" PRId64 " but that day's debits add up to %" PRId64 "\n",
              v->user_id, v->currency, v->a, v->b);
      break;
    default:
      fprintf(o, "violation of kind %d\n", v->kind);
  }
  return 0;
}

int pz_wallet_verify(pz_db_t *db, FILE *out, unsigned *n_violations, int64_t *n_txns, pz_err_t *err) {
  report_t r = {out, 0};
  /* The kinds the daily limit leaves out, as the store's filter spells them. */
  pz_buf_t exempt = {0};
  for (int k = 0; k < PZ_TXN__COUNT; k++)
    if (!pz_wallet_limit_counts(k)) pz_buf_printf(&exempt, "%s%s,", exempt.len ? "" : ",", pz_store_wallet_txn_name(k));
  pz_buf_append(&exempt, "", 1);
  int rc = pz_store_wallet_ledger_verify(db, exempt.data, violation, &r, n_txns, err);
  pz_buf_free(&exempt);
  *n_violations = r.n;
  if (rc == 0) rc = pz_wallet_merchant_verify(db, out, n_violations, err);
  return rc;
}
