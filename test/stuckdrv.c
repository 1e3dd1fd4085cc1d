/*
** stuckdrv.c -- opening and closing while another process holds a store's
** LMDB write lock (stopped, say): threads of one process that must not
** wait on it (test/stuck.test runs it).
**
**     build/stuckdrv close  STUCK OTHER    (STUCK a journal store)
**     build/stuckdrv create STUCK OTHER    (STUCK an empty LMDB env)
**
** The caller holds STUCK's write lock in another process.  Every
** connection uses sync_timeout='1s'.
**
**   close   a connection to STUCK queues an append, whose batch then
**           waits for the lock; thread 1 closes that connection.
**   create  thread 1 creates a journal table on STUCK, which must write
**           the store's databases (the write lock).
**
** Meanwhile thread 2 opens a store of its own in OTHER, appends, syncs
** and closes, and thread 3 opens STUCK again.  Each thread is waited for
** up to 10 s.  Prints "t1_ms=.. t2_ms=.. t2_rc=.. t3_ms=.. t3_rc=.." (-1:
** had not returned) and exits at once, even with a thread still blocked.
** With "resume", it then waits for a line on stdin (the lock is free) and
** appends to STUCK through a new connection: "after_rc=.. t1_ms=..".
*/
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

int sqlite3_lmdbjournal_init(sqlite3 *db, char **pzErrMsg,
                             const sqlite3_api_routines *pApi);

#define OPTS "sync_timeout='1s', map_max='64MiB'"

static const char *zStuck, *zOther;

typedef struct Job Job;
struct Job {
  void (*xRun)(Job *);
  sqlite3 *db;   /* close: the connection to close */
  double t0;     /* when started */
  atomic_int ms; /* how long it took, -1 until it returned */
  int rc;        /* its result (read after ms is set) */
  pthread_t tid;
};

static double nowMs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleepMs(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, 0);
}

/* A :memory: connection with table j on zDir (CREATE), or NULL. */
static sqlite3 *openJ(const char *zDir, int *pRc) {
  sqlite3 *db = 0;
  char *zSql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE j USING lmdb_journal(path=%Q, %s)", zDir, OPTS);
  char *zErr = 0;
  int rc = sqlite3_open(":memory:", &db);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
  sqlite3_free(zSql);
  if (rc) {
    fprintf(stderr, "stuckdrv: open %s: %s\n", zDir,
            zErr ? zErr : sqlite3_errmsg(db));
    sqlite3_free(zErr);
    sqlite3_close(db);
    db = 0;
  }
  *pRc = rc;
  return db;
}

static int exec(sqlite3 *db, const char *zSql) {
  char *zErr = 0;
  int rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
  if (rc) fprintf(stderr, "stuckdrv: %s: %s\n", zSql, zErr);
  sqlite3_free(zErr);
  return rc;
}

static void runClose(Job *p) {
  p->rc = sqlite3_close(p->db);
}

static void runCreate(Job *p) {
  int rc;
  sqlite3 *db = openJ(zStuck, &rc);
  p->rc = rc;
  if (db) sqlite3_close(db);
}

/* Open the store in zDir, append one event (zSql) and sync it, close:
** the result code of the first step that failed. */
static int appendSynced(const char *zDir, const char *zSql) {
  int rc;
  sqlite3 *db = openJ(zDir, &rc);
  if (db) {
    rc = exec(db, zSql);
    sqlite3_close(db);
  }
  return rc;
}

static void runOther(Job *p) {
  p->rc = appendSynced(zOther,
                       "SELECT journal_append('j', 'o', 'x'); "
                       "SELECT journal_sync('j')");
}

static void runReopen(Job *p) {
  int rc;
  sqlite3 *db = openJ(zStuck, &rc);
  p->rc = rc;
  if (db) sqlite3_close(db);
}

static void *jobMain(void *pArg) {
  Job *p = (Job *)pArg;
  p->xRun(p);
  atomic_store(&p->ms, (int)(nowMs() - p->t0));
  return 0;
}

static void jobStart(Job *p) {
  atomic_store(&p->ms, -1);
  p->t0 = nowMs();
  pthread_create(&p->tid, 0, jobMain, p);
}

/* Wait up to 10 s from its start; a thread still blocked is left. */
static void jobWait(Job *p) {
  while (atomic_load(&p->ms) < 0 && nowMs() - p->t0 < 10000) sleepMs(5);
  if (atomic_load(&p->ms) >= 0) pthread_join(p->tid, 0);
}

int main(int argc, char **argv) {
  Job a, b, c;
  int bClose, bResume;
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: stuckdrv close|create STUCK OTHER [resume]\n");
    return 2;
  }
  bResume = argc == 5;
  bClose = strcmp(argv[1], "close") == 0;
  zStuck = argv[2];
  zOther = argv[3];
  sqlite3_auto_extension((void (*)(void))sqlite3_lmdbjournal_init);
  memset(&a, 0, sizeof(a));
  memset(&b, 0, sizeof(b));
  memset(&c, 0, sizeof(c));
  if (bClose) {
    int rc;
    a.db = openJ(zStuck, &rc);
    if (a.db == 0) return 1;
    exec(a.db, "SELECT journal_append('j', 'q', 'queued')");
    sleepMs(100); /* the writer takes it and waits for the lock */
    a.xRun = runClose;
  } else {
    a.xRun = runCreate;
  }
  jobStart(&a);
  sleepMs(50); /* thread 1 is in its close or create */
  b.xRun = runOther;
  c.xRun = runReopen;
  jobStart(&b);
  jobStart(&c);
  jobWait(&b);
  jobWait(&c);
  jobWait(&a);
  printf("t1_ms=%d t2_ms=%d t2_rc=%d t3_ms=%d t3_rc=%d\n", atomic_load(&a.ms),
         atomic_load(&b.ms), b.rc, atomic_load(&c.ms), c.rc);
  fflush(stdout);
  if (bResume) {
    /* The lock holder is gone once a line comes: what was left running
    ** finishes, and STUCK opens again (within 10 s). */
    char aLine[16];
    double t0;
    int rc = SQLITE_BUSY;
    if (fgets(aLine, sizeof(aLine), stdin) == 0) _exit(1);
    for (t0 = nowMs(); rc != SQLITE_OK && nowMs() - t0 < 10000; sleepMs(50)) {
      rc = appendSynced(zStuck,
                        "SELECT journal_append('j', 'r', 'after'); "
                        "SELECT journal_sync('j')");
    }
    jobWait(&a);
    printf("after_rc=%d t1_ms=%d\n", rc, atomic_load(&a.ms));
    fflush(stdout);
  }
  _exit(0);
}
