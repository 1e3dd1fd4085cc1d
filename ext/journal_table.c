/*
** journal_table.c -- the lmdb_journal virtual table.
**
**   CREATE VIRTUAL TABLE j USING lmdb_journal(path='data/journal' [, opt=v]);
**   INSERT INTO j(actor_id, payload, type) VALUES('order-1', '{"n":1}',
*'Placed');
**   SELECT seq, payload FROM j WHERE actor_id='order-1' AND seq>=2 ORDER BY
*seq;
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
**   0x0400  LIMIT    argv has the LIMIT: a hint sizing the first rows
**                    read, never enforced here (SQLite offers LIMIT even
**                    when a WHERE term it did not pass, such as
**                    actor_id < type, still filters rows)
**   0x1000  TAGIN    the tag argument is an IN list, processed at once
**                    (sqlite3_vtab_in) and merged in pos order without
**                    duplicates
**   0x2000  ACTORIN  the actor argument is an IN list, processed at once:
**                    each actor's events in turn
**
** A number compared with actor_id (TEXT) is looked up as its text, which
** is SQLite's rule for a constant or a parameter; a column of NUMERIC
** affinity would compare numbers instead, so unless the key is a
** constant, SQLite checks the actor constraint (and IN lists) again.
**
** The argv values come in that order: key, bound(s), limit.  The
** bounds apply to seq (actor), pos (pos, tag) or ts (ts).  idxStr spells
** the plan out for EXPLAIN QUERY PLAN, e.g. "actor=? seq>=? desc limit".
** The LIMIT hint is taken only when every other constraint and the ORDER
** BY are consumed; OFFSET is left to SQLite.
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
** and ROLLBACK TO discard the buffer or its tail (table_write.c).
*/
#include "internal.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JT_PLAN_FULL  LJ_SCAN_FULL
#define JT_PLAN_ACTOR LJ_SCAN_ACTOR
#define JT_PLAN_POS   LJ_SCAN_POS
#define JT_PLAN_TS    LJ_SCAN_TS
#define JT_PLAN_TAG   LJ_SCAN_TAG
#define JT_PLAN_MASK  0x0007
#define JT_DESC       0x0008
#define JT_KEY        0x0010
#define JT_EQ         0x0020
#define JT_LO         0x0040
#define JT_LO_GT      0x0080
#define JT_HI         0x0100
#define JT_HI_LT      0x0200
#define JT_LIMIT      0x0400
#define JT_TAGIN      0x1000
#define JT_ACTORIN    0x2000

/* Values up to this size are copied, see resultValue. */
#define JT_COPY_MAX 128

/**************************************************************************
** Connecting
*/
static const char zSchema[] =
    "CREATE TABLE x(actor_id TEXT, seq INTEGER, pos INTEGER, ts INTEGER, "
    "type TEXT, payload, meta, tags TEXT, "
    "tag HIDDEN " LJ_TAG_COLLATION " COLLATE " LJ_TAG_COLLATION ")";

static int jtDisconnect(sqlite3_vtab *pVtab);

/* xCreate (bCreate: CREATE VIRTUAL TABLE creates a missing store) and
** xConnect (a declaration in the schema, perhaps a file someone else
** wrote: it only connects to a store that exists). */
static int jtOpenTable(sqlite3 *db, void *pAux, int argc,
                       const char *const *argv, sqlite3_vtab **ppVtab,
                       char **pzErr, int bCreate) {
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
  if (rc == SQLITE_OK) rc = ljEnvOpen(&p->cfg, bCreate, &p->pEnv, pzErr);
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
  ljTableLink(p);
  *ppVtab = &p->base;
  return SQLITE_OK;
}

static int jtCreate(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                    sqlite3_vtab **ppVtab, char **pzErr) {
  return jtOpenTable(db, pAux, argc, argv, ppVtab, pzErr, 1);
}

static int jtConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                     sqlite3_vtab **ppVtab, char **pzErr) {
  return jtOpenTable(db, pAux, argc, argv, ppVtab, pzErr, 0);
}

static int jtDisconnect(sqlite3_vtab *pVtab) {
  LjTable *p = (LjTable *)pVtab;
  ljTableUnlink(p);
  ljPendingFree(p->pPending);
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
  p->pConn->iGen++;
  return SQLITE_OK;
}

/**************************************************************************
** Planning.  xBestIndex never fails a legal statement: it serves the
** constraints it can (equality on actor_id or tag with the column's own
** collation, integer bounds on seq, pos and ts, LIMIT/OFFSET when nothing
** else is left to check) and leaves every other one to SQLite, which can
** evaluate any operator on any column.
**
** The tag column reads as the event's tags array (NULL without tags) and
** compares under the LJTEXT collation, for which an array equals each tag
** it holds: so tag = 'x', tag IN (...), and tag = 'x' AND tag = 'y' mean
** "carries the tag" also where SQLite evaluates them itself -- under OR,
** in joins, on a plan that serves another constraint (see jtTagCompare).
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

/* What xBestIndex found and chose. */
typedef struct JtPlan JtPlan;
struct JtPlan {
  int iActor, iTag, iLimit; /* constraint indexes, -1: none */
  int ePlan;
  int idxNum;
  int nArg;
  int bActorIn; /* actor_id IN (...): several actors, in turn */
  double rows;
  JtBounds b;
};

/* The bounds on column iCol (pos: also the rowid, column -1). */
static void boundsScan(sqlite3_index_info *p, int iCol, JtBounds *b) {
  b->iEq = b->iLo = b->iHi = -1;
  for (int i = 0; i < p->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &p->aConstraint[i];
    int bCol = c->iColumn == iCol || (iCol == LJ_COL_POS && c->iColumn == -1);
    if (!c->usable || !bCol || !isBoundOp(c->op)) continue;
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

static int hasBounds(const JtBounds *b) {
  return b->iEq >= 0 || b->iLo >= 0 || b->iHi >= 0;
}

/* Can the plan deliver the ORDER BY?  *pbDesc gets its direction. */
static int orderConsumable(sqlite3_index_info *p, int ePlan, int *pbDesc) {
  int bDesc = -1;
  for (int i = 0; i < p->nOrderBy; i++) {
    int iCol = p->aOrderBy[i].iColumn;
    int ok;
    if (ePlan == JT_PLAN_ACTOR && iCol == LJ_COL_ACTOR) continue; /* constant */
    ok = iCol == LJ_COL_POS || iCol == -1 || iCol == LJ_COL_TS ||
         (ePlan == JT_PLAN_ACTOR && iCol == LJ_COL_SEQ);
    if (!ok || ePlan == JT_PLAN_FULL) return 0;
    if (bDesc >= 0 && bDesc != p->aOrderBy[i].desc) return 0;
    bDesc = p->aOrderBy[i].desc;
  }
  *pbDesc = bDesc > 0;
  return 1;
}

/* Is constraint i an equality the actor or tag index can answer: one
** compared under the column's own collation (zColl)?  Under another, the
** index's exact bytes do not answer it. */
static int keyUsable(sqlite3_index_info *p, int i, const char *zColl) {
  const struct sqlite3_index_constraint *c = &p->aConstraint[i];
  const char *z;
  if (!c->usable || c->op != SQLITE_INDEX_CONSTRAINT_EQ) return 0;
  z = sqlite3_vtab_collation(p, i);
  return z == 0 || sqlite3_stricmp(z, zColl) == 0;
}

static void planConstraints(sqlite3_index_info *p, JtPlan *pl) {
  pl->iActor = pl->iTag = pl->iLimit = -1;
  for (int i = 0; i < p->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &p->aConstraint[i];
    if (c->op == SQLITE_INDEX_CONSTRAINT_LIMIT) {
      if (c->usable) pl->iLimit = i;
      continue;
    } else if (c->op == SQLITE_INDEX_CONSTRAINT_OFFSET) {
      continue;
    }
    if (c->iColumn == LJ_COL_TAG) {
      if (pl->iTag < 0 && keyUsable(p, i, LJ_TAG_COLLATION)) pl->iTag = i;
    } else if (c->iColumn == LJ_COL_ACTOR) {
      if (pl->iActor < 0 && keyUsable(p, i, "BINARY")) pl->iActor = i;
    }
  }
}

/* Choose the plan, and the column its bounds apply to. */
static void planChoose(sqlite3_index_info *p, JtPlan *pl) {
  int bDesc;
  if (pl->iTag >= 0) {
    pl->ePlan = JT_PLAN_TAG;
    boundsScan(p, LJ_COL_POS, &pl->b);
    pl->rows = 1000;
  } else if (pl->iActor >= 0) {
    pl->ePlan = JT_PLAN_ACTOR;
    boundsScan(p, LJ_COL_SEQ, &pl->b);
    pl->rows = 1000;
  } else {
    boundsScan(p, LJ_COL_POS, &pl->b);
    pl->ePlan = JT_PLAN_POS;
    pl->rows = 100000;
    if (!hasBounds(&pl->b)) {
      boundsScan(p, LJ_COL_TS, &pl->b);
      pl->ePlan = JT_PLAN_TS;
      pl->rows = 150000;
    }
    if (!hasBounds(&pl->b)) {
      pl->ePlan = JT_PLAN_FULL;
      pl->rows = 1000000;
      if (p->nOrderBy > 0 && orderConsumable(p, JT_PLAN_POS, &bDesc)) {
        pl->ePlan = JT_PLAN_POS; /* a full scan in pos order */
        pl->rows = 1200000;
      }
    }
  }
  pl->idxNum = pl->ePlan;
}

static void planUse(sqlite3_index_info *p, JtPlan *pl, int i) {
  p->aConstraintUsage[i].argvIndex = ++pl->nArg;
  p->aConstraintUsage[i].omit = 1;
}

/* Hand the key and the bounds to xFilter, in that order. */
static void planArgs(sqlite3_index_info *p, JtPlan *pl) {
  if (pl->iTag >= 0) {
    planUse(p, pl, pl->iTag);
    pl->idxNum |= JT_KEY;
    if (sqlite3_vtab_in(p, pl->iTag, 1)) {
      pl->idxNum |= JT_TAGIN;
      pl->rows *= 4;
    }
  } else if (pl->iActor >= 0) {
    sqlite3_value *pRhs = 0;
    planUse(p, pl, pl->iActor);
    pl->idxNum |= JT_KEY;
    if (sqlite3_vtab_in(p, pl->iActor, 1)) {
      pl->idxNum |= JT_ACTORIN;
      pl->bActorIn = 1;
    }
    if (pl->bActorIn ||
        sqlite3_vtab_rhs_value(p, pl->iActor, &pRhs) != SQLITE_OK) {
      p->aConstraintUsage[pl->iActor].omit = 0; /* see JT_ACTORIN */
    }
  }
  if (pl->b.iEq >= 0) {
    planUse(p, pl, pl->b.iEq);
    pl->idxNum |= JT_EQ;
    pl->rows = 1;
    return;
  }
  if (pl->b.iLo >= 0) {
    planUse(p, pl, pl->b.iLo);
    pl->idxNum |= JT_LO;
    if (p->aConstraint[pl->b.iLo].op == SQLITE_INDEX_CONSTRAINT_GT)
      pl->idxNum |= JT_LO_GT;
    pl->rows /= 4;
  }
  if (pl->b.iHi >= 0) {
    planUse(p, pl, pl->b.iHi);
    pl->idxNum |= JT_HI;
    if (p->aConstraint[pl->b.iHi].op == SQLITE_INDEX_CONSTRAINT_LT)
      pl->idxNum |= JT_HI_LT;
    pl->rows /= 4;
  }
}

/* ORDER BY, then the LIMIT hint only when nothing is left for SQLite to
** filter or sort. */
static void planOrderAndLimit(sqlite3_index_info *p, JtPlan *pl) {
  int bDesc = 0, bAll = 1;
  if (pl->ePlan == JT_PLAN_POS && pl->b.iEq >= 0) {
    p->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
  }
  if (p->nOrderBy > 0 && !pl->bActorIn &&
      orderConsumable(p, pl->ePlan, &bDesc)) {
    p->orderByConsumed = 1;
    if (bDesc) pl->idxNum |= JT_DESC;
  }
  if (pl->iLimit < 0 || pl->bActorIn ||
      (p->nOrderBy > 0 && !p->orderByConsumed)) {
    return;
  }
  for (int i = 0; i < p->nConstraint; i++) {
    int op = p->aConstraint[i].op;
    if (op == SQLITE_INDEX_CONSTRAINT_LIMIT ||
        op == SQLITE_INDEX_CONSTRAINT_OFFSET)
      continue;
    if (!p->aConstraintUsage[i].omit) bAll = 0;
  }
  if (!bAll) return;
  p->aConstraintUsage[pl->iLimit].argvIndex = ++pl->nArg; /* not omitted */
  pl->idxNum |= JT_LIMIT;
  if (pl->rows > 1000) pl->rows = 1000; /* the limit's value is unknown */
}

/* The plan spelled out for EXPLAIN QUERY PLAN, e.g. "actor=? seq>=?". */
static char *planString(const sqlite3_index_info *p, int idxNum) {
  static const char *const azPlan[] = {"fullscan", "actor", "pos", "ts", "tag"};
  static const char *const azCol[] = {"", "seq", "pos", "ts", "pos"};
  int ePlan = idxNum & JT_PLAN_MASK;
  sqlite3_str *pStr = sqlite3_str_new(0);
  sqlite3_str_appendall(pStr, azPlan[ePlan]);
  if (idxNum & (JT_TAGIN | JT_ACTORIN))
    sqlite3_str_appendall(pStr, " in(...)");
  else if (idxNum & JT_KEY)
    sqlite3_str_appendall(pStr, "=?");
  if (idxNum & JT_EQ) sqlite3_str_appendf(pStr, " %s=?", azCol[ePlan]);
  if (idxNum & JT_LO) {
    sqlite3_str_appendf(pStr, " %s%s", azCol[ePlan],
                        (idxNum & JT_LO_GT) ? ">?" : ">=?");
  }
  if (idxNum & JT_HI) {
    sqlite3_str_appendf(pStr, " %s%s", azCol[ePlan],
                        (idxNum & JT_HI_LT) ? "<?" : "<=?");
  }
  if (p->orderByConsumed) {
    sqlite3_str_appendall(pStr,
                          (idxNum & JT_DESC) ? " order desc" : " order asc");
  }
  if (idxNum & JT_LIMIT) sqlite3_str_appendall(pStr, " limit");
  return sqlite3_str_finish(pStr);
}

static int jtBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p) {
  JtPlan pl;
  char *zStr;
  /* Tells ljTableFind which table a name resolves to. */
  ((LjTable *)pVtab)->pConn->pPlanned = (LjTable *)pVtab;
  memset(&pl, 0, sizeof(pl));
  planConstraints(p, &pl);
  planChoose(p, &pl);
  planArgs(p, &pl);
  planOrderAndLimit(p, &pl);
  zStr = planString(p, pl.idxNum);
  if (zStr == 0) return SQLITE_NOMEM;
  p->idxNum = pl.idxNum;
  p->idxStr = zStr;
  p->needToFreeIdxStr = 1;
  p->estimatedRows = (sqlite3_int64)(pl.rows < 1 ? 1 : pl.rows);
  p->estimatedCost = (pl.ePlan == JT_PLAN_FULL ? 0 : 20) + pl.rows;
  if (pl.bActorIn) p->estimatedCost += 10;
  return SQLITE_OK;
}

/**************************************************************************
** Cursors: SQL glue over the read interface (scan.c).  xFilter turns the
** plan (idxNum, argv) into an LjScanSpec; rows come from the scan, and
** values are handed to SQLite by reference into the scan's row chunks.
*/
typedef struct JtCursor JtCursor;
typedef struct JtKeys JtKeys;
struct JtKeys {
  const u8 **aa; /* into the copies */
  int *an;
  u8 **aCopy;
  int n, nAlloc;
};

struct JtCursor {
  sqlite3_vtab_cursor base;
  LjTable *pTab;
  LjScan *pScan;
  LjScanSpec spec; /* the plan started (actor plan: the current actor) */
  JtKeys actors;   /* ACTORIN: the actors, sorted, and the next one */
  int iActor;
};

static void keysFree(JtKeys *t);

static int jtOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur) {
  LjTable *pTab = (LjTable *)pVtab;
  JtCursor *p = sqlite3_malloc64(sizeof(*p));
  int rc;
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->pTab = pTab;
  rc = ljScanNew(pTab->pEnv, &p->pScan);
  if (rc) {
    sqlite3_free(p);
    return rc;
  }
  *ppCur = &p->base;
  return SQLITE_OK;
}

static int jtClose(sqlite3_vtab_cursor *pCur) {
  JtCursor *p = (JtCursor *)pCur;
  ljScanFree(p->pScan);
  keysFree(&p->actors);
  sqlite3_free(p);
  return SQLITE_OK;
}

/* Turn an SQL bound into an inclusive integer bound.  Returns 0 when the
** constraint can match nothing (NULL, or text against a number). */
int ljBoundValue(sqlite3_value *v, int bLower, int bStrict, i64 *pOut) {
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
      if (r >= 9.2e18)
        *pOut = INT64_MAX;
      else if (r <= -9.2e18)
        *pOut = INT64_MIN;
      else
        *pOut = (i64)r;
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

/* Apply TEXT affinity to a key compared with a TEXT column: numbers
** become their text (as SQLite converts them); SQLITE_MISMATCH for NULL
** and blobs, which equal no text. */
int ljTextAffinity(sqlite3_value *v) {
  int e = sqlite3_value_type(v);
  if (e == SQLITE_INTEGER || e == SQLITE_FLOAT) {
    return sqlite3_value_text(v) ? SQLITE_OK : SQLITE_NOMEM;
  }
  return e == SQLITE_TEXT ? SQLITE_OK : SQLITE_MISMATCH;
}

/* The bounds of the plan from argv (after the key); *pbEmpty when they
** can match nothing.  Returns the next argv index. */
static int filterBounds(int idxNum, sqlite3_value **argv, int iArg,
                        LjScanSpec *s, int *pbEmpty) {
  s->lo = 0;
  s->hi = INT64_MAX;
  if (idxNum & JT_EQ) {
    sqlite3_value *x = argv[iArg++];
    int eType = sqlite3_value_numeric_type(x);
    /* 3.0 equals 3; 2.5 gives lo 3 > hi 2, which matches nothing. */
    if (!ljBoundValue(x, 1, 0, &s->lo) || !ljBoundValue(x, 0, 0, &s->hi))
      *pbEmpty = 1;
    if (eType != SQLITE_INTEGER && eType != SQLITE_FLOAT) {
      *pbEmpty = 1; /* text never equals a number column */
    }
  }
  if ((idxNum & JT_LO) &&
      !ljBoundValue(argv[iArg++], 1, idxNum & JT_LO_GT, &s->lo))
    *pbEmpty = 1;
  if ((idxNum & JT_HI) &&
      !ljBoundValue(argv[iArg++], 0, idxNum & JT_HI_LT, &s->hi))
    *pbEmpty = 1;
  s->nLimit = (idxNum & JT_LIMIT) ? sqlite3_value_int64(argv[iArg++]) : -1;
  return iArg;
}

/* The tags of the tag plan: one value, or every value of an IN list,
** copied (an IN list's values do not outlive the next one). */

static int keysAdd(JtKeys *t, sqlite3_value *pVal) {
  const u8 *z = sqlite3_value_text(pVal);
  int n = sqlite3_value_bytes(pVal);
  if (z == 0) return SQLITE_NOMEM;
  if (t->n >= t->nAlloc) {
    int nNew = t->nAlloc ? t->nAlloc * 2 : 4;
    size_t nByte = (sizeof(u8 *) * 2 + sizeof(int)) * (size_t)nNew;
    u8 *a = sqlite3_malloc64(nByte);
    if (a == 0) return SQLITE_NOMEM;
    if (t->n > 0) { /* (memcpy from NULL is undefined, even of 0 bytes) */
      memcpy(a, t->aa, sizeof(u8 *) * (size_t)t->n);
      memcpy(a + sizeof(u8 *) * nNew, t->aCopy, sizeof(u8 *) * (size_t)t->n);
      memcpy(a + sizeof(u8 *) * 2 * nNew, t->an, sizeof(int) * (size_t)t->n);
    }
    sqlite3_free(t->aa);
    t->aa = (const u8 **)a;
    t->aCopy = (u8 **)(a + sizeof(u8 *) * nNew);
    t->an = (int *)(a + sizeof(u8 *) * 2 * nNew);
    t->nAlloc = nNew;
  }
  t->aCopy[t->n] = sqlite3_malloc64((size_t)n + 1);
  if (t->aCopy[t->n] == 0) return SQLITE_NOMEM;
  memcpy(t->aCopy[t->n], z, (size_t)n);
  t->aCopy[t->n][n] = 0;
  t->aa[t->n] = t->aCopy[t->n];
  t->an[t->n++] = n;
  return SQLITE_OK;
}

static void keysFree(JtKeys *t) {
  for (int i = 0; i < t->n; i++) sqlite3_free(t->aCopy[i]);
  sqlite3_free(t->aa);
  memset(t, 0, sizeof(*t));
}

/* A read error of the scan, with the table named. */
static int cursorError(JtCursor *p, int rc, char *zErr) {
  if (zErr) {
    sqlite3_free(p->pTab->base.zErrMsg);
    p->pTab->base.zErrMsg =
        sqlite3_mprintf("reading %s: %z", p->pTab->zName, zErr);
  }
  return rc;
}

/* The keys of an IN list taken at once, or the one key, under TEXT
** affinity: numbers as their text; NULL and blobs equal no text. */
static int keysCollect(sqlite3_value *pKey, int bIn, JtKeys *t) {
  sqlite3_value *pVal = pKey;
  int rc = bIn ? sqlite3_vtab_in_first(pKey, &pVal) : SQLITE_OK;
  while (rc == SQLITE_OK && pVal) {
    if (ljTextAffinity(pVal) == SQLITE_OK) rc = keysAdd(t, pVal);
    if (!bIn || rc) break;
    rc = sqlite3_vtab_in_next(pKey, &pVal);
  }
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int keyOrder(const void *pA, const void *pB) {
  const u8 *const *a = pA, *const *b = pB;
  return strcmp((const char *)*a, (const char *)*b);
}

/* Start the scan for the next actor of the list (the spec's bounds stay);
** the scan is at EOF when there is none. */
static int nextActor(JtCursor *p, char **pzErr) {
  LjScanSpec *s = &p->spec;
  const JtKeys *k = &p->actors;
  s->aActor = 0;
  s->nActor = 0;
  while (p->iActor < k->n && s->aActor == 0) {
    int i = p->iActor++;
    if (k->an[i] < 1 || k->an[i] > LJ_MAX_ACTOR_BYTES) continue;
    if (i > 0 &&
        strcmp((const char *)k->aa[i], (const char *)k->aa[i - 1]) == 0)
      continue; /* each actor once */
    s->aActor = k->aa[i];
    s->nActor = k->an[i];
  }
  if (s->aActor == 0) s->lo = 1, s->hi = 0; /* none left: an empty range */
  return ljScanStart(p->pScan, s, p->pTab->cfg.usSyncTimeout, pzErr);
}

/* Actor plan: past the actors with no (more) events in range. */
static int actorsAdvance(JtCursor *p, char **pzErr) {
  int rc = SQLITE_OK;
  while (rc == SQLITE_OK && p->spec.ePlan == LJ_SCAN_ACTOR &&
         p->iActor < p->actors.n && ljScanEof(p->pScan)) {
    rc = nextActor(p, pzErr);
  }
  return rc;
}

/* The actor plan's keys, sorted. */
static int actorKeys(JtCursor *p, sqlite3_value *pKey, int idxNum) {
  int rc = keysCollect(pKey, (idxNum & JT_ACTORIN) != 0, &p->actors);
  if (rc == SQLITE_OK && p->actors.n > 1) {
    /* Ids hold no NUL, and the copies are NUL-terminated. */
    qsort(p->actors.aa, (size_t)p->actors.n, sizeof(u8 *), keyOrder);
    for (int i = 0; i < p->actors.n; i++) {
      p->actors.an[i] = (int)strlen((const char *)p->actors.aa[i]);
    }
  }
  return rc;
}

static int jtFilter(sqlite3_vtab_cursor *pCur, int idxNum, const char *idxStr,
                    int argc, sqlite3_value **argv) {
  JtCursor *p = (JtCursor *)pCur;
  LjScanSpec *s = &p->spec;
  JtKeys tags = {0, 0, 0, 0, 0};
  sqlite3_value *pKey = 0;
  int rc = SQLITE_OK, bEmpty = 0, iArg = 0;
  char *zErr = 0;
  (void)idxStr;
  (void)argc;

  memset(s, 0, sizeof(*s));
  keysFree(&p->actors);
  p->iActor = 0;
  s->ePlan = idxNum & JT_PLAN_MASK;
  s->bDesc = (idxNum & JT_DESC) != 0;
  if (idxNum & JT_KEY) pKey = argv[iArg++];
  filterBounds(idxNum, argv, iArg, s, &bEmpty);
  if (s->ePlan == LJ_SCAN_ACTOR) {
    rc = actorKeys(p, pKey, idxNum);
  } else if (s->ePlan == LJ_SCAN_TAG) {
    rc = keysCollect(pKey, (idxNum & JT_TAGIN) != 0, &tags);
    s->aaTag = tags.aa;
    s->anTag = tags.an;
    s->nTag = tags.n;
  }
  if (bEmpty) s->lo = 1, s->hi = 0; /* an empty range: no row */
  if (rc == SQLITE_OK) rc = ljTableUsable(p->pTab, &zErr);
  if (rc == SQLITE_OK && s->ePlan == LJ_SCAN_ACTOR) {
    rc = nextActor(p, &zErr);
    if (rc == SQLITE_OK) rc = actorsAdvance(p, &zErr);
  } else if (rc == SQLITE_OK) {
    rc = ljScanStart(p->pScan, s, p->pTab->cfg.usSyncTimeout, &zErr);
  }
  keysFree(&tags);
  s->aaTag = 0;
  s->anTag = 0;
  return cursorError(p, rc, zErr);
}

static int jtNext(sqlite3_vtab_cursor *pCur) {
  JtCursor *p = (JtCursor *)pCur;
  char *zErr = 0;
  int rc = ljScanNext(p->pScan, &zErr);
  if (rc == SQLITE_OK) rc = actorsAdvance(p, &zErr);
  return zErr ? cursorError(p, rc, zErr) : rc;
}

static int jtEof(sqlite3_vtab_cursor *pCur) {
  return ljScanEof(((JtCursor *)pCur)->pScan);
}

/* A stored value: text and blobs over JT_COPY_MAX bytes by reference into
** the scan's chunk, shorter ones copied (into the result's own buffer,
** which SQLite reuses row after row: cheaper than a reference and its
** release). */
static void resultValue(JtCursor *p, sqlite3_context *ctx, u8 e, const u8 *a,
                        int n) {
  void (*xDel)(void *) = 0;
  if ((e == LJ_VAL_TEXT || e == LJ_VAL_BLOB) && n > JT_COPY_MAX) {
    xDel = ljScanKeep(p->pScan, a);
  }
  ljResultStored(ctx, e, a, n, xDel ? xDel : SQLITE_TRANSIENT);
}

static int jtColumn(sqlite3_vtab_cursor *pCur, sqlite3_context *ctx, int i) {
  JtCursor *p = (JtCursor *)pCur;
  const LjRow *s = ljScanRow(p->pScan);
  const LjRec *r = 0;
  if (i == LJ_COL_PAYLOAD) {
    u8 e;
    const u8 *a;
    int n, rc = ljScanPayload(p->pScan, &e, &a, &n);
    if (rc == SQLITE_OK) resultValue(p, ctx, e, a, n);
    return rc;
  }
  if (i != LJ_COL_ACTOR && i != LJ_COL_SEQ) {
    int rc = ljScanDecode(p->pScan, &r);
    if (rc) return rc;
  }
  switch (i) {
    case LJ_COL_ACTOR:
      /* Length -1: SQLite copies the id (at most 400 bytes) with its
      ** terminator and marks it terminated (see slotName). */
      resultValue(p, ctx, LJ_VAL_TEXT, (const u8 *)s->zActor, -1);
      break;
    case LJ_COL_SEQ: sqlite3_result_int64(ctx, (i64)s->seq); break;
    case LJ_COL_POS: sqlite3_result_int64(ctx, (i64)r->pos); break;
    case LJ_COL_TS: sqlite3_result_int64(ctx, r->ts); break;
    case LJ_COL_TYPE:
      resultValue(p, ctx, r->aType ? LJ_VAL_TEXT : LJ_VAL_NULL, r->aType,
                  r->nType);
      break;
    case LJ_COL_META: resultValue(p, ctx, r->eMeta, r->aMeta, r->nMeta); break;
    default: {
      /* The tag column: NULL for an empty array, like no tags at all. */
      int bNone = r->aTags == 0 ||
                  (i == LJ_COL_TAG && !memchr(r->aTags, '"', (size_t)r->nTags));
      assert(i == LJ_COL_TAGS || i == LJ_COL_TAG);
      resultValue(p, ctx, bNone ? LJ_VAL_NULL : LJ_VAL_TEXT, r->aTags,
                  r->nTags);
      break;
    }
  }
  return SQLITE_OK;
}

static int jtRowid(sqlite3_vtab_cursor *pCur, sqlite_int64 *pRowid) {
  JtCursor *p = (JtCursor *)pCur;
  const LjRec *r;
  int rc = ljScanDecode(p->pScan, &r);
  *pRowid = (i64)r->pos;
  return rc;
}

static sqlite3_module jtModule = {
    3,                 /* iVersion */
    jtCreate,          /* xCreate */
    jtConnect,         /* xConnect */
    jtBestIndex,       /* xBestIndex */
    jtDisconnect,      /* xDisconnect */
    jtDisconnect,      /* xDestroy: DROP TABLE leaves the data on disk */
    jtOpen,            /* xOpen */
    jtClose,           /* xClose */
    jtFilter,          /* xFilter */
    jtNext,            /* xNext */
    jtEof,             /* xEof */
    jtColumn,          /* xColumn */
    jtRowid,           /* xRowid */
    ljTableUpdate,     /* xUpdate */
    ljTableBegin,      /* xBegin */
    ljTableSync,       /* xSync */
    ljTableCommit,     /* xCommit */
    ljTableRollback,   /* xRollback */
    0,                 /* xFindFunction */
    jtRename,          /* xRename */
    ljTableSavepoint,  /* xSavepoint */
    ljTableRelease,    /* xRelease */
    ljTableRollbackTo, /* xRollbackTo */
    0                  /* xShadowName */
};

/*
** The LJTEXT collation of the tag column: a tags array equals each tag it
** holds (in either argument order); other pairs compare as BINARY.  It is
** meant for tag = ? and tag IN (...); sorting by the tag column is sorting
** by the arrays' text, except where an array and one of its own tags meet.
**
** Why the odd name: SQLite (3.38 to 3.54 at least) removes the HIDDEN
** keyword from a virtual table column's type in place, after which it
** finds the column's collation at the bytes the removal left behind.  The
** type "HIDDEN LJTEXT" leaves exactly "LJTEXT" there, the name declared
** with COLLATE too, so the column compares under LJTEXT whether or not
** SQLite keeps that behaviour; "LJTEXT" also gives the column TEXT
** affinity.  native.test pins it (SELECT tag = 'x' evaluated by SQLite).
*/
typedef struct JtTagFind JtTagFind;
struct JtTagFind {
  const void *a;
  int n;
  int bFound;
};

static int tagFound(void *pArg, const u8 *aTag, int nTag) {
  JtTagFind *f = (JtTagFind *)pArg;
  if (nTag == f->n && memcmp(aTag, f->a, (size_t)nTag) == 0) f->bFound = 1;
  return SQLITE_OK;
}

/* Does the tags array zArr hold tag a?  0 also when zArr is no array. */
static int tagsHold(const void *zArr, int nArr, const void *a, int n) {
  JtTagFind f = {a, n, 0};
  char *zErr = 0;
  if (nArr < 2 || ((const char *)zArr)[0] != '[') return 0;
  if (ljTagsParse((const char *)zArr, nArr, tagFound, &f, &zErr)) {
    sqlite3_free(zErr);
    return 0;
  }
  return f.bFound;
}

static int jtTagCompare(void *pArg, int nA, const void *a, int nB,
                        const void *b) {
  int c = memcmp(a, b, (size_t)(nA < nB ? nA : nB));
  (void)pArg;
  if (c == 0) c = nA - nB;
  if (c == 0 || tagsHold(a, nA, b, nB) || tagsHold(b, nB, a, nA)) return 0;
  return c;
}

int ljRegisterTable(sqlite3 *db, LjConn *pConn) {
  int rc = sqlite3_create_collation_v2(db, LJ_TAG_COLLATION, SQLITE_UTF8, 0,
                                       jtTagCompare, 0);
  if (rc) {
    ljConnUnref(pConn); /* the reference it was given */
    return rc;
  }
  /* On failure SQLite calls the destructor. */
  return sqlite3_create_module_v2(db, "lmdb_journal", &jtModule, pConn,
                                  ljConnDestroy);
}
