/* Messaging rules run inside store write jobs: opening chats, sending, read markers and the fan-out of events. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plaza/chat.h"
#include "plaza/id.h"

/* ---- fan-out ---- */

void pz_chat_fanout_free(pz_chat_fanout_t *f) {
  pz_free(f->items);
  memset(f, 0, sizeof(*f));
}

static void fanout_add(pz_chat_fanout_t *f, int64_t user_id, int64_t seq) {
  if (f->n == f->cap) {
    f->cap = f->cap ? f->cap * 2 : 8;
    f->items = pz_realloc(f->items, f->cap * sizeof(*f->items));
  }
  f->items[f->n].user_id = user_id;
  f->items[f->n].seq = seq;
  f->n++;
}

typedef struct {
  pz_db_t *db;
  pz_str_t type, payload;
  int64_t message_id; /* 0: the event carries no message */
  int64_t now;
  pz_chat_fanout_t *fanout;
  bool shared; /* the payload is the one kept with the message */
} publish_t;

static int publish_member(void *arg, int64_t user_id, pz_err_t *err) {
  publish_t *p = arg;
  int64_t seq;
  int rc = p->shared ? pz_store_event_append_shared(p->db, user_id, p->type, p->message_id, p->now, &seq, err)
                     : pz_store_event_append_msg(p->db, user_id, p->type, p->message_id, p->payload, p->now, &seq, err);
  if (rc == 0) fanout_add(p->fanout, user_id, seq);
  return rc;
}

int pz_chat_publish(pz_db_t *db, int64_t conv_id, pz_str_t type, pz_str_t payload, int64_t now,
                    pz_chat_fanout_t *fanout, pz_err_t *err) {
  return pz_chat_publish_msg(db, conv_id, 0, type, payload, now, fanout, err);
}

int pz_chat_publish_msg(pz_db_t *db, int64_t conv_id, int64_t message_id, pz_str_t type, pz_str_t payload, int64_t now,
                        pz_chat_fanout_t *fanout, pz_err_t *err) {
  publish_t p = {db, type, payload, message_id, now, fanout, false};
  return pz_store_member_ids(db, conv_id, publish_member, &p, err);
}

int pz_chat_publish_new(pz_db_t *db, int64_t conv_id, int64_t message_id, int64_t now, pz_chat_fanout_t *fanout,
                        pz_err_t *err) {
  publish_t p = {db, PZ_STR(PZ_EVENT_MESSAGE_NEW), PZ_STR_NULL, message_id, now, fanout, true};
  return pz_store_member_ids(db, conv_id, publish_member, &p, err);
}

/* ---- membership ---- */

static int not_member(pz_err_t *err) {
  return pz_err_set(err, PZ_EFORBIDDEN, "not_member", "you are not a member of this conversation");
}

static int no_conversation(pz_err_t *err) { return pz_err_set(err, PZ_ENOTFOUND, NULL, "no such conversation"); }

int pz_chat_member_check(pz_db_t *db, int64_t me, int64_t conv_id, pz_conv_rec_t *out, pz_err_t *err) {
  pz_conv_rec_t conv;
  int rc = pz_store_conv_get(db, conv_id, out ? out : &conv, err);
  if (rc == PZ_ENOTFOUND) return no_conversation(err);
  if (rc < 0) return rc;
  rc = pz_store_member_get(db, conv_id, me, NULL, err);
  return rc == PZ_ENOTFOUND ? not_member(err) : rc;
}

/* ---- opening conversations ---- */

static int blocked(pz_err_t *err) { return pz_err_set(err, PZ_EFORBIDDEN, "blocked", "one of you blocked the other"); }

static int not_contacts(pz_err_t *err, const char *who) {
  return pz_err_set(err, PZ_EFORBIDDEN, "not_contacts", "%s not one of your contacts", who);
}

int pz_chat_direct_open(pz_db_t *db, int64_t me, int64_t other, int64_t new_id, int64_t now, pz_conv_rec_t *out,
                        bool *created, pz_err_t *err) {
  *created = false;
  if (me == other) return pz_err_set(err, PZ_EINVAL, NULL, "cannot start a direct chat with yourself");
  /* A chat that exists stays open to both: what they may send is decided
   * per message. */
  int rc = pz_store_conv_find_direct(db, me, other, out, err);
  if (rc != PZ_ENOTFOUND) return rc;
  *err = (pz_err_t){0};
  pz_user_rec_t u;
  if ((rc = pz_store_user_get(db, other, &u, err)) == PZ_ENOTFOUND)
    return pz_err_set(err, PZ_ENOTFOUND, NULL, "no such user");
  if (rc < 0) return rc;
  bool flag = false;
  if ((rc = pz_store_block_exists(db, other, me, &flag, err)) < 0) return rc;
  if (!flag && (rc = pz_store_block_exists(db, me, other, &flag, err)) < 0) return rc;
  if (flag) return blocked(err);
  if ((rc = pz_store_contact_exists(db, me, other, &flag, err)) < 0) return rc;
  if (!flag) {
    /* Strangers need the other's leave (their direct_chat_from setting). */
    pz_settings_rec_t settings;
    if ((rc = pz_store_settings_get(db, other, &settings, err)) < 0) return rc;
    if (settings.direct_chat_from != PZ_DIRECT_FROM_EVERYONE) return not_contacts(err, "this user is");
  }

  memset(out, 0, sizeof(*out));
  out->id = new_id;
  out->type = PZ_CONV_DIRECT;
  out->created_at = now;
  if ((rc = pz_store_conv_insert(db, out, me, other, err)) < 0 ||
      (rc = pz_store_member_add(db, new_id, me, PZ_MEMBER_MEMBER, now, err)) < 0 ||
      (rc = pz_store_member_add(db, new_id, other, PZ_MEMBER_MEMBER, now, err)) < 0)
    return rc;
  *created = true;
  return 0;
}

static int cmp_id(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int pz_chat_group_create(pz_db_t *db, int64_t me, pz_str_t title, const int64_t *ids, unsigned n, int64_t new_id,
                         int64_t now, pz_conv_rec_t *out, pz_err_t *err) {
  int rc = 0;
  int64_t *others = pz_malloc((n ? n : 1) * sizeof(int64_t));
  unsigned n_others = 0;
  /* Sorted, the duplicates sit side by side. */
  memcpy(others, ids, n * sizeof(int64_t));
  qsort(others, n, sizeof(int64_t), cmp_id);
  for (unsigned i = 0; i < n; i++)
    if (others[i] != me && (n_others == 0 || others[n_others - 1] != others[i])) others[n_others++] = others[i];
  if (n_others == 0) {
    rc = pz_err_set(err, PZ_EINVAL, NULL, "member_ids must name at least one of your contacts");
    goto out;
  }
  if (n_others + 1 > PZ_CHAT_GROUP_MAX_MEMBERS) {
    rc = pz_err_set(err, PZ_EINVAL, NULL, "a group has at most %d members", PZ_CHAT_GROUP_MAX_MEMBERS);
    goto out;
  }
  for (unsigned i = 0; i < n_others; i++) {
    bool contact = false;
    if ((rc = pz_store_contact_exists(db, me, others[i], &contact, err)) < 0) goto out;
    if (!contact) {
      char digits[24], who[48];
      pz_id_format(others[i], digits);
      snprintf(who, sizeof(who), "user %s is", digits);
      rc = not_contacts(err, who);
      goto out;
    }
  }
  memset(out, 0, sizeof(*out));
  out->id = new_id;
  out->type = PZ_CONV_GROUP;
  PZ_ASSERT(title.len < sizeof(out->title)); /* checked by the caller */
  memcpy(out->title, title.ptr, title.len);
  out->owner_id = me;
  out->created_at = now;
  if ((rc = pz_store_conv_insert(db, out, 0, 0, err)) < 0) goto out;
  if ((rc = pz_store_member_add(db, new_id, me, PZ_MEMBER_OWNER, now, err)) < 0) goto out;
  for (unsigned i = 0; i < n_others; i++)
    if ((rc = pz_store_member_add(db, new_id, others[i], PZ_MEMBER_MEMBER, now, err)) < 0) goto out;
out:
  pz_free(others);
  return rc;
}

/* ---- messages ---- */

/* A conversation's members, read once per send: the sender's membership,
 * a direct chat's other side and the fan-out all come from one scan. */
typedef struct {
  int64_t *ids;
  unsigned n, cap;
  int64_t small[8]; /* a direct chat, a small group: no allocation */
} members_t;

static void members_init(members_t *m) {
  *m = (members_t){0};
  m->ids = m->small;
  m->cap = sizeof(m->small) / sizeof(m->small[0]);
}

static void members_free(members_t *m) {
  if (m->ids != m->small) pz_free(m->ids);
}

static int collect_member(void *arg, int64_t user_id, pz_err_t *err) {
  (void)err;
  members_t *m = arg;
  if (m->n == m->cap) {
    m->cap *= 2;
    if (m->ids == m->small) {
      m->ids = pz_malloc(m->cap * sizeof(int64_t));
      memcpy(m->ids, m->small, sizeof(m->small));
    } else {
      m->ids = pz_realloc(m->ids, m->cap * sizeof(int64_t));
    }
  }
  m->ids[m->n++] = user_id;
  return 0;
}

/* Copies a message without the unused tails of its text and body: the
 * record is some 40 KiB, and a copy of all of it cost the writer more
 * than any statement of a send. */
static void msg_copy(pz_msg_rec_t *dst, const pz_msg_rec_t *src) {
  size_t text_len = src->text_len < PZ_CHAT_TEXT_MAX_BYTES ? src->text_len : PZ_CHAT_TEXT_MAX_BYTES;
  size_t body_len = src->body_len < PZ_CHAT_BODY_MAX_BYTES ? src->body_len : PZ_CHAT_BODY_MAX_BYTES;
  memcpy(dst, src, offsetof(pz_msg_rec_t, text));
  memcpy(dst->text, src->text, text_len);
  dst->text[text_len] = '\0';
  memcpy(dst->type, src->type, offsetof(pz_msg_rec_t, body) - offsetof(pz_msg_rec_t, type));
  memcpy(dst->body, src->body, body_len);
  dst->body[body_len] = '\0';
  memcpy(&dst->edited_at, &src->edited_at, sizeof(*dst) - offsetof(pz_msg_rec_t, edited_at));
}

static int blocked_send(pz_err_t *err) {
  return pz_err_set(err, PZ_EFORBIDDEN, "blocked", "this user does not accept your messages");
}

/* What a new message must pass; stored is scratch. */
static int send_rules(pz_db_t *db, const pz_conv_rec_t *conv, int64_t other, const pz_msg_rec_t *msg,
                      pz_err_t *err) {
  int rc;
  if (conv->type == PZ_CONV_DIRECT && other) {
    bool flag = false;
    if ((rc = pz_store_block_exists(db, other, msg->sender_id, &flag, err)) < 0) return rc;
    if (flag) return blocked_send(err);
  }
  if (msg->reply_to) {
    bool found = false;
    if ((rc = pz_store_msg_exists(db, conv->id, msg->reply_to, &found, err)) < 0) return rc;
    if (!found) return pz_err_set(err, PZ_EINVAL, NULL, "reply_to is not a message of this conversation");
  }
  return pz_chat_mentions_check(db, conv->id, msg->mentions, msg->n_mentions, err);
}

/* The conversation of a send, its members, and a direct chat's other
 * side; not_member unless the sender is one of them. */
static int send_members(pz_db_t *db, const pz_msg_rec_t *msg, pz_conv_rec_t *conv, members_t *members, int64_t *other,
                        pz_err_t *err) {
  int rc = pz_store_conv_get(db, msg->conversation_id, conv, err);
  if (rc == PZ_ENOTFOUND) return no_conversation(err);
  if (rc < 0) return rc;
  if ((rc = pz_store_member_ids(db, conv->id, collect_member, members, err)) < 0) return rc;
  bool member = false;
  for (unsigned i = 0; i < members->n; i++) {
    if (members->ids[i] == msg->sender_id)
      member = true;
    else
      *other = members->ids[i];
  }
  return member ? 0 : not_member(err);
}

static int send_checked(pz_db_t *db, const pz_msg_rec_t *msg, pz_str_t payload, pz_msg_rec_t *stored, bool *created,
                        pz_chat_fanout_t *fanout, members_t *members, pz_err_t *err) {
  pz_conv_rec_t conv;
  int64_t other = 0;
  int rc = send_members(db, msg, &conv, members, &other, err);
  if (rc < 0) return rc;
  rc = send_rules(db, &conv, other, msg, err);
  if (rc == 0) rc = pz_store_msg_insert(db, msg, payload, err);
  if (rc < 0) {
    /* A retry is answered with the first message even if the rules changed
     * since (a block, a reply_to): it was accepted then. The unique index
     * of client ids refuses the insert of a retry, so only a refused send
     * looks for the first one, and a new message costs no look-up. */
    pz_err_t refused = *err;
    int found = pz_store_msg_by_client(db, msg->conversation_id, msg->sender_id, pz_str(msg->client_id), stored, err);
    if (found == 0) {
      *err = (pz_err_t){0};
      return 0;
    }
    if (found != PZ_ENOTFOUND) return found;
    *err = refused;
    return rc;
  }
  /* The payload was built once by the caller and is kept once, with the
   * message; every member's event row serves it. */
  for (unsigned i = 0; i < members->n; i++) {
    int64_t seq;
    if ((rc = pz_store_event_append_shared(db, members->ids[i], PZ_STR(PZ_EVENT_MESSAGE_NEW), msg->id,
                                           msg->created_at, &seq, err)) < 0)
      return rc;
    fanout_add(fanout, members->ids[i], seq);
  }
  if (stored != msg) msg_copy(stored, msg);
  *created = true;
  return 0;
}

int pz_chat_send(pz_db_t *db, const pz_msg_rec_t *msg, pz_str_t payload, pz_msg_rec_t *stored, bool *created,
                 pz_chat_fanout_t *fanout, pz_err_t *err) {
  *created = false;
  members_t members;
  members_init(&members);
  int rc = send_checked(db, msg, payload, stored, created, fanout, &members, err);
  members_free(&members);
  return rc;
}

/* The writer's checks (send_members, send_rules) on the log thread's
 * memory of the conversation. */
int pz_chat_send_log(pz_db_t *db, const pz_msg_rec_t *msg, pz_str_t payload, pz_chat_fanout_t *fanout, pz_buf_t *rec,
                     pz_err_t *err) {
  if (msg->reply_to || (msg->type[0] && strcmp(msg->type, "text") != 0)) return 0;
  pz_store_send_facts_t f;
  int rc = pz_store_send_facts(db, msg->conversation_id, msg->sender_id, &f, err);
  if (rc == PZ_ENOTFOUND) return no_conversation(err);
  if (rc < 0) return rc;
  if (!f.is_member) return not_member(err);
  /* A retry is the writer's to answer, with the first message. */
  bool seen = false;
  rc = pz_store_msg_client_exists(db, msg->conversation_id, msg->sender_id, pz_str(msg->client_id), &seen, err);
  if (rc < 0) return rc;
  if (seen || !pz_store_msg_log_claim_client(db, msg->conversation_id, msg->sender_id, pz_str(msg->client_id)))
    return 0;
  if (f.blocked) return blocked_send(err);
  if ((rc = pz_chat_mentions_check(db, msg->conversation_id, msg->mentions, msg->n_mentions, err)) < 0) return rc;
  for (unsigned i = 0; i < f.n; i++) {
    int64_t seq;
    if ((rc = pz_store_event_claim(db, f.members[i], &seq, err)) < 0) {
      /* No record will carry the seqs claimed so far: give them back. */
      while (i-- > 0)
        pz_store_event_unclaim(db, f.members[i]);
      fanout->n = 0;
      return rc;
    }
    fanout_add(fanout, f.members[i], seq);
  }
  pz_store_msg_log_encode(msg, payload, fanout->items, fanout->n, rec);
  return 1;
}

int pz_chat_mark_read(pz_db_t *db, int64_t me, int64_t conv_id, int64_t message_id, pz_str_t payload, int64_t now,
                      int64_t *was, int64_t *marker, unsigned *unread, pz_chat_fanout_t *fanout, pz_err_t *err) {
  int rc = pz_chat_member_check(db, me, conv_id, NULL, err);
  if (rc < 0) return rc;
  int64_t current = 0;
  if ((rc = pz_store_member_get(db, conv_id, me, &current, err)) < 0) return rc;
  *was = current;
  pz_msg_rec_t *m = pz_malloc(sizeof(*m));
  rc = pz_store_msg_get(db, conv_id, message_id, m, err);
  pz_free(m);
  if (rc == PZ_ENOTFOUND) return pz_err_set(err, PZ_EINVAL, NULL, "message_id is not a message of this conversation");
  if (rc < 0) return rc;
  bool moved = false;
  if ((rc = pz_store_member_set_read(db, conv_id, me, message_id, &moved, err)) < 0) return rc;
  *marker = moved ? message_id : current;
  if (moved) {
    /* Only my own devices learn where I read: others see no receipts yet. */
    int64_t seq;
    if ((rc = pz_store_event_append(db, me, PZ_STR(PZ_EVENT_CONVERSATION_READ), payload, now, &seq, err)) < 0)
      return rc;
    fanout_add(fanout, me, seq);
  }
  return pz_store_unread_count(db, conv_id, me, *marker, unread, err);
}
