/*
** table_write.c -- INSERTs into an lmdb_journal table.
**
** xUpdate checks each row and buffers it per table, in the order given;
** xSync submits the buffer as one request and waits for its commit (and
** the table's durability), so a COMMIT that returns OK is stored and one
** that fails stored nothing (or says its outcome is unknown, submit.c).
** xRollback and ROLLBACK TO discard the buffer or its tail.  An explicit
** seq is checked against the store's highest seq plus the rows of the
** same actor already buffered, which the buffer counts per actor.
*/
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/**************************************************************************
** Pending INSERTs of the open transaction
*/
struct JtPending {
  LjEvent *aEv;
  int nEv, nEvAlloc;
  int *aSave; /* nEv at the start of each savepoint level */
  int nSave;
  LjActor **apCnt; /* open-addressing set: actor -> pending count */
  i64 *aCnt;
  int nCntSlot;
};

static int pendSlot(JtPending *p, LjActor *a);

/* Count every actor's pending events afresh, in one pass. */
static void pendRecount(JtPending *p) {
  if (p->apCnt == 0) return;
  memset(p->apCnt, 0, sizeof(LjActor *) * (size_t)p->nCntSlot);
  for (int k = 0; k < p->nEv; k++) {
    int i = pendSlot(p, p->aEv[k].pActor);
    if (p->apCnt[i] == 0) {
      p->apCnt[i] = p->aEv[k].pActor;
      p->aCnt[i] = 0;
    }
    p->aCnt[i]++;
  }
}

static void pendTruncate(JtPending *p, int nKeep) {
  while (p->nEv > nKeep) sqlite3_free(p->aEv[--p->nEv].aRec);
  pendRecount(p);
}

void ljPendingFree(JtPending *p) {
  if (p) {
    pendTruncate(p, 0);
    sqlite3_free(p->aEv);
    sqlite3_free(p->aSave);
    sqlite3_free(p->apCnt);
    sqlite3_free(p->aCnt);
    sqlite3_free(p);
  }
}

/* Slot of an actor in the count set (grown by the caller). */
static int pendSlot(JtPending *p, LjActor *a) {
  int i = (int)(((uintptr_t)a >> 4) * 2654435761u) & (p->nCntSlot - 1);
  while (p->apCnt[i] && p->apCnt[i] != a) i = (i + 1) & (p->nCntSlot - 1);
  return i;
}

/* Pending events of actor a. */
static i64 pendCount(JtPending *p, LjActor *a) {
  int i;
  if (p->nCntSlot == 0) return 0;
  i = pendSlot(p, a);
  return p->apCnt[i] ? p->aCnt[i] : 0;
}

static int pendAdd(JtPending *p, LjEvent *pEv) {
  if (p->nEv >= p->nEvAlloc) {
    int nNew = p->nEvAlloc ? p->nEvAlloc * 2 : 16;
    LjEvent *a = sqlite3_realloc64(p->aEv, sizeof(LjEvent) * (size_t)nNew);
    if (a == 0) return SQLITE_NOMEM;
    p->aEv = a;
    p->nEvAlloc = nNew;
  }
  if (p->nEv * 2 >= p->nCntSlot) {
    int nNew = p->nCntSlot ? p->nCntSlot * 4 : 64;
    LjActor **ap = sqlite3_malloc64(sizeof(LjActor *) * (size_t)nNew);
    i64 *a = sqlite3_malloc64(sizeof(i64) * (size_t)nNew);
    if (ap == 0 || a == 0) {
      sqlite3_free(ap);
      sqlite3_free(a);
      return SQLITE_NOMEM;
    }
    memset(ap, 0, sizeof(LjActor *) * (size_t)nNew);
    sqlite3_free(p->apCnt);
    sqlite3_free(p->aCnt);
    p->apCnt = ap;
    p->aCnt = a;
    p->nCntSlot = nNew;
    pendRecount(p);
  }
  {
    int i = pendSlot(p, pEv->pActor);
    if (p->apCnt[i] == 0) {
      p->apCnt[i] = pEv->pActor;
      p->aCnt[i] = 0;
    }
    p->aCnt[i]++;
  }
  p->aEv[p->nEv++] = *pEv;
  return SQLITE_OK;
}

/**************************************************************************
** Writing
*/
static int jtError(LjTable *p, int rc, char *zErr) {
  sqlite3_free(p->base.zErrMsg);
  p->base.zErrMsg = zErr;
  return rc;
}

/* NULL, or the empty text .import gives for an empty CSV field. */
static int valueAbsent(sqlite3_value *v) {
  return sqlite3_value_type(v) == SQLITE_NULL ||
         (sqlite3_value_type(v) == SQLITE_TEXT && sqlite3_value_bytes(v) == 0);
}

int ljTableUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                  sqlite_int64 *pRowid) {
  LjTable *p = (LjTable *)pVtab;
  sqlite3_value **aCol = &argv[2];
  LjEvent ev;
  const char *zActor;
  int nActor, rc;
  char *zErr = 0;

  rc = ljTableUsable(p, &zErr);
  if (rc) return jtError(p, rc, zErr);
  if (argc == 1) {
    return jtError(p, SQLITE_CONSTRAINT,
                   sqlite3_mprintf("journal %s is append-only: DELETE is not "
                                   "allowed; use journal_truncate(table, "
                                   "actor_id, to_seq) to remove old events",
                                   p->zName));
  }
  if (sqlite3_value_type(argv[0]) != SQLITE_NULL) {
    return jtError(p, SQLITE_CONSTRAINT,
                   sqlite3_mprintf("journal %s is append-only: UPDATE is not "
                                   "allowed (events are immutable)",
                                   p->zName));
  }
  if (!valueAbsent(argv[1]) || !valueAbsent(aCol[LJ_COL_POS])) {
    return jtError(p, SQLITE_CONSTRAINT,
                   sqlite3_mprintf("pos is assigned by the journal; leave it "
                                   "out of the INSERT (or NULL, or empty "
                                   "as .import gives an empty CSV field)"));
  }
  if (sqlite3_value_type(aCol[LJ_COL_TAG]) != SQLITE_NULL) {
    return jtError(p, SQLITE_CONSTRAINT,
                   sqlite3_mprintf("tag is a filter column; give tags as a "
                                   "JSON array in the tags column"));
  }
  rc = ljCheckActor(aCol[LJ_COL_ACTOR], "actor_id", &zActor, &nActor, &zErr);
  if (rc) return jtError(p, rc == SQLITE_NOMEM ? rc : SQLITE_CONSTRAINT, zErr);
  rc = ljEventFromValues(p, zActor, nActor, aCol[LJ_COL_PAYLOAD],
                         aCol[LJ_COL_TYPE], aCol[LJ_COL_META],
                         aCol[LJ_COL_TAGS], 0, 0, &ev, &zErr);
  if (rc == SQLITE_OK) {
    rc = ljActorGet(p->pEnv, zActor, nActor, &ev.pActor, &zErr);
  }
  if (rc) {
    sqlite3_free(ev.aRec);
    return jtError(p, rc, zErr);
  }
  if (p->pPending == 0) {
    p->pPending = sqlite3_malloc64(sizeof(JtPending));
    if (p->pPending == 0) {
      sqlite3_free(ev.aRec);
      return SQLITE_NOMEM;
    }
    memset(p->pPending, 0, sizeof(JtPending));
  }
  /* An explicit seq must be exactly the next one. */
  if (sqlite3_value_type(aCol[LJ_COL_SEQ]) != SQLITE_NULL) {
    i64 seq = sqlite3_value_int64(aCol[LJ_COL_SEQ]);
    i64 next;
    if (sqlite3_value_numeric_type(aCol[LJ_COL_SEQ]) != SQLITE_INTEGER ||
        seq <= 0) {
      sqlite3_free(ev.aRec);
      return jtError(p, SQLITE_CONSTRAINT,
                     sqlite3_mprintf("seq must be a positive integer"));
    }
    rc = ljHighestSeq(p->pEnv, zActor, nActor, &next, &zErr);
    if (rc) {
      sqlite3_free(ev.aRec);
      return jtError(p, rc, zErr);
    }
    next += pendCount(p->pPending, ev.pActor) + 1;
    if (seq != next) {
      sqlite3_free(ev.aRec);
      return jtError(p, SQLITE_CONSTRAINT,
                     sqlite3_mprintf("expected seq %lld for actor '%s' but "
                                     "got %lld (seq must be exactly the next "
                                     "one)",
                                     next, zActor, seq));
    }
    ev.seq = (u64)seq;
  }
  if (sqlite3_value_type(aCol[LJ_COL_TS]) != SQLITE_NULL) {
    if (sqlite3_value_numeric_type(aCol[LJ_COL_TS]) != SQLITE_INTEGER ||
        sqlite3_value_int64(aCol[LJ_COL_TS]) < 0) {
      sqlite3_free(ev.aRec);
      return jtError(p, SQLITE_CONSTRAINT,
                     sqlite3_mprintf("ts must be a non-negative integer "
                                     "(milliseconds since the epoch)"));
    }
    ev.tsGiven = sqlite3_value_int64(aCol[LJ_COL_TS]);
  }
  rc = pendAdd(p->pPending, &ev);
  if (rc) {
    sqlite3_free(ev.aRec);
    return rc;
  }
  /* pos is assigned at COMMIT; there is no rowid to report yet. */
  *pRowid = 0;
  return SQLITE_OK;
}

int ljTableBegin(sqlite3_vtab *pVtab) {
  (void)pVtab;
  return SQLITE_OK;
}

int ljTableSync(sqlite3_vtab *pVtab) {
  LjTable *p = (LjTable *)pVtab;
  JtPending *pP = p->pPending;
  char *zErr = 0;
  int rc;
  if (pP == 0 || pP->nEv == 0) return SQLITE_OK;
  rc = ljTableUsable(p, &zErr);
  if (rc) return jtError(p, rc, zErr);
  rc = ljSubmit(p->pClient, pP->aEv, pP->nEv, 1, p->cfg.usSyncTimeout, &zErr);
  if (rc) return jtError(p, rc, zErr);
  pendTruncate(pP, 0);
  return SQLITE_OK;
}

int ljTableCommit(sqlite3_vtab *pVtab) {
  LjTable *p = (LjTable *)pVtab;
  if (p->pPending) {
    pendTruncate(p->pPending, 0);
    p->pPending->nSave = 0;
  }
  return SQLITE_OK;
}

int ljTableRollback(sqlite3_vtab *pVtab) {
  return ljTableCommit(pVtab);
}

int ljTableSavepoint(sqlite3_vtab *pVtab, int iSave) {
  LjTable *p = (LjTable *)pVtab;
  JtPending *pP;
  if (p->pPending == 0) {
    p->pPending = sqlite3_malloc64(sizeof(JtPending));
    if (p->pPending == 0) return SQLITE_NOMEM;
    memset(p->pPending, 0, sizeof(JtPending));
  }
  pP = p->pPending;
  if (iSave >= pP->nSave) {
    int *a = sqlite3_realloc64(pP->aSave, sizeof(int) * (size_t)(iSave + 1));
    if (a == 0) return SQLITE_NOMEM;
    pP->aSave = a;
    for (int i = pP->nSave; i < iSave; i++) a[i] = pP->nEv;
  }
  pP->aSave[iSave] = pP->nEv;
  pP->nSave = iSave + 1;
  return SQLITE_OK;
}

int ljTableRelease(sqlite3_vtab *pVtab, int iSave) {
  LjTable *p = (LjTable *)pVtab;
  if (p->pPending && iSave < p->pPending->nSave) p->pPending->nSave = iSave;
  return SQLITE_OK;
}

int ljTableRollbackTo(sqlite3_vtab *pVtab, int iSave) {
  LjTable *p = (LjTable *)pVtab;
  JtPending *pP = p->pPending;
  if (pP && iSave < pP->nSave) {
    pendTruncate(pP, pP->aSave[iSave]);
    pP->nSave = iSave + 1;
  }
  return SQLITE_OK;
}
