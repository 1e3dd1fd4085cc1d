#!/bin/sh
# docs/demo.sh -- a tour of lmdbjournal in the sqlite3 shell.
#
# Run from the repository root after building (make demo does both):
#
#     sh docs/demo.sh
#
# Everything is written under demo-data/ (removed and recreated on every
# run): demo-data/demo.db is an ordinary SQLite database that holds the
# table definition, demo-data/journal/ is the LMDB store with the events.
# Exits non-zero as soon as any statement fails.

set -eu

SQLITE3=${SQLITE3:-sqlite3}
EXT=./build/lmdbjournal
DATA=demo-data

if [ ! -f "$EXT.so" ]; then
  echo "demo: $EXT.so not found; run 'make' (or 'make demo') first" >&2
  exit 1
fi
if ! command -v "$SQLITE3" >/dev/null 2>&1; then
  echo "demo: the sqlite3 shell is not installed (apt-get install sqlite3)" >&2
  exit 1
fi

rm -rf "$DATA"
mkdir -p "$DATA"

"$SQLITE3" -bail "$DATA/demo.db" <<'EOF'
.load ./build/lmdbjournal
.headers on
.mode box

.print '== 1. open a journal'
CREATE VIRTUAL TABLE j USING lmdb_journal(path='demo-data/journal');
SELECT journal_version() AS version;

.print
.print '== 2. import history: INSERTs in one transaction, original times'
.print '   (all five land at COMMIT, or none; seq given = expected-seq check)'
BEGIN;
INSERT INTO j(actor_id, seq, ts, type, payload, tags) VALUES
  ('order-1001', 1, unixepoch('2024-06-01 09:15:00')*1000, 'OrderPlaced',
   '{"total":42.50,"items":2,"currency":"EUR"}', '["order","eu"]'),
  ('order-1001', 2, unixepoch('2024-06-01 09:17:30')*1000, 'PaymentReceived',
   '{"amount":42.50,"method":"card"}', '["payment","eu"]'),
  ('order-1002', 1, unixepoch('2024-06-01 10:02:00')*1000, 'OrderPlaced',
   '{"total":19.99,"items":1,"currency":"USD"}', '["order","us"]'),
  ('order-1001', 3, unixepoch('2024-06-01 14:30:00')*1000, 'OrderShipped',
   '{"carrier":"DHL"}', '["shipping","eu"]'),
  ('order-1002', 2, unixepoch('2024-06-02 08:00:00')*1000, 'PaymentReceived',
   '{"amount":19.99,"method":"paypal"}', '["payment","us"]');
COMMIT;
SELECT count(*) AS imported FROM j;

.print
.print '== 3. live appends with journal_append (returns the seq)'
SELECT journal_append('j', 'order-1002', '{"carrier":"UPS"}',
                      'OrderShipped', NULL, '["shipping","us"]') AS seq;
SELECT journal_append('j', 'order-1003',
                      '{"total":7.25,"items":3,"currency":"EUR"}',
                      'OrderPlaced', '{"correlation_id":"c-77"}',
                      '["order","eu"]') AS seq;
SELECT journal_append('j', 'order-1003', '{"sku":"B-12","price":2.00}',
                      'ItemRemoved', '{"correlation_id":"c-77"}',
                      '["order","eu"]') AS seq;
SELECT journal_append('j', 'order-1001', '{"signed_by":"M. Rossi"}',
                      'OrderDelivered', NULL, '["shipping","eu"]') AS seq;
.print '   500 page views over 5 sessions in one statement (group commit):'
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
SELECT count(journal_append('j', 'session-' || (i % 5 + 1),
                            json_object('page', '/p/' || (i % 37),
                                        'ms', 20 + i % 180),
                            'PageViewed')) AS appended
FROM n;

.print
.print '== 4. journal_sync: wait until all of that is committed and durable'
SELECT journal_sync('j') AS durable_pos;

.print
.print '== 5. replay one actor, in seq order'
SELECT seq, pos, datetime(ts / 1000, 'unixepoch') AS time, type, payload
FROM j WHERE actor_id = 'order-1001' ORDER BY seq;
.print '   a snapshot of its state at seq 2, then recovery in one query:'
.print '   the newest snapshot and only the events after it'
SELECT journal_snapshot('j', 'order-1001', 2, json_object('status', 'paid')) AS snapshot_seq;
WITH snap AS (SELECT seq, state FROM journal_snapshots('j')
              WHERE actor_id = 'order-1001' ORDER BY seq DESC LIMIT 1)
SELECT 'snapshot' AS part, seq, state AS data FROM snap
UNION ALL
SELECT 'event', seq, payload FROM j
WHERE actor_id = 'order-1001' AND seq > coalesce((SELECT seq FROM snap), 0);

.print
.print '== 6. tail the global order: a change feed from a remembered pos'
SELECT pos, actor_id, seq, type FROM j WHERE pos > 4 ORDER BY pos LIMIT 5;

.print
.print '== 7. a time window (the imported morning of 2024-06-01)'
SELECT pos, datetime(ts / 1000, 'unixepoch') AS time, actor_id, type
FROM j
WHERE ts BETWEEN unixepoch('2024-06-01 09:00:00') * 1000
             AND unixepoch('2024-06-01 12:00:00') * 1000;

.print
.print '== 8. by tag, in pos order'
SELECT pos, actor_id, type, tags FROM j WHERE tag = 'shipping';
SELECT pos, actor_id, type FROM j WHERE tag IN ('payment', 'us');

.print
.print '== 9. analytics: ordinary SQL over the whole journal'
SELECT type, count(*) AS events FROM j GROUP BY type ORDER BY events DESC;
SELECT actor_id, type, count(*) AS n, max(seq) AS last_seq
FROM j WHERE actor_id LIKE 'order-%'
GROUP BY actor_id, type ORDER BY actor_id, min(seq);
SELECT json_extract(payload, '$.currency') AS currency,
       count(*) AS orders,
       printf('%.2f', sum(json_extract(payload, '$.total'))) AS revenue
FROM j WHERE type = 'OrderPlaced' GROUP BY currency;
SELECT actor_id AS session, count(*) AS views,
       round(avg(json_extract(payload, '$.ms'))) AS avg_ms
FROM j WHERE type = 'PageViewed' GROUP BY actor_id;

.print
.print '== 10. journal_actors: where each actor stands'
SELECT * FROM journal_actors('j') WHERE actor_id LIKE 'order-%' LIMIT 5;

.print
.print '== 11. journal_health'
SELECT key, value FROM json_each(journal_health('j')) WHERE key <> 'checks'
UNION ALL
SELECT 'checks.' || key, value FROM json_each(journal_health('j'), '$.checks');

.print
.print '== 12. journal_config: the effective options'
SELECT key, value FROM json_each(journal_config('j'));
.print
.print '== 12b. journal_metrics: counters and gauges of this process'
SELECT name, value, type FROM journal_metrics('j')
WHERE name IN ('appends', 'commits', 'batch_size_avg', 'rows_read',
               'queue_depth', 'staged_events', 'commit_latency_p99_us');

.print
.print '== 13. query plans: served by LMDB cursors, not full scans'
EXPLAIN QUERY PLAN
SELECT * FROM j WHERE actor_id = 'order-1001' AND seq > 2 ORDER BY seq;
EXPLAIN QUERY PLAN SELECT * FROM j WHERE pos > 4 ORDER BY pos LIMIT 5;
EXPLAIN QUERY PLAN SELECT * FROM j WHERE tag = 'shipping';
EOF

echo
echo "== 14. what the journal refuses (each statement below must fail)"
refusals=$("$SQLITE3" "$DATA/demo.db" 2>&1 <<'EOF' || true
.load ./build/lmdbjournal
INSERT INTO j(actor_id, seq, payload) VALUES('order-1001', 9, '{}');
UPDATE j SET payload = '{}' WHERE pos = 1;
DELETE FROM j WHERE actor_id = 'order-1001';
EOF
)
printf '%s\n' "$refusals" | sed 's/^Runtime error near line [0-9]*: /  /'
nrefused=$(printf '%s\n' "$refusals" | grep -c 'Runtime error' || true)
if [ "$nrefused" -ne 3 ]; then
  echo "demo: expected 3 refusals, got $nrefused" >&2
  exit 1
fi

# A new process reads the store back through the table definition kept in
# demo.db: nothing above was lost when the first shell exited.
n=$("$SQLITE3" -bail -noheader "$DATA/demo.db" ".load ./build/lmdbjournal" \
      "SELECT count(*) FROM j")
echo
echo "demo finished: $n events in $DATA/journal"
