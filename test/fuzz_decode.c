/*
** fuzz_decode.c -- libFuzzer target for the decoders of stored values:
** records (ljRecDecode, ljRecCheck), runs (ljRunRecord), manifests
** (ljManiEntry), staged batches (ljStageDir, ljStageFind) and tags
** (ljTagsParse).  The first input byte picks the decoder; the rest is the
** value, copied into a buffer of exactly its size so that AddressSanitizer
** sees any read past it.
**
**   make fuzz                    build, write the seeds, run FUZZ_SECONDS
**
** Built with -DLJ_FUZZ_SEEDS instead, main() writes seed inputs into the
** directory given: values made by the real encoders (ljRecBuild,
** ljRecStamp, ljRunFill, the stage and manifest setters).
*/
#include "../ext/internal.h"

#include <stdio.h>
#include <stdlib.h>

enum { F_REC = 0, F_RUN, F_MANI, F_STAGE, F_TAGS, F_COUNT };

static int fuzzTag(void *pArg, const u8 *aTag, int nTag) {
  *(size_t *)pArg += (size_t)nTag + aTag[0];
  return 0;
}

/* Decode one record and touch every byte it hands out. */
static size_t fuzzRecord(const u8 *a, size_t n) {
  LjRec r;
  u8 *aBuf = 0;
  size_t nBuf = 0, x = (size_t)ljRecCheck(a, n);
  int rc = ljRecDecode(a, n, &r, &aBuf, &nBuf), rcP, nP = 0;
  const u8 *aP = 0;
  u8 eP = 0;
  /* The payload-only reader agrees with the whole decode. */
  rcP = ljRecPayload(a, n, &eP, &aP, &nP);
  if (rcP == SQLITE_OK && (rc != SQLITE_OK || eP != r.ePayload ||
                           aP != r.aPayload || nP != r.nPayload)) {
    abort();
  }
  if (rcP == SQLITE_CORRUPT && rc != SQLITE_CORRUPT) abort();
  if (rc == SQLITE_OK) {
    char *zErr = 0;
    for (int i = 0; i < r.nType; i++) x += r.aType[i];
    for (int i = 0; i < r.nMeta; i++) x += r.aMeta[i];
    for (int i = 0; i < r.nPayload; i++) x += r.aPayload[i];
    if (r.nTags)
      ljTagsParse((const char *)r.aTags, r.nTags, fuzzTag, &x, &zErr);
    sqlite3_free(zErr);
  }
  sqlite3_free(aBuf);
  return x;
}

static size_t fuzzRun(const u8 *a, size_t n) {
  u32 nRec = ljRunCount(a, n);
  size_t x = 0;
  for (u32 i = 0; i < nRec && i < 1024; i++) {
    const u8 *aRec;
    u32 nByte;
    if (ljRunRecord(a, n, i, &aRec, &nByte)) break;
    x += fuzzRecord(aRec, nByte);
  }
  return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *aIn, size_t nIn);
int LLVMFuzzerTestOneInput(const uint8_t *aIn, size_t nIn) {
  u8 *a;
  size_t n, x = 0;
  MDB_val v;
  if (nIn < 1) return 0;
  n = nIn - 1;
  a = malloc(n ? n : 1);
  if (a == 0) return 0;
  memcpy(a, aIn + 1, n);
  v.mv_data = a;
  v.mv_size = n;
  switch (aIn[0] % F_COUNT) {
    case F_REC: x = fuzzRecord(a, n); break;
    case F_RUN: x = fuzzRun(a, n); break;
    case F_MANI: {
      u64 num, seq;
      i64 ts;
      for (u32 i = 0; i <= ljManiCount(&v) && i < 1024; i++) {
        if (ljManiEntry(&v, i, &num, &seq, &ts) == 0) x += num + seq;
      }
      break;
    }
    case F_STAGE: {
      u32 nAct = ljStageActors(&v), i, j;
      u64 num, seq0;
      MDB_val run;
      x = ljStageEvents(&v);
      for (i = 0; i < nAct && i < 1024; i++) {
        if (ljStageDir(&v, i, &num, &seq0, &run)) break;
        x += fuzzRun(run.mv_data, run.mv_size);
        if (ljStageFind(&v, num, &j) == 0) x += j;
      }
      break;
    }
    default: {
      char *zErr = 0;
      ljTagsParse((const char *)a, (int)n, fuzzTag, &x, &zErr);
      sqlite3_free(zErr);
      break;
    }
  }
  free(a);
  return (int)(x & 0);
}

#ifdef LJ_FUZZ_SEEDS
static void seedWrite(const char *zDir, const char *zName, int eKind,
                      const u8 *a, size_t n) {
  char zPath[4096];
  FILE *f;
  u8 k = (u8)eKind;
  snprintf(zPath, sizeof(zPath), "%s/%s", zDir, zName);
  f = fopen(zPath, "wb");
  if (f == 0) {
    perror(zPath);
    exit(1);
  }
  fwrite(&k, 1, 1, f);
  fwrite(a, 1, n, f);
  fclose(f);
}

/* A record as the writer makes it: built, then stamped. */
static u8 *seedRecord(const char *zPayload, int eCodec, const char *zTags,
                      u64 pos, u32 *pn) {
  LjRecIn in;
  u8 *a;
  memset(&in, 0, sizeof(in));
  in.aType = (const u8 *)"Deposited";
  in.nType = 9;
  in.aTags = (const u8 *)zTags;
  in.nTags = zTags ? (int)strlen(zTags) : 0;
  in.eMeta = LJ_VAL_TEXT;
  in.aMeta = (const u8 *)"{\"by\":\"seed\"}";
  in.nMeta = 13;
  in.ePayload = LJ_VAL_TEXT;
  in.aPayload = (const u8 *)zPayload;
  in.nPayload = (int)strlen(zPayload);
  if (ljRecBuild(&in, eCodec, 16, 0, 0, &a, pn)) exit(1);
  ljRecStamp(a, *pn, pos, 1700000000000 + (i64)pos);
  return a;
}

int main(int argc, char **argv) {
  static const char zLong[] =
      "{\"amount\":100,\"note\":"
      "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}";
  LjEvent aEv[3], *apEv[3];
  u8 *aRun, aMani[3 * LJ_MANI_ENTRY], *aStage;
  size_t nRun, nStage;
  u32 n;
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 1;
  }
  memset(aEv, 0, sizeof(aEv));
  for (int i = 0; i < 3; i++) {
    int eCodec = i == 0 ? LJ_CODEC_NONE : i == 1 ? LJ_CODEC_LZ4 : LJ_CODEC_ZSTD;
    char zName[32];
    aEv[i].aRec = seedRecord(i ? zLong : "{\"amount\":100}", eCodec,
                             i == 2 ? "[\"order\",\"eu\",\"\\u00e9\"]" : 0,
                             (u64)i + 1, &n);
    aEv[i].nRec = n;
    apEv[i] = &aEv[i];
    snprintf(zName, sizeof(zName), "record-%d", i);
    seedWrite(argv[1], zName, F_REC, aEv[i].aRec, n);
  }
  nRun = ljRunSize(apEv, 3);
  aRun = malloc(nRun);
  ljRunFill(aRun, apEv, 3);
  seedWrite(argv[1], "run", F_RUN, aRun, nRun);
  for (u32 i = 0; i < 3; i++) ljManiSet(aMani, i, 1, i + 1, 1700000000000 + i);
  seedWrite(argv[1], "manifest", F_MANI, aMani, sizeof(aMani));
  /* A staged batch of two actors: the run above, then its first record. */
  nStage = ljStageBodyOff(2) + nRun + LJ_RUN_HEAD(1) + aEv[0].nRec;
  aStage = malloc(nStage);
  ljStageSetHead(aStage, 2, 4);
  ljStageSetDir(aStage, 0, 1, 1, (u32)nRun);
  ljStageSetDir(aStage, 1, 2, 1, (u32)(nRun + LJ_RUN_HEAD(1) + aEv[0].nRec));
  memcpy(aStage + ljStageBodyOff(2), aRun, nRun);
  ljRunFill(aStage + ljStageBodyOff(2) + nRun, apEv, 1);
  seedWrite(argv[1], "stage", F_STAGE, aStage, nStage);
  seedWrite(argv[1], "tags", F_TAGS,
            (const u8 *)"[\"order\", \"eu\\n\", \"\\ud83d\\ude00\"]", 31);
  for (int i = 0; i < 3; i++) sqlite3_free(aEv[i].aRec);
  free(aRun);
  free(aStage);
  return 0;
}
#endif
