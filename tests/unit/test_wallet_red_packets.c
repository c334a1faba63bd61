/* Unit tests of red packet shares: every share at least one unit, the shares sum to the total, equal mode's
 * remainder, and random mode's fairness by position measured over many simulated packets. */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include "plaza/wallet.h"
#include "test.h"

/* Splits one packet as its claimants would, in order; false when a share broke a rule. */
static bool split(int mode, int64_t total, unsigned count, int64_t *shares) {
  int64_t left = total, sum = 0;
  bool ok = true;
  for (unsigned i = 0; i < count; i++) {
    int64_t s = pz_wallet_red_packet_share(mode, total, count, left, count - i);
    ok = ok && s >= 1 && s <= left - (int64_t)(count - i - 1);
    shares[i] = s;
    left -= s;
    sum += s;
  }
  return ok && sum == total && left == 0;
}

static void test_equal(void) {
  int64_t s[100];
  CHECK(split(PZ_RED_PACKET_EQUAL, 10, 3, s));
  CHECK_EQ_INT(s[0], 4);
  CHECK_EQ_INT(s[1], 3);
  CHECK_EQ_INT(s[2], 3);
  CHECK(split(PZ_RED_PACKET_EQUAL, 1003, 10, s));
  for (int i = 0; i < 10; i++)
    CHECK_EQ_INT(s[i], i < 3 ? 101 : 100);
  CHECK(split(PZ_RED_PACKET_EQUAL, 100, 100, s));
  for (int i = 0; i < 100; i++)
    CHECK_EQ_INT(s[i], 1);
}

/* The smallest and largest packets: one unit each, and amounts beyond 32 bits. */
static void test_random_edges(void) {
  int64_t s[100];
  for (int k = 0; k < 200; k++) {
    CHECK(split(PZ_RED_PACKET_RANDOM, 100, 100, s));
    CHECK(split(PZ_RED_PACKET_RANDOM, 101, 100, s));
    CHECK(split(PZ_RED_PACKET_RANDOM, 2, 2, s));
    CHECK(split(PZ_RED_PACKET_RANDOM, 3, 2, s));
    CHECK(split(PZ_RED_PACKET_RANDOM, PZ_WALLET_AMOUNT_MAX, 3, s));
    CHECK(split(PZ_RED_PACKET_RANDOM, PZ_WALLET_AMOUNT_MAX, 100, s));
  }
  CHECK(split(PZ_RED_PACKET_RANDOM, 5, 1, s));
  CHECK_EQ_INT(s[0], 5);
  /* Shares beyond 2^32 do happen: the generator covers 64 bits. */
  bool big = false;
  for (int k = 0; k < 50 && !big; k++) {
    CHECK(split(PZ_RED_PACKET_RANDOM, PZ_WALLET_AMOUNT_MAX, 2, s));
    big = s[0] > (int64_t)UINT32_MAX * 2;
  }
  CHECK(big);
}

/* Each position's mean share over n packets against total / count, with
 * a tolerance of five standard errors (from the sample's own variance:
 * a false alarm about once in 1.7 million runs per position) plus what
 * the floor of 2R/n takes: under half a unit off the mean of each draw,
 * handed on to the later claimants, so at most count / 2 for anyone. */
static void fairness(int64_t total, unsigned count, unsigned n) {
  double sum[100] = {0}, sq[100] = {0};
  int64_t s[100];
  unsigned bad = 0;
  for (unsigned k = 0; k < n; k++) {
    if (!split(PZ_RED_PACKET_RANDOM, total, count, s)) bad++;
    for (unsigned i = 0; i < count; i++) {
      sum[i] += (double)s[i];
      sq[i] += (double)s[i] * (double)s[i];
    }
  }
  CHECK_EQ_INT(bad, 0);
  double expect = (double)total / count;
  for (unsigned i = 0; i < count; i++) {
    double mean = sum[i] / n, var = sq[i] / n - mean * mean;
    double tol = 5.0 * sqrt(var / n) + count / 2.0;
    if (fabs(mean - expect) > tol) {
      fprintf(stderr, "position %u of %lld in %u: mean %.2f, want %.2f +- %.2f\n", i, (long long)total, count, mean,
              expect, tol);
      pz_test_failures++;
    }
  }
}

static void test_random_fairness(void) {
  fairness(10000, 10, 20000);
  fairness(100, 7, 20000);
  fairness(5000000, 100, 4000);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  RUN(test_equal);
  RUN(test_random_edges);
  RUN(test_random_fairness);
  TEST_EXIT();
}
