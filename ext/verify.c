/*
** verify.c -- journal_verify: walk a whole store in one read transaction
** and check everything that can be checked against something else.
**
**   meta       the format version is this build's
**   actors     each value is well formed; actnum maps its number back to
**              the same id; both dbs hold as many entries
**   events     every run is well framed; every record's checksum and
**              framing; an actor's runs continue one another (its first
**              run may start anywhere: truncation removes a prefix); the
**              actor number is registered; no run holds a staged pos
**   stage      every batch's directory and runs are framed, its records
**              check, their pos lie in the batch's range; an actor's
**              staged seqs come after its runs
**   pos        manifests neither overlap nor go backwards; ts never
**              decreases in pos order; each entry names an event whose
**              record has that pos and ts; as many live entries as events
**   tags       each key is framed; the manifest entry of its pos names the
**              same event, whose tags hold the tag; as many entries as the
**              events have distinct tags
**   snapshots  every record's checksum and framing
**   trunclog   every entry is framed: key pos | ordinal >= 1, value
**              to_seq | an actor id of 1..400 bytes
**
** Memory is bounded whatever the store's size: the walk keeps a few
** cursors, counters and one decompression buffer (as large as the largest
** payload).  The gate is left and retaken every VERIFY_YIELD steps, so a
** long walk never holds up map growth; cursors re-seek when the map moved
** (the read transaction, hence the snapshot, stays the same).
*/
#include "internal.h"

#include <stdarg.h>
#include <string.h>

#define VERIFY_YIELD        4096 /* steps between two holds of the gate */
#define VERIFY_MAX_PROBLEMS 50   /* problems reported (all are counted) */
#define VERIFY_MAX_TAGS     256  /* distinct tags told apart per event */
#define VERIFY_FOUND        1000 /* vTagIs: the tag is there (not an rc) */

enum { V_MAIN = 0, V_EV, V_POS, V_STAGE, V_NCUR };

typedef struct Verify Verify;
struct Verify {
  LjEnv *pEnv;
  MDB_txn *txn;
  unsigned gen;             /* LjEnv.mapGen the cursors stand for */
  MDB_cursor *aCur[V_NCUR]; /* the walk's own cursor, then lookups */
  u64 nStep;
  sqlite3_str *pProb; /* the problems, a JSON array's body */
  u64 nProb;
  u64 nEvents, nActors, nSnaps, nBytes;
  u64 nIndexed;              /* live pos entries */
  u64 nTagEntries, nTagRefs; /* tag index entries; distinct tags of events */
  u64 stageLo;               /* first staged pos (UINT64_MAX: none) */
  u8 *aUnz;                  /* decompression buffer */
  size_t nUnz;
  u32 aTagSum[VERIFY_MAX_TAGS];
  int nTagSum;
};

/**************************************************************************
** Problems
*/

/* Append JSON string text of z (n bytes), escaped. */
static void vJsonStr(sqlite3_str *p, const char *z, int n) {
  sqlite3_str_appendchar(p, 1, '"');
  for (int i = 0; i < n; i++) {
    unsigned char c = (unsigned char)z[i];
    if (c == '"' || c == '\\')
      sqlite3_str_appendf(p, "\\%c", c);
    else if (c < 0x20)
      sqlite3_str_appendf(p, "\\u%04x", c);
    else
      sqlite3_str_appendchar(p, 1, (char)c);
  }
  sqlite3_str_appendchar(p, 1, '"');
}

/* The id of actor num for a message: "#num" when it is not registered. */
static void vActor(Verify *v, u64 num) {
  MDB_val k, d;
  u8 aNum[LJ_NUMKEY];
  ljPut64(aNum, num);
  k.mv_data = aNum;
  k.mv_size = sizeof(aNum);
  if (mdb_get(v->txn, v->pEnv->aDbi[LJ_DB_ACTNUM], &k, &d) == 0 &&
      d.mv_size <= LJ_MAX_ACTOR_BYTES &&
      ljUtf8Valid(d.mv_data, (int)d.mv_size)) {
    vJsonStr(v->pProb, d.mv_data, (int)d.mv_size);
  } else {
    sqlite3_str_appendf(v->pProb, "\"#%llu\"", (unsigned long long)num);
  }
}

/* Record a problem found in db zDb at the given place (0: not known). */
static void vProblem(Verify *v, const char *zDb, u64 num, u64 seq, u64 pos,
                     const char *zFmt, ...) {
  va_list ap;
  char *z;
  if (v->nProb++ >= VERIFY_MAX_PROBLEMS) return;
  va_start(ap, zFmt);
  z = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if (v->nProb > 1) sqlite3_str_appendchar(v->pProb, 1, ',');
  sqlite3_str_appendf(v->pProb, "{\"db\":\"%s\"", zDb);
  if (num) {
    sqlite3_str_appendall(v->pProb, ",\"actor\":");
    vActor(v, num);
  }
  if (seq)
    sqlite3_str_appendf(v->pProb, ",\"seq\":%llu", (unsigned long long)seq);
  if (pos)
    sqlite3_str_appendf(v->pProb, ",\"pos\":%llu", (unsigned long long)pos);
  sqlite3_str_appendall(v->pProb, ",\"problem\":");
  vJsonStr(v->pProb, z ? z : "out of memory", z ? (int)strlen(z) : 13);
  sqlite3_str_appendchar(v->pProb, 1, '}');
  sqlite3_free(z);
}

/**************************************************************************
** The walk
*/

/* Between two steps of the walk on cursor c: every VERIFY_YIELD steps
** leave the gate for a moment; if the map moved meanwhile, renew the
** cursors and put c back on its key. */
static int vYield(Verify *v, MDB_cursor *c) {
  MDB_val k, d;
  u8 aKey[512]; /* the longest key of any db (an actor id's 400) */
  size_t nKey = 0;
  unsigned gen;
  int mrc = 0;
  if (++v->nStep % VERIFY_YIELD) return 0;
  if (c && mdb_cursor_get(c, &k, &d, MDB_GET_CURRENT) == 0 &&
      k.mv_size <= sizeof(aKey)) {
    nKey = k.mv_size;
    memcpy(aKey, k.mv_data, nKey);
  }
  ljGateLeave(v->pEnv);
  ljGateEnter(v->pEnv);
  gen = __atomic_load_n(&v->pEnv->mapGen, __ATOMIC_ACQUIRE);
  if (gen == v->gen) return 0;
  v->gen = gen;
  for (int i = 0; i < V_NCUR && mrc == 0; i++) {
    if (v->aCur[i]) mrc = mdb_cursor_renew(v->txn, v->aCur[i]);
  }
  if (mrc == 0 && c && nKey) {
    k.mv_data = aKey;
    k.mv_size = nKey;
    mrc = mdb_cursor_get(c, &k, &d, MDB_SET_KEY);
  }
  return mrc;
}

/* Tag callback: count the distinct tags of one event (by checksum). */
static int vTagCount(void *pArg, const u8 *aTag, int nTag) {
  Verify *v = (Verify *)pArg;
  u32 x = ljCrc32c(0, aTag, (size_t)nTag);
  for (int i = 0; i < v->nTagSum; i++) {
    if (v->aTagSum[i] == x) return 0;
  }
  if (v->nTagSum < VERIFY_MAX_TAGS) v->aTagSum[v->nTagSum++] = x;
  v->nTagRefs++;
  return 0;
}

/* Check one event (bEvent) or snapshot record; *pRec gets it decoded.
** Returns 1 when it is sound. */
static int vRecord(Verify *v, const char *zDb, int bEvent, u64 num, u64 seq,
                   const u8 *a, u32 n, LjRec *pRec) {
  char *zErr = 0;
  v->nBytes += n;
  if (!ljRecCheck(a, n)) {
    vProblem(v, zDb, num, seq, n >= LJ_REC_HDR ? ljGet64(&a[LJ_REC_POS]) : 0,
             "checksum mismatch");
    return 0;
  }
  if (ljRecDecode(a, n, pRec, &v->aUnz, &v->nUnz)) {
    vProblem(v, zDb, num, seq, ljGet64(&a[LJ_REC_POS]), "malformed record");
    return 0;
  }
  if (pRec->nTags) {
    int rc;
    v->nTagSum = 0;
    rc = ljTagsParse((const char *)pRec->aTags, pRec->nTags,
                     bEvent ? vTagCount : 0, v, &zErr);
    sqlite3_free(zErr);
    if (rc) {
      vProblem(v, zDb, num, seq, pRec->pos, "malformed tags");
      return 0;
    }
  }
  return 1;
}

static int vMeta(Verify *v) {
  MDB_val k, d;
  int mrc;
  ljMetaKey(&k, LJ_META_FORMAT);
  mrc = mdb_get(v->txn, v->pEnv->aDbi[LJ_DB_META], &k, &d);
  if (mrc == MDB_NOTFOUND) {
    vProblem(v, "meta", 0, 0, 0, "no format version");
    return 0;
  }
  if (mrc == 0 && (d.mv_size != sizeof(u32) ||
                   ljGet32(d.mv_data) != LMDBJOURNAL_FORMAT_VERSION)) {
    vProblem(v, "meta", 0, 0, 0, "format is not %d",
             LMDBJOURNAL_FORMAT_VERSION);
  }
  return mrc;
}

/* The actors db, against actnum. */
static int vActors(Verify *v) {
  MDB_cursor *c = v->aCur[V_MAIN];
  MDB_val k, d, k2, d2;
  MDB_stat st;
  int mrc;
  for (mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
    u64 num, floor;
    u8 aNum[LJ_NUMKEY];
    v->nActors++;
    if (k.mv_size < 1 || k.mv_size > LJ_MAX_ACTOR_BYTES ||
        ljActorValGet(&d, &num, &floor) || num == 0) {
      vProblem(v, "actors", 0, 0, 0, "malformed entry %llu",
               (unsigned long long)v->nActors);
    } else {
      ljPut64(aNum, num);
      k2.mv_data = aNum;
      k2.mv_size = sizeof(aNum);
      mrc = mdb_get(v->txn, v->pEnv->aDbi[LJ_DB_ACTNUM], &k2, &d2);
      if (mrc == MDB_NOTFOUND ||
          (mrc == 0 && (d2.mv_size != k.mv_size ||
                        memcmp(d2.mv_data, k.mv_data, k.mv_size)))) {
        vProblem(v, "actors", num, 0, 0,
                 "actnum does not map the actor's number back to its id");
        mrc = 0;
      }
      if (mrc) return mrc;
    }
    if ((mrc = vYield(v, c)) != 0) return mrc;
  }
  if (mrc != MDB_NOTFOUND) return mrc;
  mrc = mdb_stat(v->txn, v->pEnv->aDbi[LJ_DB_ACTNUM], &st);
  if (mrc == 0 && st.ms_entries != v->nActors) {
    vProblem(v, "actnum", 0, 0, 0, "%llu entries for %llu actors",
             (unsigned long long)st.ms_entries, (unsigned long long)v->nActors);
  }
  return mrc;
}

/* Is actor number num registered? */
static int vKnown(Verify *v, u64 num) {
  MDB_val k, d;
  u8 aNum[LJ_NUMKEY];
  ljPut64(aNum, num);
  k.mv_data = aNum;
  k.mv_size = sizeof(aNum);
  return mdb_get(v->txn, v->pEnv->aDbi[LJ_DB_ACTNUM], &k, &d) == 0;
}

/* Check the records of one run (actor num, seqs seq0...). */
static void vRun(Verify *v, const char *zDb, u64 num, u64 seq0, const u8 *a,
                 size_t n, u64 posLo, u64 posHi) {
  u32 nRec = ljRunCount(a, n);
  if (nRec == 0) vProblem(v, zDb, num, seq0, 0, "empty or malformed run");
  for (u32 i = 0; i < nRec; i++) {
    const u8 *aRec;
    u32 nByte;
    LjRec r;
    if (ljRunRecord(a, n, i, &aRec, &nByte)) {
      vProblem(v, zDb, num, seq0 + i, 0, "malformed run");
      return;
    }
    v->nEvents++;
    if (vRecord(v, zDb, 1, num, seq0 + i, aRec, nByte, &r) &&
        (r.pos < posLo || r.pos > posHi)) {
      vProblem(v, zDb, num, seq0 + i, r.pos, "pos outside %s",
               posLo ? "its staged batch" : "the runs' range");
    }
  }
}

/* The events db: runs, records, seq contiguity per actor. */
static int vEvents(Verify *v) {
  MDB_cursor *c = v->aCur[V_MAIN];
  MDB_val k, d;
  u64 curNum = 0, nextSeq = 0;
  int mrc;
  for (mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
    u64 num, seq0;
    if (k.mv_size != LJ_EVKEY) {
      vProblem(v, "events", 0, 0, 0, "malformed key");
    } else {
      num = ljEvKeyNum(k.mv_data);
      seq0 = ljEvKeySeq(k.mv_data);
      if (num != curNum) {
        if (!vKnown(v, num)) {
          vProblem(v, "events", num, seq0, 0, "unregistered actor number");
        }
        curNum = num;
      } else if (seq0 != nextSeq) {
        vProblem(v, "events", num, seq0, 0,
                 "run starts at seq %llu, expected "
                 "%llu",
                 (unsigned long long)seq0, (unsigned long long)nextSeq);
      }
      nextSeq = seq0 + ljRunCount(d.mv_data, d.mv_size);
      vRun(v, "events", num, seq0, d.mv_data, d.mv_size, 1,
           v->stageLo == UINT64_MAX ? UINT64_MAX : v->stageLo - 1);
    }
    if ((mrc = vYield(v, c)) != 0) return mrc;
  }
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* The seq after actor num's last run in the events db (1 if none). */
static int vRunEnd(Verify *v, u64 num, u64 *pNext) {
  MDB_val k, d;
  u8 aKey[LJ_EVKEY];
  int mrc;
  ljEvKey(aKey, num + 1, 0);
  k.mv_data = aKey;
  k.mv_size = sizeof(aKey);
  *pNext = 1;
  mrc = mdb_cursor_get(v->aCur[V_EV], &k, &d, MDB_SET_RANGE);
  if (mrc == 0)
    mrc = mdb_cursor_get(v->aCur[V_EV], &k, &d, MDB_PREV);
  else if (mrc == MDB_NOTFOUND)
    mrc = mdb_cursor_get(v->aCur[V_EV], &k, &d, MDB_LAST);
  if (mrc == MDB_NOTFOUND) return 0;
  if (mrc == 0 && k.mv_size == LJ_EVKEY && ljEvKeyNum(k.mv_data) == num) {
    *pNext = ljEvKeySeq(k.mv_data) + ljRunCount(d.mv_data, d.mv_size);
  }
  return mrc;
}

/* The stage: batches, their directories and runs. */
static int vStage(Verify *v) {
  MDB_cursor *c = v->aCur[V_STAGE];
  MDB_val k, d, run;
  int mrc;
  for (mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
    u32 nAct = ljStageActors(&d), nEv = ljStageEvents(&d), nSeen = 0;
    u64 pos0 = k.mv_size == LJ_POSKEY ? ljGet64(k.mv_data) : 0, prevNum = 0;
    if (pos0 == 0 || nAct == 0) {
      vProblem(v, "stage", 0, 0, pos0, "malformed batch");
    }
    for (u32 i = 0; i < nAct && pos0; i++) {
      u64 num, seq0, next;
      if (ljStageDir(&d, i, &num, &seq0, &run) || num <= prevNum) {
        vProblem(v, "stage", 0, 0, pos0, "malformed batch directory");
        break;
      }
      prevNum = num;
      if ((mrc = vRunEnd(v, num, &next)) != 0) return mrc;
      if (seq0 < next) {
        vProblem(v, "stage", num, seq0, pos0,
                 "staged seqs overlap the actor's "
                 "runs (which end before seq %llu)",
                 (unsigned long long)next);
      }
      nSeen += ljRunCount(run.mv_data, run.mv_size);
      vRun(v, "stage", num, seq0, run.mv_data, run.mv_size, pos0,
           pos0 + nEv - 1);
    }
    if (pos0 && nSeen != nEv) {
      vProblem(v, "stage", 0, 0, pos0, "batch holds %u events, says %u", nSeen,
               nEv);
    }
    if ((mrc = vYield(v, c)) != 0) return mrc;
  }
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* The record of event (num, seq) at pos, run or staged; MDB_NOTFOUND when
** there is none. */
static int vFetch(Verify *v, u64 num, u64 seq, u64 pos, const u8 **pa,
                  u32 *pn) {
  MDB_val k, d;
  u32 i;
  int mrc;
  if (pos >= v->stageLo) {
    mrc = ljStageRecord(v->aCur[V_STAGE], pos, num, seq, &d);
    *pa = d.mv_data;
    *pn = (u32)d.mv_size;
    return mrc;
  }
  mrc = ljRunFind(v->aCur[V_EV], num, seq, &k, &d, &i);
  if (mrc == 0) mrc = ljRunRecord(d.mv_data, d.mv_size, i, pa, pn);
  return mrc;
}

/* Does the event the index names at pos exist, with that pos (and ts)? */
static int vIndexed(Verify *v, const char *zDb, u64 num, u64 seq, u64 pos,
                    const i64 *pTs) {
  const u8 *a;
  u32 n;
  int mrc = vFetch(v, num, seq, pos, &a, &n);
  if (mrc == MDB_NOTFOUND || mrc == MDB_CORRUPTED) {
    vProblem(v, zDb, num, seq, pos, "names an event that is not there");
    return 0;
  }
  if (mrc) return mrc;
  if (n < LJ_REC_HDR || ljGet64(&a[LJ_REC_POS]) != pos) {
    vProblem(v, zDb, num, seq, pos,
             "names an event whose record has another "
             "pos");
  } else if (pTs && ljRecTs(a) != *pTs) {
    vProblem(v, zDb, num, seq, pos, "ts %lld differs from the record's %lld",
             *pTs, ljRecTs(a));
  }
  return 0;
}

/* The pos index: manifests in order, each entry against its event. */
static int vPos(Verify *v) {
  MDB_cursor *c = v->aCur[V_MAIN];
  MDB_val k, d;
  u64 posNext = 1;
  i64 tsLast = INT64_MIN;
  int mrc;
  for (mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
    u64 pos0 = k.mv_size == LJ_POSKEY ? ljGet64(k.mv_data) : 0;
    u32 n = ljManiCount(&d);
    if (pos0 == 0 || n == 0 || d.mv_size % LJ_MANI_ENTRY) {
      vProblem(v, "pos", 0, 0, pos0, "malformed manifest");
    } else if (pos0 < posNext) {
      vProblem(v, "pos", 0, 0, pos0, "manifest overlaps the one before");
    }
    for (u32 i = 0; i < n && pos0; i++) {
      u64 num = 0, seq = 0;
      i64 ts = 0;
      ljManiEntry(&d, i, &num, &seq, &ts);
      if (ts < tsLast) {
        vProblem(v, "pos", num, seq, pos0 + i,
                 "ts %lld is before the ts %lld "
                 "of an earlier pos",
                 ts, tsLast);
      }
      tsLast = ts;
      if (num == 0) continue; /* truncated */
      v->nIndexed++;
      /* d stays valid: the gate is held until vYield. */
      if ((mrc = vIndexed(v, "pos", num, seq, pos0 + i, &ts)) != 0) return mrc;
    }
    if (pos0) posNext = pos0 + n;
    if ((mrc = vYield(v, c)) != 0) return mrc;
  }
  if (mrc != MDB_NOTFOUND) return mrc;
  if (v->nIndexed != v->nEvents) {
    vProblem(v, "pos", 0, 0, 0,
             "the index names %llu events, the store "
             "holds %llu",
             (unsigned long long)v->nIndexed, (unsigned long long)v->nEvents);
  }
  return 0;
}

/* Tag callback: is this the tag looked for (pArg: len u16 + bytes)? */
static int vTagIs(void *pArg, const u8 *aTag, int nTag) {
  const u8 *aKey = (const u8 *)pArg;
  return nTag == ljGet16(aKey) && memcmp(aTag, &aKey[2], (size_t)nTag) == 0
             ? VERIFY_FOUND
             : 0;
}

/* Does the record of (num, seq) at pos hold the tag of key aKey? */
static void vTagHeld(Verify *v, const u8 *aKey, u64 num, u64 seq, u64 pos) {
  const u8 *a;
  const u8 *aTags;
  u32 n;
  char *zErr = 0;
  int nTags, bHeld = 0;
  if (vFetch(v, num, seq, pos, &a, &n) || n < LJ_REC_HDR ||
      LJ_REC_HDR + (size_t)ljGet16(&a[LJ_REC_NTYPE]) +
              ljGet16(&a[LJ_REC_NTAGS]) >
          n) {
    return; /* the pos pass reports a missing or malformed event */
  }
  nTags = ljRecTags(a, &aTags);
  if (nTags) {
    bHeld = ljTagsParse((const char *)aTags, nTags, vTagIs, (void *)aKey,
                        &zErr) == VERIFY_FOUND;
    sqlite3_free(zErr);
  }
  if (!bHeld) vProblem(v, "tags", num, seq, pos, "the event lacks the tag");
}

/* The tag index: each entry against the pos index and its event. */
static int vTags(Verify *v) {
  MDB_cursor *c = v->aCur[V_MAIN];
  MDB_val k, d, k2, d2;
  int mrc;
  for (mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
    const u8 *a = k.mv_data;
    u64 pos, num, seq, mNum, mSeq;
    i64 ts;
    u32 i;
    v->nTagEntries++;
    if (k.mv_size < 2 + LJ_POSKEY || k.mv_size != 2u + ljGet16(a) + LJ_POSKEY ||
        d.mv_size != LJ_TAGVAL) {
      vProblem(v, "tags", 0, 0, 0, "malformed entry %llu",
               (unsigned long long)v->nTagEntries);
    } else {
      pos = ljGet64(&a[k.mv_size - LJ_POSKEY]);
      num = ljGet64(d.mv_data);
      seq = ljGet64((const u8 *)d.mv_data + 8);
      mrc = ljManiFind(v->aCur[V_POS], pos, &k2, &d2, &i);
      if (mrc == 0) mrc = ljManiEntry(&d2, i, &mNum, &mSeq, &ts);
      if (mrc == MDB_NOTFOUND || mrc == MDB_CORRUPTED ||
          (mrc == 0 && (mNum != num || mSeq != seq))) {
        vProblem(v, "tags", num, seq, pos,
                 "the pos index names another "
                 "event at this pos");
      } else if (mrc == 0) {
        vTagHeld(v, a, num, seq, pos);
      } else {
        return mrc;
      }
    }
    if ((mrc = vYield(v, c)) != 0) return mrc;
  }
  if (mrc != MDB_NOTFOUND) return mrc;
  if (v->nTagEntries != v->nTagRefs) {
    vProblem(v, "tags", 0, 0, 0, "%llu index entries for %llu tags of events",
             (unsigned long long)v->nTagEntries,
             (unsigned long long)v->nTagRefs);
  }
  return 0;
}

/* Snapshot records. */
static int vSnapshots(Verify *v) {
  MDB_cursor *c = v->aCur[V_MAIN];
  MDB_val k, d;
  int mrc;
  for (mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
    LjRec r;
    v->nSnaps++;
    if (k.mv_size != LJ_EVKEY) {
      vProblem(v, "snapshots", 0, 0, 0, "malformed key");
    } else {
      vRecord(v, "snapshots", 0, ljEvKeyNum(k.mv_data), ljEvKeySeq(k.mv_data),
              d.mv_data, (u32)d.mv_size, &r);
    }
    if ((mrc = vYield(v, c)) != 0) return mrc;
  }
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}

static int vTruncLog(Verify *v) {
  MDB_cursor *c = v->aCur[V_MAIN];
  MDB_val k, d;
  int mrc;
  for (mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
    if (k.mv_size != LJ_TRUNCKEY || ljGet32((const u8 *)k.mv_data + 8) == 0 ||
        d.mv_size <= 8 || d.mv_size > 8 + LJ_MAX_ACTOR_BYTES) {
      vProblem(v, "trunclog", 0, 0,
               k.mv_size == LJ_TRUNCKEY ? ljGet64(k.mv_data) : 0,
               "malformed entry");
    }
    if ((mrc = vYield(v, c)) != 0) return mrc;
  }
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* Each pass in turn, on the db it walks (the main cursor reopened). */
static int vPasses(Verify *v) {
  static const struct {
    int iDb;
    const char *zDb;
    int (*xPass)(Verify *);
  } aPass[] = {{LJ_DB_ACTORS, "actors", vActors},
               {LJ_DB_EVENTS, "events", vEvents},
               {LJ_DB_STAGE, "stage", vStage},
               {LJ_DB_POS, "pos", vPos},
               {LJ_DB_TAGS, "tags", vTags},
               {LJ_DB_SNAPS, "snapshots", vSnapshots},
               {LJ_DB_TRUNC, "trunclog", vTruncLog}};
  MDB_val k, d;
  int mrc = vMeta(v);
  if (mrc == MDB_NOTFOUND) mrc = 0;
  if (mrc == 0)
    mrc = mdb_cursor_open(v->txn, v->pEnv->aDbi[LJ_DB_EVENTS], &v->aCur[V_EV]);
  if (mrc == 0)
    mrc = mdb_cursor_open(v->txn, v->pEnv->aDbi[LJ_DB_POS], &v->aCur[V_POS]);
  if (mrc == 0)
    mrc =
        mdb_cursor_open(v->txn, v->pEnv->aDbi[LJ_DB_STAGE], &v->aCur[V_STAGE]);
  if (mrc == 0) {
    mrc = mdb_cursor_get(v->aCur[V_STAGE], &k, &d, MDB_FIRST);
    v->stageLo =
        mrc == 0 && k.mv_size == LJ_POSKEY ? ljGet64(k.mv_data) : UINT64_MAX;
    if (mrc == MDB_NOTFOUND) mrc = 0;
  }
  for (size_t i = 0; i < sizeof(aPass) / sizeof(aPass[0]) && mrc == 0; i++) {
    mrc =
        mdb_cursor_open(v->txn, v->pEnv->aDbi[aPass[i].iDb], &v->aCur[V_MAIN]);
    if (mrc == 0) mrc = aPass[i].xPass(v);
    if (mrc == MDB_CORRUPTED || mrc == MDB_PAGE_NOTFOUND) {
      /* LMDB found a damaged page: this walk cannot go on, the next can. */
      vProblem(v, aPass[i].zDb, 0, 0, 0, "%s", mdb_strerror(mrc));
      mrc = 0;
    }
    if (v->aCur[V_MAIN]) mdb_cursor_close(v->aCur[V_MAIN]);
    v->aCur[V_MAIN] = 0;
  }
  for (int i = 0; i < V_NCUR; i++) {
    if (v->aCur[i]) mdb_cursor_close(v->aCur[i]);
    v->aCur[i] = 0;
  }
  return mrc;
}

/* The report (see ljVerify). */
static char *vReport(Verify *v) {
  char *zProb = sqlite3_str_finish(v->pProb);
  char *z;
  v->pProb = 0;
  if (v->nProb == 0) {
    z = sqlite3_mprintf(
        "{\"ok\":true,\"events\":%llu,\"actors\":%llu,"
        "\"snapshots\":%llu,\"checked_bytes\":%llu}",
        (unsigned long long)v->nEvents, (unsigned long long)v->nActors,
        (unsigned long long)v->nSnaps, (unsigned long long)v->nBytes);
  } else {
    z = sqlite3_mprintf(
        "{\"ok\":false,\"problems_total\":%llu,\"problems\":"
        "[%s],\"events\":%llu,\"actors\":%llu,\"snapshots\":"
        "%llu,\"checked_bytes\":%llu}",
        (unsigned long long)v->nProb, zProb ? zProb : "",
        (unsigned long long)v->nEvents, (unsigned long long)v->nActors,
        (unsigned long long)v->nSnaps, (unsigned long long)v->nBytes);
  }
  sqlite3_free(zProb);
  return z;
}

int ljVerify(LjEnv *pEnv, char **pzJson, char **pzErr) {
  Verify v;
  int mrc;
  memset(&v, 0, sizeof(v));
  v.pEnv = pEnv;
  *pzJson = 0;
  if (ljFlushForRead(pEnv, pEnv->cfg.usSyncTimeout)) {
    *pzErr = sqlite3_mprintf("timed out waiting for queued appends to commit");
    return SQLITE_BUSY;
  }
  v.pProb = sqlite3_str_new(0);
  ljGateEnter(pEnv);
  mrc = ljReadBegin(pEnv, &v.txn);
  v.gen = __atomic_load_n(&pEnv->mapGen, __ATOMIC_ACQUIRE);
  if (mrc == 0) {
    LjReaderSlot slot;
    ljReaderTrack(pEnv, &slot);
    mrc = vPasses(&v);
    mdb_txn_abort(v.txn);
    ljReaderUntrack(pEnv, &slot);
  }
  ljGateLeave(pEnv);
  sqlite3_free(v.aUnz);
  if (mrc) {
    sqlite3_free(sqlite3_str_finish(v.pProb));
    *pzErr = ljMdbErr("journal_verify", mrc);
    return ljMdbToSqlite(mrc);
  }
  if (sqlite3_str_errcode(v.pProb)) {
    sqlite3_free(sqlite3_str_finish(v.pProb));
    return SQLITE_NOMEM;
  }
  *pzJson = vReport(&v);
  return *pzJson ? SQLITE_OK : SQLITE_NOMEM;
}
