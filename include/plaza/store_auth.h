/* Typed store functions for accounts: users, sessions, contact requests, contacts and blocks. */
#ifndef PLAZA_STORE_AUTH_H
#define PLAZA_STORE_AUTH_H

#include <stdbool.h>
#include <stdint.h>
#include "plaza/error.h"
#include "plaza/store.h"
#include "plaza/str.h"

/* Sizes of the stored text, in bytes unless said otherwise. The domain
 * (auth.h) enforces them on input; records carry room for the largest
 * valid value plus a NUL. A code point takes at most 4 bytes of UTF-8. */
#define PZ_USERNAME_MIN 3
#define PZ_USERNAME_MAX 32
#define PZ_DISPLAY_NAME_MAX_CHARS 64
#define PZ_BIO_MAX_CHARS 280
#define PZ_GREETING_MAX_CHARS 140
#define PZ_DEVICE_MAX_BYTES 128
#define PZ_IP_MAX_BYTES 47
#define PZ_PASSWORD_HASH_MAX 127 /* crypto_pwhash_STRBYTES - 1 */
#define PZ_TOKEN_HASH_LEN 32

typedef struct pz_user_rec_s {
  int64_t id;
  char username[PZ_USERNAME_MAX + 1];          /* lower case [a-z0-9_] */
  char display_name[PZ_DISPLAY_NAME_MAX_CHARS * 4 + 1];
  char bio[PZ_BIO_MAX_CHARS * 4 + 1];
  int64_t created_at; /* ms since the Unix epoch, like every time here */
} pz_user_rec_t;

typedef struct pz_session_rec_s {
  int64_t id;
  int64_t user_id;
  uint8_t token_hash[PZ_TOKEN_HASH_LEN]; /* the token itself is never stored */
  char device[PZ_DEVICE_MAX_BYTES + 1];
  char ip[PZ_IP_MAX_BYTES + 1];
  int64_t created_at;
  int64_t last_seen_at;
  int64_t expires_at;
} pz_session_rec_t;

enum { PZ_CONTACT_REQ_PENDING = 0, PZ_CONTACT_REQ_ACCEPTED = 1, PZ_CONTACT_REQ_DECLINED = 2 };

typedef struct pz_contact_req_rec_s {
  int64_t id;
  int64_t from_id;
  int64_t to_id;
  char greeting[PZ_GREETING_MAX_CHARS * 4 + 1];
  int status; /* PZ_CONTACT_REQ_* */
  int64_t created_at;
  int64_t updated_at;
} pz_contact_req_rec_t;

/* Row callbacks of the list functions: called once per row, on the thread
 * running the job, with records borrowed for the call. A negative return
 * stops the listing and becomes its result (fill err before returning). */
typedef int (*pz_store_user_cb)(void *arg, const pz_user_rec_t *user, pz_err_t *err);
/* A user with the time a relation to them began (contact since, blocked since). */
typedef int (*pz_store_relation_cb)(void *arg, const pz_user_rec_t *user, int64_t since, pz_err_t *err);
typedef int (*pz_store_session_cb)(void *arg, const pz_session_rec_t *session, pz_err_t *err);
typedef int (*pz_store_contact_req_cb)(void *arg, const pz_contact_req_rec_t *req, const pz_user_rec_t *from,
                                       const pz_user_rec_t *to, pz_err_t *err);

/* Every function below runs inside a store job (writer or reader thread,
 * per its kind), takes the job's connection first, and returns 0 or a
 * negative PZ_E code with err filled: PZ_ENOTFOUND where a row is asked
 * for and absent, PZ_ECONFLICT for a uniqueness violation, PZ_EIO for
 * anything the database did wrong (logged once by the store). err must
 * not be NULL. */

/* ---- users ---- */

/* Inserts user (id, username, display_name, bio, created_at) with its
 * Argon2id password hash string. PZ_ECONFLICT when the username exists. Writer. */
int pz_store_user_insert(pz_db_t *db, const pz_user_rec_t *user, const char *password_hash, pz_err_t *err);
int pz_store_user_get(pz_db_t *db, int64_t id, pz_user_rec_t *out, pz_err_t *err);
/* Looks a user up by lower-cased username; copies the password hash into
 * password_hash (PZ_PASSWORD_HASH_MAX + 1 bytes) unless it is NULL. */
int pz_store_user_find(pz_db_t *db, pz_str_t username, pz_user_rec_t *out, char *password_hash, pz_err_t *err);
/* Sets display_name and/or bio (NULL keeps the stored value). Writer. */
int pz_store_user_set_profile(pz_db_t *db, int64_t id, const pz_str_t *display_name, const pz_str_t *bio,
                              int64_t now, pz_err_t *err);
/* Users whose username starts with prefix (bytes, already lower case),
 * in username order, at most limit: a range scan of the username index. */
int pz_store_user_search(pz_db_t *db, pz_str_t prefix, unsigned limit, pz_store_user_cb cb, void *arg,
                         pz_err_t *err);

/* ---- sessions ---- */

int pz_store_session_insert(pz_db_t *db, const pz_session_rec_t *s, pz_err_t *err);
/* The session whose token hashes to token_hash, unless it expired by now. */
int pz_store_session_by_token(pz_db_t *db, const uint8_t token_hash[PZ_TOKEN_HASH_LEN], int64_t now,
                              pz_session_rec_t *out, pz_err_t *err);
/* Session session_id of user_id (another user's session is PZ_ENOTFOUND). */
int pz_store_session_get(pz_db_t *db, int64_t user_id, int64_t session_id, pz_session_rec_t *out,
                         pz_err_t *err);
/* Deletes session session_id of user_id; PZ_ENOTFOUND when there is none. Writer. */
int pz_store_session_delete(pz_db_t *db, int64_t user_id, int64_t session_id, pz_err_t *err);
/* Deletes user_id's sessions that expired by now. Writer. */
int pz_store_session_delete_expired(pz_db_t *db, int64_t user_id, int64_t now, pz_err_t *err);
/* The number of user_id's live sessions, and (if out is not NULL and there
 * is one) the one seen least recently. */
int pz_store_session_count(pz_db_t *db, int64_t user_id, int64_t now, unsigned *n, pz_session_rec_t *oldest,
                           pz_err_t *err);
/* user_id's live sessions, most recently seen first. */
int pz_store_session_list(pz_db_t *db, int64_t user_id, int64_t now, pz_store_session_cb cb, void *arg,
                          pz_err_t *err);
/* Records that the session was used at `now`. Writer; a missing session is not an error. */
int pz_store_session_touch(pz_db_t *db, int64_t session_id, int64_t now, pz_err_t *err);

/* ---- contact requests ---- */

int pz_store_contact_req_insert(pz_db_t *db, const pz_contact_req_rec_t *r, pz_err_t *err);
int pz_store_contact_req_get(pz_db_t *db, int64_t id, pz_contact_req_rec_t *out, pz_err_t *err);
/* The pending request from from_id to to_id. */
int pz_store_contact_req_pending(pz_db_t *db, int64_t from_id, int64_t to_id, pz_contact_req_rec_t *out,
                                 pz_err_t *err);
int pz_store_contact_req_set_status(pz_db_t *db, int64_t id, int status, int64_t now, pz_err_t *err);
/* Deletes the pending requests between a and b, in both directions. Writer. */
int pz_store_contact_req_delete_pending(pz_db_t *db, int64_t a, int64_t b, pz_err_t *err);
/* user_id's pending requests, received (incoming) or sent, newest first,
 * at most limit, with both users. */
int pz_store_contact_req_list(pz_db_t *db, int64_t user_id, bool incoming, unsigned limit,
                              pz_store_contact_req_cb cb, void *arg, pz_err_t *err);

/* ---- contacts (stored in both directions) ---- */

int pz_store_contact_exists(pz_db_t *db, int64_t user_id, int64_t other_id, bool *out, pz_err_t *err);
/* Makes a and b contacts of each other; already being contacts is not an error. Writer. */
int pz_store_contact_add(pz_db_t *db, int64_t a, int64_t b, int64_t now, pz_err_t *err);
/* Removes the contact both ways; *removed tells whether there was one. Writer. */
int pz_store_contact_remove(pz_db_t *db, int64_t a, int64_t b, bool *removed, pz_err_t *err);
/* user_id's contacts in username order, with the time they became contacts. */
int pz_store_contact_list(pz_db_t *db, int64_t user_id, pz_store_relation_cb cb, void *arg, pz_err_t *err);

/* ---- blocks (one direction: user_id blocked blocked_id) ---- */

int pz_store_block_exists(pz_db_t *db, int64_t user_id, int64_t blocked_id, bool *out, pz_err_t *err);
/* Adds the block unless it exists; *created tells which, *since is when
 * the block began. Writer. */
int pz_store_block_add(pz_db_t *db, int64_t user_id, int64_t blocked_id, int64_t now, bool *created,
                       int64_t *since, pz_err_t *err);
int pz_store_block_remove(pz_db_t *db, int64_t user_id, int64_t blocked_id, bool *removed, pz_err_t *err);
/* The users user_id blocked, most recent first. */
int pz_store_block_list(pz_db_t *db, int64_t user_id, pz_store_relation_cb cb, void *arg, pz_err_t *err);

#endif
