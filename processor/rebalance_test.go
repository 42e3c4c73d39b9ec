package processor_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
)

// TestRebalance runs three instances; during the stream one leaves with
// SIGTERM, one is SIGKILLed and a new one joins with an empty state dir.
// Outputs are exactly once and equal replay's, and every instance restored
// each partition it was given before it processed any of it.
func TestRebalance(t *testing.T) {
	realOnly(t, func(t *testing.T, c *kafkatest.Cluster) {
		e := newEnv(t, c, 12)
		items := workload.Generate(workload.Options{Seed: 31, Orders: 4000})
		produced := e.produceSlowly(t, items, 15*time.Second)
		a := e.startChild(t, "a", t.TempDir(), processor.ExactlyOnce)
		b := e.startChild(t, "b", t.TempDir(), processor.ExactlyOnce)
		cc := e.startChild(t, "c", t.TempDir(), processor.ExactlyOnce)
		time.Sleep(5 * time.Second)
		b.term(t) // leaves the group cleanly
		t.Log("b left (SIGTERM)")
		time.Sleep(3 * time.Second)
		cc.kill() // crashes
		t.Log("c killed (SIGKILL)")
		time.Sleep(2 * time.Second)
		d := e.startChild(t, "d", t.TempDir(), processor.ExactlyOnce) // empty state dir
		t.Log("d joined with an empty state dir")
		<-produced
		e.waitOutputs(t, len(items), 2*time.Minute, a, d)
		a.term(t)
		d.term(t)
		checkExactlyOnce(t, items, e.readOutputs(t))
		e.checkChangelog(t, items)

		// Restore before processing: an instance logs "partition restored"
		// for each partition it was assigned, unless the partition was
		// revoked first (b may leave while still restoring), and never
		// processes records of a partition it has not restored (it would
		// log a warning and abort the batch).
		for _, ch := range []*child{a, b, d} {
			pending := map[string]bool{} // assigned, not yet restored or revoked
			restores := 0
			for _, l := range ch.logLines(t) {
				switch l["msg"] {
				case "partitions assigned":
					for _, p := range l["partitions"].([]any) {
						pending[fmt.Sprint(p)] = true
					}
				case "partition restored":
					delete(pending, fmt.Sprint(l["partition"]))
					restores++
				case "partitions revoked":
					for _, p := range l["partitions"].([]any) {
						delete(pending, fmt.Sprint(p))
					}
				case "records from a partition that is not restored; aborting the batch":
					t.Errorf("%s processed partition %v before restoring it", ch.name, l["partition"])
				}
			}
			for p := range pending {
				t.Errorf("%s was assigned partition %s and neither restored nor gave it up", ch.name, p)
			}
			if restores == 0 {
				t.Errorf("%s restored no partition", ch.name)
			}
			t.Logf("%s: %d restores", ch.name, restores)
		}
	})
}
