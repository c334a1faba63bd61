/* A minimal test harness: CHECK records a failure and goes on; main returns non-zero if any failed. */
#ifndef PLAZA_TEST_H
#define PLAZA_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int pz_test_failures;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
      pz_test_failures++;                                                        \
    }                                                                            \
  } while (0)

/* CHECK, and the test function returns when it fails: for what the rest
 * of the test cannot go on without. */
#define NEED(cond) \
  do {             \
    if (!(cond)) { \
      CHECK(cond); \
      return;      \
    }              \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                       \
  do {                                                                           \
    long long a_ = (long long)(a), b_ = (long long)(b);                          \
    if (a_ != b_) {                                                              \
      fprintf(stderr, "%s:%d: %s == %lld, want %lld\n", __FILE__, __LINE__, #a, a_, b_); \
      pz_test_failures++;                                                        \
    }                                                                            \
  } while (0)

#define CHECK_EQ_STR(a, b)                                                       \
  do {                                                                           \
    const char *a_ = (a), *b_ = (b);                                             \
    if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                       \
      fprintf(stderr, "%s:%d: %s == \"%s\", want \"%s\"\n", __FILE__, __LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
      pz_test_failures++;                                                        \
    }                                                                            \
  } while (0)

#define RUN(fn)                                                                  \
  do {                                                                           \
    int before_ = pz_test_failures;                                              \
    fn();                                                                        \
    fprintf(stderr, "%s %s\n", pz_test_failures == before_ ? "ok  " : "FAIL", #fn); \
  } while (0)

#define TEST_EXIT() return pz_test_failures ? 1 : 0

/* A fresh empty directory for one test; the caller owns the string. */
static inline char *pz_test_tmpdir(const char *name) {
  const char *base = getenv("PZ_TEST_TMP");
  char tmpl[512];
  snprintf(tmpl, sizeof(tmpl), "%s/%s-XXXXXX", base && *base ? base : "/tmp", name);
  if (base && *base) {
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", base);
    if (system(cmd) != 0) return NULL;
  }
  char *dir = mkdtemp(tmpl);
  return dir ? strdup(dir) : NULL;
}

#endif
