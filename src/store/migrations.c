/* Schema migrations, applied in order at open: append new ones, never edit one that has shipped. */
#include "store/db.h"

/* Portability notes, for the PostgreSQL backend that reads the same list:
 * - ids come from pz_id_next() (64-bit); SQLite's INTEGER is 64-bit and
 *   "INTEGER PRIMARY KEY" makes the id the rowid, PostgreSQL spells it BIGINT.
 * - times are integer milliseconds since the Unix epoch.
 * - text is compared bytewise (SQLite's BINARY collation, COLLATE "C" in
 *   PostgreSQL): usernames are stored lower-cased, so case-insensitive
 *   uniqueness and prefix search are plain index lookups and range scans.
 * - partial indexes and ON CONFLICT DO NOTHING exist in both.
 * - every foreign key has an index whose leading column is the referencing
 *   column, so that deleting a user does not scan a table.
 * - rows are keyed by the user they belong to first (sessions.user_id,
 *   contacts.user_id, blocks.user_id), so that sharding by user keeps a
 *   user's rows together. */

static const char migration_1[] =
    /* Accounts. password_hash is the Argon2id string of libsodium, which
     * carries its own salt and parameters. */
    "CREATE TABLE users ("
    "  id            INTEGER PRIMARY KEY,"
    "  username      TEXT    NOT NULL,"
    "  display_name  TEXT    NOT NULL,"
    "  bio           TEXT    NOT NULL DEFAULT '',"
    "  password_hash TEXT    NOT NULL,"
    "  created_at    INTEGER NOT NULL,"
    "  updated_at    INTEGER NOT NULL"
    ");"
    "CREATE UNIQUE INDEX users_username ON users (username);"

    /* One row per signed-in device. token_hash is the hex BLAKE2b-256 of
     * the bearer token: a stolen copy of the table opens no session. */
    "CREATE TABLE sessions ("
    "  id           INTEGER PRIMARY KEY,"
    "  user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  token_hash   TEXT    NOT NULL,"
    "  device       TEXT    NOT NULL,"
    "  ip           TEXT    NOT NULL,"
    "  created_at   INTEGER NOT NULL,"
    "  last_seen_at INTEGER NOT NULL,"
    "  expires_at   INTEGER NOT NULL"
    ");"
    "CREATE UNIQUE INDEX sessions_token_hash ON sessions (token_hash);"
    "CREATE INDEX sessions_user ON sessions (user_id, last_seen_at);"

    /* Friend requests keep their outcome; at most one is pending per
     * direction between two users. */
    "CREATE TABLE contact_requests ("
    "  id           INTEGER PRIMARY KEY,"
    "  from_user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  to_user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  greeting     TEXT    NOT NULL,"
    "  status       TEXT    NOT NULL CHECK (status IN ('pending', 'accepted', 'declined')),"
    "  created_at   INTEGER NOT NULL,"
    "  updated_at   INTEGER NOT NULL,"
    "  CHECK (from_user_id <> to_user_id)"
    ");"
    "CREATE UNIQUE INDEX contact_requests_pending ON contact_requests (from_user_id, to_user_id)"
    "  WHERE status = 'pending';"
    "CREATE INDEX contact_requests_to ON contact_requests (to_user_id, status, created_at);"
    "CREATE INDEX contact_requests_from ON contact_requests (from_user_id, status, created_at);"

    /* A contact is stored in both directions, so that a user's list is one
     * range of the primary key and lives on that user's shard. */
    "CREATE TABLE contacts ("
    "  user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  contact_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, contact_id),"
    "  CHECK (user_id <> contact_id)"
    ");"
    "CREATE INDEX contacts_contact ON contacts (contact_id);"

    /* user_id blocked blocked_id. */
    "CREATE TABLE blocks ("
    "  user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  blocked_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, blocked_id),"
    "  CHECK (user_id <> blocked_id)"
    ");"
    "CREATE INDEX blocks_blocked ON blocks (blocked_id);";

static const char migration_2[] =
    /* Conversations: direct chats (two users, one chat per pair) and
     * groups. A direct chat records its pair as (lower id, higher id) in
     * direct_a/direct_b, so that the unique index finds it from either side. */
    "CREATE TABLE conversations ("
    "  id              INTEGER PRIMARY KEY,"
    "  type            TEXT    NOT NULL CHECK (type IN ('direct', 'group')),"
    "  title           TEXT    NOT NULL DEFAULT '',"
    "  owner_id        INTEGER,"
    "  direct_a        INTEGER,"
    "  direct_b        INTEGER,"
    "  created_at      INTEGER NOT NULL,"
    "  last_message_id INTEGER NOT NULL DEFAULT 0,"
    "  CHECK ((type = 'direct') = (direct_a IS NOT NULL AND direct_b IS NOT NULL AND direct_a < direct_b))"
    ");"
    "CREATE UNIQUE INDEX conversations_direct ON conversations (direct_a, direct_b) WHERE type = 'direct';"

    /* Membership is keyed by conversation first, like the messages, so that
     * a conversation's rows stay together when sharded by conversation.
     * activity_id is the conversation's last message id (or its own id
     * before the first message), copied to every member's row so that a
     * user's list, most recent first, is one range of an index. */
    "CREATE TABLE conversation_members ("
    "  conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,"
    "  user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  role            TEXT    NOT NULL CHECK (role IN ('owner', 'member')),"
    "  joined_at       INTEGER NOT NULL,"
    "  last_read_id    INTEGER NOT NULL DEFAULT 0,"
    "  activity_id     INTEGER NOT NULL,"
    "  PRIMARY KEY (conversation_id, user_id)"
    ");"
    "CREATE INDEX conversation_members_user ON conversation_members (user_id, activity_id);"

    /* Messages. Ids are time-ordered and given out in the order the writer
     * commits them, so id order is the order of a conversation. The sender
     * has no foreign key: a conversation keeps its history when one of its
     * members goes. (conversation_id, sender_id, client_id) is unique: a
     * retried send finds its first message instead of making a second. */
    "CREATE TABLE messages ("
    "  id              INTEGER PRIMARY KEY,"
    "  conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,"
    "  sender_id       INTEGER NOT NULL,"
    "  client_id       TEXT    NOT NULL,"
    "  type            TEXT    NOT NULL DEFAULT 'text',"
    "  text            TEXT    NOT NULL,"
    "  reply_to        INTEGER NOT NULL DEFAULT 0,"
    "  created_at      INTEGER NOT NULL"
    ");"
    "CREATE UNIQUE INDEX messages_client ON messages (conversation_id, sender_id, client_id);"
    "CREATE INDEX messages_history ON messages (conversation_id, id);"

    /* Every user's event stream: seq is gap-free per user, counted in
     * event_heads (one row per user with events), and the payload is the
     * event's JSON object without its seq, as the API wrote it. */
    "CREATE TABLE event_heads ("
    "  user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,"
    "  seq     INTEGER NOT NULL"
    ");"
    "CREATE TABLE events ("
    "  user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  seq        INTEGER NOT NULL,"
    "  type       TEXT    NOT NULL,"
    "  payload    TEXT    NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, seq)"
    ");";

static const char migration_3[] =
    /* Attachments. A message that is not plain text (an image, a file)
     * keeps its content in body: the JSON object the API wrote when it was
     * sent, opaque to the store like an event payload; '' for text. */
    "ALTER TABLE messages ADD COLUMN body TEXT NOT NULL DEFAULT '';"

    /* Uploaded files: the bytes live under DATA_DIR/uploads/, named by id;
     * the row is written only once they are on disk and fsynced. */
    "CREATE TABLE uploads ("
    "  id            INTEGER PRIMARY KEY,"
    "  user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  content_type  TEXT    NOT NULL,"
    "  size          INTEGER NOT NULL,"
    "  name          TEXT    NOT NULL,"
    "  width         INTEGER NOT NULL DEFAULT 0,"
    "  height        INTEGER NOT NULL DEFAULT 0,"
    "  thumb_type    TEXT    NOT NULL DEFAULT '',"
    "  thumb_size    INTEGER NOT NULL DEFAULT 0,"
    "  created_at    INTEGER NOT NULL"
    ");"
    "CREATE INDEX uploads_user ON uploads (user_id);"

    /* Where an upload was sent: its readers are the uploader and the
     * members of these conversations. */
    "CREATE TABLE message_uploads ("
    "  upload_id       INTEGER NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,"
    "  conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,"
    "  message_id      INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,"
    "  PRIMARY KEY (upload_id, message_id)"
    ");"
    "CREATE INDEX message_uploads_conversation ON message_uploads (conversation_id);"
    "CREATE INDEX message_uploads_message ON message_uploads (message_id);";

static const char migration_4[] =
    /* Message operations. edited_at and recalled_at are 0 until the
     * message is edited or recalled; a recall also empties the row's text,
     * body and mentions, so that what the sender took back is not merely
     * hidden. (Migration 7 lets a recall empty the events that carry the
     * message too.) mentions is the
     * space-separated decimal ids of the members the text mentions. */
    "ALTER TABLE messages ADD COLUMN edited_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN recalled_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN mentions TEXT NOT NULL DEFAULT '';"

    /* Receipts: how far each member's devices received the conversation
     * (last_read_id is how far they read). */
    "ALTER TABLE conversation_members ADD COLUMN delivered_up_to INTEGER NOT NULL DEFAULT 0;"

    /* Messages a user deleted for themselves only. */
    "CREATE TABLE message_hidden ("
    "  user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  message_id      INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,"
    "  conversation_id INTEGER NOT NULL,"
    "  hidden_at       INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, message_id)"
    ");"
    "CREATE INDEX message_hidden_message ON message_hidden (message_id);"

    /* Reactions: one row per (message, emoji, user). The user has no
     * foreign key, as a message's sender has none. */
    "CREATE TABLE message_reactions ("
    "  message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,"
    "  emoji      TEXT    NOT NULL,"
    "  user_id    INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (message_id, emoji, user_id)"
    ");"

    /* Privacy settings; a user without a row has the defaults. */
    "CREATE TABLE user_settings ("
    "  user_id          INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,"
    "  direct_chat_from TEXT    NOT NULL DEFAULT 'contacts' CHECK (direct_chat_from IN ('contacts', 'everyone'))"
    ");"

    /* Full-text search over message text: an FTS5 index with the messages
     * table as its content, kept in step by triggers, so that every path
     * that writes text (send, edit, recall) updates it in the same
     * transaction. (PostgreSQL: a tsvector column with a GIN index.) */
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    "  text, content = 'messages', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2');"
    "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');"
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN"
    "  INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);"
    " END;"
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN"
    "  INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    " END;"
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN"
    "  INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    "  INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);"
    " END;";

static const char migration_5[] =
    /* Group roles: owner, admin, member. The role column of migration 2
     * allowed owner and member only, and SQLite cannot change a CHECK in
     * place: a new column with the wider CHECK takes the values and the
     * name of the old one (ADD, DROP and RENAME COLUMN exist in PostgreSQL
     * too). The owner is also conversations.owner_id; both change together. */
    "ALTER TABLE conversation_members ADD COLUMN member_role TEXT NOT NULL DEFAULT 'member'"
    "  CHECK (member_role IN ('owner', 'admin', 'member'));"
    "UPDATE conversation_members SET member_role = role;"
    "ALTER TABLE conversation_members DROP COLUMN role;"
    "ALTER TABLE conversation_members RENAME COLUMN member_role TO role;"

    /* Invite links to groups. code is random (128 bits, base64url), so it
     * cannot be guessed; a revoked invite keeps its row, so that its users
     * are told it was revoked rather than that it never existed. */
    "CREATE TABLE group_invites ("
    "  code            TEXT    PRIMARY KEY,"
    "  conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,"
    "  created_by      INTEGER NOT NULL,"
    "  created_at      INTEGER NOT NULL,"
    "  expires_at      INTEGER NOT NULL,"
    "  revoked_at      INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX group_invites_conversation ON group_invites (conversation_id);";

static const char migration_6[] =
    /* The wallet's double-entry ledger. Amounts are integers in minor
     * units. An account belongs to a user (user_id) in one currency, or is
     * a system account (user_id NULL): 'external' is the outside world
     * that top-ups come from and withdrawals go to, 'escrow' holds money of
     * pending transfers and withdrawals, 'fees' what Plaza earns. balance
     * caches the sum of the account's entries, updated in the transaction
     * that adds them; a user's balance never goes below zero. Users have no
     * foreign key: the ledger keeps its history whoever goes. */
    "CREATE TABLE wallet_accounts ("
    "  id         INTEGER PRIMARY KEY,"
    "  user_id    INTEGER,"
    "  kind       TEXT    NOT NULL CHECK (kind IN ('user', 'external', 'escrow', 'fees')),"
    "  currency   TEXT    NOT NULL,"
    "  balance    INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  CHECK ((kind = 'user') = (user_id IS NOT NULL)),"
    "  CHECK (kind <> 'user' OR balance >= 0)"
    ");"
    "CREATE UNIQUE INDEX wallet_accounts_user ON wallet_accounts (user_id, currency) WHERE kind = 'user';"
    "CREATE UNIQUE INDEX wallet_accounts_system ON wallet_accounts (kind, currency) WHERE kind <> 'user';"

    /* One row per movement; its entries sum to zero per currency. ref_id
     * is the transfer or funding it belongs to. */
    "CREATE TABLE wallet_txns ("
    "  id         INTEGER PRIMARY KEY,"
    "  kind       TEXT    NOT NULL,"
    "  ref_id     INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX wallet_txns_ref ON wallet_txns (ref_id);"
    /* user_id repeats the account's owner (NULL for system accounts), so
     * that a user's history, newest first, is one range of an index. */
    "CREATE TABLE wallet_entries ("
    "  txn_id     INTEGER NOT NULL REFERENCES wallet_txns (id),"
    "  account_id INTEGER NOT NULL REFERENCES wallet_accounts (id),"
    "  user_id    INTEGER,"
    "  amount     INTEGER NOT NULL CHECK (amount <> 0),"
    "  PRIMARY KEY (txn_id, account_id)"
    ");"
    "CREATE INDEX wallet_entries_account ON wallet_entries (account_id);"
    "CREATE INDEX wallet_entries_user ON wallet_entries (user_id, txn_id) WHERE user_id IS NOT NULL;"

    /* Transfers between users. A pending transfer's money is in escrow
     * until it is accepted, returned or expires at expires_at. */
    "CREATE TABLE wallet_transfers ("
    "  id              INTEGER PRIMARY KEY,"
    "  from_user_id    INTEGER NOT NULL,"
    "  to_user_id      INTEGER NOT NULL,"
    "  amount          INTEGER NOT NULL CHECK (amount > 0),"
    "  currency        TEXT    NOT NULL,"
    "  note            TEXT    NOT NULL DEFAULT '',"
    "  status          TEXT    NOT NULL CHECK (status IN ('pending', 'completed', 'returned', 'expired')),"
    "  conversation_id INTEGER NOT NULL DEFAULT 0,"
    "  idem_key        TEXT    NOT NULL,"
    "  created_at      INTEGER NOT NULL,"
    "  expires_at      INTEGER NOT NULL,"
    "  updated_at      INTEGER NOT NULL,"
    "  CHECK (from_user_id <> to_user_id)"
    ");"
    "CREATE INDEX wallet_transfers_from ON wallet_transfers (from_user_id, id);"
    "CREATE INDEX wallet_transfers_to ON wallet_transfers (to_user_id, id);"
    "CREATE INDEX wallet_transfers_pending ON wallet_transfers (expires_at) WHERE status = 'pending';"

    /* Top-ups and withdrawals through a funding provider. */
    "CREATE TABLE wallet_fundings ("
    "  id           INTEGER PRIMARY KEY,"
    "  user_id      INTEGER NOT NULL,"
    "  kind         TEXT    NOT NULL CHECK (kind IN ('topup', 'withdrawal')),"
    "  status       TEXT    NOT NULL CHECK (status IN ('pending', 'completed', 'failed')),"
    "  amount       INTEGER NOT NULL CHECK (amount > 0),"
    "  currency     TEXT    NOT NULL,"
    "  provider     TEXT    NOT NULL,"
    "  provider_ref TEXT    NOT NULL DEFAULT '',"
    "  reason       TEXT    NOT NULL DEFAULT '',"
    "  idem_key     TEXT    NOT NULL,"
    "  created_at   INTEGER NOT NULL,"
    "  updated_at   INTEGER NOT NULL"
    ");"
    "CREATE INDEX wallet_fundings_user ON wallet_fundings (user_id, id);"

    /* Payment PIN and wallet settings. pin_hash is the PIN keyed-hashed
     * with a secret kept outside the database; the failure count and lock
     * are here so that they survive a restart. */
    "CREATE TABLE wallet_users ("
    "  user_id          INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,"
    "  pin_hash         BLOB,"
    "  pin_failures     INTEGER NOT NULL DEFAULT 0,"
    "  pin_locked_until INTEGER NOT NULL DEFAULT 0,"
    "  auto_accept      INTEGER NOT NULL DEFAULT 0,"
    "  updated_at       INTEGER NOT NULL"
    ");"

    /* The first response to each money-moving request, by the key its
     * client chose: written in the transaction that moved the money, so
     * that a retry, even after a crash, gets it back and moves nothing.
     * status 0 marks a funding still waiting for its provider. */
    "CREATE TABLE wallet_idempotency ("
    "  user_id     INTEGER NOT NULL,"
    "  key         TEXT    NOT NULL,"
    "  fingerprint BLOB    NOT NULL,"
    "  ref_id      INTEGER NOT NULL,"
    "  status      INTEGER NOT NULL,"
    "  body        TEXT    NOT NULL,"
    "  created_at  INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, key)"
    ");";

static const char migration_7[] =
    /* The message an event carries (message.new, message.edited,
     * message.recalled), so that a recall can find the events that hold
     * what was said and rewrite their payloads in the same transaction:
     * recalled content must leave the streams too, not only the message
     * row. NULL for events about no message, which the partial index
     * leaves out. Adding a nullable column rewrites no row; events written
     * before this migration stay NULL and are not rewritten by a recall
     * (reading the id back out of their JSON would need json_extract,
     * which is not portable to the PostgreSQL store). */
    "ALTER TABLE events ADD COLUMN message_id INTEGER;"
    "CREATE INDEX events_message ON events (message_id) WHERE message_id IS NOT NULL;";

static const char migration_8[] =
    /* Red packets: total left the sender for escrow when the packet was
     * made; each claim moves one share from escrow to its claimant, and
     * what is left when it expires goes back to the sender. While it is
     * 'active', escrow holds total - claimed_amount of it (ledger verify
     * checks this). Claims are keyed by (packet, user): nobody opens one
     * twice, whatever the races. */
    "CREATE TABLE wallet_red_packets ("
    "  id              INTEGER PRIMARY KEY,"
    "  sender_id       INTEGER NOT NULL,"
    "  conversation_id INTEGER NOT NULL,"
    "  message_id      INTEGER NOT NULL,"
    "  total           INTEGER NOT NULL CHECK (total > 0),"
    "  count           INTEGER NOT NULL CHECK (count BETWEEN 1 AND 100),"
    "  mode            TEXT    NOT NULL CHECK (mode IN ('random', 'equal')),"
    "  currency        TEXT    NOT NULL,"
    "  greeting        TEXT    NOT NULL,"
    "  status          TEXT    NOT NULL CHECK (status IN ('active', 'finished', 'refunded')),"
    "  claimed_count   INTEGER NOT NULL DEFAULT 0 CHECK (claimed_count BETWEEN 0 AND count),"
    "  claimed_amount  INTEGER NOT NULL DEFAULT 0 CHECK (claimed_amount BETWEEN 0 AND total),"
    "  idem_key        TEXT    NOT NULL,"
    "  created_at      INTEGER NOT NULL,"
    "  expires_at      INTEGER NOT NULL,"
    "  updated_at      INTEGER NOT NULL,"
    "  CHECK (total >= count)"
    ");"
    "CREATE INDEX wallet_red_packets_sender ON wallet_red_packets (sender_id, id);"
    "CREATE INDEX wallet_red_packets_active ON wallet_red_packets (expires_at) WHERE status = 'active';"
    "CREATE TABLE wallet_red_packet_claims ("
    "  red_packet_id INTEGER NOT NULL REFERENCES wallet_red_packets (id),"
    "  user_id       INTEGER NOT NULL,"
    "  position      INTEGER NOT NULL,"
    "  amount        INTEGER NOT NULL CHECK (amount > 0),"
    "  claimed_at    INTEGER NOT NULL,"
    "  PRIMARY KEY (red_packet_id, user_id),"
    "  UNIQUE (red_packet_id, position)"
    ");";

static const char migration_9[] =
    /* Merchants, QR payments, refunds and the webhook outbox. A merchant
     * belongs to one user (owner_id, one merchant each), and its money is
     * the owner's own user account: no ledger account of a new kind. The
     * API key is stored as its BLAKE2b-256 hash; the webhook secret has to
     * be kept as it is, since it signs every delivery. */
    "CREATE TABLE merchants ("
    "  id             INTEGER PRIMARY KEY,"
    "  owner_id       INTEGER NOT NULL,"
    "  name           TEXT    NOT NULL,"
    "  webhook_url    TEXT    NOT NULL DEFAULT '',"
    "  api_key_hash   BLOB    NOT NULL,"
    "  webhook_secret TEXT    NOT NULL,"
    "  created_at     INTEGER NOT NULL,"
    "  updated_at     INTEGER NOT NULL"
    ");"
    "CREATE UNIQUE INDEX merchants_owner ON merchants (owner_id);"
    "CREATE UNIQUE INDEX merchants_api_key ON merchants (api_key_hash);"
    /* An order is paid once, in full (paid_amount is 0 or amount); refunds
     * add up in refunded_amount, never past what was paid. A static code's
     * payment makes its order at once, already paid. 'expired' is not
     * stored: a pending order past expires_at is expired. code is the
     * random part of its payment code. */
    "CREATE TABLE merchant_orders ("
    "  id                INTEGER PRIMARY KEY,"
    "  merchant_id       INTEGER NOT NULL REFERENCES merchants (id),"
    "  code              TEXT    NOT NULL,"
    "  kind              TEXT    NOT NULL CHECK (kind IN ('dynamic', 'static')),"
    "  amount            INTEGER NOT NULL CHECK (amount > 0),"
    "  currency          TEXT    NOT NULL,"
    "  description       TEXT    NOT NULL,"
    "  merchant_order_id TEXT    NOT NULL DEFAULT '',"
    "  status            TEXT    NOT NULL CHECK (status IN ('pending', 'paid', 'refunded')),"
    "  paid_amount       INTEGER NOT NULL DEFAULT 0 CHECK (paid_amount IN (0, amount)),"
    "  refunded_amount   INTEGER NOT NULL DEFAULT 0 CHECK (refunded_amount BETWEEN 0 AND paid_amount),"
    "  payer_id          INTEGER NOT NULL DEFAULT 0,"
    "  payment_id        INTEGER NOT NULL DEFAULT 0,"
    "  idem_key          TEXT    NOT NULL,"
    "  created_at        INTEGER NOT NULL,"
    "  expires_at        INTEGER NOT NULL,"
    "  paid_at           INTEGER NOT NULL DEFAULT 0,"
    "  updated_at        INTEGER NOT NULL"
    ");"
    "CREATE UNIQUE INDEX merchant_orders_code ON merchant_orders (code);"
    "CREATE INDEX merchant_orders_merchant ON merchant_orders (merchant_id, id);"
    /* One payment per order (the unique index is the last line of
     * defence); its ledger transaction moves payer -> owner. */
    "CREATE TABLE merchant_payments ("
    "  id          INTEGER PRIMARY KEY,"
    "  order_id    INTEGER NOT NULL REFERENCES merchant_orders (id),"
    "  merchant_id INTEGER NOT NULL,"
    "  payer_id    INTEGER NOT NULL,"
    "  amount      INTEGER NOT NULL CHECK (amount > 0),"
    "  currency    TEXT    NOT NULL,"
    "  idem_key    TEXT    NOT NULL,"
    "  created_at  INTEGER NOT NULL"
    ");"
    "CREATE UNIQUE INDEX merchant_payments_order ON merchant_payments (order_id);"
    "CREATE INDEX merchant_payments_payer ON merchant_payments (payer_id, id);"
    "CREATE TABLE merchant_refunds ("
    "  id          INTEGER PRIMARY KEY,"
    "  order_id    INTEGER NOT NULL REFERENCES merchant_orders (id),"
    "  merchant_id INTEGER NOT NULL,"
    "  payer_id    INTEGER NOT NULL,"
    "  amount      INTEGER NOT NULL CHECK (amount > 0),"
    "  currency    TEXT    NOT NULL,"
    "  reason      TEXT    NOT NULL DEFAULT '',"
    "  idem_key    TEXT    NOT NULL,"
    "  created_at  INTEGER NOT NULL"
    ");"
    "CREATE INDEX merchant_refunds_order ON merchant_refunds (order_id);"
    /* The webhook outbox: written in the transaction that moved the money,
     * delivered by a timer until the merchant answers 2xx or a day has
     * passed. next_at is also the lease of a delivery under way, so that
     * two deliveries of one row never overlap. */
    "CREATE TABLE merchant_webhooks ("
    "  id          INTEGER PRIMARY KEY,"
    "  merchant_id INTEGER NOT NULL REFERENCES merchants (id),"
    "  type        TEXT    NOT NULL,"
    "  body        TEXT    NOT NULL,"
    "  status      TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),"
    "  attempts    INTEGER NOT NULL DEFAULT 0,"
    "  next_at     INTEGER NOT NULL,"
    "  last_status INTEGER NOT NULL DEFAULT 0,"
    "  created_at  INTEGER NOT NULL,"
    "  updated_at  INTEGER NOT NULL"
    ");"
    "CREATE INDEX merchant_webhooks_due ON merchant_webhooks (next_at) WHERE status = 'pending';"
    "CREATE INDEX merchant_webhooks_merchant ON merchant_webhooks (merchant_id, id);";

static const char migration_10[] =
    /* Daily outgoing limits. tier is the user's verification tier (set by
     * an operator; each tier's limit is configuration, not data). A
     * user's debits of one UTC day (day: days since 1970-01-01) add up in
     * one row per currency, moved on to a new day by the first debit of
     * it, so that the check before a debit is one primary-key read and the
     * table holds one row per user and currency whatever the history.
     * Ledger verify checks the rows against the entries. The debits made
     * before this migration seed each user's last day. */
    "ALTER TABLE wallet_users ADD COLUMN tier INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE wallet_daily_out ("
    "  user_id  INTEGER NOT NULL,"
    "  currency TEXT    NOT NULL,"
    "  day      INTEGER NOT NULL,"
    "  amount   INTEGER NOT NULL CHECK (amount >= 0),"
    "  PRIMARY KEY (user_id, currency)"
    ");"
    "INSERT INTO wallet_daily_out (user_id, currency, day, amount)"
    " SELECT e.user_id, a.currency, t.created_at / 86400000, -sum(e.amount)"
    " FROM wallet_entries e"
    " JOIN wallet_txns t ON t.id = e.txn_id"
    " JOIN wallet_accounts a ON a.id = e.account_id"
    " WHERE e.user_id IS NOT NULL AND e.amount < 0 AND t.kind <> 'merchant_refund'"
    " GROUP BY e.user_id, a.currency, t.created_at / 86400000"
    " ON CONFLICT (user_id, currency) DO UPDATE SET day = excluded.day, amount = excluded.amount"
    "  WHERE excluded.day > wallet_daily_out.day;";

static const char migration_11[] =
    /* Search indexing once per write batch instead of once per message.
     * Migration 4's triggers indexed each message inside its job's
     * savepoint, and FTS5 writes a new index segment at every savepoint
     * once it is part of a transaction: a segment (and its later merge)
     * per message. Now the index holds exactly the messages with
     * id <= indexed_up_to. The writer indexes the newer ones, with their
     * text as it stands then, at the end of each batch, just before the
     * COMMIT, and moves the mark (pz__store_batch_end, src/store/batch.c).
     * Message ids follow the order jobs reach the writer, so a new message
     * is almost always above the mark; pz_store_msg_insert indexes one
     * that is not (an id made before a batch that committed first) at
     * once. The insert trigger goes: a trigger makes every insert keep a
     * statement journal of the pages it changes. An edit, a recall or a
     * delete changes the index only for a message already in it, and
     * the mark is a row, so a job or a batch that rolls back takes its
     * changes to the mark back too. (PostgreSQL: the tsvector column of
     * migration 4 needs none of this.) */
    "DROP TRIGGER messages_fts_insert;"
    "DROP TRIGGER messages_fts_delete;"
    "DROP TRIGGER messages_fts_update;"
    "CREATE TABLE messages_fts_state ("
    "  id            INTEGER PRIMARY KEY CHECK (id = 1),"
    "  indexed_up_to INTEGER NOT NULL"
    ");"
    "INSERT INTO messages_fts_state (id, indexed_up_to) SELECT 1, coalesce(max(id), 0) FROM messages;"
    /* Each batch adds one segment to the index; FTS5 merges segments
     * once 4 (automerge's default) wait at one level, so every term was
     * rewritten at some log4(batches) levels. 16 halves that work for a
     * few more segments per query term to look up; crisismerge (a full
     * merge in the middle of a batch) stays out of the way above it. */
    "INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', 16);"
    "INSERT INTO messages_fts (messages_fts, rank) VALUES ('crisismerge', 32);"
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages"
    " WHEN old.id <= (SELECT indexed_up_to FROM messages_fts_state) BEGIN"
    "  INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    " END;"
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages"
    " WHEN old.id <= (SELECT indexed_up_to FROM messages_fts_state) BEGIN"
    "  INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    "  INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);"
    " END;"

    /* A user's last event seq is the last key of their range of the
     * events' primary key: one descent of that index, where event_heads
     * was a second row to write beside every event. The two agree, as
     * events leave a stream only with their user (and so does the head);
     * a retention policy that drops old events must keep each user's
     * last one. event_heads is emptied and no longer used; it is not
     * dropped here because migrate() (engine.c) holds its PRAGMA
     * statement open, and DROP TABLE needs no other statement running. */
    "DELETE FROM event_heads;"

    /* A conversation's last message is the newest of its messages, one
     * descent of messages_history: the column that repeated it was one
     * more row to rewrite at every send. */
    "ALTER TABLE conversations DROP COLUMN last_message_id;"

    /* Members in the order they joined without a sort at every send: the
     * index covers pz_store_member_ids (src/store/chat.c). */
    "CREATE INDEX conversation_members_joined ON conversation_members (conversation_id, joined_at, user_id);";

static const char migration_12[] =
    /* event_heads has been empty and unread since migration 11 (a user's
     * last seq is the last key of their events); migrate() no longer holds
     * a statement open, so it can go. */
    "DROP TABLE event_heads;";

static const char migration_13[] =
    /* A new message's JSON is kept once, with the message, instead of in
     * the event row of every member (two copies for a direct chat, 500 for
     * a full group). Each member's message.new event is then a row with an
     * empty payload and the message's id, and reading a stream takes the
     * payload from the message (pz_store_event_list). Rows written before
     * keep their own payload. A recall rewrites messages.event; only the
     * events that carry a payload of their own need finding by message, so
     * only those are in the index. (A table WITHOUT ROWID clustered on
     * (user_id, seq) was tried for the now small rows: 14 % more
     * instructions per event than the rowid table and its key index.) */
    "ALTER TABLE messages ADD COLUMN event TEXT NOT NULL DEFAULT '';"
    "DROP INDEX events_message;"
    "CREATE INDEX events_message ON events (message_id) WHERE message_id IS NOT NULL AND payload <> '';"
    /* conversation_members.activity_id is no longer moved by each send: it
     * stays what the join wrote (the conversation id), and a list orders by
     * the later of it and the conversation's last message (src/store/chat.c). */
    "";

static const char migration_14[] =
    /* No query reads entries by account: history, statements and limits go
     * by user (wallet_entries_user), and ledger verify reads the table in
     * order. The index cost every movement two inserts, one on a page of
     * each user's account. Accounts are never deleted, so no foreign-key
     * check needs it either. */
    "DROP INDEX wallet_entries_account;";

static const char migration_15[] =
    /* SQLite 3.40 checks `status IN ('pending', ...)`, a list of more than
     * two constants, by building a temporary b-tree of the list at every
     * insert and every status change: more than half of what inserting a
     * transfer row cost.
     * The same test spelled with OR is four comparisons. A CHECK is no
     * part of the stored rows, so the table's definition is rewritten in
     * place (SQLite's documented procedure for changing a CHECK,
     * lang_altertable.html#otheralter) rather than copied into a new
     * table; every row passes the new CHECK as it passed the old one.
     * RESET reloads this connection's schema; the DROP INDEX statements
     * below change the schema cookie, so other connections reload theirs.
     * test_store_engine.c checks the result. (PostgreSQL checks an IN
     * list without a temporary table: nothing to do there.) */
    "PRAGMA writable_schema=ON;"
    "UPDATE sqlite_schema SET sql = replace(sql,"
    "  'CHECK (status IN (''pending'', ''completed'', ''returned'', ''expired''))',"
    "  'CHECK (status = ''pending'' OR status = ''completed'' OR status = ''returned'' OR status = ''expired'')')"
    " WHERE type = 'table' AND name = 'wallet_transfers';"
    "PRAGMA writable_schema=RESET;"
    /* No query reads transfers by sender or by receiver: a user's history
     * goes through their ledger entries (wallet_entries_user) and joins
     * the transfer by id; ledger verify scans the table. The two indexes
     * cost every transfer two inserts on pages of its two users. */
    "DROP INDEX wallet_transfers_from;"
    "DROP INDEX wallet_transfers_to;";

static const char migration_16[] =
    /* An upload is sent in a message after it is uploaded; one that never
     * is (the sender changed their mind, the app was closed) is swept
     * after a while, with its files. linked turns 1 at its first message
     * and stays 1 (a recall keeps the link, for the uploader), and the
     * partial index holds only the uploads still waiting, oldest first:
     * a sweep reads what it deletes and nothing else. Uploads sent before
     * this migration are marked here; those never sent are swept once they
     * are old enough. */
    "ALTER TABLE uploads ADD COLUMN linked INTEGER NOT NULL DEFAULT 0;"
    "UPDATE uploads SET linked = 1 WHERE id IN (SELECT upload_id FROM message_uploads);"
    "CREATE INDEX uploads_unlinked ON uploads (created_at) WHERE linked = 0;";

/* The send log (engine.c): where the first record not yet applied lies,
 * and the epoch of the last process that opened it. The writer moves the
 * position in the transaction that applies records, so that a restart
 * applies each logged record exactly once. */
static const char migration_17[] =
    "CREATE TABLE sendlog_state (id INTEGER PRIMARY KEY CHECK (id = 1), next_lsn INTEGER NOT NULL,"
    " next_off INTEGER NOT NULL, epoch INTEGER NOT NULL);"
    "INSERT INTO sendlog_state (id, next_lsn, next_off, epoch) VALUES (1, 1, 0, 0);";

static const char migration_18[] =
    /* A ledger entry's REFERENCES made SQLite look its transaction and its
     * account up at every insert: two seeks per entry, four entries per
     * transfer, some 7 % of the writer's work on a transfer. The only
     * writer of entries writes them with both in the same job, and ledger
     * verify now names an entry whose transaction or account is missing.
     * Dropped in place as in migration 15 (SQLite's documented way to drop
     * a foreign key constraint; no row changes), and the schema cookie
     * moved by a CREATE and DROP, so that other connections reload it.
     * test_store_engine.c checks the result. */
    "PRAGMA writable_schema=ON;"
    "UPDATE sqlite_schema SET sql = replace(replace(sql,"
    "  ' REFERENCES wallet_txns (id)', ''), ' REFERENCES wallet_accounts (id)', '')"
    " WHERE type = 'table' AND name = 'wallet_entries';"
    "PRAGMA writable_schema=RESET;"
    "CREATE TABLE migration_18_cookie (x);"
    "DROP TABLE migration_18_cookie;";

const char *const pz__migrations[] = {
    migration_1,  migration_2,  migration_3,  migration_4,  migration_5,  migration_6,
    migration_7,  migration_8,  migration_9,  migration_10, migration_11, migration_12,
    migration_13, migration_14, migration_15, migration_16, migration_17, migration_18,
};

const unsigned pz__n_migrations = sizeof(pz__migrations) / sizeof(pz__migrations[0]);
