package demo

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runDemo(t *testing.T, o Options) (*Summary, string) {
	t.Helper()
	var out testutil.SyncBuffer
	o.Out = &out
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Run(ctx, o)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return s, out.String()
}

// checkSummary asserts the demo's own check from the outside: the topics
// hold every produced record, and each has exactly one outcome.
func checkSummary(t *testing.T, s *Summary, produced int64) {
	t.Helper()
	if s.Produced != produced || s.Events != produced {
		t.Errorf("produced %d, events topic holds %d; want %d", s.Produced, s.Events, produced)
	}
	if s.Events != s.Transitions+s.Rejections+s.DLQ {
		t.Errorf("events %d != transitions %d + rejections %d + dlq %d", s.Events, s.Transitions, s.Rejections, s.DLQ)
	}
	var byReason int64
	for _, n := range s.Rejected {
		byReason += n
	}
	if byReason != s.Rejections {
		t.Errorf("rejections by reason add up to %d, want %d", byReason, s.Rejections)
	}
	if s.Mismatched != 0 {
		t.Errorf("%d outcomes do not pair up with an input event", s.Mismatched)
	}
	if !s.OK() {
		t.Error("Summary.OK() is false")
	}
	var orders int64
	for _, n := range s.States {
		orders += n
	}
	if orders != s.Orders || s.Orders == 0 {
		t.Errorf("final states cover %d orders, changelog has %d", orders, s.Orders)
	}
}

// checkMix asserts that the traffic had every kind of trouble (a run of
// thousands of events does; a run cut short by a duration may not).
func checkMix(t *testing.T, s *Summary) {
	t.Helper()
	for _, r := range []string{"invalid_transition", "guard_failed", "unknown_order", "duplicate_event"} {
		if s.Rejected[r] == 0 {
			t.Errorf("no %s rejection: %v", r, s.Rejected)
		}
	}
	if s.DLQ == 0 {
		t.Error("no dead letter")
	}
}

// TestShort is the demo's short mode, as CI runs it (orderflow demo
// --events 5000), as fast as it goes.
func TestShort(t *testing.T) {
	s, out := runDemo(t, Options{Events: 5000})
	checkSummary(t, s, 5000)
	checkMix(t, s)
	for _, want := range []string{
		"check: events 5000 = transitions",
		"2 instances own the 6 partitions",
		"final states of",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestChaos stops and restarts an instance mid-run: the outputs still add
// up, and the output tells the story.
func TestChaos(t *testing.T) {
	s, out := runDemo(t, Options{Events: 5000, Rate: 2500, Chaos: true, Instances: 3, Interval: 200 * time.Millisecond})
	checkSummary(t, s, 5000)
	checkMix(t, s)
	for _, want := range []string{
		"chaos: stopping instance c",
		"rebalanced without c: a ",
		"chaos: starting instance c again with an empty state directory",
		"rebalanced with c back",
		"c: restored partition",
		"processed=", // a progress line
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestDurationAndStop: with a duration and no event limit the traffic runs
// for the duration; closing Stop ends it earlier. Both drain and check.
func TestDurationAndStop(t *testing.T) {
	t.Run("duration", func(t *testing.T) {
		s, _ := runDemo(t, Options{Duration: time.Second, Rate: 1000, Instances: 1})
		checkSummary(t, s, s.Produced)
		// How many events a second brings depends on the machine's load:
		// only that traffic ran and stopped by itself is checked.
		if s.Produced == 0 {
			t.Error("no event produced in 1 s at 1000/s")
		}
	})
	t.Run("stop", func(t *testing.T) {
		stop := make(chan struct{})
		time.AfterFunc(1500*time.Millisecond, func() { close(stop) })
		start := time.Now()
		s, _ := runDemo(t, Options{Duration: time.Hour, Rate: 1000, Instances: 1, Stop: stop})
		checkSummary(t, s, s.Produced)
		if d := time.Since(start); d > time.Minute {
			t.Errorf("Stop did not end the traffic (ran %v)", d)
		}
	})
}

// TestFixedOrders: a fixed order count ends the traffic when their
// lifecycles end, short of --events.
func TestFixedOrders(t *testing.T) {
	s, _ := runDemo(t, Options{Orders: 300, Events: 100000, Instances: 1})
	if s.Produced >= 100000 || s.Produced < 300 {
		t.Fatalf("300 orders produced %d records", s.Produced)
	}
	checkSummary(t, s, s.Produced)
}

func TestOptionsErrors(t *testing.T) {
	for _, o := range []Options{
		{Events: -1}, {Orders: -1}, {Rate: -1}, {Instances: -1}, {Instances: 27},
		{Partitions: -1}, {Chaos: true, Instances: 1}, {Duration: -time.Second},
	} {
		_, err := Run(context.Background(), o)
		if !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: got %v, want ErrOptions", o, err)
		}
	}
}

func TestSource(t *testing.T) {
	// Deterministic, and a source that needs more than one chunk never
	// repeats an order id across chunks.
	take := func(n int) []string {
		src := newSource(Options{Seed: 5, Events: 0, Duration: time.Second}.withDefaults())
		var ids []string
		for range n {
			it, ok := src.next()
			if !ok {
				t.Fatal("source ended")
			}
			ids = append(ids, it.Key+"/"+it.Event.EventID)
		}
		return ids
	}
	a, b := take(3*chunkOrders*10), take(3*chunkOrders*10)
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatal("same seed, different traffic")
	}
	chunkOf := map[string]string{} // order id -> seed part of its id
	for _, id := range a {
		key, _, _ := strings.Cut(id, "/")
		if !strings.HasPrefix(key, "o-") {
			continue
		}
		seed := strings.Split(key, "-")[1]
		if prev, ok := chunkOf[key]; ok && prev != seed {
			t.Fatalf("order %s in two chunks", key)
		}
		chunkOf[key] = seed
	}
	seeds := map[string]bool{}
	for _, s := range chunkOf {
		seeds[s] = true
	}
	if len(seeds) < 3 {
		t.Fatalf("%d chunks, want at least 3", len(seeds))
	}
}

// TestConsoleRedraw: on a terminal a notice erases the status block, is
// printed, and the block is drawn again below it.
func TestConsoleRedraw(t *testing.T) {
	var b bytes.Buffer
	c := newConsole(&b, true)
	c.status([]string{"one", "two", "three"}, "")
	c.notef("hello")
	c.status([]string{"four"}, "")
	c.finish()
	c.notef("after")
	got := b.String()
	for _, want := range []string{
		"one\ntwo\nthree\n\x1b[3A\x1b[J", // erased before the notice
		"hello\none\ntwo\nthree\n",       // notice, block again
		"\x1b[3A\x1b[Jfour\n",            // the next status replaces the block
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%q", want, got)
		}
	}
	if i := strings.LastIndex(got, "four\n\x1b[1A\x1b[J"); i < 0 || !strings.HasSuffix(got, "after\n") || strings.Contains(got[i+len("four\n"):], "four") {
		t.Errorf("finish did not erase the last block, or a notice after it is missing:\n%q", got)
	}

	b.Reset()
	c = newConsole(&b, false)
	c.status([]string{"block"}, "line")
	c.notef("note")
	if got := b.String(); strings.Contains(got, "\x1b") || !strings.Contains(got, "line\n") || strings.Contains(got, "block") {
		t.Errorf("plain output: %q", got)
	}
}

// TestBrokers runs the demo twice against one existing cluster (kfake, and
// the real broker when there is one): each run gets its own names, so the
// second neither collides with nor counts the first.
func TestBrokers(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		var names []runNames
		for range 2 {
			s, out := runDemo(t, Options{Brokers: c.Brokers, Events: 1000, Chaos: c.Real})
			checkSummary(t, s, 1000)
			if !strings.Contains(out, s.Names.Topics.Events) {
				t.Errorf("output does not name the events topic %s", s.Names.Topics.Events)
			}
			names = append(names, s.Names)
		}
		if names[0].AppID == names[1].AppID || names[0].Topics == names[1].Topics {
			t.Fatalf("two runs share names: %+v, %+v", names[0], names[1])
		}
	})
}
