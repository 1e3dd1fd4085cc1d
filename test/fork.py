#!/usr/bin/python3
"""fork.py STORE MODULE -- a store used across fork(), as Python's
multiprocessing (fork start method) and pre-forking servers do.

The parent opens a journal and appends; a forked child must refuse the
inherited connection with a clear error, work through a connection of its
own, and exit without hanging; the parent goes on afterwards.  Prints one
line per check, "ok: ..." at the end; exits non-zero on any failure."""
import os
import sqlite3
import sys

store, module = sys.argv[1], sys.argv[2]


def connect():
    c = sqlite3.connect(os.path.join(store, "..", "fork.db"), isolation_level=None)
    c.enable_load_extension(True)
    c.load_extension(module)
    return c


def check(what, ok):
    print("%s %s" % ("ok" if ok else "FAIL", what), flush=True)
    return ok


def child(inherited):
    good = True
    try:
        inherited.execute("SELECT journal_append('j', 'child', 'x')").fetchone()
        good &= check("inherited connection refuses journal_append", False)
    except sqlite3.Error as e:
        good &= check("inherited connection refuses journal_append (%s)" % e,
                      "before fork()" in str(e))
    try:
        inherited.execute("SELECT count(*) FROM j").fetchone()
        good &= check("inherited connection refuses reads", False)
    except sqlite3.Error as e:
        good &= check("inherited connection refuses reads", "before fork()" in str(e))
    own = connect()
    (seq,) = own.execute("SELECT journal_append('j', 'child', 'mine')").fetchone()
    own.execute("SELECT journal_sync('j')").fetchone()
    (n,) = own.execute("SELECT count(*) FROM j").fetchone()
    good &= check("own connection appends (seq %d) and reads %d events" % (seq, n),
                  seq == 1 and n == 11)
    own.close()
    return good


def main():
    parent = connect()
    parent.execute("CREATE VIRTUAL TABLE IF NOT EXISTS j USING "
                   "lmdb_journal(path='%s')" % store.replace("'", "''"))
    for i in range(10):
        parent.execute("SELECT journal_append('j', 'parent', ?)", (i,)).fetchone()
    parent.execute("SELECT journal_sync('j')").fetchone()
    pid = os.fork()
    if pid == 0:
        ok = child(parent)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    good = check("child exited (status %d)" % status, status == 0)
    (seq,) = parent.execute("SELECT journal_append('j', 'parent', 'after')").fetchone()
    parent.execute("SELECT journal_sync('j')").fetchone()
    (n,) = parent.execute("SELECT count(*) FROM j").fetchone()
    good &= check("parent appends after the child (seq %d), %d events" % (seq, n),
                  seq == 11 and n == 12)
    parent.close()
    if not good:
        return 1
    print("ok: fork-safe")
    return 0


if __name__ == "__main__":
    sys.exit(main())
