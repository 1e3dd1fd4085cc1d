/*
** snapread.c -- the read interface of the store, continued: snapshots and
** the actor registry.  Like scan.c (which reads events), these readers
** are the only code that knows how the snapshots and actors dbs are laid
** out for reading; the SQL layer (snapshots_tvf.c) opens one, starts it
** and reads rows, and never calls LMDB.
**
**   LjSnapScan *p;                       LjActorScan *p;
**   ljSnapScanNew(pEnv, &p);             ljActorScanNew(pEnv, &p);
**   ljSnapScanStart(p, &spec, ...);      ljActorScanStart(p, &spec, ...);
**   while (!ljSnapScanEof(p)) {          while (!ljActorScanEof(p)) {
**     ljSnapScanRow(p) ...                 ljActorScanRow(p) ...
**     ljSnapScanNext(p, &zErr);            ljActorScanNext(p, &zErr);
**   }                                    }
**
** SNAPSHOTS of one actor are found by seeks on the snapshots db, keyed
** (actor number, seq): the newest at or below a seq is one seek and one
** step back, never a walk over other actors.  A ts window is a filter on
** the actor's snapshots (their ts need not follow their seq).
**
** ACTORS are listed in the actors db's key order, the actor id bytes
** (memcmp: SQLite's BINARY order), from a seek to the lower bound.  What
** a row reports comes from a few seeks, not from reading the actor's
** events: an actor's stored events are always the contiguous seqs
** first..last (appends take exactly the next seq, truncation deletes a
** prefix, merges move runs whole), so
**
**   first   the first run's key          last, last_ts   the last run
**   events  last - first + 1             highest  max(floor, last)
**   snapshot_seq   the last snapshots key of the actor
**
** and staged events, which come after an actor's runs (stage.c), are
** summarised once per reader (actor number -> first, last seq, last ts)
** so that no row searches the staged batches.
**
** Both readers take their read transaction at the first start, after
** this process's queued writes (read-your-writes), keep it until freed,
** and hold the gate only inside a call; after the map moved they renew
** their cursors and re-seek the remembered key (threading model:
** registry.c).  Each row is copied out of the map, so values outlive the
** call.
*/
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/**************************************************************************
** What both readers share: the read transaction and its cursors.
*/
#define SR_CURSORS 3

typedef struct SrTxn SrTxn;
struct SrTxn {
  LjEnv *pEnv;
  MDB_txn *txn;
  unsigned gen;                /* LjEnv.mapGen the cursors stand for */
  MDB_cursor *ac[SR_CURSORS];  /* ac[0] walks; the others only seek */
  int bEof;                    /* ac[0] stands on nothing */
  u8 aKey[LJ_MAX_ACTOR_BYTES]; /* ac[0]'s key, to re-seek */
  int nKey;
  LjReaderSlot slot;
};

/* Enter the gate and make the transaction usable: begun (first call, after
** this process's queued writes) or re-seeked after the map moved.  On
** success the gate is held; the caller leaves it. */
static int srEnter(SrTxn *t, i64 usTimeout, char **pzErr) {
  int mrc = 0;
  if (t->txn == 0 && ljFlushForRead(t->pEnv, usTimeout)) {
    *pzErr = sqlite3_mprintf("timed out waiting for queued writes to commit");
    return SQLITE_BUSY;
  }
  ljGateEnter(t->pEnv);
  if (t->txn == 0) {
    mrc = ljReadBegin(t->pEnv, &t->txn);
    t->gen = __atomic_load_n(&t->pEnv->mapGen, __ATOMIC_ACQUIRE);
    if (mrc)
      t->txn = 0;
    else
      ljReaderTrack(t->pEnv, &t->slot);
  } else {
    unsigned gen = __atomic_load_n(&t->pEnv->mapGen, __ATOMIC_ACQUIRE);
    for (int i = 0; i < SR_CURSORS && mrc == 0 && gen != t->gen; i++) {
      if (t->ac[i]) mrc = mdb_cursor_renew(t->txn, t->ac[i]);
    }
    if (mrc == 0 && gen != t->gen && t->ac[0] && !t->bEof) {
      MDB_val k, v;
      k.mv_data = t->aKey;
      k.mv_size = (size_t)t->nKey;
      mrc = mdb_cursor_get(t->ac[0], &k, &v, MDB_SET_KEY);
    }
    t->gen = gen;
  }
  if (mrc) {
    ljGateLeave(t->pEnv);
    *pzErr = ljMdbErr("read", mrc);
    return ljMdbToSqlite(mrc);
  }
  return SQLITE_OK;
}

/* Open cursor i on named db iDb, once. */
static int srCursor(SrTxn *t, int i, int iDb) {
  if (t->ac[i]) return 0;
  return mdb_cursor_open(t->txn, t->pEnv->aDbi[iDb], &t->ac[i]);
}

/* Step or seek the walking cursor and remember where it stands. */
static int srGet(SrTxn *t, MDB_val *pKey, MDB_val *pVal, MDB_cursor_op op) {
  int mrc = mdb_cursor_get(t->ac[0], pKey, pVal, op);
  t->bEof = mrc != 0;
  if (mrc == 0) {
    if (pKey->mv_size > sizeof(t->aKey)) return MDB_CORRUPTED;
    memcpy(t->aKey, pKey->mv_data, pKey->mv_size);
    t->nKey = (int)pKey->mv_size;
  }
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* The last key of actor num in the db under cursor c (events or
** snapshots, both keyed num | seq): MDB_NOTFOUND when it has none. */
static int srLastOf(MDB_cursor *c, u64 num, MDB_val *pKey, MDB_val *pVal) {
  u8 aKey[LJ_EVKEY];
  int mrc;
  ljEvKey(aKey, num + 1, 0);
  pKey->mv_data = aKey;
  pKey->mv_size = LJ_EVKEY;
  mrc = mdb_cursor_get(c, pKey, pVal, MDB_SET_RANGE);
  if (mrc == 0)
    mrc = mdb_cursor_get(c, pKey, pVal, MDB_PREV);
  else if (mrc == MDB_NOTFOUND)
    mrc = mdb_cursor_get(c, pKey, pVal, MDB_LAST);
  if (mrc == 0 &&
      (pKey->mv_size != LJ_EVKEY || ljEvKeyNum(pKey->mv_data) != num))
    mrc = MDB_NOTFOUND;
  return mrc;
}

/* Copy n bytes into a growing buffer. */
static int srCopy(u8 **pa, size_t *pnAlloc, const void *pData, size_t n) {
  if (n > *pnAlloc) {
    u8 *aNew = sqlite3_realloc64(*pa, n);
    if (aNew == 0) return SQLITE_NOMEM;
    *pa = aNew;
    *pnAlloc = n;
  }
  if (n) memcpy(*pa, pData, n);
  return SQLITE_OK;
}

static void srFree(SrTxn *t) {
  if (t->txn == 0) return;
  ljGateEnter(t->pEnv);
  for (int i = 0; i < SR_CURSORS; i++) {
    if (t->ac[i]) mdb_cursor_close(t->ac[i]);
    t->ac[i] = 0;
  }
  mdb_txn_abort(t->txn);
  ljGateLeave(t->pEnv);
  ljReaderUntrack(t->pEnv, &t->slot);
  t->txn = 0;
}

/**************************************************************************
** Snapshots
*/
struct LjSnapScan {
  SrTxn t;
  LjSnapSpec s;
  u64 num; /* one actor: its number */
  int bEof;
  LjSnapRow row;
  u8 *aActor; /* the row's actor id */
  size_t nActorAlloc;
  u64 actorNum; /* ... of this actor number (0: none yet) */
  u8 *aRec;     /* the row's record */
  size_t nRecAlloc;
  u8 *aUnz; /* its decompressed state */
  size_t nUnz;
  char *zCorrupt; /* what a failed checksum check found */
};

int ljSnapScanNew(LjEnv *pEnv, LjSnapScan **pp) {
  LjSnapScan *p = sqlite3_malloc64(sizeof(*p));
  *pp = p;
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->t.pEnv = pEnv;
  p->bEof = 1;
  return SQLITE_OK;
}

void ljSnapScanFree(LjSnapScan *p) {
  if (p == 0) return;
  srFree(&p->t);
  sqlite3_free(p->aActor);
  sqlite3_free(p->aRec);
  sqlite3_free(p->aUnz);
  sqlite3_free(p->zCorrupt);
  sqlite3_free(p);
}

int ljSnapScanEof(const LjSnapScan *p) {
  return p->bEof;
}

const LjSnapRow *ljSnapScanRow(const LjSnapScan *p) {
  assert(!p->bEof);
  return &p->row;
}

/* Is the key under the cursor outside the plan (one actor: its number
** and seq bounds)? */
static int snapPast(const LjSnapScan *p, const MDB_val *k) {
  u64 seq;
  if (k->mv_size != LJ_EVKEY) return 1;
  if (p->s.aActor == 0) return 0;
  seq = ljEvKeySeq(k->mv_data);
  return ljEvKeyNum(k->mv_data) != p->num || seq > (u64)p->s.hi ||
         seq < (u64)p->s.lo;
}

/* Copy the snapshot under the cursor (key k, value v) into the row. */
static int snapLoad(LjSnapScan *p, const MDB_val *k, const MDB_val *v) {
  u64 num = ljEvKeyNum(k->mv_data);
  int rc = SQLITE_OK;
  if (num != p->actorNum) {
    MDB_val kn, vn;
    u8 aNum[LJ_NUMKEY];
    int mrc;
    ljPut64(aNum, num);
    kn.mv_data = aNum;
    kn.mv_size = sizeof(aNum);
    mrc = mdb_get(p->t.txn, p->t.pEnv->aDbi[LJ_DB_ACTNUM], &kn, &vn);
    if (mrc) return mrc == MDB_NOTFOUND ? SQLITE_CORRUPT : ljMdbToSqlite(mrc);
    rc = srCopy(&p->aActor, &p->nActorAlloc, vn.mv_data, vn.mv_size);
    if (rc) return rc;
    p->actorNum = num;
    p->row.nActor = (int)vn.mv_size;
  }
  p->row.zActor = (const char *)p->aActor;
  p->row.seq = ljEvKeySeq(k->mv_data);
  rc = srCopy(&p->aRec, &p->nRecAlloc, v->mv_data, v->mv_size);
  if (rc == SQLITE_OK && !ljRecCheck(p->aRec, v->mv_size)) {
    /* Damage is an error, never data (layout.c, the checksum). */
    sqlite3_free(p->zCorrupt);
    p->zCorrupt = sqlite3_mprintf(
        "the store is damaged: checksum mismatch in the snapshot of actor "
        "'%.*s' at seq %llu",
        p->row.nActor, p->row.zActor, (unsigned long long)p->row.seq);
    return SQLITE_CORRUPT;
  }
  if (rc == SQLITE_OK) {
    rc = ljRecDecode(p->aRec, v->mv_size, &p->row.rec, &p->aUnz, &p->nUnz);
  }
  return rc;
}

/* From the cursor's position (mrc: how it got there) on, the first
** snapshot inside the plan and the ts window, walking in the plan's
** direction; called with the gate held. */
static int snapSettle(LjSnapScan *p, MDB_val *k, MDB_val *v, int mrc) {
  MDB_cursor_op op = p->s.bDesc ? MDB_PREV : MDB_NEXT;
  for (;;) {
    i64 ts;
    if (mrc) return ljMdbToSqlite(mrc);
    if (p->t.bEof || snapPast(p, k)) break;
    if (v->mv_size < LJ_REC_HDR) return SQLITE_CORRUPT;
    ts = ljRecTs(v->mv_data);
    if (ts >= p->s.tsLo && ts <= p->s.tsHi) {
      p->bEof = 0;
      return snapLoad(p, k, v);
    }
    mrc = srGet(&p->t, k, v, op);
  }
  p->bEof = 1;
  return SQLITE_OK;
}

/* Position on the plan's first key; called with the gate held. */
static int snapSeek(LjSnapScan *p, MDB_val *k, MDB_val *v) {
  u8 aKey[LJ_EVKEY];
  int mrc;
  if (p->s.aActor == 0)
    return srGet(&p->t, k, v, p->s.bDesc ? MDB_LAST : MDB_FIRST);
  if (p->s.bDesc) {
    if ((u64)p->s.hi >= (u64)INT64_MAX)
      ljEvKey(aKey, p->num + 1, 0);
    else
      ljEvKey(aKey, p->num, (u64)p->s.hi + 1);
  } else {
    ljEvKey(aKey, p->num, (u64)p->s.lo);
  }
  k->mv_data = aKey;
  k->mv_size = LJ_EVKEY;
  mrc = srGet(&p->t, k, v, MDB_SET_RANGE);
  if (mrc || !p->s.bDesc) return mrc;
  return srGet(&p->t, k, v, p->t.bEof ? MDB_LAST : MDB_PREV);
}

/* A damaged snapshot's message, when the step found one. */
static int snapError(LjSnapScan *p, int rc, char **pzErr) {
  if (rc == SQLITE_CORRUPT && p->zCorrupt && *pzErr == 0) {
    *pzErr = p->zCorrupt;
    p->zCorrupt = 0;
  }
  return rc;
}

int ljSnapScanStart(LjSnapScan *p, const LjSnapSpec *pSpec, i64 usTimeout,
                    char **pzErr) {
  MDB_val k, v;
  u64 floor;
  int rc, mrc = 0;
  p->s = *pSpec;
  p->bEof = 1;
  if (p->s.lo < 0) p->s.lo = 0;
  if (p->s.lo > p->s.hi || p->s.tsLo > p->s.tsHi) return SQLITE_OK;
  rc = srEnter(&p->t, usTimeout, pzErr);
  if (rc) return rc;
  p->num = 0;
  if (p->s.aActor) {
    mrc = ljActorLoad(p->t.pEnv, p->t.txn, p->s.aActor, p->s.nActor, &p->num, 0,
                      &floor);
  }
  if (mrc == 0 && (p->s.aActor == 0 || p->num != 0)) {
    mrc = srCursor(&p->t, 0, LJ_DB_SNAPS);
    if (mrc == 0) mrc = snapSeek(p, &k, &v);
    rc = snapSettle(p, &k, &v, mrc);
    mrc = 0;
  }
  ljGateLeave(p->t.pEnv);
  if (mrc) {
    *pzErr = ljMdbErr("read", mrc);
    rc = ljMdbToSqlite(mrc);
  }
  return snapError(p, rc, pzErr);
}

int ljSnapScanNext(LjSnapScan *p, char **pzErr) {
  MDB_val k, v;
  int rc;
  if (p->bEof) return SQLITE_OK;
  rc = srEnter(&p->t, -1, pzErr);
  if (rc) return rc;
  rc = snapSettle(p, &k, &v,
                  srGet(&p->t, &k, &v, p->s.bDesc ? MDB_PREV : MDB_NEXT));
  ljGateLeave(p->t.pEnv);
  return snapError(p, rc, pzErr);
}

/**************************************************************************
** Actors
*/
/* One actor's staged events, summarised (stage.c: they follow its
** runs). */
typedef struct SrStaged SrStaged;
struct SrStaged {
  u64 num;
  u64 first, last; /* seqs */
  i64 ts;          /* of the last */
  u64 iOrder;      /* pos order of the batch, while sorting */
};

struct LjActorScan {
  SrTxn t;
  LjActorSpec s;
  u8 *aBound; /* copies of the bounds */
  int bEof;
  LjActorRow row;
  SrStaged *aStaged; /* by actor number */
  u32 nStaged;
};

int ljActorScanNew(LjEnv *pEnv, LjActorScan **pp) {
  LjActorScan *p = sqlite3_malloc64(sizeof(*p));
  *pp = p;
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->t.pEnv = pEnv;
  p->bEof = 1;
  return SQLITE_OK;
}

void ljActorScanFree(LjActorScan *p) {
  if (p == 0) return;
  srFree(&p->t);
  sqlite3_free(p->aBound);
  sqlite3_free(p->aStaged);
  sqlite3_free(p);
}

int ljActorScanEof(const LjActorScan *p) {
  return p->bEof;
}

const LjActorRow *ljActorScanRow(const LjActorScan *p) {
  assert(!p->bEof);
  return &p->row;
}

static int stagedCmp(const void *pA, const void *pB) {
  const SrStaged *a = (const SrStaged *)pA, *b = (const SrStaged *)pB;
  if (a->num != b->num) return a->num < b->num ? -1 : 1;
  return a->iOrder < b->iOrder ? -1 : (a->iOrder > b->iOrder);
}

/* Add directory entry i of staged batch v to the summary. */
static int stagedAdd(LjActorScan *p, const MDB_val *v, u32 i, u32 *pnAlloc) {
  SrStaged *e;
  MDB_val run;
  const u8 *a;
  u32 n, nRun;
  u64 num, s0;
  int mrc = ljStageDir(v, i, &num, &s0, &run);
  if (mrc) return mrc;
  nRun = ljRunCount(run.mv_data, run.mv_size);
  mrc = nRun ? ljRunRecord(run.mv_data, run.mv_size, nRun - 1, &a, &n)
             : MDB_CORRUPTED;
  if (mrc == 0 && n < LJ_REC_HDR) mrc = MDB_CORRUPTED;
  if (mrc) return mrc;
  if (p->nStaged >= *pnAlloc) {
    u32 nNew = *pnAlloc ? *pnAlloc * 2 : 256;
    SrStaged *aNew = sqlite3_realloc64(p->aStaged, sizeof(SrStaged) * nNew);
    if (aNew == 0) return ENOMEM;
    p->aStaged = aNew;
    *pnAlloc = nNew;
  }
  e = &p->aStaged[p->nStaged];
  e->num = num;
  e->first = s0;
  e->last = s0 + nRun - 1;
  e->ts = ljRecTs(a);
  e->iOrder = p->nStaged++;
  return 0;
}

/* Summarise the stage: per actor number its first and last staged seq
** and the ts of the last.  Called with the gate held. */
static int stagedLoad(LjActorScan *p) {
  MDB_cursor *c;
  MDB_val k, v;
  u32 nAlloc = 0, nOut = 0;
  int mrc = mdb_cursor_open(p->t.txn, p->t.pEnv->aDbi[LJ_DB_STAGE], &c);
  if (mrc) return mrc;
  for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    u32 nAct = ljStageActors(&v);
    for (u32 i = 0; i < nAct && mrc == 0; i++)
      mrc = stagedAdd(p, &v, i, &nAlloc);
    if (mrc) break;
  }
  mdb_cursor_close(c);
  if (mrc != MDB_NOTFOUND) return mrc;
  if (p->nStaged == 0) return 0;
  /* By actor, each actor's entries in pos order: keep the first seq of
  ** the first and the last seq and ts of the last. */
  qsort(p->aStaged, p->nStaged, sizeof(SrStaged), stagedCmp);
  for (u32 i = 0; i < p->nStaged; i++) {
    if (nOut > 0 && p->aStaged[nOut - 1].num == p->aStaged[i].num) {
      p->aStaged[nOut - 1].last = p->aStaged[i].last;
      p->aStaged[nOut - 1].ts = p->aStaged[i].ts;
    } else {
      p->aStaged[nOut++] = p->aStaged[i];
    }
  }
  p->nStaged = nOut;
  return 0;
}

static const SrStaged *stagedFind(const LjActorScan *p, u64 num) {
  u32 lo = 0, hi = p->nStaged;
  while (lo < hi) {
    u32 mid = lo + (hi - lo) / 2;
    if (p->aStaged[mid].num == num) return &p->aStaged[mid];
    if (p->aStaged[mid].num < num)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

/* The events-side facts of actor num: first and last stored seq (0: no
** event) and the ts of the last. */
static int actorEvents(LjActorScan *p, u64 num, u64 *pFirst, u64 *pLast,
                       i64 *pTs) {
  MDB_cursor *c = p->t.ac[1];
  MDB_val k, v;
  u8 aKey[LJ_EVKEY];
  const SrStaged *st = stagedFind(p, num);
  const u8 *a;
  u32 n, nRun;
  int mrc;
  *pFirst = *pLast = 0;
  *pTs = -1;
  ljEvKey(aKey, num, 0);
  k.mv_data = aKey;
  k.mv_size = LJ_EVKEY;
  mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  if (mrc == 0 && ljEvKeyNum(k.mv_data) == num) {
    *pFirst = ljEvKeySeq(k.mv_data);
    mrc = srLastOf(c, num, &k, &v);
    nRun = mrc ? 0 : ljRunCount(v.mv_data, v.mv_size);
    if (mrc == 0 && nRun == 0) mrc = MDB_CORRUPTED;
    if (mrc == 0) mrc = ljRunRecord(v.mv_data, v.mv_size, nRun - 1, &a, &n);
    if (mrc == 0 && n < LJ_REC_HDR) mrc = MDB_CORRUPTED;
    if (mrc) return mrc;
    *pLast = ljEvKeySeq(k.mv_data) + nRun - 1;
    *pTs = ljRecTs(a);
  } else if (mrc && mrc != MDB_NOTFOUND) {
    return mrc;
  }
  if (st) {
    if (*pFirst == 0) *pFirst = st->first;
    *pLast = st->last;
    *pTs = st->ts;
  }
  return 0;
}

/* Fill the row from the actors entry under the walking cursor (key k,
** value v); the gate is held. */
static int actorLoad(LjActorScan *p, const MDB_val *k, const MDB_val *v) {
  LjActorRow *r = &p->row;
  MDB_val ks, vs;
  u64 num, floor, first, last;
  int mrc = ljActorValGet(v, &num, &floor);
  if (mrc == 0) mrc = actorEvents(p, num, &first, &last, &r->lastTs);
  if (mrc) return mrc;
  r->zActor = (const char *)p->t.aKey;
  r->nActor = (int)k->mv_size;
  r->highest = last > floor ? last : floor;
  r->first = first ? (i64)first : -1;
  r->nEvents = first ? last - first + 1 : 0;
  mrc = srLastOf(p->t.ac[2], num, &ks, &vs);
  r->snapSeq = mrc == 0 ? (i64)ljEvKeySeq(ks.mv_data) : -1;
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* memcmp order, then length: LMDB's key order and SQLite's BINARY. */
static int keyCmp(const MDB_val *k, const u8 *a, int n) {
  size_t m = k->mv_size < (size_t)n ? k->mv_size : (size_t)n;
  int c = m ? memcmp(k->mv_data, a, m) : 0;
  if (c) return c;
  return k->mv_size < (size_t)n ? -1 : k->mv_size > (size_t)n;
}

/* From the walking cursor's position (mrc: how it got there): the row,
** or EOF once past the far bound. */
static int actorSettle(LjActorScan *p, MDB_val *k, MDB_val *v, int mrc) {
  const LjActorSpec *s = &p->s;
  if (mrc == 0 && !p->t.bEof) {
    int c = s->bDesc ? (s->aLo ? keyCmp(k, s->aLo, s->nLo) : 1)
                     : (s->aHi ? -keyCmp(k, s->aHi, s->nHi) : 1);
    int bStrict = s->bDesc ? s->bLoGt : s->bHiLt;
    p->bEof = c < 0 || (c == 0 && bStrict);
    if (!p->bEof) mrc = actorLoad(p, k, v);
  } else {
    p->bEof = 1;
  }
  return mrc;
}

/* Position on the first actor of the plan: from the first key at or
** after the bound's first LJ_MAX_ACTOR_BYTES bytes (an LMDB key has at
** least one byte and a bounded length) step to the first key past what
** the bound includes (asc) or excludes (desc), then back one (desc). */
static int actorSeek(LjActorScan *p, MDB_val *k, MDB_val *v) {
  const LjActorSpec *s = &p->s;
  const u8 *aFrom = s->bDesc ? s->aHi : s->aLo;
  int nFrom = s->bDesc ? s->nHi : s->nLo;
  int bStrict = s->bDesc ? s->bHiLt : s->bLoGt;
  int mrc;
  if (aFrom == 0) return srGet(&p->t, k, v, s->bDesc ? MDB_LAST : MDB_FIRST);
  k->mv_data = (void *)aFrom;
  k->mv_size =
      (size_t)(nFrom < LJ_MAX_ACTOR_BYTES ? nFrom : LJ_MAX_ACTOR_BYTES);
  mrc = srGet(&p->t, k, v, nFrom > 0 ? MDB_SET_RANGE : MDB_FIRST);
  while (mrc == 0 && !p->t.bEof) {
    int c = keyCmp(k, aFrom, nFrom);
    if (c > 0 || (c == 0 && s->bDesc == bStrict)) break;
    mrc = srGet(&p->t, k, v, MDB_NEXT);
  }
  if (mrc || !s->bDesc) return mrc;
  return srGet(&p->t, k, v, p->t.bEof ? MDB_LAST : MDB_PREV);
}

/* Copy the spec's bounds: they must outlive the caller's values. */
static int actorSpecCopy(LjActorScan *p, const LjActorSpec *pSpec) {
  size_t n = (size_t)(pSpec->aLo ? pSpec->nLo : 0) +
             (size_t)(pSpec->aHi ? pSpec->nHi : 0);
  p->s = *pSpec;
  sqlite3_free(p->aBound);
  p->aBound = sqlite3_malloc64(n + 1);
  if (p->aBound == 0) return SQLITE_NOMEM;
  if (pSpec->aLo) {
    memcpy(p->aBound, pSpec->aLo, (size_t)pSpec->nLo);
    p->s.aLo = p->aBound;
  }
  if (pSpec->aHi) {
    size_t off = pSpec->aLo ? (size_t)pSpec->nLo : 0;
    memcpy(p->aBound + off, pSpec->aHi, (size_t)pSpec->nHi);
    p->s.aHi = p->aBound + off;
  }
  return SQLITE_OK;
}

int ljActorScanStart(LjActorScan *p, const LjActorSpec *pSpec, i64 usTimeout,
                     char **pzErr) {
  MDB_val k, v;
  int rc = actorSpecCopy(p, pSpec), mrc = 0;
  p->bEof = 1;
  if (rc == SQLITE_OK) rc = srEnter(&p->t, usTimeout, pzErr);
  if (rc) return rc;
  if (p->t.ac[0] == 0) {
    mrc = srCursor(&p->t, 0, LJ_DB_ACTORS);
    if (mrc == 0) mrc = srCursor(&p->t, 1, LJ_DB_EVENTS);
    if (mrc == 0) mrc = srCursor(&p->t, 2, LJ_DB_SNAPS);
    if (mrc == 0) mrc = stagedLoad(p);
  }
  if (mrc == 0) mrc = actorSeek(p, &k, &v);
  if (mrc == 0) mrc = actorSettle(p, &k, &v, mrc);
  ljGateLeave(p->t.pEnv);
  if (mrc) {
    *pzErr = ljMdbErr("read", mrc);
    return ljMdbToSqlite(mrc);
  }
  return SQLITE_OK;
}

int ljActorScanNext(LjActorScan *p, char **pzErr) {
  MDB_val k, v;
  int rc, mrc;
  if (p->bEof) return SQLITE_OK;
  rc = srEnter(&p->t, -1, pzErr);
  if (rc) return rc;
  mrc = srGet(&p->t, &k, &v, p->s.bDesc ? MDB_PREV : MDB_NEXT);
  mrc = actorSettle(p, &k, &v, mrc);
  ljGateLeave(p->t.pEnv);
  if (mrc) {
    *pzErr = ljMdbErr("read", mrc);
    return ljMdbToSqlite(mrc);
  }
  return SQLITE_OK;
}
