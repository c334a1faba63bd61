/* Typed store functions for groups: members with their roles, titles, ownership and invite links. */
#ifndef PLAZA_STORE_GROUPS_H
#define PLAZA_STORE_GROUPS_H

#include <stdbool.h>
#include <stdint.h>
#include "plaza/error.h"
#include "plaza/store.h"
#include "plaza/store_auth.h"
#include "plaza/store_chat.h"
#include "plaza/str.h"

/* An invite code: 16 random bytes in unpadded base64url. */
#define PZ_INVITE_CODE_LEN 22

/* One member of a conversation, as the conversation object shows it. */
typedef struct pz_member_rec_s {
  pz_user_rec_t user;
  int role; /* PZ_MEMBER_* */
  int64_t joined_at;
  int64_t last_read_id;    /* how far they read: a message id, 0 for none */
  int64_t delivered_up_to; /* how far their devices received: a message id, 0 for none */
} pz_member_rec_t;

typedef struct pz_invite_rec_s {
  char code[PZ_INVITE_CODE_LEN + 1];
  int64_t conversation_id;
  int64_t created_by;
  int64_t created_at;
  int64_t expires_at;
  int64_t revoked_at; /* 0 while it stands */
} pz_invite_rec_t;

/* A member row, borrowed for the call; a negative return stops the listing. */
typedef int (*pz_store_member_rec_cb)(void *arg, const pz_member_rec_t *member, pz_err_t *err);

/* Every function below runs inside a store job, takes the job's connection
 * first, and returns 0 or a negative PZ_E code with err filled, as in
 * store_chat.h (PZ_ENOTFOUND for an absent row). err must not be NULL. */

/* ---- members ---- */

/* The members of conv_id with their users, in the order they joined
 * (joined_at, then user id). */
int pz_store_member_list(pz_db_t *db, int64_t conv_id, pz_store_member_rec_cb cb, void *arg, pz_err_t *err);
/* user_id's role in conv_id and when they joined (either may be NULL);
 * PZ_ENOTFOUND unless a member. */
int pz_store_member_role(pz_db_t *db, int64_t conv_id, int64_t user_id, int *role, int64_t *joined_at, pz_err_t *err);
/* Sets a member's role; PZ_ENOTFOUND unless a member. Writer. */
int pz_store_member_set_role(pz_db_t *db, int64_t conv_id, int64_t user_id, int role, pz_err_t *err);
/* Removes a member; PZ_ENOTFOUND unless a member. Writer. */
int pz_store_member_remove(pz_db_t *db, int64_t conv_id, int64_t user_id, pz_err_t *err);
/* How many members conv_id has. */
int pz_store_member_count(pz_db_t *db, int64_t conv_id, unsigned *n, pz_err_t *err);
/* The member who takes over a group when its owner (except) goes: the
 * longest-standing admin, else the longest-standing member.
 * PZ_ENOTFOUND when except is the only member. */
int pz_store_member_successor(pz_db_t *db, int64_t conv_id, int64_t except, int64_t *user_id, pz_err_t *err);

/* ---- conversations ---- */

/* Sets a group's title (checked by the caller). Writer. */
int pz_store_conv_set_title(pz_db_t *db, int64_t conv_id, pz_str_t title, pz_err_t *err);
/* Sets a group's owner_id (the member roles are the caller's). Writer. */
int pz_store_conv_set_owner(pz_db_t *db, int64_t conv_id, int64_t owner_id, pz_err_t *err);
/* Deletes a conversation with everything that hangs on it: its members,
 * messages (and their reactions, receipts, links) and invites. Writer. */
int pz_store_conv_delete(pz_db_t *db, int64_t conv_id, pz_err_t *err);
/* conv_id as user_id sees it in their list (its last message, their read
 * marker, their unread count); PZ_ENOTFOUND unless user_id is a member. */
int pz_store_conv_view(pz_db_t *db, int64_t user_id, int64_t conv_id, pz_conv_view_t *out, pz_err_t *err);

/* ---- invites ---- */

/* Inserts inv; PZ_ECONFLICT should its code exist (128 random bits: never). Writer. */
int pz_store_invite_insert(pz_db_t *db, const pz_invite_rec_t *inv, pz_err_t *err);
/* The invite with code, revoked or expired ones included. */
int pz_store_invite_get(pz_db_t *db, pz_str_t code, pz_invite_rec_t *out, pz_err_t *err);
/* Marks an invite revoked at now unless it is already. Writer. */
int pz_store_invite_revoke(pz_db_t *db, pz_str_t code, int64_t now, pz_err_t *err);

#endif
