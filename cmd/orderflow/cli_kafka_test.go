package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/testutil"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
)

func brokersArg(c *kafkatest.Cluster) string { return strings.Join(c.Brokers, ",") }

func eventLine(id, order, typ string, sec int) string {
	at := eventEpoch.Add(time.Duration(sec) * time.Second).Format(time.RFC3339)
	return fmt.Sprintf(`{"event_id":%q,"order_id":%q,"type":%q,"occurred_at":%q}`, id, order, typ, at)
}

// eventEpoch dates the events of eventLine: the test's start, so that no
// timer of the default machine (the first is 24h) falls due on the
// processor's clock while a test runs, as it would for events dated long
// ago; timers fire only where events reveal them.
var eventEpoch = time.Now().UTC().Truncate(time.Minute)

// jsonLines splits output into lines and parses each into a map.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var res []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		res = append(res, m)
	}
	return res
}

func TestProduceBadLineSkipsAndExits1(t *testing.T) {
	clearEnv(t)
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		checkLeaks(t, c)
		topic := kafkatest.Name(t, "events")
		c.CreateTopic(t, topic, 3, nil)
		in := strings.Join([]string{
			eventLine("e1", "o1", "place_order", 1),
			eventLine("e2", "o2", "place_order", 2),
			`{"event_id":"e3","order_id":"o3","type":"place_order"}`, // no occurred_at
			"",
			eventLine("e4", "o1", "cancel_order", 4),
			`{not json`,
			eventLine("e5", "o3", "place_order", 5),
		}, "\n")
		file := writeFile(t, "events.jsonl", in)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r := cli(ctx, nil, "produce", "--brokers", brokersArg(c), "--topic", topic, file)
		if r.code != 1 {
			t.Fatalf("exit code %d, want 1 (err %v)\n%s", r.code, r.err, r.stderr)
		}
		for _, w := range []string{"line 3: ", "occurred_at", "line 6: ", "produced 4 event(s) to " + topic, "events/s", "2 bad line(s) skipped"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
			}
		}
		if strings.Contains(r.stderr, "line 5:") || strings.Contains(r.stderr, "line 4:") {
			t.Errorf("a good or blank line was reported:\n%s", r.stderr)
		}
		codec, err := avro.NewCodec()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, rec := range c.ReadCommitted(t, topic) {
			var ev topology.Event
			if err := codec.DecodeEvent(rec.Value, &ev); err != nil {
				t.Fatalf("record at %d/%d: %v", rec.Partition, rec.Offset, err)
			}
			if string(rec.Key) != ev.OrderID {
				t.Errorf("key %q, order id %q", rec.Key, ev.OrderID)
			}
			got = append(got, ev.EventID)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != "e1,e2,e4,e5" {
			t.Errorf("produced events %v, want e1,e2,e4,e5", got)
		}
	})
}

func TestProduceMissingTopicSaysSo(t *testing.T) {
	clearEnv(t)
	checkLeaks(t)
	c := kafkatest.Fake(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := cli(ctx, strings.NewReader(eventLine("e1", "o1", "place_order", 1)+"\n"), "produce", "--brokers", brokersArg(c), "--topic", "no.such.topic")
	if r.code != 1 || !strings.Contains(r.err.Error(), "topic no.such.topic does not exist") {
		t.Errorf("code %d err %v", r.code, r.err)
	}
}

// TestProduceTailRoundTrip produces events with `produce` (from stdin) and
// reads them back with `tail`, whose kind is detected by trying decoders
// (the topic has no default name).
func TestProduceTailRoundTrip(t *testing.T) {
	clearEnv(t)
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		checkLeaks(t, c)
		topic := kafkatest.Name(t, "events")
		c.CreateTopic(t, topic, 4, nil)
		var want []string
		for i := range 50 {
			want = append(want, fmt.Sprintf(`{"event_id":"e%d","order_id":"o%d","type":"place_order","occurred_at":"2026-01-01T00:00:00.123Z","sequence":%d,"attributes":{"k":"v%d"}}`, i, i%7, i, i))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		r := cli(ctx, strings.NewReader(strings.Join(want, "\n")+"\n"), "produce", "--brokers", brokersArg(c), "--topic", topic, "--buffer", "8", "-")
		if r.err != nil || !strings.Contains(r.stderr, "produced 50 event(s)") {
			t.Fatalf("produce: code %d err %v\n%s", r.code, r.err, r.stderr)
		}
		r = cli(ctx, nil, "tail", "--brokers", brokersArg(c), "--topic", topic, "--from-beginning", "--exit-at-end")
		if r.err != nil {
			t.Fatalf("tail: %v", r.err)
		}
		got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("tail printed:\n%s\nwant (in any order):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		// Without --from-beginning tail starts at the end: nothing to print.
		r = cli(ctx, nil, "tail", "--brokers", brokersArg(c), "--topic", topic, "--exit-at-end")
		if r.err != nil || r.stdout != "" {
			t.Errorf("tail at the end: err %v out %q", r.err, r.stdout)
		}
	})
}

// TestTailExitAtEndShowsOnlyCommitted writes a committed and an aborted
// transaction (the aborted one last, so the partition ends with an abort
// marker) and checks tail --exit-at-end prints exactly the committed
// records and stops.
func TestTailExitAtEndShowsOnlyCommitted(t *testing.T) {
	clearEnv(t)
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		checkLeaks(t, c)
		topic := kafkatest.Name(t, "status")
		c.CreateTopic(t, topic, 2, nil)
		codec, err := avro.NewCodec()
		if err != nil {
			t.Fatal(err)
		}
		status := func(order, event, to string) *kgo.Record {
			v, err := codec.EncodeStatusChange(nil, &avro.StatusChange{
				OrderID: order, EventID: event, EventType: "place_order", ToState: to, Version: 1,
				OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			})
			if err != nil {
				t.Fatal(err)
			}
			return &kgo.Record{Key: []byte(order), Value: v, Partition: 0}
		}
		cl := c.Client(t, kgo.TransactionalID(kafkatest.Name(t, "txn")), kgo.DefaultProduceTopic(topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		txn := func(commit kgo.TransactionEndTry, recs ...*kgo.Record) {
			t.Helper()
			if err := cl.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if err := cl.EndTransaction(ctx, commit); err != nil {
				t.Fatal(err)
			}
		}
		garbage := &kgo.Record{Key: []byte("ox"), Value: []byte("not avro"), Partition: 0}
		txn(kgo.TryCommit, status("o1", "e1", "placed"), garbage, status("o2", "e2", "placed"))
		txn(kgo.TryAbort, status("o3", "e3", "ABORTED"), status("o4", "e4", "ABORTED"))

		done := make(chan cliResult, 1)
		go func() {
			done <- cli(ctx, nil, "tail", "--brokers", brokersArg(c), "--topic", topic, "--kind", "status", "--from-beginning", "--exit-at-end")
		}()
		var r cliResult
		select {
		case r = <-done:
		case <-time.After(30 * time.Second):
			cancel()
			t.Fatalf("tail --exit-at-end did not stop at an abort marker: %+v", <-done)
		}
		if r.err != nil {
			t.Fatalf("tail: %v", r.err)
		}
		lines := jsonLines(t, r.stdout)
		if len(lines) != 3 {
			t.Fatalf("want 2 transitions and 1 error line, got:\n%s", r.stdout)
		}
		if lines[0]["kind"] != "transition" || lines[0]["event_id"] != "e1" || lines[2]["kind"] != "transition" || lines[2]["event_id"] != "e2" {
			t.Errorf("committed transitions missing or out of order:\n%s", r.stdout)
		}
		// The undecodable committed record is an error line, not a stop.
		if l := lines[1]; l["kind"] != "dlq" || l["key"] != "ox" || l["source_topic"] != topic || l["source_offset"] != 1.0 ||
			!strings.Contains(l["error"].(string), "tail:") || l["value_base64"] != "bm90IGF2cm8=" {
			t.Errorf("error line for the undecodable record: %v", l)
		}
		if strings.Contains(r.stdout, "ABORTED") {
			t.Errorf("tail printed aborted records:\n%s", r.stdout)
		}
	})
}

// TestTailKinds checks the decoders of each kind and the auto-detection by
// topic name, on the records the processor writes.
func TestTailKinds(t *testing.T) {
	clearEnv(t)
	if kindOfTopic("orders.status") != kindStatus || kindOfTopic("orders.rejections") != kindRejections ||
		kindOfTopic("orders.dlq") != kindDLQ || kindOfTopic("orders.events") != kindEvents ||
		kindOfTopic("myapp-state-changelog") != kindChangelog || kindOfTopic("other") != kindAuto {
		t.Error("kindOfTopic")
	}
	checkLeaks(t)
	c := kafkatest.Fake(t)
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	placed := "placed"
	rej, _ := codec.EncodeRejection(nil, &avro.Rejection{OrderID: "o1", EventID: "e2", EventType: "ship_order", State: &placed, Reason: "invalid_transition", Detail: "d", OccurredAt: at})
	state, _ := codec.EncodeState(nil, &topology.State{State: "placed", Version: 1, CreatedAt: at, UpdatedAt: at, RecentEventIDs: []string{"e1"}})
	for _, tc := range []struct {
		topic string
		recs  []*kgo.Record
		want  []string
	}{
		{"orders.rejections", []*kgo.Record{{Key: []byte("o1"), Value: rej}}, []string{`{"kind":"rejection","order_id":"o1","event_id":"e2","event_type":"ship_order","state":"placed","reason":"invalid_transition","detail":"d","occurred_at":"2026-01-01T00:00:00Z"}`}},
		{"orders.dlq", []*kgo.Record{{Key: []byte("k"), Value: []byte{1, 2}, Headers: []kgo.RecordHeader{
			{Key: processor.HeaderError, Value: []byte("boom")}, {Key: processor.HeaderSourceTopic, Value: []byte("orders.events")},
			{Key: processor.HeaderSourcePartition, Value: []byte("3")}, {Key: processor.HeaderSourceOffset, Value: []byte("42")}}}},
			[]string{`{"kind":"dlq","key":"k","error":"boom","source_topic":"orders.events","source_partition":3,"source_offset":42,"value_base64":"AQI="}`}},
		{"app-state-changelog", []*kgo.Record{{Key: []byte("o1"), Value: state}, {Key: []byte("o1")}}, []string{
			`{"kind":"state","order_id":"o1","state":"placed","version":1,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","last_sequence":null,"recent_event_ids":["e1"],"marks":{},"history":{},"closed_at":null}`,
			`{"kind":"tombstone","order_id":"o1"}`}},
		// Mixed records on a topic without a default name: each by its decoder.
		{"mixed", []*kgo.Record{{Key: []byte("o1"), Value: rej}, {Key: []byte("o1"), Value: state}, {Key: []byte("o1")}},
			[]string{`"kind":"rejection"`, `"kind":"state"`, `"kind":"tombstone"`}},
		// A state record on the rejections topic does not decode there.
		{"orders.rejections", []*kgo.Record{{Key: []byte("o9"), Value: state}}, []string{`{"kind":"dlq","key":"o9","error":"tail: `}},
	} {
		t.Run(tc.topic, func(t *testing.T) {
			topic := tc.topic
			c.CreateTopic(t, topic, 1, nil)
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, _ = c.Admin(t).DeleteTopics(ctx, topic)
			}()
			cl := c.Client(t, kgo.DefaultProduceTopic(topic))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := cl.ProduceSync(ctx, tc.recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			r := cli(ctx, nil, "tail", "--brokers", brokersArg(c), "--topic", topic, "--from-beginning", "--exit-at-end")
			if r.err != nil {
				t.Fatal(r.err)
			}
			got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if len(got) != len(tc.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(got), len(tc.want), r.stdout)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("line %d: %s\nwant (containing) %s", i+1, got[i], w)
				}
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if r := cli(ctx, nil, "tail", "--brokers", brokersArg(c), "--topic", "no.such.topic", "--exit-at-end"); r.code != 1 || !strings.Contains(r.err.Error(), "topic no.such.topic does not exist") {
		t.Errorf("missing topic: code %d err %v", r.code, r.err)
	}
}

// TestRunEndToEnd starts `orderflow run` in a goroutine, feeds it events with
// `produce`, reads the status and rejections topics with `tail`, and stops
// it by cancelling its context: a clean shutdown returns nil.
// runCLI starts `orderflow run` on c, with topics and an application id of
// its own (names: events, status, rejections, dlq, app) of 3 partitions,
// and waits for the topics; extra are further arguments of run. stop
// cancels it and returns its result once it has ended; a run that fails or
// does not stop within a minute fails t.
func runCLI(ctx context.Context, t *testing.T, c *kafkatest.Cluster, extra ...string) (names map[string]string, ran <-chan cliResult, stop func() cliResult) {
	t.Helper()
	names = map[string]string{}
	for _, n := range []string{"events", "status", "rejections", "dlq", "app"} {
		names[n] = kafkatest.Name(t, n)
	}
	args := []string{"run", "--brokers", brokersArg(c), "--app-id", names["app"],
		"--events-topic", names["events"], "--status-topic", names["status"],
		"--rejections-topic", names["rejections"], "--dlq-topic", names["dlq"],
		"--state-dir", t.TempDir(), "--partitions", "3", "--instance-id", "test-1",
		"--commit-interval", "50ms", "--session-timeout", "6s", "--log-format", "json",
		"--http-addr", "127.0.0.1:0"} // no fixed port
	args = append(args, extra...)
	runCtx, stopRun := context.WithCancel(context.Background())
	t.Cleanup(stopRun)
	res := make(chan cliResult, 1)
	go func() { res <- cli(runCtx, nil, args...) }()
	stop = func() cliResult {
		t.Helper()
		stopRun()
		select {
		case r := <-res:
			if r.err != nil {
				t.Errorf("run after cancel: code %d err %v\n%s", r.code, r.err, r.stderr)
			}
			return r
		case <-time.After(time.Minute):
			t.Fatal("run did not stop within a minute of its context's cancellation")
			return cliResult{}
		}
	}
	// run creates the topics, one after another: wait for every topic the
	// tests read, not only the first.
	for _, n := range []string{"events", "status", "rejections", "dlq"} {
		if err := kafkatest.WaitTopic(ctx, c.Admin(t), names[n], 3); err != nil {
			stopRun()
			t.Fatalf("%v; run: %+v", err, <-res)
		}
	}
	return names, res, stop
}

func TestRunEndToEnd(t *testing.T) {
	clearEnv(t)
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		checkLeaks(t, c)
		// The ORDERFLOW_* environment reaches `run` too.
		t.Setenv("ORDERFLOW_GUARANTEE", "exactly_once")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		names, ran, stop := runCLI(ctx, t, c)
		events := strings.Join([]string{
			eventLine("e1", "o1", "place_order", 1),
			eventLine("e2", "o1", "confirm_payment", 2),
			eventLine("e3", "o2", "place_order", 3),
			eventLine("e4", "o2", "ship_order", 4),      // invalid from placed
			eventLine("e5", "o3", "confirm_payment", 5), // unknown order
		}, "\n")
		if r := cli(ctx, strings.NewReader(events), "produce", "--brokers", brokersArg(c), "--topic", names["events"]); r.err != nil {
			t.Fatalf("produce: %v\n%s", r.err, r.stderr)
		}
		var status, rejections []map[string]any
		for ctx.Err() == nil {
			r := cli(ctx, nil, "tail", "--brokers", brokersArg(c), "--topic", names["status"], "--from-beginning", "--exit-at-end")
			if r.err != nil {
				t.Fatalf("tail: %v", r.err)
			}
			if status = jsonLines(t, r.stdout); len(status) >= 3 {
				break
			}
			select {
			case r := <-ran:
				t.Fatalf("run ended early: %+v", r)
			case <-time.After(200 * time.Millisecond):
			}
		}
		r := cli(ctx, nil, "tail", "--brokers", brokersArg(c), "--topic", names["rejections"], "--from-beginning", "--exit-at-end")
		if r.err != nil {
			t.Fatalf("tail: %v", r.err)
		}
		rejections = jsonLines(t, r.stdout)

		got := map[string]string{}
		for _, s := range status {
			from, _ := s["from"].(string)
			got[s["event_id"].(string)] = fmt.Sprintf("%s %s->%s v%v", s["kind"], from, s["to"], s["version"])
		}
		for _, s := range rejections {
			got[s["event_id"].(string)] = fmt.Sprintf("%s %s", s["kind"], s["reason"])
		}
		want := map[string]string{
			"e1": "transition ->placed v1",
			"e2": "transition placed->confirmed v2",
			"e3": "transition ->placed v1",
			"e4": "rejection invalid_transition",
			"e5": "rejection unknown_order",
		}
		for id, w := range want {
			if got[id] != w {
				t.Errorf("%s: %q, want %q", id, got[id], w)
			}
		}
		if len(status) != 3 || len(rejections) != 2 {
			t.Errorf("%d transitions and %d rejections, want 3 and 2", len(status), len(rejections))
		}

		if r := stop(); !strings.Contains(r.stderr, `"msg":"orderflow run"`) || !strings.Contains(r.stderr, `"msg":"stopped"`) {
			t.Errorf("run's JSON log lacks the start or stop line:\n%s", r.stderr)
		}
	})
}

// TestRunSignals checks the signal handling of `run` with injected signals:
// the first signal shuts down cleanly, a second one forces exit 1.
func TestRunSignals(t *testing.T) {
	clearEnv(t)
	checkLeaks(t)
	c := kafkatest.Fake(t)

	type fakeProcess struct {
		sigs  chan chan<- os.Signal
		exits chan int
	}
	newDeps := func() (runDeps, *fakeProcess) {
		fp := &fakeProcess{sigs: make(chan chan<- os.Signal, 1), exits: make(chan int, 1)}
		return runDeps{
			notify: func(c chan<- os.Signal) { fp.sigs <- c },
			stop:   func(chan<- os.Signal) {},
			exit:   func(code int) { fp.exits <- code },
		}, fp
	}
	start := func(deps runDeps, extra ...string) chan error {
		cmd := newRunCmdWith(deps)
		cmd.SetArgs(append([]string{"--brokers", brokersArg(c), "--app-id", kafkatest.Name(t, "app"),
			"--events-topic", kafkatest.Name(t, "ev"), "--state-dir", t.TempDir(), "--partitions", "1",
			"--instance-id", "sig", "--log-level", "error", "--http-addr", ""}, extra...))
		cmd.SetErr(&testutil.SyncBuffer{})
		done := make(chan error, 1)
		go func() { done <- cmd.ExecuteContext(context.Background()) }()
		return done
	}

	t.Run("first signal: clean shutdown", func(t *testing.T) {
		deps, fp := newDeps()
		done := start(deps)
		sigCh := <-fp.sigs
		sigCh <- os.Interrupt
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("clean shutdown returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no shutdown after SIGINT")
		}
		select {
		case code := <-fp.exits:
			t.Errorf("forced exit %d after one signal", code)
		default:
		}
	})

	t.Run("second signal: forced exit", func(t *testing.T) {
		// A run function that ignores cancellation stands in for a stuck
		// shutdown.
		deps, fp := newDeps()
		release := make(chan struct{})
		done := make(chan error, 1)
		var stderr testutil.SyncBuffer
		go func() {
			done <- runUntilSignal(context.Background(), func(context.Context) error { <-release; return nil },
				deps, time.Hour, slog.New(slog.DiscardHandler), &stderr)
		}()
		sigCh := <-fp.sigs
		sigCh <- os.Interrupt
		sigCh <- os.Interrupt
		if code := <-fp.exits; code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
		if !strings.Contains(stderr.String(), "second signal") {
			t.Errorf("no message: %q", stderr.String())
		}
		close(release)
		<-done
	})

	t.Run("shutdown timeout: forced exit", func(t *testing.T) {
		deps, fp := newDeps()
		release := make(chan struct{})
		done := make(chan error, 1)
		var stderr testutil.SyncBuffer
		cancelled := make(chan struct{})
		go func() {
			done <- runUntilSignal(context.Background(), func(ctx context.Context) error {
				<-ctx.Done()
				close(cancelled)
				<-release
				return nil
			}, deps, 50*time.Millisecond, slog.New(slog.DiscardHandler), &stderr)
		}()
		(<-fp.sigs) <- os.Interrupt
		<-cancelled // the first signal cancels Run's context
		if code := <-fp.exits; code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
		if !strings.Contains(stderr.String(), "--shutdown-timeout 50ms") {
			t.Errorf("no message: %q", stderr.String())
		}
		close(release)
		<-done
	})
}

// TestTailFollows checks tail without --exit-at-end: it starts at the end
// (older records are not printed), prints records produced later, and
// returns nil when its context is cancelled.
func TestTailFollows(t *testing.T) {
	clearEnv(t)
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		checkLeaks(t, c)
		topic := kafkatest.Name(t, "events")
		c.CreateTopic(t, topic, 2, nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if r := cli(ctx, strings.NewReader(eventLine("old", "o1", "place_order", 1)), "produce", "--brokers", brokersArg(c), "--topic", topic); r.err != nil {
			t.Fatal(r.err)
		}

		root := newRootCmd()
		var out testutil.SyncBuffer
		root.SetOut(&out)
		root.SetErr(&testutil.SyncBuffer{})
		root.SetArgs([]string{"tail", "--brokers", brokersArg(c), "--topic", topic, "--kind", "events"})
		tailCtx, stopTail := context.WithCancel(ctx)
		defer stopTail()
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(tailCtx) }()

		// tail may not have its position yet: produce until a new event shows.
		for i := 0; !strings.Contains(out.String(), `"event_id":"new`); i++ {
			if ctx.Err() != nil {
				t.Fatalf("tail printed no new event: %q", out.String())
			}
			line := eventLine(fmt.Sprintf("new%d", i), "o2", "place_order", 2)
			if r := cli(ctx, strings.NewReader(line), "produce", "--brokers", brokersArg(c), "--topic", topic); r.err != nil {
				t.Fatal(r.err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		stopTail()
		if err := <-done; err != nil {
			t.Errorf("tail after cancel: %v", err)
		}
		if strings.Contains(out.String(), `"event_id":"old"`) {
			t.Errorf("tail without --from-beginning printed an old record:\n%s", out.String())
		}
	})
}

// TestRunRefusesLostChangelog: `run` on a state dir holding orders whose
// changelog was deleted exits 2 with a message naming both ways out, and
// `run --reseed-changelog` writes the states back and exits 0, after which
// `run` starts.
func TestRunRefusesLostChangelog(t *testing.T) {
	clearEnv(t)
	c := kafkatest.Real(t)
	checkLeaks(t, c)
	app, events := kafkatest.Name(t, "app"), kafkatest.Name(t, "events")
	dir := t.TempDir()
	args := []string{"run", "--brokers", brokersArg(c), "--app-id", app,
		"--events-topic", events, "--status-topic", kafkatest.Name(t, "status"),
		"--rejections-topic", kafkatest.Name(t, "rejections"), "--dlq-topic", kafkatest.Name(t, "dlq"),
		"--state-dir", dir, "--partitions", "2", "--instance-id", "test-1",
		"--commit-interval", "50ms", "--session-timeout", "6s", "--log-format", "json", "--http-addr", ""}
	changelog := processor.ChangelogTopic(app)

	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	ran := make(chan cliResult, 1)
	go func() { ran <- cli(runCtx, nil, args...) }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, tp := range []string{events, changelog} {
		if err := kafkatest.WaitTopic(ctx, c.Admin(t), tp, 2); err != nil {
			stopRun()
			t.Fatalf("%v; run: %+v", err, <-ran)
		}
	}
	in := writeFile(t, "events.jsonl", eventLine("e1", "o1", "place_order", 1)+"\n"+eventLine("e2", "o2", "place_order", 2)+"\n")
	if r := cli(ctx, nil, "produce", "--brokers", brokersArg(c), "--topic", events, in); r.code != 0 {
		t.Fatalf("produce: %+v", r)
	}
	for len(c.ReadCommitted(t, changelog)) < 2 {
		if ctx.Err() != nil {
			t.Fatal("the changelog never got the two orders")
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopRun()
	if r := <-ran; r.code != 0 {
		t.Fatalf("run: %+v", r)
	}

	resp, err := c.Admin(t).DeleteTopic(ctx, changelog)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	r := cli(ctx, nil, args...)
	if r.code != 2 {
		t.Fatalf("run after the changelog was deleted: exit code %d, want 2; err %v\n%s", r.code, r.err, r.stderr)
	}
	for _, want := range []string{changelog + " does not exist", "--reseed-changelog", "delete " + dir, "unknown_order"} {
		if !strings.Contains(r.err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, r.err)
		}
	}

	if r := cli(ctx, nil, append(args, "--reseed-changelog")...); r.code != 0 {
		t.Fatalf("run --reseed-changelog: exit code %d, err %v\n%s", r.code, r.err, r.stderr)
	}
	if n := len(c.ReadCommitted(t, changelog)); n != 2 {
		t.Fatalf("the reseeded changelog holds %d records, want the 2 orders' states", n)
	}
}
