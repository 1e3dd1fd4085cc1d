/*
** lmdbjournal.c -- the entry point: registration of the extension on a
** connection (the table module, the functions, the table-valued
** functions).  What they share lives in conn.c.
**
**   sqlite> .load ./build/lmdbjournal
**   sqlite> CREATE VIRTUAL TABLE j USING lmdb_journal(path='data/journal');
**   sqlite> SELECT journal_append('j', 'order-1', '{"total":5}');
**   1
*/
#include "internal.h"

#include <string.h>

#ifndef SQLITE_CORE
SQLITE_EXTENSION_INIT1
#endif

#ifdef _WIN32
__declspec(dllexport)
#endif
    __attribute__((visibility("default"))) int sqlite3_lmdbjournal_init(
        sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi) {
  LjConn *pConn;
  int rc;
#ifndef SQLITE_CORE
  SQLITE_EXTENSION_INIT2(pApi);
#else
  (void)pApi;
#endif
  if (sqlite3_libversion_number() < LMDBJOURNAL_MIN_SQLITE_VERSION_NUMBER) {
    if (pzErrMsg) {
      *pzErrMsg = sqlite3_mprintf(
          "lmdbjournal %s needs SQLite 3.38.0 or newer; this is SQLite %s",
          LMDBJOURNAL_VERSION, sqlite3_libversion());
    }
    return SQLITE_ERROR;
  }
  if (ljConnFind(db)) return SQLITE_OK; /* loaded on this handle already */
  pConn = sqlite3_malloc64(sizeof(*pConn));
  if (pConn == 0) return SQLITE_NOMEM;
  memset(pConn, 0, sizeof(*pConn));
  pConn->db = db;
  pConn->nRef = 1;
  rc = ljRegisterTable(db, pConn); /* takes ownership of that reference */
  if (rc == SQLITE_OK) ljConnAdd(pConn);
  if (rc == SQLITE_OK) rc = ljRegisterFunctions(db, pConn);
  if (rc == SQLITE_OK) rc = ljRegisterTvfs(db, pConn);
  if (rc == SQLITE_OK) rc = ljRegisterExport(db, pConn);
  if (rc == SQLITE_OK) rc = ljRegisterSnapshotTvfs(db, pConn);
  if (rc == SQLITE_OK) rc = ljRegisterRestore(db, pConn);
  if (rc == SQLITE_OK) rc = ljRegisterErrors(db, pConn);
  if (rc != SQLITE_OK && pzErrMsg) {
    *pzErrMsg = sqlite3_mprintf("lmdbjournal: %s", sqlite3_errmsg(db));
  }
  return rc;
}
