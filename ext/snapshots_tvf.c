/*
** snapshots_tvf.c -- the table-valued functions over snapshots and the
** actor registry:
**
**   SELECT seq, state FROM journal_snapshots('j')
**    WHERE actor_id = 'order-1' AND seq <= 100 ORDER BY seq DESC LIMIT 1;
**   SELECT * FROM journal_actors('j')
**    WHERE actor_id > :last ORDER BY actor_id LIMIT 100;
**
**   journal_snapshots   actor_id TEXT, seq INTEGER, ts INTEGER, state, meta
**   journal_actors      actor_id TEXT, highest_seq INTEGER, first_seq
**                       INTEGER, events INTEGER, last_ts INTEGER,
**                       snapshot_seq INTEGER
**
** Both are eponymous-only virtual tables whose hidden last column is the
** journal table's name ("j" or "main.j"), resolved on the calling
** connection like the journal_* functions.  They read through the read
** interface (snapread.c) and stream: a LIMIT stops the walk.
**
** QUERY PLANS.  xBestIndex serves what the readers can seek to and leaves
** every other constraint to SQLite; it fails only when the table name is
** missing altogether.  Actor ids are compared as bytes, so only an actor_id
** constraint under BINARY collation is served.  idxNum:
**
**   0x0001  KEY     journal_snapshots: argv has the actor id
**   bits of a range, five per column, at RANGE_SEQ (snapshots: seq),
**   RANGE_TS (snapshots: ts) or RANGE_ACTOR (actors: actor_id):
**     +0  EQ  one value that is both bounds
**     +1  LO  a lower bound, +2: strict (>)
**     +3  HI  an upper bound, +4: strict (<)
**   0x1000  DESC    newest seq (snapshots) or last actor id (actors) first
**   0x2000  NOTABLE no table name was offered: xFilter reports it (a plan
**                   that fails when run, priced never to be chosen when
**                   SQLite only explores, e.g. one branch of an OR)
**
** argv: the table name, the key, then each range's values in that order.
** journal_snapshots serves seq and ts ranges only with the key (one
** actor's snapshots), and ORDER BY seq only then; journal_actors serves
** ORDER BY actor_id always.  idxStr spells the plan out for EXPLAIN QUERY
** PLAN, e.g. "actor=? seq<=? order desc".
*/
#include "internal.h"

#include <string.h>

#define ST_KEY      0x0001
#define RANGE_SEQ   1
#define RANGE_TS    6
#define RANGE_ACTOR 1
#define RG_EQ       0x01
#define RG_LO       0x02
#define RG_LO_GT    0x04
#define RG_HI       0x08
#define RG_HI_LT    0x10
#define ST_DESC     0x1000
#define ST_NOTABLE  0x2000

enum { SC_ACTOR = 0, SC_SEQ, SC_TS, SC_STATE, SC_META, SC_TABLE };
enum {
  AC_ACTOR = 0,
  AC_HIGHEST,
  AC_FIRST,
  AC_EVENTS,
  AC_LAST_TS,
  AC_SNAP_SEQ,
  AC_TABLE
};

typedef struct StCursor StCursor;
struct StCursor {
  sqlite3_vtab_cursor base; /* must be first */
  LjSnapScan *pSnap;        /* journal_snapshots */
  LjActorScan *pActors;     /* journal_actors */
  LjEnv *pEnv;              /* the store they read */
  i64 iRow;
};

/**************************************************************************
** Connecting
*/
static int stConnect(sqlite3 *db, void *pAux, int bActors,
                     sqlite3_vtab **ppVtab) {
  return ljTvfConnect(
      db, pAux,
      bActors ? "CREATE TABLE x(actor_id TEXT, highest_seq INTEGER, "
                "first_seq INTEGER, events INTEGER, last_ts INTEGER, "
                "snapshot_seq INTEGER, tbl HIDDEN)"
              : "CREATE TABLE x(actor_id TEXT, seq INTEGER, ts INTEGER, "
                "state, meta, tbl HIDDEN)",
      bActors, 0, ppVtab);
}

static int snConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                     sqlite3_vtab **ppVtab, char **pzErr) {
  (void)argc;
  (void)argv;
  (void)pzErr;
  return stConnect(db, pAux, 0, ppVtab);
}

static int acConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                     sqlite3_vtab **ppVtab, char **pzErr) {
  (void)argc;
  (void)argv;
  (void)pzErr;
  return stConnect(db, pAux, 1, ppVtab);
}

/**************************************************************************
** Planning
*/
typedef struct StPlan StPlan;
struct StPlan {
  sqlite3_index_info *p;
  int idxNum;
  int nArg;
  double rows;
  sqlite3_str *pStr; /* idxStr */
};

static void planUse(StPlan *pl, int i, int bOmit) {
  pl->p->aConstraintUsage[i].argvIndex = ++pl->nArg;
  pl->p->aConstraintUsage[i].omit = (unsigned char)bOmit;
}

/* Is constraint i on an actor id compared under BINARY (the readers
** compare bytes)? */
static int binaryColl(sqlite3_index_info *p, int i) {
  const char *z = sqlite3_vtab_collation(p, i);
  return z == 0 || sqlite3_stricmp(z, "BINARY") == 0;
}

/* The table name argument; SQLITE_CONSTRAINT when it is offered only
** unusable (another join order will have it), the NOTABLE plan when it is
** not offered at all. */
static int planTable(StPlan *pl, int iCol) {
  sqlite3_index_info *p = pl->p;
  int bSeen = 0;
  for (int i = 0; i < p->nConstraint; i++) {
    if (p->aConstraint[i].iColumn != iCol) continue;
    bSeen = 1;
    if (p->aConstraint[i].usable &&
        p->aConstraint[i].op == SQLITE_INDEX_CONSTRAINT_EQ) {
      planUse(pl, i, 1);
      return SQLITE_OK;
    }
  }
  if (bSeen) return SQLITE_CONSTRAINT;
  pl->idxNum = ST_NOTABLE;
  sqlite3_str_appendall(pl->pStr, " no table");
  return SQLITE_OK;
}

/*
** Serve the bounds on column iCol (the first equality, or the first lower
** and upper bound) as the range at bit shift, named zCol in idxStr.
** bActor: actor ids, only under BINARY and never omitted (xFilter skips
** a bound that is not text, leaving the test to SQLite); else integer
** bounds, omitted (xFilter reads them as SQLite compares).
*/
static void planRange(StPlan *pl, int iCol, int shift, const char *zCol,
                      int bActor) {
  sqlite3_index_info *p = pl->p;
  int iEq = -1, iLo = -1, iHi = -1;
  for (int i = 0; i < p->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &p->aConstraint[i];
    if (c->iColumn != iCol || !c->usable) continue;
    if (bActor && !binaryColl(p, i)) continue;
    if (c->op == SQLITE_INDEX_CONSTRAINT_EQ && iEq < 0) iEq = i;
    if ((c->op == SQLITE_INDEX_CONSTRAINT_GT ||
         c->op == SQLITE_INDEX_CONSTRAINT_GE) &&
        iLo < 0)
      iLo = i;
    if ((c->op == SQLITE_INDEX_CONSTRAINT_LT ||
         c->op == SQLITE_INDEX_CONSTRAINT_LE) &&
        iHi < 0)
      iHi = i;
  }
  if (iEq >= 0) {
    planUse(pl, iEq, !bActor);
    pl->idxNum |= RG_EQ << shift;
    sqlite3_str_appendf(pl->pStr, " %s=?", zCol);
    pl->rows = 1;
    return;
  }
  if (iLo >= 0) {
    int bGt = p->aConstraint[iLo].op == SQLITE_INDEX_CONSTRAINT_GT;
    planUse(pl, iLo, !bActor);
    pl->idxNum |= (RG_LO | (bGt ? RG_LO_GT : 0)) << shift;
    sqlite3_str_appendf(pl->pStr, " %s%s?", zCol, bGt ? ">" : ">=");
    pl->rows /= 4;
  }
  if (iHi >= 0) {
    int bLt = p->aConstraint[iHi].op == SQLITE_INDEX_CONSTRAINT_LT;
    planUse(pl, iHi, !bActor);
    pl->idxNum |= (RG_HI | (bLt ? RG_HI_LT : 0)) << shift;
    sqlite3_str_appendf(pl->pStr, " %s%s?", zCol, bLt ? "<" : "<=");
    pl->rows /= 4;
  }
}

/* Consume an ORDER BY on column iCol alone (constant columns skipped:
** iConst, -1 for none), in one direction. */
static void planOrder(StPlan *pl, int iCol, int iConst) {
  sqlite3_index_info *p = pl->p;
  int bDesc = -1;
  if (p->nOrderBy == 0) return;
  for (int i = 0; i < p->nOrderBy; i++) {
    if (p->aOrderBy[i].iColumn == iConst) continue;
    if (p->aOrderBy[i].iColumn != iCol) return;
    if (bDesc >= 0 && bDesc != p->aOrderBy[i].desc) return;
    bDesc = p->aOrderBy[i].desc;
  }
  p->orderByConsumed = 1;
  if (bDesc > 0) pl->idxNum |= ST_DESC;
  sqlite3_str_appendall(pl->pStr, bDesc > 0 ? " order desc" : " order asc");
}

/* Hand the plan to SQLite. */
static int planFinish(StPlan *pl, double cost) {
  char *z = sqlite3_str_finish(pl->pStr);
  if (z == 0) return SQLITE_NOMEM;
  pl->p->idxNum = pl->idxNum;
  pl->p->idxStr = z[0] == ' ' ? memmove(z, z + 1, strlen(z)) : z;
  pl->p->needToFreeIdxStr = 1;
  pl->p->estimatedRows = (sqlite3_int64)(pl->rows < 1 ? 1 : pl->rows);
  pl->p->estimatedCost = cost + pl->rows;
  return SQLITE_OK;
}

static int snBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p) {
  StPlan pl = {p, 0, 0, 100000, 0};
  int rc, iKey = -1;
  (void)pVtab;
  pl.pStr = sqlite3_str_new(0);
  rc = planTable(&pl, SC_TABLE);
  if (rc == SQLITE_OK && pl.idxNum == ST_NOTABLE) return planFinish(&pl, 1e99);
  for (int i = 0; i < p->nConstraint && rc == SQLITE_OK && iKey < 0; i++) {
    const struct sqlite3_index_constraint *c = &p->aConstraint[i];
    if (c->iColumn == SC_ACTOR && c->usable &&
        c->op == SQLITE_INDEX_CONSTRAINT_EQ && binaryColl(p, i)) {
      iKey = i;
    }
  }
  if (rc == SQLITE_OK && iKey >= 0) {
    sqlite3_value *pRhs = 0;
    /* Omitted only when the key is known to be text: a number compared
    ** from a numeric column takes NUMERIC affinity (journal_table.c). */
    planUse(&pl, iKey,
            sqlite3_vtab_rhs_value(p, iKey, &pRhs) == SQLITE_OK &&
                sqlite3_value_type(pRhs) == SQLITE_TEXT);
    pl.idxNum |= ST_KEY;
    pl.rows = 100;
    sqlite3_str_appendall(pl.pStr, " actor=?");
    planRange(&pl, SC_SEQ, RANGE_SEQ, "seq", 0);
    planRange(&pl, SC_TS, RANGE_TS, "ts", 0);
    planOrder(&pl, SC_SEQ, SC_ACTOR);
  } else if (rc == SQLITE_OK) {
    sqlite3_str_appendall(pl.pStr, " all");
  }
  if (rc) {
    sqlite3_free(sqlite3_str_finish(pl.pStr));
    return rc;
  }
  return planFinish(&pl, iKey >= 0 ? 10 : 1000);
}

static int acBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p) {
  StPlan pl = {p, 0, 0, 100000, 0};
  int rc;
  (void)pVtab;
  pl.pStr = sqlite3_str_new(0);
  rc = planTable(&pl, AC_TABLE);
  if (rc) {
    sqlite3_free(sqlite3_str_finish(pl.pStr));
    return rc;
  }
  if (pl.idxNum == ST_NOTABLE) return planFinish(&pl, 1e99);
  sqlite3_str_appendall(pl.pStr, " actors");
  planRange(&pl, AC_ACTOR, RANGE_ACTOR, "actor_id", 1);
  planOrder(&pl, AC_ACTOR, -1);
  return planFinish(&pl, 10);
}

/**************************************************************************
** Cursors
*/
static int stOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur) {
  StCursor *p = sqlite3_malloc64(sizeof(*p));
  (void)pVtab;
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  *ppCur = &p->base;
  return SQLITE_OK;
}

static int stClose(sqlite3_vtab_cursor *pCur) {
  StCursor *p = (StCursor *)pCur;
  ljSnapScanFree(p->pSnap);
  ljActorScanFree(p->pActors);
  sqlite3_free(p);
  return SQLITE_OK;
}

static int stError(sqlite3_vtab_cursor *pCur, int rc, char *zErr) {
  if (rc && zErr) {
    sqlite3_free(pCur->pVtab->zErrMsg);
    pCur->pVtab->zErrMsg = zErr;
  } else {
    sqlite3_free(zErr);
  }
  return rc;
}

/* The journal table named by argv[0] (NOTABLE: none was given). */
static int stTable(sqlite3_vtab_cursor *pCur, int idxNum, sqlite3_value **argv,
                   LjTable **pp, char **pzErr) {
  LjTvfTab *pTab = (LjTvfTab *)pCur->pVtab;
  const char *zFn = pTab->iVariant ? "journal_actors" : "journal_snapshots";
  const char *z = 0;
  if (idxNum & ST_NOTABLE) {
    *pzErr = sqlite3_mprintf(
        "%s needs the name of an lmdb_journal table, "
        "e.g. SELECT * FROM %s('j')",
        zFn, zFn);
    return SQLITE_ERROR;
  }
  if (sqlite3_value_type(argv[0]) == SQLITE_TEXT) {
    z = (const char *)sqlite3_value_text(argv[0]);
  }
  if (z == 0) {
    *pzErr = sqlite3_mprintf(
        "%s: the argument must be the name of an "
        "lmdb_journal table",
        zFn);
    return SQLITE_ERROR;
  }
  return ljTableFind(pTab->pConn, z, pp, pzErr);
}

/* The cursor's reader of store pEnv: kept across restarts (one snapshot
** for the statement), made anew when a join names another table. */
static int stReader(StCursor *p, LjEnv *pEnv) {
  int bActors = ((LjTvfTab *)p->base.pVtab)->iVariant;
  if (p->pEnv != pEnv) {
    ljSnapScanFree(p->pSnap);
    ljActorScanFree(p->pActors);
    p->pSnap = 0;
    p->pActors = 0;
    p->pEnv = pEnv;
  }
  if (bActors && p->pActors == 0) return ljActorScanNew(pEnv, &p->pActors);
  if (!bActors && p->pSnap == 0) return ljSnapScanNew(pEnv, &p->pSnap);
  return SQLITE_OK;
}

/* The integer range at bit shift of idxNum from argv[*piArg...]; *pbEmpty
** when it matches nothing. */
static void filterRange(int idxNum, int shift, sqlite3_value **argv, int *piArg,
                        i64 *pLo, i64 *pHi, int *pbEmpty) {
  int m = idxNum >> shift;
  *pLo = INT64_MIN;
  *pHi = INT64_MAX;
  if (m & RG_EQ) {
    sqlite3_value *x = argv[(*piArg)++];
    int e = sqlite3_value_numeric_type(x);
    if (e != SQLITE_INTEGER && e != SQLITE_FLOAT) *pbEmpty = 1;
    if (!ljBoundValue(x, 1, 0, pLo) || !ljBoundValue(x, 0, 0, pHi))
      *pbEmpty = 1;
  }
  if ((m & RG_LO) && !ljBoundValue(argv[(*piArg)++], 1, m & RG_LO_GT, pLo))
    *pbEmpty = 1;
  if ((m & RG_HI) && !ljBoundValue(argv[(*piArg)++], 0, m & RG_HI_LT, pHi))
    *pbEmpty = 1;
}

/* What both xFilters do first: find the journal table the hidden column
** names and make the cursor's reader one of its store. */
static int stFilterBegin(sqlite3_vtab_cursor *pCur, int idxNum,
                         sqlite3_value **argv, LjTable **ppJournal) {
  StCursor *p = (StCursor *)pCur;
  char *zErr = 0;
  int rc;
  p->iRow = 0;
  rc = stTable(pCur, idxNum, argv, ppJournal, &zErr);
  if (rc == SQLITE_OK) rc = stReader(p, (*ppJournal)->pEnv);
  return stError(pCur, rc, zErr);
}

static int snFilter(sqlite3_vtab_cursor *pCur, int idxNum, const char *idxStr,
                    int argc, sqlite3_value **argv) {
  StCursor *p = (StCursor *)pCur;
  LjTable *pJournal = 0;
  LjSnapSpec s;
  int iArg = 1, bEmpty = 0, rc;
  char *zErr = 0;
  (void)idxStr;
  (void)argc;
  memset(&s, 0, sizeof(s));
  rc = stFilterBegin(pCur, idxNum, argv, &pJournal);
  if (rc) return rc;
  if (idxNum & ST_KEY) {
    sqlite3_value *pKey = argv[iArg++];
    /* Text affinity as journal_table.c; an id no actor can have (NULL,
    ** a blob, empty, too long) matches none. */
    if (ljTextAffinity(pKey) == SQLITE_OK) {
      s.aActor = sqlite3_value_text(pKey);
      s.nActor = sqlite3_value_bytes(pKey);
    }
    if (s.aActor == 0 || s.nActor < 1 || s.nActor > LJ_MAX_ACTOR_BYTES) {
      bEmpty = 1;
    }
  }
  filterRange(idxNum, RANGE_SEQ, argv, &iArg, &s.lo, &s.hi, &bEmpty);
  filterRange(idxNum, RANGE_TS, argv, &iArg, &s.tsLo, &s.tsHi, &bEmpty);
  s.bDesc = (idxNum & ST_DESC) != 0;
  if (bEmpty) s.lo = 1, s.hi = 0;
  rc = ljSnapScanStart(p->pSnap, &s, pJournal->cfg.usSyncTimeout, &zErr);
  return stError(pCur, rc, zErr);
}

/* An actor id bound from argv: only a text value is served (others are
** left to SQLite, which tests every row). */
static void filterActor(sqlite3_value *v, const u8 **pa, int *pn) {
  if (sqlite3_value_type(v) != SQLITE_TEXT) return;
  *pa = sqlite3_value_text(v);
  *pn = sqlite3_value_bytes(v);
}

static int acFilter(sqlite3_vtab_cursor *pCur, int idxNum, const char *idxStr,
                    int argc, sqlite3_value **argv) {
  StCursor *p = (StCursor *)pCur;
  LjTable *pJournal = 0;
  LjActorSpec s;
  int m = idxNum >> RANGE_ACTOR, rc, iArg = 1;
  char *zErr = 0;
  (void)idxStr;
  (void)argc;
  memset(&s, 0, sizeof(s));
  rc = stFilterBegin(pCur, idxNum, argv, &pJournal);
  if (rc) return rc;
  if (m & RG_EQ) {
    filterActor(argv[iArg], &s.aLo, &s.nLo);
    filterActor(argv[iArg++], &s.aHi, &s.nHi);
  }
  if (m & RG_LO) {
    filterActor(argv[iArg++], &s.aLo, &s.nLo);
    s.bLoGt = (m & RG_LO_GT) != 0;
  }
  if (m & RG_HI) {
    filterActor(argv[iArg++], &s.aHi, &s.nHi);
    s.bHiLt = (m & RG_HI_LT) != 0;
  }
  s.bDesc = (idxNum & ST_DESC) != 0;
  rc = ljActorScanStart(p->pActors, &s, pJournal->cfg.usSyncTimeout, &zErr);
  return stError(pCur, rc, zErr);
}

static int stNext(sqlite3_vtab_cursor *pCur) {
  StCursor *p = (StCursor *)pCur;
  char *zErr = 0;
  int rc = p->pSnap ? ljSnapScanNext(p->pSnap, &zErr)
                    : ljActorScanNext(p->pActors, &zErr);
  p->iRow++;
  return stError(pCur, rc, zErr);
}

static int stEof(sqlite3_vtab_cursor *pCur) {
  StCursor *p = (StCursor *)pCur;
  if (p->pSnap) return ljSnapScanEof(p->pSnap);
  return p->pActors == 0 || ljActorScanEof(p->pActors);
}

/* An integer column, NULL when negative (the readers' "none"). */
static void resultOpt(sqlite3_context *ctx, i64 v) {
  if (v < 0)
    sqlite3_result_null(ctx);
  else
    sqlite3_result_int64(ctx, v);
}

static int snColumn(sqlite3_vtab_cursor *pCur, sqlite3_context *ctx, int i) {
  const LjSnapRow *r = ljSnapScanRow(((StCursor *)pCur)->pSnap);
  switch (i) {
    case SC_ACTOR:
      sqlite3_result_text(ctx, r->zActor, r->nActor, SQLITE_TRANSIENT);
      break;
    case SC_SEQ: sqlite3_result_int64(ctx, (i64)r->seq); break;
    case SC_TS: sqlite3_result_int64(ctx, r->rec.ts); break;
    case SC_STATE:
      ljResultStored(ctx, r->rec.ePayload, r->rec.aPayload, r->rec.nPayload,
                     SQLITE_TRANSIENT);
      break;
    case SC_META:
      ljResultStored(ctx, r->rec.eMeta, r->rec.aMeta, r->rec.nMeta,
                     SQLITE_TRANSIENT);
      break;
    default: sqlite3_result_null(ctx); break;
  }
  return SQLITE_OK;
}

static int acColumn(sqlite3_vtab_cursor *pCur, sqlite3_context *ctx, int i) {
  const LjActorRow *r = ljActorScanRow(((StCursor *)pCur)->pActors);
  switch (i) {
    case AC_ACTOR:
      sqlite3_result_text(ctx, r->zActor, r->nActor, SQLITE_TRANSIENT);
      break;
    case AC_HIGHEST: sqlite3_result_int64(ctx, (i64)r->highest); break;
    case AC_FIRST: resultOpt(ctx, r->first); break;
    case AC_EVENTS: sqlite3_result_int64(ctx, (i64)r->nEvents); break;
    case AC_LAST_TS: resultOpt(ctx, r->lastTs); break;
    case AC_SNAP_SEQ: resultOpt(ctx, r->snapSeq); break;
    default: sqlite3_result_null(ctx); break;
  }
  return SQLITE_OK;
}

static int stRowid(sqlite3_vtab_cursor *pCur, sqlite_int64 *pRowid) {
  *pRowid = ((StCursor *)pCur)->iRow + 1;
  return SQLITE_OK;
}

static sqlite3_module snModule = {0,               /* iVersion */
                                  0,               /* xCreate: eponymous only */
                                  snConnect,       /* xConnect */
                                  snBestIndex,     /* xBestIndex */
                                  ljTvfDisconnect, /* xDisconnect */
                                  0,               /* xDestroy */
                                  stOpen,          /* xOpen */
                                  stClose,         /* xClose */
                                  snFilter,        /* xFilter */
                                  stNext,          /* xNext */
                                  stEof,           /* xEof */
                                  snColumn,        /* xColumn */
                                  stRowid,         /* xRowid */
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0};

static sqlite3_module acModule = {0,               /* iVersion */
                                  0,               /* xCreate: eponymous only */
                                  acConnect,       /* xConnect */
                                  acBestIndex,     /* xBestIndex */
                                  ljTvfDisconnect, /* xDisconnect */
                                  0,               /* xDestroy */
                                  stOpen,          /* xOpen */
                                  stClose,         /* xClose */
                                  acFilter,        /* xFilter */
                                  stNext,          /* xNext */
                                  stEof,           /* xEof */
                                  acColumn,        /* xColumn */
                                  stRowid,         /* xRowid */
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0,
                                  0};

int ljRegisterSnapshotTvfs(sqlite3 *db, LjConn *pConn) {
  int rc;
  pConn->nRef++; /* each released by ljConnDestroy */
  rc = sqlite3_create_module_v2(db, "journal_snapshots", &snModule, pConn,
                                ljConnDestroy);
  if (rc) return rc;
  pConn->nRef++;
  return sqlite3_create_module_v2(db, "journal_actors", &acModule, pConn,
                                  ljConnDestroy);
}
