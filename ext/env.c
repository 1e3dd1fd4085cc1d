/*
** env.c -- working on an open environment: the one mapping of LMDB errors
** to SQLite, the gate that makes map growth safe, map growth itself, and
** read transactions (begun, and tracked for health's reader age).
**
** What the gate is and why: registry.c (threading model); the lock order:
** internal.h.
*/
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/*
** The one place where LMDB and errno codes become SQLite codes.
*/
int ljMdbToSqlite(int mrc) {
  switch (mrc) {
    case 0: return SQLITE_OK;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
    case MDB_DBS_FULL:
    case ENOSPC: return SQLITE_FULL;
    case MDB_READERS_FULL:
    case EAGAIN:
    case EBUSY: return SQLITE_BUSY;
    case MDB_KEYEXIST: return SQLITE_CONSTRAINT;
    case MDB_NOTFOUND: return SQLITE_NOTFOUND;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE: return SQLITE_CORRUPT;
    case ENOMEM: return SQLITE_NOMEM;
    case EACCES:
    case EPERM: return SQLITE_PERM;
    case EROFS: return SQLITE_READONLY;
    case EIO:
    case LJ_MDB_SYNC_EIO:
    case MDB_PANIC: /* LMDB gave up on the environment after an I/O error */
      return SQLITE_IOERR;
    case ENOENT:
    case ENOTDIR: return SQLITE_CANTOPEN;
    default: return SQLITE_ERROR;
  }
}

char *ljMdbErr(const char *zOp, int mrc) {
  if (mrc == LJ_MDB_SYNC_EIO) {
    return sqlite3_mprintf(
        "%s failed: Input/output error writing or syncing the data file: "
        "the batch was not committed; data written since the last "
        "successful sync may not be on disk (see docs/operations.md)",
        zOp);
  }
  return sqlite3_mprintf("%s failed: %s", zOp, mdb_strerror(mrc));
}

/*
** Which failures of a write transaction are worth trying again at once.
** Not EIO: once fsync has failed, the kernel may have dropped the dirty
** pages it could not write (and marked them clean), so a second fsync
** that succeeds proves nothing about them -- acknowledging the batch
** after it would be a lie.  ENOSPC is: nothing was committed (LMDB writes
** the meta page last) and freed space lets the same batch through.
*/
int ljMdbTransient(int mrc) {
  return mrc == EAGAIN || mrc == EINTR || mrc == EBUSY || mrc == ENOMEM ||
         mrc == ENOSPC || mrc == MDB_READERS_FULL;
}

/* Less free space than this on the store's file system makes an EIO from
** a write transaction a full disk. */
#define LJ_FULL_SLACK ((i64)1 << 20)

/*
** What really happened when a write transaction failed with mrc.  LMDB
** reports a short write (the disk filled in the middle of writing the
** batch's pages) as EIO -- "short write, filesystem full?" in mdb.c, no
** errno -- so an EIO while the file system is (nearly) full is ENOSPC:
** SQLITE_FULL, retried, and appends resume once space is freed.  Any
** other EIO comes from fsync (or a failing device): LJ_MDB_SYNC_EIO,
** never retried (ljMdbTransient).
*/
int ljEnvCause(LjEnv *p, int mrc) {
  struct statvfs sv;
  if (mrc != EIO) return mrc;
  if (statvfs(p->zDir, &sv) == 0) {
    /* root may write into the blocks reserved for it */
    unsigned long long nFree = geteuid() == 0 ? sv.f_bfree : sv.f_bavail;
    if ((i64)(nFree * sv.f_frsize) < LJ_FULL_SLACK) return ENOSPC;
  }
  return LJ_MDB_SYNC_EIO;
}

void ljReaderTrack(LjEnv *p, LjReaderSlot *pSlot) {
  pSlot->usStart = ljNowUs();
  pthread_mutex_lock(&p->readerMutex);
  pSlot->pPrev = 0;
  pSlot->pNext = p->pReaders;
  if (p->pReaders) p->pReaders->pPrev = pSlot;
  p->pReaders = pSlot;
  pthread_mutex_unlock(&p->readerMutex);
}

void ljReaderUntrack(LjEnv *p, LjReaderSlot *pSlot) {
  pthread_mutex_lock(&p->readerMutex);
  if (pSlot->pPrev)
    pSlot->pPrev->pNext = pSlot->pNext;
  else
    p->pReaders = pSlot->pNext;
  if (pSlot->pNext) pSlot->pNext->pPrev = pSlot->pPrev;
  pthread_mutex_unlock(&p->readerMutex);
}

i64 ljOldestReaderUs(LjEnv *p) {
  i64 usOldest = 0, now = ljNowUs();
  pthread_mutex_lock(&p->readerMutex);
  for (LjReaderSlot *s = p->pReaders; s; s = s->pNext) {
    if (now - s->usStart > usOldest) usOldest = now - s->usStart;
  }
  pthread_mutex_unlock(&p->readerMutex);
  return usOldest;
}

void ljGateEnter(LjEnv *p) {
  pthread_rwlock_rdlock(&p->gate);
}
void ljGateLeave(LjEnv *p) {
  pthread_rwlock_unlock(&p->gate);
}

/* The gate's exclusive side is waited for at most sync_timeout: the writer
** holds the gate shared while it waits for LMDB's write lock, which a
** stuck writer in another process may hold forever (readers queue behind
** the wait). */
static void envDeadline(LjEnv *p, struct timespec *pDl) {
  clock_gettime(CLOCK_REALTIME, pDl);
  pDl->tv_sec += p->cfg.usSyncTimeout / 1000000;
  pDl->tv_nsec += (long)(p->cfg.usSyncTimeout % 1000000) * 1000;
  if (pDl->tv_nsec >= 1000000000) {
    pDl->tv_sec++;
    pDl->tv_nsec -= 1000000000;
  }
}

/*
** Whether the data file can be mapped at szNew bytes (gate held
** exclusively).  LMDB grows the map by unmapping it and mapping it again;
** if that second mmap fails, the environment is left with no map at all
** and the next access crashes.  Mapping the file once more at the new size
** while the old map is still there proves the address space is there: with
** the old map gone, LMDB's mapping needs less.
*/
static int envCanMap(LjEnv *p, i64 szNew) {
  mdb_filehandle_t fd;
  void *pMap;
  if (mdb_env_get_fd(p->env, &fd)) return 0; /* LMDB reports its error */
  pMap = mmap(0, (size_t)szNew, PROT_READ, MAP_SHARED, fd, 0);
  if (pMap == MAP_FAILED) return errno ? errno : ENOMEM;
  munmap(pMap, (size_t)szNew);
  return 0;
}

/* LMDB's remap failed anyway (another thread took the address space in
** between): the environment has no map.  Open it again (at the old size)
** if no read transaction of this process is open.  Otherwise those
** transactions' pointers lead nowhere, and if opening fails nothing can
** be read: the process cannot go on. */
static int envRemapFailed(LjEnv *p, int mrc) {
  int mrc2 = ljEnvReplace(p);
  if (mrc2 == 0) return mrc;
  sqlite3_log(SQLITE_NOMEM,
              "lmdbjournal: aborting: growing the map of %s failed", p->zDir);
  fprintf(stderr,
          "lmdbjournal: growing the map of %s failed (%s) and %s: "
          "aborting\n",
          p->zDir, mdb_strerror(mrc),
          mrc2 == MDB_PANIC ? "read transactions are open"
                            : "opening the store again failed");
  abort();
}

int ljEnvResize(LjEnv *p, i64 szNew) {
  int mrc;
  MDB_envinfo info;
  struct timespec dl;
  envDeadline(p, &dl);
  if (pthread_rwlock_timedwrlock(&p->gate, &dl)) return EBUSY;
  mdb_env_info(p->env, &info);
  if (szNew > 0 && (i64)info.me_mapsize >= szNew) {
    /* Another thread grew it while we waited. */
    pthread_rwlock_unlock(&p->gate);
    return 0;
  }
  mrc = szNew > 0 ? envCanMap(p, szNew) : 0;
  if (mrc) {
    pthread_rwlock_unlock(&p->gate);
    return mrc;
  }
  mrc = mdb_env_set_mapsize(p->env, (size_t)(szNew > 0 ? szNew : 0));
  if (mrc) mrc = envRemapFailed(p, mrc);
  if (mrc == 0) {
    mdb_env_info(p->env, &info);
    __atomic_store_n(&p->szMap, (i64)info.me_mapsize, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->mapGen, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&p->m.nMapResizes, 1, __ATOMIC_RELAXED);
  }
  pthread_rwlock_unlock(&p->gate);
  return mrc;
}

/* Whether LMDB marked the environment failed (gate held). */
static int envFailed(LjEnv *p) {
  MDB_txn *txn = 0;
  int mrc = mdb_txn_begin(p->env, 0, MDB_RDONLY, &txn);
  if (mrc == 0) mdb_txn_abort(txn);
  return mrc == MDB_PANIC;
}

int ljEnvReopen(LjEnv *p) {
  int mrc = 0;
  struct timespec dl;
  envDeadline(p, &dl);
  if (pthread_rwlock_timedwrlock(&p->gate, &dl)) return MDB_PANIC;
  if (envFailed(p)) mrc = ljEnvReplace(p); /* else another thread did */
  pthread_rwlock_unlock(&p->gate);
  if (mrc) {
    sqlite3_log(SQLITE_IOERR,
                "lmdbjournal: the LMDB environment of %s failed and could "
                "not be opened again yet (%s); tried again at the next "
                "transaction",
                p->zDir,
                mrc == MDB_PANIC ? "read transactions of this process are open"
                                 : mdb_strerror(mrc));
  }
  return mrc;
}

int ljReadBegin(LjEnv *p, MDB_txn **ppTxn) {
  int nTry;
  int mrc = 0;
  for (nTry = 0; nTry < 8; nTry++) {
    mrc = mdb_txn_begin(p->env, 0, MDB_RDONLY, ppTxn);
    if (mrc == MDB_MAP_RESIZED) {
      ljGateLeave(p);
      mrc = ljEnvResize(p, 0);
      ljGateEnter(p);
      if (mrc) break;
    } else if (mrc == MDB_READERS_FULL) {
      if (ljReaderCheck(p) == 0) break;
    } else if (mrc == MDB_PANIC) {
      /* An earlier commit left the environment failed (registry.c,
      ** ljEnvReopen): open it again, when no read transaction of this
      ** process is open. */
      ljGateLeave(p);
      mrc = ljEnvReopen(p);
      ljGateEnter(p);
      if (mrc) break;
    } else {
      break;
    }
  }
  return mrc;
}

/* Clear the reader slots of dead processes: their snapshots would pin old
** pages, so the file would grow and the map fill.  Returns how many. */
int ljReaderCheck(LjEnv *p) {
  int nDead = 0;
  if (mdb_reader_check(p->env, &nDead) == 0 && nDead > 0) {
    __atomic_add_fetch(&p->m.nStaleReaders, (u64)nDead, __ATOMIC_RELAXED);
  }
  return nDead;
}

/*
** The oldest reader of any process, from LMDB's reader table: other
** processes' readers pin pages just as ours do, and only LMDB's table
** shows them.  Also how much it pins: the pages freed by the commits
** since its snapshot, which LMDB cannot reuse while it lives (freelist
** records are keyed by the id of the transaction that freed them).
*/
static int readerLine(const char *zMsg, void *pCtx) {
  LjOldReader *p = (LjOldReader *)pCtx;
  int pid;
  size_t tid;
  unsigned long long txnid;
  /* "%10d %zx %s\n": pid, thread, txnid ("-" when the slot is idle); the
  ** header line does not parse. */
  if (sscanf(zMsg, "%d %zx %llu", &pid, &tid, &txnid) != 3) return 0;
  p->nReaders++;
  if (!p->bFound || txnid < p->txnid) {
    p->bFound = 1;
    p->pid = pid;
    p->txnid = txnid;
  }
  return 0;
}

/* Bytes freed by transactions from iTxn on (gate held), from at most
** LJ_PIN_WALK_MAX freelist records. */
#define LJ_PIN_WALK_MAX 65536
static int readerPinned(LjEnv *p, u64 iTxn, i64 *pnPinned) {
  MDB_txn *txn = 0;
  MDB_cursor *cur = 0;
  MDB_stat st;
  MDB_val k, v;
  size_t id = (size_t)iTxn;
  u64 nPage = 0;
  int mrc;
  memset(&st, 0, sizeof(st));
  mrc = ljReadBegin(p, &txn);
  if (mrc == 0) mrc = mdb_stat(txn, 0, &st); /* dbi 0: the freelist */
  if (mrc == 0) mrc = mdb_cursor_open(txn, 0, &cur);
  k.mv_data = &id;
  k.mv_size = sizeof(id);
  if (mrc == 0) mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  /* Capped, health must stay cheap: past the cap it is a lower bound. */
  for (int n = 0; mrc == 0 && n < LJ_PIN_WALK_MAX; n++) {
    size_t nId;
    /* The value is an ID list: its count, then the page numbers. */
    if (v.mv_size >= sizeof(size_t)) {
      memcpy(&nId, v.mv_data, sizeof(nId));
      nPage += nId;
    }
    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  if (cur) mdb_cursor_close(cur);
  if (txn) mdb_txn_abort(txn);
  *pnPinned = (i64)nPage * (i64)st.ms_psize;
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}

int ljOldestReaderAll(LjEnv *p, LjOldReader *pOut) {
  MDB_envinfo info;
  int mrc;
  memset(pOut, 0, sizeof(*pOut));
  ljGateEnter(p);
  mrc = mdb_reader_list(p->env, readerLine, pOut);
  if (mrc >= 0) mrc = mdb_env_info(p->env, &info);
  if (mrc == 0 && pOut->bFound) {
    pOut->bThisProcess = pOut->pid == (int)getpid();
    pOut->ageTxns = (u64)info.me_last_txnid > pOut->txnid
                        ? (u64)info.me_last_txnid - pOut->txnid
                        : 0;
    mrc = readerPinned(p, pOut->txnid, &pOut->nPinned);
  }
  ljGateLeave(p);
  return mrc < 0 ? 0 : mrc;
}
