# report.tcl -- read-only reporting on a store while the application appends.
#
#     tclsh examples/readonly/report.tcl ?--module PATH? ?DIR?
#
# --module defaults to "lmdbjournal" (the installed module, by short name).
# The application (a child process, this script with --app) keeps its
# journal table in DIR/app.db, on the store DIR/store, and appends batches
# of events, syncing each.  This process opens DIR/app.db read-only, as an
# analyst's tool would (file:app.db?mode=ro), and runs reports while the
# application appends: the totals must grow and every report must be one
# consistent snapshot (count = highest pos, each actor's seqs contiguous).
#
# It then probes what a read-only connection can still change: INSERT and
# the writing functions, through mode=ro, immutable=1 and PRAGMA query_only.
# Each must be refused, except journal_append under query_only, which
# docs/api.md says is not covered (use mode=ro).  Exits non-zero on failure.

package require sqlite3

proc load_into {db module} {
  $db enable_load_extension 1
  $db eval {SELECT load_extension($module)}
  $db enable_load_extension 0
}

proc app {module dir nBatch} {
  sqlite3 db [file join $dir app.db]
  load_into db $module
  db eval {CREATE VIRTUAL TABLE IF NOT EXISTS j USING lmdb_journal(path='store')}
  for {set b 1} {$b <= $nBatch} {incr b} {
    for {set i 0} {$i < 10} {incr i} {
      set actor "sensor-[expr {$i % 4}]"
      db eval {SELECT journal_append('j', $actor, json_object('v', $b * 10 + $i),
                                     'Reading', NULL, '["reading"]')}
    }
    db eval {SELECT journal_sync('j')}
    if {$b == 1} { puts started; flush stdout }
    after 5
  }
  puts done
  exit 0
}

# One report: totals per actor, checked for consistency.  Returns the count.
proc report {db} {
  set rows [$db eval {
    SELECT actor_id, count(*), min(seq), max(seq) FROM j GROUP BY actor_id
  }]
  lassign [$db eval {SELECT count(*), max(pos) FROM j}] n maxPos
  foreach {actor cnt lo hi} $rows {
    if {$lo != 1 || $hi != $cnt} { error "$actor: seqs $lo..$hi but $cnt events" }
  }
  if {$n != $maxPos} { error "count $n but highest pos $maxPos" }
  return $n
}

set nProbe 0
set nRefused 0
set nFail 0

# Tries a write through $db; says whether it was refused.  A write that
# should have been refused (bMust) fails the run.
proc probe {what label db sql {bMust 1}} {
  set before [$db eval {SELECT count(*) FROM j}]
  set rc [catch {$db eval $sql} msg]
  set after [$db eval {SELECT count(*) FROM j}]
  if {$rc} {
    incr ::nRefused
    set verdict "refused: $msg"
  } elseif {$bMust} {
    incr ::nFail
    set verdict "FAIL: it wrote ($before -> $after events, returned '$msg')"
  } else {
    set verdict "writes, as documented (query_only does not cover it)"
  }
  incr ::nProbe
  puts [format "  %-10s %-16s %s" $what $label $verdict]
}

proc main {module dir} {
  file mkdir $dir
  set cwd [pwd]
  cd $dir
  set chan [open |[list [info nameofexecutable] [file join $cwd [info script]] \
                     --module $module --app . 150] r]
  if {[gets $chan line] < 0 || $line ne "started"} { error "application did not start" }

  sqlite3 ro file:app.db?mode=ro -uri 1
  load_into ro $module
  set seen [list]
  fconfigure $chan -blocking 0
  while {[gets $chan line] < 0 && ![eof $chan]} {
    set n [report ro]
    if {[llength $seen] && $n < [lindex $seen end]} { error "count went back to $n" }
    if {[lindex $seen end] != $n} { lappend seen $n }
    after 20
  }
  fconfigure $chan -blocking 1
  close $chan
  set final [report ro]
  puts "reports during appends saw [llength $seen] different totals:\
        [lrange $seen 0 5]... final $final"
  if {[llength $seen] < 3 || $final != 1500} {
    puts "FAIL: expected growing totals and 1500 events at the end"
    exit 1
  }
  puts "ok: read-only connection (file:app.db?mode=ro) reads consistent, growing reports"
  ro close

  puts "writes through read-only connections:"
  foreach {name uri} {mode=ro file:app.db?mode=ro immutable file:app.db?immutable=1} {
    sqlite3 p $uri -uri 1
    load_into p $module
    probe $name INSERT p {INSERT INTO j(actor_id, payload) VALUES ('probe', 'x')}
    probe $name journal_append p {SELECT journal_append('j', 'probe', 'x')}
    probe $name journal_truncate p {SELECT journal_truncate('j', 'probe', NULL)}
    p close
  }
  sqlite3 p :memory:
  load_into p $module
  p eval {CREATE VIRTUAL TABLE j USING lmdb_journal(path='store'); PRAGMA query_only = 1}
  probe query_only INSERT p {INSERT INTO j(actor_id, payload) VALUES ('probe', 'x')}
  probe query_only journal_append p {SELECT journal_append('j', 'probe', 'x')} 0
  probe query_only journal_truncate p {SELECT journal_truncate('j', 'probe', NULL)}
  p close
  cd $cwd
  if {$::nFail} {
    puts "FAIL: $::nFail write probes wrote through a read-only connection"
    exit 1
  }
  puts "ok: reads work read-only; $::nRefused of $::nProbe write probes refused"
  return 0
}

set module lmdbjournal
set args $argv
if {[lindex $args 0] eq "--module"} {
  set module [lindex $args 1]
  set args [lrange $args 2 end]
}
if {[lindex $args 0] eq "--app"} {
  app $module [lindex $args 1] [lindex $args 2]
}
exit [main $module [expr {[llength $args] ? [lindex $args 0] : "readonly-data"}]]
