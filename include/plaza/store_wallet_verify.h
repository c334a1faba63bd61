/* The wallet ledger's invariants checked in a few passes over its large tables (store/wallet_verify.c). */
#ifndef PLAZA_STORE_WALLET_VERIFY_H
#define PLAZA_STORE_WALLET_VERIFY_H

#include "plaza/store_wallet.h"

/* Checks every invariant of the wallet's ledger and calls cb once per
 * violation (the kinds PZ_VERIFY_* of store_wallet.h, PZ_VERIFY_DAILY_OUT
 * included): each transaction's entries sum to zero per currency and are at
 * least two; each cached balance is the sum of its account's entries; each
 * currency's balances sum to zero; no user balance is negative; escrow holds
 * what pending transfers, withdrawals and active red packets owe; each
 * operation has the idempotency record of its key and no key started two;
 * red packets' counters match their claims; each daily counter covers the
 * debits of its day, those of transaction kinds in exempt (",name,name,",
 * "" for none) left out. *n_txns is the number of ledger transactions.
 *
 * The ledger's tables are read once each: entries and transactions in one
 * merged pass, the idempotency records in another. On the writer (the
 * connection holds the write lock, so nothing can commit meanwhile: call it
 * before the batch writes anything) the second pass runs on a read
 * connection of its own on another thread, beside the first; on a reader
 * both run in turn on the job's snapshot. cb is called on the calling
 * thread only. Returns 0, or the first negative code of cb or the database. */
int pz_store_wallet_ledger_verify(pz_db_t *db, const char *exempt, pz_store_wallet_violation_cb cb, void *arg,
                                  int64_t *n_txns, pz_err_t *err);

#endif
