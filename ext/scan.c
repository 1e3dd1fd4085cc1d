/*
** scan.c -- the read interface of the store: the one place that knows how
** events are laid out for reading (runs, manifests, the stage, the pos, ts
** and tag indexes).  The SQL layer opens a scan, gives it a plan, and
** reads rows; it never calls LMDB.  The layout itself is drawn in layout.c.
**
**   LjScan *p;
**   LjScanSpec s = {LJ_SCAN_ACTOR, ...};
**   ljScanNew(pEnv, &p);
**   for (rc = ljScanStart(p, &s, usTimeout, &zErr);
**        rc == SQLITE_OK && !ljScanEof(p); rc = ljScanNext(p, &zErr)) {
**     const LjRow *r = ljScanRow(p);   -- actor id, seq, raw record
**     LjRec *pRec; ljScanDecode(p, &pRec);   -- the decoded record
**   }
**   ljScanFree(p);
**
** PLANS.  Each plan walks one index and fetches the events it names:
**
**   full   the events db in (actor number, seq) order, then the stage
**   actor  one actor's runs from seq lo to hi, then its staged runs
**   pos    the manifests of the pos db from pos lo to hi; each entry
**          names (actor number, seq) of one event, fetched from its run
**          or, at and after the stage's first key, from its staged batch
**   ts     the pos plan, after a binary search turns the ts window into a
**          pos window (ts is non-decreasing in pos order)
**   tag    one tag-index iterator per tag, merged in pos order without
**          duplicates, each entry fetched like the pos plan's
**
** Backwards (bDesc) each plan walks the same spans in reverse.
**
** SNAPSHOTS.  A scan opens one read transaction at its first start, after
** waiting for this process's queued appends (read-your-writes), and keeps
** it until freed, so a statement sees one consistent snapshot however
** often it restarts.  Between calls it holds no lock (see the threading
** model in registry.c): every iterator remembers its key and re-seeks if
** the map moved (LjEnv.mapGen).
**
** ROWS are copied out of the map SCAN_SLOTS at a time into a 64 KiB chunk
** aligned on its size, under one hold of the gate.  Values handed to the
** caller point into the chunk; ljScanKeep takes a reference on the chunk
** for a value the caller keeps (SQLite frees it with the destructor
** ljScanKeep returns), so no value is copied twice and no lock is taken
** per row.
*/
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One LMDB cursor and the key it stands on, kept so that it can re-seek
** after the map moved. */
typedef struct ScanIter ScanIter;
struct ScanIter {
  MDB_cursor *c;
  int bEof;
  int nKey;
  int nPrefix;  /* tag iterators: len+tag bytes */
  u32 idx;      /* the entry of the span it stands on */
  u32 nRun;     /* entries in the span */
  MDB_val vRun; /* the span's value, while vGen */
  u32 vGen;     /*   equals LjScan.fillGen */
  u8 aKey[2 + LJ_MAX_TAG_BYTES + 8];
};

#define SCAN_CHUNK 65536
#define SCAN_SLOTS 64
#define SCAN_KEEP  4 /* chunks a scan keeps, reused once the caller lets go */
#define SCAN_FULL  (-1) /* slotLoad: no room left in this chunk */

/* A chunk's references are counted without atomics: values in it are
** handed to SQLite only on the cursor's connection, released by that
** connection (SQLite copies a value before it leaves the connection), and
** a connection is used by one thread at a time -- the same threads, under
** the same serialization, as the scan that fills the chunk. */
typedef struct ScanChunk ScanChunk;
struct ScanChunk {
  int nRef;  /* the scan + values held by the caller */
  u32 nUsed; /* bytes used, header included */
};

struct LjScan {
  LjEnv *pEnv;
  MDB_txn *txn;
  unsigned gen; /* LjEnv.mapGen the iterators are positioned for */
  int ePlan;    /* LJ_SCAN_* */
  int bDesc;
  int bEof;
  ScanIter it;     /* events (full, actor) or pos (pos, ts) */
  ScanIter st;     /* staged batches (full, actor; indexed loads) */
  int bStage;      /* full, actor: walking st rather than it */
  u32 iDir;        /* ... the directory entry of the span in st */
  u64 spanNum;     /* full, actor: the span's actor ... */
  u64 spanSeq0;    /* ... and the seq of its first event */
  u64 stageLo;     /* first staged pos (UINT64_MAX: none) */
  MDB_cursor *cEv; /* pos, ts, tag: finds the events the index names;
                   ** actor: looks ahead for neighbouring cold runs */
  ScanIter *aTag;  /* tag plan: one per tag */
  int nTag;
  u64 num;        /* actor plan: the actor's number */
  u8 *aPlanActor; /* ... and its id (the lookup's key: the stored id) */
  int nPlanActor, nPlanActorAlloc;
  i64 lo, hi;        /* inclusive bounds on seq or pos */
  i64 nLimit;        /* rows the first fill stops at, -1: no hint */
  ScanChunk *pChunk; /* the chunk being filled (one of aChunk) */
  ScanChunk *aChunk[SCAN_KEEP];
  LjRow aSlot[SCAN_SLOTS];
  u8 *aOwn[SCAN_SLOTS]; /* a record too large for a chunk, per slot */
  int nSlot;            /* slots filled */
  int iSlot;            /* the current row */
  int bDone;            /* the iterators have nothing more */
  u32 fillGen;          /* bumped per fill: span values older are stale */
  u64 nameNum;          /* actor whose id was last copied into pChunk */
  const char *zNameLast;
  int nNameLast;
  LjRec rec; /* the current row, decoded when iDecoded==iSlot */
  int iDecoded;
  u8 *aUnz; /* its decompressed payload */
  size_t nUnz;
  char *zErr;        /* what a fill found damaged, for the caller */
  u64 nRows, nBytes; /* for metrics, added when freed */
  LjReaderSlot slot; /* tracked while txn is open */
  u8 *aCold;         /* cold runs read by pread (coldRun): the file's */
  size_t coldLo;     /* bytes [coldLo, coldLo + nCold), in this read */
  size_t nCold;      /* transaction (0: none) */
  size_t nColdAlloc; /* ... its allocation */
};

/**************************************************************************
** Chunks
*/

/* Chunks freed are kept for the next scans, up to SCAN_SPARE of them in
** the process: a chunk is 64 KiB, which malloc serves from fresh pages
** (mmap, or the top of the heap it trims), so every statement would pay
** 16 page faults for its chunk -- on a virtual machine about 20 us each,
** more than the whole of a short replay.  Each slot is taken and filled
** with one atomic exchange: no lock, nothing to undo at fork. */
#define SCAN_SPARE 8
static ScanChunk *aSpare[SCAN_SPARE];

static ScanChunk *chunkNew(void) {
  void *p = 0;
  ScanChunk *c = 0;
  for (int i = 0; i < SCAN_SPARE && c == 0; i++) {
    if (__atomic_load_n(&aSpare[i], __ATOMIC_RELAXED)) {
      c = __atomic_exchange_n(&aSpare[i], 0, __ATOMIC_ACQUIRE);
    }
  }
  /* Aligned allocation is what lets a value pointer find its chunk. */
  if (c == 0) {
    if (posix_memalign(&p, SCAN_CHUNK, SCAN_CHUNK)) return 0;
    c = (ScanChunk *)p;
  }
  c->nRef = 1;
  c->nUsed = sizeof(ScanChunk);
  return c;
}

/* When the library is unloaded (or the process exits), the spare chunks
** go with it: nothing could reach them after. */
__attribute__((destructor)) static void chunkSpareFree(void) {
  for (int i = 0; i < SCAN_SPARE; i++) {
    free(__atomic_exchange_n(&aSpare[i], 0, __ATOMIC_ACQUIRE));
  }
}

static void chunkUnref(ScanChunk *c) {
  if (c == 0 || --c->nRef > 0) return;
  for (int i = 0; i < SCAN_SPARE; i++) {
    ScanChunk *pNull = 0;
    if (__atomic_load_n(&aSpare[i], __ATOMIC_RELAXED) == 0 &&
        __atomic_compare_exchange_n(&aSpare[i], &pNull, c, 0, __ATOMIC_RELEASE,
                                    __ATOMIC_RELAXED)) {
      return;
    }
  }
  free(c);
}

static void chunkRelease(void *pValue) {
  chunkUnref((ScanChunk *)((uintptr_t)pValue & ~(uintptr_t)(SCAN_CHUNK - 1)));
}

/* Room for n bytes in the chunk, or NULL. */
static u8 *chunkAlloc(ScanChunk *c, size_t n) {
  u8 *a;
  if (c->nUsed + n > SCAN_CHUNK) return 0;
  a = (u8 *)c + c->nUsed;
  c->nUsed += (u32)n;
  return a;
}

/* Make p->pChunk a chunk nobody else holds: the current one if the caller
** let go of it, else a kept one the caller let go of, else a new one (in
** place of a kept chunk still held: its last holder frees it). */
static int chunkTake(LjScan *p) {
  int i, iNew = 0;
  if (p->pChunk && p->pChunk->nRef == 1) {
    p->pChunk->nUsed = sizeof(ScanChunk);
    return SQLITE_OK;
  }
  for (i = 0; i < SCAN_KEEP; i++) {
    ScanChunk *c = p->aChunk[i];
    if (c == 0 || c->nRef == 1) break;
    if (c != p->pChunk) iNew = i;
  }
  if (i == SCAN_KEEP) {
    chunkUnref(p->aChunk[iNew]);
    p->aChunk[iNew] = 0;
    i = iNew;
  }
  if (p->aChunk[i] == 0) {
    p->aChunk[i] = chunkNew();
    if (p->aChunk[i] == 0) return SQLITE_NOMEM;
  }
  p->pChunk = p->aChunk[i];
  p->pChunk->nUsed = sizeof(ScanChunk);
  return SQLITE_OK;
}

void (*ljScanKeep(LjScan *p, const void *a))(void *) {
  if (p->pChunk && (uintptr_t)a - (uintptr_t)p->pChunk < SCAN_CHUNK) {
    p->pChunk->nRef++;
    return chunkRelease;
  }
  return 0;
}

/**************************************************************************
** Iterators
*/
static int iterGet(ScanIter *it, MDB_val *pKey, MDB_val *pVal,
                   MDB_cursor_op op) {
  int mrc = mdb_cursor_get(it->c, pKey, pVal, op);
  if (mrc == 0) {
    if (pKey->mv_size > sizeof(it->aKey)) return MDB_CORRUPTED;
    memcpy(it->aKey, pKey->mv_data, pKey->mv_size);
    it->nKey = (int)pKey->mv_size;
    it->bEof = 0;
  } else if (mrc == MDB_NOTFOUND) {
    it->bEof = 1;
    mrc = 0;
  }
  return mrc;
}

/* Position on the first key >= aKey, or (bBack) the last key < aKey. */
static int iterSeek(ScanIter *it, const u8 *aKey, int nKey, int bBack,
                    MDB_val *pKey, MDB_val *pVal) {
  int mrc;
  pKey->mv_data = (void *)aKey;
  pKey->mv_size = (size_t)nKey;
  mrc = iterGet(it, pKey, pVal, MDB_SET_RANGE);
  if (mrc || !bBack) return mrc;
  return iterGet(it, pKey, pVal, it->bEof ? MDB_LAST : MDB_PREV);
}

static void iterClose(ScanIter *it) {
  if (it->c) mdb_cursor_close(it->c);
  it->c = 0;
}

/* After the map moved: re-seek every cursor to its remembered key. */
static int scanRemap(LjScan *p) {
  unsigned gen = __atomic_load_n(&p->pEnv->mapGen, __ATOMIC_ACQUIRE);
  MDB_val k, v;
  int mrc = 0;
  if (gen == p->gen) return 0;
  p->gen = gen;
  if (p->cEv) mrc = mdb_cursor_renew(p->txn, p->cEv);
  for (int i = -2; i < p->nTag && mrc == 0; i++) {
    ScanIter *it = i == -2 ? &p->st : i < 0 ? &p->it : &p->aTag[i];
    if (it->c == 0) continue;
    mrc = mdb_cursor_renew(p->txn, it->c);
    if (mrc == 0 && !it->bEof) {
      k.mv_data = it->aKey;
      k.mv_size = (size_t)it->nKey;
      mrc = mdb_cursor_get(it->c, &k, &v, MDB_SET_KEY);
    }
  }
  return mrc;
}

static void slotsClear(LjScan *p) {
  for (int i = 0; i < p->nSlot; i++) {
    sqlite3_free(p->aOwn[i]);
    p->aOwn[i] = 0;
  }
  p->nSlot = p->iSlot = 0;
  p->iDecoded = -1;
}

/* Close every iterator (the read transaction stays). */
static void scanReset(LjScan *p) {
  slotsClear(p);
  iterClose(&p->it);
  iterClose(&p->st);
  p->st.bEof = 1;
  p->bStage = 0;
  if (p->cEv) mdb_cursor_close(p->cEv);
  p->cEv = 0;
  p->nCold = 0; /* the next statement may have another transaction */
  for (int i = 0; i < p->nTag; i++) iterClose(&p->aTag[i]);
  sqlite3_free(p->aTag);
  p->aTag = 0;
  p->nTag = 0;
}

/**************************************************************************
** Copying rows into slots
*/

/* Copy actor num's id into the chunk, unless the last one copied. */
static int slotName(LjScan *p, u64 num) {
  u8 *a;
  if (num != p->nameNum) {
    MDB_val k, v;
    u8 aNum[LJ_NUMKEY];
    int mrc = 0;
    ljPut64(aNum, num);
    k.mv_data = aNum;
    k.mv_size = sizeof(aNum);
    if (p->ePlan == LJ_SCAN_ACTOR && num == p->num) {
      /* The actor plan knows the id: spares a lookup in another B-tree. */
      v.mv_data = p->aPlanActor;
      v.mv_size = (size_t)p->nPlanActor;
    } else {
      mrc = mdb_get(p->txn, p->pEnv->aDbi[LJ_DB_ACTNUM], &k, &v);
    }
    if (mrc) return mrc == MDB_NOTFOUND ? SQLITE_CORRUPT : ljMdbToSqlite(mrc);
    /* Copied with a terminator: SQLite then keeps the text as it is, where
    ** an unterminated one costs a reallocation when read as a C string. */
    if (v.mv_size == 0 || v.mv_size > LJ_MAX_ACTOR_BYTES ||
        memchr(v.mv_data, 0, v.mv_size)) {
      return SQLITE_CORRUPT;
    }
    a = chunkAlloc(p->pChunk, v.mv_size + 1);
    if (a == 0) return SCAN_FULL; /* a fresh chunk always has room for it */
    memcpy(a, v.mv_data, v.mv_size);
    a[v.mv_size] = 0;
    p->zNameLast = (const char *)a;
    p->nNameLast = (int)v.mv_size;
    p->nameNum = num;
  }
  return SQLITE_OK;
}

static void slotSet(LjScan *p, LjRow *s, u64 seq, const u8 *aRec, u32 nRec) {
  s->zActor = p->zNameLast;
  s->nActor = p->nNameLast;
  s->seq = seq;
  s->aRec = aRec;
  s->nRec = nRec;
}

/* Every record copied is checked.  Only the bench builds a module
** without the check (-DLJ_NO_READ_CHECK), to measure what it costs. */
#ifdef LJ_NO_READ_CHECK
#define SCAN_CHECK(a, n)           ((void)(a), (n) >= LJ_REC_HDR)
#define SCAN_CHECK_MANY(aa, an, n) ((void)(aa), (void)(an), (void)(n), -1)
#else
#define SCAN_CHECK(a, n)           ljRecCheck(a, n)
#define SCAN_CHECK_MANY(aa, an, n) ljRecCheckMany(aa, an, n)
#endif

/*
** A record whose checksum does not match: SQLITE_CORRUPT, and a message
** naming the event (its actor and seq from the run's key, its pos as the
** damaged record says).  Checking the copy costs one pass of the CPU's
** CRC instruction over bytes just brought into the cache (measured in
** bench/README.md), and means no read ever returns damaged bytes.
*/
static int slotDamaged(LjScan *p, u64 seq, const u8 *aRec, size_t nRec) {
  sqlite3_free(p->zErr);
  p->zErr = sqlite3_mprintf(
      "the store is damaged: checksum mismatch in the event of actor '%.*s' "
      "seq %llu (pos %llu by the record); run journal_verify and restore "
      "from a backup (docs/operations.md)",
      p->nNameLast, p->zNameLast, (unsigned long long)seq,
      nRec >= LJ_REC_HDR ? (unsigned long long)ljGet64(&aRec[LJ_REC_POS])
                         : 0ULL);
  return SQLITE_CORRUPT;
}

/* Copy one event (and its actor id, once per chunk) into the next slot. */
static int slotLoad(LjScan *p, u64 num, u64 seq, const MDB_val *pRec) {
  u8 *a;
  int rc = slotName(p, num);
  if (rc) return rc;
  a = chunkAlloc(p->pChunk, pRec->mv_size);
  if (a == 0) {
    if (p->nSlot > 0) return SCAN_FULL;
    a = p->aOwn[p->nSlot] = sqlite3_malloc64(pRec->mv_size);
    if (a == 0) return SQLITE_NOMEM;
  }
  memcpy(a, pRec->mv_data, pRec->mv_size);
  if (!SCAN_CHECK(a, pRec->mv_size)) {
    rc = slotDamaged(p, seq, a, pRec->mv_size);
    sqlite3_free(p->aOwn[p->nSlot]);
    p->aOwn[p->nSlot] = 0;
    return rc;
  }
  slotSet(p, &p->aSlot[p->nSlot], seq, a, (u32)pRec->mv_size);
  p->nRows++;
  p->nBytes += pRec->mv_size;
  p->nSlot++;
  return SQLITE_OK;
}

/* Load the event at pos that a pos or tag index entry names: staged when
** pos is at or after the stage's first key, else in its run. */
static int slotLoadIndexed(LjScan *p, u64 num, u64 seq, u64 pos) {
  MDB_val k, v, rec;
  const u8 *a = 0;
  u32 i, n = 0;
  int mrc = 0;
  if (pos >= p->stageLo) {
    mrc = ljStageRecord(p->st.c, pos, num, seq, &rec);
  } else {
    if (p->cEv == 0) {
      mrc = mdb_cursor_open(p->txn, p->pEnv->aDbi[LJ_DB_EVENTS], &p->cEv);
    }
    if (mrc == 0) mrc = ljRunFind(p->cEv, num, seq, &k, &v, &i);
    if (mrc == 0) mrc = ljRunRecord(v.mv_data, v.mv_size, i, &a, &n);
    rec.mv_data = (void *)a;
    rec.mv_size = n;
  }
  if (mrc) return mrc == MDB_NOTFOUND ? SQLITE_CORRUPT : ljMdbToSqlite(mrc);
  /* The index and the event must agree on pos (the checksum covers it). */
  if (rec.mv_size >= LJ_REC_HDR &&
      ljGet64((const u8 *)rec.mv_data + LJ_REC_POS) != pos) {
    sqlite3_free(p->zErr);
    p->zErr = sqlite3_mprintf(
        "the store is damaged: the index names event (actor number %llu, "
        "seq %llu) at pos %llu, which records pos %llu; run journal_verify",
        (unsigned long long)num, (unsigned long long)seq,
        (unsigned long long)pos,
        (unsigned long long)ljGet64((const u8 *)rec.mv_data + LJ_REC_POS));
    return SQLITE_CORRUPT;
  }
  return slotLoad(p, num, seq, &rec);
}

/**************************************************************************
** Walking spans: runs of the events db (full, actor) or manifests of the
** pos db (pos, ts), each standing on entry idx of nRun.
*/
static int isPosPlan(const LjScan *p) {
  return p->ePlan == LJ_SCAN_POS || p->ePlan == LJ_SCAN_TS;
}

/* Tag iterators: the one with the next pos in merge order. */
static ScanIter *tagPick(LjScan *p) {
  ScanIter *pBest = 0;
  u64 best = 0;
  for (int i = 0; i < p->nTag; i++) {
    ScanIter *it = &p->aTag[i];
    u64 pos;
    if (it->bEof) continue;
    pos = ljGet64(&it->aKey[it->nPrefix]);
    if (pBest == 0 || (p->bDesc ? pos > best : pos < best)) {
      pBest = it;
      best = pos;
    }
  }
  return pBest;
}

/* Is a tag iterator still inside its tag and pos range?  Marks it EOF
** when not. */
static void tagCheck(LjScan *p, ScanIter *it, const u8 *aPrefix) {
  i64 x;
  if (it->bEof) return;
  if (it->nKey != it->nPrefix + LJ_POSKEY ||
      memcmp(it->aKey, aPrefix, (size_t)it->nPrefix)) {
    it->bEof = 1;
    return;
  }
  x = (i64)ljGet64(&it->aKey[it->nPrefix]);
  if (x < p->lo || x > p->hi) it->bEof = 1;
}

/**************************************************************************
** Cold runs.  The first read of a page through the map costs a page
** fault, which maps the page's 64 KiB neighbourhood as well (the kernel's
** fault-around).  That suits runs read in file order -- a full scan, an
** actor whose runs one merge wrote together -- but not the replay of an
** actor whose runs many merges left in as many places: a fault per run,
** about 25 us each on a virtual machine, against 4-5 us for a pread of
** the same 8 KiB.  So the actor plan reads an overflow run lying in a
** window of the file that no read of this process touched yet with
** pread, into a buffer of the scan, and marks the window (LjCold): a
** second read takes the map, after which the pages stay mapped.  A run
** in a leaf page was read with the page and is left alone.
*/

/* Learn the map's address from overflow value v, for map generation gen
** (gate held).  Its header starts with its page number (LMDB's page
** layout); the page's bytes are checked against the file at the offset
** that gives, and a page that does not match turns cold reads off. */
static void coldLearn(LjEnv *pEnv, const MDB_val *v, size_t psize,
                      unsigned gen) {
  LjCold *c = &pEnv->cold;
  const u8 *aPage = (const u8 *)v->mv_data - LJ_OVERFLOW_HDR;
  u8 aFile[64];
  size_t pgno;
  uintptr_t base;
  int fd;
  memcpy(&pgno, aPage, sizeof(pgno));
  base = (uintptr_t)aPage - (uintptr_t)pgno * psize;
  if (pgno < 2 || (uintptr_t)pgno * psize > (uintptr_t)aPage ||
      base % psize != 0 || mdb_env_get_fd(pEnv->env, &fd) ||
      pread(fd, aFile, sizeof(aFile), (off_t)(pgno * psize)) !=
          (ssize_t)sizeof(aFile) ||
      memcmp(aFile, aPage, sizeof(aFile)) != 0) {
    __atomic_store_n(&c->eOff, 1, __ATOMIC_RELAXED);
    return;
  }
  __atomic_store_n(&c->base, base, __ATOMIC_RELAXED);
  __atomic_store_n(&c->gen, gen, __ATOMIC_RELEASE);
}

/* Mark the windows of [off, off+n) read; whether the first already was
** (then the run is read through the map, which maps that window). */
static int coldMark(LjCold *c, size_t off, size_t n) {
  size_t w0 = off >> LJ_COLD_SHIFT, w1 = (off + n - 1) >> LJ_COLD_SHIFT;
  int bSeen = 0;
  for (size_t w = w0; w <= w1; w++) {
    size_t i = w % (LJ_COLD_WORDS * 64);
    u64 bit = (u64)1 << (i % 64);
    if (__atomic_load_n(&c->aSeen[i / 64], __ATOMIC_RELAXED) & bit) {
      if (w == w0) bSeen = 1;
    } else {
      __atomic_fetch_or(&c->aSeen[i / 64], bit, __ATOMIC_RELAXED);
    }
  }
  return bSeen;
}

/* Where run v lies in the file (the map's address known). */
static size_t coldAt(LjCold *c, const MDB_val *v) {
  return (size_t)((uintptr_t)v->mv_data -
                  __atomic_load_n(&c->base, __ATOMIC_RELAXED));
}

/* Where run v lies in the file, if it is an overflow value and the map's
** address is known (else 0: read it through the map). */
static size_t coldOffset(LjScan *p, const MDB_val *v) {
  LjCold *c = &p->pEnv->cold;
  size_t psize = __atomic_load_n(&c->psize, __ATOMIC_RELAXED);
  if (psize == 0) {
    MDB_stat st;
    if (mdb_env_stat(p->pEnv->env, &st)) return 0;
    psize = st.ms_psize;
    __atomic_store_n(&c->psize, (u32)psize, __ATOMIC_RELAXED);
  }
  /* A value of a page or more is always on overflow pages. */
  if (v->mv_size < psize || __atomic_load_n(&c->eOff, __ATOMIC_RELAXED)) {
    return 0;
  }
  if (__atomic_load_n(&c->gen, __ATOMIC_ACQUIRE) != p->gen + 1) {
    coldLearn(p->pEnv, v, psize, p->gen + 1);
    if (__atomic_load_n(&c->gen, __ATOMIC_ACQUIRE) == p->gen + 1) {
      coldMark(c, coldAt(c, v), v->mv_size); /* read through the map */
    }
    return 0;
  }
  return coldAt(c, v);
}

/* The file pages [*pLo, *pHi) run v (at file offset off) covers. */
static void coldPages(size_t off, const MDB_val *v, size_t psize, size_t *pLo,
                      size_t *pHi) {
  *pLo = off - LJ_OVERFLOW_HDR;
  *pHi = *pLo + (LJ_OVERFLOW_HDR + v->mv_size + psize - 1) / psize * psize;
}

/*
** Extend the extent [*pLo, *pHi) of the cold run the actor plan enters
** (pages of psize bytes)
** with the actor's next runs in the plan's direction that lie right
** beside it, up to LJ_COLD_EXTENT bytes: runs that compaction (or one
** merge) wrote together are read with one pread.  Only leaf pages are
** read: LMDB gives an overflow value's address without touching it.
*/
static void coldAhead(LjScan *p, size_t psize, size_t *pLo, size_t *pHi) {
  MDB_val k, v;
  int mrc = 0;
  if (p->cEv == 0) {
    mrc = mdb_cursor_open(p->txn, p->pEnv->aDbi[LJ_DB_EVENTS], &p->cEv);
  }
  k.mv_data = p->it.aKey;
  k.mv_size = LJ_EVKEY;
  if (mrc == 0) mrc = mdb_cursor_get(p->cEv, &k, &v, MDB_SET_KEY);
  while (mrc == 0) {
    size_t lo, hi;
    mrc = mdb_cursor_get(p->cEv, &k, &v, p->bDesc ? MDB_PREV : MDB_NEXT);
    if (mrc || k.mv_size != LJ_EVKEY || ljGet64(k.mv_data) != p->num ||
        (uintptr_t)v.mv_data % psize != LJ_OVERFLOW_HDR) {
      break;
    }
    coldPages(coldAt(&p->pEnv->cold, &v), &v, psize, &lo, &hi);
    if (p->bDesc ? hi != *pLo : lo != *pHi) break;
    if ((p->bDesc ? *pHi - lo : hi - *pLo) > LJ_COLD_EXTENT) break;
    if (p->bDesc) {
      *pLo = lo;
    } else {
      *pHi = hi;
    }
  }
}

/*
** Point v at a copy read with pread when the actor plan enters a cold
** run, together with the runs beside it (coldAhead); a run the last such
** read holds is taken from the copy.  Falls back on the map silently: it
** holds the same bytes.
*/
static void coldRun(LjScan *p, MDB_val *v) {
  size_t off, psize, lo, hi;
  int fd;
  if (p->ePlan != LJ_SCAN_ACTOR || ljGet64(p->it.aKey) != p->num) return;
  off = coldOffset(p, v);
  if (off == 0) return;
  psize = __atomic_load_n(&p->pEnv->cold.psize, __ATOMIC_RELAXED);
  coldPages(off, v, psize, &lo, &hi);
  if (p->nCold && lo >= p->coldLo && hi <= p->coldLo + p->nCold) {
    v->mv_data = p->aCold + (off - p->coldLo);
    return;
  }
  if (coldMark(&p->pEnv->cold, off, v->mv_size)) return;
  coldAhead(p, psize, &lo, &hi);
  p->nCold = 0;
  if (hi - lo > p->nColdAlloc) {
    u8 *a = sqlite3_realloc64(p->aCold, hi - lo);
    if (a == 0) return;
    p->aCold = a;
    p->nColdAlloc = hi - lo;
  }
  if (mdb_env_get_fd(p->pEnv->env, &fd) ||
      pread(fd, p->aCold, hi - lo, (off_t)lo) != (ssize_t)(hi - lo)) {
    return;
  }
  coldMark(&p->pEnv->cold, lo, hi - lo);
  p->coldLo = lo;
  p->nCold = hi - lo;
  v->mv_data = p->aCold + (off - lo);
  __atomic_add_fetch(&p->pEnv->m.nColdRuns, 1, __ATOMIC_RELAXED);
}

/* The iterator entered a span (v): stand on its first or last entry. */
static void runEnter(LjScan *p, const MDB_val *pVal, int bLast) {
  ScanIter *it = &p->it;
  MDB_val run = *pVal, *v = &run;
  if (it->bEof) return;
  if (!isPosPlan(p)) {
    p->spanNum = ljGet64(it->aKey);
    p->spanSeq0 = ljGet64(&it->aKey[LJ_NUMKEY]);
  }
  if (p->ePlan == LJ_SCAN_ACTOR &&
      (p->spanNum != p->num || (!bLast && (i64)p->spanSeq0 > p->hi))) {
    /* Past the plan's range, which runCheck sees from the key alone: the
    ** value (another actor's, in a page no read may have touched) is
    ** left unread. */
    it->nRun = 0;
    it->idx = 0;
    it->vRun.mv_data = 0;
    return;
  }
  coldRun(p, v);
  it->nRun = isPosPlan(p) ? ljManiCount(v) : ljRunCount(v->mv_data, v->mv_size);
  it->idx = bLast && it->nRun ? it->nRun - 1 : 0;
  /* Remember the value: it stays valid while the gate is held (this
  ** fill), which spares a GET_CURRENT for every event of the span. */
  it->vRun = *v;
  it->vGen = p->fillGen;
}

/* Still inside the plan's range?  Marks the iterator EOF when not. */
static void runCheck(LjScan *p) {
  ScanIter *it = p->bStage ? &p->st : &p->it;
  i64 x;
  if (it->bEof || p->ePlan == LJ_SCAN_FULL) return;
  if (p->ePlan == LJ_SCAN_ACTOR) {
    if (p->spanNum != p->num) {
      it->bEof = 1;
      return;
    }
    x = (i64)(p->spanSeq0 + it->idx);
  } else {
    x = (i64)(ljGet64(it->aKey) + it->idx);
  }
  if (x < p->lo || x > p->hi) it->bEof = 1;
}

/*
** Staged spans (full, actor).  The st iterator stands on a staged batch;
** the span is the run of directory entry p->iDir in it (for the actor
** plan, the entry of p->num).  stageEnter makes the batch under st the
** current span, or answers MDB_NOTFOUND when it has none of the actor's
** events.  bLast: 1 stand on the last event, 0 on the first, -1 keep idx.
*/
static int stageEnter(LjScan *p, const MDB_val *pEnt, int bLast) {
  ScanIter *it = &p->st;
  MDB_val run;
  int mrc;
  if (p->ePlan == LJ_SCAN_ACTOR) {
    mrc = ljStageFind(pEnt, p->num, &p->iDir);
    if (mrc) return mrc;
  } else {
    u32 nAct = ljStageActors(pEnt);
    if (nAct == 0) return MDB_CORRUPTED;
    if (bLast >= 0) p->iDir = bLast ? nAct - 1 : 0;
  }
  mrc = ljStageDir(pEnt, p->iDir, &p->spanNum, &p->spanSeq0, &run);
  if (mrc) return mrc;
  it->nRun = ljRunCount(run.mv_data, run.mv_size);
  if (it->nRun == 0) return MDB_CORRUPTED;
  if (bLast >= 0) it->idx = bLast ? it->nRun - 1 : 0;
  it->vRun = run;
  it->vGen = p->fillGen;
  return 0;
}

/* Move st to the next (or previous) staged batch holding a span. */
static int stageNextBatch(LjScan *p, MDB_cursor_op op) {
  MDB_val k, v;
  int mrc;
  for (;;) {
    int bBack = op == MDB_PREV || op == MDB_LAST;
    mrc = iterGet(&p->st, &k, &v, op);
    if (mrc || p->st.bEof) return mrc;
    mrc = stageEnter(p, &v, bBack);
    if (mrc != MDB_NOTFOUND) return mrc;
    op = bBack ? MDB_PREV : MDB_NEXT;
  }
}

/* Position st on the staged event x of the actor (or the nearest one in
** the scan direction); for the full scan on the first or last span. */
static int stageSeek(LjScan *p, u64 x) {
  ScanIter *it = &p->st;
  int mrc = stageNextBatch(p, p->bDesc ? MDB_LAST : MDB_FIRST);
  while (mrc == 0 && !it->bEof && p->ePlan == LJ_SCAN_ACTOR) {
    u64 sLast = p->spanSeq0 + it->nRun - 1;
    if (p->bDesc ? p->spanSeq0 <= x : sLast >= x) {
      if (p->bDesc)
        it->idx = (u32)(x < sLast ? x - p->spanSeq0 : it->nRun - 1);
      else
        it->idx = (u32)(x > p->spanSeq0 ? x - p->spanSeq0 : 0);
      break;
    }
    mrc = stageNextBatch(p, p->bDesc ? MDB_PREV : MDB_NEXT);
  }
  runCheck(p);
  return mrc;
}

/* Step st by one event. */
static int stageStep(LjScan *p) {
  ScanIter *it = &p->st;
  MDB_val k, v;
  int mrc = 0;
  if (p->bDesc ? it->idx > 0 : it->idx + 1 < it->nRun) {
    it->idx += p->bDesc ? -1 : 1;
  } else if (p->ePlan == LJ_SCAN_FULL &&
             (mrc = mdb_cursor_get(it->c, &k, &v, MDB_GET_CURRENT)) == 0 &&
             (p->bDesc ? p->iDir > 0 : p->iDir + 1 < ljStageActors(&v))) {
    p->iDir += p->bDesc ? -1 : 1; /* the batch's next actor */
    mrc = stageEnter(p, &v, -1);
    it->idx = p->bDesc ? it->nRun - 1 : 0;
  } else if (mrc == 0) {
    mrc = stageNextBatch(p, p->bDesc ? MDB_PREV : MDB_NEXT);
  }
  runCheck(p);
  return mrc;
}

/*
** The actor plan and the full scan walk the runs, then the staged
** batches (whose seqs all come later); backwards, the other way round.
** Called when the current phase may have ended.
*/
static int runSeek(LjScan *p, u64 x);
static int phaseNext(LjScan *p) {
  MDB_val k, v;
  if (p->ePlan != LJ_SCAN_FULL && p->ePlan != LJ_SCAN_ACTOR) return 0;
  if (!p->bDesc && !p->bStage && p->it.bEof && p->st.c) {
    p->bStage = 1;
    return stageSeek(p, (u64)p->lo);
  }
  if (p->bDesc && p->bStage && p->st.bEof) {
    int mrc;
    p->bStage = 0;
    if (p->ePlan == LJ_SCAN_ACTOR) return runSeek(p, (u64)p->hi);
    mrc = iterGet(&p->it, &k, &v, MDB_LAST);
    runEnter(p, &v, 1);
    return mrc;
  }
  return 0;
}

/* Does the manifest entry the pos iterator stands on name a truncated
** event? */
static int maniDeleted(LjScan *p, int *pbDeleted) {
  MDB_val k, v;
  int mrc = mdb_cursor_get(p->it.c, &k, &v, MDB_GET_CURRENT);
  if (mrc == 0) {
    if (v.mv_size < LJ_MANI_ENTRY * ((size_t)p->it.idx + 1))
      return MDB_CORRUPTED;
    *pbDeleted = ljManiNum(v.mv_data, p->it.idx) == 0;
  }
  return mrc;
}

/* Step the span iterator by one entry, skipping the manifest entries of
** truncated events. */
static int runStep(LjScan *p) {
  ScanIter *it = &p->it;
  MDB_val k, v;
  int mrc = 0, bDeleted = 0;
  if (p->bStage) {
    mrc = stageStep(p);
    return mrc ? mrc : phaseNext(p);
  }
  do {
    if (p->bDesc ? it->idx > 0 : it->idx + 1 < it->nRun) {
      it->idx += p->bDesc ? -1 : 1; /* within the span */
    } else {
      mrc = iterGet(it, &k, &v, p->bDesc ? MDB_PREV : MDB_NEXT);
      runEnter(p, &v, p->bDesc);
    }
    if (mrc || it->bEof || !isPosPlan(p)) break;
    mrc = maniDeleted(p, &bDeleted);
  } while (mrc == 0 && bDeleted);
  runCheck(p);
  return mrc ? mrc : phaseNext(p);
}

/*
** Position the span iterator on entry x (seq of p->num, or pos), or on the
** nearest existing one in the scan direction.
*/
static int runSeek(LjScan *p, u64 x) {
  ScanIter *it = &p->it;
  MDB_val k, v;
  u8 aKey[LJ_EVKEY];
  int nPrefix = isPosPlan(p) ? 0 : LJ_NUMKEY, bDeleted = 0;
  u32 idx;
  int mrc = isPosPlan(p) ? ljManiFind(it->c, x, &k, &v, &idx)
                         : ljRunFind(it->c, p->num, x, &k, &v, &idx);
  if (mrc == 0) {
    memcpy(it->aKey, k.mv_data, k.mv_size);
    it->nKey = (int)k.mv_size;
    it->bEof = 0;
    runEnter(p, &v, 0);
    it->idx = idx;
  } else if (mrc == MDB_NOTFOUND) {
    /* Not held by any span: the first span after x, or the last before. */
    if (nPrefix) ljPut64(aKey, p->num);
    if (p->bDesc && x >= (u64)INT64_MAX) {
      if (nPrefix)
        ljEvKey(aKey, p->num + 1, 0);
      else
        ljPut64(aKey, (u64)INT64_MAX);
    } else {
      ljPut64(&aKey[nPrefix], p->bDesc ? x + 1 : x);
    }
    mrc = iterSeek(it, aKey, nPrefix + 8, p->bDesc, &k, &v);
    runEnter(p, &v, p->bDesc);
  }
  if (mrc == 0 && !it->bEof && isPosPlan(p)) {
    mrc = maniDeleted(p, &bDeleted);
    if (mrc == 0 && bDeleted) return runStep(p); /* truncated: move on */
  }
  runCheck(p);
  return mrc ? mrc : phaseNext(p);
}

/* The value of the span the iterator stands on: remembered while this
** fill holds the gate, else fetched again. */
static int spanValue(LjScan *p, ScanIter *it, MDB_val *pVal) {
  MDB_val k;
  int mrc;
  /* A run coldRun copied stays valid in later fills too: the read
  ** transaction, hence the run, is the same, and the copy does not move
  ** with the map. */
  if (it->vRun.mv_data &&
      (it->vGen == p->fillGen ||
       ((const u8 *)it->vRun.mv_data >= p->aCold &&
        (const u8 *)it->vRun.mv_data < p->aCold + p->nCold))) {
    *pVal = it->vRun;
    return 0;
  }
  mrc = mdb_cursor_get(it->c, &k, pVal, MDB_GET_CURRENT);
  if (mrc == 0 && p->bStage) {
    /* The batch: its run is the span. */
    mrc = stageEnter(p, pVal, -1);
    *pVal = it->vRun;
  } else if (mrc == 0) {
    it->vRun = *pVal;
    it->vGen = p->fillGen;
  }
  return mrc;
}

/* Does any iterator still stand on a row? */
static int scanHasRow(LjScan *p) {
  if (p->ePlan == LJ_SCAN_TAG) return tagPick(p) != 0;
  return p->bStage ? !p->st.bEof : !p->it.bEof;
}

/* Copy the row the iterators stand on into the next slot.  For the tag
** plan, the iterator with the next pos is chosen. */
static int scanLoad(LjScan *p) {
  MDB_val k, v;
  int mrc;
  ScanIter *it = p->ePlan == LJ_SCAN_TAG ? tagPick(p)
                 : p->bStage             ? &p->st
                                         : &p->it;
  if (p->ePlan == LJ_SCAN_TAG) {
    mrc = mdb_cursor_get(it->c, &k, &v, MDB_GET_CURRENT);
    if (mrc) return ljMdbToSqlite(mrc);
    if (v.mv_size != LJ_TAGVAL) return SQLITE_CORRUPT;
    return slotLoadIndexed(p, ljGet64(v.mv_data),
                           ljGet64((u8 *)v.mv_data + LJ_NUMKEY),
                           ljGet64(&it->aKey[it->nPrefix]));
  }
  mrc = spanValue(p, it, &v);
  if (mrc) return ljMdbToSqlite(mrc);
  if (isPosPlan(p)) {
    if (v.mv_size < LJ_MANI_ENTRY * ((size_t)it->idx + 1))
      return SQLITE_CORRUPT;
    return slotLoadIndexed(p, ljManiNum(v.mv_data, it->idx),
                           ljManiSeq(v.mv_data, it->idx),
                           ljGet64(it->aKey) + it->idx);
  }
  {
    MDB_val rec;
    const u8 *a;
    u32 n;
    if (ljRunRecord(v.mv_data, v.mv_size, it->idx, &a, &n)) {
      return SQLITE_CORRUPT;
    }
    rec.mv_data = (void *)a;
    rec.mv_size = n;
    return slotLoad(p, p->spanNum, p->spanSeq0 + it->idx, &rec);
  }
}

/* Step the iterators once (no loading). */
static int scanStep(LjScan *p) {
  MDB_val k, v;
  MDB_cursor_op op = p->bDesc ? MDB_PREV : MDB_NEXT;
  int mrc = 0;
  if (p->ePlan == LJ_SCAN_TAG) {
    ScanIter *pCur = tagPick(p);
    u64 pos;
    if (pCur == 0) return 0;
    pos = ljGet64(&pCur->aKey[pCur->nPrefix]);
    for (int i = 0; i < p->nTag && mrc == 0; i++) {
      ScanIter *it = &p->aTag[i];
      u8 aPrefix[2 + LJ_MAX_TAG_BYTES];
      if (it->bEof || ljGet64(&it->aKey[it->nPrefix]) != pos) continue;
      memcpy(aPrefix, it->aKey, (size_t)it->nPrefix);
      mrc = iterGet(it, &k, &v, op);
      tagCheck(p, it, aPrefix);
    }
    return mrc;
  }
  if (!scanHasRow(p)) return 0;
  return runStep(p);
}

/* One row the usual way (load, count against the limit, step). */
static int fillOne(LjScan *p) {
  int mrc, rc = scanLoad(p);
  if (rc) return rc;
  if (p->nLimit > 0) p->nLimit--;
  mrc = scanStep(p);
  return mrc ? ljMdbToSqlite(mrc) : SQLITE_OK;
}

/*
** Full and actor plans: copy the rows of the current run from the
** current one on (as many as the slots, the limit, the seq bounds and the
** chunk allow) with one memcpy, since a run's records are contiguous,
** then step past them.  Returns SQLITE_OK, SCAN_FULL or an error.
*/
static int fillSpan(LjScan *p) {
  ScanIter *it = p->bStage ? &p->st : &p->it;
  MDB_val v;
  const u8 *a0, *aLast, *a;
  u32 n0, nLast, n, first, k, j;
  const u8 *aaRec[SCAN_SLOTS];
  u32 anRec[SCAN_SLOTS];
  size_t nByte;
  u8 *aDst;
  int rc, mrc = spanValue(p, it, &v);
  if (mrc) return ljMdbToSqlite(mrc);
  if (it->idx >= it->nRun) return SQLITE_CORRUPT; /* a damaged run */
  k = p->bDesc ? it->idx + 1 : it->nRun - it->idx;
  if (k > (u32)(SCAN_SLOTS - p->nSlot)) k = (u32)(SCAN_SLOTS - p->nSlot);
  if (p->nLimit > 0 && (i64)k > p->nLimit) k = (u32)p->nLimit;
  if (p->ePlan == LJ_SCAN_ACTOR) {
    i64 x = (i64)(p->spanSeq0 + it->idx); /* within [lo, hi] (runCheck) */
    i64 nIn = p->bDesc ? x - p->lo + 1 : p->hi - x + 1;
    if (nIn < (i64)k) k = nIn > 0 ? (u32)nIn : 0;
  }
  /* Never 0 in a sound store (the callers leave a slot free, runCheck
  ** keeps x in [lo, hi]); a damaged run header can make it so. */
  if (k == 0) return SQLITE_CORRUPT;
  first = p->bDesc ? it->idx + 1 - k : it->idx;
  if (ljRunRecord(v.mv_data, v.mv_size, first, &a0, &n0) ||
      ljRunRecord(v.mv_data, v.mv_size, first + k - 1, &aLast, &nLast) ||
      aLast + nLast < a0) {
    return SQLITE_CORRUPT;
  }
  nByte = (size_t)(aLast + nLast - a0);
  rc = slotName(p, p->spanNum);
  if (rc) return rc;
  aDst = chunkAlloc(p->pChunk, nByte);
  if (aDst == 0) return fillOne(p); /* not room for them all */
  memcpy(aDst, a0, nByte);
  /* Record r spans [end[r-1], end[r]) of the run's body; the bounds of
  ** the first and last were checked above, and ends must not decrease. */
  for (j = 0; j < k; j++) {
    u32 r = p->bDesc ? it->idx - j : it->idx + j;
    u32 beg = r ? ljRunEnd(v.mv_data, r - 1) : 0, end = ljRunEnd(v.mv_data, r);
    a = ljRunBody(v.mv_data) + beg;
    n = end - beg;
    if (beg > end || a < a0 || a + n > a0 + nByte) return SQLITE_CORRUPT;
    slotSet(p, &p->aSlot[p->nSlot], p->spanSeq0 + r, aDst + (a - a0), n);
    aaRec[j] = p->aSlot[p->nSlot].aRec;
    anRec[j] = n;
    p->nSlot++;
  }
  if ((j = (u32)SCAN_CHECK_MANY(aaRec, anRec, (int)k)) != (u32)-1) {
    const LjRow *s = &p->aSlot[p->nSlot - k + j];
    return slotDamaged(p, s->seq, s->aRec, s->nRec);
  }
  p->nRows += k;
  p->nBytes += nByte;
  if (p->nLimit > 0) p->nLimit -= k;
  /* Stand on the last row copied, then step past it. */
  it->idx = p->bDesc ? first : first + k - 1;
  mrc = scanStep(p);
  return mrc ? ljMdbToSqlite(mrc) : SQLITE_OK;
}

/*
** Refill the slots: copy up to SCAN_SLOTS rows (as many as fit in a
** chunk) and step past them.  Called with the gate held.  Sets bEof when
** there is no row at all.
*/
static int fillRows(LjScan *p) {
  int rc;
  p->fillGen++;
  slotsClear(p);
  rc = chunkTake(p);
  p->nameNum = 0;
  while (rc == SQLITE_OK && p->nSlot < SCAN_SLOTS && !p->bDone) {
    if (p->nLimit == 0) break; /* as many as the caller expects */
    if (!scanHasRow(p)) {
      p->bDone = 1;
      break;
    }
    if (p->ePlan == LJ_SCAN_FULL || p->ePlan == LJ_SCAN_ACTOR) {
      rc = fillSpan(p);
    } else {
      rc = fillOne(p);
    }
  }
  if (rc == SCAN_FULL) rc = SQLITE_OK;
  if (rc == SQLITE_OK) p->bEof = p->nSlot == 0;
  if (rc == SQLITE_CORRUPT && p->zErr == 0) {
    p->zErr = sqlite3_mprintf(
        "the store is damaged: a malformed run, manifest, staged batch or "
        "index entry; run journal_verify");
  }
  return rc;
}

/* Hand the fill's message, if any, to the caller. */
static void scanTakeErr(LjScan *p, char **pzErr) {
  if (p->zErr && *pzErr == 0) {
    *pzErr = p->zErr;
    p->zErr = 0;
  }
}

/**************************************************************************
** Starting a plan
*/

/* Smallest pos whose ts is >= ts (bAfter: > ts); one past the end if none.
** ts is non-decreasing in pos order, so this is a binary search over the
** pos key space.  Truncated entries keep their ts, so every pos of a
** manifest has one; a whole manifest deleted leaves a gap, whose positions
** answer like the next existing pos after them.  Every round shrinks
** [lo, hi), so the search ends. */
static int posForTs(LjScan *p, i64 ts, int bAfter, i64 *pPos) {
  MDB_val k, v;
  int mrc;
  u64 lo, hi;
  mrc = iterGet(&p->it, &k, &v, MDB_FIRST);
  if (mrc || p->it.bEof) {
    *pPos = 1;
    return mrc;
  }
  lo = ljGet64(k.mv_data);
  mrc = iterGet(&p->it, &k, &v, MDB_LAST);
  if (mrc) return mrc;
  hi = ljGet64(k.mv_data) + ljManiCount(&v);
  while (lo < hi) {
    u64 mid = lo + (hi - lo) / 2, at = mid;
    u32 idx;
    i64 tsAt;
    mrc = ljManiFind(p->it.c, mid, &k, &v, &idx);
    if (mrc == MDB_NOTFOUND) { /* a gap: the next manifest answers */
      u8 aKey[LJ_POSKEY];
      ljPut64(aKey, mid);
      k.mv_data = aKey;
      k.mv_size = LJ_POSKEY;
      mrc = mdb_cursor_get(p->it.c, &k, &v, MDB_SET_RANGE);
      idx = 0;
      if (mrc == MDB_NOTFOUND) {
        hi = mid;
        continue;
      }
      if (mrc == 0) at = ljGet64(k.mv_data);
    }
    if (mrc) return mrc;
    if (v.mv_size < LJ_MANI_ENTRY * ((size_t)idx + 1)) return MDB_CORRUPTED;
    tsAt = ljManiTs(v.mv_data, idx);
    /* mid .. at-1 is a gap, so the answer is <= mid or > at. */
    if (bAfter ? tsAt > ts : tsAt >= ts)
      hi = mid;
    else
      lo = at + 1;
  }
  *pPos = (i64)lo;
  return 0;
}

/* The tag plan: one iterator per tag, positioned at the range's start. */
static int startTags(LjScan *p, const LjScanSpec *s) {
  MDB_val k, v;
  int mrc = 0;
  p->aTag =
      sqlite3_malloc64(sizeof(ScanIter) * (size_t)(s->nTag ? s->nTag : 1));
  if (p->aTag == 0) return ENOMEM;
  for (int i = 0; i < s->nTag && mrc == 0; i++) {
    ScanIter *it = &p->aTag[p->nTag];
    u8 aKey[2 + LJ_MAX_TAG_BYTES + LJ_POSKEY];
    int nTag = s->anTag[i], nKey;
    if (nTag <= 0 || nTag > LJ_MAX_TAG_BYTES) continue; /* matches nothing */
    memset(it, 0, sizeof(*it));
    p->nTag++;
    it->nPrefix = 2 + nTag;
    nKey = ljTagKey(aKey, s->aaTag[i], nTag,
                    p->bDesc
                        ? (p->hi == INT64_MAX ? (u64)INT64_MAX : (u64)p->hi + 1)
                        : (u64)p->lo);
    mrc = mdb_cursor_open(p->txn, p->pEnv->aDbi[LJ_DB_TAGS], &it->c);
    if (mrc == 0) mrc = iterSeek(it, aKey, nKey, p->bDesc, &k, &v);
    if (mrc == 0) tagCheck(p, it, aKey);
  }
  return mrc;
}

/* Position the iterators for the plan.  *pbEmpty is set when nothing can
** match. */
static int startPlan(LjScan *p, const LjScanSpec *s, int *pbEmpty) {
  MDB_val k, v;
  int mrc = 0;
  switch (p->ePlan) {
    case LJ_SCAN_FULL:
      if (p->bDesc && p->st.c) {
        p->bStage = 1;
        mrc = stageSeek(p, 0);
      } else {
        mrc = iterGet(&p->it, &k, &v, p->bDesc ? MDB_LAST : MDB_FIRST);
        runEnter(p, &v, p->bDesc);
      }
      return mrc ? mrc : phaseNext(p);
    case LJ_SCAN_ACTOR: {
      u64 floor;
      mrc = ljActorLoad(p->pEnv, p->txn, s->aActor, s->nActor, &p->num, 0,
                        &floor);
      if (mrc || p->num == 0) {
        *pbEmpty = 1;
        return mrc;
      }
      if (s->nActor > p->nPlanActorAlloc) {
        u8 *a = sqlite3_realloc64(p->aPlanActor, (u64)s->nActor);
        if (a == 0) return ENOMEM;
        p->aPlanActor = a;
        p->nPlanActorAlloc = s->nActor;
      }
      memcpy(p->aPlanActor, s->aActor, (size_t)s->nActor);
      p->nPlanActor = s->nActor;
      if (p->bDesc && p->st.c) {
        p->bStage = 1;
        mrc = stageSeek(p, (u64)p->hi);
        return mrc ? mrc : phaseNext(p);
      }
      return runSeek(p, p->bDesc ? (u64)p->hi : (u64)p->lo);
    }
    case LJ_SCAN_TS: {
      /* ts bounds become pos bounds. */
      i64 posLo, posHi;
      mrc = posForTs(p, p->lo, 0, &posLo);
      if (mrc == 0) mrc = posForTs(p, p->hi, 1, &posHi);
      if (mrc) return mrc;
      p->lo = posLo;
      p->hi = posHi - 1;
      if (p->lo > p->hi) {
        *pbEmpty = 1;
        return 0;
      }
      return runSeek(p, p->bDesc ? (u64)p->hi : (u64)p->lo);
    }
    case LJ_SCAN_POS: return runSeek(p, p->bDesc ? (u64)p->hi : (u64)p->lo);
    default: assert(p->ePlan == LJ_SCAN_TAG); return startTags(p, s);
  }
}

/* Open the iterators the plan walks, and the stage's. */
static int openIters(LjScan *p) {
  MDB_val k, v;
  int mrc = 0;
  int iDb = (p->ePlan == LJ_SCAN_FULL || p->ePlan == LJ_SCAN_ACTOR)
                ? LJ_DB_EVENTS
                : LJ_DB_POS;
  if (p->ePlan != LJ_SCAN_TAG) {
    mrc = mdb_cursor_open(p->txn, p->pEnv->aDbi[iDb], &p->it.c);
  }
  if (mrc == 0)
    mrc = mdb_cursor_open(p->txn, p->pEnv->aDbi[LJ_DB_STAGE], &p->st.c);
  if (mrc == 0) mrc = iterGet(&p->st, &k, &v, MDB_FIRST);
  if (mrc) return mrc;
  p->stageLo = p->st.bEof ? UINT64_MAX : ljGet64(p->st.aKey);
  if (p->st.bEof) iterClose(&p->st);
  return 0;
}

/* Begin the read transaction, or re-seek in it if the map moved.  Called
** with the gate held. */
static int scanTxn(LjScan *p) {
  int mrc;
  if (p->txn) return scanRemap(p);
  mrc = ljReadBegin(p->pEnv, &p->txn);
  p->gen = __atomic_load_n(&p->pEnv->mapGen, __ATOMIC_ACQUIRE);
  if (mrc) {
    p->txn = 0;
    return mrc;
  }
  ljReaderTrack(p->pEnv, &p->slot);
  return 0;
}

int ljScanStart(LjScan *p, const LjScanSpec *s, i64 usTimeout, char **pzErr) {
  int mrc, rc = SQLITE_OK, bEmpty = 0;
  /* The snapshot: taken once, after this process's queued appends (not
  ** waited for when usTimeout < 0: what is committed). */
  if (p->txn == 0 && usTimeout >= 0 && ljFlushForRead(p->pEnv, usTimeout)) {
    *pzErr = sqlite3_mprintf("timed out waiting for queued appends to commit");
    return SQLITE_BUSY;
  }
  ljGateEnter(p->pEnv);
  mrc = scanTxn(p);
  if (mrc == 0) {
    scanReset(p);
    p->ePlan = s->ePlan;
    p->bDesc = s->bDesc;
    p->bEof = 0;
    p->bDone = 0;
    p->nLimit = s->nLimit < -1 ? -1 : s->nLimit;
    p->lo = s->lo < 0 ? 0 : s->lo;
    p->hi = s->hi;
    if (p->lo > p->hi) bEmpty = 1;
  }
  if (mrc == 0 && !bEmpty) mrc = openIters(p);
  if (mrc == 0 && !bEmpty) mrc = startPlan(p, s, &bEmpty);
  if (mrc == 0 && !bEmpty) rc = fillRows(p);
  if (bEmpty) p->bEof = 1;
  ljGateLeave(p->pEnv);
  if (mrc) {
    *pzErr = ljMdbErr("read", mrc);
    rc = ljMdbToSqlite(mrc);
  }
  if (rc) scanTakeErr(p, pzErr);
  return rc;
}

int ljScanTruncLog(LjScan *p, u64 pos, u32 sub, LjTrunc *a, int nMax, int *pn,
                   char **pzErr) {
  int mrc;
  *pn = 0;
  ljGateEnter(p->pEnv);
  mrc = scanTxn(p);
  if (mrc == 0) mrc = ljTruncLogRead(p->pEnv, p->txn, pos, sub, a, nMax, pn);
  ljGateLeave(p->pEnv);
  if (mrc) *pzErr = ljMdbErr("reading the truncation log", mrc);
  return mrc ? ljMdbToSqlite(mrc) : SQLITE_OK;
}

int ljScanNext(LjScan *p, char **pzErr) {
  int mrc, rc;
  if (++p->iSlot < p->nSlot) return SQLITE_OK;
  if (p->bDone) {
    p->bEof = 1;
    return SQLITE_OK;
  }
  p->nLimit = -1; /* the caller wants more than it expected */
  ljGateEnter(p->pEnv);
  mrc = scanRemap(p);
  rc = mrc ? ljMdbToSqlite(mrc) : fillRows(p);
  ljGateLeave(p->pEnv);
  if (mrc) *pzErr = ljMdbErr("read", mrc);
  if (rc) scanTakeErr(p, pzErr);
  return rc;
}

int ljScanEof(const LjScan *p) {
  return p->bEof;
}

const LjRow *ljScanRow(const LjScan *p) {
  assert(!p->bEof && p->iSlot < p->nSlot);
  return &p->aSlot[p->iSlot];
}

int ljScanDecode(LjScan *p, const LjRec **ppRec) {
  const LjRow *s = ljScanRow(p);
  int rc = SQLITE_OK;
  if (p->iDecoded != p->iSlot) {
    p->iDecoded = p->iSlot;
    rc = ljRecDecode(s->aRec, s->nRec, &p->rec, &p->aUnz, &p->nUnz);
  }
  *ppRec = &p->rec;
  return rc;
}

int ljScanPayload(LjScan *p, u8 *pe, const u8 **pa, int *pn) {
  const LjRow *s = ljScanRow(p);
  const LjRec *r;
  int rc;
  if (p->iDecoded != p->iSlot) {
    rc = ljRecPayload(s->aRec, s->nRec, pe, pa, pn);
    if (rc != SQLITE_DONE) return rc;
  }
  rc = ljScanDecode(p, &r);
  if (rc == SQLITE_OK) {
    *pe = r->ePayload;
    *pa = r->aPayload;
    *pn = r->nPayload;
  }
  return rc;
}

int ljScanNew(LjEnv *pEnv, LjScan **pp) {
  LjScan *p = sqlite3_malloc64(sizeof(*p));
  *pp = p;
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->pEnv = pEnv;
  p->bEof = 1;
  p->iDecoded = -1;
  return SQLITE_OK;
}

void ljScanFree(LjScan *p) {
  if (p == 0) return;
  if (p->txn) {
    ljGateEnter(p->pEnv);
    scanReset(p);
    mdb_txn_abort(p->txn);
    ljGateLeave(p->pEnv);
    ljReaderUntrack(p->pEnv, &p->slot);
  }
  if (p->nRows) {
    __atomic_add_fetch(&p->pEnv->m.nRowsRead, p->nRows, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->pEnv->m.nBytesRead, p->nBytes, __ATOMIC_RELAXED);
  }
  slotsClear(p);
  for (int i = 0; i < SCAN_KEEP; i++) chunkUnref(p->aChunk[i]);
  sqlite3_free(p->zErr);
  sqlite3_free(p->aUnz);
  sqlite3_free(p->aCold);
  sqlite3_free(p->aPlanActor);
  sqlite3_free(p);
}
