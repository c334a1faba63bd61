-- The PostgreSQL baseline of bench/wallet.sh: a double-entry ledger like Plaza's, in its plainest form.
-- psql -v naccounts=N -f pg_schema.sql
CREATE TABLE accounts (
  id      bigint PRIMARY KEY,
  balance bigint NOT NULL CHECK (balance >= 0) -- like Plaza's last line of defence
);
CREATE TABLE txns (
  id         bigserial PRIMARY KEY,
  src        bigint      NOT NULL,
  dst        bigint      NOT NULL,
  amount     bigint      NOT NULL CHECK (amount > 0),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE entries (
  txn_id     bigint NOT NULL REFERENCES txns (id),
  account_id bigint NOT NULL REFERENCES accounts (id),
  amount     bigint NOT NULL CHECK (amount <> 0),
  PRIMARY KEY (txn_id, account_id)
);
CREATE INDEX entries_account ON entries (account_id);
INSERT INTO accounts SELECT g, 1000000000 FROM generate_series(1, :naccounts) g;
VACUUM ANALYZE;
