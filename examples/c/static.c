/*
** static.c -- link lmdbjournal into an application as a static library.
**
**     make install            (or PREFIX=... / DESTDIR=...)
**     cc -o static static.c $(pkg-config --cflags --libs --static lmdbjournal)
**     ./static [STORE-DIR]
**
** sqlite3_auto_extension() registers sqlite3_lmdbjournal_init, declared in
** <lmdbjournal.h>, for every connection opened afterwards: no module file
** and no extension loading are needed at run time.  The program checks that
** the header and the linked library agree on the version, opens two
** connections on one store, appends through the first and reads through the
** second.  It prints each step and exits non-zero on any failure.
*/
#include <lmdbjournal.h>
#include <stdio.h>
#include <string.h>

/* Runs zSql on db and copies the first column of its first row to zOut. */
static int query1(sqlite3 *db, const char *zSql, char *zOut, int nOut){
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      const char *z = (const char*)sqlite3_column_text(pStmt, 0);
      snprintf(zOut, nOut, "%s", z ? z : "NULL");
    }else{
      rc = SQLITE_ERROR;
    }
  }
  sqlite3_finalize(pStmt);
  if( rc!=SQLITE_OK ){
    fprintf(stderr, "static: %s: %s\n", zSql, sqlite3_errmsg(db));
  }
  return rc;
}

int main(int argc, char **argv){
  const char *zDir = argc > 1 ? argv[1] : "static-example-data";
  sqlite3 *dbApp = 0, *dbReport = 0;
  char zVal[200];
  char *zCreate;
  int rc;

  rc = sqlite3_auto_extension((void(*)(void))sqlite3_lmdbjournal_init);
  if( rc==SQLITE_OK ) rc = sqlite3_open(":memory:", &dbApp);
  if( rc==SQLITE_OK ) rc = sqlite3_open(":memory:", &dbReport);
  if( rc!=SQLITE_OK ){
    fprintf(stderr, "static: cannot open: %s\n", sqlite3_errstr(rc));
    return 1;
  }

  rc = query1(dbApp, "SELECT journal_version()", zVal, sizeof(zVal));
  if( rc==SQLITE_OK ){
    printf("linked lmdbjournal %s (header %s)\n", zVal, LMDBJOURNAL_VERSION);
    if( strcmp(zVal, LMDBJOURNAL_VERSION)!=0 ) rc = SQLITE_ERROR;
  }

  zCreate = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE j USING lmdb_journal(path=%Q)", zDir);
  if( rc==SQLITE_OK ) rc = sqlite3_exec(dbApp, zCreate, 0, 0, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_exec(dbReport, zCreate, 0, 0, 0);
  sqlite3_free(zCreate);
  if( rc==SQLITE_OK ){
    rc = query1(dbApp,
        "SELECT journal_append('j', 'cart-7', '{\"sku\":\"A-1\"}', 'ItemAdded')",
        zVal, sizeof(zVal));
  }
  if( rc==SQLITE_OK ){
    printf("appended cart-7 seq %s\n", zVal);
    rc = query1(dbApp, "SELECT journal_sync('j')", zVal, sizeof(zVal));
  }
  if( rc==SQLITE_OK ){
    rc = query1(dbReport,
        "SELECT json_extract(payload, '$.sku') FROM j"
        " WHERE actor_id = 'cart-7' ORDER BY seq DESC LIMIT 1",
        zVal, sizeof(zVal));
  }
  if( rc==SQLITE_OK ){
    printf("second connection reads sku %s\n", zVal);
    if( strcmp(zVal, "A-1")!=0 ) rc = SQLITE_ERROR;
  }
  sqlite3_close(dbReport);
  sqlite3_close(dbApp);
  if( rc!=SQLITE_OK ){
    fprintf(stderr, "static: failed\n");
    return 1;
  }
  printf("ok: statically linked module registered by sqlite3_auto_extension\n");
  return 0;
}
