-- pgbench script of bench/wallet.sh: one double-entry transfer as one SQL transaction (one statement, autocommit).
-- pgbench -M prepared -D naccounts=N -f pg_transfer.sql
-- One statement is PostgreSQL's best case: the same work as BEGIN; SELECT ... FOR UPDATE; SELECT balance; UPDATE;
-- UPDATE; INSERT; INSERT; COMMIT, which measured about four times slower here, all in round trips.
\set src random(1, :naccounts)
\set dst random(1, :naccounts - 1)
\if :dst >= :src
\set dst :dst + 1
\endif
\set amount random(1, 97)
\set debit -:amount
-- Both rows are locked first, in id order, so that two transfers in opposite directions cannot deadlock; the debit
-- happens only when the balance covers it, and nothing else happens without it.
WITH locked AS (
  SELECT id, balance FROM accounts WHERE id IN (:src, :dst) ORDER BY id FOR UPDATE
), debit AS (
  UPDATE accounts SET balance = balance - :amount
   WHERE id = :src AND (SELECT balance FROM locked WHERE id = :src) >= :amount RETURNING id
), credit AS (
  UPDATE accounts SET balance = balance + :amount WHERE id = :dst AND EXISTS (SELECT FROM debit) RETURNING id
), txn AS (
  INSERT INTO txns (src, dst, amount) SELECT :src::bigint, :dst::bigint, :amount::bigint FROM credit RETURNING id
)
INSERT INTO entries (txn_id, account_id, amount)
SELECT id, :src::bigint, :debit::bigint FROM txn UNION ALL SELECT id, :dst::bigint, :amount::bigint FROM txn;
