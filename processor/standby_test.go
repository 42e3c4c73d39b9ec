package processor_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
)

// TestRebalanceWithStandbys runs three instances (two threads each) with
// one standby copy of each partition, under load: one leaves with SIGTERM, one is SIGKILLed,
// a new one joins with an empty state dir. Outputs are exactly once and
// the changelog equals replay's states; every partition is restored before
// it is processed; the partitions that went to an instance holding their
// standby copy were restored from that copy: only a tail, far below the
// partition's size; and the new instance (whose copies are far behind
// when it joins: the acceptable recovery lag is small) warmed up every
// partition before it took it over, so it too restored only tails.
func TestRebalanceWithStandbys(t *testing.T) {
	realOnly(t, func(t *testing.T, c *kafkatest.Cluster) {
		e := newEnv(t, c, 12)
		e.standby, e.recoveryLag = 1, 200
		e.cfg.Threads = 2 // two group members per instance, one store: standbys are per instance
		items := workload.Generate(workload.Options{Seed: 37, Orders: 6000})
		produced := e.produceSlowly(t, items, 30*time.Second)
		a := e.startChild(t, "a", t.TempDir(), processor.ExactlyOnce)
		b := e.startChild(t, "b", t.TempDir(), processor.ExactlyOnce)
		cc := e.startChild(t, "c", t.TempDir(), processor.ExactlyOnce)
		time.Sleep(10 * time.Second) // standbys placed and following
		b.term(t)
		t.Log("b left (SIGTERM)")
		time.Sleep(5 * time.Second)
		cc.kill()
		t.Log("c killed (SIGKILL)")
		// Its partitions move once its session times out (6 s).
		time.Sleep(10 * time.Second)
		d := e.startChild(t, "d", t.TempDir(), processor.ExactlyOnce) // empty state dir
		t.Log("d joined with an empty state dir")
		<-produced
		e.waitOutputs(t, len(items), 3*time.Minute, a, d)
		a.term(t)
		d.term(t)
		checkExactlyOnce(t, items, e.readOutputs(t))
		e.checkChangelog(t, items)

		promoted := 0
		for _, ch := range []*child{a, b, d} {
			pending := map[string]bool{}
			standbys := 0
			for _, l := range ch.logLines(t) {
				switch l["msg"] {
				case "partitions assigned", "partitions revoked", "standby partition added", "standby partition dropped", "partition restored",
					"warming up partitions before owning them", "warm-up copies caught up; rejoining the group so that they move here":
					if testing.Verbose() {
						t.Logf("%s %s: %v %v records=%v standby=%v", ch.name, l["msg"], l["partitions"], l["partition"], l["records"], l["standby"])
					}
				}
				switch l["msg"] {
				case "partitions assigned":
					for _, p := range l["partitions"].([]any) {
						pending[fmt.Sprint(p)] = true
					}
				case "partitions revoked":
					for _, p := range l["partitions"].([]any) {
						delete(pending, fmt.Sprint(p))
					}
				case "standby partition added":
					standbys++
				case "records from a partition that is not restored; aborting the batch":
					t.Errorf("%s processed partition %v before restoring it", ch.name, l["partition"])
				case "partition restored":
					delete(pending, fmt.Sprint(l["partition"]))
					if ch == d && l["standby"] != true {
						t.Errorf("%s took partition %v over without warming it up (restored %v records)", ch.name, l["partition"], l["records"])
					}
					if l["standby"] != true {
						continue
					}
					promoted++
					records, to := l["records"].(float64), l["to"].(float64)
					t.Logf("%s promoted its standby copy of partition %v: restored %v records of %v offsets", ch.name, l["partition"], records, to)
					if to >= 400 && records > to/4 {
						t.Errorf("%s restored %v records of partition %v from its standby copy, of %v offsets: not a tail", ch.name, records, l["partition"], to)
					}
				}
			}
			for p := range pending {
				t.Errorf("%s was assigned partition %s and neither restored nor gave it up", ch.name, p)
			}
			if ch != d && standbys == 0 {
				t.Errorf("%s followed no standby partition", ch.name)
			}
		}
		if promoted == 0 {
			t.Error("no partition went to the instance holding its standby copy")
		}
	})
}
