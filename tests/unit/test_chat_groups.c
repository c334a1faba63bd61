/* Unit tests of the group rules against a real database: roles, removal, succession, the end of a group, the cap,
 * invites and the wording of system messages. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plaza/auth.h"
#include "plaza/chat_groups.h"
#include "plaza/id.h"
#include "store_fixture.h"

static pz_store_t *st;
static const int64_t now_ms = 1750000000000LL;

/* Inputs and outputs of the step being run; each step is one committed write job. */
static struct {
  int64_t me, other, conv_id, now;
  int64_t ids[16];
  unsigned n_ids, max, count;
  int role;
  pz_str_t title;
  pz_conv_rec_t conv;
  pz_group_change_t ch;
  pz_invite_rec_t inv;
  pz_msg_rec_t msg;
  bool created;
  pz_chat_fanout_t fanout;
} T;

static int step(pz_store_run_fn run, pz_err_t *err) {
  pz_group_change_free(&T.ch);
  memset(&T.ch, 0, sizeof(T.ch));
  return pz_fix_run(st, run, NULL, err);
}

static int64_t make_user(const char *name) {
  char display[64];
  snprintf(display, sizeof(display), "%c%s", name[0] - 32, name + 1);
  return pz_fix_user(st, name, display, now_ms);
}

static int run_befriend(pz_db_t *db, pz_store_job_t *job) {
  return pz_store_contact_add(db, T.me, T.other, now_ms, &job->err);
}

static void befriend(int64_t a, int64_t b) {
  T.me = a, T.other = b;
  CHECK_EQ_INT(step(run_befriend, NULL), 0);
}

static int run_group(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_group_create(db, T.me, PZ_STR("Group"), T.ids, T.n_ids, pz_id_next(), T.now, &T.conv, &job->err);
}

/* A group of owner with the users in ids (contacts of the owner), created at T.now. */
static int64_t make_group(int64_t owner, const int64_t *ids, unsigned n) {
  for (unsigned i = 0; i < n; i++)
    befriend(owner, ids[i]);
  T.me = owner;
  memcpy(T.ids, ids, n * sizeof(int64_t));
  T.n_ids = n;
  CHECK_EQ_INT(step(run_group, NULL), 0);
  return T.conv.id;
}

static int run_direct(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_direct_open(db, T.me, T.other, pz_id_next(), now_ms, &T.conv, &T.created, &job->err);
}

static int run_add(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_group_add(db, T.me, T.conv_id, T.ids, T.n_ids, T.max, T.now, &T.ch, &job->err);
}
static int run_remove(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_group_remove(db, T.me, T.conv_id, T.other, &T.ch, &job->err);
}
static int run_role(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_group_set_role(db, T.me, T.conv_id, T.other, T.role, &T.ch, &job->err);
}
static int run_transfer(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_group_transfer(db, T.me, T.conv_id, T.other, &T.ch, &job->err);
}
static int run_rename(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_group_rename(db, T.me, T.conv_id, T.title, &T.ch, &job->err);
}
static int run_role_of(pz_db_t *db, pz_store_job_t *job) {
  return pz_store_member_role(db, T.conv_id, T.other, &T.role, NULL, &job->err);
}
static int run_count(pz_db_t *db, pz_store_job_t *job) {
  return pz_store_member_count(db, T.conv_id, &T.count, &job->err);
}
static int run_conv(pz_db_t *db, pz_store_job_t *job) { return pz_store_conv_get(db, T.conv_id, &T.conv, &job->err); }
static int run_invite(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_invite_create(db, T.me, T.conv_id, T.now, PZ_GROUP_INVITE_TTL_MS, &T.inv, &job->err);
}
static int run_invite_get(pz_db_t *db, pz_store_job_t *job) {
  pz_invite_rec_t inv;
  return pz_chat_invite_get(db, pz_str(T.inv.code), T.now, &inv, &T.conv, &T.count, &job->err);
}
static int run_join(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_invite_join(db, T.me, pz_str(T.inv.code), T.max, T.now, &T.ch, &job->err);
}
static int run_revoke(pz_db_t *db, pz_store_job_t *job) {
  return pz_chat_invite_revoke(db, T.me, pz_str(T.inv.code), T.now, &job->err);
}
static int run_send(pz_db_t *db, pz_store_job_t *job) {
  pz_msg_rec_t *stored = pz_malloc(sizeof(*stored));
  pz_chat_fanout_free(&T.fanout);
  int rc = pz_chat_send(db, &T.msg, PZ_STR("{\"type\":\"message.new\"}"), stored, &T.created, &T.fanout, &job->err);
  pz_free(stored);
  return rc;
}
static int run_msg_get(pz_db_t *db, pz_store_job_t *job) {
  pz_msg_rec_t *m = pz_malloc(sizeof(*m));
  int rc = pz_store_msg_get(db, T.conv_id, T.msg.id, m, &job->err);
  pz_free(m);
  return rc;
}

static int role_of(int64_t conv, int64_t user) {
  T.conv_id = conv, T.other = user, T.role = -1;
  return step(run_role_of, NULL) == 0 ? T.role : -1;
}

static unsigned count_of(int64_t conv) {
  T.conv_id = conv;
  CHECK_EQ_INT(step(run_count, NULL), 0);
  return T.count;
}

static int do_op(pz_store_run_fn run, int64_t me, int64_t conv, int64_t other, pz_err_t *err) {
  T.me = me, T.conv_id = conv, T.other = other;
  return step(run, err);
}

static void test_roles_and_removal(void) {
  pz_err_t err;
  T.now = now_ms;
  int64_t own = make_user("owner"), a1 = make_user("admin"), a2 = make_user("admintwo"), m1 = make_user("member"),
          m2 = make_user("membertwo");
  int64_t g = make_group(own, (int64_t[]){a1, a2, m1, m2}, 4);
  CHECK_EQ_INT(role_of(g, own), PZ_MEMBER_OWNER);
  CHECK_EQ_INT(role_of(g, m1), PZ_MEMBER_MEMBER);

  /* Roles: the owner only; an admin role survives the migration's new column. */
  T.role = PZ_MEMBER_ADMIN;
  CHECK_EQ_INT(do_op(run_role, own, g, a1, NULL), 0);
  CHECK_EQ_INT(T.ch.action, PZ_GROUP_ROLE);
  CHECK_EQ_STR(T.ch.text, "Owner made Admin an admin");
  CHECK_EQ_INT(role_of(g, a1), PZ_MEMBER_ADMIN);
  T.role = PZ_MEMBER_ADMIN;
  CHECK_EQ_INT(do_op(run_role, a1, g, m1, &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(err.api_code, "not_owner");
  T.role = PZ_MEMBER_ADMIN;
  CHECK_EQ_INT(do_op(run_role, own, g, a2, NULL), 0);
  T.role = PZ_MEMBER_ADMIN;
  CHECK_EQ_INT(do_op(run_role, own, g, a2, NULL), 0);
  CHECK_EQ_INT(T.ch.action, PZ_GROUP_NONE); /* already one */
  T.role = PZ_MEMBER_MEMBER;
  CHECK_EQ_INT(do_op(run_role, own, g, own, &err), PZ_EINVAL);

  /* Removal: members nobody, admins members only. */
  CHECK_EQ_INT(do_op(run_remove, m1, g, m2, &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(err.api_code, "not_admin");
  CHECK_EQ_INT(do_op(run_remove, a1, g, a2, &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(err.api_code, "not_owner");
  CHECK_EQ_INT(do_op(run_remove, a1, g, own, &err), PZ_EFORBIDDEN);
  CHECK_EQ_INT(count_of(g), 5);
  CHECK_EQ_INT(do_op(run_remove, a1, g, m2, NULL), 0);
  CHECK_EQ_INT(T.ch.action, PZ_GROUP_REMOVED);
  CHECK_EQ_INT(T.ch.n_users, 1);
  CHECK_EQ_INT(T.ch.user_ids[0], m2);
  CHECK_EQ_STR(T.ch.text, "Admin removed Membertwo");
  CHECK_EQ_INT(do_op(run_remove, own, g, m2, &err), PZ_ENOTFOUND);
  CHECK_EQ_INT(do_op(run_remove, own, g, a2, NULL), 0);
  CHECK_EQ_INT(count_of(g), 3);

  /* A removed member can neither send nor read. */
  memset(&T.msg, 0, sizeof(T.msg));
  T.msg.id = pz_id_next();
  T.msg.conversation_id = g;
  T.msg.sender_id = m2;
  snprintf(T.msg.client_id, sizeof(T.msg.client_id), "late");
  T.msg.text_len = (size_t)snprintf(T.msg.text, sizeof(T.msg.text), "hello?");
  CHECK_EQ_INT(step(run_send, &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(err.api_code, "not_member");

  /* Ownership transfer: the former owner becomes an admin. */
  CHECK_EQ_INT(do_op(run_transfer, a1, g, m1, &err), PZ_EFORBIDDEN);
  CHECK_EQ_INT(do_op(run_transfer, own, g, m2, &err), PZ_ENOTFOUND);
  CHECK_EQ_INT(do_op(run_transfer, own, g, m1, NULL), 0);
  CHECK_EQ_STR(T.ch.text, "Owner made Member the owner");
  CHECK_EQ_INT(T.ch.conv.owner_id, m1);
  CHECK_EQ_INT(role_of(g, m1), PZ_MEMBER_OWNER);
  CHECK_EQ_INT(role_of(g, own), PZ_MEMBER_ADMIN);
  pz_group_change_free(&T.ch);
}

static void test_succession_and_end(void) {
  T.now = now_ms;
  int64_t own = make_user("founder"), m1 = make_user("first");
  int64_t g = make_group(own, (int64_t[]){m1}, 1);
  /* Later joiners; the later one is made admin first. */
  int64_t a1 = make_user("second"), a2 = make_user("third");
  befriend(own, a1);
  befriend(own, a2);
  T.max = PZ_CHAT_GROUP_MAX_MEMBERS;
  T.ids[0] = a1, T.n_ids = 1, T.now = now_ms + 1000;
  CHECK_EQ_INT(do_op(run_add, own, g, 0, NULL), 0);
  T.ids[0] = a2, T.now = now_ms + 2000;
  CHECK_EQ_INT(do_op(run_add, own, g, 0, NULL), 0);
  T.role = PZ_MEMBER_ADMIN;
  CHECK_EQ_INT(do_op(run_role, own, g, a2, NULL), 0);
  T.role = PZ_MEMBER_ADMIN;
  CHECK_EQ_INT(do_op(run_role, own, g, a1, NULL), 0);

  /* The owner leaves: the longest-standing admin takes over, before the
   * longer-standing member. */
  CHECK_EQ_INT(do_op(run_remove, own, g, own, NULL), 0);
  CHECK_EQ_INT(T.ch.action, PZ_GROUP_LEFT);
  CHECK_EQ_INT(T.ch.new_owner_id, a1);
  CHECK_EQ_STR(T.ch.text, "Founder left the group; Second is now the owner");
  CHECK_EQ_INT(role_of(g, a1), PZ_MEMBER_OWNER);
  CHECK_EQ_INT(role_of(g, own), -1);
  T.conv_id = g;
  CHECK_EQ_INT(step(run_conv, NULL), 0);
  CHECK_EQ_INT(T.conv.owner_id, a1);
  CHECK_EQ_INT(do_op(run_remove, a1, g, a1, NULL), 0);
  CHECK_EQ_INT(T.ch.new_owner_id, a2);
  /* No admin left: the longest-standing member. */
  CHECK_EQ_INT(do_op(run_remove, a2, g, a2, NULL), 0);
  CHECK_EQ_INT(T.ch.new_owner_id, m1);
  CHECK_EQ_INT(role_of(g, m1), PZ_MEMBER_OWNER);

  /* A message and an invite that go with the group when it ends. */
  memset(&T.msg, 0, sizeof(T.msg));
  T.msg.id = pz_id_next();
  T.msg.conversation_id = g;
  T.msg.sender_id = m1;
  snprintf(T.msg.client_id, sizeof(T.msg.client_id), "last");
  T.msg.text_len = (size_t)snprintf(T.msg.text, sizeof(T.msg.text), "anyone?");
  CHECK_EQ_INT(step(run_send, NULL), 0);
  T.me = m1, T.conv_id = g, T.now = now_ms;
  CHECK_EQ_INT(step(run_invite, NULL), 0);
  CHECK_EQ_INT(do_op(run_remove, m1, g, m1, NULL), 0);
  CHECK(T.ch.ended);
  CHECK_EQ_INT(T.ch.new_owner_id, 0);
  T.conv_id = g;
  CHECK_EQ_INT(step(run_conv, NULL), PZ_ENOTFOUND);
  CHECK_EQ_INT(step(run_msg_get, NULL), PZ_ENOTFOUND);
  CHECK_EQ_INT(step(run_invite_get, NULL), PZ_ENOTFOUND);
  pz_group_change_free(&T.ch);
}

static void test_add_and_cap(void) {
  pz_err_t err;
  T.now = now_ms;
  int64_t own = make_user("host"), x = make_user("xavier");
  int64_t g = make_group(own, (int64_t[]){x}, 1);
  int64_t more[5];
  const char *names[5] = {"anna", "bert", "cleo", "dora", "emil"};
  for (int i = 0; i < 5; i++)
    more[i] = make_user(names[i]);
  int64_t stranger = make_user("stranger");

  /* Members do not add; non-contacts and unknown users are refused. */
  befriend(x, more[0]);
  T.max = 6;
  T.ids[0] = more[0], T.n_ids = 1;
  CHECK_EQ_INT(do_op(run_add, x, g, 0, &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(err.api_code, "not_admin");
  for (int i = 0; i < 5; i++)
    befriend(own, more[i]);
  T.ids[0] = more[0], T.ids[1] = stranger, T.n_ids = 2;
  CHECK_EQ_INT(do_op(run_add, own, g, 0, &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(err.api_code, "not_contacts");
  T.ids[0] = 12345, T.n_ids = 1;
  CHECK_EQ_INT(do_op(run_add, own, g, 0, &err), PZ_ENOTFOUND);
  CHECK_EQ_INT(count_of(g), 2);

  /* Five at once past a cap of six: group_full, nothing added. */
  memcpy(T.ids, more, sizeof(more));
  T.n_ids = 5;
  CHECK_EQ_INT(do_op(run_add, own, g, 0, &err), PZ_ECONFLICT);
  CHECK_EQ_STR(err.api_code, "group_full");
  CHECK_EQ_INT(count_of(g), 2);
  /* Four, with repeats, me and a member among them: exactly the cap. */
  int64_t mixed[] = {more[0], more[1], own, more[0], x, more[2], more[3]};
  memcpy(T.ids, mixed, sizeof(mixed));
  T.n_ids = 7;
  CHECK_EQ_INT(do_op(run_add, own, g, 0, NULL), 0);
  CHECK_EQ_INT(T.ch.action, PZ_GROUP_ADDED);
  CHECK_EQ_INT(T.ch.n_users, 4);
  CHECK_EQ_INT(T.ch.user_ids[0], more[0]);
  CHECK_EQ_INT(T.ch.user_ids[3], more[3]);
  CHECK_EQ_STR(T.ch.text, "Host added Anna, Bert, Cleo and Dora");
  CHECK_EQ_INT(count_of(g), 6);
  /* Members already: no change, even at the cap. */
  T.n_ids = 2;
  CHECK_EQ_INT(do_op(run_add, own, g, 0, NULL), 0);
  CHECK_EQ_INT(T.ch.action, PZ_GROUP_NONE);

  /* Joining by invite at the cap is group_full too. */
  T.me = own, T.conv_id = g, T.now = now_ms;
  CHECK_EQ_INT(step(run_invite, NULL), 0);
  T.me = more[4];
  CHECK_EQ_INT(step(run_join, &err), PZ_ECONFLICT);
  CHECK_EQ_STR(err.api_code, "group_full");
  T.max = 7;
  CHECK_EQ_INT(step(run_join, NULL), 0);
  CHECK_EQ_INT(T.ch.action, PZ_GROUP_JOINED);
  CHECK_EQ_STR(T.ch.text, "Emil joined the group with an invite link");
  CHECK_EQ_INT(step(run_join, NULL), 0);
  CHECK_EQ_INT(T.ch.action, PZ_GROUP_NONE);

  /* Names: "and N others" past three; renaming quotes the title. */
  T.title = PZ_STR("Readers");
  CHECK_EQ_INT(do_op(run_rename, x, g, 0, &err), PZ_EFORBIDDEN);
  CHECK_EQ_INT(do_op(run_rename, own, g, 0, NULL), 0);
  CHECK_EQ_STR(T.ch.text, "Host renamed the group to \xE2\x80\x9CReaders\xE2\x80\x9D");
  CHECK_EQ_STR(T.ch.conv.title, "Readers");
  CHECK_EQ_INT(do_op(run_rename, own, g, 0, NULL), 0);
  CHECK_EQ_INT(T.ch.action, PZ_GROUP_NONE);
  int64_t g2 = make_group(own, (int64_t[]){x}, 1);
  memcpy(T.ids, more, sizeof(more));
  T.n_ids = 5, T.max = PZ_CHAT_GROUP_MAX_MEMBERS;
  CHECK_EQ_INT(do_op(run_add, own, g2, 0, NULL), 0);
  CHECK_EQ_STR(T.ch.text, "Host added Anna, Bert, Cleo and 2 others");
  pz_group_change_free(&T.ch);
}

static void test_invites(void) {
  pz_err_t err;
  T.now = now_ms;
  int64_t own = make_user("inviter"), x = make_user("guestone"), guest = make_user("guesttwo");
  int64_t g = make_group(own, (int64_t[]){x}, 1);
  T.me = x, T.conv_id = g;
  CHECK_EQ_INT(step(run_invite, &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(err.api_code, "not_admin");
  T.me = own;
  CHECK_EQ_INT(step(run_invite, NULL), 0);
  CHECK_EQ_INT(strlen(T.inv.code), PZ_INVITE_CODE_LEN);
  CHECK_EQ_INT(T.inv.expires_at, now_ms + PZ_GROUP_INVITE_TTL_MS);
  char first[PZ_INVITE_CODE_LEN + 1];
  memcpy(first, T.inv.code, sizeof(first));
  CHECK_EQ_INT(step(run_invite, NULL), 0);
  CHECK(strcmp(first, T.inv.code) != 0);

  /* Valid until its last millisecond, gone (410) after. */
  T.now = now_ms + PZ_GROUP_INVITE_TTL_MS - 1;
  CHECK_EQ_INT(step(run_invite_get, NULL), 0);
  CHECK_EQ_INT(T.count, 2);
  CHECK_EQ_INT(T.conv.id, g);
  T.now = now_ms + PZ_GROUP_INVITE_TTL_MS;
  CHECK_EQ_INT(step(run_invite_get, &err), PZ_EUNPROCESSABLE);
  CHECK_EQ_STR(err.api_code, "invite_expired");
  CHECK_EQ_INT(pz_err_http_status(&err), 410);
  T.me = guest, T.max = PZ_CHAT_GROUP_MAX_MEMBERS;
  CHECK_EQ_INT(step(run_join, &err), PZ_EUNPROCESSABLE);
  CHECK_EQ_INT(count_of(g), 2);

  /* Revoked: members may not, admins may, twice; then 410 invite_revoked. */
  T.now = now_ms;
  T.me = x;
  CHECK_EQ_INT(step(run_revoke, &err), PZ_EFORBIDDEN);
  T.me = own;
  CHECK_EQ_INT(step(run_revoke, NULL), 0);
  CHECK_EQ_INT(step(run_revoke, NULL), 0);
  CHECK_EQ_INT(step(run_invite_get, &err), PZ_EUNPROCESSABLE);
  CHECK_EQ_STR(err.api_code, "invite_revoked");
  CHECK_EQ_INT(pz_err_http_status(&err), 410);

  /* Codes that are not codes never reach the database. */
  const char *bad[] = {"", "short", "AAAAAAAAAAAAAAAAAAAAA!", "AAAAAAAAAAAAAAAAAAAAAAA"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    snprintf(T.inv.code, sizeof(T.inv.code), "%s", bad[i]);
    CHECK_EQ_INT(step(run_invite_get, &err), PZ_ENOTFOUND);
  }
  /* Direct chats have no invites, titles or members to manage. */
  befriend(own, guest);
  T.me = own, T.other = guest;
  CHECK_EQ_INT(step(run_direct, NULL), 0);
  T.conv_id = T.conv.id;
  CHECK_EQ_INT(step(run_invite, &err), PZ_EINVAL);
  T.title = PZ_STR("Us");
  CHECK_EQ_INT(do_op(run_rename, own, T.conv_id, 0, &err), PZ_EINVAL);
  CHECK_EQ_INT(do_op(run_remove, own, T.conv_id, guest, &err), PZ_EINVAL);
  pz_group_change_free(&T.ch);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  char *dir = pz_fix_open(&st, "chat-groups");
  if (dir == NULL) return 1;
  RUN(test_roles_and_removal);
  RUN(test_succession_and_end);
  RUN(test_add_and_cap);
  RUN(test_invites);
  pz_group_change_free(&T.ch);
  pz_chat_fanout_free(&T.fanout);
  pz_fix_close(st, dir);
  TEST_EXIT();
}
