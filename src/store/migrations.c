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

const char *const pz__migrations[] = {
    migration_1,
    migration_2,
};

const unsigned pz__n_migrations = sizeof(pz__migrations) / sizeof(pz__migrations[0]);
