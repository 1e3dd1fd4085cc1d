#!/bin/sh
# newest-sqlite.sh DIR CC CFLAGS...
#
# Builds DIR/difftest: test/difftest.c compiled together with the newest
# SQLite amalgamation, as field builds use it (SQLITE_STRICT_SUBTYPE=1).
# The amalgamation comes from the npm registry (the better-sqlite3 package
# carries sqlite3.c and sqlite3.h in deps/sqlite3/); it is fetched once and
# kept in DIR (PKG overrides the package, e.g. PKG=better-sqlite3@13.2.0).
# Where npm or the network is missing, it says so and exits 0 without
# building: the tests that need DIR/difftest then report themselves skipped.
# A failed fetch is remembered in DIR/UNAVAILABLE; remove it to retry.
set -e
dir=$1
cc=$2
shift 2
pkg=${PKG:-better-sqlite3@13}
mkdir -p "$dir"

if [ ! -f "$dir/sqlite3.c" ]; then
  if [ -f "$dir/UNAVAILABLE" ]; then
    echo "newest SQLite: not available ($(cat "$dir/UNAVAILABLE")); its runs are skipped (rm $dir/UNAVAILABLE to retry)"
    exit 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is not installed" >"$dir/UNAVAILABLE"
    echo "newest SQLite: npm is not installed; its runs are skipped"
    exit 0
  fi
  tmp=$(mktemp -d)
  echo "newest SQLite: fetching $pkg from the npm registry"
  if ! (cd "$tmp" && timeout 300 npm pack --silent "$pkg" >pack.out 2>pack.err); then
    echo "npm pack $pkg failed: $(tail -1 "$tmp/pack.err")" >"$dir/UNAVAILABLE"
    echo "newest SQLite: $(cat "$dir/UNAVAILABLE"); its runs are skipped"
    rm -rf "$tmp"
    exit 0
  fi
  tgz=$(ls "$tmp"/*.tgz | head -1)
  if ! tar -xzf "$tgz" -C "$tmp" package/deps/sqlite3/sqlite3.c \
         package/deps/sqlite3/sqlite3.h 2>/dev/null; then
    echo "$pkg holds no deps/sqlite3/sqlite3.c" >"$dir/UNAVAILABLE"
    echo "newest SQLite: $(cat "$dir/UNAVAILABLE"); its runs are skipped"
    rm -rf "$tmp"
    exit 0
  fi
  mv "$tmp/package/deps/sqlite3/sqlite3.h" "$dir/sqlite3.h"
  mv "$tmp/package/deps/sqlite3/sqlite3.c" "$dir/sqlite3.c"
  basename "$tgz" .tgz >"$dir/SOURCE"
  rm -rf "$tmp"
fi

# The options of field builds that change behaviour (APSW, better-sqlite3).
opts="-DSQLITE_STRICT_SUBTYPE=1 -DSQLITE_THREADSAFE=1 -DSQLITE_DQS=0
  -DSQLITE_ENABLE_STAT4 -DSQLITE_ENABLE_COLUMN_METADATA
  -DSQLITE_ENABLE_DBSTAT_VTAB -DSQLITE_ENABLE_MATH_FUNCTIONS
  -DSQLITE_ENABLE_FTS5 -DSQLITE_ENABLE_RTREE -DSQLITE_LIKE_DOESNT_MATCH_BLOBS"
if [ ! -f "$dir/sqlite3.o" ] || [ "$dir/sqlite3.c" -nt "$dir/sqlite3.o" ]; then
  echo "newest SQLite: compiling $(sed -n 's/^#define SQLITE_VERSION  *"\(.*\)"/\1/p' "$dir/sqlite3.h")"
  # shellcheck disable=SC2086
  $cc -O2 -g -fPIC $opts -c -o "$dir/sqlite3.o" "$dir/sqlite3.c"
fi
if [ ! -f "$dir/difftest" ] || [ test/difftest.c -nt "$dir/difftest" ] ||
   [ "$dir/sqlite3.o" -nt "$dir/difftest" ]; then
  # shellcheck disable=SC2086
  $cc "$@" -I"$dir" -o "$dir/difftest" test/difftest.c "$dir/sqlite3.o" \
    -lpthread -ldl -lm
fi
echo "newest SQLite: $dir/difftest runs SQLite $("$dir/difftest" --ext none --version)"
