/* Daily outgoing limits by verification tier: the configured table, the allowance of a user today, and the check
 * that pz_wallet_move runs before every debit a user starts. */
#include <stdio.h>
#include <string.h>
#include "plaza/wallet.h"

/* Written once at start, before the first money-moving job is queued (the
 * store's queue orders that write before the writer's reads); read-only after. */
static pz_wallet_limits_t installed;

int pz_wallet_limits_parse(const char *list, pz_wallet_limits_t *out, pz_err_t *err) {
  bool given[PZ_WALLET_TIERS] = {false};
  memset(out, 0, sizeof(*out));
  const char *p = list ? list : "";
  for (;;) {
    while (*p == ' ')
      p++;
    int64_t tier = 0, amount = 0;
    const char *start = p;
    while (*p >= '0' && *p <= '9' && p - start < 2)
      tier = tier * 10 + (*p++ - '0');
    if (p == start || *p != ':' || tier >= PZ_WALLET_TIERS)
      return pz_err_set(err, PZ_EINVAL, NULL,
                        "daily limits are tier:amount pairs separated by commas, tiers 0 to %d, like %s",
                        PZ_WALLET_TIERS - 1, PZ_WALLET_DAILY_LIMITS_DEFAULT);
    start = ++p;
    /* 15 digits: far above any one amount (10^12), far below overflow. */
    while (*p >= '0' && *p <= '9' && p - start < 15)
      amount = amount * 10 + (*p++ - '0');
    if (p == start || (*p >= '0' && *p <= '9'))
      return pz_err_set(err, PZ_EINVAL, NULL,
                        "the daily limit of tier %d must be a whole number of minor units (0: none), at most 15 digits",
                        (int)tier);
    if (given[tier]) return pz_err_set(err, PZ_EINVAL, NULL, "tier %d is given twice", (int)tier);
    given[tier] = true;
    out->daily[tier] = amount;
    while (*p == ' ')
      p++;
    if (*p == '\0') break;
    if (*p != ',') return pz_err_set(err, PZ_EINVAL, NULL, "daily limits are separated by commas");
    p++;
  }
  if (!given[0]) return pz_err_set(err, PZ_EINVAL, NULL, "the daily limits must give tier 0, everyone's first tier");
  /* A tier left out is as strict as the nearest one below it: an
   * operator who adds a tier later has not opened it by accident. */
  for (int t = 1; t < PZ_WALLET_TIERS; t++)
    if (!given[t]) out->daily[t] = out->daily[t - 1];
  return 0;
}

void pz_wallet_limits_set(const pz_wallet_limits_t *limits) { installed = *limits; }

int64_t pz_wallet_limit_of(int tier) {
  if (tier < 0) tier = 0;
  if (tier >= PZ_WALLET_TIERS) tier = PZ_WALLET_TIERS - 1;
  return installed.daily[tier];
}

bool pz_wallet_limit_counts(int kind) {
  /* Every way out of a user's account counts unless listed here: a new
   * kind of payment is limited from its first line of code, and leaving
   * one out takes a decision written down in this switch. A merchant's
   * refund gives a payer back their own money: a limit that held it up
   * would keep money from the person it belongs to. */
  switch (kind) {
    case PZ_TXN_MERCHANT_REFUND:
      return false;
    default:
      return true;
  }
}

/* Where a user of tier with counter d stands on the day of now. */
static void allowance_of(int tier, const pz_wallet_daily_rec_t *d, int64_t now, pz_wallet_allowance_t *out) {
  memset(out, 0, sizeof(*out));
  int64_t today = now / PZ_WALLET_DAY_MS;
  out->resets_at = (today + 1) * PZ_WALLET_DAY_MS;
  out->tier = tier;
  /* A counter of a later day (the clock went back) still binds today. */
  out->used = d->day >= today ? d->amount : 0;
  out->daily = pz_wallet_limit_of(tier);
  out->remaining = out->daily == 0 ? -1 : out->used >= out->daily ? 0 : out->daily - out->used;
}

int pz_wallet_allowance(pz_db_t *db, int64_t user_id, const char *currency, int64_t now, pz_wallet_allowance_t *out,
                        pz_err_t *err) {
  int tier = 0;
  pz_wallet_daily_rec_t d;
  int rc = pz_store_wallet_tier_get(db, user_id, &tier, err);
  if (rc == 0) rc = pz_store_wallet_daily_get(db, user_id, currency, &d, err);
  if (rc < 0) return rc;
  allowance_of(tier, &d, now, out);
  return 0;
}

int pz_wallet_limit_check_counter(int tier, const pz_wallet_daily_rec_t *d, const char *currency, int64_t amount,
                                  int64_t now, pz_err_t *err) {
  pz_wallet_allowance_t a;
  allowance_of(tier, d, now, &a);
  if (a.remaining < 0 || amount <= a.remaining) return 0;
  char limit[32], left[32];
  pz_wallet_amount_format(a.daily, currency, limit);
  pz_wallet_amount_format(a.remaining, currency, left);
  return pz_err_set(err, PZ_EUNPROCESSABLE, "daily_limit_exceeded",
                    "this is over your daily limit of %s %s: %s %s left today", limit, currency, left, currency);
}

int pz_wallet_limit_check(pz_db_t *db, int64_t user_id, const char *currency, int64_t amount, int64_t now,
                          pz_err_t *err) {
  int tier = 0;
  pz_wallet_daily_rec_t d;
  int rc = pz_store_wallet_tier_get(db, user_id, &tier, err);
  if (rc == 0) rc = pz_store_wallet_daily_get(db, user_id, currency, &d, err);
  return rc < 0 ? rc : pz_wallet_limit_check_counter(tier, &d, currency, amount, now, err);
}

int pz_wallet_limit_charge(pz_db_t *db, int64_t user_id, const char *currency, int64_t amount, int64_t now,
                           pz_err_t *err) {
  /* Counted whatever the tier, so that a tier lowered during the day
   * binds at once on what was sent already. The common case is one
   * statement that reads the tier and moves the counter only if it stays
   * within that tier's limit. */
  int64_t caps[PZ_WALLET_TIERS];
  for (int t = 0; t < PZ_WALLET_TIERS; t++)
    caps[t] = installed.daily[t] ? installed.daily[t] : INT64_MAX;
  int64_t day = now / PZ_WALLET_DAY_MS;
  bool charged = false;
  int rc = pz_store_wallet_daily_charge(db, user_id, currency, day, amount, caps, &charged, err);
  if (rc < 0 || charged) return rc;
  /* No counter yet, or over the limit: the check tells which (and why),
   * and a first counter is written. */
  if ((rc = pz_wallet_limit_check(db, user_id, currency, amount, now, err)) < 0) return rc;
  return pz_store_wallet_daily_add(db, user_id, currency, day, amount, err);
}

int pz_wallet_tier_set(pz_db_t *db, int64_t user_id, int tier, int64_t now, pz_err_t *err) {
  if (tier < 0 || tier >= PZ_WALLET_TIERS)
    return pz_err_set(err, PZ_EINVAL, NULL, "tier must be 0 to %d", PZ_WALLET_TIERS - 1);
  return pz_store_wallet_tier_set(db, user_id, tier, now, err);
}
