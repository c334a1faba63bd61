/* Money and calendar formats of the history and statements: minor-unit digits per currency, decimal amounts, UTC
 * dates and months. */
#include <stdio.h>
#include <string.h>
#include "plaza/wallet.h"

/* ISO 4217 currencies whose minor unit is not a hundredth. */
static const struct {
  char code[4];
  int digits;
} exceptions[] = {
    {"BHD", 3}, {"BIF", 0}, {"CLF", 4}, {"CLP", 0}, {"DJF", 0}, {"GNF", 0}, {"IQD", 3}, {"ISK", 0}, {"JOD", 3},
    {"JPY", 0}, {"KMF", 0}, {"KRW", 0}, {"KWD", 3}, {"LYD", 3}, {"OMR", 3}, {"PYG", 0}, {"RWF", 0}, {"TND", 3},
    {"UGX", 0}, {"UYI", 0}, {"UYW", 4}, {"VND", 0}, {"VUV", 0}, {"XAF", 0}, {"XOF", 0}, {"XPF", 0},
};

int pz_wallet_currency_digits(const char *currency) {
  for (size_t i = 0; i < sizeof(exceptions) / sizeof(exceptions[0]); i++)
    if (strcmp(exceptions[i].code, currency) == 0) return exceptions[i].digits;
  return 2;
}

size_t pz_wallet_amount_format(int64_t amount, const char *currency, char *out) {
  int digits = pz_wallet_currency_digits(currency);
  /* Through uint64_t: the magnitude of INT64_MIN does not fit an int64_t. */
  uint64_t mag = amount < 0 ? (uint64_t)0 - (uint64_t)amount : (uint64_t)amount;
  uint64_t scale = 1;
  for (int i = 0; i < digits; i++)
    scale *= 10;
  int n;
  if (digits == 0)
    n = snprintf(out, 32, "%s%llu", amount < 0 ? "-" : "", (unsigned long long)mag);
  else
    n = snprintf(out, 32, "%s%llu.%0*llu", amount < 0 ? "-" : "", (unsigned long long)(mag / scale), digits,
                 (unsigned long long)(mag % scale));
  return (size_t)n;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* n ASCII digits at s as a number, or -1. */
static int digits_at(const char *s, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* Year and month of "YYYY-MM" at s (len >= 7), checked. */
static int year_month(const char *s, int *y, int *m) {
  *y = digits_at(s, 4);
  *m = s[4] == '-' ? digits_at(s + 5, 2) : -1;
  return *y >= 1970 && *m >= 1 && *m <= 12 ? 0 : PZ_EINVAL;
}

int pz_wallet_date_parse(pz_str_t s, int64_t *ms) {
  static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int y, m;
  if (s.len != 10 || year_month(s.ptr, &y, &m) < 0 || s.ptr[7] != '-') return PZ_EINVAL;
  int d = digits_at(s.ptr + 8, 2);
  if (d < 1 || d > mdays[m - 1] + (m == 2 && leap(y))) return PZ_EINVAL;
  *ms = days_from_civil(y, m, d) * PZ_WALLET_DAY_MS;
  return 0;
}

int pz_wallet_month_parse(pz_str_t s, int64_t *start_ms, int64_t *end_ms) {
  int y, m;
  if (s.len != 7 || year_month(s.ptr, &y, &m) < 0) return PZ_EINVAL;
  *start_ms = days_from_civil(y, m, 1) * PZ_WALLET_DAY_MS;
  *end_ms = days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * PZ_WALLET_DAY_MS;
  return 0;
}

void pz_wallet_date_format(int64_t ms, char *out) {
  int y, m, d;
  int64_t days = ms >= 0 ? ms / PZ_WALLET_DAY_MS : -((-ms + PZ_WALLET_DAY_MS - 1) / PZ_WALLET_DAY_MS);
  civil_from_days(days, &y, &m, &d);
  /* Room for any int, then the ten characters of years up to 9999. */
  char buf[40];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02d", y, m, d);
  memcpy(out, buf, 10);
  out[10] = '\0';
}
