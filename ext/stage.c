/*
** stage.c -- staging: batches spread over many actors are put whole into
** the stage db, and merged into the events db later, in one sorted pass.
**
** Why.  The events db holds one run per actor per commit (layout.c).  A
** batch of 1,000 events over 1,000 actors would cost 1,000 B-tree puts,
** each copying a leaf page into the transaction: appends over many actors
** would be several times slower than over few.  Staged, the same batch is
** one MDB_APPEND put of one value (a "staged batch": the runs the batch
** would have written, behind a directory sorted by actor number; drawing
** in layout.c), keyed by its first pos like its manifest.
**
** When.  A batch is staged when it has at least LJ_STAGE_ACTORS actors
** and fewer than LJ_STAGE_DENSITY events per actor (ljStageChoose), and
** every batch is staged while the stage is not empty (the invariant
** below) -- except that a large dense batch behind a small stage merges
** the stage first and goes direct, so that a dense stream keeps its
** runs.  There is no fallback to direct puts for batches over very many
** actors, even when a merge gathers only a few events per actor: with
** every commit waiting for its data pages to be synced, a thousand
** direct puts into a thousand leaf pages cost more than staging them and
** merging 512k events in one transaction (internal.h, LJ_STAGE_DENSITY).
**
** The merge.  Once the stage holds any of the LJ_STAGE_MERGE_* amounts,
** when the writer idles for LJ_STAGE_IDLE_US, and when a process that
** wrote closes the store, the writer merges the oldest staged batches
** (ljStageMerge, in a transaction of its own): their directory entries
** are sorted by actor number (a stable radix sort, so each actor's runs
** stay in pos order), every actor's staged runs become runs of the events
** db that fill LJ_MERGE_RUN_PAGES overflow pages, put in key order, and
** the merged batches are deleted.  Records are copied as they are: pos,
** ts and checksum do not change.  A truncation merges the whole stage
** first (it works on runs only).
**
** The invariant readers rely on.  While the stage is not empty every
** commit goes to it, and a merge takes the oldest batches; so an actor's
** events are its runs in the events db followed by its runs in the staged
** batches, in pos order, and every pos at or after the stage's first key
** is staged.  Readers (journal_table.c) consult both, with the lookups
** below; ljActorLoad finds an actor's highest seq in the stage first.
*/
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

/**************************************************************************
** Reading staged batches.
*/
u32 ljStageActors(const MDB_val *v) {
  return v->mv_size < LJ_STAGE_HDR ? 0 : ljStageHeadActors(v->mv_data);
}

u32 ljStageEvents(const MDB_val *v) {
  return v->mv_size < LJ_STAGE_HDR ? 0 : ljStageHeadEvents(v->mv_data);
}

/* Directory entry i of a staged batch: the actor number, the seq of its
** first event and its run. */
int ljStageDir(const MDB_val *v, u32 i, u64 *pNum, u64 *pSeq0, MDB_val *pRun) {
  const u8 *a = (const u8 *)v->mv_data;
  u32 nAct = ljStageActors(v), beg, end;
  size_t nBody;
  if (i >= nAct || v->mv_size < ljStageBodyOff(nAct)) return MDB_CORRUPTED;
  nBody = v->mv_size - ljStageBodyOff(nAct);
  beg = i ? ljStageDirEnd(a, i - 1) : 0;
  end = ljStageDirEnd(a, i);
  if (beg > end || end > nBody) return MDB_CORRUPTED;
  *pNum = ljStageDirNum(a, i);
  *pSeq0 = ljStageDirSeq(a, i);
  pRun->mv_data = (void *)(a + ljStageBodyOff(nAct) + beg);
  pRun->mv_size = end - beg;
  return 0;
}

/* The directory entry of actor num in a staged batch, by binary search;
** MDB_NOTFOUND when the batch has no event of it. */
int ljStageFind(const MDB_val *v, u64 num, u32 *pi) {
  const u8 *a = (const u8 *)v->mv_data;
  u32 lo = 0, hi = ljStageActors(v);
  if (v->mv_size < ljStageBodyOff(hi)) return MDB_CORRUPTED;
  while (lo < hi) {
    u32 mid = lo + (hi - lo) / 2;
    u64 x = ljStageDirNum(a, mid);
    if (x == num) {
      *pi = mid;
      return 0;
    }
    if (x < num)
      lo = mid + 1;
    else
      hi = mid;
  }
  return MDB_NOTFOUND;
}

/*
** The staged record of event (num, seq) at pos, with c a cursor on the
** stage db.  MDB_NOTFOUND when it is not staged.
*/
int ljStageRecord(MDB_cursor *c, u64 pos, u64 num, u64 seq, MDB_val *pRec) {
  MDB_val k, v, run;
  u64 n0, s0;
  u32 i, nRec;
  const u8 *aRec;
  u8 aKey[LJ_POSKEY];
  int mrc;
  ljPut64(aKey, pos);
  k.mv_data = aKey;
  k.mv_size = LJ_POSKEY;
  mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  if (mrc == 0 && ljGet64(k.mv_data) != pos)
    mrc = mdb_cursor_get(c, &k, &v, MDB_PREV);
  else if (mrc == MDB_NOTFOUND)
    mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
  if (mrc) return mrc;
  if (k.mv_size != LJ_POSKEY || ljGet64(k.mv_data) > pos) return MDB_NOTFOUND;
  mrc = ljStageFind(&v, num, &i);
  if (mrc == 0) mrc = ljStageDir(&v, i, &n0, &s0, &run);
  if (mrc) return mrc;
  if (seq < s0 || seq - s0 >= ljRunCount(run.mv_data, run.mv_size))
    return MDB_NOTFOUND;
  mrc = ljRunRecord(run.mv_data, run.mv_size, (u32)(seq - s0), &aRec, &nRec);
  if (mrc) return mrc;
  pRec->mv_data = (void *)aRec;
  pRec->mv_size = nRec;
  return 0;
}

/* How much is staged: batches, events and bytes. */
int ljStageTotals(LjEnv *p, MDB_txn *txn, u64 *pnBatch, u64 *pnEv,
                  u64 *pnByte) {
  MDB_cursor *c;
  MDB_val k, v;
  int mrc = mdb_cursor_open(txn, p->aDbi[LJ_DB_STAGE], &c);
  *pnBatch = *pnEv = *pnByte = 0;
  if (mrc) return mrc;
  for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    (*pnBatch)++;
    *pnEv += ljStageEvents(&v);
    *pnByte += v.mv_size;
  }
  mdb_cursor_close(c);
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}

int ljStageLoad(LjEnv *p, MDB_txn *txn, LjStage *pSt) {
  return ljStageTotals(p, txn, &pSt->nEnt, &pSt->nEv, &pSt->nBytes);
}

/* An actor's last staged seq (0 if it has none staged): the newest batch
** holding it, searched from the end. */
static int stageLast(LjEnv *p, MDB_txn *txn, u64 num, u64 *pLast) {
  MDB_cursor *c;
  MDB_val k, v, run;
  u64 n0, s0;
  u32 i;
  int mrc = mdb_cursor_open(txn, p->aDbi[LJ_DB_STAGE], &c);
  if (mrc) return mrc;
  *pLast = 0;
  for (mrc = mdb_cursor_get(c, &k, &v, MDB_LAST); mrc == 0;
       mrc = mdb_cursor_get(c, &k, &v, MDB_PREV)) {
    mrc = ljStageFind(&v, num, &i);
    if (mrc == MDB_NOTFOUND) continue;
    if (mrc == 0) mrc = ljStageDir(&v, i, &n0, &s0, &run);
    if (mrc == 0) *pLast = s0 + ljRunCount(run.mv_data, run.mv_size) - 1;
    break;
  }
  mdb_cursor_close(c);
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* An actor's last seq in the events db (0 if none). */
static int runsLast(LjEnv *p, MDB_txn *txn, u64 num, u64 *pLast) {
  MDB_cursor *c;
  MDB_val k, v;
  u8 aKey[LJ_EVKEY];
  int mrc = mdb_cursor_open(txn, p->aDbi[LJ_DB_EVENTS], &c);
  if (mrc) return mrc;
  *pLast = 0;
  ljEvKey(aKey, num + 1, 0);
  k.mv_data = aKey;
  k.mv_size = LJ_EVKEY;
  mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  if (mrc == 0)
    mrc = mdb_cursor_get(c, &k, &v, MDB_PREV);
  else if (mrc == MDB_NOTFOUND)
    mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
  if (mrc == 0 && k.mv_size == LJ_EVKEY && ljEvKeyNum(k.mv_data) == num) {
    u32 n = ljRunCount(v.mv_data, v.mv_size);
    *pLast = ljEvKeySeq(k.mv_data) + (n ? n - 1 : 0);
  }
  mdb_cursor_close(c);
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/*
** An actor's state as of a snapshot.  Called with the gate held.
*/
int ljActorLoad(LjEnv *p, MDB_txn *txn, const u8 *zActor, int nActor, u64 *pNum,
                u64 *pHighest, u64 *pFloor) {
  MDB_val k, v;
  int mrc;
  u64 num, floor, last = 0;
  k.mv_data = (void *)zActor;
  k.mv_size = (size_t)nActor;
  mrc = mdb_get(txn, p->aDbi[LJ_DB_ACTORS], &k, &v);
  if (mrc == MDB_NOTFOUND) {
    *pNum = *pFloor = 0;
    if (pHighest) *pHighest = 0;
    return 0;
  }
  if (mrc == 0) mrc = ljActorValGet(&v, &num, &floor);
  if (mrc) return mrc;
  *pNum = num;
  *pFloor = floor;
  if (pHighest == 0) return 0;
  /* Staged events come after the runs: the stage decides when it has
  ** any of this actor's. */
  mrc = stageLast(p, txn, num, &last);
  if (mrc == 0 && last == 0) mrc = runsLast(p, txn, num, &last);
  if (mrc) return mrc;
  *pHighest = last > floor ? last : floor;
  return 0;
}

/**************************************************************************
** Putting a batch.
*/

/* Events of the sorted batch ap[i..n) that belong to ap[i]'s actor. */
static size_t actorSpan(LjEvent *const *ap, size_t i, size_t n) {
  size_t j = i;
  while (j < n && ap[j]->pActor == ap[i]->pActor) j++;
  return j - i;
}

int ljStageChoose(LjEnv *p, LjStage *pSt, MDB_txn *txn, size_t n, size_t nActor,
                  int *pbStage) {
  int bStage =
      nActor >= LJ_STAGE_ACTORS && n < (size_t)LJ_STAGE_DENSITY * nActor;
  if (!bStage && pSt->nEnt > 0) {
    /* A large dense batch behind a stage: a small stage (a sparse batch
    ** or a few, say at start-up) is merged first, so that a dense stream
    ** keeps its direct runs.  Otherwise the stage takes the batch (and is
    ** merged when due), as every commit must go to the stage while it is
    ** open. */
    if (n >= LJ_STAGE_FLUSH_BATCH && pSt->nEv <= LJ_STAGE_FLUSH_EVENTS) {
      int mrc = ljStageMerge(p, pSt, txn, UINT64_MAX);
      if (mrc) return mrc;
    } else {
      bStage = 1;
    }
  }
  *pbStage = bStage;
  return 0;
}

/*
** Put the sorted batch ap[0..n) (n events over nActor actors) into the
** stage as one value keyed by its first pos.  The directory is sorted by
** actor number (readers search it), each actor's run holds consecutive
** seqs.
*/
int ljStagePut(LjEnv *p, LjStage *pSt, MDB_txn *txn, LjEvent *const *ap,
               size_t n, size_t nActor, u64 pos0) {
  MDB_val k, v;
  size_t i, nByte = ljStageBodyOff((u32)nActor), off = 0;
  u32 iDir = 0;
  u8 aPos[LJ_POSKEY], *z;
  int mrc;
  for (i = 0; i < n; i += actorSpan(ap, i, n)) {
    nByte += ljRunSize(&ap[i], actorSpan(ap, i, n));
  }
  ljPut64(aPos, pos0);
  k.mv_data = aPos;
  k.mv_size = LJ_POSKEY;
  v.mv_data = 0;
  v.mv_size = nByte;
  mrc = mdb_put(txn, p->aDbi[LJ_DB_STAGE], &k, &v, MDB_APPEND | MDB_RESERVE);
  if (mrc) return mrc;
  z = (u8 *)v.mv_data;
  ljStageSetHead(z, (u32)nActor, (u32)n);
  for (i = 0; i < n; iDir++) {
    size_t nA = actorSpan(ap, i, n);
    assert(iDir < nActor);
    assert(iDir == 0 || ap[i]->pActor->num > ljStageDirNum(z, iDir - 1));
    ljRunFill(&z[ljStageBodyOff((u32)nActor) + off], &ap[i], nA);
    off += ljRunSize(&ap[i], nA);
    ljStageSetDir(z, iDir, ap[i]->pActor->num, ap[i]->seq, (u32)off);
    i += nA;
  }
  assert(iDir == nActor);
  pSt->nEnt++;
  pSt->nEv += n;
  pSt->nBytes += nByte;
  return 0;
}

/* Is the stage big enough to merge? */
int ljStageDue(const LjStage *pSt) {
  return pSt->nEv >= LJ_STAGE_MERGE_EVENTS ||
         pSt->nEnt >= LJ_STAGE_MERGE_BATCHES ||
         pSt->nBytes >= LJ_STAGE_MERGE_BYTES;
}

/**************************************************************************
** Merging.
*/

/* One actor's staged run inside the merge: batch iEnt, directory entry
** iDir. */
typedef struct StageItem StageItem;
struct StageItem {
  u64 num;
  u32 iEnt;
  u32 iDir;
};

/*
** Sort items by actor number, keeping batch order among equal numbers:
** a stable LSD radix sort, 11 bits per pass, over the bits the largest
** number uses.  The result is in a[] or aTmp[]; returned.
*/
static StageItem *stageSort(StageItem *a, StageItem *aTmp, size_t n,
                            u64 numMax) {
  enum { BITS = 11, BUCKETS = 1 << BITS };
  size_t aCnt[BUCKETS];
  for (int shift = 0; shift < 64 && (numMax >> shift) != 0; shift += BITS) {
    size_t sum = 0;
    StageItem *t;
    memset(aCnt, 0, sizeof(aCnt));
    for (size_t i = 0; i < n; i++) aCnt[(a[i].num >> shift) & (BUCKETS - 1)]++;
    for (size_t d = 0; d < BUCKETS; d++) {
      size_t c = aCnt[d];
      aCnt[d] = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; i++) {
      aTmp[aCnt[(a[i].num >> shift) & (BUCKETS - 1)]++] = a[i];
    }
    t = a;
    a = aTmp;
    aTmp = t;
  }
  return a;
}

int ljRunOutFlush(LjRunOut *r) {
  MDB_val k, v;
  u8 aKey[LJ_EVKEY], *z;
  size_t off = 0;
  int mrc;
  if (r->n == 0) return 0;
  /* Runs of an actor never overlap: each starts after the previous.  Only
  ** a damaged stage breaks that: refuse it rather than write over a run. */
  if (!(r->num > r->numLast ||
        (r->num == r->numLast && r->seq0 >= r->seqLast))) {
    return MDB_CORRUPTED;
  }
  ljEvKey(aKey, r->num, r->seq0);
  k.mv_data = aKey;
  k.mv_size = LJ_EVKEY;
  v.mv_data = 0;
  v.mv_size = LJ_RUN_HEAD(r->n) + r->nByte;
  mrc = mdb_cursor_put(r->c, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE);
  if (mrc) return mrc;
  z = (u8 *)v.mv_data;
  ljRunStart(z, r->n);
  for (u32 x = 0; x < r->n; x++) {
    memcpy(&z[LJ_RUN_HEAD(r->n) + off], r->apRec[x], r->anRec[x]);
    off += r->anRec[x];
    ljRunSetEnd(z, x, (u32)off);
  }
  r->seq0 += r->n;
  r->numLast = r->num;
  r->seqLast = r->seq0;
  r->n = 0;
  r->nByte = 0;
  return 0;
}

int ljRunOutAdd(LjRunOut *r, const MDB_val *pRun) {
  u32 nRun = ljRunCount(pRun->mv_data, pRun->mv_size);
  int mrc = 0;
  for (u32 x = 0; x < nRun && mrc == 0; x++) {
    const u8 *a;
    u32 n;
    mrc = ljRunRecord(pRun->mv_data, pRun->mv_size, x, &a, &n);
    if (mrc) break;
    if (r->n == r->nMaxEv ||
        (r->n > 0 && LJ_RUN_HEAD(r->n + 1) + r->nByte + n > r->nMax)) {
      mrc = ljRunOutFlush(r);
      if (mrc) break;
    }
    r->apRec[r->n] = a;
    r->anRec[r->n++] = n;
    r->nByte += n;
  }
  return mrc;
}

/* Write the sorted items as runs of up to LJ_RUN_MAX events and
** LJ_MERGE_RUN_PAGES pages, in key order. */
static int mergeRuns(LjEnv *pEnv, MDB_txn *txn, const MDB_val *aEnt,
                     const StageItem *aItem, size_t nItem) {
  LjRunOut *r = sqlite3_malloc64(sizeof(*r));
  MDB_stat st;
  int mrc;
  if (r == 0) return ENOMEM;
  memset(r, 0, offsetof(LjRunOut, apRec));
  /* Merged runs fill LJ_MERGE_RUN_PAGES overflow pages exactly. */
  mdb_env_stat(pEnv->env, &st);
  r->nMax = (size_t)st.ms_psize * LJ_MERGE_RUN_PAGES - LJ_OVERFLOW_HDR;
  r->nMaxEv = LJ_RUN_MAX;
  mrc = mdb_cursor_open(txn, pEnv->aDbi[LJ_DB_EVENTS], &r->c);
  for (size_t i = 0; i < nItem && mrc == 0; i++) {
    MDB_val run;
    u64 num, s0;
    assert(i == 0 || aItem[i].num >= aItem[i - 1].num);
    mrc = ljStageDir(&aEnt[aItem[i].iEnt], aItem[i].iDir, &num, &s0, &run);
    if (mrc) break;
    if (i == 0 || num != r->num) {
      mrc = ljRunOutFlush(r);
      r->num = num;
      r->seq0 = s0;
    } else if (s0 != r->seq0 + r->n) {
      mrc = MDB_CORRUPTED; /* staged runs of an actor must continue */
    }
    if (mrc == 0) mrc = ljRunOutAdd(r, &run);
  }
  if (mrc == 0) mrc = ljRunOutFlush(r);
  if (r->c) mdb_cursor_close(r->c);
  sqlite3_free(r);
  return mrc;
}

/* The oldest staged batches within a merge budget, and their runs. */
typedef struct MergeSet MergeSet;
struct MergeSet {
  MDB_val *aEnt; /* the batches */
  size_t nEnt, nEntAlloc;
  StageItem *aItem; /* their directory entries; second half: scratch */
  size_t nItem, nItemAlloc;
  u64 nEv, nByte, numMax;
};

/* Size the arrays: the batches within the budget (at least one) and
** their directory entries, twice (the second half is the sort's
** scratch). */
static int mergeSize(MDB_cursor *cSt, u64 nBudget, MergeSet *pSet) {
  MDB_val k, v;
  u64 nEv = 0;
  int mrc;
  for (mrc = mdb_cursor_get(cSt, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cSt, &k, &v, MDB_NEXT)) {
    if (pSet->nEntAlloc > 0 && nEv + ljStageEvents(&v) > nBudget) break;
    pSet->nEntAlloc++;
    pSet->nItemAlloc += 2 * (size_t)ljStageActors(&v);
    nEv += ljStageEvents(&v);
  }
  if (mrc == MDB_NOTFOUND) mrc = 0;
  if (mrc == 0 && pSet->nEntAlloc > 0) {
    size_t nItem = pSet->nItemAlloc ? pSet->nItemAlloc : 1;
    pSet->aEnt = sqlite3_malloc64(sizeof(MDB_val) * pSet->nEntAlloc);
    pSet->aItem = sqlite3_malloc64(sizeof(StageItem) * nItem);
    if (pSet->aEnt == 0 || pSet->aItem == 0) mrc = ENOMEM;
  }
  return mrc;
}

/* Collect the batches sized by mergeSize and list their directories. */
static int mergeCollect(MDB_cursor *cSt, MergeSet *pSet) {
  MDB_val k, v;
  int mrc;
  for (mrc = mdb_cursor_get(cSt, &k, &v, MDB_FIRST);
       mrc == 0 && pSet->nEnt < pSet->nEntAlloc;
       mrc = mdb_cursor_get(cSt, &k, &v, MDB_NEXT)) {
    u32 nAct = ljStageActors(&v);
    if (2 * (pSet->nItem + nAct) > pSet->nItemAlloc) {
      return MDB_CORRUPTED; /* changed under us: cannot be */
    }
    for (u32 d = 0; d < nAct && mrc == 0; d++) {
      StageItem *pItem = &pSet->aItem[pSet->nItem++];
      u64 s0;
      MDB_val run;
      mrc = ljStageDir(&v, d, &pItem->num, &s0, &run);
      if (pItem->num > pSet->numMax) pSet->numMax = pItem->num;
      pItem->iEnt = (u32)pSet->nEnt;
      pItem->iDir = d;
    }
    if (mrc) break;
    pSet->aEnt[pSet->nEnt++] = v;
    pSet->nEv += ljStageEvents(&v);
    pSet->nByte += v.mv_size;
    if (pSet->nEnt == pSet->nEntAlloc) break;
  }
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* Delete the merged batches (the oldest: first in the stage). */
static int mergeDrop(LjEnv *pEnv, LjStage *pSt, MDB_txn *txn, MDB_cursor *cSt,
                     size_t nEnt) {
  MDB_val k, v;
  int mrc = 0;
  if (nEnt > 0 && nEnt == pSt->nEnt) {
    return mdb_drop(txn, pEnv->aDbi[LJ_DB_STAGE], 0);
  }
  for (size_t i = 0; i < nEnt && mrc == 0; i++) {
    mrc = mdb_cursor_get(cSt, &k, &v, MDB_FIRST);
    if (mrc == 0) mrc = mdb_cursor_del(cSt, 0);
  }
  return mrc;
}

/*
** Merge the oldest staged batches, up to nBudget events (at least one
** batch), into the events db and delete them from the stage: every
** actor's staged runs, in pos order, become runs put in key order.  What
** stays staged is newer than what was merged, so the invariant holds.
*/
int ljStageMerge(LjEnv *pEnv, LjStage *pSt, MDB_txn *txn, u64 nBudget) {
  MDB_cursor *cSt = 0;
  MergeSet set;
  int mrc;

  memset(&set, 0, sizeof(set));
  mrc = mdb_cursor_open(txn, pEnv->aDbi[LJ_DB_STAGE], &cSt);
  if (mrc) return mrc;
  mrc = mergeSize(cSt, nBudget, &set);
  if (mrc == 0 && set.nEntAlloc > 0) mrc = mergeCollect(cSt, &set);
  if (mrc == 0 && set.nItem > 0) {
    StageItem *aSorted = stageSort(set.aItem, &set.aItem[set.nItemAlloc / 2],
                                   set.nItem, set.numMax);
    mrc = mergeRuns(pEnv, txn, set.aEnt, aSorted, set.nItem);
  }
  if (mrc == 0) mrc = mergeDrop(pEnv, pSt, txn, cSt, set.nEnt);
  mdb_cursor_close(cSt);
  if (mrc == 0) {
    __atomic_add_fetch(&pEnv->m.nMerges, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&pEnv->m.nMergedEvents, set.nEv, __ATOMIC_RELAXED);
    pSt->nEnt -= set.nEnt;
    pSt->nEv -= set.nEv;
    pSt->nBytes -= set.nByte;
  }
  sqlite3_free(set.aItem);
  sqlite3_free(set.aEnt);
  return mrc;
}
