/*
** powerloss.c -- simulated power loss for LMDB's data file (test only).
**
** Built twice (Makefile): as an LD_PRELOAD shim, build/powerloss.so, and as
** the tool build/powerloss-apply.
**
** The shim.  It follows every descriptor opened on a file whose name ends
** in POWERLOSS_FILE (default "data.mdb") and, before letting a write
** (write, pwrite, writev, pwritev) through, reads the bytes it will replace
** -- the pre-image, widened to whole 512-byte sectors -- through a
** read-only descriptor of its own.  fsync and fdatasync of any descriptor
** of the file forget everything recorded (it is on disk); a write through
** an O_SYNC/O_DSYNC descriptor is recorded as synced at once.  At a chosen
** point it appends what it recorded since the last sync to POWERLOSS_LOG
** (fsync'd) and kills its process with SIGKILL:
**
**     POWERLOSS_AT=K    before the K-th write or sync of the file
**     POWERLOSS_MS=T    T ms after the process started (a timer thread)
**
** Injected faults (same shim, no log needed):
**
**     POWERLOSS_FAULT=eio     the K-th fsync/fdatasync of the file fails
**                             with EIO (without syncing)
**     POWERLOSS_FAULT=enospc  the K-th write of the file fails with ENOSPC
**                             (nothing written)
**     POWERLOSS_FAULT=eiowrite  the K-th write fails with EIO (nothing
**                             written): a failing device
**     POWERLOSS_FAULT_AT=K    (default 1), POWERLOSS_FAULT_COUNT=N: that
**                             many consecutive calls fail (default 1)
**     POWERLOSS_FAULT_DSYNC=1 only writes through an O_SYNC/O_DSYNC
**                             descriptor count (LMDB's meta-page writes
**                             with durability=full)
**     POWERLOSS_FAULT_FILE=F  instead of AT and COUNT: every call fails
**                             while the file F exists (a test switches the
**                             fault on and off)
**
** Each failure prints "FAULT <kind> <n>" on stderr.
**
**     POWERLOSS_KILL_AFTER_DSYNC=K  the K-th write through an O_SYNC/O_DSYNC
**                             descriptor goes through, then the process
**                             kills itself with SIGKILL before the call
**                             returns: with durability=full that is a
**                             commit's meta page, on the file, that LMDB
**                             never got to publish in its lock file
**                             (prints "KILLED after dsync write K")
**
** Writes are not buffered: LMDB (without MDB_WRITEMAP) reads its own pages
** back through a read-only map, so each write must reach the page cache at
** once.  Instead the tool rolls back what "did not make it" afterwards.
** sync_file_range and msync are not counted as syncs (neither promises
** durability of the file's data for LMDB's use); mmap'd writes
** (MDB_WRITEMAP) are not seen at all -- the extension does not use them.
**
** The tool.
**
**     build/powerloss-apply DATAFILE LOG SEED
**
** For every sector written since the last sync it picks, at random, which
** version survived the power loss: the synced one, the one after any of
** the later writes, or the last -- never one older than a synced write.
** Each sector is chosen independently, so later writes land out of order
** and a page written whole may be torn at a sector boundary.  Sectors
** past the old end of the file roll back to zeros.  It prints the sectors
** it considered and rolled back.
**
** Log format: records of { u64 off; u64 len; u64 flags; byte pre[len]; }
** (off and len sector-aligned; flags 1 = synced write, no pre-image),
** the file's records in write order.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SECTOR 512

typedef struct PlRec PlRec;
struct PlRec {
  uint64_t off, len, flags;
  unsigned char *pre; /* len bytes, or 0 for a synced write */
};

#ifndef POWERLOSS_TOOL
/**************************************************************************
** The shim
*/
#define MAXFD 4096
static pthread_mutex_t plMutex = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static char aTracked[MAXFD]; /* 1 tracked, 2 tracked and O_DSYNC */
static int fdRead = -1;      /* our own read-only descriptor of the file */
static PlRec *aRec;
static size_t nRec, nRecAlloc;
static long long nOps, nCrashAt;
static const char *zMatch = "data.mdb";
static const char *zLog;
static int eFault; /* 0, 1 eio (fsync), 2 enospc, 3 eiowrite */
static long long nFaultAt = 1, nFaultCount = 1, nFaultSync, nFaultWrite;
static int bFaultDsync;
static const char *zFaultFile;
static long long nKillDsync, nDsync;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);

static void *plSym(const char *z) {
  void *p = dlsym(RTLD_NEXT, z);
  if (!p) abort();
  return p;
}

static void plCrash(void);

static void *plTimer(void *pArg) {
  long ms = (long)(intptr_t)pArg;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  pthread_mutex_lock(&plMutex);
  plCrash();
  return 0;
}

__attribute__((constructor)) static void plInit(void) {
  const char *z;
  real_write = plSym("write");
  real_pwrite = plSym("pwrite");
  real_writev = plSym("writev");
  real_pwritev = plSym("pwritev");
  real_fsync = plSym("fsync");
  real_fdatasync = plSym("fdatasync");
  real_open = plSym("open");
  real_openat = plSym("openat");
  real_close = plSym("close");
  if ((z = getenv("POWERLOSS_FILE")) && z[0]) zMatch = z;
  zLog = getenv("POWERLOSS_LOG");
  if ((z = getenv("POWERLOSS_AT"))) nCrashAt = atoll(z);
  if ((z = getenv("POWERLOSS_FAULT"))) {
    eFault = strcmp(z, "eio") == 0        ? 1
             : strcmp(z, "enospc") == 0   ? 2
             : strcmp(z, "eiowrite") == 0 ? 3
                                          : 0;
  }
  if ((z = getenv("POWERLOSS_FAULT_AT"))) nFaultAt = atoll(z);
  if ((z = getenv("POWERLOSS_FAULT_COUNT"))) nFaultCount = atoll(z);
  if ((z = getenv("POWERLOSS_FAULT_DSYNC"))) bFaultDsync = atoi(z);
  if ((z = getenv("POWERLOSS_FAULT_FILE")) && z[0]) zFaultFile = z;
  if ((z = getenv("POWERLOSS_KILL_AFTER_DSYNC"))) nKillDsync = atoll(z);
  if ((z = getenv("POWERLOSS_MS")) && atol(z) > 0) {
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_create(&t, &a, plTimer, (void *)(intptr_t)atol(z));
  }
}

static int plMatches(const char *zPath) {
  size_t n = strlen(zPath), m = strlen(zMatch);
  return (zLog || eFault || nKillDsync) && n >= m &&
         strcmp(zPath + n - m, zMatch) == 0;
}

static void plTrack(int fd, const char *zPath, int flags) {
  if (fd < 0 || fd >= MAXFD || !plMatches(zPath)) return;
  pthread_mutex_lock(&plMutex);
  aTracked[fd] = (flags & (O_DSYNC | O_SYNC)) ? 2 : 1;
  if (fdRead < 0) fdRead = real_open(zPath, O_RDONLY | O_CLOEXEC);
  pthread_mutex_unlock(&plMutex);
}

static int plIsTracked(int fd) {
  return fd >= 0 && fd < MAXFD && aTracked[fd];
}

static void plWriteAll(int fd, const void *p, size_t n) {
  const char *z = p;
  while (n > 0) {
    ssize_t k = real_write(fd, z, n);
    if (k <= 0) return;
    z += k;
    n -= (size_t)k;
  }
}

/* Append the records to the log, sync it, and die (mutex held). */
static void plCrash(void) {
  int fd = real_open(zLog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  size_t i;
  for (i = 0; fd >= 0 && i < nRec; i++) {
    uint64_t h[3] = {aRec[i].off, aRec[i].len, aRec[i].flags};
    plWriteAll(fd, h, sizeof h);
    if (aRec[i].pre) plWriteAll(fd, aRec[i].pre, aRec[i].len);
  }
  if (fd >= 0) real_fsync(fd);
  kill(getpid(), SIGKILL);
  for (;;) pause();
}

/* Count an operation on the file; crash when it is the chosen one. */
static void plOp(void) {
  if (nCrashAt > 0 && ++nOps >= nCrashAt) plCrash();
}

/* Whether this sync (bSync) or write of descriptor fd is one chosen to
** fail (mutex held). */
static int plFault(int fd, int bSync, long long *pn) {
  static const char *const azKind[] = {"", "eio", "enospc", "eiowrite"};
  char z[64];
  int n;
  if (eFault == 0 || (eFault == 1) != bSync) return 0;
  if (bFaultDsync && !bSync && aTracked[fd] != 2) return 0;
  ++*pn;
  if (zFaultFile) {
    struct stat st;
    if (stat(zFaultFile, &st) != 0) return 0;
  } else if (*pn < nFaultAt || *pn >= nFaultAt + nFaultCount) {
    return 0;
  }
  n = snprintf(z, sizeof z, "FAULT %s %lld\n", azKind[eFault], *pn);
  real_write(2, z, (size_t)n);
  errno = eFault == 2 ? ENOSPC : EIO;
  return 1;
}

/* After a write of descriptor fd went through (mutex held). */
static void plWrote(int fd) {
  char z[64];
  int n;
  if (nKillDsync > 0 && aTracked[fd] == 2 && ++nDsync == nKillDsync) {
    n = snprintf(z, sizeof z, "KILLED after dsync write %lld\n", nDsync);
    real_write(2, z, (size_t)n);
    kill(getpid(), SIGKILL);
    for (;;) pause();
  }
}

static void plForget(void) {
  size_t i;
  for (i = 0; i < nRec; i++) free(aRec[i].pre);
  nRec = 0;
}

/* Record the pre-image of [off, off+n) (mutex held). */
static void plRecord(int fd, off_t off, size_t n) {
  PlRec r;
  uint64_t lo = (uint64_t)off / SECTOR * SECTOR;
  uint64_t hi = ((uint64_t)off + n + SECTOR - 1) / SECTOR * SECTOR;
  if (n == 0) return;
  if (nRec == nRecAlloc) {
    size_t nNew = nRecAlloc ? nRecAlloc * 2 : 256;
    PlRec *a = realloc(aRec, nNew * sizeof *a);
    if (!a) abort();
    aRec = a;
    nRecAlloc = nNew;
  }
  r.off = lo;
  r.len = hi - lo;
  r.flags = aTracked[fd] == 2;
  r.pre = 0;
  if (!r.flags) {
    uint64_t got = 0;
    r.pre = calloc(1, r.len); /* zeros past the end of the file */
    if (!r.pre) abort();
    while (got < r.len) {
      ssize_t k = pread(fdRead, r.pre + got, r.len - got, (off_t)(lo + got));
      if (k <= 0) break;
      got += (uint64_t)k;
    }
  }
  aRec[nRec++] = r;
}

static size_t plIovLen(const struct iovec *a, int n) {
  size_t t = 0;
  int i;
  for (i = 0; i < n; i++) t += a[i].iov_len;
  return t;
}

int open(const char *zPath, int flags, ...) {
  mode_t mode = 0;
  int fd;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  if (!real_open) plInit();
  fd = real_open(zPath, flags, mode);
  plTrack(fd, zPath, flags);
  return fd;
}
int open64(const char *zPath, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *zPath, int flags, ...) {
  mode_t mode = 0;
  int fd;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  if (!real_openat) plInit();
  fd = real_openat(dirfd, zPath, flags, mode);
  plTrack(fd, zPath, flags);
  return fd;
}
int openat64(int, const char *, int, ...) __attribute__((alias("openat")));

int close(int fd) {
  if (plIsTracked(fd)) {
    pthread_mutex_lock(&plMutex);
    aTracked[fd] = 0;
    pthread_mutex_unlock(&plMutex);
  }
  return real_close(fd);
}

ssize_t pwrite(int fd, const void *p, size_t n, off_t off) {
  ssize_t rc;
  if (!plIsTracked(fd)) return real_pwrite(fd, p, n, off);
  pthread_mutex_lock(&plMutex);
  plOp();
  if (plFault(fd, 0, &nFaultWrite)) {
    pthread_mutex_unlock(&plMutex);
    return -1;
  }
  plRecord(fd, off, n);
  rc = real_pwrite(fd, p, n, off);
  if (rc > 0) plWrote(fd);
  pthread_mutex_unlock(&plMutex);
  return rc;
}
ssize_t pwrite64(int, const void *, size_t, off_t)
    __attribute__((alias("pwrite")));

ssize_t pwritev(int fd, const struct iovec *a, int n, off_t off) {
  ssize_t rc;
  if (!plIsTracked(fd)) return real_pwritev(fd, a, n, off);
  pthread_mutex_lock(&plMutex);
  plOp();
  if (plFault(fd, 0, &nFaultWrite)) {
    pthread_mutex_unlock(&plMutex);
    return -1;
  }
  plRecord(fd, off, plIovLen(a, n));
  rc = real_pwritev(fd, a, n, off);
  if (rc > 0) plWrote(fd);
  pthread_mutex_unlock(&plMutex);
  return rc;
}
ssize_t pwritev64(int, const struct iovec *, int, off_t)
    __attribute__((alias("pwritev")));

ssize_t write(int fd, const void *p, size_t n) {
  ssize_t rc;
  if (!plIsTracked(fd)) return real_write(fd, p, n);
  pthread_mutex_lock(&plMutex);
  plOp();
  if (plFault(fd, 0, &nFaultWrite)) {
    pthread_mutex_unlock(&plMutex);
    return -1;
  }
  plRecord(fd, lseek(fd, 0, SEEK_CUR), n);
  rc = real_write(fd, p, n);
  if (rc > 0) plWrote(fd);
  pthread_mutex_unlock(&plMutex);
  return rc;
}

ssize_t writev(int fd, const struct iovec *a, int n) {
  ssize_t rc;
  if (!plIsTracked(fd)) return real_writev(fd, a, n);
  pthread_mutex_lock(&plMutex);
  plOp();
  if (plFault(fd, 0, &nFaultWrite)) {
    pthread_mutex_unlock(&plMutex);
    return -1;
  }
  plRecord(fd, lseek(fd, 0, SEEK_CUR), plIovLen(a, n));
  rc = real_writev(fd, a, n);
  if (rc > 0) plWrote(fd);
  pthread_mutex_unlock(&plMutex);
  return rc;
}

static int plSync(int fd, int (*xSync)(int)) {
  int rc;
  if (!plIsTracked(fd)) return xSync(fd);
  pthread_mutex_lock(&plMutex);
  plOp();
  if (plFault(fd, 1, &nFaultSync)) {
    pthread_mutex_unlock(&plMutex);
    return -1;
  }
  rc = xSync(fd);
  if (rc == 0) plForget();
  pthread_mutex_unlock(&plMutex);
  return rc;
}
int fsync(int fd) {
  return plSync(fd, real_fsync);
}
int fdatasync(int fd) {
  return plSync(fd, real_fdatasync);
}

#else
/**************************************************************************
** The tool
*/
static int readAll(FILE *f, void *p, size_t n) {
  return fread(p, 1, n, f) == n;
}

int main(int argc, char **argv) {
  FILE *f;
  int fd;
  PlRec *aRec = 0;
  size_t nRec = 0, nAlloc = 0, i;
  uint64_t maxSec = 0, s;
  long nSec = 0, nBack = 0;
  unsigned long long rnd;
  if (argc != 4) {
    fprintf(stderr, "usage: %s DATAFILE LOG SEED\n", argv[0]);
    return 2;
  }
  rnd = strtoull(argv[3], 0, 10) * 6364136223846793005ull +
        1442695040888963407ull;
  f = fopen(argv[2], "rb");
  if (!f) {
    printf("0 0\n"); /* nothing written since the last sync */
    return 0;
  }
  for (;;) {
    uint64_t h[3];
    PlRec r;
    if (!readAll(f, h, sizeof h)) break;
    r.off = h[0];
    r.len = h[1];
    r.flags = h[2];
    r.pre = 0;
    if (!r.flags) {
      r.pre = malloc(r.len);
      if (!r.pre || !readAll(f, r.pre, r.len)) break;
    }
    if (nRec == nAlloc) {
      nAlloc = nAlloc ? nAlloc * 2 : 256;
      aRec = realloc(aRec, nAlloc * sizeof *aRec);
      if (!aRec) return 1;
    }
    aRec[nRec++] = r;
    if ((r.off + r.len) / SECTOR > maxSec) maxSec = (r.off + r.len) / SECTOR;
  }
  fclose(f);
  fd = open(argv[1], O_WRONLY);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  /* Per sector: its writes in order w_0..w_{m-1}; version k (0..m) is the
  ** content before w_k (k < m: w_k's pre-image) or the current one.  A
  ** synced write w_j bounds k from below by j+1. */
  for (s = 0; s < maxSec; s++) {
    size_t aIdx[64];
    size_t m = 0, lo = 0, k;
    for (i = 0; i < nRec; i++) {
      if (aRec[i].off / SECTOR <= s &&
          s < (aRec[i].off + aRec[i].len) / SECTOR) {
        if (aRec[i].flags) {
          m = 0; /* versions before a synced write cannot come back */
          lo = 0;
        } else if (m < 64) {
          aIdx[m++] = i;
        }
      }
    }
    if (m == 0) continue;
    nSec++;
    rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
    k = lo + (size_t)((rnd >> 33) % (m + 1));
    if (k < m) {
      PlRec *r = &aRec[aIdx[k]];
      if (pwrite(fd, r->pre + (s * SECTOR - r->off), SECTOR,
                 (off_t)(s * SECTOR)) != SECTOR) {
        perror("pwrite");
        return 1;
      }
      nBack++;
    }
  }
  fsync(fd);
  close(fd);
  for (i = 0; i < nRec; i++) free(aRec[i].pre);
  free(aRec);
  printf("%ld %ld\n", nSec, nBack);
  return 0;
}
#endif
