/* Rules of message operations: edit and recall windows, delete for me, reactions, mentions, receipts, typing throttle.
 */
#include <sodium.h>
#include <stdio.h>
#include "plaza/chat.h"
#include "plaza/id.h"

/* ---- input rules ---- */

int pz_chat_emoji_check(pz_str_t emoji, pz_err_t *err) {
  if (emoji.len < 1 || emoji.len > PZ_CHAT_EMOJI_MAX_BYTES || !pz_utf8_valid(emoji.ptr, emoji.len)) goto bad;
  for (size_t i = 0; i < emoji.len; i++) {
    unsigned char c = (unsigned char)emoji.ptr[i];
    if (c <= 0x20 || c == 0x7F) goto bad;
    /* U+0080..U+009F, U+00A0 (no-break space) are C2 80..C2 A0. */
    if (c == 0xC2 && i + 1 < emoji.len && (unsigned char)emoji.ptr[i + 1] <= 0xA0) goto bad;
    /* U+2000..U+200A, U+2028/9, U+202F, U+205F (E2 80 80..E2 81 9F) and U+3000 (E3 80 80). */
    if (c == 0xE2 && i + 2 < emoji.len && (unsigned char)emoji.ptr[i + 1] == 0x80) {
      unsigned char d = (unsigned char)emoji.ptr[i + 2];
      if (d <= 0x8A || d == 0xA8 || d == 0xA9 || d == 0xAF) goto bad;
    }
    if (c == 0xE2 && i + 2 < emoji.len && (unsigned char)emoji.ptr[i + 1] == 0x81 &&
        (unsigned char)emoji.ptr[i + 2] == 0x9F)
      goto bad;
    if (c == 0xE3 && i + 2 < emoji.len && (unsigned char)emoji.ptr[i + 1] == 0x80 &&
        (unsigned char)emoji.ptr[i + 2] == 0x80)
      goto bad;
  }
  return 0;
bad:
  return pz_err_set(err, PZ_EINVAL, NULL,
                    "a reaction is 1 to %d bytes of UTF-8 without white space or control characters",
                    PZ_CHAT_EMOJI_MAX_BYTES);
}

int pz_chat_search_check(pz_str_t q, pz_err_t *err) {
  if (q.len > PZ_CHAT_SEARCH_MAX_CHARS * 4) goto bad;
  if (!pz_utf8_valid(q.ptr, q.len)) return pz_err_set(err, PZ_EUTF8, NULL, "q is not valid UTF-8");
  if (pz_utf8_count(q.ptr, q.len) > PZ_CHAT_SEARCH_MAX_CHARS) goto bad;
  for (size_t i = 0; i < q.len; i++)
    if (!(q.ptr[i] == ' ' || q.ptr[i] == '\t' || q.ptr[i] == '\n' || q.ptr[i] == '\r')) return 0;
bad:
  return pz_err_set(err, PZ_EINVAL, NULL, "q must be 1 to %d characters with a word to look for",
                    PZ_CHAT_SEARCH_MAX_CHARS);
}

int pz_chat_mentions_check(pz_db_t *db, int64_t conv_id, const int64_t *ids, unsigned n, pz_err_t *err) {
  for (unsigned i = 0; i < n; i++) {
    int rc = pz_store_member_get(db, conv_id, ids[i], NULL, err);
    if (rc == PZ_ENOTFOUND) {
      char digits[24];
      pz_id_format(ids[i], digits);
      return pz_err_set(err, PZ_EINVAL, NULL, "mentions: user %s is not a member of this conversation", digits);
    }
    if (rc < 0) return rc;
  }
  return 0;
}

/* ---- operations on one message ---- */

/* Member check and the message itself. */
static int load(pz_db_t *db, int64_t me, int64_t conv_id, int64_t msg_id, pz_msg_rec_t *out, pz_err_t *err) {
  int rc = pz_chat_member_check(db, me, conv_id, NULL, err);
  if (rc < 0) return rc;
  rc = pz_store_msg_get(db, conv_id, msg_id, out, err);
  if (rc == PZ_ENOTFOUND) return pz_err_set(err, PZ_ENOTFOUND, NULL, "no such message in this conversation");
  return rc;
}

static int recalled(pz_err_t *err) {
  return pz_err_set(err, PZ_ECONFLICT, "message_recalled", "this message was recalled");
}

static int not_sender(pz_err_t *err) {
  return pz_err_set(err, PZ_EFORBIDDEN, "not_sender", "only the sender may change this message");
}

int pz_chat_edit(pz_db_t *db, int64_t me, int64_t conv_id, int64_t msg_id, pz_str_t text, const int64_t *mentions,
                 unsigned n_mentions, int64_t now, int64_t window_ms, pz_msg_rec_t *out, pz_err_t *err) {
  int rc = load(db, me, conv_id, msg_id, out, err);
  if (rc < 0) return rc;
  if (out->sender_id != me) return not_sender(err);
  if (out->recalled_at) return recalled(err);
  int64_t kept[PZ_CHAT_MENTIONS_MAX];
  if (mentions == NULL) { /* the edit keeps the mentions */
    n_mentions = out->n_mentions;
    memcpy(kept, out->mentions, n_mentions * sizeof(int64_t));
    mentions = kept;
  }
  if (out->type[0] && strcmp(out->type, "text") != 0)
    return pz_err_set(err, PZ_ECONFLICT, "not_editable", "only text messages can be edited");
  if (now - out->created_at > window_ms)
    return pz_err_set(err, PZ_ECONFLICT, "edit_window_passed", "a message can be edited for %lld minutes",
                      (long long)(window_ms / 60000));
  if ((rc = pz_chat_mentions_check(db, conv_id, mentions, n_mentions, err)) < 0 ||
      (rc = pz_store_msg_edit(db, conv_id, msg_id, text, mentions, n_mentions, now, err)) < 0)
    return rc;
  return pz_store_msg_get(db, conv_id, msg_id, out, err);
}

int pz_chat_recall(pz_db_t *db, int64_t me, int64_t conv_id, int64_t msg_id, int64_t now, int64_t window_ms,
                   pz_msg_rec_t *out, bool *changed, pz_err_t *err) {
  *changed = false;
  int rc = load(db, me, conv_id, msg_id, out, err);
  if (rc < 0) return rc;
  if (out->sender_id != me) return not_sender(err);
  /* A system message (a group change, groups.c) is the group's record,
   * not something its actor said. */
  if (strcmp(out->type, "system") == 0)
    return pz_err_set(err, PZ_ECONFLICT, "not_recallable", "a system message cannot be recalled");
  if (out->recalled_at) return 0; /* a retry of a recall that went through */
  if (now - out->created_at > window_ms)
    return pz_err_set(err, PZ_ECONFLICT, "recall_window_passed", "a message can be recalled for %lld minutes",
                      (long long)(window_ms / 60000));
  if ((rc = pz_store_msg_recall(db, conv_id, msg_id, now, err)) < 0) return rc;
  *changed = true;
  return pz_store_msg_get(db, conv_id, msg_id, out, err);
}

int pz_chat_recall_events(pz_db_t *db, int64_t msg_id, pz_str_t new_payload, pz_str_t edited_payload, pz_err_t *err) {
  /* The events that hold what the message said: the message.new payload
   * kept with the message, events written with a copy of their own (before
   * migration 13), and message.edited. message.recalled holds the
   * recalled form already, and message.reaction only an emoji. */
  int rc = pz_store_msg_set_event(db, msg_id, new_payload, err);
  if (rc == 0) rc = pz_store_event_rewrite_msg(db, msg_id, PZ_STR(PZ_EVENT_MESSAGE_NEW), new_payload, NULL, err);
  if (rc < 0) return rc;
  return pz_store_event_rewrite_msg(db, msg_id, PZ_STR(PZ_EVENT_MESSAGE_EDITED), edited_payload, NULL, err);
}

int pz_chat_delete_for_me(pz_db_t *db, int64_t me, int64_t conv_id, int64_t msg_id, int64_t now, bool *changed,
                          pz_err_t *err) {
  *changed = false;
  pz_msg_rec_t *m = pz_malloc(sizeof(*m));
  int rc = load(db, me, conv_id, msg_id, m, err);
  pz_free(m);
  if (rc < 0) return rc;
  return pz_store_msg_hide(db, me, conv_id, msg_id, now, changed, err);
}

int pz_chat_react(pz_db_t *db, int64_t me, int64_t conv_id, int64_t msg_id, pz_str_t emoji, bool add, int64_t now,
                  pz_msg_rec_t *out, bool *changed, pz_err_t *err) {
  *changed = false;
  int rc = load(db, me, conv_id, msg_id, out, err);
  if (rc < 0) return rc;
  if (out->recalled_at) return recalled(err);
  if (add) {
    unsigned n_emoji = 0;
    bool has = false;
    if ((rc = pz_store_reaction_stats(db, msg_id, emoji, &n_emoji, &has, err)) < 0) return rc;
    if (!has && n_emoji >= PZ_CHAT_REACTIONS_MAX)
      return pz_err_set(err, PZ_ECONFLICT, "too_many_reactions", "a message carries at most %d different reactions",
                        PZ_CHAT_REACTIONS_MAX);
  }
  return pz_store_reaction_set(db, msg_id, me, emoji, add, now, changed, err);
}

int pz_chat_mark_delivered(pz_db_t *db, int64_t me, int64_t conv_id, int64_t msg_id, int64_t *was, int64_t *read_up_to,
                           int64_t *delivered_up_to, bool *moved, pz_err_t *err) {
  *moved = false;
  int rc = pz_chat_member_check(db, me, conv_id, NULL, err);
  if (rc < 0) return rc;
  int64_t read_before;
  if ((rc = pz_store_member_marker(db, conv_id, me, &read_before, was, err)) < 0) return rc;
  pz_msg_rec_t *m = pz_malloc(sizeof(*m));
  rc = pz_store_msg_get(db, conv_id, msg_id, m, err);
  pz_free(m);
  if (rc == PZ_ENOTFOUND) return pz_err_set(err, PZ_EINVAL, NULL, "message_id is not a message of this conversation");
  if (rc < 0) return rc;
  if ((rc = pz_store_member_set_delivered(db, conv_id, me, msg_id, moved, err)) < 0) return rc;
  return pz_store_member_marker(db, conv_id, me, read_up_to, delivered_up_to, err);
}

int pz_chat_publish_user(pz_db_t *db, int64_t user_id, pz_str_t type, pz_str_t payload, int64_t now,
                         pz_chat_fanout_t *fanout, pz_err_t *err) {
  int64_t seq;
  int rc = pz_store_event_append(db, user_id, type, payload, now, &seq, err);
  if (rc < 0) return rc;
  if (fanout->n == fanout->cap) {
    fanout->cap = fanout->cap ? fanout->cap * 2 : 8;
    fanout->items = pz_realloc(fanout->items, fanout->cap * sizeof(*fanout->items));
  }
  fanout->items[fanout->n].user_id = user_id;
  fanout->items[fanout->n].seq = seq;
  fanout->n++;
  return 0;
}

/* ---- typing throttle ---- */

#define WAYS 4

typedef struct {
  int64_t user_id, conv_id; /* user_id 0: free */
  int64_t last_ms;
} tslot_t;

struct pz_chat_throttle_s {
  tslot_t *slots;
  unsigned n_sets; /* a power of two */
  uint64_t key;
  int64_t interval_ms;
};

pz_chat_throttle_t *pz_chat_throttle_new(unsigned capacity, int64_t interval_ms) {
  pz_chat_throttle_t *t = pz_calloc(1, sizeof(*t));
  t->n_sets = 1;
  while (t->n_sets * WAYS < capacity)
    t->n_sets *= 2;
  t->slots = pz_calloc((size_t)t->n_sets * WAYS, sizeof(tslot_t));
  randombytes_buf(&t->key, sizeof(t->key));
  t->interval_ms = interval_ms;
  return t;
}

void pz_chat_throttle_free(pz_chat_throttle_t *t) {
  if (t == NULL) return;
  pz_free(t->slots);
  pz_free(t);
}

bool pz_chat_throttle_take(pz_chat_throttle_t *t, int64_t user_id, int64_t conv_id, int64_t now_ms) {
  uint64_t h = (((uint64_t)user_id * 0x9E3779B97F4A7C15ull) ^ (uint64_t)conv_id ^ t->key) * 0xC2B2AE3D27D4EB4Full;
  tslot_t *set = &t->slots[(size_t)((h >> 32) & (t->n_sets - 1)) * WAYS];
  tslot_t *oldest = &set[0];
  for (unsigned i = 0; i < WAYS; i++) {
    tslot_t *s = &set[i];
    if (s->user_id == user_id && s->conv_id == conv_id) {
      /* A clock that steps back lets the frame through rather than
       * silencing the pair until it catches up. */
      if (now_ms >= s->last_ms && now_ms - s->last_ms < t->interval_ms) return false;
      s->last_ms = now_ms;
      return true;
    }
    if (s->user_id == 0 || s->last_ms < oldest->last_ms) oldest = s;
    if (s->user_id == 0) break;
  }
  /* The pair is new here: it takes the slot heard from longest ago. */
  oldest->user_id = user_id;
  oldest->conv_id = conv_id;
  oldest->last_ms = now_ms;
  return true;
}
