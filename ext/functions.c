/*
** functions.c -- the journal_* scalar functions.
**
**   journal_append(T, actor_id, payload [, type [, meta [, tags]]]) -> seq
**   journal_sync(T)                      -> durable pos
**   journal_highest_seq(T, actor_id)     -> highest seq, incl. queued
**   journal_truncate(T, actor_id, to_seq) -> events deleted (seq <= to_seq)
**   journal_snapshot(T, actor_id, seq, state [, meta]) -> seq
**   journal_delete_snapshots(T, actor_id, max_seq [, max_ts [, min_seq
**                            [, min_ts]]]) -> snapshots deleted
**   journal_health(T)                    -> JSON status report
**   journal_config(T)                    -> JSON of the effective options
**   journal_metrics_prometheus(T)        -> Prometheus text exposition
**   journal_version()                    -> "0.1.0"
**   journal_debug()                      -> build and library versions
**   journal_verify(T)                    -> JSON: is the store sound?
**   journal_backup(T, dest_dir [, compact]) -> bytes of the copy
**
** T names an lmdb_journal table of the calling connection ("j" or
** "main.j"): the one the schema means when the statement runs, even if
** another connection or process dropped and recreated it (fnTable).
** Functions that write are SQLITE_DIRECTONLY: schema objects cannot call
** them.
*/
#include "internal.h"

#include <string.h>

/* Functions that set a result subtype (JSON) must say so, or SQLite built
** with SQLITE_STRICT_SUBTYPE refuses them; older headers lack the flag,
** which older SQLite ignores. */
#ifdef SQLITE_RESULT_SUBTYPE
#define LJ_RESULT_SUBTYPE SQLITE_RESULT_SUBTYPE
#else
#define LJ_RESULT_SUBTYPE 0x001000000
#endif

/* What argument 0 resolved to in this execution of the statement. */
typedef struct FnResolved FnResolved;
struct FnResolved {
  LjTable *p;
  u32 iGen; /* LjConn.iGen then: no table disconnected since */
};

/*
** The table named by argument 0, or NULL after reporting an error.  A
** name is resolved and its schema checked (ljTableFind) once per
** execution of the statement (auxdata, for a constant name), and the
** table of a temp or in-memory schema, which no other connection
** changes, only when the name differs from the last one resolved.
*/
static LjTable *fnTable(sqlite3_context *ctx, sqlite3_value **argv) {
  LjConn *pConn = (LjConn *)sqlite3_user_data(ctx);
  /* The type first: reading a blob as text would make it text. */
  int bText = sqlite3_value_type(argv[0]) == SQLITE_TEXT;
  const char *zArg = bText ? (const char *)sqlite3_value_text(argv[0]) : 0;
  FnResolved *pRes;
  LjTable *p;
  char *zErr = 0;
  int rc;
  if (zArg == 0) {
    sqlite3_result_error(ctx,
                         "the first argument must be the name of an "
                         "lmdb_journal table",
                         -1);
    return 0;
  }
  p = pConn->pLast;
  if (p && p->bLocal && strcmp(pConn->zLast, zArg) == 0 &&
      !ljEnvForked(p->pEnv)) {
    return p;
  }
  pRes = (FnResolved *)sqlite3_get_auxdata(ctx, 0);
  if (pRes && pRes->iGen == pConn->iGen && !ljEnvForked(pRes->p->pEnv)) {
    return pRes->p;
  }
  rc = ljTableFind(pConn, zArg, &p, &zErr);
  if (rc) {
    if (rc == SQLITE_NOMEM) {
      sqlite3_result_error_nomem(ctx);
    } else {
      sqlite3_result_error(ctx, zErr, -1);
      sqlite3_result_error_code(ctx, rc);
    }
    sqlite3_free(zErr);
    return 0;
  }
  if (strlen(zArg) < sizeof(pConn->zLast)) {
    pConn->pLast = p;
    memcpy(pConn->zLast, zArg, strlen(zArg) + 1);
  }
  pRes = sqlite3_malloc64(sizeof(*pRes));
  if (pRes) {
    pRes->p = p;
    pRes->iGen = pConn->iGen;
    sqlite3_set_auxdata(ctx, 0, pRes, sqlite3_free);
  }
  return p;
}

/*
** Functions that write refuse where SQLite would refuse an INSERT, with
** its error: on a read-only database (mode=ro, immutable=1, a read-only
** file), and -- for the destructive journal_truncate -- under PRAGMA
** query_only.  That flag has no C interface; reading it takes a statement
** (about 0.8 us, prepared per call: a statement kept open would make
** sqlite3_close fail), too dear for every journal_append.
*/
static int fnReadonly(sqlite3_context *ctx, LjTable *p, int bQueryOnly) {
  sqlite3 *db = p->pConn->db;
  int bRefuse = sqlite3_db_readonly(db, p->zDb) == 1;
  if (!bRefuse && bQueryOnly) {
    sqlite3_stmt *pStmt = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA query_only", -1, &pStmt, 0) ==
            SQLITE_OK &&
        sqlite3_step(pStmt) == SQLITE_ROW) {
      bRefuse = sqlite3_column_int(pStmt, 0);
    }
    sqlite3_finalize(pStmt);
  }
  if (bRefuse) {
    sqlite3_result_error(ctx, "attempt to write a readonly database", -1);
    sqlite3_result_error_code(ctx, SQLITE_READONLY);
  }
  return bRefuse;
}

static void fnError(sqlite3_context *ctx, int rc, char *zErr) {
  if (rc == SQLITE_NOMEM) {
    sqlite3_result_error_nomem(ctx);
  } else {
    sqlite3_result_error(ctx, zErr ? zErr : sqlite3_errstr(rc), -1);
    sqlite3_result_error_code(ctx, rc);
  }
  sqlite3_free(zErr);
}

static void fnAppend(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  LjTable *p = fnTable(ctx, argv);
  LjEvent ev;
  u8 aBuf[1024];
  const char *zActor;
  int nActor, rc;
  char *zErr = 0;
  i64 usStart = 0;
  int bSample;
  if (p == 0 || fnReadonly(ctx, p, 0)) return;
  rc = ljCheckActor(argv[1], "actor_id", &zActor, &nActor, &zErr);
  if (rc) {
    fnError(ctx, rc, zErr);
    return;
  }
  bSample = p->cfg.bMetrics &&
            (__atomic_load_n(&p->pEnv->m.nAppends, __ATOMIC_RELAXED) & 63) == 0;
  if (bSample) usStart = ljNowUs();
  rc = ljEventFromValues(p, zActor, nActor, argv[2], argc > 3 ? argv[3] : 0,
                         argc > 4 ? argv[4] : 0, argc > 5 ? argv[5] : 0, aBuf,
                         sizeof(aBuf), &ev, &zErr);
  if (rc == SQLITE_OK) {
    rc = ljSubmit(p->pClient, &ev, 1, p->cfg.eAppendMode == LJ_MODE_SYNC,
                  p->cfg.usSyncTimeout, &zErr);
  }
  if (ev.aRec != aBuf) sqlite3_free(ev.aRec);
  if (rc) {
    fnError(ctx, rc, zErr);
    return;
  }
  if (bSample) {
    LjMetrics *m = &p->pEnv->m;
    pthread_mutex_lock(&m->histMutex);
    ljHistAdd(&m->appendHist, (u64)(ljNowUs() - usStart));
    pthread_mutex_unlock(&m->histMutex);
  }
  sqlite3_result_int64(ctx, (i64)ev.seq);
}

static void fnSync(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  LjTable *p = fnTable(ctx, argv);
  i64 pos = 0;
  char *zErr = 0;
  int rc;
  (void)argc;
  if (p == 0) return;
  rc = ljSync(p->pClient, 1, p->cfg.usSyncTimeout,
              (const char *)sqlite3_value_text(argv[0]), &pos, &zErr);
  if (rc) {
    fnError(ctx, rc, zErr);
    return;
  }
  sqlite3_result_int64(ctx, pos);
}

static void fnHighestSeq(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  LjTable *p = fnTable(ctx, argv);
  const char *zActor;
  int nActor, rc;
  char *zErr = 0;
  i64 seq = 0;
  (void)argc;
  if (p == 0) return;
  rc = ljCheckActor(argv[1], "actor_id", &zActor, &nActor, &zErr);
  if (rc == SQLITE_OK) rc = ljHighestSeq(p->pEnv, zActor, nActor, &seq, &zErr);
  if (rc) {
    fnError(ctx, rc, zErr);
    return;
  }
  sqlite3_result_int64(ctx, seq);
}

static void fnTruncate(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  LjTable *p = fnTable(ctx, argv);
  const char *zActor;
  int nActor, rc;
  char *zErr = 0;
  i64 toSeq = -1, nDel = 0;
  (void)argc;
  if (p == 0 || fnReadonly(ctx, p, 1)) return;
  rc = ljCheckActor(argv[1], "actor_id", &zActor, &nActor, &zErr);
  if (rc == SQLITE_OK && sqlite3_value_type(argv[2]) != SQLITE_NULL) {
    toSeq = sqlite3_value_int64(argv[2]);
    if (sqlite3_value_numeric_type(argv[2]) != SQLITE_INTEGER || toSeq < 0) {
      zErr = sqlite3_mprintf(
          "to_seq must be a non-negative integer or NULL "
          "(NULL deletes every event)");
      rc = SQLITE_MISMATCH;
    }
  }
  if (rc == SQLITE_OK) {
    rc = ljTruncate(p->pClient, zActor, nActor, toSeq, p->cfg.usSyncTimeout,
                    &nDel, &zErr);
  }
  if (rc) {
    fnError(ctx, rc, zErr);
    return;
  }
  sqlite3_result_int64(ctx, nDel);
}

/* An integer argument >= 0, or (bNullOk) NULL, which leaves *pOut. */
static int fnIntArg(sqlite3_value *v, const char *zName, int bNullOk, i64 *pOut,
                    char **pzErr) {
  if (bNullOk && sqlite3_value_type(v) == SQLITE_NULL) return SQLITE_OK;
  if (sqlite3_value_numeric_type(v) != SQLITE_INTEGER ||
      sqlite3_value_int64(v) < 0) {
    *pzErr = sqlite3_mprintf("%s must be a non-negative integer%s", zName,
                             bNullOk ? " or NULL" : "");
    return SQLITE_MISMATCH;
  }
  *pOut = sqlite3_value_int64(v);
  return SQLITE_OK;
}

/* Bytes a value takes in a record (numbers: 8). */
static i64 fnValueBytes(sqlite3_value *v) {
  switch (sqlite3_value_type(v)) {
    case SQLITE_NULL: return 0;
    case SQLITE_INTEGER:
    case SQLITE_FLOAT: return 8;
    default: return sqlite3_value_bytes(v);
  }
}

/*
** journal_snapshot(T, actor_id, seq, state [, meta]).  The state is
** stored like an event's payload (storage class kept, compressed and
** checksummed alike); the same actor and seq overwrites.  Queued or
** committed per append_mode, like journal_append.
*/
static void fnSnapshot(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  LjTable *p = fnTable(ctx, argv);
  LjEvent ev;
  u8 aBuf[1024];
  const char *zActor;
  int nActor, rc;
  char *zErr = 0;
  i64 seq = 0, nByte;
  if (p == 0 || fnReadonly(ctx, p, 1)) return;
  rc = ljCheckActor(argv[1], "actor_id", &zActor, &nActor, &zErr);
  if (rc == SQLITE_OK) rc = fnIntArg(argv[2], "seq", 0, &seq, &zErr);
  nByte = fnValueBytes(argv[3]) + (argc > 4 ? fnValueBytes(argv[4]) : 0);
  if (rc == SQLITE_OK && nByte > p->cfg.nMaxValue) {
    zErr = sqlite3_mprintf(
        "state and meta of %lld bytes exceed "
        "max_value_size (%lld bytes)",
        nByte, p->cfg.nMaxValue);
    rc = SQLITE_TOOBIG;
  }
  if (rc) {
    fnError(ctx, rc, zErr);
    return;
  }
  rc = ljEventFromValues(p, zActor, nActor, argv[3], 0, argc > 4 ? argv[4] : 0,
                         0, aBuf, sizeof(aBuf), &ev, &zErr);
  if (rc == SQLITE_OK) {
    ev.seq = (u64)seq;
    rc = ljSnapshotSubmit(p->pClient, &ev, p->cfg.nSnapshotKeep,
                          p->cfg.eAppendMode == LJ_MODE_SYNC,
                          p->cfg.usSyncTimeout, &zErr);
  }
  if (ev.aRec != aBuf) sqlite3_free(ev.aRec);
  if (rc) {
    fnError(ctx, rc, zErr);
    return;
  }
  sqlite3_result_int64(ctx, seq);
}

/* journal_delete_snapshots(T, actor_id, max_seq [, max_ts [, min_seq [,
** min_ts]]]): the Akka selection criteria, inclusive; NULL bounds
** nothing. */
static void fnDeleteSnapshots(sqlite3_context *ctx, int argc,
                              sqlite3_value **argv) {
  LjTable *p = fnTable(ctx, argv);
  const char *zActor;
  int nActor, rc;
  char *zErr = 0;
  static const char *const azArg[] = {"max_seq", "max_ts", "min_seq", "min_ts"};
  i64 aSeq[2] = {0, INT64_MAX}, aTs[2] = {0, INT64_MAX}, nDel = 0;
  i64 *aOut[] = {&aSeq[1], &aTs[1], &aSeq[0], &aTs[0]};
  if (p == 0 || fnReadonly(ctx, p, 1)) return;
  rc = ljCheckActor(argv[1], "actor_id", &zActor, &nActor, &zErr);
  for (int i = 2; i < argc && rc == SQLITE_OK; i++) {
    rc = fnIntArg(argv[i], azArg[i - 2], 1, aOut[i - 2], &zErr);
  }
  if (rc == SQLITE_OK) {
    rc = ljSnapshotDelete(p->pClient, zActor, nActor, aSeq, aTs,
                          p->cfg.usSyncTimeout, &nDel, &zErr);
  }
  if (rc) {
    fnError(ctx, rc, zErr);
    return;
  }
  sqlite3_result_int64(ctx, nDel);
}

static void fnConfig(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  LjTable *p = fnTable(ctx, argv);
  char *z;
  (void)argc;
  if (p == 0) return;
  {
    LjConfig c = p->cfg; /* shallow: zPath is shared, not freed here */
    ljConfigTakeEnv(&c, &p->pEnv->cfg);
    z = ljConfigJson(&c, p->pEnv->zDir);
  }
  if (z == 0) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, z, -1, sqlite3_free);
  sqlite3_result_subtype(ctx, 'J');
}

static void jsonString(sqlite3_str *pStr, const char *z) {
  sqlite3_str_appendchar(pStr, 1, '"');
  for (; *z; z++) {
    unsigned char c = (unsigned char)*z;
    if (c == '"' || c == '\\') {
      sqlite3_str_appendchar(pStr, 1, '\\');
      sqlite3_str_appendchar(pStr, 1, (char)c);
    } else if (c < 0x20) {
      sqlite3_str_appendf(pStr, "\\u%04x", c);
    } else {
      sqlite3_str_appendchar(pStr, 1, (char)c);
    }
  }
  sqlite3_str_appendchar(pStr, 1, '"');
}

/* The "shipping" object of journal_health (ship.c says what it means). */
static void healthShipping(sqlite3_str *pStr, const LjShipInfo *si) {
  static const char *const azState[] = {"off", "standby", "active", "down"};
  sqlite3_str_appendf(pStr,
                      ",\"shipping\":{\"state\":\"%s\",\"shipped_pos\":%lld,"
                      "\"lag_events\":%lld,\"lag_ms\":%lld,"
                      "\"ack_wait_ms\":%lld,\"sent\":%llu,"
                      "\"errors\":%llu,\"restarts\":%llu,\"last_error\":",
                      azState[si->eState], si->shipPos, si->lagEvents,
                      si->lagMs, si->waitMs, (unsigned long long)si->nSent,
                      (unsigned long long)si->nErrors,
                      (unsigned long long)si->nRestarts);
  if (si->zError[0]) {
    jsonString(pStr, si->zError);
  } else {
    sqlite3_str_appendall(pStr, "null");
  }
  sqlite3_str_appendchar(pStr, 1, '}');
}

/* What journal_health checks beyond the metrics: a request stuck past
** sync_timeout, and a reader of any process pinning much of the map (at
** least LJ_PIN_MIN_TXNS commits behind, keeping over a quarter of
** map_used from reuse). */
#define LJ_PIN_MIN_TXNS 100
typedef struct HealthStuck HealthStuck;
struct HealthStuck {
  LjOldReader rd;
  int bRequests; /* no request older than sync_timeout */
  int bPinning;  /* no reader pinning much of the map */
};

static void healthStuck(LjTable *p, const LjWriterInfo *wi, double mapUsed,
                        HealthStuck *h) {
  if (ljOldestReaderAll(p->pEnv, &h->rd)) memset(&h->rd, 0, sizeof(h->rd));
  h->bRequests = wi->usOldestReq <= p->cfg.usSyncTimeout;
  h->bPinning = h->rd.bFound && h->rd.ageTxns >= LJ_PIN_MIN_TXNS &&
                (double)h->rd.nPinned * 4 > mapUsed;
}

/* "oldest_request_age_ms", "oldest_reader" (of any process). */
static void healthStuckJson(sqlite3_str *pStr, const LjWriterInfo *wi,
                            const HealthStuck *h) {
  sqlite3_str_appendf(pStr, ",\"oldest_request_age_ms\":%lld",
                      wi->usOldestReq / 1000);
  if (!h->rd.bFound) {
    sqlite3_str_appendall(pStr, ",\"oldest_reader\":null");
    return;
  }
  sqlite3_str_appendf(pStr,
                      ",\"oldest_reader\":{\"pid\":%d,\"this_process\":%s,"
                      "\"txnid\":%llu,\"age_txns\":%llu,\"pinned_bytes\":%lld}",
                      h->rd.pid, h->rd.bThisProcess ? "true" : "false",
                      (unsigned long long)h->rd.txnid,
                      (unsigned long long)h->rd.ageTxns, h->rd.nPinned);
}

/* "reasons": why status is not ok, one sentence per failed check. */
static void healthReasons(sqlite3_str *pStr, LjTable *p, const LjWriterInfo *wi,
                          const int aOk[6], i64 usOldest,
                          const HealthStuck *h) {
  char *az[8];
  int n = 0;
  if (!aOk[0]) az[n++] = sqlite3_mprintf("the writer is %s", wi->zState);
  if (!aOk[1]) az[n++] = sqlite3_mprintf("the map is over 90%% of map_max");
  if (!aOk[2]) az[n++] = sqlite3_mprintf("the queue is over 90%% full");
  if (!aOk[3]) {
    az[n++] = sqlite3_mprintf(
        "a read transaction of this process is %lldms old (txn_timeout "
        "%lldms)",
        usOldest / 1000, p->cfg.usTxnTimeout / 1000);
  }
  if (!aOk[4]) az[n++] = sqlite3_mprintf("the writer reported an error");
  if (!aOk[5]) {
    az[n++] = sqlite3_mprintf(
        "shipping is down, or an event handed to Kafka %dms ago is not "
        "acknowledged",
        LJ_SHIP_LAG_MAX_MS);
  }
  if (!h->bRequests) {
    az[n++] = sqlite3_mprintf(
        "a request has waited %lldms, past sync_timeout (%lldms): the "
        "writer is blocked (does another process hold the store's write "
        "lock?)",
        wi->usOldestReq / 1000, p->cfg.usSyncTimeout / 1000);
  }
  if (h->bPinning) {
    az[n++] = sqlite3_mprintf(
        "a read transaction of process %d%s is %llu commits old and keeps "
        "%lld bytes from reuse (over a quarter of map_used): the store grows "
        "until it ends",
        h->rd.pid, h->rd.bThisProcess ? " (this one)" : "",
        (unsigned long long)h->rd.ageTxns, h->rd.nPinned);
  }
  sqlite3_str_appendall(pStr, ",\"reasons\":[");
  for (int i = 0; i < n; i++) {
    if (i) sqlite3_str_appendchar(pStr, 1, ',');
    if (az[i])
      jsonString(pStr, az[i]);
    else
      sqlite3_str_appendall(pStr, "null");
    sqlite3_free(az[i]);
  }
  sqlite3_str_appendchar(pStr, 1, ']');
}

static void healthResult(sqlite3_context *ctx, sqlite3_str *pStr) {
  int rc = sqlite3_str_errcode(pStr);
  char *z = sqlite3_str_finish(pStr);
  if (rc || z == 0) {
    sqlite3_free(z);
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, z, -1, sqlite3_free);
  sqlite3_result_subtype(ctx, 'J');
}

/*
** journal_health(T).  "status" is derived from the checks listed in
** "checks": failed when the writer failed; degraded when the map is over
** 90% of map_max, the queue is over 90% full, a reader transaction is
** older than txn_timeout, the writer reported an error, shipping is
** down (no broker reachable, or the topic unreadable) or stuck: an event
** handed to the Kafka client LJ_SHIP_LAG_MAX_MS ago is still not
** acknowledged (a shipper merely behind the appends is not degraded; its
** lag_ms grows), a request has waited past sync_timeout, or a reader of
** any process pins much of the map (healthStuck).  "reasons" says which,
** in words.  One broker of three down is not degraded by itself: while
** every partition has a leader, acks=all still means every in-sync
** replica has the event, and the broker's outage is the cluster's alarm;
** a partition left without a leader holds its events back, and that is
** degraded after LJ_SHIP_LAG_MAX_MS.
*/
static void fnHealth(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  LjTable *p = fnTable(ctx, argv);
  LjMetricRow aRow[LJ_METRICS_MAX];
  LjWriterInfo wi;
  LjShipInfo si;
  HealthStuck hs;
  sqlite3_str *pStr;
  double mapSize = 0, mapUsed = 0, readers = 0, readersMax = 0, staged = 0;
  int n, i, aOk[6];
  i64 usOldest;
  const char *zStatus;
  (void)argc;
  if (p == 0) return;
  n = ljMetricsList(p->pEnv, aRow, LJ_METRICS_MAX);
  for (i = 0; i < n && i < LJ_METRICS_MAX; i++) {
    if (strcmp(aRow[i].zName, "map_size") == 0) mapSize = aRow[i].value;
    if (strcmp(aRow[i].zName, "map_used") == 0) mapUsed = aRow[i].value;
    if (strcmp(aRow[i].zName, "readers_used") == 0) readers = aRow[i].value;
    if (strcmp(aRow[i].zName, "readers_max") == 0) readersMax = aRow[i].value;
    if (strcmp(aRow[i].zName, "staged_events") == 0) staged = aRow[i].value;
  }
  ljWriterInfo(p->pEnv, &wi);
  usOldest = ljOldestReaderUs(p->pEnv);
  ljShipInfo(p->pEnv, &si);
  healthStuck(p, &wi, mapUsed, &hs);
  /* writer running, map, queue, readers, no writer error, shipping */
  aOk[0] = strcmp(wi.zState, "running") == 0;
  aOk[1] = 100.0 * mapUsed / (double)p->pEnv->cfg.szMapMax < 90.0;
  aOk[2] = wi.nQueue < (i64)p->pEnv->cfg.nQueueMax * 9 / 10;
  aOk[3] = usOldest <= p->cfg.usTxnTimeout;
  aOk[4] = wi.zLastError == 0;
  aOk[5] = si.eState != LJ_SHIPST_DOWN && si.waitMs <= LJ_SHIP_LAG_MAX_MS;
  zStatus = !aOk[0] ? "failed"
            : (!aOk[1] || !aOk[2] || !aOk[3] || !aOk[4] || !aOk[5] ||
               !hs.bRequests || hs.bPinning)
                ? "degraded"
                : "ok";
  pStr = sqlite3_str_new(0);
  sqlite3_str_appendf(pStr, "{\"status\":\"%s\",\"path\":", zStatus);
  jsonString(pStr, p->pEnv->zDir);
  sqlite3_str_appendf(pStr, ",\"writer\":\"%s\",\"queue_depth\":%lld",
                      wi.zState, wi.nQueue);
  sqlite3_str_appendf(pStr,
                      ",\"map_size\":%.0f,\"map_used\":%.0f,"
                      "\"map_used_pct\":%.1f,\"map_max\":%lld",
                      mapSize, mapUsed,
                      mapSize > 0 ? 100.0 * mapUsed / mapSize : 0.0,
                      p->pEnv->cfg.szMapMax);
  sqlite3_str_appendf(pStr, ",\"readers_used\":%.0f,\"readers_max\":%.0f",
                      readers, readersMax);
  sqlite3_str_appendf(pStr, ",\"oldest_reader_age_ms\":%lld", usOldest / 1000);
  healthStuckJson(pStr, &wi, &hs);
  sqlite3_str_appendf(pStr, ",\"stale_readers_cleared\":%llu",
                      (unsigned long long)__atomic_load_n(
                          &p->pEnv->m.nStaleReaders, __ATOMIC_RELAXED));
  sqlite3_str_appendf(pStr, ",\"staged_events\":%.0f", staged);
  /* Failed async appends not yet cleared from journal_errors: a count to
  ** alert on, not a check (conflicting writers may expect some). */
  sqlite3_str_appendf(pStr,
                      ",\"async_errors_unread\":%lld,"
                      "\"async_errors_dropped\":%llu",
                      ljErrLogCount(p->pEnv),
                      (unsigned long long)__atomic_load_n(
                          &p->pEnv->m.nAsyncDropped, __ATOMIC_RELAXED));
  sqlite3_str_appendf(pStr, ",\"last_error\":");
  if (wi.zLastError) {
    jsonString(pStr, wi.zLastError);
  } else {
    sqlite3_str_appendall(pStr, "null");
  }
  sqlite3_str_appendf(
      pStr,
      ",\"durability\":\"%s\",\"durability_commit\":\"%s\","
      "\"os_crash_risk\":\"%s\",\"last_pos\":%lld,"
      "\"durable_pos\":%lld",
      ljDurabilityName(p->cfg.eDurability),
      p->cfg.eDurability == LJ_DUR_FULL ? "sync" : "nometasync",
      p->cfg.eDurability == LJ_DUR_FULL
          ? "none"
          : "may lose commits after durable_pos; never corrupts",
      wi.lastPos, wi.durablePos);
  if (si.eState != LJ_SHIPST_OFF) healthShipping(pStr, &si);
  sqlite3_str_appendf(
      pStr,
      ",\"checks\":{\"writer_running\":%s,\"map_below_90pct_"
      "of_max\":%s,\"queue_below_90pct\":%s,\"readers_within_"
      "txn_timeout\":%s,\"no_writer_error\":%s,\"requests_within_sync_"
      "timeout\":%s,\"no_reader_pinning_map\":%s",
      aOk[0] ? "true" : "false", aOk[1] ? "true" : "false",
      aOk[2] ? "true" : "false", aOk[3] ? "true" : "false",
      aOk[4] ? "true" : "false", hs.bRequests ? "true" : "false",
      hs.bPinning ? "false" : "true");
  if (si.eState != LJ_SHIPST_OFF) {
    sqlite3_str_appendf(pStr, ",\"shipping_acked_within_%ds\":%s",
                        LJ_SHIP_LAG_MAX_MS / 1000, aOk[5] ? "true" : "false");
  }
  sqlite3_str_appendchar(pStr, 1, '}');
  healthReasons(pStr, p, &wi, aOk, usOldest, &hs);
  sqlite3_str_appendchar(pStr, 1, '}');
  sqlite3_free(wi.zLastError);
  healthResult(ctx, pStr);
}

/* journal_errors_clear(T [, up_to_id]) -> entries removed (errors.c lists
** them); without up_to_id, or NULL, every entry. */
static void fnErrorsClear(sqlite3_context *ctx, int argc,
                          sqlite3_value **argv) {
  i64 iUpTo = INT64_MAX;
  LjTable *p;
  if (argc > 1 && sqlite3_value_type(argv[1]) != SQLITE_NULL) {
    if (sqlite3_value_type(argv[1]) != SQLITE_INTEGER) {
      sqlite3_result_error(ctx,
                           "up_to_id must be an integer (an id of "
                           "journal_errors) or NULL (every entry)",
                           -1);
      sqlite3_result_error_code(ctx, SQLITE_MISMATCH);
      return;
    }
    iUpTo = sqlite3_value_int64(argv[1]);
  }
  p = fnTable(ctx, argv);
  if (p) sqlite3_result_int64(ctx, ljErrLogClear(p->pEnv, iUpTo));
}

static void fnPrometheus(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  LjTable *p = fnTable(ctx, argv);
  char *z;
  (void)argc;
  if (p == 0) return;
  z = ljMetricsPrometheus(p->pEnv);
  if (z == 0) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, z, -1, sqlite3_free);
}

static void fnVersion(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_text(ctx, LMDBJOURNAL_VERSION, -1, SQLITE_STATIC);
}

static void fnDebug(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  char *z;
  (void)argc;
  (void)argv;
  z = sqlite3_mprintf(
      "lmdbjournal %s (format %d), built %s %s with SQLite %s headers and "
      "%s; running on SQLite %s; crc32c %s",
      LMDBJOURNAL_VERSION, LMDBJOURNAL_FORMAT_VERSION, __DATE__, __TIME__,
      SQLITE_VERSION, MDB_VERSION_STRING, sqlite3_libversion(),
      ljCrc32c(0, "123456789", 9) == 0xE3069283u ? "ok" : "MISMATCH");
  if (z == 0) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, z, -1, sqlite3_free);
}

/* journal_verify(T): the store walked and checked (verify.c). */
static void fnVerify(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  LjTable *p = fnTable(ctx, argv);
  char *zJson = 0, *zErr = 0;
  int rc;
  (void)argc;
  if (p == 0) return;
  rc = ljVerify(p->pEnv, &zJson, &zErr);
  if (rc) {
    fnError(ctx, rc, zErr);
    return;
  }
  sqlite3_result_text(ctx, zJson, -1, sqlite3_free);
  sqlite3_result_subtype(ctx, 'J');
}

/* journal_backup(T, dest_dir [, compact]): a hot copy (backup.c). */
static void fnBackup(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  LjTable *p = fnTable(ctx, argv);
  const char *zDest;
  char *zErr = 0;
  i64 nBytes = 0;
  int rc, bCompact = argc < 3 || sqlite3_value_int(argv[2]) != 0;
  if (p == 0) return;
  zDest = (const char *)sqlite3_value_text(argv[1]);
  if (sqlite3_value_type(argv[1]) != SQLITE_TEXT || zDest == 0) {
    sqlite3_result_error(ctx, "journal_backup: dest_dir must be a path", -1);
    return;
  }
  rc = ljBackup(p->pEnv, zDest, bCompact, &nBytes, &zErr);
  if (rc) {
    fnError(ctx, rc, zErr);
    return;
  }
  sqlite3_result_int64(ctx, nBytes);
}

int ljRegisterFunctions(sqlite3 *db, LjConn *pConn) {
  static const struct {
    const char *zName;
    int nArgMin, nArgMax;
    int flags;
    void (*xFunc)(sqlite3_context *, int, sqlite3_value **);
  } aFunc[] = {
      {"journal_append", 3, 6, SQLITE_DIRECTONLY, fnAppend},
      {"journal_sync", 1, 1, SQLITE_DIRECTONLY, fnSync},
      {"journal_highest_seq", 2, 2, 0, fnHighestSeq},
      {"journal_truncate", 3, 3, SQLITE_DIRECTONLY, fnTruncate},
      {"journal_snapshot", 4, 5, SQLITE_DIRECTONLY, fnSnapshot},
      {"journal_delete_snapshots", 3, 6, SQLITE_DIRECTONLY, fnDeleteSnapshots},
      {"journal_health", 1, 1, LJ_RESULT_SUBTYPE, fnHealth},
      {"journal_config", 1, 1, LJ_RESULT_SUBTYPE, fnConfig},
      {"journal_metrics_prometheus", 1, 1, 0, fnPrometheus},
      {"journal_version", 0, 0, SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
       fnVersion},
      {"journal_debug", 0, 0, SQLITE_INNOCUOUS, fnDebug},
      /* verification and backup */
      {"journal_verify", 1, 1, LJ_RESULT_SUBTYPE, fnVerify},
      {"journal_backup", 2, 3, SQLITE_DIRECTONLY, fnBackup},
      {"journal_errors_clear", 1, 2, SQLITE_DIRECTONLY, fnErrorsClear},
  };
  int rc = SQLITE_OK;
  for (size_t i = 0; i < sizeof(aFunc) / sizeof(aFunc[0]) && rc == SQLITE_OK;
       i++) {
    for (int n = aFunc[i].nArgMin; n <= aFunc[i].nArgMax && rc == SQLITE_OK;
         n++) {
      rc = sqlite3_create_function_v2(db, aFunc[i].zName, n,
                                      SQLITE_UTF8 | aFunc[i].flags, pConn,
                                      aFunc[i].xFunc, 0, 0, 0);
    }
  }
  return rc;
}
