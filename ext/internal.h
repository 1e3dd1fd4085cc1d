/*
** internal.h -- declarations shared by the files of the extension.
**
** The extension is layered; data flows one way:
**
**     lmdbjournal.c  the entry point: registration             }
**     journal_table.c  the lmdb_journal virtual table: plans,  }
**                    cursors, the tag collation               }
**     table_write.c  ... its INSERTs: buffer, submit at COMMIT }
**     functions.c    journal_* scalar functions                } SQL layer
**     tvf.c          table-valued functions (journal_metrics)  }
**     export.c       journal_export: JSON lines, and the value }
**                    encoding its import undoes                }
**     snapshots_tvf.c  journal_snapshots, journal_actors       }
**     restore.c      journal_restore from a Kafka topic        }
**     errors.c       journal_errors: which async writes failed }
**     conn.c         per-connection state, table lookup, SQL   }
**                    value checks shared by the files above    }
**          |
**          v
**     ship.c         the shipper thread: committed events to   }
**                    Kafka in pos order, read through scan.c  }
**     scan.c         the read interface: every plan's walk     }
**                    over runs, manifests, stage and indexes   }
**     snapread.c     ... and over snapshots and the actors db  }
**     registry.c     one LMDB environment per directory:     }
**                    open, share, close (starts the writer),  }
**                    reopen after LMDB gave up on it          }
**     submit.c       submitters' side of the writer: actor    }
**                    cache, seqs, queueing, tickets           }
**     writer.c       queue, writer thread, group commit, the  } store
**                    batch transaction                        }
**     put.c          what a transaction writes; truncation    }
**     compact.c      compaction: an idle writer rewrites      }
**                    actors' scattered runs contiguously      }
**     stage.c        staging: put, merge, lookups             }
**     trunclog.c     the truncation log (put.c writes it,     }
**                    scan.c reads it for the shipper)         }
**     metrics.c      counters, histograms, published gauges   }
**     errlog.c       the log of failed async writes (written  }
**                    by the writer, read by errors.c)         }
**     env.c          the gate, map growth, read transactions, }
**                    error mapping and classification         }
**     layout.c       keys, records, checksums, tags          }
**     config.c       CREATE VIRTUAL TABLE options
**
** A file calls only files below it in this list (metrics.c reads the
** gauges the writer and the shipper publish in LjEnv.m rather than
** calling them; registry.c starts and stops the shipper, as it does the
** writer).
**
** The SQL layer never calls LMDB directly (.ci/run checks it makes no
** mdb_* call): it reads through the read interface (scan.c) and writes
** by submitting requests (submit.c) to the writer.  The writer knows
** nothing of the virtual table API.
*/
#ifndef LMDBJOURNAL_INTERNAL_H
#define LMDBJOURNAL_INTERNAL_H

#include <sqlite3ext.h>
#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "../include/lmdbjournal.h"

#ifndef SQLITE_CORE
SQLITE_EXTENSION_INIT3
#endif

#define LJ_PRIVATE __attribute__((visibility("hidden")))

typedef sqlite3_int64 i64;
typedef sqlite3_uint64 u64;
typedef uint32_t u32;
typedef uint16_t u16;
typedef uint8_t u8;

/* Limits that are part of the product contract (docs/api.md, "Limits"). */
#define LJ_MAX_ACTOR_BYTES 400 /* actor ids are 1..400 bytes of UTF-8 */
#define LJ_MAX_TAG_BYTES   255 /* one tag */
#define LJ_MAX_TYPE_BYTES  65535

/**************************************************************************
** Configuration (config.c)
*/
enum { LJ_DUR_NONE = 0, LJ_DUR_META = 1, LJ_DUR_FULL = 2 };
enum { LJ_MODE_ASYNC = 0, LJ_MODE_SYNC = 1 };
enum { LJ_CODEC_NONE = 0, LJ_CODEC_LZ4 = 1, LJ_CODEC_ZSTD = 2 };
enum { LJ_SHIP_OFF = 0, LJ_SHIP_KAFKA = 1 };

/* Bits of LjConfig.mSet, one per key, telling which keys were given. */
#define LJ_OPT_PATH            (1u << 0)
#define LJ_OPT_MAP_SIZE        (1u << 1)
#define LJ_OPT_MAP_MAX         (1u << 2)
#define LJ_OPT_MAX_READERS     (1u << 3)
#define LJ_OPT_MAX_DBS         (1u << 4)
#define LJ_OPT_BATCH_SIZE      (1u << 5)
#define LJ_OPT_BATCH_BYTES     (1u << 6)
#define LJ_OPT_SYNC_INTERVAL   (1u << 7)
#define LJ_OPT_DURABILITY      (1u << 8)
#define LJ_OPT_CHECKPOINT      (1u << 9)
#define LJ_OPT_APPEND_MODE     (1u << 10)
#define LJ_OPT_QUEUE_MAX       (1u << 11)
#define LJ_OPT_SYNC_TIMEOUT    (1u << 12)
#define LJ_OPT_TXN_TIMEOUT     (1u << 13)
#define LJ_OPT_MAX_RETRIES     (1u << 14)
#define LJ_OPT_RETRY_DELAY     (1u << 15)
#define LJ_OPT_COMPRESSION     (1u << 16)
#define LJ_OPT_COMPRESSION_MIN (1u << 17)
#define LJ_OPT_MAX_VALUE       (1u << 18)
#define LJ_OPT_METRICS         (1u << 19)
#define LJ_OPT_SNAPSHOT_KEEP   (1u << 20)
#define LJ_OPT_SHIP            (1u << 21)
#define LJ_OPT_SHIP_BROKERS    (1u << 22)
#define LJ_OPT_SHIP_TOPIC      (1u << 23)
#define LJ_OPT_SHIP_CONF       (1u << 24)
#define LJ_OPT_ERRORS_MAX      (1u << 25)
#define LJ_OPT_COMPACTION      (1u << 26)

/* Keys whose value belongs to the environment (and its one writer) rather
** than to the table: a second table opening the same directory with a
** different explicit value of one of these is refused. */
#define LJ_OPT_ENV_KEYS                                                     \
  (LJ_OPT_MAP_SIZE | LJ_OPT_MAP_MAX | LJ_OPT_MAX_READERS | LJ_OPT_MAX_DBS | \
   LJ_OPT_BATCH_SIZE | LJ_OPT_BATCH_BYTES | LJ_OPT_SYNC_INTERVAL |          \
   LJ_OPT_CHECKPOINT | LJ_OPT_QUEUE_MAX | LJ_OPT_MAX_RETRIES |              \
   LJ_OPT_RETRY_DELAY | LJ_OPT_ERRORS_MAX | LJ_OPT_COMPACTION)

typedef struct LjConfig LjConfig;
struct LjConfig {
  char *zPath;         /* path=, as given (sqlite3_malloc'd) */
  i64 szMap;           /* map_size= bytes */
  i64 szMapMax;        /* map_max= bytes */
  int nMaxReaders;     /* max_readers= */
  int nMaxDbs;         /* max_dbs= */
  int nBatch;          /* batch_size= entries per writer transaction */
  i64 nBatchBytes;     /* batch_bytes= */
  i64 usSyncInterval;  /* sync_interval= microseconds */
  int eDurability;     /* durability= LJ_DUR_* */
  i64 usCheckpoint;    /* checkpoint_interval= microseconds */
  int eAppendMode;     /* append_mode= LJ_MODE_* */
  int nQueueMax;       /* queue_max= */
  i64 usSyncTimeout;   /* sync_timeout= microseconds */
  i64 usTxnTimeout;    /* txn_timeout= microseconds */
  int nMaxRetries;     /* max_retries= */
  i64 usRetryDelay;    /* retry_delay= microseconds */
  int eCompression;    /* compression= LJ_CODEC_* */
  i64 nCompressionMin; /* compression_min= bytes */
  i64 nMaxValue;       /* max_value_size= bytes */
  int bMetrics;        /* metrics= on/off */
  int nSnapshotKeep;   /* snapshot_keep= newest snapshots kept per actor
                       ** (0: all) */
  int eShip;           /* ship= LJ_SHIP_* */
  char *zShipBrokers;  /* ship_brokers= (sqlite3_malloc'd, or NULL) */
  char *zShipTopic;    /* ship_topic= */
  char *zShipConf;     /* ship_conf= 'key=value;...' librdkafka props */
  int nErrorsMax;      /* errors_max= failures journal_errors keeps */
  int bCompaction;     /* compaction= on/off (compact.c) */
  u32 mSet;            /* LJ_OPT_* bits of keys given explicitly */
};

LJ_PRIVATE void ljConfigDefaults(LjConfig *p);
LJ_PRIVATE int ljConfigParse(LjConfig *p, int nArg, const char *const *azArg,
                             char **pzErr);
LJ_PRIVATE void ljConfigClear(LjConfig *p);
/* Replace the text fields of a shallow copy by copies of their own. */
LJ_PRIVATE int ljConfigOwnText(LjConfig *p);
LJ_PRIVATE char *ljConfigJson(const LjConfig *p, const char *zResolvedPath);
LJ_PRIVATE const char *ljDurabilityName(int e);
LJ_PRIVATE int ljConfigEnvConflict(const LjConfig *pOpen, const LjConfig *pNew,
                                   char **pzErr);
/* Copy the environment-level settings in effect (pEnv) over pTab. */
LJ_PRIVATE void ljConfigTakeEnv(LjConfig *pTab, const LjConfig *pEnv);

/**************************************************************************
** Small utilities (layout.c)
*/
/* Wait while *p == v, at most usTimeout (-1: no limit); wake every
** waiter on p (layout.c: a futex on Linux, polling elsewhere). */
LJ_PRIVATE void ljFutexWait(u32 *p, u32 v, i64 usTimeout);
LJ_PRIVATE void ljFutexWakeAll(u32 *p);
LJ_PRIVATE i64 ljNowMs(void); /* wall clock, ms since the Unix epoch */
LJ_PRIVATE i64 ljNowUs(void); /* monotonic clock, microseconds */
LJ_PRIVATE void ljDeadline(struct timespec *pTs, i64 usFromNow);
LJ_PRIVATE int ljUtf8Valid(const unsigned char *z, int n);
LJ_PRIVATE u32 ljCrc32c(u32 crc, const void *p, size_t n);

/* Big-endian loads and stores (keys sort numerically under memcmp). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define LJ_BE64(x) __builtin_bswap64(x)
#define LJ_BE32(x) __builtin_bswap32(x)
#define LJ_BE16(x) __builtin_bswap16(x)
#else
#define LJ_BE64(x) (x)
#define LJ_BE32(x) (x)
#define LJ_BE16(x) (x)
#endif
static inline void ljPut64(u8 *a, u64 v) {
  v = LJ_BE64(v);
  memcpy(a, &v, 8);
}
static inline u64 ljGet64(const u8 *a) {
  u64 v;
  memcpy(&v, a, 8);
  return LJ_BE64(v);
}
static inline void ljPut32(u8 *a, u32 v) {
  v = LJ_BE32(v);
  memcpy(a, &v, 4);
}
static inline u32 ljGet32(const u8 *a) {
  u32 v;
  memcpy(&v, a, 4);
  return LJ_BE32(v);
}
static inline void ljPut16(u8 *a, u16 v) {
  v = LJ_BE16(v);
  memcpy(a, &v, 2);
}
static inline u16 ljGet16(const u8 *a) {
  u16 v;
  memcpy(&v, a, 2);
  return LJ_BE16(v);
}

/**************************************************************************
** Storage layout (layout.c).  The authoritative drawing of the keys and
** records is at the top of layout.c (docs/architecture.md links to it);
** every byte offset of a record, run, manifest, staged batch and index
** value is named here, and no other file spells one out.
*/
typedef struct LjEvent LjEvent;

#define LJ_NUMKEY  8  /* actor number key (actnum db; prefix of events keys) */
#define LJ_EVKEY   16 /* events key: actor number (8) + seq (8) */
#define LJ_POSKEY  8  /* pos key (also the stage's key) */
#define LJ_REC_HDR 32 /* fixed part of an event record */

/* Byte offsets in the fixed part of an event record. */
#define LJ_REC_FLAGS 0  /* u8 flags (LJ_RECF_*) */
#define LJ_REC_PCLS  1  /* u8 storage class of the payload */
#define LJ_REC_MCLS  2  /* u8 storage class of meta */
#define LJ_REC_CRC   4  /* u32 crc32c of bytes LJ_REC_POS .. end */
#define LJ_REC_POS   8  /* u64 pos */
#define LJ_REC_TS    16 /* i64 ts, ms */
#define LJ_REC_NTYPE 24 /* u16 type length */
#define LJ_REC_NTAGS 26 /* u16 tags length */
#define LJ_REC_NMETA 28 /* u32 meta length */

/* Record header flag bits (byte 0). */
#define LJ_RECF_CODEC 0x03 /* LJ_CODEC_* of the payload */

/* Storage classes of payload and meta in a record (bytes 1 and 2). */
#define LJ_VAL_NULL  0
#define LJ_VAL_INT   1
#define LJ_VAL_FLOAT 2
#define LJ_VAL_TEXT  3
#define LJ_VAL_BLOB  4

/* A record's ts and tags without decoding it (aRec is a whole record). */
static inline i64 ljRecTs(const u8 *aRec) {
  return (i64)ljGet64(&aRec[LJ_REC_TS]);
}
static inline int ljRecTags(const u8 *aRec, const u8 **paTags) {
  *paTags = &aRec[LJ_REC_HDR + ljGet16(&aRec[LJ_REC_NTYPE])];
  return ljGet16(&aRec[LJ_REC_NTAGS]);
}

/* A decoded record.  Pointers refer to the record's bytes (or to the
** decompression buffer handed to ljRecDecode) and live as long as those. */
typedef struct LjRec LjRec;
struct LjRec {
  u64 pos;
  i64 ts;
  const u8 *aType;
  int nType; /* NULL if no type */
  const u8 *aTags;
  int nTags; /* JSON text, NULL if none */
  u8 eMeta;
  const u8 *aMeta;
  int nMeta;
  u8 ePayload;
  const u8 *aPayload;
  int nPayload;
  u32 crc; /* stored checksum */
};

/* The parts of a new event before it has a pos and ts. */
typedef struct LjRecIn LjRecIn;
struct LjRecIn {
  const u8 *aType;
  int nType;
  const u8 *aTags;
  int nTags;
  u8 eMeta;
  const u8 *aMeta;
  int nMeta;
  u8 ePayload;
  const u8 *aPayload;
  int nPayload;
};

/* Encode a new record (pos/ts zero) into aBuf when it fits in nBuf
** bytes, else into new sqlite3_malloc'd memory; *paOut says which.  The
** payload is compressed with eCodec when it is at least nCompressMin bytes
** and compression gains. */
LJ_PRIVATE int ljRecBuild(const LjRecIn *p, int eCodec, i64 nCompressMin,
                          u8 *aBuf, size_t nBuf, u8 **paOut, u32 *pnOut);
LJ_PRIVATE void ljRecStamp(u8 *aRec, size_t nRec, u64 pos, i64 ts);
LJ_PRIVATE int ljRecDecode(const u8 *a, size_t n, LjRec *pOut, u8 **paBuf,
                           size_t *pnBuf);
LJ_PRIVATE int ljRecPayload(const u8 *a, size_t n, u8 *pe, const u8 **pa,
                            int *pn);
/* 1 when record a (n bytes) holds the checksum of its bytes. */
LJ_PRIVATE int ljRecCheck(const u8 *a, size_t n);
/* The same for records aa[i] of an[i] bytes: the index of the first bad
** one, or -1 (faster than one by one). */
LJ_PRIVATE int ljRecCheckMany(const u8 *const *aa, const u32 *an, int n);
/* The largest payload any store can hold (max_value_size's limit): a
** decoder refuses larger lengths rather than allocate them.  (The fuzzer
** lowers it, to spend its time on decoding rather than on allocating.) */
#ifndef LJ_MAX_VALUE_CAP
#define LJ_MAX_VALUE_CAP ((size_t)1 << 30)
#endif

LJ_PRIVATE void ljEvKey(u8 *aKey, u64 actorNum, u64 seq);
/* The actor number and seq of an events key (LJ_EVKEY bytes). */
static inline u64 ljEvKeyNum(const void *aKey) {
  return ljGet64((const u8 *)aKey);
}
static inline u64 ljEvKeySeq(const void *aKey) {
  return ljGet64((const u8 *)aKey + 8);
}

/* Values of the actors db (num u64 | floor u64) and of the tags db
** (num u64 | seq u64), and the longest tag key. */
#define LJ_ACTVAL     16
#define LJ_TAGVAL     16
#define LJ_TAGKEY_MAX (2 + LJ_MAX_TAG_BYTES + LJ_POSKEY)
LJ_PRIVATE void ljActorVal(u8 *aVal, u64 num, u64 floor);
/* Read an actors value; MDB_CORRUPTED when malformed. */
LJ_PRIVATE int ljActorValGet(const MDB_val *v, u64 *pNum, u64 *pFloor);
LJ_PRIVATE void ljTagVal(u8 *aVal, u64 num, u64 seq);
/* Keys of the meta db. */
#define LJ_META_FORMAT "format" /* u32 format version */
#define LJ_META_MAXPOS "maxpos" /* u64 highest pos ever assigned */
LJ_PRIVATE void ljMetaKey(MDB_val *pKey, const char *zKey);

/* Runs: the events db's values (drawing in layout.c). */
#define LJ_RUN_MAX 256 /* most events in a run of a commit or a merge */
/* ... and of a compacted run (compact.c): an actor's history of a
** thousand 100-byte events becomes one run, which LMDB puts on
** neighbouring pages (as several runs, about a third of the histories
** went to two places of the file).  Readers take any count. */
#define LJ_COMPACT_RUN_MAX 2048
/* Most record bytes in one run (unless one record alone is larger).  A
** quarter of a 4 KiB page keeps several runs per leaf page: larger runs
** leave leaf pages mostly empty after splits (measured at 100 actors and
** 100-byte payloads: 16 KiB runs 411 B of store per message and 0.69 M
** appends/s, 1 KiB runs 234 B and 0.82 M/s). */
#define LJ_RUN_BYTES 1024
#ifndef LJ_MERGE_RUN_PAGES
#define LJ_MERGE_RUN_PAGES 2
#endif
/* LMDB's header on the first page of an overflow value (merged runs are
** sized to fill LJ_MERGE_RUN_PAGES pages exactly). */
#define LJ_OVERFLOW_HDR 16
/* Bytes of a run of n records before the first record. */
#define LJ_RUN_HEAD(n) (4 + 4 * (size_t)(n))
LJ_PRIVATE u32 ljRunCount(const u8 *aRun, size_t nRun);
/* Unchecked parts of a run whose count ljRunRecord has validated: where
** record i ends (from the first record), and where the records begin. */
static inline u32 ljRunEnd(const void *aRun, u32 i) {
  return ljGet32((const u8 *)aRun + 4 + 4 * (size_t)i);
}
static inline const u8 *ljRunBody(const void *aRun) {
  return (const u8 *)aRun + LJ_RUN_HEAD(ljGet32(aRun));
}
LJ_PRIVATE int ljRunRecord(const u8 *aRun, size_t nRun, u32 i, const u8 **pa,
                           u32 *pn);
LJ_PRIVATE int ljRunFind(MDB_cursor *c, u64 num, u64 seq, MDB_val *pKey,
                         MDB_val *pVal, u32 *pi);
/* Writing a run of n records: ljRunStart, then ljRunSetEnd for each
** record i with the offset where it ends, counted from the first record
** (which starts at LJ_RUN_HEAD(n)). */
static inline void ljRunStart(u8 *aRun, u32 n) {
  ljPut32(aRun, n);
}
static inline void ljRunSetEnd(u8 *aRun, u32 i, u32 end) {
  ljPut32(&aRun[4 + 4 * (size_t)i], end);
}
/* Size of, and encode, the run of events ap[0..n) (one actor,
** consecutive seqs, records stamped). */
LJ_PRIVATE size_t ljRunSize(LjEvent *const *ap, size_t n);
LJ_PRIVATE void ljRunFill(u8 *aRun, LjEvent *const *ap, size_t n);

/* Manifests: the pos db's values, LJ_MANI_ENTRY bytes per pos: entry i
** describes pos (key + i) as num u64 | seq u64 | ts i64; num 0 marks a
** truncated event. */
#define LJ_MANI_ENTRY 24
LJ_PRIVATE u32 ljManiCount(const MDB_val *v);
LJ_PRIVATE int ljManiFind(MDB_cursor *c, u64 pos, MDB_val *pKey, MDB_val *pVal,
                          u32 *pi);
/* Entry i of a manifest (the caller checked the value holds it): the
** event's actor number (0: truncated), seq and ts. */
static inline u64 ljManiNum(const u8 *aMani, u32 i) {
  return ljGet64(&aMani[LJ_MANI_ENTRY * (size_t)i]);
}
static inline u64 ljManiSeq(const u8 *aMani, u32 i) {
  return ljGet64(&aMani[LJ_MANI_ENTRY * (size_t)i + 8]);
}
static inline i64 ljManiTs(const u8 *aMani, u32 i) {
  return (i64)ljGet64(&aMani[LJ_MANI_ENTRY * (size_t)i + 16]);
}
static inline void ljManiSet(u8 *aMani, u32 i, u64 num, u64 seq, i64 ts) {
  ljPut64(&aMani[LJ_MANI_ENTRY * (size_t)i], num);
  ljPut64(&aMani[LJ_MANI_ENTRY * (size_t)i + 8], seq);
  ljPut64(&aMani[LJ_MANI_ENTRY * (size_t)i + 16], (u64)ts);
}
static inline void ljManiSetNum(u8 *aMani, u32 i, u64 num) {
  ljPut64(&aMani[LJ_MANI_ENTRY * (size_t)i], num);
}
/* Entry i of manifest v; MDB_CORRUPTED when v has no entry i. */
LJ_PRIVATE int ljManiEntry(const MDB_val *v, u32 i, u64 *pNum, u64 *pSeq,
                           i64 *pTs);

/* Staged batches: the stage db's values (drawing in layout.c; what
** staging is, in stage.c).  Header nact u32 | nev u32, then nact
** directory entries num u64 | first seq u64 | end u32, then the runs. */
#define LJ_STAGE_HDR 8  /* nact u32 | nev u32 */
#define LJ_STAGE_DIR 20 /* num u64 | first seq u64 | end u32 */
static inline void ljStageSetHead(u8 *aBatch, u32 nAct, u32 nEv) {
  ljPut32(aBatch, nAct);
  ljPut32(&aBatch[4], nEv);
}
static inline u32 ljStageHeadActors(const u8 *aBatch) {
  return ljGet32(aBatch);
}
static inline u32 ljStageHeadEvents(const u8 *aBatch) {
  return ljGet32(&aBatch[4]);
}
static inline u8 *ljStageDirAt(const u8 *aBatch, u32 i) {
  return (u8 *)&aBatch[LJ_STAGE_HDR + LJ_STAGE_DIR * (size_t)i];
}
static inline void ljStageSetDir(u8 *aBatch, u32 i, u64 num, u64 seq0,
                                 u32 end) {
  u8 *a = ljStageDirAt(aBatch, i);
  ljPut64(a, num);
  ljPut64(&a[8], seq0);
  ljPut32(&a[16], end);
}
static inline u64 ljStageDirNum(const u8 *aBatch, u32 i) {
  return ljGet64(ljStageDirAt(aBatch, i));
}
static inline u64 ljStageDirSeq(const u8 *aBatch, u32 i) {
  return ljGet64(ljStageDirAt(aBatch, i) + 8);
}
static inline u32 ljStageDirEnd(const u8 *aBatch, u32 i) {
  return ljGet32(ljStageDirAt(aBatch, i) + 16);
}
/* Where run 0 of a batch of nAct actors starts. */
static inline size_t ljStageBodyOff(u32 nAct) {
  return LJ_STAGE_HDR + LJ_STAGE_DIR * (size_t)nAct;
}

/* Tags: a JSON array of strings.  ljTagsParse validates zJson and calls
** xTag (if not NULL) once per tag, unescaped, in array order.  Returns
*SQLITE_OK or
** SQLITE_ERROR with *pzErr set (sqlite3_malloc'd). */
LJ_PRIVATE int ljTagsParse(const char *zJson, int nJson,
                           int (*xTag)(void *, const u8 *, int), void *pArg,
                           char **pzErr);
/* Tag index key: len (2) + tag bytes + pos (8).  Returns key length. */
LJ_PRIVATE int ljTagKey(u8 *aKey, const u8 *aTag, int nTag, u64 pos);

/**************************************************************************
** Environment registry (registry.c)
*/
typedef struct LjEnv LjEnv;
typedef struct LjWriter LjWriter;
typedef struct LjActor LjActor;
typedef struct LjClient LjClient;
typedef struct LjMetrics LjMetrics;
typedef struct LjShip LjShip;

/* Named databases of a store. */
enum {
  LJ_DB_META = 0, /* "meta": format version and store facts */
  LJ_DB_ACTORS,   /* "actors": actor id -> number, truncation floor */
  LJ_DB_ACTNUM,   /* "actnum": actor number -> actor id */
  LJ_DB_EVENTS,   /* "events": (actor number, seq) -> record */
  LJ_DB_POS,      /* "pos": pos -> (actor number, seq, ts) */
  LJ_DB_TAGS,     /* "tags": (tag, pos) -> (actor number, seq) */
  LJ_DB_SNAPS,    /* "snapshots": (actor number, seq) -> record */
  LJ_DB_STAGE,    /* "stage": first pos of a commit -> staged batch */
  LJ_DB_TRUNC,    /* "trunclog": (pos, ordinal) -> truncation */
  LJ_DB_COUNT
};

/**************************************************************************
** Metrics (metrics.c).  Counters and gauges live in LjEnv.m: whoever does
** the work bumps a counter with a relaxed atomic; the writer publishes its
** gauges there (writer.c, publishGauges).  metrics.c only reads them.
*/
/* Latency histogram: log-linear buckets over microseconds. */
#define LJ_HIST_BUCKETS 256
#define LJ_HIST_SUB     8 /* buckets per power of two */
typedef struct LjHist LjHist;
struct LjHist {
  u64 aCount[LJ_HIST_BUCKETS];
  u64 nTotal;
};

/* Counters of one environment.  Updated with relaxed atomics. */
struct LjMetrics {
  u64 nAppends;      /* events accepted into the queue */
  u64 nCommits;      /* write transactions committed */
  u64 nCommitEvents; /* events committed */
  u64 nBytesWritten; /* record bytes committed */
  u64 nBytesRead;    /* record bytes returned to SQL */
  u64 nRowsRead;     /* rows returned by journal tables */
  u64 nColdRuns;     /* runs a replay read by pread (scan.c, coldRun) */
  u64 nCompactRuns;  /* runs compaction rewrote (writer.c, compactNow) */
  int bCompactDue;   /* a compaction sweep is due or under way (gauge) */
  u64 nErrors;       /* failed requests */
  u64 nRetries;      /* batch retries */
  u64 nMapResizes;   /* map growths, ours or adopted */
  u64 nConflicts;    /* sequence conflicts */
  u64 nStaleReaders; /* reader slots of dead processes cleared */
  u64 nReopens;      /* environments opened again after MDB_PANIC */
  u64 nMerges;       /* stage merges */
  u64 nMergedEvents; /* events moved from the stage into runs */
  u64 nAsyncErrors;  /* async appends and snapshots that failed (errlog.c) */
  u64 nAsyncDropped; /* ... of them not kept: errors_max reached */
  /* Gauges the writer publishes (stored under the writer mutex). */
  i64 nQueued;               /* events queued */
  i64 lastPos;               /* last committed pos */
  i64 durablePos;            /* last pos known durable */
  LjHist commitHist;         /* commit latency, us */
  LjHist appendHist;         /* journal_append latency, us (sampled) */
  pthread_mutex_t histMutex; /* guards both histograms and zShipError */
  /* Published by the shipper thread (ship.c), read by metrics.c. */
  int eShipState;       /* LJ_SHIPST_* (atomic) */
  i64 shipPos;          /* every event up to this pos is acknowledged */
  i64 shipSeenPos;      /* highest pos the shipper has read */
  i64 shipOldestTs;     /* ts of the oldest unacknowledged event, 0: none */
  i64 shipOldestSent;   /* when it was handed to the client (wall ms) */
  u64 nShipSent;        /* events acknowledged by Kafka */
  u64 nShipErrors;      /* client and delivery errors */
  u64 nShipRestarts;    /* producer restarts (resumed from Kafka) */
  char zShipError[160]; /* last error, "" if none since the last delivery */
};
enum { LJ_SHIPST_OFF = 0, LJ_SHIPST_STANDBY, LJ_SHIPST_ACTIVE, LJ_SHIPST_DOWN };
/* Health is degraded when an event handed to the Kafka client this long
** ago is still not acknowledged (functions.c, journal_health). */
#define LJ_SHIP_LAG_MAX_MS 5000
/* Count a latency (histMutex held).  Inline: the writer and the append
** path record here; metrics.c reads. */
static inline void ljHistAdd(LjHist *p, u64 us) {
  int i = (int)us;
  if (us >= LJ_HIST_SUB) {
    int e = 63 - __builtin_clzll(us); /* us >= 8, so e >= 3 */
    i = LJ_HIST_SUB + (e - 3) * LJ_HIST_SUB +
        (int)((us >> (e - 3)) & (LJ_HIST_SUB - 1));
    if (i >= LJ_HIST_BUCKETS) i = LJ_HIST_BUCKETS - 1;
  }
  p->aCount[i]++;
  p->nTotal++;
}
LJ_PRIVATE u64 ljHistQuantile(const LjHist *p, double q);
typedef struct LjMetricRow LjMetricRow;
struct LjMetricRow {
  const char *zName;
  double value;
  int bCounter; /* only ever grows (else a gauge) */
};
/* Fill up to nRow rows; returns how many metrics there are. */
LJ_PRIVATE int ljMetricsList(LjEnv *pEnv, LjMetricRow *aRow, int nRow);
#define LJ_METRICS_MAX 64
/* The shipper's state as metrics.c reads it from LjEnv.m. */
typedef struct LjShipInfo LjShipInfo;
struct LjShipInfo {
  int eState; /* LJ_SHIPST_* */
  i64 shipPos, lagEvents, lagMs;
  i64 waitMs; /* how long the oldest unacknowledged event waits for Kafka */
  u64 nSent, nErrors, nRestarts;
  char zError[160]; /* "" if none since the last delivery */
};
LJ_PRIVATE void ljShipInfo(LjEnv *pEnv, LjShipInfo *p);
/* The help text of a metric, NULL if it has none. */
LJ_PRIVATE const char *ljMetricHelp(const char *zName);
/* Every metric as Prometheus text exposition (sqlite3_malloc'd; NULL when
** out of memory). */
LJ_PRIVATE char *ljMetricsPrometheus(LjEnv *pEnv);

/*
** Cold runs (scan.c, coldRun): a replay reads the runs of an actor not
** read before through pread rather than the map.  The map's address is
** learnt from the first overflow page read (base, valid while mapGen is
** gen - 1; 0: not yet); eOff is set when that page did not look as LMDB
** lays it out, and the map is then always used.  aSeen has a bit per
** 64 KiB window of the file (modulo its size), set once a run in it was
** read by pread: the next run read there goes through the map, which
** maps the window (the kernel maps a fault's 64 KiB neighbourhood).  All
** fields are atomics: every reader computes the same values.
*/
#define LJ_COLD_WORDS  4096        /* 2^18 windows: 16 GiB before they alias */
#define LJ_COLD_SHIFT  16          /* 64 KiB windows */
#define LJ_COLD_EXTENT (256 << 10) /* most bytes one cold read takes */
typedef struct LjCold LjCold;
struct LjCold {
  uintptr_t base;
  unsigned gen;
  int eOff;
  u32 psize;
  u64 aSeen[LJ_COLD_WORDS];
};

/*
** One LMDB environment per directory per process (registry.c; the
** threading model is described once, at the top of registry.c).
**
** Locks, in the order they are taken (a thread holding one never waits
** for an earlier one):
**
**   1. ljRegistryMutex (registry.c)  the registry list, LjEnv.nRef and
**                      LjEnv.eState; ljRegistryCond waits on it (with a
**                      deadline).  Never held across LMDB work nor while
**                      a writer thread is started or stopped: opening and
**                      closing mark the entry and work without it.
**   2. LjEnv.gate      rwlock: shared around every piece of work on LMDB
**                      memory (a read transaction's calls, the writer's
**                      whole write transaction), exclusive to change the
**                      map size (env.c, ljEnvResize).  Held only during a
**                      call, never across calls into SQLite; never taken
**                      shared twice by one thread.
**   3. LjWriter.mutex  "the writer mutex" (writer.c): the queue, tickets,
**                      request pool, actor cache, client errors.  The
**                      writer takes it inside its transaction (gate held)
**                      to resync an actor, so nobody may wait for the
**                      gate while holding it.
**   4. LjEnv.readerMutex  the list of open read transactions (env.c).
**      LjMetrics.histMutex  the two latency histograms.
**      LjErrLog.mutex  the failures journal_errors lists (errlog.c);
**                      the writer records them holding the writer mutex.
**                      Leaves: nothing is taken while holding any of them.
**
** (layout.c's crcOnce is a pthread_once that takes nothing.)  The
** condition variables LjWriter.condWork/condDone wait on the writer mutex.
**
** Waits on another process.  The only lock held while waiting on another
** process is the gate, shared, by the writer thread while mdb_txn_begin
** waits for LMDB's write lock (LMDB offers no timed wait; the
** transaction's first reads of the map need the gate).  Whoever wants the
** gate exclusively gives up after sync_timeout (ljEnvResize), so readers
** queued behind it wait at most that long.  Every other wait has a
** deadline: submitters wait for tickets up to sync_timeout (submit.c);
** closers for tickets, openers of a directory being opened or closed
** (registry.c) and a close for its writer (ljWriterStop; the writer is
** then left to finish alone) up to ljWaitBound, sync_timeout but at least
** 1 s; an opener for the creation or upgrade of a store's databases up to
** sync_timeout, at least 3 s (registry.c, envCreateTimed: the thread that
** waits for the write lock there holds no lock and is left to finish
** alone).
**
** Without a lock: LjWriter.iNextTicket/iDoneTicket and the doneSeq futex
** (writer.c, waitTicket), LjEnv.mapGen and szMap, LjEnv.cold, the
** counters and gauges of LjMetrics (atomics), and scan.c's spare chunks
** (each slot taken and filled by one atomic exchange).
*/
/*
** The failures of async writes (errlog.c): what journal_errors lists.
** One log per environment in a process: the writer thread records (in
** batchFinish), SQL threads copy and clear.  LjErrLog.mutex guards every
** field of the log and its entries; the log keeps at most errors_max
** entries, and what does not fit is counted (nAsyncDropped), not kept.
*/
enum { LJ_ERRK_APPEND = 0, LJ_ERRK_SNAPSHOT = 1 };
typedef struct LjErrEntry LjErrEntry;
struct LjErrEntry {
  LjErrEntry *pNext; /* the next newer entry */
  i64 id;            /* 1, 2, ... in the order recorded */
  i64 seq;           /* the seq the append returned (snapshot: its seq) */
  i64 tMs;           /* when the writer recorded it, ms since the epoch */
  int rc;            /* SQLite result code of the failure */
  int eKind;         /* LJ_ERRK_* */
  char *zErr;        /* the message (same allocation) */
  int nActor;
  char zActor[1]; /* actor id bytes (not terminated) */
};
typedef struct LjErrLog LjErrLog;
struct LjErrLog {
  pthread_mutex_t mutex;
  LjErrEntry *pFirst, *pLast; /* oldest, newest */
  i64 nEntry;
  i64 iLastId; /* id of the last entry recorded (or dropped) */
};

/* An open read transaction of this process, for health's reader age. */
typedef struct LjReaderSlot LjReaderSlot;
struct LjReaderSlot {
  LjReaderSlot *pPrev, *pNext; /* LjEnv.pReaders (LjEnv.readerMutex) */
  i64 usStart;
};

/* LjEnv.eState: its registry entry's state (registry.c). */
enum { LJ_ENV_OPENING = 0, LJ_ENV_OPEN = 1, LJ_ENV_CLOSING = 2 };

struct LjEnv {
  LjEnv *pNext;                /* registry list (registry mutex) */
  int eState;                  /* LJ_ENV_* (registry mutex) */
  pthread_mutex_t readerMutex; /* guards pReaders */
  LjReaderSlot *pReaders;      /* open read transactions, oldest last */
  int nRef;                    /* tables using it (registry mutex) */
  dev_t dev;                   /* identity of the directory */
  ino_t ino;
  char *zDir; /* resolved directory path */
  MDB_env *env;
  MDB_env *apOld[8]; /* replaced (failed) handles, closed last (registry.c) */
  int nOld;
  MDB_dbi aDbi[LJ_DB_COUNT];
  LjConfig cfg;          /* environment-level settings in effect */
  pthread_rwlock_t gate; /* see above */
  unsigned mapGen;       /* bumped when the map moves (atomic) */
  i64 szMap;             /* current map size (gate) */
  LjWriter *pWriter;     /* the background writer */
  LjShip *pShip;         /* the shipper (ship.c), NULL if not shipping */
  LjMetrics m;
  LjErrLog errLog;  /* failed async writes (errlog.c) */
  pid_t pid;        /* the process that opened it */
  unsigned forkGen; /* fork generation it was opened in (registry.c) */
  LjCold cold;      /* reads of cold runs (scan.c), atomics */
};

/* How long closing, and opening a directory another thread is opening or
** closing, wait on a stuck writer: sync_timeout, but at least a second
** (sync_timeout may be 0, and a close should not give up on a writer
** that is merely busy). */
#define LJ_WAIT_MIN_US 1000000
static inline i64 ljWaitBound(const LjConfig *p) {
  return p->usSyncTimeout > LJ_WAIT_MIN_US ? p->usSyncTimeout : LJ_WAIT_MIN_US;
}

/* Open (share) the store of pCfg->zPath; only bCreate creates one. */
LJ_PRIVATE int ljEnvOpen(const LjConfig *pCfg, int bCreate, LjEnv **ppEnv,
                         char **pzErr);
LJ_PRIVATE void ljEnvRelease(LjEnv *pEnv);
/* Open the environment again in place of one LMDB gave up on (registry.c)
** -- gate held exclusively.  0, MDB_PANIC while read transactions of this
** process are open, or why opening failed. */
LJ_PRIVATE int ljEnvReplace(LjEnv *pEnv);
/* Keep this library loaded for good: called before a thread of it is left
** to outlive the connections (registry.c). */
LJ_PRIVATE void ljPinLibrary(void);
/* Close LMDB, leave the registry and free (after the writer stopped). */
LJ_PRIVATE void ljEnvReap(LjEnv *pEnv);
/* Was the environment opened in a parent of this process (fork)?  Then it
** must not be used, nor closed. */
LJ_PRIVATE int ljEnvForked(const LjEnv *pEnv);

/* The failure log (errlog.c).  ljErrLogAdd records nEv events of one
** failed request (aEv[i].zActor, nActor and seq; kind LJ_ERRK_*, code rc,
** message zErr or NULL) and returns how many of them did not fit. */
LJ_PRIVATE void ljErrLogInit(LjErrLog *p);
LJ_PRIVATE void ljErrLogFree(LjEnv *pEnv); /* logs what was never read */
LJ_PRIVATE i64 ljErrLogAdd(LjEnv *pEnv, const LjEvent *aEv, int nEv, int eKind,
                           int rc, const char *zErr);
/* A copy of the entries, oldest first, as an array of *pn
** sqlite3_malloc'd entries (free with ljErrLogCopyFree). */
LJ_PRIVATE int ljErrLogCopy(LjEnv *pEnv, LjErrEntry ***paCopy, int *pn);
LJ_PRIVATE void ljErrLogCopyFree(LjErrEntry **aCopy, int n);
/* Remove the entries with id <= iUpTo; returns how many. */
LJ_PRIVATE i64 ljErrLogClear(LjEnv *pEnv, i64 iUpTo);
LJ_PRIVATE i64 ljErrLogCount(LjEnv *pEnv);

/**************************************************************************
** Working on an open environment (env.c): error mapping, the gate, map
** growth, read transactions.
*/
/* Map an LMDB (or errno) code to an SQLite result code. */
LJ_PRIVATE int ljMdbToSqlite(int mrc);
/* "<zOp> failed: <mdb_strerror>" as a new string (or NULL on OOM). */
LJ_PRIVATE char *ljMdbErr(const char *zOp, int mrc);
/* An EIO that is not a full disk: fsync (or the device) failed; never
** retried, SQLITE_IOERR (env.c, ljEnvCause). */
#define LJ_MDB_SYNC_EIO (MDB_LAST_ERRCODE - 100)
/* Whether a failed write transaction is worth trying again at once. */
LJ_PRIVATE int ljMdbTransient(int mrc);
/* The cause behind a write transaction's failure: EIO becomes ENOSPC on a
** full file system, LJ_MDB_SYNC_EIO otherwise. */
LJ_PRIVATE int ljEnvCause(LjEnv *p, int mrc);

/* Gate.  ljGateEnter/Leave bracket every piece of work on LMDB memory. */
LJ_PRIVATE void ljGateEnter(LjEnv *p);
LJ_PRIVATE void ljGateLeave(LjEnv *p);
/* Grow (szNew>0) or adopt another process's size (szNew==0).  Called with
** the gate NOT held; takes it exclusively. */
LJ_PRIVATE int ljEnvResize(LjEnv *p, i64 szNew);

/* Open again an environment LMDB marked failed (MDB_PANIC) -- gate NOT
** held; takes it exclusively.  0 when the environment works (again). */
LJ_PRIVATE int ljEnvReopen(LjEnv *pEnv);
/* Clear the reader slots of dead processes; returns how many (env.c). */
LJ_PRIVATE int ljReaderCheck(LjEnv *p);
/* How often the writer clears dead processes' reader slots. */
#define LJ_READER_CHECK_US 1000000
/* Track an open read transaction; age of the oldest one (0 if none). */
LJ_PRIVATE void ljReaderTrack(LjEnv *p, LjReaderSlot *pSlot);
LJ_PRIVATE void ljReaderUntrack(LjEnv *p, LjReaderSlot *pSlot);
LJ_PRIVATE i64 ljOldestReaderUs(LjEnv *p);
/* The oldest read transaction of any process (LMDB's reader table) and
** the bytes it keeps LMDB from reusing. */
typedef struct LjOldReader LjOldReader;
struct LjOldReader {
  int bFound;       /* any reader at all (the fields below are set) */
  int nReaders;     /* active readers, every process */
  int pid;          /* the oldest one's process */
  int bThisProcess; /* ... is this one */
  u64 txnid;        /* its snapshot */
  u64 ageTxns;      /* commits since its snapshot */
  i64 nPinned;      /* bytes freed since, not reusable while it lives */
};
LJ_PRIVATE int ljOldestReaderAll(LjEnv *p, LjOldReader *pOut);

/* Begin a read transaction.  Called with the gate held; on MDB_MAP_RESIZED
** it leaves the gate, adopts the new size and re-enters. */
LJ_PRIVATE int ljReadBegin(LjEnv *p, MDB_txn **ppTxn);

/**************************************************************************
** Staging (stage.c): batches spread over many actors are put whole into
** the stage db and merged into runs later; what that means for readers
** is explained at the top of stage.c.
*/
/* A batch is staged when it has at least LJ_STAGE_ACTORS actors and fewer
** than LJ_STAGE_DENSITY events per actor; the stage is merged once it
** holds any of the LJ_STAGE_MERGE_* amounts, when the writer idles for
** LJ_STAGE_IDLE_US, and when the store closes.  Every staged batch costs
** readers a binary search, hence the cap on batches.  Measured at 100 B
** payloads and 1,000-event batches (bench/README.md): a commit of durability
** none or meta waits for the fdatasync of every page it wrote, so a batch
** of 10 events per actor over 100 actors, written directly (a leaf page per
** actor), cost up to 3 times as long as staged (one sequential value) and
** merged, when flushes were slow (the same when fast); and its short
** runs left an actor's history on scattered, two-thirds-full leaf pages
** (full scans and replays touch every one).  A build may
** override them (make test-staged stages every batch and merges often,
** to run the whole suite against the stage). */
#ifndef LJ_STAGE_ACTORS
#define LJ_STAGE_ACTORS 64
#endif
#ifndef LJ_STAGE_DENSITY
#define LJ_STAGE_DENSITY 16
#endif
/* A batch the rules above would not stage (fewer than LJ_STAGE_ACTORS
** actors, or LJ_STAGE_DENSITY events per actor or more) of at least this
** many events, behind a stage of at most LJ_STAGE_FLUSH_EVENTS, merges
** the stage and goes direct (ljStageChoose). */
#ifndef LJ_STAGE_FLUSH_BATCH
#define LJ_STAGE_FLUSH_BATCH 256
#endif
#ifndef LJ_STAGE_MERGE_EVENTS
#define LJ_STAGE_MERGE_EVENTS 524288
#endif
#ifndef LJ_STAGE_MERGE_BATCHES
#define LJ_STAGE_MERGE_BATCHES 512
#endif
#ifndef LJ_STAGE_MERGE_BYTES
#define LJ_STAGE_MERGE_BYTES (128 << 20)
#endif
/* A stage of at most this many events is merged at once when a large
** dense batch comes (which then goes direct); a larger one takes it. */
#ifndef LJ_STAGE_FLUSH_EVENTS
#define LJ_STAGE_FLUSH_EVENTS 65536
#endif
#ifndef LJ_STAGE_IDLE_US
#define LJ_STAGE_IDLE_US 200000
#endif

/* The writer's view of the stage (writer thread only; valid while the
** writer's cached tail is, see put.c ljPutLoadTail). */
typedef struct LjStage LjStage;
struct LjStage {
  u64 nEnt;           /* staged batches */
  u64 nEv;            /* ... their events */
  u64 nBytes;         /* ... their bytes */
  i64 usNoMergeUntil; /* after a failed merge: not before this */
};

/* Writer side.  ljStageLoad reads the totals from the store.
** ljStageChoose decides whether the sorted batch of n events over nActor
** actors is staged (*pbStage), merging a small stage first when the
** batch goes direct.  ljStagePut puts the batch (apSort, in key order,
** first pos pos0).  ljStageMerge merges the oldest batches, up to nBudget
** events (at least one batch).  ljStageDue: big enough to merge. */
LJ_PRIVATE int ljStageLoad(LjEnv *p, MDB_txn *txn, LjStage *pSt);
LJ_PRIVATE int ljStageChoose(LjEnv *p, LjStage *pSt, MDB_txn *txn, size_t n,
                             size_t nActor, int *pbStage);
LJ_PRIVATE int ljStagePut(LjEnv *p, LjStage *pSt, MDB_txn *txn,
                          LjEvent *const *apSort, size_t n, size_t nActor,
                          u64 pos0);
LJ_PRIVATE int ljStageMerge(LjEnv *p, LjStage *pSt, MDB_txn *txn, u64 nBudget);
LJ_PRIVATE int ljStageDue(const LjStage *pSt);

/* Runs written in key order (the merge, compaction): records are gathered
** into runs of up to nMaxEv events and nMax bytes of value, put with
** cursor c on the events db.  Set c, nMax, nMaxEv, num and seq0 (the key of the
** first run), and numLast/seqLast (the end of the run before, 0 when
** none: a run is refused with MDB_CORRUPTED if it would overlap it);
** ljRunOutAdd takes the records of a run (MDB_CORRUPTED if malformed),
** ljRunOutFlush puts what is gathered.  The records must stay where
** they are until flushed. */
typedef struct LjRunOut LjRunOut;
struct LjRunOut {
  MDB_cursor *c;
  u64 num, seq0; /* key of the run */
  u64 numLast;   /* actor of the last run put (0: none yet) */
  u64 seqLast;   /* ... and the seq after its last event */
  u32 n;
  size_t nByte;
  size_t nMax; /* largest run value */
  u32 nMaxEv;  /* most events in a run (LJ_RUN_MAX, LJ_COMPACT_RUN_MAX) */
  const u8 *apRec[LJ_COMPACT_RUN_MAX];
  u32 anRec[LJ_COMPACT_RUN_MAX];
};
LJ_PRIVATE int ljRunOutAdd(LjRunOut *r, const MDB_val *pRun);
LJ_PRIVATE int ljRunOutFlush(LjRunOut *r);

/**************************************************************************
** Compaction (compact.c): an idle writer rewrites an actor's small runs
** that lie in many places of the file as a few large neighbouring runs;
** why and when at the top of compact.c.
*/
#ifndef LJ_COMPACT_RUN_PAGES
#define LJ_COMPACT_RUN_PAGES 64 /* pages of a compacted run, at most */
#endif
#ifndef LJ_COMPACT_EXTENTS
#define LJ_COMPACT_EXTENTS 4 /* places a stretch lies in to be rewritten */
#endif
#ifndef LJ_COMPACT_STEP_BYTES
#define LJ_COMPACT_STEP_BYTES (4 << 20) /* most bytes a step rewrites */
#endif
#ifndef LJ_COMPACT_STEP_RUNS
#define LJ_COMPACT_STEP_RUNS 65536 /* most runs a step looks at */
#endif
#ifndef LJ_COMPACT_BACKOFF_US
#define LJ_COMPACT_BACKOFF_US 300000000 /* most wait after failed steps */
#endif
#ifndef LJ_COMPACT_IDLE_US
#define LJ_COMPACT_IDLE_US LJ_STAGE_IDLE_US /* idle this long first */
#endif
#ifndef LJ_COMPACT_LIST_MAX
#define LJ_COMPACT_LIST_MAX (1 << 20) /* actors listed; more: a full sweep */
#endif
/* The sweep's state (writer thread only).  A process's first sweep walks
** every actor's runs; later ones only those of the actors this process
** wrote since the sweep before began (listed as it commits), unless more
** than LJ_COMPACT_LIST_MAX were. */
typedef struct LjCompact LjCompact;
struct LjCompact {
  u64 num, seq;         /* where the sweep goes on (num 0: none under way) */
  u64 numNext, seqNext; /* ... after the step being committed */
  int bDue;             /* events were written since the sweep began */
  u64 *aList;           /* actors written since the sweep began (any order, */
  size_t nList, nListAlloc; /* each once: LjActor.listGen) */
  int bListAll;             /* ... too many, or none listed yet: every actor */
  u32 listGen;              /* LjActor.listGen equal to it: in aList */
  u64 *aSweep; /* the sweep's actors, sorted (bSweepAll: every one) */
  size_t nSweep, nSweepAlloc;
  int bSweepAll;
  u64 nStepRuns;   /* runs the step rewrote */
  i64 usNoneUntil; /* after a failed step: none before this */
  i64 usBackoff;   /* ... how long the last wait was (0: no failure) */
};
/* One step of the sweep at (pC->num, pC->seq) in write transaction txn:
** sets pC->numNext/seqNext and nStepRuns, and *pbWrote when it rewrote
** anything.  With bLook, in any transaction: looks only, and sets
** *pbWrote and numNext/seqNext to the first stretch a step would
** rewrite (else numNext/seqNext to where the next look goes on). */
LJ_PRIVATE int ljCompactStep(LjEnv *pEnv, LjCompact *pC, MDB_txn *txn,
                             int bLook, int *pbWrote);
/* List actor num as written (its runs may need compacting); begin a
** sweep over what is listed (0 when there is nothing to sweep); free the
** lists. */
LJ_PRIVATE void ljCompactNote(LjCompact *pC, u64 num);
LJ_PRIVATE int ljCompactBegin(LjCompact *pC);
LJ_PRIVATE void ljCompactFree(LjCompact *pC);

/* Reader side (also used by the writer inside its transaction). */
LJ_PRIVATE u32 ljStageActors(const MDB_val *v);
LJ_PRIVATE u32 ljStageEvents(const MDB_val *v);
LJ_PRIVATE int ljStageDir(const MDB_val *v, u32 i, u64 *pNum, u64 *pSeq0,
                          MDB_val *pRun);
LJ_PRIVATE int ljStageFind(const MDB_val *v, u64 num, u32 *pi);
LJ_PRIVATE int ljStageRecord(MDB_cursor *c, u64 pos, u64 num, u64 seq,
                             MDB_val *pRec);
/* How much is staged in a snapshot: batches, events, bytes. */
LJ_PRIVATE int ljStageTotals(LjEnv *p, MDB_txn *txn, u64 *pnBatch, u64 *pnEv,
                             u64 *pnByte);

/* Read an actor's state from a snapshot: number (0 if unknown), highest
** seq (max of truncation floor and last event, staged or not; pHighest
** may be NULL when only the number is wanted).  Here because the last
** event may be staged. */
LJ_PRIVATE int ljActorLoad(LjEnv *p, MDB_txn *txn, const u8 *zActor, int nActor,
                           u64 *pNum, u64 *pHighest, u64 *pFloor);

/**************************************************************************
** Read interface of the store (scan.c).  The only reader of events: the
** SQL layer, and every later reader of the store, walks it through here.
*/
enum { LJ_SCAN_FULL = 0, LJ_SCAN_ACTOR, LJ_SCAN_POS, LJ_SCAN_TS, LJ_SCAN_TAG };

typedef struct LjScan LjScan;
typedef struct LjScanSpec LjScanSpec;
struct LjScanSpec {
  int ePlan;        /* LJ_SCAN_* */
  int bDesc;        /* walk backwards */
  const u8 *aActor; /* LJ_SCAN_ACTOR: a valid actor id */
  int nActor;
  const u8 *const *aaTag; /* LJ_SCAN_TAG: the tags (any order, repeats */
  const int *anTag;       /*   allowed), their lengths */
  int nTag;
  i64 lo, hi; /* inclusive bounds: seq (actor), pos (pos,
              ** tag) or ts (ts); full scans take all */
  i64 nLimit; /* rows the caller expects to read (-1: not
              ** known): sizes the first fill only, so a
              ** scan still goes on if more are read */
};

/* One row of a scan: its actor id, seq and raw record, valid until the
** next ljScanNext (or longer, see ljScanKeep). */
typedef struct LjRow LjRow;
struct LjRow {
  const char *zActor; /* NUL-terminated (ids hold no NUL) */
  int nActor;
  u64 seq;
  const u8 *aRec;
  u32 nRec;
};

LJ_PRIVATE int ljScanNew(LjEnv *pEnv, LjScan **pp);
/* Start (or restart) the plan.  The first start takes the scan's snapshot,
** after waiting up to usTimeout for this process's queued appends (with
** usTimeout < 0, at once: what is committed, as the shipper reads). */
LJ_PRIVATE int ljScanStart(LjScan *p, const LjScanSpec *pSpec, i64 usTimeout,
                           char **pzErr);
LJ_PRIVATE int ljScanNext(LjScan *p, char **pzErr);
LJ_PRIVATE int ljScanEof(const LjScan *p);
LJ_PRIVATE const LjRow *ljScanRow(const LjScan *p);
/* The current row's record, decoded once (and decompressed). */
LJ_PRIVATE int ljScanDecode(LjScan *p, const LjRec **ppRec);
/* The current row's payload alone (class, bytes): cheaper than decoding
** the record when it is the only column read. */
LJ_PRIVATE int ljScanPayload(LjScan *p, u8 *pe, const u8 **pa, int *pn);
/* For bytes a of the current row the caller keeps past the next row: a
** destructor to call when done with them, or NULL if they must be copied. */
LJ_PRIVATE void (*ljScanKeep(LjScan *p, const void *a))(void *);
LJ_PRIVATE void ljScanFree(LjScan *p);

/* An entry of the truncation log (trunclog.c): the truncation of actor
** zActor up to seq toSeq, committed when pos was the highest pos, the
** sub-th at that pos (from 1). */
#define LJ_TRUNCKEY 12 /* key of the log: pos u64 | ordinal u32 */
typedef struct LjTrunc LjTrunc;
struct LjTrunc {
  u64 pos;
  u32 sub;
  u64 toSeq;
  int nActor;
  char zActor[LJ_MAX_ACTOR_BYTES];
};
/* Up to nMax entries of the log after (pos, sub), in order, read in the
** scan's snapshot (taken now if the scan has none: what is committed).
** *pn gets how many. */
LJ_PRIVATE int ljScanTruncLog(LjScan *p, u64 pos, u32 sub, LjTrunc *a, int nMax,
                              int *pn, char **pzErr);

/**************************************************************************
** Read interface of the store, continued (snapread.c): snapshots and the
** actor registry.  Like a scan, a reader takes one read transaction at
** its first start, after this process's queued writes, keeps it until
** freed, and holds no lock between calls.
*/
typedef struct LjSnapScan LjSnapScan;
typedef struct LjSnapSpec LjSnapSpec;
struct LjSnapSpec {
  const u8 *aActor; /* one actor's snapshots (a valid actor id), or */
  int nActor;       /*   NULL: every snapshot, by actor number */
  i64 lo, hi;       /* inclusive seq bounds (one actor) */
  i64 tsLo, tsHi;   /* inclusive ts bounds (a filter) */
  int bDesc;        /* newest seq first (one actor) */
};
/* A snapshot: its actor, seq and decoded record (state in the payload
** fields), valid until the next ljSnapScanNext. */
typedef struct LjSnapRow LjSnapRow;
struct LjSnapRow {
  const char *zActor;
  int nActor;
  u64 seq;
  LjRec rec;
};
LJ_PRIVATE int ljSnapScanNew(LjEnv *pEnv, LjSnapScan **pp);
LJ_PRIVATE int ljSnapScanStart(LjSnapScan *p, const LjSnapSpec *pSpec,
                               i64 usTimeout, char **pzErr);
LJ_PRIVATE int ljSnapScanNext(LjSnapScan *p, char **pzErr);
LJ_PRIVATE int ljSnapScanEof(const LjSnapScan *p);
LJ_PRIVATE const LjSnapRow *ljSnapScanRow(const LjSnapScan *p);
LJ_PRIVATE void ljSnapScanFree(LjSnapScan *p);

/* Actors in actor id order (memcmp, SQLite's BINARY), optionally between
** bounds, with what the registry and one seek per index tell of each. */
typedef struct LjActorScan LjActorScan;
typedef struct LjActorSpec LjActorSpec;
struct LjActorSpec {
  const u8 *aLo;
  int nLo;
  int bLoGt; /* lower bound (NULL: none), strict */
  const u8 *aHi;
  int nHi;
  int bHiLt; /* upper bound (NULL: none), strict */
  int bDesc;
};
typedef struct LjActorRow LjActorRow;
struct LjActorRow {
  const char *zActor;
  int nActor;
  u64 highest; /* highest seq ever assigned (survives truncation) */
  u64 nEvents; /* events stored */
  i64 first;   /* seq of the oldest stored event, -1: none */
  i64 lastTs;  /* ts of the newest stored event, -1: none */
  i64 snapSeq; /* seq of the newest snapshot, -1: none */
};
LJ_PRIVATE int ljActorScanNew(LjEnv *pEnv, LjActorScan **pp);
LJ_PRIVATE int ljActorScanStart(LjActorScan *p, const LjActorSpec *pSpec,
                                i64 usTimeout, char **pzErr);
LJ_PRIVATE int ljActorScanNext(LjActorScan *p, char **pzErr);
LJ_PRIVATE int ljActorScanEof(const LjActorScan *p);
LJ_PRIVATE const LjActorRow *ljActorScanRow(const LjActorScan *p);
LJ_PRIVATE void ljActorScanFree(LjActorScan *p);

/**************************************************************************
** Verification (verify.c) and backup (backup.c): store-side walks behind
** journal_verify and journal_backup.
*/
/* Check the whole store in one read transaction; *pzJson gets the report
** ({"ok":true,...} or {"ok":false,"problems":[...],...}, sqlite3_malloc'd).
** Damage is reported in the JSON; an error return means the walk itself
** failed. */
LJ_PRIVATE int ljVerify(LjEnv *pEnv, char **pzJson, char **pzErr);
/* Copy the store into new directory zDest (compacted if bCompact);
** *pnBytes gets the copy's size. */
LJ_PRIVATE int ljBackup(LjEnv *pEnv, const char *zDest, int bCompact,
                        i64 *pnBytes, char **pzErr);

/**************************************************************************
** Writer (writer.c)
*/

/*
** One event waiting to be written.  Allocated as one block with the
** request; aRec holds the encoded record with pos/ts to be stamped.
*/
struct LjEvent {
  const char *zActor; /* actor id, used by ljSubmit when pActor is NULL */
  int nActor;
  LjActor *pActor; /* cache entry of the actor (never freed before env) */
  u32 epoch;       /* pActor->epoch when the seq was reserved */
  u64 seq;         /* reserved seq */
  i64 tsGiven;     /* explicit ts, or -1 */
  u8 *aRec;        /* encoded record */
  u32 nRec;
  u64 pos; /* assigned by the writer */
  /* journal_restore: the event may be above its actor's next seq (the
  ** source had truncated the ones between when it shipped; restore.c
  ** truncates the actor first when it has events). */
  int bRestore;
};

enum {
  LJ_REQ_EVENTS = 1,
  LJ_REQ_SYNC = 2,
  LJ_REQ_TRUNCATE = 3,
  LJ_REQ_MERGE = 4 /* the writer's own: merge the stage */,
  LJ_REQ_SNAPSHOT = 5,
  LJ_REQ_SNAPDEL = 6,
  LJ_REQ_COMPACT = 7 /* the writer's own: a compaction step */
};

typedef struct LjReq LjReq;
struct LjReq {
  LjReq *pNext; /* queue link (writer mutex) */
  int eType;    /* LJ_REQ_* */
  u64 iTicket;  /* position in the queue order */
  LjClient *pClient;
  int eDurability; /* LJ_DUR_* required by the submitter */
  int bWait;       /* the submitter waits: commit without delay */
  int bTaken;      /* in the writer's batch: too late to withdraw */
  int bWithdrawn;  /* its submitter timed out first: write nothing */
  int bUnreserved; /* ... and undid its seq reservations */
  int bPooled;     /* a recycled fixed-size block (writer.c) */
  int nEvent;
  u64 nByte; /* record bytes */
  LjEvent *aEvent;
  i64 usQueued; /* when queued, for latency */
  /* LJ_REQ_TRUNCATE: the actor (aEvent[0].zActor) and the last seq to
  ** delete (-1: all).  LJ_REQ_SNAPDEL: the actor likewise, and the
  ** inclusive seq and ts ranges of the snapshots to delete. */
  i64 iToSeq;
  i64 iToTs;
  i64 iFromSeq, iFromTs;
  /* LJ_REQ_SNAPSHOT: aEvent[0] is the snapshot (actor, seq, record;
  ** nEvent is 0: it appends no event); nKeep the snapshots to keep of
  ** the actor afterwards (0: all). */
  int nKeep;
  /* Outcome, set by the writer (writer mutex) for waiting submitters. */
  i64 nResult; /* rows deleted by a truncation or snapshot delete */
  int bDone;
  int rc;
  char *zErr;
};

/*
** A submitter: one journal table of one connection.  Errors of its async
** appends are parked here until journal_sync (or a COMMIT) reports them.
** Guarded by the writer mutex.
*/
struct LjClient {
  LjEnv *pEnv;
  int eDurability;
  int eMode;
  u64 iLastTicket; /* last ticket submitted */
  u64 iErrTicket;  /* ticket of the first unreported failure, 0 if none */
  int errRc;
  char *zErr;
  LjClient *pNextOrphan; /* LjWriter.pOrphans (mutex) */
  /* Async appends and snapshots failed since the last journal_sync (they
  ** are in journal_errors, but for nLostDropped of them). */
  i64 nLostEvents, nLostSnapshots, nLostDropped;
};

/* Actor cache entry, one per actor this process has appended to. */
struct LjActor {
  LjActor *pHashNext; /* writer mutex */
  u64 reserved;       /* highest seq handed out, incl. queued (writer mutex) */
  u32 epoch; /* bumped on a conflict (writer, under the writer mutex) */
  /* Fields below are owned by the writer thread alone. */
  u32 wGen;      /* num/committed valid when equal to writer's */
  u64 num;       /* actor number, 0 = not yet known/created */
  u64 committed; /* highest committed seq */
  u32 txnSerial; /* txnHighest valid in this write transaction */
  u64 txnHighest;
  u32 sortSerial; /* iSort valid in this write transaction */
  u32 iSort;      /* events in the batch, then placement index */
  u32 listGen;    /* in the compaction list when LjCompact.listGen */
  int nActor;
  char zActor[1]; /* actor id bytes (not terminated) */
};

/* The accepted events of a batch (requests of events that have not
** failed), in queue order:
**   for (e = ljEvFirst(&it, aReq, nReq); e; e = ljEvNext(&it)) ... */
typedef struct LjEvIter LjEvIter;
struct LjEvIter {
  LjReq **aReq;
  int nReq;
  int r, j; /* next: event j of request r */
};
LJ_PRIVATE LjEvent *ljEvFirst(LjEvIter *it, LjReq **aReq, int nReq);
LJ_PRIVATE LjEvent *ljEvNext(LjEvIter *it);

/**************************************************************************
** Writing a batch (put.c).  All of it runs on the writer thread, inside
** its write transaction.
*/
typedef struct LjPut LjPut;
struct LjPut {
  LjEnv *pEnv;
  u32 txnSerial;    /* bumped per write transaction */
  int bTail;        /* the fields below are valid */
  u64 tailPos;      /* last pos assigned */
  i64 tailTs;       /* its ts */
  u64 nextNum;      /* next actor number */
  LjStage stage;    /* the stage's totals */
  LjEvent **apSort; /* scratch for key ordering */
  LjActor **apSortActor;
  size_t nSortAlloc;
};
/* Load the tail when not valid (bTail); LJ_MDB_FORMAT when the stored
** format is not this build's (a newer build upgraded the store). */
#define LJ_MDB_FORMAT MDB_VERSION_MISMATCH
LJ_PRIVATE int ljPutLoadTail(LjPut *pPut, MDB_txn *txn);
/* The store's last pos and its ts (0, 0 if none). */
LJ_PRIVATE int ljPutLastPos(LjEnv *pEnv, MDB_txn *txn, u64 *pPos, i64 *pTs);
/* Put the nEv accepted events of a batch (pos and ts stamped): new actor
** numbers, runs or a staged batch, manifest, tag index entries. */
LJ_PRIVATE int ljPutEvents(LjPut *pPut, MDB_txn *txn, LjReq **aReq, int nReq,
                           size_t nEv);
/* The truncation log (trunclog.c): append the truncation of an actor up
** to toSeq, committed at pos (the highest pos assigned); read up to nMax
** entries after (pos, sub).  Both within the caller's transaction. */
LJ_PRIVATE int ljTruncLogPut(LjEnv *pEnv, MDB_txn *txn, u64 pos,
                             const u8 *aActor, int nActor, u64 toSeq);
LJ_PRIVATE int ljTruncLogRead(LjEnv *pEnv, MDB_txn *txn, u64 pos, u32 sub,
                              LjTrunc *a, int nMax, int *pn);
/* Carry out truncation request p (the stage must be merged);
** *pbWrote is set when anything was written. */
LJ_PRIVATE int ljPutTruncate(LjPut *pPut, MDB_txn *txn, LjReq *p, int *pbWrote);
/* Record the highest pos assigned (meta db): also a write that changes
** nothing else, for a commit of its own (a new meta page). */
LJ_PRIVATE int ljPutMaxPos(LjPut *pPut, MDB_txn *txn);
/* Put snapshot request p (its actor's number known, 0 if new), stamped
** with ts, then keep only the newest p->nKeep of the actor's snapshots. */
LJ_PRIVATE int ljPutSnapshot(LjPut *pPut, MDB_txn *txn, LjReq *p, i64 ts);
/* Delete the snapshots request p names; p->nResult gets the count. */
LJ_PRIVATE int ljPutSnapshotDelete(LjPut *pPut, MDB_txn *txn, LjReq *p);
LJ_PRIVATE void ljPutFree(LjPut *pPut);

/**************************************************************************
** Writer (writer.c), continued: the writer of one environment.  Locking:
** the writer mutex (LjWriter.mutex) guards the fields marked (mutex); the
** fields marked (writer) belong to the writer thread alone.
*/
/* Wait states of the writer thread, so submitters signal only when it
** matters (a signal per append would cost a syscall). */
enum { LJ_W_BUSY = 0, LJ_W_IDLE = 1, LJ_W_GATHER = 2, LJ_W_GROUP = 3 };
enum { LJ_W_RUNNING = 0, LJ_W_STOPPED = 1, LJ_W_FAILED = 2 };

struct LjWriter {
  LjEnv *pEnv;
  pthread_t thread; /* the writer thread (see WRITER_ONLY) */
  int bThread;
  pthread_mutex_t mutex;
  pthread_cond_t condWork; /* the writer waits here */
  pthread_cond_t condDone; /* submitters wait here for queue space */
  /* (mutex) */
  LjReq *pHead, *pTail; /* queue */
  i64 nQueued;          /* events queued */
  int eWait;            /* LJ_W_BUSY ... */
  int bStop;
  int nSpaceWait;   /* submitters waiting for queue space */
  u32 doneSeq;      /* futex: bumped when tickets are done (atomic) */
  int nDoneWaiters; /* threads in waitTicket (atomic) */
  u64 iFlushTicket; /* commit up to here without gathering delay */
  int eState;       /* LJ_W_RUNNING ... */
  char *zLastError;
  LjActor **aHash; /* actor cache */
  u32 nHash;
  u32 nActor;
  /* published with atomics (written under mutex) */
  u64 iNextTicket; /* last ticket handed out */
  u64 iDoneTicket; /* every ticket <= this is processed */
  i64 lastPos;     /* last committed pos */
  i64 durablePos;  /* last pos known synced per durability */
  /* (writer) */
  u32 wGen;          /* LjActor.wGen valid when equal */
  LjPut put;         /* the write transaction's state (put.c) */
  LjCompact compact; /* the compaction sweep (compact.c) */
  size_t lastTxnId;  /* id of our last commit */
  int eFlags;        /* durability the env flags are set for */
  int bUnsynced;     /* commits since the last env sync */
  i64 usLastSync;
  i64 usLastReaderCheck; /* ljReaderCheck last run (writer thread) */
  int nLastClients;      /* distinct submitters of recent batches */
  i64 usLastCommit;      /* how long the last commit took */
  size_t txnIdDoubt;     /* commits up to this one may not be durable: an
                         ** fsync failed after it (0: none; writer.c) */
  int mrcSynced;         /* the env sync after the batch just committed
                         ** failed with this (for batchFinish) */
  LjReq *pPool;          /* recycled requests (mutex) */
  int nPool;
  /* Stopping and stuck requests (mutex). */
  i64 usTakenQueued;  /* usQueued of the batch's first request, 0 if idle */
  int bExited;        /* the thread is done with the environment */
  int bDetached;      /* ljWriterStop gave up: the thread frees all */
  LjClient *pOrphans; /* closed clients with requests still queued */
};

/* Publish the gauges metrics.c reports (writer mutex held, or before
** the writer thread starts). */
static inline void ljWriterPublish(LjWriter *w) {
  LjMetrics *m = &w->pEnv->m;
  __atomic_store_n(&m->nQueued, w->nQueued, __ATOMIC_RELAXED);
  __atomic_store_n(&m->lastPos, w->lastPos, __ATOMIC_RELAXED);
  __atomic_store_n(&m->durablePos, w->durablePos, __ATOMIC_RELAXED);
}
/*
** Requests of up to LJ_POOL_BLOCK bytes (a single small append) are
** recycled through a free list (LjWriter.pPool) instead of malloc/free:
** the submitting thread would allocate and the writer thread free, which
** makes the allocator move memory between threads on every append.
*/
#define LJ_POOL_BLOCK 512
#define LJ_POOL_MAX   8192
/* Release a request (writer mutex held). */
LJ_PRIVATE void ljReqFree(LjWriter *w, LjReq *p);

LJ_PRIVATE int ljWriterStart(LjEnv *pEnv, char **pzErr);
/* Stop the writer: it drains its queue and merges the stage.  Waits up to
** usTimeout (-1: no bound), giving up at once when a request has already
** waited that long (the writer is stuck).  Returns 1 when it stopped (and
** is freed); 0 when it was left running, detached: it then frees itself
** and calls ljEnvReap when done. */
LJ_PRIVATE int ljWriterStop(LjEnv *pEnv, i64 usTimeout);
/* When the oldest request in flight or queued was queued (ljNowUs), 0 if
** none (writer mutex held). */
LJ_PRIVATE i64 ljWriterOldestReq(LjWriter *w);

/**************************************************************************
** Shipping to Kafka (ship.c): a background thread per environment that
** publishes committed events in pos order; the guarantee is stated at the
** top of ship.c.  Started after the writer, stopped before it.
*/
LJ_PRIVATE int ljShipStart(LjEnv *pEnv, char **pzErr);
LJ_PRIVATE void ljShipStop(LjEnv *pEnv);
/* Kafka header names of a shipped event, shared with restore.c. */
#define LJ_HDR_POS   "pos"
#define LJ_HDR_SEQ   "seq"
#define LJ_HDR_TS    "ts"
#define LJ_HDR_TYPE  "type"
#define LJ_HDR_META  "meta"
#define LJ_HDR_TAGS  "tags"
#define LJ_HDR_CLASS "class" /* "<payload class><meta class>", digits */
#define LJ_HDR_STORE "store"
/* A truncation marker (no class header, NULL value): op = "truncate",
** seq = the last seq deleted, sub = its ordinal at pos (ship.c). */
#define LJ_HDR_OP      "op"
#define LJ_HDR_SUB     "sub"
#define LJ_OP_TRUNCATE "truncate"

/**************************************************************************
** Submitting (submit.c): the SQL threads' side of the writer.
*/
/* Find (or load from the store and insert) the cache entry of an actor.
** Takes the writer mutex itself. */
LJ_PRIVATE int ljActorGet(LjEnv *pEnv, const char *zActor, int nActor,
                          LjActor **ppActor, char **pzErr);
/* The highest seq handed out to an actor of the cache (queued included). */
LJ_PRIVATE u64 ljActorReserved(LjEnv *pEnv, LjActor *pActor);

/* Client lifetime. */
LJ_PRIVATE LjClient *ljClientNew(LjEnv *pEnv, int eDurability, int eMode);
/* Flushes its appends first, waiting while the writer makes progress, up
** to ljWaitBound past the oldest request's queueing: a stuck writer's
** client is handed to the writer (freed when its requests are done). */
LJ_PRIVATE void ljClientFree(LjClient *p);
/* Free the closed clients whose requests are all done (mutex held). */
LJ_PRIVATE void ljClientReap(LjWriter *w, int bAll);

/*
** Reserve seqs for and queue nEvent events of one request.  Each
** aEvent[i].pActor must be set; aEvent[i].seq is 0 (assign next) or an
** expected seq that must be exactly next (else SQLITE_CONSTRAINT).
** The events and records are copied.  On success *piSeqLast is the last
** seq assigned to aEvent[0]'s actor... (each aEvent[i].seq is filled in).
** bWait: wait until committed and durable, return its outcome.
** Blocks up to sync_timeout when the queue is full (SQLITE_BUSY after).
*/
LJ_PRIVATE int ljSubmit(LjClient *pClient, LjEvent *aEvent, int nEvent,
                        int bWait, i64 usTimeout, char **pzErr);

/* Wait until everything submitted before the call is processed; with
** bDurable also synced to disk.  Reports the client's parked error: how
** many of its async appends failed since the last ljSync, and the first
** failure (zTable, the table's name as the caller gave it, names it in
** the message).  *pDurablePos receives the last committed pos. */
LJ_PRIVATE int ljSync(LjClient *pClient, int bDurable, i64 usTimeout,
                      const char *zTable, i64 *pDurablePos, char **pzErr);

/* Delete an actor's events with seq <= iToSeq (-1: all); its highest seq
** is kept.  Waits for the commit; *pnDeleted gets the count. */
LJ_PRIVATE int ljTruncate(LjClient *pClient, const char *zActor, int nActor,
                          i64 iToSeq, i64 usTimeout, i64 *pnDeleted,
                          char **pzErr);

/* Store a snapshot (pEv: zActor, nActor, seq, the record with pos and
** ts left to the writer), keeping the newest nKeep of the actor's (0:
** all).  bWait: wait for the commit (and durability) and return its
** outcome; else it is queued and journal_sync reports a failure. */
LJ_PRIVATE int ljSnapshotSubmit(LjClient *pClient, const LjEvent *pEv,
                                int nKeep, int bWait, i64 usTimeout,
                                char **pzErr);

/* Delete an actor's snapshots with seq in aSeq[0..1] and ts in
** aTs[0..1] (inclusive).  Waits for the commit; *pnDeleted gets the
** count. */
LJ_PRIVATE int ljSnapshotDelete(LjClient *pClient, const char *zActor,
                                int nActor, const i64 aSeq[2], const i64 aTs[2],
                                i64 usTimeout, i64 *pnDeleted, char **pzErr);

/* Wait until everything this process queued before the call is committed
** (read-your-writes for a new snapshot).  No disk sync. */
LJ_PRIVATE int ljFlushForRead(LjEnv *pEnv, i64 usTimeout);

/* Process's view of an actor's highest seq (including queued). */
LJ_PRIVATE int ljHighestSeq(LjEnv *pEnv, const char *zActor, int nActor,
                            i64 *piSeq, char **pzErr);

/* Health snapshot of the writer, for journal_health. */
typedef struct LjWriterInfo LjWriterInfo;
struct LjWriterInfo {
  const char *zState; /* "running", "stopped", "failed" */
  i64 nQueue;
  i64 usOldestReq; /* age of the oldest request in flight or queued */
  i64 lastPos;
  i64 durablePos;
  char *zLastError; /* sqlite3_malloc'd copy or NULL */
};
LJ_PRIVATE void ljWriterInfo(LjEnv *pEnv, LjWriterInfo *p);

/**************************************************************************
** SQL layer (lmdbjournal.c, conn.c, journal_table.c, table_write.c,
** functions.c, tvf.c)
*/
typedef struct LjConn LjConn;
typedef struct LjTable LjTable;
typedef struct JtPending JtPending;

typedef struct LjCheck LjCheck;

/* Per-connection state: the journal tables connected on it. */
struct LjConn {
  sqlite3 *db;
  int nRef;          /* the module registration + each table */
  LjConn *pNextConn; /* every registered connection (conn.c) */
  LjTable *pList;    /* connected tables */
  LjTable *pLast;    /* table the journal_* functions resolved last */
  char zLast[64];    /* ... from this argument text */
  u32 iGen;          /* moves when a table disconnects or is renamed */
  LjTable *pPlanned; /* table xBestIndex planned last (conn.c resolves) */
  LjCheck *pCheck;   /* schema checks, one per schema name (conn.c) */
  u32 iEpochSeq;     /* last epoch handed out by a schema check */
  int nChecking;     /* a schema check is stepping */
};

/* One lmdb_journal table on one connection. */
struct LjTable {
  sqlite3_vtab base; /* must be first */
  LjConn *pConn;
  LjTable *pNext; /* LjConn.pList */
  char *zDb;      /* schema name */
  char *zName;    /* table name */
  LjConfig cfg;   /* this table's options */
  LjEnv *pEnv;
  LjClient *pClient;
  JtPending *pPending; /* INSERTs of the open transaction */
  int bLocal;          /* temp or in-memory: only this connection changes
                       ** its schema */
  int bStale;          /* another table of this name is the current one */
  u32 iEpoch;          /* schema check epoch it was found current in */
};

/* Connections (conn.c): the one registered on a handle, if any. */
LJ_PRIVATE LjConn *ljConnFind(sqlite3 *db);
LJ_PRIVATE void ljConnAdd(LjConn *p);
LJ_PRIVATE void ljConnUnref(LjConn *p);
/* ljConnUnref as a module's destructor. */
LJ_PRIVATE void ljConnDestroy(void *p);
/* Registering failed part way: the connection state stops being found (a
** retry starts afresh) but is kept, as what was registered refers to it. */
LJ_PRIVATE void ljConnAbandon(LjConn *p);
LJ_PRIVATE void ljTableFree(LjTable *p);
/* SQLITE_OK, or SQLITE_MISUSE with *pzErr set when the table's store was
** opened by the parent of this process (fork): open a new connection. */
LJ_PRIVATE int ljTableUsable(const LjTable *p, char **pzErr);
/* Find the table named zName (optionally "schema.table") on db: the one
** the schema means now, even if another connection or process dropped
** and recreated it (see "Finding the table a statement means" in
** conn.c). */
LJ_PRIVATE int ljTableFind(LjConn *pConn, const char *zName, LjTable **pp,
                           char **pzErr);
/* Link a table just connected into its connection's list / take it out
** (xDisconnect, xDestroy). */
LJ_PRIVATE void ljTableLink(LjTable *p);
LJ_PRIVATE void ljTableUnlink(LjTable *p);
LJ_PRIVATE int ljRegisterTable(sqlite3 *db, LjConn *pConn);
LJ_PRIVATE int ljRegisterFunctions(sqlite3 *db, LjConn *pConn);
LJ_PRIVATE int ljRegisterTvfs(sqlite3 *db, LjConn *pConn);
/* journal_export and the value encoders of export and import (export.c). */
LJ_PRIVATE int ljRegisterExport(sqlite3 *db, LjConn *pConn);
/* journal_snapshots and journal_actors (snapshots_tvf.c). */
LJ_PRIVATE int ljRegisterSnapshotTvfs(sqlite3 *db, LjConn *pConn);
/* An SQL bound on an INTEGER column as an inclusive integer bound
** (journal_table.c); 0 when it can match nothing. */
LJ_PRIVATE int ljBoundValue(sqlite3_value *v, int bLower, int bStrict,
                            i64 *pOut);
/* journal_restore from a Kafka topic (restore.c). */
LJ_PRIVATE int ljRegisterRestore(sqlite3 *db, LjConn *pConn);
/* journal_errors and journal_errors_clear (errors.c). */
LJ_PRIVATE int ljRegisterErrors(sqlite3 *db, LjConn *pConn);

/* The journal table's columns, in declaration order (journal_table.c). */
enum {
  LJ_COL_ACTOR = 0,
  LJ_COL_SEQ,
  LJ_COL_POS,
  LJ_COL_TS,
  LJ_COL_TYPE,
  LJ_COL_PAYLOAD,
  LJ_COL_META,
  LJ_COL_TAGS,
  LJ_COL_TAG
};
/* The journal table's write methods (table_write.c): xUpdate buffers an
** INSERT in LjTable.pPending, xSync submits the buffer and waits for
** its commit, the others drop the buffer or the tail of a savepoint. */
LJ_PRIVATE int ljTableUpdate(sqlite3_vtab *pVtab, int argc,
                             sqlite3_value **argv, sqlite_int64 *pRowid);
LJ_PRIVATE int ljTableBegin(sqlite3_vtab *pVtab);
LJ_PRIVATE int ljTableSync(sqlite3_vtab *pVtab);
LJ_PRIVATE int ljTableCommit(sqlite3_vtab *pVtab);
LJ_PRIVATE int ljTableRollback(sqlite3_vtab *pVtab);
LJ_PRIVATE int ljTableSavepoint(sqlite3_vtab *pVtab, int iSave);
LJ_PRIVATE int ljTableRelease(sqlite3_vtab *pVtab, int iSave);
LJ_PRIVATE int ljTableRollbackTo(sqlite3_vtab *pVtab, int iSave);
LJ_PRIVATE void ljPendingFree(JtPending *p);

/* The collation of the journal table's tag column (journal_table.c). */
#define LJ_TAG_COLLATION "LJTEXT"
/* Apply TEXT affinity to a value compared with a TEXT column (numbers
** become text); SQLITE_MISMATCH when it equals no text (NULL, blob). */
LJ_PRIVATE int ljTextAffinity(sqlite3_value *v);
/* An eponymous table-valued function over a journal table (tvf.c,
** snapshots_tvf.c, export.c): declared with zSchema, whose hidden tbl
** column names the journal table; iVariant tells variants of one module
** apart.  Only one that shows no journal data (journal_metrics) is
** innocuous: the others, like the journal table, stay out of the views
** and triggers of an untrusted schema (PRAGMA trusted_schema=OFF). */
typedef struct LjTvfTab LjTvfTab;
struct LjTvfTab {
  sqlite3_vtab base; /* must be first */
  LjConn *pConn;
  int iVariant;
};
LJ_PRIVATE int ljTvfConnect(sqlite3 *db, void *pAux, const char *zSchema,
                            int iVariant, int bInnocuous,
                            sqlite3_vtab **ppVtab);
LJ_PRIVATE int ljTvfDisconnect(sqlite3_vtab *pVtab);
/* xBestIndex of such a function: the table name (column iCol) must be
** given as argv[0].  SQLITE_CONSTRAINT when it is given but not usable in
** this plan, SQLITE_ERROR naming function zFn when it is not given. */
LJ_PRIVATE int ljTvfTableArg(sqlite3_vtab *pVtab, sqlite3_index_info *p,
                             int iCol, const char *zFn);
/* A stored value of storage class eClass (LJ_VAL_*; numbers big-endian in
** a) as the function or column result; text and blobs are handed over
** with xDel (SQLITE_TRANSIENT to copy). */
LJ_PRIVATE void ljResultStored(sqlite3_context *ctx, u8 eClass, const u8 *a,
                               int n, void (*xDel)(void *));
/* Validate an actor id value (text, 1..400 bytes, UTF-8). */
LJ_PRIVATE int ljCheckActor(sqlite3_value *v, const char *zWhat,
                            const char **pz, int *pn, char **pzErr);
/* Build an event from SQL values; NULL values allowed for type, meta,
** tags.  The record goes into aBuf when it fits (else it is
** sqlite3_malloc'd: free pEv->aRec when it is not aBuf).  The actor is
** left for ljSubmit to resolve (pEv->pActor NULL). */
LJ_PRIVATE int ljEventFromValues(LjTable *pTab, const char *zActor, int nActor,
                                 sqlite3_value *pPayload, sqlite3_value *pType,
                                 sqlite3_value *pMeta, sqlite3_value *pTags,
                                 u8 *aBuf, size_t nBuf, LjEvent *pEv,
                                 char **pzErr);

#endif /* LMDBJOURNAL_INTERNAL_H */
