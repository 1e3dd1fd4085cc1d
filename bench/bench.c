/*
** bench.c -- lmdbjournal side by side with its two anchors (the performance targets of bench/README.md).
**
** One process, one machine, one run.  Every workload is written three ways:
**
**   lmdbjournal  the extension as users get it: build/lmdbjournal.so loaded
**                with sqlite3_load_extension into connections opened with
**                default flags (serialized, as the sqlite3 shell and Python
**                open them), driven through SQL: a prepared
**                SELECT journal_append('j', ?1, ?2), INSERT INTO j, ...
**                One row, marked, repeats the A=actors async run with the
**                extension linked in statically (-DSQLITE_CORE) and
**                SQLITE_OPEN_NOMUTEX connections, for comparison.
**   raw LMDB     one mdb_put per message, key = actor (8 bytes BE) + seq
**                (8 bytes BE), value = ts (8) + payload, B puts per write
**                transaction, same durability.
**   SQLite table (actor TEXT, seq INTEGER, ts INTEGER, payload BLOB,
**                PRIMARY KEY(actor, seq)) WITHOUT ROWID, WAL, prepared
**                INSERT, B rows per transaction, same sync level, default
**                open flags.
**
** Workload: N messages of P bytes round-robin over A actors; message i goes
** to actor i % A with seq i / A + 1; its payload is a deterministic
** pseudo-random slice of a fixed random arena.  Every store written is read
** back and compared with what was written (row count and a checksum over
** (actor, payload)); a mismatch aborts the run.
**
** Results: a Markdown table on stdout and in OUT/latest.md, OUT/latest.csv,
** and gnuplot data files (OUT/NAME.dat) for bench/plot.gp.
** See bench/README.md.
**
** Usage: bench [--quick] [--n N] [--actors A] [--payload P] [--batch B]
**              [--out DIR] [--dir TMPBASE] [--only LIST] [--big N]
**              [--small N] [--durable-n N] [--clients K] [--reps N]
**              [--sys ext,static,lmdb,sqlite] [--ext-opts 'k=v, ...']
**              [--ext-schema memory|delete|wal]
**              [--ext PATH]
** LIST is a comma list of: memory,async,append,scale,insert,syncmode,
** latency,durable,scan,replay,tail,recovery,ship.
**
** The cold scans run in fresh processes: the bench executes itself as
**   bench --scan-child KIND QUERY DIR N P B EXTPATH [EXTOPTS]
** which reopens the store in DIR, times one query and prints
** "rows bytes seconds" on stdout.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <lmdb.h>
#include <sqlite3.h>

#include "lmdbjournal.h"

/* Harness development without the extension: build with -DLJ_BENCH_NO_EXT
** and the lmdbjournal column is left empty. */
#ifdef LJ_BENCH_NO_EXT
int sqlite3_lmdbjournal_init(sqlite3 *db, char **pzErr,
                             const sqlite3_api_routines *pApi) {
  (void)db; (void)pzErr; (void)pApi;
  return SQLITE_OK;
}
#define HAVE_EXT 0
#else
#define HAVE_EXT 1
#endif

/* The loadable module (--ext; default: lmdbjournal.so beside this binary)
** and this binary's own path, which the cold scans execute. */
static char g_zExtPath[4096];
static char g_zSelf[4096];

typedef uint64_t u64;
typedef uint8_t u8;

/**************************************************************************
** Errors.  Every LMDB and SQLite return code goes through one of these.
*/
static void die(const char *zFmt, ...) {
  va_list ap;
  fflush(stdout);
  fprintf(stderr, "bench: FATAL: ");
  va_start(ap, zFmt);
  vfprintf(stderr, zFmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  exit(2);
}

static void mdb_ok(int rc, const char *zWhat) {
  if (rc != MDB_SUCCESS) die("LMDB %s: %s (%d)", zWhat, mdb_strerror(rc), rc);
}

static void sql_ok(sqlite3 *db, int rc, int want, const char *zWhat) {
  if (rc != want) {
    die("SQLite %s: %s (rc=%d, wanted %d)", zWhat,
        db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc, want);
  }
}

static void sql_exec(sqlite3 *db, const char *zSql) {
  char *zErr = 0;
  int rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
  if (rc != SQLITE_OK) die("SQLite exec \"%s\": %s", zSql, zErr ? zErr : "?");
}

static sqlite3_stmt *sql_prep(sqlite3 *db, const char *zSql) {
  sqlite3_stmt *p = 0;
  sql_ok(db, sqlite3_prepare_v2(db, zSql, -1, &p, 0), SQLITE_OK, zSql);
  return p;
}

/* Step a statement that must produce exactly `want` (SQLITE_ROW/DONE). */
static void sql_step(sqlite3_stmt *p, int want) {
  int rc = sqlite3_step(p);
  if (rc != want) {
    die("SQLite step \"%s\": %s (rc=%d)", sqlite3_sql(p),
        sqlite3_errmsg(sqlite3_db_handle(p)), rc);
  }
}

static void sql_reset(sqlite3_stmt *p) {
  int rc = sqlite3_reset(p);
  if (rc != SQLITE_OK) {
    die("SQLite reset \"%s\": %s", sqlite3_sql(p),
        sqlite3_errmsg(sqlite3_db_handle(p)));
  }
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) die("out of memory (%zu bytes)", n);
  return p;
}

/**************************************************************************
** Timing.
*/
static u64 now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (u64)ts.tv_sec * 1000000000u + (u64)ts.tv_nsec;
}
static double secs_since(u64 t0) { return (double)(now_ns() - t0) / 1e9; }
static sqlite3_int64 now_ms_wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (sqlite3_int64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static u64 g_t0; /* start of the run, for progress lines */

static void progress(const char *zFmt, ...) {
  va_list ap;
  fprintf(stderr, "[%7.1fs] ", secs_since(g_t0));
  va_start(ap, zFmt);
  vfprintf(stderr, zFmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
}

/* Latency samples in nanoseconds. */
typedef struct Lat Lat;
struct Lat {
  u64 *a;
  size_t n, cap;
  u64 nWarm;          /* a client's first nWarm calls are not recorded */
};
static void lat_init(Lat *p, size_t cap) {
  p->a = xmalloc(cap * sizeof(u64));
  p->n = 0;
  p->cap = cap;
  p->nWarm = 0;
}
static void lat_add(Lat *p, u64 ns) {
  if (p->n < p->cap) p->a[p->n++] = ns;
}
static int cmp_u64(const void *a, const void *b) {
  u64 x = *(const u64 *)a, y = *(const u64 *)b;
  return x < y ? -1 : x > y;
}
static void lat_sort(Lat *p) { qsort(p->a, p->n, sizeof(u64), cmp_u64); }
/* Quantile q in [0,1] of sorted samples, microseconds. */
static double lat_q_us(const Lat *p, double q) {
  size_t i;
  if (p->n == 0) return NAN;
  i = (size_t)(q * (double)(p->n - 1) + 0.5);
  return (double)p->a[i] / 1e3;
}
static void lat_free(Lat *p) {
  free(p->a);
  memset(p, 0, sizeof(*p));
}

/**************************************************************************
** Workload generator and checksums.
*/
static u64 mix64(u64 x) {
  x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27; x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

static u64 hash_bytes(const u8 *p, size_t n) {
  u64 h = 0x243f6a8885a308d3ull ^ n;
  while (n >= 8) {
    u64 w;
    memcpy(&w, p, 8);
    h = mix64(h ^ w);
    p += 8; n -= 8;
  }
  if (n) {
    u64 w = 0;
    memcpy(&w, p, n);
    h = mix64(h ^ w ^ 0xff);
  }
  return h;
}

/* What the verifier sums per row: actor and payload, not seq (concurrent
** clients of one actor get seqs in arrival order). */
static u64 rec_hash(u64 actor, const u8 *p, size_t n) {
  return mix64(hash_bytes(p, n) + actor * 0x9e3779b97f4a7c15ull);
}

#define ARENA_SPAN (1u << 20)
static u8 *g_arena;   /* ARENA_SPAN + max payload random bytes */
static int g_arenaPayload;

typedef struct Workload Workload;
struct Workload {
  u64 n;       /* messages */
  int actors;  /* A */
  int payload; /* P bytes */
};

static void arena_init(int maxPayload) {
  size_t n = ARENA_SPAN + (size_t)maxPayload, i;
  u64 s = 0x853c49e6748fea9bull;
  g_arena = xmalloc(n);
  for (i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    g_arena[i] = (u8)(s >> 24);
  }
  g_arenaPayload = maxPayload;
}

static const u8 *wl_payload(const Workload *w, u64 i) {
  if (w->payload > g_arenaPayload) die("payload larger than the arena");
  return g_arena + mix64(i + 1) % ARENA_SPAN;
}
static int wl_actor(const Workload *w, u64 i) {
  return (int)(i % (u64)w->actors);
}
static u64 wl_seq(const Workload *w, u64 i) { return i / (u64)w->actors + 1; }

/* Actor ids "actor-<n>" for the SQL systems, built once. */
static char *g_names;
static int g_nameStride = 24, g_nameMax;
static void names_init(int maxActors) {
  int a;
  g_names = xmalloc((size_t)maxActors * (size_t)g_nameStride);
  for (a = 0; a < maxActors; a++) {
    snprintf(g_names + (size_t)a * g_nameStride, (size_t)g_nameStride,
             "actor-%d", a);
  }
  g_nameMax = maxActors;
}
static const char *actor_name(int a) {
  if (a >= g_nameMax) die("actor %d beyond the name table (%d)", a, g_nameMax);
  return g_names + (size_t)a * g_nameStride;
}
static u64 actor_parse(const unsigned char *z, int n) {
  char buf[32];
  if (n < 7 || n > 30 || memcmp(z, "actor-", 6) != 0) {
    die("verify: unexpected actor id '%.*s'", n, (const char *)z);
  }
  memcpy(buf, z + 6, (size_t)n - 6);
  buf[n - 6] = 0;
  return strtoull(buf, 0, 10);
}

/* Count and checksum: what a store should hold, or what it holds. */
typedef struct Sum Sum;
struct Sum { u64 rows, hash; };
static void sum_add(Sum *s, u64 actor, const u8 *p, size_t n) {
  s->rows++;
  s->hash += rec_hash(actor, p, n);
}
static Sum wl_expect(const Workload *w) {
  Sum s = {0, 0};
  u64 i;
  for (i = 0; i < w->n; i++) {
    sum_add(&s, (u64)wl_actor(w, i), wl_payload(w, i), (size_t)w->payload);
  }
  return s;
}

/**************************************************************************
** The systems under test.  One Sys is one open store plus the handles one
** client uses; sys_peer() gives a further client (thread) of the same store.
*/
enum { SYS_EXT = 0, SYS_LMDB = 1, SYS_SQL = 2, SYS_COUNT = 3 };
static const char *const azSysName[SYS_COUNT] = {"lmdbjournal", "raw LMDB",
                                                 "SQLite table"};

typedef struct SysCfg SysCfg;
struct SysCfg {
  int kind;       /* SYS_* */
  int durable;    /* 0: durability=none, and the anchors' equal (below); 1: full */
  int bNoSync;    /* anchors, durable 0: no sync at all (MDB_NOSYNC,
                  ** synchronous=OFF), the comparison row; otherwise
                  ** MDB_NOMETASYNC and synchronous=NORMAL, which like
                  ** durability=none keep the store sound through an OS
                  ** crash (bench/README.md) */
  int batch;      /* B: messages per transaction (ext: batch_size=) */
  int viaInsert;  /* ext: INSERT INTO j in BEGIN/COMMIT, not journal_append */
  int syncMode;   /* ext: append_mode=sync */
  const char *zExtra; /* ext: extra CREATE VIRTUAL TABLE options */
  const char *zMap;   /* ext: map_size= (default 1GiB) */
  int bStatic;    /* ext: linked in, NOMUTEX connection (not the user path) */
};

typedef struct Sys Sys;
struct Sys {
  SysCfg cfg;
  char zDir[PATH_MAX];
  int checkSeq;       /* ext: compare journal_append's seq with wl_seq */
  /* SQL systems (ext and table) */
  sqlite3 *db;
  sqlite3_stmt *pPut, *pSync, *pBegin, *pCommit, *pReplay, *pTail;
  /* raw LMDB */
  MDB_env *env;
  MDB_dbi dbi;
  MDB_txn *txn;
  int ownEnv;
};

static const char *g_zExtOpts; /* --ext-opts: added to every CREATE */
/* --ext-schema: the extension's connections keep the table in an
** in-memory main database (NULL, the default) or in a database file of
** this journal mode ("delete", "wal"), where the journal_* functions check
** the schema once per statement (docs/api.md, "Functions"). */
static const char *g_zExtSchema;

static void ext_create_table(Sys *s) {
  char *zSql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE IF NOT EXISTS j USING lmdb_journal(path='%q', "
      "durability=%s, "
      "batch_size=%d, map_size='%s', append_mode=%s%s%s%s%s)",
      s->zDir, s->cfg.durable ? "full" : "none", s->cfg.batch,
      s->cfg.zMap ? s->cfg.zMap : "1GiB",
      s->cfg.syncMode ? "sync" : "async", s->cfg.zExtra ? ", " : "",
      s->cfg.zExtra ? s->cfg.zExtra : "", g_zExtOpts ? ", " : "",
      g_zExtOpts ? g_zExtOpts : "");
  sql_exec(s->db, zSql);
  sqlite3_free(zSql);
}

/* Register the extension on db the way users do: load the module.  With
** bStatic, call the statically linked entry point instead (the old bench
** path, kept as one comparison row). */
static void ext_attach(sqlite3 *db, int bStatic) {
  char *zErr = 0;
  int rc;
  if (bStatic) {
    rc = sqlite3_lmdbjournal_init(db, &zErr, 0);
  } else {
    sql_ok(db, sqlite3_enable_load_extension(db, 1), SQLITE_OK,
           "enable_load_extension");
    rc = sqlite3_load_extension(db, g_zExtPath, 0, &zErr);
  }
  if (rc != SQLITE_OK) {
    die("loading the extension (%s): %s",
        bStatic ? "static" : g_zExtPath, zErr ? zErr : "?");
  }
}

/* Connections are opened with default flags (serialized), as the sqlite3
** shell and Python open them; only the static comparison row asks for
** SQLITE_OPEN_NOMUTEX, as the bench did before. */
static void sql_open_conn(Sys *s, const char *zFile) {
  int bStatic = s->cfg.kind == SYS_EXT && s->cfg.bStatic;
  sql_ok(0, sqlite3_open_v2(zFile, &s->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                (bStatic ? SQLITE_OPEN_NOMUTEX : 0), 0),
         SQLITE_OK, "open");
  if (s->cfg.kind == SYS_EXT && HAVE_EXT) ext_attach(s->db, bStatic);
  sqlite3_busy_timeout(s->db, 60000);
}

/* An extension connection with table j, in memory or in the store
** directory's schema.db (--ext-schema). */
static void ext_open(Sys *s) {
  char zFile[PATH_MAX + 16];
  if (g_zExtSchema == 0) {
    sql_open_conn(s, ":memory:");
  } else {
    char *zSql = sqlite3_mprintf("PRAGMA journal_mode=%s", g_zExtSchema);
    snprintf(zFile, sizeof zFile, "%s/schema.db", s->zDir);
    sql_open_conn(s, zFile);
    sql_exec(s->db, zSql);
    sqlite3_free(zSql);
  }
  ext_create_table(s);
}

/* Prepare the per-client statements of a SQL system. */
static void sql_prepare_client(Sys *s) {
  if (s->cfg.kind == SYS_EXT) {
    s->pPut = sql_prep(s->db,
                       s->cfg.viaInsert
                           ? "INSERT INTO j(actor_id, payload) VALUES(?1, ?2)"
                           : "SELECT journal_append('j', ?1, ?2)");
    s->pSync = sql_prep(s->db, "SELECT journal_sync('j')");
    s->pBegin = sql_prep(s->db, "BEGIN");
  } else {
    s->pPut = sql_prep(s->db, "INSERT INTO t VALUES(?1, ?2, ?3, ?4)");
    s->pBegin = sql_prep(s->db, "BEGIN IMMEDIATE");
  }
  s->pCommit = sql_prep(s->db, "COMMIT");
}

static void sqltab_pragmas(Sys *s) {
  char zSql[200];
  sql_exec(s->db, "PRAGMA journal_mode=WAL");
  snprintf(zSql, sizeof zSql,
           "PRAGMA synchronous=%s; PRAGMA cache_size=-131072",
           s->cfg.durable ? "FULL" : s->cfg.bNoSync ? "OFF" : "NORMAL");
  sql_exec(s->db, zSql);
}

static Sys *sys_alloc(const SysCfg *pCfg, const char *zDir) {
  Sys *s = xmalloc(sizeof(Sys));
  memset(s, 0, sizeof(*s));
  s->cfg = *pCfg;
  snprintf(s->zDir, sizeof s->zDir, "%s", zDir);
  return s;
}

/* --sys: which systems run; bit SYS_STATIC_BIT: the static comparison row */
#define SYS_STATIC_BIT (1u << SYS_COUNT)
static unsigned g_sysMask = ((1u << SYS_COUNT) - 1) | SYS_STATIC_BIT;

/* Open the store in the directory zDir: a new one in an empty directory
** (bNew), or the one a run wrote there (the cold scans).  Returns NULL for
** a system that is not built in (the extension with LJ_BENCH_NO_EXT) or
** not selected with --sys. */
static Sys *sys_open_store(const SysCfg *pCfg, const char *zDir, int bNew) {
  Sys *s;
  char zFile[PATH_MAX + 8];
  unsigned bit = pCfg->kind == SYS_EXT && pCfg->bStatic ? SYS_STATIC_BIT
                                                         : 1u << pCfg->kind;
  if ((pCfg->kind == SYS_EXT && !HAVE_EXT) || !(g_sysMask & bit)) return 0;
  s = sys_alloc(pCfg, zDir);
  s->checkSeq = 1;
  switch (pCfg->kind) {
    case SYS_EXT:
      ext_open(s);
      sql_prepare_client(s);
      break;
    case SYS_SQL:
      snprintf(zFile, sizeof zFile, "%s/t.db", zDir);
      sql_open_conn(s, zFile);
      sqltab_pragmas(s);
      if (bNew) {
        sql_exec(s->db,
                 "CREATE TABLE t(actor TEXT, seq INTEGER, ts INTEGER, payload "
                 "BLOB, PRIMARY KEY(actor, seq)) WITHOUT ROWID");
      }
      sql_prepare_client(s);
      break;
    case SYS_LMDB: {
      MDB_txn *txn;
      mdb_ok(mdb_env_create(&s->env), "env_create");
      mdb_ok(mdb_env_set_mapsize(s->env, (size_t)16 << 30), "set_mapsize");
      mdb_ok(mdb_env_set_maxreaders(s->env, 126), "set_maxreaders");
      mdb_ok(mdb_env_open(s->env, zDir,
                          pCfg->durable   ? 0
                          : pCfg->bNoSync ? MDB_NOSYNC
                                          : MDB_NOMETASYNC,
                          0664),
             "env_open");
      mdb_ok(mdb_txn_begin(s->env, 0, 0, &txn), "txn_begin");
      mdb_ok(mdb_dbi_open(txn, 0, 0, &s->dbi), "dbi_open");
      mdb_ok(mdb_txn_commit(txn), "txn_commit (dbi)");
      s->ownEnv = 1;
      break;
    }
  }
  return s;
}

static Sys *sys_open(const SysCfg *pCfg, const char *zDir) {
  return sys_open_store(pCfg, zDir, 1);
}

/* Another client of the same store (for a client thread).  LMDB shares the
** environment (one per process); the SQL systems open a new connection. */
static Sys *sys_peer(const Sys *p) {
  Sys *s = sys_alloc(&p->cfg, p->zDir);
  char zFile[PATH_MAX + 8];
  s->checkSeq = 0;
  switch (p->cfg.kind) {
    case SYS_EXT:
      ext_open(s);
      sql_prepare_client(s);
      break;
    case SYS_SQL:
      snprintf(zFile, sizeof zFile, "%s/t.db", p->zDir);
      sql_open_conn(s, zFile);
      sqltab_pragmas(s);
      sql_prepare_client(s);
      break;
    case SYS_LMDB:
      s->env = p->env;
      s->dbi = p->dbi;
      break;
  }
  return s;
}

static void sys_close(Sys *s) {
  if (!s) return;
  if (s->db) {
    sqlite3_finalize(s->pPut);
    sqlite3_finalize(s->pSync);
    sqlite3_finalize(s->pBegin);
    sqlite3_finalize(s->pCommit);
    sqlite3_finalize(s->pReplay);
    sqlite3_finalize(s->pTail);
    sql_ok(s->db, sqlite3_close(s->db), SQLITE_OK, "close");
  }
  if (s->txn) mdb_txn_abort(s->txn);
  if (s->env && s->ownEnv) mdb_env_close(s->env);
  free(s);
}

/* Does this system group messages into transactions of cfg.batch itself
** (begin/commit around every B messages)?  journal_append does not: the
** extension's writer batches (batch_size=B). */
static int sys_client_batches(const Sys *s) {
  return s->cfg.kind != SYS_EXT || s->cfg.viaInsert;
}

static void sys_begin(Sys *s) {
  if (s->cfg.kind == SYS_LMDB) {
    mdb_ok(mdb_txn_begin(s->env, 0, 0, &s->txn), "txn_begin (write)");
  } else {
    sql_step(s->pBegin, SQLITE_DONE);
    sql_reset(s->pBegin);
  }
}

static void sys_commit(Sys *s) {
  if (s->cfg.kind == SYS_LMDB) {
    MDB_txn *t = s->txn;
    s->txn = 0;
    mdb_ok(mdb_txn_commit(t), "txn_commit");
  } else {
    sql_step(s->pCommit, SQLITE_DONE);
    sql_reset(s->pCommit);
  }
}

static void sys_put(Sys *s, const Workload *w, u64 i) {
  int a = wl_actor(w, i);
  const u8 *pay = wl_payload(w, i);
  switch (s->cfg.kind) {
    case SYS_EXT: {
      sqlite3_stmt *p = s->pPut;
      sqlite3_bind_text(p, 1, actor_name(a), -1, SQLITE_STATIC);
      sqlite3_bind_blob(p, 2, pay, w->payload, SQLITE_STATIC);
      if (s->cfg.viaInsert) {
        sql_step(p, SQLITE_DONE);
      } else {
        sql_step(p, SQLITE_ROW);
        if (s->checkSeq && (u64)sqlite3_column_int64(p, 0) != wl_seq(w, i)) {
          die("journal_append returned seq %lld for message %llu of %s, "
              "expected %llu", sqlite3_column_int64(p, 0),
              (unsigned long long)i, actor_name(a),
              (unsigned long long)wl_seq(w, i));
        }
      }
      sql_reset(p);
      break;
    }
    case SYS_SQL: {
      sqlite3_stmt *p = s->pPut;
      sqlite3_bind_text(p, 1, actor_name(a), -1, SQLITE_STATIC);
      sqlite3_bind_int64(p, 2, (sqlite3_int64)wl_seq(w, i));
      sqlite3_bind_int64(p, 3, now_ms_wall());
      sqlite3_bind_blob(p, 4, pay, w->payload, SQLITE_STATIC);
      sql_step(p, SQLITE_DONE);
      sql_reset(p);
      break;
    }
    case SYS_LMDB: {
      u8 aKey[16], aVal[8 + 65536];
      MDB_val k = {16, aKey}, v = {8 + (size_t)w->payload, aVal};
      u64 ts = (u64)now_ms_wall(), x;
      int j;
      if (w->payload > 65536) die("raw LMDB anchor: payload over 64 KiB");
      for (j = 7, x = (u64)a; j >= 0; j--, x >>= 8) aKey[j] = (u8)x;
      for (j = 15, x = wl_seq(w, i); j >= 8; j--, x >>= 8) aKey[j] = (u8)x;
      for (j = 7, x = ts; j >= 0; j--, x >>= 8) aVal[j] = (u8)x;
      memcpy(aVal + 8, pay, (size_t)w->payload);
      mdb_ok(mdb_put(s->txn, s->dbi, &k, &v, 0), "put");
      break;
    }
  }
}

/* The durable point of one client: journal_sync for the extension.  The
** anchors commit every message (B=1) with a syncing commit instead. */
static void sys_sync(Sys *s) {
  if (s->cfg.kind == SYS_EXT) {
    sql_step(s->pSync, SQLITE_ROW);
    sql_reset(s->pSync);
  }
}

/* End of a write run, inside the timing: everything reaches the store (and,
** as journal_sync does with durability=none, the disk for LMDB). */
static void sys_finish(Sys *s) {
  if (s->cfg.kind == SYS_EXT) sys_sync(s);
  if (s->cfg.kind == SYS_LMDB) mdb_ok(mdb_env_sync(s->env, 1), "env_sync");
}

static volatile u64 g_sink; /* keeps what was read from being optimised away */

/* Walk every row: count and checksum over (actor, payload). */
static Sum sys_walk(Sys *s) {
  Sum sum = {0, 0};
  if (s->cfg.kind == SYS_LMDB) {
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;
    mdb_ok(mdb_txn_begin(s->env, 0, MDB_RDONLY, &txn), "txn_begin (read)");
    mdb_ok(mdb_cursor_open(txn, s->dbi, &cur), "cursor_open");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      const u8 *pk = k.mv_data;
      u64 actor = 0;
      int j;
      if (k.mv_size != 16 || v.mv_size < 8) die("raw LMDB: malformed record");
      for (j = 0; j < 8; j++) actor = (actor << 8) | pk[j];
      sum_add(&sum, actor, (const u8 *)v.mv_data + 8, v.mv_size - 8);
    }
    if (rc != MDB_NOTFOUND) mdb_ok(rc, "cursor_get");
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
  } else {
    sqlite3_stmt *p = sql_prep(s->db, s->cfg.kind == SYS_EXT
                                          ? "SELECT actor_id, payload FROM j"
                                          : "SELECT actor, payload FROM t");
    int rc;
    while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
      const u8 *pay = sqlite3_column_blob(p, 1);
      size_t n = (size_t)sqlite3_column_bytes(p, 1);
      sum_add(&sum, actor_parse(sqlite3_column_text(p, 0),
                                sqlite3_column_bytes(p, 0)), pay, n);
    }
    sql_ok(s->db, rc, SQLITE_DONE, "verify scan");
    sqlite3_finalize(p);
  }
  return sum;
}

/* The two full scans of the performance targets: SCAN_AGG lets SQL count and sum
** (count(*), sum(length(payload))); SCAN_ROWS steps every row of
** (actor, seq, length(payload)) and reads each value in C.  Raw LMDB walks
** a cursor doing the same work (for SCAN_ROWS decoding actor and seq from
** the key).  Counts rows and payload bytes into *pRows, *pBytes. */
enum { SCAN_AGG = 0, SCAN_ROWS = 1, SCAN_COUNT = 2 };
static const char *const azScanSql[SYS_COUNT][SCAN_COUNT] = {
    {"SELECT count(*), sum(length(payload)) FROM j",
     "SELECT actor_id, seq, length(payload) FROM j"},
    {0, 0},
    {"SELECT count(*), sum(length(payload)) FROM t",
     "SELECT actor, seq, length(payload) FROM t"},
};

static void lmdb_scan(Sys *s, int eQuery, u64 *pRows, u64 *pBytes) {
  MDB_txn *txn;
  MDB_cursor *cur;
  MDB_val k, v;
  u64 nRow = 0, nByte = 0, x = 0;
  int rc;
  mdb_ok(mdb_txn_begin(s->env, 0, MDB_RDONLY, &txn), "txn_begin (read)");
  mdb_ok(mdb_cursor_open(txn, s->dbi, &cur), "cursor_open");
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 16 || v.mv_size < 8) die("raw LMDB: malformed record");
    if (eQuery == SCAN_ROWS) {
      const u8 *pk = k.mv_data;
      u64 actor = 0, seq = 0;
      int j;
      for (j = 0; j < 8; j++) actor = (actor << 8) | pk[j];
      for (j = 8; j < 16; j++) seq = (seq << 8) | pk[j];
      x += actor ^ seq;
    }
    nRow++;
    nByte += v.mv_size - 8;
  }
  if (rc != MDB_NOTFOUND) mdb_ok(rc, "cursor_get");
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  g_sink += x;
  *pRows = nRow;
  *pBytes = nByte;
}

static void sys_scan(Sys *s, int eQuery, u64 *pRows, u64 *pBytes) {
  sqlite3_stmt *p;
  u64 nRow = 0, nByte = 0, x = 0;
  int rc;
  if (s->cfg.kind == SYS_LMDB) {
    lmdb_scan(s, eQuery, pRows, pBytes);
    return;
  }
  p = sql_prep(s->db, azScanSql[s->cfg.kind][eQuery]);
  if (eQuery == SCAN_AGG) {
    sql_step(p, SQLITE_ROW);
    nRow = (u64)sqlite3_column_int64(p, 0);
    nByte = (u64)sqlite3_column_int64(p, 1);
  } else {
    while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
      const unsigned char *zActor = sqlite3_column_text(p, 0);
      int nActor = sqlite3_column_bytes(p, 0);
      x += (u64)sqlite3_column_int64(p, 1) + (u64)nActor +
           (zActor && nActor ? zActor[nActor - 1] : 0);
      nByte += (u64)sqlite3_column_int64(p, 2);
      nRow++;
    }
    sql_ok(s->db, rc, SQLITE_DONE, "scan");
  }
  sqlite3_finalize(p);
  g_sink += x;
  *pRows = nRow;
  *pBytes = nByte;
}

/* The verifier: the store holds exactly what the workload wrote. */
static void sys_verify(Sys *s, const Workload *w) {
  Sum want = wl_expect(w), got = sys_walk(s);
  if (got.rows != want.rows || got.hash != want.hash) {
    die("verify %s: read back %llu rows (checksum %016llx), wrote %llu rows "
        "(checksum %016llx)", azSysName[s->cfg.kind],
        (unsigned long long)got.rows, (unsigned long long)got.hash,
        (unsigned long long)want.rows, (unsigned long long)want.hash);
  }
}

/* Replay one actor's events in seq order; returns the number of events. */
static u64 sys_replay(Sys *s, int actor) {
  u64 n = 0, bytes = 0;
  if (s->cfg.kind == SYS_LMDB) {
    MDB_txn *txn;
    MDB_cursor *cur;
    u8 aKey[16] = {0};
    MDB_val k = {16, aKey}, v;
    int rc, j;
    u64 x = (u64)actor;
    for (j = 7; j >= 0; j--, x >>= 8) aKey[j] = (u8)x;
    mdb_ok(mdb_txn_begin(s->env, 0, MDB_RDONLY, &txn), "txn_begin (read)");
    mdb_ok(mdb_cursor_open(txn, s->dbi, &cur), "cursor_open");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && memcmp(k.mv_data, aKey, 8) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      n++;
      bytes += ((const u8 *)v.mv_data)[v.mv_size - 1];
    }
    if (rc != 0 && rc != MDB_NOTFOUND) mdb_ok(rc, "cursor_get");
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
  } else {
    sqlite3_stmt *p;
    int rc;
    if (!s->pReplay) {
      s->pReplay = sql_prep(s->db, s->cfg.kind == SYS_EXT
          ? "SELECT seq, payload FROM j WHERE actor_id=?1 ORDER BY seq"
          : "SELECT seq, payload FROM t WHERE actor=?1 ORDER BY seq");
    }
    p = s->pReplay;
    sqlite3_bind_text(p, 1, actor_name(actor), -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
      const u8 *pay = sqlite3_column_blob(p, 1);
      int nPay = sqlite3_column_bytes(p, 1);
      if ((u64)sqlite3_column_int64(p, 0) != n + 1) die("replay: seq gap");
      n++;
      if (nPay > 0) bytes += pay[nPay - 1];
    }
    sql_ok(s->db, rc, SQLITE_DONE, "replay");
    sql_reset(p);
  }
  g_sink += bytes; /* the payloads were really read */
  return n;
}

/**************************************************************************
** Temporary directories.
*/
static char g_zTmp[1024];   /* this run's root, removed at exit */
static int g_nDir;

static int rm_entry(const char *z, const struct stat *st, int flag,
                    struct FTW *f) {
  (void)st; (void)flag; (void)f;
  if (remove(z) != 0) {
    fprintf(stderr, "bench: cannot remove %s: %s\n", z, strerror(errno));
  }
  return 0;
}
static void rm_tree(const char *z) {
  nftw(z, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
static int g_isChild; /* a forked measuring child leaves the tree alone */
static void tmp_cleanup(void) {
  if (g_zTmp[0] && !g_isChild) rm_tree(g_zTmp);
}
static void tmp_init(const char *zBase) {
  snprintf(g_zTmp, sizeof g_zTmp, "%s/lmdbjournal-bench.XXXXXX", zBase);
  if (!mkdtemp(g_zTmp)) die("mkdtemp %s: %s", g_zTmp, strerror(errno));
  atexit(tmp_cleanup);
}
/* A new empty directory for one store. */
static void tmp_dir(char *zOut, size_t n, const char *zTag) {
  snprintf(zOut, n, "%s/%03d-%.40s", g_zTmp, ++g_nDir % 1000, zTag);
  if (mkdir(zOut, 0755) != 0) die("mkdir %s: %s", zOut, strerror(errno));
}

/**************************************************************************
** Write runs: one client or K client threads, each taking every K-th
** message of the workload.
*/
typedef struct WriteJob WriteJob;
struct WriteJob {
  Sys *s;
  const Workload *w;
  u64 first, step; /* messages first, first+step, ... */
  int syncEach;    /* durable point after every message */
  Lat *lat;        /* per-message latency, or NULL */
};

static void write_loop(const WriteJob *j) {
  Sys *s = j->s;
  u64 B = sys_client_batches(s) ? (u64)s->cfg.batch : 0, i, k = 0;
  for (i = j->first; i < j->w->n; i += j->step, k++) {
    int bTime = j->lat && k >= j->lat->nWarm;
    u64 t0 = bTime ? now_ns() : 0;
    if (B && k % B == 0) sys_begin(s);
    sys_put(s, j->w, i);
    if (B && (k + 1) % B == 0) sys_commit(s);
    if (j->syncEach) sys_sync(s);
    if (bTime) lat_add(j->lat, now_ns() - t0);
  }
  if (B && k % B != 0) sys_commit(s);
}

static void *client_main(void *pArg) {
  write_loop((const WriteJob *)pArg);
  return 0;
}

/* Write all of w into s with K clients.  Returns the seconds from the first
** message until sys_finish() returned.  Not inlined: profiles collect from
** here (valgrind --toggle-collect=write_run). */
__attribute__((noinline)) static double write_run(Sys *s, const Workload *w,
                                                  int K, int syncEach,
                                                  Lat *lat) {
  WriteJob aJob[64];
  pthread_t aThr[64];
  Lat aLat[64];
  u64 t0;
  double sec;
  int t;
  if (K < 1 || K > 64) die("clients must be 1..64");
  /* Concurrent clients of one actor get seqs in arrival order. */
  if (K > 1) s->checkSeq = 0;
  for (t = 0; t < K; t++) {
    aJob[t].s = t == 0 ? s : sys_peer(s); /* connections opened untimed */
    aJob[t].w = w;
    aJob[t].first = (u64)t;
    aJob[t].step = (u64)K;
    aJob[t].syncEach = syncEach;
    aJob[t].lat = 0;
    if (lat && K > 1) {
      lat_init(&aLat[t], w->n / (u64)K + 1);
      aJob[t].lat = &aLat[t];
    } else if (lat) {
      aJob[t].lat = lat;
    }
  }
  t0 = now_ns();
  if (K == 1) {
    write_loop(&aJob[0]);
  } else {
    for (t = 0; t < K; t++) {
      if (pthread_create(&aThr[t], 0, client_main, &aJob[t]) != 0) {
        die("pthread_create: %s", strerror(errno));
      }
    }
    for (t = 0; t < K; t++) pthread_join(aThr[t], 0);
  }
  sys_finish(s);
  sec = secs_since(t0);
  for (t = 1; t < K; t++) sys_close(aJob[t].s);
  if (lat && K > 1) {
    for (t = 0; t < K; t++) {
      size_t i;
      for (i = 0; i < aLat[t].n; i++) lat_add(lat, aLat[t].a[i]);
      lat_free(&aLat[t]);
    }
  }
  return sec;
}

/* Bytes a directory's files occupy on disk. */
static u64 g_nDu;
static int du_entry(const char *z, const struct stat *st, int flag,
                    struct FTW *f) {
  (void)z; (void)f;
  if (flag == FTW_F) g_nDu += (u64)st->st_blocks * 512u;
  return 0;
}
static u64 dir_bytes(const char *z) {
  g_nDu = 0;
  nftw(z, du_entry, 16, FTW_PHYS);
  return g_nDu;
}
static double g_lastStoreBytes; /* of the last store bench_write wrote */

/* The extension's own view of a run (journal_metrics), for the progress
** line: how many commits, how big the batches were.  Skipped quietly when
** the build has no journal_metrics. */
/* The metrics named (an SQL list) of the extension's store s, as
** " name=value" pairs. */
static void ext_metrics(Sys *s, const char *zNames, char *zOut, size_t n) {
  sqlite3_stmt *p = 0;
  size_t m = 0;
  char *zSql = sqlite3_mprintf("SELECT name, value FROM journal_metrics('j') "
                               "WHERE name IN (%s)", zNames);
  zOut[0] = 0;
  if (s->cfg.kind != SYS_EXT || zSql == 0 ||
      sqlite3_prepare_v2(s->db, zSql, -1, &p, 0) != SQLITE_OK) {
    sqlite3_finalize(p);
    sqlite3_free(zSql);
    return;
  }
  sqlite3_free(zSql);
  while (sqlite3_step(p) == SQLITE_ROW && m < n) {
    m += (size_t)snprintf(zOut + m, n - m, " %s=%g", sqlite3_column_text(p, 0),
                          sqlite3_column_double(p, 1));
  }
  sqlite3_finalize(p);
}

static void ext_diag(Sys *s, char *zOut, size_t n) {
  ext_metrics(s,
              "'commits', 'batch_size_avg', 'commit_latency_p50_us', "
              "'commit_latency_p99_us', 'stage_merged_events', "
              "'runs_compacted'",
              zOut, n);
}

/* Called with a freshly written and verified store, before it is removed:
** xUse while the writing connection is still open, then xClosed with the
** store's directory once it is closed (the cold scans reopen it). */
typedef void (*UseFn)(Sys *s, const Workload *w, void *pArg);
typedef void (*ClosedFn)(const SysCfg *c, const char *zDir, const Workload *w,
                         void *pArg);

/* Fresh store, write w (timed), verify, xUse, remove.  Returns messages
** per second, NAN when the system is not built in. */
/* Seconds until the extension's stage is empty (0 when nothing is
** staged): the merge work a run leaves behind it (bench/README.md). */
/* Wait until the metrics named (an SQL list) of the extension's store s
** add up to 0, at most 120 s: the seconds waited. */
static double ext_wait_zero(Sys *s, const char *zNames) {
  sqlite3_stmt *p = 0;
  u64 t0 = now_ns();
  char *zSql = sqlite3_mprintf("SELECT total(value) FROM journal_metrics('j') "
                               "WHERE name IN (%s)", zNames);
  if (s->cfg.kind != SYS_EXT || zSql == 0 ||
      sqlite3_prepare_v2(s->db, zSql, -1, &p, 0) != SQLITE_OK) {
    sqlite3_finalize(p);
    sqlite3_free(zSql);
    return 0;
  }
  sqlite3_free(zSql);
  for (;;) {
    double v = sqlite3_step(p) == SQLITE_ROW ? sqlite3_column_double(p, 0) : 0;
    sqlite3_reset(p);
    if (v <= 0 || secs_since(t0) > 120) break;
    sqlite3_sleep(1);
  }
  sqlite3_finalize(p);
  return secs_since(t0);
}

/* The stage merged. */
static double ext_stage_drain(Sys *s) {
  return ext_wait_zero(s, "'staged_events'");
}

/* The stage merged and what the writer compacts when idle compacted. */
static double ext_settle(Sys *s) {
  return ext_wait_zero(s, "'staged_events', 'compaction_pending'");
}
static double g_lastDrain; /* ext_stage_drain of the last bench_write */
static double g_settleBig; /* ext_settle of the large replay store */
static const SysCfg *g_pSettle; /* the store whose ext_settle is reported:
                                ** the large replay store */
static double g_drain10k;  /* ... of the extension's run at A=10,000, N */

/* CPU seconds of the whole process (every thread), user + system: on a
** busy machine the CPU a run costs varies less than its wall-clock time. */
static double cpu_secs(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double bench_write_use(const SysCfg *c, const Workload *w, int K,
                              int syncEach, Lat *lat, UseFn xUse,
                              ClosedFn xClosed, void *pArg, const char *zTag) {
  char zDir[PATH_MAX];
  char zDiag[260];
  Sys *s;
  double sec, rate, cpu0, cpu, settle;
  size_t m;
  tmp_dir(zDir, sizeof zDir, zTag);
  s = sys_open(c, zDir);
  if (!s) {
    rm_tree(zDir);
    return NAN;
  }
  cpu0 = cpu_secs();
  sec = write_run(s, w, K, syncEach, lat);
  cpu = cpu_secs() - cpu0;
  g_lastDrain = ext_stage_drain(s);
  /* What the idle writer does next (compaction) is done before anything
  ** is measured on the store. */
  settle = ext_settle(s);
  if (c == g_pSettle) g_settleBig = settle;
  if (c->kind == SYS_EXT && w->actors == 10000 && K == 1) {
    g_drain10k = g_lastDrain;
  }
  sys_verify(s, w);
  rate = (double)w->n / sec;
  g_lastStoreBytes = (double)dir_bytes(zDir);
  ext_diag(s, zDiag, sizeof zDiag);
  m = strlen(zDiag);
  if (g_lastDrain > 0.001) {
    snprintf(zDiag + m, sizeof zDiag - m, " stage merged %.2f s later "
             "(%.0f msg/s with it)", g_lastDrain,
             (double)w->n / (sec + g_lastDrain));
  }
  progress("%-14s %-12s A=%-6d N=%-8llu K=%d: %11.0f msg/s (%.2f s, "
           "verified) cpu %.2f µs/msg%s", zTag, azSysName[c->kind], w->actors,
           (unsigned long long)w->n, K, rate, sec, cpu * 1e6 / (double)w->n,
           zDiag);
  if (xUse) xUse(s, w, pArg);
  sys_close(s);
  if (xClosed) xClosed(c, zDir, w, pArg);
  rm_tree(zDir);
  return rate;
}

static double bench_write(const SysCfg *c, const Workload *w, int K,
                          int syncEach, Lat *lat, UseFn xUse, void *pArg,
                          const char *zTag) {
  return bench_write_use(c, w, K, syncEach, lat, xUse, 0, pArg, zTag);
}

/**************************************************************************
** Results.
*/
enum { U_RATE, U_US, U_MIB, U_BYTES, U_SEC, U_RATIO };
typedef struct Row Row;
struct Row {
  char zMeasure[160];
  int eUnit;
  int bHigher;        /* higher is better */
  int bNoRatio;       /* a property of the machine, not of the systems */
  double v[SYS_COUNT];
  char zTarget[96];
  int met;            /* -1 no target, 0 missed, 1 met */
};
static Row g_aRow[80];
static int g_nRow;

static Row *row_add(int eUnit, const char *zFmt, ...) {
  Row *r;
  va_list ap;
  int i;
  if (g_nRow >= (int)(sizeof g_aRow / sizeof g_aRow[0])) die("too many rows");
  r = &g_aRow[g_nRow++];
  memset(r, 0, sizeof *r);
  va_start(ap, zFmt);
  vsnprintf(r->zMeasure, sizeof r->zMeasure, zFmt, ap);
  va_end(ap);
  r->eUnit = eUnit;
  r->bHigher = eUnit == U_RATE;
  for (i = 0; i < SYS_COUNT; i++) r->v[i] = NAN;
  r->met = -1;
  return r;
}
static void row_target(Row *r, int met, const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  vsnprintf(r->zTarget, sizeof r->zTarget, zFmt, ap);
  va_end(ap);
  r->met = isnan(r->v[SYS_EXT]) ? -1 : met;
}
/* How many times better lmdbjournal is than system k (>1: better). */
static double row_ratio(const Row *r, int k) {
  double a = r->v[SYS_EXT], b = r->v[k];
  if (r->bNoRatio || isnan(a) || isnan(b) || a <= 0 || b <= 0) return NAN;
  return r->bHigher ? a / b : b / a;
}

static void fmt_value(char *z, size_t n, double v, int eUnit) {
  if (isnan(v)) { snprintf(z, n, "—"); return; }
  switch (eUnit) {
    case U_RATE:
      if (v >= 1e6) snprintf(z, n, "%.2f M/s", v / 1e6);
      else if (v >= 1e3) snprintf(z, n, "%.1f k/s", v / 1e3);
      else snprintf(z, n, "%.0f /s", v);
      break;
    case U_US:
      if (v >= 1000) snprintf(z, n, "%.2f ms", v / 1000);
      else snprintf(z, n, "%.2f µs", v);
      break;
    case U_MIB: snprintf(z, n, "%.2f MiB", v); break;
    case U_BYTES: snprintf(z, n, "%.0f B", v); break;
    case U_SEC: snprintf(z, n, "%.2f s", v); break;
    default: snprintf(z, n, "%.2f×", v); break;
  }
}

/* Throughput memo, so a workload measured once is not measured again. */
typedef struct Memo Memo;
struct Memo { int kind, actors, variant; u64 n; double rate; };
static Memo g_aMemo[64];
static int g_nMemo;
enum { V_ASYNC = 0, V_STATIC = 1, V_NOSYNC = 2 };
static double memo_get(int kind, int variant, int actors, u64 n) {
  int i;
  for (i = 0; i < g_nMemo; i++) {
    Memo *m = &g_aMemo[i];
    if (m->kind == kind && m->variant == variant && m->actors == actors &&
        m->n == n) return m->rate;
  }
  return -1;
}
static void memo_put(int kind, int variant, int actors, u64 n, double r) {
  if (g_nMemo < (int)(sizeof g_aMemo / sizeof g_aMemo[0])) {
    Memo m = {kind, actors, variant, n, r};
    g_aMemo[g_nMemo++] = m;
  }
}

/**************************************************************************
** Options.
*/
enum {
  M_MEMORY = 1 << 0, M_ASYNC = 1 << 1, M_SCALE = 1 << 2, M_INSERT = 1 << 3,
  M_SYNCMODE = 1 << 4, M_LATENCY = 1 << 5, M_DURABLE = 1 << 6,
  M_SCAN = 1 << 7, M_REPLAY = 1 << 8, M_TAIL = 1 << 9, M_APPEND = 1 << 10,
  M_RECOVER = 1 << 11, M_SHIP = 1 << 12
};
/* "append": only the async rows at A=--actors (headline and static). */
static const char *const azMeasure[] = {"memory", "async", "scale", "insert",
                                        "syncmode", "latency", "durable",
                                        "scan", "replay", "tail", "append",
                                        "recovery", "ship"};
#define N_MEASURE ((int)(sizeof azMeasure / sizeof azMeasure[0]))

typedef struct Opts Opts;
struct Opts {
  int quick;
  u64 n;          /* messages of the throughput runs */
  int actors, payload, batch, clients;
  u64 nBig;       /* rows of the large replay store */
  u64 nSmall;     /* rows of the small replay store */
  u64 nDurable;   /* messages of the durable runs */
  u64 nLat;       /* messages of the latency runs */
  u64 nSyncMode;  /* messages of the append_mode=sync runs */
  int memActors;  /* actors tracked by the memory measure */
  int nReplay;    /* replays (and tails) timed per store */
  int nFsync;     /* fdatasync samples */
  int bigBatch;   /* batch_size of the large store's generation */
  unsigned only;
  const char *zOut, *zDir;
};
static Opts g_o;

static const SysCfg *cfg_of(int kind, int durable, int batch) {
  static SysCfg c;
  memset(&c, 0, sizeof c);
  c.kind = kind;
  c.durable = durable;
  c.batch = batch;
  return &c;
}

static Workload wl_make(u64 n, int actors) {
  Workload w;
  w.n = n;
  w.actors = actors;
  w.payload = g_o.payload;
  return w;
}

/**************************************************************************
** Measures.
*/

/* RSS and its file-backed part, bytes (from /proc/self/statm). */
static void rss_now(double *pRss, double *pFile) {
  long size = 0, res = 0, shared = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f || fscanf(f, "%ld %ld %ld", &size, &res, &shared) != 3) {
    die("cannot read /proc/self/statm");
  }
  fclose(f);
  *pRss = (double)res * (double)sysconf(_SC_PAGESIZE);
  *pFile = (double)shared * (double)sysconf(_SC_PAGESIZE);
}

/* Page in the SQLite and LMDB libraries (and for the extension the loaded
** module), so that the "bare process" the memory measure starts from is one
** that already uses them: the measure is of the store, not of the code. */
static void warm_libraries(const char *zDir, int kind) {
  sqlite3 *db;
  MDB_env *env;
  char zSub[PATH_MAX + 8];
  sql_ok(0, sqlite3_open(":memory:", &db), SQLITE_OK, "open (warm-up)");
  sql_exec(db, "CREATE TABLE w(a PRIMARY KEY, b) WITHOUT ROWID;"
               "INSERT INTO w VALUES(1, x'00'); SELECT count(*) FROM w");
  if (kind == SYS_EXT && HAVE_EXT) {
    /* Left open: closing it would unload the module again. */
    ext_attach(db, 0);
    sql_exec(db, "SELECT journal_version()");
  } else {
    sql_ok(db, sqlite3_close(db), SQLITE_OK, "close (warm-up)");
  }
  snprintf(zSub, sizeof zSub, "%s/warm", zDir);
  if (mkdir(zSub, 0755) != 0) die("mkdir %s: %s", zSub, strerror(errno));
  mdb_ok(mdb_env_create(&env), "env_create (warm-up)");
  mdb_ok(mdb_env_open(env, zSub, 0, 0664), "env_open (warm-up)");
  mdb_env_close(env);
}

/* Memory, in a forked child per system so that no earlier allocation of
** this process hides or inflates the growth.  Runs before any thread. */
static void m_memory(void) {
  Row *rBase = row_add(U_MIB, "RSS over the bare process after open");
  Row *rAct = row_add(U_BYTES, "RSS per tracked actor (A=%d, one %d B "
                      "message each)", g_o.memActors, g_o.payload);
  Row *rAnon = row_add(U_BYTES, "… of which anonymous memory (not LMDB map / "
                       "page cache)");
  double aFile[SYS_COUNT][2];
  int k;
  for (k = 0; k < SYS_COUNT; k++) {
    int fd[2];
    pid_t pid;
    double r[5] = {0};
    char zDir[PATH_MAX];
    if ((k == SYS_EXT && !HAVE_EXT) || !(g_sysMask & (1u << k))) continue;
    tmp_dir(zDir, sizeof zDir, "memory");
    if (pipe(fd) != 0) die("pipe: %s", strerror(errno));
    fflush(0);
    pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
      double f0, f1, f2;
      Workload w = wl_make((u64)g_o.memActors, g_o.memActors);
      Sys *s;
      char zStore[PATH_MAX + 8];
      g_isChild = 1;
      close(fd[0]);
      warm_libraries(zDir, k);
      snprintf(zStore, sizeof zStore, "%s/store", zDir);
      if (mkdir(zStore, 0755) != 0) {
        die("mkdir %s: %s", zStore, strerror(errno));
      }
      rss_now(&r[0], &f0);
      s = sys_open(cfg_of(k, 0, g_o.batch), zStore);
      rss_now(&r[1], &f1);
      write_run(s, &w, 1, 0, 0);
      rss_now(&r[2], &f2);
      sys_verify(s, &w);
      r[3] = f1 - f0;
      r[4] = f2 - f1;
      if (write(fd[1], r, sizeof r) != (ssize_t)sizeof r) _exit(3);
      sys_close(s);
      _exit(0);
    } else {
      int st = 0;
      ssize_t got;
      close(fd[1]);
      got = read(fd[0], r, sizeof r);
      close(fd[0]);
      waitpid(pid, &st, 0);
      if (got != (ssize_t)sizeof r || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        die("memory measure of %s failed (child status %d)", azSysName[k], st);
      }
      rm_tree(zDir);
    }
    rBase->v[k] = (r[1] - r[0]) / 1048576.0;
    rAct->v[k] = (r[2] - r[1]) / g_o.memActors;
    aFile[k][0] = r[3] / 1048576.0;
    aFile[k][1] = r[4] / g_o.memActors;
    rAnon->v[k] = rAct->v[k] - aFile[k][1];
    progress("memory         %-12s base %+.2f MiB (file-backed %+.2f), "
             "per actor %.0f B (file-backed %.0f)", azSysName[k],
             rBase->v[k], aFile[k][0], rAct->v[k], aFile[k][1]);
  }
  row_target(rBase, rBase->v[SYS_EXT] <= 16.0, "≤ 16 MiB");
  row_target(rAct, rAct->v[SYS_EXT] <= 200.0, "≤ 200 B");
  row_target(rAnon, -1, "—");
}

/* The full scans (SCAN_AGG, SCAN_ROWS), rows per second: right after
** writing, in the process that wrote (median of three), and from freshly
** started processes on the reopened store (median of three processes, each
** timing its first run of the query). */
typedef struct ScanOut ScanOut;
struct ScanOut { double hot[SCAN_COUNT], cold[SCAN_COUNT]; };
static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median3(double *a) {
  qsort(a, 3, sizeof a[0], cmp_dbl);
  return a[1];
}

static void scan_check(const char *zSys, const char *zWhen, int eQuery,
                       const Workload *w, u64 nRow, u64 nByte) {
  if (nRow != w->n || nByte != w->n * (u64)w->payload) {
    die("scan %d (%s) of %s: %llu rows / %llu bytes, expected %llu / %llu",
        eQuery, zWhen, zSys, (unsigned long long)nRow,
        (unsigned long long)nByte, (unsigned long long)w->n,
        (unsigned long long)(w->n * (u64)w->payload));
  }
}

static void use_scan(Sys *s, const Workload *w, void *pArg) {
  ScanOut *o = pArg;
  int q, i;
  for (q = 0; q < SCAN_COUNT; q++) {
    double a[3];
    for (i = 0; i < 3; i++) {
      u64 nRow = 0, nByte = 0, t0 = now_ns();
      double sec;
      sys_scan(s, q, &nRow, &nByte);
      sec = secs_since(t0);
      scan_check(azSysName[s->cfg.kind], "hot", q, w, nRow, nByte);
      a[i] = (double)nRow / sec;
    }
    o->hot[q] = median3(a);
  }
}

/* One cold scan: a fresh process of this binary reopens the store in zDir
** and times query eQuery once (scan_child_main).  Returns rows/s. */
static double scan_cold_once(const SysCfg *c, const char *zDir,
                             const Workload *w, int eQuery) {
  char zKind[16], zQuery[16], zN[32], zP[16], zB[16], zOut[256];
  char *azArg[12];
  int fd[2], st = 0, nArg = 0;
  ssize_t got, m = 0;
  unsigned long long nRow = 0, nByte = 0;
  double sec = 0;
  pid_t pid;
  snprintf(zKind, sizeof zKind, "%d", c->kind);
  snprintf(zQuery, sizeof zQuery, "%d", eQuery);
  snprintf(zN, sizeof zN, "%llu", (unsigned long long)w->n);
  snprintf(zP, sizeof zP, "%d", w->payload);
  snprintf(zB, sizeof zB, "%d", c->batch);
  azArg[nArg++] = g_zSelf;
  azArg[nArg++] = "--scan-child";
  azArg[nArg++] = zKind;
  azArg[nArg++] = zQuery;
  azArg[nArg++] = (char *)zDir;
  azArg[nArg++] = zN;
  azArg[nArg++] = zP;
  azArg[nArg++] = zB;
  azArg[nArg++] = g_zExtPath;
  if (g_zExtOpts) azArg[nArg++] = (char *)g_zExtOpts;
  azArg[nArg] = 0;
  if (pipe(fd) != 0) die("pipe: %s", strerror(errno));
  fflush(0);
  pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    execv(g_zSelf, azArg);
    fprintf(stderr, "bench: exec %s: %s\n", g_zSelf, strerror(errno));
    _exit(127);
  }
  close(fd[1]);
  while (m < (ssize_t)sizeof zOut - 1 &&
         (got = read(fd[0], zOut + m, sizeof zOut - 1 - (size_t)m)) > 0) {
    m += got;
  }
  zOut[m] = 0;
  close(fd[0]);
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
      sscanf(zOut, "%llu %llu %lf", &nRow, &nByte, &sec) != 3 || sec <= 0) {
    die("cold scan of %s failed (child status %d, output '%s')",
        azSysName[c->kind], st, zOut);
  }
  scan_check(azSysName[c->kind], "cold", eQuery, w, nRow, nByte);
  return (double)nRow / sec;
}

static void closed_scan(const SysCfg *c, const char *zDir, const Workload *w,
                        void *pArg) {
  ScanOut *o = pArg;
  int q, i;
  for (q = 0; q < SCAN_COUNT; q++) {
    double a[3];
    for (i = 0; i < 3; i++) a[i] = scan_cold_once(c, zDir, w, q);
    o->cold[q] = median3(a);
  }
}

/* The child side of scan_cold_once: argv as built there.  Opens the store
** untimed (for the extension: the module loaded, CREATE VIRTUAL TABLE),
** then times one run of the query and prints "rows bytes seconds". */
static int scan_child_main(int argc, char **argv) {
  SysCfg c;
  Sys *s;
  u64 nRow = 0, nByte = 0, t0;
  double sec;
  int eQuery;
  if (argc < 9) die("--scan-child: missing arguments");
  memset(&c, 0, sizeof c);
  c.kind = atoi(argv[2]);
  eQuery = atoi(argv[3]);
  c.batch = atoi(argv[7]);
  snprintf(g_zExtPath, sizeof g_zExtPath, "%s", argv[8]);
  if (argc > 9) g_zExtOpts = argv[9];
  if (c.kind < 0 || c.kind >= SYS_COUNT || eQuery < 0 ||
      eQuery >= SCAN_COUNT) {
    die("--scan-child: bad system or query");
  }
  s = sys_open_store(&c, argv[4], 0);
  if (!s) die("--scan-child: %s is not built in", azSysName[c.kind]);
  t0 = now_ns();
  sys_scan(s, eQuery, &nRow, &nByte);
  sec = secs_since(t0);
  printf("%llu %llu %.9f\n", (unsigned long long)nRow,
         (unsigned long long)nByte, sec);
  fflush(stdout);
  sys_close(s);
  return 0;
}

/* Async append throughput of system kind at A actors, N messages, as users
** run it (V_ASYNC) or, for the extension, linked statically with NOMUTEX
** connections (V_STATIC), or for the anchors without any sync
** (V_NOSYNC).  With o, the store is also scanned (ScanOut). */
static double async_rate_v(int kind, int variant, int actors, u64 n,
                           ScanOut *o) {
  double r = memo_get(kind, variant, actors, n);
  Workload w = wl_make(n, actors);
  SysCfg c = *cfg_of(kind, 0, g_o.batch);
  if (r >= 0 && !o) return r;
  c.bStatic = variant == V_STATIC;
  c.bNoSync = variant == V_NOSYNC;
  r = bench_write_use(&c, &w, 1, 0, 0, o ? use_scan : 0, o ? closed_scan : 0,
                      o, variant == V_STATIC   ? "async-static"
                         : variant == V_NOSYNC ? "async-nosync"
                                               : "async");
  memo_put(kind, variant, actors, n, r);
  if (o && !isnan(r)) {
    progress("scan           %-12s count/sum %.0f rows/s (fresh process "
             "%.0f), rows %.0f rows/s (fresh process %.0f)", azSysName[kind],
             o->hot[SCAN_AGG], o->cold[SCAN_AGG], o->hot[SCAN_ROWS],
             o->cold[SCAN_ROWS]);
  }
  return r;
}

static double async_rate(int kind, int actors, u64 n, ScanOut *o) {
  return async_rate_v(kind, V_ASYNC, actors, n, o);
}

static Row *async_row(int actors) {
  return row_add(U_RATE, "async appends/s through SQL, A=%d, P=%d, N=%llu, "
                 "B=%d", actors, g_o.payload, (unsigned long long)g_o.n,
                 g_o.batch);
}

/* The four scan rows: two queries, right after writing and cold. */
static void scan_rows(Row **ap) {
  static const char *const azQ[SCAN_COUNT] = {
      "SELECT count(*), sum(length(payload))",
      "stepping SELECT actor_id, seq, length(payload), every value read in C"};
  int q;
  for (q = 0; q < SCAN_COUNT; q++) {
    ap[2 * q] = row_add(U_RATE, "full scan rows/s, %s, %llu rows, right after "
                        "writing (same process)", azQ[q],
                        (unsigned long long)g_o.n);
    ap[2 * q + 1] = row_add(U_RATE, "… same query, freshly started process "
                            "on the reopened store");
  }
}

/* Async throughput at A=actors (as users load the extension, and once
** statically linked for comparison) and at A=10,000; the A=actors stores
** also give the scan rates and the size on disk. */
static void m_async(void) {
  Row *r = 0, *rStatic = 0, *rNoSync = 0, *rSize = 0;
  Row *apScan[2 * SCAN_COUNT] = {0};
  ScanOut aScan[SYS_COUNT];
  int k, q;
  if (g_o.only & (M_ASYNC | M_APPEND | M_SCAN)) {
    r = async_row(g_o.actors);
    if ((g_o.only & (M_ASYNC | M_APPEND)) && (g_sysMask & SYS_STATIC_BIT)) {
      rStatic = row_add(U_RATE, "… same, extension linked statically "
                        "(-DSQLITE_CORE), SQLITE_OPEN_NOMUTEX connections "
                        "(the earlier bench path; comparison only)");
    }
    if (g_o.only & (M_ASYNC | M_APPEND)) {
      rNoSync = row_add(U_RATE, "… same, anchors that never sync (raw LMDB "
                        "MDB_NOSYNC, SQLite synchronous=OFF: an OS crash "
                        "can corrupt either; comparison only)");
    }
    rSize = row_add(U_BYTES, "store size on disk per message (A=%d, P=%d)",
                    g_o.actors, g_o.payload);
  }
  if (g_o.only & M_SCAN) scan_rows(apScan);
  if (r) {
    for (k = 0; k < SYS_COUNT; k++) {
      for (q = 0; q < SCAN_COUNT; q++) {
        aScan[k].hot[q] = aScan[k].cold[q] = NAN;
      }
      r->v[k] = async_rate(k, g_o.actors, g_o.n, apScan[0] ? &aScan[k] : 0);
      if (!isnan(r->v[k])) rSize->v[k] = g_lastStoreBytes / (double)g_o.n;
    }
    row_target(r, row_ratio(r, SYS_LMDB) >= 1.0 && row_ratio(r, SYS_SQL) >= 5.0,
               "≥ 1.0× LMDB, ≥ 5× SQLite");
    row_target(rSize, -1, "—");
  }
  if (rNoSync) {
    rNoSync->v[SYS_EXT] = r->v[SYS_EXT];
    for (k = SYS_LMDB; k < SYS_COUNT; k++) {
      rNoSync->v[k] = async_rate_v(k, V_NOSYNC, g_o.actors, g_o.n, 0);
    }
    row_target(rNoSync, -1, "—");
  }
  if (rStatic) {
    rStatic->v[SYS_EXT] =
        async_rate_v(SYS_EXT, V_STATIC, g_o.actors, g_o.n, 0);
    rStatic->v[SYS_LMDB] = r->v[SYS_LMDB];
    rStatic->v[SYS_SQL] = r->v[SYS_SQL];
    row_target(rStatic, -1, "—");
  }
  if (apScan[0]) {
    for (q = 0; q < 2 * SCAN_COUNT; q++) {
      Row *rs = apScan[q];
      for (k = 0; k < SYS_COUNT; k++) {
        rs->v[k] = q % 2 ? aScan[k].cold[q / 2] : aScan[k].hot[q / 2];
      }
      row_target(rs, row_ratio(rs, SYS_SQL) >= 1.5, "≥ 1.5× SQLite");
    }
  }
  if (g_o.only & M_ASYNC) {
    Row *rMerged;
    double drain;
    r = async_row(10000);
    for (k = 0; k < SYS_COUNT; k++) r->v[k] = async_rate(k, 10000, g_o.n, 0);
    drain = g_drain10k;
    row_target(r, row_ratio(r, SYS_LMDB) >= 2.0, "≥ 2× LMDB");
    /* The same, charging the extension for the merge still due at the
    ** end (the anchors leave no work behind). */
    rMerged = row_add(U_RATE, "… same, counting the extension's merge of "
                      "what was still staged at the end");
    for (k = 0; k < SYS_COUNT; k++) rMerged->v[k] = r->v[k];
    if (!isnan(r->v[SYS_EXT]) && r->v[SYS_EXT] > 0) {
      rMerged->v[SYS_EXT] =
          (double)g_o.n / ((double)g_o.n / r->v[SYS_EXT] + drain);
    }
    row_target(rMerged, row_ratio(rMerged, SYS_LMDB) >= 2.0, "≥ 2× LMDB");
  }
}

/* Scaling with the number of actors and with N; written for plot.gp. */
static int g_aScaleA[] = {1, 100, 10000, 100000};
static void m_scale(void) {
  char zFile[PATH_MAX];
  FILE *f;
  int i, k, nA = g_o.quick ? 3 : 4;
  u64 aN[3];
  aN[0] = g_o.n / 10; aN[1] = g_o.n / 2; aN[2] = g_o.n;
  snprintf(zFile, sizeof zFile, "%s/scaling_actors.dat", g_o.zOut);
  if (!(f = fopen(zFile, "w"))) die("cannot write %s", zFile);
  fprintf(f, "# actors  lmdbjournal  raw_lmdb  sqlite_table  (async msg/s, "
          "N=%llu)\n", (unsigned long long)g_o.n);
  for (i = 0; i < nA; i++) {
    fprintf(f, "%d", g_aScaleA[i]);
    for (k = 0; k < SYS_COUNT; k++) {
      fprintf(f, " %.0f", async_rate(k, g_aScaleA[i], g_o.n, 0));
    }
    fprintf(f, "\n");
  }
  fclose(f);
  snprintf(zFile, sizeof zFile, "%s/scaling_n.dat", g_o.zOut);
  if (!(f = fopen(zFile, "w"))) die("cannot write %s", zFile);
  fprintf(f, "# N  lmdbjournal  raw_lmdb  sqlite_table  (async msg/s, "
          "A=%d)\n", g_o.actors);
  for (i = 0; i < 3; i++) {
    fprintf(f, "%llu", (unsigned long long)aN[i]);
    for (k = 0; k < SYS_COUNT; k++) {
      fprintf(f, " %.0f", async_rate(k, g_o.actors, aN[i], 0));
    }
    fprintf(f, "\n");
  }
  fclose(f);
}

/* INSERT INTO j in transactions of B rows, against the batched anchors. */
static void m_insert(void) {
  Row *r = row_add(U_RATE, "INSERT INTO j in BEGIN/COMMIT of B=%d rows, A=%d, "
                   "N=%llu", g_o.batch, g_o.actors, (unsigned long long)g_o.n);
  Workload w = wl_make(g_o.n, g_o.actors);
  SysCfg c = *cfg_of(SYS_EXT, 0, g_o.batch);
  c.viaInsert = 1;
  r->v[SYS_EXT] = bench_write(&c, &w, 1, 0, 0, 0, 0, "insert");
  r->v[SYS_LMDB] = async_rate(SYS_LMDB, g_o.actors, g_o.n, 0);
  r->v[SYS_SQL] = async_rate(SYS_SQL, g_o.actors, g_o.n, 0);
  row_target(r, -1, "—");
}

/* append_mode=sync, durability=none: every append waits for its commit,
** whose data pages are fdatasync'd (docs/api.md, "Durability"); the
** anchors commit every message with the same durability (SysCfg). */
static void m_syncmode(void) {
  Row *r = row_add(U_RATE, "append_mode=sync appends/s (commit per message, "
                   "durability=none and the anchors' equal), A=%d, N=%llu",
                   g_o.actors,
                   (unsigned long long)g_o.nSyncMode);
  Workload w = wl_make(g_o.nSyncMode, g_o.actors);
  int k;
  for (k = 0; k < SYS_COUNT; k++) {
    SysCfg c = *cfg_of(k, 0, k == SYS_EXT ? g_o.batch : 1);
    c.syncMode = k == SYS_EXT;
    r->v[k] = bench_write(&c, &w, 1, 0, 0, 0, 0, "syncmode");
  }
  row_target(r, -1, "—");
}

/* Quantile rows and CDF file for one latency measure. */
static const double aQ[3] = {0.5, 0.99, 0.999};
static const char *const azQ[3] = {"p50", "p99", "p999"};
static void lat_report(Lat aLat[SYS_COUNT], const char *zWhat,
                       const char *zFile, Row **apRow) {
  char zPath[PATH_MAX];
  FILE *f;
  int k, q, i;
  for (k = 0; k < SYS_COUNT; k++) lat_sort(&aLat[k]);
  for (q = 0; q < 3; q++) {
    apRow[q] = row_add(U_US, "%s latency %s", zWhat, azQ[q]);
    for (k = 0; k < SYS_COUNT; k++) apRow[q]->v[k] = lat_q_us(&aLat[k], aQ[q]);
  }
  snprintf(zPath, sizeof zPath, "%s/%s", g_o.zOut, zFile);
  if (!(f = fopen(zPath, "w"))) die("cannot write %s", zPath);
  fprintf(f, "# fraction  lmdbjournal_us  raw_lmdb_us  sqlite_table_us  (%s)\n",
          zWhat);
  for (i = 0; i <= 1000; i++) {
    /* dense near the tail: 0..0.9 in 0.01 steps, then up to 0.9999 */
    double fr =
        i <= 900 ? i / 1000.0 : 1.0 - pow(10.0, -1.0 - (i - 900) / 33.4);
    if (fr > 0.99999) fr = 0.99999;
    fprintf(f, "%.6f", fr);
    for (k = 0; k < SYS_COUNT; k++) {
      double v = lat_q_us(&aLat[k], fr);
      if (isnan(v)) fprintf(f, " NaN");
      else fprintf(f, " %.3f", v);
    }
    fprintf(f, "\n");
  }
  fclose(f);
}

/* Latency of individual async appends (clock_gettime around each call;
** for the anchors around each put, including the commit every B-th).
** The first max(nLat, 200k) messages warm the heap and the store up,
** untimed: the extension's queue holds up to queue_max records, and
** first-touch page faults of that memory would otherwise fill the p99 of a
** short run. */
static void m_latency(void) {
  Lat aLat[SYS_COUNT];
  Row *apRow[3];
  u64 nWarm = g_o.nLat > 200000 ? g_o.nLat : 200000; /* 2 × queue_max */
  Workload w = wl_make(nWarm + g_o.nLat, g_o.actors);
  int k;
  for (k = 0; k < SYS_COUNT; k++) {
    lat_init(&aLat[k], g_o.nLat);
    aLat[k].nWarm = nWarm;
    bench_write(cfg_of(k, 0, g_o.batch), &w, 1, 0, &aLat[k], 0, 0, "latency");
  }
  lat_report(aLat, "async append (one call, after a warm-up)",
             "latency_async.dat", apRow);
  row_target(apRow[1], apRow[1]->v[SYS_EXT] <= 10.0, "≤ 10 µs");
  for (k = 0; k < SYS_COUNT; k++) lat_free(&aLat[k]);
}

/* Add nSample timings of a 4 KiB overwrite + fdatasync in the data
** directory to l: the disk's price of one durable commit. */
static void fsync_probe(Lat *l, int nSample) {
  char zDir[PATH_MAX], zFile[PATH_MAX + 16];
  u8 aBuf[4096];
  int fd, i;
  tmp_dir(zDir, sizeof zDir, "fsync");
  snprintf(zFile, sizeof zFile, "%s/probe", zDir);
  fd = open(zFile, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die("open %s: %s", zFile, strerror(errno));
  memcpy(aBuf, g_arena, sizeof aBuf);
  for (i = 0; i < nSample; i++) {
    if (pwrite(fd, aBuf, sizeof aBuf, (off_t)i * 4096) !=
        (ssize_t)sizeof aBuf) {
      die("pwrite: %s", strerror(errno));
    }
  }
  if (fsync(fd) != 0) die("fsync: %s", strerror(errno));
  for (i = 0; i < nSample; i++) {
    u64 t0 = now_ns();
    aBuf[0] = (u8)i;
    if (pwrite(fd, aBuf, sizeof aBuf, (off_t)i * 4096) !=
            (ssize_t)sizeof aBuf ||
        fdatasync(fd) != 0) {
      die("write+fdatasync: %s", strerror(errno));
    }
    lat_add(l, now_ns() - t0);
  }
  close(fd);
  rm_tree(zDir);
}

/* Durable appends: one client doing append + sync per message, then K
** clients (group commit).  The anchors commit (and fsync) every message. */
static double g_rateDurable1 = NAN;
static void m_durable(void) {
  Row *rF = row_add(U_US, "median 4 KiB write + fdatasync on the data disk "
                    "(probed before and after the durable runs)");
  Row *r1 = row_add(U_RATE, "durable appends/s, 1 client, append + sync each "
                    "(anchors: commit+fsync per message), N=%llu",
                    (unsigned long long)g_o.nDurable);
  Row *rK = row_add(U_RATE, "durable appends/s, %d concurrent clients, each "
                    "append + sync", g_o.clients);
  Row *apRow[3];
  Lat aLat[SYS_COUNT], lF;
  Workload w = wl_make(g_o.nDurable, g_o.actors);
  double fsyncUs;
  int k;
  lat_init(&lF, 2 * (size_t)g_o.nFsync);
  fsync_probe(&lF, g_o.nFsync);
  for (k = 0; k < SYS_COUNT; k++) {
    lat_init(&aLat[k], g_o.nDurable);
    r1->v[k] = bench_write(cfg_of(k, 1, k == SYS_EXT ? g_o.batch : 1), &w, 1,
                           1, &aLat[k], 0, 0, "durable-1");
  }
  g_rateDurable1 = r1->v[SYS_EXT];
  row_target(r1, row_ratio(r1, SYS_LMDB) >= 0.9,
             "≥ 0.9× LMDB commit-per-message");
  lat_report(aLat, "durable append+sync (1 client)", "latency_durable.dat",
             apRow);
  for (k = 0; k < SYS_COUNT; k++) {
    lat_free(&aLat[k]);
    rK->v[k] = bench_write(cfg_of(k, 1, k == SYS_EXT ? g_o.batch : 1), &w,
                           g_o.clients, 1, 0, 0, 0, "durable-K");
  }
  row_target(rK, rK->v[SYS_EXT] >= 5.0 * g_rateDurable1,
             "≥ 5× 1 client (here %.2f×)", rK->v[SYS_EXT] / g_rateDurable1);
  fsync_probe(&lF, g_o.nFsync);
  lat_sort(&lF);
  fsyncUs = lat_q_us(&lF, 0.5);
  progress("fsync          median %.1f µs, p10 %.1f µs, p90 %.1f µs (%zu "
           "samples)", fsyncUs, lat_q_us(&lF, 0.1), lat_q_us(&lF, 0.9), lF.n);
  lat_free(&lF);
  for (k = 0; k < SYS_COUNT; k++) rF->v[k] = fsyncUs;
  rF->bNoRatio = 1;
  row_target(rF, -1, "—");
  row_target(apRow[1], apRow[1]->v[SYS_EXT] <= 2.0 * fsyncUs,
             "≤ 2× median fsync (%.0f µs)", 2.0 * fsyncUs);
}

/* Replay, tail and recovery timings on one store. */
typedef struct ReadOut ReadOut;
struct ReadOut { double replayUs, tailUs, recoverUs; };

/*
** Recovery: an actor's latest snapshot and the events after it, in one
** query (the recipe of docs/api.md), on a store that already holds
** the workload.  RECOVER_ACTORS actors get a snapshot at their last seq
** and then RECOVER_EVENTS more events; each recovery must return the
** snapshot and those events.  The SQLite anchor keeps snapshots in a
** table shaped like its events table.
*/
#define RECOVER_ACTORS 50
#define RECOVER_EVENTS 1000
static const char *const azRecoverSql[SYS_COUNT] = {
    "WITH snap AS (SELECT seq, state FROM journal_snapshots('j') "
    "WHERE actor_id = ?1 ORDER BY seq DESC LIMIT 1) "
    "SELECT seq, state FROM snap UNION ALL "
    "SELECT seq, payload FROM j WHERE actor_id = ?1 "
    "AND seq > coalesce((SELECT seq FROM snap), 0)",
    0,
    "WITH snap AS (SELECT seq, state FROM s WHERE actor = ?1 "
    "ORDER BY seq DESC LIMIT 1) "
    "SELECT seq, state FROM snap UNION ALL "
    "SELECT seq, payload FROM t WHERE actor = ?1 "
    "AND seq > coalesce((SELECT seq FROM snap), 0)"};

/* The snapshot of actor a at seq, then RECOVER_EVENTS events after it. */
static void recover_prepare(Sys *s, const Workload *w, int a, u64 seq) {
  sqlite3_stmt *pSnap, *pPut;
  const u8 *pay = wl_payload(w, (u64)a);
  int i;
  if (s->cfg.kind == SYS_EXT) {
    pSnap = sql_prep(s->db, "SELECT journal_snapshot('j', ?1, ?2, ?3)");
    pPut = sql_prep(s->db, "SELECT journal_append('j', ?1, ?3)");
  } else {
    sql_exec(s->db, "CREATE TABLE IF NOT EXISTS s(actor TEXT, seq INTEGER, "
                    "ts INTEGER, state BLOB, PRIMARY KEY(actor, seq)) "
                    "WITHOUT ROWID");
    sql_exec(s->db, "BEGIN");
    pSnap = sql_prep(s->db, "INSERT INTO s VALUES(?1, ?2, 0, ?3)");
    pPut = sql_prep(s->db, "INSERT INTO t VALUES(?1, ?2, 0, ?3)");
  }
  sqlite3_bind_text(pSnap, 1, actor_name(a), -1, SQLITE_STATIC);
  sqlite3_bind_int64(pSnap, 2, (sqlite3_int64)seq);
  sqlite3_bind_blob(pSnap, 3, pay, w->payload, SQLITE_STATIC);
  sql_step(pSnap, s->cfg.kind == SYS_EXT ? SQLITE_ROW : SQLITE_DONE);
  sqlite3_finalize(pSnap);
  sqlite3_bind_text(pPut, 1, actor_name(a), -1, SQLITE_STATIC);
  for (i = 1; i <= RECOVER_EVENTS; i++) {
    sqlite3_bind_int64(pPut, 2, (sqlite3_int64)(seq + (u64)i));
    sqlite3_bind_blob(pPut, 3, wl_payload(w, (u64)(a + i)), w->payload,
                      SQLITE_STATIC);
    sql_step(pPut, s->cfg.kind == SYS_EXT ? SQLITE_ROW : SQLITE_DONE);
    sql_reset(pPut);
  }
  sqlite3_finalize(pPut);
  if (s->cfg.kind == SYS_EXT) {
    sql_exec(s->db, "SELECT journal_sync('j')");
  } else {
    sql_exec(s->db, "COMMIT");
  }
}

/* The recovery query of store s (prepared once), its actors given
** snapshots and events, and the events each recovery returns. */
typedef struct Recover Recover;
struct Recover {
  sqlite3_stmt *p;
  int aActor[RECOVER_ACTORS];
  u64 per;
};

static int recover_setup(Sys *s, const Workload *w, Recover *r) {
  int i;
  memset(r, 0, sizeof(*r));
  if (!azRecoverSql[s->cfg.kind]) return 0;
  r->per = w->n / (u64)w->actors;
  for (i = 0; i < RECOVER_ACTORS; i++) {
    r->aActor[i] = (int)((u64)i * (u64)w->actors / RECOVER_ACTORS);
    recover_prepare(s, w, r->aActor[i], r->per);
  }
  ext_settle(s); /* what the idle writer compacts, before measuring */
  r->p = sql_prep(s->db, azRecoverSql[s->cfg.kind]);
  return 1;
}

/* Recovery i of store s (r): nanoseconds. */
static u64 recover_once(Sys *s, Recover *r, int i) {
  int a = r->aActor[mix64((u64)i + 55) % RECOVER_ACTORS], rc;
  u64 n = 0, t0 = now_ns(), t;
  sqlite3_bind_text(r->p, 1, actor_name(a), -1, SQLITE_STATIC);
  while ((rc = sqlite3_step(r->p)) == SQLITE_ROW) {
    const u8 *pay = sqlite3_column_blob(r->p, 1);
    int nPay = sqlite3_column_bytes(r->p, 1);
    if ((u64)sqlite3_column_int64(r->p, 0) != r->per + n) {
      die("recovery: seq gap");
    }
    if (nPay > 0) g_sink += pay[nPay - 1];
    n++;
  }
  sql_ok(s->db, rc, SQLITE_DONE, "recovery");
  sql_reset(r->p);
  t = now_ns() - t0;
  if (n != RECOVER_EVENTS + 1) {
    die("recovery of %s: %llu rows, expected the snapshot and %d events",
        actor_name(a), (unsigned long long)n, RECOVER_EVENTS);
  }
  return t;
}

static u64 ext_tail(Sys *s, sqlite3_int64 pos) {
  sqlite3_stmt *p;
  u64 n = 0;
  int rc;
  if (!s->pTail) {
    s->pTail = sql_prep(s->db, "SELECT * FROM j WHERE pos > ?1 ORDER BY pos "
                               "LIMIT 1000");
  }
  p = s->pTail;
  sqlite3_bind_int64(p, 1, pos);
  while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
    int i, nCol = sqlite3_column_count(p);
    for (i = 0; i < nCol; i++) {
      int t = sqlite3_column_type(p, i); /* no int-to-text conversions */
      if (t == SQLITE_TEXT || t == SQLITE_BLOB) {
        g_sink += (u64)sqlite3_column_bytes(p, i);
      }
    }
    n++;
  }
  sql_ok(s->db, rc, SQLITE_DONE, "tail");
  sql_reset(p);
  return n;
}

/* The i-th actor a read measure takes in a store of nActor actors: each
** actor at most once while i < nActor (7,919 is prime, so the steps visit
** every actor unless nActor is a multiple of it). */
static int read_actor(int i, int nActor) {
  u64 step = nActor % 7919 ? 7919 : 1;
  return (int)(((u64)i * step + 13) % (u64)nActor);
}

/* One replay of store s: nanoseconds. */
static u64 replay_once(Sys *s, const Workload *w, int i) {
  int a = read_actor(i, w->actors);
  u64 t0 = now_ns(), n = sys_replay(s, a), t = now_ns() - t0;
  if (n != w->n / (u64)w->actors) {
    die("replay %s of %s: %llu events, expected %llu", azSysName[s->cfg.kind],
        actor_name(a), (unsigned long long)n,
        (unsigned long long)(w->n / (u64)w->actors));
  }
  return t;
}

/* One tail read of store s (the extension's): nanoseconds. */
static u64 tail_once(Sys *s, const Workload *w, int i) {
  sqlite3_int64 pos = (sqlite3_int64)(mix64((u64)i + 99) % (w->n - 1000));
  u64 t0 = now_ns(), n = ext_tail(s, pos), t = now_ns() - t0;
  if (n != 1000) {
    die("tail after pos %lld returned %llu rows, expected 1000 (pos must be "
        "1..%llu, gap-free)", pos, (unsigned long long)n,
        (unsigned long long)w->n);
  }
  return t;
}

/* Page faults of this process so far (minor and major). */
static u64 page_faults(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (u64)ru.ru_minflt + (u64)ru.ru_majflt;
}

/* The stores the read measures run over, and their recovery queries. */
typedef struct Reads Reads;
struct Reads {
  Sys **as;
  const Workload **aw;
  Recover ar[2];
};
typedef u64 (*ReadFn)(Reads *r, int x, int i); /* query i of store x: ns */

static u64 replay_turn(Reads *r, int x, int i) {
  return replay_once(r->as[x], r->aw[x], i);
}
static u64 tail_turn(Reads *r, int x, int i) {
  return tail_once(r->as[x], r->aw[x], i);
}
static u64 recover_turn(Reads *r, int x, int i) {
  return recover_once(r->as[x], &r->ar[x], i);
}

/* n queries xRead per store, the stores taking turns query by query, so
** that a slow spell of the machine falls on all alike; the median of
** store j in microseconds into *apUs[j]. */
static void in_turns(Reads *r, int nStore, int n, ReadFn xRead,
                     double **apUs) {
  Lat al[2];
  u64 anFault[2] = {0, 0};
  int i, j;
  for (j = 0; j < nStore; j++) lat_init(&al[j], (size_t)n);
  for (i = 0; i < n; i++) {
    for (j = 0; j < nStore; j++) {
      int x = (i + j) % nStore;
      u64 f0 = page_faults();
      lat_add(&al[x], xRead(r, x, i));
      anFault[x] += page_faults() - f0;
    }
  }
  for (j = 0; j < nStore; j++) {
    lat_sort(&al[j]);
    *apUs[j] = lat_q_us(&al[j], 0.5);
    lat_free(&al[j]);
    progress("  store %d of %d: median %.2f us, %.1f page faults a query", j + 1,
             nStore, *apUs[j], n ? (double)anFault[j] / n : 0.0);
  }
}

/*
** The read measures over nStore stores at once (1, or 2: the extension's
** small and large stores, whose ratio is a target), in turns (in_turns).
** A replay takes each actor at most once (its first read in the process,
** as after a restart), so the small store has no advantage of pages an
** earlier replay mapped; at most nReplay replays, and no more than the
** smallest store has actors.
*/
static void reads_run(Sys **as, const Workload **aw, ReadOut **ao,
                      int nStore) {
  Reads r;
  double *apUs[2];
  int j, n = g_o.nReplay;
  memset(&r, 0, sizeof(r));
  r.as = as;
  r.aw = aw;
  for (j = 0; j < nStore; j++) {
    if (aw[j]->actors < n) n = aw[j]->actors;
    ao[j]->tailUs = ao[j]->recoverUs = NAN;
    apUs[j] = &ao[j]->replayUs;
  }
  in_turns(&r, nStore, n, replay_turn, apUs);
  if (as[0]->cfg.kind == SYS_EXT && (g_o.only & M_TAIL) && aw[0]->n > 2000) {
    for (j = 0; j < nStore; j++) apUs[j] = &ao[j]->tailUs;
    in_turns(&r, nStore, g_o.nReplay, tail_turn, apUs);
  }
  /* Last: it adds events, which the checks above do not expect. */
  if ((g_o.only & M_RECOVER) && recover_setup(as[0], aw[0], &r.ar[0]) &&
      (nStore < 2 || recover_setup(as[1], aw[1], &r.ar[1]))) {
    for (j = 0; j < nStore; j++) apUs[j] = &ao[j]->recoverUs;
    in_turns(&r, nStore, g_o.nReplay, recover_turn, apUs);
  }
  for (j = 0; j < nStore; j++) sqlite3_finalize(r.ar[j].p);
}

static void use_read(Sys *s, const Workload *w, void *pArg) {
  ReadOut *o = pArg;
  reads_run(&s, &w, &o, 1);
}

/* The extension's large store s is written: write the small one beside it
** (untimed) and measure both together.  pArg: ReadOut[2], small first. */
static void use_read_pair(Sys *s, const Workload *w, void *pArg) {
  ReadOut *ao = pArg, *apOut[2];
  Workload ws = wl_make(g_o.nSmall, (int)(g_o.nSmall / 1000));
  const Workload *apW[2];
  char zDir[PATH_MAX];
  Sys *apS[2];
  tmp_dir(zDir, sizeof zDir, "replay-small");
  apS[0] = sys_open(cfg_of(SYS_EXT, 0, g_o.batch), zDir);
  write_run(apS[0], &ws, 1, 0, 0);
  /* Both stores as an idle writer leaves them: merged and compacted
  ** (the large one too, by bench_write), then verified. */
  ext_settle(apS[0]);
  sys_verify(apS[0], &ws);
  apS[1] = s;
  apW[0] = &ws;
  apW[1] = w;
  apOut[0] = &ao[0];
  apOut[1] = &ao[1];
  reads_run(apS, apW, apOut, 2);
  for (int j = 0; j < 2; j++) {
    char z[200];
    ext_metrics(apS[j], "'runs_compacted', 'runs_read_cold'", z, sizeof z);
    progress("replay store of %llu rows:%s", (unsigned long long)apW[j]->n, z);
  }
  sys_close(apS[0]);
  rm_tree(zDir);
}

static void m_read(void) {
  Workload ws = wl_make(g_o.nSmall, (int)(g_o.nSmall / 1000));
  Workload wb = wl_make(g_o.nBig, (int)(g_o.nBig / 1000));
  ReadOut aSmall[SYS_COUNT], aPair[2], big;
  SysCfg cb = *cfg_of(SYS_EXT, 0, g_o.bigBatch);
  Row *rS, *rB, *rR, *rG, *rK, *rT1, *rT2;
  double genRate;
  int k;
  for (k = 0; k < SYS_COUNT; k++) {
    aSmall[k].replayUs = aSmall[k].tailUs = aSmall[k].recoverUs = NAN;
    /* The extension's small store is measured with its large one. */
    if (k == SYS_EXT) continue;
    bench_write(cfg_of(k, 0, g_o.batch), &ws, 1, 0, 0, use_read, &aSmall[k],
                "replay-small");
  }
  cb.zMap = "4GiB";
  cb.zExtra = "queue_max=1000000";
  aPair[0] = aPair[1] = aSmall[SYS_EXT];
  g_pSettle = &cb;
  genRate = bench_write(&cb, &wb, 1, 0, 0, use_read_pair, aPair, "replay-big");
  g_pSettle = 0;
  aSmall[SYS_EXT] = aPair[0];
  big = aPair[1];
  rG = row_add(U_SEC, "generate the %llu-row replay store (extension, "
               "durability=none, batch_size=%d, incl. journal_sync)%s",
               (unsigned long long)g_o.nBig, g_o.bigBatch,
               g_o.quick ? " — quick mode: small store" : "");
  rG->v[SYS_EXT] = (double)g_o.nBig / genRate;
  row_target(rG, -1, "—");
  rK = row_add(U_SEC, "... then the writer, idle, compacts it (waited for "
               "before the reads below)");
  rK->v[SYS_EXT] = g_settleBig;
  row_target(rK, -1, "—");
  if (g_o.only & M_REPLAY) {
    rS = row_add(U_US, "replay 1,000 events of one actor, %llu-row store "
                 "(median of %d, each actor read once; the extension's two "
                 "stores in turns)", (unsigned long long)g_o.nSmall,
                 ws.actors < g_o.nReplay ? ws.actors : g_o.nReplay);
    rB = row_add(U_US, "replay 1,000 events of one actor, %llu-row store%s",
                 (unsigned long long)g_o.nBig,
                 g_o.quick ? " (quick; full: 10M)" : "");
    rR = row_add(U_RATIO, "replay time, large store / small store");
    rR->bHigher = 0;
    for (k = 0; k < SYS_COUNT; k++) rS->v[k] = aSmall[k].replayUs;
    rB->v[SYS_EXT] = big.replayUs;
    rR->v[SYS_EXT] = big.replayUs / aSmall[SYS_EXT].replayUs;
    row_target(rS, -1, "—");
    row_target(rB, -1, "—");
    row_target(rR, rR->v[SYS_EXT] <= 1.2, "≤ 1.2 (at 10M vs 100k)");
  }
  if (g_o.only & M_RECOVER) {
    Row *rC1 = row_add(U_US, "recovery: latest snapshot + 1,000 later events "
                       "of one actor, one query, %llu-row store (median of "
                       "%d)", (unsigned long long)g_o.nSmall, g_o.nReplay);
    Row *rC2 = row_add(U_US, "recovery: latest snapshot + 1,000 later events "
                       "of one actor, one query, %llu-row store%s",
                       (unsigned long long)g_o.nBig,
                       g_o.quick ? " (quick; full: 10M)" : "");
    Row *rCR = row_add(U_RATIO, "recovery time, large store / small store");
    rCR->bHigher = 0;
    for (k = 0; k < SYS_COUNT; k++) rC1->v[k] = aSmall[k].recoverUs;
    rC2->v[SYS_EXT] = big.recoverUs;
    rCR->v[SYS_EXT] = big.recoverUs / aSmall[SYS_EXT].recoverUs;
    row_target(rC1, -1, "—");
    row_target(rC2, -1, "—");
    row_target(rCR, rCR->v[SYS_EXT] <= 1.2, "≤ 1.2 (at 10M vs 100k)");
  }
  if (g_o.only & M_TAIL) {
    rT1 = row_add(U_US, "tail: 1,000 rows after a random pos, %llu-row store",
                  (unsigned long long)g_o.nSmall);
    rT2 = row_add(U_US, "tail: 1,000 rows after a random pos, %llu-row store",
                  (unsigned long long)g_o.nBig);
    rT1->v[SYS_EXT] = aSmall[SYS_EXT].tailUs;
    rT2->v[SYS_EXT] = big.tailUs;
    row_target(rT1, -1, "—");
    row_target(rT2, -1, "cursor: flat in store size (%.2f×)",
               big.tailUs / aSmall[SYS_EXT].tailUs);
  }
}

/**************************************************************************
** Report.
*/
static void read_line_field(const char *zFile, const char *zKey, char *zOut,
                            size_t n) {
  char zLine[512];
  FILE *f = fopen(zFile, "r");
  snprintf(zOut, n, "unknown");
  if (!f) return;
  while (fgets(zLine, sizeof zLine, f)) {
    if (strncmp(zLine, zKey, strlen(zKey)) == 0) {
      char *z = strchr(zLine, ':');
      if (z) {
        z++;
        while (*z == ' ' || *z == '\t') z++;
        z[strcspn(z, "\n")] = 0;
        snprintf(zOut, n, "%s", z);
        break;
      }
    }
  }
  fclose(f);
}

/* Filesystem and device of the data directory, from /proc/self/mounts. */
static void data_fs(char *zOut, size_t n) {
  char zDev[256], zMnt[512], zType[64], zBest[900] = "unknown";
  char zReal[PATH_MAX], zRot[PATH_MAX], zBase[256];
  size_t best = 0;
  FILE *f = fopen("/proc/self/mounts", "r");
  if (!realpath(g_zTmp, zReal)) snprintf(zReal, sizeof zReal, "%s", g_zTmp);
  zBase[0] = 0;
  if (f) {
    while (fscanf(f, "%255s %511s %63s %*[^\n]", zDev, zMnt, zType) == 3) {
      size_t l = strlen(zMnt);
      if (strncmp(zReal, zMnt, l) == 0 && (zReal[l] == '/' || zReal[l] == 0 ||
                                           l == 1) && l >= best) {
        best = l;
        snprintf(zBest, sizeof zBest, "%s on %s (mounted at %s)", zType, zDev,
                 zMnt);
        snprintf(zBase, sizeof zBase, "%s",
                 strncmp(zDev, "/dev/", 5) == 0 ? zDev + 5 : "");
      }
    }
    fclose(f);
  }
  if (zBase[0]) {
    FILE *r;
    size_t l = strlen(zBase);
    snprintf(zRot, sizeof zRot, "/sys/class/block/%s/queue/rotational", zBase);
    if (access(zRot, R_OK) != 0) {
      while (l > 0 && zBase[l - 1] >= '0' && zBase[l - 1] <= '9') {
        zBase[--l] = 0;
      }
      if (l > 1 && zBase[l - 1] == 'p') zBase[--l] = 0; /* nvme0n1p1 */
      snprintf(zRot, sizeof zRot, "/sys/class/block/%s/queue/rotational",
               zBase);
    }
    if ((r = fopen(zRot, "r")) != 0) {
      int rot = -1;
      if (fscanf(r, "%d", &rot) == 1) {
        size_t m = strlen(zBest);
        snprintf(zBest + m, sizeof zBest - m, ", %s",
                 rot ? "rotational" : "non-rotational");
      }
      fclose(r);
    }
  }
  snprintf(zOut, n, "%s", zBest);
}

static char *ext_version(void) {
  static char z[64] = "not built in (LJ_BENCH_NO_EXT)";
  if (HAVE_EXT) {
    sqlite3 *db;
    sqlite3_stmt *p;
    sql_ok(0, sqlite3_open(":memory:", &db), SQLITE_OK, "open");
    ext_attach(db, 0);
    p = sql_prep(db, "SELECT journal_version()");
    sql_step(p, SQLITE_ROW);
    snprintf(z, sizeof z, "%s", (const char *)sqlite3_column_text(p, 0));
    sqlite3_finalize(p);
    sqlite3_close(db);
  }
  return z;
}

static char g_zMachine[8192];
static void machine_describe(void) {
  char zCpu[256], zFs[1024], zDate[64];
  struct utsname u;
  time_t t = time(0);
  int mj = 0, mn = 0, pt = 0;
  read_line_field("/proc/cpuinfo", "model name", zCpu, sizeof zCpu);
  data_fs(zFs, sizeof zFs);
  if (uname(&u) != 0) memset(&u, 0, sizeof u);
  strftime(zDate, sizeof zDate, "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
  mdb_version(&mj, &mn, &pt);
  snprintf(g_zMachine, sizeof g_zMachine,
           "- date: %s\n"
           "- CPU: %s, %ld cores online, %.1f GiB RAM\n"
           "- data dir: %s — %s\n"
           "- kernel: %s %s\n"
           "- SQLite %s, LMDB %d.%d.%d, lmdbjournal %s, compiler %s\n",
           zDate, zCpu, sysconf(_SC_NPROCESSORS_ONLN),
           (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) /
               (1024.0 * 1024 * 1024),
           g_zTmp, zFs, u.sysname, u.release, sqlite3_libversion(), mj, mn, pt,
           ext_version(), __VERSION__);
}

/* The 1-minute load average: anything well above 0 means other work shared
** the cores with the bench. */
static double load_avg(void) {
  double l = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &l) != 1) l = -1;
    fclose(f);
  }
  return l;
}
static double g_loadStart;

static const char *met_text(int met) {
  return met < 0 ? "" : met ? "yes" : "**no**";
}

static const Row *row_find(const char *zPrefix) {
  int i;
  for (i = 0; i < g_nRow; i++) {
    if (strncmp(g_aRow[i].zMeasure, zPrefix, strlen(zPrefix)) == 0) {
      return &g_aRow[i];
    }
  }
  return 0;
}

/* The seed's claims beside our figures. */
static void report_seed(FILE *f) {
  struct { const char *zClaim; double claim; int eUnit, bHigher;
           const char *zRow; } a[] = {
    {"100k msg/s single actor", 1e5, U_RATE, 1, 0},
    {"500k msg/s over 100 actors", 5e5, U_RATE, 1, 0},
    {"1M msg/s batched", 1e6, U_RATE, 1, "INSERT INTO j in BEGIN/COMMIT"},
    {"p99 < 5 ms", 5000, U_US, 0, "durable append+sync (1 client) latency p99"},
    {"~50 MB base", 50, U_MIB, 0, "RSS over the bare process"},
    {"~1 MB per actor", 1048576, U_BYTES, 0, "RSS per tracked actor"},
  };
  int i;
  double aOurs[6];
  const Row *r;
  aOurs[0] = memo_get(SYS_EXT, V_ASYNC, 1, g_o.n);
  aOurs[1] = memo_get(SYS_EXT, V_ASYNC, 100, g_o.n);
  for (i = 0; i < 2; i++) if (aOurs[i] < 0) aOurs[i] = NAN;
  for (i = 2; i < 6; i++) {
    r = row_find(a[i].zRow);
    aOurs[i] = r ? r->v[SYS_EXT] : NAN;
  }
  /* "batched": the better of the batched paths (async appends, INSERT). */
  if (isnan(aOurs[2]) || aOurs[1] > aOurs[2]) aOurs[2] = aOurs[1];
  fprintf(f, "\n### The seed's claims beside ours\n\n"
             "| seed claim | lmdbjournal (this run) | beats the claim? |\n"
             "|---|---|---|\n");
  for (i = 0; i < 6; i++) {
    char z[64];
    int ok = a[i].bHigher ? aOurs[i] >= a[i].claim : aOurs[i] <= a[i].claim;
    fmt_value(z, sizeof z, aOurs[i], a[i].eUnit);
    fprintf(f, "| %s | %s | %s |\n", a[i].zClaim, z,
            isnan(aOurs[i]) ? "not measured" : ok ? "yes" : "**no**");
  }
}

static void report_scaling(FILE *f) {
  int i, k, nA = g_o.quick ? 3 : 4;
  u64 aN[3];
  if (!(g_o.only & M_SCALE)) return;
  aN[0] = g_o.n / 10; aN[1] = g_o.n / 2; aN[2] = g_o.n;
  fprintf(f, "\n### Scaling (async appends/s, P=%d, B=%d)\n\n"
             "| workload | lmdbjournal | raw LMDB | SQLite table |\n"
             "|---|---|---|---|\n", g_o.payload, g_o.batch);
  for (i = 0; i < nA + 3; i++) {
    int A = i < nA ? g_aScaleA[i] : g_o.actors;
    u64 n = i < nA ? g_o.n : aN[i - nA];
    fprintf(f, "| A=%d, N=%llu |", A, (unsigned long long)n);
    for (k = 0; k < SYS_COUNT; k++) {
      char z[64];
      double v = memo_get(k, V_ASYNC, A, n);
      fmt_value(z, sizeof z, v < 0 ? NAN : v, U_RATE);
      fprintf(f, " %s |", z);
    }
    fprintf(f, "\n");
  }
}

static void report_md(FILE *f, const char *zCmd, double loadEnd) {
  int i, k;
  fprintf(f, "## lmdbjournal benchmark (%s mode)\n\n%s",
          g_o.quick ? "quick" : "full", g_zMachine);
  fprintf(f, "- 1-minute load average: %.2f at start, %.2f at end (the end "
             "figure includes the bench itself)%s\n", g_loadStart, loadEnd,
          g_loadStart > 0.5
              ? " — other work was running: treat the figures as noisy"
              : "");
  fprintf(f, "- command: `%s`\n"
             "- workload: N=%llu messages of P=%d bytes round-robin over "
             "A=%d actors, B=%d per transaction (see bench/README.md)\n\n",
          zCmd, (unsigned long long)g_o.n, g_o.payload, g_o.actors, g_o.batch);
  fprintf(f, "| measure | lmdbjournal | raw LMDB | SQLite table | ratio vs "
             "LMDB | ratio vs SQLite | target | met? |\n"
             "|---|---|---|---|---|---|---|---|\n");
  for (i = 0; i < g_nRow; i++) {
    const Row *r = &g_aRow[i];
    fprintf(f, "| %s |", r->zMeasure);
    for (k = 0; k < SYS_COUNT; k++) {
      char z[64];
      fmt_value(z, sizeof z, r->v[k], r->eUnit);
      fprintf(f, " %s |", z);
    }
    for (k = SYS_LMDB; k < SYS_COUNT; k++) {
      char z[64];
      fmt_value(z, sizeof z, row_ratio(r, k), U_RATIO);
      fprintf(f, " %s |", z);
    }
    fprintf(f, " %s | %s |\n", r->zTarget[0] ? r->zTarget : "—",
            met_text(r->met));
  }
  fprintf(f, "\nRatios are \"times better than the anchor\": throughput "
             "lmdbjournal/anchor, times and latencies anchor/lmdbjournal; "
             "above 1 lmdbjournal wins.\n");
  report_scaling(f);
  report_seed(f);
  if (g_o.quick) {
    fprintf(f, "\nQuick mode: N=%llu, replay stores of %llu and %llu rows, "
               "%llu durable messages; numbers are indicative, run `make "
               "bench` for the full sizes.\n", (unsigned long long)g_o.n,
            (unsigned long long)g_o.nSmall, (unsigned long long)g_o.nBig,
            (unsigned long long)g_o.nDurable);
  }
}

static void csv_field(FILE *f, double v) {
  if (isnan(v)) fprintf(f, ",");
  else fprintf(f, ",%.6g", v);
}

static void report_csv(FILE *f) {
  static const char *const azUnit[] = {"msg_per_s", "us", "MiB", "bytes",
                                       "s", "ratio"};
  int i, k;
  fprintf(f, "measure,unit,lmdbjournal,raw_lmdb,sqlite_table,ratio_vs_lmdb,"
             "ratio_vs_sqlite,target,met\n");
  for (i = 0; i < g_nRow; i++) {
    const Row *r = &g_aRow[i];
    fprintf(f, "\"%s\",%s", r->zMeasure, azUnit[r->eUnit]);
    for (k = 0; k < SYS_COUNT; k++) csv_field(f, r->v[k]);
    for (k = SYS_LMDB; k < SYS_COUNT; k++) csv_field(f, row_ratio(r, k));
    fprintf(f, ",\"%s\",%s\n", r->zTarget,
            r->met < 0 ? "" : r->met ? "yes" : "no");
  }
}

static void write_outputs(const char *zCmd) {
  char zPath[PATH_MAX];
  FILE *f;
  double loadEnd = load_avg();
  fflush(stderr);
  report_md(stdout, zCmd, loadEnd);
  snprintf(zPath, sizeof zPath, "%s/latest.md", g_o.zOut);
  if (!(f = fopen(zPath, "w"))) die("cannot write %s", zPath);
  report_md(f, zCmd, loadEnd);
  fclose(f);
  snprintf(zPath, sizeof zPath, "%s/latest.csv", g_o.zOut);
  if (!(f = fopen(zPath, "w"))) die("cannot write %s", zPath);
  report_csv(f);
  fclose(f);
}

/**************************************************************************
** Shipping to Kafka (ship): async appends at A=--actors, as in the
** headline row, into a store opened with ship=kafka, against librdkafka's
** mock cluster started in this process (3 brokers, replication factor 3,
** 8 partitions, 127.0.0.1).  A monitor thread samples the store's ship_pos
** every millisecond; each event's lag is the first sample at or past its
** pos minus its ts (the write time the writer gave it), so the lag covers
** commit, the shipper's read, the produce and the cluster's acknowledgement
** (acks=all), to within the sampling.  The mock cluster keeps its log in
** memory and runs on the same cores as the store.
*/
typedef struct ShipMon ShipMon;
struct ShipMon {
  sqlite3 *db;
  sqlite3_stmt *pPos;
  int bStop; /* atomic */
  sqlite3_int64 *aMs, *aPos; /* samples: when, ship_pos */
  size_t n, cap;
};

static sqlite3_int64 ship_metric(ShipMon *m) {
  sqlite3_int64 v;
  sql_step(m->pPos, SQLITE_ROW);
  v = sqlite3_column_int64(m->pPos, 0);
  sql_reset(m->pPos);
  return v;
}

static void *ship_mon_main(void *pArg) {
  ShipMon *m = pArg;
  sqlite3_int64 last = -1;
  while (!__atomic_load_n(&m->bStop, __ATOMIC_RELAXED)) {
    sqlite3_int64 pos = ship_metric(m);
    if (pos != last && m->n < m->cap) {
      m->aMs[m->n] = now_ms_wall();
      m->aPos[m->n++] = pos;
      last = pos;
    }
    usleep(1000);
  }
  return 0;
}

/* Per-event lag from the samples: walk the store in pos order. */
static void ship_lags(Sys *s, const ShipMon *m, Lat *pLat) {
  sqlite3_stmt *p = sql_prep(s->db, "SELECT pos, ts FROM j ORDER BY pos");
  size_t i = 0;
  while (sqlite3_step(p) == SQLITE_ROW) {
    sqlite3_int64 pos = sqlite3_column_int64(p, 0);
    sqlite3_int64 ts = sqlite3_column_int64(p, 1);
    while (i < m->n && m->aPos[i] < pos) i++;
    if (i == m->n) die("ship: pos %lld never acknowledged", (long long)pos);
    lat_add(pLat, (u64)(m->aMs[i] > ts ? m->aMs[i] - ts : 0) * 1000000u);
  }
  sqlite3_finalize(p);
}

/* Start the mock cluster (on a handle of its own, which
** rd_kafka_mock_cluster_handle gives back); the bootstrap address goes to
** zBoot. */
static rd_kafka_mock_cluster_t *ship_cluster(char *zBoot, size_t nBoot) {
  char zErr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_t *rk;
  rd_kafka_mock_cluster_t *mc;
  rd_kafka_conf_set(conf, "log_level", "3", zErr, sizeof zErr);
  rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, zErr, sizeof zErr);
  if (!rk) die("rd_kafka_new: %s", zErr);
  mc = rd_kafka_mock_cluster_new(rk, 3);
  if (!mc) die("cannot start librdkafka's mock cluster");
  if (rd_kafka_mock_topic_create(mc, "bench", 8, 3)) {
    die("cannot create the mock topic");
  }
  snprintf(zBoot, nBoot, "%s", rd_kafka_mock_cluster_bootstraps(mc));
  return mc;
}

static void m_ship(void) {
  u64 n = g_o.n > 500000 ? 500000 : g_o.n;
  Workload w = wl_make(n, g_o.actors);
  SysCfg c = *cfg_of(SYS_EXT, 0, g_o.batch);
  ShipMon m;
  pthread_t thr;
  char zDir[PATH_MAX], zBoot[512], zExtra[700], zMon[PATH_MAX + 100];
  rd_kafka_mock_cluster_t *mc;
  Row *rApp, *rPlain, *rShip, *rLag50, *rLag99, *rLagMax;
  Sys *s;
  Lat lat;
  u64 t0;
  double secApp, secShip, plain;
  int i;
  if (!HAVE_EXT || !(g_sysMask & (1u << SYS_EXT))) return;
  plain = async_rate(SYS_EXT, g_o.actors, n, 0);
  mc = ship_cluster(zBoot, sizeof zBoot);
  snprintf(zExtra, sizeof zExtra,
           "ship=kafka, ship_brokers='%s', ship_topic='bench'", zBoot);
  c.zExtra = zExtra;
  tmp_dir(zDir, sizeof zDir, "ship");
  s = sys_open(&c, zDir);
  memset(&m, 0, sizeof m);
  m.cap = 4 * 1000 * 1000;
  m.aMs = xmalloc(m.cap * sizeof(sqlite3_int64));
  m.aPos = xmalloc(m.cap * sizeof(sqlite3_int64));
  sql_ok(0, sqlite3_open(":memory:", &m.db), SQLITE_OK, "open");
  ext_attach(m.db, 0);
  snprintf(zMon, sizeof zMon,
           "CREATE VIRTUAL TABLE j USING lmdb_journal(path='%s')", zDir);
  sql_exec(m.db, zMon);
  m.pPos = sql_prep(m.db, "SELECT value FROM journal_metrics('j') "
                          "WHERE name = 'ship_active'");
  for (i = 0; i < 30000 && ship_metric(&m) != 1; i++) usleep(1000);
  if (i == 30000) die("ship: the shipper did not start");
  sqlite3_finalize(m.pPos);
  m.pPos = sql_prep(m.db, "SELECT value FROM journal_metrics('j') "
                          "WHERE name = 'ship_pos'");
  if (pthread_create(&thr, 0, ship_mon_main, &m)) die("pthread_create");
  t0 = now_ns();
  secApp = write_run(s, &w, 1, 0, 0);
  while (m.n == 0 || m.aPos[m.n - 1] < (sqlite3_int64)n) {
    if (secs_since(t0) > 300) die("ship: not all acknowledged after 300 s");
    usleep(1000);
  }
  secShip = secs_since(t0);
  __atomic_store_n(&m.bStop, 1, __ATOMIC_RELAXED);
  pthread_join(thr, 0);
  sys_verify(s, &w);
  lat_init(&lat, n);
  ship_lags(s, &m, &lat);
  lat_sort(&lat);
  progress("ship           %-12s A=%-6d N=%-8llu: appends %.0f msg/s "
           "(%.0f without shipping), all acknowledged after %.2f s "
           "(%.0f msg/s), lag p50 %.0f ms p99 %.0f ms max %.0f ms",
           azSysName[SYS_EXT], g_o.actors, (unsigned long long)n,
           (double)n / secApp, plain, secShip, (double)n / secShip,
           lat_q_us(&lat, 0.5) / 1e3, lat_q_us(&lat, 0.99) / 1e3,
           lat_q_us(&lat, 1.0) / 1e3);
  rPlain = row_add(U_RATE, "ship: async appends/s without shipping, A=%d, "
                   "P=%d, N=%llu, B=%d", g_o.actors, g_o.payload,
                   (unsigned long long)n, g_o.batch);
  rPlain->v[SYS_EXT] = plain;
  row_target(rPlain, -1, "—");
  rApp = row_add(U_RATE, "ship: … same, shipping to the mock Kafka cluster "
                 "(3 brokers, RF 3, 8 partitions, acks=all)");
  rApp->v[SYS_EXT] = (double)n / secApp;
  row_target(rApp, -1, "—"); /* the mock cluster shares the cores */
  rShip = row_add(U_RATE, "ship: events/s acknowledged by Kafka, first "
                  "append to last acknowledgement");
  rShip->v[SYS_EXT] = (double)n / secShip;
  row_target(rShip, rShip->v[SYS_EXT] >= 0.9 * rApp->v[SYS_EXT],
             "≥ 0.9× the appends (keeps up)");
  rLag50 = row_add(U_US, "ship: lag p50, event ts to Kafka's "
                   "acknowledgement, under that load");
  rLag99 = row_add(U_US, "ship: lag p99, same");
  rLagMax = row_add(U_US, "ship: lag max, same");
  rLag50->v[SYS_EXT] = lat_q_us(&lat, 0.5);
  rLag99->v[SYS_EXT] = lat_q_us(&lat, 0.99);
  rLagMax->v[SYS_EXT] = lat_q_us(&lat, 1.0);
  row_target(rLag50, -1, "—");
  row_target(rLag99, rLag99->v[SYS_EXT] <= 1e6, "≤ 1 s");
  row_target(rLagMax, -1, "—");
  lat_free(&lat);
  sqlite3_finalize(m.pPos);
  sqlite3_close(m.db);
  free(m.aMs);
  free(m.aPos);
  sys_close(s);
  {
    rd_kafka_t *rk = rd_kafka_mock_cluster_handle(mc);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
  }
  rm_tree(zDir);
}


/**************************************************************************
** main.
*/
static void usage(void) {
  int i;
  fprintf(stderr,
          "usage: bench [--quick] [--n N] [--actors A] [--payload P] "
          "[--batch B]\n"
          "             [--out DIR] [--dir TMPBASE] [--only LIST] [--big N]\n"
          "             [--small N] [--durable-n N] [--clients K] [--reps N]\n"
          "             [--sys ext,static,lmdb,sqlite] [--ext-opts 'k=v, ...']\n"
          "             [--ext-schema memory|delete|wal]\n"
          "             [--ext PATH-TO-lmdbjournal.so]\n"
          "LIST: comma-separated among");
  for (i = 0; i < N_MEASURE; i++) fprintf(stderr, " %s", azMeasure[i]);
  fprintf(stderr, "\n");
  exit(1);
}

static unsigned parse_only(const char *z) {
  unsigned m = 0;
  char *zCopy = strdup(z), *zTok, *zSave = 0;
  if (!zCopy) die("out of memory");
  for (zTok = strtok_r(zCopy, ",", &zSave); zTok;
       zTok = strtok_r(0, ",", &zSave)) {
    int i;
    for (i = 0; i < N_MEASURE && strcmp(zTok, azMeasure[i]) != 0; i++) {}
    if (i == N_MEASURE) {
      fprintf(stderr, "bench: unknown measure '%s'\n", zTok);
      usage();
    }
    m |= 1u << i;
  }
  free(zCopy);
  return m;
}

static unsigned parse_sys(const char *z) {
  unsigned m = 0;
  if (strstr(z, "ext")) m |= 1u << SYS_EXT;
  if (strstr(z, "lmdb")) m |= 1u << SYS_LMDB;
  if (strstr(z, "sqlite")) m |= 1u << SYS_SQL;
  if (strstr(z, "static")) m |= SYS_STATIC_BIT;
  if (!m) die("--sys takes a comma list of ext, static, lmdb, sqlite");
  return m;
}

static u64 parse_count(const char *z) {
  char *zEnd;
  double v = strtod(z, &zEnd);
  if (*zEnd == 'k' || *zEnd == 'K') { v *= 1e3; zEnd++; }
  else if (*zEnd == 'M') { v *= 1e6; zEnd++; }
  if (*zEnd || v < 1) die("bad count '%s'", z);
  return (u64)v;
}

static void opts_parse(int argc, char **argv) {
  int i;
  const char *zEnvDir = getenv("BENCH_DIR");
  u64 nGiven = 0, bigGiven = 0, smallGiven = 0, durGiven = 0, repsGiven = 0;
  memset(&g_o, 0, sizeof g_o);
  g_o.actors = 100;
  g_o.payload = 100;
  g_o.batch = 1000;
  g_o.clients = 8;
  g_o.zOut = "bench/results";
  g_o.zDir = zEnvDir && zEnvDir[0] ? zEnvDir : "/var/tmp";
  g_o.only = ~0u;
  for (i = 1; i < argc; i++) {
    const char *z = argv[i];
    const char *zVal = i + 1 < argc ? argv[i + 1] : 0;
    if (strcmp(z, "--quick") == 0) { g_o.quick = 1; continue; }
    if (!zVal) usage();
    i++;
    if (strcmp(z, "--n") == 0) nGiven = parse_count(zVal);
    else if (strcmp(z, "--actors") == 0) g_o.actors = (int)parse_count(zVal);
    else if (strcmp(z, "--payload") == 0) g_o.payload = (int)parse_count(zVal);
    else if (strcmp(z, "--batch") == 0) g_o.batch = (int)parse_count(zVal);
    else if (strcmp(z, "--clients") == 0) g_o.clients = (int)parse_count(zVal);
    else if (strcmp(z, "--big") == 0) bigGiven = parse_count(zVal);
    else if (strcmp(z, "--small") == 0) smallGiven = parse_count(zVal);
    else if (strcmp(z, "--durable-n") == 0) durGiven = parse_count(zVal);
    else if (strcmp(z, "--reps") == 0) repsGiven = parse_count(zVal);
    else if (strcmp(z, "--out") == 0) g_o.zOut = zVal;
    else if (strcmp(z, "--dir") == 0) g_o.zDir = zVal;
    else if (strcmp(z, "--only") == 0) g_o.only = parse_only(zVal);
    else if (strcmp(z, "--sys") == 0) g_sysMask = parse_sys(zVal);
    else if (strcmp(z, "--ext-opts") == 0) g_zExtOpts = zVal;
    else if (strcmp(z, "--ext-schema") == 0) {
      g_zExtSchema = strcmp(zVal, "memory") == 0 ? 0 : zVal;
      if (g_zExtSchema && strcmp(zVal, "delete") && strcmp(zVal, "wal")) usage();
    }
    else if (strcmp(z, "--ext") == 0) {
      if (!realpath(zVal, g_zExtPath)) die("--ext %s: %s", zVal, strerror(errno));
    }
    else usage();
  }
  g_o.n = nGiven ? nGiven : g_o.quick ? 200000 : 2000000;
  g_o.nBig = bigGiven ? bigGiven : g_o.quick ? 1000000 : 10000000;
  g_o.nSmall = smallGiven ? smallGiven : 100000;
  g_o.nDurable = durGiven ? durGiven : g_o.quick ? 2000 : 10000;
  g_o.nLat = g_o.quick ? 100000 : 500000;
  if (g_o.nLat > g_o.n) g_o.nLat = g_o.n;
  g_o.nSyncMode = g_o.quick ? 10000 : 50000;
  g_o.memActors = g_o.quick ? 10000 : 100000;
  g_o.nReplay = repsGiven ? (int)repsGiven : g_o.quick ? 100 : 200;
  g_o.nFsync = g_o.quick ? 100 : 300;
  g_o.bigBatch = 50000;
  if (g_o.payload > 65536 || g_o.batch < 1 || g_o.actors < 1 ||
      g_o.clients < 1 || g_o.clients > 64 || g_o.nSmall < 2000 ||
      g_o.nBig < 2000) {
    die("bad options (payload ≤ 64 KiB, batch/actors ≥ 1, clients 1..64, "
        "stores ≥ 2000 rows)");
  }
}

/* This binary's path (the cold scans execute it) and the default module
** path: lmdbjournal.so beside it (build/bench, build/lmdbjournal.so). */
static void paths_init(void) {
  char *zSlash;
  ssize_t n = readlink("/proc/self/exe", g_zSelf, sizeof g_zSelf - 1);
  if (n <= 0) die("readlink /proc/self/exe: %s", strerror(errno));
  g_zSelf[n] = 0;
  snprintf(g_zExtPath, sizeof g_zExtPath, "%s", g_zSelf);
  zSlash = strrchr(g_zExtPath, '/');
  snprintf(zSlash ? zSlash + 1 : g_zExtPath,
           sizeof g_zExtPath - (size_t)(zSlash ? zSlash + 1 - g_zExtPath : 0),
           "lmdbjournal.so");
}

int main(int argc, char **argv) {
  char zCmd[1024] = "";
  size_t n = 0;
  int i, maxA;
  g_t0 = now_ns();
  paths_init();
  if (argc > 1 && strcmp(argv[1], "--scan-child") == 0) {
    return scan_child_main(argc, argv);
  }
  g_loadStart = load_avg();
  opts_parse(argc, argv);
  for (i = 0; i < argc && n < sizeof zCmd - 2; i++) {
    n += (size_t)snprintf(zCmd + n, sizeof zCmd - n, "%s%s", i ? " " : "",
                          argv[i]);
  }
  if (mkdir(g_o.zOut, 0755) != 0 && errno != EEXIST) {
    die("mkdir %s: %s", g_o.zOut, strerror(errno));
  }
  maxA = 100000;
  if ((int)(g_o.nBig / 1000) > maxA) maxA = (int)(g_o.nBig / 1000);
  if (g_o.actors > maxA) maxA = g_o.actors;
  if (g_o.memActors > maxA) maxA = g_o.memActors;
  arena_init(g_o.payload);
  names_init(maxA);
  tmp_init(g_o.zDir);
  machine_describe();
  progress("data in %s, results to %s%s", g_zTmp, g_o.zOut,
           HAVE_EXT ? "" : " (extension NOT built in: LJ_BENCH_NO_EXT)");

  if (g_o.only & M_MEMORY) m_memory(); /* first: forks, before any thread */
  m_async();
  if (g_o.only & M_SCALE) m_scale();
  if (g_o.only & M_INSERT) m_insert();
  if (g_o.only & M_SYNCMODE) m_syncmode();
  if (g_o.only & M_LATENCY) m_latency();
  if (g_o.only & M_DURABLE) m_durable();
  if (g_o.only & (M_REPLAY | M_TAIL | M_RECOVER)) m_read();
  if (g_o.only & M_SHIP) m_ship();

  write_outputs(zCmd);
  progress("done");
  return 0;
}
