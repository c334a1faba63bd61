/* Messaging: the domain rules of conversations, messages, read markers and event fan-out, with no SQL, sockets or JSON.
 */
#ifndef PLAZA_CHAT_H
#define PLAZA_CHAT_H

#include <stdbool.h>
#include <stdint.h>
#include "plaza/error.h"
#include "plaza/store_chat.h"
#include "plaza/str.h"

/* A group holds at most this many members, its owner included. */
#define PZ_CHAT_GROUP_MAX_MEMBERS 500
#define PZ_CHAT_HISTORY_DEFAULT 50
#define PZ_CHAT_HISTORY_MAX 200
#define PZ_CHAT_SYNC_DEFAULT 100
#define PZ_CHAT_SYNC_MAX 1000

/* Event types of the user streams (message.new is store_chat.h's: the send log writes it). */
#define PZ_EVENT_CONVERSATION_NEW "conversation.new"
#define PZ_EVENT_CONVERSATION_READ "conversation.read"

/* ---- input rules: pure functions, any thread ----
 * Each returns 0, or PZ_EINVAL / PZ_EUTF8 with err naming the field. */

/* Message text: valid UTF-8, 1 to PZ_CHAT_TEXT_MAX_CHARS code points, not
 * only white space, no control characters but tab, line feed and carriage
 * return (NUL and escape codes make text render differently everywhere). */
int pz_chat_text_check(pz_str_t text, pz_err_t *err);
/* A client_id: 1 to PZ_CHAT_CLIENT_ID_MAX bytes of printable ASCII (0x20-0x7E). */
int pz_chat_client_id_check(pz_str_t client_id, pz_err_t *err);
/* A group title: 1 to PZ_CHAT_TITLE_MAX_CHARS code points, valid UTF-8,
 * no control characters, not only white space. */
int pz_chat_title_check(pz_str_t title, pz_err_t *err);

/* ---- the send rate limit: loop thread only ----
 * A token bucket per user: rate messages a second, bursts of burst. The
 * table is set-associative with a fixed number of slots: a user that is
 * not in it starts with a full bucket, and a new user takes the slot of
 * its set whose bucket is fullest, that is the one that loses least by
 * being forgotten; a user who floods (an empty bucket) is the last to go. */
typedef struct pz_chat_limiter_s pz_chat_limiter_t;

/* capacity is rounded up to a multiple of the set size. */
pz_chat_limiter_t *pz_chat_limiter_new(unsigned capacity, unsigned rate, unsigned burst);
void pz_chat_limiter_free(pz_chat_limiter_t *l);
/* Takes one message from user_id's bucket at now_ms: 0, or PZ_ERATE with
 * the whole seconds to wait (at least 1) in *retry_after_s. */
int pz_chat_limiter_take(pz_chat_limiter_t *l, int64_t user_id, int64_t now_ms, unsigned *retry_after_s);

/* ---- who may write to whom: inside store jobs ---- */

/* The (user, seq) pairs of the events one operation appended: pushed to
 * those users' sockets once the job is durable. Owner frees with
 * pz_chat_fanout_free; any thread. */
typedef struct pz_chat_fanout_s {
  pz_store_user_seq_t *items;
  unsigned n, cap;
} pz_chat_fanout_t;

void pz_chat_fanout_free(pz_chat_fanout_t *f);

/* Appends an event (type, payload: the JSON object without seq) to the
 * stream of every member of conv_id, and records each in fanout. Writer. */
int pz_chat_publish(pz_db_t *db, int64_t conv_id, pz_str_t type, pz_str_t payload, int64_t now,
                    pz_chat_fanout_t *fanout, pz_err_t *err);
/* As pz_chat_publish, for an event whose payload carries message
 * message_id: a recall finds such events to take the content out of them
 * (pz_chat_recall_events). Writer. */
int pz_chat_publish_msg(pz_db_t *db, int64_t conv_id, int64_t message_id, pz_str_t type, pz_str_t payload, int64_t now,
                        pz_chat_fanout_t *fanout, pz_err_t *err);
/* Appends message_id's message.new event, whose payload was stored with
 * the message (pz_store_msg_insert), to every member's stream. Writer. */
int pz_chat_publish_new(pz_db_t *db, int64_t conv_id, int64_t message_id, int64_t now, pz_chat_fanout_t *fanout,
                        pz_err_t *err);

/* Opens the direct chat of me with other: the existing one (*created
 * false), or a new one with id new_id (*created true). Only contacts may
 * start one, unless other's direct_chat_from setting is "everyone"; a
 * block wins over the setting. Errors: 400 with oneself; 404 unknown user; 403 blocked
 * (either blocked the other); 403 not_contacts. Writer. */
int pz_chat_direct_open(pz_db_t *db, int64_t me, int64_t other, int64_t new_id, int64_t now, pz_conv_rec_t *out,
                        bool *created, pz_err_t *err);

/* Creates group new_id titled title (checked by the caller) owned by me
 * with members ids[0..n) (duplicates and me among them are ignored): each
 * must be a contact of me. Errors: 400 no other member or more than
 * PZ_CHAT_GROUP_MAX_MEMBERS; 403 not_contacts naming the first
 * non-contact. Writer. */
int pz_chat_group_create(pz_db_t *db, int64_t me, pz_str_t title, const int64_t *ids, unsigned n, int64_t new_id,
                         int64_t now, pz_conv_rec_t *out, pz_err_t *err);

/* Sends msg (id, conversation, sender, client_id, text, reply_to and
 * created_at filled and checked by the caller) with the event payload of
 * message.new. When the sender used the client_id in that conversation
 * before, nothing changes and *stored is that first message (*created
 * false); otherwise *stored is msg, the message.new event is in every
 * member's stream and in fanout (*created true). stored may be msg: a
 * retry then reads the first message over it. Errors: 404 no such
 * conversation; 403 not_member; 403 blocked (in a direct chat, the other
 * user blocked the sender); 400 reply_to not a message of the
 * conversation. Writer. */
int pz_chat_send(pz_db_t *db, const pz_msg_rec_t *msg, pz_str_t payload, pz_msg_rec_t *stored, bool *created,
                 pz_chat_fanout_t *fanout, pz_err_t *err);
/* The send log's check of a new text message (store.h's job log
 * callback): on the log thread's snapshot, the same rules as
 * pz_chat_send; then it claims the members' seqs into fanout and writes
 * the record to log into rec. 1: logged; 0: leave it to pz_chat_send on
 * the writer (a retry of a client id already used, a reply, whatever the
 * log does not carry); or the refusal pz_chat_send would give. Log thread. */
int pz_chat_send_log(pz_db_t *db, const pz_msg_rec_t *msg, pz_str_t payload, pz_chat_fanout_t *fanout, pz_buf_t *rec,
                     pz_err_t *err);

/* Moves me's read marker in conv_id to message_id (a message of it) unless
 * it is there or further. When it moves, the conversation.read event
 * (payload) goes to me's own stream only, and into fanout. *was is the
 * marker before the call, *marker after it, *unread the messages from
 * others after it.
 * Errors: 404 no such conversation; 403 not_member; 400 message_id not a
 * message of the conversation. Writer. */
int pz_chat_mark_read(pz_db_t *db, int64_t me, int64_t conv_id, int64_t message_id, pz_str_t payload, int64_t now,
                      int64_t *was, int64_t *marker, unsigned *unread, pz_chat_fanout_t *fanout, pz_err_t *err);

/* Checks that me may read conv_id: 404 no such conversation; 403
 * not_member. Copies the conversation to out (may be NULL). Any job. */
int pz_chat_member_check(pz_db_t *db, int64_t me, int64_t conv_id, pz_conv_rec_t *out, pz_err_t *err);

/* ---- message operations (msgops.c) ---- */

#define PZ_CHAT_EDIT_WINDOW_MS (15 * 60 * 1000)  /* a sender may edit a message for this long */
#define PZ_CHAT_RECALL_WINDOW_MS (2 * 60 * 1000) /* and recall it for this long */
#define PZ_CHAT_REACTIONS_MAX 20                 /* distinct emoji on one message */
#define PZ_CHAT_EMOJI_MAX_BYTES 32
#define PZ_CHAT_SEARCH_MAX_CHARS 256
#define PZ_CHAT_SEARCH_DEFAULT 20
#define PZ_CHAT_SEARCH_MAX 100
#define PZ_CHAT_TYPING_INTERVAL_MS 2000 /* at most one typing frame per user and conversation in this */

#define PZ_EVENT_MESSAGE_EDITED "message.edited"
#define PZ_EVENT_MESSAGE_RECALLED "message.recalled"
#define PZ_EVENT_MESSAGE_DELETED "message.deleted"
#define PZ_EVENT_MESSAGE_REACTION "message.reaction"
#define PZ_EVENT_RECEIPT "receipt"

/* A reaction: 1 to PZ_CHAT_EMOJI_MAX_BYTES bytes of valid UTF-8 without
 * white space or control characters. Any thread. */
int pz_chat_emoji_check(pz_str_t emoji, pz_err_t *err);
/* A search query: valid UTF-8 of 1 to PZ_CHAT_SEARCH_MAX_CHARS code
 * points with something besides white space. Any thread. */
int pz_chat_search_check(pz_str_t q, pz_err_t *err);

/* Checks that each of ids[0..n) is a member of conv_id: 400 naming the
 * first that is not. Any job. */
int pz_chat_mentions_check(pz_db_t *db, int64_t conv_id, const int64_t *ids, unsigned n, pz_err_t *err);

/* The operations below check that me is a member of conv_id (404 no such
 * conversation, 403 not_member) and that msg_id is a message of it (404),
 * and copy the message as it stands after the call to *out. Writer. */

/* Appends an event to user_id's stream only, and records it in fanout. Writer. */
int pz_chat_publish_user(pz_db_t *db, int64_t user_id, pz_str_t type, pz_str_t payload, int64_t now,
                         pz_chat_fanout_t *fanout, pz_err_t *err);

/* Replaces the text and mentions (mentions NULL: keeps them) of me's message. Errors: 403 not_sender;
 * 409 message_recalled; 409 not_editable (not a text message); 409
 * edit_window_passed (window_ms after it was sent); 400 a mention that is
 * not a member. */
int pz_chat_edit(pz_db_t *db, int64_t me, int64_t conv_id, int64_t msg_id, pz_str_t text, const int64_t *mentions,
                 unsigned n_mentions, int64_t now, int64_t window_ms, pz_msg_rec_t *out, pz_err_t *err);
/* Recalls me's message for everyone. A message recalled already stays as
 * it is (*changed false). Errors: 403 not_sender; 409
 * recall_window_passed (window_ms after it was sent). */
int pz_chat_recall(pz_db_t *db, int64_t me, int64_t conv_id, int64_t msg_id, int64_t now, int64_t window_ms,
                   pz_msg_rec_t *out, bool *changed, pz_err_t *err);
/* Takes a recalled message's content out of the event streams, in the job
 * of the recall (*changed true): every member's message.new and
 * message.edited events of msg_id get new_payload and edited_payload, the
 * events as they would be written now, with the message in its recalled
 * form; their seq stays. Events from before migration 7 are not found. */
int pz_chat_recall_events(pz_db_t *db, int64_t msg_id, pz_str_t new_payload, pz_str_t edited_payload, pz_err_t *err);
/* Deletes the message for me only; *changed is false when it was gone already. */
int pz_chat_delete_for_me(pz_db_t *db, int64_t me, int64_t conv_id, int64_t msg_id, int64_t now, bool *changed,
                          pz_err_t *err);
/* Adds (add) or removes me's reaction emoji (checked by the caller);
 * *changed tells whether it changed anything. Errors: 409
 * message_recalled; 409 too_many_reactions (a new emoji beyond
 * PZ_CHAT_REACTIONS_MAX). */
int pz_chat_react(pz_db_t *db, int64_t me, int64_t conv_id, int64_t msg_id, pz_str_t emoji, bool add, int64_t now,
                  pz_msg_rec_t *out, bool *changed, pz_err_t *err);
/* Moves me's delivered marker forward to msg_id (400 when it is not a
 * message of conv_id); *moved tells whether it moved. *was is the
 * delivered marker before the call; *read_up_to and *delivered_up_to are
 * me's markers after it. */
int pz_chat_mark_delivered(pz_db_t *db, int64_t me, int64_t conv_id, int64_t msg_id, int64_t *was, int64_t *read_up_to,
                           int64_t *delivered_up_to, bool *moved, pz_err_t *err);

/* ---- typing throttle: loop thread only ----
 * Remembers, for a bounded number of (user, conversation) pairs, when a
 * typing frame last went out; a pair that is forgotten (its set was full)
 * may send again at once, which costs one extra frame, never a lost one. */
typedef struct pz_chat_throttle_s pz_chat_throttle_t;

pz_chat_throttle_t *pz_chat_throttle_new(unsigned capacity, int64_t interval_ms);
void pz_chat_throttle_free(pz_chat_throttle_t *t);
/* True when (user_id, conv_id) may send at now_ms (and records it). */
bool pz_chat_throttle_take(pz_chat_throttle_t *t, int64_t user_id, int64_t conv_id, int64_t now_ms);

#endif
