/*
** lmdbjournal.h -- public interface of the lmdbjournal SQLite extension.
**
** lmdbjournal keeps actor-system message journals and snapshots in LMDB
** and serves them to SQL: a virtual table module "lmdb_journal" for
** replay, tailing and analytics, and journal_* functions to append, sync
** and inspect a store.  Everything a user does goes through SQL; this
** header exists for programs that link the extension statically or want
** to check the version they were built against.
**
** Loading at run time (the usual way):
**
**     sqlite3> .load ./build/lmdbjournal
**     sqlite3_load_extension(db, "./build/lmdbjournal", 0, &zErr);
**
** The loader derives the entry point sqlite3_lmdbjournal_init from the
** file name, so no entry-point argument is needed.
**
** Linking statically (build with "make static", compile the application
** with -DSQLITE_CORE and link build/liblmdbjournal.a -llmdb -llz4 -lzstd
** -lpthread):
**
**     sqlite3_auto_extension((void(*)(void))sqlite3_lmdbjournal_init);
**
** after which every new connection has the module and functions.
*/
#ifndef LMDBJOURNAL_H
#define LMDBJOURNAL_H

#include <sqlite3.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
** Version of this header.  LMDBJOURNAL_VERSION is "MAJOR.MINOR.PATCH";
** LMDBJOURNAL_VERSION_NUMBER is MAJOR*1000000 + MINOR*1000 + PATCH.
** journal_version() returns the same string at run time.
*/
#define LMDBJOURNAL_VERSION        "0.1.0"
#define LMDBJOURNAL_VERSION_NUMBER 1000

/*
** Oldest SQLite library the extension runs on.  Loading into an older
** library fails with SQLITE_ERROR and a message naming both versions.
*/
#define LMDBJOURNAL_MIN_SQLITE_VERSION_NUMBER 3038000

/*
** On-disk format version written to every store's meta database.  A store
** with a newer format is refused at CREATE/CONNECT time rather than being
** misread.
*/
#define LMDBJOURNAL_FORMAT_VERSION 2

/*
** sqlite3_lmdbjournal_init -- register the extension on one connection.
**
**   db        the connection.
**   pzErrMsg  on failure, receives an error message obtained from
**             sqlite3_malloc(); the caller frees it.  May be NULL.
**   pApi      the API routines passed by sqlite3_load_extension(); ignored
**             when compiled with -DSQLITE_CORE.
**
** Registers, on db only:
**   - the virtual table module "lmdb_journal";
**   - the scalar functions journal_append, journal_sync,
**     journal_highest_seq, journal_truncate, journal_health,
**     journal_config, journal_version and journal_debug;
**   - journal_errors (table-valued) and journal_errors_clear: which
**     async appends failed.
**
** Functions that write (journal_append, journal_sync, journal_truncate)
** are registered with
** SQLITE_DIRECTONLY, so schema objects (views, triggers) cannot call them.
**
** Returns:
**   SQLITE_OK     registered.
**   SQLITE_ERROR  the SQLite library is older than
**                 LMDBJOURNAL_MIN_SQLITE_VERSION_NUMBER (*pzErrMsg says so).
**   SQLITE_NOMEM  out of memory.
**   any other code returned by sqlite3_create_module_v2() or
**   sqlite3_create_function_v2().
**
** Calling it twice on the same connection is harmless: the second call
** replaces the registrations, and tables opened before keep working.
*/
#ifdef _WIN32
__declspec(dllexport)
#endif
    int sqlite3_lmdbjournal_init(sqlite3 *db, char **pzErrMsg,
                                 const sqlite3_api_routines *pApi);

#ifdef __cplusplus
}
#endif

#endif /* LMDBJOURNAL_H */
