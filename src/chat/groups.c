/* Group rules run inside store write jobs: renaming, members and roles, ownership, invite links and their
 * announcements. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include "plaza/chat_groups.h"
#include "plaza/id.h"

#define INVITE_RAW_BYTES 16

_Static_assert(sodium_base64_ENCODED_LEN(INVITE_RAW_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING) ==
                   PZ_INVITE_CODE_LEN + 1,
               "PZ_INVITE_CODE_LEN must fit 16 bytes of base64url");
_Static_assert(PZ_GROUP_TEXT_MAX <= PZ_CHAT_TEXT_MAX_BYTES, "a system message is a message");
_Static_assert((PZ_GROUP_TEXT_NAMES + 1) * (PZ_DISPLAY_NAME_MAX_CHARS * 4) + PZ_CHAT_TITLE_MAX_CHARS * 4 + 200 <=
                   PZ_GROUP_TEXT_MAX,
               "the longest system message must fit its buffer");

void pz_group_change_free(pz_group_change_t *ch) {
  pz_free(ch->user_ids);
  ch->user_ids = NULL;
  ch->n_users = 0;
}

const char *pz_group_action_name(int action) {
  switch (action) {
    case PZ_GROUP_RENAMED:
      return "renamed";
    case PZ_GROUP_ADDED:
      return "added";
    case PZ_GROUP_REMOVED:
      return "removed";
    case PZ_GROUP_LEFT:
      return "left";
    case PZ_GROUP_JOINED:
      return "joined";
    case PZ_GROUP_ROLE:
      return "role";
    case PZ_GROUP_OWNER:
      return "owner";
    default:
      return "";
  }
}

/* ---- errors ---- */

static int not_admin(pz_err_t *err) {
  return pz_err_set(err, PZ_EFORBIDDEN, "not_admin", "only the group's owner and admins can do this");
}

static int not_owner(pz_err_t *err, const char *what) {
  return pz_err_set(err, PZ_EFORBIDDEN, "not_owner", "only the group's owner can %s", what);
}

static int not_in_group(pz_err_t *err) {
  return pz_err_set(err, PZ_ENOTFOUND, NULL, "that user is not a member of this group");
}

static int group_full(pz_err_t *err, unsigned max) {
  return pz_err_set(err, PZ_ECONFLICT, "group_full", "a group has at most %u members", max);
}

/* ---- the system message's text ---- */

static void put(pz_group_change_t *ch, const char *s) {
  size_t n = strlen(s);
  PZ_ASSERT(ch->text_len + n <= PZ_GROUP_TEXT_MAX); /* sizes bounded by the _Static_assert above */
  memcpy(ch->text + ch->text_len, s, n);
  ch->text_len += n;
  ch->text[ch->text_len] = '\0';
}

/* Puts the user's display name (stored names are checked UTF-8). */
static int put_name(pz_db_t *db, pz_group_change_t *ch, int64_t user_id, pz_err_t *err) {
  pz_user_rec_t u;
  int rc = pz_store_user_get(db, user_id, &u, err);
  if (rc == PZ_ENOTFOUND) {
    /* The account was deleted between the check and now: cannot happen in
     * one transaction, but a name is not worth failing the change for. */
    *err = (pz_err_t){0};
    put(ch, "someone");
    return 0;
  }
  if (rc < 0) return rc;
  put(ch, u.display_name[0] ? u.display_name : u.username);
  return 0;
}

/* "Bob", "Bob and Carol", "Bob, Carol and Dan", "Bob, Carol, Dan and 4 others". */
static int put_names(pz_db_t *db, pz_group_change_t *ch, pz_err_t *err) {
  unsigned shown = ch->n_users <= PZ_GROUP_TEXT_NAMES + 1 ? ch->n_users : PZ_GROUP_TEXT_NAMES;
  for (unsigned i = 0; i < shown; i++) {
    if (i > 0) put(ch, i + 1 == shown && shown == ch->n_users ? " and " : ", ");
    int rc = put_name(db, ch, ch->user_ids[i], err);
    if (rc < 0) return rc;
  }
  if (shown < ch->n_users) {
    char more[48];
    snprintf(more, sizeof(more), " and %u others", ch->n_users - shown);
    put(ch, more);
  }
  return 0;
}

/* Writes ch->text for its action. */
static int describe(pz_db_t *db, pz_group_change_t *ch, pz_err_t *err) {
  int rc = 0;
  ch->text_len = 0;
  ch->text[0] = '\0';
  switch (ch->action) {
    case PZ_GROUP_RENAMED:
      if ((rc = put_name(db, ch, ch->actor_id, err)) < 0) return rc;
      put(ch, " renamed the group to \xE2\x80\x9C"); /* “ */
      put(ch, ch->conv.title);
      put(ch, "\xE2\x80\x9D"); /* ” */
      return 0;
    case PZ_GROUP_ADDED:
    case PZ_GROUP_REMOVED:
      if ((rc = put_name(db, ch, ch->actor_id, err)) < 0) return rc;
      put(ch, ch->action == PZ_GROUP_ADDED ? " added " : " removed ");
      return put_names(db, ch, err);
    case PZ_GROUP_LEFT:
      if ((rc = put_name(db, ch, ch->actor_id, err)) < 0) return rc;
      put(ch, " left the group");
      if (ch->new_owner_id) {
        put(ch, "; ");
        if ((rc = put_name(db, ch, ch->new_owner_id, err)) < 0) return rc;
        put(ch, " is now the owner");
      }
      return 0;
    case PZ_GROUP_JOINED:
      if ((rc = put_name(db, ch, ch->actor_id, err)) < 0) return rc;
      put(ch, " joined the group with an invite link");
      return 0;
    case PZ_GROUP_ROLE:
    case PZ_GROUP_OWNER:
      if ((rc = put_name(db, ch, ch->actor_id, err)) < 0) return rc;
      put(ch, ch->action == PZ_GROUP_OWNER || ch->role == PZ_MEMBER_ADMIN ? " made " : " removed ");
      if ((rc = put_names(db, ch, err)) < 0) return rc;
      put(ch, ch->action == PZ_GROUP_OWNER  ? " the owner"
              : ch->role == PZ_MEMBER_ADMIN ? " an admin"
                                            : " from the admins");
      return 0;
    default:
      return 0;
  }
}

/* Fills ch for a change that happened, with the conversation as it now
 * is (unless the group ended) and its text. Takes users (malloc'd). */
static int changed(pz_db_t *db, pz_group_change_t *ch, int action, int64_t me, int64_t conv_id, int64_t *users,
                   unsigned n_users, pz_err_t *err) {
  ch->action = action;
  ch->actor_id = me;
  ch->user_ids = users;
  ch->n_users = n_users;
  int rc = 0;
  if (!ch->ended && (rc = pz_store_conv_get(db, conv_id, &ch->conv, err)) < 0) return rc;
  return describe(db, ch, err);
}

static int64_t *one_user(int64_t id) {
  int64_t *u = pz_malloc(sizeof(int64_t));
  *u = id;
  return u;
}

/* ---- who may do what ---- */

/* Loads group conv_id and me's role in it. */
static int load(pz_db_t *db, int64_t me, int64_t conv_id, pz_conv_rec_t *conv, int *my_role, pz_err_t *err) {
  int rc = pz_chat_member_check(db, me, conv_id, conv, err);
  if (rc < 0) return rc;
  if (conv->type != PZ_CONV_GROUP)
    return pz_err_set(err, PZ_EINVAL, NULL, "this is a direct chat: only groups have members to manage");
  return pz_store_member_role(db, conv_id, me, my_role, NULL, err);
}

int pz_chat_group_rename(pz_db_t *db, int64_t me, int64_t conv_id, pz_str_t title, pz_group_change_t *ch,
                         pz_err_t *err) {
  int role;
  int rc = load(db, me, conv_id, &ch->conv, &role, err);
  if (rc < 0) return rc;
  if (role == PZ_MEMBER_MEMBER) return not_admin(err);
  if (pz_str_eq_c(title, ch->conv.title)) return 0; /* nothing to announce */
  if ((rc = pz_store_conv_set_title(db, conv_id, title, err)) < 0) return rc;
  return changed(db, ch, PZ_GROUP_RENAMED, me, conv_id, NULL, 0, err);
}

int pz_chat_group_add(pz_db_t *db, int64_t me, int64_t conv_id, const int64_t *ids, unsigned n, unsigned max_members,
                      int64_t now, pz_group_change_t *ch, pz_err_t *err) {
  int role;
  int64_t *added = NULL;
  unsigned n_added = 0, n_members = 0;
  int rc = load(db, me, conv_id, &ch->conv, &role, err);
  if (rc < 0) goto out;
  if (role == PZ_MEMBER_MEMBER) {
    rc = not_admin(err);
    goto out;
  }
  /* In the order asked, without repeats, me or members already: n is at
   * most a group's size, so the quadratic scan stays small. */
  added = pz_malloc((n ? n : 1) * sizeof(int64_t));
  for (unsigned i = 0; i < n; i++) {
    bool seen = ids[i] == me;
    for (unsigned j = 0; j < n_added && !seen; j++)
      seen = added[j] == ids[i];
    if (seen) continue;
    rc = pz_store_member_role(db, conv_id, ids[i], NULL, NULL, err);
    if (rc == 0) continue;
    if (rc != PZ_ENOTFOUND) goto out;
    *err = (pz_err_t){0};
    added[n_added++] = ids[i];
  }
  char who[24];
  for (unsigned i = 0; i < n_added; i++) {
    pz_user_rec_t u;
    bool contact = false;
    pz_id_format(added[i], who);
    if ((rc = pz_store_user_get(db, added[i], &u, err)) == PZ_ENOTFOUND) {
      rc = pz_err_set(err, PZ_ENOTFOUND, NULL, "no user %s", who);
      goto out;
    }
    if (rc < 0 || (rc = pz_store_contact_exists(db, me, added[i], &contact, err)) < 0) goto out;
    if (!contact) {
      rc = pz_err_set(err, PZ_EFORBIDDEN, "not_contacts", "user %s is not one of your contacts", who);
      goto out;
    }
  }
  rc = 0;
  if (n_added == 0) goto out; /* all of them are members already */
  if ((rc = pz_store_member_count(db, conv_id, &n_members, err)) < 0) goto out;
  if (n_members + n_added > max_members) {
    rc = group_full(err, max_members);
    goto out;
  }
  for (unsigned i = 0; i < n_added; i++)
    if ((rc = pz_store_member_add(db, conv_id, added[i], PZ_MEMBER_MEMBER, now, err)) < 0) goto out;
  rc = changed(db, ch, PZ_GROUP_ADDED, me, conv_id, added, n_added, err);
  added = NULL; /* ch owns it */
out:
  pz_free(added);
  return rc;
}

static int leave(pz_db_t *db, int64_t me, int64_t conv_id, pz_group_change_t *ch, pz_err_t *err) {
  int role;
  unsigned n_members = 0;
  int rc = load(db, me, conv_id, &ch->conv, &role, err);
  if (rc < 0 || (rc = pz_store_member_count(db, conv_id, &n_members, err)) < 0) return rc;
  if (n_members <= 1) {
    /* Nobody is left to read the history: the group ends with it. */
    ch->ended = true;
    if ((rc = pz_store_conv_delete(db, conv_id, err)) < 0) return rc;
    return changed(db, ch, PZ_GROUP_LEFT, me, conv_id, one_user(me), 1, err);
  }
  if (role == PZ_MEMBER_OWNER) {
    int64_t heir = 0;
    if ((rc = pz_store_member_successor(db, conv_id, me, &heir, err)) < 0 ||
        (rc = pz_store_member_set_role(db, conv_id, heir, PZ_MEMBER_OWNER, err)) < 0 ||
        (rc = pz_store_conv_set_owner(db, conv_id, heir, err)) < 0)
      return rc;
    ch->new_owner_id = heir;
  }
  if ((rc = pz_store_member_remove(db, conv_id, me, err)) < 0) return rc;
  return changed(db, ch, PZ_GROUP_LEFT, me, conv_id, one_user(me), 1, err);
}

int pz_chat_group_remove(pz_db_t *db, int64_t me, int64_t conv_id, int64_t user_id, pz_group_change_t *ch,
                         pz_err_t *err) {
  if (user_id == me) return leave(db, me, conv_id, ch, err);
  int role, their_role;
  int rc = load(db, me, conv_id, &ch->conv, &role, err);
  if (rc < 0) return rc;
  if (role == PZ_MEMBER_MEMBER) return not_admin(err);
  if ((rc = pz_store_member_role(db, conv_id, user_id, &their_role, NULL, err)) == PZ_ENOTFOUND)
    return not_in_group(err);
  if (rc < 0) return rc;
  if (role == PZ_MEMBER_ADMIN && their_role != PZ_MEMBER_MEMBER) return not_owner(err, "remove an admin or the owner");
  if ((rc = pz_store_member_remove(db, conv_id, user_id, err)) < 0) return rc;
  return changed(db, ch, PZ_GROUP_REMOVED, me, conv_id, one_user(user_id), 1, err);
}

int pz_chat_group_set_role(pz_db_t *db, int64_t me, int64_t conv_id, int64_t user_id, int role, pz_group_change_t *ch,
                           pz_err_t *err) {
  PZ_ASSERT(role == PZ_MEMBER_ADMIN || role == PZ_MEMBER_MEMBER); /* decoded by the caller */
  int my_role, their_role;
  int rc = load(db, me, conv_id, &ch->conv, &my_role, err);
  if (rc < 0) return rc;
  if (my_role != PZ_MEMBER_OWNER) return not_owner(err, "change roles");
  if (user_id == me)
    return pz_err_set(err, PZ_EINVAL, NULL, "the owner stays the owner until they hand the group over");
  if ((rc = pz_store_member_role(db, conv_id, user_id, &their_role, NULL, err)) == PZ_ENOTFOUND)
    return not_in_group(err);
  if (rc < 0 || their_role == role) return rc;
  if ((rc = pz_store_member_set_role(db, conv_id, user_id, role, err)) < 0) return rc;
  ch->role = role;
  return changed(db, ch, PZ_GROUP_ROLE, me, conv_id, one_user(user_id), 1, err);
}

int pz_chat_group_transfer(pz_db_t *db, int64_t me, int64_t conv_id, int64_t user_id, pz_group_change_t *ch,
                           pz_err_t *err) {
  int my_role;
  int rc = load(db, me, conv_id, &ch->conv, &my_role, err);
  if (rc < 0) return rc;
  if (my_role != PZ_MEMBER_OWNER) return not_owner(err, "hand the group over");
  if (user_id == me) return 0; /* it is mine already */
  if ((rc = pz_store_member_role(db, conv_id, user_id, NULL, NULL, err)) == PZ_ENOTFOUND) return not_in_group(err);
  /* The former owner stays an admin: handing over is not leaving. */
  if (rc < 0 || (rc = pz_store_member_set_role(db, conv_id, user_id, PZ_MEMBER_OWNER, err)) < 0 ||
      (rc = pz_store_member_set_role(db, conv_id, me, PZ_MEMBER_ADMIN, err)) < 0 ||
      (rc = pz_store_conv_set_owner(db, conv_id, user_id, err)) < 0)
    return rc;
  ch->new_owner_id = user_id;
  return changed(db, ch, PZ_GROUP_OWNER, me, conv_id, one_user(user_id), 1, err);
}

/* ---- invites ---- */

int pz_chat_invite_create(pz_db_t *db, int64_t me, int64_t conv_id, int64_t now, int64_t ttl_ms, pz_invite_rec_t *out,
                          pz_err_t *err) {
  pz_conv_rec_t conv;
  int role;
  int rc = load(db, me, conv_id, &conv, &role, err);
  if (rc < 0) return rc;
  if (role == PZ_MEMBER_MEMBER) return not_admin(err);
  unsigned char raw[INVITE_RAW_BYTES];
  randombytes_buf(raw, sizeof(raw));
  memset(out, 0, sizeof(*out));
  sodium_bin2base64(out->code, sizeof(out->code), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out->conversation_id = conv_id;
  out->created_by = me;
  out->created_at = now;
  out->expires_at = now + ttl_ms;
  return pz_store_invite_insert(db, out, err);
}

static bool code_valid(pz_str_t code) {
  if (code.len != PZ_INVITE_CODE_LEN) return false;
  for (size_t i = 0; i < code.len; i++) {
    char c = code.ptr[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  }
  return true;
}

/* 410 Gone: the link existed and will not work again. */
static int gone(pz_err_t *err, const char *code, const char *message) {
  pz_err_set(err, PZ_EUNPROCESSABLE, code, "%s", message);
  err->status = 410;
  return PZ_EUNPROCESSABLE;
}

static int no_invite(pz_err_t *err) { return pz_err_set(err, PZ_ENOTFOUND, NULL, "no such invite"); }

/* The invite's row, revoked or not, as long as the code is one. */
static int invite_row(pz_db_t *db, pz_str_t code, pz_invite_rec_t *inv, pz_err_t *err) {
  if (!code_valid(code)) return no_invite(err);
  int rc = pz_store_invite_get(db, code, inv, err);
  return rc == PZ_ENOTFOUND ? no_invite(err) : rc;
}

int pz_chat_invite_get(pz_db_t *db, pz_str_t code, int64_t now, pz_invite_rec_t *inv, pz_conv_rec_t *conv,
                       unsigned *n_members, pz_err_t *err) {
  pz_conv_rec_t c;
  int rc = invite_row(db, code, inv, err);
  if (rc < 0) return rc;
  if (inv->revoked_at) return gone(err, "invite_revoked", "this invite link was revoked");
  if (inv->expires_at <= now) return gone(err, "invite_expired", "this invite link expired");
  /* A group that ended took its invites along (a foreign key cascade). */
  if ((rc = pz_store_conv_get(db, inv->conversation_id, conv ? conv : &c, err)) == PZ_ENOTFOUND) return no_invite(err);
  if (rc < 0 || n_members == NULL) return rc;
  return pz_store_member_count(db, inv->conversation_id, n_members, err);
}

int pz_chat_invite_join(pz_db_t *db, int64_t me, pz_str_t code, unsigned max_members, int64_t now,
                        pz_group_change_t *ch, pz_err_t *err) {
  pz_invite_rec_t inv;
  unsigned n_members = 0;
  int rc = pz_chat_invite_get(db, code, now, &inv, &ch->conv, &n_members, err);
  if (rc < 0) return rc;
  rc = pz_store_member_role(db, inv.conversation_id, me, NULL, NULL, err);
  if (rc != PZ_ENOTFOUND) return rc; /* 0: a member already, nothing to do */
  *err = (pz_err_t){0};
  if (n_members + 1 > max_members) return group_full(err, max_members);
  if ((rc = pz_store_member_add(db, inv.conversation_id, me, PZ_MEMBER_MEMBER, now, err)) < 0) return rc;
  return changed(db, ch, PZ_GROUP_JOINED, me, inv.conversation_id, one_user(me), 1, err);
}

int pz_chat_invite_revoke(pz_db_t *db, int64_t me, pz_str_t code, int64_t now, pz_err_t *err) {
  pz_invite_rec_t inv;
  pz_conv_rec_t conv;
  int role;
  int rc = invite_row(db, code, &inv, err);
  if (rc < 0 || (rc = load(db, me, inv.conversation_id, &conv, &role, err)) < 0) return rc;
  if (role == PZ_MEMBER_MEMBER) return not_admin(err);
  return pz_store_invite_revoke(db, code, now, err);
}

/* ---- announcing ---- */

typedef struct {
  pz_db_t *db;
  const int64_t *skip;
  unsigned n_skip;
  pz_str_t type, payload;
  int64_t now;
  pz_chat_fanout_t *fanout;
} except_t;

static int publish_unless_skipped(void *arg, int64_t user_id, pz_err_t *err) {
  except_t *e = arg;
  for (unsigned i = 0; i < e->n_skip; i++)
    if (e->skip[i] == user_id) return 0;
  return pz_chat_publish_user(e->db, user_id, e->type, e->payload, e->now, e->fanout, err);
}

int pz_chat_publish_except(pz_db_t *db, int64_t conv_id, const int64_t *skip, unsigned n_skip, pz_str_t type,
                           pz_str_t payload, int64_t now, pz_chat_fanout_t *fanout, pz_err_t *err) {
  except_t e = {db, skip, n_skip, type, payload, now, fanout};
  return pz_store_member_ids(db, conv_id, publish_unless_skipped, &e, err);
}

int pz_chat_group_post(pz_db_t *db, const pz_msg_rec_t *msg, pz_str_t payload, pz_chat_fanout_t *fanout,
                       pz_err_t *err) {
  int rc;
  if ((rc = pz_store_msg_insert(db, msg, payload, err)) < 0) return rc;
  return pz_chat_publish_new(db, msg->conversation_id, msg->id, msg->created_at, fanout, err);
}
