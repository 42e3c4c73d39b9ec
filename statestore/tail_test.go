package statestore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runTailer runs a tailer on s for w's changelog until the test ends.
func runTailer(t *testing.T, s *Store, w *changelog, o TailOptions) *Tailer {
	t.Helper()
	o.Topic, o.ClientOpts = w.topic, w.clientOpts()
	if o.LagInterval == 0 {
		o.LagInterval = 100 * time.Millisecond
	}
	tl, err := s.NewTailer(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("tailer: %v", err)
		}
	})
	return tl
}

// awaitPosition waits until the tailer's copy of every partition of end has
// reached its offset there.
func awaitPosition(t *testing.T, s *Store, end map[int32]int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for p, want := range end {
		for {
			got, _, err := s.ChangelogOffset(p)
			if err != nil {
				t.Fatal(err)
			}
			if got >= want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("partition %d: the tailer reached offset %d, want %d", p, got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestTailerFollows: a standby copy made by a Tailer equals the committed
// changelog as it grows (aborted transactions interleaved), its lag reaches
// 0, and Restore after Remove reads only what was written since.
func TestTailerFollows(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		w := newChangelog(t, c, 2, slowTombstones())
		w.orders = 500
		w.write(3000, 300, 3)
		s := openStore(t, vfs.NewMem(), "/tail")
		tl := runTailer(t, s, w, TailOptions{BatchRecords: 200})
		for p := range int32(2) {
			if err := tl.Add(w.ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		_, end := w.offsets()
		awaitPosition(t, s, end)
		checkLevel(t, s, w.truth, end)

		w.write(2000, 250, 2) // while it runs
		_, end = w.offsets()
		awaitPosition(t, s, end)
		checkLevel(t, s, w.truth, end)
		deadline := time.Now().Add(30 * time.Second)
		for {
			l, ok := tl.Lag(0)
			if !ok {
				t.Fatal("partition 0 not followed")
			}
			if l.Records == 0 && !l.Current.IsZero() && !l.Applied.IsZero() && l.Position == end[0] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("lag of a level copy: %+v, want 0 records, current, at %d", l, end[0])
			}
			time.Sleep(50 * time.Millisecond)
		}

		// Promotion: the tailer lets go, and a restore reads the tail only.
		tl.Remove(0)
		w.write(500, 250, 0)
		_, end2 := w.offsets()
		res, err := s.Restore(w.ctx, 0, RestoreOptions{Topic: w.topic, ClientOpts: w.clientOpts()})
		if err != nil {
			t.Fatal(err)
		}
		if res.Wiped || res.From != end[0] || res.To != end2[0] {
			t.Fatalf("restore after the standby: %+v, want from %d to %d", res, end[0], end2[0])
		}
		if got := tl.Partitions(); len(got) != 1 || got[0] != 1 {
			t.Fatalf("followed partitions after Remove(0): %v", got)
		}
	})
}

// TestTailerNeverAppliesUncommitted: records of an open transaction are not
// applied while it is open, nor ever once it aborts; the committed records
// after it are.
func TestTailerNeverAppliesUncommitted(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		w := newChangelog(t, c, 1, slowTombstones())
		w.orders = 100
		w.write(200, 100, 0)
		s := openStore(t, vfs.NewMem(), "/uncommitted")
		var seen []string
		tl := runTailer(t, s, w, TailOptions{filter: func(r *kgo.Record) bool {
			seen = append(seen, string(r.Value)) // under the tailer's lock
			return true
		}})
		if err := tl.Add(w.ctx, 0); err != nil {
			t.Fatal(err)
		}
		_, end := w.offsets()
		awaitPosition(t, s, end)

		// An open transaction: its records are in the log, not committed.
		if err := w.cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		open := &kgo.Record{Partition: 0, Key: []byte("open-order"), Value: []byte("open:UNCOMMITTED")}
		if err := w.cl.ProduceSync(w.ctx, open).FirstErr(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // several fetches and lag listings
		if _, ok, err := s.Get(0, open.Key); err != nil || ok {
			t.Fatalf("a record of an open transaction was applied (ok=%v, err=%v)", ok, err)
		}
		if l, _ := tl.Lag(0); l.Position > open.Offset {
			t.Fatalf("the copy moved past an open transaction's record: %+v (record at %d)", l, open.Offset)
		}
		if err := w.cl.EndTransaction(w.ctx, kgo.TryAbort); err != nil {
			t.Fatal(err)
		}
		w.write(100, 100, 0)
		_, end = w.offsets()
		awaitPosition(t, s, end)
		checkLevel(t, s, w.truth, end)
		if _, ok, _ := s.Get(0, open.Key); ok {
			t.Fatal("a record of an aborted transaction was applied")
		}
		for _, v := range seen {
			if v == string(open.Value) {
				t.Fatal("the tailer took a record of an aborted transaction up")
			}
		}
	})
}

// TestTailerRefusesProducerOptions: a standby's client can neither join a
// group nor produce transactionally.
func TestTailerRefusesProducerOptions(t *testing.T) {
	c := kafkatest.Fake(t)
	st := openStore(t, vfs.NewMem(), "/tailopts")
	for name, opt := range map[string]kgo.Opt{
		"group":         kgo.ConsumerGroup("g"),
		"transactional": kgo.TransactionalID("tx"),
		"topics":        kgo.ConsumeTopics("x"),
	} {
		_, err := st.NewTailer(TailOptions{Topic: "t", ClientOpts: []kgo.Opt{kgo.SeedBrokers(c.Brokers...), opt}})
		if !errors.Is(err, ErrClientOptions) {
			t.Errorf("%s: %v, want ErrClientOptions", name, err)
		}
	}
}
