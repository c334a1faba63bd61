/* Typed store functions for messaging: conversations, members, messages and the per-user event streams. */
#ifndef PLAZA_STORE_CHAT_H
#define PLAZA_STORE_CHAT_H

#include <stdbool.h>
#include <stdint.h>
#include "plaza/error.h"
#include "plaza/store.h"
#include "plaza/store_auth.h"
#include "plaza/str.h"

/* Sizes of the stored text; the domain (chat.h) enforces them on input.
 * A code point takes at most 4 bytes of UTF-8. */
#define PZ_CHAT_TEXT_MAX_CHARS 4096
#define PZ_CHAT_TEXT_MAX_BYTES (PZ_CHAT_TEXT_MAX_CHARS * 4)
#define PZ_CHAT_CLIENT_ID_MAX 64
#define PZ_CHAT_TITLE_MAX_CHARS 64
#define PZ_CHAT_EVENT_TYPE_MAX 32
#define PZ_CHAT_MENTIONS_MAX 50 /* users one message may mention */
#define PZ_CHAT_MSG_TYPE_MAX 15
#define PZ_CHAT_BODY_MAX_BYTES 16384 /* a system message naming 500 members (chat_groups.h) fits */

enum { PZ_CONV_DIRECT = 1, PZ_CONV_GROUP = 2 };
enum { PZ_MEMBER_MEMBER = 0, PZ_MEMBER_OWNER = 1, PZ_MEMBER_ADMIN = 2 }; /* group roles (store_groups.h) */
/* The stored and API name of a role: "owner", "admin" or "member". Any thread. */
const char *pz_store_role_name(int role);

typedef struct pz_conv_rec_s {
  int64_t id;
  int type;                                    /* PZ_CONV_* */
  char title[PZ_CHAT_TITLE_MAX_CHARS * 4 + 1]; /* groups; "" for direct chats */
  int64_t owner_id;                            /* the group's creator; 0 for direct chats */
  int64_t created_at;
  int64_t last_message_id; /* 0 while there is none */
} pz_conv_rec_t;

typedef struct pz_msg_rec_s {
  int64_t id;
  int64_t conversation_id;
  int64_t sender_id;
  char client_id[PZ_CHAT_CLIENT_ID_MAX + 1];
  int64_t reply_to; /* 0 for none */
  int64_t created_at;
  size_t text_len;
  char text[PZ_CHAT_TEXT_MAX_BYTES + 1];
  /* The kind of message: "text", or one with a body ("image", "file"):
   * "" reads as "text". body is the JSON object of its content as api/
   * wrote it, opaque to the store and the domain; empty for text. */
  char type[PZ_CHAT_MSG_TYPE_MAX + 1];
  size_t body_len;
  char body[PZ_CHAT_BODY_MAX_BYTES + 1];
  /* Message operations: 0 until edited / recalled. A recalled message
   * keeps its ids and times; its text, body and mentions are gone. */
  int64_t edited_at;
  int64_t recalled_at;
  unsigned n_mentions;
  int64_t mentions[PZ_CHAT_MENTIONS_MAX]; /* members the text mentions, as sent */
} pz_msg_rec_t;

/* One conversation as one member sees it in their list. */
typedef struct pz_conv_view_s {
  pz_conv_rec_t conv;
  int64_t last_read_id; /* the member's read marker: a message id, 0 for none */
  int64_t activity_id;  /* the list's sort key: the last message id, or the conversation id */
  unsigned unread;      /* messages from others after the marker */
  bool has_last;
  pz_msg_rec_t last; /* valid when has_last */
} pz_conv_view_t;

/* Row callbacks, called once per row on the job's thread with records
 * borrowed for the call; a negative return stops the listing and becomes
 * its result (fill err before returning). */
typedef int (*pz_store_msg_cb)(void *arg, const pz_msg_rec_t *msg, pz_err_t *err);
typedef int (*pz_store_conv_view_cb)(void *arg, const pz_conv_view_t *view, pz_err_t *err);
typedef int (*pz_store_member_cb)(void *arg, int64_t user_id, pz_err_t *err);
/* An event of a user's stream: payload is the JSON object of the event
 * without its "seq", as stored (borrowed for the call). */
typedef int (*pz_store_event_cb)(void *arg, int64_t seq, pz_str_t type, pz_str_t payload, pz_err_t *err);

/* Every function below runs inside a store job (writer or reader thread,
 * per its kind), takes the job's connection first, and returns 0 or a
 * negative PZ_E code with err filled: PZ_ENOTFOUND where a row is asked
 * for and absent, PZ_ECONFLICT for a uniqueness violation, PZ_EIO for
 * anything the database did wrong. err must not be NULL. */

/* ---- conversations ---- */

/* Inserts conv. For a direct chat, (user_a, user_b) is its pair of users,
 * which may have one direct chat only: PZ_ECONFLICT for a second. Writer. */
int pz_store_conv_insert(pz_db_t *db, const pz_conv_rec_t *conv, int64_t user_a, int64_t user_b, pz_err_t *err);
int pz_store_conv_get(pz_db_t *db, int64_t id, pz_conv_rec_t *out, pz_err_t *err);
/* The direct chat between a and b (in either order). */
int pz_store_conv_find_direct(pz_db_t *db, int64_t a, int64_t b, pz_conv_rec_t *out, pz_err_t *err);
/* user_id's conversations by activity, most recent first, those with
 * activity_id < before only (0: from the most recent), at most limit. */
int pz_store_conv_list(pz_db_t *db, int64_t user_id, int64_t before, unsigned limit, pz_store_conv_view_cb cb,
                       void *arg, pz_err_t *err);

/* ---- members ---- */

/* Adds user_id to conv_id with role (PZ_MEMBER_*). Writer. */
int pz_store_member_add(pz_db_t *db, int64_t conv_id, int64_t user_id, int role, int64_t now, pz_err_t *err);
/* PZ_ENOTFOUND unless user_id is a member; *last_read_id (may be NULL) is their read marker. */
int pz_store_member_get(pz_db_t *db, int64_t conv_id, int64_t user_id, int64_t *last_read_id, pz_err_t *err);
/* The members' ids, in the order they joined. */
int pz_store_member_ids(pz_db_t *db, int64_t conv_id, pz_store_member_cb cb, void *arg, pz_err_t *err);
/* The members as users, in the order they joined. */
int pz_store_member_users(pz_db_t *db, int64_t conv_id, pz_store_user_cb cb, void *arg, pz_err_t *err);
/* Moves user_id's read marker to message_id unless it is there or further
 * already; *moved tells which. Writer. */
int pz_store_member_set_read(pz_db_t *db, int64_t conv_id, int64_t user_id, int64_t message_id, bool *moved,
                             pz_err_t *err);
/* Messages not from user_id after message id after. */
int pz_store_unread_count(pz_db_t *db, int64_t conv_id, int64_t user_id, int64_t after, unsigned *out, pz_err_t *err);

/* ---- messages ---- */

/* Inserts msg with event, the payload of its message.new event, which the
 * members' events appended by pz_store_event_append_shared serve (empty: the
 * message.new events carry their own). PZ_ECONFLICT when its sender used
 * its client_id in this conversation already. Writer. */
int pz_store_msg_insert(pz_db_t *db, const pz_msg_rec_t *msg, pz_str_t event, pz_err_t *err);
/* Replaces the message.new payload kept with message_id (a recall), if it
 * has one. Writer. */
int pz_store_msg_set_event(pz_db_t *db, int64_t message_id, pz_str_t event, pz_err_t *err);
/* Whether id is a message of conversation conv_id. */
int pz_store_msg_exists(pz_db_t *db, int64_t conv_id, int64_t id, bool *found, pz_err_t *err);
/* Message id of conversation conv_id (another conversation's is PZ_ENOTFOUND). */
int pz_store_msg_get(pz_db_t *db, int64_t conv_id, int64_t id, pz_msg_rec_t *out, pz_err_t *err);
/* Whether sender_id sent a message to conv_id with client_id. */
int pz_store_msg_client_exists(pz_db_t *db, int64_t conv_id, int64_t sender_id, pz_str_t client_id, bool *found,
                               pz_err_t *err);
/* The message sender_id sent to conv_id with client_id. */
int pz_store_msg_by_client(pz_db_t *db, int64_t conv_id, int64_t sender_id, pz_str_t client_id, pz_msg_rec_t *out,
                           pz_err_t *err);
/* conv_id's messages with id < before (0: from the newest), newest first, at most limit. */
int pz_store_msg_list(pz_db_t *db, int64_t conv_id, int64_t before, unsigned limit, pz_store_msg_cb cb, void *arg,
                      pz_err_t *err);

/* ---- event streams ---- */

/* Appends an event to user_id's stream with the next sequence number,
 * which it writes to *seq: gap-free, 1 for a user's first event. Writer. */
int pz_store_event_append(pz_db_t *db, int64_t user_id, pz_str_t type, pz_str_t payload, int64_t now, int64_t *seq,
                          pz_err_t *err);
/* As pz_store_event_append, for an event whose payload carries message
 * message_id (0: none), so that pz_store_event_rewrite_msg finds it. Writer. */
int pz_store_event_append_msg(pz_db_t *db, int64_t user_id, pz_str_t type, int64_t message_id, pz_str_t payload,
                              int64_t now, int64_t *seq, pz_err_t *err);
/* Appends an event about message_id to user_id's stream whose payload is
 * the one kept with the message (pz_store_msg_insert): one copy for all
 * members. A stream read gives an event whose message is gone (its group
 * ended) as type message.gone with the message_id. Writer. */
int pz_store_event_append_shared(pz_db_t *db, int64_t user_id, pz_str_t type, int64_t message_id, int64_t now,
                                 int64_t *seq, pz_err_t *err);
/* Replaces the payload of every event of type that carries message_id, in
 * every user's stream (a recall takes the content out of them); seq and
 * type stay. *n (may be NULL) is how many events changed, 0 included.
 * Events appended before migration 7 carry no message id and are not
 * found. Writer. */
int pz_store_event_rewrite_msg(pz_db_t *db, int64_t message_id, pz_str_t type, pz_str_t payload, unsigned *n,
                               pz_err_t *err);
/* user_id's events with seq > after, in order, at most limit. */
int pz_store_event_list(pz_db_t *db, int64_t user_id, int64_t after, unsigned limit, pz_store_event_cb cb, void *arg,
                        pz_err_t *err);
/* The sequence number of user_id's last event; 0 when there is none. */
int pz_store_event_head(pz_db_t *db, int64_t user_id, int64_t *seq, pz_err_t *err);
/* Whether some of user_id's events with seq > after were removed by
 * retention (pz_store_event_prune): seqs are gap-free, so a first kept
 * event past after + 1 says that those between are gone. */
int pz_store_event_gone(pz_db_t *db, int64_t user_id, int64_t after, bool *gone, pz_err_t *err);
/* Looks at up to max events created before `before` (ms), oldest first,
 * from after rowid *cursor on, and removes each unless it is its user's
 * last; *cursor moves past them. *n is how many went, *examined how many
 * were looked at: fewer than max means nothing older is left. Writer. */
int pz_store_event_prune(pz_db_t *db, int64_t before, unsigned max, int64_t *cursor, unsigned *n, unsigned *examined,
                         pz_err_t *err);

/* ---- the send log (msglog.c) ----
 *
 * A new text message can be made durable in the send log (engine.c)
 * before the database has it: the log thread checks it on a read
 * connection, claims its members' seqs, and logs a record that the writer
 * applies afterwards (message row and events, with those seqs). */

/* The event type of a new message in every member's stream. */
#define PZ_EVENT_MESSAGE_NEW "message.new"

/* One event of one user's stream. */
typedef struct pz_store_user_seq_s {
  int64_t user_id;
  int64_t seq;
} pz_store_user_seq_t;

/* Claims the next seq of user_id's stream, counting events logged and not
 * yet applied. Log thread (inside a pz_store_job_t log callback). */
int pz_store_event_claim(pz_db_t *db, int64_t user_id, int64_t *seq, pz_err_t *err);
/* Gives back the last seq claimed for user_id, which no record will carry:
 * only within the same log callback, right after the claim. Log thread. */
void pz_store_event_unclaim(pz_db_t *db, int64_t user_id);
/* Whether sender_id's message with client_id in conv_id may be logged
 * afresh: false when one with that client id is logged and not yet in the
 * database (the caller then leaves the send to the writer, which answers
 * it with the first); otherwise remembers it and says true. Log thread. */
bool pz_store_msg_log_claim_client(pz_db_t *db, int64_t conv_id, int64_t sender_id, pz_str_t client_id);
/* What the log thread checks a send against: its conversation's type and
 * members and, in a direct chat, whether the other member blocks the
 * sender. */
typedef struct pz_store_send_facts_s {
  int type;               /* PZ_CONV_* */
  const int64_t *members; /* borrowed until the next call */
  unsigned n;
  bool is_member; /* the sender is one of them */
  bool blocked;   /* a direct chat whose other member blocks the sender */
} pz_store_send_facts_t;
/* The facts of a send from sender_id in conv_id (PZ_ENOTFOUND: no such
 * conversation), from the log thread's memory of what it read since the
 * last write job committed (engine.c's sequencing lock orders the two:
 * only write jobs change conversations, members and blocks). Log thread. */
int pz_store_send_facts(pz_db_t *db, int64_t conv_id, int64_t sender_id, pz_store_send_facts_t *out, pz_err_t *err);
/* Appends to rec the send log record of new message m with event (its
 * message.new payload, as pz_store_msg_insert keeps it) and the members'
 * events, the (user, seq) pairs in fan[0..n). Any thread. */
void pz_store_msg_log_encode(const pz_msg_rec_t *m, pz_str_t event, const pz_store_user_seq_t *fan, unsigned n,
                             pz_buf_t *rec);

/* ---- message operations (msgops.c) ---- */

/* Sets the text and mentions of message id of conv_id, and its edited_at. Writer. */
int pz_store_msg_edit(pz_db_t *db, int64_t conv_id, int64_t id, pz_str_t text, const int64_t *mentions,
                      unsigned n_mentions, int64_t now, pz_err_t *err);
/* Recalls message id of conv_id: its text, body, mentions and reactions
 * are deleted and recalled_at is set. Writer. */
int pz_store_msg_recall(pz_db_t *db, int64_t conv_id, int64_t id, int64_t now, pz_err_t *err);
/* Hides message_id from user_id (delete for me); *created is false when
 * it was hidden already. Writer. */
int pz_store_msg_hide(pz_db_t *db, int64_t user_id, int64_t conv_id, int64_t message_id, int64_t now, bool *created,
                      pz_err_t *err);
int pz_store_msg_hidden(pz_db_t *db, int64_t user_id, int64_t message_id, bool *out, pz_err_t *err);
/* As pz_store_msg_list, without the messages viewer deleted for themselves. */
int pz_store_msg_list_visible(pz_db_t *db, int64_t viewer, int64_t conv_id, int64_t before, unsigned limit,
                              pz_store_msg_cb cb, void *arg, pz_err_t *err);

/* A reaction: emoji (borrowed for the call) by user_id. */
typedef int (*pz_store_reaction_cb)(void *arg, pz_str_t emoji, int64_t user_id, pz_err_t *err);
/* How many distinct emoji message_id carries, and whether emoji is one. */
int pz_store_reaction_stats(pz_db_t *db, int64_t message_id, pz_str_t emoji, unsigned *n_emoji, bool *has_emoji,
                            pz_err_t *err);
/* Adds (add) or removes user_id's emoji on message_id; *changed tells
 * whether it was not there / there. Writer. */
int pz_store_reaction_set(pz_db_t *db, int64_t message_id, int64_t user_id, pz_str_t emoji, bool add, int64_t now,
                          bool *changed, pz_err_t *err);
/* message_id's reactions: emoji in the order of their first use, users in
 * the order they reacted. */
int pz_store_reaction_list(pz_db_t *db, int64_t message_id, pz_store_reaction_cb cb, void *arg, pz_err_t *err);

/* A member's receipts: the message ids read and delivered up to (0: none). */
typedef int (*pz_store_marker_cb)(void *arg, int64_t user_id, int64_t read_up_to, int64_t delivered_up_to,
                                  pz_err_t *err);
/* Moves user_id's delivered marker forward to message_id; *moved tells
 * whether it moved. Writer. */
int pz_store_member_set_delivered(pz_db_t *db, int64_t conv_id, int64_t user_id, int64_t message_id, bool *moved,
                                  pz_err_t *err);
int pz_store_member_markers(pz_db_t *db, int64_t conv_id, pz_store_marker_cb cb, void *arg, pz_err_t *err);
/* PZ_ENOTFOUND unless user_id is a member. */
int pz_store_member_marker(pz_db_t *db, int64_t conv_id, int64_t user_id, int64_t *read_up_to,
                           int64_t *delivered_up_to, pz_err_t *err);

/* The sender of each message of conv_id with after < id <= up_to, newest
 * first, at most max of them (*rows says how many), one cb each (a
 * sender can come more than once). */
int pz_store_msg_senders(pz_db_t *db, int64_t conv_id, int64_t after, int64_t up_to, unsigned max,
                         pz_store_member_cb cb, void *arg, unsigned *rows, pz_err_t *err);

/* Privacy settings; a user who never set them has the defaults. */
enum { PZ_DIRECT_FROM_CONTACTS = 0, PZ_DIRECT_FROM_EVERYONE = 1 };
typedef struct pz_settings_rec_s {
  int direct_chat_from; /* PZ_DIRECT_FROM_*: who may open a direct chat with the user */
} pz_settings_rec_t;

int pz_store_settings_get(pz_db_t *db, int64_t user_id, pz_settings_rec_t *out, pz_err_t *err);
int pz_store_settings_set(pz_db_t *db, int64_t user_id, const pz_settings_rec_t *s, pz_err_t *err); /* Writer. */

/* When user_id was last seen by any of their sessions (ms; 0: never). */
int pz_store_user_last_seen(pz_db_t *db, int64_t user_id, int64_t *out, pz_err_t *err);

/* Full-text search of the text messages of viewer's conversations (only
 * conv_id unless 0) that are neither recalled nor deleted by viewer,
 * newest first, at most limit. query is user text: any bytes are safe. */
int pz_store_msg_search(pz_db_t *db, int64_t viewer, pz_str_t query, int64_t conv_id, unsigned limit,
                        pz_store_msg_cb cb, void *arg, pz_err_t *err);
/* Writes to out (emptied first) the FTS5 query of user text q: each word
 * a quoted string, ANDed, the last one a prefix; empty when q has no word.
 * Exposed for tests. Any thread. */
void pz_store_fts_query(pz_str_t q, pz_buf_t *out);

#endif
