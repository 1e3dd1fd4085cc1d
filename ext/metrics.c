/*
** metrics.c -- counters, latency histograms and their exposition.
**
** Counters live in LjEnv.m and are bumped with relaxed atomics by whoever
** does the work (writer, cursors, functions); the writer publishes its
** gauges (queue depth, last and durable pos) there too, so this file reads
** them without calling into the writer.  The bucket of a latency is
** computed by ljHistAdd (internal.h).  Latencies go into
** log-linear histograms: 8 buckets per power of two, so a quantile is
** reported within 12.5% of the true value whatever its magnitude, in a
** fixed 2 KiB per histogram.
*/
#include "internal.h"

#include <math.h>
#include <string.h>

/* Upper edge of a bucket: the value reported for a quantile in it. */
static u64 histUpper(int i) {
  int e;
  u64 sub;
  if (i < LJ_HIST_SUB) return (u64)i;
  e = (i - LJ_HIST_SUB) / LJ_HIST_SUB + 3;
  sub = (u64)((i - LJ_HIST_SUB) % LJ_HIST_SUB);
  return ((LJ_HIST_SUB + sub + 1) << (e - 3)) - 1;
}

u64 ljHistQuantile(const LjHist *p, double q) {
  u64 nRank, nSeen = 0;
  int i;
  if (p->nTotal == 0) return 0;
  nRank = (u64)(q * (double)p->nTotal);
  if (nRank >= p->nTotal) nRank = p->nTotal - 1;
  for (i = 0; i < LJ_HIST_BUCKETS; i++) {
    nSeen += p->aCount[i];
    if (nSeen > nRank) return histUpper(i);
  }
  return histUpper(LJ_HIST_BUCKETS - 1);
}

/*
** Every metric of an environment as (name, value), in a fixed
** order; journal_health and the Prometheus text are both built from it.
*/
int ljMetricsList(LjEnv *pEnv, LjMetricRow *aRow, int nRow) {
  LjMetrics *m = &pEnv->m;
  MDB_envinfo info;
  MDB_stat st;
  LjHist commit, append;
  int n = 0;
  u64 nStageBatch = 0, nStageEv = 0, nStageByte = 0;
  LjOldReader rd;
  u64 nCommits = __atomic_load_n(&m->nCommits, __ATOMIC_RELAXED);
  u64 nEv = __atomic_load_n(&m->nCommitEvents, __ATOMIC_RELAXED);

  pthread_mutex_lock(&m->histMutex);
  commit = m->commitHist;
  append = m->appendHist;
  pthread_mutex_unlock(&m->histMutex);
  ljGateEnter(pEnv);
  mdb_env_info(pEnv->env, &info);
  mdb_env_stat(pEnv->env, &st);
  {
    MDB_txn *txn;
    if (ljReadBegin(pEnv, &txn) == 0) {
      ljStageTotals(pEnv, txn, &nStageBatch, &nStageEv, &nStageByte);
      mdb_txn_abort(txn);
    }
  }
  ljGateLeave(pEnv);
  if (ljOldestReaderAll(pEnv, &rd)) memset(&rd, 0, sizeof(rd));

#define ROWK(zN, bC, v)          \
  if (n < nRow) {                \
    aRow[n].zName = zN;          \
    aRow[n].value = (double)(v); \
    aRow[n].bCounter = bC;       \
  }                              \
  n++;
#define COUNTER(zN, v) ROWK(zN, 1, v)
#define ROW(zN, v)     ROWK(zN, 0, v)
  COUNTER("appends", __atomic_load_n(&m->nAppends, __ATOMIC_RELAXED));
  COUNTER("commits", nCommits);
  ROW("batch_size_avg", nCommits ? (double)nEv / (double)nCommits : 0.0);
  COUNTER("bytes_written",
          __atomic_load_n(&m->nBytesWritten, __ATOMIC_RELAXED));
  COUNTER("bytes_read", __atomic_load_n(&m->nBytesRead, __ATOMIC_RELAXED));
  COUNTER("rows_read", __atomic_load_n(&m->nRowsRead, __ATOMIC_RELAXED));
  COUNTER("runs_read_cold", __atomic_load_n(&m->nColdRuns, __ATOMIC_RELAXED));
  COUNTER("errors", __atomic_load_n(&m->nErrors, __ATOMIC_RELAXED));
  COUNTER("retries", __atomic_load_n(&m->nRetries, __ATOMIC_RELAXED));
  COUNTER("conflicts", __atomic_load_n(&m->nConflicts, __ATOMIC_RELAXED));
  COUNTER("async_errors", __atomic_load_n(&m->nAsyncErrors, __ATOMIC_RELAXED));
  COUNTER("async_errors_dropped",
          __atomic_load_n(&m->nAsyncDropped, __ATOMIC_RELAXED));
  ROW("async_errors_unread", ljErrLogCount(pEnv));
  COUNTER("map_resizes", __atomic_load_n(&m->nMapResizes, __ATOMIC_RELAXED));
  COUNTER("stale_readers_cleared",
          __atomic_load_n(&m->nStaleReaders, __ATOMIC_RELAXED));
  COUNTER("env_reopens", __atomic_load_n(&m->nReopens, __ATOMIC_RELAXED));
  ROW("staged_batches", nStageBatch);
  ROW("staged_events", nStageEv);
  ROW("staged_bytes", nStageByte);
  COUNTER("stage_merges", __atomic_load_n(&m->nMerges, __ATOMIC_RELAXED));
  COUNTER("stage_merged_events",
          __atomic_load_n(&m->nMergedEvents, __ATOMIC_RELAXED));
  COUNTER("runs_compacted",
          __atomic_load_n(&m->nCompactRuns, __ATOMIC_RELAXED));
  ROW("compaction_pending", __atomic_load_n(&m->bCompactDue, __ATOMIC_RELAXED));
  ROW("queue_depth", __atomic_load_n(&m->nQueued, __ATOMIC_RELAXED));
  ROW("last_pos", __atomic_load_n(&m->lastPos, __ATOMIC_RELAXED));
  ROW("durable_pos", __atomic_load_n(&m->durablePos, __ATOMIC_RELAXED));
  ROW("map_size", info.me_mapsize);
  ROW("map_used", (info.me_last_pgno + 1) * (u64)st.ms_psize);
  ROW("readers_used", info.me_numreaders);
  ROW("readers_max", info.me_maxreaders);
  ROW("open_dbs", LJ_DB_COUNT);
  ROW("oldest_reader_age_txns", rd.bFound ? rd.ageTxns : 0);
  ROW("oldest_reader_pinned_bytes", rd.bFound ? rd.nPinned : 0);
  ROW("commit_latency_p50_us", ljHistQuantile(&commit, 0.50));
  ROW("commit_latency_p99_us", ljHistQuantile(&commit, 0.99));
  ROW("commit_latency_p999_us", ljHistQuantile(&commit, 0.999));
  ROW("append_latency_p99_us", ljHistQuantile(&append, 0.99));
  if (__atomic_load_n(&m->eShipState, __ATOMIC_RELAXED) != LJ_SHIPST_OFF) {
    LjShipInfo si;
    ljShipInfo(pEnv, &si);
    ROW("ship_active", si.eState == LJ_SHIPST_ACTIVE);
    ROW("ship_pos", si.shipPos);
    ROW("ship_lag_events", si.lagEvents);
    ROW("ship_lag_ms", si.lagMs);
    COUNTER("ship_sent", si.nSent);
    COUNTER("ship_errors", si.nErrors);
    COUNTER("ship_restarts", si.nRestarts);
  }
#undef ROW
#undef COUNTER
#undef ROWK
  return n;
}

/*
** Prometheus text exposition (format 0.0.4) of ljMetricsList.  Names get
** the "lmdbjournal_" prefix and counters the "_total" suffix; every sample
** carries the store directory as its path label.  The help texts are kept
** here, next to the only place that prints them; a metric without one is
** shown with its bare name (test/metrics.test pins that none lacks one).
*/
static const struct {
  const char *zName;
  const char *zHelp;
} aMetricHelp[] = {
    {"appends", "Events accepted into the write queue."},
    {"commits", "Write transactions committed."},
    {"batch_size_avg", "Events per commit, on average."},
    {"bytes_written", "Record bytes committed."},
    {"bytes_read", "Record bytes returned by journal tables."},
    {"rows_read", "Rows returned by journal tables."},
    {"runs_read_cold",
     "Runs of events a replay read with pread, not through the map."},
    {"errors", "Requests the writer failed."},
    {"retries", "Batches retried after a transient error."},
    {"conflicts", "Sequence conflicts with another process."},
    {"async_errors",
     "Async appends and snapshots that failed (listed by journal_errors)."},
    {"async_errors_dropped",
     "Failed async writes journal_errors could not keep (errors_max)."},
    {"async_errors_unread",
     "Failed async writes journal_errors holds (not yet cleared)."},
    {"map_resizes", "LMDB map growths."},
    {"stale_readers_cleared", "Reader slots of dead processes reclaimed."},
    {"env_reopens", "Environments opened again after LMDB failed them."},
    {"staged_batches", "Batches in the stage."},
    {"staged_events", "Events in the stage, not yet merged."},
    {"staged_bytes", "Bytes in the stage."},
    {"stage_merges", "Merges of the stage into the events database."},
    {"stage_merged_events", "Events moved by stage merges."},
    {"runs_compacted",
     "Scattered runs compaction rewrote as fewer neighbouring ones."},
    {"compaction_pending",
     "1 while a compaction sweep is due or under way, else 0."},
    {"queue_depth", "Events queued and not yet committed."},
    {"last_pos", "Highest pos committed as seen by this process."},
    {"durable_pos", "Highest pos known durable."},
    {"map_size", "Current LMDB map size in bytes."},
    {"map_used", "Bytes of the LMDB map in use."},
    {"readers_used", "LMDB reader slots in use."},
    {"readers_max", "LMDB reader slots available."},
    {"open_dbs", "Named databases of the store."},
    {"oldest_reader_age_txns",
     "Commits since the oldest read transaction of any process began."},
    {"oldest_reader_pinned_bytes",
     "Bytes freed since the oldest read transaction of any process began, "
     "not reusable while it lives."},
    {"commit_latency_p50_us", "Commit time, median, microseconds."},
    {"commit_latency_p99_us", "Commit time, 99th percentile, microseconds."},
    {"commit_latency_p999_us", "Commit time, 99.9th percentile, microseconds."},
    {"append_latency_p99_us",
     "journal_append call time, 99th percentile, microseconds."},
    {"ship_active", "1 when this process ships to Kafka (holds ship.lock)."},
    {"ship_pos", "Every event up to this pos is acknowledged by Kafka."},
    {"ship_lag_events", "Committed events not yet acknowledged by Kafka."},
    {"ship_lag_ms", "Age of the oldest unacknowledged event, ms."},
    {"ship_sent", "Events acknowledged by Kafka."},
    {"ship_errors", "Kafka client and delivery errors."},
    {"ship_restarts", "Producer sessions started (each resumes from Kafka)."},
};

/* The shipper's published state (metrics.c reads LjEnv.m, never ship.c).
** The lag counts pos values committed (as far as this process has seen)
** and not acknowledged. */
void ljShipInfo(LjEnv *pEnv, LjShipInfo *p) {
  LjMetrics *m = &pEnv->m;
  i64 last = __atomic_load_n(&m->lastPos, __ATOMIC_RELAXED);
  i64 seen = __atomic_load_n(&m->shipSeenPos, __ATOMIC_RELAXED);
  i64 oldest;
  p->eState = __atomic_load_n(&m->eShipState, __ATOMIC_RELAXED);
  p->shipPos = __atomic_load_n(&m->shipPos, __ATOMIC_RELAXED);
  p->lagEvents = (last > seen ? last : seen) - p->shipPos;
  if (p->lagEvents < 0 || p->eState == LJ_SHIPST_STANDBY) p->lagEvents = 0;
  /* Computed now, not when the shipper last looked: a shipper waiting on
  ** the cluster publishes nothing meanwhile. */
  oldest = __atomic_load_n(&m->shipOldestTs, __ATOMIC_RELAXED);
  p->lagMs = 0;
  p->waitMs = 0;
  if (oldest > 0 && p->eState == LJ_SHIPST_ACTIVE) {
    i64 now = ljNowMs();
    p->lagMs = now - oldest;
    p->waitMs = now - __atomic_load_n(&m->shipOldestSent, __ATOMIC_RELAXED);
  }
  if (p->lagMs < 0) p->lagMs = 0;
  if (p->waitMs < 0) p->waitMs = 0;
  p->nSent = __atomic_load_n(&m->nShipSent, __ATOMIC_RELAXED);
  p->nErrors = __atomic_load_n(&m->nShipErrors, __ATOMIC_RELAXED);
  p->nRestarts = __atomic_load_n(&m->nShipRestarts, __ATOMIC_RELAXED);
  pthread_mutex_lock(&m->histMutex);
  memcpy(p->zError, m->zShipError, sizeof(p->zError));
  pthread_mutex_unlock(&m->histMutex);
}

const char *ljMetricHelp(const char *zName) {
  for (size_t i = 0; i < sizeof(aMetricHelp) / sizeof(aMetricHelp[0]); i++) {
    if (strcmp(aMetricHelp[i].zName, zName) == 0) return aMetricHelp[i].zHelp;
  }
  return 0;
}

/* A label value: backslash, double quote and newline escaped. */
static void promLabel(sqlite3_str *pStr, const char *z) {
  for (; *z; z++) {
    if (*z == '\\' || *z == '"') {
      sqlite3_str_appendchar(pStr, 1, '\\');
      sqlite3_str_appendchar(pStr, 1, *z);
    } else if (*z == '\n') {
      sqlite3_str_appendall(pStr, "\\n");
    } else {
      sqlite3_str_appendchar(pStr, 1, *z);
    }
  }
}

char *ljMetricsPrometheus(LjEnv *pEnv) {
  LjMetricRow aRow[LJ_METRICS_MAX];
  sqlite3_str *pStr = sqlite3_str_new(0);
  int n = ljMetricsList(pEnv, aRow, LJ_METRICS_MAX);
  if (n > LJ_METRICS_MAX) n = LJ_METRICS_MAX;
  for (int i = 0; i < n; i++) {
    const LjMetricRow *r = &aRow[i];
    const char *zHelp = ljMetricHelp(r->zName);
    const char *zSuffix = r->bCounter ? "_total" : "";
    sqlite3_str_appendf(pStr, "# HELP lmdbjournal_%s%s %s\n", r->zName, zSuffix,
                        zHelp ? zHelp : r->zName);
    sqlite3_str_appendf(pStr, "# TYPE lmdbjournal_%s%s %s\n", r->zName, zSuffix,
                        r->bCounter ? "counter" : "gauge");
    sqlite3_str_appendf(pStr, "lmdbjournal_%s%s{path=\"", r->zName, zSuffix);
    promLabel(pStr, pEnv->zDir);
    /* Whole values (all but averages) print as integers; %.17g keeps the
    ** rest exact. */
    if (r->value == floor(r->value) && fabs(r->value) < 9007199254740992.0) {
      sqlite3_str_appendf(pStr, "\"} %lld\n", (i64)r->value);
    } else {
      sqlite3_str_appendf(pStr, "\"} %.17g\n", r->value);
    }
  }
  if (sqlite3_str_errcode(pStr)) {
    sqlite3_free(sqlite3_str_finish(pStr));
    return 0;
  }
  return sqlite3_str_finish(pStr);
}
