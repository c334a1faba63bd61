/* Accounts, sessions and contacts: the domain rules, with no SQL, no sockets and no JSON. */
#ifndef PLAZA_AUTH_H
#define PLAZA_AUTH_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "plaza/error.h"
#include "plaza/store_auth.h"
#include "plaza/str.h"

#define PZ_PASSWORD_MIN_CHARS 8
#define PZ_PASSWORD_MAX_BYTES 256
#define PZ_TOKEN_LEN 43 /* 32 random bytes in base64url without padding */
#define PZ_SESSION_TTL_MS (90LL * 24 * 3600 * 1000)
#define PZ_SESSIONS_PER_USER_MAX 100
/* last_seen_at of a session is written at most this often. */
#define PZ_SESSION_SEEN_GRANULARITY_MS (5LL * 60 * 1000)
#define PZ_SEARCH_LIMIT 20
#define PZ_CONTACT_REQ_LIST_LIMIT 100

/* ---- input rules: pure functions, any thread ----
 * Each returns 0, or PZ_EINVAL / PZ_EUTF8 with err naming the field. */

/* A username is 3 to 32 of [A-Za-z0-9_], unique without regard to case:
 * writes its lower-case form, NUL-terminated, to out. */
int pz_auth_username_norm(pz_str_t in, char out[PZ_USERNAME_MAX + 1], pz_err_t *err);
/* At least PZ_PASSWORD_MIN_CHARS code points, at most PZ_PASSWORD_MAX_BYTES bytes, valid UTF-8. */
int pz_auth_password_check(pz_str_t pw, pz_err_t *err);
/* 1 to 64 code points, not only spaces, no control characters. */
int pz_auth_display_name_check(pz_str_t s, pz_err_t *err);
/* At most 280 code points, no control characters. */
int pz_auth_bio_check(pz_str_t s, pz_err_t *err);
/* At most 140 code points, no control characters. */
int pz_auth_greeting_check(pz_str_t s, pz_err_t *err);
/* The lower-case form of a username search prefix into out (NUL-terminated);
 * false when no username can start with q (too long, or a character
 * outside [A-Za-z0-9_]). */
bool pz_auth_search_prefix(pz_str_t q, char out[PZ_USERNAME_MAX + 1], size_t *out_len);
/* A device label from a User-Agent: printable ASCII kept, anything else
 * becomes '?', cut to PZ_DEVICE_MAX_BYTES; "unknown" when empty. */
void pz_auth_device_label(pz_str_t user_agent, char out[PZ_DEVICE_MAX_BYTES + 1]);
/* The key that rate limits a client address: an IPv4 address as is, an
 * IPv6 address by its /64 (one subscriber usually holds a whole /64). */
void pz_auth_addr_key(const char *addr, char out[PZ_IP_MAX_BYTES + 1]);

/* ---- tokens ---- */

/* A new bearer token (NUL-terminated) and its hash. Any thread. */
void pz_auth_token_new(char token[PZ_TOKEN_LEN + 1], uint8_t hash[PZ_TOKEN_HASH_LEN]);
/* The hash under which a token is stored; PZ_EUNAUTH unless token has the
 * shape of one we issue. Any thread. */
int pz_auth_token_hash(pz_str_t token, uint8_t hash[PZ_TOKEN_HASH_LEN]);
/* The token of an "Authorization: Bearer <token>" header value; PZ_EUNAUTH
 * when the header is absent or another scheme. */
int pz_auth_bearer(pz_str_t authorization, pz_str_t *token);

/* ---- passwords (Argon2id): CPU- and memory-heavy, never on the loop ---- */

/* Hashes pw into out. Returns 0 or PZ_ENOMEM. */
int pz_auth_password_hash(pz_str_t pw, char out[PZ_PASSWORD_HASH_MAX + 1]);
/* Returns 0 when pw matches hash, PZ_EUNAUTH when it does not. */
int pz_auth_password_verify(const char *hash, pz_str_t pw);

/* A bounded queue of Argon2 jobs on libuv's thread pool. At most
 * max_running run at once, so that password work can neither starve the
 * store's readers, which share the pool, nor take more than max_running
 * times Argon2's memory; beyond max_waiting queued jobs, submissions are
 * refused. */
typedef struct pz_auth_pwq_s pz_auth_pwq_t;
typedef struct pz_auth_pw_job_s pz_auth_pw_job_t;

enum { PZ_AUTH_PW_HASH = 1, PZ_AUTH_PW_VERIFY = 2 };

struct pz_auth_pw_job_s {
  int op;                                  /* PZ_AUTH_PW_* */
  pz_str_t password;                       /* borrowed until done */
  /* VERIFY: the stored hash (borrowed until done), or NULL for an unknown
   * user: the job then spends the time of a hash and fails, so that the
   * answer's timing does not tell whether the account exists. */
  const char *hash;
  char hash_out[PZ_PASSWORD_HASH_MAX + 1]; /* HASH: the result */
  int rc;                                  /* 0; PZ_EUNAUTH (no match); PZ_ENOMEM */
  void (*done)(pz_auth_pw_job_t *job);     /* loop thread */
  void *data;                              /* the caller's */
  /* private */
  uv_work_t work;
  pz_auth_pwq_t *queue;
  pz_auth_pw_job_t *next;
};

/* Loop thread. Caller frees with pz_auth_pwq_free once no job is pending. */
pz_auth_pwq_t *pz_auth_pwq_new(uv_loop_t *loop, unsigned max_running, unsigned max_waiting);
void pz_auth_pwq_free(pz_auth_pwq_t *q);
/* Queues job (owned by the caller until done). Returns 0, or PZ_EUNAVAIL
 * when the queue is full, in which case done is not called. Loop thread. */
int pz_auth_pwq_submit(pz_auth_pwq_t *q, pz_auth_pw_job_t *job);
/* Jobs queued or running. */
unsigned pz_auth_pwq_pending(const pz_auth_pwq_t *q);

/* ---- the session cache: loop thread only ----
 * Valid tokens resolve from memory; revocation removes an entry at once.
 * A lookup that misses reads the database; to keep it from putting back a
 * session revoked meanwhile, it takes the cache's epoch before the read
 * and passes it to put, which ignores stale results. */

typedef struct pz_auth_session_s {
  int64_t session_id;
  int64_t user_id;
  int64_t expires_at;
  int64_t last_seen_at; /* as last written to the database */
} pz_auth_session_t;

typedef struct pz_auth_cache_s pz_auth_cache_t;

pz_auth_cache_t *pz_auth_cache_new(unsigned capacity);
void pz_auth_cache_free(pz_auth_cache_t *c);
/* The session of a token hash, unless absent or expired by now; the
 * returned pointer is valid until the next call on the cache. */
pz_auth_session_t *pz_auth_cache_get(pz_auth_cache_t *c, const uint8_t hash[PZ_TOKEN_HASH_LEN], int64_t now);
uint64_t pz_auth_cache_epoch(const pz_auth_cache_t *c);
/* Adds a session found by a lookup that began at epoch; ignored when
 * anything was forgotten since. The least recently used entry goes when full. */
void pz_auth_cache_put(pz_auth_cache_t *c, const uint8_t hash[PZ_TOKEN_HASH_LEN], const pz_auth_session_t *s,
                       uint64_t epoch);
/* Removes the entry of a token hash (revoked session) and moves the epoch. */
void pz_auth_cache_forget(pz_auth_cache_t *c, const uint8_t hash[PZ_TOKEN_HASH_LEN]);
unsigned pz_auth_cache_count(const pz_auth_cache_t *c);

/* ---- log-in rate limits: loop thread only ----
 * Failures are counted per key (an account name, a client address) in a
 * fixed window that starts at the first failure. The table holds at most
 * capacity keys and forgets the least recently touched one when full. */

typedef struct pz_auth_limiter_s pz_auth_limiter_t;

pz_auth_limiter_t *pz_auth_limiter_new(unsigned capacity, unsigned max_failures, unsigned window_s);
void pz_auth_limiter_free(pz_auth_limiter_t *l);
/* Returns 0 when key may try now, or PZ_ERATE with the seconds until its
 * window ends in *retry_after_s. Keys are at most 64 bytes (longer ones are cut). */
int pz_auth_limiter_check(pz_auth_limiter_t *l, pz_str_t key, int64_t now_ms, unsigned *retry_after_s);
/* Counts one failure of key. */
void pz_auth_limiter_fail(pz_auth_limiter_t *l, pz_str_t key, int64_t now_ms);
/* Takes back one failure of key, or (all) every failure. */
void pz_auth_limiter_forgive(pz_auth_limiter_t *l, pz_str_t key, bool all);
unsigned pz_auth_limiter_count(const pz_auth_limiter_t *l);

/* ---- account rules: run inside store write jobs (writer thread) ----
 * Each returns 0 or a negative PZ_E code with err filled; a failing job is
 * rolled back whole, so nothing changes on a failed request. */

/* Fills a new session for user_id (id, token hash, device, ip, times) and
 * writes its token to token. Any thread. */
void pz_auth_session_init(pz_session_rec_t *s, char token[PZ_TOKEN_LEN + 1], int64_t user_id,
                          pz_str_t user_agent, const char *ip, int64_t now);
/* Creates the account user (username already normalized) with its first
 * session. 409 username_taken when the username is in use. */
int pz_auth_register(pz_db_t *db, const pz_user_rec_t *user, const char *password_hash,
                     const pz_session_rec_t *session, pz_err_t *err);
/* Opens session s for a user who proved the password. Sessions that
 * expired are dropped; when the user already has PZ_SESSIONS_PER_USER_MAX,
 * the least recently seen is closed and copied to *evicted (whose id is 0
 * when none was). */
int pz_auth_session_open(pz_db_t *db, const pz_session_rec_t *s, pz_session_rec_t *evicted, pz_err_t *err);
/* Closes session session_id of user_id and copies it to *closed, so that
 * the caller can forget its token; 404 when user_id has no such session. */
int pz_auth_session_close(pz_db_t *db, int64_t user_id, int64_t session_id, pz_session_rec_t *closed,
                          pz_err_t *err);
/* Sets display_name and/or bio (NULL keeps; both checked by the caller)
 * and copies the updated user to out. */
int pz_auth_profile_update(pz_db_t *db, int64_t user_id, const pz_str_t *display_name, const pz_str_t *bio,
                           int64_t now, pz_user_rec_t *out, pz_err_t *err);

/* ---- contacts: run inside store write jobs ----
 * WeChat's rules: a request carries a greeting; only its addressee accepts
 * or declines it; blocking removes the contact and pending requests and
 * stops new requests from the blocked user. */

enum {
  PZ_AUTH_REQ_CREATED = 1,         /* a new pending request */
  PZ_AUTH_REQ_EXISTING = 2,        /* from already had one pending to to: that one */
  PZ_AUTH_REQ_ACCEPTED_THEIRS = 3, /* to had asked from: that request, now accepted */
};

/* Asks to_id to become a contact of from_id (greeting checked by the
 * caller). Copies the request concerned to *out and its kind to *outcome.
 * Errors: 400 to oneself; 404 unknown user; 403 blocked (to_id blocked
 * from_id); 409 user_blocked (from_id blocked to_id); 409 already_contacts. */
int pz_auth_contact_request(pz_db_t *db, int64_t from_id, int64_t to_id, pz_str_t greeting, int64_t now,
                            pz_contact_req_rec_t *out, int *outcome, pz_err_t *err);
/* The addressee me accepts request req_id: both become contacts. Accepting
 * an accepted request again changes nothing. 404 unless me is its
 * addressee; 409 request_not_pending when it was declined. */
int pz_auth_contact_accept(pz_db_t *db, int64_t me, int64_t req_id, int64_t now, pz_contact_req_rec_t *out,
                           pz_err_t *err);
/* The addressee me declines request req_id (again: no change). 404 unless
 * me is its addressee; 409 request_not_pending when it was accepted. */
int pz_auth_contact_decline(pz_db_t *db, int64_t me, int64_t req_id, int64_t now, pz_contact_req_rec_t *out,
                            pz_err_t *err);
/* Removes the contact between me and other on both sides; 404 when there is none. */
int pz_auth_contact_remove(pz_db_t *db, int64_t me, int64_t other, pz_err_t *err);
/* me blocks other: also removes their contact and pending requests both
 * ways. *created is false when the block existed; *since is when it began;
 * *user is the blocked user. 400 oneself; 404 unknown user. */
int pz_auth_block(pz_db_t *db, int64_t me, int64_t other, int64_t now, bool *created, int64_t *since,
                  pz_user_rec_t *user, pz_err_t *err);
/* 404 when me had not blocked other. */
int pz_auth_unblock(pz_db_t *db, int64_t me, int64_t other, pz_err_t *err);

#endif
