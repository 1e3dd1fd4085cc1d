/*
** ship.c -- shipping the journal to Kafka (librdkafka).
**
**     CREATE VIRTUAL TABLE j USING lmdb_journal(path='data/j', ship=kafka,
**         ship_brokers='k1:9092,k2:9092', ship_topic='journal',
**         ship_conf='security.protocol=ssl;ssl.ca.location=/etc/ca.pem');
**
** WHO SHIPS.  Every process that opens the store with ship options runs a
** shipper thread, but only the one holding an exclusive flock on
** <dir>/ship.lock publishes; the others stand by and try the lock once a
** second.  The kernel drops the lock with the process, so a kill -9 hands
** shipping over to a standby within about a second.
**
** WHAT IS SENT.  Every committed event, in pos order, as one message:
** key = actor id (the partition is murmur2(key) mod partitions, as the
** Java client computes it, so an actor's events stay in one partition in
** seq order), value = the payload bytes (NULL for NULL; INTEGER and REAL
** as 8 bytes big-endian; the class header says which), headers:
**     pos, seq, ts   decimal text
**     type, meta, tags   the bytes, present only when not NULL
**     class          two digits: payload and meta storage class (layout.c)
**     store          the store's id (<dir>/store.id, made once)
** with the idempotent producer, acks=all and no message timeout (a
** message is retried until the cluster takes it).
**
** TRUNCATIONS.  Every truncation that deleted events is in the store's
** truncation log (trunclog.c), keyed (P, k): P the highest pos committed
** when it committed, k its ordinal at P from 1.  The shipper sends it after
** the event of pos P and before the next one, as a marker: key = actor id
** (the actor's partition, after the events it deletes), value NULL,
** headers
**     op             "truncate"
**     pos, sub, seq  P, k and the last seq deleted, decimal text
**     store          the store's id
** So each message has a place (pos, sub) in one order: an event (pos, 0),
** a marker (P, k).  Each round reads the events and the log in one
** snapshot; once the events it holds are done, every marker it holds
** comes after them (any later event has a pos above every P in it).
**
** THE GUARANTEE: exactly once per partition, in (pos, sub) order.  For
** each partition p, the shipper resumes after the (pos, sub) headers of
** the last message of this store in p (read from Kafka on every start,
** never from local state), and skips the events and markers of p at or
** below it.  Within one producer session the idempotent producer keeps
** a partition free of duplicates and gaps; any delivery failure or fatal
** producer error ends the session, and the next one resumes from what
** Kafka holds.  Hence:
**   - no event committed in the store is lost unless a truncation deleted
**     it before it was read (it is shipped once the cluster accepts
**     writes), no marker is lost, and none appears twice in its partition,
**     across restarts, kill -9 and hand-overs;
**   - events may reach Kafka before they are synced to disk when
**     durability is below full: a crash of the machine can then lose
**     events Kafka already holds, and their pos will be reused;
**   - a partition's events are in pos order; across partitions there is
**     no order.  Changing the partition count breaks the per-actor order;
**   - a produce request a killed shipper had sent and the network held
**     until after the next session read the partition's end would land
**     as a duplicate: the idempotent producer does not fence an earlier
**     session (transactions would).  The window is the hand-over time.
**
** Appends never wait for Kafka: the shipper reads committed events and
** the truncation log through the read interface (scan.c), in its own
** thread.  What it has done is published in LjEnv.m (metrics.c reports
** it).
*/
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#define SHIP_RING     65536 /* most unacknowledged messages */
#define SHIP_ROUND    4096  /* events read per snapshot */
#define SHIP_MARKS    64    /* truncations read per snapshot */
#define SHIP_IDLE_MS  10    /* poll interval when caught up */
#define SHIP_RETRY_MS 1000  /* standby lock retry, and reconnect backoff */
/* Longest wait of one request while finding where to resume.  Closing the
** store waits for the shipper, so this bounds a close while the cluster is
** unreachable (the resume gives up between requests once stopped). */
#define SHIP_REQ_MS 2000

/* Where a message stands in the store's order: the event of pos has sub
** 0; the truncations committed after it (trunclog.c) have sub 1, 2, ... */
typedef struct ShipKey ShipKey;
struct ShipKey {
  i64 pos;
  u32 sub;
};

static int shipKeyCmp(ShipKey a, ShipKey b) {
  if (a.pos != b.pos) return a.pos < b.pos ? -1 : 1;
  return a.sub < b.sub ? -1 : a.sub > b.sub;
}

typedef struct ShipSlot ShipSlot;
struct ShipSlot {
  i64 pos;
  i64 ts;
  i64 tSent; /* wall ms when handed to the client */
  int bDone;
};

struct LjShip {
  LjEnv *pEnv;
  pthread_t thread;
  pthread_mutex_t mutex; /* bStop and cond */
  pthread_cond_t cond;
  int bStop;
  int bThread; /* the thread was started */
  char *zBrokers, *zTopic, *zConf;
  char zStore[33]; /* store id, hex */
  int fdLock;      /* ship.lock, -1 if not open */
  rd_kafka_t *rk;  /* producer of the current session */
  rd_kafka_topic_t *rkt;
  int nPart;
  ShipKey *aLast;  /* per partition: last message Kafka holds or is sent */
  u64 nextPos;     /* next pos to read ... */
  u32 doneSub;     /* ... and the truncations at nextPos-1 done so far */
  ShipSlot *aRing; /* in-flight messages, iTail .. iHead */
  LjTrunc *aMark;  /* SHIP_MARKS truncations of the current round */
  u64 iHead, iTail;
  int bFailed;  /* the session must end (delivery failure) */
  int bRefused; /* a session failed; no delivery succeeded since */
};

static int shipStopping(LjShip *p) {
  return __atomic_load_n(&p->bStop, __ATOMIC_RELAXED);
}

/* Sleep up to ms, waking early when the shipper is stopped. */
static void shipSleep(LjShip *p, int ms) {
  struct timespec ts;
  ljDeadline(&ts, (i64)ms * 1000);
  pthread_mutex_lock(&p->mutex);
  if (!p->bStop) pthread_cond_timedwait(&p->cond, &p->mutex, &ts);
  pthread_mutex_unlock(&p->mutex);
}

static void shipSetError(LjShip *p, const char *zErr) {
  LjMetrics *m = &p->pEnv->m;
  __atomic_fetch_add(&m->nShipErrors, 1, __ATOMIC_RELAXED);
  pthread_mutex_lock(&m->histMutex);
  snprintf(m->zShipError, sizeof(m->zShipError), "%s", zErr);
  pthread_mutex_unlock(&m->histMutex);
}

static void shipSetState(LjShip *p, int e) {
  __atomic_store_n(&p->pEnv->m.eShipState, e, __ATOMIC_RELAXED);
}

/* The store's id: <dir>/store.id, made once (link() of a complete
** temporary file, so racing processes agree on one). */
static int shipStoreId(LjShip *p) {
  char *zFile = sqlite3_mprintf("%s/store.id", p->pEnv->zDir);
  char *zTmp = sqlite3_mprintf("%s/store.id.%d", p->pEnv->zDir, getpid());
  int rc = SQLITE_CANTOPEN, fd, i;
  if (zFile && zTmp) {
    for (i = 0; i < 2 && rc != SQLITE_OK; i++) {
      fd = open(zFile, O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        ssize_t n = read(fd, p->zStore, 32);
        close(fd);
        if (n == 32) {
          p->zStore[32] = 0;
          rc = SQLITE_OK;
        }
      } else if (errno == ENOENT) {
        u8 a[16];
        char z[33];
        int j;
        if (getrandom(a, sizeof(a), 0) != sizeof(a)) break;
        for (j = 0; j < 16; j++) snprintf(&z[2 * j], 3, "%02x", a[j]);
        fd = open(zTmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0664);
        if (fd < 0) break;
        if (write(fd, z, 32) == 32 && fsync(fd) == 0) {
          if (link(zTmp, zFile) != 0 && errno != EEXIST) i = 2;
        }
        close(fd);
        unlink(zTmp);
      }
    }
  }
  sqlite3_free(zFile);
  sqlite3_free(zTmp);
  return rc;
}

/* Try the ship lock; 1 when held. */
static int shipLock(LjShip *p) {
  if (p->fdLock < 0) {
    char *z = sqlite3_mprintf("%s/ship.lock", p->pEnv->zDir);
    if (z) p->fdLock = open(z, O_RDWR | O_CREAT | O_CLOEXEC, 0664);
    sqlite3_free(z);
    if (p->fdLock < 0) return 0;
  }
  return flock(p->fdLock, LOCK_EX | LOCK_NB) == 0;
}

/* librdkafka's log lines would go to the host application's stderr; what
** matters reaches health through the error callback instead. */
static void shipLog(const rd_kafka_t *rk, int level, const char *zFac,
                    const char *zMsg) {
  (void)rk;
  (void)level;
  (void)zFac;
  (void)zMsg;
}

/* A librdkafka configuration: the brokers, the options the guarantee
** needs, then ship_conf ('key=value;...'), which may override any. */
static rd_kafka_conf_t *shipConf(LjShip *p, int bProducer, char *zErr,
                                 size_t nErr) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  static const char *const azProd[] = {
      "enable.idempotence", "true", "acks", "all", "message.timeout.ms", "0",
      "linger.ms",          "5",    0};
  char *zCopy = p->zConf ? sqlite3_mprintf("%s", p->zConf) : 0;
  char *zItem, *zSave = 0;
  int i, bad = 0;
  rd_kafka_conf_set_log_cb(conf, shipLog);
  bad = rd_kafka_conf_set(conf, "bootstrap.servers", p->zBrokers, zErr, nErr);
  if (!bad && !bProducer) {
    bad = rd_kafka_conf_set(conf, "enable.partition.eof", "true", zErr, nErr);
  }
  if (!bad && !bProducer) {
    bad = rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", zErr, nErr);
  }
  for (i = 0; bProducer && !bad && azProd[i]; i += 2) {
    bad = rd_kafka_conf_set(conf, azProd[i], azProd[i + 1], zErr, nErr);
  }
  for (zItem = zCopy ? strtok_r(zCopy, ";", &zSave) : 0; zItem && !bad;
       zItem = strtok_r(0, ";", &zSave)) {
    char *zEq = strchr(zItem, '=');
    if (zEq == 0) continue;
    *zEq = 0;
    bad = rd_kafka_conf_set(conf, zItem, zEq + 1, zErr, nErr);
  }
  sqlite3_free(zCopy);
  if (bad) {
    rd_kafka_conf_destroy(conf);
    return 0;
  }
  return conf;
}

/* Delivery report: acknowledge the slot, or end the session. */
static void shipDelivered(rd_kafka_t *rk, const rd_kafka_message_t *m,
                          void *pOpaque) {
  LjShip *p = pOpaque;
  (void)rk;
  if (m->err) {
    p->bFailed = 1;
    if (m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
        m->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
      shipSetError(p, rd_kafka_err2str(m->err));
    }
    return;
  }
  p->aRing[(uintptr_t)m->_private % SHIP_RING].bDone = 1;
  p->bRefused = 0;
  __atomic_fetch_add(&p->pEnv->m.nShipSent, 1, __ATOMIC_RELAXED);
  if (__atomic_load_n(&p->pEnv->m.eShipState, __ATOMIC_RELAXED) ==
      LJ_SHIPST_DOWN) {
    shipSetState(p, LJ_SHIPST_ACTIVE);
    pthread_mutex_lock(&p->pEnv->m.histMutex);
    p->pEnv->m.zShipError[0] = 0;
    pthread_mutex_unlock(&p->pEnv->m.histMutex);
  }
}

static void shipClientError(rd_kafka_t *rk, int err, const char *zReason,
                            void *pOpaque) {
  LjShip *p = pOpaque;
  (void)rk;
  shipSetError(p, zReason);
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    shipSetState(p, LJ_SHIPST_DOWN);
  }
  if (err == RD_KAFKA_RESP_ERR__FATAL) p->bFailed = 1;
}

/* Decimal header zName of h, or -1 (absent or malformed). */
static i64 shipNumber(rd_kafka_headers_t *h, const char *zName) {
  const void *a;
  size_t n;
  char z[24];
  if (rd_kafka_header_get_last(h, zName, &a, &n) || a == 0 || n == 0 ||
      n >= sizeof(z)) {
    return -1;
  }
  memcpy(z, a, n);
  z[n] = 0;
  return strtoll(z, 0, 10);
}

/* The pos and sub headers of a message of this store (an event has no
** sub: 0); pos -1 for a message of another store. */
static ShipKey shipMessageKey(LjShip *p, rd_kafka_message_t *m) {
  rd_kafka_headers_t *h = 0;
  ShipKey key = {-1, 0};
  const void *a;
  size_t n;
  i64 sub;
  if (rd_kafka_message_headers(m, &h) || h == 0) return key;
  if (rd_kafka_header_get_last(h, LJ_HDR_STORE, &a, &n) || n != 32 ||
      memcmp(a, p->zStore, 32) != 0) {
    return key;
  }
  sub = shipNumber(h, LJ_HDR_SUB);
  key.pos = shipNumber(h, LJ_HDR_POS);
  key.sub = sub > 0 && sub <= (i64)UINT32_MAX ? (u32)sub : 0;
  return key;
}

/* The key of the last message of this store in partition iPart into
** *pLast, (0, 0) when there is none: reads backwards from the high
** watermark, 256 messages at a time (other stores may ship into the same
** topic).  0 on error. */
static int shipLastKey(LjShip *p, rd_kafka_t *rc, rd_kafka_topic_t *rkt,
                       int iPart, ShipKey *pLast) {
  int64_t lo = 0, hi = 0, from, off;
  ShipKey last = {-1, 0};
  if (rd_kafka_query_watermark_offsets(rc, p->zTopic, iPart, &lo, &hi,
                                       SHIP_REQ_MS)) {
    return 0;
  }
  for (; hi > lo && last.pos < 0 && !shipStopping(p); hi = from) {
    from = hi - 256 > lo ? hi - 256 : lo;
    if (rd_kafka_consume_start(rkt, iPart, from)) return 0;
    for (off = from; off < hi;) {
      rd_kafka_message_t *m = rd_kafka_consume(rkt, iPart, SHIP_REQ_MS);
      if (m == 0) break;
      if (m->err == 0) {
        ShipKey key = shipMessageKey(p, m);
        if (shipKeyCmp(key, last) > 0) last = key;
        off = m->offset + 1;
      } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        off = hi; /* nothing more, e.g. the last offset was not a message */
      } else {
        off = hi + 1; /* failed */
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_consume_stop(rkt, iPart);
    if (off != hi) return 0;
  }
  if (shipStopping(p)) return 0;
  if (last.pos < 0) last = (ShipKey){0, 0};
  *pLast = last;
  return 1;
}

/* Where each partition resumes (aLast) and the first pos to read. */
static int shipResume(LjShip *p, char *zErr, size_t nErr) {
  rd_kafka_conf_t *conf = shipConf(p, 0, zErr, nErr);
  rd_kafka_t *rc = conf ? rd_kafka_new(RD_KAFKA_CONSUMER, conf, zErr, nErr) : 0;
  rd_kafka_topic_t *rkt = rc ? rd_kafka_topic_new(rc, p->zTopic, 0) : 0;
  const rd_kafka_metadata_t *md = 0;
  ShipKey lo = {-1, 0};
  int i, rcOk = 0;
  if (rc == 0 && conf) rd_kafka_conf_destroy(conf);
  if (rkt && rd_kafka_metadata(rc, 0, rkt, &md, SHIP_REQ_MS) == 0 &&
      md->topic_cnt == 1 && md->topics[0].err == 0 &&
      md->topics[0].partition_cnt > 0) {
    p->nPart = md->topics[0].partition_cnt;
    sqlite3_free(p->aLast);
    p->aLast = sqlite3_malloc64(sizeof(ShipKey) * (size_t)p->nPart);
    rcOk = p->aLast != 0;
    for (i = 0; rcOk && i < p->nPart; i++) {
      rcOk = shipLastKey(p, rc, rkt, i, &p->aLast[i]);
      if (lo.pos < 0 || shipKeyCmp(p->aLast[i], lo) < 0) lo = p->aLast[i];
    }
    if (!rcOk) snprintf(zErr, nErr, "cannot read the topic's last messages");
  } else if (rkt) {
    snprintf(zErr, nErr, "no metadata for topic %s", p->zTopic);
  }
  if (md) rd_kafka_metadata_destroy(md);
  if (rkt) rd_kafka_topic_destroy(rkt);
  if (rc) rd_kafka_destroy(rc);
  if (rcOk) {
    p->nextPos = (u64)lo.pos + 1;
    p->doneSub = lo.sub;
  }
  return rcOk;
}

static void shipDisconnect(LjShip *p, int msFlush) {
  if (p->rk == 0) return;
  if (msFlush > 0) rd_kafka_flush(p->rk, msFlush);
  rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(p->rk, 0);
  rd_kafka_topic_destroy(p->rkt);
  rd_kafka_destroy(p->rk);
  p->rk = 0;
  p->rkt = 0;
}

/* A new producer session: resume point from Kafka, then the producer. */
static int shipConnect(LjShip *p) {
  char zErr[256] = "";
  rd_kafka_conf_t *conf;
  p->bFailed = 0;
  p->iHead = p->iTail = 0;
  /* The last session's oldest unacknowledged event is resent or in Kafka:
  ** its wait must not count against the new session. */
  __atomic_store_n(&p->pEnv->m.shipOldestTs, 0, __ATOMIC_RELAXED);
  if (!shipResume(p, zErr, sizeof(zErr))) {
    shipSetError(p, zErr);
    shipSetState(p, LJ_SHIPST_DOWN);
    return 0;
  }
  conf = shipConf(p, 1, zErr, sizeof(zErr));
  if (conf) {
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, shipDelivered);
    rd_kafka_conf_set_error_cb(conf, shipClientError);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, zErr, sizeof(zErr));
    if (p->rk == 0) rd_kafka_conf_destroy(conf);
  }
  if (p->rk) p->rkt = rd_kafka_topic_new(p->rk, p->zTopic, 0);
  if (p->rkt == 0) {
    shipDisconnect(p, 0);
    shipSetError(p, zErr[0] ? zErr : "cannot create the producer");
    return 0;
  }
  __atomic_fetch_add(&p->pEnv->m.nShipRestarts, 1, __ATOMIC_RELAXED);
  /* After a failed session the state stays down until a delivery succeeds
  ** (shipDelivered): a message the cluster keeps refusing must show. */
  if (!p->bRefused) shipSetState(p, LJ_SHIPST_ACTIVE);
  return 1;
}

/* Retire acknowledged slots and publish position and lag. */
static void shipPublish(LjShip *p) {
  LjMetrics *m = &p->pEnv->m;
  i64 pos, oldest = 0, sent = 0;
  while (p->iTail < p->iHead && p->aRing[p->iTail % SHIP_RING].bDone) {
    p->iTail++;
  }
  if (p->iTail < p->iHead) {
    const ShipSlot *s = &p->aRing[p->iTail % SHIP_RING];
    pos = s->pos - 1;
    oldest = s->ts > 0 ? s->ts : 1;
    sent = s->tSent;
  } else {
    pos = (i64)p->nextPos - 1;
  }
  __atomic_store_n(&m->shipPos, pos, __ATOMIC_RELAXED);
  __atomic_store_n(&m->shipOldestSent, sent, __ATOMIC_RELAXED);
  __atomic_store_n(&m->shipOldestTs, oldest, __ATOMIC_RELAXED);
}

static void shipHeader(rd_kafka_headers_t *h, const char *zName, const void *a,
                       int n) {
  if (a) rd_kafka_header_add(h, zName, -1, a, (ssize_t)n);
}

/* Hand one message (headers h, taken) to the client, in ring slot iHead
** (pos and ts for the lag).  0 when the session must end. */
static int shipSend(LjShip *p, int iPart, const char *zActor, int nActor,
                    const void *aVal, size_t nVal, rd_kafka_headers_t *h,
                    i64 pos, i64 ts) {
  u64 iSlot = p->iHead;
  rd_kafka_resp_err_t err;
  p->aRing[iSlot % SHIP_RING] = (ShipSlot){pos, ts, ljNowMs(), 0};
  for (;;) {
    err = rd_kafka_producev(
        p->rk, RD_KAFKA_V_RKT(p->rkt), RD_KAFKA_V_PARTITION(iPart),
        RD_KAFKA_V_KEY(zActor, (size_t)nActor),
        RD_KAFKA_V_VALUE((void *)aVal, nVal), RD_KAFKA_V_HEADERS(h),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE((void *)(uintptr_t)iSlot), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || shipStopping(p)) break;
    rd_kafka_poll(p->rk, 100);
  }
  if (err) {
    rd_kafka_headers_destroy(h);
    shipSetError(p, rd_kafka_err2str(err));
    p->bFailed = 1;
    return 0;
  }
  p->iHead++;
  return 1;
}

/* Produce the current row (pos not yet in its partition). */
static int shipProduce(LjShip *p, const LjRow *r, const LjRec *e, int iPart) {
  rd_kafka_headers_t *h = rd_kafka_headers_new(8);
  char zPos[24], zSeq[24], zTs[24], zCls[3];
  snprintf(zPos, sizeof(zPos), "%llu", (unsigned long long)e->pos);
  snprintf(zSeq, sizeof(zSeq), "%llu", (unsigned long long)r->seq);
  snprintf(zTs, sizeof(zTs), "%lld", (long long)e->ts);
  zCls[0] = (char)('0' + e->ePayload);
  zCls[1] = (char)('0' + e->eMeta);
  zCls[2] = 0;
  shipHeader(h, LJ_HDR_POS, zPos, (int)strlen(zPos));
  shipHeader(h, LJ_HDR_SEQ, zSeq, (int)strlen(zSeq));
  shipHeader(h, LJ_HDR_TS, zTs, (int)strlen(zTs));
  shipHeader(h, LJ_HDR_TYPE, e->aType, e->nType);
  shipHeader(h, LJ_HDR_META, e->eMeta ? (const void *)e->aMeta : 0, e->nMeta);
  shipHeader(h, LJ_HDR_TAGS, e->aTags, e->nTags);
  shipHeader(h, LJ_HDR_CLASS, zCls, 2);
  shipHeader(h, LJ_HDR_STORE, p->zStore, 32);
  return shipSend(p, iPart, r->zActor, r->nActor,
                  e->ePayload ? (const void *)e->aPayload : 0,
                  e->ePayload ? (size_t)e->nPayload : 0, h, (i64)e->pos, e->ts);
}

/* Produce truncation t as a marker: the actor's key (its partition), a
** NULL value, headers op, pos, sub, seq (the last seq deleted), store. */
static int shipProduceMark(LjShip *p, const LjTrunc *t, int iPart) {
  rd_kafka_headers_t *h = rd_kafka_headers_new(5);
  char zPos[24], zSub[12], zSeq[24];
  snprintf(zPos, sizeof(zPos), "%llu", (unsigned long long)t->pos);
  snprintf(zSub, sizeof(zSub), "%u", t->sub);
  snprintf(zSeq, sizeof(zSeq), "%llu", (unsigned long long)t->toSeq);
  shipHeader(h, LJ_HDR_OP, LJ_OP_TRUNCATE, (int)strlen(LJ_OP_TRUNCATE));
  shipHeader(h, LJ_HDR_POS, zPos, (int)strlen(zPos));
  shipHeader(h, LJ_HDR_SUB, zSub, (int)strlen(zSub));
  shipHeader(h, LJ_HDR_SEQ, zSeq, (int)strlen(zSeq));
  shipHeader(h, LJ_HDR_STORE, p->zStore, 32);
  /* No event ts: the lag of a marker counts from when it was sent. */
  return shipSend(p, iPart, t->zActor, t->nActor, 0, 0, h, (i64)t->pos,
                  ljNowMs());
}

/* Wait for room in the ring; 0 when the session must end or stop. */
static int shipRoom(LjShip *p) {
  while (p->iHead - p->iTail >= SHIP_RING && !p->bFailed && !shipStopping(p)) {
    rd_kafka_poll(p->rk, 10);
    shipPublish(p);
  }
  return !p->bFailed && !shipStopping(p);
}

/* Send truncation t unless its partition holds it already; 0 when the
** session must end or stop. */
static int shipMark(LjShip *p, const LjTrunc *t) {
  ShipKey key = {(i64)t->pos, t->sub};
  int iPart;
  if (!shipRoom(p)) return 0;
  iPart = rd_kafka_msg_partitioner_murmur2(p->rkt, t->zActor, (size_t)t->nActor,
                                           p->nPart, 0, 0);
  if (shipKeyCmp(key, p->aLast[iPart]) > 0) {
    if (!shipProduceMark(p, t, iPart)) return 0;
    p->aLast[iPart] = key;
  }
  p->nextPos = t->pos + 1;
  p->doneSub = t->sub;
  return 1;
}

/* Send the event of the current row unless its partition holds it. */
static int shipEvent(LjShip *p, const LjRow *r, const LjRec *e) {
  ShipKey key = {(i64)e->pos, 0};
  int iPart;
  if (!shipRoom(p)) return 0;
  iPart = rd_kafka_msg_partitioner_murmur2(p->rkt, r->zActor, (size_t)r->nActor,
                                           p->nPart, 0, 0);
  if (shipKeyCmp(key, p->aLast[iPart]) > 0) {
    if (!shipProduce(p, r, e, iPart)) return 0;
    p->aLast[iPart] = key;
  }
  p->nextPos = e->pos + 1;
  p->doneSub = 0;
  __atomic_store_n(&p->pEnv->m.shipSeenPos, (i64)e->pos, __ATOMIC_RELAXED);
  return 1;
}

/* One snapshot's worth of events from nextPos, and the truncations
** between and after them (a truncation at pos P goes after the event of
** P and before the next one); returns how many messages were handled. */
static int shipRound(LjShip *p, LjScan *pScan) {
  LjScanSpec s;
  char *zErr = 0;
  int rc, nRow = 0, nMark = 0, iMark = 0;
  memset(&s, 0, sizeof(s));
  s.ePlan = LJ_SCAN_POS;
  s.lo = (i64)p->nextPos;
  s.hi = INT64_MAX;
  s.nLimit = SHIP_ROUND;
  /* What is committed: waiting for this process's queued appends would
  ** tie every round to a commit of the writer. */
  rc = ljScanStart(pScan, &s, -1, &zErr);
  if (rc == SQLITE_OK) {
    rc = ljScanTruncLog(pScan, p->nextPos - 1, p->doneSub, p->aMark, SHIP_MARKS,
                        &nMark, &zErr);
  }
  for (; rc == SQLITE_OK && !ljScanEof(pScan) && nRow < SHIP_ROUND &&
         !p->bFailed && !shipStopping(p);
       rc = ljScanNext(pScan, &zErr)) {
    const LjRec *e;
    rc = ljScanDecode(pScan, &e);
    if (rc != SQLITE_OK) break;
    while (iMark < nMark && p->aMark[iMark].pos < e->pos &&
           shipMark(p, &p->aMark[iMark])) {
      iMark++;
    }
    if (iMark < nMark && p->aMark[iMark].pos < e->pos) break; /* failed */
    /* Truncations beyond those read may come before this event. */
    if (iMark == SHIP_MARKS) break;
    if (!shipEvent(p, ljScanRow(pScan), e)) break;
    nRow++;
  }
  /* At the end of what the snapshot holds, every truncation it holds
  ** comes after every event it holds. */
  while (rc == SQLITE_OK && ljScanEof(pScan) && iMark < nMark &&
         shipMark(p, &p->aMark[iMark])) {
    iMark++;
  }
  if (zErr) {
    shipSetError(p, zErr);
    sqlite3_free(zErr);
  }
  return nRow + iMark;
}

/* Ship while holding the lock, until stopped. */
static void shipActive(LjShip *p) {
  while (!shipStopping(p)) {
    LjScan *pScan = 0;
    int nRow = 0;
    if (p->rk == 0 && !shipConnect(p)) {
      shipSleep(p, SHIP_RETRY_MS);
      continue;
    }
    if (ljScanNew(p->pEnv, &pScan) == SQLITE_OK) {
      nRow = shipRound(p, pScan);
      ljScanFree(pScan);
    }
    rd_kafka_poll(p->rk, nRow < SHIP_ROUND ? SHIP_IDLE_MS : 0);
    shipPublish(p);
    if (p->bFailed) {
      /* Resume from Kafka, after a pause: a refused message would
      ** otherwise make every session fail at once. */
      shipDisconnect(p, 0);
      p->bRefused = 1;
      shipSetState(p, LJ_SHIPST_DOWN);
      shipSleep(p, SHIP_RETRY_MS);
    }
  }
  shipDisconnect(p, 2000);
  shipPublish(p);
}

static void *shipMain(void *pArg) {
  LjShip *p = pArg;
  if (shipStoreId(p) != SQLITE_OK) {
    shipSetError(p, "cannot read or create store.id");
    shipSetState(p, LJ_SHIPST_DOWN);
    return 0;
  }
  while (!shipStopping(p)) {
    if (shipLock(p)) {
      shipActive(p);
      break;
    }
    shipSetState(p, LJ_SHIPST_STANDBY);
    shipSleep(p, SHIP_RETRY_MS);
  }
  return 0;
}

int ljShipStart(LjEnv *pEnv, char **pzErr) {
  const LjConfig *c = &pEnv->cfg;
  LjShip *p;
  if (c->eShip == LJ_SHIP_OFF) return SQLITE_OK;
  p = sqlite3_malloc64(sizeof(*p));
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->pEnv = pEnv;
  p->fdLock = -1;
  p->zBrokers = sqlite3_mprintf("%s", c->zShipBrokers);
  p->zTopic = sqlite3_mprintf("%s", c->zShipTopic);
  p->zConf = c->zShipConf ? sqlite3_mprintf("%s", c->zShipConf) : 0;
  p->aRing = sqlite3_malloc64(sizeof(ShipSlot) * SHIP_RING);
  p->aMark = sqlite3_malloc64(sizeof(LjTrunc) * SHIP_MARKS);
  pthread_mutex_init(&p->mutex, 0);
  {
    pthread_condattr_t attr; /* ljDeadline counts on the monotonic clock */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &attr);
    pthread_condattr_destroy(&attr);
  }
  pEnv->pShip = p;
  if (p->zBrokers == 0 || p->zTopic == 0 || (c->zShipConf && !p->zConf) ||
      p->aRing == 0 || p->aMark == 0) {
    ljShipStop(pEnv);
    return SQLITE_NOMEM;
  }
  shipSetState(p, LJ_SHIPST_STANDBY);
  if (pthread_create(&p->thread, 0, shipMain, p)) {
    *pzErr = sqlite3_mprintf("lmdb_journal: cannot start the shipper thread");
    ljShipStop(pEnv);
    return SQLITE_ERROR;
  }
  p->bThread = 1;
  return SQLITE_OK;
}

void ljShipStop(LjEnv *pEnv) {
  LjShip *p = pEnv->pShip;
  if (p == 0) return;
  pthread_mutex_lock(&p->mutex);
  __atomic_store_n(&p->bStop, 1, __ATOMIC_RELAXED);
  pthread_cond_signal(&p->cond);
  pthread_mutex_unlock(&p->mutex);
  if (p->bThread) pthread_join(p->thread, 0);
  shipSetState(p, LJ_SHIPST_OFF);
  if (p->fdLock >= 0) close(p->fdLock);
  pthread_cond_destroy(&p->cond);
  pthread_mutex_destroy(&p->mutex);
  sqlite3_free(p->aLast);
  sqlite3_free(p->aRing);
  sqlite3_free(p->aMark);
  sqlite3_free(p->zBrokers);
  sqlite3_free(p->zTopic);
  sqlite3_free(p->zConf);
  sqlite3_free(p);
  pEnv->pShip = 0;
}
