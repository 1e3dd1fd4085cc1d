/*
** conn.c -- what the SQL files share: the per-connection list of journal
** tables that the journal_* functions resolve names against, and the
** checks that turn SQL values into an actor id or an event.
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
  if (p && --p->nRef == 0) sqlite3_free(p);
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

static LjTable *tableLookup(LjConn *pConn, const char *zDb, const char *zName) {
  LjTable *p, *pBest = 0;
  for (p = pConn->pList; p; p = p->pNext) {
    if (sqlite3_stricmp(p->zName, zName)) continue;
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
** Resolve a table name given to a journal_* function.  SQLite connects
** virtual tables lazily, so a table that exists in the schema but has not
** been used on this connection yet is connected by preparing a statement
** that names it.
*/
int ljTableFind(LjConn *pConn, const char *zArg, LjTable **pp, char **pzErr) {
  char *zDb = 0;
  const char *zName = zArg;
  const char *zDot;
  LjTable *p;
  int rc = SQLITE_OK;

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
  if (p == 0) {
    sqlite3_stmt *pStmt = 0;
    char *zSql =
        zDb ? sqlite3_mprintf("SELECT 1 FROM \"%w\".\"%w\" LIMIT 0", zDb, zName)
            : sqlite3_mprintf("SELECT 1 FROM \"%w\" LIMIT 0", zName);
    if (zSql == 0) {
      rc = SQLITE_NOMEM;
    } else {
      if (sqlite3_prepare_v2(pConn->db, zSql, -1, &pStmt, 0) == SQLITE_OK) {
        p = tableLookup(pConn, zDb, zName);
      }
      sqlite3_finalize(pStmt);
      sqlite3_free(zSql);
    }
  }
  if (p == 0 && rc == SQLITE_OK) {
    *pzErr = sqlite3_mprintf("no lmdb_journal table named '%s'", zArg);
    rc = SQLITE_ERROR;
  }
  if (p && rc == SQLITE_OK) {
    rc = ljTableUsable(p, pzErr);
    if (rc) p = 0;
  }
  sqlite3_free(zDb);
  *pp = p;
  return rc;
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
