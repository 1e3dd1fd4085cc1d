/*
** crashload.c -- a load process for kill -9 tests (test/crash.test).
**
**     build/crashload [-opts OPTIONS] [-k N] [-txn] [-snap] [-prefix P]
**                     [-mix OPTIONS2] [-pause MS] [-trunc] DIR ACTORS [COUNT]
**
** Opens the store at DIR (OPTIONS, default "durability=full", are the
** other CREATE VIRTUAL TABLE arguments) and appends forever, or COUNT
** events, round-robin with some randomness over ACTORS actors named
** P0, P1, ... (P defaults to "a"; give two loads on one store different
** prefixes, or their appends conflict).  Payloads are text
** "ACTOR|PID|I|xxx..." of varying length, so a reader can tell that each
** event sits under the actor it was appended to.  Every N appends
** (-k, default 50, jittered) it calls journal_sync and, once that
** returned, prints
**
**     SYNCED <actor> <seq>      one line per actor appended to since the
**                               last sync: its highest seq, now durable
**     DURABLE <pos> <total>     the durable pos journal_sync returned and
**                               the appends made so far
**
** With -txn it also, every few syncs, inserts a group of events for actor
** "tx-P" with INSERT INTO j inside BEGIN ... COMMIT (payload
** "txn <ID> <i>/<n>") and after COMMIT returned prints
**
**     TXN <ID> <n>
**
** so a test can check that a group is all there or not at all.  With
** -snap, before each journal_sync it stores a snapshot of every actor it
** appended to, at that actor's highest seq, with state "ACTOR|SEQ", and
** once the sync returned prints
**
**     SNAP <actor> <seq>
**
** (after its SYNCED line).
**
** With -mix, a second table j2 on the same store (OPTIONS2, e.g.
** "durability=none") gets as many appends per round, before j's, to actors
** "<P>n<i>"; j2 is never synced, so none of its events is acknowledged.
** With -pause, every third sync is followed by MS ms without appends
** (idle merges and checkpoints run then).  With -trunc, every fourth sync
** is followed by journal_truncate of actor <P>0 to 3 below its synced seq,
** printed once it returned as "TRUNC <actor> <to_seq>".  It prints
** "READY <pid>" once the store is open.
**
** With -read it appends nothing: it reads the store forever, each pass a
** pos-ordered scan stepped slowly (its read transaction and cursors stay
** open while other processes commit and grow the map) and a full scan,
** and prints "SCANNED <rows>" after each pass.  Within one statement the
** pos values must be consecutive and each payload must name the actor it
** sits under (stores without truncation); a violation is printed as a
** "READER: ..." line.  stdout is flushed after every
** line, so whatever was printed before a kill is complete.  Any error is
** printed to stderr and ends the process with status 1.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

int sqlite3_lmdbjournal_init(sqlite3 *db, char **pzErrMsg,
                             const sqlite3_api_routines *pApi);

static void die(sqlite3 *db, const char *zWhat) {
  fprintf(stderr, "crashload: %s: %s\n", zWhat, db ? sqlite3_errmsg(db) : "");
  exit(1);
}

static void usage(const char *zArgv0) {
  fprintf(
      stderr,
      "usage: %s [-opts OPTIONS] [-k N] [-txn] [-snap] [-read] [-prefix P] DIR "
      "ACTORS [COUNT]\n",
      zArgv0);
  exit(2);
}

static void execOrDie(sqlite3 *db, const char *zSql) {
  char *zErr = 0;
  if (sqlite3_exec(db, zSql, 0, 0, &zErr) != SQLITE_OK) {
    fprintf(stderr, "crashload: %s: %s\n", zSql, zErr ? zErr : "?");
    exit(1);
  }
}

/* One pass of -read: a slow pos-ordered scan, then a full scan; prints
** what looks wrong and returns the rows of the pos scan. */
static long long readPass(sqlite3 *db, sqlite3_stmt *pPos, sqlite3_stmt *pAll) {
  long long nRow = 0, prev = 0;
  const char *zPrevActor = 0;
  char zLast[64] = "";
  long long seqLast = 0;
  int rc;
  while ((rc = sqlite3_step(pPos)) == SQLITE_ROW) {
    long long pos = sqlite3_column_int64(pPos, 0);
    const char *zActor = (const char *)sqlite3_column_text(pPos, 1);
    const char *zPay = (const char *)sqlite3_column_text(pPos, 2);
    size_t n = zActor ? strlen(zActor) : 0;
    if (nRow > 0 && pos != prev + 1) {
      printf("READER: pos %lld after %lld in one scan\n", pos, prev);
    }
    if (zPay == 0 || n == 0 ||
        (strncmp(zActor, "tx-", 3) == 0
             ? strncmp(zPay, "txn ", 4) != 0
             : strncmp(zPay, zActor, n) != 0 || zPay[n] != '|')) {
      printf("READER: pos %lld under actor %s holds %.40s\n", pos,
             zActor ? zActor : "NULL", zPay ? zPay : "NULL");
    }
    prev = pos;
    if (++nRow % 64 == 0) usleep(300); /* keep the cursor open a while */
  }
  if (rc != SQLITE_DONE) die(db, "pos scan");
  sqlite3_reset(pPos);
  while ((rc = sqlite3_step(pAll)) == SQLITE_ROW) {
    const char *zActor = (const char *)sqlite3_column_text(pAll, 0);
    long long seq = sqlite3_column_int64(pAll, 1);
    if (zActor == 0) continue;
    if (zPrevActor && strcmp(zLast, zActor) == 0 && seq != seqLast + 1) {
      printf("READER: %s seq %lld after %lld in one scan\n", zActor, seq,
             seqLast);
    }
    snprintf(zLast, sizeof zLast, "%s", zActor);
    zPrevActor = zLast;
    seqLast = seq;
  }
  if (rc != SQLITE_DONE) die(db, "full scan");
  sqlite3_reset(pAll);
  return nRow;
}

static void readForever(sqlite3 *db) {
  sqlite3_stmt *pPos = 0, *pAll = 0;
  if (sqlite3_prepare_v2(db,
                         "SELECT pos, actor_id, payload FROM j "
                         "WHERE pos > 0 ORDER BY pos",
                         -1, &pPos, 0) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT actor_id, seq FROM j", -1, &pAll, 0) !=
          SQLITE_OK) {
    die(db, "prepare the reader's scans");
  }
  printf("READY %d\n", (int)getpid());
  fflush(stdout);
  for (;;) {
    long long n = readPass(db, pPos, pAll);
    printf("SCANNED %lld\n", n);
    fflush(stdout);
    usleep(20000);
  }
}

int main(int argc, char **argv) {
  const char *zOpts = "durability=full";
  const char *zDir;
  const char *zPrefix = "a";
  const char *zMix = 0;
  int msPause = 0, bTrunc = 0, bRead = 0;
  long long nMix = 0;     /* appends to j2 */
  long long nSynced0 = 0; /* actor <P>0's highest synced seq */
  int nActor, nK = 50, bTxn = 0, bSnap = 0, i;
  long long nCount = 0, nDone = 0, nTxn = 0, nSyncs = 0;
  long long *aSeq; /* highest seq appended per actor since last sync */
  sqlite3 *db = 0;
  sqlite3_stmt *pApp = 0, *pSync = 0, *pIns = 0, *pSnap = 0, *pApp2 = 0;
  char *zSql;
  unsigned rnd = (unsigned)getpid() * 2654435761u;
  char zActor[64], zPayload[1200], zPad[1001];

  for (i = 1; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "-opts") == 0 && i + 1 < argc) {
      zOpts = argv[++i];
    } else if (strcmp(argv[i], "-k") == 0 && i + 1 < argc) {
      nK = atoi(argv[++i]);
    } else if (strcmp(argv[i], "-prefix") == 0 && i + 1 < argc) {
      zPrefix = argv[++i];
    } else if (strcmp(argv[i], "-txn") == 0) {
      bTxn = 1;
    } else if (strcmp(argv[i], "-snap") == 0) {
      bSnap = 1;
    } else if (strcmp(argv[i], "-mix") == 0 && i + 1 < argc) {
      zMix = argv[++i];
    } else if (strcmp(argv[i], "-pause") == 0 && i + 1 < argc) {
      msPause = atoi(argv[++i]);
    } else if (strcmp(argv[i], "-trunc") == 0) {
      bTrunc = 1;
    } else if (strcmp(argv[i], "-read") == 0) {
      bRead = 1;
    } else {
      usage(argv[0]);
    }
  }
  if (argc - i < 2 || argc - i > 3) usage(argv[0]);
  zDir = argv[i];
  nActor = atoi(argv[i + 1]);
  if (argc - i == 3) nCount = atoll(argv[i + 2]);
  if (nActor < 1 || nK < 1 || nCount < 0) usage(argv[0]);
  memset(zPad, 'x', sizeof zPad - 1);
  zPad[sizeof zPad - 1] = 0;
  aSeq = calloc((size_t)nActor, sizeof(long long));
  if (!aSeq) return 1;

  sqlite3_auto_extension((void (*)(void))sqlite3_lmdbjournal_init);
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) die(db, "open");
  zSql =
      sqlite3_mprintf("CREATE VIRTUAL TABLE j USING lmdb_journal(path=%Q%s%s)",
                      zDir, zOpts[0] ? ", " : "", zOpts);
  execOrDie(db, zSql);
  sqlite3_free(zSql);
  if (zMix) {
    zSql = sqlite3_mprintf(
        "CREATE VIRTUAL TABLE j2 USING lmdb_journal(path=%Q%s%s)", zDir,
        zMix[0] ? ", " : "", zMix);
    execOrDie(db, zSql);
    sqlite3_free(zSql);
    if (sqlite3_prepare_v2(db, "SELECT journal_append('j2', ?, ?)", -1, &pApp2,
                           0) != SQLITE_OK) {
      die(db, "prepare journal_append j2");
    }
  }
  if (bRead) readForever(db);
  if (sqlite3_prepare_v2(db, "SELECT journal_append('j', ?, ?)", -1, &pApp,
                         0) != SQLITE_OK) {
    die(db, "prepare journal_append");
  }
  if (sqlite3_prepare_v2(db, "SELECT journal_sync('j')", -1, &pSync, 0) !=
      SQLITE_OK) {
    die(db, "prepare journal_sync");
  }
  if (bTxn &&
      sqlite3_prepare_v2(
          db, "INSERT INTO j(actor_id, payload) VALUES ('tx-' || ?1, ?2)", -1,
          &pIns, 0) != SQLITE_OK) {
    die(db, "prepare INSERT");
  }
  if (bSnap && sqlite3_prepare_v2(
                   db, "SELECT journal_snapshot('j', ?1, ?2, ?1 || '|' || ?2)",
                   -1, &pSnap, 0) != SQLITE_OK) {
    die(db, "prepare journal_snapshot");
  }
  printf("READY %d\n", (int)getpid());
  fflush(stdout);

  while (nCount == 0 || nDone < nCount) {
    int nBatch = nK / 2 + (int)((rnd >> 8) % (unsigned)nK) + 1;
    int b;
    for (b = 0; pApp2 && b < nBatch; b++) {
      rnd = rnd * 1103515245u + 12345u;
      snprintf(zActor, sizeof zActor, "%sn%d", zPrefix,
               (int)((rnd >> 16) % (unsigned)nActor));
      snprintf(zPayload, sizeof zPayload, "%s|%d|%lld|%.*s", zActor,
               (int)getpid(), nMix++, (int)((rnd >> 4) % 1000), zPad);
      sqlite3_bind_text(pApp2, 1, zActor, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(pApp2, 2, zPayload, -1, SQLITE_TRANSIENT);
      if (sqlite3_step(pApp2) != SQLITE_ROW) die(db, "journal_append j2");
      sqlite3_reset(pApp2);
    }
    /* Let the writer commit j2's appends in batches of their own. */
    if (pApp2) usleep(2000);
    for (b = 0; b < nBatch && (nCount == 0 || nDone < nCount); b++) {
      int a, nPad;
      rnd = rnd * 1103515245u + 12345u;
      a = (int)((nDone + ((rnd >> 16) % 3)) % (unsigned)nActor);
      nPad = (int)((rnd >> 4) % 1000);
      snprintf(zActor, sizeof zActor, "%s%d", zPrefix, a);
      snprintf(zPayload, sizeof zPayload, "%s|%d|%lld|", zActor, (int)getpid(),
               nDone);
      {
        size_t n = strlen(zPayload);
        if (n + (size_t)nPad >= sizeof zPayload)
          nPad = (int)(sizeof zPayload - n - 1);
        memset(zPayload + n, 'x', (size_t)nPad);
        zPayload[n + (size_t)nPad] = 0;
      }
      sqlite3_bind_text(pApp, 1, zActor, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(pApp, 2, zPayload, -1, SQLITE_TRANSIENT);
      if (sqlite3_step(pApp) != SQLITE_ROW) die(db, "journal_append");
      aSeq[a] = sqlite3_column_int64(pApp, 0);
      sqlite3_reset(pApp);
      nDone++;
    }

    for (b = 0; bSnap && b < nActor; b++) {
      if (aSeq[b] == 0) continue;
      snprintf(zActor, sizeof zActor, "%s%d", zPrefix, b);
      sqlite3_bind_text(pSnap, 1, zActor, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(pSnap, 2, aSeq[b]);
      if (sqlite3_step(pSnap) != SQLITE_ROW) die(db, "journal_snapshot");
      sqlite3_reset(pSnap);
    }
    if (sqlite3_step(pSync) != SQLITE_ROW) die(db, "journal_sync");
    {
      long long pos = sqlite3_column_int64(pSync, 0);
      sqlite3_reset(pSync);
      if (aSeq[0]) nSynced0 = aSeq[0];
      for (b = 0; b < nActor; b++) {
        if (aSeq[b]) printf("SYNCED %s%d %lld\n", zPrefix, b, aSeq[b]);
        if (aSeq[b] && bSnap) printf("SNAP %s%d %lld\n", zPrefix, b, aSeq[b]);
        aSeq[b] = 0;
      }
      printf("DURABLE %lld %lld\n", pos, nDone);
      fflush(stdout);
    }
    nSyncs++;
    if (msPause > 0 && (nSyncs % 3) == 0) usleep((useconds_t)msPause * 1000);
    if (bTrunc && (nSyncs % 4) == 0 && nSynced0 > 3) {
      zSql = sqlite3_mprintf("SELECT journal_truncate('j', '%q0', %lld)",
                             zPrefix, nSynced0 - 3);
      execOrDie(db, zSql);
      sqlite3_free(zSql);
      printf("TRUNC %s0 %lld\n", zPrefix, nSynced0 - 3);
      fflush(stdout);
    }

    if (bTxn && (nSyncs % 5) == 0) {
      char zId[64];
      int n = 2 + (int)((rnd >> 12) % 9), k;
      snprintf(zId, sizeof zId, "%d-%lld", (int)getpid(), nTxn++);
      execOrDie(db, "BEGIN");
      for (k = 1; k <= n; k++) {
        snprintf(zPayload, sizeof zPayload, "txn %s %d/%d", zId, k, n);
        sqlite3_bind_text(pIns, 1, zPrefix, -1, SQLITE_STATIC);
        sqlite3_bind_text(pIns, 2, zPayload, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(pIns) != SQLITE_DONE) die(db, "INSERT");
        sqlite3_reset(pIns);
      }
      execOrDie(db, "COMMIT");
      printf("TXN %s %d\n", zId, n);
      fflush(stdout);
    }
  }

  sqlite3_finalize(pApp);
  sqlite3_finalize(pSync);
  sqlite3_finalize(pIns);
  sqlite3_finalize(pSnap);
  sqlite3_finalize(pApp2);
  if (sqlite3_close(db) != SQLITE_OK) die(db, "close");
  free(aSeq);
  return 0;
}
