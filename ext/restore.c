/*
** restore.c -- journal_restore: rebuild a store from a Kafka topic that a
** shipper (ship.c) wrote.
**
**     SELECT journal_restore('j', 'k1:9092,k2:9092', 'journal');   -> 100000
**     SELECT journal_restore('j', brokers, topic, 5001);  -- pos >= 5001
**
** The table's store must be empty.  Every partition is read from its
** first offset to its high watermark at the start of the call, and the
** partitions are merged by their pos header, so events are appended in
** the source's pos order (each partition is already in pos order, see
** ship.c).  Each event keeps its actor, seq, ts, type, payload and meta
** (with their storage classes) and tags; the new store assigns its own
** pos, gap-free, in the source's order, so it equals the source's when
** the source had no gap when it shipped.  Only the events of one store are
** restored: the store id of the first message read (partition 0 first).
**
** Truncations are shipped as markers (ship.c) after the event of the
** pos they were committed at, and replayed in the same order: a marker
** truncates its actor up to its seq header once every event before it
** (in pos order) was appended, so events truncated after they were
** shipped are deleted again and leave the same gaps in pos as in the
** source.  Events truncated before they were shipped are not in the
** topic: an actor then starts at its first shipped seq (the writer lets
** a restored event open an actor above seq 1), and pos closes the gaps.
** Snapshots are not shipped.  Returns the number of events appended
** (counting those a marker deleted again).
*/
#include "internal.h"

#include <librdkafka/rdkafka.h>
#include <stdlib.h>

typedef struct RsHead RsHead;
struct RsHead {
  rd_kafka_message_t *m; /* next message of the partition, or NULL */
  i64 pos;
  i64 sub;    /* 0 for an event, from 1 for a truncation at pos */
  int bMark;  /* m is a truncation marker */
  int64_t hi; /* high watermark at the start */
  int bDone;
  int bStarted; /* rd_kafka_consume_start was called */
};

typedef struct RsState RsState;
struct RsState {
  rd_kafka_t *rk;
  rd_kafka_topic_t *rkt;
  int nPart;
  RsHead *aHead;
  char zStore[33];  /* "" until the first message */
  i64 iFrom;        /* lowest pos restored */
  int bAll;         /* every message, of any store (journal_kafka) */
  const char *zWho; /* the SQL name, for messages */
};

/* Header zName of m, or NULL. */
static const u8 *rsHeader(rd_kafka_message_t *m, const char *zName, int *pn) {
  rd_kafka_headers_t *h = 0;
  const void *a = 0;
  size_t n = 0;
  if (rd_kafka_message_headers(m, &h) || h == 0 ||
      rd_kafka_header_get_last(h, zName, &a, &n)) {
    return 0;
  }
  *pn = (int)n;
  return a ? a : (const u8 *)"";
}

static i64 rsNumber(rd_kafka_message_t *m, const char *zName) {
  int n = 0;
  const u8 *a = rsHeader(m, zName, &n);
  char z[24];
  if (a == 0 || n <= 0 || n >= (int)sizeof(z)) return -1;
  memcpy(z, a, (size_t)n);
  z[n] = 0;
  return strtoll(z, 0, 10);
}

/* Is m a truncation marker (ship.c)? */
static int rsIsMark(rd_kafka_message_t *m) {
  int n = 0;
  const u8 *a = rsHeader(m, LJ_HDR_OP, &n);
  return a && n == (int)strlen(LJ_OP_TRUNCATE) &&
         memcmp(a, LJ_OP_TRUNCATE, (size_t)n) == 0;
}

/* Advance partition i to its next message of the chosen store at or after
** iFrom.  Returns SQLITE_OK, or an error with *pzErr set. */
static int rsAdvance(RsState *s, int i, char **pzErr) {
  RsHead *h = &s->aHead[i];
  if (h->m) rd_kafka_message_destroy(h->m);
  h->m = 0;
  while (!h->bDone) {
    rd_kafka_message_t *m = rd_kafka_consume(s->rkt, i, 10000);
    int n = 0;
    const u8 *aStore;
    if (m == 0) {
      *pzErr =
          sqlite3_mprintf("%s: timed out reading partition %d", s->zWho, i);
      return SQLITE_BUSY;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      rd_kafka_message_destroy(m);
      continue;
    }
    if (m->err) {
      *pzErr = sqlite3_mprintf("%s: %s", s->zWho, rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      return SQLITE_ERROR;
    }
    if (m->offset + 1 >= h->hi) h->bDone = 1;
    aStore = rsHeader(m, LJ_HDR_STORE, &n);
    h->pos = rsNumber(m, LJ_HDR_POS);
    h->sub = rsNumber(m, LJ_HDR_SUB);
    if (h->sub < 0) h->sub = 0;
    h->bMark = rsIsMark(m);
    if (aStore && n == 32 && s->zStore[0] == 0) {
      memcpy(s->zStore, aStore, 32);
    }
    /* journal_kafka: every store's events, no truncation marker. */
    if (s->bAll ? !h->bMark && h->pos >= s->iFrom
                : aStore && n == 32 && memcmp(aStore, s->zStore, 32) == 0 &&
                      h->pos >= s->iFrom && h->pos > 0) {
      h->m = m;
      return SQLITE_OK;
    }
    rd_kafka_message_destroy(m);
  }
  return SQLITE_OK;
}

/* Connect, read the partitions' watermarks and their first messages. */
static int rsOpen(RsState *s, const char *zBrokers, const char *zTopic,
                  char **pzErr) {
  char zErr[256] = "";
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  const rd_kafka_metadata_t *md = 0;
  int i, rc = SQLITE_OK;
  if (rd_kafka_conf_set(conf, "bootstrap.servers", zBrokers, zErr,
                        sizeof(zErr)) == 0) {
    rd_kafka_conf_set(conf, "log_level", "3", zErr, sizeof(zErr));
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, zErr, sizeof(zErr));
  }
  if (s->rk == 0) {
    rd_kafka_conf_destroy(conf);
    *pzErr = sqlite3_mprintf("%s: %s", s->zWho, zErr);
    return SQLITE_ERROR;
  }
  s->rkt = rd_kafka_topic_new(s->rk, zTopic, 0);
  if (s->rkt == 0 || rd_kafka_metadata(s->rk, 0, s->rkt, &md, 10000) ||
      md->topic_cnt != 1 || md->topics[0].err ||
      md->topics[0].partition_cnt <= 0) {
    if (md) rd_kafka_metadata_destroy(md);
    *pzErr =
        sqlite3_mprintf("%s: no topic '%s' at %s", s->zWho, zTopic, zBrokers);
    return SQLITE_ERROR;
  }
  s->nPart = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  s->aHead = sqlite3_malloc64(sizeof(RsHead) * (size_t)s->nPart);
  if (s->aHead == 0) return SQLITE_NOMEM;
  memset(s->aHead, 0, sizeof(RsHead) * (size_t)s->nPart);
  for (i = 0; i < s->nPart && rc == SQLITE_OK; i++) {
    int64_t lo = 0, hi = 0;
    RsHead *h = &s->aHead[i];
    if (rd_kafka_query_watermark_offsets(s->rk, zTopic, i, &lo, &hi, 10000)) {
      *pzErr = sqlite3_mprintf("%s: cannot read the offsets of partition %d",
                               s->zWho, i);
      rc = SQLITE_ERROR;
      break;
    }
    h->hi = hi;
    h->bDone = hi <= lo;
    if (!h->bDone) {
      h->bStarted = rd_kafka_consume_start(s->rkt, i, lo) == 0;
      if (!h->bStarted) {
        *pzErr = sqlite3_mprintf("%s: cannot read partition %d", s->zWho, i);
        rc = SQLITE_ERROR;
      }
    }
    if (rc == SQLITE_OK) rc = rsAdvance(s, i, pzErr);
  }
  return rc;
}

/* The partition whose next message is first in (pos, sub) order, -1
** when done: a truncation at pos P comes after the event of P. */
static int rsMin(const RsState *s) {
  int i, iMin = -1;
  for (i = 0; i < s->nPart; i++) {
    const RsHead *h = &s->aHead[i], *b = iMin < 0 ? 0 : &s->aHead[iMin];
    if (h->m &&
        (b == 0 || h->pos < b->pos || (h->pos == b->pos && h->sub < b->sub))) {
      iMin = i;
    }
  }
  return iMin;
}

static void rsClose(RsState *s) {
  int i;
  for (i = 0; s->aHead && i < s->nPart; i++) {
    if (s->aHead[i].m) rd_kafka_message_destroy(s->aHead[i].m);
    if (s->aHead[i].bStarted) rd_kafka_consume_stop(s->rkt, i);
  }
  sqlite3_free(s->aHead);
  if (s->rkt) rd_kafka_topic_destroy(s->rkt);
  if (s->rk) rd_kafka_destroy(s->rk);
  memset(s, 0, sizeof(*s));
}

/* An event above its actor's next seq: the ones between were deleted by a
** truncation before they were shipped, whose marker comes later (at the
** pos it committed at) and reaches at least seq-1 (truncation deletes a
** prefix).  Do its work now, so that the actor's seqs never have a gap;
** the marker then deletes nothing more.  An actor without events takes
** the event as it is (the writer lets a restored event skip seqs). */
static int rsCloseGap(LjTable *p, const LjEvent *ev, char **pzErr) {
  u64 h = ljActorReserved(p->pEnv, ev->pActor);
  i64 nDel = 0;
  if (h == 0 || ev->seq <= h + 1) return SQLITE_OK;
  return ljTruncate(p->pClient, ev->zActor, ev->nActor, (i64)ev->seq - 1,
                    p->cfg.usSyncTimeout, &nDel, pzErr);
}

/* Append message m as an event of table p (queued, not waited for). */
static int rsAppend(LjTable *p, rd_kafka_message_t *m, char **pzErr) {
  LjRecIn in;
  LjEvent ev;
  u8 aBuf[1024];
  int nCls = 0, rc;
  const u8 *aCls = rsHeader(m, LJ_HDR_CLASS, &nCls);
  memset(&in, 0, sizeof(in));
  memset(&ev, 0, sizeof(ev));
  if (aCls == 0 || nCls != 2 || m->key == 0 || m->key_len == 0 ||
      m->key_len > LJ_MAX_ACTOR_BYTES) {
    *pzErr = sqlite3_mprintf(
        "journal_restore: message at offset %lld is not "
        "a shipped event",
        (long long)m->offset);
    return SQLITE_CORRUPT;
  }
  in.ePayload = (u8)(aCls[0] - '0');
  in.eMeta = (u8)(aCls[1] - '0');
  if (in.ePayload > LJ_VAL_BLOB || in.eMeta > LJ_VAL_BLOB) {
    *pzErr = sqlite3_mprintf("journal_restore: bad class header");
    return SQLITE_CORRUPT;
  }
  if (in.ePayload) {
    in.aPayload = m->payload ? m->payload : (const u8 *)"";
    in.nPayload = (int)m->len;
  }
  in.aType = rsHeader(m, LJ_HDR_TYPE, &in.nType);
  in.aTags = rsHeader(m, LJ_HDR_TAGS, &in.nTags);
  if (in.eMeta) in.aMeta = rsHeader(m, LJ_HDR_META, &in.nMeta);
  ev.zActor = m->key;
  ev.nActor = (int)m->key_len;
  ev.seq = (u64)rsNumber(m, LJ_HDR_SEQ);
  ev.bRestore = 1;
  ev.tsGiven = rsNumber(m, LJ_HDR_TS);
  rc = ljRecBuild(&in, p->cfg.eCompression, p->cfg.nCompressionMin, aBuf,
                  sizeof(aBuf), &ev.aRec, &ev.nRec);
  if (rc == SQLITE_OK) {
    rc = ljActorGet(p->pEnv, ev.zActor, ev.nActor, &ev.pActor, pzErr);
  }
  if (rc == SQLITE_OK) rc = rsCloseGap(p, &ev, pzErr);
  if (rc == SQLITE_OK) {
    rc = ljSubmit(p->pClient, &ev, 1, 0, p->cfg.usSyncTimeout, pzErr);
  }
  if (ev.aRec != aBuf) sqlite3_free(ev.aRec);
  return rc;
}

/* Apply truncation marker m: truncate its actor up to its seq header,
** after what was queued before (the writer keeps the queue's order). */
static int rsTruncate(LjTable *p, rd_kafka_message_t *m, char **pzErr) {
  i64 toSeq = rsNumber(m, LJ_HDR_SEQ), nDel = 0;
  if (m->key == 0 || m->key_len == 0 || m->key_len > LJ_MAX_ACTOR_BYTES ||
      toSeq < 0) {
    *pzErr = sqlite3_mprintf(
        "journal_restore: message at offset %lld is not a truncation",
        (long long)m->offset);
    return SQLITE_CORRUPT;
  }
  return ljTruncate(p->pClient, m->key, (int)m->key_len, toSeq,
                    p->cfg.usSyncTimeout, &nDel, pzErr);
}

/* Is the store empty? */
static int rsEmpty(LjTable *p, int *pbEmpty, char **pzErr) {
  LjScan *pScan = 0;
  LjScanSpec s;
  int rc = ljScanNew(p->pEnv, &pScan);
  memset(&s, 0, sizeof(s));
  s.ePlan = LJ_SCAN_POS;
  s.hi = INT64_MAX;
  s.nLimit = 1;
  if (rc == SQLITE_OK) rc = ljScanStart(pScan, &s, p->cfg.usSyncTimeout, pzErr);
  if (rc == SQLITE_OK) *pbEmpty = ljScanEof(pScan);
  ljScanFree(pScan);
  return rc;
}

static void fnRestore(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  LjConn *pConn = sqlite3_user_data(ctx);
  const char *zTab = (const char *)sqlite3_value_text(argv[0]);
  const char *zBrokers = (const char *)sqlite3_value_text(argv[1]);
  const char *zTopic = (const char *)sqlite3_value_text(argv[2]);
  LjTable *p = 0;
  RsState s;
  char *zErr = 0;
  i64 n = 0;
  int rc, bEmpty = 0;
  memset(&s, 0, sizeof(s));
  s.zWho = "journal_restore";
  s.iFrom = argc > 3 ? sqlite3_value_int64(argv[3]) : 1;
  if (zTab == 0 || zBrokers == 0 || zTopic == 0) {
    sqlite3_result_error(ctx, "journal_restore(T, brokers, topic [, from])",
                         -1);
    return;
  }
  rc = ljTableFind(pConn, zTab, &p, &zErr);
  if (rc == SQLITE_OK) rc = rsEmpty(p, &bEmpty, &zErr);
  if (rc == SQLITE_OK && !bEmpty) {
    zErr =
        sqlite3_mprintf("journal_restore: the store of %s is not empty", zTab);
    rc = SQLITE_CONSTRAINT;
  }
  if (rc == SQLITE_OK) rc = rsOpen(&s, zBrokers, zTopic, &zErr);
  while (rc == SQLITE_OK) {
    int iMin = rsMin(&s);
    if (iMin < 0) break;
    if (s.aHead[iMin].bMark) {
      rc = rsTruncate(p, s.aHead[iMin].m, &zErr);
    } else {
      rc = rsAppend(p, s.aHead[iMin].m, &zErr);
      n++;
    }
    if (rc == SQLITE_OK) rc = rsAdvance(&s, iMin, &zErr);
  }
  rsClose(&s);
  if (p && (rc == SQLITE_OK || n > 0)) {
    /* Also what was queued before a failure: it is in the store now. */
    char *zSyncErr = 0;
    i64 lastPos = 0;
    int rc2 = ljSync(p->pClient, 1, p->cfg.usSyncTimeout, p->zName, &lastPos,
                     &zSyncErr);
    if (rc == SQLITE_OK && rc2) {
      rc = rc2;
      zErr = zSyncErr;
    } else {
      sqlite3_free(zSyncErr);
    }
  }
  if (rc) {
    sqlite3_result_error(ctx, zErr ? zErr : sqlite3_errstr(rc), -1);
    sqlite3_result_error_code(ctx, rc);
  } else {
    sqlite3_result_int64(ctx, n);
  }
  sqlite3_free(zErr);
}

/*
** journal_kafka(brokers, topic): the events of a topic as rows, from
** every store that ships into it (the store column tells them apart),
** read from each partition's first offset to its high watermark when the
** statement starts, partitions merged by pos.  Truncation markers are
** skipped: the rows are what was shipped, not what a restore keeps.  Columns:
*those of the
** journal table, then store, partition and offset.  Both arguments are
** required (xBestIndex: argv 1 = brokers, 2 = topic).
*/
enum {
  KC_ACTOR = 0,
  KC_SEQ,
  KC_POS,
  KC_TS,
  KC_TYPE,
  KC_PAYLOAD,
  KC_META,
  KC_TAGS,
  KC_STORE,
  KC_PARTITION,
  KC_OFFSET,
  KC_BROKERS,
  KC_TOPIC
};

typedef struct KfCursor KfCursor;
struct KfCursor {
  sqlite3_vtab_cursor base; /* must be first */
  RsState s;
  rd_kafka_message_t *m; /* the current row, NULL at eof */
  int iPart;
  i64 iRow;
};

static int kfConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                     sqlite3_vtab **ppVtab, char **pzErr) {
  sqlite3_vtab *p;
  int rc = sqlite3_declare_vtab(
      db,
      "CREATE TABLE x(actor_id TEXT, seq INTEGER, pos INTEGER, "
      "ts INTEGER, type TEXT, payload, meta, tags TEXT, store TEXT, "
      "partition INTEGER, offset INTEGER, brokers HIDDEN, topic HIDDEN)");
  (void)pAux;
  (void)argc;
  (void)argv;
  (void)pzErr;
  if (rc) return rc;
  p = sqlite3_malloc64(sizeof(*p));
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  *ppVtab = p;
  return SQLITE_OK;
}

static int kfDisconnect(sqlite3_vtab *pVtab) {
  sqlite3_free(pVtab);
  return SQLITE_OK;
}

static int kfBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p) {
  int aArg[2] = {-1, -1}, i;
  for (i = 0; i < p->nConstraint; i++) {
    int iCol = p->aConstraint[i].iColumn;
    if ((iCol == KC_BROKERS || iCol == KC_TOPIC) && p->aConstraint[i].usable &&
        p->aConstraint[i].op == SQLITE_INDEX_CONSTRAINT_EQ) {
      aArg[iCol - KC_BROKERS] = i;
    }
  }
  if (aArg[0] < 0 || aArg[1] < 0) {
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = sqlite3_mprintf(
        "journal_kafka needs brokers and a topic, e.g. SELECT * FROM "
        "journal_kafka('k1:9092', 'journal')");
    return SQLITE_ERROR;
  }
  for (i = 0; i < 2; i++) {
    p->aConstraintUsage[aArg[i]].argvIndex = i + 1;
    p->aConstraintUsage[aArg[i]].omit = 1;
  }
  p->estimatedCost = 1e6;
  return SQLITE_OK;
}

static int kfOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur) {
  KfCursor *p = sqlite3_malloc64(sizeof(*p));
  (void)pVtab;
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  *ppCur = &p->base;
  return SQLITE_OK;
}

static void kfReset(KfCursor *p) {
  if (p->m) rd_kafka_message_destroy(p->m);
  p->m = 0;
  rsClose(&p->s);
}

static int kfClose(sqlite3_vtab_cursor *pCur) {
  kfReset((KfCursor *)pCur);
  sqlite3_free(pCur);
  return SQLITE_OK;
}

static int kfError(KfCursor *p, int rc, char *zErr) {
  sqlite3_free(p->base.pVtab->zErrMsg);
  p->base.pVtab->zErrMsg = zErr;
  return rc;
}

static int kfNext(sqlite3_vtab_cursor *pCur) {
  KfCursor *p = (KfCursor *)pCur;
  char *zErr = 0;
  int rc = SQLITE_OK;
  if (p->m) rd_kafka_message_destroy(p->m);
  p->m = 0;
  p->iPart = rsMin(&p->s);
  if (p->iPart >= 0) {
    p->m = p->s.aHead[p->iPart].m; /* the cursor owns it now */
    p->s.aHead[p->iPart].m = 0;
    p->iRow++;
    rc = rsAdvance(&p->s, p->iPart, &zErr);
  }
  return rc ? kfError(p, rc, zErr) : SQLITE_OK;
}

static int kfFilter(sqlite3_vtab_cursor *pCur, int idxNum, const char *idxStr,
                    int argc, sqlite3_value **argv) {
  KfCursor *p = (KfCursor *)pCur;
  const char *zBrokers = (const char *)sqlite3_value_text(argv[0]);
  const char *zTopic = (const char *)sqlite3_value_text(argv[1]);
  char *zErr = 0;
  int rc;
  (void)idxNum;
  (void)idxStr;
  (void)argc;
  kfReset(p);
  p->s.zWho = "journal_kafka";
  p->s.bAll = 1;
  if (zBrokers == 0 || zTopic == 0) {
    return kfError(p, SQLITE_ERROR,
                   sqlite3_mprintf("journal_kafka: brokers and topic must "
                                   "be text"));
  }
  rc = rsOpen(&p->s, zBrokers, zTopic, &zErr);
  if (rc) return kfError(p, rc, zErr);
  return kfNext(pCur);
}

static int kfEof(sqlite3_vtab_cursor *pCur) {
  return ((KfCursor *)pCur)->m == 0;
}

/* A payload or meta value of storage class e (layout.c) as a result. */
static void kfValue(sqlite3_context *ctx, int e, const u8 *a, int n) {
  if (e == LJ_VAL_INT && a && n == 8) {
    sqlite3_result_int64(ctx, (i64)ljGet64(a));
  } else if (e == LJ_VAL_FLOAT && a && n == 8) {
    u64 x = ljGet64(a);
    double d;
    memcpy(&d, &x, 8);
    sqlite3_result_double(ctx, d);
  } else if (e == LJ_VAL_TEXT && a) {
    sqlite3_result_text(ctx, (const char *)a, n, SQLITE_TRANSIENT);
  } else if (e == LJ_VAL_BLOB && a) {
    sqlite3_result_blob(ctx, a, n, SQLITE_TRANSIENT);
  }
}

static void kfHeaderText(sqlite3_context *ctx, rd_kafka_message_t *m,
                         const char *zName) {
  int n = 0;
  const u8 *a = rsHeader(m, zName, &n);
  if (a) sqlite3_result_text(ctx, (const char *)a, n, SQLITE_TRANSIENT);
}

static int kfColumn(sqlite3_vtab_cursor *pCur, sqlite3_context *ctx, int i) {
  KfCursor *p = (KfCursor *)pCur;
  rd_kafka_message_t *m = p->m;
  int nCls = 0, n = 0;
  const u8 *aCls = rsHeader(m, LJ_HDR_CLASS, &nCls);
  int eP = aCls && nCls == 2 ? aCls[0] - '0' : LJ_VAL_BLOB;
  int eM = aCls && nCls == 2 ? aCls[1] - '0' : LJ_VAL_NULL;
  switch (i) {
    case KC_ACTOR:
      sqlite3_result_text(ctx, m->key, (int)m->key_len, SQLITE_TRANSIENT);
      break;
    case KC_SEQ: sqlite3_result_int64(ctx, rsNumber(m, LJ_HDR_SEQ)); break;
    case KC_POS: sqlite3_result_int64(ctx, rsNumber(m, LJ_HDR_POS)); break;
    case KC_TS: sqlite3_result_int64(ctx, rsNumber(m, LJ_HDR_TS)); break;
    case KC_TYPE: kfHeaderText(ctx, m, LJ_HDR_TYPE); break;
    case KC_PAYLOAD:
      kfValue(ctx, eP, m->payload ? m->payload : (const u8 *)"", (int)m->len);
      break;
    case KC_META: {
      const u8 *a = rsHeader(m, LJ_HDR_META, &n);
      kfValue(ctx, eM, a, n);
      break;
    }
    case KC_TAGS: kfHeaderText(ctx, m, LJ_HDR_TAGS); break;
    case KC_STORE: kfHeaderText(ctx, m, LJ_HDR_STORE); break;
    case KC_PARTITION: sqlite3_result_int(ctx, p->iPart); break;
    case KC_OFFSET: sqlite3_result_int64(ctx, m->offset); break;
    default: break;
  }
  return SQLITE_OK;
}

static int kfRowid(sqlite3_vtab_cursor *pCur, sqlite3_int64 *pRowid) {
  *pRowid = ((KfCursor *)pCur)->iRow;
  return SQLITE_OK;
}

static sqlite3_module kfModule = {0,            /* iVersion */
                                  0,            /* xCreate: eponymous only */
                                  kfConnect,    /* xConnect */
                                  kfBestIndex,  /* xBestIndex */
                                  kfDisconnect, /* xDisconnect */
                                  0,            /* xDestroy */
                                  kfOpen,       /* xOpen */
                                  kfClose,      /* xClose */
                                  kfFilter,     /* xFilter */
                                  kfNext,       /* xNext */
                                  kfEof,        /* xEof */
                                  kfColumn,     /* xColumn */
                                  kfRowid,      /* xRowid */
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0};

int ljRegisterRestore(sqlite3 *db, LjConn *pConn) {
  int rc = sqlite3_create_module_v2(db, "journal_kafka", &kfModule, 0, 0);
  int n;
  for (n = 3; n <= 4 && rc == SQLITE_OK; n++) {
    rc = sqlite3_create_function_v2(db, "journal_restore", n,
                                    SQLITE_UTF8 | SQLITE_DIRECTONLY, pConn,
                                    fnRestore, 0, 0, 0);
  }
  return rc;
}
