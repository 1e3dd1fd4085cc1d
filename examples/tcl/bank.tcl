# bank.tcl -- event-sourced bank accounts on lmdbjournal, from Tcl.
#
#     tclsh examples/tcl/bank.tcl ?--module PATH? ?STORE-DIR?
#
# The same flow as examples/python/bank.py, with Tcl's sqlite3 package.
# --module defaults to "lmdbjournal", the installed module found by short
# name; give ./build/lmdbjournal to use a build tree.
#
# Each account is an actor: a command (deposit or withdraw a positive amount,
# never below zero) is validated, its event persisted with journal_append,
# and only then applied.  A worker process handles random commands and, after
# every batch, waits for journal_sync and prints the acknowledged state
# (balance and seq per account).  It is killed with SIGKILL mid-run; recovery
# replays the journal and checks that each account's state at the
# acknowledged seq equals the acknowledged state.  Events of the batch in
# flight may follow; they are counted and must be valid.  Exits non-zero on
# any failure.
#
# Every SNAPSHOT_EVERY events an account stores its state with
# journal_snapshot; recovery loads the newest snapshot at or below the seq it
# recovers to and replays only the events after it.  The crash test checks
# recovery from the snapshot and from the events alone.

package require sqlite3

set ACCOUNTS {acct-1 acct-2 acct-3 acct-4 acct-5}
set BATCH 20
set ACKS_BEFORE_KILL 8
set SNAPSHOT_EVERY 7

proc open_store {module store} {
  sqlite3 db :memory:
  db enable_load_extension 1
  db eval {SELECT load_extension($module)}
  db enable_load_extension 0
  db eval "CREATE VIRTUAL TABLE bank USING lmdb_journal(path='[string map {' ''} $store]')"
}

# The event (type and JSON payload) a command causes, or an error
# "rejected: ..." when the account refuses it.
proc decide {balance command amount} {
  if {![string is integer -strict $amount] || $amount <= 0} {
    error "rejected: amount must be a positive integer"
  }
  switch -- $command {
    deposit  { set type Deposited }
    withdraw {
      if {$amount > $balance} { error "rejected: insufficient funds" }
      set type Withdrawn
    }
    default  { error "rejected: unknown command $command" }
  }
  return [list $type [db onecolumn {SELECT json_object('amount', $amount)}]]
}

# Applies one event to the state {balance seq}.
proc apply_event {state seq type amount} {
  lassign $state balance last
  if {$seq != $last + 1} { error "event seq $seq after $last" }
  set balance [expr {$type eq "Deposited" ? $balance + $amount : $balance - $amount}]
  if {$balance < 0} { error "balance below zero at seq $seq" }
  return [list $balance $seq]
}

# Persists the command's event, then applies it; returns the new state.
proc handle {id state command amount} {
  lassign [decide [lindex $state 0] $command $amount] type payload
  set seq [db onecolumn {SELECT journal_append('bank', $id, $payload, $type)}]
  set state [apply_event $state $seq $type $amount]
  if {$seq % $::SNAPSHOT_EVERY == 0} {
    set balance [lindex $state 0]
    db eval {SELECT journal_snapshot('bank', $id, $seq,
                                     json_object('balance', $balance))}
  }
  return $state
}

# The newest snapshot of the account at or below seq $upto as {balance seq},
# or "" when there is none: one cursor seek in journal_snapshots.
proc load_snapshot {id upto} {
  if {$upto eq ""} { set upto [expr {1 << 62}] }
  db eval {
    SELECT seq, json_extract(state, '$.balance') AS balance
    FROM journal_snapshots('bank')
    WHERE actor_id = $id AND seq <= $upto ORDER BY seq DESC LIMIT 1
  } { return [list $balance $seq] }
  return ""
}

# Rebuilds an account from its newest snapshot (unless $useSnapshot is 0)
# and the events after it, up to seq $upto (all events when empty).
proc recover {id {upto ""} {useSnapshot 1}} {
  set state [expr {$useSnapshot ? [load_snapshot $id $upto] : ""}]
  if {$state eq ""} { set state {0 0} }
  set from [lindex $state 1]
  db eval {
    SELECT seq, type, json_extract(payload, '$.amount') AS amount
    FROM bank WHERE actor_id = $id AND seq > $from ORDER BY seq
  } {
    if {$upto ne "" && $seq > $upto} break
    set state [apply_event $state $seq $type $amount]
  }
  return $state
}

proc worker {module store} {
  global ACCOUNTS BATCH
  open_store $module $store
  foreach a $ACCOUNTS { set acct($a) [recover $a] }
  expr {srand([pid])}
  set rejected 0
  while 1 {
    for {set i 0} {$i < $BATCH} {incr i} {
      set a [lindex $ACCOUNTS [expr {int(rand() * [llength $ACCOUNTS])}]]
      set command [expr {rand() < 0.5 ? "deposit" : "withdraw"}]
      if {[catch {handle $a $acct($a) $command [expr {1 + int(rand() * 100)}]} r]} {
        if {![string match rejected:* $r]} { error $r }
        incr rejected
      } else {
        set acct($a) $r
      }
    }
    db eval {SELECT journal_sync('bank')}
    puts [list ack [array get acct] $rejected]
    flush stdout
  }
}

proc crash_test {module store} {
  global ACCOUNTS BATCH ACKS_BEFORE_KILL
  set chan [open |[list [info nameofexecutable] [info script] \
                     --module $module --worker $store] r]
  set acks 0
  set last ""
  while {$acks < $ACKS_BEFORE_KILL && [gets $chan line] >= 0} {
    if {[lindex $line 0] eq "ack"} { incr acks; set last $line }
  }
  after [expr {int(rand() * 20)}]
  exec kill -KILL [pid $chan]
  # Acknowledgements already in the pipe count too.
  while {[gets $chan line] >= 0} {
    if {![catch {lindex $line 0} w] && $w eq "ack" && [llength $line] == 3} {
      incr acks
      set last $line
    }
  }
  set how ""
  if {[catch {close $chan} msg opts]} {
    set how [lrange [dict get $opts -errorcode] 0 2]
  }
  if {[lindex $how 0] ne "CHILDKILLED" || [lindex $how 2] ne "SIGKILL"} {
    puts "FAIL: worker did not end by SIGKILL ($how $msg)"
    return 1
  }
  lassign $last - ackState rejected
  array set acked $ackState
  puts "worker killed with SIGKILL after $acks acknowledged batches\
        ($rejected commands rejected by validation)"

  open_store $module $store
  set failures 0
  set unacked 0
  foreach a $ACCOUNTS {
    lassign $acked($a) wantBalance wantSeq
    set atAck [recover $a $wantSeq]
    set replayed [recover $a $wantSeq 0]
    lassign [recover $a] nowBalance nowSeq
    incr unacked [expr {$nowSeq - $wantSeq}]
    set ok [expr {$atAck eq [list $wantBalance $wantSeq] &&
                  $replayed eq $atAck}]
    if {!$ok} { incr failures }
    puts "[expr {$ok ? "ok" : "FAIL"}] $a: acknowledged balance $wantBalance\
          at seq $wantSeq; recovered [lindex $atAck 0] at seq [lindex $atAck 1];\
          [expr {$nowSeq - $wantSeq}] unacknowledged event(s) after it,\
          balance now $nowBalance"
  }
  if {$unacked > $BATCH} {
    puts "FAIL: $unacked unacknowledged events, more than one batch"
    incr failures
  }
  if {$failures} { return 1 }
  set nsnap [db onecolumn {SELECT count(*) FROM journal_snapshots('bank')}]
  puts "ok: recovered state equals the acknowledged state, from the newest\
        snapshot plus later events and from the events alone ($nsnap snapshots)"
  return 0
}

set module lmdbjournal
set args $argv
if {[lindex $args 0] eq "--module"} {
  set module [lindex $args 1]
  set args [lrange $args 2 end]
}
if {[lindex $args 0] eq "--worker"} {
  worker $module [lindex $args 1]
}
set store [expr {[llength $args] ? [lindex $args 0] : "bank-data"}]
exit [crash_test $module $store]
