package processor_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
	"github.com/twmb/franz-go/pkg/kadm"
)

// The crash tests kill the processor crashes times while events flow for
// crashPhase: each new child waits out the killed one's group session (6 s)
// before it gets partitions, and is killed while it processes.
const (
	crashes    = 4
	crashPhase = 36 * time.Second
)

// produceSlowly produces items in chunks over about d, in the background.
func (e *env) produceSlowly(t *testing.T, items []workload.Item, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	chunks := max(20, int(d/(200*time.Millisecond))) // a few records every 200 ms: the processor is never idle for long
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

// committedInput returns the sum of the group's committed input offsets (0
// before the first commit).
func (e *env) committedInput(t *testing.T, adm *kadm.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offsets, err := adm.FetchOffsets(ctx, e.cfg.AppID)
	if err != nil {
		return 0 // the group may not exist yet
	}
	var n int64
	offsets.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.Topic == e.cfg.Topics.Events {
			n += o.At
		}
	})
	return n
}

// killBusy SIGKILLs ch at a random moment while it processes: 0-400 ms after
// the group's committed input offsets pass from (a new child first waits
// out the killed one's session, then restores). It returns the committed
// offsets after the kill.
func (e *env) killBusy(t *testing.T, ch *child, adm *kadm.Client, rng *rand.Rand, from int64) int64 {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	n := e.committedInput(t, adm)
	for n <= from && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n = e.committedInput(t, adm)
	}
	if n <= from {
		t.Logf("%s committed nothing within 40s; killing it anyway", ch.name)
	}
	time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
	ch.kill()
	return e.committedInput(t, adm)
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
		items := workload.Generate(workload.Options{Seed: 21, Orders: 6000})
		produced := e.produceSlowly(t, items, crashPhase)
		dir := t.TempDir()
		rng := rand.New(rand.NewPCG(5, 6))
		adm := c.Admin(t)
		var at int64
		for i := 0; i < crashes; i++ {
			ch := e.startChild(t, "crashy", dir, processor.ExactlyOnce)
			at = e.killBusy(t, ch, adm, rng, at)
			t.Logf("SIGKILL %d at %d committed input records", i+1, at)
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
		items := workload.Generate(workload.Options{Seed: 22, Orders: 6000})
		produced := e.produceSlowly(t, items, crashPhase)
		dir := t.TempDir()
		rng := rand.New(rand.NewPCG(7, 8))
		adm := c.Admin(t)
		var at int64
		for i := 0; i < crashes; i++ {
			ch := e.startChild(t, "crashy", dir, processor.AtLeastOnce)
			at = e.killBusy(t, ch, adm, rng, at)
			t.Logf("SIGKILL %d at %d committed input records", i+1, at)
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
