package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestFailoverTiny runs the failover benchmark in tiny mode against the
// real broker, so that it cannot rot: one small store, with no standby
// and with one (run, or reported as not available by a binary without
// --standby-replicas). It checks that every figure is there and the
// files are written; it asserts no timing.
func TestFailoverTiny(t *testing.T) {
	o, log := tinyOptions(t, "failover")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := RunFailover(ctx, FailoverOptions{Options: o, Standbys: []int{0, 1}})
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 2 {
		t.Fatalf("%d runs, want 2: %+v", len(rep.Runs), rep.Runs)
	}
	for _, run := range rep.Runs {
		if run.Standbys > 0 && run.Unavailable != "" {
			t.Logf("%d standby: not available: %s", run.Standbys, run.Unavailable)
			continue
		}
		if run.Unavailable != "" {
			t.Errorf("%d standby: not available: %s", run.Standbys, run.Unavailable)
			continue
		}
		if len(run.Killed) == 0 || len(run.Killed) >= int(rep.Settings.Partitions) || len(run.Partitions) != len(run.Killed) {
			t.Errorf("%d standby: killed partitions %v, measured %+v", run.Standbys, run.Killed, run.Partitions)
		}
		for _, p := range run.Partitions {
			if !(p.Recovered > 0) || !(p.Assigned > 0) || !(p.Restored > 0) {
				t.Errorf("%d standby: partition %+v", run.Standbys, p)
			}
		}
		if !(run.FailoverMax > 0) || run.FailoverMedian > run.FailoverMax {
			t.Errorf("%d standby: failover max %v, median %v", run.Standbys, run.FailoverMax, run.FailoverMedian)
		}
		if run.Restored < 0 || run.Restored != run.RestoredLog || run.Restored > run.ChangelogAtKill {
			t.Errorf("%d standby: restored %d (log %d) of %d changelog records", run.Standbys, run.Restored, run.RestoredLog, run.ChangelogAtKill)
		}
		if run.Standbys == 0 && run.Restored == 0 {
			t.Errorf("no standby: the new owner restored nothing")
		}
		if run.Outcomes != run.Produced || run.Produced == 0 {
			t.Errorf("%d standby: %d outcomes for %d input records", run.Standbys, run.Outcomes, run.Produced)
		}
		if run.Latency.Samples == 0 || run.LatencyKilled.Samples == 0 || run.LatencyBefore.Samples == 0 {
			t.Errorf("%d standby: latency windows %+v %+v %+v", run.Standbys, run.Latency, run.LatencyKilled, run.LatencyBefore)
		}
	}
	if rep.Settings.SessionTimeout == "" || rep.UptimeBefore == "" || rep.UptimeAfter == "" {
		t.Errorf("settings or uptime missing: %+v, %q, %q", rep.Settings, rep.UptimeBefore, rep.UptimeAfter)
	}
	files, err := rep.WriteFiles(o.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || !strings.HasSuffix(files[0], "-failover.md") {
		t.Errorf("wrote %v", files)
	}
	if md := rep.Markdown(); !strings.Contains(md, "| store (orders) | standbys |") || !strings.Contains(md, "session timeout 10s") {
		t.Errorf("the report lacks the table or the session timeout:\n%s", md)
	}
}
