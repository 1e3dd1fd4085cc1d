# tester.tcl -- the harness every test/*.test file sources.
#
# A test file reads:
#
#     source [file join [file dirname [info script]] tester.tcl]
#     ljopen db
#     do_execsql_test table-basics-1 { SELECT 1 } {1}
#     finish_test
#
# and is run, one fresh tclsh per file, by test/all.tcl as
#
#     tclsh file.test --build DIR --tmp TMPDIR [--quick] [--soak]
#
# Globals set here:
#   ::REPO   the repository root (parent of test/)
#   ::BUILD  the build directory, absolute (default <repo>/build)
#   ::EXT    the extension for load_extension: $::BUILD/lmdbjournal (no suffix)
#   ::TMP    this file's scratch directory (fresh: made under /tmp if not given)
#   ::QUICK  1 with --quick (sanitizer runs: shrink big loops), else 0
#   ::SOAK   1 with --soak (long stress runs), else 0
#   ::LJ_CHILD  1 in a child started by lj_spawn_tclsh (no header, no exit)
#
# Test commands (each case prints "NAME... Ok" or "NAME... FAILED"):
#   do_test NAME SCRIPT EXPECTED        SCRIPT runs at global level
#   do_execsql_test NAME SQL EXPECTED   flat list of every value, handle db
#   do_catchsql_test NAME SQL EXPECTED  {0 rows} or {1 message}, handle db
#   do_eqp_test NAME SQL EXPECTED       EXPLAIN QUERY PLAN details, glob
#   finish_test                         "N errors out of M tests", exit 1/0
#
# EXPECTED matches when it equals the result, or when it is /regexp/ and the
# regexp matches, or when it starts and ends with * and the glob matches.
# Failing that, when EXPECTED and the result are lists of the same length
# (2 or more) each element is matched that way, so do_catchsql_test's
# {1 {*map_size*}} accepts any error message mentioning map_size.
#
# Helpers:
#   ljopen ?handle? ?dbfile?     open sqlite3 handle, load $::EXT, return name
#   execsql SQL ?handle?         db eval, flat list
#   catchsql SQL ?handle?        {0 rows} or {1 message}
#   lj_match EXPECTED GOT        exact, /regexp/ or *glob*, 1/0
#   lj_match_list EXPECTED GOT   the rule above incl. element-wise, 1/0
#   lj_tmpdir NAME               $::TMP/NAME, created, absolute
#   lj_tmpname NAME              $::TMP/NAME, not created (removed if present)
#   lj_wait_file PATH ?ms?       wait for PATH to exist; 1 if it did, 0 if not
#   lj_spawn_tclsh SCRIPT        run SCRIPT in a child tclsh that has sourced
#                                this file (child mode); return its output;
#                                error if the child fails
#   lj_spawn_bg SCRIPT           same, in the background; returns a handle
#   lj_spawn_wait HANDLE         wait for a background child, return output
#   lj_sql_quote STR             STR as an SQL string literal
#   lj_n QUICK FULL              QUICK under --quick, else FULL
#   lj_preload LIB               LD_PRELOAD value for a child that adds LIB

package require Tcl 8.6
package require sqlite3

if {![info exists ::LJ_CHILD]} { set ::LJ_CHILD 0 }

set ::REPO [file normalize [file join [file dirname [info script]] ..]]
set ::TESTFILE [file tail [info script]]
if {[info exists ::argv0] && $::argv0 ne ""} {
  set ::TESTFILE [file tail $::argv0]
}

proc lj_usage {msg} {
  puts stderr "$::TESTFILE: $msg"
  puts stderr "usage: tclsh FILE.test ?--build DIR? ?--tmp DIR? ?--quick? ?--soak?"
  exit 2
}

# Parse the command line.
set ::BUILD [file join $::REPO build]
set ::TMP ""
set ::QUICK 0
set ::SOAK 0
for {set i 0} {$i < [llength $::argv]} {incr i} {
  set a [lindex $::argv $i]
  switch -- $a {
    --build {
      incr i
      if {$i >= [llength $::argv]} { lj_usage "--build needs a directory" }
      set ::BUILD [lindex $::argv $i]
    }
    --tmp {
      incr i
      if {$i >= [llength $::argv]} { lj_usage "--tmp needs a directory" }
      set ::TMP [lindex $::argv $i]
    }
    --quick { set ::QUICK 1 }
    --soak  { set ::SOAK 1 }
    --child { set ::LJ_CHILD 1 }
    default { lj_usage "unknown argument $a" }
  }
}
if {[file pathtype $::BUILD] ne "absolute"} {
  # Relative --build is taken from the current directory if it exists there,
  # else from the repository root.
  if {[file isdirectory $::BUILD]} {
    set ::BUILD [file normalize $::BUILD]
  } else {
    set ::BUILD [file normalize [file join $::REPO $::BUILD]]
  }
}
set ::EXT [file join $::BUILD lmdbjournal]

set ::LJ_OWN_TMP 0
if {$::TMP eq ""} {
  set base [file rootname $::TESTFILE]
  set n 0
  while 1 {
    set ::TMP [file join /tmp "ljtest-$base-[pid]-[clock milliseconds]-$n"]
    if {![file exists $::TMP]} break
    incr n
  }
  set ::LJ_OWN_TMP 1
}
set ::TMP [file normalize $::TMP]
file mkdir $::TMP

# Bookkeeping.
set ::LJ_NTEST 0
set ::LJ_NFAIL 0
set ::LJ_FAILED [list]
array set ::LJ_SEEN {}
set ::LJ_HANDLES [list]
set ::LJ_CHILDSEQ 0

#--------------------------------------------------------------------------
# Matching and reporting.

proc lj_match {expected got} {
  if {$expected eq $got} { return 1 }
  set n [string length $expected]
  if {$n >= 2 && [string index $expected 0] eq "/"
      && [string index $expected end] eq "/"} {
    return [regexp -- [string range $expected 1 end-1] $got]
  }
  if {$n >= 1 && [string index $expected 0] eq "*"
      && [string index $expected end] eq "*"} {
    return [string match $expected $got]
  }
  return 0
}

proc lj_fail {name msg {prefixed 0}} {
  incr ::LJ_NFAIL
  lappend ::LJ_FAILED $name
  if {$prefixed} { puts " FAILED" } else { puts "$name... FAILED" }
  foreach line [split $msg \n] { puts "  $line" }
  flush stdout
}

# lj_match, or else element by element (recursively) when EXPECTED and GOT
# are lists of the same length (at least 2), so {1 1 {*map_size*}} matches
# {1 1 {bad map_size}} and {{1 *} 0} matches {{1 {some error}} 0}.
proc lj_match_list {expected got} {
  if {[lj_match $expected $got]} { return 1 }
  if {[catch {llength $expected} n] || $n < 2} { return 0 }
  if {[catch {llength $got} m] || $m != $n} { return 0 }
  foreach e $expected g $got {
    if {![lj_match_list $e $g]} { return 0 }
  }
  return 1
}

# Run one case: $body is evaluated at global level; $matcher is a command
# prefix given EXPECTED and the result.
proc lj_run_case {name body expected {matcher lj_match_list}} {
  incr ::LJ_NTEST
  if {[info exists ::LJ_SEEN($name)]} {
    lj_fail $name "duplicate test name"
    return
  }
  set ::LJ_SEEN($name) 1
  puts -nonewline "$name..."
  flush stdout
  set rc [catch {uplevel #0 $body} result opts]
  if {$rc == 1} {
    lj_fail $name "error: $result\n[dict get $opts -errorinfo]" 1
    return
  }
  if {$rc != 0 && $rc != 2} {
    lj_fail $name "unexpected return code $rc: $result" 1
    return
  }
  if {[{*}$matcher $expected $result]} {
    puts " Ok"
    flush stdout
  } else {
    lj_fail $name "Expected: \[$expected\]\n     Got: \[$result\]" 1
  }
}

proc do_test {name script expected} {
  lj_run_case $name $script $expected
}

proc execsql {sql {h db}} {
  return [uplevel #0 [list $h eval $sql]]
}

proc catchsql {sql {h db}} {
  set rc [catch {uplevel #0 [list $h eval $sql]} res]
  return [list $rc $res]
}

proc do_execsql_test {name sql expected} {
  lj_run_case $name [list execsql $sql] $expected
}

proc do_catchsql_test {name sql expected} {
  lj_run_case $name [list catchsql $sql] $expected
}

proc lj_eqp {sql {h db}} {
  set lines [list]
  $h eval "EXPLAIN QUERY PLAN $sql" row {
    lappend lines $row(detail)
  }
  return [join $lines \n]
}

proc lj_match_glob {expected got} {
  if {$expected eq $got} { return 1 }
  if {[string length $expected] >= 2 && [string index $expected 0] eq "/"
      && [string index $expected end] eq "/"} {
    return [regexp -- [string range $expected 1 end-1] $got]
  }
  return [string match $expected $got]
}

proc do_eqp_test {name sql expected} {
  lj_run_case $name [list lj_eqp $sql] $expected lj_match_glob
}

proc finish_test {} {
  lj_close_all
  if {$::LJ_CHILD} { return }
  puts "$::LJ_NFAIL errors out of $::LJ_NTEST tests"
  if {$::LJ_NFAIL} {
    puts "Failures on these tests: $::LJ_FAILED"
    puts "Scratch directory kept: $::TMP"
  } elseif {$::LJ_OWN_TMP} {
    catch {file delete -force $::TMP}
  }
  flush stdout
  exit [expr {$::LJ_NFAIL ? 1 : 0}]
}

#--------------------------------------------------------------------------
# Connections.

proc ljopen {{h db} {file :memory:}} {
  if {[llength [info commands $h]]} { catch {$h close} }
  sqlite3 $h $file
  $h enable_load_extension 1
  $h eval {SELECT load_extension($::EXT)}
  if {[lsearch -exact $::LJ_HANDLES $h] < 0} { lappend ::LJ_HANDLES $h }
  return $h
}

# Close every handle ljopen made that is still open (so writers flush and
# join before the process exits).
proc lj_close_all {} {
  foreach h $::LJ_HANDLES {
    if {[llength [info commands $h]]} { catch {$h close} }
  }
  set ::LJ_HANDLES [list]
}

proc lj_sql_quote {s} {
  return "'[string map {' ''} $s]'"
}

proc lj_n {quick full} {
  expr {$::QUICK ? $quick : $full}
}

#--------------------------------------------------------------------------
# Files and directories.

proc lj_tmpdir {name} {
  set d [file join $::TMP $name]
  file mkdir $d
  return $d
}

proc lj_tmpname {name} {
  set d [file join $::TMP $name]
  file delete -force $d
  return $d
}

proc lj_wait_file {path {ms 10000}} {
  set end [expr {[clock milliseconds] + $ms}]
  while {![file exists $path]} {
    if {[clock milliseconds] >= $end} { return 0 }
    after 10
  }
  return 1
}

#--------------------------------------------------------------------------
# Child processes.  The child sources this file in child mode: same ::BUILD,
# ::TMP, ::QUICK and ::SOAK, no header, and finish_test does not exit.

proc lj_child_file {script} {
  set n [incr ::LJ_CHILDSEQ]
  set f [file join $::TMP "child-$n.tcl"]
  set args [list --build $::BUILD --tmp $::TMP --child]
  if {$::QUICK} { lappend args --quick }
  if {$::SOAK} { lappend args --soak }
  set fd [open $f w]
  puts $fd "set ::LJ_CHILD 1"
  puts $fd [list set ::argv $args]
  puts $fd [list source [file join $::REPO test tester.tcl]]
  puts $fd $script
  puts $fd "lj_close_all"
  close $fd
  return $f
}

proc lj_tclsh {} {
  set t [info nameofexecutable]
  if {$t eq ""} { set t tclsh }
  return $t
}

# LD_PRELOAD for a child with $lib preloaded too: after what this process
# preloads (the sanitizer runtimes of make test-asan must come first).
proc lj_preload {lib} {
  set l ""
  if {[info exists ::env(LD_PRELOAD)]} { set l $::env(LD_PRELOAD) }
  return [string trim "$l $lib"]
}

proc lj_spawn_tclsh {script} {
  set f [lj_child_file $script]
  return [exec [lj_tclsh] $f 2>@1]
}

proc lj_spawn_bg {script} {
  set f [lj_child_file $script]
  return [open [list | [lj_tclsh] $f 2>@1] r]
}

proc lj_spawn_wait {chan} {
  fconfigure $chan -blocking 1
  set out [read $chan]
  if {[catch {close $chan} msg]} {
    error "child failed: $msg\n$out"
  }
  return [string trimright $out \n]
}

if {!$::LJ_CHILD} {
  puts "$::TESTFILE: build=$::BUILD tmp=$::TMP quick=$::QUICK soak=$::SOAK"
  flush stdout
}
