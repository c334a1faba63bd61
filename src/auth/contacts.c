/* Contact rules run inside store write jobs: requests, acceptance, removal and blocks. */
#include <stdio.h>
#include <string.h>
#include "plaza/auth.h"
#include "plaza/id.h"

static int no_such_user(pz_err_t *err) { return pz_err_set(err, PZ_ENOTFOUND, NULL, "no such user"); }

static int no_such_request(pz_err_t *err) {
  return pz_err_set(err, PZ_ENOTFOUND, NULL, "no such contact request");
}

/* Accepts request r (pending, addressed to r->to_id): both become contacts. */
static int accept_request(pz_db_t *db, pz_contact_req_rec_t *r, int64_t now, pz_err_t *err) {
  int rc = pz_store_contact_req_set_status(db, r->id, PZ_CONTACT_REQ_ACCEPTED, now, err);
  if (rc == 0) rc = pz_store_contact_add(db, r->from_id, r->to_id, now, err);
  if (rc == 0) {
    r->status = PZ_CONTACT_REQ_ACCEPTED;
    r->updated_at = now;
  }
  return rc;
}

int pz_auth_contact_request(pz_db_t *db, int64_t from_id, int64_t to_id, pz_str_t greeting, int64_t now,
                            pz_contact_req_rec_t *out, int *outcome, pz_err_t *err) {
  *outcome = 0;
  if (from_id == to_id)
    return pz_err_set(err, PZ_EINVAL, NULL, "cannot send a contact request to yourself");
  pz_user_rec_t to;
  int rc = pz_store_user_get(db, to_id, &to, err);
  if (rc == PZ_ENOTFOUND) return no_such_user(err);
  if (rc < 0) return rc;

  bool flag = false;
  if ((rc = pz_store_block_exists(db, to_id, from_id, &flag, err)) < 0) return rc;
  if (flag) return pz_err_set(err, PZ_EFORBIDDEN, "blocked", "this user does not accept your requests");
  if ((rc = pz_store_block_exists(db, from_id, to_id, &flag, err)) < 0) return rc;
  if (flag) return pz_err_set(err, PZ_ECONFLICT, "user_blocked", "you blocked this user: unblock them first");
  if ((rc = pz_store_contact_exists(db, from_id, to_id, &flag, err)) < 0) return rc;
  if (flag) return pz_err_set(err, PZ_ECONFLICT, "already_contacts", "you are already contacts");

  /* They asked me first: asking them back is saying yes. */
  rc = pz_store_contact_req_pending(db, to_id, from_id, out, err);
  if (rc == 0) {
    if ((rc = accept_request(db, out, now, err)) == 0) *outcome = PZ_AUTH_REQ_ACCEPTED_THEIRS;
    return rc;
  }
  if (rc != PZ_ENOTFOUND) return rc;
  /* Asking twice does not pester: the first request stands. */
  rc = pz_store_contact_req_pending(db, from_id, to_id, out, err);
  if (rc == 0) {
    *outcome = PZ_AUTH_REQ_EXISTING;
    return 0;
  }
  if (rc != PZ_ENOTFOUND) return rc;
  *err = (pz_err_t){0};

  memset(out, 0, sizeof(*out));
  out->id = pz_id_next();
  out->from_id = from_id;
  out->to_id = to_id;
  PZ_ASSERT(greeting.len < sizeof(out->greeting)); /* checked by the caller */
  if (greeting.len) memcpy(out->greeting, greeting.ptr, greeting.len);
  out->status = PZ_CONTACT_REQ_PENDING;
  out->created_at = out->updated_at = now;
  if ((rc = pz_store_contact_req_insert(db, out, err)) == 0) *outcome = PZ_AUTH_REQ_CREATED;
  return rc;
}

/* The request req_id if me is its addressee; anyone else gets 404, which
 * does not even tell that the request exists. */
static int addressed_to(pz_db_t *db, int64_t me, int64_t req_id, pz_contact_req_rec_t *out, pz_err_t *err) {
  int rc = pz_store_contact_req_get(db, req_id, out, err);
  if (rc == PZ_ENOTFOUND || (rc == 0 && out->to_id != me)) return no_such_request(err);
  return rc;
}

static int not_pending(const pz_contact_req_rec_t *r, pz_err_t *err) {
  return pz_err_set(err, PZ_ECONFLICT, "request_not_pending", "this request was already %s",
                    r->status == PZ_CONTACT_REQ_ACCEPTED ? "accepted" : "declined");
}

int pz_auth_contact_accept(pz_db_t *db, int64_t me, int64_t req_id, int64_t now, pz_contact_req_rec_t *out,
                           pz_err_t *err) {
  int rc = addressed_to(db, me, req_id, out, err);
  if (rc < 0) return rc;
  if (out->status == PZ_CONTACT_REQ_ACCEPTED) return 0;
  if (out->status != PZ_CONTACT_REQ_PENDING) return not_pending(out, err);
  return accept_request(db, out, now, err);
}

int pz_auth_contact_decline(pz_db_t *db, int64_t me, int64_t req_id, int64_t now, pz_contact_req_rec_t *out,
                            pz_err_t *err) {
  int rc = addressed_to(db, me, req_id, out, err);
  if (rc < 0) return rc;
  if (out->status == PZ_CONTACT_REQ_DECLINED) return 0;
  if (out->status != PZ_CONTACT_REQ_PENDING) return not_pending(out, err);
  if ((rc = pz_store_contact_req_set_status(db, out->id, PZ_CONTACT_REQ_DECLINED, now, err)) == 0) {
    out->status = PZ_CONTACT_REQ_DECLINED;
    out->updated_at = now;
  }
  return rc;
}

int pz_auth_contact_remove(pz_db_t *db, int64_t me, int64_t other, pz_err_t *err) {
  bool removed = false;
  int rc = pz_store_contact_remove(db, me, other, &removed, err);
  if (rc == 0 && !removed) rc = pz_err_set(err, PZ_ENOTFOUND, NULL, "this user is not one of your contacts");
  return rc;
}

int pz_auth_block(pz_db_t *db, int64_t me, int64_t other, int64_t now, bool *created, int64_t *since,
                  pz_user_rec_t *user, pz_err_t *err) {
  if (me == other) return pz_err_set(err, PZ_EINVAL, NULL, "cannot block yourself");
  int rc = pz_store_user_get(db, other, user, err);
  if (rc == PZ_ENOTFOUND) return no_such_user(err);
  if (rc < 0) return rc;
  if ((rc = pz_store_block_add(db, me, other, now, created, since, err)) < 0) return rc;
  if ((rc = pz_store_contact_remove(db, me, other, NULL, err)) < 0) return rc;
  return pz_store_contact_req_delete_pending(db, me, other, err);
}

int pz_auth_unblock(pz_db_t *db, int64_t me, int64_t other, pz_err_t *err) {
  bool removed = false;
  int rc = pz_store_block_remove(db, me, other, &removed, err);
  if (rc == 0 && !removed) rc = pz_err_set(err, PZ_ENOTFOUND, NULL, "you have not blocked this user");
  return rc;
}
