/*
** threads.c -- the threaded driver: many connections of one process append,
** read and sync on one store at the same time, then the journal is checked.
**
**     build/threads DIR [NTHREADS [NAPPENDS [OPTIONS]]]
**     build/tsan/threads build/tsan/data 4 20000     (make test-tsan)
**
** The extension is linked in statically (-DSQLITE_CORE) and registered
** with sqlite3_auto_extension, so every connection below has it.  The
** store lives in DIR/store, which is emptied first.  OPTIONS (default
** below) are appended to every CREATE VIRTUAL TABLE; every connection
** must give the same environment-level options.
**
** Threads, each with its own :memory: connection and its own
** lmdb_journal table on the same path:
**
**   NTHREADS writers   prepared SELECT journal_append('j', ?, ?) over
**                      three actors of their own and one shared actor
**                      (the process reserves the shared actor's seqs,
**                      so several threads may append to it); now and
**                      then a BEGIN; INSERT INTO j ... x TX_ROWS; COMMIT
**                      group to an actor "tN-tx" of their own; every
**                      SNAP_EVERY appends a journal_snapshot of the actor
**                      just appended to (the shared one too: threads
**                      race on its snapshots), state "ACTOR|SEQ", with
**                      snapshot_keep=SNAP_KEEP on every table;
**   2 readers          SELECT count(*), min(pos), max(pos) FROM j (one
**                      snapshot: gap-free), tail by pos > ? (consecutive
**                      positions, ts non-decreasing) and replay of an
**                      actor (seqs 1..n), in a loop while writes go on;
**   1 syncer           journal_sync every few ms (durable pos never
**                      goes backwards, nor journal_highest_seq of the
**                      shared actor), every other time also through a
**                      durability=none table, whose sync requests share
**                      batches with the appends.
**   1 loser            async appends that fail (2 MB events into a store
**                      of DIR/full with map_max=1MiB), read from
**                      journal_errors while that store's writer records
**                      more, then counted by journal_sync and cleared:
**                      every lost append is listed once.
**
** At the end: journal_sync, then on a fresh connection: count(*) equals
** the appends made, pos is gap-free, ts is non-decreasing in pos order,
** every actor's seqs are 1..n with the payload its writer gave each seq,
** and journal_highest_seq agrees; each own actor's newest snapshot is the
** last one its writer stored, at most SNAP_KEEP are kept per actor, every
** state names its actor and seq, and journal_actors counts each actor's
** events as count(*) does.  Then N_COLD threads replay every own actor at
** once on new connections (coldReplays), and again while the writer
** compacts the store (compact.c).  Prints a summary; exit status 0
** only if every check passed.
*/
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

int sqlite3_lmdbjournal_init(sqlite3 *db, char **pzErrMsg,
                             const sqlite3_api_routines *pApi);

#define N_OWN        3 /* actors of each writer thread */
#define N_READERS    2
#define TX_EVERY     500 /* a transaction group every TX_EVERY appends */
#define TX_ROWS      5   /* rows per transaction group */
#define SHARED_ACTOR "shared"
#define SNAP_EVERY   97 /* a snapshot every SNAP_EVERY appends */
#define SNAP_KEEP    3  /* snapshot_keep of every table */
#define DEFAULT_OPTIONS                                                    \
  "map_size='1MiB', queue_max=2000, batch_size=500, sync_timeout='120s', " \
  "compaction=on"

static const char *zStore;   /* DIR/store */
static const char *zOptions; /* extra CREATE VIRTUAL TABLE arguments */
static int nThread;
static int nAppend;

static atomic_int nFail;        /* checks failed */
static atomic_int bWritersDone; /* readers and syncer stop when set */
static atomic_llong nReaderScans;
static atomic_llong nReaderRows;
static atomic_llong nSyncs;
static atomic_llong nLost; /* appends the loser lost, each listed once */
static char zFull[4096];   /* DIR/full, the loser's store */

/* What each writer did, for the final checks. */
typedef struct Writer Writer;
struct Writer {
  int iThread;
  pthread_t tid;
  long long aOwnCount[N_OWN]; /* events appended to each own actor */
  long long nShared;          /* events appended to the shared actor */
  long long nTx;              /* rows inserted in transactions */
  long long *aSharedSeq;      /* seq returned for the k-th shared append */
  long long *aSharedI;        /* i (loop index) of the k-th shared append */
  long long aSnapSeq[N_OWN];  /* seq of the last snapshot of each own actor */
};

static void fail(const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  fprintf(stderr, "threads: FAIL: ");
  vfprintf(stderr, zFmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  atomic_fetch_add(&nFail, 1);
}

static double nowSec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleepMs(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, 0);
}

/* Open a :memory: connection with table "j" on the store.  NULL on error
** (already reported). */
static sqlite3 *openConn(const char *zWho) {
  sqlite3 *db = 0;
  char *zSql, *zErr = 0;
  int rc = sqlite3_open(":memory:", &db);
  if (rc != SQLITE_OK) {
    fail("%s: sqlite3_open: %s", zWho, db ? sqlite3_errmsg(db) : "no memory");
    sqlite3_close(db);
    return 0;
  }
  sqlite3_busy_timeout(db, 60000);
  zSql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE IF NOT EXISTS j USING lmdb_journal(path=%Q%s%s, "
      "snapshot_keep=%d)",
      zStore, zOptions[0] ? ", " : "", zOptions, SNAP_KEEP);
  rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
  sqlite3_free(zSql);
  if (rc != SQLITE_OK) {
    fail("%s: CREATE VIRTUAL TABLE: %s", zWho, zErr ? zErr : "?");
    sqlite3_free(zErr);
    sqlite3_close(db);
    return 0;
  }
  return db;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *zSql, const char *zWho) {
  sqlite3_stmt *p = 0;
  if (sqlite3_prepare_v2(db, zSql, -1, &p, 0) != SQLITE_OK) {
    fail("%s: prepare %s: %s", zWho, zSql, sqlite3_errmsg(db));
    return 0;
  }
  return p;
}

/* Run a one-row statement that returns an integer; -1 on error. */
static long long oneInt(sqlite3 *db, const char *zSql, const char *zWho) {
  sqlite3_stmt *p = prepare(db, zSql, zWho);
  long long v = -1;
  if (!p) return -1;
  if (sqlite3_step(p) == SQLITE_ROW) {
    v = sqlite3_column_int64(p, 0);
  } else {
    fail("%s: %s: %s", zWho, zSql, sqlite3_errmsg(db));
  }
  sqlite3_finalize(p);
  return v;
}

static void ownActor(char *zBuf, size_t n, int iThread, int k) {
  snprintf(zBuf, n, "t%d-a%d", iThread, k);
}

/* The payload writer iThread gives its i-th append. */
static void payloadOf(char *zBuf, size_t n, int iThread, long long i) {
  static const char zPad[] =
      "0123456789012345678901234567890123456789012345678901234567890";
  snprintf(zBuf, n, "{\"t\":%d,\"i\":%lld,\"pad\":\"%.*s\"}", iThread, i,
           (int)(i % 61), zPad);
}

/* The payload of the k-th row writer iThread inserted in a transaction. */
static void txPayload(char *zBuf, size_t n, int iThread, long long k) {
  snprintf(zBuf, n, "tx:%d:%lld", iThread, k);
}

/*--------------------------------------------------------------------------
** Writers.
*/
static void *writerMain(void *pArg) {
  Writer *w = (Writer *)pArg;
  char zWho[32], zActor[64], zPayload[160];
  sqlite3 *db;
  sqlite3_stmt *pApp = 0, *pIns = 0, *pSnap = 0;
  long long aLast[N_OWN] = {0};
  long long i;

  snprintf(zWho, sizeof zWho, "writer %d", w->iThread);
  db = openConn(zWho);
  if (!db) return 0;
  pApp = prepare(db, "SELECT journal_append('j', ?, ?)", zWho);
  pIns = prepare(db, "INSERT INTO j(actor_id, payload) VALUES (?, ?)", zWho);
  pSnap = prepare(db, "SELECT journal_snapshot('j', ?1, ?2, ?1 || '|' || ?2)",
                  zWho);
  if (!pApp || !pIns || !pSnap) goto done;

  for (i = 0; i < nAppend; i++) {
    int bShared = (i % 4) == 3;
    int k = (int)(i % N_OWN);
    long long seq;
    if (bShared) {
      snprintf(zActor, sizeof zActor, "%s", SHARED_ACTOR);
    } else {
      ownActor(zActor, sizeof zActor, w->iThread, k);
    }
    payloadOf(zPayload, sizeof zPayload, w->iThread, i);
    sqlite3_bind_text(pApp, 1, zActor, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(pApp, 2, zPayload, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(pApp) != SQLITE_ROW) {
      fail("%s: append %lld to %s: %s", zWho, i, zActor, sqlite3_errmsg(db));
      sqlite3_reset(pApp);
      goto done;
    }
    seq = sqlite3_column_int64(pApp, 0);
    sqlite3_reset(pApp);
    if (bShared) {
      w->aSharedSeq[w->nShared] = seq;
      w->aSharedI[w->nShared] = i;
      w->nShared++;
    } else {
      /* Only this thread appends to its own actors: strictly next. */
      if (seq != aLast[k] + 1) {
        fail("%s: %s got seq %lld after %lld", zWho, zActor, seq, aLast[k]);
        goto done;
      }
      aLast[k] = seq;
      w->aOwnCount[k]++;
    }
    /* Now and then, a snapshot at the seq just appended. */
    if ((i % SNAP_EVERY) == SNAP_EVERY - 1 || (i % SNAP_EVERY) == 3) {
      sqlite3_bind_text(pSnap, 1, zActor, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(pSnap, 2, seq);
      if (sqlite3_step(pSnap) != SQLITE_ROW) {
        fail("%s: snapshot of %s: %s", zWho, zActor, sqlite3_errmsg(db));
        sqlite3_reset(pSnap);
        goto done;
      }
      sqlite3_reset(pSnap);
      if (!bShared) w->aSnapSeq[k] = seq;
    }
    /* Now and then, a group of INSERTs committed together. */
    if ((i % TX_EVERY) == TX_EVERY - 1) {
      int r;
      char *zErr = 0;
      snprintf(zActor, sizeof zActor, "t%d-tx", w->iThread);
      if (sqlite3_exec(db, "BEGIN", 0, 0, &zErr) != SQLITE_OK) {
        fail("%s: BEGIN: %s", zWho, zErr);
        sqlite3_free(zErr);
        goto done;
      }
      for (r = 0; r < TX_ROWS; r++) {
        txPayload(zPayload, sizeof zPayload, w->iThread, w->nTx + r + 1);
        sqlite3_bind_text(pIns, 1, zActor, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(pIns, 2, zPayload, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(pIns) != SQLITE_DONE) {
          fail("%s: INSERT: %s", zWho, sqlite3_errmsg(db));
          sqlite3_reset(pIns);
          sqlite3_exec(db, "ROLLBACK", 0, 0, 0);
          goto done;
        }
        sqlite3_reset(pIns);
      }
      if (sqlite3_exec(db, "COMMIT", 0, 0, &zErr) != SQLITE_OK) {
        fail("%s: COMMIT: %s", zWho, zErr);
        sqlite3_free(zErr);
        goto done;
      }
      w->nTx += TX_ROWS;
      continue;
    }
    /* Now and then, read-your-writes: a new statement sees the append. */
    if ((i % 997) == 0 && !bShared) {
      char *zSql =
          sqlite3_mprintf("SELECT max(seq) FROM j WHERE actor_id=%Q", zActor);
      long long m = oneInt(db, zSql, zWho);
      sqlite3_free(zSql);
      if (m != seq) {
        fail("%s: read-your-writes: max(seq) of %s is %lld, appended %lld",
             zWho, zActor, m, seq);
      }
    }
  }
  /* Surface any error the writer hit for this connection's appends. */
  if (oneInt(db, "SELECT journal_sync('j')", zWho) < 0) {
    fail("%s: final journal_sync failed", zWho);
  }

done:
  sqlite3_finalize(pApp);
  sqlite3_finalize(pIns);
  sqlite3_finalize(pSnap);
  if (sqlite3_close(db) != SQLITE_OK) {
    fail("%s: sqlite3_close: %s", zWho, sqlite3_errmsg(db));
  }
  return 0;
}

/*--------------------------------------------------------------------------
** Readers.
*/
static void *readerMain(void *pArg) {
  int iReader = (int)(long)pArg;
  char zWho[32], zActor[64];
  sqlite3 *db;
  sqlite3_stmt *pCount = 0, *pTail = 0, *pReplay = 0;
  long long lastCount = 0, tailPos = 0, tailTs = 0;
  int iter = 0;

  snprintf(zWho, sizeof zWho, "reader %d", iReader);
  db = openConn(zWho);
  if (!db) return 0;
  pCount = prepare(db, "SELECT count(*), min(pos), max(pos) FROM j", zWho);
  pTail = prepare(
      db, "SELECT pos, ts FROM j WHERE pos > ? ORDER BY pos LIMIT 5000", zWho);
  pReplay =
      prepare(db, "SELECT seq FROM j WHERE actor_id = ? ORDER BY seq", zWho);
  if (!pCount || !pTail || !pReplay) goto done;

  do {
    int bLast = atomic_load(&bWritersDone);
    long long n, seq;
    int rc;

    /* One snapshot: count and positions agree. */
    if (sqlite3_step(pCount) != SQLITE_ROW) {
      fail("%s: count: %s", zWho, sqlite3_errmsg(db));
      goto done;
    }
    n = sqlite3_column_int64(pCount, 0);
    if (n > 0) {
      long long lo = sqlite3_column_int64(pCount, 1);
      long long hi = sqlite3_column_int64(pCount, 2);
      if (hi - lo + 1 != n) {
        fail("%s: count %lld but pos %lld..%lld", zWho, n, lo, hi);
      }
    }
    if (n < lastCount) {
      fail("%s: count went back from %lld to %lld", zWho, lastCount, n);
    }
    lastCount = n;
    sqlite3_reset(pCount);

    /* Tail: consecutive positions, ts non-decreasing. */
    sqlite3_bind_int64(pTail, 1, tailPos);
    while ((rc = sqlite3_step(pTail)) == SQLITE_ROW) {
      long long pos = sqlite3_column_int64(pTail, 0);
      long long ts = sqlite3_column_int64(pTail, 1);
      if (tailPos != 0 && pos != tailPos + 1) {
        fail("%s: tail: pos %lld after %lld", zWho, pos, tailPos);
      }
      if (ts < tailTs) {
        fail("%s: tail: ts %lld at pos %lld after ts %lld", zWho, ts, pos,
             tailTs);
      }
      tailPos = pos;
      tailTs = ts;
      atomic_fetch_add(&nReaderRows, 1);
    }
    if (rc != SQLITE_DONE) fail("%s: tail: %s", zWho, sqlite3_errmsg(db));
    sqlite3_reset(pTail);

    /* Replay an actor: 1..n. */
    if (iter % 2) {
      snprintf(zActor, sizeof zActor, "%s", SHARED_ACTOR);
    } else {
      ownActor(zActor, sizeof zActor, iter % nThread, iter % N_OWN);
    }
    sqlite3_bind_text(pReplay, 1, zActor, -1, SQLITE_TRANSIENT);
    seq = 0;
    while ((rc = sqlite3_step(pReplay)) == SQLITE_ROW) {
      long long s = sqlite3_column_int64(pReplay, 0);
      if (s != seq + 1) {
        fail("%s: replay %s: seq %lld after %lld", zWho, zActor, s, seq);
        break;
      }
      seq = s;
      atomic_fetch_add(&nReaderRows, 1);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
      fail("%s: replay: %s", zWho, sqlite3_errmsg(db));
    }
    sqlite3_reset(pReplay);
    atomic_fetch_add(&nReaderScans, 1);
    iter++;
    if (bLast) break;
  } while (atomic_load(&nFail) == 0);

done:
  sqlite3_finalize(pCount);
  sqlite3_finalize(pTail);
  sqlite3_finalize(pReplay);
  if (sqlite3_close(db) != SQLITE_OK) {
    fail("%s: sqlite3_close: %s", zWho, sqlite3_errmsg(db));
  }
  return 0;
}

/*--------------------------------------------------------------------------
** Syncer.
*/
static void *syncerMain(void *pArg) {
  sqlite3 *db;
  sqlite3_stmt *p, *pHi, *pNone = 0;
  long long last = 0, lastHi = 0;
  int iRound = 0;
  (void)pArg;
  db = openConn("syncer");
  if (!db) return 0;
  /* Every other sync goes through a durability=none table of the same
  ** store: its journal_sync queues a sync request, which then shares a
  ** batch with the writers' appends. */
  if (strstr(zOptions, "durability") == 0) {
    char *zSql = sqlite3_mprintf(
        "CREATE VIRTUAL TABLE jn USING lmdb_journal(path=%Q%s%s, "
        "durability=none)",
        zStore, zOptions[0] ? ", " : "", zOptions);
    char *zErr = 0;
    if (sqlite3_exec(db, zSql, 0, 0, &zErr) != SQLITE_OK) {
      fail("syncer: CREATE VIRTUAL TABLE jn: %s", zErr ? zErr : "?");
    }
    sqlite3_free(zErr);
    sqlite3_free(zSql);
    pNone = prepare(db, "SELECT journal_sync('jn')", "syncer");
  }
  p = prepare(db, "SELECT journal_sync('j')", "syncer");
  pHi = prepare(db, "SELECT journal_highest_seq('j', '" SHARED_ACTOR "')",
                "syncer");
  while (p && pHi && !atomic_load(&bWritersDone)) {
    long long pos, hi;
    if (sqlite3_step(pHi) != SQLITE_ROW) {
      fail("syncer: journal_highest_seq: %s", sqlite3_errmsg(db));
      break;
    }
    hi = sqlite3_column_int64(pHi, 0);
    sqlite3_reset(pHi);
    if (hi < lastHi) {
      fail("syncer: journal_highest_seq went back %lld -> %lld", lastHi, hi);
    }
    lastHi = hi;
    if (pNone && (++iRound & 1)) {
      if (sqlite3_step(pNone) != SQLITE_ROW) {
        fail("syncer: journal_sync('jn'): %s", sqlite3_errmsg(db));
        break;
      }
      sqlite3_reset(pNone);
    }
    if (sqlite3_step(p) != SQLITE_ROW) {
      fail("syncer: journal_sync: %s", sqlite3_errmsg(db));
      break;
    }
    pos = sqlite3_column_int64(p, 0);
    sqlite3_reset(p);
    if (pos < last)
      fail("syncer: durable pos went back %lld -> %lld", last, pos);
    last = pos;
    atomic_fetch_add(&nSyncs, 1);
    sleepMs(5);
  }
  sqlite3_finalize(p);
  sqlite3_finalize(pHi);
  sqlite3_finalize(pNone);
  if (sqlite3_close(db) != SQLITE_OK) {
    fail("syncer: sqlite3_close: %s", sqlite3_errmsg(db));
  }
  return 0;
}

/*--------------------------------------------------------------------------
** Loser.
*/
#define LOSER_ROUNDS  40 /* at most, while the writers run */
#define LOSER_APPENDS 4  /* failing appends per round */

/* Read journal_errors('f') while its writer may be recording: ids go up
** one by one from the first; returns the highest id (0: none). */
static long long loserRead(sqlite3 *db, long long *pnRows) {
  sqlite3_stmt *p = prepare(db, "SELECT id FROM journal_errors('f')", "loser");
  long long prev = 0, n = 0;
  if (!p) return 0;
  while (sqlite3_step(p) == SQLITE_ROW) {
    long long id = sqlite3_column_int64(p, 0);
    if (prev && id != prev + 1) fail("loser: id %lld after %lld", id, prev);
    prev = id;
    n++;
  }
  sqlite3_finalize(p);
  *pnRows = n;
  return prev;
}

static void *loserMain(void *pArg) {
  sqlite3 *db = openConn("loser");
  sqlite3_stmt *pApp = 0;
  long long nListed = 0, nCounted = 0, nAppended = 0;
  char *zSql;
  (void)pArg;
  if (!db) return 0;
  zSql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE f USING lmdb_journal(path=%Q, "
      "map_size='1MiB', map_max='1MiB')",
      zFull);
  if (sqlite3_exec(db, zSql, 0, 0, 0) != SQLITE_OK) {
    fail("loser: CREATE VIRTUAL TABLE f: %s", sqlite3_errmsg(db));
  } else {
    pApp = prepare(db, "SELECT journal_append('f', 'lost', zeroblob(2000000))",
                   "loser");
  }
  sqlite3_free(zSql);
  for (int r = 0; pApp && r < LOSER_ROUNDS && !atomic_load(&bWritersDone);
       r++) {
    long long n, k, upTo;
    for (int i = 0; i < LOSER_APPENDS; i++) {
      if (sqlite3_step(pApp) != SQLITE_ROW) {
        fail("loser: append: %s", sqlite3_errmsg(db));
      }
      sqlite3_reset(pApp);
      nAppended++;
    }
    loserRead(db, &n); /* races the writer recording them */
    if (sqlite3_exec(db, "SELECT journal_sync('f')", 0, 0, 0) == SQLITE_OK) {
      fail("loser: journal_sync reported no failure");
    } else if (sscanf(sqlite3_errmsg(db), "journal_sync: %lld async", &k) !=
               1) {
      fail("loser: journal_sync: %s", sqlite3_errmsg(db));
    } else {
      nCounted += k;
    }
    upTo = loserRead(db, &n);
    zSql = sqlite3_mprintf("SELECT journal_errors_clear('f', %lld)", upTo);
    k = oneInt(db, zSql, "loser");
    sqlite3_free(zSql);
    if (k != n) fail("loser: cleared %lld of %lld rows", k, n);
    nListed += n;
    sleepMs(5);
  }
  if (nListed != nAppended || nCounted != nAppended) {
    fail("loser: %lld appends lost, %lld listed, %lld counted by journal_sync",
         nAppended, nListed, nCounted);
  }
  atomic_store(&nLost, nListed);
  sqlite3_finalize(pApp);
  if (sqlite3_close(db) != SQLITE_OK) {
    fail("loser: sqlite3_close: %s", sqlite3_errmsg(db));
  }
  return 0;
}

/*--------------------------------------------------------------------------
** Final checks, on a fresh connection after everything was synced.
*/
static int cmpLL(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

/* Check one actor's events: seqs 1..nExpect, payload of seq s is
** azPayload[s-1] (when azPayload is given). */
static void checkActor(sqlite3 *db, const char *zActor, long long nExpect,
                       char **azPayload) {
  sqlite3_stmt *p =
      prepare(db,
              "SELECT seq, payload, typeof(payload) FROM j WHERE actor_id = ? "
              "ORDER BY seq",
              "check");
  char *zSql;
  long long seq = 0, hi;
  int rc;
  if (!p) return;
  sqlite3_bind_text(p, 1, zActor, -1, SQLITE_TRANSIENT);
  while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
    long long s = sqlite3_column_int64(p, 0);
    const char *z = (const char *)sqlite3_column_text(p, 1);
    const char *zType = (const char *)sqlite3_column_text(p, 2);
    if (s != seq + 1) {
      fail("check: %s: seq %lld after %lld", zActor, s, seq);
      break;
    }
    seq = s;
    if (strcmp(zType, "text") != 0) {
      fail("check: %s seq %lld: payload type %s", zActor, s, zType);
    } else if (azPayload && s <= nExpect && strcmp(z, azPayload[s - 1]) != 0) {
      fail("check: %s seq %lld: payload %s, expected %s", zActor, s, z,
           azPayload[s - 1]);
    }
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    fail("check: replay %s: %s", zActor, sqlite3_errmsg(db));
  }
  sqlite3_finalize(p);
  if (seq != nExpect) {
    fail("check: %s has %lld events, expected %lld", zActor, seq, nExpect);
  }
  zSql = sqlite3_mprintf("SELECT journal_highest_seq('j', %Q)", zActor);
  hi = oneInt(db, zSql, "check");
  sqlite3_free(zSql);
  if (hi != nExpect) {
    fail("check: journal_highest_seq of %s is %lld, expected %lld", zActor, hi,
         nExpect);
  }
}

static void finalChecks(Writer *aW, long long *pnRows) {
  sqlite3 *db = openConn("check");
  sqlite3_stmt *p;
  long long nTotal = (long long)nThread * nAppend, nShared = 0, nTx = 0;
  long long n, lo, hi, prevPos = 0, prevTs = 0, nRows = 0, k;
  char **azShared = 0;
  int t, rc;
  char zBuf[160];

  if (!db) return;
  if (oneInt(db, "SELECT journal_sync('j')", "check") < 0) goto done;
  for (t = 0; t < nThread; t++) nTx += aW[t].nTx;
  nTotal += nTx;

  /* Totals and gap-free positions. */
  p = prepare(db, "SELECT count(*), min(pos), max(pos) FROM j", "check");
  if (!p) goto done;
  if (sqlite3_step(p) != SQLITE_ROW) {
    fail("check: count: %s", sqlite3_errmsg(db));
    sqlite3_finalize(p);
    goto done;
  }
  n = sqlite3_column_int64(p, 0);
  lo = sqlite3_column_int64(p, 1);
  hi = sqlite3_column_int64(p, 2);
  sqlite3_finalize(p);
  *pnRows = n;
  if (n != nTotal) fail("check: count(*) %lld, appended %lld", n, nTotal);
  if (n > 0 && hi - lo + 1 != n) {
    fail("check: pos %lld..%lld for %lld rows", lo, hi, n);
  }

  /* Full scan in pos order: consecutive, ts non-decreasing. */
  p = prepare(db, "SELECT pos, ts FROM j ORDER BY pos", "check");
  if (!p) goto done;
  while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
    long long pos = sqlite3_column_int64(p, 0);
    long long ts = sqlite3_column_int64(p, 1);
    if (nRows > 0 && pos != prevPos + 1) {
      fail("check: scan: pos %lld after %lld", pos, prevPos);
      break;
    }
    if (ts < prevTs) {
      fail("check: scan: ts %lld at pos %lld after %lld", ts, pos, prevTs);
      break;
    }
    prevPos = pos;
    prevTs = ts;
    nRows++;
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    fail("check: scan: %s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(p);
  if (nRows != n) fail("check: scan returned %lld rows, count %lld", nRows, n);

  /* Own actors: every seq carries the payload of the append that got it.
  ** Append i of thread t went to own actor i%3 unless i%4==3. */
  for (t = 0; t < nThread; t++) {
    int kk;
    for (kk = 0; kk < N_OWN; kk++) {
      char **az = calloc((size_t)aW[t].aOwnCount[kk] + 1, sizeof(char *));
      long long s = 0, i;
      for (i = 0; i < nAppend && az; i++) {
        if ((i % 4) == 3 || (int)(i % N_OWN) != kk) continue;
        if (s >= aW[t].aOwnCount[kk]) break;
        payloadOf(zBuf, sizeof zBuf, t, i);
        az[s++] = strdup(zBuf);
      }
      ownActor(zBuf, sizeof zBuf, t, kk);
      checkActor(db, zBuf, aW[t].aOwnCount[kk],
                 s == aW[t].aOwnCount[kk] ? az : 0);
      for (i = 0; az && i < s; i++) free(az[i]);
      free(az);
    }
    nShared += aW[t].nShared;

    /* The transaction groups: all there, in order. */
    {
      char **az = calloc((size_t)aW[t].nTx + 1, sizeof(char *));
      long long i;
      for (i = 0; az && i < aW[t].nTx; i++) {
        txPayload(zBuf, sizeof zBuf, t, i + 1);
        az[i] = strdup(zBuf);
      }
      snprintf(zBuf, sizeof zBuf, "t%d-tx", t);
      checkActor(db, zBuf, aW[t].nTx, az);
      for (i = 0; az && i < aW[t].nTx; i++) free(az[i]);
      free(az);
    }
  }

  /* The shared actor: the seqs handed out are exactly 1..n, and each holds
  ** the payload of the append that received it. */
  {
    long long *aAll = malloc(sizeof(long long) * (size_t)(nShared + 1));
    long long m = 0;
    azShared = calloc((size_t)nShared + 1, sizeof(char *));
    for (t = 0; t < nThread && aAll && azShared; t++) {
      for (k = 0; k < aW[t].nShared; k++) {
        long long s = aW[t].aSharedSeq[k];
        aAll[m++] = s;
        if (s >= 1 && s <= nShared && !azShared[s - 1]) {
          payloadOf(zBuf, sizeof zBuf, t, aW[t].aSharedI[k]);
          azShared[s - 1] = strdup(zBuf);
        }
      }
    }
    if (aAll && azShared) {
      qsort(aAll, (size_t)m, sizeof(long long), cmpLL);
      for (k = 0; k < m; k++) {
        if (aAll[k] != k + 1) {
          fail(
              "check: shared actor: seqs handed out are not 1..%lld "
              "(position %lld holds %lld)",
              m, k, aAll[k]);
          break;
        }
      }
      checkActor(db, SHARED_ACTOR, nShared, k == m ? azShared : 0);
    } else {
      fail("check: out of memory");
    }
    free(aAll);
  }

  /* Snapshots: own actors' newest is the last stored, retention held,
  ** every state names its actor and seq; journal_actors counts right. */
  for (t = 0; t < nThread; t++) {
    int kk;
    for (kk = 0; kk < N_OWN; kk++) {
      char *zSql;
      ownActor(zBuf, sizeof zBuf, t, kk);
      zSql = sqlite3_mprintf(
          "SELECT coalesce(max(seq), 0) FROM "
          "journal_snapshots('j') WHERE actor_id=%Q",
          zBuf);
      k = oneInt(db, zSql, "check");
      sqlite3_free(zSql);
      if (k != aW[t].aSnapSeq[kk]) {
        fail("check: %s: newest snapshot %lld, stored %lld last", zBuf, k,
             aW[t].aSnapSeq[kk]);
      }
    }
  }
  k = oneInt(db,
             "SELECT count(*) FROM (SELECT actor_id FROM "
             "journal_snapshots('j') GROUP BY actor_id HAVING count(*) > "
             "3)",
             "check");
  if (k != 0)
    fail("check: %lld actors keep more than %d snapshots", k, SNAP_KEEP);
  k = oneInt(db,
             "SELECT count(*) FROM journal_snapshots('j') "
             "WHERE state IS NOT actor_id || '|' || seq",
             "check");
  if (k != 0) fail("check: %lld snapshots with a wrong state", k);
  k = oneInt(db,
             "SELECT count(*) FROM journal_actors('j') a WHERE events IS "
             "NOT (SELECT count(*) FROM j WHERE actor_id = a.actor_id) "
             "OR highest_seq IS NOT (SELECT max(seq) FROM j WHERE "
             "actor_id = a.actor_id)",
             "check");
  if (k != 0) fail("check: journal_actors miscounts %lld actors", k);

  /* Exactly the actors written to. */
  {
    long long nActors =
        oneInt(db, "SELECT count(DISTINCT actor_id) FROM j", "check");
    long long nExpect = (long long)nThread * N_OWN + (nShared > 0);
    for (t = 0; t < nThread; t++) nExpect += aW[t].nTx > 0;
    if (nActors != nExpect) {
      fail("check: %lld distinct actors, expected %lld", nActors, nExpect);
    }
  }

done:
  if (azShared) {
    for (k = 0; k < nShared; k++) free(azShared[k]);
    free(azShared);
  }
  if (db && sqlite3_close(db) != SQLITE_OK) {
    fail("check: sqlite3_close: %s", sqlite3_errmsg(db));
  }
}

/*--------------------------------------------------------------------------
** Cold replays: after the checks, N_COLD threads open connections anew and
** replay every own actor at once, each thread from a different one, so
** that they race on runs no read of the process touched yet (scan.c,
** coldRun: the map's address learnt, windows marked, runs read by pread;
** with staging, merged runs are large enough to be read so).
*/
#define N_COLD 4
typedef struct ColdJob ColdJob;
struct ColdJob {
  const Writer *aW;
  int iThread;
  int bUntilCompacted;
};

static atomic_int bCompacted; /* compaction replays stop when set */

/* Replay every own actor once, from a different one in each thread; with
** bUntilCompacted, again and again until bCompacted is set. */
static void *coldMain(void *pArg) {
  const ColdJob *pJob = pArg;
  sqlite3 *db = openConn("cold");
  int nAct = nThread * N_OWN;
  char zBuf[160];
  if (!db) return 0;
  do {
    for (int i = 0; i < nAct; i++) {
      int a = (i + pJob->iThread * 5) % nAct, t = a / N_OWN, kk = a % N_OWN;
      ownActor(zBuf, sizeof zBuf, t, kk);
      checkActor(db, zBuf, pJob->aW[t].aOwnCount[kk], 0);
    }
  } while (pJob->bUntilCompacted && !atomic_load(&bCompacted));
  if (sqlite3_close(db) != SQLITE_OK) fail("cold: sqlite3_close");
  return 0;
}

/*
** Run the cold replays; the store's runs_read_cold afterwards (db holds
** the environment open meanwhile: its counters live as long).  With
** bCompact, an append first makes a compaction sweep due (compact.c),
** and the threads replay while the writer compacts, until the sweep is
** over; *pnCompacted gets runs_compacted.
*/
static long long coldReplays(const Writer *aW, int bCompact,
                             long long *pnCompacted) {
  pthread_t aTid[N_COLD];
  ColdJob aJob[N_COLD];
  sqlite3 *db = openConn("cold");
  long long n;
  int t;
  if (!db) return -1;
  long long nCompacted0 = 0;
  if (bCompact) {
    atomic_store(&bCompacted, 0);
    nCompacted0 = oneInt(db,
                         "SELECT value FROM journal_metrics('j') "
                         "WHERE name = 'runs_compacted'",
                         "cold");
    oneInt(db, "SELECT journal_append('j', 'compact-trigger', 'x')", "cold");
    oneInt(db, "SELECT journal_sync('j')", "cold");
  }
  for (t = 0; t < N_COLD; t++) {
    aJob[t].aW = aW;
    aJob[t].iThread = t;
    aJob[t].bUntilCompacted = bCompact;
    if (pthread_create(&aTid[t], 0, coldMain, &aJob[t]) != 0) {
      fail("cold: pthread_create failed");
      break;
    }
  }
  if (bCompact) {
    double tEnd = nowSec() + 120;
    while (oneInt(db,
                  "SELECT value FROM journal_metrics('j') "
                  "WHERE name = 'compaction_pending'",
                  "cold") != 0) {
      if (nowSec() > tEnd) {
        fail("cold: compaction still pending after 120 s");
        break;
      }
      sleepMs(5);
    }
    atomic_store(&bCompacted, 1);
    *pnCompacted = oneInt(db,
                          "SELECT value FROM journal_metrics('j') "
                          "WHERE name = 'runs_compacted'",
                          "cold") -
                   nCompacted0;
  }
  while (t-- > 0) pthread_join(aTid[t], 0);
  n = oneInt(db,
             "SELECT value FROM journal_metrics('j') "
             "WHERE name = 'runs_read_cold'",
             "cold");
  sqlite3_close(db);
  return n;
}

/*--------------------------------------------------------------------------
** Setup.
*/

/* Make DIR and empty DIR/store (regular files only, not recursive). */
static int prepareDir(const char *zDir, const char *zSt) {
  DIR *d;
  struct dirent *e;
  char zPath[4096];
  if (mkdir(zDir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "threads: mkdir %s: %s\n", zDir, strerror(errno));
    return 1;
  }
  d = opendir(zSt);
  if (d) {
    while ((e = readdir(d)) != 0) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      if (snprintf(zPath, sizeof zPath, "%s/%s", zSt, e->d_name) >=
              (int)sizeof zPath ||
          unlink(zPath) != 0) {
        fprintf(stderr, "threads: cannot empty %s: %s: %s\n", zSt, zPath,
                strerror(errno));
        closedir(d);
        return 1;
      }
    }
    closedir(d);
    rmdir(zSt);
  }
  return 0;
}

int main(int argc, char **argv) {
  Writer *aW;
  pthread_t aReader[N_READERS], syncer, loser;
  char zSt[4096];
  long long nRows = 0, nCold, nCompacted = 0;
  double t0, tWrite, tAll;
  int t;

  if (argc < 2 || argc > 5) {
    fprintf(stderr, "usage: %s DIR [NTHREADS [NAPPENDS [OPTIONS]]]\n", argv[0]);
    return 2;
  }
  nThread = argc > 2 ? atoi(argv[2]) : 4;
  nAppend = argc > 3 ? atoi(argv[3]) : 20000;
  zOptions = argc > 4 ? argv[4] : DEFAULT_OPTIONS;
  if (nThread < 1 || nAppend < 1) {
    fprintf(stderr, "threads: NTHREADS and NAPPENDS must be positive\n");
    return 2;
  }
  snprintf(zSt, sizeof zSt, "%s/store", argv[1]);
  zStore = zSt;
  snprintf(zFull, sizeof zFull, "%s/full", argv[1]);
  if (prepareDir(argv[1], zSt) || prepareDir(argv[1], zFull)) return 2;

  if (sqlite3_threadsafe() == 0) {
    fprintf(stderr, "threads: the SQLite library is not threadsafe\n");
    return 2;
  }
  sqlite3_auto_extension((void (*)(void))sqlite3_lmdbjournal_init);

  aW = calloc((size_t)nThread, sizeof(Writer));
  if (!aW) return 2;
  for (t = 0; t < nThread; t++) {
    aW[t].iThread = t;
    aW[t].aSharedSeq = malloc(sizeof(long long) * (size_t)(nAppend / 4 + 1));
    aW[t].aSharedI = malloc(sizeof(long long) * (size_t)(nAppend / 4 + 1));
    if (!aW[t].aSharedSeq || !aW[t].aSharedI) return 2;
  }

  /* Create the store once before the threads race to open it. */
  {
    sqlite3 *db = openConn("setup");
    if (!db) return 1;
    sqlite3_close(db);
  }

  t0 = nowSec();
  for (t = 0; t < nThread; t++) {
    if (pthread_create(&aW[t].tid, 0, writerMain, &aW[t]) != 0) {
      fprintf(stderr, "threads: pthread_create failed\n");
      return 2;
    }
  }
  for (t = 0; t < N_READERS; t++) {
    if (pthread_create(&aReader[t], 0, readerMain, (void *)(long)t) != 0) {
      fprintf(stderr, "threads: pthread_create failed\n");
      return 2;
    }
  }
  if (pthread_create(&syncer, 0, syncerMain, 0) != 0 ||
      pthread_create(&loser, 0, loserMain, 0) != 0) {
    fprintf(stderr, "threads: pthread_create failed\n");
    return 2;
  }
  for (t = 0; t < nThread; t++) pthread_join(aW[t].tid, 0);
  tWrite = nowSec() - t0;
  atomic_store(&bWritersDone, 1);
  for (t = 0; t < N_READERS; t++) pthread_join(aReader[t], 0);
  pthread_join(syncer, 0);
  pthread_join(loser, 0);

  finalChecks(aW, &nRows);
  nCold = coldReplays(aW, 0, 0);
  coldReplays(aW, 1, &nCompacted);
  tAll = nowSec() - t0;

  printf(
      "threads: %d writers x %d appends (%lld rows) in %.2fs "
      "(%.0f appends/s), %lld reader scans (%lld rows), %lld syncs, "
      "%lld lost appends listed, %lld runs read cold, %lld runs compacted "
      "while read, %.2fs in all: %s\n",
      nThread, nAppend, nRows, tWrite,
      tWrite > 0 ? nThread * (double)nAppend / tWrite : 0.0,
      (long long)atomic_load(&nReaderScans),
      (long long)atomic_load(&nReaderRows), (long long)atomic_load(&nSyncs),
      (long long)atomic_load(&nLost), nCold, nCompacted, tAll,
      atomic_load(&nFail) ? "FAILED" : "ok");
  for (t = 0; t < nThread; t++) {
    free(aW[t].aSharedSeq);
    free(aW[t].aSharedI);
  }
  free(aW);
  return atomic_load(&nFail) ? 1 : 0;
}
