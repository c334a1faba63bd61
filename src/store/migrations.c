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

const char *const pz__migrations[] = {
    migration_1,
};

const unsigned pz__n_migrations = sizeof(pz__migrations) / sizeof(pz__migrations[0]);
