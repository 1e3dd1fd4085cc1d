/*
** put.c -- what a write transaction writes: actor numbers, runs (or a
** staged batch, stage.c), the manifest, the tag index; and truncation.
** The writer (writer.c) decides what goes into a transaction and when;
** this file knows how it is laid out (layout.c) and calls nothing but
** layout.c, stage.c and LMDB.
**
** LjPut is the writer thread's alone: the tail of the store it has
** cached (last pos and ts, next actor number, stage totals), valid while
** no other process commits (writer.c, batchTxn), and the scratch arrays
** that sort a batch into key order.
*/
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The accepted events of a batch (internal.h). */
LjEvent *ljEvNext(LjEvIter *it) {
  for (; it->r < it->nReq; it->r++, it->j = 0) {
    LjReq *p = it->aReq[it->r];
    if (p->rc == 0 && p->eType == LJ_REQ_EVENTS && it->j < p->nEvent) {
      return &p->aEvent[it->j++];
    }
  }
  return 0;
}

LjEvent *ljEvFirst(LjEvIter *it, LjReq **aReq, int nReq) {
  it->aReq = aReq;
  it->nReq = nReq;
  it->r = it->j = 0;
  return ljEvNext(it);
}

static int cmpActor(const void *pA, const void *pB) {
  const LjActor *a = *(LjActor *const *)pA;
  const LjActor *b = *(LjActor *const *)pB;
  return a->num < b->num ? -1 : (a->num > b->num);
}

/* Give a new actor its number: the actors and actnum entries. */
static int actorCreate(LjPut *pPut, MDB_txn *txn, LjActor *a) {
  LjEnv *pEnv = pPut->pEnv;
  u8 aNum[LJ_POSKEY], aAct[LJ_ACTVAL];
  MDB_val k, v;
  int mrc;
  a->num = pPut->nextNum++;
  ljPut64(aNum, a->num);
  ljActorVal(aAct, a->num, 0);
  k.mv_data = a->zActor;
  k.mv_size = (size_t)a->nActor;
  v.mv_data = aAct;
  v.mv_size = LJ_ACTVAL;
  mrc = mdb_put(txn, pEnv->aDbi[LJ_DB_ACTORS], &k, &v, MDB_NOOVERWRITE);
  if (mrc) return mrc;
  k.mv_data = aNum;
  k.mv_size = sizeof(aNum);
  v.mv_data = a->zActor;
  v.mv_size = (size_t)a->nActor;
  return mdb_put(txn, pEnv->aDbi[LJ_DB_ACTNUM], &k, &v, MDB_APPEND);
}

/* Make room for nEv events in the sort arrays. */
static int sortReserve(LjPut *pPut, size_t nEv) {
  if (nEv > pPut->nSortAlloc) {
    LjEvent **a = sqlite3_realloc64(pPut->apSort, sizeof(LjEvent *) * nEv);
    LjActor **b = sqlite3_realloc64(pPut->apSortActor, sizeof(LjActor *) * nEv);
    if (a) pPut->apSort = a;
    if (b) pPut->apSortActor = b;
    if (a == 0 || b == 0) return ENOMEM;
    pPut->nSortAlloc = nEv;
  }
  return 0;
}

/*
** Order the accepted events by key into pPut->apSort[0..*pn), numbering new
** actors (in arrival order) on the way; *pnActor gets the number of
** distinct actors.  An actor's events are already in seq order (reserved
** in queue order), so sorting the distinct actors by number and placing
** each actor's events after the previous actor's orders the batch.
*/
static int sortBatch(LjPut *pPut, MDB_txn *txn, LjReq **aReq, int nReq,
                     size_t *pn, size_t *pnActor) {
  size_t n = 0, nActor = 0, nPlaced = 0;
  LjEvIter it;
  LjEvent *e;
  for (e = ljEvFirst(&it, aReq, nReq); e; e = ljEvNext(&it)) {
    LjActor *a = e->pActor;
    if (a->num == 0) {
      int mrc = actorCreate(pPut, txn, a);
      if (mrc) return mrc;
    }
    if (a->sortSerial != pPut->txnSerial) {
      a->sortSerial = pPut->txnSerial;
      a->iSort = 0;
      pPut->apSortActor[nActor++] = a;
    }
    a->iSort++;
    n++;
  }
  qsort(pPut->apSortActor, nActor, sizeof(LjActor *), cmpActor);
  for (size_t i = 0; i < nActor; i++) {
    u32 nA = pPut->apSortActor[i]->iSort;
    pPut->apSortActor[i]->iSort = (u32)nPlaced;
    nPlaced += nA;
  }
  for (e = ljEvFirst(&it, aReq, nReq); e; e = ljEvNext(&it)) {
    pPut->apSort[e->pActor->iSort++] = e;
  }
  *pn = n;
  *pnActor = nActor;
  return 0;
}

/* Put the sorted batch directly: one run per actor (split at LJ_RUN_MAX
** events / LJ_RUN_BYTES bytes). */
static int putRuns(LjPut *pPut, MDB_txn *txn, size_t n) {
  LjEvent **ap = pPut->apSort;
  MDB_cursor *cEv = 0;
  MDB_val k, v;
  u8 aKey[LJ_EVKEY];
  int mrc = mdb_cursor_open(txn, pPut->pEnv->aDbi[LJ_DB_EVENTS], &cEv);
  for (size_t i = 0; i < n && mrc == 0;) {
    LjActor *a = ap[i]->pActor;
    size_t j = i, nByte = 0;
    while (j < n && j - i < LJ_RUN_MAX && ap[j]->pActor == a &&
           (j == i || nByte + ap[j]->nRec <= LJ_RUN_BYTES)) {
      assert(j == i || ap[j]->seq == ap[j - 1]->seq + 1);
      nByte += ap[j++]->nRec;
    }
    ljEvKey(aKey, a->num, ap[i]->seq);
    k.mv_data = aKey;
    k.mv_size = LJ_EVKEY;
    v.mv_data = 0;
    v.mv_size = ljRunSize(&ap[i], j - i);
    mrc = mdb_cursor_put(cEv, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE);
    if (mrc) break;
    ljRunFill((u8 *)v.mv_data, &ap[i], j - i);
    i = j;
  }
  if (cEv) mdb_cursor_close(cEv);
  return mrc;
}

typedef struct TagCtx TagCtx;
struct TagCtx {
  MDB_cursor *c;
  u64 pos;
  u8 aVal[LJ_TAGVAL];
  int mrc;
};

static int tagPut(void *pArg, const u8 *aTag, int nTag) {
  TagCtx *t = (TagCtx *)pArg;
  u8 aKey[LJ_TAGKEY_MAX];
  MDB_val k, v;
  k.mv_data = aKey;
  k.mv_size = (size_t)ljTagKey(aKey, aTag, nTag, t->pos);
  v.mv_data = t->aVal;
  v.mv_size = sizeof(t->aVal);
  t->mrc = mdb_cursor_put(t->c, &k, &v, 0);
  return t->mrc ? 1 : 0;
}

/* Index an event's tags (if any), opening the tags cursor on first use. */
static int putTags(LjPut *pPut, MDB_txn *txn, MDB_cursor **pcTag,
                   const LjEvent *e) {
  const u8 *aTags;
  int nTags = ljRecTags(e->aRec, &aTags);
  TagCtx t;
  char *zErr = 0;
  if (nTags == 0) return 0;
  if (*pcTag == 0) {
    int mrc = mdb_cursor_open(txn, pPut->pEnv->aDbi[LJ_DB_TAGS], pcTag);
    if (mrc) return mrc;
  }
  t.c = *pcTag;
  t.pos = e->pos;
  t.mrc = 0;
  ljTagVal(t.aVal, e->pActor->num, e->seq);
  ljTagsParse((const char *)aTags, nTags, tagPut, &t, &zErr);
  sqlite3_free(zErr); /* validated when the event was built */
  return t.mrc;
}

/* The manifest (this commit's positions, in pos order, as one value at
** the end of the pos tree) and the tag index entries.  The reserved
** manifest is filled before anything else is put: LMDB keeps reserved
** space only until the next update, which may spill the dirty page
** holding it (a transaction of very many pages) and free its memory. */
static int putManifest(LjPut *pPut, MDB_txn *txn, LjReq **aReq, int nReq,
                       size_t n, u64 pos0) {
  MDB_cursor *cTag = 0;
  MDB_val k, v;
  u8 aPos[LJ_POSKEY], *aMani;
  u32 i = 0;
  LjEvIter it;
  LjEvent *e;
  int mrc;
  ljPut64(aPos, pos0);
  k.mv_data = aPos;
  k.mv_size = LJ_POSKEY;
  v.mv_data = 0;
  v.mv_size = LJ_MANI_ENTRY * n;
  mrc = mdb_put(txn, pPut->pEnv->aDbi[LJ_DB_POS], &k, &v,
                MDB_APPEND | MDB_RESERVE);
  if (mrc) return mrc;
  aMani = (u8 *)v.mv_data;
  for (e = ljEvFirst(&it, aReq, nReq); e; e = ljEvNext(&it)) {
    /* Positions of accepted events are contiguous and strictly
    ** increasing in queue order (validateReq hands them out so). */
    assert(i < n && e->pos == pos0 + i);
    ljManiSet(aMani, i++, e->pActor->num, e->seq, ljRecTs(e->aRec));
  }
  assert(i == n);
  for (e = ljEvFirst(&it, aReq, nReq); e && mrc == 0; e = ljEvNext(&it)) {
    mrc = putTags(pPut, txn, &cTag, e);
  }
  if (cTag) mdb_cursor_close(cTag);
  return mrc;
}

/* Put every accepted event: runs (or a staged batch), manifest, tags. */
int ljPutEvents(LjPut *pPut, MDB_txn *txn, LjReq **aReq, int nReq, size_t nEv) {
  size_t n = 0, nActor = 0;
  u64 pos0;
  int mrc, bStage;
  mrc = sortReserve(pPut, nEv);
  if (mrc == 0) mrc = sortBatch(pPut, txn, aReq, nReq, &n, &nActor);
  if (mrc || n == 0) return mrc;
  /* Positions of accepted events are contiguous (validateReq hands them
  ** out one by one): the batch is keyed by the first. */
  pos0 = pPut->apSort[0]->pos;
  for (size_t i = 1; i < n; i++) {
    if (pPut->apSort[i]->pos < pos0) pos0 = pPut->apSort[i]->pos;
  }
  mrc = ljStageChoose(pPut->pEnv, &pPut->stage, txn, n, nActor, &bStage);
  if (mrc == 0 && bStage) {
    mrc = ljStagePut(pPut->pEnv, &pPut->stage, txn, pPut->apSort, n, nActor,
                     pos0);
  } else if (mrc == 0) {
    mrc = putRuns(pPut, txn, n);
  }
  if (mrc == 0) mrc = putManifest(pPut, txn, aReq, nReq, n, pos0);
  return mrc;
}

/* Read a u64 from the meta db into *pv (left alone when absent). */
static int metaGet64(LjEnv *pEnv, MDB_txn *txn, const char *zKey, u64 *pv) {
  MDB_val k, v;
  int mrc;
  ljMetaKey(&k, zKey);
  mrc = mdb_get(txn, pEnv->aDbi[LJ_DB_META], &k, &v);
  if (mrc == 0 && v.mv_size == sizeof(u64)) *pv = ljGet64(v.mv_data);
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* The last key (and value) of a named db: MDB_NOTFOUND when empty. */
static int lastEntry(LjEnv *pEnv, MDB_txn *txn, int iDb, MDB_val *pKey,
                     MDB_val *pVal) {
  MDB_cursor *c;
  int mrc = mdb_cursor_open(txn, pEnv->aDbi[iDb], &c);
  if (mrc) return mrc;
  mrc = mdb_cursor_get(c, pKey, pVal, MDB_LAST);
  mdb_cursor_close(c); /* the values stay valid until the txn ends */
  return mrc;
}

/* The store's last pos and its ts from the last manifest (0, 0 when
** there is none). */
int ljPutLastPos(LjEnv *pEnv, MDB_txn *txn, u64 *pPos, i64 *pTs) {
  MDB_val k, v;
  int mrc = lastEntry(pEnv, txn, LJ_DB_POS, &k, &v);
  *pPos = 0;
  *pTs = 0;
  if (mrc == 0 && k.mv_size == LJ_POSKEY && ljManiCount(&v) > 0) {
    u32 nMani = ljManiCount(&v);
    *pPos = ljGet64(k.mv_data) + nMani - 1;
    *pTs = ljManiTs(v.mv_data, nMani - 1);
  }
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* The store's format must be the one this build writes.  Checked when
** the tail is loaded, i.e. in the first write transaction and after any
** other process committed (writer.c: the txn id jumped), which is the
** only way the format can have changed: a newer build upgrading the
** store must stop an older one from writing what it would misread. */
static int putCheckFormat(LjEnv *pEnv, MDB_txn *txn) {
  MDB_val k, v;
  int mrc;
  ljMetaKey(&k, LJ_META_FORMAT);
  mrc = mdb_get(txn, pEnv->aDbi[LJ_DB_META], &k, &v);
  if (mrc == MDB_NOTFOUND ||
      (mrc == 0 && (v.mv_size != sizeof(u32) ||
                    ljGet32(v.mv_data) != LMDBJOURNAL_FORMAT_VERSION))) {
    return LJ_MDB_FORMAT;
  }
  return mrc;
}

/* Load the tail (last pos, ts, next actor number, stage totals) if not
** known. */
int ljPutLoadTail(LjPut *pPut, MDB_txn *txn) {
  LjEnv *pEnv = pPut->pEnv;
  MDB_val k, v;
  u64 maxPos = 0;
  int mrc;
  if (pPut->bTail) return 0;
  pPut->nextNum = 1;
  mrc = putCheckFormat(pEnv, txn);
  if (mrc == 0) mrc = ljStageLoad(pEnv, txn, &pPut->stage);
  if (mrc == 0) mrc = ljPutLastPos(pEnv, txn, &pPut->tailPos, &pPut->tailTs);
  if (mrc == 0) mrc = lastEntry(pEnv, txn, LJ_DB_ACTNUM, &k, &v);
  if (mrc == 0 && k.mv_size == LJ_POSKEY)
    pPut->nextNum = ljGet64(k.mv_data) + 1;
  if (mrc == MDB_NOTFOUND) mrc = 0;
  /* pos must never be reused, even after the newest events were
  ** truncated: the meta db remembers the highest pos ever assigned. */
  if (mrc == 0) mrc = metaGet64(pEnv, txn, LJ_META_MAXPOS, &maxPos);
  if (mrc) return mrc;
  if (maxPos > pPut->tailPos) pPut->tailPos = maxPos;
  pPut->bTail = 1;
  return 0;
}

/**************************************************************************
** Truncation
*/
typedef struct TagDel TagDel;
struct TagDel {
  MDB_txn *txn;
  MDB_dbi dbi;
  u64 pos;
  int mrc;
};

static int tagDel(void *pArg, const u8 *aTag, int nTag) {
  TagDel *t = (TagDel *)pArg;
  u8 aKey[LJ_TAGKEY_MAX];
  MDB_val k;
  k.mv_data = aKey;
  k.mv_size = (size_t)ljTagKey(aKey, aTag, nTag, t->pos);
  t->mrc = mdb_del(t->txn, t->dbi, &k, 0);
  if (t->mrc == MDB_NOTFOUND) t->mrc = 0; /* a repeated tag */
  return t->mrc ? 1 : 0;
}

/*
** Mark pos as deleted in its manifest (num 0, ts kept so that the ts
** search still sees a non-decreasing sequence); a manifest left with only
** deleted entries goes.
*/
static int maniTombstone(LjEnv *pEnv, MDB_txn *txn, u64 pos) {
  MDB_cursor *c;
  MDB_val k, v;
  u8 aKey[LJ_POSKEY];
  u32 i, n, nLive = 0;
  u8 *a;
  int mrc = mdb_cursor_open(txn, pEnv->aDbi[LJ_DB_POS], &c);
  if (mrc) return mrc;
  mrc = ljManiFind(c, pos, &k, &v, &i);
  if (mrc == MDB_NOTFOUND)
    mrc = 0; /* already gone */
  else if (mrc == 0) {
    /* The key points into the page, which the put may rewrite before it
    ** reads the key (an overflow value is deleted and added again). */
    memcpy(aKey, k.mv_data, LJ_POSKEY);
    k.mv_data = aKey;
    n = ljManiCount(&v);
    a = sqlite3_malloc64(v.mv_size);
    if (a == 0) {
      mrc = ENOMEM;
    } else {
      memcpy(a, v.mv_data, v.mv_size);
      ljManiSetNum(a, i, 0);
      for (u32 x = 0; x < n; x++) nLive += ljManiNum(a, x) != 0;
      if (nLive == 0) {
        mrc = mdb_cursor_del(c, 0);
      } else {
        v.mv_data = a;
        mrc = mdb_cursor_put(c, &k, &v, MDB_CURRENT);
      }
      sqlite3_free(a);
    }
  }
  mdb_cursor_close(c);
  return mrc;
}

/* Remove record i of a run from the pos and tag indexes. */
static int unindexRecord(LjEnv *pEnv, MDB_txn *txn, const u8 *aRun, size_t nRun,
                         u32 i) {
  LjRec rec;
  u8 *aUnz = 0;
  size_t nUnz = 0;
  const u8 *a;
  u32 n;
  int mrc = ljRunRecord(aRun, nRun, i, &a, &n);
  if (mrc) return mrc;
  if (ljRecDecode(a, n, &rec, &aUnz, &nUnz)) return MDB_CORRUPTED;
  sqlite3_free(aUnz);
  mrc = maniTombstone(pEnv, txn, rec.pos);
  if (mrc == 0 && rec.nTags) {
    TagDel t;
    char *zErr = 0;
    t.txn = txn;
    t.dbi = pEnv->aDbi[LJ_DB_TAGS];
    t.pos = rec.pos;
    t.mrc = 0;
    ljTagsParse((const char *)rec.aTags, rec.nTags, tagDel, &t, &zErr);
    sqlite3_free(zErr);
    mrc = t.mrc;
  }
  return mrc;
}

/* The records nDel.. of run v as a new run (sqlite3_malloc'd). */
static int runTail(const MDB_val *v, u32 nDel, u8 **paKeep, size_t *pnKeep) {
  u32 nRun = ljRunCount(v->mv_data, v->mv_size), nKeep = nRun - nDel;
  const u8 *a0, *aLast;
  u32 n0, nLast;
  size_t nBody;
  u8 *aKeep;
  int mrc = ljRunRecord(v->mv_data, v->mv_size, nDel, &a0, &n0);
  if (mrc == 0)
    mrc = ljRunRecord(v->mv_data, v->mv_size, nRun - 1, &aLast, &nLast);
  if (mrc) return mrc;
  nBody = (size_t)(aLast + nLast - a0);
  aKeep = sqlite3_malloc64(LJ_RUN_HEAD(nKeep) + nBody);
  if (aKeep == 0) return ENOMEM;
  ljRunStart(aKeep, nKeep);
  for (u32 i = nDel; i < nRun; i++) {
    const u8 *a;
    u32 n;
    ljRunRecord(v->mv_data, v->mv_size, i, &a, &n);
    ljRunSetEnd(aKeep, i - nDel, (u32)(a + n - a0));
  }
  memcpy(&aKeep[LJ_RUN_HEAD(nKeep)], a0, nBody);
  *paKeep = aKeep;
  *pnKeep = LJ_RUN_HEAD(nKeep) + nBody;
  return 0;
}

/* Delete the run under cursor c (key k, value v) up to seq upTo; a
** partial run keeps its tail as a new run starting at upTo+1.  *pnDel
** gets the number of events deleted; aKey the deleted key. */
static int truncateRun(LjEnv *pEnv, MDB_txn *txn, MDB_cursor *c, MDB_val *k,
                       MDB_val *v, u64 upTo, u8 *aKey, u32 *pnDel) {
  u64 num = ljEvKeyNum(k->mv_data), s0 = ljEvKeySeq(k->mv_data);
  u32 nRun = ljRunCount(v->mv_data, v->mv_size);
  u32 nDel = (u32)(upTo - s0 + 1 < nRun ? upTo - s0 + 1 : nRun);
  u8 *aKeep = 0;
  size_t nKeep = 0;
  MDB_val run;
  int mrc = 0;
  /* The run and its key are read while the indexes are updated: what
  ** LMDB returned is valid only until the next update (a spilled dirty
  ** page is freed), so they are copied first. */
  memcpy(aKey, k->mv_data, LJ_EVKEY);
  run.mv_size = v->mv_size;
  run.mv_data = sqlite3_malloc64(v->mv_size ? v->mv_size : 1);
  if (run.mv_data == 0) return ENOMEM;
  memcpy(run.mv_data, v->mv_data, v->mv_size);
  for (u32 i = 0; i < nDel && mrc == 0; i++) {
    mrc = unindexRecord(pEnv, txn, run.mv_data, run.mv_size, i);
  }
  if (mrc == 0 && nDel < nRun) mrc = runTail(&run, nDel, &aKeep, &nKeep);
  sqlite3_free(run.mv_data);
  if (mrc) return mrc;
  mrc = mdb_cursor_del(c, 0); /* c is on the run still: no update of its db */
  if (mrc == 0 && aKeep) {
    u8 aNew[LJ_EVKEY];
    MDB_val kNew, vNew;
    ljEvKey(aNew, num, upTo + 1);
    kNew.mv_data = aNew;
    kNew.mv_size = LJ_EVKEY;
    vNew.mv_data = aKeep;
    vNew.mv_size = nKeep;
    mrc = mdb_put(txn, pEnv->aDbi[LJ_DB_EVENTS], &kNew, &vNew, MDB_NOOVERWRITE);
  }
  sqlite3_free(aKeep);
  *pnDel = nDel;
  return mrc;
}

/*
** Delete an actor's events up to p->iToSeq with their pos and tag index
** entries, and raise the actor's floor to its highest seq so that the
** highest seq survives.  The highest pos ever assigned is recorded in the
** meta db, so pos is never reused even when the newest events go.
*/
int ljPutTruncate(LjPut *pPut, MDB_txn *txn, LjReq *p, int *pbWrote) {
  LjEnv *pEnv = pPut->pEnv;
  const u8 *zActor = p->aEvent[0].aRec;
  int nActor = (int)p->aEvent[0].nRec;
  u64 num, highest, floor, upTo;
  u8 aKey[LJ_EVKEY], aAct[LJ_ACTVAL];
  MDB_cursor *c;
  MDB_val k, v;
  int mrc;
  mrc = ljActorLoad(pEnv, txn, zActor, nActor, &num, &highest, &floor);
  if (mrc || num == 0) return mrc;
  *pbWrote = 1; /* the floor and maxpos at least */
  upTo = (p->iToSeq < 0 || (u64)p->iToSeq > highest) ? highest : (u64)p->iToSeq;
  mrc = mdb_cursor_open(txn, pEnv->aDbi[LJ_DB_EVENTS], &c);
  if (mrc) return mrc;
  ljEvKey(aKey, num, 1);
  k.mv_data = aKey;
  k.mv_size = LJ_EVKEY;
  mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  while (mrc == 0 && ljEvKeyNum(k.mv_data) == num &&
         ljEvKeySeq(k.mv_data) <= upTo) {
    u32 nDel = 0;
    mrc = truncateRun(pEnv, txn, c, &k, &v, upTo, aKey, &nDel);
    if (mrc) break;
    p->nResult += nDel;
    /* Re-seek from the deleted key: the next one is the successor. */
    k.mv_data = aKey;
    k.mv_size = LJ_EVKEY;
    mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  }
  mdb_cursor_close(c);
  if (mrc && mrc != MDB_NOTFOUND) return mrc;
  ljActorVal(aAct, num, highest);
  k.mv_data = (void *)zActor;
  k.mv_size = (size_t)nActor;
  v.mv_data = aAct;
  v.mv_size = sizeof(aAct);
  mrc = mdb_put(txn, pEnv->aDbi[LJ_DB_ACTORS], &k, &v, 0);
  if (mrc == 0) mrc = ljPutMaxPos(pPut, txn);
  /* What deleted events goes to the truncation log, for the shipper. */
  if (mrc == 0 && p->nResult > 0) {
    mrc = ljTruncLogPut(pEnv, txn, pPut->tailPos, zActor, nActor, upTo);
  }
  return mrc;
}

int ljPutMaxPos(LjPut *pPut, MDB_txn *txn) {
  u8 aMax[sizeof(u64)];
  MDB_val k, v;
  ljPut64(aMax, pPut->tailPos);
  ljMetaKey(&k, LJ_META_MAXPOS);
  v.mv_data = aMax;
  v.mv_size = sizeof(aMax);
  return mdb_put(txn, pPut->pEnv->aDbi[LJ_DB_META], &k, &v, 0);
}

/**************************************************************************
** Snapshots: the snapshots db, keyed (actor number, seq) like runs, one
** record each (layout.c).  An actor's number is all they share with its
** events, so truncation leaves them alone.
*/

/* Delete the oldest of actor num's snapshots until nKeep are left. */
static int snapKeep(LjEnv *pEnv, MDB_txn *txn, u64 num, int nKeep) {
  MDB_cursor *c;
  MDB_val k, v;
  u8 aKey[LJ_EVKEY];
  i64 nOver = -nKeep;
  int mrc = mdb_cursor_open(txn, pEnv->aDbi[LJ_DB_SNAPS], &c);
  if (mrc) return mrc;
  /* Count from the newest: retention keeps the count near nKeep. */
  ljEvKey(aKey, num + 1, 0);
  k.mv_data = aKey;
  k.mv_size = LJ_EVKEY;
  mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  mrc = mdb_cursor_get(c, &k, &v, mrc == 0 ? MDB_PREV : MDB_LAST);
  while (mrc == 0 && ljEvKeyNum(k.mv_data) == num) {
    nOver++;
    mrc = mdb_cursor_get(c, &k, &v, MDB_PREV);
  }
  if (mrc == MDB_NOTFOUND) mrc = 0;
  while (mrc == 0 && nOver-- > 0) {
    ljEvKey(aKey, num, 0);
    k.mv_data = aKey;
    k.mv_size = LJ_EVKEY;
    mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (mrc == 0) mrc = mdb_cursor_del(c, 0);
  }
  mdb_cursor_close(c);
  return mrc;
}

int ljPutSnapshot(LjPut *pPut, MDB_txn *txn, LjReq *p, i64 ts) {
  LjEnv *pEnv = pPut->pEnv;
  LjEvent *e = &p->aEvent[0];
  u8 aKey[LJ_EVKEY];
  MDB_val k, v;
  int mrc = 0;
  if (e->pActor->num == 0) mrc = actorCreate(pPut, txn, e->pActor);
  if (mrc) return mrc;
  ljRecStamp(e->aRec, e->nRec, 0, ts);
  ljEvKey(aKey, e->pActor->num, e->seq);
  k.mv_data = aKey;
  k.mv_size = LJ_EVKEY;
  v.mv_data = e->aRec;
  v.mv_size = e->nRec;
  mrc = mdb_put(txn, pEnv->aDbi[LJ_DB_SNAPS], &k, &v, 0); /* overwrites */
  if (mrc == 0 && p->nKeep > 0) {
    mrc = snapKeep(pEnv, txn, e->pActor->num, p->nKeep);
  }
  return mrc;
}

int ljPutSnapshotDelete(LjPut *pPut, MDB_txn *txn, LjReq *p) {
  LjEnv *pEnv = pPut->pEnv;
  MDB_cursor *c;
  MDB_val k, v;
  u8 aKey[LJ_EVKEY];
  u64 num, floor;
  int mrc;
  p->nResult = 0;
  k.mv_data = p->aEvent[0].aRec; /* the actor id */
  k.mv_size = p->aEvent[0].nRec;
  mrc = mdb_get(txn, pEnv->aDbi[LJ_DB_ACTORS], &k, &v);
  if (mrc == MDB_NOTFOUND) return 0; /* no such actor: nothing to delete */
  if (mrc == 0) mrc = ljActorValGet(&v, &num, &floor);
  if (mrc == 0) mrc = mdb_cursor_open(txn, pEnv->aDbi[LJ_DB_SNAPS], &c);
  if (mrc) return mrc;
  ljEvKey(aKey, num, (u64)p->iFromSeq);
  k.mv_data = aKey;
  k.mv_size = LJ_EVKEY;
  for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
       mrc == 0 && ljEvKeyNum(k.mv_data) == num &&
       ljEvKeySeq(k.mv_data) <= (u64)p->iToSeq;
       mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)) {
    memcpy(aKey, k.mv_data, LJ_EVKEY);
    if (v.mv_size < LJ_REC_HDR) {
      mrc = MDB_CORRUPTED;
      break;
    }
    if (ljRecTs(v.mv_data) <= p->iToTs && ljRecTs(v.mv_data) >= p->iFromTs) {
      mrc = mdb_cursor_del(c, 0);
      if (mrc) break;
      p->nResult++;
    } else {
      /* Kept: the next key after it. */
      ljEvKey(aKey, num, ljEvKeySeq(aKey) + 1);
    }
    k.mv_data = aKey;
    k.mv_size = LJ_EVKEY;
  }
  mdb_cursor_close(c);
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}

void ljPutFree(LjPut *pPut) {
  sqlite3_free(pPut->apSort);
  sqlite3_free(pPut->apSortActor);
}
