/*
** config.c -- the options of CREATE VIRTUAL TABLE ... USING lmdb_journal.
**
**     CREATE VIRTUAL TABLE j USING lmdb_journal(
**         path='data/journal', map_size='256MiB', durability=full);
**
** Each argument is "key = value".  Keys are case-insensitive and may be
** given once.  A value is bare or quoted with ' or " (a doubled quote
** inside stands for one).  Forms:
**
**     size      non-negative integer with an optional unit, case-insensitive:
**               B, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB
**               (powers of 1000); a bare number is bytes.  "64 MiB" is fine.
**     duration  non-negative integer with unit us, ms, s or m (minutes);
**               a bare number is milliseconds.  Kept in microseconds.
**
**     key                  default  accepted
**     path                 -        directory, required, not empty
**     map_size             64MiB    size, 1MiB .. map_max
**     map_max              1TiB     size, 1MiB .. 16TiB
**     max_readers          126      integer, 1 .. 32767
**     max_dbs              16       integer, 8 .. 32767
**     batch_size           1000     integer, 1 .. 1000000
**     batch_bytes          16MiB    size, 4KiB .. 1GiB
**     sync_interval        1ms      duration, 0 .. 10s
**     durability           full     full | meta | none
**     checkpoint_interval  5s       duration, 1ms .. 60m
**     append_mode          async    async | sync
**     queue_max            100000   integer, 1 .. 100000000
**     sync_timeout         5s       duration, 0 .. 60m
**     txn_timeout          30s      duration, 1ms .. 1440m
**     max_retries          3        integer, 0 .. 100
**     retry_delay          100ms    duration, 0 .. 60s
**     compression          none     none | lz4 | zstd
**     compression_min      256B     size, 0 .. max_value_size
**     max_value_size       64MiB    size, 1B .. 1GiB
**     metrics              on       on | off | true | false | 1 | 0 | yes | no
**     snapshot_keep        0        integer, 0 .. 1000000 (0: keep all)
**     errors_max           65536    integer, 0 .. 10000000 (errlog.c)
**     compaction           on       on | off ... like metrics (compact.c)
**     ship                 off      off | kafka (ship.c)
**     ship_brokers         -        text: bootstrap servers host:port,...
**     ship_topic           -        text: the topic
**     ship_conf            -        text: more librdkafka properties,
**                                   'key=value;key=value'
**
** ship=kafka needs ship_brokers and ship_topic.  The ship keys belong to
** the environment like map_size, but are taken from the table that opens
** it first in a process; journal_config shows them only when given.
**
** map_size and compression_min are also capped by another option.  When
** the capped option is left at its default it follows the cap down
** (map_max=16MiB alone gives map_size=16MiB); given explicitly above the
** cap it is an error.
**
** One table, aOpt[], drives defaults, parsing, range checks, the JSON
** dump and the environment conflict check, so a new option is one row.
*/
#include "internal.h"

#include <limits.h>
#include <stdarg.h>
#include <string.h>

#define LJ_KIB ((i64)1024)
#define LJ_MIB (LJ_KIB * 1024)
#define LJ_GIB (LJ_MIB * 1024)
#define LJ_TIB (LJ_GIB * 1024)
#define LJ_MS  ((i64)1000) /* durations are microseconds */
#define LJ_SEC (LJ_MS * 1000)
#define LJ_MIN (LJ_SEC * 60)

/* Kinds of option.  INT, ENUM and BOOL live in an int; SIZE and DUR in
** an i64; PATH in a char*. */
enum {
  LJ_K_PATH,
  LJ_K_INT,
  LJ_K_SIZE,
  LJ_K_DUR,
  LJ_K_ENUM,
  LJ_K_BOOL,
  LJ_K_TEXT
};

typedef struct LjName LjName;
struct LjName {
  const char *zName;
  i64 iVal;
};

/* Units of a number.  The first entry of each list names the form shown
** when printing a value; "" is the meaning of a bare number. */
static const LjName aSizeUnit[] = {{"TiB", LJ_TIB},
                                   {"GiB", LJ_GIB},
                                   {"MiB", LJ_MIB},
                                   {"KiB", LJ_KIB},
                                   {"B", 1},
                                   {"", 1},
                                   {"TB", 1000000000000LL},
                                   {"GB", 1000000000},
                                   {"MB", 1000000},
                                   {"KB", 1000},
                                   {0, 0}};
static const LjName aDurUnit[] = {{"m", LJ_MIN}, {"s", LJ_SEC}, {"ms", LJ_MS},
                                  {"us", 1},     {"", LJ_MS},   {0, 0}};
static const LjName aNoUnit[] = {{"", 1}, {0, 0}};

/* Enumerations.  The first name of a value is its canonical name. */
static const LjName aDurability[] = {{"full", LJ_DUR_FULL},
                                     {"meta", LJ_DUR_META},
                                     {"none", LJ_DUR_NONE},
                                     {0, 0}};
static const LjName aAppendMode[] = {
    {"async", LJ_MODE_ASYNC}, {"sync", LJ_MODE_SYNC}, {0, 0}};
static const LjName aCodec[] = {{"none", LJ_CODEC_NONE},
                                {"lz4", LJ_CODEC_LZ4},
                                {"zstd", LJ_CODEC_ZSTD},
                                {0, 0}};
static const LjName aShip[] = {
    {"off", LJ_SHIP_OFF}, {"kafka", LJ_SHIP_KAFKA}, {0, 0}};
static const LjName aBool[] = {{"on", 1},    {"off", 0}, {"true", 1},
                               {"false", 0}, {"1", 1},   {"0", 0},
                               {"yes", 1},   {"no", 0},  {0, 0}};

typedef struct LjOpt LjOpt;
struct LjOpt {
  const char *zName;
  u32 mBit;    /* LJ_OPT_* */
  int eKind;   /* LJ_K_* */
  size_t iOff; /* offset of the field in LjConfig */
  i64 iDef, iMin, iMax;
  u32 mCap;            /* LJ_OPT_* of an option that caps this one, or 0 */
  const LjName *aName; /* names of an ENUM or BOOL */
};

#define LJ_F(f) offsetof(LjConfig, f)
static const LjOpt aOpt[] = {
    {"path", LJ_OPT_PATH, LJ_K_PATH, LJ_F(zPath), 0, 0, 0, 0, 0},
    {"map_size", LJ_OPT_MAP_SIZE, LJ_K_SIZE, LJ_F(szMap), 64 * LJ_MIB, LJ_MIB,
     16 * LJ_TIB, LJ_OPT_MAP_MAX, 0},
    {"map_max", LJ_OPT_MAP_MAX, LJ_K_SIZE, LJ_F(szMapMax), LJ_TIB, LJ_MIB,
     16 * LJ_TIB, 0, 0},
    {"max_readers", LJ_OPT_MAX_READERS, LJ_K_INT, LJ_F(nMaxReaders), 126, 1,
     32767, 0, 0},
    /* The store itself needs LJ_DB_COUNT (9) named databases. */
    {"max_dbs", LJ_OPT_MAX_DBS, LJ_K_INT, LJ_F(nMaxDbs), 16, 9, 32767, 0, 0},
    {"batch_size", LJ_OPT_BATCH_SIZE, LJ_K_INT, LJ_F(nBatch), 1000, 1, 1000000,
     0, 0},
    {"batch_bytes", LJ_OPT_BATCH_BYTES, LJ_K_SIZE, LJ_F(nBatchBytes),
     16 * LJ_MIB, 4 * LJ_KIB, LJ_GIB, 0, 0},
    {"sync_interval", LJ_OPT_SYNC_INTERVAL, LJ_K_DUR, LJ_F(usSyncInterval),
     LJ_MS, 0, 10 * LJ_SEC, 0, 0},
    {"durability", LJ_OPT_DURABILITY, LJ_K_ENUM, LJ_F(eDurability), LJ_DUR_FULL,
     0, 0, 0, aDurability},
    {"checkpoint_interval", LJ_OPT_CHECKPOINT, LJ_K_DUR, LJ_F(usCheckpoint),
     5 * LJ_SEC, LJ_MS, 60 * LJ_MIN, 0, 0},
    {"append_mode", LJ_OPT_APPEND_MODE, LJ_K_ENUM, LJ_F(eAppendMode),
     LJ_MODE_ASYNC, 0, 0, 0, aAppendMode},
    {"queue_max", LJ_OPT_QUEUE_MAX, LJ_K_INT, LJ_F(nQueueMax), 100000, 1,
     100000000, 0, 0},
    {"sync_timeout", LJ_OPT_SYNC_TIMEOUT, LJ_K_DUR, LJ_F(usSyncTimeout),
     5 * LJ_SEC, 0, 60 * LJ_MIN, 0, 0},
    {"txn_timeout", LJ_OPT_TXN_TIMEOUT, LJ_K_DUR, LJ_F(usTxnTimeout),
     30 * LJ_SEC, LJ_MS, 24 * 60 * LJ_MIN, 0, 0},
    {"max_retries", LJ_OPT_MAX_RETRIES, LJ_K_INT, LJ_F(nMaxRetries), 3, 0, 100,
     0, 0},
    {"retry_delay", LJ_OPT_RETRY_DELAY, LJ_K_DUR, LJ_F(usRetryDelay),
     100 * LJ_MS, 0, 60 * LJ_SEC, 0, 0},
    {"compression", LJ_OPT_COMPRESSION, LJ_K_ENUM, LJ_F(eCompression),
     LJ_CODEC_NONE, 0, 0, 0, aCodec},
    {"compression_min", LJ_OPT_COMPRESSION_MIN, LJ_K_SIZE,
     LJ_F(nCompressionMin), 256, 0, LJ_GIB, LJ_OPT_MAX_VALUE, 0},
    {"max_value_size", LJ_OPT_MAX_VALUE, LJ_K_SIZE, LJ_F(nMaxValue),
     64 * LJ_MIB, 1, LJ_GIB, 0, 0},
    {"metrics", LJ_OPT_METRICS, LJ_K_BOOL, LJ_F(bMetrics), 1, 0, 0, 0, aBool},
    {"snapshot_keep", LJ_OPT_SNAPSHOT_KEEP, LJ_K_INT, LJ_F(nSnapshotKeep), 0, 0,
     1000000, 0, 0},
    {"errors_max", LJ_OPT_ERRORS_MAX, LJ_K_INT, LJ_F(nErrorsMax), 65536, 0,
     10000000, 0, 0},
    {"compaction", LJ_OPT_COMPACTION, LJ_K_BOOL, LJ_F(bCompaction), 1, 0, 0, 0,
     aBool},
    {"ship", LJ_OPT_SHIP, LJ_K_ENUM, LJ_F(eShip), LJ_SHIP_OFF, 0, 0, 0, aShip},
    {"ship_brokers", LJ_OPT_SHIP_BROKERS, LJ_K_TEXT, LJ_F(zShipBrokers), 0, 0,
     0, 0, 0},
    {"ship_topic", LJ_OPT_SHIP_TOPIC, LJ_K_TEXT, LJ_F(zShipTopic), 0, 0, 0, 0,
     0},
    {"ship_conf", LJ_OPT_SHIP_CONF, LJ_K_TEXT, LJ_F(zShipConf), 0, 0, 0, 0, 0},
};
#define LJ_NOPT ((int)(sizeof(aOpt) / sizeof(aOpt[0])))

static i64 ljOptGet(const LjConfig *p, const LjOpt *pOpt) {
  const char *pField = (const char *)p + pOpt->iOff;
  if (pOpt->eKind == LJ_K_SIZE || pOpt->eKind == LJ_K_DUR) {
    return *(const i64 *)pField;
  }
  return *(const int *)pField;
}

static void ljOptSet(LjConfig *p, const LjOpt *pOpt, i64 iVal) {
  char *pField = (char *)p + pOpt->iOff;
  if (pOpt->eKind == LJ_K_SIZE || pOpt->eKind == LJ_K_DUR) {
    *(i64 *)pField = iVal;
  } else {
    *(int *)pField = (int)iVal; /* range-checked by the caller */
  }
}

static const LjOpt *ljOptByBit(u32 mBit) {
  int i;
  for (i = 0; i < LJ_NOPT && aOpt[i].mBit != mBit; i++) {
  }
  return i < LJ_NOPT ? &aOpt[i] : 0;
}

static const LjName *ljUnits(const LjOpt *pOpt) {
  return pOpt->eKind == LJ_K_SIZE  ? aSizeUnit
         : pOpt->eKind == LJ_K_DUR ? aDurUnit
                                   : aNoUnit;
}

static const char *ljNameOf(const LjName *a, i64 iVal) {
  for (; a->zName; a++) {
    if (a->iVal == iVal) return a->zName;
  }
  return "?";
}

/* The value in the form a user would type it, for messages: the largest
** unit that divides it exactly. */
static char *ljOptFormat(const LjOpt *pOpt, i64 iVal) {
  const LjName *aUnit = ljUnits(pOpt);
  if (pOpt->aName) return sqlite3_mprintf("%s", ljNameOf(pOpt->aName, iVal));
  if (iVal != 0) {
    for (; aUnit->zName[0]; aUnit++) {
      if (iVal % aUnit->iVal == 0) {
        return sqlite3_mprintf("%lld%s", iVal / aUnit->iVal, aUnit->zName);
      }
    }
  }
  return sqlite3_mprintf("%lld", iVal);
}

/* Set *pzErr to a message with the common prefix.  Returns SQLITE_ERROR,
** or SQLITE_NOMEM if the message could not be built. */
static int ljCfgErr(char **pzErr, const char *zFormat, ...) {
  va_list ap;
  char *zMsg;
  va_start(ap, zFormat);
  zMsg = sqlite3_vmprintf(zFormat, ap);
  va_end(ap);
  *pzErr = zMsg ? sqlite3_mprintf("lmdb_journal: %s", zMsg) : 0;
  sqlite3_free(zMsg);
  return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
}

/* "<key> must be between <min> and <max> (got <zGot>)"; zCap names the
** option that lowered the maximum, if any. */
static int ljRangeErr(const LjOpt *pOpt, i64 iMax, const char *zCap,
                      const char *zGot, char **pzErr) {
  char *zMin = ljOptFormat(pOpt, pOpt->iMin);
  char *zMax = ljOptFormat(pOpt, iMax);
  int rc = SQLITE_NOMEM;
  if (zMin && zMax) {
    rc = ljCfgErr(pzErr, "%s must be between %s and %s%s%s%s (got %s)",
                  pOpt->zName, zMin, zMax, zCap ? " (" : "", zCap ? zCap : "",
                  zCap ? ")" : "", zGot);
  }
  sqlite3_free(zMin);
  sqlite3_free(zMax);
  return rc;
}

static char *ljNameList(const LjName *a) {
  sqlite3_str *pStr = sqlite3_str_new(0);
  const LjName *p;
  for (p = a; p->zName; p++) {
    sqlite3_str_appendf(pStr, "%s%s", p == a ? "" : ", ", p->zName);
  }
  return sqlite3_str_finish(pStr);
}

static int ljIsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

/*
** Parse "<digits>[ ]<unit>" against aUnit into *piVal.  Returns 0 on
** success, 1 if malformed, 2 on overflow.  Overflow is reported by the
** caller as out of range, which names the limits.
*/
static int ljParseNumber(const char *z, const LjName *aUnit, i64 *piVal) {
  i64 v = 0;
  const char *zStart = z;
  while (*z >= '0' && *z <= '9') {
    int d = *z++ - '0';
    if (v > (LLONG_MAX - d) / 10) return 2;
    v = v * 10 + d;
  }
  if (z == zStart) return 1;
  while (ljIsSpace(*z)) z++;
  for (; aUnit->zName; aUnit++) {
    if (sqlite3_stricmp(z, aUnit->zName) == 0) {
      if (v > LLONG_MAX / aUnit->iVal) return 2;
      *piVal = v * aUnit->iVal;
      return 0;
    }
  }
  return 1;
}

/* Strip the quotes of a value in place; a doubled quote stands for one.
** Returns 0 if the value is not properly quoted. */
static int ljDequote(char *z) {
  char q = z[0];
  int i, j;
  if (q != '\'' && q != '"') return 1;
  for (i = 1, j = 0; z[i]; i++) {
    if (z[i] == q) {
      if (z[i + 1] != q) break;
      i++;
    }
    z[j++] = z[i];
  }
  if (z[i] != q || z[i + 1] != 0) return 0;
  z[j] = 0;
  return 1;
}

/* Apply one value (already unquoted) of option pOpt. */
static int ljOptApply(LjConfig *p, const LjOpt *pOpt, const char *zVal,
                      char **pzErr) {
  i64 iVal = 0;
  int rc = SQLITE_OK;
  if (pOpt->eKind == LJ_K_PATH) {
    if (zVal[0] == 0) return ljCfgErr(pzErr, "path must not be empty");
    p->zPath = sqlite3_mprintf("%s", zVal);
    return p->zPath ? SQLITE_OK : SQLITE_NOMEM;
  }
  if (pOpt->eKind == LJ_K_TEXT) {
    char **pz = (char **)((char *)p + pOpt->iOff);
    *pz = sqlite3_mprintf("%s", zVal);
    return *pz ? SQLITE_OK : SQLITE_NOMEM;
  }
  if (pOpt->aName) {
    const LjName *pName;
    for (pName = pOpt->aName; pName->zName; pName++) {
      if (sqlite3_stricmp(zVal, pName->zName) == 0) break;
    }
    if (pName->zName == 0) {
      char *zList = ljNameList(pOpt->aName);
      if (zList == 0) return SQLITE_NOMEM;
      rc = ljCfgErr(pzErr, "%s must be one of %s (got '%s')", pOpt->zName,
                    zList, zVal);
      sqlite3_free(zList);
      return rc;
    }
    iVal = pName->iVal;
  } else {
    static const char *azForm[] = {
        [LJ_K_INT] = "an integer",
        [LJ_K_SIZE] =
            "a size such as 64MiB; units B, KiB, MiB, GiB, TiB, "
            "KB, MB, GB, TB",
        [LJ_K_DUR] =
            "a duration such as 5s; units us, ms, s, m; a bare "
            "number is milliseconds"};
    int e = ljParseNumber(zVal, ljUnits(pOpt), &iVal);
    if (e == 1) {
      return ljCfgErr(pzErr, "bad value for %s: '%s' (expected %s)",
                      pOpt->zName, zVal, azForm[pOpt->eKind]);
    }
    if (e == 2 || iVal < pOpt->iMin || iVal > pOpt->iMax) {
      return ljRangeErr(pOpt, pOpt->iMax, 0, zVal, pzErr);
    }
  }
  ljOptSet(p, pOpt, iVal);
  return SQLITE_OK;
}

/* Split one "key = value" argument and apply it. */
static int ljParseArg(LjConfig *p, const char *zArg, char **pzErr) {
  const char *zEq = strchr(zArg, '=');
  const char *zKey = zArg, *zKeyEnd;
  const LjOpt *pOpt = 0;
  char *zVal;
  size_t nVal;
  int i, rc;

  while (ljIsSpace(*zKey)) zKey++;
  for (zKeyEnd = zKey;
       *zKeyEnd == '_' || (*zKeyEnd >= 'a' && *zKeyEnd <= 'z') ||
       (*zKeyEnd >= 'A' && *zKeyEnd <= 'Z') ||
       (*zKeyEnd >= '0' && *zKeyEnd <= '9');
       zKeyEnd++) {
  }
  for (i = 0; zEq && zKeyEnd + i < zEq; i++) {
    if (!ljIsSpace(zKeyEnd[i])) zEq = 0;
  }
  if (zEq == 0 || zKeyEnd == zKey) {
    return ljCfgErr(pzErr, "bad argument '%s' (expected key=value)", zArg);
  }
  for (i = 0; i < LJ_NOPT; i++) {
    if (sqlite3_strnicmp(zKey, aOpt[i].zName, (int)(zKeyEnd - zKey)) == 0 &&
        aOpt[i].zName[zKeyEnd - zKey] == 0) {
      pOpt = &aOpt[i];
      break;
    }
  }
  if (pOpt == 0) {
    sqlite3_str *pStr = sqlite3_str_new(0);
    char *zList;
    for (i = 0; i < LJ_NOPT; i++) {
      sqlite3_str_appendf(pStr, "%s%s", i ? ", " : "", aOpt[i].zName);
    }
    zList = sqlite3_str_finish(pStr);
    if (zList == 0) return SQLITE_NOMEM;
    rc = ljCfgErr(pzErr, "unknown option '%.*s' (accepted: %s)",
                  (int)(zKeyEnd - zKey), zKey, zList);
    sqlite3_free(zList);
    return rc;
  }
  if (p->mSet & pOpt->mBit) {
    return ljCfgErr(pzErr, "option '%s' given twice", pOpt->zName);
  }
  p->mSet |= pOpt->mBit;

  for (zEq++; ljIsSpace(*zEq); zEq++) {
  }
  nVal = strlen(zEq);
  while (nVal > 0 && ljIsSpace(zEq[nVal - 1])) nVal--;
  zVal = sqlite3_malloc64(nVal + 1);
  if (zVal == 0) return SQLITE_NOMEM;
  memcpy(zVal, zEq, nVal);
  zVal[nVal] = 0;
  if (ljDequote(zVal)) {
    rc = ljOptApply(p, pOpt, zVal, pzErr);
  } else {
    rc = ljCfgErr(pzErr,
                  "bad value for %s: %.*s (unterminated or misplaced "
                  "quote)",
                  pOpt->zName, (int)nVal, zEq);
  }
  sqlite3_free(zVal);
  return rc;
}

void ljConfigDefaults(LjConfig *p) {
  int i;
  memset(p, 0, sizeof(*p));
  for (i = 0; i < LJ_NOPT; i++) {
    if (aOpt[i].eKind < LJ_K_TEXT && aOpt[i].eKind != LJ_K_PATH) {
      ljOptSet(p, &aOpt[i], aOpt[i].iDef);
    }
  }
}

/*
** Reset *p to the defaults, then apply azArg.  Checks that need every
** argument (the caps, the required path) come after the loop, so the
** order of the arguments does not matter.
*/
int ljConfigParse(LjConfig *p, int nArg, const char *const *azArg,
                  char **pzErr) {
  int i, rc = SQLITE_OK;
  ljConfigDefaults(p);
  for (i = 0; i < nArg && rc == SQLITE_OK; i++) {
    rc = ljParseArg(p, azArg[i], pzErr);
  }
  for (i = 0; i < LJ_NOPT && rc == SQLITE_OK; i++) {
    const LjOpt *pOpt = &aOpt[i];
    const LjOpt *pCap = pOpt->mCap ? ljOptByBit(pOpt->mCap) : 0;
    i64 iCap = pCap ? ljOptGet(p, pCap) : 0;
    if (pCap == 0 || ljOptGet(p, pOpt) <= iCap) continue;
    if ((p->mSet & pOpt->mBit) == 0) {
      ljOptSet(p, pOpt, iCap);
    } else {
      char *zGot = ljOptFormat(pOpt, ljOptGet(p, pOpt));
      rc = zGot ? ljRangeErr(pOpt, iCap, pCap->zName, zGot, pzErr)
                : SQLITE_NOMEM;
      sqlite3_free(zGot);
    }
  }
  if (rc == SQLITE_OK && p->zPath == 0) {
    rc = ljCfgErr(pzErr, "missing required option path='directory'");
  }
  if (rc == SQLITE_OK && p->eShip != LJ_SHIP_OFF &&
      (p->zShipBrokers == 0 || p->zShipTopic == 0)) {
    rc = ljCfgErr(pzErr, "ship=kafka needs ship_brokers and ship_topic");
  }
  return rc;
}

/* The text fields of *p: path, then the LJ_K_TEXT options. */
static char **ljTextField(LjConfig *p, int i) {
  if (aOpt[i].eKind != LJ_K_PATH && aOpt[i].eKind != LJ_K_TEXT) return 0;
  return (char **)((char *)p + aOpt[i].iOff);
}

void ljConfigClear(LjConfig *p) {
  int i;
  for (i = 0; i < LJ_NOPT; i++) {
    char **pz = ljTextField(p, i);
    if (pz) {
      sqlite3_free(*pz);
      *pz = 0;
    }
  }
}

int ljConfigOwnText(LjConfig *p) {
  int i, rc = SQLITE_OK;
  for (i = 0; i < LJ_NOPT; i++) {
    char **pz = ljTextField(p, i);
    if (pz && *pz) {
      *pz = sqlite3_mprintf("%s", *pz);
      if (*pz == 0) rc = SQLITE_NOMEM;
    }
  }
  return rc;
}

static void ljJsonString(sqlite3_str *pStr, const char *z) {
  if (z == 0) {
    sqlite3_str_appendall(pStr, "null");
    return;
  }
  sqlite3_str_appendchar(pStr, 1, '"');
  for (; *z; z++) {
    unsigned char c = (unsigned char)*z;
    if (c == '"' || c == '\\') {
      sqlite3_str_appendf(pStr, "\\%c", c);
    } else if (c < 0x20) {
      sqlite3_str_appendf(pStr, "\\u%04x", c);
    } else {
      sqlite3_str_appendchar(pStr, 1, (char)c);
    }
  }
  sqlite3_str_appendchar(pStr, 1, '"');
}

/*
** The configuration as a JSON object: sizes in bytes, durations in
** milliseconds (fractional below 1ms), enumerations by name.
*/
char *ljConfigJson(const LjConfig *p, const char *zResolvedPath) {
  sqlite3_str *pStr = sqlite3_str_new(0);
  int i;
  for (i = 0; i < LJ_NOPT; i++) {
    const LjOpt *pOpt = &aOpt[i];
    i64 iVal;
    if (pOpt->eKind == LJ_K_TEXT || pOpt->mBit == LJ_OPT_SHIP) {
      /* Shown only when given, so stores that do not ship read as before. */
      if ((p->mSet & pOpt->mBit) == 0) continue;
    }
    iVal = (pOpt->eKind == LJ_K_PATH || pOpt->eKind == LJ_K_TEXT)
               ? 0
               : ljOptGet(p, pOpt);
    sqlite3_str_appendf(pStr, "%s\"%s\":", i ? "," : "{", pOpt->zName);
    switch (pOpt->eKind) {
      case LJ_K_PATH:
        ljJsonString(pStr, p->zPath);
        sqlite3_str_appendall(pStr, ",\"resolved_path\":");
        ljJsonString(pStr, zResolvedPath);
        break;
      case LJ_K_TEXT:
        ljJsonString(pStr, *(char *const *)((const char *)p + pOpt->iOff));
        break;
      case LJ_K_DUR:
        sqlite3_str_appendf(pStr, "%lld", iVal / LJ_MS);
        if (iVal % LJ_MS) {
          char zFrac[4];
          int n = 3;
          sqlite3_snprintf(sizeof(zFrac), zFrac, "%03d", (int)(iVal % LJ_MS));
          while (zFrac[n - 1] == '0') n--;
          sqlite3_str_appendf(pStr, ".%.*s", n, zFrac);
        }
        break;
      case LJ_K_ENUM: ljJsonString(pStr, ljNameOf(pOpt->aName, iVal)); break;
      case LJ_K_BOOL:
        sqlite3_str_appendall(pStr, iVal ? "true" : "false");
        break;
      default: sqlite3_str_appendf(pStr, "%lld", iVal); break;
    }
  }
  sqlite3_str_appendchar(pStr, 1, '}');
  return sqlite3_str_finish(pStr);
}

const char *ljDurabilityName(int e) {
  return ljNameOf(aDurability, e);
}

/*
** A directory has one environment and one writer per process, so the
** settings of those cannot differ between the tables sharing it.  Only an
** explicit value is a conflict: a table that leaves a key out takes
** whatever is in effect.
*/
int ljConfigEnvConflict(const LjConfig *pOpen, const LjConfig *pNew,
                        char **pzErr) {
  int i, rc;
  for (i = 0; i < LJ_NOPT; i++) {
    const LjOpt *pOpt = &aOpt[i];
    char *zVal;
    if ((pOpt->mBit & LJ_OPT_ENV_KEYS & pNew->mSet) == 0) continue;
    if (ljOptGet(pOpen, pOpt) == ljOptGet(pNew, pOpt)) continue;
    zVal = ljOptFormat(pOpt, ljOptGet(pOpen, pOpt));
    if (zVal == 0) return SQLITE_NOMEM;
    rc = ljCfgErr(pzErr,
                  "directory '%s' is already open in this process with "
                  "%s=%s; give the same value or omit %s",
                  pNew->zPath, pOpt->zName, zVal, pOpt->zName);
    sqlite3_free(zVal);
    return rc;
  }
  return SQLITE_OK;
}

void ljConfigTakeEnv(LjConfig *pTab, const LjConfig *pEnv) {
  pTab->szMap = pEnv->szMap;
  pTab->szMapMax = pEnv->szMapMax;
  pTab->nMaxReaders = pEnv->nMaxReaders;
  pTab->nMaxDbs = pEnv->nMaxDbs;
  pTab->nBatch = pEnv->nBatch;
  pTab->nBatchBytes = pEnv->nBatchBytes;
  pTab->usSyncInterval = pEnv->usSyncInterval;
  pTab->usCheckpoint = pEnv->usCheckpoint;
  pTab->nQueueMax = pEnv->nQueueMax;
  pTab->nMaxRetries = pEnv->nMaxRetries;
  pTab->usRetryDelay = pEnv->usRetryDelay;
  pTab->nErrorsMax = pEnv->nErrorsMax;
  pTab->bCompaction = pEnv->bCompaction;
}
