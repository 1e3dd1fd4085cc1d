# all.tcl -- run the Tcl test suite.
#
#     tclsh test/all.tcl ?--build DIR? ?--quick? ?--soak? ?--timeout SECONDS?
#                        ?FILE-OR-GLOB ...?
#
# --timeout is per file (default 900 s, 7200 s with --soak).
#
# Runs every test/*.test (sorted), or only the files named or matched by the
# arguments (a bare name such as "insert" or "insert.test" is looked up in
# test/), each in a fresh tclsh with a fresh scratch directory under /tmp.
# The scratch directory of a passing file is removed; a failing file's is
# kept and named.  Each file's output is streamed; its summary line
# "N errors out of M tests" is added up.  A file that exits abnormally, times
# out or prints no summary counts as one failed case.  The last line is
#
#     N passed, N failed
#
# and the exit status is non-zero if anything failed.

set testdir [file dirname [file normalize [info script]]]
set repo [file dirname $testdir]

set build [file join $repo build]
set passargs [list]
set timeout ""
set patterns [list]
for {set i 0} {$i < [llength $argv]} {incr i} {
  set a [lindex $argv $i]
  switch -- $a {
    --build {
      incr i
      set build [lindex $argv $i]
    }
    --quick - --soak { lappend passargs $a }
    --timeout {
      incr i
      set timeout [lindex $argv $i]
    }
    default {
      if {[string match -* $a]} {
        puts stderr "all.tcl: unknown option $a"
        exit 2
      }
      lappend patterns $a
    }
  }
}
# A file that runs longer than this (seconds) is killed and counts as failed.
if {$timeout eq ""} {
  set timeout [expr {[lsearch -exact $passargs --soak] >= 0 ? 7200 : 900}]
}
if {[file pathtype $build] ne "absolute"} {
  if {[file isdirectory $build]} {
    set build [file normalize $build]
  } else {
    set build [file normalize [file join $repo $build]]
  }
}

# Select the files.
set files [list]
if {[llength $patterns] == 0} {
  set files [lsort [glob -nocomplain -directory $testdir *.test]]
} else {
  foreach p $patterns {
    set cands [list $p [file join $testdir $p] [file join $testdir $p.test]]
    set found [list]
    foreach c $cands {
      foreach f [glob -nocomplain -- $c] {
        if {[file isfile $f] && [string match *.test $f]} { lappend found $f }
      }
      if {[llength $found]} break
    }
    if {[llength $found] == 0} {
      puts stderr "all.tcl: no test file matches $p"
      exit 2
    }
    foreach f $found { lappend files [file normalize $f] }
  }
  set files [lsort -unique $files]
}
if {[llength $files] == 0} {
  puts stderr "all.tcl: no test files"
  exit 2
}

set tclsh [info nameofexecutable]
if {$tclsh eq ""} { set tclsh tclsh }

set totalPass 0
set totalFail 0
set report [list]

proc readable {chan} {
  global done lastSummary
  if {[gets $chan line] >= 0} {
    puts $line
    flush stdout
    if {[regexp {^(\d+) errors out of (\d+) tests$} $line -> e n]} {
      set lastSummary [list $e $n]
    }
  } elseif {[eof $chan]} {
    set done eof
  }
}

foreach f $files {
  set name [file tail $f]
  set n 0
  while 1 {
    set tmp [file join /tmp "ljtest-[file rootname $name]-[pid]-[clock milliseconds]-$n"]
    if {![file exists $tmp]} break
    incr n
  }
  file mkdir $tmp

  set cmd [list $tclsh $f --build $build --tmp $tmp {*}$passargs]
  set t0 [clock milliseconds]
  set chan [open |[concat $cmd [list 2>@1]] r]
  fconfigure $chan -blocking 0 -buffering line
  set lastSummary ""
  set done ""
  fileevent $chan readable [list readable $chan]
  set timer [after [expr {$timeout * 1000}] {set done timeout}]
  vwait done
  after cancel $timer

  set status ""
  if {$done eq "timeout"} {
    foreach p [pid $chan] { catch {exec kill -9 $p} }
    set status "timed out after ${timeout}s"
  }
  fconfigure $chan -blocking 1
  if {[catch {close $chan} msg opts]} {
    set ec [dict get $opts -errorcode]
    if {$status eq ""} {
      switch -- [lindex $ec 0] {
        CHILDSTATUS { set status "exit status [lindex $ec 2]" }
        CHILDKILLED { set status "killed by [lindex $ec 2]" }
        default     { set status "abnormal end: $msg" }
      }
    }
  }
  set ms [expr {[clock milliseconds] - $t0}]

  if {$lastSummary eq ""} {
    incr totalFail
    if {$status eq ""} { set status "exit status 0" }
    set line "$name: no summary line ($status)"
    puts $line
    lappend report $line
  } else {
    lassign $lastSummary e m
    incr totalFail $e
    incr totalPass [expr {$m - $e}]
    if {$e == 0 && $status ne ""} {
      # Claimed success but ended badly: count it.
      incr totalFail
      set line "$name: all $m passed but the process ended badly ($status)"
      puts $line
      lappend report $line
    } elseif {$e > 0} {
      lappend report "$name: $e of $m failed ($status)"
    }
  }
  set ok [expr {$lastSummary ne "" && [lindex $lastSummary 0] == 0 && $status eq ""}]
  if {$ok} {
    catch {file delete -force $tmp}
  } else {
    lappend report "  scratch directory kept: $tmp"
  }
  puts "--- $name: [expr {$ok ? "ok" : "FAILED"}] in [format %.1f [expr {$ms/1000.0}]]s"
  flush stdout
}

if {[llength $report]} {
  puts ""
  puts "Failures:"
  foreach l $report { puts "  $l" }
}
puts "$totalPass passed, $totalFail failed"
exit [expr {$totalFail ? 1 : 0}]
