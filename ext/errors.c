/*
** errors.c -- which async writes failed: the journal_errors table-valued
** function and journal_errors_clear.
**
**   SELECT id, actor_id, seq, kind, code, error, ts FROM journal_errors('j');
**   SELECT journal_errors_clear('j', 41);   -- entries with id <= 41
**   SELECT journal_errors_clear('j');       -- every entry
**
** An async append returns its seq before the writer commits it; when the
** commit fails, journal_sync says how many failed and journal_errors says
** which: one row per event (or async snapshot) of this process whose
** write failed, oldest first, from the store's failure log (errlog.c).
**
** Columns:
**   id        1, 2, ... in the order the failures were recorded (a gap:
**             failures errors_max left out)
**   actor_id  the actor
**   seq       the seq journal_append returned (a snapshot: its seq)
**   kind      'append' or 'snapshot'
**   code      the SQLite result code of the failure (19: a conflict)
**   error     its message
**   ts        when the writer gave up, ms since the Unix epoch
**   tbl       HIDDEN: the journal table, the function's argument
**
** Reading does not remove anything; journal_errors_clear(T, up_to_id)
** does, so a reader removes exactly what it has read (errlog.c says why).
** The rows are copied when the statement starts (xFilter).
*/
#include "internal.h"

#include <string.h>

/* Columns of journal_errors. */
enum {
  EC_ID = 0,
  EC_ACTOR,
  EC_SEQ,
  EC_KIND,
  EC_CODE,
  EC_ERROR,
  EC_TS,
  EC_TABLE
};

typedef struct ErCursor ErCursor;
struct ErCursor {
  sqlite3_vtab_cursor base; /* must be first */
  LjErrEntry **aRow;        /* copies of the entries (errlog.c) */
  int nRow;
  int iRow;
};

static int erConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                     sqlite3_vtab **ppVtab, char **pzErr) {
  (void)argc;
  (void)argv;
  (void)pzErr;
  return ljTvfConnect(db, pAux,
                      "CREATE TABLE x(id INTEGER, actor_id TEXT, seq INTEGER, "
                      "kind TEXT, code INTEGER, error TEXT, ts INTEGER, "
                      "tbl HIDDEN)",
                      0, 0, ppVtab);
}

/* The table name must be given: journal_errors('j'). */
static int erBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p) {
  int rc = ljTvfTableArg(pVtab, p, EC_TABLE, "journal_errors");
  if (rc) return rc;
  p->estimatedCost = 100;
  p->estimatedRows = 100;
  /* Rows come in id order. */
  if (p->nOrderBy == 1 && p->aOrderBy[0].iColumn == EC_ID &&
      !p->aOrderBy[0].desc) {
    p->orderByConsumed = 1;
  }
  return SQLITE_OK;
}

static int erOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur) {
  ErCursor *p = sqlite3_malloc64(sizeof(*p));
  (void)pVtab;
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  *ppCur = &p->base;
  return SQLITE_OK;
}

static void erReset(ErCursor *p) {
  ljErrLogCopyFree(p->aRow, p->nRow);
  p->aRow = 0;
  p->nRow = p->iRow = 0;
}

static int erClose(sqlite3_vtab_cursor *pCur) {
  erReset((ErCursor *)pCur);
  sqlite3_free(pCur);
  return SQLITE_OK;
}

/* The journal table named by SQL value v, or an error in the vtab. */
static int erTable(LjTvfTab *pTab, sqlite3_value *v, LjTable **pp) {
  const char *zName = sqlite3_value_type(v) == SQLITE_TEXT
                          ? (const char *)sqlite3_value_text(v)
                          : 0;
  char *zErr = 0;
  int rc;
  if (zName == 0) {
    zErr = sqlite3_mprintf(
        "journal_errors: the argument must be the name of an lmdb_journal "
        "table");
    rc = SQLITE_ERROR;
  } else {
    rc = ljTableFind(pTab->pConn, zName, pp, &zErr);
  }
  if (rc) {
    sqlite3_free(pTab->base.zErrMsg);
    pTab->base.zErrMsg = zErr;
  }
  return rc;
}

static int erFilter(sqlite3_vtab_cursor *pCur, int idxNum, const char *idxStr,
                    int argc, sqlite3_value **argv) {
  ErCursor *p = (ErCursor *)pCur;
  LjTable *pJournal;
  int rc;
  (void)idxNum;
  (void)idxStr;
  erReset(p);
  if (argc < 1) return SQLITE_ERROR; /* xBestIndex asks for it */
  rc = erTable((LjTvfTab *)pCur->pVtab, argv[0], &pJournal);
  if (rc == SQLITE_OK) rc = ljErrLogCopy(pJournal->pEnv, &p->aRow, &p->nRow);
  return rc;
}

static int erNext(sqlite3_vtab_cursor *pCur) {
  ((ErCursor *)pCur)->iRow++;
  return SQLITE_OK;
}

static int erEof(sqlite3_vtab_cursor *pCur) {
  ErCursor *p = (ErCursor *)pCur;
  return p->iRow >= p->nRow;
}

static int erColumn(sqlite3_vtab_cursor *pCur, sqlite3_context *ctx, int i) {
  ErCursor *p = (ErCursor *)pCur;
  const LjErrEntry *e = p->aRow[p->iRow];
  switch (i) {
    case EC_ID: sqlite3_result_int64(ctx, e->id); break;
    case EC_ACTOR:
      sqlite3_result_text(ctx, e->zActor, e->nActor, SQLITE_TRANSIENT);
      break;
    case EC_SEQ: sqlite3_result_int64(ctx, e->seq); break;
    case EC_KIND:
      sqlite3_result_text(ctx,
                          e->eKind == LJ_ERRK_SNAPSHOT ? "snapshot" : "append",
                          -1, SQLITE_STATIC);
      break;
    case EC_CODE: sqlite3_result_int(ctx, e->rc); break;
    case EC_ERROR:
      sqlite3_result_text(ctx, e->zErr, -1, SQLITE_TRANSIENT);
      break;
    case EC_TS: sqlite3_result_int64(ctx, e->tMs); break;
    default: sqlite3_result_null(ctx); break;
  }
  return SQLITE_OK;
}

static int erRowid(sqlite3_vtab_cursor *pCur, sqlite_int64 *pRowid) {
  ErCursor *p = (ErCursor *)pCur;
  *pRowid = p->aRow[p->iRow]->id;
  return SQLITE_OK;
}

static sqlite3_module erModule = {0,               /* iVersion */
                                  0,               /* xCreate: eponymous only */
                                  erConnect,       /* xConnect */
                                  erBestIndex,     /* xBestIndex */
                                  ljTvfDisconnect, /* xDisconnect */
                                  0,               /* xDestroy */
                                  erOpen,          /* xOpen */
                                  erClose,         /* xClose */
                                  erFilter,        /* xFilter */
                                  erNext,          /* xNext */
                                  erEof,           /* xEof */
                                  erColumn,        /* xColumn */
                                  erRowid,         /* xRowid */
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

int ljRegisterErrors(sqlite3 *db, LjConn *pConn) {
  pConn->nRef++; /* released by ljConnDestroy */
  return sqlite3_create_module_v2(db, "journal_errors", &erModule, pConn,
                                  ljConnDestroy);
}
