/*
** writer.c -- the background writer: one thread per environment that
** drains a queue of requests and commits them in batches (group commit).
**
** Every LMDB write of the process goes through here: journal_append,
** INSERT commits, syncs.  Submitters never touch LMDB's write side.
**
**   SQL threads                               writer thread
**   -----------                               -------------
**   ljSubmit: reserve seqs, queue   --->      take up to batch_size events
**             (block when full)               / batch_bytes, one write txn:
**   ljSync:   wait for the ticket   <---        validate, assign pos/ts,
**                                                put in key order, commit
**
** Tickets.  Each request gets the next ticket; the writer processes them
** in order and publishes iDoneTicket after each batch.  "Everything
** submitted before this call" is therefore "every ticket <= the last one
** handed out", which is what journal_sync and read-your-writes wait for.
**
** Sequence numbers.  An async append must return its seq at once, so the
** seq is reserved from this process's view of the actor (LjActor.reserved)
** and checked inside the write transaction against the store.  A mismatch
** (another process appended to the same actor) fails that request with
** SQLITE_CONSTRAINT and bumps the actor's epoch: every request reserved
** under the old epoch fails too (its seqs continue a broken chain), and
** new reservations restart from the store's real highest seq.  Nothing is
** ever overwritten: events are put with MDB_NOOVERWRITE.
**
** Atomicity.  A request (one append, or one COMMIT's INSERTs) is checked
** as a whole before anything is written; a failing request is left out
** and the rest of the batch commits.  A failing commit fails every request
** of the batch: no batch is ever partly visible.  MDB_MAP_FULL grows the
** map (doubling, up to map_max) and replays the whole batch; transient
** errors are retried max_retries times with retry_delay doubling.
**
** Durability.  A batch is committed with the strongest durability any of
** its requests asked for (env flag MDB_NOMETASYNC is set per commit for
** meta and none; MDB_NOSYNC is never used, see setDurability).  With
** durability=none, the environment is synced every checkpoint_interval;
** journal_sync of a meta or none table syncs it at once.
**
** Locking: LjWriter.mutex (the writer mutex) guards the fields of
** LjWriter (internal.h) marked (mutex); those marked (writer) belong to
** the writer thread alone (asserted: WRITER_ONLY).  The lock order is in
** internal.h.  The submitters' side (ljSubmit, ljSync, ...) is submit.c.
**
** Staging (stage.c) is the writer's too: ljPutEvents (put.c) asks it
** whether a batch is staged, and the writer runs its merges as requests
** of its own, each alone in its batch (stageMergeNow).
*/
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Marks the functions that touch the fields marked (writer) above and in
** LjActor: they run on the writer thread alone. */
#define WRITER_ONLY(w) assert(pthread_equal(pthread_self(), (w)->thread))

/* After a failure: restart an actor's reservations from what is stored
** (writer thread, mutex held). */
static void actorResync(LjActor *p, u64 highest) {
  p->epoch++;
  p->reserved = highest;
}

/**************************************************************************
** Tickets and requests, the writer's side
*/
/* Wake every waitTicket (writer, after publishing iDoneTicket). */
static void wakeDone(LjWriter *w) {
  __atomic_add_fetch(&w->doneSeq, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&w->nDoneWaiters, __ATOMIC_SEQ_CST) > 0) {
    ljFutexWakeAll(&w->doneSeq);
  }
}

/* Release a request: back to the pool when it came from there (mutex
** held). */
void ljReqFree(LjWriter *w, LjReq *p) {
  sqlite3_free(p->zErr);
  if (p->bPooled && w->nPool < LJ_POOL_MAX) {
    p->pNext = w->pPool;
    w->pPool = p;
    w->nPool++;
  } else {
    free(p); /* malloc'd, see reqAlloc */
  }
}

/**************************************************************************
** The write transaction
*/

/* An actor's highest seq as seen inside the current write transaction. */
static int txnHighest(LjWriter *w, MDB_txn *txn, LjActor *a, u64 *pH) {
  WRITER_ONLY(w);
  if (a->txnSerial == w->put.txnSerial) {
    *pH = a->txnHighest;
    return 0;
  }
  if (a->wGen != w->wGen) {
    u64 floor;
    int mrc = ljActorLoad(w->pEnv, txn, (const u8 *)a->zActor, a->nActor,
                          &a->num, &a->committed, &floor);
    if (mrc) return mrc;
    a->wGen = w->wGen;
  }
  a->txnSerial = w->put.txnSerial;
  a->txnHighest = a->committed;
  *pH = a->committed;
  return 0;
}

static void reqFail(LjReq *p, int rc, char *zErr) {
  if (p->rc == SQLITE_OK) {
    p->rc = rc;
    p->zErr = zErr;
  } else {
    sqlite3_free(zErr);
  }
}

/* Fail request p for a seq reserved against a stale view of actor a,
** whose store is at seq h. */
static void reqConflict(LjWriter *w, LjReq *p, LjEvent *e, u64 h) {
  LjActor *a = e->pActor;
  if (e->epoch == a->epoch) {
    pthread_mutex_lock(&w->mutex);
    actorResync(a, h);
    pthread_mutex_unlock(&w->mutex);
  }
  __atomic_add_fetch(&w->pEnv->m.nConflicts, 1, __ATOMIC_RELAXED);
  reqFail(p, SQLITE_CONSTRAINT,
          sqlite3_mprintf("sequence conflict for actor '%.*s': seq %llu was "
                          "reserved but the journal is at seq %llu (another "
                          "writer appended to this actor)",
                          a->nActor, a->zActor, e->seq, h));
}

/*
** Check one request against the transaction's view and, if it passes,
** give its events pos and ts.  Returns an LMDB code for store errors;
** request-level failures are recorded in p->rc.
*/
static int validateReq(LjWriter *w, MDB_txn *txn, LjReq *p, i64 now) {
  int i, mrc;
  i64 tsLast = w->put.tailTs;
  WRITER_ONLY(w);
  for (i = 0; i < p->nEvent; i++) {
    LjEvent *e = &p->aEvent[i];
    LjActor *a = e->pActor;
    u64 h;
    mrc = txnHighest(w, txn, a, &h);
    if (mrc) return mrc;
    if (e->epoch != a->epoch ||
        (e->seq != h + 1 && !(e->bRestore && e->seq > h))) {
      reqConflict(w, p, e, h);
      break;
    }
    if (e->tsGiven >= 0) {
      if (e->tsGiven < tsLast) {
        reqFail(p, SQLITE_CONSTRAINT,
                sqlite3_mprintf("ts %lld is lower than the journal's latest "
                                "ts %lld (ts must not decrease)",
                                e->tsGiven, tsLast));
        break;
      }
      tsLast = e->tsGiven;
    } else if (now > tsLast) {
      tsLast = now;
    }
    a->txnHighest = e->seq;
  }
  if (p->rc) {
    /* Undo this request's effect on the transaction's view: every event
    ** before i passed, so its actor stood at seq-1 before it. */
    while (--i >= 0) p->aEvent[i].pActor->txnHighest = p->aEvent[i].seq - 1;
    return 0;
  }
  for (i = 0; i < p->nEvent; i++) {
    LjEvent *e = &p->aEvent[i];
    i64 ts = e->tsGiven >= 0 ? e->tsGiven
                             : (now > w->put.tailTs ? now : w->put.tailTs);
    assert(ts >= w->put.tailTs);
    e->pos = ++w->put.tailPos; /* strictly increasing, one by one */
    w->put.tailTs = ts;
    ljRecStamp(e->aRec, e->nRec, e->pos, ts);
  }
  return 0;
}

/**************************************************************************
** Committing a batch
*/
/* durability=none commits with MDB_NOMETASYNC, like meta, never with
** MDB_NOSYNC: a NOSYNC commit lets the OS write its meta page before its
** data pages, and an OS crash then leaves a meta page pointing at pages
** that never reached the disk -- the whole store, with what other tables
** (or earlier journal_syncs) acknowledged as durable, is damaged.  With
** NOMETASYNC the data pages are fdatasync'd before the meta page is
** written, so a crash loses at most the commits whose meta page was not
** yet flushed.  What none saves over meta is the wait for the meta page
** only at journal_sync and checkpoints (docs/api.md, "Durability"). */
static void setDurability(LjWriter *w, int eDur) {
  MDB_env *env = w->pEnv->env;
  if (w->eFlags == eDur) return;
  mdb_env_set_flags(env, MDB_NOSYNC | MDB_NOMETASYNC, 0);
  if (eDur != LJ_DUR_FULL) mdb_env_set_flags(env, MDB_NOMETASYNC, 1);
  w->eFlags = eDur;
}

/* Whether compaction has work: a sweep due or under way (writer thread). */
static int compactHasWork(const LjWriter *w) {
  return w->pEnv->cfg.bCompaction && (w->compact.num || w->compact.bDue);
}

/* Publish whether compaction has work (writer thread). */
static void compactPublish(LjWriter *w) {
  __atomic_store_n(&w->pEnv->m.bCompactDue, compactHasWork(w),
                   __ATOMIC_RELAXED);
}

/* A request of the writer's own or a truncation: alone in its batch. */
static int reqAlone(const LjReq *p) {
  return p->eType == LJ_REQ_TRUNCATE || p->eType == LJ_REQ_MERGE ||
         p->eType == LJ_REQ_COMPACT;
}

/* A merge, compaction or truncation request, alone in its batch.
** Truncation works on runs only, so it merges the stage first; a
** compaction step runs over a merged stage only.  *pnEv becomes 1 when
** the transaction wrote something. */
static int batchMaintain(LjWriter *w, MDB_txn *txn, LjReq *p, size_t *pnEv) {
  int bWrote = w->put.stage.nEnt > 0;
  int mrc = 0;
  p->nResult = 0;
  if (p->eType == LJ_REQ_COMPACT) {
    bWrote = 0;
    if (w->put.stage.nEnt == 0) {
      mrc = ljCompactStep(w->pEnv, &w->compact, txn, 0, &bWrote);
    }
  } else if (bWrote) {
    u64 nBudget = p->eType == LJ_REQ_MERGE ? (u64)p->iToSeq : UINT64_MAX;
    mrc = ljStageMerge(w->pEnv, &w->put.stage, txn, nBudget);
  }
  if (mrc == 0 && p->eType == LJ_REQ_TRUNCATE) {
    mrc = ljPutTruncate(&w->put, txn, p, &bWrote);
  }
  /* Commit only what wrote something: LMDB does not advance the txn id
  ** for an empty commit, and lastTxnId must be ours alone. */
  if (mrc == 0 && bWrote) *pnEv = 1;
  return mrc;
}

/* A snapshot write or delete: they ride in any batch, written in queue
** order.  *pnWrote is counted up when the transaction wrote. */
static int batchSnapshot(LjWriter *w, MDB_txn *txn, LjReq *p, i64 now,
                         size_t *pnWrote) {
  int mrc;
  if (p->eType == LJ_REQ_SNAPSHOT) {
    u64 h;
    /* Makes the actor's number current (0: the put numbers it). */
    mrc = txnHighest(w, txn, p->aEvent[0].pActor, &h);
    if (mrc == 0) mrc = ljPutSnapshot(&w->put, txn, p, now);
    if (mrc == 0) (*pnWrote)++;
  } else {
    mrc = ljPutSnapshotDelete(&w->put, txn, p);
    if (mrc == 0 && p->nResult > 0) (*pnWrote)++;
  }
  return mrc;
}

/* Validate the batch's requests and write what passed.  *pnEv becomes
** non-zero when the transaction wrote (it counts events and snapshot
** writes). */
static int batchWrite(LjWriter *w, MDB_txn *txn, LjReq **aReq, int nReq,
                      int *pbSync, size_t *pnEv) {
  i64 now = ljNowMs();
  size_t nEvent = 0;
  int mrc = 0;
  for (int r = 0; r < nReq && mrc == 0; r++) {
    LjReq *p = aReq[r];
    if (p->bWithdrawn) {
      continue; /* its submitter gave up before the batch was taken */
    } else if (p->eType == LJ_REQ_SYNC) {
      *pbSync = 1;
    } else if (reqAlone(p)) {
      assert(nReq == 1); /* see writerTake */
      mrc = batchMaintain(w, txn, p, pnEv);
    } else if (p->rc != 0) {
      continue; /* failed in an earlier attempt */
    } else if (p->eType == LJ_REQ_SNAPSHOT || p->eType == LJ_REQ_SNAPDEL) {
      mrc = batchSnapshot(w, txn, p, now, pnEv);
    } else {
      mrc = validateReq(w, txn, p, now);
      if (mrc == 0 && p->rc == 0) nEvent += (size_t)p->nEvent;
    }
  }
  /* A batch may start with a sync request: only the requests reqAlone
  ** names are alone in theirs. */
  if (mrc == 0 && nEvent > 0 && !reqAlone(aReq[0])) {
    mrc = ljPutEvents(&w->put, txn, aReq, nReq, nEvent);
  }
  *pnEv += nEvent;
  return mrc;
}

/*
** One attempt at committing a batch.  Returns an LMDB/errno code; 0 means
** committed (requests with p->rc set were left out).
*/
static int batchTxn(LjWriter *w, LjReq **aReq, int nReq, int eDur,
                    int *pbSync) {
  LjEnv *pEnv = w->pEnv;
  MDB_txn *txn = 0;
  size_t nEv = 0, txnId;
  u64 tailPos0, nextNum0;
  i64 tailTs0;
  int mrc, mrcSync = 0;

  WRITER_ONLY(w);
  ljGateEnter(pEnv);
  mrc = mdb_txn_begin(pEnv->env, 0, 0, &txn);
  if (mrc) {
    ljGateLeave(pEnv);
    return mrc;
  }
  txnId = mdb_txn_id(txn);
  if (txnId != w->lastTxnId + 1) {
    /* Another process committed since our last commit: forget what we
    ** cached about the store. */
    w->wGen++;
    w->put.bTail = 0;
  }
  w->put.txnSerial++;
  mrc = ljPutLoadTail(&w->put, txn);
  tailPos0 = w->put.tailPos;
  tailTs0 = w->put.tailTs;
  nextNum0 = w->put.nextNum;
  if (mrc == 0) mrc = batchWrite(w, txn, aReq, nReq, pbSync, &nEv);
  if (mrc == 0 && nEv == 0 && *pbSync && w->txnIdDoubt) {
    /* The meta page of the commit in doubt may be lost: a commit of the
    ** sync's own writes a new one, for the sync to make durable. */
    mrc = ljPutMaxPos(&w->put, txn);
    nEv = 1;
  }
  if (mrc == 0 && nEv > 0) {
    setDurability(w, eDur);
    mrc = mdb_txn_commit(txn);
  } else {
    mdb_txn_abort(txn); /* nothing to write, or an error */
  }
  if (mrc == 0 && *pbSync) mrcSync = mdb_env_sync(pEnv->env, 1);
  ljGateLeave(pEnv);
  /* A commit that failed in its fsync may have lost the unsynced meta
  ** page of the commit before it (MDB_NOMETASYNC). */
  if (mrc == EIO && w->lastTxnId && !w->txnIdDoubt) {
    w->txnIdDoubt = w->lastTxnId;
  }
  if (mrc) {
    /* The transaction is gone: everything it decided is void. */
    w->put.tailPos = tailPos0;
    w->put.tailTs = tailTs0;
    w->put.nextNum = nextNum0;
    w->put.bTail = 0;
    w->wGen++;
    return mrc;
  }
  if (nEv > 0) {
    LjEvIter it;
    w->lastTxnId = txnId;
    /* New runs: a compaction sweep is due (again). */
    if (aReq[0]->eType != LJ_REQ_COMPACT) {
      w->compact.bDue = 1;
      compactPublish(w);
    }
    for (LjEvent *e = ljEvFirst(&it, aReq, nReq); e; e = ljEvNext(&it)) {
      LjActor *pA = e->pActor;
      pA->committed = pA->txnHighest;
      if (pA->listGen != w->compact.listGen && w->pEnv->cfg.bCompaction) {
        pA->listGen = w->compact.listGen; /* listed for the next sweep */
        ljCompactNote(&w->compact, pA->num);
      }
    }
    if (eDur == LJ_DUR_NONE && !*pbSync) w->bUnsynced = 1;
  }
  if (mrcSync) {
    /* The commit stands: its events are in the store, and a replay of
    ** the batch would find them there (conflicts).  Not retried either:
    ** an fsync that failed may have dropped the pages it was to write,
    ** so a later one that succeeds proves nothing about them.  Until a
    ** newer commit is synced, durability is in doubt up to this one. */
    w->txnIdDoubt = w->lastTxnId;
    w->mrcSynced = mrcSync;
    w->bUnsynced = 1;
  } else if (*pbSync || (nEv > 0 && eDur == LJ_DUR_FULL)) {
    w->txnIdDoubt = 0; /* a commit newer than the doubt is on disk */
  }
  if (*pbSync && !mrcSync) {
    w->bUnsynced = 0;
    w->usLastSync = ljNowUs();
  }
  return 0;
}

/*
** Commit a batch, retrying as the failure semantics promise.  On final
** failure every request gets the error.  Returns 0 or the final code.
*/
static int batchCommit(LjWriter *w, LjReq **aReq, int nReq, int *pbSync) {
  LjEnv *pEnv = w->pEnv;
  int eDur = LJ_DUR_NONE;
  int nRetry = 0, bCleared = 0;
  int mrc, r, mrcCause = 0;
  for (r = 0; r < nReq; r++) {
    if (aReq[r]->eDurability > eDur) eDur = aReq[r]->eDurability;
  }
  for (;;) {
    *pbSync = 0;
    mrc = ljEnvCause(pEnv, batchTxn(w, aReq, nReq, eDur, pbSync));
    if (mrc == 0) return 0;
    if (mrc == MDB_PANIC) {
      /* A failed meta-page write left the environment failed: open it
      ** again and retry, reporting the failure's cause if that fails. */
      if (mrcCause == 0) mrcCause = MDB_PANIC; /* failed by an earlier batch */
      if (nRetry < pEnv->cfg.nMaxRetries && ljEnvReopen(pEnv) == 0) {
        nRetry++;
        continue;
      }
      mrc = mrcCause;
      break;
    }
    mrcCause = mrc;
    if (mrc == MDB_MAP_FULL) {
      /* A truncation may grow past map_max by a half: deleting takes
      ** new pages (copy on write) before it frees any, and a store that
      ** is full must still be truncatable to make room. */
      i64 szMax = pEnv->cfg.szMapMax;
      i64 szCur = __atomic_load_n(&pEnv->szMap, __ATOMIC_RELAXED);
      i64 szNew;
      if (!bCleared) {
        /* Dead processes' readers may pin the pages that would do. */
        bCleared = 1;
        if (ljReaderCheck(pEnv) > 0) continue;
      }
      if (aReq[0]->eType == LJ_REQ_TRUNCATE) szMax += szMax / 2;
      szNew = szCur * 2 < szMax ? szCur * 2 : szMax;
      if (szCur >= szMax) break; /* SQLITE_FULL */
      if ((mrc = ljEnvResize(pEnv, szNew)) == 0) continue;
      /* the gate could not be had: retried below like any busy error */
    } else if (mrc == MDB_MAP_RESIZED) {
      if ((mrc = ljEnvResize(pEnv, 0)) == 0) continue;
    }
    if (mrc == MDB_KEYEXIST && nRetry == 0) {
      /* Our cache disagreed with the store; revalidate from the store. */
      nRetry++;
      continue;
    }
    if (ljMdbTransient(mrc) && nRetry < pEnv->cfg.nMaxRetries) {
      /* Doubling, capped: a large max_retries must not overflow. */
      i64 us = pEnv->cfg.usRetryDelay << (nRetry < 20 ? nRetry : 20);
      struct timespec ts;
      ts.tv_sec = us / 1000000;
      ts.tv_nsec = (long)(us % 1000000) * 1000;
      nRetry++;
      __atomic_add_fetch(&pEnv->m.nRetries, 1, __ATOMIC_RELAXED);
      nanosleep(&ts, 0);
      continue;
    }
    break;
  }
  return mrc;
}

/* The message of a failed batch (mutex held): remembered as the last
** error and logged. */
static char *batchError(LjWriter *w, LjReq **aReq, int mrc, int rcFail) {
  LjEnv *pEnv = w->pEnv;
  /* What the batch did, for the message: a truncation goes alone in its
  ** batch (writerTake). */
  const char *zOp =
      aReq[0]->eType == LJ_REQ_TRUNCATE ? "journal truncate" : "journal append";
  char *zFail;
  if (mrc == MDB_MAP_FULL) {
    zFail =
        sqlite3_mprintf("%s failed: the store is full (map_max=%lld bytes): %s",
                        zOp, pEnv->cfg.szMapMax, mdb_strerror(mrc));
  } else if (mrc == LJ_MDB_FORMAT) {
    zFail = sqlite3_mprintf(
        "journal append refused: the store's format is no longer %d (a "
        "newer build upgraded it); upgrade this process before it writes",
        LMDBJOURNAL_FORMAT_VERSION);
  } else {
    zFail = ljMdbErr(zOp, mrc);
  }
  sqlite3_free(w->zLastError);
  w->zLastError = zFail ? sqlite3_mprintf("%s", zFail) : 0;
  sqlite3_log(rcFail, "lmdbjournal: %s (%s)", zFail ? zFail : "", pEnv->zDir);
  if (mrc == MDB_CORRUPTED) w->eState = LJ_W_FAILED;
  return zFail;
}

/* A request nobody waits for failed (an async append or snapshot, or one
** whose waiter timed out; mutex held): its events go to journal_errors
** and count on its client, which keeps the first error, until
** journal_sync reports them. */
static void reqLost(LjWriter *w, LjReq *p) {
  LjClient *c = p->pClient;
  if (p->eType == LJ_REQ_EVENTS) {
    c->nLostDropped += ljErrLogAdd(w->pEnv, p->aEvent, p->nEvent,
                                   LJ_ERRK_APPEND, p->rc, p->zErr);
    c->nLostEvents += p->nEvent;
  } else if (p->eType == LJ_REQ_SNAPSHOT) {
    c->nLostDropped +=
        ljErrLogAdd(w->pEnv, p->aEvent, 1, LJ_ERRK_SNAPSHOT, p->rc, p->zErr);
    c->nLostSnapshots++;
  }
  if (c->iErrTicket == 0) {
    c->iErrTicket = p->iTicket;
    c->errRc = p->rc;
    c->zErr = p->zErr;
    p->zErr = 0;
  }
}

/* The message for the sync requests of a batch that committed but whose
** sync failed (NULL if it did not), logged. */
static char *batchUnsynced(LjWriter *w, int mrc) {
  char *z;
  if (mrc || w->mrcSynced == 0) return 0;
  z = sqlite3_mprintf(
      "journal sync failed after the commit: its events are stored but may "
      "not be durable (%s); the next journal_sync commits and syncs again",
      mdb_strerror(w->mrcSynced));
  sqlite3_log(ljMdbToSqlite(w->mrcSynced), "lmdbjournal: %s (%s)", z ? z : "",
              w->pEnv->zDir);
  return z;
}

/* Record a batch's outcome and release its requests (mutex held; the
** caller wakes the waiters). */
static void batchFinish(LjWriter *w, LjReq **aReq, int nReq, int mrc,
                        int bSync) {
  LjEnv *pEnv = w->pEnv;
  int rcFail = mrc == LJ_MDB_FORMAT ? SQLITE_ERROR : ljMdbToSqlite(mrc);
  char *zFail = mrc ? batchError(w, aReq, mrc, rcFail) : 0;
  char *zUnsynced = batchUnsynced(w, mrc);
  /* The batch's durability (read before its requests are released), not
  ** the last commit's flags: a batch that wrote nothing, its requests
  ** having conflicted, left those flags as an earlier merge set them. */
  int eDur = LJ_DUR_NONE;
  for (int r = 0; r < nReq; r++) {
    if (aReq[r]->eDurability > eDur) eDur = aReq[r]->eDurability;
  }
  for (int r = 0; r < nReq; r++) {
    LjReq *p = aReq[r];
    if (p->bWithdrawn) {
      /* Nothing written; its reservations are void unless undone. */
      for (int j = 0; j < p->nEvent && !p->bUnreserved; j++) {
        LjActor *a = p->aEvent[j].pActor;
        if (p->aEvent[j].epoch == a->epoch) actorResync(a, a->committed);
      }
      __atomic_store_n(&w->iDoneTicket, p->iTicket, __ATOMIC_RELEASE);
      ljReqFree(w, p);
      continue;
    }
    if (mrc && p->rc == 0) {
      p->rc = rcFail;
      p->zErr = zFail ? sqlite3_mprintf("%s", zFail) : 0;
    } else if (zUnsynced && p->eType == LJ_REQ_SYNC && p->rc == 0) {
      p->rc = ljMdbToSqlite(w->mrcSynced);
      p->zErr = sqlite3_mprintf("%s", zUnsynced);
    }
    if (p->rc) {
      __atomic_add_fetch(&pEnv->m.nErrors, 1, __ATOMIC_RELAXED);
      /* Reservations made for this request are void. */
      for (int j = 0; j < p->nEvent; j++) {
        LjActor *a = p->aEvent[j].pActor;
        if (p->aEvent[j].epoch == a->epoch) actorResync(a, a->committed);
      }
    }
    if (p->pClient && p->rc && !p->bWait) reqLost(w, p);
    __atomic_store_n(&w->iDoneTicket, p->iTicket, __ATOMIC_RELEASE);
    if (p->bWait) {
      p->bDone = 1;
    } else {
      ljReqFree(w, p);
    }
  }
  sqlite3_free(zFail);
  if (mrc == 0) {
    i64 prevPos = w->lastPos;
    w->lastPos = (i64)w->put.tailPos;
    __atomic_add_fetch(&pEnv->m.nCommits, 1, __ATOMIC_RELAXED);
    if (w->txnIdDoubt) {
      /* durablePos stays until a newer commit is synced (batchTxn) */
    } else if (bSync || eDur == LJ_DUR_FULL) {
      w->durablePos = w->lastPos;
    } else if (prevPos > w->durablePos) {
      /* MDB_NOMETASYNC: this commit's fdatasync flushed the meta page of
      ** the commit before it, not its own. */
      w->durablePos = prevPos;
    }
    /* A commit went through: the fault behind the last error cleared
    ** (health goes back to ok; the errors counter keeps the history),
    ** unless its sync failed. */
    sqlite3_free(w->zLastError);
    w->zLastError = zUnsynced;
    zUnsynced = 0;
  }
  sqlite3_free(zUnsynced);
  w->mrcSynced = 0;
  ljWriterPublish(w);
}

/* Sync a durability=none environment when a checkpoint is due. */
static void checkpoint(LjWriter *w) {
  LjEnv *pEnv = w->pEnv;
  int mrc;
  WRITER_ONLY(w);
  ljGateEnter(pEnv);
  mrc = mdb_env_sync(pEnv->env, 1);
  ljGateLeave(pEnv);
  w->usLastSync = ljNowUs();
  if (mrc == 0) {
    w->bUnsynced = 0;
    pthread_mutex_lock(&w->mutex);
    /* In doubt (batchTxn), only the meta page of a newer commit, synced
    ** now, makes the commits before it durable. */
    if (w->txnIdDoubt && w->lastTxnId > w->txnIdDoubt) w->txnIdDoubt = 0;
    if (w->txnIdDoubt == 0) w->durablePos = w->lastPos;
    ljWriterPublish(w);
    pthread_mutex_unlock(&w->mutex);
  } else {
    sqlite3_log(ljMdbToSqlite(mrc), "lmdbjournal: checkpoint of %s failed: %s",
                pEnv->zDir, mdb_strerror(mrc));
  }
}

/*
** Merge the stage in a transaction of its own (writer thread, mutex not
** held), as a request of the writer's own, alone in its batch.  A failure
** leaves the stage as it was, readable; the merge is tried again a
** second later.
*/
static int stageMergeNow(LjWriter *w) {
  LjReq req, *pReq = &req;
  int bSync = 0, mrc;
  WRITER_ONLY(w);
  memset(&req, 0, sizeof(req));
  req.eType = LJ_REQ_MERGE;
  /* Losing a merge to an OS crash loses nothing (the stage is still
  ** there), so it never needs more than meta durability: the data pages
  ** are synced before the meta page points at them.  After commits
  ** without sync (durability=none) it needs none either: the checkpoint
  ** that will sync them syncs the merge too. */
  req.eDurability = w->eFlags == LJ_DUR_NONE ? LJ_DUR_NONE : LJ_DUR_META;
  req.iToSeq = LJ_STAGE_MERGE_EVENTS; /* the merge's budget, in events */
  for (;;) {
    mrc = batchCommit(w, &pReq, 1, &bSync);
    /* Too many pages for one transaction (very many actors): merge
    ** fewer batches at a time. */
    if (mrc != MDB_TXN_FULL || req.iToSeq <= 1) break;
    req.iToSeq /= 4;
  }
  if (mrc) {
    w->put.stage.usNoMergeUntil = ljNowUs() + 1000000;
    sqlite3_log(ljMdbToSqlite(mrc),
                "lmdbjournal: merging the stage of %s "
                "failed: %s",
                w->pEnv->zDir, mdb_strerror(mrc));
  } else {
    w->put.stage.usNoMergeUntil = 0;
  }
  return mrc;
}

/* Whether a compaction step may run now (writer thread, idle, stage
** merged). */
static int compactDue(LjWriter *w, i64 now) {
  return w->put.stage.nEnt == 0 && compactHasWork(w) &&
         now >= w->compact.usNoneUntil;
}

/*
** One step of the compaction sweep (compact.c) in a transaction of its
** own, like a merge (writer thread, mutex not held).  The sweep moves on
** only when the step committed; a failed step is logged and tried again
** after 1, 2, 4 ... seconds (at most 5 minutes) from where it was.
*/
static void compactNow(LjWriter *w) {
  LjCompact *pC = &w->compact;
  LjReq req, *pReq = &req;
  MDB_txn *txn;
  int bSync = 0, bFound, mrc;
  WRITER_ONLY(w);
  if (pC->num == 0 && !ljCompactBegin(pC)) {
    compactPublish(w); /* nothing listed to sweep */
    return;
  }
  /* Look first, without the write lock. */
  pC->nStepRuns = 0;
  bFound = 0;
  ljGateEnter(w->pEnv);
  mrc = ljReadBegin(w->pEnv, &txn);
  if (mrc == 0) {
    mrc = ljCompactStep(w->pEnv, pC, txn, 1, &bFound);
    mdb_txn_abort(txn);
  }
  ljGateLeave(w->pEnv);
  if (mrc == 0 && !bFound) {
    pC->num = pC->numNext;
    pC->seq = pC->seqNext;
    compactPublish(w);
    return;
  }
  if (mrc == 0) {
    pC->num = pC->numNext;
    pC->seq = pC->seqNext;
    memset(&req, 0, sizeof(req));
    req.eType = LJ_REQ_COMPACT;
    /* Like a merge: losing a step to a crash loses nothing. */
    req.eDurability = w->eFlags == LJ_DUR_NONE ? LJ_DUR_NONE : LJ_DUR_META;
    pC->numNext = pC->num;
    pC->seqNext = pC->seq;
    mrc = batchCommit(w, &pReq, 1, &bSync);
  }
  if (mrc) {
    /* A step that keeps failing (a full disk, a map at map_max) is tried
    ** again after 1, 2, 4 ... seconds, at most LJ_COMPACT_BACKOFF_US
    ** apart, and logged each time. */
    pC->usBackoff = pC->usBackoff ? pC->usBackoff * 2 : 1000000;
    if (pC->usBackoff > LJ_COMPACT_BACKOFF_US) {
      pC->usBackoff = LJ_COMPACT_BACKOFF_US;
    }
    pC->usNoneUntil = ljNowUs() + pC->usBackoff;
    sqlite3_log(ljMdbToSqlite(mrc),
                "lmdbjournal: compacting %s failed: %s (trying again in %llds)",
                w->pEnv->zDir, mdb_strerror(mrc),
                (long long)(pC->usBackoff / 1000000));
  } else {
    pC->usBackoff = 0;
    pC->num = pC->numNext;
    pC->seq = pC->seqNext;
    __atomic_add_fetch(&w->pEnv->m.nCompactRuns, pC->nStepRuns,
                       __ATOMIC_RELAXED);
  }
  compactPublish(w);
}

/**************************************************************************
** The writer thread
*/

/* Distinct submitters among the first requests of a list (at most 64),
** counting up to nMax; more than 64 requests answer nMax. */
static int countClients(LjReq *const *aReq, int nReq, int nMax) {
  const LjClient *aSeen[64];
  int n = 0;
  if (nReq > 64) return nMax;
  for (int r = 0; r < nReq && n < nMax; r++) {
    int i;
    for (i = 0; i < n && aSeen[i] != aReq[r]->pClient; i++) {
    }
    if (i == n) aSeen[n++] = aReq[r]->pClient;
  }
  return n;
}

/* Distinct submitters among the queued requests, counting up to nMax
** (mutex held).  A long queue needs no group wait: it answers nMax. */
static int queueClients(LjWriter *w, int nMax) {
  LjReq *aReq[64];
  int nReq = 0;
  for (LjReq *p = w->pHead; p; p = p->pNext) {
    if (nReq == 64) return nMax;
    aReq[nReq++] = p;
  }
  return countClients(aReq, nReq, nMax);
}

/*
** Wait (mutex held) for work.  Idle, the writer still wakes for a due
** checkpoint and to merge the stage once no batch came for
** LJ_STAGE_IDLE_US.  Returns when the queue is not empty or on stop.
*/
/* Clear dead readers now and then (writer thread): a reader killed in the
** middle of a statement must not pin its snapshot until the next open. */
static void readerCheckDue(LjWriter *w) {
  i64 now = ljNowUs();
  WRITER_ONLY(w);
  if (now - w->usLastReaderCheck >= LJ_READER_CHECK_US) {
    w->usLastReaderCheck = now;
    ljReaderCheck(w->pEnv);
  }
}

/* Idle work xWork, due in usLeft: done now (writer mutex released
** meanwhile), answering 1; else *pusDue is lowered to when it will be. */
static int idleWork(LjWriter *w, i64 usLeft, void (*xWork)(LjWriter *),
                    i64 *pusDue) {
  if (usLeft <= 0) {
    pthread_mutex_unlock(&w->mutex);
    xWork(w);
    pthread_mutex_lock(&w->mutex);
    return 1;
  }
  if (usLeft < *pusDue) *pusDue = usLeft;
  return 0;
}

static void stageMergeIdle(LjWriter *w) {
  stageMergeNow(w);
}

static void writerIdle(LjWriter *w) {
  const LjConfig *pCfg = &w->pEnv->cfg;
  i64 usIdle = ljNowUs();
  while (w->pHead == 0 && !w->bStop) {
    i64 now = ljNowUs();
    i64 usDue = INT64_MAX;
    w->eWait = LJ_W_IDLE;
    if (idleWork(w, w->usLastReaderCheck + LJ_READER_CHECK_US - now,
                 readerCheckDue, &usDue)) {
      continue;
    }
    if (w->bUnsynced && idleWork(w, w->usLastSync + pCfg->usCheckpoint - now,
                                 checkpoint, &usDue)) {
      continue;
    }
    if (w->put.stage.nEnt > 0) {
      i64 usMerge = usIdle + LJ_STAGE_IDLE_US;
      if (usMerge < w->put.stage.usNoMergeUntil) {
        usMerge = w->put.stage.usNoMergeUntil;
      }
      if (idleWork(w, usMerge - now, stageMergeIdle, &usDue)) continue;
    } else if (compactDue(w, now)) {
      /* Idle with the stage merged: compact, a step at a time while no
      ** request comes. */
      if (idleWork(w, usIdle + LJ_COMPACT_IDLE_US - now, compactNow, &usDue)) {
        continue;
      }
    }
    {
      struct timespec dl; /* never forever: the reader check is due */
      ljDeadline(&dl, usDue);
      pthread_cond_timedwait(&w->condWork, &w->mutex, &dl);
    }
  }
}

/* Wait on condWork (mutex held) in state eWait until usEnd. */
static int writerWaitUntil(LjWriter *w, int eWait, i64 usEnd) {
  struct timespec dl;
  i64 usLeft = usEnd - ljNowUs();
  if (usLeft <= 0) return 0;
  w->eWait = eWait;
  ljDeadline(&dl, usLeft);
  pthread_cond_timedwait(&w->condWork, &w->mutex, &dl);
  return 1;
}

/* Let the batch fill (mutex held, queue not empty). */
static void writerGather(LjWriter *w) {
  const LjConfig *pCfg = &w->pEnv->cfg;
  /* Unless someone waits for a commit of anything queued (a ticket at or
  ** after the head's), give the batch up to sync_interval to fill. */
  i64 usEnd = w->pHead->usQueued + pCfg->usSyncInterval;
  while (!w->bStop && w->nQueued < pCfg->nBatch &&
         w->iFlushTicket < w->pHead->iTicket && !w->pTail->bWait &&
         pCfg->usSyncInterval > 0) {
    if (!writerWaitUntil(w, LJ_W_GATHER, usEnd)) break;
  }
  /* Group commit: the last batch served several submitters but fewer
  ** are queued now (they are still waking up from that commit).  Give
  ** them up to one commit's time, capped by sync_interval, to join:
  ** one commit for all of them beats one each. */
  if (w->nLastClients > 1 && !w->bStop) {
    i64 usWait = w->usLastCommit < pCfg->usSyncInterval ? w->usLastCommit
                                                        : pCfg->usSyncInterval;
    usEnd = ljNowUs() + usWait;
    while (!w->bStop && queueClients(w, w->nLastClients) < w->nLastClients) {
      if (!writerWaitUntil(w, LJ_W_GROUP, usEnd)) break;
    }
  }
  w->eWait = LJ_W_BUSY;
}

/* The writer's batch: the requests taken off the queue. */
typedef struct Batch Batch;
struct Batch {
  LjReq **aReq;
  int nReq, nAlloc;
  int nEv;
  u64 nByte;
};

/*
** Take a batch off the queue (mutex held): up to batch_size events and
** batch_bytes bytes; a truncation goes alone.  (The writer's own merges
** never enter the queue: they are alone in theirs too.)
*/
static void writerTake(LjWriter *w, Batch *b) {
  const LjConfig *pCfg = &w->pEnv->cfg;
  b->nReq = b->nEv = 0;
  b->nByte = 0;
  while (w->pHead) {
    LjReq *p = w->pHead;
    if (b->nReq > 0 &&
        (b->nEv + p->nEvent > pCfg->nBatch ||
         b->nByte + p->nByte > (u64)pCfg->nBatchBytes ||
         p->eType == LJ_REQ_TRUNCATE || b->aReq[0]->eType == LJ_REQ_TRUNCATE)) {
      break;
    }
    if (b->nReq >= b->nAlloc) {
      int nNew = b->nAlloc ? b->nAlloc * 2 : 64;
      LjReq **aNew = sqlite3_realloc64(b->aReq, sizeof(LjReq *) * (size_t)nNew);
      if (aNew == 0) break;
      b->aReq = aNew;
      b->nAlloc = nNew;
    }
    w->pHead = p->pNext;
    if (w->pHead == 0) w->pTail = 0;
    p->pNext = 0;
    p->bTaken = 1; /* from now on its submitter cannot withdraw it */
    if (b->nReq == 0) w->usTakenQueued = p->usQueued; /* health, closers */
    b->aReq[b->nReq++] = p;
    b->nEv += p->nEvent;
    b->nByte += p->nByte;
  }
  w->nQueued -= b->nEv;
  ljWriterPublish(w);
  if (w->nSpaceWait) pthread_cond_broadcast(&w->condDone);
  if (b->nReq > 0) {
    /* Remember how many submitters this batch serves (for the group
    ** wait).  The group shrinks by one per batch when submitters leave,
    ** so a batch that missed some does not lower the target for good. */
    int nSeen = b->nReq > 64 ? 0 : countClients(b->aReq, b->nReq, 64);
    w->nLastClients = nSeen > w->nLastClients - 1 ? nSeen : w->nLastClients - 1;
  }
}

/* Commit a batch (mutex not held) and record its latency. */
static int writerCommit(LjWriter *w, Batch *b, int *pbSync) {
  LjEnv *pEnv = w->pEnv;
  i64 usStart = ljNowUs();
  int mrc = batchCommit(w, b->aReq, b->nReq, pbSync);
  w->usLastCommit = ljNowUs() - usStart;
  if (mrc == 0 && pEnv->cfg.bMetrics) {
    i64 usEnd = ljNowUs();
    pthread_mutex_lock(&pEnv->m.histMutex);
    ljHistAdd(&pEnv->m.commitHist, (u64)(usEnd - usStart));
    pthread_mutex_unlock(&pEnv->m.histMutex);
    __atomic_add_fetch(&pEnv->m.nCommitEvents, (u64)b->nEv, __ATOMIC_RELAXED);
    __atomic_add_fetch(&pEnv->m.nBytesWritten, b->nByte, __ATOMIC_RELAXED);
  }
  return mrc;
}

/* After a batch (mutex not held): a checkpoint or merge that is due. */
static void writerAfterBatch(LjWriter *w) {
  readerCheckDue(w);
  if (w->bUnsynced && ljNowUs() - w->usLastSync >= w->pEnv->cfg.usCheckpoint) {
    checkpoint(w); /* a steady stream must not postpone it forever */
  }
  if (w->put.bTail && ljStageDue(&w->put.stage) &&
      ljNowUs() >= w->put.stage.usNoMergeUntil) {
    stageMergeNow(w);
  }
}

/* Free the writer (its thread is done). */
static void writerFree(LjWriter *w) {
  LjEnv *pEnv = w->pEnv;
  ljClientReap(w, 1);
  for (u32 i = 0; i < w->nHash; i++) {
    LjActor *p, *pNext;
    for (p = w->aHash[i]; p; p = pNext) {
      pNext = p->pHashNext;
      sqlite3_free(p);
    }
  }
  sqlite3_free(w->aHash);
  ljPutFree(&w->put);
  ljCompactFree(&w->compact);
  while (w->pPool) {
    LjReq *p = w->pPool;
    w->pPool = p->pNext;
    free(p);
  }
  sqlite3_free(w->zLastError);
  pthread_cond_destroy(&w->condWork);
  pthread_cond_destroy(&w->condDone);
  pthread_mutex_destroy(&w->mutex);
  sqlite3_free(w);
  pEnv->pWriter = 0;
}

/* The thread's last act: tell ljWriterStop, or, when it gave up waiting
** (detached), close the environment itself. */
static void writerExit(LjWriter *w) {
  LjEnv *pEnv = w->pEnv;
  int bDetached;
  pthread_mutex_lock(&w->mutex);
  w->bExited = 1;
  w->eState = LJ_W_STOPPED;
  bDetached = w->bDetached;
  pthread_cond_broadcast(&w->condDone);
  pthread_mutex_unlock(&w->mutex);
  if (bDetached) {
    writerFree(w);
    ljEnvReap(pEnv);
  }
}

static void *writerMain(void *pArg) {
  LjWriter *w = (LjWriter *)pArg;
  Batch b;
  memset(&b, 0, sizeof(b));
  pthread_mutex_lock(&w->mutex); /* after ljWriterStart has set w->thread */
  WRITER_ONLY(w);
  for (;;) {
    int bSync = 0, mrc;
    writerIdle(w);
    if (w->pHead == 0) break; /* stopping, queue drained */
    writerGather(w);
    writerTake(w, &b);
    if (b.nReq == 0) {
      /* Out of memory for the batch array: back off and try again. */
      pthread_mutex_unlock(&w->mutex);
      sqlite3_sleep(10);
      pthread_mutex_lock(&w->mutex);
      continue;
    }
    pthread_mutex_unlock(&w->mutex);
    mrc = writerCommit(w, &b, &bSync);
    pthread_mutex_lock(&w->mutex);
    batchFinish(w, b.aReq, b.nReq, mrc, bSync);
    w->usTakenQueued = 0;
    if (w->pOrphans) ljClientReap(w, 0);
    pthread_mutex_unlock(&w->mutex);
    /* Woken after the unlock, so that they do not block on the mutex. */
    wakeDone(w);
    pthread_cond_broadcast(&w->condDone);
    writerAfterBatch(w);
    pthread_mutex_lock(&w->mutex);
  }
  w->eWait = LJ_W_BUSY;
  pthread_mutex_unlock(&w->mutex);
  /* A clean close of a process that wrote leaves nothing staged: the
  ** next opener's lookups need not search the stage.  (A process that
  ** only read does not take the write lock at close.) */
  while (w->put.bTail && w->put.stage.nEnt > 0 && w->eState == LJ_W_RUNNING) {
    if (stageMergeNow(w)) break;
  }
  if (w->bUnsynced) checkpoint(w);
  sqlite3_free(b.aReq);
  writerExit(w);
  return 0;
}

/* The store's last pos, so health and journal_sync report it from the
** start (the writer learns it again inside its first transaction). */
static void initLastPos(LjWriter *w) {
  LjEnv *pEnv = w->pEnv;
  MDB_txn *txn;
  u64 pos = 0;
  i64 ts;
  ljGateEnter(pEnv);
  if (ljReadBegin(pEnv, &txn) == 0) {
    if (ljPutLastPos(pEnv, txn, &pos, &ts)) pos = 0;
    mdb_txn_abort(txn);
  }
  ljGateLeave(pEnv);
  w->lastPos = w->durablePos = (i64)pos;
  ljWriterPublish(w);
}

int ljWriterStart(LjEnv *pEnv, char **pzErr) {
  LjWriter *w = sqlite3_malloc64(sizeof(*w));
  pthread_condattr_t attr;
  int e;
  if (w == 0) return SQLITE_NOMEM;
  memset(w, 0, sizeof(*w));
  w->pEnv = pEnv;
  w->put.pEnv = pEnv;
  w->eFlags = -1;
  w->usLastSync = ljNowUs();
  w->compact.bListAll = 1; /* the first sweep visits every actor */
  w->compact.listGen = 1;
  pthread_mutex_init(&w->mutex, 0);
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&w->condWork, &attr);
  pthread_cond_init(&w->condDone, &attr);
  pthread_condattr_destroy(&attr);
  pEnv->pWriter = w;
  initLastPos(w);
  /* Held across the start: the thread's first act is to take the mutex,
  ** so it sees w->thread set (its assertions compare against it). */
  pthread_mutex_lock(&w->mutex);
  e = pthread_create(&w->thread, 0, writerMain, w);
  if (e == 0) w->bThread = 1;
  pthread_mutex_unlock(&w->mutex);
  if (e) {
    *pzErr = sqlite3_mprintf("lmdb_journal: cannot start the writer thread: %s",
                             strerror(e));
    pEnv->pWriter = 0;
    pthread_cond_destroy(&w->condWork);
    pthread_cond_destroy(&w->condDone);
    pthread_mutex_destroy(&w->mutex);
    sqlite3_free(w);
    return e == EAGAIN || e == ENOMEM ? SQLITE_NOMEM : SQLITE_ERROR;
  }
  return SQLITE_OK;
}

i64 ljWriterOldestReq(LjWriter *w) {
  if (w->usTakenQueued) return w->usTakenQueued;
  return w->pHead ? w->pHead->usQueued : 0;
}

/* Wait (mutex held) for the thread to exit, up to usTimeout, and not past
** usTimeout after the oldest request was queued (a stuck writer). */
static int writerAwaitExit(LjWriter *w, i64 usTimeout) {
  i64 usEnd = ljNowUs() + usTimeout;
  while (!w->bExited) {
    struct timespec dl;
    i64 usOldest = ljWriterOldestReq(w), usLeft;
    if (usOldest && usOldest + usTimeout < usEnd) {
      usEnd = usOldest + usTimeout;
    }
    usLeft = usEnd - ljNowUs();
    if (usLeft <= 0) break;
    ljDeadline(&dl, usLeft);
    pthread_cond_timedwait(&w->condDone, &w->mutex, &dl);
  }
  return w->bExited;
}

int ljWriterStop(LjEnv *pEnv, i64 usTimeout) {
  LjWriter *w = pEnv->pWriter;
  pthread_t thread;
  if (w == 0) return 1;
  pthread_mutex_lock(&w->mutex);
  w->bStop = 1;
  pthread_cond_signal(&w->condWork);
  if (w->bThread && usTimeout >= 0 && !writerAwaitExit(w, usTimeout)) {
    /* Stuck (another process holds the write lock, say): the thread keeps
    ** the environment and closes it when done (writerExit). */
    sqlite3_log(SQLITE_BUSY,
                "lmdbjournal: closing %s: the writer is not done after "
                "%lldms (sync_timeout, at least 1 s); it finishes in the "
                "background",
                pEnv->zDir, usTimeout / 1000);
    w->bDetached = 1;
    ljPinLibrary();     /* the thread outlives the connection */
    thread = w->thread; /* w may be freed once the mutex is released */
    pthread_mutex_unlock(&w->mutex);
    pthread_detach(thread);
    return 0;
  }
  pthread_mutex_unlock(&w->mutex);
  if (w->bThread) pthread_join(w->thread, 0);
  writerFree(w);
  return 1;
}
