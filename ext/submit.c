/*
** submit.c -- the submitters' side of the writer (writer.c): the actor
** cache and seq reservation, clients, queueing requests and waiting for
** their tickets.  Runs on SQL threads; the writer thread never calls in
** here.  What tickets, reservations and epochs are: writer.c.
*/
#include "internal.h"

#include <stdlib.h>

#include <errno.h>
#include <string.h>
#include <time.h>

/**************************************************************************
** Actor cache.  Entries live until the environment closes; requests point
** at them.
*/
static u32 actorHash(const char *z, int n) {
  u32 h = 2166136261u;
  for (int i = 0; i < n; i++) h = (h ^ (u8)z[i]) * 16777619u;
  return h;
}

static LjActor *actorFind(LjWriter *w, const char *z, int n) {
  LjActor *p;
  if (w->nHash == 0) return 0;
  for (p = w->aHash[actorHash(z, n) & (w->nHash - 1)]; p; p = p->pHashNext) {
    if (p->nActor == n && memcmp(p->zActor, z, (size_t)n) == 0) return p;
  }
  return 0;
}

/* Insert a new entry (mutex held). */
static LjActor *actorInsert(LjWriter *w, const char *z, int n, u64 highest) {
  LjActor *p;
  u32 h;
  if (w->nActor >= w->nHash) {
    u32 nNew = w->nHash ? w->nHash * 2 : 256;
    LjActor **aNew = sqlite3_malloc64(sizeof(LjActor *) * nNew);
    if (aNew == 0) return 0;
    memset(aNew, 0, sizeof(LjActor *) * nNew);
    for (u32 i = 0; i < w->nHash; i++) {
      LjActor *pNext;
      for (p = w->aHash[i]; p; p = pNext) {
        pNext = p->pHashNext;
        h = actorHash(p->zActor, p->nActor) & (nNew - 1);
        p->pHashNext = aNew[h];
        aNew[h] = p;
      }
    }
    sqlite3_free(w->aHash);
    w->aHash = aNew;
    w->nHash = nNew;
  }
  p = sqlite3_malloc64(sizeof(LjActor) + (size_t)n);
  if (p == 0) return 0;
  memset(p, 0, sizeof(LjActor));
  p->reserved = highest;
  p->nActor = n;
  memcpy(p->zActor, z, (size_t)n);
  h = actorHash(z, n) & (w->nHash - 1);
  p->pHashNext = w->aHash[h];
  w->aHash[h] = p;
  w->nActor++;
  return p;
}

/* An actor's highest seq in the store, from a short read transaction. */
static int storeHighest(LjEnv *pEnv, const char *z, int n, u64 *pHighest,
                        char **pzErr) {
  MDB_txn *txn = 0;
  u64 num, floor;
  int mrc;
  ljGateEnter(pEnv);
  mrc = ljReadBegin(pEnv, &txn);
  if (mrc == 0) {
    mrc = ljActorLoad(pEnv, txn, (const u8 *)z, n, &num, pHighest, &floor);
    mdb_txn_abort(txn);
  }
  ljGateLeave(pEnv);
  if (mrc) {
    *pzErr = ljMdbErr("reading the actor registry", mrc);
    return ljMdbToSqlite(mrc);
  }
  return SQLITE_OK;
}

int ljActorGet(LjEnv *pEnv, const char *z, int n, LjActor **ppActor,
               char **pzErr) {
  LjWriter *w = pEnv->pWriter;
  LjActor *p;
  u64 highest = 0;
  int rc;
  pthread_mutex_lock(&w->mutex);
  p = actorFind(w, z, n);
  pthread_mutex_unlock(&w->mutex);
  if (p) {
    *ppActor = p;
    return SQLITE_OK;
  }
  rc = storeHighest(pEnv, z, n, &highest, pzErr);
  if (rc) return rc;
  pthread_mutex_lock(&w->mutex);
  p = actorFind(w, z, n);
  if (p == 0) p = actorInsert(w, z, n, highest);
  pthread_mutex_unlock(&w->mutex);
  if (p == 0) return SQLITE_NOMEM;
  *ppActor = p;
  return SQLITE_OK;
}

u64 ljActorReserved(LjEnv *pEnv, LjActor *pActor) {
  u64 h;
  pthread_mutex_lock(&pEnv->pWriter->mutex);
  h = pActor->reserved;
  pthread_mutex_unlock(&pEnv->pWriter->mutex);
  return h;
}

int ljHighestSeq(LjEnv *pEnv, const char *z, int n, i64 *piSeq, char **pzErr) {
  LjWriter *w = pEnv->pWriter;
  LjActor *p;
  u64 reserved = 0, stored = 0;
  int rc;
  /* The store counts other processes' appends; the cache counts this
  ** process's queued ones. */
  rc = storeHighest(pEnv, z, n, &stored, pzErr);
  pthread_mutex_lock(&w->mutex);
  p = actorFind(w, z, n);
  if (p) reserved = p->reserved;
  pthread_mutex_unlock(&w->mutex);
  *piSeq = (i64)(reserved > stored ? reserved : stored);
  return rc;
}

/**************************************************************************
** Clients
*/
LjClient *ljClientNew(LjEnv *pEnv, int eDurability, int eMode) {
  LjClient *p = sqlite3_malloc64(sizeof(*p));
  if (p) {
    memset(p, 0, sizeof(*p));
    p->pEnv = pEnv;
    p->eDurability = eDurability;
    p->eMode = eMode;
  }
  return p;
}

/*
** Wait (mutex held on entry and on return) until ticket t is processed or
** the deadline passes.  The wait itself is on the doneSeq futex, without
** the mutex: a batch often completes many waiters at once (group commit),
** and waking them through a condition variable would hand the mutex from
** one to the next, a context switch each, before the last could run.
*/
static int waitTicket(LjWriter *w, u64 t, i64 usTimeout) {
  i64 usEnd = ljNowUs() + usTimeout;
  int bSignal, rc = SQLITE_OK;
  if (w->iDoneTicket >= t) return SQLITE_OK;
  if (w->iFlushTicket < t) w->iFlushTicket = t;
  bSignal = w->eWait != LJ_W_BUSY;
  pthread_mutex_unlock(&w->mutex);
  if (bSignal) pthread_cond_signal(&w->condWork);
  __atomic_add_fetch(&w->nDoneWaiters, 1, __ATOMIC_SEQ_CST);
  for (;;) {
    u32 seq = __atomic_load_n(&w->doneSeq, __ATOMIC_SEQ_CST);
    i64 usLeft = usEnd - ljNowUs();
    if (__atomic_load_n(&w->iDoneTicket, __ATOMIC_ACQUIRE) >= t) break;
    if (usTimeout >= 0 && usLeft <= 0) {
      rc = SQLITE_BUSY;
      break;
    }
    ljFutexWait(&w->doneSeq, seq, usTimeout < 0 ? -1 : usLeft);
  }
  __atomic_sub_fetch(&w->nDoneWaiters, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_lock(&w->mutex);
  return rc && w->iDoneTicket < t ? SQLITE_BUSY : SQLITE_OK;
}

/*
** Close a client: wait for its queued requests (they point at it), while
** the writer makes progress: until ljWaitBound (sync_timeout, at least
** 1 s) after the oldest request in flight or queued was queued.  A
** writer stuck that long (another
** process holding the write lock) is not waited for: the client goes to
** the writer's orphans, freed once its requests are done, and they are
** written when the lock frees (if the process still runs).  So closing
** returns within that bound, at once when the writer is already stuck.
*/
void ljClientFree(LjClient *p) {
  LjWriter *w;
  i64 usTimeout;
  if (p == 0) return;
  if (ljEnvForked(p->pEnv)) {
    /* No writer in this process: nothing to wait for (registry.c). */
    sqlite3_free(p->zErr);
    sqlite3_free(p);
    return;
  }
  w = p->pEnv->pWriter;
  usTimeout = ljWaitBound(&p->pEnv->cfg);
  pthread_mutex_lock(&w->mutex);
  for (;;) {
    i64 usOldest = ljWriterOldestReq(w), usLeft;
    if (w->iDoneTicket >= p->iLastTicket) break;
    usLeft = (usOldest ? usOldest : ljNowUs()) + usTimeout - ljNowUs();
    if (usLeft <= 0) break;
    waitTicket(w, p->iLastTicket, usLeft);
  }
  if (w->iDoneTicket < p->iLastTicket) {
    p->pNextOrphan = w->pOrphans;
    w->pOrphans = p;
    pthread_mutex_unlock(&w->mutex);
    return;
  }
  pthread_mutex_unlock(&w->mutex);
  sqlite3_free(p->zErr);
  sqlite3_free(p);
}

void ljClientReap(LjWriter *w, int bAll) {
  LjClient **pp = &w->pOrphans;
  while (*pp) {
    LjClient *p = *pp;
    if (bAll || w->iDoneTicket >= p->iLastTicket) {
      *pp = p->pNextOrphan;
      sqlite3_free(p->zErr);
      sqlite3_free(p);
    } else {
      pp = &p->pNextOrphan;
    }
  }
}

/* What failed: "3 async appends", "1 async append and 2 async
** snapshots". */
static void lostWhat(sqlite3_str *pStr, i64 nEv, i64 nSnap) {
  if (nEv > 0) {
    sqlite3_str_appendf(pStr, "%lld async append%s", nEv, nEv > 1 ? "s" : "");
  }
  if (nSnap > 0) {
    sqlite3_str_appendf(pStr, "%s%lld async snapshot%s", nEv ? " and " : "",
                        nSnap, nSnap > 1 ? "s" : "");
  }
}

/* Report (and clear) the client's parked error, mutex held: how many
** async writes failed (each is in journal_errors), then the first
** error.  A failure that wrote no event (a sync request) reports just
** its error. */
static int clientTakeError(LjClient *p, u64 tUpTo, const char *zTable,
                           char **pzErr) {
  int rc;
  if (p->iErrTicket == 0 || p->iErrTicket > tUpTo) return SQLITE_OK;
  rc = p->errRc;
  if (p->nLostEvents + p->nLostSnapshots > 0) {
    sqlite3_str *pStr = sqlite3_str_new(0);
    sqlite3_str_appendall(pStr, "journal_sync: ");
    lostWhat(pStr, p->nLostEvents, p->nLostSnapshots);
    sqlite3_str_appendf(pStr,
                        " failed since the last sync; see journal_errors");
    if (zTable) sqlite3_str_appendf(pStr, "(%Q)", zTable);
    if (p->nLostDropped > 0) {
      sqlite3_str_appendf(pStr,
                          ", which lacks %lld of them (errors_max=%d reached)",
                          p->nLostDropped, p->pEnv->cfg.nErrorsMax);
    }
    sqlite3_str_appendf(pStr, ". The first error: %s",
                        p->zErr ? p->zErr : sqlite3_errstr(rc));
    sqlite3_free(p->zErr);
    *pzErr = sqlite3_str_finish(pStr);
  } else {
    *pzErr = p->zErr;
  }
  p->zErr = 0;
  p->iErrTicket = 0;
  p->nLostEvents = p->nLostSnapshots = p->nLostDropped = 0;
  return rc;
}

/**************************************************************************
** Submitting
*/
/* A request, from the pool when it is small (internal.h, LJ_POOL_BLOCK);
** mutex held. */
static LjReq *reqAlloc(LjWriter *w, int eType, const LjEvent *aEvent,
                       int nEvent) {
  size_t nByte = sizeof(LjReq) + sizeof(LjEvent) * (size_t)nEvent;
  u64 nRec = 0;
  LjReq *p;
  u8 *z;
  int i;
  for (i = 0; i < nEvent; i++) nRec += aEvent[i].nRec;
  nByte += nRec;
  if (nByte <= LJ_POOL_BLOCK && w->pPool) {
    p = w->pPool;
    w->pPool = p->pNext;
    w->nPool--;
  } else {
    /* malloc, not sqlite3_malloc: SQLite's allocator takes a mutex global
    ** to the process (memory statistics), which the client thread and the
    ** writer, freeing, would hand back and forth. */
    p = malloc(nByte <= LJ_POOL_BLOCK ? LJ_POOL_BLOCK : nByte);
    if (p == 0) return 0;
  }
  memset(p, 0, sizeof(LjReq));
  p->bPooled = nByte <= LJ_POOL_BLOCK;
  p->eType = eType;
  p->nEvent = nEvent;
  p->nByte = nRec;
  p->aEvent = (LjEvent *)&p[1];
  z = (u8 *)&p->aEvent[nEvent];
  for (i = 0; i < nEvent; i++) {
    p->aEvent[i] = aEvent[i];
    p->aEvent[i].aRec = z;
    memcpy(z, aEvent[i].aRec, aEvent[i].nRec);
    z += aEvent[i].nRec;
  }
  return p;
}

/* Queue a request (mutex held).  Returns whether the writer must be
** woken; the caller signals condWork, after unlocking when it can (a
** woken writer would otherwise block at once on the mutex). */
static int queuePush(LjWriter *w, LjReq *p) {
  p->iTicket = __atomic_add_fetch(&w->iNextTicket, 1, __ATOMIC_RELEASE);
  p->usQueued = ljNowUs();
  if (w->pTail)
    w->pTail->pNext = p;
  else
    w->pHead = p;
  w->pTail = p;
  w->nQueued += p->nEvent;
  ljWriterPublish(w);
  return w->eWait == LJ_W_IDLE || w->eWait == LJ_W_GROUP ||
         (w->eWait == LJ_W_GATHER &&
          (p->bWait || w->nQueued >= w->pEnv->cfg.nBatch));
}

static int writerUnavailable(LjWriter *w, char **pzErr) {
  *pzErr = sqlite3_mprintf("journal writer is %s%s%s",
                           w->eState == LJ_W_FAILED ? "failed" : "stopped",
                           w->zLastError ? ": " : "",
                           w->zLastError ? w->zLastError : "");
  return SQLITE_ERROR;
}

/* Undo the seq reservations of a withdrawn request (mutex held), which is
** possible when nothing was reserved after them: each actor's reservation
** still ends at the request's last seq of it.  Returns whether undone. */
static int reqUnreserve(LjReq *p) {
  int i;
  if (p->eType != LJ_REQ_EVENTS) return 1;
  for (i = p->nEvent - 1; i >= 0; i--) {
    LjEvent *e = &p->aEvent[i];
    if (e->pActor->reserved != e->seq || e->epoch != e->pActor->epoch) break;
    e->pActor->reserved--;
  }
  if (i < 0) return 1;
  while (++i < p->nEvent) p->aEvent[i].pActor->reserved++; /* redo */
  return 0;
}

/*
** Wait (mutex held) for the outcome of a request its submitter waits on,
** then release the mutex and the request.
**
** On timeout, a request the writer has not taken yet is withdrawn: the
** writer will write nothing of it, so the error (SQLITE_BUSY) means "no
** effect" and a retry cannot duplicate anything.  A request already in a
** write transaction cannot be withdrawn: its outcome is unknown (the
** commit may land), which the error says, with a code that is not
** SQLITE_BUSY so that nobody retries blindly; the writer frees it and
** journal_sync reports a failure.
*/
static int reqAwait(LjWriter *w, LjReq *p, i64 usTimeout, const char *zWhat,
                    i64 *pnResult, char **pzErr) {
  int rc = waitTicket(w, p->iTicket, usTimeout);
  if (rc == SQLITE_BUSY && !p->bTaken) {
    p->bWithdrawn = 1;
    p->bUnreserved = reqUnreserve(p);
    p->bWait = 0; /* the writer frees it */
    *pzErr = sqlite3_mprintf(
        "%s timed out after %lldms (sync_timeout) and was withdrawn: "
        "nothing was written, so it is safe to retry",
        zWhat, usTimeout / 1000);
    pthread_mutex_unlock(&w->mutex);
    return SQLITE_BUSY;
  }
  if (rc == SQLITE_BUSY) {
    p->bWait = 0;
    *pzErr = sqlite3_mprintf(
        "%s timed out after %lldms (sync_timeout) while being committed: "
        "its outcome is unknown (read the journal to see whether it "
        "landed before retrying); journal_sync reports a failure",
        zWhat, usTimeout / 1000);
    pthread_mutex_unlock(&w->mutex);
    return SQLITE_ERROR;
  }
  rc = p->rc;
  if (pnResult) *pnResult = p->nResult;
  if (rc) {
    *pzErr = p->zErr;
    p->zErr = 0;
  }
  ljReqFree(w, p);
  pthread_mutex_unlock(&w->mutex);
  return rc;
}

/* Resolve the request's actors not resolved by the caller (mutex held);
** a cache miss reads the store outside the mutex. */
static int submitResolve(LjWriter *w, LjReq *p, char **pzErr) {
  for (int i = 0; i < p->nEvent; i++) {
    LjEvent *e = &p->aEvent[i];
    if (e->pActor) continue;
    e->pActor = actorFind(w, e->zActor, e->nActor);
    if (e->pActor == 0) {
      u64 highest = 0;
      int rc;
      pthread_mutex_unlock(&w->mutex);
      rc = storeHighest(w->pEnv, e->zActor, e->nActor, &highest, pzErr);
      pthread_mutex_lock(&w->mutex);
      if (rc) return rc;
      e->pActor = actorFind(w, e->zActor, e->nActor);
      if (e->pActor == 0) {
        e->pActor = actorInsert(w, e->zActor, e->nActor, highest);
        if (e->pActor == 0) return SQLITE_NOMEM;
      }
    }
    e->zActor = e->pActor->zActor; /* the caller's copy may go away */
  }
  return SQLITE_OK;
}

/* Backpressure (mutex held): wait for room for nEvent events, but a
** request larger than the whole queue still goes in once the queue is
** empty. */
static int submitWaitRoom(LjWriter *w, int nEvent, i64 usTimeout,
                          char **pzErr) {
  const LjConfig *pCfg = &w->pEnv->cfg;
  struct timespec dl;
  if (w->nQueued == 0 || w->nQueued + nEvent <= pCfg->nQueueMax) {
    return SQLITE_OK;
  }
  ljDeadline(&dl, usTimeout);
  w->nSpaceWait++;
  while (w->nQueued > 0 && w->nQueued + nEvent > pCfg->nQueueMax &&
         w->eState == LJ_W_RUNNING) {
    if (w->eWait != LJ_W_BUSY) pthread_cond_signal(&w->condWork);
    if (pthread_cond_timedwait(&w->condDone, &w->mutex, &dl) == ETIMEDOUT) {
      break;
    }
  }
  w->nSpaceWait--;
  if (w->nQueued > 0 && w->nQueued + nEvent > pCfg->nQueueMax) {
    *pzErr = sqlite3_mprintf(
        "journal append timed out after %lldms: the queue is full "
        "(queue_max=%d); the writer is not keeping up or is blocked",
        usTimeout / 1000, pCfg->nQueueMax);
    return SQLITE_BUSY;
  }
  return SQLITE_OK;
}

/* Reserve seqs (mutex held).  Events of one actor in one request take
** consecutive seqs; on an expected-seq mismatch every reservation is
** undone.  The caller's aEvent[i].seq are filled in too. */
static int submitReserve(LjReq *p, LjEvent *aEvent, char **pzErr) {
  for (int i = 0; i < p->nEvent; i++) {
    LjEvent *e = &p->aEvent[i];
    u64 next = e->pActor->reserved + 1;
    if (e->bRestore && e->seq > next) next = e->seq;
    if (e->seq != 0 && e->seq != next) {
      *pzErr = sqlite3_mprintf(
          "expected seq %llu for actor '%.*s' but got %llu (seq must be "
          "exactly the next one)",
          next, e->pActor->nActor, e->pActor->zActor, e->seq);
      while (--i >= 0) p->aEvent[i].pActor->reserved--;
      return SQLITE_CONSTRAINT;
    }
    e->seq = next;
    e->epoch = e->pActor->epoch;
    e->pActor->reserved = next;
    aEvent[i].seq = next;
  }
  return SQLITE_OK;
}

int ljSubmit(LjClient *pClient, LjEvent *aEvent, int nEvent, int bWait,
             i64 usTimeout, char **pzErr) {
  LjEnv *pEnv = pClient->pEnv;
  LjWriter *w = pEnv->pWriter;
  LjReq *p;
  int rc, bSignal;

  pthread_mutex_lock(&w->mutex);
  p = reqAlloc(w, LJ_REQ_EVENTS, aEvent, nEvent);
  if (p == 0) {
    pthread_mutex_unlock(&w->mutex);
    return SQLITE_NOMEM;
  }
  p->pClient = pClient;
  p->eDurability = pClient->eDurability;
  p->bWait = bWait;
  rc = submitResolve(w, p, pzErr);
  if (rc == SQLITE_OK && w->eState != LJ_W_RUNNING) {
    rc = writerUnavailable(w, pzErr);
  }
  if (rc == SQLITE_OK) rc = submitWaitRoom(w, nEvent, usTimeout, pzErr);
  if (rc == SQLITE_OK) rc = submitReserve(p, aEvent, pzErr);
  if (rc) {
    ljReqFree(w, p);
    pthread_mutex_unlock(&w->mutex);
    return rc;
  }
  bSignal = queuePush(w, p);
  pClient->iLastTicket = p->iTicket;
  __atomic_add_fetch(&pEnv->m.nAppends, (u64)nEvent, __ATOMIC_RELAXED);
  if (!bWait) {
    pthread_mutex_unlock(&w->mutex);
    if (bSignal) pthread_cond_signal(&w->condWork);
    return SQLITE_OK;
  }
  if (bSignal) pthread_cond_signal(&w->condWork);
  /* Synchronous: wait for the outcome of this very request. */
  return reqAwait(w, p, usTimeout, "journal commit", 0, pzErr);
}

/* Queue a request that works on one actor (the actor id travels as the
** "record") and wait for its outcome: truncation, snapshot deletion. */
static int submitActorOp(LjClient *pClient, int eType, const char *zActor,
                         int nActor, const i64 aSeq[2], const i64 aTs[2],
                         i64 usTimeout, const char *zWhat, i64 *pnResult,
                         char **pzErr) {
  LjWriter *w = pClient->pEnv->pWriter;
  LjEvent ev;
  LjReq *p;
  int rc;
  memset(&ev, 0, sizeof(ev));
  ev.aRec = (u8 *)zActor; /* the actor id travels as the "record" */
  ev.nRec = (u32)nActor;
  pthread_mutex_lock(&w->mutex);
  p = reqAlloc(w, eType, &ev, 1);
  if (p == 0) {
    pthread_mutex_unlock(&w->mutex);
    return SQLITE_NOMEM;
  }
  p->nEvent = 0; /* no event is appended */
  p->iFromSeq = aSeq[0];
  p->iToSeq = aSeq[1];
  p->iFromTs = aTs[0];
  p->iToTs = aTs[1];
  p->pClient = pClient;
  p->eDurability = pClient->eDurability;
  p->bWait = 1;
  if (w->eState != LJ_W_RUNNING) {
    rc = writerUnavailable(w, pzErr);
    ljReqFree(w, p);
    pthread_mutex_unlock(&w->mutex);
    return rc;
  }
  if (queuePush(w, p)) pthread_cond_signal(&w->condWork);
  pClient->iLastTicket = p->iTicket;
  return reqAwait(w, p, usTimeout, zWhat, pnResult, pzErr);
}

int ljTruncate(LjClient *pClient, const char *zActor, int nActor, i64 iToSeq,
               i64 usTimeout, i64 *pnDeleted, char **pzErr) {
  i64 aSeq[2] = {0, iToSeq}, aTs[2] = {0, 0};
  return submitActorOp(pClient, LJ_REQ_TRUNCATE, zActor, nActor, aSeq, aTs,
                       usTimeout, "journal_truncate", pnDeleted, pzErr);
}

int ljSnapshotDelete(LjClient *pClient, const char *zActor, int nActor,
                     const i64 aSeq[2], const i64 aTs[2], i64 usTimeout,
                     i64 *pnDeleted, char **pzErr) {
  return submitActorOp(pClient, LJ_REQ_SNAPDEL, zActor, nActor, aSeq, aTs,
                       usTimeout, "journal_delete_snapshots", pnDeleted, pzErr);
}

/* A snapshot rides in the writer's batches like an append, but reserves
** no seq: its actor is resolved (the writer may have to number a new
** one) and it counts as no event in the queue. */
int ljSnapshotSubmit(LjClient *pClient, const LjEvent *pEv, int nKeep,
                     int bWait, i64 usTimeout, char **pzErr) {
  LjWriter *w = pClient->pEnv->pWriter;
  LjReq *p;
  int rc, bSignal;
  pthread_mutex_lock(&w->mutex);
  p = reqAlloc(w, LJ_REQ_SNAPSHOT, pEv, 1);
  if (p == 0) {
    pthread_mutex_unlock(&w->mutex);
    return SQLITE_NOMEM;
  }
  p->pClient = pClient;
  p->eDurability = pClient->eDurability;
  p->bWait = bWait;
  p->nKeep = nKeep;
  rc = submitResolve(w, p, pzErr);
  p->nEvent = 0; /* after resolving: it appends no event */
  if (rc == SQLITE_OK && w->eState != LJ_W_RUNNING) {
    rc = writerUnavailable(w, pzErr);
  }
  if (rc) {
    ljReqFree(w, p);
    pthread_mutex_unlock(&w->mutex);
    return rc;
  }
  bSignal = queuePush(w, p);
  pClient->iLastTicket = p->iTicket;
  if (bSignal) pthread_cond_signal(&w->condWork);
  if (!bWait) {
    pthread_mutex_unlock(&w->mutex);
    return SQLITE_OK;
  }
  return reqAwait(w, p, usTimeout, "journal_snapshot", 0, pzErr);
}

int ljSync(LjClient *pClient, int bDurable, i64 usTimeout, const char *zTable,
           i64 *pPos, char **pzErr) {
  LjWriter *w = pClient->pEnv->pWriter;
  u64 t;
  int rc;
  pthread_mutex_lock(&w->mutex);
  t = w->iNextTicket;
  if (bDurable && pClient->eDurability != LJ_DUR_FULL) {
    /* Only an explicit env sync makes durability=none commits durable, and
    ** the last durability=meta commit (its meta page is not synced).
    ** The request is not "waited" (the writer frees it); this thread
    ** waits for its ticket instead, and its failure is parked on the
    ** client like an async append's. */
    LjReq *p;
    if (w->eState != LJ_W_RUNNING) {
      rc = writerUnavailable(w, pzErr);
      pthread_mutex_unlock(&w->mutex);
      return rc;
    }
    p = reqAlloc(w, LJ_REQ_SYNC, 0, 0);
    if (p == 0) {
      pthread_mutex_unlock(&w->mutex);
      return SQLITE_NOMEM;
    }
    p->pClient = pClient;
    if (queuePush(w, p)) pthread_cond_signal(&w->condWork);
    pClient->iLastTicket = p->iTicket;
    t = p->iTicket;
  }
  rc = waitTicket(w, t, usTimeout);
  if (rc == SQLITE_BUSY) {
    *pzErr = sqlite3_mprintf(
        "journal_sync timed out after %lldms (sync_timeout): the writer has "
        "not committed the queued appends",
        usTimeout / 1000);
  } else {
    rc = clientTakeError(pClient, t, zTable, pzErr);
    if (rc == SQLITE_OK && w->eState == LJ_W_FAILED) {
      rc = writerUnavailable(w, pzErr);
    }
  }
  *pPos = bDurable ? w->durablePos : w->lastPos;
  pthread_mutex_unlock(&w->mutex);
  return rc;
}

int ljFlushForRead(LjEnv *pEnv, i64 usTimeout) {
  LjWriter *w = pEnv->pWriter;
  u64 t = __atomic_load_n(&w->iNextTicket, __ATOMIC_ACQUIRE);
  int rc;
  if (__atomic_load_n(&w->iDoneTicket, __ATOMIC_ACQUIRE) >= t) return 0;
  pthread_mutex_lock(&w->mutex);
  rc = waitTicket(w, t, usTimeout);
  pthread_mutex_unlock(&w->mutex);
  return rc;
}

void ljWriterInfo(LjEnv *pEnv, LjWriterInfo *p) {
  LjWriter *w = pEnv->pWriter;
  static const char *const azState[] = {"running", "stopped", "failed"};
  pthread_mutex_lock(&w->mutex);
  p->zState = azState[w->eState];
  p->nQueue = w->nQueued;
  {
    i64 usOldest = ljWriterOldestReq(w);
    p->usOldestReq = usOldest ? ljNowUs() - usOldest : 0;
  }
  p->lastPos = w->lastPos;
  p->durablePos = w->durablePos;
  p->zLastError = w->zLastError ? sqlite3_mprintf("%s", w->zLastError) : 0;
  pthread_mutex_unlock(&w->mutex);
}
