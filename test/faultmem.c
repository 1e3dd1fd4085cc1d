/*
** faultmem.c -- allocation and mapping failures on demand (test only).
**
** An LD_PRELOAD shim, build/faultmem.so, used by test/faults.test next to
** build/powerloss.so (which injects the I/O faults).  Every failure prints
** "FAULT <kind> <n>" on stderr.
**
** malloc, calloc, realloc, posix_memalign.  Only calls made on behalf of
** the extension fail: those with a frame of an object whose file name
** holds FAULTMEM_LIB (default "lmdbjournal") on their stack -- the
** extension's own allocations (through sqlite3_malloc), LMDB's when the
** extension called it, anything on the writer thread.  The rest of the
** process (Tcl aborts when it cannot allocate) is never failed.  Counted
** among those calls of interest:
**
**     FAULTMEM_MALLOC_AT=K     the K-th fails (and FAULTMEM_MALLOC_COUNT-1
**     FAULTMEM_MALLOC_COUNT=N  more after it; default 1)
**     FAULTMEM_MALLOC_PROB=P   instead, from the K-th on, each fails with
**     FAULTMEM_SEED=S          probability P (0..1), at most N of them
**
** mmap.
**
**     FAULTMEM_MMAP_AT=K       the K-th (..K+N-1-th) mapping of a file whose
**     FAULTMEM_MMAP_COUNT=N    name ends in FAULTMEM_FILE (default
**                              "data.mdb") fails with ENOMEM: the first is
**                              LMDB's at open, the next ones at map growth
**     FAULTMEM_MMAP_MAX=BYTES  every mapping larger than BYTES fails with
**                              ENOMEM (an address space that is short, as
**                              under RLIMIT_AS)
**
** The real functions are the next ones (dlsym RTLD_NEXT: glibc's, or a
** sanitizer's when this shim is preloaded first -- ASAN_OPTIONS=
** verify_asan_link_order=0); what dlsym itself allocates comes from a
** static arena.  The stack is walked with backtrace(), primed at load.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int bResolving;

/* Allocations made while dlsym runs (never freed). */
static _Alignas(16) char aArena[8192];
static size_t nArena;
static void *fmArena(size_t n) {
  void *p;
  n = (n + 15) & ~(size_t)15;
  if (nArena + n > sizeof aArena) return 0;
  p = aArena + nArena;
  nArena += n;
  return p;
}
static int fmInArena(void *p) {
  return (char *)p >= aArena && (char *)p < aArena + sizeof aArena;
}

static void fmResolve(void) {
  if (real_malloc || bResolving) return;
  bResolving = 1;
  real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
  real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
  real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
  real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
  bResolving = 0;
}

static __thread int bInside; /* this thread is in the shim */
static int bReady;           /* constructor done */
static const char *zLib = "lmdbjournal";
static const char *zFile = "data.mdb";
static long long nMallocAt, nMallocCount = 1, nMalloc, nMallocFailed;
static double rProb;
static unsigned long long rnd = 88172645463325252ull;
static long long nMmapAt, nMmapCount = 1, nMmap;
static unsigned long long szMmapMax;
static uintptr_t aLo[4], aHi[4]; /* the library's loaded segments */
static int nSeg = -1;            /* -1: not found yet */

static void fmSay(const char *zKind, long long n) {
  char z[64];
  int k = snprintf(z, sizeof z, "FAULT %s %lld\n", zKind, n);
  if (write(2, z, (size_t)k) < 0) {
  }
}

static int fmPhdr(struct dl_phdr_info *pInfo, size_t n, void *pArg) {
  (void)n;
  (void)pArg;
  if (pInfo->dlpi_name == 0 || strstr(pInfo->dlpi_name, zLib) == 0) return 0;
  nSeg = 0;
  for (int i = 0; i < pInfo->dlpi_phnum && nSeg < 4; i++) {
    const ElfW(Phdr) *ph = &pInfo->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
    aLo[nSeg] = pInfo->dlpi_addr + ph->p_vaddr;
    aHi[nSeg] = aLo[nSeg] + ph->p_memsz;
    nSeg++;
  }
  return 1;
}

/* Whether the extension is on this thread's stack. */
static int fmOurs(void) {
  void *a[48];
  int n;
  if (nSeg < 0) dl_iterate_phdr(fmPhdr, 0);
  if (nSeg <= 0) return 0; /* not loaded yet */
  n = backtrace(a, 48);
  for (int i = 2; i < n; i++) {
    for (int s = 0; s < nSeg; s++) {
      if ((uintptr_t)a[i] >= aLo[s] && (uintptr_t)a[i] < aHi[s]) return 1;
    }
  }
  return 0;
}

/* Whether this allocation is one chosen to fail. */
static int fmMallocFails(void) {
  int bFail = 0;
  if (!bReady || nMallocAt <= 0 || bInside) return 0;
  bInside = 1;
  if (fmOurs()) {
    long long i = __atomic_add_fetch(&nMalloc, 1, __ATOMIC_RELAXED);
    if (i >= nMallocAt && nMallocFailed < nMallocCount) {
      if (rProb > 0) {
        unsigned long long r =
            __atomic_add_fetch(&rnd, 0x9e3779b97f4a7c15ull, __ATOMIC_RELAXED);
        r ^= r >> 31;
        r *= 0xbf58476d1ce4e5b9ull;
        r ^= r >> 27;
        bFail = (double)(r >> 11) / 9007199254740992.0 < rProb;
      } else {
        bFail = 1;
      }
    }
    if (bFail) {
      long long k = __atomic_add_fetch(&nMallocFailed, 1, __ATOMIC_RELAXED);
      fmSay("malloc", k);
    }
  }
  bInside = 0;
  if (bFail) errno = ENOMEM;
  return bFail;
}

void *malloc(size_t n) {
  fmResolve();
  if (!real_malloc) return fmArena(n);
  return fmMallocFails() ? 0 : real_malloc(n);
}
void *calloc(size_t n, size_t m) {
  fmResolve();
  if (!real_calloc) return fmArena(n * m); /* static: zeroed */
  return fmMallocFails() ? 0 : real_calloc(n, m);
}
void *realloc(void *p, size_t n) {
  fmResolve();
  if (fmInArena(p)) {
    void *q = malloc(n);
    if (q) memcpy(q, p, n < 256 ? n : 256); /* arena blocks are small */
    return q;
  }
  if (!real_realloc) return fmArena(n);
  return fmMallocFails() ? 0 : real_realloc(p, n);
}
void free(void *p) {
  fmResolve();
  if (p == 0 || fmInArena(p)) return;
  if (real_free) real_free(p);
}

static void *(*real_mmap)(void *, size_t, int, int, int, off_t);

/* Whether descriptor fd is a file whose name ends in zFile. */
static int fmIsFile(int fd) {
  char zLink[64], zPath[4096];
  ssize_t k;
  size_t m = strlen(zFile);
  if (fd < 0) return 0;
  snprintf(zLink, sizeof zLink, "/proc/self/fd/%d", fd);
  k = readlink(zLink, zPath, sizeof zPath - 1);
  if (k <= 0) return 0;
  zPath[k] = 0;
  return (size_t)k >= m && strcmp(zPath + k - m, zFile) == 0;
}

void *mmap(void *pAddr, size_t n, int prot, int flags, int fd, off_t off) {
  if (!real_mmap) {
    return (void *)syscall(SYS_mmap, pAddr, n, prot, flags, fd, off);
  }
  if (szMmapMax > 0 && n > szMmapMax) {
    fmSay("mmap-max", (long long)n);
    errno = ENOMEM;
    return MAP_FAILED;
  }
  if (nMmapAt > 0 && fmIsFile(fd)) {
    long long i = __atomic_add_fetch(&nMmap, 1, __ATOMIC_RELAXED);
    if (i >= nMmapAt && i < nMmapAt + nMmapCount) {
      fmSay("mmap", i);
      errno = ENOMEM;
      return MAP_FAILED;
    }
  }
  return real_mmap(pAddr, n, prot, flags, fd, off);
}
void *mmap64(void *, size_t, int, int, int, off_t)
    __attribute__((alias("mmap")));

/* FAULTMEM_REPORT=1: how many calls of interest there were, at exit. */
__attribute__((destructor)) static void fmFini(void) {
  if (getenv("FAULTMEM_REPORT")) fmSay("calls", nMalloc);
}

__attribute__((constructor)) static void fmInit(void) {
  const char *z;
  void *a[4];
  bInside = 1;
  backtrace(a, 4); /* loads libgcc_s now, not inside a failing malloc */
  real_mmap =
      (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
  if ((z = getenv("FAULTMEM_LIB")) && z[0]) zLib = z;
  if ((z = getenv("FAULTMEM_FILE")) && z[0]) zFile = z;
  if ((z = getenv("FAULTMEM_MALLOC_AT"))) nMallocAt = atoll(z);
  if ((z = getenv("FAULTMEM_MALLOC_COUNT"))) nMallocCount = atoll(z);
  if ((z = getenv("FAULTMEM_MALLOC_PROB"))) rProb = atof(z);
  if ((z = getenv("FAULTMEM_SEED"))) rnd ^= strtoull(z, 0, 10) * 2654435761u;
  if ((z = getenv("FAULTMEM_MMAP_AT"))) nMmapAt = atoll(z);
  if ((z = getenv("FAULTMEM_MMAP_COUNT"))) nMmapCount = atoll(z);
  if ((z = getenv("FAULTMEM_MMAP_MAX"))) szMmapMax = strtoull(z, 0, 10);
  bInside = 0;
  bReady = 1;
}
