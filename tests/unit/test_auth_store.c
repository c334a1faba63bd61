/* Unit tests of the account and contact rules against a real database: sign-up, sessions, search, requests, blocks. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "plaza/auth.h"
#include "plaza/id.h"

static int failures;

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                             \
    }                                                                         \
  } while (0)

static pz_store_t *st;
static int64_t now_ms = 1750000000000LL;

/* Inputs and outputs of the step being run: tests set them, run a step,
 * and read the results, each step being one committed write job. */
static struct {
  pz_user_rec_t user;
  pz_session_rec_t session, out_session;
  char token[PZ_TOKEN_LEN + 1];
  int64_t a, b, id;
  const char *greeting;
  pz_contact_req_rec_t req;
  int outcome;
  bool flag;
  int64_t since;
  char prefix[40];
  unsigned count;
  char names[32][PZ_USERNAME_MAX + 1];
} T;

static int step(pz_store_run_fn run, pz_err_t *err) {
  pz_store_job_t job = {0};
  job.run = run;
  int rc = pz_store_run_sync(st, &job);
  if (err) *err = job.err;
  return rc;
}

static const char fake_hash[] = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$c29tZWhhc2g";

static int run_register(pz_db_t *db, pz_store_job_t *job) {
  return pz_auth_register(db, &T.user, fake_hash, &T.session, &job->err);
}

/* Creates user `name` with a first session; returns its id. */
static int64_t make_user(const char *name) {
  memset(&T.user, 0, sizeof(T.user));
  T.user.id = pz_id_next();
  snprintf(T.user.username, sizeof(T.user.username), "%s", name);
  snprintf(T.user.display_name, sizeof(T.user.display_name), "User %s", name);
  T.user.created_at = now_ms;
  pz_auth_session_init(&T.session, T.token, T.user.id, PZ_STR("test/1.0"), "127.0.0.1", now_ms);
  pz_err_t err;
  int rc = step(run_register, &err);
  CHECK(rc == 0);
  return rc == 0 ? T.user.id : 0;
}

static int run_count_users(pz_db_t *db, pz_store_job_t *job) {
  T.count = 0;
  pz_user_rec_t u;
  int rc = pz_store_user_find(db, pz_str(T.prefix), &u, NULL, &job->err);
  if (rc == 0) T.count = 1;
  return rc == PZ_ENOTFOUND ? 0 : rc;
}

static unsigned users_named(const char *name) {
  snprintf(T.prefix, sizeof(T.prefix), "%s", name);
  CHECK(step(run_count_users, NULL) == 0);
  return T.count;
}

static void test_register(void) {
  pz_err_t err;
  int64_t alice = make_user("alice");
  CHECK(alice > 0);
  CHECK(users_named("alice") == 1);
  /* A second sign-up with the name fails as username_taken. */
  T.user.id = pz_id_next();
  pz_auth_session_init(&T.session, T.token, T.user.id, PZ_STR("x"), "127.0.0.1", now_ms);
  CHECK(step(run_register, &err) == PZ_ECONFLICT);
  CHECK(strcmp(pz_err_code_str(&err), "username_taken") == 0);
  CHECK(pz_err_http_status(&err) == 409);

  /* A sign-up that fails half-way leaves nothing behind: here the session
   * collides with an existing token hash after the user row went in. */
  make_user("bob");
  pz_session_rec_t bobs = T.session;
  memset(&T.user, 0, sizeof(T.user));
  T.user.id = pz_id_next();
  snprintf(T.user.username, sizeof(T.user.username), "carol");
  snprintf(T.user.display_name, sizeof(T.user.display_name), "Carol");
  T.session = bobs;
  T.session.id = pz_id_next();
  T.session.user_id = T.user.id;
  CHECK(step(run_register, &err) < 0);
  CHECK(users_named("carol") == 0);
}

static int run_by_token(pz_db_t *db, pz_store_job_t *job) {
  uint8_t hash[PZ_TOKEN_HASH_LEN];
  if (pz_auth_token_hash(pz_str(T.token), hash) < 0) return pz_err_set(&job->err, PZ_EUNAUTH, NULL, NULL);
  return pz_store_session_by_token(db, hash, now_ms, &T.out_session, &job->err);
}

static int run_open(pz_db_t *db, pz_store_job_t *job) {
  return pz_auth_session_open(db, &T.session, &T.out_session, &job->err);
}

static int run_close(pz_db_t *db, pz_store_job_t *job) {
  return pz_auth_session_close(db, T.a, T.id, &T.out_session, &job->err);
}

static void test_sessions(void) {
  int64_t dave = make_user("dave");
  char first_token[PZ_TOKEN_LEN + 1];
  memcpy(first_token, T.token, sizeof(first_token));
  int64_t first_id = T.session.id;
  CHECK(step(run_by_token, NULL) == 0);
  CHECK(T.out_session.user_id == dave && T.out_session.id == first_id);
  CHECK(strcmp(T.out_session.device, "test/1.0") == 0);

  /* Another user cannot close dave's session; dave can, and the token is dead. */
  int64_t eve = make_user("eve");
  pz_err_t err;
  T.a = eve;
  T.id = first_id;
  CHECK(step(run_close, &err) == PZ_ENOTFOUND);
  T.a = dave;
  CHECK(step(run_close, NULL) == 0);
  CHECK(T.out_session.id == first_id);
  memcpy(T.token, first_token, sizeof(first_token));
  CHECK(step(run_by_token, NULL) == PZ_ENOTFOUND);
  CHECK(step(run_close, &err) == PZ_ENOTFOUND);

  /* Expired sessions do not resolve. */
  pz_auth_session_init(&T.session, T.token, dave, PZ_STR("old"), "127.0.0.1", now_ms - PZ_SESSION_TTL_MS - 1);
  CHECK(step(run_open, NULL) == 0);
  CHECK(step(run_by_token, NULL) == PZ_ENOTFOUND);

  /* A user has at most PZ_SESSIONS_PER_USER_MAX; the next evicts the one
   * seen least recently. */
  int64_t oldest = 0;
  for (int i = 0; i < PZ_SESSIONS_PER_USER_MAX; i++) {
    pz_auth_session_init(&T.session, T.token, dave, PZ_STR("dev"), "127.0.0.1", now_ms + i);
    if (i == 0) oldest = T.session.id;
    CHECK(step(run_open, NULL) == 0);
    CHECK(T.out_session.id == 0);
  }
  pz_auth_session_init(&T.session, T.token, dave, PZ_STR("new"), "127.0.0.1", now_ms + 1000);
  CHECK(step(run_open, NULL) == 0);
  CHECK(T.out_session.id == oldest);
  CHECK(step(run_by_token, NULL) == 0);
}

static int name_row(void *arg, const pz_user_rec_t *u, pz_err_t *err) {
  if (T.count < 32) snprintf(T.names[T.count], sizeof(T.names[0]), "%s", u->username);
  T.count++;
  return 0;
}

static int run_search(pz_db_t *db, pz_store_job_t *job) {
  T.count = 0;
  return pz_store_user_search(db, pz_str(T.prefix), PZ_SEARCH_LIMIT, name_row, NULL, &job->err);
}

static unsigned search(const char *prefix) {
  snprintf(T.prefix, sizeof(T.prefix), "%s", prefix);
  CHECK(step(run_search, NULL) == 0);
  return T.count;
}

static void test_search(void) {
  make_user("s_a");
  make_user("sxa");
  make_user("s_b");
  make_user("s");
  make_user("sz");
  /* '_' is a character here, not a wildcard. */
  CHECK(search("s_") == 2);
  CHECK(strcmp(T.names[0], "s_a") == 0 && strcmp(T.names[1], "s_b") == 0);
  CHECK(search("s") == 5);
  CHECK(strcmp(T.names[0], "s") == 0); /* username order */
  CHECK(search("s_c") == 0);
  CHECK(search("sz") == 1);
  for (int i = 0; i < 25; i++) {
    char name[16];
    snprintf(name, sizeof(name), "many%02d", i);
    make_user(name);
  }
  CHECK(search("many") == PZ_SEARCH_LIMIT);
  CHECK(strcmp(T.names[0], "many00") == 0 && strcmp(T.names[19], "many19") == 0);
  CHECK(search("many2") == 5);
}

static int run_request(pz_db_t *db, pz_store_job_t *job) {
  return pz_auth_contact_request(db, T.a, T.b, pz_str(T.greeting), now_ms, &T.req, &T.outcome, &job->err);
}
static int run_accept(pz_db_t *db, pz_store_job_t *job) {
  return pz_auth_contact_accept(db, T.a, T.id, now_ms, &T.req, &job->err);
}
static int run_decline(pz_db_t *db, pz_store_job_t *job) {
  return pz_auth_contact_decline(db, T.a, T.id, now_ms, &T.req, &job->err);
}
static int run_remove(pz_db_t *db, pz_store_job_t *job) { return pz_auth_contact_remove(db, T.a, T.b, &job->err); }
static int run_block(pz_db_t *db, pz_store_job_t *job) {
  pz_user_rec_t u;
  return pz_auth_block(db, T.a, T.b, now_ms, &T.flag, &T.since, &u, &job->err);
}
static int run_unblock(pz_db_t *db, pz_store_job_t *job) { return pz_auth_unblock(db, T.a, T.b, &job->err); }
static int run_are_contacts(pz_db_t *db, pz_store_job_t *job) {
  bool ab = false, ba = false;
  int rc = pz_store_contact_exists(db, T.a, T.b, &ab, &job->err);
  if (rc == 0) rc = pz_store_contact_exists(db, T.b, T.a, &ba, &job->err);
  T.flag = ab && ba;
  CHECK(ab == ba); /* always both sides or neither */
  return rc;
}
static int req_row(void *arg, const pz_contact_req_rec_t *r, const pz_user_rec_t *from, const pz_user_rec_t *to,
                   pz_err_t *err) {
  T.count++;
  CHECK(from->id == r->from_id && to->id == r->to_id);
  return 0;
}
static int run_pending_in(pz_db_t *db, pz_store_job_t *job) {
  T.count = 0;
  return pz_store_contact_req_list(db, T.a, true, 100, req_row, NULL, &job->err);
}

static int request(int64_t from, int64_t to, const char *greeting, pz_err_t *err) {
  T.a = from;
  T.b = to;
  T.greeting = greeting;
  return step(run_request, err);
}

static bool are_contacts(int64_t a, int64_t b) {
  T.a = a;
  T.b = b;
  CHECK(step(run_are_contacts, NULL) == 0);
  return T.flag;
}

static unsigned pending_for(int64_t user) {
  T.a = user;
  CHECK(step(run_pending_in, NULL) == 0);
  return T.count;
}

static int answer(pz_store_run_fn run, int64_t me, int64_t req_id, pz_err_t *err) {
  T.a = me;
  T.id = req_id;
  return step(run, err);
}

static void test_contacts(void) {
  pz_err_t err;
  int64_t ann = make_user("ann"), ben = make_user("ben"), cat = make_user("cat");

  CHECK(request(ann, ann, "", &err) == PZ_EINVAL);
  CHECK(request(ann, 999, "", &err) == PZ_ENOTFOUND);

  /* ann asks ben; asking again gives back the first request. */
  CHECK(request(ann, ben, "hi ben", &err) == 0);
  CHECK(T.outcome == PZ_AUTH_REQ_CREATED && T.req.status == PZ_CONTACT_REQ_PENDING);
  CHECK(strcmp(T.req.greeting, "hi ben") == 0);
  int64_t req1 = T.req.id;
  CHECK(request(ann, ben, "again", &err) == 0);
  CHECK(T.outcome == PZ_AUTH_REQ_EXISTING && T.req.id == req1 && strcmp(T.req.greeting, "hi ben") == 0);
  CHECK(pending_for(ben) == 1);

  /* Only the addressee may answer; to anyone else it does not exist. */
  CHECK(answer(run_accept, ann, req1, &err) == PZ_ENOTFOUND);
  CHECK(answer(run_accept, cat, req1, &err) == PZ_ENOTFOUND);
  CHECK(answer(run_decline, ann, req1, &err) == PZ_ENOTFOUND);
  CHECK(answer(run_accept, ben, 12345, &err) == PZ_ENOTFOUND);
  CHECK(!are_contacts(ann, ben));

  CHECK(answer(run_accept, ben, req1, &err) == 0);
  CHECK(T.req.status == PZ_CONTACT_REQ_ACCEPTED);
  CHECK(are_contacts(ann, ben));
  CHECK(pending_for(ben) == 0);
  CHECK(answer(run_accept, ben, req1, &err) == 0); /* again: no change, no error */
  CHECK(answer(run_decline, ben, req1, &err) == PZ_ECONFLICT);
  CHECK(strcmp(pz_err_code_str(&err), "request_not_pending") == 0);
  CHECK(request(ben, ann, "", &err) == PZ_ECONFLICT);
  CHECK(strcmp(pz_err_code_str(&err), "already_contacts") == 0);

  /* Decline, and a declined request cannot be accepted later. */
  CHECK(request(cat, ann, "hello", &err) == 0);
  int64_t req2 = T.req.id;
  CHECK(answer(run_decline, ann, req2, &err) == 0 && T.req.status == PZ_CONTACT_REQ_DECLINED);
  CHECK(answer(run_decline, ann, req2, &err) == 0);
  CHECK(answer(run_accept, ann, req2, &err) == PZ_ECONFLICT);
  CHECK(!are_contacts(ann, cat));

  /* Asking someone who already asked me accepts their request. */
  CHECK(request(cat, ben, "yo", &err) == 0);
  int64_t req3 = T.req.id;
  CHECK(request(ben, cat, "", &err) == 0);
  CHECK(T.outcome == PZ_AUTH_REQ_ACCEPTED_THEIRS && T.req.id == req3 && T.req.status == PZ_CONTACT_REQ_ACCEPTED);
  CHECK(are_contacts(ben, cat));
  CHECK(pending_for(ben) == 0 && pending_for(cat) == 0);

  /* Removal is both sides at once, and only once. */
  T.a = cat;
  T.b = ben;
  CHECK(step(run_remove, NULL) == 0);
  CHECK(!are_contacts(ben, cat));
  T.a = cat;
  T.b = ben;
  CHECK(step(run_remove, &err) == PZ_ENOTFOUND);

  /* Blocking removes the contact and pending requests both ways, and stops
   * the blocked user's requests (403) and mine (409 until I unblock). */
  CHECK(request(cat, ann, "once more", &err) == 0);
  CHECK(pending_for(ann) == 1);
  T.a = ann;
  T.b = ben;
  CHECK(step(run_block, NULL) == 0 && T.flag);
  CHECK(!are_contacts(ann, ben));
  T.a = ann;
  T.b = cat;
  CHECK(step(run_block, NULL) == 0 && T.flag);
  int64_t since = T.since;
  T.a = ann;
  T.b = cat;
  CHECK(step(run_block, NULL) == 0 && !T.flag && T.since == since); /* twice: same block */
  CHECK(pending_for(ann) == 0);
  CHECK(request(cat, ann, "let me in", &err) == PZ_EFORBIDDEN);
  CHECK(strcmp(pz_err_code_str(&err), "blocked") == 0 && pz_err_http_status(&err) == 403);
  CHECK(request(ann, cat, "", &err) == PZ_ECONFLICT);
  CHECK(strcmp(pz_err_code_str(&err), "user_blocked") == 0);
  T.a = ann;
  T.b = ann;
  CHECK(step(run_block, &err) == PZ_EINVAL);
  T.a = ann;
  T.b = 4242;
  CHECK(step(run_block, &err) == PZ_ENOTFOUND);

  T.a = ann;
  T.b = cat;
  CHECK(step(run_unblock, NULL) == 0);
  CHECK(step(run_unblock, &err) == PZ_ENOTFOUND);
  CHECK(request(cat, ann, "friends?", &err) == 0 && T.outcome == PZ_AUTH_REQ_CREATED);
}

static int run_profile(pz_db_t *db, pz_store_job_t *job) {
  pz_str_t bio = PZ_STR("likes tea");
  return pz_auth_profile_update(db, T.a, NULL, &bio, now_ms, &T.user, &job->err);
}

static void test_profile(void) {
  int64_t fay = make_user("fay");
  T.a = fay;
  CHECK(step(run_profile, NULL) == 0);
  CHECK(strcmp(T.user.bio, "likes tea") == 0);
  CHECK(strcmp(T.user.display_name, "User fay") == 0); /* kept */
  pz_err_t err;
  T.a = 777;
  CHECK(step(run_profile, &err) == PZ_ENOTFOUND);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  const char *base = getenv("PZ_TEST_TMP");
  if (base == NULL || *base == '\0') base = "/tmp";
  mkdir(base, 0700);
  char dir[512];
  snprintf(dir, sizeof(dir), "%s/test_auth_store.XXXXXX", base);
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  pz_err_t err = {0};
  if (pz_store_open_sync(&st, dir, &err) < 0) {
    fprintf(stderr, "cannot open store: %s\n", pz_err_message(&err));
    return 1;
  }
  test_register();
  test_sessions();
  test_search();
  test_contacts();
  test_profile();
  pz_store_close(st);
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("test_auth_store: ok\n");
  return 0;
}
