/*
** kafka_mock.c -- a librdkafka mock cluster for the shipping tests, and a
** dump of a topic.
**
**     kafka_mock serve TOPIC PARTITIONS
**         Starts a mock cluster of 3 brokers on 127.0.0.1 (ephemeral
**         ports), creates TOPIC with PARTITIONS partitions, replication
**         factor 3, prints the bootstrap address on one line and serves
**         until stdin closes.  Lines on stdin drive faults:
**             down ID | up ID     take broker ID (1..3) down or up
**             leader P ID         move the leader of partition P
**             produce_errors N    fail the next N produce requests
**                                 (NOT_ENOUGH_REPLICAS, retriable)
**             topic NAME N        create another topic, N partitions
**                                 (each partition keeps about 5 MB)
**
**     kafka_mock dump BROKERS TOPIC
**         Prints every message of every partition, from the first offset
**         to the high watermark at start, one line each, tab-separated:
**             partition offset key pos seq ts class store op sub
**         (op and sub: of a truncation marker, empty for an event).
*/
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *zMsg, const char *zDetail) {
  fprintf(stderr, "kafka_mock: %s%s%s\n", zMsg, zDetail ? ": " : "",
          zDetail ? zDetail : "");
  exit(1);
}

static int serve(const char *zTopic, int nPart) {
  char zErr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_t *rk;
  rd_kafka_mock_cluster_t *mc;
  char zLine[256];

  /* The handle only hosts the cluster: it has no brokers of its own. */
  rd_kafka_conf_set(conf, "log_level", "3", zErr, sizeof(zErr));
  rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, zErr, sizeof(zErr));
  if (rk == 0) die("rd_kafka_new", zErr);
  mc = rd_kafka_mock_cluster_new(rk, 3);
  if (mc == 0) die("cannot start the mock cluster", 0);
  if (rd_kafka_mock_topic_create(mc, zTopic, nPart, 3)) {
    die("cannot create the topic", zTopic);
  }
  printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
  fflush(stdout);
  while (fgets(zLine, sizeof(zLine), stdin)) {
    int a = 0, b = 0;
    char zName[128];
    if (sscanf(zLine, "topic %127s %d", zName, &a) == 2) {
      if (rd_kafka_mock_topic_create(mc, zName, a, 3)) {
        die("cannot create the topic", zName);
      }
    } else if (sscanf(zLine, "down %d", &a) == 1) {
      rd_kafka_mock_broker_set_down(mc, a);
    } else if (sscanf(zLine, "up %d", &a) == 1) {
      rd_kafka_mock_broker_set_up(mc, a);
    } else if (sscanf(zLine, "leader %d %d", &a, &b) == 2) {
      rd_kafka_mock_partition_set_leader(mc, zTopic, a, b);
    } else if (sscanf(zLine, "produce_errors %d", &a) == 1) {
      rd_kafka_resp_err_t aErr[64];
      if (a > 64) a = 64;
      for (b = 0; b < a; b++) aErr[b] = RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
      rd_kafka_mock_push_request_errors_array(mc, 0 /* Produce */, (size_t)a,
                                              aErr);
    }
    printf("ok\n");
    fflush(stdout);
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}

/* A header's value as text ("" when absent). */
static void printHeader(rd_kafka_headers_t *h, const char *zName) {
  const void *p = 0;
  size_t n = 0;
  if (h && rd_kafka_header_get_last(h, zName, &p, &n) == 0 && p) {
    printf("\t%.*s", (int)n, (const char *)p);
  } else {
    printf("\t");
  }
}

static int dump(const char *zBrokers, const char *zTopic) {
  char zErr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_t *rk;
  rd_kafka_topic_t *rkt;
  const rd_kafka_metadata_t *md;
  int i, nPart;

  if (rd_kafka_conf_set(conf, "bootstrap.servers", zBrokers, zErr,
                        sizeof(zErr))) {
    die("bootstrap.servers", zErr);
  }
  rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, zErr, sizeof(zErr));
  if (rk == 0) die("rd_kafka_new", zErr);
  rkt = rd_kafka_topic_new(rk, zTopic, 0);
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) || md->topic_cnt != 1) {
    die("no metadata for the topic", zTopic);
  }
  nPart = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  for (i = 0; i < nPart; i++) {
    int64_t lo = 0, hi = 0, off;
    if (rd_kafka_query_watermark_offsets(rk, zTopic, i, &lo, &hi, 10000)) {
      die("cannot read the watermarks", zTopic);
    }
    if (lo > 0) {
      /* The mock cluster keeps a bounded log per partition. */
      fprintf(stderr, "kafka_mock: partition %d starts at offset %lld\n", i,
              (long long)lo);
    }
    if (hi <= lo) continue;
    rd_kafka_consume_start(rkt, i, lo);
    for (off = lo; off < hi;) {
      rd_kafka_message_t *m = rd_kafka_consume(rkt, i, 10000);
      rd_kafka_headers_t *h = 0;
      if (m == 0) die("timed out reading the topic", zTopic);
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        rd_kafka_message_destroy(m);
        continue;
      }
      if (m->err) die("consume", rd_kafka_message_errstr(m));
      rd_kafka_message_headers(m, &h);
      printf("%d\t%lld\t%.*s", i, (long long)m->offset, (int)m->key_len,
             (const char *)m->key);
      printHeader(h, "pos");
      printHeader(h, "seq");
      printHeader(h, "ts");
      printHeader(h, "class");
      printHeader(h, "store");
      printHeader(h, "op");
      printHeader(h, "sub");
      printf("\n");
      off = m->offset + 1;
      rd_kafka_message_destroy(m);
    }
    rd_kafka_consume_stop(rkt, i);
  }
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "serve") == 0) {
    return serve(argv[2], atoi(argv[3]));
  }
  if (argc == 4 && strcmp(argv[1], "dump") == 0) {
    return dump(argv[2], argv[3]);
  }
  fprintf(stderr,
          "usage: kafka_mock serve TOPIC PARTITIONS\n"
          "       kafka_mock dump BROKERS TOPIC\n");
  return 2;
}
