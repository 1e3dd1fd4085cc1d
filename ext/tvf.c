/*
** tvf.c -- table-valued functions over the store of a journal table:
**
**   SELECT name, value, type FROM journal_metrics('j');
**
** Each is an eponymous-only virtual table whose hidden first column is
** the journal table's name ("j" or "main.j"), resolved on the calling
** connection like the journal_* functions.  The rows are computed when
** the statement runs (xFilter): one consistent reading of the counters.
*/
#include "internal.h"

#include <math.h>
#include <string.h>

/* Columns of journal_metrics. */
enum { MC_NAME = 0, MC_VALUE, MC_TYPE, MC_TABLE };

typedef struct MtCursor MtCursor;
struct MtCursor {
  sqlite3_vtab_cursor base; /* must be first */
  LjMetricRow aRow[LJ_METRICS_MAX];
  int nRow;
  int iRow;
};

static int mtConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                     sqlite3_vtab **ppVtab, char **pzErr) {
  (void)argc;
  (void)argv;
  (void)pzErr;
  return ljTvfConnect(db, pAux,
                      "CREATE TABLE x(name TEXT, value, type TEXT, tbl HIDDEN)",
                      0, 1, ppVtab);
}

/* The table name must be given: journal_metrics('j'). */
static int mtBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p) {
  int rc = ljTvfTableArg(pVtab, p, MC_TABLE, "journal_metrics");
  if (rc) return rc;
  p->estimatedCost = 10;
  p->estimatedRows = LJ_METRICS_MAX;
  return SQLITE_OK;
}

static int mtOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur) {
  MtCursor *p = sqlite3_malloc64(sizeof(*p));
  (void)pVtab;
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  *ppCur = &p->base;
  return SQLITE_OK;
}

static int mtClose(sqlite3_vtab_cursor *pCur) {
  sqlite3_free(pCur);
  return SQLITE_OK;
}

static int mtFilter(sqlite3_vtab_cursor *pCur, int idxNum, const char *idxStr,
                    int argc, sqlite3_value **argv) {
  MtCursor *p = (MtCursor *)pCur;
  LjTvfTab *pTab = (LjTvfTab *)pCur->pVtab;
  LjTable *pJournal;
  const char *zName;
  char *zErr = 0;
  int rc;
  (void)idxNum;
  (void)idxStr;
  p->nRow = p->iRow = 0;
  zName = argc > 0 && sqlite3_value_type(argv[0]) == SQLITE_TEXT
              ? (const char *)sqlite3_value_text(argv[0])
              : 0;
  if (zName == 0) {
    zErr = sqlite3_mprintf(
        "journal_metrics: the argument must be the name "
        "of an lmdb_journal table");
    rc = SQLITE_ERROR;
  } else {
    rc = ljTableFind(pTab->pConn, zName, &pJournal, &zErr);
  }
  if (rc) {
    sqlite3_free(pTab->base.zErrMsg);
    pTab->base.zErrMsg = zErr;
    return rc;
  }
  p->nRow = ljMetricsList(pJournal->pEnv, p->aRow, LJ_METRICS_MAX);
  if (p->nRow > LJ_METRICS_MAX) p->nRow = LJ_METRICS_MAX;
  return SQLITE_OK;
}

static int mtNext(sqlite3_vtab_cursor *pCur) {
  ((MtCursor *)pCur)->iRow++;
  return SQLITE_OK;
}

static int mtEof(sqlite3_vtab_cursor *pCur) {
  MtCursor *p = (MtCursor *)pCur;
  return p->iRow >= p->nRow;
}

static int mtColumn(sqlite3_vtab_cursor *pCur, sqlite3_context *ctx, int i) {
  MtCursor *p = (MtCursor *)pCur;
  const LjMetricRow *r = &p->aRow[p->iRow];
  switch (i) {
    case MC_NAME: sqlite3_result_text(ctx, r->zName, -1, SQLITE_STATIC); break;
    case MC_VALUE:
      /* Whole numbers as integers (counters, sizes), the rest as reals. */
      if (r->value == floor(r->value) && fabs(r->value) < 9007199254740992.0) {
        sqlite3_result_int64(ctx, (i64)r->value);
      } else {
        sqlite3_result_double(ctx, r->value);
      }
      break;
    case MC_TYPE:
      sqlite3_result_text(ctx, r->bCounter ? "counter" : "gauge", -1,
                          SQLITE_STATIC);
      break;
    default: sqlite3_result_null(ctx); break;
  }
  return SQLITE_OK;
}

static int mtRowid(sqlite3_vtab_cursor *pCur, sqlite_int64 *pRowid) {
  *pRowid = ((MtCursor *)pCur)->iRow + 1;
  return SQLITE_OK;
}

static sqlite3_module mtModule = {0,               /* iVersion */
                                  0,               /* xCreate: eponymous only */
                                  mtConnect,       /* xConnect */
                                  mtBestIndex,     /* xBestIndex */
                                  ljTvfDisconnect, /* xDisconnect */
                                  0,               /* xDestroy */
                                  mtOpen,          /* xOpen */
                                  mtClose,         /* xClose */
                                  mtFilter,        /* xFilter */
                                  mtNext,          /* xNext */
                                  mtEof,           /* xEof */
                                  mtColumn,        /* xColumn */
                                  mtRowid,         /* xRowid */
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

int ljRegisterTvfs(sqlite3 *db, LjConn *pConn) {
  pConn->nRef++; /* released by ljConnDestroy */
  return sqlite3_create_module_v2(db, "journal_metrics", &mtModule, pConn,
                                  ljConnDestroy);
}
