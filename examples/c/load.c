/*
** load.c -- load lmdbjournal at run time into an application's connection.
**
**     cc -o load load.c -lsqlite3
**     ./load [MODULE] [STORE-DIR]
**
** MODULE is what sqlite3_load_extension() gets: "lmdbjournal" (the default)
** finds the installed module by short name (dlopen of "lmdbjournal" then
** "lmdbjournal.so", through the loader's cache or LD_LIBRARY_PATH), or a path
** such as ./build/lmdbjournal.  STORE-DIR defaults to ./load-example-data.
**
** It creates a journal, appends three events of one actor, waits for them to
** be durable, replays the actor and checks what it read.  It prints each step
** and exits non-zero on any failure.
*/
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

static int fail(sqlite3 *db, const char *zWhat){
  fprintf(stderr, "load: %s: %s\n", zWhat, db ? sqlite3_errmsg(db) : "");
  sqlite3_close(db);
  return 1;
}

int main(int argc, char **argv){
  const char *zModule = argc > 1 ? argv[1] : "lmdbjournal";
  const char *zDir = argc > 2 ? argv[2] : "load-example-data";
  static const char *azPayload[] = {
    "{\"amount\":100}", "{\"amount\":-30}", "{\"amount\":5}"
  };
  sqlite3 *db = 0;
  sqlite3_stmt *pStmt = 0;
  char *zErr = 0;
  char *zSql;
  int i, nRow = 0, rc;

  if( sqlite3_open(":memory:", &db)!=SQLITE_OK ) return fail(db, "open");
  /* Enables sqlite3_load_extension() only, not SQL's load_extension(). */
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, (int*)0);
  if( sqlite3_load_extension(db, zModule, 0, &zErr)!=SQLITE_OK ){
    fprintf(stderr, "load: cannot load %s: %s\n", zModule, zErr);
    sqlite3_free(zErr);
    sqlite3_close(db);
    return 1;
  }
  printf("loaded %s\n", zModule);

  zSql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE j USING lmdb_journal(path=%Q)", zDir);
  rc = sqlite3_exec(db, zSql, 0, 0, 0);
  sqlite3_free(zSql);
  if( rc!=SQLITE_OK ) return fail(db, "create");

  /* An actor appends after the highest seq the store already holds, so the
  ** example can run twice on one store. */
  rc = sqlite3_prepare_v2(db,
      "SELECT journal_append('j', 'acct-1', ?1, 'Moved')", -1, &pStmt, 0);
  for(i=0; rc==SQLITE_OK && i<3; i++){
    sqlite3_bind_text(pStmt, 1, azPayload[i], -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)!=SQLITE_ROW ) rc = SQLITE_ERROR;
    else printf("appended seq %lld\n", sqlite3_column_int64(pStmt, 0));
    sqlite3_reset(pStmt);
  }
  sqlite3_finalize(pStmt);
  if( rc!=SQLITE_OK ) return fail(db, "append");
  if( sqlite3_exec(db, "SELECT journal_sync('j')", 0, 0, 0)!=SQLITE_OK ){
    return fail(db, "sync");
  }

  /* Replay: the last three events are the ones just appended, in order. */
  rc = sqlite3_prepare_v2(db,
      "SELECT seq, payload FROM (SELECT seq, payload FROM j"
      " WHERE actor_id = 'acct-1' ORDER BY seq DESC LIMIT 3) ORDER BY seq",
      -1, &pStmt, 0);
  if( rc!=SQLITE_OK ) return fail(db, "replay");
  while( sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zPayload = (const char*)sqlite3_column_text(pStmt, 1);
    printf("replayed seq %lld %s\n", sqlite3_column_int64(pStmt, 0), zPayload);
    if( nRow<3 && strcmp(zPayload, azPayload[nRow])==0 ) nRow++;
  }
  sqlite3_finalize(pStmt);
  if( nRow!=3 ){
    fprintf(stderr, "load: replay returned other events than appended\n");
    sqlite3_close(db);
    return 1;
  }
  sqlite3_close(db);
  printf("ok: 3 events appended, synced and replayed in order\n");
  return 0;
}
