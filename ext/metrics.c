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

#define ROWK(zN, bC, v)            \
  if (n < nRow) {                  \
    aRow[n].zName = zN;            \
    aRow[n].value = (double)(v);   \
    aRow[n].bCounter = bC;         \
  }                                \
  n++;
#define COUNTER(zN, v) ROWK(zN, 1, v)
#define ROW(zN, v) ROWK(zN, 0, v)
  COUNTER("appends", __atomic_load_n(&m->nAppends, __ATOMIC_RELAXED));
  COUNTER("commits", nCommits);
  ROW("batch_size_avg", nCommits ? (double)nEv / (double)nCommits : 0.0);
  COUNTER("bytes_written", __atomic_load_n(&m->nBytesWritten, __ATOMIC_RELAXED));
  COUNTER("bytes_read", __atomic_load_n(&m->nBytesRead, __ATOMIC_RELAXED));
  COUNTER("rows_read", __atomic_load_n(&m->nRowsRead, __ATOMIC_RELAXED));
  COUNTER("errors", __atomic_load_n(&m->nErrors, __ATOMIC_RELAXED));
  COUNTER("retries", __atomic_load_n(&m->nRetries, __ATOMIC_RELAXED));
  COUNTER("conflicts", __atomic_load_n(&m->nConflicts, __ATOMIC_RELAXED));
  COUNTER("map_resizes", __atomic_load_n(&m->nMapResizes, __ATOMIC_RELAXED));
  COUNTER("stale_readers_cleared", __atomic_load_n(&m->nStaleReaders, __ATOMIC_RELAXED));
  ROW("staged_batches", nStageBatch);
  ROW("staged_events", nStageEv);
  ROW("staged_bytes", nStageByte);
  COUNTER("stage_merges", __atomic_load_n(&m->nMerges, __ATOMIC_RELAXED));
  COUNTER("stage_merged_events", __atomic_load_n(&m->nMergedEvents, __ATOMIC_RELAXED));
  ROW("queue_depth", __atomic_load_n(&m->nQueued, __ATOMIC_RELAXED));
  ROW("last_pos", __atomic_load_n(&m->lastPos, __ATOMIC_RELAXED));
  ROW("durable_pos", __atomic_load_n(&m->durablePos, __ATOMIC_RELAXED));
  ROW("map_size", info.me_mapsize);
  ROW("map_used", (info.me_last_pgno + 1) * (u64)st.ms_psize);
  ROW("readers_used", info.me_numreaders);
  ROW("readers_max", info.me_maxreaders);
  ROW("open_dbs", LJ_DB_COUNT);
  ROW("commit_latency_p50_us", ljHistQuantile(&commit, 0.50));
  ROW("commit_latency_p99_us", ljHistQuantile(&commit, 0.99));
  ROW("commit_latency_p999_us", ljHistQuantile(&commit, 0.999));
  ROW("append_latency_p99_us", ljHistQuantile(&append, 0.99));
#undef ROW
#undef COUNTER
#undef ROWK
  return n;
}
