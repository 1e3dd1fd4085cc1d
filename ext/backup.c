/*
** backup.c -- journal_backup: a consistent copy of a live store.
**
** LMDB copies the store from one read transaction (mdb_env_copy2), so
** appends go on meanwhile and the copy holds exactly the events committed
** when it began -- a prefix of the journal in pos order.  Compacting (the
** default) leaves free pages out and renumbers the rest.
**
** The copy is written into a new directory beside the destination
** ("<dest>.backup-PID-N"), its data file and the directory are fsynced,
** and only then is it renamed to the destination, so a destination that
** exists is always a complete copy; a failure removes the temporary
** directory.  An existing non-empty destination is refused (an empty
** directory is replaced).  Restoring is opening the copy (see
** docs/operations.md).
*/
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

/* Is zDir usable as a destination: absent, or an empty directory? */
static int backupDestFree(const char *zDest, char **pzErr) {
  struct stat st;
  DIR *d;
  struct dirent *e;
  int bEmpty = 1;
  if (stat(zDest, &st)) {
    if (errno == ENOENT) return SQLITE_OK;
    *pzErr = sqlite3_mprintf("journal_backup: cannot use '%s': %s", zDest,
                             strerror(errno));
    return SQLITE_CANTOPEN;
  }
  if (S_ISDIR(st.st_mode) && (d = opendir(zDest)) != 0) {
    while ((e = readdir(d)) != 0) {
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) bEmpty = 0;
    }
    closedir(d);
    if (bEmpty) return SQLITE_OK;
  }
  *pzErr = sqlite3_mprintf(
      "journal_backup: '%s' already exists and is not "
      "an empty directory; choose a new destination",
      zDest);
  return SQLITE_CANTOPEN;
}

/* fsync a file or directory by path. */
static int backupSync(const char *zPath) {
  int fd = open(zPath, O_RDONLY);
  int e = 0;
  if (fd < 0) return errno;
  if (fsync(fd)) e = errno;
  close(fd);
  return e;
}

/* The directory holding zPath ("." if none), sqlite3_malloc'd. */
static char *backupParent(const char *zPath) {
  const char *z = strrchr(zPath, '/');
  if (z == 0) return sqlite3_mprintf(".");
  if (z == zPath) return sqlite3_mprintf("/");
  return sqlite3_mprintf("%.*s", (int)(z - zPath), zPath);
}

/* Copy into zTmp, sync it and rename it to zDest; *pnBytes: the copy's
** size.  Returns an errno or LMDB code. */
static int backupCopy(LjEnv *pEnv, const char *zTmp, const char *zDest,
                      int bCompact, i64 *pnBytes) {
  char *zData = sqlite3_mprintf("%s/data.mdb", zTmp);
  char *zParent = backupParent(zDest);
  struct stat st;
  int e;
  if (zData == 0 || zParent == 0) {
    e = ENOMEM;
  } else {
    /* The gate: the copy reads the map, which must not move meanwhile. */
    ljGateEnter(pEnv);
    e = mdb_env_copy2(pEnv->env, zTmp, bCompact ? MDB_CP_COMPACT : 0);
    ljGateLeave(pEnv);
  }
  if (e == 0) e = backupSync(zData);
  if (e == 0 && stat(zData, &st)) e = errno;
  if (e == 0) e = backupSync(zTmp);
  if (e == 0) {
    rmdir(zDest); /* an empty directory given as destination */
    if (rename(zTmp, zDest)) e = errno;
  }
  if (e == 0) e = backupSync(zParent);
  if (e == 0) *pnBytes = (i64)st.st_size;
  sqlite3_free(zData);
  sqlite3_free(zParent);
  return e;
}

/* Make the temporary directory beside zDest, named "<zDest>.backup-P-N",
** with mkdir's mode (the umask applies, as to a store's directory). */
static char *backupTempDir(const char *zDest, int *pe) {
  static unsigned nSeq = 0;
  for (int i = 0; i < 100; i++) {
    unsigned n = __atomic_add_fetch(&nSeq, 1, __ATOMIC_RELAXED);
    char *z = sqlite3_mprintf("%s.backup-%d-%u", zDest, (int)getpid(), n);
    if (z == 0) {
      *pe = ENOMEM;
      return 0;
    }
    if (mkdir(z, 0775) == 0) return z;
    *pe = errno;
    sqlite3_free(z);
    if (*pe != EEXIST) return 0;
  }
  return 0;
}

int ljBackup(LjEnv *pEnv, const char *zDest, int bCompact, i64 *pnBytes,
             char **pzErr) {
  char *zTmp;
  int rc, e;
  *pnBytes = 0;
  if (zDest == 0 || zDest[0] == 0) {
    *pzErr = sqlite3_mprintf("journal_backup: the destination is empty");
    return SQLITE_MISUSE;
  }
  rc = backupDestFree(zDest, pzErr);
  if (rc) return rc;
  zTmp = backupTempDir(zDest, &e);
  if (zTmp == 0 && e == ENOMEM) return SQLITE_NOMEM;
  if (zTmp == 0) {
    *pzErr = sqlite3_mprintf(
        "journal_backup: cannot create a directory "
        "beside '%s': %s",
        zDest, strerror(e));
    return ljMdbToSqlite(e);
  }
  e = backupCopy(pEnv, zTmp, zDest, bCompact, pnBytes);
  if (e) {
    /* Leave nothing behind: the temporary directory goes. */
    char *zData = sqlite3_mprintf("%s/data.mdb", zTmp);
    if (zData) unlink(zData);
    sqlite3_free(zData);
    rmdir(zTmp);
    *pzErr = sqlite3_mprintf("journal_backup to '%s' failed: %s", zDest,
                             mdb_strerror(e));
    rc = ljMdbToSqlite(e);
    if (rc == SQLITE_OK) rc = SQLITE_ERROR;
  }
  sqlite3_free(zTmp);
  return rc;
}
