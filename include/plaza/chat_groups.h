/* Groups: who may rename, add, remove, promote and hand over a group, and invite links, with no SQL, sockets or JSON.
 */
#ifndef PLAZA_CHAT_GROUPS_H
#define PLAZA_CHAT_GROUPS_H

#include <stdbool.h>
#include <stdint.h>
#include "plaza/chat.h"
#include "plaza/error.h"
#include "plaza/store_groups.h"
#include "plaza/str.h"

#define PZ_GROUP_INVITE_TTL_MS (7LL * 24 * 60 * 60 * 1000)
/* A system message names at most this many users; "and N others" follows. */
#define PZ_GROUP_TEXT_NAMES 3
#define PZ_GROUP_TEXT_MAX 2048 /* bytes: four names of 256 bytes and a title fit */

/* Event types of membership changes. */
#define PZ_EVENT_CONVERSATION_UPDATED "conversation.updated"
#define PZ_EVENT_CONVERSATION_REMOVED "conversation.removed"

/* What a change did. The api turns it into a system message and events. */
enum {
  PZ_GROUP_NONE = 0, /* the request changed nothing (it was done already) */
  PZ_GROUP_RENAMED,
  PZ_GROUP_ADDED,
  PZ_GROUP_REMOVED,
  PZ_GROUP_LEFT,
  PZ_GROUP_JOINED,
  PZ_GROUP_ROLE,
  PZ_GROUP_OWNER,
};

typedef struct pz_group_change_s {
  int action; /* PZ_GROUP_* */
  int64_t actor_id;
  /* The users the change is about: added, removed, who left or joined,
   * given a role or the ownership. Owned; pz_group_change_free. */
  int64_t *user_ids;
  unsigned n_users;
  int64_t new_owner_id; /* LEFT: who owns the group now that its owner left; 0 otherwise */
  int role;             /* ROLE: the role given (PZ_MEMBER_ADMIN or PZ_MEMBER_MEMBER) */
  bool ended;           /* LEFT: the last member left; the group and its history are gone */
  pz_conv_rec_t conv;   /* the conversation after the change */
  size_t text_len;
  char text[PZ_GROUP_TEXT_MAX + 1]; /* the system message, e.g. "Ann added Bob and Carol" */
} pz_group_change_t;

void pz_group_change_free(pz_group_change_t *ch);
/* The name of an action in the API: "renamed", "added", "removed", "left",
 * "joined", "role", "owner"; "" for none. Any thread. */
const char *pz_group_action_name(int action);

/* Each function below runs inside a write job and returns 0 or a negative
 * PZ_E code with err filled. ch (zeroed by the caller) is filled when one
 * returns 0; ch->action is PZ_GROUP_NONE when nothing had to change. Common
 * errors: 404 no such conversation; 403 not_member (me is not a member);
 * 400 the conversation is a direct chat. */

/* Renames group conv_id (title checked by the caller): 403 not_admin
 * unless me is its owner or an admin. */
int pz_chat_group_rename(pz_db_t *db, int64_t me, int64_t conv_id, pz_str_t title, pz_group_change_t *ch,
                         pz_err_t *err);
/* Adds users ids[0..n) (duplicates and members already are ignored):
 * 403 not_admin unless me is the owner or an admin; 404 an unknown user;
 * 403 not_contacts unless each is a contact of me; 409 group_full when the
 * group would have more than max_members. */
int pz_chat_group_add(pz_db_t *db, int64_t me, int64_t conv_id, const int64_t *ids, unsigned n, unsigned max_members,
                      int64_t now, pz_group_change_t *ch, pz_err_t *err);
/* Removes user_id; me removing themselves leaves. The owner removes
 * anyone, an admin removes members only (403 not_owner for the owner or
 * another admin), a member no one (403 not_admin); 404 when user_id is not
 * a member. The owner leaving hands the group to the longest-standing
 * admin, else member; the last member leaving ends the group, which is
 * deleted with its history. */
int pz_chat_group_remove(pz_db_t *db, int64_t me, int64_t conv_id, int64_t user_id, pz_group_change_t *ch,
                         pz_err_t *err);
/* Gives member user_id the role (PZ_MEMBER_ADMIN or PZ_MEMBER_MEMBER):
 * owner only (403 not_owner); 400 for the owner themselves; 404 not a member. */
int pz_chat_group_set_role(pz_db_t *db, int64_t me, int64_t conv_id, int64_t user_id, int role, pz_group_change_t *ch,
                           pz_err_t *err);
/* Hands the group over to member user_id, who becomes its owner, and me
 * an admin: owner only (403 not_owner); 404 not a member. */
int pz_chat_group_transfer(pz_db_t *db, int64_t me, int64_t conv_id, int64_t user_id, pz_group_change_t *ch,
                           pz_err_t *err);

/* ---- invites ---- */

/* Creates an invite to conv_id valid ttl_ms from now (normally
 * PZ_GROUP_INVITE_TTL_MS): 403 not_admin unless me is the owner or an
 * admin. Writer. */
int pz_chat_invite_create(pz_db_t *db, int64_t me, int64_t conv_id, int64_t now, int64_t ttl_ms, pz_invite_rec_t *out,
                          pz_err_t *err);
/* Reads the invite code at now with its group: 404 unknown (or a code that
 * is not one); 410 invite_revoked; 410 invite_expired. conv and n_members
 * may be NULL. Any job. */
int pz_chat_invite_get(pz_db_t *db, pz_str_t code, int64_t now, pz_invite_rec_t *inv, pz_conv_rec_t *conv,
                       unsigned *n_members, pz_err_t *err);
/* Joins the group of invite code as a member: the errors of
 * pz_chat_invite_get, and 409 group_full. A member already changes
 * nothing (ch->action PZ_GROUP_NONE). Writer. */
int pz_chat_invite_join(pz_db_t *db, int64_t me, pz_str_t code, unsigned max_members, int64_t now,
                        pz_group_change_t *ch, pz_err_t *err);
/* Revokes invite code (revoking twice is no error): 404 unknown; 403
 * not_member / not_admin unless me is the owner or an admin of its group. Writer. */
int pz_chat_invite_revoke(pz_db_t *db, int64_t me, pz_str_t code, int64_t now, pz_err_t *err);

/* ---- announcing a change: inside the same write job ---- */

/* Appends an event to every member of conv_id but those in skip[0..n_skip). */
int pz_chat_publish_except(pz_db_t *db, int64_t conv_id, const int64_t *skip, unsigned n_skip, pz_str_t type,
                           pz_str_t payload, int64_t now, pz_chat_fanout_t *fanout, pz_err_t *err);
/* Stores system message msg (filled by the caller: type "system", the
 * actor as its sender, its text and body) and appends its message.new event (payload) to
 * every member. */
int pz_chat_group_post(pz_db_t *db, const pz_msg_rec_t *msg, pz_str_t payload, pz_chat_fanout_t *fanout, pz_err_t *err);

#endif
