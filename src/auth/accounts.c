/* Account rules run inside store write jobs: sign-up, sessions, profile. */
#include <stdio.h>
#include <string.h>
#include "plaza/auth.h"
#include "plaza/id.h"

void pz_auth_session_init(pz_session_rec_t *s, char token[PZ_TOKEN_LEN + 1], int64_t user_id,
                          pz_str_t user_agent, const char *ip, int64_t now) {
  memset(s, 0, sizeof(*s));
  s->id = pz_id_next();
  s->user_id = user_id;
  pz_auth_token_new(token, s->token_hash);
  pz_auth_device_label(user_agent, s->device);
  snprintf(s->ip, sizeof(s->ip), "%s", ip ? ip : "");
  s->created_at = s->last_seen_at = now;
  s->expires_at = now + PZ_SESSION_TTL_MS;
}

static int username_taken(pz_err_t *err) {
  return pz_err_set(err, PZ_ECONFLICT, "username_taken", "this username is already taken");
}

int pz_auth_register(pz_db_t *db, const pz_user_rec_t *user, const char *password_hash,
                     const pz_session_rec_t *session, pz_err_t *err) {
  pz_user_rec_t existing;
  int rc = pz_store_user_find(db, pz_str(user->username), &existing, NULL, err);
  if (rc == 0) return username_taken(err);
  if (rc != PZ_ENOTFOUND) return rc;
  *err = (pz_err_t){0};
  /* The unique index has the last word: the check above only gives the
   * answer its proper code. */
  if ((rc = pz_store_user_insert(db, user, password_hash, err)) < 0)
    return rc == PZ_ECONFLICT ? username_taken(err) : rc;
  return pz_store_session_insert(db, session, err);
}

int pz_auth_session_open(pz_db_t *db, const pz_session_rec_t *s, pz_session_rec_t *evicted, pz_err_t *err) {
  evicted->id = 0;
  int rc = pz_store_session_delete_expired(db, s->user_id, s->created_at, err);
  if (rc < 0) return rc;
  unsigned n = 0;
  if ((rc = pz_store_session_count(db, s->user_id, s->created_at, &n, evicted, err)) < 0) return rc;
  if (n >= PZ_SESSIONS_PER_USER_MAX) {
    /* A forgotten device gives way to a new one, rather than the user
     * being locked out of signing in. */
    if ((rc = pz_store_session_delete(db, s->user_id, evicted->id, err)) < 0) return rc;
  } else {
    evicted->id = 0;
  }
  return pz_store_session_insert(db, s, err);
}

int pz_auth_session_close(pz_db_t *db, int64_t user_id, int64_t session_id, pz_session_rec_t *closed,
                          pz_err_t *err) {
  int rc = pz_store_session_get(db, user_id, session_id, closed, err);
  if (rc == 0) rc = pz_store_session_delete(db, user_id, session_id, err);
  if (rc == PZ_ENOTFOUND) pz_err_set(err, PZ_ENOTFOUND, NULL, "no such session");
  return rc;
}

int pz_auth_profile_update(pz_db_t *db, int64_t user_id, const pz_str_t *display_name, const pz_str_t *bio,
                           int64_t now, pz_user_rec_t *out, pz_err_t *err) {
  int rc = pz_store_user_set_profile(db, user_id, display_name, bio, now, err);
  if (rc == 0) rc = pz_store_user_get(db, user_id, out, err);
  return rc;
}
