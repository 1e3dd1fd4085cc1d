/*
** compact.c -- compaction: an idle writer rewrites the small runs of an
** actor that lie in many places of the file as a few large runs, put one
** after the other.
**
** Why.  A merge (stage.c) writes, for every actor of the batches it
** merges, the events the stage gathered for it: over many actors that is
** a few dozen events per actor per merge, and every merge puts them
** somewhere else in the file.  An actor appended to across 20 merges has
** its history in 20 places, and a replay pays a read or a page fault for
** each (scan.c, "Cold runs"); direct commits of a few events each leave
** the same trail in leaf pages.  Putting an actor's history back together
** when it is appended to would cost every append (the merge would read
** and rewrite the actor's last run each time); compaction does it once,
** when the writer has nothing else to do.
**
** What.  A sweep walks the events db in key order, a step (one
** transaction) at a time.  A run is settled when it holds LJ_RUN_MAX
** events or fills half of LJ_COMPACT_RUN_PAGES pages; consecutive
** unsettled runs of an actor form a stretch.  A stretch is rewritten when
** it lies in LJ_COMPACT_EXTENTS or more places of the file (its extents:
** runs on the same or adjacent pages count as one), smaller on average
** than a compacted run (a few long extents read as fast as one), and its
** first run is at most half of it (so that a large last run is not
** rewritten for a few events after it).  Its runs are copied out,
** checked, deleted, and their records put again as runs of up to
** LJ_COMPACT_RUN_PAGES pages (and LJ_COMPACT_RUN_MAX events: a run is read
** whole when cold) in key order, in one transaction, so LMDB gives them
** neighbouring pages.
** Records are copied as they are: pos, ts and checksum do not change.
** The pos, ts and tag indexes name events by (actor, seq), which do not
** change either, so they need no update; readers in other transactions
** keep seeing the runs they started with (LMDB's copy on write).  A
** stretch whose runs do not parse, or do not continue each other, is
** left as it is, for verification to report.
**
** Where a run lies.  LMDB does not say which page holds a value.  But an
** overflow value starts LJ_OVERFLOW_HDR bytes into its first page, a
** value in a leaf page cannot start there (the page and node headers and
** the 16-byte key come first), and every value a transaction reads lies
** in the one map, whose address is page-aligned: a value's address alone
** gives the pages it covers, relative to any other's, without touching
** them.
**
** When.  The writer (writer.c) runs a step once it has been idle for
** LJ_COMPACT_IDLE_US with the stage merged, and the next while no
** request is queued; a step rewrites at most LJ_COMPACT_STEP_BYTES and
** looks at most at LJ_COMPACT_STEP_RUNS runs, so an append that comes
** waits for one step at most.  A step first looks in a read transaction
** (bLook): only when it finds a stretch to rewrite does the writer begin
** a write transaction, from there -- a sweep over a store that needs
** nothing never takes LMDB's write lock, so it never waits for another
** process's writes either.  A commit that writes events makes a sweep
** due; a sweep that ends with none due leaves the store alone.
**
** Which actors.  A process's first sweep walks the whole events db (the
** store may come from a process that never compacted).  Later sweeps
** visit only the actors this process wrote since the sweep before began
** (the writer lists them as it commits, ljCompactNote), seeking from one
** to the next: so a writer that idles between appends to a large store
** looks at what it wrote, not at every leaf page again.  More than
** LJ_COMPACT_LIST_MAX actors written make the next sweep a full one.
** Actors only other processes wrote are left to their writers.
*/
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A run of the stretch being looked at. */
typedef struct CompactRun CompactRun;
struct CompactRun {
  u64 seq0;        /* key */
  u32 n;           /* events */
  const u8 *aData; /* value, where the transaction reads it */
  size_t nData;
  size_t off; /* ... and where it is copied in the step's buffer */
};

/* One step: the cursor, the stretch being gathered, and what it did. */
typedef struct Step Step;
struct Step {
  MDB_txn *txn;
  MDB_cursor *c;
  MDB_val k, v; /* the cursor's entry (mrc 0) */
  int mrc;      /* of the cursor's last move */
  size_t psize;
  size_t nSettled; /* a run of this many bytes is settled */
  size_t nLooked;  /* runs looked at */
  size_t nDone;    /* bytes rewritten */
  u64 nRunsOut;    /* runs rewritten */
  /* the stretch */
  u64 num;
  CompactRun *a;
  size_t n, nAlloc;
  size_t nByte;
  u32 nExtent;
  uintptr_t pgLast; /* last page of the stretch's last run */
  u8 *aBuf;         /* copies of its runs */
  size_t nBufAlloc;
  LjRunOut *pOut;
  /* a sweep over listed actors: the list, and the next one to visit */
  const LjCompact *pC;
  size_t iSweep;
  u8 aSeek[LJ_EVKEY];
};

/* The pages value v covers, by its address (see the top of the file). */
static void runPages(const Step *t, const MDB_val *v, uintptr_t *pFirst,
                     uintptr_t *pLast) {
  uintptr_t a = (uintptr_t)v->mv_data;
  if (a % t->psize == LJ_OVERFLOW_HDR) {
    *pFirst = (a - LJ_OVERFLOW_HDR) / t->psize;
    *pLast = *pFirst + (LJ_OVERFLOW_HDR + v->mv_size - 1) / t->psize;
  } else {
    *pFirst = *pLast = a / t->psize; /* in a leaf page */
  }
}

static void stepNext(Step *t) {
  t->mrc = mdb_cursor_get(t->c, &t->k, &t->v, MDB_NEXT);
  t->nLooked++;
}

/* The first listed actor at or after num, by binary search (nSweep when
** none): where a step of the sweep begins. */
static size_t sweepFrom(const LjCompact *pC, u64 num) {
  size_t lo = 0, hi = pC->nSweep;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (pC->aSweep[mid] < num) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

/* In a sweep over listed actors, put the cursor on the runs of the next
** listed actor at or after it; past the last one, end the step's walk
** (mrc MDB_NOTFOUND: the sweep is over).  Every actor in a full sweep. */
static void stepListed(Step *t) {
  const LjCompact *pC = t->pC;
  while (t->mrc == 0 && !pC->bSweepAll) {
    u64 num = t->k.mv_size == LJ_EVKEY ? ljGet64(t->k.mv_data) : 0;
    while (t->iSweep < pC->nSweep && pC->aSweep[t->iSweep] < num) t->iSweep++;
    if (t->iSweep == pC->nSweep) {
      t->mrc = MDB_NOTFOUND;
    } else if (pC->aSweep[t->iSweep] != num) {
      ljEvKey(t->aSeek, pC->aSweep[t->iSweep], 0);
      t->k.mv_data = t->aSeek;
      t->k.mv_size = LJ_EVKEY;
      t->mrc = mdb_cursor_get(t->c, &t->k, &t->v, MDB_SET_RANGE);
      t->nLooked++;
    } else {
      break;
    }
  }
}

/* Add the cursor's run to the stretch if it belongs there (same actor,
** unsettled, continuing the stretch): 1 if it was added (the cursor
** moved on), 0 if it ends the stretch.  A settled run is stepped over.
** ENOMEM when the array cannot grow. */
static int stretchAdd(Step *t) {
  u64 num, seq;
  u32 n;
  uintptr_t pg0, pg1;
  CompactRun *r;
  if (t->k.mv_size != LJ_EVKEY) {
    if (t->n == 0) stepNext(t); /* not a run key: not ours to rewrite */
    return 0;
  }
  num = ljGet64(t->k.mv_data);
  seq = ljGet64((const u8 *)t->k.mv_data + LJ_NUMKEY);
  n = ljRunCount(t->v.mv_data, t->v.mv_size);
  if (t->n > 0 &&
      (num != t->num || seq != t->a[t->n - 1].seq0 + t->a[t->n - 1].n)) {
    return 0;
  }
  if (n == 0 || n >= LJ_RUN_MAX || t->v.mv_size >= t->nSettled) {
    if (t->n == 0) stepNext(t); /* settled: not part of any stretch */
    return 0;
  }
  if (t->n == t->nAlloc) {
    size_t nNew = t->nAlloc ? t->nAlloc * 2 : 64;
    CompactRun *aNew = sqlite3_realloc64(t->a, nNew * sizeof(*aNew));
    if (aNew == 0) return ENOMEM;
    t->a = aNew;
    t->nAlloc = nNew;
  }
  runPages(t, &t->v, &pg0, &pg1);
  if (t->n == 0 || pg0 < t->pgLast || pg0 > t->pgLast + 1) t->nExtent++;
  t->pgLast = pg1;
  r = &t->a[t->n++];
  t->num = num;
  r->seq0 = seq;
  r->n = n;
  r->aData = t->v.mv_data;
  r->nData = t->v.mv_size;
  t->nByte += t->v.mv_size;
  stepNext(t);
  return 1;
}

/* Gather the stretch starting at the cursor (which moves past it). */
static int stretchGather(Step *t) {
  int rc;
  t->n = 0;
  t->nByte = 0;
  t->nExtent = 0;
  while (t->mrc == 0 && t->nByte < LJ_COMPACT_STEP_BYTES &&
         t->nLooked < LJ_COMPACT_STEP_RUNS) {
    if (t->n == 0) {
      stepListed(t);
      if (t->mrc) break;
    }
    rc = stretchAdd(t);
    if (rc == ENOMEM) return rc;
    if (rc == 0 && t->n > 0) break;
  }
  return t->mrc == MDB_NOTFOUND ? 0 : t->mrc;
}

/* Whether the stretch is worth rewriting (see the top of the file). */
static int stretchScattered(const Step *t) {
  return t->n >= 2 && t->nExtent >= LJ_COMPACT_EXTENTS &&
         t->nByte < (size_t)t->nExtent * t->pOut->nMax &&
         t->a[0].nData * 2 <= t->nByte;
}

/* Copy the stretch's runs into the step's buffer and check that every
** record of each parses: 0, ENOMEM, or MDB_CORRUPTED. */
static int stretchCopy(Step *t) {
  size_t off = 0;
  if (t->nByte > t->nBufAlloc) {
    u8 *aNew = sqlite3_realloc64(t->aBuf, t->nByte);
    if (aNew == 0) return ENOMEM;
    t->aBuf = aNew;
    t->nBufAlloc = t->nByte;
  }
  for (size_t i = 0; i < t->n; i++) {
    CompactRun *r = &t->a[i];
    memcpy(t->aBuf + off, r->aData, r->nData);
    r->off = off;
    off += r->nData;
    for (u32 x = 0; x < r->n; x++) {
      const u8 *aRec;
      u32 nRec;
      if (ljRunRecord(t->aBuf + r->off, r->nData, x, &aRec, &nRec)) {
        return MDB_CORRUPTED;
      }
    }
  }
  return 0;
}

/* Rewrite the gathered stretch, then put the cursor after it. */
static int stretchRewrite(Step *t, MDB_dbi dbi) {
  LjRunOut *o = t->pOut;
  u8 aKey[LJ_EVKEY];
  MDB_val k;
  u64 seqEnd = t->a[t->n - 1].seq0 + t->a[t->n - 1].n;
  int mrc = stretchCopy(t);
  if (mrc == MDB_CORRUPTED) return 0; /* left for verification */
  k.mv_data = aKey;
  k.mv_size = LJ_EVKEY;
  for (size_t i = 0; i < t->n && mrc == 0; i++) {
    ljEvKey(aKey, t->num, t->a[i].seq0);
    mrc = mdb_del(t->txn, dbi, &k, 0);
  }
  o->num = o->numLast = t->num;
  o->seq0 = o->seqLast = t->a[0].seq0;
  o->n = 0;
  o->nByte = 0;
  for (size_t i = 0; i < t->n && mrc == 0; i++) {
    MDB_val run;
    run.mv_data = t->aBuf + t->a[i].off;
    run.mv_size = t->a[i].nData;
    mrc = ljRunOutAdd(o, &run);
  }
  if (mrc == 0) mrc = ljRunOutFlush(o);
  if (mrc) return mrc;
  assert(o->seq0 == seqEnd); /* every event of the stretch was put */
  t->nDone += t->nByte;
  t->nRunsOut += t->n;
  ljEvKey(aKey, t->num, seqEnd);
  t->mrc = mdb_cursor_get(t->c, &k, &t->v, MDB_SET_RANGE);
  t->k = k;
  return 0;
}

int ljCompactStep(LjEnv *pEnv, LjCompact *pC, MDB_txn *txn, int bLook,
                  int *pbWrote) {
  Step t;
  MDB_stat st;
  MDB_dbi dbi = pEnv->aDbi[LJ_DB_EVENTS];
  u8 aKey[LJ_EVKEY];
  int mrc;
  memset(&t, 0, sizeof(t));
  t.txn = txn;
  mrc = mdb_env_stat(pEnv->env, &st);
  if (mrc) return mrc;
  t.psize = st.ms_psize;
  t.pOut = sqlite3_malloc64(sizeof(*t.pOut));
  if (t.pOut == 0) return ENOMEM;
  memset(t.pOut, 0, offsetof(LjRunOut, apRec));
  t.pOut->nMax = t.psize * LJ_COMPACT_RUN_PAGES - LJ_OVERFLOW_HDR;
  t.pOut->nMaxEv = LJ_COMPACT_RUN_MAX;
  t.nSettled = t.pOut->nMax / 2;
  t.pC = pC;
  t.iSweep = sweepFrom(pC, pC->num);
  mrc = mdb_cursor_open(txn, dbi, &t.c);
  if (mrc == 0) {
    t.pOut->c = t.c;
    ljEvKey(aKey, pC->num, pC->seq);
    t.k.mv_data = aKey;
    t.k.mv_size = LJ_EVKEY;
    t.mrc = mdb_cursor_get(t.c, &t.k, &t.v, MDB_SET_RANGE);
  }
  while (mrc == 0 && t.mrc == 0 && t.nDone < LJ_COMPACT_STEP_BYTES &&
         t.nLooked < LJ_COMPACT_STEP_RUNS) {
    mrc = stretchGather(&t);
    if (mrc || !stretchScattered(&t)) continue;
    if (bLook) {
      /* Found one: the step that rewrites starts there. */
      pC->numNext = t.num;
      pC->seqNext = t.a[0].seq0;
      *pbWrote = 1;
      break;
    }
    mrc = stretchRewrite(&t, dbi);
  }
  if (mrc == 0 && t.mrc != 0 && t.mrc != MDB_NOTFOUND) mrc = t.mrc;
  if (mrc == 0 && !(bLook && *pbWrote)) {
    /* Where the next step goes on: the entry not looked at yet. */
    if (t.mrc == 0 && t.k.mv_size == LJ_EVKEY) {
      pC->numNext = ljGet64(t.k.mv_data);
      pC->seqNext = ljGet64((const u8 *)t.k.mv_data + LJ_NUMKEY);
    } else {
      pC->numNext = 0; /* the sweep is over */
      pC->seqNext = 0;
    }
    pC->nStepRuns = t.nRunsOut;
    if (t.nRunsOut > 0) *pbWrote = 1;
  }
  if (t.c) mdb_cursor_close(t.c);
  sqlite3_free(t.pOut);
  sqlite3_free(t.a);
  sqlite3_free(t.aBuf);
  return mrc;
}

/**************************************************************************
** The actors a sweep visits
*/
void ljCompactNote(LjCompact *pC, u64 num) {
  if (pC->bListAll || num == 0) return;
  if (pC->nList == pC->nListAlloc) {
    size_t nNew = pC->nListAlloc ? pC->nListAlloc * 2 : 256;
    u64 *aNew = nNew > LJ_COMPACT_LIST_MAX
                    ? 0
                    : sqlite3_realloc64(pC->aList, nNew * sizeof(u64));
    if (aNew == 0) {
      /* Too many (or no memory): the next sweep visits every actor. */
      pC->bListAll = 1;
      return;
    }
    pC->aList = aNew;
    pC->nListAlloc = nNew;
  }
  pC->aList[pC->nList++] = num;
}

static int cmpU64(const void *a, const void *b) {
  u64 x = *(const u64 *)a, y = *(const u64 *)b;
  return x < y ? -1 : x > y;
}

int ljCompactBegin(LjCompact *pC) {
  u64 *a = pC->aSweep;
  size_t nAlloc = pC->nSweepAlloc;
  /* The list becomes the sweep's; writes from now on go to a new one. */
  pC->aSweep = pC->aList;
  pC->nSweepAlloc = pC->nListAlloc;
  pC->nSweep = pC->nList;
  pC->bSweepAll = pC->bListAll;
  pC->aList = a;
  pC->nListAlloc = nAlloc;
  pC->nList = 0;
  pC->bListAll = 0;
  pC->listGen++;
  if (pC->aSweep) qsort(pC->aSweep, pC->nSweep, sizeof(u64), cmpU64);
  pC->bDue = 0;
  pC->seq = 0;
  pC->num = pC->bSweepAll ? 1 : pC->nSweep ? pC->aSweep[0] : 0;
  return pC->num != 0;
}

void ljCompactFree(LjCompact *pC) {
  sqlite3_free(pC->aList);
  sqlite3_free(pC->aSweep);
  pC->aList = pC->aSweep = 0;
  pC->nList = pC->nSweep = pC->nListAlloc = pC->nSweepAlloc = 0;
}
