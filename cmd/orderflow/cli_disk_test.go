package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/disktest"
	"github.com/orderflow/orderflow/internal/kafkatest"
)

// runner starts and stops `orderflow run` in-process on one app and state
// directory, and feeds and reads its topics through the CLI.
type runner struct {
	t      *testing.T
	c      *kafkatest.Cluster
	names  map[string]string
	args   []string
	cancel context.CancelFunc
	ran    chan cliResult
}

func newRunner(t *testing.T, c *kafkatest.Cluster, stateDir string) *runner {
	r := &runner{t: t, c: c, names: map[string]string{}}
	for _, n := range []string{"events", "status", "rejections", "dlq", "app"} {
		r.names[n] = kafkatest.Name(t, n)
	}
	// One partition: every order's state is in one partition of the store.
	r.args = []string{"run", "--brokers", brokersArg(c), "--app-id", r.names["app"],
		"--events-topic", r.names["events"], "--status-topic", r.names["status"],
		"--rejections-topic", r.names["rejections"], "--dlq-topic", r.names["dlq"],
		"--state-dir", stateDir, "--partitions", "1", "--instance-id", "disk-1",
		"--commit-interval", "50ms", "--session-timeout", "6s", "--log-format", "json", "--http-addr", ""}
	return r
}

// start starts run in the background.
func (r *runner) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.ran = cancel, make(chan cliResult, 1)
	go func() { r.ran <- cli(ctx, nil, r.args...) }()
	r.t.Cleanup(cancel)
}

// stop cancels run (as the first SIGTERM does) and returns its result; it
// fails the test if run takes more than a minute.
func (r *runner) stop() cliResult {
	r.t.Helper()
	r.cancel()
	select {
	case res := <-r.ran:
		return res
	case <-time.After(time.Minute):
		r.t.Fatal("run did not stop within a minute of its context's cancellation")
		return cliResult{}
	}
}

// produce writes one event per order, of type typ, from second sec.
func (r *runner) produce(ctx context.Context, typ string, orders ...string) {
	r.t.Helper()
	var lines []string
	for i, o := range orders {
		lines = append(lines, eventLine(fmt.Sprintf("%s-%s", typ, o), o, typ, i%60))
	}
	if res := cli(ctx, strings.NewReader(strings.Join(lines, "\n")), "produce", "--brokers", brokersArg(r.c), "--topic", r.names["events"]); res.err != nil {
		r.t.Fatalf("produce: %v\n%s", res.err, res.stderr)
	}
}

// outcomes waits until the status and rejections topics hold n records in
// all, and returns them by event id: "transition <from>-><to>" or
// "rejection <reason>".
func (r *runner) outcomes(ctx context.Context, n int) map[string]string {
	r.t.Helper()
	for {
		got := map[string]string{}
		for _, topic := range []string{r.names["status"], r.names["rejections"]} {
			res := cli(ctx, nil, "tail", "--brokers", brokersArg(r.c), "--topic", topic, "--from-beginning", "--exit-at-end")
			if res.err != nil {
				r.t.Fatalf("tail: %v", res.err)
			}
			for _, l := range jsonLines(r.t, res.stdout) {
				from, _ := l["from"].(string)
				switch l["kind"] {
				case "transition":
					got[l["event_id"].(string)] = fmt.Sprintf("transition %s->%s", from, l["to"])
				default:
					got[l["event_id"].(string)] = fmt.Sprintf("%s %s", l["kind"], l["reason"])
				}
			}
		}
		if len(got) >= n {
			return got
		}
		select {
		case res := <-r.ran:
			r.t.Fatalf("run ended early: code %d err %v\n%s", res.code, res.err, res.stderr)
		case <-ctx.Done():
			r.t.Fatalf("%d outcomes, want %d: %v", len(got), n, got)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// placeOrders starts run on its new topics, places n orders and waits for
// their transitions; it returns their ids.
func (r *runner) placeOrders(ctx context.Context, n int) []string {
	r.t.Helper()
	r.start()
	for _, name := range []string{"events", "status", "rejections"} {
		if err := kafkatest.WaitTopic(ctx, r.c.Admin(r.t), r.names[name], 1); err != nil {
			r.stop()
			r.t.Fatal(err)
		}
	}
	ids := orderIDs(n)
	r.produce(ctx, "place_order", ids...)
	r.outcomes(ctx, len(ids))
	return ids
}

func orderIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("order-with-a-long-id-%04d", i)
	}
	return ids
}

// TestRunRebuildsCorruptStore stops run, flips a bit inside a data block of
// its store's largest table (the file keeps its size), and starts it again:
// it finds the corruption (Pebble's checksums) instead of panicking (as it
// did on every start), moves the store aside, rebuilds it from the
// changelog, and the orders' states survive: an event valid only after the
// stored state is accepted, not rejected as unknown_order.
func TestRunRebuildsCorruptStore(t *testing.T) {
	clearEnv(t)
	c := kafkatest.Real(t)
	checkLeaks(t)
	state := filepath.Join(t.TempDir(), "state")
	r := newRunner(t, c, state)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	ids := r.placeOrders(ctx, 400)
	if res := r.stop(); res.err != nil {
		t.Fatalf("first run: code %d err %v\n%s", res.code, res.err, res.stderr)
	}
	table := disktest.FlipTableByte(t, state)

	r.start()
	check := []string{ids[0], ids[1], ids[len(ids)-1]}
	r.produce(ctx, "confirm_payment", check...)
	got := r.outcomes(ctx, len(ids)+len(check))
	for _, id := range check {
		if w := "transition placed->confirmed"; got["confirm_payment-"+id] != w {
			t.Errorf("confirm_payment of %s after the rebuild: %q, want %q", id, got["confirm_payment-"+id], w)
		}
	}
	res := r.stop()
	if res.err != nil {
		t.Errorf("second run: code %d err %v", res.code, res.err)
	}
	if !strings.Contains(res.stderr, "the state store is corrupt") || !strings.Contains(res.stderr, `"moved_to":"`+state+`.corrupt-`) ||
		!strings.Contains(res.stderr, "checksum mismatch") || !strings.Contains(res.stderr, `"level":"ERROR"`) {
		t.Errorf("the log does not say the store was corrupt and moved aside:\n%s", res.stderr)
	}
	aside, _ := filepath.Glob(state + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("stores moved aside: %v, want 1", aside)
	}
	if _, err := os.Stat(filepath.Join(aside[0], filepath.Base(table))); err != nil {
		t.Errorf("the corrupt table was not kept: %v", err)
	}
}

// TestRunFullDisk fills the disk of run's state directory (a 2 MiB tmpfs)
// while it runs. Cancelling run then ends it at once with an error naming
// the directory and "no space left on device", logged once (it waited
// for the store's flush, which Pebble retried without end, logging an
// error each time); a start while the disk is full fails the same way (it
// panicked: pebble: MANIFEST flush failed); once space is freed, a start
// works, with the orders' states as they were.
func TestRunFullDisk(t *testing.T) {
	clearEnv(t)
	mnt := disktest.Tmpfs(t, "2m")
	c := kafkatest.Real(t)
	checkLeaks(t)
	state := filepath.Join(mnt, "state")
	r := newRunner(t, c, state)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	ids := r.placeOrders(ctx, 400)
	free := disktest.Fill(t, mnt)
	defer free()

	full := func(what string, res cliResult) {
		t.Helper()
		if res.code != 1 || res.err == nil || !strings.Contains(res.err.Error(), state) || !strings.Contains(res.err.Error(), "no space left on device") {
			t.Errorf("%s: code %d err %v, want exit 1 naming %s and no space left on device\n%s", what, res.code, res.err, state, res.stderr)
		}
		if strings.Contains(res.stderr, "panic") {
			t.Errorf("%s: panicked:\n%s", what, res.stderr)
		}
	}
	res := r.stop()
	full("stop on a full disk", res)
	if n := strings.Count(res.stderr, `"level":"ERROR"`); n != 1 {
		t.Errorf("stop on a full disk logged %d errors, want 1:\n%s", n, res.stderr)
	}

	r.start()
	select {
	case res = <-r.ran:
		full("start on a full disk", res)
	case <-time.After(time.Minute):
		r.stop()
		t.Fatal("a start on a full disk had not ended after a minute")
	}

	free()
	r.start()
	r.produce(ctx, "confirm_payment", ids[0], ids[len(ids)-1])
	got := r.outcomes(ctx, len(ids)+2)
	for _, id := range []string{ids[0], ids[len(ids)-1]} {
		if w := "transition placed->confirmed"; got["confirm_payment-"+id] != w {
			t.Errorf("confirm_payment of %s after space was freed: %q, want %q", id, got["confirm_payment-"+id], w)
		}
	}
	if res := r.stop(); res.err != nil {
		t.Errorf("run after space was freed: code %d err %v\n%s", res.code, res.err, res.stderr)
	}
}
