/*
** trunclog.c -- the truncation log: every truncation that deleted events,
** in the order it was committed, so that the shipper (ship.c) can send it
** to Kafka between the events it came between, and a restore can replay
** it (restore.c).
**
**   named db   key                              value
**   --------   -------------------------------  ---------------------------
**   trunclog   pos u64 | ordinal u32            to_seq u64 | actor id bytes
**
** pos is the highest pos assigned when the truncation committed (so the
** truncation comes after the event of that pos and before the next one),
** and the ordinal counts the truncations committed at that pos from 1.
** to_seq is the last seq deleted.  put.c writes an entry in the
** truncation's own write transaction, and only when it deleted at least
** one event.  Entries are never pruned: one costs 12 + 8 + the actor id's
** bytes plus LMDB's node header (8), about 40 bytes for a 12-byte actor
** id, per truncation that deleted something.
**
** The db was added without a format change: registry.c creates it when a
** store that lacks it is opened, and older builds neither read nor write
** it (their truncations are then not in the log).
*/
#include "internal.h"

#define TL_KEY LJ_TRUNCKEY

int ljTruncLogPut(LjEnv *pEnv, MDB_txn *txn, u64 pos, const u8 *aActor,
                  int nActor, u64 toSeq) {
  MDB_cursor *c;
  MDB_val k, v;
  u8 aKey[TL_KEY];
  u32 sub = 1;
  u8 *aVal;
  int mrc = mdb_cursor_open(txn, pEnv->aDbi[LJ_DB_TRUNC], &c);
  if (mrc) return mrc;
  mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
  if (mrc == 0 && k.mv_size == TL_KEY && ljGet64(k.mv_data) == pos) {
    sub = ljGet32((const u8 *)k.mv_data + 8) + 1;
  }
  if (mrc == 0 || mrc == MDB_NOTFOUND) {
    ljPut64(aKey, pos);
    ljPut32(aKey + 8, sub);
    k.mv_data = aKey;
    k.mv_size = TL_KEY;
    v.mv_data = 0;
    v.mv_size = 8 + (size_t)nActor;
    mrc = mdb_cursor_put(c, &k, &v, MDB_RESERVE);
  }
  if (mrc == 0) {
    aVal = v.mv_data;
    ljPut64(aVal, toSeq);
    memcpy(aVal + 8, aActor, (size_t)nActor);
  }
  mdb_cursor_close(c);
  return mrc;
}

int ljTruncLogRead(LjEnv *pEnv, MDB_txn *txn, u64 pos, u32 sub, LjTrunc *a,
                   int nMax, int *pn) {
  MDB_cursor *c;
  MDB_val k, v;
  u8 aKey[TL_KEY];
  int n = 0;
  int mrc = mdb_cursor_open(txn, pEnv->aDbi[LJ_DB_TRUNC], &c);
  *pn = 0;
  if (mrc) return mrc;
  /* The first entry after (pos, sub). */
  if (sub == UINT32_MAX) {
    pos++;
    sub = 0;
  } else {
    sub++;
  }
  ljPut64(aKey, pos);
  ljPut32(aKey + 8, sub);
  k.mv_data = aKey;
  k.mv_size = TL_KEY;
  for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0 && n < nMax;
       mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    LjTrunc *t = &a[n];
    if (k.mv_size != TL_KEY || v.mv_size <= 8 ||
        v.mv_size > 8 + LJ_MAX_ACTOR_BYTES) {
      mrc = MDB_CORRUPTED;
      break;
    }
    t->pos = ljGet64(k.mv_data);
    t->sub = ljGet32((const u8 *)k.mv_data + 8);
    t->toSeq = ljGet64(v.mv_data);
    t->nActor = (int)v.mv_size - 8;
    memcpy(t->zActor, (const u8 *)v.mv_data + 8, (size_t)t->nActor);
    n++;
  }
  mdb_cursor_close(c);
  *pn = n;
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}
