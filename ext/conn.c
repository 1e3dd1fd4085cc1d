/*
** conn.c -- what the SQL files share: the per-connection list of journal
** tables that the journal_* functions resolve names against (and the
** check that a name still means the table found for it: "Finding the
** table a statement means" below), and the checks that turn SQL values
** into an actor id or an event.
**
** A connection (LjConn) is registered once per sqlite3 handle, however
** often the extension is loaded on it: loading again finds the handle in
** a process-wide list (ljConnMutex) and changes nothing, so the tables
** already connected keep their functions.
*/
#include "internal.h"

#include <string.h>
#include <unistd.h>

/* Guards ljConnList: every LjConn whose module is registered. */
static pthread_mutex_t ljConnMutex = PTHREAD_MUTEX_INITIALIZER;
static LjConn *ljConnList = 0;

static void checkFreeAll(LjConn *pConn);

/* A child of fork() re-creates the mutex (another thread may have held
** it at the fork); the list stays: its connections were inherited. */
static pthread_once_t ljConnOnce = PTHREAD_ONCE_INIT;
static void connForkPrepare(void) {
  pthread_mutex_lock(&ljConnMutex);
}
static void connForkParent(void) {
  pthread_mutex_unlock(&ljConnMutex);
}
static void connForkChild(void) {
  pthread_mutex_init(&ljConnMutex, 0);
}
static void connForkInstall(void) {
  pthread_atfork(connForkPrepare, connForkParent, connForkChild);
}

int ljTableUsable(const LjTable *p, char **pzErr) {
  if (!ljEnvForked(p->pEnv)) return SQLITE_OK;
  *pzErr = sqlite3_mprintf(
      "journal table %s was opened by process %d, before fork(); this "
      "process (%d) must open a connection of its own",
      p->zName, (int)p->pEnv->pid, (int)getpid());
  return SQLITE_MISUSE;
}

LjConn *ljConnFind(sqlite3 *db) {
  LjConn *p;
  pthread_mutex_lock(&ljConnMutex);
  for (p = ljConnList; p && p->db != db; p = p->pNextConn) {
  }
  pthread_mutex_unlock(&ljConnMutex);
  return p;
}

void ljConnAdd(LjConn *p) {
  pthread_once(&ljConnOnce, connForkInstall);
  pthread_mutex_lock(&ljConnMutex);
  p->pNextConn = ljConnList;
  ljConnList = p;
  pthread_mutex_unlock(&ljConnMutex);
}

void ljConnUnref(LjConn *p) {
  if (p && --p->nRef == 0) {
    checkFreeAll(p);
    sqlite3_free(p);
  }
}

/* The module's destructor: the handle is closing (or the module is
** replaced), so it stops being found, then drops its reference. */
void ljConnDestroy(void *pArg) {
  LjConn *p = (LjConn *)pArg, **pp;
  pthread_mutex_lock(&ljConnMutex);
  for (pp = &ljConnList; *pp; pp = &(*pp)->pNextConn) {
    if (*pp == p) {
      *pp = p->pNextConn;
      break;
    }
  }
  pthread_mutex_unlock(&ljConnMutex);
  ljConnUnref(p);
}

/* Connection states whose registration failed (ljConnAbandon): never
** freed, since functions registered before the failure point at them. */
static LjConn *ljConnAbandoned = 0;

void ljConnAbandon(LjConn *p) {
  LjConn **pp;
  pthread_mutex_lock(&ljConnMutex);
  for (pp = &ljConnList; *pp; pp = &(*pp)->pNextConn) {
    if (*pp == p) {
      *pp = p->pNextConn;
      break;
    }
  }
  p->nRef++;
  p->pNextConn = ljConnAbandoned;
  ljConnAbandoned = p;
  pthread_mutex_unlock(&ljConnMutex);
}

void ljTableFree(LjTable *p) {
  if (p) {
    sqlite3_free(p->zDb);
    sqlite3_free(p->zName);
    ljConfigClear(&p->cfg);
    sqlite3_free(p);
  }
}

/*
** Finding the table a statement means.
**
** A statement that names a journal table is checked by SQLite itself: at
** every execution it compares the schema cookie on disk with the schema
** it loaded and prepares itself again when they differ.  The journal_*
** functions name their table by text, in statements that may read no
** table at all, so nothing checks for them that another connection or
** process has not dropped the table and created it again on another
** store: the LjTable this connection has for the name would then write
** to the old one.
**
** So a table found by name is trusted only while its schema is known
** unchanged.  For each schema name the connection keeps a statement
** (LjCheck) around "SELECT 1 FROM db.sqlite_schema WHERE 0", which reads
** no row but makes SQLite compare the cookie (it also reports the locking
** mode, for checkStamp); when the schema changed, or
** was reset since the last step, SQLite prepares it again and its
** SQLITE_STMTSTATUS_REPREPARE count moves.  Each move starts a new epoch,
** and a table is current only if it was found in the present epoch.  A
** step opens a read transaction (a few system calls) unless one is open;
** it is skipped inside a transaction in which the file has not changed
** since the last step (SQLITE_FCNTL_DATA_VERSION), outside one when the
** file's change stamp is what it was before the last step (checkStamp),
** and for tables of the temp schema or of an in-memory database, whose
** schema only their own connection changes (its DROP and ALTER reach the
** table directly).
**
** A table not (or no longer) trusted is looked up as SQLite resolves the
** name: a statement naming it is prepared, which connects it if needed,
** and the table xBestIndex planned is the one (LjConn.pPlanned).  Other
** tables of that name left over from an older schema (a statement of the
** application may keep one connected) are marked stale.
**
** The check statements are finalized when the connection's last table
** disconnects, which sqlite3_close makes happen before it looks for
** unfinalized statements.
*/
#define LJ_STAMP_HDR 10 /* database header bytes 18..27 */
#define LJ_STAMP_WAL 48 /* WAL-index header (first copy) */
#define LJ_STAMP     (LJ_STAMP_HDR + LJ_STAMP_WAL)
struct LjCheck {
  LjCheck *pNext;
  char *zDb;           /* schema name */
  sqlite3_stmt *pStmt; /* the check: the schema's locking_mode, and a
                       ** read of sqlite_schema that returns nothing */
  int nPrep;           /* its SQLITE_STMTSTATUS_REPREPARE at the last step */
  u32 iEpoch;          /* current epoch of the schema */
  unsigned iVersion;   /* SQLITE_FCNTL_DATA_VERSION after the last step */
  int eStamp;          /* what checkStamp read before the last step */
  u8 aStamp[LJ_STAMP]; /* ... the file's change stamp */
  int bShm;            /* WAL mode with a shared-memory index, as of the
                       ** last step: checkStamp may read the index */
  int bPragma;         /* pStmt reads the locking mode too */
};

static void checkFreeAll(LjConn *pConn) {
  while (pConn->pCheck) {
    LjCheck *c = pConn->pCheck;
    pConn->pCheck = c->pNext;
    sqlite3_finalize(c->pStmt);
    sqlite3_free(c->zDb);
    sqlite3_free(c);
  }
}

/* Once the last table is gone, nothing needs the check statements, and
** a statement kept would make sqlite3_close fail.  Not while one steps:
** it is freed when the step returns. */
static void checkFreeIfUnused(LjConn *pConn) {
  if (pConn->pList == 0 && pConn->nChecking == 0) checkFreeAll(pConn);
}

/* Prepare the check of c: with the locking mode (bPragma), or without
** (an authorizer may refuse the pragma, when the check steps). */
static int checkPrepare(LjConn *pConn, LjCheck *c, int bPragma) {
  char *zSql = bPragma
                   ? sqlite3_mprintf(
                         "SELECT locking_mode, (SELECT 1 FROM \"%w\"."
                         "sqlite_schema WHERE 0) FROM pragma_locking_mode "
                         "WHERE schema = %Q",
                         c->zDb, c->zDb)
                   : sqlite3_mprintf(
                         "SELECT 1 FROM \"%w\".sqlite_schema WHERE 0", c->zDb);
  int rc = zSql ? SQLITE_OK : SQLITE_NOMEM;
  sqlite3_finalize(c->pStmt);
  c->pStmt = 0;
  c->nPrep = 0;
  c->bPragma = bPragma;
  if (rc == SQLITE_OK) {
    rc = sqlite3_prepare_v3(pConn->db, zSql, -1, SQLITE_PREPARE_PERSISTENT,
                            &c->pStmt, 0);
  }
  sqlite3_free(zSql);
  return rc;
}

static int checkGet(LjConn *pConn, const char *zDb, LjCheck **pp) {
  LjCheck *c;
  int rc;
  for (c = pConn->pCheck; c; c = c->pNext) {
    if (sqlite3_stricmp(c->zDb, zDb) == 0) {
      *pp = c;
      return SQLITE_OK;
    }
  }
  *pp = 0;
  c = sqlite3_malloc64(sizeof(*c));
  if (c == 0) return SQLITE_NOMEM;
  memset(c, 0, sizeof(*c));
  c->zDb = sqlite3_mprintf("%s", zDb);
  rc = c->zDb ? checkPrepare(pConn, c, 1) : SQLITE_NOMEM;
  if (rc && rc != SQLITE_NOMEM) rc = checkPrepare(pConn, c, 0);
  if (rc) {
    sqlite3_finalize(c->pStmt);
    sqlite3_free(c->zDb);
    sqlite3_free(c);
    return rc;
  }
  c->iEpoch = ++pConn->iEpochSeq;
  c->pNext = pConn->pCheck;
  pConn->pCheck = c;
  *pp = c;
  return SQLITE_OK;
}

/*
** The change stamp of database zDb, read through SQLite's own file
** handle without a lock: header bytes 18..27 (the format versions, 2 in
** WAL mode, and the file change counter), and in WAL mode the header of
** the WAL index in shared memory.  A transaction that writes moves the
** counter (rollback mode) or rewrites the index header (WAL mode) before
** it ends, so a stamp read before a step of the check and read again
** unchanged means no schema change since that step: one pread instead of
** a read transaction's locks and tests.  Returns 2 if aStamp is complete,
** 1 if only the header was read, 0 if nothing.
**
** The index is read only while the last step found it shared (bShm) and
** the header unchanged since: no journal or locking mode change came
** between, and xShmMap then finds the mapping the pager made (it would
** make one for a database that has none).
*/
static sqlite3_file *checkFile(LjConn *pConn, LjCheck *c) {
  sqlite3_file *pFile = 0;
  if (sqlite3_file_control(pConn->db, c->zDb, SQLITE_FCNTL_FILE_POINTER,
                           &pFile) != SQLITE_OK ||
      pFile == 0 || pFile->pMethods == 0) {
    return 0;
  }
  return pFile;
}

/* The WAL-index header into aShm: 1 if read. */
static int checkShm(sqlite3_file *pFile, u8 aShm[LJ_STAMP_WAL]) {
  const sqlite3_io_methods *pM = pFile->pMethods;
  void volatile *pShm = 0;
  if (pM->iVersion < 2 || pM->xShmMap == 0 ||
      pM->xShmMap(pFile, 0, 32768, 0, &pShm) || pShm == 0) {
    return 0;
  }
  memcpy(aShm, (const void *)pShm, LJ_STAMP_WAL);
  return 1;
}

static int checkStamp(LjConn *pConn, LjCheck *c, u8 aStamp[LJ_STAMP]) {
  sqlite3_file *pFile = checkFile(pConn, c);
  memset(aStamp, 0, LJ_STAMP);
  if (pFile == 0 ||
      pFile->pMethods->xRead(pFile, aStamp, LJ_STAMP_HDR, 18) != SQLITE_OK) {
    return 0;
  }
  if (aStamp[0] == 1 && aStamp[1] == 1) return 2; /* rollback journal */
  if (aStamp[0] != 2 || aStamp[1] != 2 || !c->bShm || c->eStamp == 0 ||
      memcmp(aStamp, c->aStamp, LJ_STAMP_HDR) ||
      !checkShm(pFile, &aStamp[LJ_STAMP_HDR])) {
    return 1;
  }
  return 2;
}

/*
** In WAL mode the header read can be skipped too: while this connection
** has the file in WAL mode no other can take it out (that needs an
** exclusive lock, and a connection in WAL mode keeps a shared one), and
** it would itself only by a commit (the header's version bytes), which
** moves SQLITE_FCNTL_DATA_VERSION.  So an unchanged data version and
** WAL-index header since the last step mean nothing changed: no system
** call at all.
*/
static int checkWalOnly(LjConn *pConn, LjCheck *c, unsigned v) {
  sqlite3_file *pFile;
  u8 aShm[LJ_STAMP_WAL];
  return c->eStamp == 2 && c->bShm && c->aStamp[0] == 2 && v == c->iVersion &&
         (pFile = checkFile(pConn, c)) != 0 && checkShm(pFile, aShm) &&
         memcmp(aShm, &c->aStamp[LJ_STAMP_HDR], LJ_STAMP_WAL) == 0;
}

/* Have SQLite check the schema of c: a new epoch when it had changed. */
static int checkStep(LjConn *pConn, LjCheck *c, char **pzErr) {
  u8 aStamp[LJ_STAMP];
  int eStamp = checkStamp(pConn, c, aStamp), bShm = 0;
  int rc, n;
  pConn->nChecking++;
  rc = sqlite3_step(c->pStmt);
  if (rc == SQLITE_AUTH && c->bPragma) {
    /* Refused the pragma: the plain check, from a new epoch (a statement
    ** of its own has no reprepare count to compare). */
    sqlite3_reset(c->pStmt);
    rc = checkPrepare(pConn, c, 0);
    c->iEpoch = ++pConn->iEpochSeq;
    if (rc == SQLITE_OK) rc = sqlite3_step(c->pStmt);
  }
  if (rc == SQLITE_ROW) {
    const unsigned char *z = sqlite3_column_text(c->pStmt, 0);
    bShm = z && sqlite3_stricmp((const char *)z, "normal") == 0;
    rc = SQLITE_DONE;
  }
  n = sqlite3_stmt_status(c->pStmt, SQLITE_STMTSTATUS_REPREPARE, 0);
  if (rc != SQLITE_DONE) {
    *pzErr = sqlite3_mprintf("%s", sqlite3_errmsg(pConn->db));
  }
  sqlite3_reset(c->pStmt);
  pConn->nChecking--;
  if (rc != SQLITE_DONE) return rc;
  if (n != c->nPrep) {
    c->nPrep = n;
    c->iEpoch = ++pConn->iEpochSeq;
  }
  c->eStamp = eStamp;
  memcpy(c->aStamp, aStamp, LJ_STAMP);
  /* The step opened the WAL if the file is in WAL mode: shared memory
  ** unless the locking mode is exclusive (then the index is the pager's
  ** heap memory). */
  c->bShm = bShm;
  sqlite3_file_control(pConn->db, c->zDb, SQLITE_FCNTL_DATA_VERSION,
                       &c->iVersion);
  return SQLITE_OK;
}

/* *pbOk: p is what its name means now (else it must be looked up). */
static int tableCurrent(LjConn *pConn, LjTable *p, int *pbOk, char **pzErr) {
  sqlite3 *db = pConn->db;
  LjCheck *c;
  unsigned v = 0;
  u8 aStamp[LJ_STAMP];
  u32 iEpoch = p->iEpoch, iGen = pConn->iGen;
  int rc;
  *pbOk = p->bLocal;
  if (p->bLocal) return SQLITE_OK;
  rc = checkGet(pConn, p->zDb, &c);
  if (rc || c->iEpoch != iEpoch) return rc;
  if (sqlite3_file_control(db, p->zDb, SQLITE_FCNTL_DATA_VERSION, &v)) {
    v = c->iVersion + 1; /* unknown: no shortcut */
  }
  if (sqlite3_txn_state(db, p->zDb) > SQLITE_TXN_NONE) {
    *pbOk = v == c->iVersion;
  } else if (c->eStamp == 2) {
    *pbOk =
        checkWalOnly(pConn, c, v) || (checkStamp(pConn, c, aStamp) == 2 &&
                                      memcmp(aStamp, c->aStamp, LJ_STAMP) == 0);
  }
  if (*pbOk) return SQLITE_OK;
  rc = checkStep(pConn, c, pzErr);
  /* A table disconnected meanwhile may be p: p is not read again. */
  *pbOk = rc == SQLITE_OK && c->iEpoch == iEpoch && pConn->iGen == iGen;
  return rc;
}

/* The table a statement naming zName (in zDb, if given) would use, as the
** schema SQLite has loaded resolves it; NULL if it is no journal table. */
static int tablePlanned(LjConn *pConn, const char *zDb, const char *zName,
                        LjTable **pp) {
  sqlite3_stmt *pStmt = 0;
  char *zSql =
      zDb ? sqlite3_mprintf("SELECT 1 FROM \"%w\".\"%w\" WHERE 0", zDb, zName)
          : sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE 0", zName);
  LjTable *p;
  *pp = 0;
  if (zSql == 0) return SQLITE_NOMEM;
  pConn->pPlanned = 0;
  if (sqlite3_prepare_v2(pConn->db, zSql, -1, &pStmt, 0) == SQLITE_OK) {
    p = pConn->pPlanned;
    /* A view of that name may plan another table. */
    if (p && sqlite3_stricmp(p->zName, zName) == 0 &&
        (zDb == 0 || sqlite3_stricmp(p->zDb, zDb) == 0)) {
      *pp = p;
    }
  }
  sqlite3_finalize(pStmt);
  pConn->pPlanned = 0;
  sqlite3_free(zSql);
  return SQLITE_OK;
}

/* Look zName up as SQLite resolves it, in a schema checked current. */
static int tableResolve(LjConn *pConn, const char *zDb, const char *zName,
                        LjTable **pp, char **pzErr) {
  LjTable *p = 0, *q;
  int i, rc = SQLITE_OK;
  for (i = 0; i < 3 && rc == SQLITE_OK; i++) {
    LjCheck *c;
    u32 iEpoch, iGen = pConn->iGen;
    rc = tablePlanned(pConn, zDb, zName, &p);
    if (rc || p == 0 || p->bLocal) break;
    rc = checkGet(pConn, p->zDb, &c);
    if (rc) break;
    iEpoch = c->iEpoch;
    rc = checkStep(pConn, c, pzErr);
    if (rc == SQLITE_OK && c->iEpoch == iEpoch && pConn->iGen == iGen) {
      p->iEpoch = iEpoch;
      break;
    }
    p = 0; /* planned from a schema found stale: again, from the new one */
  }
  if (rc == SQLITE_OK && p == 0 && i == 3) {
    *pzErr = sqlite3_mprintf(
        "the schema kept changing while '%s' was "
        "looked up",
        zName);
    rc = SQLITE_SCHEMA;
  }
  for (q = pConn->pList; p && q; q = q->pNext) {
    if (q != p && sqlite3_stricmp(q->zName, p->zName) == 0 &&
        sqlite3_stricmp(q->zDb, p->zDb) == 0) {
      q->bStale = 1;
    }
  }
  *pp = p;
  return rc;
}

static LjTable *tableLookup(LjConn *pConn, const char *zDb, const char *zName) {
  LjTable *p, *pBest = 0;
  for (p = pConn->pList; p; p = p->pNext) {
    if (p->bStale || sqlite3_stricmp(p->zName, zName)) continue;
    if (zDb) {
      if (sqlite3_stricmp(p->zDb, zDb) == 0) return p;
      continue;
    }
    /* Unqualified: SQLite's own search order, temp then main then rest. */
    if (sqlite3_stricmp(p->zDb, "temp") == 0) return p;
    if (pBest == 0 || sqlite3_stricmp(p->zDb, "main") == 0) pBest = p;
  }
  return pBest;
}

/*
** Resolve a table name given to a journal_* function (see above).  SQLite
** connects virtual tables lazily, so a table that exists in the schema
** but has not been used on this connection yet is connected by preparing
** a statement that names it.
*/
int ljTableFind(LjConn *pConn, const char *zArg, LjTable **pp, char **pzErr) {
  char *zDb = 0;
  const char *zName = zArg;
  const char *zDot;
  LjTable *p;
  int rc = SQLITE_OK, bOk = 0;

  *pp = 0;
  if (zArg == 0 || zArg[0] == 0) {
    *pzErr = sqlite3_mprintf("the table name must be non-empty text");
    return SQLITE_MISUSE;
  }
  zDot = strchr(zArg, '.');
  if (zDot) {
    zDb = sqlite3_mprintf("%.*s", (int)(zDot - zArg), zArg);
    if (zDb == 0) return SQLITE_NOMEM;
    zName = zDot + 1;
  }
  p = tableLookup(pConn, zDb, zName);
  if (p) rc = tableCurrent(pConn, p, &bOk, pzErr);
  if (rc == SQLITE_OK && !bOk) rc = tableResolve(pConn, zDb, zName, &p, pzErr);
  if (rc) p = 0;
  if (p == 0 && rc == SQLITE_OK) {
    *pzErr = sqlite3_mprintf("no lmdb_journal table named '%s'", zArg);
    rc = SQLITE_ERROR;
  }
  if (p && rc == SQLITE_OK) {
    rc = ljTableUsable(p, pzErr);
    if (rc) p = 0;
  }
  checkFreeIfUnused(pConn);
  sqlite3_free(zDb);
  *pp = p;
  return rc;
}

void ljTableLink(LjTable *p) {
  LjConn *pConn = p->pConn;
  const char *zFile = sqlite3_db_filename(pConn->db, p->zDb);
  p->bLocal = zFile == 0 || zFile[0] == 0;
  pConn->nRef++;
  p->pNext = pConn->pList;
  pConn->pList = p;
}

void ljTableUnlink(LjTable *p) {
  LjConn *pConn = p->pConn;
  LjTable **pp;
  if (pConn->pLast == p) pConn->pLast = 0;
  for (pp = &pConn->pList; *pp; pp = &(*pp)->pNext) {
    if (*pp == p) {
      *pp = p->pNext;
      break;
    }
  }
  pConn->iGen++;
  checkFreeIfUnused(pConn);
}

int ljCheckActor(sqlite3_value *v, const char *zWhat, const char **pz, int *pn,
                 char **pzErr) {
  const unsigned char *z;
  int n;
  if (sqlite3_value_type(v) != SQLITE_TEXT) {
    *pzErr =
        sqlite3_mprintf("%s must be text (got %s)", zWhat,
                        sqlite3_value_type(v) == SQLITE_NULL   ? "NULL"
                        : sqlite3_value_type(v) == SQLITE_BLOB ? "a blob"
                                                               : "a number");
    return SQLITE_MISMATCH;
  }
  z = sqlite3_value_text(v);
  n = sqlite3_value_bytes(v);
  if (z == 0) return SQLITE_NOMEM;
  if (n < 1 || n > LJ_MAX_ACTOR_BYTES) {
    *pzErr = sqlite3_mprintf("%s must be 1 to %d bytes (got %d)", zWhat,
                             LJ_MAX_ACTOR_BYTES, n);
    return SQLITE_CONSTRAINT;
  }
  if (!ljUtf8Valid(z, n) || memchr(z, 0, (size_t)n)) {
    *pzErr = sqlite3_mprintf("%s must be valid UTF-8 without NUL bytes", zWhat);
    return SQLITE_CONSTRAINT;
  }
  *pz = (const char *)z;
  *pn = n;
  return SQLITE_OK;
}

/* Storage class and bytes of a payload or meta value.  aNum holds the
** big-endian form of numbers. */
static int valueBytes(sqlite3_value *v, u8 aNum[8], u8 *pe, const u8 **pa,
                      int *pn) {
  switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
      ljPut64(aNum, (u64)sqlite3_value_int64(v));
      *pe = LJ_VAL_INT;
      *pa = aNum;
      *pn = 8;
      break;
    case SQLITE_FLOAT: {
      double d = sqlite3_value_double(v);
      u64 x;
      memcpy(&x, &d, 8);
      ljPut64(aNum, x);
      *pe = LJ_VAL_FLOAT;
      *pa = aNum;
      *pn = 8;
      break;
    }
    case SQLITE_TEXT:
      *pa = sqlite3_value_text(v);
      *pn = sqlite3_value_bytes(v);
      *pe = LJ_VAL_TEXT;
      if (*pa == 0) return SQLITE_NOMEM;
      break;
    case SQLITE_BLOB:
      *pa = sqlite3_value_blob(v);
      *pn = sqlite3_value_bytes(v);
      *pe = LJ_VAL_BLOB;
      if (*pa == 0 && *pn > 0) return SQLITE_NOMEM;
      break;
    default:
      *pe = LJ_VAL_NULL;
      *pa = 0;
      *pn = 0;
      break;
  }
  return SQLITE_OK;
}

int ljEventFromValues(LjTable *pTab, const char *zActor, int nActor,
                      sqlite3_value *pPayload, sqlite3_value *pType,
                      sqlite3_value *pMeta, sqlite3_value *pTags, u8 *aBuf,
                      size_t nBuf, LjEvent *pEv, char **pzErr) {
  LjRecIn in;
  u8 aNumP[8], aNumM[8];
  int rc;
  memset(&in, 0, sizeof(in));
  memset(pEv, 0, sizeof(*pEv));
  rc = valueBytes(pPayload, aNumP, &in.ePayload, &in.aPayload, &in.nPayload);
  if (rc == SQLITE_OK && pMeta) {
    rc = valueBytes(pMeta, aNumM, &in.eMeta, &in.aMeta, &in.nMeta);
  }
  if (rc) return rc;
  if ((i64)in.nPayload + in.nMeta > pTab->cfg.nMaxValue) {
    *pzErr = sqlite3_mprintf(
        "payload of %lld bytes exceeds max_value_size (%lld bytes)",
        (i64)in.nPayload + in.nMeta, pTab->cfg.nMaxValue);
    return SQLITE_TOOBIG;
  }
  if (pType && sqlite3_value_type(pType) != SQLITE_NULL) {
    if (sqlite3_value_type(pType) != SQLITE_TEXT) {
      *pzErr = sqlite3_mprintf("type must be text or NULL");
      return SQLITE_MISMATCH;
    }
    in.aType = sqlite3_value_text(pType);
    in.nType = sqlite3_value_bytes(pType);
    if (in.nType > LJ_MAX_TYPE_BYTES) {
      *pzErr =
          sqlite3_mprintf("type must be at most %d bytes", LJ_MAX_TYPE_BYTES);
      return SQLITE_TOOBIG;
    }
  }
  if (pTags && sqlite3_value_type(pTags) != SQLITE_NULL) {
    if (sqlite3_value_type(pTags) != SQLITE_TEXT) {
      *pzErr = sqlite3_mprintf(
          "tags must be a JSON array of strings, e.g. '[\"order\",\"eu\"]'");
      return SQLITE_MISMATCH;
    }
    in.aTags = sqlite3_value_text(pTags);
    in.nTags = sqlite3_value_bytes(pTags);
    if (in.nTags > 65535) {
      *pzErr = sqlite3_mprintf("tags must be at most 65535 bytes of JSON");
      return SQLITE_TOOBIG;
    }
    rc = ljTagsParse((const char *)in.aTags, in.nTags, 0, 0, pzErr);
    if (rc) return SQLITE_CONSTRAINT;
  }
  pEv->tsGiven = -1;
  pEv->zActor = zActor;
  pEv->nActor = nActor;
  return ljRecBuild(&in, pTab->cfg.eCompression, pTab->cfg.nCompressionMin,
                    aBuf, nBuf, &pEv->aRec, &pEv->nRec);
}

void ljResultStored(sqlite3_context *ctx, u8 eClass, const u8 *a, int n,
                    void (*xDel)(void *)) {
  switch (eClass) {
    case LJ_VAL_INT: sqlite3_result_int64(ctx, (i64)ljGet64(a)); break;
    case LJ_VAL_FLOAT: {
      u64 x = ljGet64(a);
      double d;
      memcpy(&d, &x, 8);
      sqlite3_result_double(ctx, d);
      break;
    }
    case LJ_VAL_TEXT:
      if (n == 0)
        sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
      else
        sqlite3_result_text(ctx, (const char *)a, n, xDel);
      break;
    case LJ_VAL_BLOB:
      if (n == 0)
        sqlite3_result_blob(ctx, "", 0, SQLITE_STATIC);
      else
        sqlite3_result_blob(ctx, a, n, xDel);
      break;
    default: sqlite3_result_null(ctx); break;
  }
}

int ljTvfConnect(sqlite3 *db, void *pAux, const char *zSchema, int iVariant,
                 int bInnocuous, sqlite3_vtab **ppVtab) {
  LjTvfTab *p;
  int rc = sqlite3_declare_vtab(db, zSchema);
  if (rc) return rc;
  p = sqlite3_malloc64(sizeof(*p));
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->pConn = (LjConn *)pAux;
  p->iVariant = iVariant;
  if (bInnocuous) sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
  *ppVtab = &p->base;
  return SQLITE_OK;
}

int ljTvfDisconnect(sqlite3_vtab *pVtab) {
  sqlite3_free(pVtab);
  return SQLITE_OK;
}

int ljTvfTableArg(sqlite3_vtab *pVtab, sqlite3_index_info *p, int iCol,
                  const char *zFn) {
  int iTbl = -1, bSeen = 0;
  for (int i = 0; i < p->nConstraint; i++) {
    if (p->aConstraint[i].iColumn != iCol) continue;
    bSeen = 1;
    if (p->aConstraint[i].usable &&
        p->aConstraint[i].op == SQLITE_INDEX_CONSTRAINT_EQ) {
      iTbl = i;
    }
  }
  if (iTbl < 0) {
    if (bSeen) return SQLITE_CONSTRAINT; /* another plan will have it */
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = sqlite3_mprintf(
        "%s needs the name of an lmdb_journal table, e.g. "
        "SELECT * FROM %s('j')",
        zFn, zFn);
    return SQLITE_ERROR;
  }
  p->aConstraintUsage[iTbl].argvIndex = 1;
  p->aConstraintUsage[iTbl].omit = 1;
  return SQLITE_OK;
}
