package processor_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
)

// produceSlowly produces items in chunks over about d, in the background.
func (e *env) produceSlowly(t *testing.T, items []workload.Item, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	chunks := 20
	go func() {
		defer close(done)
		for i := 0; i < chunks; i++ {
			lo, hi := i*len(items)/chunks, (i+1)*len(items)/chunks
			e.produce(t, items[lo:hi])
			time.Sleep(d / time.Duration(chunks))
		}
	}()
	return done
}

// TestExactlyOnceUnderCrashes SIGKILLs the processor (a child process) at
// random moments while events flow, restarting it each time on the same
// state dir: the committed outputs hold exactly one outcome per event, equal
// to replay's, and the changelog's final states equal replay's.
//
// The processor runs two threads (two group members and transactional ids
// over one store), so partitions also move between threads of one process.
func TestExactlyOnceUnderCrashes(t *testing.T) {
	realOnly(t, func(t *testing.T, c *kafkatest.Cluster) {
		e := newEnv(t, c, 6)
		e.cfg.Threads = 2
		items := workload.Generate(workload.Options{Seed: 21, Orders: 3000})
		produced := e.produceSlowly(t, items, 12*time.Second)
		dir := t.TempDir()
		rng := rand.New(rand.NewPCG(5, 6))
		for i := 0; i < 5; i++ {
			ch := e.startChild(t, "crashy", dir, processor.ExactlyOnce)
			time.Sleep(time.Duration(1500+rng.IntN(2500)) * time.Millisecond)
			ch.kill()
			t.Logf("SIGKILL %d", i+1)
		}
		<-produced
		ch := e.startChild(t, "crashy", dir, processor.ExactlyOnce)
		e.waitOutputs(t, len(items), 90*time.Second, ch)
		ch.term(t)
		checkExactlyOnce(t, items, e.readOutputs(t))
		e.checkChangelog(t, items)
	})
}

// TestAtLeastOnceUnderCrashes is the crash test in at_least_once mode:
// nothing is lost (every event has an outcome, every malformed record a dead
// letter); duplicates are allowed and reported. A duplicate is refused by
// the order's duplicate window, so the changelog's final states still equal
// replay's: a batch that read a state older than the last batch's (which
// at_least_once commits while the next one runs) would break that.
//
// Two threads, as in the exactly_once test: partitions also move between
// threads of one process.
func TestAtLeastOnceUnderCrashes(t *testing.T) {
	realOnly(t, func(t *testing.T, c *kafkatest.Cluster) {
		e := newEnv(t, c, 6)
		e.cfg.Threads = 2
		items := workload.Generate(workload.Options{Seed: 22, Orders: 3000})
		produced := e.produceSlowly(t, items, 12*time.Second)
		dir := t.TempDir()
		rng := rand.New(rand.NewPCG(7, 8))
		for i := 0; i < 5; i++ {
			ch := e.startChild(t, "crashy", dir, processor.AtLeastOnce)
			time.Sleep(time.Duration(1500+rng.IntN(2500)) * time.Millisecond)
			ch.kill()
		}
		<-produced
		ch := e.startChild(t, "crashy", dir, processor.AtLeastOnce)
		e.waitOutputs(t, len(items), 90*time.Second, ch)
		ch.term(t)
		o := e.readOutputs(t)
		want, _ := replay(items)
		dups := 0
		for id, w := range want {
			got := o.byEvent[id]
			if len(got) < len(w) {
				t.Fatalf("event %s lost: want %v, got %v", id, w, got)
			}
			dups += len(got) - len(w)
		}
		malformed := 0
		for _, it := range items {
			if it.Malformed != nil {
				malformed++
			}
		}
		if len(o.dlq) < malformed {
			t.Fatalf("%d dead letters, want at least %d", len(o.dlq), malformed)
		}
		t.Logf("at_least_once: %d events, %d duplicate outcomes, %d dead letters (%d malformed)", len(want), dups, len(o.dlq), malformed)
		e.checkChangelog(t, items)
	})
}
