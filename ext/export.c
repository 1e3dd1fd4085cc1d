/*
** export.c -- logical export and import of a journal as JSON lines.
**
**   SELECT line FROM journal_export('j' [, from_pos]);     -- one per event
**   journal_export_value(x)          -> x encoded for the export
**   journal_import_value(type, enc)  -> the value again, storage class and
**                                       bytes exactly
**
** `.dump` cannot carry a virtual table's rows, and an LMDB file copy is
** tied to the format; this is the portable form.  Each event becomes one
** JSON object, in pos order:
**
**   {"actor_id":"a","seq":1,"ts":1700000000000,"type":"T",
**    "payload_type":"text","payload":"...","meta_type":"null","meta":null,
**    "tags":"[\"x\"]"}
**
** payload and meta keep their storage class in *_type (typeof()); the value
** is a JSON integer (integer), a string (text), null, or a string of hex
** digits: the bytes of a blob, or the 8 bytes of a real's IEEE-754 bits,
** big-endian, so -0.0, infinities and every last bit survive.  tags is the
** array text as stored, as a JSON string, so it comes back byte for byte.
** The import is plain SQL (INSERT INTO j(...) SELECT ... with explicit seq
** and ts, docs/api.md "Export and import"); journal_import_value undoes the
** encoding.
**
** journal_export runs an ordinary SELECT on the journal table of the same
** connection (json_object over its columns, ORDER BY pos), so it reads
** through the table like any query and needs no access of its own.
*/
#include "internal.h"

#include <string.h>

/* Hex of n bytes (lower case) as the function's text result. */
static void resultHex(sqlite3_context *ctx, const u8 *a, int n) {
  static const char aDigit[] = "0123456789abcdef";
  char *z = sqlite3_malloc64((size_t)n * 2 + 1);
  if (z == 0) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  for (int i = 0; i < n; i++) {
    z[2 * i] = aDigit[a[i] >> 4];
    z[2 * i + 1] = aDigit[a[i] & 15];
  }
  z[2 * n] = 0;
  sqlite3_result_text(ctx, z, 2 * n, sqlite3_free);
}

static void fnExportValue(sqlite3_context *ctx, int argc,
                          sqlite3_value **argv) {
  (void)argc;
  switch (sqlite3_value_type(argv[0])) {
    case SQLITE_BLOB:
      resultHex(ctx, sqlite3_value_blob(argv[0]), sqlite3_value_bytes(argv[0]));
      break;
    case SQLITE_FLOAT: {
      double r = sqlite3_value_double(argv[0]);
      u64 bits;
      u8 a[8];
      memcpy(&bits, &r, 8);
      ljPut64(a, bits);
      resultHex(ctx, a, 8);
      break;
    }
    default: sqlite3_result_value(ctx, argv[0]); break;
  }
}

/* Decode n hex digits z into a (n/2 bytes); 0 if z is not hex. */
static int hexDecode(const char *z, int n, u8 *a) {
  for (int i = 0; i < n; i++) {
    char c = z[i];
    int v = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (v < 0) return 0;
    if (i & 1) {
      a[i / 2] |= (u8)v;
    } else {
      a[i / 2] = (u8)(v << 4);
    }
  }
  return 1;
}

static void importError(sqlite3_context *ctx, const char *zType) {
  char *z = sqlite3_mprintf(
      "journal_import_value: a value of type %s must be %s", zType,
      strcmp(zType, "integer") == 0 ? "an integer"
      : strcmp(zType, "text") == 0  ? "text"
      : strcmp(zType, "real") == 0  ? "16 hex digits (the IEEE-754 bits)"
                                    : "hex digits, two per byte");
  sqlite3_result_error(ctx, z ? z : "out of memory", -1);
  sqlite3_result_error_code(ctx, SQLITE_MISMATCH);
  sqlite3_free(z);
}

static void fnImportValue(sqlite3_context *ctx, int argc,
                          sqlite3_value **argv) {
  const char *zType = sqlite3_value_type(argv[0]) == SQLITE_TEXT
                          ? (const char *)sqlite3_value_text(argv[0])
                          : "";
  int eVal = sqlite3_value_type(argv[1]);
  (void)argc;
  if (strcmp(zType, "null") == 0) {
    sqlite3_result_null(ctx);
  } else if (strcmp(zType, "integer") == 0 || strcmp(zType, "text") == 0) {
    if (eVal != (zType[0] == 'i' ? SQLITE_INTEGER : SQLITE_TEXT)) {
      importError(ctx, zType);
      return;
    }
    sqlite3_result_value(ctx, argv[1]);
  } else if (strcmp(zType, "real") == 0 || strcmp(zType, "blob") == 0) {
    const char *z = (const char *)sqlite3_value_text(argv[1]);
    int n = sqlite3_value_bytes(argv[1]);
    int bReal = zType[0] == 'r';
    u8 *a;
    if (eVal != SQLITE_TEXT || (n & 1) || (bReal && n != 16)) {
      importError(ctx, zType);
      return;
    }
    a = sqlite3_malloc64((size_t)n / 2 + 1);
    if (a == 0) {
      sqlite3_result_error_nomem(ctx);
      return;
    }
    if (!hexDecode(z, n, a)) {
      importError(ctx, zType);
    } else if (bReal) {
      u64 bits = ljGet64(a);
      double r;
      memcpy(&r, &bits, 8);
      sqlite3_result_double(ctx, r);
    } else {
      sqlite3_result_blob64(ctx, a, (sqlite3_uint64)n / 2, SQLITE_TRANSIENT);
    }
    sqlite3_free(a);
  } else {
    sqlite3_result_error(ctx,
                         "journal_import_value: the type must be one of "
                         "null, integer, real, text, blob",
                         -1);
  }
}

/**************************************************************************
** journal_export(T [, from_pos]): columns line, pos; hidden tbl, from_pos.
*/
enum { EC_LINE = 0, EC_POS, EC_TABLE, EC_FROM };

typedef struct ExCursor ExCursor;
struct ExCursor {
  sqlite3_vtab_cursor base; /* must be first */
  sqlite3_stmt *pStmt;      /* the SELECT over the journal table */
  int bEof;
};

static int exConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                     sqlite3_vtab **ppVtab, char **pzErr) {
  (void)argc;
  (void)argv;
  (void)pzErr;
  return ljTvfConnect(
      db, pAux,
      "CREATE TABLE x(line TEXT, pos INTEGER, tbl HIDDEN, from_pos HIDDEN)", 0,
      0, ppVtab);
}

/* idxNum: 1 when from_pos is given (argv[1]); tbl is always argv[0]. */
static int exBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p) {
  int iFrom = -1, rc = ljTvfTableArg(pVtab, p, EC_TABLE, "journal_export");
  if (rc) return rc;
  for (int i = 0; i < p->nConstraint; i++) {
    if (p->aConstraint[i].iColumn == EC_FROM && p->aConstraint[i].usable &&
        p->aConstraint[i].op == SQLITE_INDEX_CONSTRAINT_EQ) {
      iFrom = i;
    }
  }
  if (iFrom >= 0) {
    p->aConstraintUsage[iFrom].argvIndex = 2;
    p->aConstraintUsage[iFrom].omit = 1;
    p->idxNum = 1;
  }
  /* Rows come in pos order. */
  if (p->nOrderBy == 1 && p->aOrderBy[0].iColumn == EC_POS &&
      !p->aOrderBy[0].desc) {
    p->orderByConsumed = 1;
  }
  p->estimatedCost = 1e6;
  return SQLITE_OK;
}

static int exOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur) {
  ExCursor *p = sqlite3_malloc64(sizeof(*p));
  (void)pVtab;
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  *ppCur = &p->base;
  return SQLITE_OK;
}

static int exClose(sqlite3_vtab_cursor *pCur) {
  sqlite3_finalize(((ExCursor *)pCur)->pStmt);
  sqlite3_free(pCur);
  return SQLITE_OK;
}

static int exNext(sqlite3_vtab_cursor *pCur) {
  ExCursor *p = (ExCursor *)pCur;
  int rc = sqlite3_step(p->pStmt);
  p->bEof = rc != SQLITE_ROW;
  if (rc == SQLITE_ROW || rc == SQLITE_DONE) return SQLITE_OK;
  sqlite3_free(pCur->pVtab->zErrMsg);
  pCur->pVtab->zErrMsg =
      sqlite3_mprintf("%s", sqlite3_errmsg(sqlite3_db_handle(p->pStmt)));
  return rc;
}

/* The line of each event: keep in step with the header comment. */
#define EX_SELECT                                                         \
  "SELECT json_object('actor_id', actor_id, 'seq', seq, 'ts', ts, "       \
  "'type', type, 'payload_type', typeof(payload), "                       \
  "'payload', journal_export_value(payload), 'meta_type', typeof(meta), " \
  "'meta', journal_export_value(meta), 'tags', tags), pos "               \
  "FROM \"%w\".\"%w\" WHERE pos > ?1 ORDER BY pos"

static int exFilter(sqlite3_vtab_cursor *pCur, int idxNum, const char *idxStr,
                    int argc, sqlite3_value **argv) {
  ExCursor *p = (ExCursor *)pCur;
  LjTvfTab *pTab = (LjTvfTab *)pCur->pVtab;
  LjTable *pJournal = 0;
  char *zErr = 0, *zSql;
  int rc;
  (void)idxStr;
  sqlite3_finalize(p->pStmt);
  p->pStmt = 0;
  p->bEof = 1;
  if (argc < 1 || sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
    zErr = sqlite3_mprintf(
        "journal_export: the first argument must be the "
        "name of an lmdb_journal table");
    rc = SQLITE_ERROR;
  } else {
    rc = ljTableFind(pTab->pConn, (const char *)sqlite3_value_text(argv[0]),
                     &pJournal, &zErr);
  }
  if (rc == SQLITE_OK && idxNum == 1 &&
      sqlite3_value_numeric_type(argv[1]) != SQLITE_INTEGER) {
    zErr = sqlite3_mprintf("journal_export: from_pos must be an integer");
    rc = SQLITE_MISMATCH;
  }
  if (rc == SQLITE_OK) {
    zSql = sqlite3_mprintf(EX_SELECT, pJournal->zDb, pJournal->zName);
    rc = zSql ? sqlite3_prepare_v2(pTab->pConn->db, zSql, -1, &p->pStmt, 0)
              : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc && rc != SQLITE_NOMEM) {
      zErr = sqlite3_mprintf("%s", sqlite3_errmsg(pTab->pConn->db));
    }
  }
  if (rc) {
    sqlite3_free(pTab->base.zErrMsg);
    pTab->base.zErrMsg = zErr;
    return rc;
  }
  sqlite3_bind_int64(p->pStmt, 1,
                     idxNum == 1 ? sqlite3_value_int64(argv[1]) : 0);
  return exNext(pCur);
}

static int exEof(sqlite3_vtab_cursor *pCur) {
  return ((ExCursor *)pCur)->bEof;
}

static int exColumn(sqlite3_vtab_cursor *pCur, sqlite3_context *ctx, int i) {
  ExCursor *p = (ExCursor *)pCur;
  if (i == EC_LINE || i == EC_POS) {
    sqlite3_result_value(ctx, sqlite3_column_value(p->pStmt, i));
  } else {
    sqlite3_result_null(ctx);
  }
  return SQLITE_OK;
}

static int exRowid(sqlite3_vtab_cursor *pCur, sqlite_int64 *pRowid) {
  *pRowid = sqlite3_column_int64(((ExCursor *)pCur)->pStmt, EC_POS);
  return SQLITE_OK;
}

static sqlite3_module exModule = {0,               /* iVersion */
                                  0,               /* xCreate: eponymous only */
                                  exConnect,       /* xConnect */
                                  exBestIndex,     /* xBestIndex */
                                  ljTvfDisconnect, /* xDisconnect */
                                  0,               /* xDestroy */
                                  exOpen,          /* xOpen */
                                  exClose,         /* xClose */
                                  exFilter,        /* xFilter */
                                  exNext,          /* xNext */
                                  exEof,           /* xEof */
                                  exColumn,        /* xColumn */
                                  exRowid,         /* xRowid */
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

int ljRegisterExport(sqlite3 *db, LjConn *pConn) {
  int rc = sqlite3_create_function_v2(
      db, "journal_export_value", 1,
      SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, 0, fnExportValue,
      0, 0, 0);
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function_v2(
        db, "journal_import_value", 2,
        SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, 0, fnImportValue,
        0, 0, 0);
  }
  if (rc == SQLITE_OK) {
    pConn->nRef++; /* released by ljConnDestroy */
    rc = sqlite3_create_module_v2(db, "journal_export", &exModule, pConn,
                                  ljConnDestroy);
  }
  return rc;
}
