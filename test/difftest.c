/*
** difftest.c -- differential tester: the journal table against a native copy.
**
**   difftest --ext PATH --dir DIR [--seed N] [--queries N] [--only I]
**            [--time-limit S] [--max-print N] [--max-hangs N] [--reuse]
**            [--verbose]
**   difftest --ext PATH --script FILE [--db NAME]
**
** Differential mode builds, in DIR, a database file db.sqlite holding an
** lmdb_journal table j (store DIR/store) with varied data: numeric-looking
** and mixed-case actor ids, payloads and meta of every storage class, JSON
** text, tags with numeric-looking strings, spaces and escapes, a batch over
** many actors (which the writer stages), INSERTs with equal timestamps, and
** truncated actors.  It copies j into a native table t with the same
** declared column types (t.rowid = j.pos) and an ordinary table o, then
** runs N random queries, each generated from (seed, query number), against
** j and against t, and compares the results: as lists when the ORDER BY
** fixes the order (it ends in pos or rowid), else as sorted multisets.
** Conditions on the hidden tag column are put to t as
** EXISTS (SELECT 1 FROM json_each(t.tags) WHERE value ...).
**
** Every query runs under a time limit: a progress handler interrupts it
** after --time-limit seconds (a failure), and as queries that ignore the
** interrupt must not hang the run, queries run in a child process killed
** by alarm() a little later; the parent counts the hang (or a crash) as a
** failure and continues with the next query in a new child.  After
** --max-hangs hangs and crashes it stops.
**
** The last line is "difftest: N queries, M mismatches"; the exit status is
** non-zero if M > 0 or not every query ran.  --only I runs query I alone
** and prints it and both results.
**
** Script mode opens NAME (default :memory:; URI filenames allowed), loads
** the extension and runs the statements of FILE one at a time, printing
** each result row as values separated by '|' (NULL as empty) and each
** error as "Error: message"; errors do not stop the script.
**
** The driver is built against the system SQLite and against the newest
** amalgamation (see Makefile, target newest), so both run the same tests.
*/
#include <sqlite3.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/**************************************************************************
** Growable strings and string lists.
*/
typedef struct Str Str;
struct Str {
  char *z;
  size_t n, nAlloc;
};

static void strAppendN(Str *p, const char *z, size_t n) {
  if (p->n + n + 1 > p->nAlloc) {
    size_t nNew = (p->nAlloc + n + 1) * 2;
    char *zNew = realloc(p->z, nNew);
    if (zNew == 0) {
      fprintf(stderr, "difftest: out of memory\n");
      exit(2);
    }
    p->z = zNew;
    p->nAlloc = nNew;
  }
  memcpy(p->z + p->n, z, n);
  p->n += n;
  p->z[p->n] = 0;
}
static void strAppend(Str *p, const char *z) {
  strAppendN(p, z, strlen(z));
}
static void strPrintf(Str *p, const char *zFmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, zFmt);
  int n = vsnprintf(buf, sizeof(buf), zFmt, ap);
  va_end(ap);
  if (n >= (int)sizeof(buf)) n = sizeof(buf) - 1;
  strAppendN(p, buf, (size_t)n);
}
static void strReset(Str *p) {
  p->n = 0;
  if (p->z) p->z[0] = 0;
}
static void strFree(Str *p) {
  free(p->z);
  memset(p, 0, sizeof(*p));
}

typedef struct List List;
struct List {
  char **a;
  int n, nAlloc;
};
static void listAdd(List *p, const char *z) {
  if (p->n == p->nAlloc) {
    p->nAlloc = p->nAlloc ? p->nAlloc * 2 : 16;
    p->a = realloc(p->a, sizeof(char *) * (size_t)p->nAlloc);
    if (p->a == 0) exit(2);
  }
  p->a[p->n++] = strdup(z);
}
static void listFree(List *p) {
  for (int i = 0; i < p->n; i++) free(p->a[i]);
  free(p->a);
  memset(p, 0, sizeof(*p));
}
static int cmpStr(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/**************************************************************************
** Random numbers: splitmix64, one stream per query.
*/
static uint64_t gRng;
static uint64_t rnd64(void) {
  uint64_t z = (gRng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static int rnd(int n) {
  return n <= 0 ? 0 : (int)(rnd64() % (uint64_t)n);
}
static int chance(int pct) {
  return rnd(100) < pct;
}
#define PICK(a) (a[rnd((int)(sizeof(a) / sizeof(a[0])))])

/**************************************************************************
** Options and shared state.
*/
static const char *zExt = 0;
static const char *zDir = 0;
static uint64_t iSeed = 1;
static int nQuery = 1000;
static int iOnly = -1;
static int nTimeLimit = 3;
static int nMaxPrint = 10;
static int nMaxHangs = 5;
static int bReuse = 0;
static int bVerbose = 0;

/* Shared between the parent and the child running queries. */
typedef struct Shared Shared;
struct Shared {
  int iCur;       /* query the child is running */
  int nRun;       /* queries completed */
  int nMismatch;  /* mismatches found (hangs and crashes added by parent) */
  int nPrinted;   /* mismatches printed in full */
  char zJ[32768]; /* the query on j being run */
};
static Shared *pShared;

static void die(const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  fprintf(stdout, "difftest: ");
  vfprintf(stdout, zFmt, ap);
  fprintf(stdout, "\n");
  va_end(ap);
  fflush(stdout);
  exit(2);
}

static sqlite3 *openDb(const char *zName) {
  sqlite3 *db = 0;
  char *zErr = 0;
  int rc = sqlite3_open_v2(
      zName, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
      0);
  if (rc != SQLITE_OK) die("cannot open %s: %s", zName, sqlite3_errmsg(db));
  sqlite3_enable_load_extension(db, 1);
  rc = sqlite3_load_extension(db, zExt, 0, &zErr);
  if (rc != SQLITE_OK) die("cannot load %s: %s", zExt, zErr ? zErr : "?");
  sqlite3_busy_timeout(db, 5000);
  return db;
}

static void execOrDie(sqlite3 *db, const char *zSql) {
  char *zErr = 0;
  if (sqlite3_exec(db, zSql, 0, 0, &zErr) != SQLITE_OK) {
    die("setup statement failed: %s\n  %s", zErr ? zErr : "?", zSql);
  }
}

/**************************************************************************
** Building the data.
*/
static const char *azActor[] = {
    "a",    "b",     "42",   "7",    "0042",    "1.5",     "-3",
    "A1",   "a1",    "a1 ",  "x%_y", "order-1", "Order-1", "\xc3\x9cn\xc3\xaf",
    "gone", "gone2", "gone3"};

static const char *azPayload[] = {"42",
                                  "-7",
                                  "0",
                                  "1.5",
                                  "-0.25",
                                  "1e10",
                                  "'42'",
                                  "'hello'",
                                  "'A1'",
                                  "'a b'",
                                  "''",
                                  "'{\"k\":1,\"s\":\"x\"}'",
                                  "'[1,2,3]'",
                                  "x'00'",
                                  "x'0102ff'",
                                  "x''",
                                  "NULL",
                                  "'1.5'",
                                  "'a1'",
                                  "9223372036854775807",
                                  "'line\nbreak'",
                                  "' 42'"};
static const char *azMeta[] = {
    "NULL",         "NULL", "NULL",  "'{\"correlation_id\":\"c-1\"}'",
    "'{\"n\":42}'", "7",    "2.5",   "x'ab'",
    "'42'",         "''",   "'note'"};
static const char *azType[] = {"NULL", "'T0'",           "'t0'",
                               "'T1'", "'Order Placed'", "'42'",
                               "'ÄÖ'", "'OrderPlaced'",  "'orderplaced'"};
static const char *azTags[] = {"NULL",
                               "NULL",
                               "'[]'",
                               "'[\"a\"]'",
                               "'[\"a\",\"b\"]'",
                               "'[\"A\"]'",
                               "'[\"2024\"]'",
                               "'[\"2024\",\"2025\"]'",
                               "'[\"with space\"]'",
                               "'[\"q\\\"uote\"]'",
                               "'[\"line\\nbreak\"]'",
                               "'[\"eu\"]'",
                               "'[\"EU\",\"x\"]'",
                               "'[\"b \"]'",
                               "'[\"b\",\"eu\",\"2025\"]'"};

static void appendOne(sqlite3 *db, const char *zActor) {
  char *zSql = sqlite3_mprintf("SELECT journal_append('j', %Q, %s, %s, %s, %s)",
                               zActor, PICK(azPayload), PICK(azType),
                               PICK(azMeta), PICK(azTags));
  execOrDie(db, zSql);
  sqlite3_free(zSql);
}

static void insertOne(Str *p, const char *zActor, long long ts) {
  strReset(p);
  char *zSql = sqlite3_mprintf(
      "INSERT INTO j(actor_id, payload, type, meta, tags, ts) "
      "VALUES(%Q, %s, %s, %s, %s, %lld)",
      zActor, PICK(azPayload), PICK(azType), PICK(azMeta), PICK(azTags), ts);
  strAppend(p, zSql);
  sqlite3_free(zSql);
}

static long long maxTs(sqlite3 *db) {
  sqlite3_stmt *pStmt = 0;
  long long v = 0;
  if (sqlite3_prepare_v2(db, "SELECT max(ts) FROM j ORDER BY 1", -1, &pStmt,
                         0) == SQLITE_OK &&
      sqlite3_step(pStmt) == SQLITE_ROW) {
    v = sqlite3_column_int64(pStmt, 0);
  }
  sqlite3_finalize(pStmt);
  return v;
}

static void buildData(void) {
  char zPath[4096];
  Str s = {0};
  snprintf(zPath, sizeof(zPath), "%s/db.sqlite", zDir);
  unlink(zPath);
  sqlite3 *db = openDb(zPath);
  gRng = iSeed * 1000003ULL;

  char *zSql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE j USING lmdb_journal(path='%q/store');"
      "CREATE TABLE o(k TEXT, v);"
      "INSERT INTO o VALUES('42', 42), ('A1', 1), ('a1', 2), ('b', 3),"
      " ('nobody', NULL), (NULL, 7), ('7', 7), ('1.5', 1.5), ('w007', 1),"
      " ('1003', 1003), ('ORDER-1', 2);",
      zDir);
  execOrDie(db, zSql);
  sqlite3_free(zSql);

  /* Commits of a few events each, actors interleaved; gone and gone2 get
  ** commits of their own (truncated below, they leave gaps in pos and ts). */
  for (int r = 0; r < 12; r++) {
    for (int i = 0; i < (int)(sizeof(azActor) / sizeof(azActor[0])); i++) {
      int bGone = strncmp(azActor[i], "gone", 4) == 0;
      if (bGone) continue;
      if (chance(35)) continue;
      appendOne(db, azActor[i]);
      if (chance(10)) execOrDie(db, "SELECT journal_sync('j')");
    }
    execOrDie(db, "SELECT journal_sync('j')");
    usleep(1500); /* commits of different milliseconds */
    if (r % 3 == 1) {
      appendOne(db, r % 2 ? "gone" : "gone2");
      execOrDie(db, "SELECT journal_sync('j')");
      appendOne(db, "gone");
      execOrDie(db, "SELECT journal_sync('j')");
    }
  }

  /* INSERTs with given timestamps, several events per timestamp. */
  long long ts = maxTs(db) + 1000;
  execOrDie(db, "BEGIN");
  for (int i = 0; i < 60; i++) {
    insertOne(&s, PICK(azActor), ts);
    execOrDie(db, s.z);
    if (chance(40)) ts += 1 + rnd(3);
  }
  execOrDie(db, "COMMIT");

  /* A batch over 120 actors with 1..2 events each: staged by the writer. */
  execOrDie(db, "BEGIN");
  ts += 5;
  for (int k = 0; k < 120; k++) {
    char zActor[32];
    if (k % 3 == 0) {
      snprintf(zActor, sizeof(zActor), "%d", 1000 + k);
    } else {
      snprintf(zActor, sizeof(zActor), "w%03d", k);
    }
    int n = 1 + rnd(2);
    for (int e = 0; e < n; e++) {
      insertOne(&s, zActor, ts + (k / 40));
      execOrDie(db, s.z);
    }
  }
  execOrDie(db, "COMMIT");

  /* Later appends to the first actors (async, one batch). */
  for (int i = 0; i < 40; i++) appendOne(db, PICK(azActor));
  execOrDie(db, "SELECT journal_sync('j')");
  usleep(400000); /* the writer merges the stage when it idles */
  for (int i = 0; i < 10; i++) appendOne(db, PICK(azActor));
  execOrDie(db, "SELECT journal_sync('j')");
  /* Commits of their own for gone3 between the last ones: once truncated,
  ** the newest times have gaps. */
  ts = maxTs(db) + 100;
  for (int i = 0; i < 4; i++) {
    insertOne(&s, i % 2 ? (i == 1 ? "a" : "b") : "gone3", ts + 10 * i);
    execOrDie(db, s.z); /* autocommit: a commit each */
  }

  /* Truncations: whole actors (whole commits), a prefix, a staged actor. */
  execOrDie(db,
            "SELECT journal_truncate('j', 'gone', NULL);"
            "SELECT journal_truncate('j', 'gone2', NULL);"
            "SELECT journal_truncate('j', 'gone3', NULL);"
            "SELECT journal_truncate('j', 'b', 3);"
            "SELECT journal_truncate('j', 'w005', NULL);"
            "SELECT journal_truncate('j', '1003', 1);");

  execOrDie(db,
            "CREATE TABLE t(actor_id TEXT, seq INTEGER, pos INTEGER,"
            " ts INTEGER, type TEXT, payload, meta, tags TEXT);"
            "INSERT INTO t(rowid, actor_id, seq, pos, ts, type, payload, meta,"
            " tags) SELECT pos, actor_id, seq, pos, ts, type, payload, meta,"
            " tags FROM j;");
  sqlite3_close(db);
  strFree(&s);
}

/**************************************************************************
** Query generation.  Every fragment is written twice, once for j and once
** for t; they differ only in the table name and in tag conditions.
*/
typedef struct Q Q;
struct Q {
  Str j, t;
  int bOrdered; /* the ORDER BY fixes the order of every row */
};
static void qBoth(Q *q, const char *z) {
  strAppend(&q->j, z);
  strAppend(&q->t, z);
}
/* Appends zFmt with %T replaced by j / t. */
static void qTbl(Q *q, const char *zFmt) {
  for (const char *z = zFmt; *z; z++) {
    if (z[0] == '%' && z[1] == 'T') {
      strAppend(&q->j, "j");
      strAppend(&q->t, "t");
      z++;
    } else {
      strAppendN(&q->j, z, 1);
      strAppendN(&q->t, z, 1);
    }
  }
}

enum {
  C_ACTOR,
  C_SEQ,
  C_POS,
  C_TS,
  C_TYPE,
  C_PAYLOAD,
  C_META,
  C_TAGS,
  C_ROWID,
  N_COL
};
static const char *azCol[N_COL] = {"actor_id", "seq",  "pos",  "ts",   "type",
                                   "payload",  "meta", "tags", "rowid"};
static List aPool[N_COL]; /* quote()d distinct values of each column */

static const char *azMixed[] = {"42",
                                "'42'",
                                "1.5",
                                "x'00'",
                                "NULL",
                                "''",
                                "'A1'",
                                "'a1'",
                                "-1",
                                "0",
                                "9223372036854775807",
                                "'2024'",
                                "'a1 '",
                                "3",
                                "'3'",
                                "'b'",
                                "' 42'",
                                "4.0",
                                "'4.0'",
                                "x'0102ff'",
                                "'T0'",
                                "'order-1'",
                                "1003",
                                "'1003'"};

static void genLiteral(Q *q, int iCol) {
  if (iCol < N_COL && aPool[iCol].n > 0 && chance(60)) {
    qBoth(q, aPool[iCol].a[rnd(aPool[iCol].n)]);
  } else if (iCol == C_TS && aPool[C_TS].n > 0 && chance(50)) {
    /* A time near one that exists. */
    char buf[64];
    snprintf(buf, sizeof(buf), "%s %c %d", aPool[C_TS].a[rnd(aPool[C_TS].n)],
             chance(50) ? '+' : '-', rnd(3));
    qBoth(q, buf);
  } else {
    qBoth(q, PICK(azMixed));
  }
}

static const char *azCollate[] = {" COLLATE NOCASE", " COLLATE RTRIM",
                                  " COLLATE BINARY"};

static void genCol(Q *q, int iCol) {
  qBoth(q, "x.");
  qBoth(q, azCol[iCol]);
}

static void genPattern(Q *q, int bGlob) {
  static const char *azLike[] = {"'a%'", "'A%'",    "'%1%'", "'a_'", "'4_'",
                                 "'%'",  "'w00%'",  "'%e%'", "'T_'", "'order%'",
                                 "'%5'", "'x\\%%'", "'1%'"};
  static const char *azGlob[] = {"'a*'", "'A*'",     "'*1*'",  "'a?'",
                                 "'4?'", "'*'",      "'w00*'", "'[aA]*'",
                                 "'T?'", "'[0-9]*'", "'*5'",   "'order*'"};
  qBoth(q, bGlob ? PICK(azGlob) : PICK(azLike));
}

static void genWhere(Q *q, int depth, int bNeg);

/* A condition on the hidden tag column (never under NOT). */
static void genTagLeaf(Q *q) {
  static const char *azTag[] = {
      "'a'",          "'b'",           "'A'",      "'2024'", "'2025'",
      "'with space'", "'eu'",          "'EU'",     "'nope'", "'b '",
      "'x'",          "'line\nbreak'", "'q\"uote'"};
  Str l = {0};
  int k = rnd(10);
  /* A tag equality under another collation compares the tags array's
  ** text (docs/api.md, the tag column): native.test pins it. */
  const char *zColl = "";
  if (k < 5) {
    strPrintf(&l, "= %s%s", PICK(azTag), zColl);
  } else if (k < 8) {
    /* At most two values: SQLite evaluates a longer constant list through
    ** a sorted index, where the tags array meets one tag at most
    ** (docs/api.md, the tag column; native.test pins it). */
    int n = 1 + rnd(2);
    strAppend(&l, "IN (");
    for (int i = 0; i < n; i++) {
      if (i) strAppend(&l, ", ");
      strAppend(&l, PICK(azTag));
    }
    strAppend(&l, ")");
  } else if (k < 9) {
    strAppend(&l, "IS NOT NULL");
  } else {
    /* Two tag constraints in one OR. */
    const char *z1 = PICK(azTag), *z2 = PICK(azTag);
    strPrintf(&q->j, "(x.tag = %s OR x.tag = %s)", z1, z2);
    strPrintf(&q->t,
              "EXISTS (SELECT 1 FROM json_each(x.tags) WHERE value = %s OR "
              "value = %s)",
              z1, z2);
    strFree(&l);
    return;
  }
  if (strcmp(l.z, "IS NOT NULL") == 0) {
    strAppend(&q->j, "x.tag IS NOT NULL");
    strAppend(&q->t, "EXISTS (SELECT 1 FROM json_each(x.tags))");
  } else {
    strPrintf(&q->j, "x.tag %s", l.z);
    strPrintf(&q->t, "EXISTS (SELECT 1 FROM json_each(x.tags) WHERE value %s)",
              l.z);
  }
  strFree(&l);
}

static void genLeaf(Q *q, int bNeg) {
  static const char *azOp[] = {
      "=", "!=", "<>", "<", "<=", ">", ">=", "==", "IS", "IS NOT"};
  int iCol = rnd(N_COL);
  int k = rnd(100);
  char buf[256];
  if (!bNeg && chance(8)) {
    genTagLeaf(q);
    return;
  }
  if (k < 30) {
    /* col OP literal, maybe with a collation on either side */
    genCol(q, iCol);
    if (chance(12)) qBoth(q, PICK(azCollate));
    snprintf(buf, sizeof(buf), " %s ", PICK(azOp));
    qBoth(q, buf);
    genLiteral(q, iCol);
    if (chance(8)) qBoth(q, PICK(azCollate));
  } else if (k < 35) {
    /* literal OP col */
    genLiteral(q, iCol);
    snprintf(buf, sizeof(buf), " %s ", PICK(azOp));
    qBoth(q, buf);
    genCol(q, iCol);
  } else if (k < 42) {
    genCol(q, iCol);
    qBoth(q,
          chance(50) ? " IS NULL" : (chance(50) ? " IS NOT NULL" : " NOTNULL"));
  } else if (k < 50) {
    genCol(q, iCol);
    if (chance(15)) qBoth(q, " NOT");
    int bGlob = chance(40);
    qBoth(q, bGlob ? " GLOB " : " LIKE ");
    genPattern(q, bGlob);
    if (!bGlob && chance(15)) qBoth(q, " ESCAPE '\\'");
  } else if (k < 57) {
    genCol(q, iCol);
    if (chance(20)) qBoth(q, " NOT");
    qBoth(q, " BETWEEN ");
    genLiteral(q, iCol);
    qBoth(q, " AND ");
    genLiteral(q, iCol);
  } else if (k < 67) {
    genCol(q, iCol);
    if (chance(20)) qBoth(q, PICK(azCollate));
    if (chance(20)) qBoth(q, " NOT");
    qBoth(q, " IN (");
    int n = rnd(5);
    for (int i = 0; i < n; i++) {
      if (i) qBoth(q, ", ");
      genLiteral(q, iCol);
    }
    qBoth(q, ")");
  } else if (k < 74) {
    static const char *azSub[] = {"SELECT k FROM o",
                                  "SELECT v FROM o",
                                  "SELECT v FROM o WHERE v > 2",
                                  "SELECT actor_id FROM %T WHERE seq = 2",
                                  "SELECT pos FROM %T WHERE actor_id = 'a'",
                                  "SELECT max(seq) FROM %T GROUP BY actor_id",
                                  "SELECT ts FROM %T WHERE pos % 7 = 0",
                                  "SELECT 42 UNION SELECT '42'"};
    genCol(q, iCol);
    if (chance(20)) qBoth(q, " NOT");
    qBoth(q, " IN (");
    qTbl(q, PICK(azSub));
    qBoth(q, ")");
  } else if (k < 80) {
    /* against a scalar subquery, e.g. ts >= (SELECT max(ts) ...) */
    static const char *azAgg[] = {"max", "min"};
    genCol(q, iCol);
    snprintf(buf, sizeof(buf), " %s (SELECT %s(", PICK(azOp), PICK(azAgg));
    qBoth(q, buf);
    qBoth(q, azCol[iCol == C_ROWID ? C_POS : iCol]);
    qTbl(q, ") FROM %T)");
  } else if (k < 86) {
    /* column against column */
    genCol(q, iCol);
    snprintf(buf, sizeof(buf), " %s ", PICK(azOp));
    qBoth(q, buf);
    genCol(q, rnd(N_COL));
  } else if (k < 94) {
    static const char *azFn[] = {"length(x.%s) > 2",
                                 "typeof(x.%s) = 'text'",
                                 "typeof(x.%s) = 'blob'",
                                 "x.%s + 0 = 42",
                                 "abs(x.%s) < 5",
                                 "lower(x.%s) = 'a1'",
                                 "substr(x.%s, 1, 1) = 'w'",
                                 "x.%s || '' = '42'",
                                 "coalesce(x.%s, 'none') = 'none'",
                                 "x.%s % 2 = 1",
                                 "json_valid(x.%s)",
                                 "CAST(x.%s AS INTEGER) = 42",
                                 "x.%s = upper(x.%s)",
                                 "instr(x.%s, ' ') > 0"};
    const char *zFn = PICK(azFn);
    snprintf(buf, sizeof(buf), zFn, azCol[iCol], azCol[iCol]);
    qBoth(q, buf);
  } else {
    /* correlated EXISTS over the same table */
    static const char *azEx[] = {
        "EXISTS (SELECT 1 FROM %T AS y WHERE y.actor_id = x.actor_id AND "
        "y.seq > x.seq)",
        "NOT EXISTS (SELECT 1 FROM %T AS y WHERE y.pos = x.pos + 1)",
        "EXISTS (SELECT 1 FROM o WHERE o.k = x.actor_id)",
        "(SELECT count(*) FROM %T AS y WHERE y.actor_id = x.actor_id) > 3"};
    qTbl(q, PICK(azEx));
  }
}

static void genWhere(Q *q, int depth, int bNeg) {
  int k = rnd(100);
  if (depth >= 3 || k < 45) {
    genLeaf(q, bNeg);
  } else if (k < 70) {
    qBoth(q, "(");
    genWhere(q, depth + 1, bNeg);
    qBoth(q, " AND ");
    genWhere(q, depth + 1, bNeg);
    qBoth(q, ")");
  } else if (k < 90) {
    qBoth(q, "(");
    genWhere(q, depth + 1, bNeg);
    qBoth(q, " OR ");
    genWhere(q, depth + 1, bNeg);
    qBoth(q, ")");
  } else {
    qBoth(q, "NOT (");
    genWhere(q, depth + 1, 1);
    qBoth(q, ")");
  }
}

/* ORDER BY over x; sets q->bOrdered when it ends in pos or rowid. */
static void genOrderBy(Q *q, int bForceTotal) {
  int n = rnd(3) + (bForceTotal ? 0 : 1);
  int bTotal = 0;
  if (n == 0 && !bForceTotal) return;
  qBoth(q, " ORDER BY ");
  for (int i = 0; i < n; i++) {
    int iCol = rnd(N_COL);
    if (i) qBoth(q, ", ");
    genCol(q, iCol);
    if ((iCol == C_ACTOR || iCol == C_TYPE) && chance(20)) {
      qBoth(q, PICK(azCollate));
    }
    if (chance(40))
      qBoth(q, " DESC");
    else if (chance(30))
      qBoth(q, " ASC");
    bTotal = (iCol == C_POS || iCol == C_ROWID);
  }
  if (!bTotal && (bForceTotal || chance(60))) {
    if (n) qBoth(q, ", ");
    genCol(q, chance(50) ? C_POS : C_ROWID);
    if (chance(40)) qBoth(q, " DESC");
    bTotal = 1;
  }
  q->bOrdered = bTotal;
}

static void genSelectList(Q *q) {
  int bAny = 0;
  if (chance(15)) {
    qBoth(q, "x.*, x.rowid");
    return;
  }
  for (int i = 0; i < N_COL; i++) {
    if (chance(45)) {
      if (bAny) qBoth(q, ", ");
      genCol(q, i);
      bAny = 1;
    }
  }
  if (!bAny) genCol(q, C_POS);
}

static void genLimit(Q *q) {
  char buf[64];
  snprintf(buf, sizeof(buf), " LIMIT %d", rnd(40));
  qBoth(q, buf);
  if (chance(50)) {
    snprintf(buf, sizeof(buf), " OFFSET %d", rnd(300));
    qBoth(q, buf);
  }
}

static void genQuery(Q *q) {
  int k = rnd(100);
  q->bOrdered = 0;
  if (k < 55) {
    qBoth(q, "SELECT ");
    genSelectList(q);
    qTbl(q, " FROM %T AS x");
    if (chance(85)) {
      qBoth(q, " WHERE ");
      genWhere(q, 0, 0);
    }
    genOrderBy(q, 0);
    if (q->bOrdered && chance(40)) genLimit(q);
  } else if (k < 62) {
    /* Paging over the whole table: LIMIT/OFFSET with a total order. */
    qBoth(q, "SELECT x.pos, x.actor_id, x.seq");
    qTbl(q, " FROM %T AS x");
    if (chance(30)) {
      qBoth(q, " WHERE ");
      genWhere(q, 0, 0);
    }
    genOrderBy(q, 1);
    genLimit(q);
  } else if (k < 80) {
    static const char *azGroup[] = {
        "x.actor_id", "x.type", "x.seq",  "typeof(x.payload)",
        "x.tags",     "x.ts",   "x.meta", "x.seq % 3"};
    static const char *azAgg[] = {"count(*)",
                                  "min(x.pos)",
                                  "max(x.ts)",
                                  "sum(x.seq)",
                                  "count(DISTINCT x.actor_id)",
                                  "min(x.payload)",
                                  "max(x.meta)",
                                  "count(x.type)",
                                  "max(x.actor_id)",
                                  "min(lower(x.type))"};
    int bGroup = chance(80);
    const char *zGroup = PICK(azGroup);
    char buf[256];
    snprintf(buf, sizeof(buf), "SELECT %s%s, %s", bGroup ? zGroup : "",
             bGroup ? "" : "count(*)", PICK(azAgg));
    qBoth(q, buf);
    if (chance(50)) {
      qBoth(q, ", ");
      qBoth(q, PICK(azAgg));
    }
    qTbl(q, " FROM %T AS x");
    if (chance(70)) {
      qBoth(q, " WHERE ");
      genWhere(q, 0, 0);
    }
    if (bGroup) {
      qBoth(q, " GROUP BY ");
      qBoth(q, zGroup);
      if (chance(25)) qBoth(q, " HAVING count(*) > 1");
    }
  } else if (k < 88) {
    static const char *azSelf[] = {
        "SELECT x.pos, y.pos FROM %T AS x JOIN %T AS y ON y.actor_id = "
        "x.actor_id AND y.seq = x.seq + 1",
        "SELECT x.pos, y.pos, y.actor_id FROM %T AS x JOIN %T AS y ON y.pos = "
        "x.pos + 1",
        "SELECT x.pos, y.pos FROM %T AS x JOIN %T AS y ON y.ts = x.ts AND "
        "y.pos > x.pos AND y.pos < x.pos + 4",
        "SELECT x.actor_id, count(y.pos) FROM %T AS x LEFT JOIN %T AS y ON "
        "y.actor_id = x.actor_id AND y.seq < x.seq GROUP BY x.actor_id",
        "SELECT x.pos, y.seq FROM %T AS x, %T AS y WHERE y.actor_id = "
        "x.actor_id COLLATE NOCASE AND y.seq = 1 AND x.seq = 1"};
    qTbl(q, PICK(azSelf));
    qBoth(q, strstr(q->j.z, " WHERE ") ? " AND " : " WHERE ");
    genWhere(q, 1, 0);
    if (strstr(q->j.z, "GROUP BY")) {
      /* the WHERE went after GROUP BY: rebuild in order */
      strReset(&q->j);
      strReset(&q->t);
      qTbl(q,
           "SELECT x.actor_id, count(y.pos) FROM %T AS x LEFT JOIN %T AS y "
           "ON y.actor_id = x.actor_id AND y.seq < x.seq WHERE ");
      genWhere(q, 1, 0);
      qBoth(q, " GROUP BY x.actor_id");
    }
  } else {
    static const char *azJoin[] = {
        "SELECT x.pos, o.k, o.v FROM %T AS x JOIN o ON o.k = x.actor_id",
        "SELECT x.pos, o.k FROM %T AS x JOIN o ON o.v = x.seq",
        "SELECT o.k, x.pos FROM o LEFT JOIN %T AS x ON x.actor_id = o.k",
        "SELECT x.pos, o.v FROM o JOIN %T AS x ON x.actor_id = o.k COLLATE "
        "NOCASE",
        "SELECT x.pos FROM %T AS x, o WHERE o.v = x.pos",
        "SELECT o.k, count(x.pos) FROM o LEFT JOIN %T AS x ON x.actor_id = o.k"
        " AND x.seq > 1 GROUP BY o.k"};
    const char *z = PICK(azJoin);
    int bGroup = strstr(z, "GROUP BY") != 0;
    if (bGroup) {
      qTbl(q,
           "SELECT o.k, count(x.pos) FROM o LEFT JOIN %T AS x ON "
           "x.actor_id = o.k AND x.seq > 1");
    } else {
      qTbl(q, z);
    }
    if (chance(60)) {
      qBoth(q, strstr(z, " WHERE ") ? " AND " : " WHERE ");
      int bOr = strstr(z, "LEFT JOIN") != 0;
      if (bOr) qBoth(q, "(x.pos IS NULL OR ");
      genWhere(q, 1, 0);
      if (strstr(z, "LEFT JOIN")) qBoth(q, ")");
    }
    if (bGroup) qBoth(q, " GROUP BY o.k");
  }
}

/**************************************************************************
** Running and comparing.
*/
static double gDeadline;
static int gTimedOut;
static double nowSec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
static int progressCb(void *p) {
  (void)p;
  if (nowSec() > gDeadline) {
    gTimedOut = 1;
    return 1;
  }
  return 0;
}

static void valueText(Str *p, sqlite3_stmt *pStmt, int i) {
  switch (sqlite3_column_type(pStmt, i)) {
    case SQLITE_NULL: strAppend(p, "NULL"); break;
    case SQLITE_INTEGER:
      strPrintf(p, "%lld", (long long)sqlite3_column_int64(pStmt, i));
      break;
    case SQLITE_FLOAT:
      strPrintf(p, "r%.17g", sqlite3_column_double(pStmt, i));
      break;
    case SQLITE_TEXT: {
      const char *z = (const char *)sqlite3_column_text(pStmt, i);
      strAppend(p, "'");
      for (; *z; z++) {
        if (*z == '\'')
          strAppend(p, "''");
        else if (*z == '\n')
          strAppend(p, "\\n");
        else
          strAppendN(p, z, 1);
      }
      strAppend(p, "'");
      break;
    }
    default: {
      const unsigned char *a = sqlite3_column_blob(pStmt, i);
      int n = sqlite3_column_bytes(pStmt, i);
      strAppend(p, "X'");
      for (int k = 0; k < n; k++) strPrintf(p, "%02X", a[k]);
      strAppend(p, "'");
    }
  }
}

/* Runs zSql; fills pRows with one string per row.  Returns 0 on success,
** 1 on an error (message in *pzErr, malloc'd), 2 on a timeout. */
static int runQuery(sqlite3 *db, const char *zSql, List *pRows, char **pzErr) {
  sqlite3_stmt *pStmt = 0;
  Str row = {0};
  int rc;
  *pzErr = 0;
  gTimedOut = 0;
  gDeadline = nowSec() + nTimeLimit;
  rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  if (rc == SQLITE_OK) {
    int nCol = sqlite3_column_count(pStmt);
    while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
      strReset(&row);
      for (int i = 0; i < nCol; i++) {
        if (i) strAppend(&row, "|");
        valueText(&row, pStmt, i);
      }
      listAdd(pRows, row.z ? row.z : "");
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  if (rc != SQLITE_OK) *pzErr = strdup(sqlite3_errmsg(db));
  sqlite3_finalize(pStmt);
  strFree(&row);
  if (gTimedOut) return 2;
  return rc == SQLITE_OK ? 0 : 1;
}

static void printRows(const char *zLabel, List *p, int rc, const char *zErr) {
  if (rc == 2) {
    printf("  %s: TIMED OUT after %ds (interrupted)\n", zLabel, nTimeLimit);
    return;
  }
  if (rc) {
    printf("  %s: ERROR %s\n", zLabel, zErr);
    return;
  }
  printf("  %s: %d rows\n", zLabel, p->n);
  for (int i = 0; i < p->n && i < 8; i++) printf("    %s\n", p->a[i]);
  if (p->n > 8) printf("    ...\n");
}

/* Rows of A that B lacks (both sorted), at most 5. */
static void printOnly(const char *zLabel, List *a, List *b) {
  int i = 0, k = 0, n = 0;
  while (i < a->n && n < 5) {
    int c = k < b->n ? strcmp(a->a[i], b->a[k]) : -1;
    if (c == 0) {
      i++;
      k++;
    } else if (c < 0) {
      if (n++ == 0) printf("  only in %s:\n", zLabel);
      printf("    %s\n", a->a[i++]);
    } else {
      k++;
    }
  }
}

static int sameLists(List *a, List *b) {
  if (a->n != b->n) return 0;
  for (int i = 0; i < a->n; i++) {
    if (strcmp(a->a[i], b->a[i])) return 0;
  }
  return 1;
}

/* Runs query number i; returns 1 if it mismatched. */
static int oneQuery(sqlite3 *db, int i) {
  Q q;
  List rj = {0}, rt = {0};
  char *zErrJ = 0, *zErrT = 0;
  int bBad = 0;
  memset(&q, 0, sizeof(q));
  gRng = iSeed * 0x100000001b3ULL + (uint64_t)i * 0x9e3779b97f4a7c15ULL;
  rnd64();
  genQuery(&q);
  snprintf(pShared->zJ, sizeof(pShared->zJ), "%s", q.j.z);
  if (bVerbose || iOnly >= 0) printf("query %d: %s\n", i, q.j.z);
  fflush(stdout);
  alarm((unsigned)nTimeLimit + 1);
  int rcJ = runQuery(db, q.j.z, &rj, &zErrJ);
  alarm(0);
  int rcT = runQuery(db, q.t.z, &rt, &zErrT);
  if (!q.bOrdered) {
    qsort(rj.a, (size_t)rj.n, sizeof(char *), cmpStr);
    qsort(rt.a, (size_t)rt.n, sizeof(char *), cmpStr);
  }
  if (rcJ == 2 || rcT == 2) {
    bBad = 1;
  } else if (rcJ || rcT) {
    bBad = !(rcJ && rcT); /* an error on both sides is the same answer */
  } else {
    bBad = !sameLists(&rj, &rt);
  }
  if (bBad && (iOnly >= 0 || pShared->nPrinted < nMaxPrint)) {
    pShared->nPrinted++;
    printf("MISMATCH seed=%llu query=%d (%s)\n", (unsigned long long)iSeed, i,
           q.bOrdered ? "ordered" : "as multisets");
    printf("  j: %s\n  t: %s\n", q.j.z, q.t.z);
    printRows("j", &rj, rcJ, zErrJ);
    printRows("t", &rt, rcT, zErrT);
    if (rcJ == 0 && rcT == 0) {
      if (q.bOrdered) {
        qsort(rj.a, (size_t)rj.n, sizeof(char *), cmpStr);
        qsort(rt.a, (size_t)rt.n, sizeof(char *), cmpStr);
      }
      printOnly("j", &rj, &rt);
      printOnly("t", &rt, &rj);
    }
    fflush(stdout);
  } else if (iOnly >= 0) {
    printf("same answer (%d rows)\n", rj.n);
    printRows("j", &rj, rcJ, zErrJ);
  }
  listFree(&rj);
  listFree(&rt);
  free(zErrJ);
  free(zErrT);
  strFree(&q.j);
  strFree(&q.t);
  return bBad;
}

static void loadPools(sqlite3 *db) {
  for (int c = 0; c < N_COL; c++) {
    sqlite3_stmt *pStmt = 0;
    char *zSql = sqlite3_mprintf(
        "SELECT DISTINCT quote(%s) FROM t ORDER BY 1 LIMIT 400", azCol[c]);
    if (sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) == SQLITE_OK) {
      while (sqlite3_step(pStmt) == SQLITE_ROW) {
        listAdd(&aPool[c], (const char *)sqlite3_column_text(pStmt, 0));
      }
    }
    sqlite3_finalize(pStmt);
    sqlite3_free(zSql);
  }
}

static void onAlarm(int sig) {
  (void)sig;
  _exit(3);
}

/* The child: runs queries iFirst .. iEnd-1. */
static void runQueries(int iFirst, int iEnd) {
  char zPath[4096];
  snprintf(zPath, sizeof(zPath), "%s/db.sqlite", zDir);
  sqlite3 *db = openDb(zPath);
  signal(SIGALRM, onAlarm);
  sqlite3_progress_handler(db, 1000, progressCb, 0);
  loadPools(db);
  for (int i = iFirst; i < iEnd; i++) {
    pShared->iCur = i;
    if (oneQuery(db, i)) pShared->nMismatch++;
    pShared->nRun++;
  }
  sqlite3_close(db);
  for (int c = 0; c < N_COL; c++) listFree(&aPool[c]);
}

static int diffMode(void) {
  char zPath[4096];
  struct stat st;
  int status = 0;
  pShared = mmap(0, sizeof(Shared), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (pShared == MAP_FAILED) die("mmap: %s", strerror(errno));
  memset(pShared, 0, sizeof(*pShared));
  mkdir(zDir, 0777);
  snprintf(zPath, sizeof(zPath), "%s/db.sqlite", zDir);
  printf("difftest: SQLite %s, seed %llu, %d queries, store %s\n",
         sqlite3_libversion(), (unsigned long long)iSeed,
         iOnly >= 0 ? 1 : nQuery, zDir);
  fflush(stdout);

  /* Build in a child, so that this process never opens the store (LMDB
  ** environments must not cross fork()). */
  if (!bReuse || stat(zPath, &st) != 0) {
    pid_t pid = fork();
    if (pid == 0) {
      signal(SIGALRM, onAlarm);
      alarm(120);
      buildData();
      _exit(0);
    }
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      die("building the data failed (status %d)", status);
    }
  }

  int iFirst = iOnly >= 0 ? iOnly : 0;
  int iEnd = iOnly >= 0 ? iOnly + 1 : nQuery;
  int nHang = 0;
  while (iFirst < iEnd) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      runQueries(iFirst, iEnd);
      fflush(stdout);
      _exit(0);
    }
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) break;
    /* A hang (the alarm fired) or a crash on query iCur. */
    int i = pShared->iCur;
    pShared->nMismatch++;
    pShared->nRun++;
    nHang++;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
      printf(
          "HANG seed=%llu query=%d: no answer after %ds (the interrupt "
          "did not stop it)\n  j: %s\n",
          (unsigned long long)iSeed, i, nTimeLimit + 1, pShared->zJ);
    } else if (WIFSIGNALED(status)) {
      printf("CRASH seed=%llu query=%d: signal %d\n  j: %s\n",
             (unsigned long long)iSeed, i, WTERMSIG(status), pShared->zJ);
    } else {
      printf("FAILED seed=%llu query=%d: status %d\n  j: %s\n",
             (unsigned long long)iSeed, i, status, pShared->zJ);
    }
    if (nHang >= nMaxHangs) {
      printf("difftest: stopping after %d hangs/crashes\n", nHang);
      break;
    }
    iFirst = i + 1;
  }
  int nRun = pShared->nRun;
  int nBad = pShared->nMismatch;
  int nWant = iEnd - (iOnly >= 0 ? iOnly : 0);
  if (nRun < nWant) {
    printf("difftest: only %d of %d queries ran\n", nRun, nWant);
  }
  printf("difftest: %d queries, %d mismatches\n", nRun, nBad);
  fflush(stdout);
  return (nBad || nRun < nWant) ? 1 : 0;
}

/**************************************************************************
** Script mode.
*/
static void runChunk(sqlite3 *db, const char *zSql) {
  const char *zTail = zSql;
  while (zTail && *zTail) {
    sqlite3_stmt *pStmt = 0;
    int rc = sqlite3_prepare_v2(db, zTail, -1, &pStmt, &zTail);
    if (rc != SQLITE_OK) {
      printf("Error: %s\n", sqlite3_errmsg(db));
      return;
    }
    if (pStmt == 0) continue;
    int nCol = sqlite3_column_count(pStmt);
    while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
      for (int i = 0; i < nCol; i++) {
        const char *z = (const char *)sqlite3_column_text(pStmt, i);
        printf("%s%s", i ? "|" : "", z ? z : "");
      }
      printf("\n");
    }
    if (rc != SQLITE_DONE) printf("Error: %s\n", sqlite3_errmsg(db));
    sqlite3_finalize(pStmt);
  }
}

static int scriptMode(const char *zScript, const char *zDb) {
  FILE *f = fopen(zScript, "r");
  char line[65536];
  Str chunk = {0};
  if (f == 0) die("cannot open %s: %s", zScript, strerror(errno));
  sqlite3 *db = openDb(zDb ? zDb : ":memory:");
  while (fgets(line, sizeof(line), f)) {
    strAppend(&chunk, line);
    if (sqlite3_complete(chunk.z)) {
      runChunk(db, chunk.z);
      fflush(stdout);
      strReset(&chunk);
    }
  }
  if (chunk.n && strspn(chunk.z, " \t\r\n") < chunk.n) runChunk(db, chunk.z);
  fclose(f);
  strFree(&chunk);
  sqlite3_close(db);
  return 0;
}

/**************************************************************************
** main
*/
static void usage(void) {
  fprintf(stderr,
          "usage: difftest --ext PATH --dir DIR [--seed N] [--queries N]"
          " [--only I]\n"
          "                [--time-limit S] [--max-print N] [--max-hangs N]"
          " [--reuse] [--verbose]\n"
          "       difftest --ext PATH --script FILE [--db NAME]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *zScript = 0, *zDb = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : 0;
    if (strcmp(a, "--reuse") == 0) {
      bReuse = 1;
      continue;
    }
    if (strcmp(a, "--verbose") == 0) {
      bVerbose = 1;
      continue;
    }
    if (strcmp(a, "--version") == 0) {
      printf("%s\n", sqlite3_libversion());
      return 0;
    }
    if (v == 0) usage();
    i++;
    if (strcmp(a, "--ext") == 0)
      zExt = v;
    else if (strcmp(a, "--dir") == 0)
      zDir = v;
    else if (strcmp(a, "--seed") == 0)
      iSeed = strtoull(v, 0, 10);
    else if (strcmp(a, "--queries") == 0)
      nQuery = atoi(v);
    else if (strcmp(a, "--only") == 0)
      iOnly = atoi(v);
    else if (strcmp(a, "--time-limit") == 0)
      nTimeLimit = atoi(v);
    else if (strcmp(a, "--max-print") == 0)
      nMaxPrint = atoi(v);
    else if (strcmp(a, "--max-hangs") == 0)
      nMaxHangs = atoi(v);
    else if (strcmp(a, "--script") == 0)
      zScript = v;
    else if (strcmp(a, "--db") == 0)
      zDb = v;
    else
      usage();
  }
  if (zExt == 0) usage();
  setvbuf(stdout, 0, _IOLBF, 0);
  if (zScript) return scriptMode(zScript, zDb);
  if (zDir == 0) usage();
  if (nTimeLimit < 1) nTimeLimit = 1;
  return diffMode();
}
