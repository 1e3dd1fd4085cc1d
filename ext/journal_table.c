/*
** journal_table.c -- the lmdb_journal virtual table.
**
**   CREATE VIRTUAL TABLE j USING lmdb_journal(path='data/journal' [, opt=v]);
**   INSERT INTO j(actor_id, payload, type) VALUES('order-1', '{"n":1}', 'Placed');
**   SELECT seq, payload FROM j WHERE actor_id='order-1' AND seq>=2 ORDER BY seq;
**   SELECT * FROM j WHERE pos > :last ORDER BY pos LIMIT 100;   -- change feed
**
** Columns (rowid is pos):
**
**   0 actor_id  TEXT     persistence id
**   1 seq       INTEGER  per-actor sequence number
**   2 pos       INTEGER  global position, gap-free in commit order
**   3 ts        INTEGER  write time, ms since the epoch, ordered with pos
**   4 type      TEXT     event type / manifest
**   5 payload   any      the event, storage class preserved
**   6 meta      any      metadata
**   7 tags      TEXT     JSON array of tags
**   8 tag       HIDDEN   filter only: tag = ? / tag IN (...)
**
** The options are documented in config.c, the storage layout in layout.c.
**
** QUERY PLANS.  xBestIndex picks one plan and encodes it in idxNum:
**
**   bits 0-2  plan   0 fullscan  events in (actor number, seq) order
**                    1 actor     one actor's events by seq
**                    2 pos       the pos index, optionally bounded
**                    3 ts        the pos index, bounded by a ts window
**                                (ts is non-decreasing in pos order, so
**                                the window is found by binary search)
**                    4 tag       the tag index, per tag in pos order
**   0x0008  DESC     walk backwards (an ORDER BY ... DESC was consumed)
**   0x0010  KEY      argv has the actor id (plan 1) or tag (plan 4)
**   0x0020  EQ       argv has one value that is both bounds
**   0x0040  LO       argv has a lower bound; 0x0080: it is strict (>)
**   0x0100  HI       argv has an upper bound; 0x0200: it is strict (<)
**   0x0400  LIMIT    argv has the LIMIT
**   0x0800  OFFSET   argv has the OFFSET
**   0x1000  TAGIN    the tag argument is an IN list, processed at once
**                    (sqlite3_vtab_in) and merged in pos order without
**                    duplicates
**
** The argv values come in that order: key, bound(s), limit, offset.  The
** bounds apply to seq (actor), pos (pos, tag) or ts (ts).  idxStr spells
** the plan out for EXPLAIN QUERY PLAN, e.g. "actor=? seq>=? desc limit".
** LIMIT and OFFSET are consumed only when every other constraint and the
** ORDER BY are.
**
** SNAPSHOTS.  A cursor opens one read transaction at its first xFilter,
** after waiting for this process's queued appends (read-your-writes), and
** keeps it to the end, so a statement sees one consistent snapshot.
** Between calls it holds no lock (see the threading model in registry.c):
** it remembers its keys and re-seeks if the map moved.  Each row is copied
** out of the map in xNext, so xColumn never touches LMDB.
**
** WRITES.  INSERTs are buffered per table in xUpdate and submitted as one
** request in xSync, which waits for the commit (and durability); xRollback
** and ROLLBACK TO discard the buffer or its tail.
*/
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
  COL_ACTOR = 0, COL_SEQ, COL_POS, COL_TS, COL_TYPE, COL_PAYLOAD, COL_META,
  COL_TAGS, COL_TAG
};

#define JT_PLAN_FULL 0
#define JT_PLAN_ACTOR 1
#define JT_PLAN_POS 2
#define JT_PLAN_TS 3
#define JT_PLAN_TAG 4
#define JT_PLAN_MASK 0x0007
#define JT_DESC 0x0008
#define JT_KEY 0x0010
#define JT_EQ 0x0020
#define JT_LO 0x0040
#define JT_LO_GT 0x0080
#define JT_HI 0x0100
#define JT_HI_LT 0x0200
#define JT_LIMIT 0x0400
#define JT_OFFSET 0x0800
#define JT_TAGIN 0x1000

/**************************************************************************
** Pending INSERTs of the open transaction
*/
struct JtPending {
  LjEvent *aEv;
  int nEv, nEvAlloc;
  int *aSave;     /* nEv at the start of each savepoint level */
  int nSave;
  LjActor **apCnt; /* open-addressing set: actor -> pending count */
  i64 *aCnt;
  int nCntSlot;
};

static void pendTruncate(JtPending *p, int nKeep) {
  while (p->nEv > nKeep) sqlite3_free(p->aEv[--p->nEv].aRec);
  if (p->apCnt) memset(p->apCnt, 0, sizeof(LjActor *) * (size_t)p->nCntSlot);
}

static void pendFree(JtPending *p) {
  if (p) {
    pendTruncate(p, 0);
    sqlite3_free(p->aEv);
    sqlite3_free(p->aSave);
    sqlite3_free(p->apCnt);
    sqlite3_free(p->aCnt);
    sqlite3_free(p);
  }
}

/* Slot of an actor in the count set (grown by the caller). */
static int pendSlot(JtPending *p, LjActor *a) {
  int i = (int)(((uintptr_t)a >> 4) * 2654435761u) & (p->nCntSlot - 1);
  while (p->apCnt[i] && p->apCnt[i] != a) i = (i + 1) & (p->nCntSlot - 1);
  return i;
}

/* Pending events of actor a (recounted after a partial rollback). */
static i64 pendCount(JtPending *p, LjActor *a) {
  int i;
  if (p->nCntSlot == 0) return 0;
  i = pendSlot(p, a);
  if (p->apCnt[i]) return p->aCnt[i];
  /* Not in the set: counted lazily after a truncation cleared it. */
  {
    i64 n = 0;
    for (int k = 0; k < p->nEv; k++) n += (p->aEv[k].pActor == a);
    p->apCnt[i] = a;
    p->aCnt[i] = n;
    return n;
  }
}

static int pendAdd(JtPending *p, LjEvent *pEv) {
  if (p->nEv >= p->nEvAlloc) {
    int nNew = p->nEvAlloc ? p->nEvAlloc * 2 : 16;
    LjEvent *a = sqlite3_realloc64(p->aEv, sizeof(LjEvent) * (size_t)nNew);
    if (a == 0) return SQLITE_NOMEM;
    p->aEv = a;
    p->nEvAlloc = nNew;
  }
  if (p->nEv * 2 >= p->nCntSlot) {
    int nNew = p->nCntSlot ? p->nCntSlot * 4 : 64;
    LjActor **ap = sqlite3_malloc64(sizeof(LjActor *) * (size_t)nNew);
    i64 *a = sqlite3_malloc64(sizeof(i64) * (size_t)nNew);
    if (ap == 0 || a == 0) {
      sqlite3_free(ap);
      sqlite3_free(a);
      return SQLITE_NOMEM;
    }
    memset(ap, 0, sizeof(LjActor *) * (size_t)nNew);
    sqlite3_free(p->apCnt);
    sqlite3_free(p->aCnt);
    p->apCnt = ap; /* recounted lazily by pendCount */
    p->aCnt = a;
    p->nCntSlot = nNew;
  }
  {
    i64 n = pendCount(p, pEv->pActor);
    p->aCnt[pendSlot(p, pEv->pActor)] = n + 1;
  }
  p->aEv[p->nEv++] = *pEv;
  return SQLITE_OK;
}

/**************************************************************************
** Connecting
*/
static const char zSchema[] =
    "CREATE TABLE x(actor_id TEXT, seq INTEGER, pos INTEGER, ts INTEGER, "
    "type TEXT, payload, meta, tags TEXT, tag HIDDEN)";

static int jtDisconnect(sqlite3_vtab *pVtab);

static int jtConnect(sqlite3 *db, void *pAux, int argc,
                     const char *const *argv, sqlite3_vtab **ppVtab,
                     char **pzErr) {
  LjConn *pConn = (LjConn *)pAux;
  LjTable *p;
  int rc;

  p = sqlite3_malloc64(sizeof(*p));
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->zDb = sqlite3_mprintf("%s", argv[1]);
  p->zName = sqlite3_mprintf("%s", argv[2]);
  if (p->zDb == 0 || p->zName == 0) {
    ljTableFree(p);
    return SQLITE_NOMEM;
  }
  rc = ljConfigParse(&p->cfg, argc - 3, &argv[3], pzErr);
  if (rc == SQLITE_OK) rc = ljEnvOpen(&p->cfg, &p->pEnv, pzErr);
  if (rc == SQLITE_OK) {
    p->pClient = ljClientNew(p->pEnv, p->cfg.eDurability, p->cfg.eAppendMode);
    if (p->pClient == 0) rc = SQLITE_NOMEM;
  }
  if (rc == SQLITE_OK) rc = sqlite3_declare_vtab(db, zSchema);
  if (rc != SQLITE_OK) {
    ljClientFree(p->pClient);
    ljEnvRelease(p->pEnv);
    ljTableFree(p);
    return rc;
  }
  sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
  p->pConn = pConn;
  pConn->nRef++;
  p->pNext = pConn->pList;
  pConn->pList = p;
  *ppVtab = &p->base;
  return SQLITE_OK;
}

static int jtDisconnect(sqlite3_vtab *pVtab) {
  LjTable *p = (LjTable *)pVtab;
  LjTable **pp;
  if (p->pConn->pLast == p) p->pConn->pLast = 0;
  for (pp = &p->pConn->pList; *pp; pp = &(*pp)->pNext) {
    if (*pp == p) {
      *pp = p->pNext;
      break;
    }
  }
  pendFree(p->pPending);
  p->pPending = 0;
  ljClientFree(p->pClient); /* flushes this table's queued appends */
  p->pClient = 0;
  ljEnvRelease(p->pEnv);
  p->pEnv = 0;
  ljConnUnref(p->pConn);
  ljTableFree(p);
  return SQLITE_OK;
}

static int jtRename(sqlite3_vtab *pVtab, const char *zNew) {
  LjTable *p = (LjTable *)pVtab;
  char *z = sqlite3_mprintf("%s", zNew);
  if (z == 0) return SQLITE_NOMEM;
  sqlite3_free(p->zName);
  p->zName = z;
  if (p->pConn->pLast == p) p->pConn->pLast = 0;
  return SQLITE_OK;
}

/**************************************************************************
** Planning
*/
static int isBoundOp(int op) {
  return op == SQLITE_INDEX_CONSTRAINT_EQ || op == SQLITE_INDEX_CONSTRAINT_GT ||
         op == SQLITE_INDEX_CONSTRAINT_GE || op == SQLITE_INDEX_CONSTRAINT_LT ||
         op == SQLITE_INDEX_CONSTRAINT_LE;
}

/* Constraints found on one column usable as bounds. */
typedef struct JtBounds JtBounds;
struct JtBounds {
  int iEq, iLo, iHi;
};

static void boundsScan(sqlite3_index_info *p, int iCol, int iCol2,
                       JtBounds *b) {
  b->iEq = b->iLo = b->iHi = -1;
  for (int i = 0; i < p->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &p->aConstraint[i];
    if (!c->usable || (c->iColumn != iCol && c->iColumn != iCol2)) continue;
    if (!isBoundOp(c->op)) continue;
    if (c->op == SQLITE_INDEX_CONSTRAINT_EQ) {
      if (b->iEq < 0) b->iEq = i;
    } else if (c->op == SQLITE_INDEX_CONSTRAINT_GT ||
               c->op == SQLITE_INDEX_CONSTRAINT_GE) {
      if (b->iLo < 0) b->iLo = i;
    } else if (b->iHi < 0) {
      b->iHi = i;
    }
  }
}

/* Can the plan deliver the ORDER BY?  *pbDesc gets its direction. */
static int orderConsumable(sqlite3_index_info *p, int ePlan, int *pbDesc) {
  int bDesc = -1;
  for (int i = 0; i < p->nOrderBy; i++) {
    int iCol = p->aOrderBy[i].iColumn;
    int ok;
    if (ePlan == JT_PLAN_ACTOR && iCol == COL_ACTOR) continue; /* constant */
    ok = iCol == COL_POS || iCol == -1 || iCol == COL_TS ||
         (ePlan == JT_PLAN_ACTOR && iCol == COL_SEQ);
    if (!ok || ePlan == JT_PLAN_FULL) return 0;
    if (bDesc >= 0 && bDesc != p->aOrderBy[i].desc) return 0;
    bDesc = p->aOrderBy[i].desc;
  }
  *pbDesc = bDesc > 0;
  return 1;
}

static int jtBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p) {
  int iActor = -1, iTag = -1, iLimit = -1, iOffset = -1;
  int ePlan, idxNum = 0, nArg = 0, bDesc = 0, bActorIn = 0;
  JtBounds b;
  double rows;
  char *zStr;
  const char *zCol = "";
  int i;

  for (i = 0; i < p->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &p->aConstraint[i];
    if (c->iColumn == COL_TAG) {
      if (c->op != SQLITE_INDEX_CONSTRAINT_EQ) {
        pVtab->zErrMsg = sqlite3_mprintf(
            "the tag column supports only tag = ? and tag IN (...)");
        return SQLITE_ERROR;
      }
      if (!c->usable) return SQLITE_CONSTRAINT; /* not a plan SQLite can use */
      if (iTag >= 0) {
        pVtab->zErrMsg = sqlite3_mprintf(
            "only one tag constraint is supported; use tag IN (...) or "
            "json_each(tags) for combinations");
        return SQLITE_ERROR;
      }
      iTag = i;
    } else if (c->usable && c->iColumn == COL_ACTOR &&
               c->op == SQLITE_INDEX_CONSTRAINT_EQ && iActor < 0) {
      iActor = i;
    } else if (c->usable && c->op == SQLITE_INDEX_CONSTRAINT_LIMIT) {
      iLimit = i;
    } else if (c->usable && c->op == SQLITE_INDEX_CONSTRAINT_OFFSET) {
      iOffset = i;
    }
  }

  /* Choose the plan and the column its bounds apply to. */
  if (iTag >= 0) {
    ePlan = JT_PLAN_TAG;
    boundsScan(p, COL_POS, -1, &b);
    rows = 1000;
  } else if (iActor >= 0) {
    ePlan = JT_PLAN_ACTOR;
    boundsScan(p, COL_SEQ, COL_SEQ, &b);
    rows = 1000;
  } else {
    boundsScan(p, COL_POS, -1, &b);
    ePlan = JT_PLAN_POS;
    rows = 100000;
    if (b.iEq < 0 && b.iLo < 0 && b.iHi < 0) {
      boundsScan(p, COL_TS, COL_TS, &b);
      ePlan = JT_PLAN_TS;
      rows = 150000;
      if (b.iEq < 0 && b.iLo < 0 && b.iHi < 0) {
        ePlan = JT_PLAN_FULL;
        rows = 1000000;
        if (p->nOrderBy > 0 && orderConsumable(p, JT_PLAN_POS, &bDesc)) {
          ePlan = JT_PLAN_POS; /* a full scan in pos order */
          rows = 1200000;
        }
      }
    }
  }
  idxNum = ePlan;

  if (iTag >= 0) {
    p->aConstraintUsage[iTag].argvIndex = ++nArg;
    p->aConstraintUsage[iTag].omit = 1;
    idxNum |= JT_KEY;
    if (sqlite3_vtab_in(p, iTag, 1)) {
      idxNum |= JT_TAGIN;
      rows *= 4;
    }
  } else if (iActor >= 0) {
    p->aConstraintUsage[iActor].argvIndex = ++nArg;
    p->aConstraintUsage[iActor].omit = 1;
    idxNum |= JT_KEY;
    bActorIn = sqlite3_vtab_in(p, iActor, -1);
  }
  if (b.iEq >= 0) {
    p->aConstraintUsage[b.iEq].argvIndex = ++nArg;
    p->aConstraintUsage[b.iEq].omit = 1;
    idxNum |= JT_EQ;
    rows = 1;
  } else {
    if (b.iLo >= 0) {
      p->aConstraintUsage[b.iLo].argvIndex = ++nArg;
      p->aConstraintUsage[b.iLo].omit = 1;
      idxNum |= JT_LO;
      if (p->aConstraint[b.iLo].op == SQLITE_INDEX_CONSTRAINT_GT)
        idxNum |= JT_LO_GT;
      rows /= 4;
    }
    if (b.iHi >= 0) {
      p->aConstraintUsage[b.iHi].argvIndex = ++nArg;
      p->aConstraintUsage[b.iHi].omit = 1;
      idxNum |= JT_HI;
      if (p->aConstraint[b.iHi].op == SQLITE_INDEX_CONSTRAINT_LT)
        idxNum |= JT_HI_LT;
      rows /= 4;
    }
  }
  if (ePlan == JT_PLAN_POS && b.iEq >= 0) {
    p->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
  }
  if (p->nOrderBy > 0 && !bActorIn && orderConsumable(p, ePlan, &bDesc)) {
    p->orderByConsumed = 1;
    if (bDesc) idxNum |= JT_DESC;
  }

  /* LIMIT/OFFSET only when nothing is left for SQLite to filter or sort. */
  if (iLimit >= 0 && !bActorIn && (p->nOrderBy == 0 || p->orderByConsumed)) {
    int bAll = 1;
    for (i = 0; i < p->nConstraint; i++) {
      int op = p->aConstraint[i].op;
      if (op == SQLITE_INDEX_CONSTRAINT_LIMIT ||
          op == SQLITE_INDEX_CONSTRAINT_OFFSET)
        continue;
      if (!p->aConstraintUsage[i].omit) bAll = 0;
    }
    if (bAll) {
      p->aConstraintUsage[iLimit].argvIndex = ++nArg;
      p->aConstraintUsage[iLimit].omit = 1;
      idxNum |= JT_LIMIT;
      if (iOffset >= 0) {
        p->aConstraintUsage[iOffset].argvIndex = ++nArg;
        p->aConstraintUsage[iOffset].omit = 1;
        idxNum |= JT_OFFSET;
      }
      if (rows > 1000) rows = 1000; /* the limit's value is unknown here */
    }
  }

  switch (ePlan) {
    case JT_PLAN_ACTOR: zCol = "seq"; break;
    case JT_PLAN_TS: zCol = "ts"; break;
    case JT_PLAN_POS:
    case JT_PLAN_TAG: zCol = "pos"; break;
  }
  zStr = sqlite3_mprintf(
      "%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s",
      ePlan == JT_PLAN_FULL    ? "fullscan"
      : ePlan == JT_PLAN_ACTOR ? "actor"
      : ePlan == JT_PLAN_POS   ? "pos"
      : ePlan == JT_PLAN_TS    ? "ts"
                               : "tag",
      (idxNum & JT_TAGIN) ? " in(...)" : (idxNum & JT_KEY) ? "=?" : "",
      (idxNum & JT_EQ) ? " " : "", (idxNum & JT_EQ) ? zCol : "",
      (idxNum & JT_EQ) ? "=?" : "", (idxNum & JT_LO) ? " " : "",
      (idxNum & JT_LO) ? zCol : "",
      (idxNum & JT_LO) ? ((idxNum & JT_LO_GT) ? ">?" : ">=?") : "",
      (idxNum & JT_HI) ? " " : "", (idxNum & JT_HI) ? zCol : "",
      (idxNum & JT_HI) ? ((idxNum & JT_HI_LT) ? "<?" : "<=?") : "",
      p->orderByConsumed ? ((idxNum & JT_DESC) ? " order desc" : " order asc")
                         : "",
      (idxNum & JT_LIMIT) ? " limit" : "", (idxNum & JT_OFFSET) ? " offset" : "",
      "");
  if (zStr == 0) return SQLITE_NOMEM;
  p->idxNum = idxNum;
  p->idxStr = zStr;
  p->needToFreeIdxStr = 1;
  p->estimatedRows = (sqlite3_int64)(rows < 1 ? 1 : rows);
  p->estimatedCost = (ePlan == JT_PLAN_FULL ? 0 : 20) + rows;
  if (bActorIn) p->estimatedCost += 10;
  return SQLITE_OK;
}

/**************************************************************************
** Cursors
*/

/* One LMDB cursor and the key it stands on, kept so that it can re-seek
** after the map moved. */
typedef struct JtIter JtIter;
struct JtIter {
  MDB_cursor *c;
  int bEof;
  int nKey;
  int nPrefix;                          /* tag iterators: len+tag bytes */
  u32 idx;                              /* events: index in the run */
  u32 nRun;                             /* events: events in the run */
  MDB_val vRun;                         /* the span's value, while vGen */
  u32 vGen;                             /*   equals JtCursor.fillGen */
  u8 aKey[2 + LJ_MAX_TAG_BYTES + 8];
};

/*
** Rows are copied out of the map in batches of up to JT_SLOTS into a
** 64 KiB chunk aligned on its size, under one hold of the gate.  Column
** values are handed to SQLite as pointers into the chunk with a
** destructor that drops a reference (found by aligning the pointer
** down), so no value is copied twice and no lock is taken per row.  A
** chunk still referenced by SQLite when the cursor refills is left to
** SQLite; the cursor keeps JT_KEEP chunks and refills one SQLite has let
** go of, so a scan reuses the same memory (allocating a 64 KiB-aligned
** chunk per refill costs an mmap and its page faults in glibc).
*/
#define JT_CHUNK 65536
#define JT_SLOTS 64
#define JT_KEEP 4 /* chunks a cursor keeps, reused once SQLite lets go */

typedef struct JtChunk JtChunk;
struct JtChunk {
  int nRef;   /* the cursor + values held by SQLite (atomic) */
  u32 nUsed;  /* bytes used, header included */
};

typedef struct JtSlot JtSlot;
struct JtSlot {
  u64 seq;
  const u8 *aRec;    /* in the chunk, or aOwn */
  u32 nRec;
  const char *zName; /* actor id, in the chunk */
  int nName;
  u8 *aOwn;          /* a record too large for a chunk */
};

static JtChunk *chunkNew(void) {
  void *p = 0;
  JtChunk *c;
  /* Aligned allocation is what lets a value pointer find its chunk. */
  if (posix_memalign(&p, JT_CHUNK, JT_CHUNK)) return 0;
  c = (JtChunk *)p;
  c->nRef = 1;
  c->nUsed = sizeof(JtChunk);
  return c;
}

static void chunkUnref(JtChunk *c) {
  if (c && __atomic_sub_fetch(&c->nRef, 1, __ATOMIC_ACQ_REL) == 0) free(c);
}

static void chunkRelease(void *pValue) {
  chunkUnref((JtChunk *)((uintptr_t)pValue & ~(uintptr_t)(JT_CHUNK - 1)));
}

/* Room for n bytes in the cursor's chunk, or NULL. */
static u8 *chunkAlloc(JtChunk *c, size_t n) {
  u8 *a;
  if (c->nUsed + n > JT_CHUNK) return 0;
  a = (u8 *)c + c->nUsed;
  c->nUsed += (u32)n;
  return a;
}

typedef struct JtCursor JtCursor;
struct JtCursor {
  sqlite3_vtab_cursor base;
  LjTable *pTab;
  LjEnv *pEnv;
  MDB_txn *txn;
  unsigned gen;        /* LjEnv.mapGen the cursors are positioned for */
  int ePlan;
  int bDesc;
  int bEof;
  JtIter it;           /* events (fullscan, actor) or pos (pos, ts) */
  JtIter st;           /* staged batches (fullscan, actor; indexed loads) */
  int bStage;          /* fullscan, actor: walking st rather than it */
  u32 iDir;            /* ... the directory entry of the span in st */
  u64 spanNum;         /* fullscan, actor: the span's actor ... */
  u64 spanSeq0;        /* ... and the seq of its first event */
  u64 stageLo;         /* first staged pos (UINT64_MAX: none) */
  MDB_cursor *cEv;     /* pos, ts, tag: finds the events the index names */
  JtIter *aTag;        /* tag plan: one per tag */
  int nTag;
  u64 num;             /* actor plan: the actor's number */
  i64 lo, hi;          /* inclusive bounds on seq or pos */
  i64 nLimit;          /* rows left to return, -1 = no limit */
  /* Rows copied out of the map, JT_SLOTS at a time (see fillRows). */
  JtChunk *pChunk;     /* the chunk being filled (one of aChunk) */
  JtChunk *aChunk[JT_KEEP]; /* chunks kept for reuse */
  JtSlot aSlot[JT_SLOTS];
  int nSlot;           /* slots filled */
  int iSlot;           /* the current row */
  int bDone;           /* the iterators have nothing more */
  u32 fillGen;         /* bumped per fill: span values older are stale */
  u64 nameNum;         /* actor whose id was last copied into pChunk */
  const char *zNameLast;
  int nNameLast;
  LjRec rec;           /* the current row, decoded when iDecoded==iSlot */
  int iDecoded;
  u8 *aUnz;            /* its decompressed payload */
  size_t nUnz;
  u64 nRows, nBytes;   /* for metrics, added at close */
  LjReaderSlot slot;   /* tracked while txn is open */
};

static int jtOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur) {
  LjTable *pTab = (LjTable *)pVtab;
  JtCursor *p = sqlite3_malloc64(sizeof(*p));
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->pTab = pTab;
  p->pEnv = pTab->pEnv;
  p->bEof = 1;
  *ppCur = &p->base;
  return SQLITE_OK;
}

static void iterClose(JtIter *it) {
  if (it->c) mdb_cursor_close(it->c);
  it->c = 0;
}

static void cursorReset(JtCursor *p) {
  for (int i = 0; i < p->nSlot; i++) sqlite3_free(p->aSlot[i].aOwn);
  p->nSlot = p->iSlot = 0;
  p->iDecoded = -1;
  iterClose(&p->it);
  iterClose(&p->st);
  p->st.bEof = 1;
  p->bStage = 0;
  if (p->cEv) mdb_cursor_close(p->cEv);
  p->cEv = 0;
  for (int i = 0; i < p->nTag; i++) iterClose(&p->aTag[i]);
  sqlite3_free(p->aTag);
  p->aTag = 0;
  p->nTag = 0;
}

static int jtClose(sqlite3_vtab_cursor *pCur) {
  JtCursor *p = (JtCursor *)pCur;
  if (p->txn) {
    ljGateEnter(p->pEnv);
    cursorReset(p);
    mdb_txn_abort(p->txn);
    ljGateLeave(p->pEnv);
    ljReaderUntrack(p->pEnv, &p->slot);
  }
  if (p->nRows) {
    __atomic_add_fetch(&p->pEnv->m.nRowsRead, p->nRows, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->pEnv->m.nBytesRead, p->nBytes, __ATOMIC_RELAXED);
  }
  for (int i = 0; i < p->nSlot; i++) sqlite3_free(p->aSlot[i].aOwn);
  for (int i = 0; i < JT_KEEP; i++) chunkUnref(p->aChunk[i]);
  sqlite3_free(p->aUnz);
  sqlite3_free(p);
  return SQLITE_OK;
}

static int iterGet(JtIter *it, MDB_val *pKey, MDB_val *pVal, MDB_cursor_op op) {
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
static int iterSeek(JtIter *it, const u8 *aKey, int nKey, int bBack,
                    MDB_val *pKey, MDB_val *pVal) {
  int mrc;
  pKey->mv_data = (void *)aKey;
  pKey->mv_size = (size_t)nKey;
  mrc = iterGet(it, pKey, pVal, MDB_SET_RANGE);
  if (mrc || !bBack) return mrc;
  return iterGet(it, pKey, pVal, it->bEof ? MDB_LAST : MDB_PREV);
}

/* After the map moved: re-seek every cursor to its remembered key. */
static int cursorRemap(JtCursor *p) {
  unsigned gen = __atomic_load_n(&p->pEnv->mapGen, __ATOMIC_ACQUIRE);
  MDB_val k, v;
  int mrc = 0;
  if (gen == p->gen) return 0;
  p->gen = gen;
  if (p->cEv) mrc = mdb_cursor_renew(p->txn, p->cEv);
  for (int i = -2; i < p->nTag && mrc == 0; i++) {
    JtIter *it = i == -2 ? &p->st : i < 0 ? &p->it : &p->aTag[i];
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

#define JT_FULL (-1) /* slotLoad: no room left in this chunk */

/* Copy an event (and its actor id, once per chunk) into the next slot. */
/* Copy actor num's id into the chunk, unless the last one copied. */
static int slotName(JtCursor *p, u64 num) {
  u8 *a;
  if (num != p->nameNum) {
    MDB_val k, v;
    u8 aNum[8];
    int mrc;
    ljPut64(aNum, num);
    k.mv_data = aNum;
    k.mv_size = 8;
    mrc = mdb_get(p->txn, p->pEnv->aDbi[LJ_DB_ACTNUM], &k, &v);
    if (mrc) return mrc == MDB_NOTFOUND ? SQLITE_CORRUPT : ljMdbToSqlite(mrc);
    a = chunkAlloc(p->pChunk, v.mv_size);
    if (a == 0) return JT_FULL; /* a fresh chunk always has room for it */
    memcpy(a, v.mv_data, v.mv_size);
    p->zNameLast = (const char *)a;
    p->nNameLast = (int)v.mv_size;
    p->nameNum = num;
  }
  return SQLITE_OK;
}

static int slotLoad(JtCursor *p, u64 num, u64 seq, const MDB_val *pRec) {
  JtSlot *s = &p->aSlot[p->nSlot];
  u8 *a;
  int rc = slotName(p, num);
  if (rc) return rc;
  s->zName = p->zNameLast;
  s->nName = p->nNameLast;
  s->aOwn = 0;
  a = chunkAlloc(p->pChunk, pRec->mv_size);
  if (a == 0) {
    if (p->nSlot > 0) return JT_FULL;
    a = s->aOwn = sqlite3_malloc64(pRec->mv_size);
    if (a == 0) return SQLITE_NOMEM;
  }
  memcpy(a, pRec->mv_data, pRec->mv_size);
  s->aRec = a;
  s->nRec = (u32)pRec->mv_size;
  s->seq = seq;
  p->nRows++;
  p->nBytes += pRec->mv_size;
  p->nSlot++;
  return SQLITE_OK;
}

/* Load the event at pos that a pos or tag index entry points at (value:
** num, seq): staged when pos is at or after the stage's first key. */
static int slotLoadIndexed(JtCursor *p, const u8 *aNumSeq, u64 pos) {
  MDB_val k, v, rec;
  u64 num = ljGet64(aNumSeq), seq = ljGet64(aNumSeq + 8);
  const u8 *a;
  u32 i, n;
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
  return slotLoad(p, num, seq, &rec);
}

/* Tag iterators: pick the next pos in merge order, skipping duplicates. */
static JtIter *tagPick(JtCursor *p) {
  JtIter *pBest = 0;
  u64 best = 0;
  for (int i = 0; i < p->nTag; i++) {
    JtIter *it = &p->aTag[i];
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

/* Is the iterator still inside its range?  Marks it EOF when not. */
static void iterCheck(JtCursor *p, JtIter *it, const u8 *aPrefix,
                      int nPrefix) {
  i64 x;
  if (it->bEof) return;
  if (it->nKey != nPrefix + 8 ||
      (nPrefix > 0 && memcmp(it->aKey, aPrefix, (size_t)nPrefix))) {
    it->bEof = 1;
    return;
  }
  x = (i64)ljGet64(&it->aKey[nPrefix]);
  if (x < p->lo || x > p->hi) it->bEof = 1;
}

/* The events iterator entered a run (v): stand on its first or last. */
/*
** The main iterator walks spans: runs of the events db (fullscan, actor)
** or manifests of the pos db (pos, ts), standing on entry idx of nRun.
*/
static int isPosPlan(const JtCursor *p) {
  return p->ePlan == JT_PLAN_POS || p->ePlan == JT_PLAN_TS;
}

/* The iterator entered a span (v): stand on its first or last entry. */
static void runEnter(JtCursor *p, const MDB_val *v, int bLast) {
  JtIter *it = &p->it;
  if (it->bEof) return;
  it->nRun = isPosPlan(p) ? ljManiCount(v) : ljRunCount(v->mv_data, v->mv_size);
  it->idx = bLast && it->nRun ? it->nRun - 1 : 0;
  /* Remember the value: it stays valid while the gate is held (this
  ** fill), which spares a GET_CURRENT for every event of the span. */
  it->vRun = *v;
  it->vGen = p->fillGen;
  if (!isPosPlan(p)) {
    p->spanNum = ljGet64(it->aKey);
    p->spanSeq0 = ljGet64(&it->aKey[8]);
  }
}

/* Still inside the plan's range?  Marks the iterator EOF when not. */
static void runCheck(JtCursor *p) {
  JtIter *it = p->bStage ? &p->st : &p->it;
  i64 x;
  if (it->bEof || p->ePlan == JT_PLAN_FULL) return;
  if (p->ePlan == JT_PLAN_ACTOR) {
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
** Staged spans (fullscan, actor).  The st iterator stands on a staged
** batch; the span is the run of directory entry p->iDir in it (for the
** actor plan, the entry of p->num).  stageEnter makes the batch under st
** the current span, or answers MDB_NOTFOUND when it has none of the
** actor's events.
*/
static int stageEnter(JtCursor *p, const MDB_val *pEnt, int bLast) {
  JtIter *it = &p->st;
  MDB_val run;
  int mrc;
  if (p->ePlan == JT_PLAN_ACTOR) {
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
static int stageNextBatch(JtCursor *p, MDB_cursor_op op) {
  MDB_val k, v;
  int mrc;
  for (;;) {
    mrc = iterGet(&p->st, &k, &v, op);
    if (mrc || p->st.bEof) return mrc;
    mrc = stageEnter(p, &v, op == MDB_PREV || op == MDB_LAST);
    if (mrc != MDB_NOTFOUND) return mrc;
    op = (op == MDB_PREV || op == MDB_LAST) ? MDB_PREV : MDB_NEXT;
  }
}

/* Position st on the staged event x of the actor (or the nearest one in
** the scan direction); for the full scan on the first or last span. */
static int stageSeek(JtCursor *p, u64 x) {
  JtIter *it = &p->st;
  int mrc = stageNextBatch(p, p->bDesc ? MDB_LAST : MDB_FIRST);
  while (mrc == 0 && !it->bEof && p->ePlan == JT_PLAN_ACTOR) {
    u64 sLast = p->spanSeq0 + it->nRun - 1;
    if (p->bDesc ? p->spanSeq0 <= x : sLast >= x) {
      if (p->bDesc) it->idx = (u32)(x < sLast ? x - p->spanSeq0 : it->nRun - 1);
      else it->idx = (u32)(x > p->spanSeq0 ? x - p->spanSeq0 : 0);
      break;
    }
    mrc = stageNextBatch(p, p->bDesc ? MDB_PREV : MDB_NEXT);
  }
  runCheck(p);
  return mrc;
}

/* Step st by one event. */
static int stageStep(JtCursor *p) {
  JtIter *it = &p->st;
  MDB_val k, v;
  int mrc = 0;
  if (p->bDesc ? it->idx > 0 : it->idx + 1 < it->nRun) {
    it->idx += p->bDesc ? -1 : 1;
  } else if (p->ePlan == JT_PLAN_FULL &&
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
static int runSeek(JtCursor *p, u64 x);
static int phaseNext(JtCursor *p) {
  MDB_val k, v;
  if (p->ePlan != JT_PLAN_FULL && p->ePlan != JT_PLAN_ACTOR) return 0;
  if (!p->bDesc && !p->bStage && p->it.bEof && p->st.c) {
    p->bStage = 1;
    return stageSeek(p, (u64)p->lo);
  }
  if (p->bDesc && p->bStage && p->st.bEof) {
    int mrc;
    p->bStage = 0;
    if (p->ePlan == JT_PLAN_ACTOR) return runSeek(p, (u64)p->hi);
    mrc = iterGet(&p->it, &k, &v, MDB_LAST);
    runEnter(p, &v, 1);
    return mrc;
  }
  return 0;
}

/* Step the span iterator by one entry, skipping the manifest entries of
** truncated events. */
static int runStep(JtCursor *p) {
  JtIter *it = &p->it;
  MDB_val k, v;
  int mrc = 0;
  if (p->bStage) {
    mrc = stageStep(p);
    return mrc ? mrc : phaseNext(p);
  }
  for (;;) {
    if (p->bDesc ? it->idx > 0 : it->idx + 1 < it->nRun) {
      it->idx += p->bDesc ? -1 : 1; /* within the span */
    } else {
      mrc = iterGet(it, &k, &v, p->bDesc ? MDB_PREV : MDB_NEXT);
      runEnter(p, &v, p->bDesc);
    }
    if (mrc || it->bEof || !isPosPlan(p)) break;
    mrc = mdb_cursor_get(it->c, &k, &v, MDB_GET_CURRENT);
    if (mrc || ljGet64((u8 *)v.mv_data + LJ_MANI_ENTRY * it->idx) != 0) break;
  }
  runCheck(p);
  return mrc ? mrc : phaseNext(p);
}

/*
** Position the span iterator on entry x (seq of p->num, or pos), or on the
** nearest existing one in the scan direction.
*/
static int runSeek(JtCursor *p, u64 x) {
  JtIter *it = &p->it;
  MDB_val k, v;
  u8 aKey[LJ_EVKEY];
  int nPrefix = isPosPlan(p) ? 0 : 8;
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
      if (nPrefix) ljEvKey(aKey, p->num + 1, 0);
      else ljPut64(aKey, (u64)INT64_MAX);
    } else {
      ljPut64(&aKey[nPrefix], p->bDesc ? x + 1 : x);
    }
    mrc = iterSeek(it, aKey, nPrefix + 8, p->bDesc, &k, &v);
    runEnter(p, &v, p->bDesc);
  }
  if (mrc == 0 && !it->bEof && isPosPlan(p)) {
    mrc = mdb_cursor_get(it->c, &k, &v, MDB_GET_CURRENT);
    if (mrc == 0 && ljGet64((u8 *)v.mv_data + LJ_MANI_ENTRY * it->idx) == 0) {
      return runStep(p); /* a truncated event: move on */
    }
  }
  runCheck(p);
  return mrc ? mrc : phaseNext(p);
}

/* The value of the span the iterator stands on: remembered while this
** fill holds the gate, else fetched again. */
static int spanValue(JtCursor *p, JtIter *it, MDB_val *pVal) {
  MDB_val k;
  int mrc;
  if (it->vGen == p->fillGen && it->vRun.mv_data) {
    *pVal = it->vRun;
    return 0;
  }
  mrc = mdb_cursor_get(it->c, &k, pVal, MDB_GET_CURRENT);
  if (mrc == 0 && p->bStage) {
    /* The batch: its run is the span. */
    mrc = stageEnter(p, pVal, -1);
    *pVal = it->vRun;
  }
  return mrc;
}

/* Does any iterator still stand on a row? */
static int cursorHasRow(JtCursor *p) {
  if (p->ePlan == JT_PLAN_TAG) return tagPick(p) != 0;
  return p->bStage ? !p->st.bEof : !p->it.bEof;
}

/* Copy the row the iterators stand on into the next slot.  For the tag
** plan, the iterator with the next pos is chosen. */
static int cursorLoad(JtCursor *p) {
  MDB_val k, v;
  int mrc;
  JtIter *it = p->ePlan == JT_PLAN_TAG ? tagPick(p)
               : p->bStage             ? &p->st
                                       : &p->it;
  if (p->ePlan == JT_PLAN_TAG) {
    mrc = mdb_cursor_get(it->c, &k, &v, MDB_GET_CURRENT);
    if (mrc) return ljMdbToSqlite(mrc);
  } else {
    mrc = spanValue(p, it, &v);
    if (mrc) return ljMdbToSqlite(mrc);
  }
  if (p->ePlan == JT_PLAN_TAG) {
    if (v.mv_size != 16) return SQLITE_CORRUPT;
    return slotLoadIndexed(p, v.mv_data, ljGet64(&it->aKey[it->nPrefix]));
  }
  if (isPosPlan(p)) {
    if (v.mv_size < LJ_MANI_ENTRY * ((size_t)p->it.idx + 1)) return SQLITE_CORRUPT;
    return slotLoadIndexed(p, (const u8 *)v.mv_data + LJ_MANI_ENTRY * p->it.idx,
                           ljGet64(p->it.aKey) + p->it.idx);
  }
  {
    MDB_val rec;
    const u8 *a;
    u32 n;
    mrc = ljRunRecord(v.mv_data, v.mv_size, it->idx, &a, &n);
    if (mrc) return SQLITE_CORRUPT;
    rec.mv_data = (void *)a;
    rec.mv_size = n;
    return slotLoad(p, p->spanNum, p->spanSeq0 + it->idx, &rec);
  }
}

/* Step the iterators once (no loading). */
static int cursorStep(JtCursor *p) {
  MDB_val k, v;
  MDB_cursor_op op = p->bDesc ? MDB_PREV : MDB_NEXT;
  int mrc = 0;
  if (p->ePlan == JT_PLAN_TAG) {
    JtIter *pCur = tagPick(p);
    u64 pos;
    if (pCur == 0) return 0;
    pos = ljGet64(&pCur->aKey[pCur->nPrefix]);
    for (int i = 0; i < p->nTag && mrc == 0; i++) {
      JtIter *it = &p->aTag[i];
      u8 aPrefix[2 + LJ_MAX_TAG_BYTES];
      if (it->bEof || ljGet64(&it->aKey[it->nPrefix]) != pos) continue;
      memcpy(aPrefix, it->aKey, (size_t)it->nPrefix);
      mrc = iterGet(it, &k, &v, op);
      iterCheck(p, it, aPrefix, it->nPrefix);
    }
    return mrc;
  }
  if (!cursorHasRow(p)) return 0;
  return runStep(p);
}

/*
** Fullscan and actor plans: copy the rows of the current run from the
** current one on (as many as the slots, the limit, the seq bounds and the
** chunk allow) with one memcpy, since a run's records are contiguous,
** then step past them.  Returns SQLITE_OK, JT_FULL or an error.
*/
static int fillSpan(JtCursor *p) {
  JtIter *it = p->bStage ? &p->st : &p->it;
  MDB_val v;
  const u8 *a0, *aLast, *a;
  u32 n0, nLast, n, first, k, j;
  size_t nByte;
  u8 *aDst;
  int rc, mrc = spanValue(p, it, &v);
  if (mrc) return ljMdbToSqlite(mrc);
  k = p->bDesc ? it->idx + 1 : it->nRun - it->idx;
  if (k > (u32)(JT_SLOTS - p->nSlot)) k = (u32)(JT_SLOTS - p->nSlot);
  if (p->nLimit > 0 && (i64)k > p->nLimit) k = (u32)p->nLimit;
  if (p->ePlan == JT_PLAN_ACTOR) {
    i64 x = (i64)(p->spanSeq0 + it->idx); /* within [lo, hi] (runCheck) */
    i64 nIn = p->bDesc ? x - p->lo + 1 : p->hi - x + 1;
    if (nIn < (i64)k) k = (u32)nIn;
  }
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
  if (aDst == 0) {
    /* Not room for them all: one row the usual way. */
    rc = cursorLoad(p);
    if (rc == SQLITE_OK) {
      if (p->nLimit > 0) p->nLimit--;
      mrc = cursorStep(p);
      if (mrc) rc = ljMdbToSqlite(mrc);
    }
    return rc;
  }
  memcpy(aDst, a0, nByte);
  for (j = 0; j < k; j++) {
    u32 r = p->bDesc ? it->idx - j : it->idx + j;
    JtSlot *s = &p->aSlot[p->nSlot++];
    if (ljRunRecord(v.mv_data, v.mv_size, r, &a, &n) || a < a0 ||
        a + n > a0 + nByte) {
      p->nSlot--;
      return SQLITE_CORRUPT;
    }
    s->aRec = aDst + (a - a0);
    s->nRec = n;
    s->seq = p->spanSeq0 + r;
    s->zName = p->zNameLast;
    s->nName = p->nNameLast;
    s->aOwn = 0;
  }
  p->nRows += k;
  p->nBytes += nByte;
  if (p->nLimit > 0) p->nLimit -= k;
  /* Stand on the last row copied, then step past it. */
  it->idx = p->bDesc ? first : first + k - 1;
  mrc = cursorStep(p);
  return mrc ? ljMdbToSqlite(mrc) : SQLITE_OK;
}

/* Decode the current slot. */
static int slotDecode(JtCursor *p) {
  JtSlot *s = &p->aSlot[p->iSlot];
  if (p->iDecoded == p->iSlot) return SQLITE_OK;
  p->iDecoded = p->iSlot;
  return ljRecDecode(s->aRec, s->nRec, &p->rec, &p->aUnz, &p->nUnz);
}

/*
** Refill the slots: copy up to JT_SLOTS rows (as many as fit in a chunk)
** and step past them.  Called with the gate held.  Sets bEof when there
** is no row at all.
*/
static int fillRows(JtCursor *p) {
  int rc = SQLITE_OK, mrc = 0;
  p->fillGen++;
  for (int i = 0; i < p->nSlot; i++) sqlite3_free(p->aSlot[i].aOwn);
  p->nSlot = p->iSlot = 0;
  if (p->pChunk == 0 ||
      __atomic_load_n(&p->pChunk->nRef, __ATOMIC_ACQUIRE) > 1) {
    /* SQLite still holds values in it (the last row's, usually): take a
    ** kept chunk it let go of, else a new one (in place of a kept chunk
    ** still held: SQLite frees that one when done). */
    int i, iNew = 0;
    for (i = 0; i < JT_KEEP; i++) {
      JtChunk *c = p->aChunk[i];
      if (c == 0 || __atomic_load_n(&c->nRef, __ATOMIC_ACQUIRE) == 1) break;
      if (c != p->pChunk) iNew = i;
    }
    if (i == JT_KEEP) {
      chunkUnref(p->aChunk[iNew]);
      p->aChunk[iNew] = 0;
      i = iNew;
    }
    if (p->aChunk[i] == 0) {
      p->aChunk[i] = chunkNew();
      if (p->aChunk[i] == 0) return SQLITE_NOMEM;
    }
    p->pChunk = p->aChunk[i];
  }
  p->pChunk->nUsed = sizeof(JtChunk);
  p->nameNum = 0;
  while (p->nSlot < JT_SLOTS && !p->bDone) {
    if (p->nLimit == 0 || !cursorHasRow(p)) {
      p->bDone = 1;
      break;
    }
    if (p->ePlan == JT_PLAN_FULL || p->ePlan == JT_PLAN_ACTOR) {
      rc = fillSpan(p);
      if (rc == JT_FULL) {
        rc = SQLITE_OK;
        break;
      }
      if (rc) break;
      continue;
    }
    rc = cursorLoad(p);
    if (rc == JT_FULL) {
      rc = SQLITE_OK;
      break;
    }
    if (rc) break;
    if (p->nLimit > 0) p->nLimit--;
    mrc = cursorStep(p);
    if (mrc) {
      rc = ljMdbToSqlite(mrc);
      break;
    }
  }
  if (rc == SQLITE_OK) {
    p->bEof = p->nSlot == 0;
    p->iDecoded = -1; /* decoded on demand by xColumn/xRowid */
  }
  return rc;
}

/* Turn an SQL bound into an inclusive integer bound.  Returns 0 when the
** constraint can match nothing (NULL, or text against a number). */
static int boundValue(sqlite3_value *v, int bLower, int bStrict, i64 *pOut) {
  switch (sqlite3_value_numeric_type(v)) {
    case SQLITE_INTEGER: {
      i64 x = sqlite3_value_int64(v);
      if (bStrict) {
        if (bLower ? x == INT64_MAX : x == INT64_MIN) return 0;
        x += bLower ? 1 : -1;
      }
      *pOut = x;
      return 1;
    }
    case SQLITE_FLOAT: {
      double d = sqlite3_value_double(v);
      double r = bLower ? (bStrict ? floor(d) + 1 : ceil(d))
                        : (bStrict ? ceil(d) - 1 : floor(d));
      if (r >= 9.2e18) *pOut = INT64_MAX;
      else if (r <= -9.2e18) *pOut = INT64_MIN;
      else *pOut = (i64)r;
      return 1;
    }
    case SQLITE_NULL: return 0;
    default:
      /* Numbers sort before text and blobs. */
      if (bLower) return 0;
      *pOut = INT64_MAX;
      return 1;
  }
}

/* Smallest pos whose ts is >= ts (bAfter: > ts); one past the end if none.
** ts is non-decreasing in pos order, so this is a binary search over the
** pos key space (gaps left by truncation are skipped by SET_RANGE). */
static int posForTs(JtCursor *p, i64 ts, int bAfter, i64 *pPos) {
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
  /* Truncated entries keep their ts, so every pos in [lo, hi) has one. */
  while (lo < hi) {
    u64 mid = lo + (hi - lo) / 2;
    u32 idx;
    i64 tsMid;
    mrc = ljManiFind(p->it.c, mid, &k, &v, &idx);
    if (mrc == MDB_NOTFOUND) { /* a gap left by a deleted manifest */
      u8 aKey[8];
      ljPut64(aKey, mid);
      k.mv_data = aKey;
      k.mv_size = 8;
      mrc = mdb_cursor_get(p->it.c, &k, &v, MDB_SET_RANGE);
      idx = 0;
      if (mrc == MDB_NOTFOUND) {
        hi = mid;
        continue;
      }
      if (mrc == 0) mid = ljGet64(k.mv_data);
    }
    if (mrc) return mrc;
    tsMid = (i64)ljGet64((u8 *)v.mv_data + LJ_MANI_ENTRY * idx + 16);
    if (bAfter ? tsMid > ts : tsMid >= ts) hi = mid;
    else lo = mid + 1;
  }
  *pPos = (i64)lo;
  return 0;
}

static int jtFilter(sqlite3_vtab_cursor *pCur, int idxNum, const char *idxStr,
                    int argc, sqlite3_value **argv) {
  JtCursor *p = (JtCursor *)pCur;
  LjTable *pTab = p->pTab;
  LjEnv *pEnv = p->pEnv;
  MDB_val k, v;
  int iArg = 0, mrc = 0, rc = SQLITE_OK;
  i64 lo = 0, hi = INT64_MAX, nOffset = 0;
  int bEmpty = 0;
  sqlite3_value *pKey = 0;
  MDB_dbi dbi;
  (void)idxStr;
  (void)argc;

  p->ePlan = idxNum & JT_PLAN_MASK;
  p->bDesc = (idxNum & JT_DESC) != 0;
  p->bEof = 0;
  p->bDone = 0;
  p->nLimit = -1;
  if (idxNum & JT_KEY) pKey = argv[iArg++];
  if (idxNum & JT_EQ) {
    sqlite3_value *x = argv[iArg++];
    /* 3.0 equals 3; 2.5 gives lo 3 > hi 2, which matches nothing. */
    if (!boundValue(x, 1, 0, &lo) || !boundValue(x, 0, 0, &hi)) bEmpty = 1;
    if (sqlite3_value_numeric_type(x) != SQLITE_INTEGER &&
        sqlite3_value_numeric_type(x) != SQLITE_FLOAT) {
      bEmpty = 1; /* text never equals a number column */
    }
  }
  if ((idxNum & JT_LO) && !boundValue(argv[iArg++], 1, idxNum & JT_LO_GT, &lo))
    bEmpty = 1;
  if ((idxNum & JT_HI) && !boundValue(argv[iArg++], 0, idxNum & JT_HI_LT, &hi))
    bEmpty = 1;
  if (idxNum & JT_LIMIT) p->nLimit = sqlite3_value_int64(argv[iArg++]);
  if (idxNum & JT_OFFSET) nOffset = sqlite3_value_int64(argv[iArg++]);
  if (p->nLimit < -1) p->nLimit = -1;

  /* The snapshot: taken once, after this process's queued appends. */
  if (p->txn == 0) {
    rc = ljFlushForRead(pEnv, pTab->cfg.usSyncTimeout);
    if (rc) {
      pTab->base.zErrMsg = sqlite3_mprintf(
          "reading %s: timed out waiting for queued appends to commit",
          pTab->zName);
      return rc;
    }
  }
  ljGateEnter(pEnv);
  if (p->txn == 0) {
    mrc = ljReadBegin(pEnv, &p->txn);
    p->gen = __atomic_load_n(&pEnv->mapGen, __ATOMIC_ACQUIRE);
    if (mrc) {
      p->txn = 0;
      goto done;
    }
    ljReaderTrack(pEnv, &p->slot);
  } else {
    mrc = cursorRemap(p);
    if (mrc) goto done;
  }
  cursorReset(p);
  if (lo < 0) lo = 0;
  p->lo = lo;
  p->hi = hi;
  if (bEmpty || lo > hi) {
    p->bEof = 1;
    goto done;
  }

  dbi = pEnv->aDbi[(p->ePlan == JT_PLAN_FULL || p->ePlan == JT_PLAN_ACTOR)
                       ? LJ_DB_EVENTS
                       : LJ_DB_POS];
  if (p->ePlan != JT_PLAN_TAG) {
    mrc = mdb_cursor_open(p->txn, dbi, &p->it.c);
    if (mrc) goto done;
  }
  /* The stage, if anything is staged. */
  mrc = mdb_cursor_open(p->txn, pEnv->aDbi[LJ_DB_STAGE], &p->st.c);
  if (mrc == 0) mrc = iterGet(&p->st, &k, &v, MDB_FIRST);
  if (mrc) goto done;
  p->stageLo = p->st.bEof ? UINT64_MAX : ljGet64(p->st.aKey);
  if (p->st.bEof) iterClose(&p->st);
  switch (p->ePlan) {
    case JT_PLAN_FULL:
      if (p->bDesc && p->st.c) {
        p->bStage = 1;
        mrc = stageSeek(p, 0);
      } else {
        mrc = iterGet(&p->it, &k, &v, p->bDesc ? MDB_LAST : MDB_FIRST);
        runEnter(p, &v, p->bDesc);
      }
      if (mrc == 0) mrc = phaseNext(p);
      break;
    case JT_PLAN_ACTOR: {
      const char *z;
      int n;
      u64 floor;
      char *zErr = 0;
      rc = ljCheckActor(pKey, "actor_id", &z, &n, &zErr);
      sqlite3_free(zErr);
      if (rc) {
        /* Not a valid id: no event can have it. */
        rc = SQLITE_OK;
        p->bEof = 1;
        goto done;
      }
      mrc = ljActorLoad(pEnv, p->txn, (const u8 *)z, n, &p->num, 0, &floor);
      if (mrc || p->num == 0) {
        p->bEof = 1;
        goto done;
      }
      if (p->bDesc && p->st.c) {
        p->bStage = 1;
        mrc = stageSeek(p, (u64)hi);
        if (mrc == 0) mrc = phaseNext(p);
      } else {
        mrc = runSeek(p, p->bDesc ? (u64)hi : (u64)lo);
      }
      break;
    }
    case JT_PLAN_TS: {
      /* ts bounds become pos bounds. */
      i64 posLo, posHi;
      mrc = posForTs(p, lo, 0, &posLo);
      if (mrc == 0) mrc = posForTs(p, hi, 1, &posHi);
      if (mrc) break;
      p->lo = lo = posLo;
      p->hi = hi = posHi - 1;
      if (lo > hi) {
        p->bEof = 1;
        goto done;
      }
    }
    /* fall through */
    case JT_PLAN_POS:
      mrc = runSeek(p, p->bDesc ? (u64)hi : (u64)lo);
      break;
    case JT_PLAN_TAG: {
      sqlite3_value *pVal = 0;
      int nAlloc = 0;
      if (idxNum & JT_TAGIN) rc = sqlite3_vtab_in_first(pKey, &pVal);
      else pVal = pKey;
      while (rc == SQLITE_OK && pVal) {
        if (sqlite3_value_type(pVal) == SQLITE_TEXT &&
            sqlite3_value_bytes(pVal) > 0 &&
            sqlite3_value_bytes(pVal) <= LJ_MAX_TAG_BYTES) {
          JtIter *it;
          u8 aKey[2 + LJ_MAX_TAG_BYTES + 8];
          int nTag = sqlite3_value_bytes(pVal);
          const u8 *zTag = sqlite3_value_text(pVal);
          int nKey;
          if (p->nTag >= nAlloc) {
            int nNew = nAlloc ? nAlloc * 2 : 4;
            JtIter *a = sqlite3_realloc64(p->aTag, sizeof(JtIter) * (size_t)nNew);
            if (a == 0) {
              rc = SQLITE_NOMEM;
              break;
            }
            p->aTag = a;
            nAlloc = nNew;
          }
          it = &p->aTag[p->nTag++];
          memset(it, 0, sizeof(*it));
          it->nPrefix = 2 + nTag;
          nKey = ljTagKey(aKey, zTag, nTag,
                          p->bDesc ? (hi == INT64_MAX ? (u64)INT64_MAX
                                                      : (u64)hi + 1)
                                   : (u64)lo);
          mrc = mdb_cursor_open(p->txn, pEnv->aDbi[LJ_DB_TAGS], &it->c);
          if (mrc == 0) mrc = iterSeek(it, aKey, nKey, p->bDesc, &k, &v);
          if (mrc) break;
          iterCheck(p, it, aKey, it->nPrefix);
        }
        if (!(idxNum & JT_TAGIN)) break;
        rc = sqlite3_vtab_in_next(pKey, &pVal);
      }
      if (rc == SQLITE_DONE) rc = SQLITE_OK;
      break;
    }
  }
  if (mrc == 0 && rc == SQLITE_OK) {
    while (nOffset-- > 0 && mrc == 0 && cursorHasRow(p)) mrc = cursorStep(p);
  }
  if (mrc == 0 && rc == SQLITE_OK) rc = fillRows(p);
done:
  ljGateLeave(pEnv);
  if (mrc) {
    rc = ljMdbToSqlite(mrc);
    sqlite3_free(pTab->base.zErrMsg);
    pTab->base.zErrMsg = ljMdbErr("reading the journal", mrc);
  }
  return rc;
}

static int jtNext(sqlite3_vtab_cursor *pCur) {
  JtCursor *p = (JtCursor *)pCur;
  int mrc, rc;
  if (++p->iSlot < p->nSlot) return SQLITE_OK;
  if (p->bDone) {
    p->bEof = 1;
    return SQLITE_OK;
  }
  ljGateEnter(p->pEnv);
  mrc = cursorRemap(p);
  rc = mrc ? ljMdbToSqlite(mrc) : fillRows(p);
  ljGateLeave(p->pEnv);
  if (mrc) {
    sqlite3_free(p->pTab->base.zErrMsg);
    p->pTab->base.zErrMsg = ljMdbErr("reading the journal", mrc);
  }
  return rc;
}

static int jtEof(sqlite3_vtab_cursor *pCur) {
  return ((JtCursor *)pCur)->bEof;
}

/* Text or blob bytes: by reference when they live in the chunk. */
static void resultBytes(JtCursor *p, sqlite3_context *ctx, int bText,
                        const u8 *a, int n) {
  void (*xDel)(void *) = SQLITE_TRANSIENT;
  if (n == 0) {
    if (bText) sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
    else sqlite3_result_blob(ctx, "", 0, SQLITE_STATIC);
    return;
  }
  if ((uintptr_t)a - (uintptr_t)p->pChunk < JT_CHUNK) {
    __atomic_add_fetch(&p->pChunk->nRef, 1, __ATOMIC_RELAXED);
    xDel = chunkRelease;
  }
  if (bText) sqlite3_result_text(ctx, (const char *)a, n, xDel);
  else sqlite3_result_blob(ctx, a, n, xDel);
}

static void resultValue(JtCursor *p, sqlite3_context *ctx, u8 e, const u8 *a,
                        int n) {
  switch (e) {
    case LJ_VAL_INT:
      sqlite3_result_int64(ctx, (i64)ljGet64(a));
      break;
    case LJ_VAL_FLOAT: {
      u64 x = ljGet64(a);
      double d;
      memcpy(&d, &x, 8);
      sqlite3_result_double(ctx, d);
      break;
    }
    case LJ_VAL_TEXT:
    case LJ_VAL_BLOB:
      resultBytes(p, ctx, e == LJ_VAL_TEXT, a, n);
      break;
    default:
      sqlite3_result_null(ctx);
      break;
  }
}

static int jtColumn(sqlite3_vtab_cursor *pCur, sqlite3_context *ctx, int i) {
  JtCursor *p = (JtCursor *)pCur;
  const LjRec *r = &p->rec;
  const JtSlot *s = &p->aSlot[p->iSlot];
  if (i != COL_ACTOR && i != COL_SEQ && i != COL_TAG) {
    int rc = slotDecode(p);
    if (rc) return rc;
  }
  switch (i) {
    case COL_ACTOR:
      resultBytes(p, ctx, 1, (const u8 *)s->zName, s->nName);
      break;
    case COL_SEQ: sqlite3_result_int64(ctx, (i64)s->seq); break;
    case COL_POS: sqlite3_result_int64(ctx, (i64)r->pos); break;
    case COL_TS: sqlite3_result_int64(ctx, r->ts); break;
    case COL_TYPE:
      resultValue(p, ctx, r->aType ? LJ_VAL_TEXT : LJ_VAL_NULL, r->aType,
                  r->nType);
      break;
    case COL_PAYLOAD:
      resultValue(p, ctx, r->ePayload, r->aPayload, r->nPayload);
      break;
    case COL_META: resultValue(p, ctx, r->eMeta, r->aMeta, r->nMeta); break;
    case COL_TAGS:
      resultValue(p, ctx, r->aTags ? LJ_VAL_TEXT : LJ_VAL_NULL, r->aTags,
                  r->nTags);
      break;
    default: sqlite3_result_null(ctx); break;
  }
  return SQLITE_OK;
}

static int jtRowid(sqlite3_vtab_cursor *pCur, sqlite_int64 *pRowid) {
  JtCursor *p = (JtCursor *)pCur;
  int rc = slotDecode(p);
  *pRowid = (i64)p->rec.pos;
  return rc;
}

/**************************************************************************
** Writing
*/
static int jtError(LjTable *p, int rc, char *zErr) {
  sqlite3_free(p->base.zErrMsg);
  p->base.zErrMsg = zErr;
  return rc;
}

static int jtUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                    sqlite_int64 *pRowid) {
  LjTable *p = (LjTable *)pVtab;
  sqlite3_value **aCol = &argv[2];
  LjEvent ev;
  const char *zActor;
  int nActor, rc;
  char *zErr = 0;

  if (argc == 1) {
    return jtError(p, SQLITE_CONSTRAINT,
                   sqlite3_mprintf("journal %s is append-only: DELETE is not "
                                   "allowed; use journal_truncate(table, "
                                   "actor_id, to_seq) to remove old events",
                                   p->zName));
  }
  if (sqlite3_value_type(argv[0]) != SQLITE_NULL) {
    return jtError(p, SQLITE_CONSTRAINT,
                   sqlite3_mprintf("journal %s is append-only: UPDATE is not "
                                   "allowed (events are immutable)",
                                   p->zName));
  }
  if (sqlite3_value_type(argv[1]) != SQLITE_NULL ||
      sqlite3_value_type(aCol[COL_POS]) != SQLITE_NULL) {
    return jtError(p, SQLITE_CONSTRAINT,
                   sqlite3_mprintf("pos is assigned by the journal; leave it "
                                   "out of the INSERT"));
  }
  if (sqlite3_value_type(aCol[COL_TAG]) != SQLITE_NULL) {
    return jtError(p, SQLITE_CONSTRAINT,
                   sqlite3_mprintf("tag is a filter column; give tags as a "
                                   "JSON array in the tags column"));
  }
  rc = ljCheckActor(aCol[COL_ACTOR], "actor_id", &zActor, &nActor, &zErr);
  if (rc) return jtError(p, rc == SQLITE_NOMEM ? rc : SQLITE_CONSTRAINT, zErr);
  rc = ljEventFromValues(p, zActor, nActor, aCol[COL_PAYLOAD], aCol[COL_TYPE],
                         aCol[COL_META], aCol[COL_TAGS], 0, 0, &ev, &zErr);
  if (rc == SQLITE_OK) {
    rc = ljActorGet(p->pEnv, zActor, nActor, &ev.pActor, &zErr);
  }
  if (rc) {
    sqlite3_free(ev.aRec);
    return jtError(p, rc, zErr);
  }
  if (p->pPending == 0) {
    p->pPending = sqlite3_malloc64(sizeof(JtPending));
    if (p->pPending == 0) {
      sqlite3_free(ev.aRec);
      return SQLITE_NOMEM;
    }
    memset(p->pPending, 0, sizeof(JtPending));
  }
  /* An explicit seq must be exactly the next one. */
  if (sqlite3_value_type(aCol[COL_SEQ]) != SQLITE_NULL) {
    i64 seq = sqlite3_value_int64(aCol[COL_SEQ]);
    i64 next;
    if (sqlite3_value_numeric_type(aCol[COL_SEQ]) != SQLITE_INTEGER || seq <= 0) {
      sqlite3_free(ev.aRec);
      return jtError(p, SQLITE_CONSTRAINT,
                     sqlite3_mprintf("seq must be a positive integer"));
    }
    rc = ljHighestSeq(p->pEnv, zActor, nActor, &next, &zErr);
    if (rc) {
      sqlite3_free(ev.aRec);
      return jtError(p, rc, zErr);
    }
    next += pendCount(p->pPending, ev.pActor) + 1;
    if (seq != next) {
      sqlite3_free(ev.aRec);
      return jtError(p, SQLITE_CONSTRAINT,
                     sqlite3_mprintf("expected seq %lld for actor '%s' but "
                                     "got %lld (seq must be exactly the next "
                                     "one)",
                                     next, zActor, seq));
    }
    ev.seq = (u64)seq;
  }
  if (sqlite3_value_type(aCol[COL_TS]) != SQLITE_NULL) {
    if (sqlite3_value_numeric_type(aCol[COL_TS]) != SQLITE_INTEGER ||
        sqlite3_value_int64(aCol[COL_TS]) < 0) {
      sqlite3_free(ev.aRec);
      return jtError(p, SQLITE_CONSTRAINT,
                     sqlite3_mprintf("ts must be a non-negative integer "
                                     "(milliseconds since the epoch)"));
    }
    ev.tsGiven = sqlite3_value_int64(aCol[COL_TS]);
  }
  rc = pendAdd(p->pPending, &ev);
  if (rc) {
    sqlite3_free(ev.aRec);
    return rc;
  }
  /* pos is assigned at COMMIT; there is no rowid to report yet. */
  *pRowid = 0;
  return SQLITE_OK;
}

static int jtBegin(sqlite3_vtab *pVtab) {
  (void)pVtab;
  return SQLITE_OK;
}

static int jtSync(sqlite3_vtab *pVtab) {
  LjTable *p = (LjTable *)pVtab;
  JtPending *pP = p->pPending;
  char *zErr = 0;
  int rc;
  if (pP == 0 || pP->nEv == 0) return SQLITE_OK;
  rc = ljSubmit(p->pClient, pP->aEv, pP->nEv, 1, p->cfg.usSyncTimeout, &zErr);
  if (rc) return jtError(p, rc, zErr);
  pendTruncate(pP, 0);
  return SQLITE_OK;
}

static int jtCommit(sqlite3_vtab *pVtab) {
  LjTable *p = (LjTable *)pVtab;
  if (p->pPending) {
    pendTruncate(p->pPending, 0);
    p->pPending->nSave = 0;
  }
  return SQLITE_OK;
}

static int jtRollback(sqlite3_vtab *pVtab) { return jtCommit(pVtab); }

static int jtSavepoint(sqlite3_vtab *pVtab, int iSave) {
  LjTable *p = (LjTable *)pVtab;
  JtPending *pP;
  if (p->pPending == 0) {
    p->pPending = sqlite3_malloc64(sizeof(JtPending));
    if (p->pPending == 0) return SQLITE_NOMEM;
    memset(p->pPending, 0, sizeof(JtPending));
  }
  pP = p->pPending;
  if (iSave >= pP->nSave) {
    int *a = sqlite3_realloc64(pP->aSave, sizeof(int) * (size_t)(iSave + 1));
    if (a == 0) return SQLITE_NOMEM;
    pP->aSave = a;
    for (int i = pP->nSave; i < iSave; i++) a[i] = pP->nEv;
  }
  pP->aSave[iSave] = pP->nEv;
  pP->nSave = iSave + 1;
  return SQLITE_OK;
}

static int jtRelease(sqlite3_vtab *pVtab, int iSave) {
  LjTable *p = (LjTable *)pVtab;
  if (p->pPending && iSave < p->pPending->nSave) p->pPending->nSave = iSave;
  return SQLITE_OK;
}

static int jtRollbackTo(sqlite3_vtab *pVtab, int iSave) {
  LjTable *p = (LjTable *)pVtab;
  JtPending *pP = p->pPending;
  if (pP && iSave < pP->nSave) {
    pendTruncate(pP, pP->aSave[iSave]);
    pP->nSave = iSave + 1;
  }
  return SQLITE_OK;
}

static sqlite3_module jtModule = {
    3,            /* iVersion */
    jtConnect,    /* xCreate */
    jtConnect,    /* xConnect */
    jtBestIndex,  /* xBestIndex */
    jtDisconnect, /* xDisconnect */
    jtDisconnect, /* xDestroy: DROP TABLE leaves the data on disk */
    jtOpen,       /* xOpen */
    jtClose,      /* xClose */
    jtFilter,     /* xFilter */
    jtNext,       /* xNext */
    jtEof,        /* xEof */
    jtColumn,     /* xColumn */
    jtRowid,      /* xRowid */
    jtUpdate,     /* xUpdate */
    jtBegin,      /* xBegin */
    jtSync,       /* xSync */
    jtCommit,     /* xCommit */
    jtRollback,   /* xRollback */
    0,            /* xFindFunction */
    jtRename,     /* xRename */
    jtSavepoint,  /* xSavepoint */
    jtRelease,    /* xRelease */
    jtRollbackTo, /* xRollbackTo */
    0             /* xShadowName */
};

int ljRegisterTable(sqlite3 *db, LjConn *pConn) {
  return sqlite3_create_module_v2(db, "lmdb_journal", &jtModule, pConn,
                                  ljConnDestroy);
}
