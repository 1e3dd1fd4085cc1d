#!/usr/bin/python3
"""bank.py -- event-sourced bank accounts on lmdbjournal, from Python.

    /usr/bin/python3 examples/python/bank.py [--module PATH] [STORE-DIR]

Debian's /usr/bin/python3 is used on purpose: its sqlite3 module is built
with extension loading (enable_load_extension), which pyenv and some other
builds leave out.  --module defaults to "lmdbjournal", the installed module
found by short name; give ./build/lmdbjournal to use a build tree.

Each account is an actor: it validates a command (deposit or withdraw a
positive amount, never below zero), persists the resulting event with
journal_append and only then applies it.  Its state is recovered by replaying
its events.

Run without a mode, the program proves crash recovery: it starts a worker
process that handles random commands and, after every batch, waits for
journal_sync and reports the acknowledged state (balance and seq per
account) on stdout.  The worker is killed with SIGKILL mid-run.  Recovery
then replays the journal and checks, account by account, that the state at
the acknowledged seq equals the acknowledged state: nothing acknowledged is
lost.  Events committed after the last acknowledgement (the batch in flight)
may be there too; they are counted and must be contiguous and valid.
Exits non-zero on any failure.

Snapshots: every SNAPSHOT_EVERY events an account stores its state with
journal_snapshot; recovery loads the newest snapshot (at or below the seq it
recovers to) from journal_snapshots and replays only the events after it.
The crash test checks both ways of recovering: from the snapshot and from
the events alone.
"""
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

ACCOUNTS = ["acct-%d" % i for i in range(1, 6)]
BATCH = 20          # commands handled between two journal_sync calls
ACKS_BEFORE_KILL = 8
SNAPSHOT_EVERY = 7  # events between two snapshots of an account


class Rejected(Exception):
    """A command the account refuses; nothing is persisted."""


class Account:
    def __init__(self, account_id):
        self.id = account_id
        self.balance = 0
        self.seq = 0

    def decide(self, command, amount):
        """Validate a command; return the event (type, payload) it causes."""
        if not isinstance(amount, int) or amount <= 0:
            raise Rejected("amount must be a positive integer")
        if command == "deposit":
            return "Deposited", {"amount": amount}
        if command == "withdraw":
            if amount > self.balance:
                raise Rejected("insufficient funds: %d < %d" % (self.balance, amount))
            return "Withdrawn", {"amount": amount}
        raise Rejected("unknown command %r" % command)

    def apply(self, seq, event_type, payload):
        if seq != self.seq + 1:
            raise RuntimeError("%s: event seq %d after %d" % (self.id, seq, self.seq))
        sign = 1 if event_type == "Deposited" else -1
        self.balance += sign * payload["amount"]
        self.seq = seq
        if self.balance < 0:
            raise RuntimeError("%s: balance below zero at seq %d" % (self.id, seq))

    def handle(self, conn, command, amount):
        """Persist the command's event, then apply it.  Returns the seq."""
        event_type, payload = self.decide(command, amount)
        (seq,) = conn.execute(
            "SELECT journal_append('bank', ?, ?, ?)",
            (self.id, json.dumps(payload), event_type)).fetchone()
        self.apply(seq, event_type, payload)
        if seq % SNAPSHOT_EVERY == 0:
            conn.execute("SELECT journal_snapshot('bank', ?, ?, ?)",
                         (self.id, seq, json.dumps({"balance": self.balance})))
        return seq


def open_store(module, store):
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.enable_load_extension(True)
    conn.load_extension(module)
    conn.enable_load_extension(False)
    conn.execute("CREATE VIRTUAL TABLE bank USING lmdb_journal(path=%s)"
                 % sql_quote(store))
    return conn


def sql_quote(s):
    return "'" + s.replace("'", "''") + "'"


def load_snapshot(conn, account_id, upto_seq=None):
    """The account as of its newest snapshot at or below upto_seq, or None.

    One cursor seek: journal_snapshots serves actor_id = ? with a seq bound
    and ORDER BY seq DESC LIMIT 1 without reading other snapshots.
    """
    row = conn.execute(
        "SELECT seq, state FROM journal_snapshots('bank')"
        " WHERE actor_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1",
        (account_id, upto_seq if upto_seq is not None else 2**62)).fetchone()
    if row is None:
        return None
    acct = Account(account_id)
    acct.seq = row[0]
    acct.balance = json.loads(row[1])["balance"]
    return acct


def recover(conn, account_id, upto_seq=None, use_snapshot=True):
    """Rebuild an account from its newest snapshot and the events after it
    (use_snapshot False: from its events alone)."""
    snap = load_snapshot(conn, account_id, upto_seq) if use_snapshot else None
    acct = snap if snap else Account(account_id)
    sql = ("SELECT seq, type, payload FROM bank WHERE actor_id = ? AND seq > ?"
           " ORDER BY seq")
    for seq, event_type, payload in conn.execute(sql, (account_id, acct.seq)):
        if upto_seq is not None and seq > upto_seq:
            break
        acct.apply(seq, event_type, json.loads(payload))
    return acct


def worker(module, store):
    """Handle random commands forever, reporting each acknowledged state."""
    conn = open_store(module, store)
    accounts = {a: recover(conn, a) for a in ACCOUNTS}
    rng = random.Random(os.getpid())
    rejected = 0
    while True:
        for _ in range(BATCH):
            acct = accounts[rng.choice(ACCOUNTS)]
            command = rng.choice(["deposit", "withdraw"])
            try:
                acct.handle(conn, command, rng.randint(1, 100))
            except Rejected:
                rejected += 1
        conn.execute("SELECT journal_sync('bank')").fetchone()
        state = {a: [x.balance, x.seq] for a, x in accounts.items()}
        print("ack " + json.dumps({"state": state, "rejected": rejected}),
              flush=True)


def crash_test(module, store):
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--module", module,
         "--worker", store], stdout=subprocess.PIPE, text=True)
    acks = 0
    for line in child.stdout:
        if line.startswith("ack "):
            acks += 1
            if acks >= ACKS_BEFORE_KILL:
                break
    # Let it run into its next batch, then kill it without warning.
    time.sleep(random.uniform(0.0, 0.02))
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    last = line
    for line in child.stdout:    # acknowledgements already in the pipe
        if line.startswith("ack ") and line.endswith("\n"):
            acks += 1
            last = line
    if child.returncode != -signal.SIGKILL:
        print("FAIL: worker ended with %s, not SIGKILL" % child.returncode)
        return 1
    acked = json.loads(last[4:])
    print("worker killed with SIGKILL after %d acknowledged batches (%d commands"
          " rejected by validation)" % (acks, acked["rejected"]))

    conn = open_store(module, store)
    failures = 0
    unacked = 0
    for a in ACCOUNTS:
        want_balance, want_seq = acked["state"][a]
        at_ack = recover(conn, a, upto_seq=want_seq)
        replayed = recover(conn, a, upto_seq=want_seq, use_snapshot=False)
        full = recover(conn, a)
        unacked += full.seq - want_seq
        ok = ((at_ack.seq, at_ack.balance) == (want_seq, want_balance) and
              (replayed.seq, replayed.balance) == (want_seq, want_balance))
        failures += not ok
        print("%s %s: acknowledged balance %d at seq %d; recovered %d at seq %d;"
              " %d unacknowledged event(s) after it, balance now %d"
              % ("ok" if ok else "FAIL", a, want_balance, want_seq,
                 at_ack.balance, at_ack.seq, full.seq - want_seq, full.balance))
    if unacked > BATCH:
        print("FAIL: %d unacknowledged events, more than one batch" % unacked)
        failures += 1
    if failures:
        return 1
    (nsnap,) = conn.execute(
        "SELECT count(*) FROM journal_snapshots('bank')").fetchone()
    print("ok: recovered state equals the acknowledged state, from the newest"
          " snapshot plus later events and from the events alone (%d"
          " snapshots)" % nsnap)
    return 0


def main(argv):
    module = "lmdbjournal"
    args = list(argv)
    if args[:1] == ["--module"]:
        module = args[1]
        args = args[2:]
    if args[:1] == ["--worker"]:
        return worker(module, args[1])
    store = args[0] if args else "bank-data"
    if not hasattr(sqlite3.Connection, "enable_load_extension"):
        print("FAIL: this Python's sqlite3 cannot load extensions; use"
              " /usr/bin/python3")
        return 1
    return crash_test(module, store)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
