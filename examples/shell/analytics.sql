-- analytics.sql -- the analytics tour in the sqlite3 shell.
--
--     make install && sqlite3 -bail :memory: < examples/shell/analytics.sql
--     LD_LIBRARY_PATH=build sqlite3 -bail :memory: < examples/shell/analytics.sql
--
-- Builds a small shop journal in ./analytics-data (removed first) with fixed
-- timestamps, then runs the reports an analyst writes against it: events per
-- actor, event types per hour, tailing by pos, tag queries, json_extract over
-- JSON payloads and a join with an ordinary table.  Every report is followed
-- by a check: a wrong result violates the CHECK of the temp table "expect",
-- and -bail stops the script with a non-zero exit status.

.load lmdbjournal
.shell rm -rf analytics-data
CREATE VIRTUAL TABLE j USING lmdb_journal(path='analytics-data/journal');
CREATE TEMP TABLE expect(what TEXT, ok INTEGER CHECK (ok = 1));

-- One import: explicit ts (2026-01-01 09:00 UTC onwards) keeps reports stable.
INSERT INTO j(actor_id, type, payload, tags, ts) VALUES
  ('order-1', 'OrderPlaced',  '{"total":42.5,"items":2}', '["order","eu"]',    1767258000000),
  ('order-2', 'OrderPlaced',  '{"total":9.99,"items":1}', '["order","us"]',    1767258600000),
  ('order-1', 'PaymentReceived', '{"amount":42.5}',       '["payment","eu"]',  1767259200000),
  ('order-3', 'OrderPlaced',  '{"total":120,"items":5}',  '["order","eu"]',    1767261600000),
  ('order-1', 'OrderShipped', '{"carrier":"DHL"}',        '["shipping","eu"]', 1767262200000),
  ('order-2', 'OrderCancelled', '{"reason":"late"}',      '["order","us"]',    1767265800000),
  ('order-3', 'PaymentReceived', '{"amount":120}',        '["payment","eu"]',  1767266400000);

CREATE TABLE customers(order_id TEXT PRIMARY KEY, name TEXT, country TEXT);
INSERT INTO customers VALUES ('order-1', 'Ada', 'DE'), ('order-2', 'Bob', 'US'),
                             ('order-3', 'Cyd', 'FR');

.mode box
.print 'Events per actor'
SELECT actor_id, count(*) AS events, max(seq) AS last_seq FROM j
GROUP BY actor_id ORDER BY actor_id;
INSERT INTO expect SELECT 'events per actor',
  (SELECT group_concat(actor_id || '=' || n, ' ') FROM
     (SELECT actor_id, count(*) AS n FROM j GROUP BY actor_id ORDER BY actor_id))
  = 'order-1=3 order-2=2 order-3=2';

.print 'Event types per hour, 09:00 to 11:59 (ts BETWEEN runs on the pos index)'
SELECT strftime('%H:00', ts / 1000, 'unixepoch') AS hour, type, count(*) AS n
FROM j WHERE ts BETWEEN 1767258000000 AND 1767268799999
GROUP BY hour, type ORDER BY hour, type;
INSERT INTO expect SELECT 'types per hour',
  (SELECT count(*) FROM j WHERE ts BETWEEN 1767258000000 AND 1767261599999) = 3;

.print 'Tailing: a consumer reads pages of 3 after the last pos it saw'
SELECT pos, actor_id, seq, type FROM j WHERE pos > 0 ORDER BY pos LIMIT 3;
SELECT pos, actor_id, seq, type FROM j WHERE pos > 3 ORDER BY pos LIMIT 3;
SELECT pos, actor_id, seq, type FROM j WHERE pos > 6 ORDER BY pos LIMIT 3;
INSERT INTO expect SELECT 'tail pages',
  (SELECT group_concat(pos) FROM (SELECT pos FROM j WHERE pos > 3 ORDER BY pos LIMIT 3))
  = '4,5,6';

.print 'Tags: EU events, and payments or US events merged in pos order'
SELECT pos, actor_id, type FROM j WHERE tag = 'eu';
SELECT pos, actor_id, type, tags FROM j WHERE tag IN ('payment', 'us');
INSERT INTO expect SELECT 'tag queries',
  (SELECT count(*) FROM j WHERE tag = 'eu') = 5
  AND (SELECT group_concat(pos) FROM j WHERE tag IN ('payment', 'us')) = '2,3,6,7';

.print 'json_extract: revenue placed and paid'
SELECT sum(json_extract(payload, '$.total')) AS placed,
       sum(json_extract(payload, '$.amount')) AS paid,
       sum(json_extract(payload, '$.items')) AS items
FROM j WHERE type IN ('OrderPlaced', 'PaymentReceived');
INSERT INTO expect SELECT 'json_extract',
  (SELECT sum(json_extract(payload, '$.amount')) FROM j
   WHERE type = 'PaymentReceived') = 162.5;

.print "Join with an ordinary table: each customer's last event"
SELECT c.name, c.country, e.type AS last_event
FROM customers c JOIN j e ON e.actor_id = c.order_id
WHERE e.seq = (SELECT max(seq) FROM j WHERE actor_id = c.order_id)
ORDER BY c.name;
INSERT INTO expect SELECT 'join',
  (SELECT group_concat(c.name || ':' || e.type, ' ')
   FROM customers c JOIN j e ON e.actor_id = c.order_id AND e.type = 'OrderPlaced')
  = 'Ada:OrderPlaced Bob:OrderPlaced Cyd:OrderPlaced';

.mode list
SELECT 'ok: ' || what FROM expect;
SELECT 'ok: analytics tour, ' || count(*) || ' checks passed' FROM expect;
