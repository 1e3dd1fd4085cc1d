# lmdbjournal -- build, test, demo and bench.
#
#   make            build/lmdbjournal.so (the loadable extension)
#   make static     build/liblmdbjournal.a (link with -DSQLITE_CORE apps)
#   make test       install what is missing, build, run the whole suite
#   make demo       install what is missing, build, run the demo in sqlite3
#   make test-asan  the Tcl suite against an ASan+UBSan build
#   make test-tsan  the threaded C driver under ThreadSanitizer
#   make test-staged  the Tcl suite (ASan+UBSan) with every batch staged
#   make soak       long crash/stress runs (not part of make test)
#   make bench / make bench-quick   see bench/README.md

CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
BASEFLAGS := -std=gnu11 -fPIC -fvisibility=hidden -pthread $(WARN) -Iinclude
LIBS    := -llmdb -lpthread -llz4 -lzstd

SRC := ext/lmdbjournal.c ext/config.c ext/layout.c ext/registry.c ext/env.c \
       ext/writer.c ext/journal_table.c ext/functions.c ext/metrics.c \
       ext/tvf.c ext/stage.c ext/put.c ext/submit.c
HDR := ext/internal.h include/lmdbjournal.h

B := build

# Debian packages the build, the tests, the demo and the bench need.
PKGS := liblmdb-dev libsqlite3-dev sqlite3 tcl libsqlite3-tcl liblz4-dev \
        libzstd-dev lmdb-utils gnuplot-nox libclang-rt-14-dev clang

.PHONY: all static deps test test-tcl test-asan test-tsan test-staged test-c demo soak \
        bench bench-quick clean

all: $(B)/lmdbjournal.so

$(B):
	@mkdir -p $(B)

$(B)/lmdbjournal.so: $(SRC) $(HDR) | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) -shared -o $@ $(SRC) $(LIBS)

$(B)/static/%.o: ext/%.c $(HDR)
	@mkdir -p $(B)/static
	$(CC) $(BASEFLAGS) $(CFLAGS) -DSQLITE_CORE -c -o $@ $<

static: $(B)/liblmdbjournal.a
$(B)/liblmdbjournal.a: $(patsubst ext/%.c,$(B)/static/%.o,$(SRC))
	rm -f $@ && ar rcs $@ $^

# Installs missing packages once; a no-op when everything is present.
deps:
	@sh test/install-deps.sh $(PKGS)

# ---- tests ---------------------------------------------------------------
TCLSH ?= tclsh

test: deps all $(B)/threads $(B)/crashload
	$(TCLSH) test/all.tcl --build $(B) $(TESTARGS)

test-tcl: all $(B)/threads $(B)/crashload
	$(TCLSH) test/all.tcl --build $(B) $(TESTARGS)

$(B)/threads: test/threads.c $(SRC) $(HDR) | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) -DSQLITE_CORE -o $@ test/threads.c $(SRC) -lsqlite3 $(LIBS)

$(B)/crashload: test/crashload.c $(SRC) $(HDR) | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) -DSQLITE_CORE -o $@ test/crashload.c $(SRC) -lsqlite3 $(LIBS)

# ASan+UBSan build of the extension, loaded into an uninstrumented tclsh.
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
# asan_suite DIR EXTRA_CFLAGS: build the extension and the C drivers into
# DIR with ASan+UBSan, then run the Tcl suite (quick) against them.
define asan_suite
	@mkdir -p $(1)
	$(CC) $(BASEFLAGS) $(ASAN_FLAGS) $(2) -shared -o $(1)/lmdbjournal.so $(SRC) $(LIBS)
	$(CC) $(BASEFLAGS) $(ASAN_FLAGS) $(2) -DSQLITE_CORE -o $(1)/threads test/threads.c $(SRC) -lsqlite3 $(LIBS)
	$(CC) $(BASEFLAGS) $(ASAN_FLAGS) $(2) -DSQLITE_CORE -o $(1)/crashload test/crashload.c $(SRC) -lsqlite3 $(LIBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  $(TCLSH) test/all.tcl --build $(1) --quick $(TESTARGS)
endef

# The idle merge waits 2 s instead of 200 ms: instrumented reads are slow,
# and stage.test checks what is staged before the writer merges it.
test-asan: deps
	$(call asan_suite,$(B)/asan,-DLJ_STAGE_IDLE_US=2000000)

# The threaded driver under ThreadSanitizer (extension linked in statically),
# as built and with every batch staged.
test-tsan: deps
	@mkdir -p $(B)/tsan
	$(CC) $(BASEFLAGS) -O1 -g -fsanitize=thread -DSQLITE_CORE -o $(B)/tsan/threads test/threads.c $(SRC) -lsqlite3 $(LIBS)
	$(CC) $(BASEFLAGS) -O1 -g -fsanitize=thread -DSQLITE_CORE $(STAGED_FLAGS) -o $(B)/tsan/threads-staged test/threads.c $(SRC) -lsqlite3 $(LIBS)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" $(B)/tsan/threads $(B)/tsan/data 4 20000
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" $(B)/tsan/threads-staged $(B)/tsan/data 4 20000

# The whole Tcl suite (under ASan+UBSan) against a build that stages every
# batch and merges every 3,000 events (or after 20 ms idle): staged, merged
# and mixed data must read the same.
STAGED_FLAGS := -DLJ_STAGE_ACTORS=1 -DLJ_STAGE_DENSITY=1000000000 \
  -DLJ_STAGE_MERGE_EVENTS=3000 -DLJ_STAGE_MERGE_BATCHES=64 -DLJ_STAGE_IDLE_US=20000 \
  -DLJ_STAGE_MIN_GAIN=0
test-staged: deps
	$(call asan_suite,$(B)/staged,$(STAGED_FLAGS))

# Long crash and stress runs.
soak: all $(B)/threads $(B)/crashload
	$(TCLSH) test/all.tcl --build $(B) --soak

# ---- demo ----------------------------------------------------------------
demo: deps all
	sh docs/demo.sh

# ---- bench ---------------------------------------------------------------
$(B)/bench: bench/bench.c $(SRC) $(HDR) | $(B)
	$(CC) $(BASEFLAGS) -O2 -g -DSQLITE_CORE -o $@ bench/bench.c $(SRC) -lsqlite3 $(LIBS) -lm

bench: deps $(B)/bench
	sh bench/run.sh full

bench-quick: deps $(B)/bench
	sh bench/run.sh quick

clean:
	rm -rf $(B)
