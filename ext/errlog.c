/*
** errlog.c -- the log of failed async writes: what journal_errors lists.
**
** An async append returns its seq before the writer commits it; when the
** commit fails (a sequence conflict with another process, a full store,
** an I/O error) nobody is waiting to be told.  The writer hands every
** event of such a request here (writer.c, reqLost), so that the process
** that made the append can learn which events were lost, one row each:
**
**     writer thread                          SQL threads
**     -------------                          -----------
**     batchFinish -> reqLost -> ljErrLogAdd  journal_errors: ljErrLogCopy
**                                            journal_errors_clear: ...Clear
**
** The log belongs to the environment (one per store per process), so
** every connection of the process sees the failures of all of them.
** Reading does not consume: an entry stays until journal_errors_clear
** removes it by id, so a reader that stops early, fails, or races
** another reader loses nothing (docs/api.md, journal_errors).
**
** The log keeps at most errors_max entries (config.c); a failure that
** does not fit is not kept but counted (metrics async_errors_dropped,
** and in journal_sync's message), the oldest entries stay.
**
** Locking: LjErrLog.mutex guards the log and its entries.  It is a leaf
** (internal.h, lock order): the writer takes it holding the writer
** mutex, and nothing is taken while it is held but the allocator.
*/
#include "internal.h"

#include <string.h>

void ljErrLogInit(LjErrLog *p) {
  memset(p, 0, sizeof(*p));
  pthread_mutex_init(&p->mutex, 0);
}

/* Unlink and free the entries with id <= iUpTo (mutex held). */
static i64 errLogDrop(LjErrLog *p, i64 iUpTo) {
  i64 n = 0;
  while (p->pFirst && p->pFirst->id <= iUpTo) {
    LjErrEntry *e = p->pFirst;
    p->pFirst = e->pNext;
    sqlite3_free(e);
    n++;
  }
  if (p->pFirst == 0) p->pLast = 0;
  p->nEntry -= n;
  return n;
}

void ljErrLogFree(LjEnv *pEnv) {
  LjErrLog *p = &pEnv->errLog;
  if (p->nEntry > 0) {
    sqlite3_log(SQLITE_WARNING,
                "lmdbjournal: %lld failed async writes of %s were never "
                "cleared from journal_errors",
                p->nEntry, pEnv->zDir);
  }
  errLogDrop(p, INT64_MAX);
  pthread_mutex_destroy(&p->mutex);
}

/* A new entry for event e (not linked). */
static LjErrEntry *errEntryNew(const LjEvent *e, int eKind, int rc,
                               const char *zErr, i64 tMs) {
  size_t nErr = strlen(zErr) + 1;
  LjErrEntry *p = sqlite3_malloc64(sizeof(*p) + (size_t)e->nActor + nErr);
  if (p == 0) return 0;
  memset(p, 0, sizeof(*p));
  p->seq = (i64)e->seq;
  p->tMs = tMs;
  p->rc = rc;
  p->eKind = eKind;
  p->nActor = e->nActor;
  memcpy(p->zActor, e->zActor, (size_t)e->nActor);
  p->zErr = &p->zActor[e->nActor];
  memcpy(p->zErr, zErr, nErr);
  return p;
}

i64 ljErrLogAdd(LjEnv *pEnv, const LjEvent *aEv, int nEv, int eKind, int rc,
                const char *zErr) {
  LjErrLog *p = &pEnv->errLog;
  i64 tMs = ljNowMs(), nDropped = 0;
  if (zErr == 0) zErr = sqlite3_errstr(rc);
  pthread_mutex_lock(&p->mutex);
  for (int i = 0; i < nEv; i++) {
    /* Ids count dropped failures too: a gap tells a reader some are
    ** missing between two entries. */
    i64 id = ++p->iLastId;
    LjErrEntry *e = p->nEntry < pEnv->cfg.nErrorsMax
                        ? errEntryNew(&aEv[i], eKind, rc, zErr, tMs)
                        : 0;
    if (e == 0) {
      nDropped++;
      continue;
    }
    e->id = id;
    if (p->pLast) {
      p->pLast->pNext = e;
    } else {
      p->pFirst = e;
    }
    p->pLast = e;
    p->nEntry++;
  }
  pthread_mutex_unlock(&p->mutex);
  __atomic_add_fetch(&pEnv->m.nAsyncErrors, (u64)nEv, __ATOMIC_RELAXED);
  if (nDropped) {
    __atomic_add_fetch(&pEnv->m.nAsyncDropped, (u64)nDropped, __ATOMIC_RELAXED);
  }
  return nDropped;
}

int ljErrLogCopy(LjEnv *pEnv, LjErrEntry ***paCopy, int *pn) {
  LjErrLog *p = &pEnv->errLog;
  LjErrEntry **a = 0;
  int n = 0, rc = SQLITE_OK;
  pthread_mutex_lock(&p->mutex);
  if (p->nEntry > 0) {
    a = sqlite3_malloc64(sizeof(LjErrEntry *) * (size_t)p->nEntry);
    if (a == 0) rc = SQLITE_NOMEM;
  }
  for (LjErrEntry *e = p->pFirst; e && rc == SQLITE_OK; e = e->pNext) {
    size_t nByte = sizeof(*e) + (size_t)e->nActor + strlen(e->zErr) + 1;
    LjErrEntry *c = sqlite3_malloc64(nByte);
    if (c == 0) {
      rc = SQLITE_NOMEM;
      break;
    }
    memcpy(c, e, nByte);
    c->pNext = 0;
    c->zErr = &c->zActor[c->nActor];
    a[n++] = c;
  }
  pthread_mutex_unlock(&p->mutex);
  if (rc) {
    ljErrLogCopyFree(a, n);
    a = 0;
    n = 0;
  }
  *paCopy = a;
  *pn = n;
  return rc;
}

void ljErrLogCopyFree(LjErrEntry **aCopy, int n) {
  for (int i = 0; i < n; i++) sqlite3_free(aCopy[i]);
  sqlite3_free(aCopy);
}

i64 ljErrLogClear(LjEnv *pEnv, i64 iUpTo) {
  LjErrLog *p = &pEnv->errLog;
  i64 n;
  pthread_mutex_lock(&p->mutex);
  n = errLogDrop(p, iUpTo);
  pthread_mutex_unlock(&p->mutex);
  return n;
}

i64 ljErrLogCount(LjEnv *pEnv) {
  LjErrLog *p = &pEnv->errLog;
  i64 n;
  pthread_mutex_lock(&p->mutex);
  n = p->nEntry;
  pthread_mutex_unlock(&p->mutex);
  return n;
}
