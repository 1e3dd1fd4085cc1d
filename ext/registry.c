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
** and closes LMDB.
**
** Opening and closing.  Both can wait on another process: creating or
** upgrading a store takes LMDB's write lock, and stopping a writer drains
** its queue and merges the stage, which a stuck writer elsewhere (a
** SIGSTOPped process holding the write lock) delays without limit.  So the
** registry mutex guards only the list, LjEnv.nRef and LjEnv.eState, and is
** never held across LMDB work: an environment being opened or closed stays
** in the list marked LJ_ENV_OPENING or LJ_ENV_CLOSING (so it is never open
** twice in the process, not even while closing), the slow work runs
** without the mutex, and openers of the same directory wait on
** ljRegistryCond, up to their ljWaitBound: sync_timeout, at least 1 s
** (then SQLITE_BUSY).  Openers of other directories are not delayed at
** all.
**
** A close waits for the writer at most ljWaitBound (ljWriterStop); a
** writer that does not finish by then is left running, detached: it keeps
** the environment until its queue is drained and the stage merged, then
** closes it itself (ljEnvReap).  A process that exits meanwhile loses the
** queued work that was not acknowledged (async appends); nothing waits
** past the bound.
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
#define _GNU_SOURCE /* dladdr */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t ljRegistryMutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ljRegistryCond; /* an OPENING/CLOSING entry settled */
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
static void registryRemove(LjEnv *p);

static void forkPrepare(void) {
  pthread_mutex_lock(&ljRegistryMutex);
}
static void forkParent(void) {
  pthread_mutex_unlock(&ljRegistryMutex);
}
/* Monotonic, like every deadline (ljDeadline). */
static void registryCondInit(void) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&ljRegistryCond, &attr);
  pthread_condattr_destroy(&attr);
}
static void forkChild(void) {
  pthread_mutex_init(&ljRegistryMutex, 0);
  registryCondInit();
  ljRegistry = 0;
  __atomic_add_fetch(&ljForkGen, 1, __ATOMIC_RELEASE);
}
static void forkInstall(void) {
  registryCondInit();
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

/* Create and open the LMDB environment of p->zDir into *ppEnv. */
static int envLmdbOpen(LjEnv *p, unsigned flags, i64 szMap, MDB_env **ppEnv) {
  MDB_env *env = 0;
  int mrc = mdb_env_create(&env);
  if (mrc == 0) mdb_env_set_assert(env, envAssert); /* EINVAL: no asserts */
  if (mrc == 0) mrc = mdb_env_set_maxreaders(env, (unsigned)p->cfg.nMaxReaders);
  if (mrc == 0) mrc = mdb_env_set_maxdbs(env, (MDB_dbi)p->cfg.nMaxDbs);
  if (mrc == 0) mrc = mdb_env_set_mapsize(env, (size_t)szMap);
  if (mrc == 0) mrc = mdb_env_open(env, p->zDir, flags, 0664);
  if (mrc && env) {
    mdb_env_close(env);
    env = 0;
  }
  *ppEnv = env;
  return mrc;
}

/* The new environment's databases must get the handles the old one's had:
** the handles are copied everywhere (LjEnv.aDbi).  They do, being opened
** in the same order. */
static int envSameDbs(LjEnv *p, MDB_env *env) {
  MDB_txn *txn = 0;
  MDB_dbi dbi;
  int mrc = mdb_txn_begin(env, 0, MDB_RDONLY, &txn);
  for (int i = 0; i < LJ_DB_COUNT && mrc == 0; i++) {
    mrc = mdb_dbi_open(txn, azDbName[i], 0, &dbi);
    if (mrc == 0 && dbi != p->aDbi[i]) mrc = MDB_BAD_DBI;
  }
  /* Committing keeps the handles (an abort would close them). */
  if (mrc == 0) return mdb_txn_commit(txn);
  if (txn) mdb_txn_abort(txn);
  return mrc;
}

/*
** Replacing a failed LMDB environment.  LMDB gives up on an environment
** in two ways: a failed meta-page write (ENOSPC on a copy-on-write or
** thin-provisioned file system, EIO) marks it failed -- MDB_FATAL_ERROR in
** mdb.c: every later transaction of this process, read or write, fails
** with MDB_PANIC until it is closed -- and a failed mmap while growing the
** map leaves it without a map at all.  The file is fine either way (a
** failed commit's meta page was not written: LMDB writes the previous one
** back), so nothing acknowledged is lost: the environment is opened again,
** in place, under the gate held exclusively (no thread is inside LMDB) and
** only when no read transaction of this process is open (LjEnv.pReaders
** is empty).
**
** The old handle is set aside, not closed: closing it closes its
** lock-file descriptor, and with it every POSIX lock this process holds on
** that file -- the new handle's too -- after which another process opening
** the store would take it for unused and reset its reader table.  It is
** closed after the new one, when the store is closed (envFree); meanwhile
** it costs its descriptors and address space.
** Returns 0, MDB_PANIC while read transactions are open, or why opening
** failed (the old handle stays then).
*/
int ljEnvReplace(LjEnv *p) {
  MDB_env *env = 0;
  unsigned flags = 0;
  int mrc, bIdle;
  pthread_mutex_lock(&p->readerMutex);
  bIdle = p->pReaders == 0;
  pthread_mutex_unlock(&p->readerMutex);
  if (!bIdle) return MDB_PANIC;
  mdb_env_get_flags(p->env, &flags); /* NOTLS, and NOMETASYNC as set */
  mrc = envLmdbOpen(p, flags, p->szMap, &env);
  if (mrc == 0) mrc = envSameDbs(p, env);
  if (mrc) {
    if (env) mdb_env_close(env);
    return mrc;
  }
  {
    MDB_envinfo info;
    /* The old one is set aside, see above (beyond 8, simply kept open). */
    if (p->nOld < (int)(sizeof(p->apOld) / sizeof(p->apOld[0]))) {
      p->apOld[p->nOld++] = p->env;
    }
    p->env = env;
    mdb_env_info(env, &info);
    __atomic_store_n(&p->szMap, (i64)info.me_mapsize, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->mapGen, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&p->m.nReopens, 1, __ATOMIC_RELAXED);
  }
  return 0;
}

static void envFree(LjEnv *p) {
  if (p->env) mdb_env_close(p->env);
  /* After the current handle: their locks went with its lock file. */
  for (int i = 0; i < p->nOld; i++) mdb_env_close(p->apOld[i]);
  pthread_rwlock_destroy(&p->gate);
  pthread_mutex_destroy(&p->m.histMutex);
  pthread_mutex_destroy(&p->readerMutex);
  ljErrLogFree(p);
  ljConfigClear(&p->cfg);
  sqlite3_free(p->zDir);
  sqlite3_free(p);
}

/* Does the directory hold a store (an LMDB data file)? */
static int envExists(const char *zDir) {
  struct stat st;
  char *z = sqlite3_mprintf("%s/data.mdb", zDir);
  int bExists = z && stat(z, &st) == 0 && S_ISREG(st.st_mode);
  sqlite3_free(z);
  return bExists;
}

/*
** Creating a store failed before LMDB wrote its first pages (out of
** memory, a full disk): the empty data.mdb left behind would be called
** damaged by every later open (envCheckEmpty).  Remove it -- unless
** another process has the environment open (LMDB holds a shared lock on
** the first byte of lock.mdb while open): that one is creating it.
*/
static void envForgetEmpty(const char *zDir) {
  /* No allocation: this runs when memory may be short. */
  char zData[PATH_MAX + 16], zLock[PATH_MAX + 16];
  struct stat st;
  snprintf(zData, sizeof(zData), "%s/data.mdb", zDir);
  snprintf(zLock, sizeof(zLock), "%s/lock.mdb", zDir);
  if (stat(zData, &st) == 0 && st.st_size == 0) {
    int fd = open(zLock, O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      struct flock lk;
      memset(&lk, 0, sizeof(lk));
      lk.l_type = F_WRLCK;
      lk.l_whence = SEEK_SET;
      lk.l_len = 1;
      if (fcntl(fd, F_SETLK, &lk) == 0) unlink(zData);
      close(fd);
    } else if (errno == ENOENT) {
      unlink(zData);
    }
  }
}

/* A new, not yet open environment for directory pSt (its registry entry
** while it is being opened). */
static int envAlloc(const LjConfig *pCfg, const struct stat *pSt,
                    LjEnv **ppEnv) {
  LjEnv *p;
  pthread_rwlockattr_t attr;
  char aReal[PATH_MAX];
  *ppEnv = 0;
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
  p->eState = LJ_ENV_OPENING;
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
  *ppEnv = p;
  return SQLITE_OK;
}

/* Open LMDB and start the writer (and shipper) of environment p, without
** the registry mutex.  On failure LMDB is closed again (p->env is 0) and
** the caller frees p. */
static int envCreate(LjEnv *p, char **pzErr) {
  const LjConfig *pCfg = &p->cfg;
  int mrc;
  unsigned flags = MDB_NOTLS;
  int nDead = 0, bNew;

  /* Never MDB_NOSYNC: it may corrupt the store on an OS crash (writer.c,
  ** setDurability). */
  if (pCfg->eDurability != LJ_DUR_FULL) flags |= MDB_NOMETASYNC;
  {
    int rc = envCheckEmpty(p->zDir, pzErr);
    if (rc) return rc;
  }
  bNew = !envExists(p->zDir);
  mrc = envLmdbOpen(p, flags, pCfg->szMap, &p->env);
  if (mrc && bNew) envForgetEmpty(p->zDir);
  if (mrc) {
    *pzErr = sqlite3_mprintf("lmdb_journal: cannot open '%s': %s", pCfg->zPath,
                             mdb_strerror(mrc));
    if (p->env) mdb_env_close(p->env);
    p->env = 0;
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
      /* Without a wait bound: nothing was queued or staged yet, so the
      ** writer exits without touching LMDB. */
      ljWriterStop(p, -1);
      mdb_env_close(p->env);
      p->env = 0;
      return rc;
    }
  }
  return SQLITE_OK;
}

/*
** Opening a new environment can wait on another process: creating or
** upgrading the store's databases takes LMDB's write lock (envOpenDbs),
** and a data file another process is creating is waited for
** (envCheckEmpty).  So the opener runs envCreate on a thread of its own
** and waits for it up to sync_timeout (at least LJ_OPEN_MIN_US).  When it
** gives up (SQLITE_BUSY), the thread finishes alone: it releases the
** environment it opened (or frees it), and its registry entry, still
** LJ_ENV_OPENING until then, keeps other openers waiting, bounded too.
*/
#define LJ_OPEN_MIN_US 3000000 /* above envCheckEmpty's 2 s */
typedef struct EnvOpenJob EnvOpenJob;
struct EnvOpenJob {
  LjEnv *p;
  int rc;
  char *zErr;
  int bDone;      /* envCreate returned (registry mutex) */
  int bAbandoned; /* the opener gave up: the thread cleans up (ditto) */
};

/*
** A thread left running past a close or a failed open (a detached writer,
** an abandoned open) runs this library's code, and sqlite3_close unloads
** an extension once the last connection that loaded it closes.  So the
** first such thread pins the library for the life of the process
** (RTLD_NODELETE on the already loaded object).
*/
static pthread_once_t ljPinOnce = PTHREAD_ONCE_INIT;
static void pinInstall(void) {
  Dl_info info;
  if (dladdr((void *)ljEnvOpen, &info) && info.dli_fname) {
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  }
}
void ljPinLibrary(void) {
  pthread_once(&ljPinOnce, pinInstall);
}

static void *envOpenMain(void *pArg) {
  EnvOpenJob *pJob = (EnvOpenJob *)pArg;
  LjEnv *p = pJob->p;
  int rc = envCreate(p, &pJob->zErr), bAbandoned;
  pthread_mutex_lock(&ljRegistryMutex);
  pJob->rc = rc;
  pJob->bDone = 1;
  bAbandoned = pJob->bAbandoned;
  if (bAbandoned && rc == SQLITE_OK) {
    p->eState = LJ_ENV_OPEN; /* for ljEnvRelease, which closes it */
    p->nRef = 1;
  }
  pthread_cond_broadcast(&ljRegistryCond);
  pthread_mutex_unlock(&ljRegistryMutex);
  if (bAbandoned) {
    sqlite3_free(pJob->zErr);
    sqlite3_free(pJob);
    if (rc == SQLITE_OK) {
      ljEnvRelease(p);
    } else {
      registryRemove(p);
      envFree(p);
    }
  }
  return 0;
}

/* envCreate(p) on a thread of its own, waited for up to the bound above.
** *pbGone is set when the opener gave up: the thread owns p. */
static int envCreateTimed(LjEnv *p, int *pbGone, char **pzErr) {
  EnvOpenJob *pJob = sqlite3_malloc64(sizeof(*pJob));
  pthread_t thread;
  struct timespec dl;
  i64 usWait = p->cfg.usSyncTimeout;
  int e, rc;
  *pbGone = 0;
  if (pJob == 0) return SQLITE_NOMEM;
  memset(pJob, 0, sizeof(*pJob));
  pJob->p = p;
  e = pthread_create(&thread, 0, envOpenMain, pJob);
  if (e) {
    sqlite3_free(pJob);
    return envCreate(p, pzErr); /* no thread to spare: open here */
  }
  if (usWait < LJ_OPEN_MIN_US) usWait = LJ_OPEN_MIN_US;
  ljDeadline(&dl, usWait);
  pthread_mutex_lock(&ljRegistryMutex);
  while (!pJob->bDone) {
    if (pthread_cond_timedwait(&ljRegistryCond, &ljRegistryMutex, &dl) ==
            ETIMEDOUT &&
        !pJob->bDone) {
      pJob->bAbandoned = 1;
      *pbGone = 1;
      pthread_mutex_unlock(&ljRegistryMutex);
      ljPinLibrary();
      pthread_detach(thread);
      *pzErr = sqlite3_mprintf(
          "lmdb_journal: opening the store at '%s' did not finish within "
          "%lldms: another process may hold the store's write lock (stuck "
          "or stopped) while this one creates or upgrades its databases; "
          "try again later",
          p->zDir, usWait / 1000);
      return SQLITE_BUSY;
    }
  }
  pthread_mutex_unlock(&ljRegistryMutex);
  pthread_join(thread, 0); /* it is returning: out of this library's code */
  rc = pJob->rc;
  *pzErr = pJob->zErr;
  sqlite3_free(pJob);
  return rc;
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

/*
** Find the open environment of directory pSt (registry mutex held) and
** take a reference (*pp), or *pp = 0 when there is none.  An entry being
** opened or closed by another thread is waited for, up to ljWaitBound:
** that thread may itself wait on another process's write lock.
*/
static int registryFind(const struct stat *pSt, const LjConfig *pCfg,
                        LjEnv **pp, char **pzErr) {
  struct timespec dl;
  int bWaited = 0, bTimedOut = 0;
  *pp = 0;
  for (;;) {
    LjEnv *p;
    int rc;
    for (p = ljRegistry; p; p = p->pNext) {
      if (p->dev == pSt->st_dev && p->ino == pSt->st_ino) break;
    }
    if (p == 0) return SQLITE_OK;
    if (p->eState == LJ_ENV_OPEN) {
      rc = ljConfigEnvConflict(&p->cfg, pCfg, pzErr);
      if (rc == SQLITE_OK) {
        p->nRef++;
        *pp = p;
      }
      return rc;
    }
    if (bTimedOut) {
      *pzErr = sqlite3_mprintf(
          "lmdb_journal: the store at '%s' is being %s by another "
          "connection of this process, still after %lldms (sync_timeout, "
          "at least 1 s): another process may hold the store's write lock "
          "(stuck or stopped); try again later",
          p->zDir, p->eState == LJ_ENV_OPENING ? "opened" : "closed",
          ljWaitBound(pCfg) / 1000);
      return SQLITE_BUSY;
    }
    if (!bWaited) ljDeadline(&dl, ljWaitBound(pCfg));
    bWaited = 1;
    if (pthread_cond_timedwait(&ljRegistryCond, &ljRegistryMutex, &dl) ==
        ETIMEDOUT) {
      bTimedOut = 1; /* look once more, then give up */
    }
  }
}

/* Take environment p out of the registry (closed, or never opened) and
** wake whoever waits for its directory. */
static void registryRemove(LjEnv *p) {
  LjEnv **pp;
  pthread_mutex_lock(&ljRegistryMutex);
  for (pp = &ljRegistry; *pp; pp = &(*pp)->pNext) {
    if (*pp == p) {
      *pp = p->pNext;
      break;
    }
  }
  pthread_cond_broadcast(&ljRegistryCond);
  pthread_mutex_unlock(&ljRegistryMutex);
}

int ljEnvOpen(const LjConfig *pCfg, int bCreate, LjEnv **ppEnv, char **pzErr) {
  struct stat st;
  LjEnv *p = 0, *pNew = 0;
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
  rc = registryFind(&st, pCfg, &p, pzErr);
  if (rc == SQLITE_OK && p == 0) {
    /* Listed as LJ_ENV_OPENING before LMDB is opened, without the mutex. */
    rc = envAlloc(pCfg, &st, &pNew);
    if (rc == SQLITE_OK) {
      pNew->pNext = ljRegistry;
      ljRegistry = pNew;
    }
  }
  pthread_mutex_unlock(&ljRegistryMutex);
  if (pNew) {
    int bGone;
    rc = envCreateTimed(pNew, &bGone, pzErr);
    if (bGone) return rc; /* pNew belongs to the opening thread now */
    if (rc) {
      registryRemove(pNew);
      envFree(pNew);
      return rc;
    }
    pthread_mutex_lock(&ljRegistryMutex);
    pNew->eState = LJ_ENV_OPEN;
    pNew->nRef = 1;
    pthread_cond_broadcast(&ljRegistryCond);
    pthread_mutex_unlock(&ljRegistryMutex);
    p = pNew;
  }
  if (rc == SQLITE_OK) *ppEnv = p;
  return rc;
}

/* The last close: marked closing, the writer stopped without the registry
** mutex (see the top of this file). */
void ljEnvRelease(LjEnv *p) {
  if (p == 0 || ljEnvForked(p)) return; /* the parent's: left alone */
  pthread_mutex_lock(&ljRegistryMutex);
  if (--p->nRef > 0) {
    pthread_mutex_unlock(&ljRegistryMutex);
    return;
  }
  p->eState = LJ_ENV_CLOSING;
  pthread_mutex_unlock(&ljRegistryMutex);
  ljShipStop(p);
  if (ljWriterStop(p, ljWaitBound(&p->cfg))) ljEnvReap(p);
  /* else the writer, detached, calls ljEnvReap when it is done */
}

void ljEnvReap(LjEnv *p) {
  /* LMDB closed before the entry goes: the directory may then be opened
  ** again. */
  if (p->env) mdb_env_close(p->env);
  p->env = 0;
  registryRemove(p);
  envFree(p);
}
