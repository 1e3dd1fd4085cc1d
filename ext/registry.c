/*
** registry.c -- one LMDB environment per directory per process: found,
** opened (with its writer), shared, and closed.  The gate and error
** mapping it relies on are in env.c.
**
** THREADING MODEL (the authoritative description; other files refer here)
**
** LMDB forbids opening one environment twice in a process, so every
** table, connection and thread that names a directory shares one LjEnv,
** found by the directory's (st_dev, st_ino) -- a symlink or another
** spelling of the path finds the same environment.  LjEnv.nRef counts the
** tables using it; the last release stops the writer (flushing its queue)
** and closes LMDB.  Opening and closing happen under the registry mutex,
** so an environment is never open twice, not even while closing.
**
** The environment is opened with MDB_NOTLS: read transactions belong to
** table cursors, not threads, and one thread may hold several.
**
** The gate.  LjEnv.gate (env.c) is an rwlock held shared by any thread
** while it works on LMDB memory: a read transaction's cursor calls, the
** writer's whole write transaction.  It is held exclusively to change the
** map size, which remaps the file and may move it.  The gate is held only
** for the duration of one call: never while SQLite has control.  So a
** statement left open in the middle of a scan cannot block map growth;
** instead, every cursor remembers its key and, seeing LjEnv.mapGen
** change, re-seeks inside its unchanged read transaction (pages are
** addressed by number, the snapshot stays valid, only pointers moved).
** The rwlock prefers writers, so growth is not starved; hence no thread
** may take the gate shared twice.
**
** Every lock and the order they are taken in: internal.h, above LjEnv.
*/
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t ljRegistryMutex = PTHREAD_MUTEX_INITIALIZER;
static LjEnv *ljRegistry = 0;

/*
** fork().  A child inherits the parent's environments but not their
** writer threads, and LMDB forbids using an environment in a process that
** did not open it.  So at fork the child forgets the registry (the
** environments stay allocated, never touched again: their locks may have
** been held by threads that do not exist in the child), and every
** environment remembers the fork generation it was opened in: tables
** connected before the fork refuse use in the child with a clear error
** (ljEnvForked), and close without waiting on anything.  A child opens
** its own environment when it connects a table itself.
*/
static unsigned ljForkGen = 0;
static pthread_once_t ljForkOnce = PTHREAD_ONCE_INIT;

static void forkPrepare(void) {
  pthread_mutex_lock(&ljRegistryMutex);
}
static void forkParent(void) {
  pthread_mutex_unlock(&ljRegistryMutex);
}
static void forkChild(void) {
  pthread_mutex_init(&ljRegistryMutex, 0);
  ljRegistry = 0;
  __atomic_add_fetch(&ljForkGen, 1, __ATOMIC_RELEASE);
}
static void forkInstall(void) {
  pthread_atfork(forkPrepare, forkParent, forkChild);
}

int ljEnvForked(const LjEnv *p) {
  return p->forkGen != __atomic_load_n(&ljForkGen, __ATOMIC_ACQUIRE);
}

static const char *const azDbName[LJ_DB_COUNT] = {
    "meta", "actors",    "actnum", "events",  "pos",
    "tags", "snapshots", "stage",  "trunclog"};

/*
** A store being created must not take over another program's LMDB
** environment: one whose main database holds anything while our "meta"
** database with its format key is missing.  Returns SQLITE_OK when the
** environment is new (or one of ours that lacks some databases).
*/
static int envForeign(LjEnv *p, MDB_txn *txn, char **pzErr) {
  MDB_dbi dbi;
  MDB_stat st;
  MDB_val k, v;
  int mrc = mdb_dbi_open(txn, 0, 0, &dbi);
  if (mrc == 0) mrc = mdb_stat(txn, dbi, &st);
  if (mrc == 0 && st.ms_entries == 0) return SQLITE_OK;
  if (mrc == 0) mrc = mdb_dbi_open(txn, "meta", 0, &dbi);
  ljMetaKey(&k, LJ_META_FORMAT);
  if (mrc == 0) mrc = mdb_get(txn, dbi, &k, &v);
  if (mrc == 0) return SQLITE_OK;
  *pzErr = sqlite3_mprintf(
      "lmdb_journal: '%s' holds an LMDB environment that is not a journal "
      "store (%s); refusing to write into it",
      p->zDir,
      mrc == MDB_NOTFOUND ? "no \"meta\" database with a format key"
                          : mdb_strerror(mrc));
  return SQLITE_CANTOPEN;
}

/*
** Open the named databases, creating them (and recording the format
** version) in a new store.  Most opens find them present, so a read
** transaction is tried first: it does not wait for the write lock.
*/
static int envOpenDbs(LjEnv *p, char **pzErr) {
  MDB_txn *txn = 0;
  int mrc, i;
  int bCreate = 0;
  u8 aFmt[4];
  MDB_val k, v;
  ljMetaKey(&k, LJ_META_FORMAT);
  for (;;) {
    mrc = mdb_txn_begin(p->env, 0, bCreate ? 0 : MDB_RDONLY, &txn);
    if (mrc == MDB_MAP_RESIZED) {
      /* Another process grew the map since we opened: adopt its size (no
      ** other thread knows this environment yet). */
      mrc = mdb_env_set_mapsize(p->env, 0);
      if (mrc == 0) continue;
    }
    if (mrc) break;
    for (i = 0; i < LJ_DB_COUNT && mrc == 0; i++) {
      mrc =
          mdb_dbi_open(txn, azDbName[i], bCreate ? MDB_CREATE : 0, &p->aDbi[i]);
    }
    if (mrc == MDB_NOTFOUND && !bCreate) {
      int rc = envForeign(p, txn, pzErr);
      mdb_txn_abort(txn);
      if (rc) return rc;
      bCreate = 1;
      continue;
    }
    if (mrc) break;
    mrc = mdb_get(txn, p->aDbi[LJ_DB_META], &k, &v);
    if (mrc == MDB_NOTFOUND && bCreate) {
      ljPut32(aFmt, LMDBJOURNAL_FORMAT_VERSION);
      v.mv_data = aFmt;
      v.mv_size = sizeof(aFmt);
      mrc = mdb_put(txn, p->aDbi[LJ_DB_META], &k, &v, 0);
    } else if (mrc == 0) {
      u32 fmt = v.mv_size == sizeof(aFmt) ? ljGet32(v.mv_data) : 0;
      if (fmt == 0 || fmt > LMDBJOURNAL_FORMAT_VERSION) {
        mdb_txn_abort(txn);
        *pzErr = sqlite3_mprintf(
            "lmdb_journal: '%s' holds store format %u; this build reads "
            "format %d or older",
            p->zDir, fmt, LMDBJOURNAL_FORMAT_VERSION);
        return SQLITE_CORRUPT;
      }
      if (fmt < LMDBJOURNAL_FORMAT_VERSION) {
        /* An older format is a subset of this one: record the upgrade,
        ** so that older builds refuse the store instead of misreading
        ** what this one writes. */
        if (!bCreate) {
          mdb_txn_abort(txn);
          bCreate = 1;
          continue;
        }
        ljPut32(aFmt, LMDBJOURNAL_FORMAT_VERSION);
        v.mv_data = aFmt;
        v.mv_size = sizeof(aFmt);
        mrc = mdb_put(txn, p->aDbi[LJ_DB_META], &k, &v, 0);
      }
    } else if (mrc == MDB_NOTFOUND) {
      *pzErr = sqlite3_mprintf(
          "lmdb_journal: '%s' is an LMDB environment but not a journal store",
          p->zDir);
      mdb_txn_abort(txn);
      return SQLITE_ERROR;
    }
    if (mrc) break;
    mrc = mdb_txn_commit(txn);
    txn = 0;
    if (mrc) break;
    return SQLITE_OK;
  }
  if (txn) mdb_txn_abort(txn);
  *pzErr = ljMdbErr("lmdb_journal: opening the store's databases", mrc);
  return ljMdbToSqlite(mrc);
}

/* LMDB's assertions abort the process; say why first (sqlite3_log, and
** stderr, which LMDB would have used). */
static void envAssert(MDB_env *env, const char *zMsg) {
  const char *zPath = 0;
  mdb_env_get_path(env, &zPath);
  sqlite3_log(SQLITE_CORRUPT,
              "lmdbjournal: LMDB assertion failed in '%s': %s "
              "(the store is damaged; see docs/operations.md)",
              zPath ? zPath : "?", zMsg);
  fprintf(stderr,
          "lmdbjournal: LMDB assertion failed in '%s': %s (the store "
          "is damaged; see docs/operations.md)\n",
          zPath ? zPath : "?", zMsg);
}

/* Before LMDB opens a directory: an empty data.mdb would silently become
** a new, empty store (LMDB initializes an empty file). */
static int envCheckEmpty(const char *zDir, char **pzErr) {
  struct stat st;
  char *z = sqlite3_mprintf("%s/data.mdb", zDir);
  int bEmpty = 0;
  if (z == 0) return SQLITE_NOMEM;
  /* Another process creating the store leaves the file empty for the
  ** moment LMDB takes to write its first pages: wait that out (up to 2 s)
  ** before calling the file damaged. */
  for (int i = 0; i < 200; i++) {
    bEmpty = stat(z, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0;
    if (!bEmpty) break;
    sqlite3_sleep(10);
  }
  sqlite3_free(z);
  if (!bEmpty) return SQLITE_OK;
  *pzErr = sqlite3_mprintf(
      "lmdb_journal: '%s/data.mdb' is empty: the store's data file was "
      "truncated or never written; restore it from a backup (or remove "
      "the directory to start a new store)",
      zDir);
  return SQLITE_CORRUPT;
}

/* After LMDB opened the directory: the data file must reach the last page
** the newest meta page names, else reading the missing pages through the
** map would raise SIGBUS. */
static int envCheckSize(LjEnv *p, char **pzErr) {
  MDB_envinfo info;
  MDB_stat st;
  struct stat fst;
  mdb_filehandle_t fd;
  i64 need;
  if (mdb_env_info(p->env, &info) || mdb_env_stat(p->env, &st) ||
      mdb_env_get_fd(p->env, &fd) || fstat(fd, &fst)) {
    return SQLITE_OK; /* nothing to compare with: LMDB reports its errors */
  }
  need = ((i64)info.me_last_pgno + 1) * (i64)st.ms_psize;
  if ((i64)fst.st_size >= need) return SQLITE_OK;
  *pzErr = sqlite3_mprintf(
      "lmdb_journal: '%s/data.mdb' is %lld bytes but the store's last page "
      "ends at byte %lld: the file was truncated; restore it from a backup",
      p->zDir, (long long)fst.st_size, need);
  return SQLITE_CORRUPT;
}

/* mkdir -p */
static int envMkdirs(const char *zPath) {
  char *z = sqlite3_mprintf("%s", zPath);
  size_t i, n;
  int rc = 0;
  if (z == 0) return ENOMEM;
  n = strlen(z);
  for (i = 1; i <= n; i++) {
    if (z[i] == '/' || z[i] == 0) {
      char c = z[i];
      z[i] = 0;
      if (mkdir(z, 0775) && errno != EEXIST) rc = errno;
      z[i] = c;
      if (rc) break;
    }
  }
  sqlite3_free(z);
  return rc;
}

static void envFree(LjEnv *p) {
  if (p->env) mdb_env_close(p->env);
  pthread_rwlock_destroy(&p->gate);
  pthread_mutex_destroy(&p->m.histMutex);
  pthread_mutex_destroy(&p->readerMutex);
  ljErrLogFree(p);
  ljConfigClear(&p->cfg);
  sqlite3_free(p->zDir);
  sqlite3_free(p);
}

static int envCreate(const LjConfig *pCfg, struct stat *pSt, LjEnv **ppEnv,
                     char **pzErr) {
  LjEnv *p;
  pthread_rwlockattr_t attr;
  char aReal[PATH_MAX];
  int mrc;
  unsigned flags = MDB_NOTLS;
  int nDead = 0;

  p = sqlite3_malloc64(sizeof(*p));
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr,
                                PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&p->gate, &attr);
  pthread_rwlockattr_destroy(&attr);
  pthread_mutex_init(&p->m.histMutex, 0);
  pthread_mutex_init(&p->readerMutex, 0);
  ljErrLogInit(&p->errLog);
  p->dev = pSt->st_dev;
  p->ino = pSt->st_ino;
  p->cfg = *pCfg;
  p->zDir =
      sqlite3_mprintf("%s", realpath(pCfg->zPath, aReal) ? aReal : pCfg->zPath);
  if (ljConfigOwnText(&p->cfg) || p->zDir == 0) {
    envFree(p);
    return SQLITE_NOMEM;
  }
  /* Never MDB_NOSYNC: it may corrupt the store on an OS crash (writer.c,
  ** setDurability). */
  if (pCfg->eDurability != LJ_DUR_FULL) flags |= MDB_NOMETASYNC;
  {
    int rc = envCheckEmpty(p->zDir, pzErr);
    if (rc) {
      envFree(p);
      return rc;
    }
  }
  mrc = mdb_env_create(&p->env);
  if (mrc == 0) mdb_env_set_assert(p->env, envAssert); /* EINVAL: no asserts */
  if (mrc == 0)
    mrc = mdb_env_set_maxreaders(p->env, (unsigned)pCfg->nMaxReaders);
  if (mrc == 0) mrc = mdb_env_set_maxdbs(p->env, (MDB_dbi)pCfg->nMaxDbs);
  if (mrc == 0) mrc = mdb_env_set_mapsize(p->env, (size_t)pCfg->szMap);
  if (mrc == 0) mrc = mdb_env_open(p->env, p->zDir, flags, 0664);
  if (mrc) {
    *pzErr = sqlite3_mprintf("lmdb_journal: cannot open '%s': %s", pCfg->zPath,
                             mdb_strerror(mrc));
    envFree(p);
    return ljMdbToSqlite(mrc);
  }
  mdb_reader_check(p->env, &nDead);
  p->m.nStaleReaders = (u64)nDead;
  p->pid = getpid();
  p->forkGen = __atomic_load_n(&ljForkGen, __ATOMIC_ACQUIRE);
  {
    MDB_envinfo info;
    int rc = envCheckSize(p, pzErr);
    if (rc == SQLITE_OK) rc = envOpenDbs(p, pzErr); /* may adopt a larger map */
    mdb_env_info(p->env, &info);
    p->szMap = (i64)info.me_mapsize;
    if (rc == SQLITE_OK) rc = ljWriterStart(p, pzErr);
    if (rc == SQLITE_OK) rc = ljShipStart(p, pzErr);
    if (rc != SQLITE_OK) {
      ljWriterStop(p);
      envFree(p);
      return rc;
    }
  }
  *ppEnv = p;
  return SQLITE_OK;
}

/* Does the directory hold a store (an LMDB data file)? */
static int envExists(const char *zDir) {
  struct stat st;
  char *z = sqlite3_mprintf("%s/data.mdb", zDir);
  int bExists = z && stat(z, &st) == 0 && S_ISREG(st.st_mode);
  sqlite3_free(z);
  return bExists;
}

/* The absolute form of zPath, resolving symlinks through its longest
** existing prefix (the rest may not exist yet).  sqlite3_malloc'd. */
static char *envRealpath(const char *zPath) {
  char aReal[PATH_MAX];
  char *zHead = sqlite3_mprintf("%s", zPath), *zSlash;
  char *zRes = 0;
  if (zHead == 0) return 0;
  for (;;) {
    if (realpath(zHead[0] ? zHead : ".", aReal)) {
      zRes = sqlite3_mprintf("%s%s", aReal, zPath + strlen(zHead));
      break;
    }
    zSlash = strrchr(zHead, '/');
    if (zSlash == 0)
      zHead[0] = 0;
    else if (zSlash == zHead)
      zHead[1] = 0;
    else
      *zSlash = 0;
  }
  sqlite3_free(zHead);
  return zRes;
}

/*
** The environment variable LMDBJOURNAL_ROOT, when set, lists the
** directories (separated by ':') under which stores may be created or
** opened: a declaration in a database file someone else wrote cannot
** reach a store elsewhere.  Unset, any path is allowed.
*/
static int envAllowed(const char *zPath, char **pzErr) {
  const char *zRoots = getenv("LMDBJOURNAL_ROOT");
  char *zReal;
  int bOk = 0;
  if (zRoots == 0 || zRoots[0] == 0) return SQLITE_OK;
  zReal = envRealpath(zPath);
  if (zReal == 0) return SQLITE_NOMEM;
  while (*zRoots && !bOk) {
    size_t n = strcspn(zRoots, ":");
    char *zRoot = sqlite3_mprintf("%.*s", (int)n, zRoots);
    char *zRootReal = zRoot ? envRealpath(zRoot) : 0;
    if (zRootReal) {
      size_t nr = strlen(zRootReal);
      while (nr > 1 && zRootReal[nr - 1] == '/') nr--;
      bOk = strncmp(zReal, zRootReal, nr) == 0 &&
            (zReal[nr] == 0 || zReal[nr] == '/' || nr == 1);
    }
    sqlite3_free(zRoot);
    sqlite3_free(zRootReal);
    zRoots += n + (zRoots[n] == ':');
  }
  if (!bOk) {
    *pzErr = sqlite3_mprintf(
        "lmdb_journal: path '%s' is outside "
        "LMDBJOURNAL_ROOT (%s)",
        zPath, getenv("LMDBJOURNAL_ROOT"));
  }
  sqlite3_free(zReal);
  return bOk ? SQLITE_OK : SQLITE_AUTH;
}

int ljEnvOpen(const LjConfig *pCfg, int bCreate, LjEnv **ppEnv, char **pzErr) {
  struct stat st;
  LjEnv *p;
  int rc = SQLITE_OK;
  int e;

  *ppEnv = 0;
  pthread_once(&ljForkOnce, forkInstall);
  rc = envAllowed(pCfg->zPath, pzErr);
  if (rc) return rc;
  if (!bCreate && !envExists(pCfg->zPath)) {
    *pzErr = sqlite3_mprintf(
        "lmdb_journal: no store at '%s': a table declaration only connects "
        "to an existing store (CREATE VIRTUAL TABLE creates one); is the "
        "path relative to another working directory, or the volume not "
        "mounted?",
        pCfg->zPath);
    return SQLITE_CANTOPEN;
  }
  e = envMkdirs(pCfg->zPath);
  if (e == 0 && stat(pCfg->zPath, &st)) e = errno;
  if (e == 0 && !S_ISDIR(st.st_mode)) e = ENOTDIR;
  if (e) {
    *pzErr = sqlite3_mprintf("lmdb_journal: cannot use path '%s': %s",
                             pCfg->zPath, strerror(e));
    return ljMdbToSqlite(e);
  }
  pthread_mutex_lock(&ljRegistryMutex);
  for (p = ljRegistry; p; p = p->pNext) {
    if (p->dev == st.st_dev && p->ino == st.st_ino) break;
  }
  if (p) {
    rc = ljConfigEnvConflict(&p->cfg, pCfg, pzErr);
    if (rc == SQLITE_OK) p->nRef++;
  } else {
    rc = envCreate(pCfg, &st, &p, pzErr);
    if (rc == SQLITE_OK) {
      p->nRef = 1;
      p->pNext = ljRegistry;
      ljRegistry = p;
    }
  }
  pthread_mutex_unlock(&ljRegistryMutex);
  if (rc == SQLITE_OK) *ppEnv = p;
  return rc;
}

void ljEnvRelease(LjEnv *p) {
  LjEnv **pp;
  if (p == 0 || ljEnvForked(p)) return; /* the parent's: left alone */
  pthread_mutex_lock(&ljRegistryMutex);
  if (--p->nRef == 0) {
    for (pp = &ljRegistry; *pp; pp = &(*pp)->pNext) {
      if (*pp == p) {
        *pp = p->pNext;
        break;
      }
    }
    /* Still under the registry mutex: a concurrent open of the same
    ** directory must not open LMDB again before this close is complete. */
    ljShipStop(p);
    ljWriterStop(p);
    envFree(p);
  }
  pthread_mutex_unlock(&ljRegistryMutex);
}
