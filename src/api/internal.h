/* Internal to api/: the api object, the request context with its store job, and helpers shared by the resource files. */
#ifndef PLAZA_API_INTERNAL_H
#define PLAZA_API_INTERNAL_H

#include <jansson.h>
#include "plaza/api.h"
#include "plaza/auth.h"
#include "plaza/chat.h"
#include "plaza/chat_groups.h"
#include "plaza/chat_upload.h"
#include "plaza/net.h"
#include "plaza/wallet.h"

/* Sizes of the in-memory tables; each is bounded, whatever clients do. */
#define PZ_API_SESSION_CACHE 65536
#define PZ_API_LIMITER_KEYS 16384
/* Argon2 runs at most this many at once (64 MiB each), the rest wait in
 * line up to PZ_API_PW_WAITING, beyond which sign-ups and log-ins get 503. */
#define PZ_API_PW_RUNNING 2
#define PZ_API_PW_WAITING 256
#define PZ_API_WS_HELLO_MS 10000
/* Messages a user may send: a bucket of PZ_API_SEND_BURST refilled at
 * PZ_API_SEND_RATE a second, in a table of PZ_API_SEND_USERS users. */
#define PZ_API_SEND_RATE 20
#define PZ_API_SEND_BURST 50
#define PZ_API_SEND_USERS 65536

typedef struct ws_conn_s ws_conn_t;

struct pz_api_s {
  uv_loop_t *loop;
  pz_server_t *srv;
  pz_store_t *st;
  pz_api_config_t cfg;
  pz_auth_cache_t *sessions;
  pz_auth_limiter_t *fail_account, *fail_addr;
  pz_auth_pwq_t *pwq;
  pz_chat_limiter_t *send_limit;
  /* Members a group may have (groups.c): PZ_CHAT_GROUP_MAX_MEMBERS, or
   * lower for tests that reach the cap (PLAZA_TEST_GROUP_MAX). */
  unsigned group_max;
  /* How long an invite link works: PZ_GROUP_INVITE_TTL_MS, or shorter for
   * tests that see one expire (PLAZA_TEST_INVITE_TTL_MS). */
  int64_t invite_ttl_ms;
  /* Message operations (msgops.c): the edit and recall windows (test-only
   * environment variables may shorten them) and the typing throttle. */
  int64_t edit_window_ms, recall_window_ms;
  pz_chat_throttle_t *typing;
  /* The wallet (wallet.c): its configuration, NULL when plazad runs
   * without one, and the timer that refunds expired transfers. */
  const pz_wallet_config_t *wallet;
  /* The hash of the operator's admin token (admin.c), when one is set. */
  uint8_t admin_hash[32];
  bool admin_enabled;
  struct pz__api_sweep_s *sweep; /* expired transfers (wallet.c) */
  /* Red packets (red_packets.c): their lifetime (PZ_WALLET_RED_PACKET_TTL_MS,
   * shorter for tests: PLAZA_TEST_RED_PACKET_TTL_MS) and their refund sweep. */
  int64_t red_packet_ttl_ms;
  struct pz__api_sweep_s *rp_sweep;
  /* Uploads never sent (uploads.c): their lifetime (PZ_UPLOAD_UNSENT_TTL_MS,
   * shorter for tests: PLAZA_TEST_UPLOAD_TTL_MS) and their sweep. */
  int64_t upload_ttl_ms;
  struct pz__api_sweep_s *upload_sweep;
  /* Events older than event_retention_ms leave the streams (sync.c), a
   * sweep at a time from after rowid event_cursor (the writer's; moved
   * to event_cursor_next once the sweep's deletions are durable). 0:
   * kept forever. */
  int64_t event_retention_ms;
  int64_t event_cursor, event_cursor_next;
  struct pz__api_sweep_s *event_sweep;
  /* The scan, once at start, for upload files no row owns: one read job
   * per first-level directory, ids below `below` (the first id this
   * process made) only. */
  struct {
    pz_store_job_t job;
    int64_t below;
    unsigned dir, removed;
  } orphans;
  /* Merchants (merchants.c): the webhook dispatcher, NULL without a wallet. */
  struct pz__api_hooks_s *hooks;
  /* WebSockets of signed-in users, by user id (ws.c). */
  struct {
    ws_conn_t **buckets;
    unsigned mask, count;
    unsigned test_catchup_delay_ms; /* PLAZA_TEST_CATCHUP_DELAY_MS */
  } ws;
  /* Jobs and Argon2 work under way whose completions use the api: a
   * pz_api_free that comes early waits for the last of them. */
  unsigned busy;
  bool closing;
};

typedef struct pz__api_ctx_s pz__api_ctx_t;
typedef void (*pz__api_ctx_cb)(pz__api_ctx_t *ctx);

/* The state of one request that goes to the store or to Argon2, allocated
 * from the request's arena (pz__api_ctx_new), and usually the first member
 * of a larger struct of the handler's own. */
struct pz__api_ctx_s {
  pz_store_job_t job;
  pz_auth_pw_job_t pw;
  pz_req_t *req;
  pz_api_t *api;
  /* The answer that job.run built (off the loop) for the default done:
   * status with body out, or 204 when out is NULL. out is released with
   * the request's arena. */
  json_t *out;
  int status;
  /* Loop thread, when the store job is over; NULL answers with the above
   * or with the job's error. */
  pz__api_ctx_cb done;
  pz__api_ctx_cb pw_done; /* when the Argon2 job is over */
};

/* A zeroed context of size bytes (>= sizeof(pz__api_ctx_t)) for req, with
 * job.run set and status 200. */
void *pz__api_ctx_new(pz_req_t *req, size_t size, pz_store_run_fn run);
/* Run ctx->job on a reader / the writer; ctx->done (or the default) follows. */
void pz__api_read(pz__api_ctx_t *ctx);
void pz__api_write(pz__api_ctx_t *ctx);
/* The same for a receipt, which may wait for other writes to ride with (pz_store_write_lazy). */
void pz__api_write_lazy(pz__api_ctx_t *ctx);
/* Queues ctx->pw; ctx->pw_done follows. Returns 0, or PZ_EUNAVAIL when
 * the queue is full: the caller answers, with pz__api_fail_busy. */
int pz__api_hash(pz__api_ctx_t *ctx);
/* Answers 503 with Retry-After: 1. */
void pz__api_fail_busy(pz_req_t *req);
/* Answers for an Argon2 job that failed (shutdown, or no memory for it). */
void pz__api_fail_pw(pz__api_ctx_t *ctx);
/* The default ending of a job: the job's error, or ctx->status with ctx->out. */
void pz__api_finish(pz__api_ctx_t *ctx);
/* A setting for tests only (documented in docs/api.md as such): the whole
 * number in the environment variable name when it lies in [lo, hi],
 * logged as a warning; otherwise dflt. Used at start-up. */
int64_t pz__api_test_knob(const char *name, int64_t lo, int64_t hi, int64_t dflt);
void pz__api_admin_routes(pz_api_t *api, pz_router_t *r);
/* For work that does not belong to a request (WebSocket look-ups): counts
 * it as under way until pz__api_unbusy. */
void pz__api_busy(pz_api_t *api);
void pz__api_unbusy(pz_api_t *api);

/* ---- answers ---- */

/* Answers with the error envelope (which the net core logs once, with the request id). */
void pz__api_fail(pz_req_t *req, const pz_err_t *err);
/* Answers status with body (stolen: released here), as compact JSON. */
void pz__api_json(pz_req_t *req, int status, json_t *body);
void pz__api_no_content(pz_req_t *req);

/* ---- decoding ---- */

/* Parses the body as a JSON object, released with the request's arena.
 * Errors: malformed_json, invalid_utf8, invalid_request (not an object). */
int pz__api_body(pz_req_t *req, json_t **out, pz_err_t *err);
/* json_loadb(data, len, flags, error), flags with JSON_REJECT_DUPLICATES,
 * with a fast path for a flat object of strings, integers, booleans and
 * nulls (json_flat.c). */
json_t *pz__api_json_load(const char *data, size_t len, size_t flags, json_error_t *error);
/* The fast path alone: the object, or NULL when the input is not one it
 * takes (valid JSON or not). For fuzz/json. */
json_t *pz__api_json_load_flat(const char *data, size_t len);
/* A string member: required, or optional (*present tells). Errors name the field. */
int pz__api_str(json_t *obj, const char *key, bool required, pz_str_t *out, bool *present, pz_err_t *err);
/* A required id member: a decimal string. */
int pz__api_id(json_t *obj, const char *key, int64_t *out, pz_err_t *err);
/* Route parameter i as an id. */
int pz__api_param_id(pz_req_t *req, int i, const char *name, int64_t *out, pz_err_t *err);

/* ---- encoding (any thread) ---- */

json_t *pz__api_id_json(int64_t id);
json_t *pz__api_time_json(int64_t ms);
json_t *pz__api_text(const char *s);
/* JSON written by hand where building and dumping a jansson tree costs a
 * hot path too much (a message.new event, a transfer), byte for byte as
 * json_dumps(JSON_COMPACT) writes it. Each appends what comes before the
 * value (name: "{\"id\":", ",\"note\":", "" or ","), then the value as a
 * JSON string. */
void pz__api_put_text(pz_buf_t *b, const char *name, const char *s, size_t len);
void pz__api_put_id(pz_buf_t *b, const char *name, int64_t id);
void pz__api_put_time(pz_buf_t *b, const char *name, int64_t ms);
/* b's bytes as a NUL-terminated string from malloc (free() it, as
 * jansson's text), or NULL; b is freed either way. */
char *pz__api_buf_take(pz_buf_t *b);
/* {"id","username","display_name","bio"} */
json_t *pz__api_user_json(const pz_user_rec_t *u);

/* ---- authentication ---- */

/* Resolves the request's bearer token (from memory, or with a read),
 * sets req->user_id and req->session_id, and calls next; or answers 401. */
void pz__api_authed(pz_req_t *req, void (*next)(pz_req_t *req));
/* A session is gone (logout, revocation, eviction): forget its token and
 * close its WebSockets with 4001. Loop thread. */
void pz__api_session_gone(pz_api_t *api, const pz_session_rec_t *s);

/* ---- routes of each resource file ---- */

void pz__api_accounts_routes(pz_api_t *api, pz_router_t *r);
void pz__api_sessions_routes(pz_api_t *api, pz_router_t *r);
void pz__api_me_routes(pz_api_t *api, pz_router_t *r);
void pz__api_users_routes(pz_api_t *api, pz_router_t *r);
void pz__api_contacts_routes(pz_api_t *api, pz_router_t *r);
void pz__api_health_routes(pz_api_t *api, pz_router_t *r);
void pz__api_ws_routes(pz_api_t *api, pz_router_t *r);
void pz__api_conversations_routes(pz_api_t *api, pz_router_t *r);
void pz__api_sync_routes(pz_api_t *api, pz_router_t *r);
void pz__api_wallet_routes(pz_api_t *api, pz_router_t *r);
/* Limits, the history and its CSV export, statements (wallet_history.c). */
void pz__api_wallet_history_routes(pz_api_t *api, pz_router_t *r);
/* Starts the expiry sweep of transfers (at once, then every minute) / stops it. Loop thread. */
void pz__api_wallet_start(pz_api_t *api);
void pz__api_wallet_stop(pz_api_t *api);
void pz__api_groups_routes(pz_api_t *api, pz_router_t *r);
void pz__api_msgops_routes(pz_api_t *api, pz_router_t *r);
void pz__api_uploads_routes(pz_api_t *api, pz_router_t *r);
/* Starts the sweep of uploads never sent (at once, then every minute) / stops it. Loop thread. */
void pz__api_uploads_start(pz_api_t *api);
/* The retention sweep of old events (sync.c), when the configuration keeps them for a time. */
void pz__api_sync_start(pz_api_t *api);
void pz__api_sync_stop(pz_api_t *api);
void pz__api_uploads_stop(pz_api_t *api);

/* ---- messaging shared by HTTP and the WebSocket (conversations.c) ---- */

/* One message send: decoded on the loop, run in a write job, its events
 * pushed on the loop once durable. Lives in the caller's memory. */
typedef struct pz__api_send_s {
  /* What was asked; once the job ran, the message that stands: the same,
   * or on a retry the first one with its client_id, read over it (one
   * record of 33 KiB per send in flight, not two). */
  pz_msg_rec_t msg;
  char *payload; /* the message.new event without seq (malloc'd by jansson) */
  size_t payload_len;
  bool created; /* false: a retry of a stored message; no event */
  pz_chat_fanout_t fanout;
  /* An image or file message (uploads.c): the upload it carries, 0 for
   * text, and its caption (malloc'd, NULL for none). Its body and payload
   * are built inside the job, once the upload is read. */
  int64_t upload_id;
  char *caption;
} pz__api_send_t;

/* Takes one message from user_id's send rate; 0, or PZ_ERATE with err
 * filled and the seconds to wait in *retry_after_s. Loop thread. */
int pz__api_send_rate(pz_api_t *api, int64_t user_id, unsigned *retry_after_s, pz_err_t *err);
/* Decodes {"client_id","text","reply_to"?} or {"client_id","body":{...}} (and "conversation_id" unless
 * conv_id is given) from obj into s (zeroed by the caller), with a new
 * message id and time. Loop thread. Release s with pz__api_send_release
 * whatever the result. */
int pz__api_send_decode(pz__api_send_t *s, int64_t user_id, int64_t conv_id, json_t *obj, pz_err_t *err);
/* The send's check for the send log (pz_store_job_t's log): a text
 * message without an upload goes through pz_chat_send_log. Log thread. */
int pz__api_send_log(pz_db_t *db, pz__api_send_t *s, pz_buf_t *rec, pz_err_t *err);
/* Runs the send inside a write job. Writer thread. */
int pz__api_send_run(pz_db_t *db, pz__api_send_t *s, pz_err_t *err);
/* Pushes the events of a send that succeeded to the members' sockets. Loop thread. */
void pz__api_send_publish(pz_api_t *api, pz__api_send_t *s);
void pz__api_send_release(pz__api_send_t *s);
/* {"id","conversation_id","sender_id","client_id","type","text","reply_to","created_at"}. Any thread. */
json_t *pz__api_message_json(const pz_msg_rec_t *m);
/* Pushes the events of fanout, each {"seq":N, ...payload}, to the
 * sockets of their users. Loop thread. */
void pz__api_publish(pz_api_t *api, const pz_chat_fanout_t *fanout, pz_str_t payload);
/* Writes {"seq":seq, ...payload} to out: payload is an event's JSON object without seq. */
void pz__api_event_frame(pz_buf_t *out, int64_t seq, pz_str_t type, pz_str_t payload);

/* ---- conversation objects (conversations.c) ---- */

/* *out = {"id","type","title","owner_id","members":[{"user","role"}],
 * "member_count","created_at"}, the members read in the same job; *out is
 * set (and the caller's to release) even when the read fails. Any job. */
int pz__api_conv_json(pz_db_t *db, const pz_conv_rec_t *c, json_t **out, pz_err_t *err);
/* *out = conv_id as member me sees it: the above with "last_message",
 * "last_read_id" and "unread_count". 404 / 403 not_member. Any job. */
int pz__api_conv_view_json(pz_db_t *db, int64_t me, int64_t conv_id, json_t **out, pz_err_t *err);

/* ---- QR codes (qr.c) ---- */

/* Appends to out an SVG image of the QR code of text: the dark modules as
 * one path, with the quiet zone of four modules around them. PZ_EINVAL
 * when text does not fit a QR code, PZ_ENOMEM. Any thread. */
int pz__api_qr_svg(pz_str_t text, pz_buf_t *out, pz_err_t *err);

/* ---- WebSocket registry (ws.c) ---- */

void pz__api_ws_init(pz_api_t *api);
void pz__api_ws_release(pz_api_t *api);
/* Closes user_id's sockets of session session_id with code. */
void pz__api_ws_close_session(pz_api_t *api, int64_t user_id, int64_t session_id, int code, const char *reason);
/* Sends a text frame to every ready socket of user_id; returns how many took it. */
unsigned pz__api_ws_send_user(pz_api_t *api, int64_t user_id, const char *data, size_t len);
/* Pushes event seq of user_id's stream (frame: {"seq",...}) to each of
 * their sockets that has not had it: a socket still catching up from the
 * database takes it from there instead, so each socket gets every event
 * once, in order. Loop thread. */
void pz__api_ws_push_event(pz_api_t *api, int64_t user_id, int64_t seq, const char *frame, size_t len);

/* ---- attachments in messages (uploads.c) ---- */

/* Decodes a message's "body" ({"type":"image","upload_id","caption"?} or
 * {"type":"file","upload_id"}) into s: type, upload_id and caption. Loop thread. */
int pz__api_attach_decode(pz__api_send_t *s, json_t *body, pz_err_t *err);
/* Inside the send job, before pz_chat_send: checks that the sender may
 * send the upload and that it fits the message type, and writes the
 * message's body and the message.new payload into s. Writer thread. */
int pz__api_attach_prepare(pz_db_t *db, pz__api_send_t *s, pz_err_t *err);

/* ---- message operations (msgops.c) ---- */

void pz__api_msgops_init(pz_api_t *api);
void pz__api_msgops_release(pz_api_t *api);
/* The message as pz__api_message_json writes it, with its "reactions"
 * read in the job. Any job. */
int pz__api_message_full_json(pz_db_t *db, const pz_msg_rec_t *m, json_t **out, pz_err_t *err);
/* Adds "read_up_to" and "delivered_up_to" to each member object of
 * members (a user object, or one with the user under "user"). Any job. */
int pz__api_member_markers(pz_db_t *db, int64_t conv_id, json_t *members, pz_err_t *err);
/* Decodes the optional "mentions" of obj: at most PZ_CHAT_MENTIONS_MAX
 * user ids, duplicates dropped, into ids[0..*n). */
int pz__api_mentions_decode(json_t *obj, int64_t *ids, unsigned *n, bool *present, pz_err_t *err);

/* A receipt event to every member of a conversation: built and appended
 * in a write job, pushed once durable. Zeroed by its owner; release it. */
typedef struct pz__api_receipt_s {
  char *payload; /* NULL: no receipt */
  pz_chat_fanout_t fanout;
} pz__api_receipt_t;

/* After me's read marker moved from was to marker: moves the delivered
 * marker along and tells me and the senders of the messages it passed
 * (every member, past a bound). Writer. */
int pz__api_read_receipt_run(pz_db_t *db, pz__api_receipt_t *r, int64_t me, int64_t conv_id, int64_t was,
                             int64_t marker, pz_err_t *err);
/* Moves me's delivered marker to message_id (pz_chat_mark_delivered) and,
 * when it moved, tells me and the senders of the messages it passed. Writer. */
int pz__api_delivered_run(pz_db_t *db, pz__api_receipt_t *r, int64_t me, int64_t conv_id, int64_t message_id,
                          int64_t *read_up_to, int64_t *delivered_up_to, pz_err_t *err);
void pz__api_receipt_publish(pz_api_t *api, pz__api_receipt_t *r); /* Loop thread. */
void pz__api_receipt_release(pz__api_receipt_t *r);

/* user_id's first socket opened (offline_session_id 0) or their last one,
 * of that session, closed: tells their contacts' sockets. Loop thread. */
void pz__api_presence_changed(pz_api_t *api, int64_t user_id, int64_t offline_session_id);
/* True while user_id has a ready socket. Loop thread (ws.c). */
bool pz__api_ws_online(pz_api_t *api, int64_t user_id);

/* ---- red packets and money in chats (red_packets.c) ---- */

void pz__api_red_packets_routes(pz_api_t *api, pz_router_t *r);
/* Starts the refund sweep of expired red packets (at once, then every
 * minute) / stops it. Loop thread. */
void pz__api_red_packets_start(pz_api_t *api);
void pz__api_red_packets_stop(pz_api_t *api);

/* Events of one write job, each with its own payload, framed in the job
 * and pushed to the users' sockets once it is durable. Zeroed by its
 * owner; release it. */
typedef struct pz__api_events_s {
  pz_buf_t frames;
  struct {
    int64_t user_id, seq;
    size_t off, len;
  } * items;
  unsigned n, cap;
} pz__api_events_t;

/* Appends event payload (the JSON text {"type":type,...}) to user_id's stream. Writer. */
int pz__api_events_user_text(pz_db_t *db, pz__api_events_t *ev, int64_t user_id, const char *type, pz_str_t payload,
                             int64_t now, pz_err_t *err);
/* Appends event payload ({"type":type,...}: stolen) to user_id's stream. Writer. */
int pz__api_events_user(pz_db_t *db, pz__api_events_t *ev, int64_t user_id, const char *type, json_t *payload,
                        int64_t now, pz_err_t *err);
void pz__api_events_push(pz_api_t *api, const pz__api_events_t *ev); /* Loop thread. */

/* ---- requests that move money (money.c): wallet.c and red_packets.c ---- */

/* What a money-moving request's context holds for the helpers below: who
 * and when, the idempotency key and the request's fingerprint, a refusal
 * that must commit, the answer, and the job's events. A context begins
 * with it and is made by pz__api_money_new. */
typedef struct pz__api_money_s {
  pz__api_ctx_t base;
  const pz_wallet_config_t *cfg;
  int64_t me, now;
  pz_str_t pin, key;
  bool has_key; /* key was given: answers are kept under it */
  uint8_t fp[PZ_WALLET_FP_LEN];
  /* A refusal that must commit (a wrong PIN is counted): the job returns 0
   * and the answer is this. */
  bool failed;
  pz_err_t fail;
  unsigned retry_after_s;
  /* The answer as kept under the idempotency key, or replayed from it. */
  int answer_status;
  char *answer; /* malloc'd */
  size_t answer_len;
  /* Events of the job, pushed once it is durable. */
  pz__api_events_t events;
} pz__api_money_t;

/* A context of size bytes beginning with pz__api_money_t, for req; its
 * answer and events are released with the request. Loop thread. */
void *pz__api_money_new(pz_req_t *req, size_t size, pz_store_run_fn run);
/* The job's rerun (store.h) for a context whose run writes only into the
 * part above: answer, refusal, events and base.out go back to none. Writer. */
void pz__api_money_rerun(pz_store_job_t *job);
/* Takes text (malloc'd; NULL: out of memory) as the answer, and keeps it
 * under the idempotency key, when there is one, in the job that moved the
 * money. Writer. */
int pz__api_money_keep(pz_db_t *db, pz__api_money_t *m, int status, char *text, int64_t ref_id, pz_err_t *err);
/* pz__api_money_keep for body (stolen), serialized. Writer. */
int pz__api_money_save(pz_db_t *db, pz__api_money_t *m, int status, json_t *body, int64_t ref_id, pz_err_t *err);
/* The ending of a money rule that refused (wallet.h's *keep): when nothing
 * but the PIN's state was written, the job commits and answers the error
 * (PIN errors are not kept: a retry with the right PIN is the same
 * request); a refusal on the merits (insufficient funds, a block, an
 * unknown user) is kept as the key's answer, so that a late duplicate of a
 * request the client saw fail cannot move money after all. Writer. */
int pz__api_money_refused(pz_db_t *db, pz__api_money_t *m, int rc, bool keep, pz_err_t *err);
/* Takes the answer kept under the key, idem as pz_wallet_idem_lookup found
 * it, as this request's. (A record holds up to 4 KiB of answer: the job
 * that looks one up keeps it on the writer's stack, not in the request's
 * context, which the loop would zero for every request.) Writer. */
int pz__api_money_replay(pz__api_money_t *m, const pz_wallet_idem_rec_t *idem, pz_err_t *err);
/* The same for a context of its own shape (merchants.c): *answer (malloc'd),
 * *len and *status from idem. Writer. */
int pz__api_answer_replay(const pz_wallet_idem_rec_t *idem, char **answer, size_t *len, int *status, pz_err_t *err);
/* Answers err, with Retry-After when the PIN is locked. Loop thread. */
void pz__api_money_fail(pz_req_t *req, const pz_err_t *err, unsigned retry_after_s);
/* The done of a money-moving job: its error, its kept refusal, or its
 * answer byte for byte as kept, after the events it made. Loop thread. */
void pz__api_money_done(pz__api_ctx_t *base);

/* ---- sweeps (sweep.c): a periodic write job that settles what expired ---- */

typedef struct pz__api_sweep_s pz__api_sweep_t;
typedef struct pz__api_sweep_ops_s {
  const char *what;   /* for logs: "expired transfers" */
  const char *metric; /* counter of what was settled */
  unsigned batch;     /* run settles at most this many; a full batch sweeps again at once */
  /* On the writer: settles what expired, counts it in s->n, and may add
   * events to s->events, pushed once the commit is durable. */
  int (*run)(pz__api_sweep_t *s, pz_db_t *db, pz_err_t *err);
  /* On the loop, once what run did is durable (optional): work outside
   * the database, such as removing files, from what run left in s->ids. */
  void (*after)(pz__api_sweep_t *s);
} pz__api_sweep_ops_t;

struct pz__api_sweep_s {
  uv_timer_t timer;
  pz_store_job_t job;
  pz_api_t *api;
  const pz__api_sweep_ops_t *ops;
  bool running, closing, closed; /* closed: the timer's close callback ran */
  unsigned n;
  bool more; /* run may set it: more is left even though n < batch */
  pz__api_events_t events;
  int64_t ids[PZ_UPLOAD_SWEEP_BATCH]; /* what run settled, for after */
};

/* Sweeps at once, then every minute (or every ttl_ms when that is shorter,
 * for tests). Loop thread. Stop with pz__api_sweep_stop, which frees it. */
pz__api_sweep_t *pz__api_sweep_start(pz_api_t *api, const pz__api_sweep_ops_t *ops, int64_t ttl_ms);
void pz__api_sweep_stop(pz__api_sweep_t *s);
void pz__api_events_release(pz__api_events_t *ev);

/* The transfer object of the wallet's answers (wallet.c). Any thread. */
json_t *pz__api_transfer_json(const pz_wallet_transfer_rec_t *t);
/* pz__api_transfer_json(t) as compact JSON text; NULL when out of memory. Caller free()s. Any thread. */
char *pz__api_transfer_text(const pz_wallet_transfer_rec_t *t);
/* {"transfer":tj}, malloc'd (NULL: out of memory): a transfer's 201. */
char *pz__api_transfer_answer(const char *tj);
/* In the job that made transfer t: its card, a transfer message with id
 * msg_id, in t->conversation_id (when not 0), and transfer.updated to
 * both parties; tj is pz__api_transfer_text(t). Writer. */
/* The send log's way for a transfer (store.h, the job's log callback):
 * when pz_wallet_transfer_log decides t alone, appends its record to rec,
 * sets m's answer and events as transfer_run would, and returns the
 * record's type; else 0, and the writer makes it. Log thread. */
int pz__api_transfer_log(pz_db_t *db, pz__api_money_t *m, const pz_wallet_transfer_rec_t *t, pz_buf_t *rec);
int pz__api_transfer_made(pz_db_t *db, pz__api_events_t *ev, const pz_wallet_transfer_rec_t *t, const char *tj,
                          int64_t msg_id, int64_t now, pz_err_t *err);
/* transfer.updated {"transfer"} to both parties of t. Writer. */
int pz__api_transfer_updated(pz_db_t *db, pz__api_events_t *ev, const pz_wallet_transfer_rec_t *t, int64_t now,
                             pz_err_t *err);

/* ---- CSV (wallet_history.c) ---- */

/* Appends text written by a user as one CSV field: quoted per RFC 4180
 * when it holds a comma, a quote or a line break (quotes doubled), and
 * with a ' in front when it starts with = + - @, a tab or a CR, which a
 * spreadsheet would run as a formula. Any thread. */
void pz__api_csv_field(pz_buf_t *b, const char *s, size_t len);

/* ---- merchants, QR payments and webhooks (merchants.c) ---- */

void pz__api_merchants_routes(pz_api_t *api, pz_router_t *r);
/* Starts the webhook dispatcher (the outbox at once, then every second) /
 * stops it, cancelling deliveries under way. Loop thread. */
void pz__api_merchants_start(pz_api_t *api);
void pz__api_merchants_stop(pz_api_t *api);

#endif
