/*
** layout.c -- how a journal is laid out in LMDB: keys, records, checksums,
** tags, and the small clock/UTF-8 helpers the layout needs.
**
** This comment is the authoritative description of the on-disk format;
** docs/architecture.md shows the same drawing.
**
** Every integer in a key is fixed-width big-endian, so LMDB's default
** memcmp ordering is numeric ordering (seq 10 sorts after seq 9, 256 after
** 255, 2^32 after 2^32-1).  Actor ids are mapped to compact 8-byte actor
** numbers once, so event keys stay 16 bytes whatever the id's length.
**
**   named db   key                              value
**   --------   -------------------------------  ---------------------------
**   meta       "format"                         u32 format version (=2)
**              "maxpos"                         u64 highest pos ever assigned
**                                               (written by truncation)
**   actors     actor id bytes (1..400)          num u64 | floor u64
**   actnum     num u64                          actor id bytes
**   events     num u64 | first seq u64          run of event records (below)
**   pos        first pos u64 of a commit        manifest: per pos, in order,
**                                               num u64 | seq u64 | ts i64
**   tags       len u16 | tag bytes | pos u64    num u64 | seq u64
**   snapshots  num u64 | seq u64                snapshot record (same form:
**                                               state as payload, pos 0, ts
**                                               of the write, no type/tags)
**   stage      first pos u64 of a commit        staged batch (below)
**   trunclog   pos u64 | ordinal u32            to_seq u64 | actor id bytes
**              (the truncation log: trunclog.c)
**
**   actors.floor is the highest seq at the last truncation: an actor's
**   highest seq is max(floor, seq of its last event), so it survives the
**   deletion of every event.
**
**   A run holds consecutive events of one actor written by one commit:
**   the writer puts one run per actor per batch (at most LJ_RUN_MAX events
**   or LJ_RUN_BYTES bytes), so a batch over 100 actors costs 100 B-tree
**   puts, not one per event.  Runs never overlap: the run keyed (n, s)
**   with k events holds seqs s .. s+k-1.
**
**    run:  count u32 | end u32 [count] | record 0 | record 1 | ...
**          end[i] is where record i ends, counted from the first record
**
**   The pos index is likewise one value per commit (a manifest), put with
**   MDB_APPEND: its entry i describes pos first+i.  An entry whose event
**   was truncated keeps its ts (ts stays searchable) and has num 0.  Actor
*numbers start at 1 and only grow; pos
**   starts at 1 and only grows (gaps appear only where truncation removed
**   events).  Both are assigned inside the LMDB write transaction, so they
**   are gap-free across processes.
**
**   Staging (why, when, the merge: stage.c).  A batch spread over many
**   actors is put whole, with MDB_APPEND, into the stage db: one value
**   per commit, keyed like its manifest, holding the runs the batch
**   would have written.
**
**    staged batch:  nact u32 | nev u32 | dir [nact] | run 0 | run 1 | ...
**    dir entry:     num u64 | first seq u64 | end u32
**                   (sorted by num; end: where run i ends, from run 0)
**
**   Invariant: while the stage is not empty every commit goes to it, so
**   an actor's events are its runs in the events db followed by its runs
**   in the staged batches, in pos order; and every pos at or after the
**   stage's first key is staged.  Readers consult both.
**
**   Every offset drawn here has a name in internal.h (LJ_REC_*, LJ_RUN_HEAD,
**   ljManiNum/Seq/Ts, ljStageDir*, ...); code uses those names.
**
** Event record (all integers big-endian):
**
**    0      1       2       3       4               8
**   +-------+-------+-------+-------+---------------+
**   | flags | pcls  | mcls  |   0   | crc32c        |
**   +-------+-------+-------+-------+---------------+
**   | pos u64                       | ts i64 (ms)   ...
**   +-------------------------------+---------------+
**  24 | ntype u16 | ntags u16 | nmeta u32 |
**  32 | type bytes | tags JSON | meta bytes | payload bytes ... (to end)
**
**   flags bits 0-1: payload codec (0 raw, 1 lz4, 2 zstd).  A compressed
**   payload is u32 raw length followed by the compressed bytes, so stores
**   with mixed settings read back.  pcls/mcls: storage class of payload
**   and meta (0 NULL, 1 INTEGER as i64, 2 REAL as IEEE-754 bits, 3 TEXT,
**   4 BLOB).  crc32c covers bytes 8 to the end (so pos and ts are
**   covered), then continues over bytes 0-3; records written before that
**   hold the sum of bytes 8 to the end alone, and readers accept either
**   (ljRecCheck).  Every read checks it when it copies a record.
*/
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <lz4.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <zstd.h>

i64 ljNowMs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (i64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

i64 ljNowUs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (i64)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Absolute CLOCK_MONOTONIC deadline (condition variables are created with
** that clock, see writer.c). */
void ljDeadline(struct timespec *pTs, i64 usFromNow) {
  clock_gettime(CLOCK_MONOTONIC, pTs);
  pTs->tv_sec += usFromNow / 1000000;
  pTs->tv_nsec += (long)(usFromNow % 1000000) * 1000;
  if (pTs->tv_nsec >= 1000000000) {
    pTs->tv_sec++;
    pTs->tv_nsec -= 1000000000;
  }
}

#if defined(__linux__)
void ljFutexWait(u32 *p, u32 v, i64 usTimeout) {
  struct timespec ts, *pTs = 0;
  if (usTimeout >= 0) {
    ts.tv_sec = usTimeout / 1000000;
    ts.tv_nsec = (long)(usTimeout % 1000000) * 1000;
    pTs = &ts;
  }
  syscall(SYS_futex, p, FUTEX_WAIT_PRIVATE, v, pTs, 0, 0);
}

void ljFutexWakeAll(u32 *p) {
  syscall(SYS_futex, p, FUTEX_WAKE_PRIVATE, INT_MAX, 0, 0, 0);
}
#else
void ljFutexWait(u32 *p, u32 v, i64 usTimeout) {
  struct timespec ts = {0, 50000};
  (void)usTimeout;
  if (__atomic_load_n(p, __ATOMIC_SEQ_CST) == v) nanosleep(&ts, 0);
}

void ljFutexWakeAll(u32 *p) {
  (void)p;
}
#endif

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
int ljUtf8Valid(const unsigned char *z, int n) {
  int i = 0;
  while (i < n) {
    unsigned c = z[i];
    int nMore;
    unsigned cp, lo;
    if (c < 0x80) {
      /* ASCII, the common case for ids: eight bytes at a time. */
      u64 w;
      while (i + 8 <= n) {
        memcpy(&w, &z[i], 8);
        if (w & 0x8080808080808080ull) break;
        i += 8;
      }
      while (i < n && z[i] < 0x80) i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      nMore = 1;
      cp = c & 0x1F;
      lo = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      nMore = 2;
      cp = c & 0x0F;
      lo = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      nMore = 3;
      cp = c & 0x07;
      lo = 0x10000;
    } else
      return 0;
    if (i + nMore >= n) return 0;
    for (int k = 1; k <= nMore; k++) {
      if ((z[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (z[i + k] & 0x3F);
    }
    if (cp < lo || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += nMore + 1;
  }
  return 1;
}

/*
** CRC-32C (Castagnoli).  SSE4.2 has an instruction for it; elsewhere a
** table is used.  Both give identical results, so stores move freely
** between machines.
*/
static u32 aCrcTable[256];
static pthread_once_t crcOnce = PTHREAD_ONCE_INIT;
static int bCrcHw = 0;

static void crcInit(void) {
  for (u32 i = 0; i < 256; i++) {
    u32 c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    aCrcTable[i] = c;
  }
#if defined(__x86_64__)
  __builtin_cpu_init();
  bCrcHw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static u32 crcHw(u32 crc, const u8 *p,
                                                   size_t n) {
  u64 c = crc;
  while (n >= 8) {
    u64 v;
    memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  if (n >= 4) {
    u32 v;
    memcpy(&v, p, 4);
    c = __builtin_ia32_crc32si((u32)c, v);
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    u16 v;
    memcpy(&v, p, 2);
    c = __builtin_ia32_crc32hi((u32)c, v);
    p += 2;
    n -= 2;
  }
  if (n) c = __builtin_ia32_crc32qi((u32)c, *p);
  return (u32)c;
}
#endif

u32 ljCrc32c(u32 crc, const void *pData, size_t n) {
  const u8 *p = (const u8 *)pData;
  pthread_once(&crcOnce, crcInit);
  crc = ~crc;
#if defined(__x86_64__)
  if (bCrcHw) return ~crcHw(crc, p, n);
#endif
  while (n--) crc = aCrcTable[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

/* Record i of a run.  Returns 0, or MDB_CORRUPTED for a malformed run. */
int ljRunRecord(const u8 *aRun, size_t nRun, u32 i, const u8 **pa, u32 *pn) {
  u32 n, beg, end;
  if (nRun < 4) return MDB_CORRUPTED;
  n = ljGet32(aRun);
  if (i >= n || nRun < 4 + 4 * (size_t)n) return MDB_CORRUPTED;
  beg = i ? ljGet32(&aRun[4 + 4 * (i - 1)]) : 0;
  end = ljGet32(&aRun[4 + 4 * i]);
  if (beg > end || 4 + 4 * (size_t)n + end > nRun) return MDB_CORRUPTED;
  *pa = &aRun[4 + 4 * n + beg];
  *pn = end - beg;
  return 0;
}

u32 ljRunCount(const u8 *aRun, size_t nRun) {
  return nRun < 4 ? 0 : ljGet32(aRun);
}

u32 ljManiCount(const MDB_val *v) {
  return (u32)(v->mv_size / LJ_MANI_ENTRY);
}

int ljManiEntry(const MDB_val *v, u32 i, u64 *pNum, u64 *pSeq, i64 *pTs) {
  const u8 *a = (const u8 *)v->mv_data;
  if (i >= ljManiCount(v)) return MDB_CORRUPTED;
  *pNum = ljManiNum(a, i);
  *pSeq = ljManiSeq(a, i);
  *pTs = ljManiTs(a, i);
  return 0;
}

/* Encode events ap[0..n) (one actor, consecutive seqs) as a run. */
size_t ljRunSize(LjEvent *const *ap, size_t n) {
  size_t nByte = LJ_RUN_HEAD(n);
  for (size_t x = 0; x < n; x++) nByte += ap[x]->nRec;
  return nByte;
}

void ljRunFill(u8 *z, LjEvent *const *ap, size_t n) {
  size_t off = 0;
  ljRunStart(z, (u32)n);
  for (size_t x = 0; x < n; x++) {
    memcpy(&z[LJ_RUN_HEAD(n) + off], ap[x]->aRec, ap[x]->nRec);
    off += ap[x]->nRec;
    ljRunSetEnd(z, (u32)x, (u32)off);
  }
}

static u32 runCountVal(const MDB_val *v) {
  return ljRunCount(v->mv_data, v->mv_size);
}

/*
** Runs and manifests are both spans: a value keyed prefix|start covers
** start .. start+count-1.  Position c on the span of the given prefix
** holding x and return x's index in *pi; MDB_NOTFOUND if none holds it.
*/
static int spanFind(MDB_cursor *c, const u8 *aKey, int nPrefix,
                    u32 (*xCount)(const MDB_val *), MDB_val *pKey,
                    MDB_val *pVal, u32 *pi) {
  int nKey = nPrefix + (int)sizeof(u64); /* prefix | start u64 */
  u64 x = ljGet64(&aKey[nPrefix]), s0;
  int mrc;
  pKey->mv_data = (void *)aKey;
  pKey->mv_size = (size_t)nKey;
  mrc = mdb_cursor_get(c, pKey, pVal, MDB_SET_RANGE);
  if (mrc == 0 && memcmp(pKey->mv_data, aKey, (size_t)nKey) == 0) {
    *pi = 0;
    return 0;
  }
  if (mrc == 0)
    mrc = mdb_cursor_get(c, pKey, pVal, MDB_PREV);
  else if (mrc == MDB_NOTFOUND)
    mrc = mdb_cursor_get(c, pKey, pVal, MDB_LAST);
  if (mrc) return mrc;
  if (pKey->mv_size != (size_t)nKey ||
      memcmp(pKey->mv_data, aKey, (size_t)nPrefix))
    return MDB_NOTFOUND;
  s0 = ljGet64((u8 *)pKey->mv_data + nPrefix);
  if (x < s0 || x - s0 >= xCount(pVal)) return MDB_NOTFOUND;
  *pi = (u32)(x - s0);
  return 0;
}

/* Position c on the run holding event (num, seq). */
int ljRunFind(MDB_cursor *c, u64 num, u64 seq, MDB_val *pKey, MDB_val *pVal,
              u32 *pi) {
  u8 aKey[LJ_EVKEY];
  ljEvKey(aKey, num, seq);
  return spanFind(c, aKey, (int)sizeof(u64), runCountVal, pKey, pVal, pi);
}

/* Position c on the manifest holding pos. */
int ljManiFind(MDB_cursor *c, u64 pos, MDB_val *pKey, MDB_val *pVal, u32 *pi) {
  u8 aKey[LJ_POSKEY];
  ljPut64(aKey, pos);
  return spanFind(c, aKey, 0, ljManiCount, pKey, pVal, pi);
}

void ljEvKey(u8 *aKey, u64 actorNum, u64 seq) {
  ljPut64(aKey, actorNum);
  ljPut64(&aKey[8], seq);
}

int ljTagKey(u8 *aKey, const u8 *aTag, int nTag, u64 pos) {
  ljPut16(aKey, (u16)nTag);
  memcpy(&aKey[2], aTag, (size_t)nTag);
  ljPut64(&aKey[2 + nTag], pos);
  return 2 + nTag + LJ_POSKEY;
}

void ljTagVal(u8 *aVal, u64 num, u64 seq) {
  ljPut64(aVal, num);
  ljPut64(&aVal[8], seq);
}

void ljActorVal(u8 *aVal, u64 num, u64 floor) {
  ljPut64(aVal, num);
  ljPut64(&aVal[8], floor);
}

int ljActorValGet(const MDB_val *v, u64 *pNum, u64 *pFloor) {
  if (v->mv_size < LJ_ACTVAL) return MDB_CORRUPTED;
  *pNum = ljGet64(v->mv_data);
  *pFloor = ljGet64((const u8 *)v->mv_data + 8);
  return 0;
}

void ljMetaKey(MDB_val *pKey, const char *zKey) {
  pKey->mv_data = (void *)zKey;
  pKey->mv_size = strlen(zKey);
}

/*
** Records.  ljRecBuild sizes and encodes in one go; the payload may be
** compressed, so the size is only known after compression.
*/
static int recPayloadCodec(const LjRecIn *p, int eCodec, i64 nMin) {
  if (eCodec == LJ_CODEC_NONE) return LJ_CODEC_NONE;
  if (p->ePayload != LJ_VAL_TEXT && p->ePayload != LJ_VAL_BLOB)
    return LJ_CODEC_NONE;
  if (p->nPayload < nMin || p->nPayload < 16) return LJ_CODEC_NONE;
  return eCodec;
}

int ljRecBuild(const LjRecIn *p, int eCodec, i64 nCompressMin, u8 *aBuf,
               size_t nBuf, u8 **paOut, u32 *pnOut) {
  size_t nHead =
      LJ_REC_HDR + (size_t)p->nType + (size_t)p->nTags + (size_t)p->nMeta;
  int eUse = recPayloadCodec(p, eCodec, nCompressMin);
  size_t nBound = (size_t)p->nPayload;
  size_t nBody;
  u8 *a;
  if (eUse == LJ_CODEC_LZ4) {
    nBound = 4 + (size_t)LZ4_compressBound(p->nPayload);
  } else if (eUse == LJ_CODEC_ZSTD) {
    nBound = 4 + ZSTD_compressBound((size_t)p->nPayload);
  }
  if (nBound < (size_t)p->nPayload) nBound = (size_t)p->nPayload;
  if (nHead + nBound <= nBuf) {
    a = aBuf;
  } else {
    a = sqlite3_malloc64(nHead + nBound);
    if (a == 0) return SQLITE_NOMEM;
  }
  nBody = 0;
  if (eUse == LJ_CODEC_LZ4) {
    int n =
        LZ4_compress_default((const char *)p->aPayload, (char *)&a[nHead + 4],
                             p->nPayload, (int)(nBound - 4));
    if (n > 0 && (size_t)n + 4 < (size_t)p->nPayload) nBody = (size_t)n + 4;
  } else if (eUse == LJ_CODEC_ZSTD) {
    size_t n = ZSTD_compress(&a[nHead + 4], nBound - 4, p->aPayload,
                             (size_t)p->nPayload, 1);
    if (!ZSTD_isError(n) && n + 4 < (size_t)p->nPayload) nBody = n + 4;
  }
  if (nBody) {
    ljPut32(&a[nHead], (u32)p->nPayload);
  } else {
    eUse = LJ_CODEC_NONE;
    nBody = (size_t)p->nPayload;
    if (nBody) memcpy(&a[nHead], p->aPayload, nBody);
  }
  memset(a, 0, LJ_REC_HDR);
  a[LJ_REC_FLAGS] = (u8)eUse;
  a[LJ_REC_PCLS] = p->ePayload;
  a[LJ_REC_MCLS] = p->eMeta;
  ljPut16(&a[LJ_REC_NTYPE], (u16)p->nType);
  ljPut16(&a[LJ_REC_NTAGS], (u16)p->nTags);
  ljPut32(&a[LJ_REC_NMETA], (u32)p->nMeta);
  {
    u8 *z = &a[LJ_REC_HDR];
    if (p->nType) memcpy(z, p->aType, (size_t)p->nType);
    z += p->nType;
    if (p->nTags) memcpy(z, p->aTags, (size_t)p->nTags);
    z += p->nTags;
    if (p->nMeta) memcpy(z, p->aMeta, (size_t)p->nMeta);
  }
  *paOut = a;
  *pnOut = (u32)(nHead + nBody);
  return SQLITE_OK;
}

/* Give a record its pos and ts, then seal it with the checksum: bytes 8
** to the end, continued over bytes 0-3 (flags and storage classes). */
void ljRecStamp(u8 *a, size_t n, u64 pos, i64 ts) {
  u32 crc;
  ljPut64(&a[LJ_REC_POS], pos);
  ljPut64(&a[LJ_REC_TS], (u64)ts);
  crc = ljCrc32c(0, &a[LJ_REC_POS], n - LJ_REC_POS);
  ljPut32(&a[LJ_REC_CRC], ljCrc32c(crc, a, LJ_REC_CRC));
}

/* Is the length n right for a value of storage class e?  INTEGER and REAL
** are 8 bytes, NULL none; text and blobs any length. */
static int recClassLen(u8 e, size_t n) {
  if (e == LJ_VAL_INT || e == LJ_VAL_FLOAT) return n == 8;
  if (e == LJ_VAL_NULL) return n == 0;
  return e <= LJ_VAL_BLOB;
}

/* Does stored checksum x match c, the raw CRC state after bytes 8 to the
** end of record a?  Records written before the checksum covered bytes 0-3
** hold the sum of bytes 8 to the end alone, which is accepted too: a
** record sealed the new way matches that only by a 2^-32 chance. */
static int recSumOk(u32 c, const u8 *a, u32 x) {
  return ~c == x || ljCrc32c(~c, a, LJ_REC_CRC) == x;
}

int ljRecCheck(const u8 *a, size_t n) {
  if (n < LJ_REC_HDR) return 0;
  return recSumOk(~ljCrc32c(0, &a[LJ_REC_POS], n - LJ_REC_POS), a,
                  ljGet32(&a[LJ_REC_CRC]));
}

#if defined(__x86_64__)
/* Up to 4 records summed side by side: one record's CRC is a chain of
** dependent instructions (3 cycles each), so interleaving independent
** chains lets the CPU overlap them.  Measured on full scans of 100-byte
** payloads (bench/README.md): checking one record at a time made the scan
** 17% slower; four side by side take 2.5% of its CPU. */
__attribute__((target("sse4.2"))) static int recCheckHw(const u8 *const *aa,
                                                        const u32 *an, int n) {
  /* Fewer than 4 records: the last one is summed again in the spare
  ** lanes (cheaper than a loop over lanes with the states in memory). */
  const u8 *p0 = aa[0] + LJ_REC_POS, *p1 = aa[n > 1] + LJ_REC_POS;
  const u8 *p2 = aa[n > 2 ? 2 : n - 1] + LJ_REC_POS;
  const u8 *p3 = aa[n > 3 ? 3 : n - 1] + LJ_REC_POS;
  u64 c0 = 0xFFFFFFFFu, c1 = c0, c2 = c0, c3 = c0, v0, v1, v2, v3;
  size_t nCommon = SIZE_MAX, off;
  int i;
  for (i = 0; i < n; i++) {
    size_t m = an[i] - LJ_REC_POS;
    if (m < nCommon) nCommon = m;
  }
  nCommon &= ~(size_t)7;
  for (off = 0; off < nCommon; off += 8) {
    memcpy(&v0, p0 + off, 8);
    memcpy(&v1, p1 + off, 8);
    memcpy(&v2, p2 + off, 8);
    memcpy(&v3, p3 + off, 8);
    c0 = __builtin_ia32_crc32di(c0, v0);
    c1 = __builtin_ia32_crc32di(c1, v1);
    c2 = __builtin_ia32_crc32di(c2, v2);
    c3 = __builtin_ia32_crc32di(c3, v3);
  }
  for (i = 0; i < n; i++) {
    u64 c = i == 0 ? c0 : i == 1 ? c1 : i == 2 ? c2 : c3;
    u32 x = crcHw((u32)c, aa[i] + LJ_REC_POS + nCommon,
                  an[i] - LJ_REC_POS - nCommon);
    u32 stored = ljGet32(&aa[i][LJ_REC_CRC]), hdr;
    memcpy(&hdr, aa[i], 4); /* bytes 0-3, in memory order like crcHw's */
    if (~__builtin_ia32_crc32si(x, hdr) != stored && ~x != stored) return i;
  }
  return -1;
}
#endif

int ljRecCheckMany(const u8 *const *aa, const u32 *an, int n) {
  int i;
  for (i = 0; i < n; i++) {
    if (an[i] < LJ_REC_HDR) return i;
  }
#if defined(__x86_64__)
  pthread_once(&crcOnce, crcInit);
  if (bCrcHw) {
    for (i = 0; i < n; i += 4) {
      int j = recCheckHw(&aa[i], &an[i], n - i < 4 ? n - i : 4);
      if (j >= 0) return i + j;
    }
    return -1;
  }
#endif
  for (i = 0; i < n; i++) {
    if (!ljRecCheck(aa[i], an[i])) return i;
  }
  return -1;
}

/* Expand compressed payload z (nz bytes: raw length u32, then the
** codec's bytes) into *paBuf.  The raw length is checked against what the
** codec can produce from nz bytes before anything is allocated, so a
** damaged length cannot drive a huge allocation. */
static int recExpand(int eCodec, const u8 *z, size_t nz, LjRec *p, u8 **paBuf,
                     size_t *pnBuf) {
  size_t nRaw;
  if (nz < 4) return SQLITE_CORRUPT;
  nRaw = ljGet32(z);
  z += 4;
  nz -= 4;
  if (nRaw > LJ_MAX_VALUE_CAP || nz > INT_MAX) return SQLITE_CORRUPT;
  if (eCodec == LJ_CODEC_LZ4) {
    /* LZ4 expands a byte into at most 255 (a match's length bytes). */
    if (nRaw > nz * 255 + 16) return SQLITE_CORRUPT;
  } else if (eCodec == LJ_CODEC_ZSTD) {
    /* ZSTD_compress records the content size in the frame header. */
    if (ZSTD_getFrameContentSize(z, nz) != (unsigned long long)nRaw)
      return SQLITE_CORRUPT;
  } else {
    return SQLITE_CORRUPT;
  }
  if (nRaw > *pnBuf) {
    u8 *aNew = sqlite3_realloc64(*paBuf, nRaw);
    if (aNew == 0) return SQLITE_NOMEM;
    *paBuf = aNew;
    *pnBuf = nRaw;
  }
  if (eCodec == LJ_CODEC_LZ4) {
    int r = LZ4_decompress_safe((const char *)z, (char *)*paBuf, (int)nz,
                                (int)nRaw);
    if (r < 0 || (size_t)r != nRaw) return SQLITE_CORRUPT;
  } else {
    size_t r = ZSTD_decompress(*paBuf, nRaw, z, nz);
    if (ZSTD_isError(r) || r != nRaw) return SQLITE_CORRUPT;
  }
  p->aPayload = *paBuf;
  p->nPayload = (int)nRaw;
  return SQLITE_OK;
}

/* The bytes of record a (n bytes) before its payload, with the header's
** lengths and the meta value's class checked: 0 for a malformed record. */
static size_t recHead(const u8 *a, size_t n) {
  size_t nHead, nMeta;
  if (n < LJ_REC_HDR ||
      n > LJ_MAX_VALUE_CAP + (size_t)LJ_REC_HDR * 2 + LJ_MAX_TYPE_BYTES * 2)
    return 0;
  nMeta = ljGet32(&a[LJ_REC_NMETA]); /* as size_t: no sign, no wrap */
  nHead = LJ_REC_HDR + (size_t)ljGet16(&a[LJ_REC_NTYPE]) +
          (size_t)ljGet16(&a[LJ_REC_NTAGS]) + nMeta;
  if (nHead > n || !recClassLen(a[LJ_REC_MCLS], nMeta)) return 0;
  return nHead;
}

/*
** Decode a record.  A compressed payload is expanded into *paBuf (grown
** with sqlite3_realloc64 as needed; the caller frees it).  Every length
** is checked against the record before use.  Returns SQLITE_OK,
** SQLITE_CORRUPT for a malformed record, SQLITE_NOMEM.  (The checksum is
** ljRecCheck's business: readers check it when they copy the record.)
*/
int ljRecDecode(const u8 *a, size_t n, LjRec *p, u8 **paBuf, size_t *pnBuf) {
  size_t nHead = recHead(a, n);
  int eCodec;
  if (nHead == 0) return SQLITE_CORRUPT;
  p->crc = ljGet32(&a[LJ_REC_CRC]);
  p->pos = ljGet64(&a[LJ_REC_POS]);
  p->ts = (i64)ljGet64(&a[LJ_REC_TS]);
  p->nType = ljGet16(&a[LJ_REC_NTYPE]);
  p->nTags = ljGet16(&a[LJ_REC_NTAGS]);
  p->nMeta = (int)ljGet32(&a[LJ_REC_NMETA]);
  p->eMeta = a[LJ_REC_MCLS];
  p->ePayload = a[LJ_REC_PCLS];
  eCodec = a[LJ_REC_FLAGS] & LJ_RECF_CODEC;
  p->aType = p->nType ? &a[LJ_REC_HDR] : 0;
  p->aTags = p->nTags ? &a[LJ_REC_HDR + p->nType] : 0;
  p->aMeta = &a[LJ_REC_HDR + p->nType + p->nTags];
  if (eCodec == LJ_CODEC_NONE) {
    if (!recClassLen(p->ePayload, n - nHead)) return SQLITE_CORRUPT;
    p->aPayload = &a[nHead];
    p->nPayload = (int)(n - nHead);
    return SQLITE_OK;
  }
  /* Only text and blobs are ever compressed. */
  if (p->ePayload != LJ_VAL_TEXT && p->ePayload != LJ_VAL_BLOB)
    return SQLITE_CORRUPT;
  return recExpand(eCodec, &a[nHead], n - nHead, p, paBuf, pnBuf);
}

/* The payload of record a (n bytes) alone, checked as ljRecDecode checks
** it: SQLITE_OK with its class and bytes, SQLITE_CORRUPT, or SQLITE_DONE
** for a compressed payload (which only ljRecDecode expands). */
int ljRecPayload(const u8 *a, size_t n, u8 *pe, const u8 **pa, int *pn) {
  size_t nHead = recHead(a, n);
  if (nHead == 0 || !recClassLen(a[LJ_REC_PCLS], n - nHead)) {
    return SQLITE_CORRUPT;
  }
  if ((a[LJ_REC_FLAGS] & LJ_RECF_CODEC) != LJ_CODEC_NONE) return SQLITE_DONE;
  *pe = a[LJ_REC_PCLS];
  *pa = &a[nHead];
  *pn = (int)(n - nHead);
  return SQLITE_OK;
}

/*
** Tags.  The accepted form is a JSON array of non-empty strings of at
** most LJ_MAX_TAG_BYTES bytes each (after unescaping).  The parser is
** deliberately small: it accepts exactly that grammar and nothing else.
*/
static int tagHex(const char *z, unsigned *pv) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = z[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (unsigned)(c - 'A' + 10);
    else
      return 0;
  }
  *pv = v;
  return 1;
}

static int tagUtf8(u8 *a, unsigned cp) {
  if (cp < 0x80) {
    a[0] = (u8)cp;
    return 1;
  }
  if (cp < 0x800) {
    a[0] = (u8)(0xC0 | (cp >> 6));
    a[1] = (u8)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    a[0] = (u8)(0xE0 | (cp >> 12));
    a[1] = (u8)(0x80 | ((cp >> 6) & 0x3F));
    a[2] = (u8)(0x80 | (cp & 0x3F));
    return 3;
  }
  a[0] = (u8)(0xF0 | (cp >> 18));
  a[1] = (u8)(0x80 | ((cp >> 12) & 0x3F));
  a[2] = (u8)(0x80 | ((cp >> 6) & 0x3F));
  a[3] = (u8)(0x80 | (cp & 0x3F));
  return 4;
}

int ljTagsParse(const char *z, int n, int (*xTag)(void *, const u8 *, int),
                void *pArg, char **pzErr) {
  u8 aTag[LJ_MAX_TAG_BYTES + 4];
  int i = 0;
  int bFirst = 1;
#define TAG_WS()                                                        \
  while (i < n &&                                                       \
         (z[i] == ' ' || z[i] == '\t' || z[i] == '\n' || z[i] == '\r')) \
  i++
  TAG_WS();
  if (i >= n || z[i] != '[') goto bad;
  i++;
  for (;;) {
    int nTag = 0;
    TAG_WS();
    if (i < n && z[i] == ']' && bFirst) {
      i++;
      break;
    }
    if (i >= n || z[i] != '"') goto bad;
    i++;
    while (i < n && z[i] != '"') {
      unsigned cp = (unsigned char)z[i];
      if (cp < 0x20) goto bad;
      if (cp == '\\') {
        if (i + 1 >= n) goto bad;
        switch (z[i + 1]) {
          case '"': cp = '"'; break;
          case '\\': cp = '\\'; break;
          case '/': cp = '/'; break;
          case 'b': cp = '\b'; break;
          case 'f': cp = '\f'; break;
          case 'n': cp = '\n'; break;
          case 'r': cp = '\r'; break;
          case 't': cp = '\t'; break;
          case 'u': {
            unsigned lo;
            if (i + 6 > n || !tagHex(&z[i + 2], &cp)) goto bad;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (i + 12 > n || z[i + 6] != '\\' || z[i + 7] != 'u' ||
                  !tagHex(&z[i + 8], &lo) || lo < 0xDC00 || lo > 0xDFFF)
                goto bad;
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
              i += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              goto bad;
            }
            i += 4;
            break;
          }
          default: goto bad;
        }
        i += 2;
        {
          int nCp = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
          if (nTag + nCp > LJ_MAX_TAG_BYTES) goto toolong;
        }
        nTag += tagUtf8(&aTag[nTag], cp);
      } else {
        if (nTag >= LJ_MAX_TAG_BYTES) goto toolong;
        aTag[nTag++] = (u8)cp;
        i++;
      }
    }
    if (i >= n) goto bad;
    i++; /* closing quote */
    if (nTag == 0) {
      *pzErr = sqlite3_mprintf("tags must not contain empty strings");
      return SQLITE_ERROR;
    }
    if (!ljUtf8Valid(aTag, nTag)) goto bad;
    if (xTag) {
      int rc = xTag(pArg, aTag, nTag);
      if (rc) return rc;
    }
    bFirst = 0;
    TAG_WS();
    if (i < n && z[i] == ',') {
      i++;
      continue;
    }
    if (i < n && z[i] == ']') {
      i++;
      break;
    }
    goto bad;
  }
  TAG_WS();
  if (i != n) goto bad;
#undef TAG_WS
  return SQLITE_OK;
toolong:
  *pzErr = sqlite3_mprintf("a tag is longer than %d bytes", LJ_MAX_TAG_BYTES);
  return SQLITE_ERROR;
bad:
  *pzErr = sqlite3_mprintf(
      "tags must be a JSON array of strings, e.g. '[\"order\",\"eu\"]'");
  return SQLITE_ERROR;
}
