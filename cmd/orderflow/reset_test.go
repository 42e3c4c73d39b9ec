package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// outcomeKey describes an outcome line of tail or replay as the processor
// decided it: kind, target state or reason.
func outcomeKey(l map[string]any) string {
	return fmt.Sprintf("%v %v %v", l["kind"], l["to"], l["reason"])
}

// outcomesByEvent reads the committed outcomes of n's output topics: event
// id -> sorted outcome keys.
func (n runNames) outcomesByEvent(t *testing.T, ctx context.Context, c *kafkatest.Cluster) (map[string][]string, int) {
	t.Helper()
	got := map[string][]string{}
	total := 0
	for _, topic := range []string{n.status, n.rejections, n.dlq} {
		r := cli(ctx, nil, "tail", "--brokers", brokersArg(c), "--topic", topic, "--from-beginning", "--exit-at-end")
		if r.err != nil {
			t.Fatalf("tail %s: %v", topic, r.err)
		}
		for _, l := range jsonLines(t, r.stdout) {
			id, _ := l["event_id"].(string)
			got[id] = append(got[id], outcomeKey(l))
			total++
		}
	}
	for _, v := range got {
		slices.Sort(v)
	}
	return got, total
}

// startRun runs `orderflow run` in the background; stop cancels it and
// returns its result.
func startRun(t *testing.T, args []string) (stop func() cliResult) {
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan cliResult, 1)
	go func() { res <- cli(ctx, nil, args...) }()
	var r *cliResult
	stop = func() cliResult {
		t.Helper()
		if r == nil {
			cancel()
			select {
			case got := <-res:
				r = &got
			case <-time.After(time.Minute):
				t.Fatal("run did not stop within a minute of its context's cancellation")
			}
		}
		return *r
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestResetReprocesses: process the input with two instances, reset the
// application to the earliest offsets (deleting one instance's state dir,
// leaving the other's), process again: the changelog holds replay's final
// state of every order, and the second pass appended exactly replay's
// outcomes (no flood of duplicate_event). While an instance runs, reset
// refuses and names it; --dry-run and a declined confirmation change nothing.
func TestResetReprocesses(t *testing.T) {
	clearEnv(t)
	c := kafkatest.Real(t)
	checkLeaks(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	n := newRunNames(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	changelog := processor.ChangelogTopic(n.app)

	var lines []string
	var items []workload.Item
	for _, it := range workload.Generate(workload.Options{Seed: 33, Orders: 40, Duplicate: 0.05}) {
		if it.Malformed != nil {
			continue
		}
		line, err := avro.EventToJSON(&it.Event)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(line))
		items = append(items, it)
	}
	events := writeFile(t, "events.jsonl", strings.Join(lines, "\n")+"\n")
	rr := cli(ctx, nil, "replay", events)
	if rr.err != nil {
		t.Fatalf("replay: %v\n%s", rr.err, rr.stderr)
	}
	want := map[string][]string{}
	dupes := 0
	for _, l := range jsonLines(t, rr.stdout) {
		id, _ := l["event_id"].(string)
		want[id] = append(want[id], outcomeKey(l))
		if l["reason"] == string(topology.ReasonDuplicateEvent) {
			dupes++
		}
	}
	for _, v := range want {
		slices.Sort(v)
	}
	if dupes == 0 || len(items) < 100 {
		t.Fatalf("workload of %d events with %d duplicates: the test needs both", len(items), dupes)
	}

	// wait waits until the outputs hold total outcomes and returns them.
	wait := func(total int, stops ...func() cliResult) map[string][]string {
		t.Helper()
		for {
			got, have := n.outcomesByEvent(t, ctx, c)
			if have >= total {
				if have > total {
					t.Fatalf("%d outcomes, want %d", have, total)
				}
				return got
			}
			if ctx.Err() != nil {
				for _, s := range stops {
					r := s()
					t.Logf("run: code %d err %v\n%s", r.code, r.err, r.stderr)
				}
				t.Fatalf("%d outcomes, want %d", have, total)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}

	// First pass.
	stopA := startRun(t, n.args(c, "a", dirA))
	n.waitTopics(t, ctx, c)
	if r := cli(ctx, nil, "produce", "--brokers", brokersArg(c), "--topic", n.events, events); r.err != nil {
		t.Fatalf("produce: %v\n%s", r.err, r.stderr)
	}
	stopB := startRun(t, n.args(c, "b", dirB))
	got := wait(len(items), stopA, stopB)
	for id, w := range want {
		if !slices.Equal(got[id], w) {
			t.Fatalf("first pass: event %s has outcomes %v, replay says %v", id, got[id], w)
		}
	}

	resetArgs := []string{"reset", "--brokers", brokersArg(c), "--app-id", n.app, "--events-topic", n.events}
	r := cli(ctx, nil, append(resetArgs, "--yes")...)
	if r.code != 1 || r.err == nil || !strings.Contains(r.err.Error(), "instance a") || !strings.Contains(r.err.Error(), "stop every instance") {
		t.Fatalf("reset while instances run: exit %d, err %v; want 1 naming the running instances", r.code, r.err)
	}
	for _, stop := range []func() cliResult{stopA, stopB} {
		if r := stop(); r.code != 0 {
			t.Fatalf("run: exit %d, err %v\n%s", r.code, r.err, r.stderr)
		}
	}
	adm := c.Admin(t)
	topicID := func() string {
		td, err := adm.ListTopics(ctx, changelog)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(td[changelog].ID)
	}
	before := topicID()
	r = cli(ctx, nil, append(resetArgs, "--dry-run", "--state-dir", dirA)...)
	if r.code != 0 || !strings.Contains(r.stdout, "Dry run") || !strings.Contains(r.stdout, "partition 0: ") {
		t.Fatalf("reset --dry-run: exit %d, err %v\n%s", r.code, r.err, r.stdout)
	}
	r = cli(ctx, strings.NewReader("no\n"), append(resetArgs, "--state-dir", dirA)...)
	if r.code != 1 || !strings.Contains(fmt.Sprint(r.err), "declined") {
		t.Fatalf("reset, declined: exit %d, err %v", r.code, r.err)
	}
	if topicID() != before {
		t.Fatal("a dry run or a declined reset replaced the changelog")
	}
	r = cli(ctx, nil, append(resetArgs, "--to-earliest", "--state-dir", dirA, "--yes")...)
	if r.code != 0 {
		t.Fatalf("reset: exit %d, err %v\n%s", r.code, r.err, r.stdout)
	}

	// Second pass: a from nothing, b from its stale store.
	stopA = startRun(t, n.args(c, "a", dirA))
	stopB = startRun(t, n.args(c, "b", dirB))
	got = wait(2*len(items), stopA, stopB)
	for id, w := range want {
		if twice := slices.Sorted(slices.Values(append(slices.Clone(w), w...))); !slices.Equal(got[id], twice) {
			t.Fatalf("after the second pass event %s has outcomes %v, want replay's %v twice", id, got[id], w)
		}
	}
	rb := stopB()
	if rb.code != 0 || !strings.Contains(rb.stderr, "predates a reset") {
		t.Fatalf("instance b with its stale store: exit %d, err %v; want it to discard its state\n%s", rb.code, rb.err, rb.stderr)
	}
	if r := stopA(); r.code != 0 {
		t.Fatalf("run a: exit %d, err %v\n%s", r.code, r.err, r.stderr)
	}

	// The changelog holds replay's final state of every order.
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	final := map[string]*topology.State{}
	m := topology.Default()
	for i := range items {
		ev := items[i].Event
		if out := topology.Apply(m, final[ev.OrderID], &ev); out.Accepted {
			next := out.Next
			final[ev.OrderID] = &next
		}
	}
	last := map[string][]byte{}
	for _, rec := range c.ReadCommitted(t, changelog) {
		if len(rec.Key) > 0 {
			last[string(rec.Key)] = rec.Value
		}
	}
	if len(last) != len(final) {
		t.Fatalf("changelog holds %d orders, replay %d", len(last), len(final))
	}
	for id, w := range final {
		var st topology.State
		if err := codec.DecodeState(last[id], &st); err != nil {
			t.Fatalf("order %s: %v", id, err)
		}
		if st.State != w.State || st.Version != w.Version || fmt.Sprint(st.RecentEventIDs) != fmt.Sprint(w.RecentEventIDs) {
			t.Fatalf("order %s: changelog has %s v%d %v, replay %s v%d %v", id, st.State, st.Version, st.RecentEventIDs, w.State, w.Version, w.RecentEventIDs)
		}
	}
}

// TestResetConfigErrors: a command line reset cannot act on exits 2 before
// anything changes.
func TestResetConfigErrors(t *testing.T) {
	clearEnv(t)
	notStore := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--to-earliest", "--to-latest"}, "one of --to-earliest"},
		{[]string{"--to-datetime", "yesterday"}, "RFC 3339"},
		{[]string{"--state-dir", notStore}, "does not hold a state store"},
	} {
		args := append([]string{"reset", "--brokers", "127.0.0.1:1", "--yes"}, tc.args...)
		r := cli(context.Background(), nil, args...)
		if r.code != 2 || !strings.Contains(fmt.Sprint(r.err), tc.want) {
			t.Errorf("%v: exit %d, err %v; want 2 and %q", tc.args, r.code, r.err, tc.want)
		}
	}
}

// TestResetRefusesOpenTransaction: a transaction left open on the changelog
// (a stopped instance's, until it times out) would commit after the reset
// replaced the changelog; reset refuses until it ends.
func TestResetRefusesOpenTransaction(t *testing.T) {
	clearEnv(t)
	c := kafkatest.Real(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	app, events := kafkatest.Name(t, "app"), kafkatest.Name(t, "events")
	changelog := processor.ChangelogTopic(app)
	c.CreateTopic(t, events, 2, nil)
	c.CreateTopic(t, changelog, 2, kafkatest.CompactConfigs())
	txn := c.Client(t, kgo.TransactionalID(kafkatest.Name(t, "txn")), kgo.DefaultProduceTopic(changelog))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Key: []byte("o1"), Value: []byte("x"), Partition: 1}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := cli(ctx, nil, "reset", "--brokers", brokersArg(c), "--app-id", app, "--events-topic", events, "--yes")
	if r.code != 1 || !strings.Contains(fmt.Sprint(r.err), "transaction is still open") {
		t.Fatalf("reset with an open transaction: exit %d, err %v; want 1 saying so", r.code, r.err)
	}
	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	r = cli(ctx, nil, "reset", "--brokers", brokersArg(c), "--app-id", app, "--events-topic", events, "--yes")
	if r.code != 0 {
		t.Fatalf("reset once the transaction ended: exit %d, err %v\n%s", r.code, r.err, r.stdout)
	}
}
