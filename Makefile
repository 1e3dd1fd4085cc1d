# lmdbjournal -- build, test, demo and bench.
#
#   make            build/lmdbjournal.so (the loadable extension)
#   make static     build/liblmdbjournal.a (link with -DSQLITE_CORE apps)
#   make test       install what is missing, build, run the whole suite
#   make demo       install what is missing, build, run the demo in sqlite3
#   make test-asan  the Tcl suite against an ASan+UBSan build
#   make test-tsan  the threaded C driver under ThreadSanitizer
#   make test-staged  the Tcl suite (ASan+UBSan) with every batch staged
#   make fuzz       libFuzzer on the stored-value decoders (FUZZ_SECONDS)
#   make soak       long crash/stress runs and a long differential test
#                   (not part of make test)
#   make newest     fetch (once) and build the newest SQLite for the tests
#   make bench / make bench-quick   see bench/README.md
#   make install    the module, the static library, the header and
#                   lmdbjournal.pc under PREFIX (/usr/local); make uninstall
#   make deb        build/deb/lmdbjournal_VERSION_ARCH.deb (dpkg-deb)

CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
BASEFLAGS := -std=gnu11 -fPIC -fvisibility=hidden -pthread $(WARN) -Iinclude
LIBS    := -llmdb -lpthread -llz4 -lzstd -lrdkafka

SRC := ext/lmdbjournal.c ext/config.c ext/layout.c ext/registry.c ext/env.c \
       ext/writer.c ext/journal_table.c ext/table_write.c ext/functions.c \
       ext/metrics.c ext/tvf.c ext/scan.c ext/conn.c ext/stage.c ext/put.c \
       ext/compact.c ext/trunclog.c ext/submit.c ext/export.c ext/snapread.c \
       ext/snapshots_tvf.c ext/ship.c ext/restore.c ext/verify.c ext/backup.c \
       ext/errlog.c ext/errors.c
HDR := ext/internal.h include/lmdbjournal.h

B := build

# Debian packages the build, the tests, the demo and the bench need.
PKGS := liblmdb-dev libsqlite3-dev sqlite3 tcl libsqlite3-tcl liblz4-dev \
        libzstd-dev lmdb-utils gnuplot-nox libclang-rt-14-dev clang clang-format \
        pkg-config python3 librdkafka-dev

.PHONY: lint all static deps test test-tcl test-asan test-tsan test-staged test-c demo soak fuzz \
        bench bench-quick clean newest install uninstall deb

all: $(B)/lmdbjournal.so

$(B):
	@mkdir -p $(B)

# The soname is what ldconfig caches the installed module under, so that
# dlopen("lmdbjournal.so") -- SQLite's ".load lmdbjournal" -- finds it.
# The loadable module is linked with link-time optimisation: the SQL glue
# calls small functions of the read interface for every row and value
# (ljScanRow, ljScanPayload, ljResultStored), which LTO inlines across
# files -- 4% fewer instructions in a full scan (bench/README.md).
LTO ?= -flto=auto
$(B)/lmdbjournal.so: $(SRC) $(HDR) | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(LTO) -shared -Wl,-soname,lmdbjournal.so -o $@ $(SRC) $(LIBS)

$(B)/static/%.o: ext/%.c $(HDR)
	@mkdir -p $(B)/static
	$(CC) $(BASEFLAGS) $(CFLAGS) -DSQLITE_CORE -c -o $@ $<

static: $(B)/liblmdbjournal.a
$(B)/liblmdbjournal.a: $(patsubst ext/%.c,$(B)/static/%.o,$(SRC))
	rm -f $@ && ar rcs $@ $^

# ---- install -------------------------------------------------------------
# LIBDIR gets the module as liblmdbjournal.so.VERSION plus the link
# lmdbjournal.so: ldconfig only caches files named lib*, and dlopen looks the
# short name "lmdbjournal.so" up in that cache (or LD_LIBRARY_PATH).  There is
# deliberately no liblmdbjournal.so, so -llmdbjournal (lmdbjournal.pc) picks
# the static archive.  ldconfig runs only for a real install by root.
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PCDIR      ?= $(LIBDIR)/pkgconfig
INSTALL    ?= install
LDCONFIG   ?= ldconfig
VERSION := $(shell sed -n 's/^\#define LMDBJOURNAL_VERSION *"\(.*\)"/\1/p' include/lmdbjournal.h)
SOFILE  := liblmdbjournal.so.$(VERSION)
RUN_LDCONFIG = if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
	  PATH="$$PATH:/sbin:/usr/sbin" $(LDCONFIG) || true; fi

# lmdbjournal.pc embeds the paths, so it is made on every install.
install: all static
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    lmdbjournal.pc.in > $(B)/lmdbjournal.pc
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PCDIR)
	$(INSTALL) -m 755 $(B)/lmdbjournal.so $(DESTDIR)$(LIBDIR)/$(SOFILE)
	ln -sf $(SOFILE) $(DESTDIR)$(LIBDIR)/lmdbjournal.so
	$(INSTALL) -m 644 $(B)/liblmdbjournal.a $(DESTDIR)$(LIBDIR)/liblmdbjournal.a
	$(INSTALL) -m 644 include/lmdbjournal.h $(DESTDIR)$(INCLUDEDIR)/lmdbjournal.h
	$(INSTALL) -m 644 $(B)/lmdbjournal.pc $(DESTDIR)$(PCDIR)/lmdbjournal.pc
	@$(RUN_LDCONFIG)

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(SOFILE) $(DESTDIR)$(LIBDIR)/lmdbjournal.so \
	      $(DESTDIR)$(LIBDIR)/liblmdbjournal.a $(DESTDIR)$(INCLUDEDIR)/lmdbjournal.h \
	      $(DESTDIR)$(PCDIR)/lmdbjournal.pc
	@$(RUN_LDCONFIG)

# A Debian package of the same files under /usr (multiarch LIBDIR), built
# with dpkg-deb; its dependencies are the runtime libraries' packages.
DEB_ARCH = $(shell dpkg --print-architecture 2>/dev/null)
DEB_MULTIARCH = $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || $(CC) -print-multiarch)
DEB_MAINTAINER ?= lmdbjournal developers <lmdbjournal@localhost>
DEB_ROOT = $(B)/deb/lmdbjournal_$(VERSION)_$(DEB_ARCH)
deb: all static
	rm -rf $(DEB_ROOT) && mkdir -p $(DEB_ROOT)/DEBIAN
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(DEB_ROOT) PREFIX=/usr \
	  LIBDIR=/usr/lib/$(DEB_MULTIARCH) LDCONFIG=true
	printf '%s\n' 'Package: lmdbjournal' 'Version: $(VERSION)' 'Architecture: $(DEB_ARCH)' \
	  'Maintainer: $(DEB_MAINTAINER)' 'Section: libs' 'Priority: optional' \
	  'Depends: libc6, libsqlite3-0 (>= 3.38.0), liblmdb0, liblz4-1, libzstd1, librdkafka1' \
	  'Description: SQLite extension keeping actor-system event journals in LMDB' \
	  ' The loadable module (.load lmdbjournal), the static library, its header' \
	  ' and pkg-config file.' > $(DEB_ROOT)/DEBIAN/control
	echo 'activate-noawait ldconfig' > $(DEB_ROOT)/DEBIAN/triggers
	dpkg-deb --build --root-owner-group $(DEB_ROOT) $(B)/deb

# Installs missing packages once; a no-op when everything is present.
deps:
	@sh test/install-deps.sh $(PKGS)

# ---- tests ---------------------------------------------------------------
TCLSH ?= tclsh

TESTBIN := $(B)/threads $(B)/crashload $(B)/difftest $(B)/kafka_mock newest \
           $(B)/powerloss.so $(B)/powerloss-apply $(B)/faultmem.so \
           $(B)/stuckdrv

test: deps all $(TESTBIN)
	$(TCLSH) test/all.tcl --build $(B) $(TESTARGS)
	@if command -v $(FUZZ_CC) >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=30; \
	else echo "fuzz: $(FUZZ_CC) not found, the 30 s decoder fuzzing run is skipped"; fi

# The layering rules that a compiler cannot check: the SQL layer makes no
# LMDB call (it reads through scan.c and writes through submit.c), and the
# code keeps the .clang-format layout.
SQL_LAYER := ext/lmdbjournal.c ext/conn.c ext/journal_table.c ext/table_write.c \
             ext/functions.c ext/tvf.c ext/export.c ext/restore.c ext/errors.c
lint:
	@if grep -nE '\bmdb_[a-z_]+ *\(' $(SQL_LAYER); then \
	  echo "lint: the SQL layer calls LMDB (see above); go through scan.c" >&2; \
	  exit 1; fi
	@if command -v clang-format >/dev/null 2>&1; then \
	  clang-format --dry-run --Werror ext/*.c ext/*.h include/*.h test/*.c \
	    || { echo "lint: run clang-format -i on the files above" >&2; exit 1; }; \
	else echo "lint: clang-format not installed, layout not checked"; fi
	@echo "lint: ok"

test-tcl: all $(TESTBIN)
	$(TCLSH) test/all.tcl --build $(B) $(TESTARGS)

# The differential tester (test/native.test) against the system SQLite, and
# against the newest SQLite release (fetched once from the npm registry into
# $(B)/newest; skipped with a message where that is not possible).
$(B)/difftest: test/difftest.c | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) -o $@ test/difftest.c -lsqlite3

newest: | $(B)
	@sh test/newest-sqlite.sh $(B)/newest $(CC) $(BASEFLAGS) $(CFLAGS)

# The mock Kafka cluster and topic dump of test/ship.test.
$(B)/kafka_mock: test/kafka_mock.c | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) -o $@ test/kafka_mock.c -lrdkafka

$(B)/threads: test/threads.c $(SRC) $(HDR) | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) -DSQLITE_CORE -o $@ test/threads.c $(SRC) -lsqlite3 $(LIBS)

$(B)/stuckdrv: test/stuckdrv.c $(SRC) $(HDR) | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) -DSQLITE_CORE -o $@ test/stuckdrv.c $(SRC) -lsqlite3 $(LIBS)

$(B)/crashload: test/crashload.c $(SRC) $(HDR) | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) -DSQLITE_CORE -o $@ test/crashload.c $(SRC) -lsqlite3 $(LIBS)

# Simulated power loss (test/powerloss.test): the LD_PRELOAD shim that
# records the pre-images of unsynced writes to data.mdb and kills its
# process, and the tool that rolls a random part of them back.
$(B)/powerloss.so: test/powerloss.c | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) -fvisibility=default -shared -o $@ test/powerloss.c -ldl -lpthread

$(B)/powerloss-apply: test/powerloss.c | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) -DPOWERLOSS_TOOL -o $@ test/powerloss.c

# Allocation and mapping failures (test/faults.test): malloc failing in
# the extension's calls, mmap failing for the data file.
$(B)/faultmem.so: test/faultmem.c | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) -fvisibility=default -shared -o $@ test/faultmem.c -ldl

# libFuzzer on the decoders of stored values (test/fuzz_decode.c), with
# ASan+UBSan; seeds are values made by the real encoders.  make test runs
# it for 30 s when clang is there; longer: make fuzz FUZZ_SECONDS=3600.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
$(B)/fuzz/decode: test/fuzz_decode.c $(SRC) $(HDR)
	@mkdir -p $(B)/fuzz
	$(FUZZ_CC) $(BASEFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=undefined -DSQLITE_CORE \
	  -DLJ_MAX_VALUE_CAP='((size_t)1<<20)' -o $@ test/fuzz_decode.c \
	  $(SRC) -lsqlite3 $(LIBS)

$(B)/fuzz/seeds/run: test/fuzz_decode.c $(SRC) $(HDR)
	@mkdir -p $(B)/fuzz/seeds
	$(CC) $(BASEFLAGS) -O1 -g -DSQLITE_CORE -DLJ_FUZZ_SEEDS -o $(B)/fuzz/mkseeds \
	  test/fuzz_decode.c $(SRC) -lsqlite3 $(LIBS)
	$(B)/fuzz/mkseeds $(B)/fuzz/seeds

fuzz: $(B)/fuzz/decode $(B)/fuzz/seeds/run
	@mkdir -p $(B)/fuzz/corpus
	$(B)/fuzz/decode -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
	  -print_final_stats=1 $(B)/fuzz/corpus $(B)/fuzz/seeds

# ASan+UBSan build of the extension, loaded into an uninstrumented tclsh.
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
# asan_suite DIR EXTRA_CFLAGS: build the extension and the C drivers into
# DIR with ASan+UBSan, then run the Tcl suite (quick) against them.
define asan_suite
	@mkdir -p $(1)
	$(CC) $(BASEFLAGS) $(ASAN_FLAGS) $(2) -shared -o $(1)/lmdbjournal.so $(SRC) $(LIBS)
	$(CC) $(BASEFLAGS) $(ASAN_FLAGS) $(2) -DSQLITE_CORE -o $(1)/threads test/threads.c $(SRC) -lsqlite3 $(LIBS)
	$(CC) $(BASEFLAGS) $(ASAN_FLAGS) $(2) -DSQLITE_CORE -o $(1)/crashload test/crashload.c $(SRC) -lsqlite3 $(LIBS)
	$(CC) $(BASEFLAGS) $(ASAN_FLAGS) $(2) -DSQLITE_CORE -o $(1)/stuckdrv test/stuckdrv.c $(SRC) -lsqlite3 $(LIBS)
	$(CC) $(BASEFLAGS) $(CFLAGS) -fvisibility=default -shared -o $(1)/powerloss.so test/powerloss.c -ldl -lpthread
	$(CC) $(BASEFLAGS) $(CFLAGS) -DPOWERLOSS_TOOL -o $(1)/powerloss-apply test/powerloss.c
	$(CC) $(BASEFLAGS) $(CFLAGS) -fvisibility=default -shared -o $(1)/faultmem.so test/faultmem.c -ldl
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  $(TCLSH) test/all.tcl --build $(1) --quick $(TESTARGS)
endef

# The idle merge waits 2 s instead of 200 ms: instrumented reads are slow,
# and stage.test checks what is staged before the writer merges it.
test-asan: deps $(B)/difftest newest
	$(call asan_suite,$(B)/asan,-DLJ_STAGE_IDLE_US=2000000)

# The threaded driver under ThreadSanitizer (extension linked in statically),
# as built and with every batch staged; then stuck.test's driver (opening
# and closing while another process holds the write lock).
test-tsan: deps
	@mkdir -p $(B)/tsan
	$(CC) $(BASEFLAGS) -O1 -g -fsanitize=thread -DSQLITE_CORE -o $(B)/tsan/threads test/threads.c $(SRC) -lsqlite3 $(LIBS)
	$(CC) $(BASEFLAGS) -O1 -g -fsanitize=thread -DSQLITE_CORE $(STAGED_FLAGS) -o $(B)/tsan/threads-staged test/threads.c $(SRC) -lsqlite3 $(LIBS)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" $(B)/tsan/threads $(B)/tsan/data 4 20000
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" $(B)/tsan/threads-staged $(B)/tsan/data 4 20000
	$(CC) $(BASEFLAGS) -O1 -g -fsanitize=thread -DSQLITE_CORE -o $(B)/tsan/stuckdrv test/stuckdrv.c $(SRC) -lsqlite3 $(LIBS)
	$(MAKE) --no-print-directory all $(B)/stuckdrv
	LJ_STUCKDRV=$(B)/tsan/stuckdrv TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  $(TCLSH) test/all.tcl --build $(B) stuck

# The whole Tcl suite (under ASan+UBSan) against a build that stages every
# batch and merges every 3,000 events (or after 20 ms idle), and compacts
# after 20 ms idle in small steps (stretches of two places or more, into
# runs of four pages): staged, merged, compacted and mixed data must read
# the same.
STAGED_FLAGS := -DLJ_STAGE_ACTORS=1 -DLJ_STAGE_DENSITY=1000000000 \
  -DLJ_STAGE_MERGE_EVENTS=3000 -DLJ_STAGE_MERGE_BATCHES=64 -DLJ_STAGE_IDLE_US=20000 \
  -DLJ_COMPACT_EXTENTS=2 -DLJ_COMPACT_RUN_PAGES=4 -DLJ_COMPACT_STEP_BYTES=65536 \
  -DLJ_COMPACT_STEP_RUNS=512
test-staged: deps $(B)/difftest newest
	$(call asan_suite,$(B)/staged,$(STAGED_FLAGS))

# Long crash and stress runs; native.test runs many more random queries.
soak: all $(TESTBIN)
	$(TCLSH) test/all.tcl --build $(B) --soak

# ---- demo ----------------------------------------------------------------
demo: deps all
	sh docs/demo.sh

# ---- bench ---------------------------------------------------------------
# The bench loads build/lmdbjournal.so into its connections, as users do;
# the static archive is linked in only for its one comparison row.
$(B)/bench: bench/bench.c $(B)/lmdbjournal.so $(B)/liblmdbjournal.a include/lmdbjournal.h | $(B)
	$(CC) $(BASEFLAGS) -O2 -g -o $@ bench/bench.c $(B)/liblmdbjournal.a -lsqlite3 $(LIBS) -lm

# The module without the checksum check on reads, only to measure what the
# check costs: build/bench --only scan --sys ext --ext $(B)/noverify/lmdbjournal.so
$(B)/noverify/lmdbjournal.so: $(SRC) $(HDR)
	@mkdir -p $(B)/noverify
	$(CC) $(BASEFLAGS) $(CFLAGS) -DLJ_NO_READ_CHECK -shared -o $@ $(SRC) $(LIBS)

bench: deps $(B)/bench
	sh bench/run.sh full

bench-quick: deps $(B)/bench
	sh bench/run.sh quick

clean:
	rm -rf $(B)
