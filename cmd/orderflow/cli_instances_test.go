package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
)

// runNames are the unique application and topic names of one test's runs.
type runNames struct{ app, events, status, rejections, dlq string }

func newRunNames(t *testing.T) runNames {
	return runNames{
		app: kafkatest.Name(t, "app"), events: kafkatest.Name(t, "events"), status: kafkatest.Name(t, "status"),
		rejections: kafkatest.Name(t, "rejections"), dlq: kafkatest.Name(t, "dlq"),
	}
}

// args are the arguments of `run` for an instance of the test's application.
func (n runNames) args(c *kafkatest.Cluster, instance, stateDir string, extra ...string) []string {
	return append([]string{"run", "--brokers", brokersArg(c), "--app-id", n.app,
		"--events-topic", n.events, "--status-topic", n.status, "--rejections-topic", n.rejections, "--dlq-topic", n.dlq,
		"--instance-id", instance, "--state-dir", stateDir, "--partitions", "2",
		"--commit-interval", "50ms", "--session-timeout", "6s", "--http-addr", "", "--log-format", "json"}, extra...)
}

// waitTopics waits until run has created the topics the test uses, with
// n.args's two partitions.
func (n runNames) waitTopics(t *testing.T, ctx context.Context, c *kafkatest.Cluster) {
	t.Helper()
	n.waitTopicsOf(t, ctx, c, 2)
}

// waitTopicsOf is waitTopics for a run with --partitions partitions. run
// creates the topics one by one: the events topic alone says nothing of the
// outcome topics that outcomes reads.
func (n runNames) waitTopicsOf(t *testing.T, ctx context.Context, c *kafkatest.Cluster, partitions int32) {
	t.Helper()
	for _, topic := range []string{n.events, n.status, n.rejections} {
		if err := kafkatest.WaitTopic(ctx, c.Admin(t), topic, partitions); err != nil {
			t.Fatal(err)
		}
	}
}

// produceOrders produces a place_order event for each of count new orders
// (event and order ids prefix-0, prefix-1, ... of the input partitions
// that in accepts, all when nil) and returns the event ids.
func (n runNames) produceOrders(t *testing.T, ctx context.Context, c *kafkatest.Cluster, prefix string, count int, in func(int32) bool) []string {
	t.Helper()
	var lines, ids []string
	for i := 0; len(ids) < count; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if in != nil && !in(kafkatest.PartitionOf(id, 2)) {
			continue
		}
		ids = append(ids, id)
		lines = append(lines, eventLine(id, id, "place_order", i%60))
	}
	if r := cli(ctx, strings.NewReader(strings.Join(lines, "\n")), "produce", "--brokers", brokersArg(c), "--topic", n.events); r.err != nil {
		t.Fatalf("produce: %v\n%s", r.err, r.stderr)
	}
	return ids
}

// outcomes counts the committed outcomes (transitions and rejections) by
// event id.
func (n runNames) outcomes(t *testing.T, ctx context.Context, c *kafkatest.Cluster) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, topic := range []string{n.status, n.rejections} {
		r := cli(ctx, nil, "tail", "--brokers", brokersArg(c), "--topic", topic, "--from-beginning", "--exit-at-end")
		if r.err != nil {
			t.Fatalf("tail %s: %v", topic, r.err)
		}
		for _, l := range jsonLines(t, r.stdout) {
			id, _ := l["event_id"].(string)
			got[id]++
		}
	}
	return got
}

// waitOutcomes waits until every event of ids has an outcome, while alive
// reports no failure of the instances, and returns the outcomes.
func (n runNames) waitOutcomes(t *testing.T, ctx context.Context, c *kafkatest.Cluster, ids []string, alive func() error) map[string]int {
	t.Helper()
	for {
		got := n.outcomes(t, ctx, c)
		missing := 0
		for _, id := range ids {
			if got[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			return got
		}
		if err := alive(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d events have no outcome", missing, len(ids))
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// onceEach checks that every event of ids has exactly one outcome.
func onceEach(t *testing.T, got map[string]int, ids []string) {
	t.Helper()
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("event %s has %d outcomes, want 1", id, got[id])
		}
	}
}

// running is an alive function for waitOutcomes: every process still runs.
func running(ps ...*process) func() error {
	return func() error {
		for _, p := range ps {
			select {
			case <-p.done:
				return fmt.Errorf("orderflow exited with code %d:\n%s", p.code, p.stderr.String())
			default:
			}
		}
		return nil
	}
}

// TestRunSameInstanceIDExitsFenced starts instance A, then B with the same
// instance id (so the same transactional id) and another state directory.
// B's first transaction fences A's producer while A is idle; A's next
// transaction fails. A must stop, with the message that says why, rather
// than start a new session, which would fence B in turn, and so on. B goes
// on and processes every event, each exactly once.
func TestRunSameInstanceIDExitsFenced(t *testing.T) {
	clearEnv(t)
	c := kafkatest.Real(t)
	n := newRunNames(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	a := startBinary(t, n.args(c, "twin", t.TempDir())...)
	n.waitTopics(t, ctx, c)
	ids := n.produceOrders(t, ctx, c, "first", 20, nil)
	n.waitOutcomes(t, ctx, c, ids, running(a))

	b := startBinary(t, n.args(c, "twin", t.TempDir())...)
	if !b.waitStderr(`"msg":"partition restored"`, 2*time.Minute) {
		t.Fatalf("B got no partition:\n%s", b.stderr.String())
	}
	ofB := assigned(t, b)
	if len(ofB) != 1 {
		t.Fatalf("B was assigned partitions %v, want one of the two", ofB)
	}
	// Events of B's partition: B's first transaction fences A.
	toB := n.produceOrders(t, ctx, c, "to-b", 10, func(p int32) bool { return ofB[p] })
	n.waitOutcomes(t, ctx, c, toB, running(a, b))
	// Events of A's partition: A's transaction fails.
	toA := n.produceOrders(t, ctx, c, "to-a", 10, func(p int32) bool { return !ofB[p] })
	if !a.wait(90 * time.Second) {
		t.Fatalf("A, fenced, still runs 90 s after it got events\nA:\n%s\nB:\n%s", a.stderr.String(), b.stderr.String())
	}
	for _, want := range []string{`fenced: a newer producer took over transactional id "` + n.app + `-twin"`,
		`another instance runs with instance id "twin"`, "give every instance its own --instance-id"} {
		if a.code == 0 || !strings.Contains(a.stderr.String(), want) {
			t.Fatalf("A exited with code %d, want non-zero and %q in its output:\n%s", a.code, want, a.stderr.String())
		}
	}

	ids = append(append(append(ids, toB...), toA...), n.produceOrders(t, ctx, c, "after", 20, nil)...)
	got := n.waitOutcomes(t, ctx, c, ids, running(b))
	onceEach(t, got, ids)
	b.stop(t)
	if b.code != 0 {
		t.Errorf("B after SIGTERM: exit code %d\n%s", b.code, b.stderr.String())
	}
}

// assigned returns the input partitions a process's log says it was
// assigned.
func assigned(t *testing.T, p *process) map[int32]bool {
	t.Helper()
	parts := map[int32]bool{}
	for _, l := range jsonLines(t, p.stderr.String()) {
		if l["msg"] != "partitions assigned" {
			continue
		}
		list, _ := l["partitions"].([]any)
		for _, v := range list {
			if f, ok := v.(float64); ok {
				parts[int32(f)] = true
			}
		}
	}
	return parts
}

// TestRunStateDirInUse starts a second instance on the state directory of a
// running one: it exits 2 saying which directory and that another process
// has it, and the first runs on.
func TestRunStateDirInUse(t *testing.T) {
	clearEnv(t)
	c := kafkatest.Real(t)
	n := newRunNames(t)
	dir := t.TempDir()
	a := startBinary(t, n.args(c, "first", dir)...)
	if !a.waitStderr(`"msg":"starting"`, 2*time.Minute) {
		t.Fatalf("the first instance did not start:\n%s", a.stderr.String())
	}
	code, stderr := runBinary(t, n.args(c, "second", dir)...)
	for _, w := range []string{dir + " is in use", "another process (another orderflow instance?) has the store open", "each instance needs a state directory of its own"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("the second instance's output lacks %q:\n%s", w, stderr)
		}
	}
	if code != 2 {
		t.Errorf("the second instance exited with code %d, want 2", code)
	}
	if err := running(a)(); err != nil {
		t.Fatal(err)
	}
	a.stop(t)
}

// TestRunTransactionTimeoutBeyondLinger runs with transaction timeouts
// longer than the client's longest linger (1m): 5m processes events; 1h,
// more than the broker's transaction.max.timeout.ms (15m by default), is
// refused at start as a configuration error that says so.
func TestRunTransactionTimeoutBeyondLinger(t *testing.T) {
	clearEnv(t)
	c := kafkatest.Real(t)
	n := newRunNames(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	r := cli(ctx, nil, n.args(c, "tt", t.TempDir(), "--transaction-timeout", "1h")...)
	for _, w := range []string{"transaction timeout 1h0m0s", "transaction.max.timeout.ms", "--transaction-timeout"} {
		if r.code != 2 || r.err == nil || !strings.Contains(r.err.Error(), w) {
			t.Errorf("--transaction-timeout 1h: code %d, err %v; want code 2 and %q", r.code, r.err, w)
		}
	}

	p := startBinary(t, n.args(c, "tt", t.TempDir(), "--transaction-timeout", "5m")...)
	n.waitTopics(t, ctx, c)
	ids := n.produceOrders(t, ctx, c, "o", 10, nil)
	n.waitOutcomes(t, ctx, c, ids, running(p))
	p.stop(t)
	if p.code != 0 {
		t.Errorf("--transaction-timeout 5m: exit code %d after SIGTERM\n%s", p.code, p.stderr.String())
	}
}

// TestSASLAgainstPlaintextListener connects run, produce and tail with SASL
// to the broker's PLAINTEXT listener: each exits 2 saying the listener
// likely does not speak SASL, not only the broker's ILLEGAL_SASL_STATE.
func TestSASLAgainstPlaintextListener(t *testing.T) {
	clearEnv(t)
	c := kafkatest.Real(t)
	n := newRunNames(t)
	t.Setenv("ORDERFLOW_SASL_PASSWORD", "pw-of-test")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sasl := []string{"--sasl-mechanism", "SCRAM-SHA-256", "--sasl-user", "alice"}
	for _, args := range [][]string{
		n.args(c, "sasl", t.TempDir(), sasl...),
		append([]string{"tail", "--brokers", brokersArg(c), "--topic", n.events}, sasl...),
	} {
		r := cli(ctx, nil, args...)
		for _, w := range []string{"likely does not speak SASL", "security protocol mismatch", "check the port", "ILLEGAL_SASL_STATE"} {
			if r.code != 2 || r.err == nil || !strings.Contains(r.err.Error(), w) {
				t.Errorf("%s with SASL on a PLAINTEXT listener: code %d, err %v; want code 2 and %q", args[0], r.code, r.err, w)
			}
		}
	}
}

// TestRunInstanceIDsNeverCollide runs instance "b" with two threads next
// to instance "b-1": the transactional id of b's second thread must not be
// b-1's, or one fences the other and exits. Both run on, and every event
// gets exactly one outcome.
func TestRunInstanceIDsNeverCollide(t *testing.T) {
	clearEnv(t)
	c := kafkatest.Real(t)
	n := newRunNames(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Four partitions: each of the three group members owns some, so each
	// one's producer commits transactions.
	const partitions = "4"
	b := startBinary(t, n.args(c, "b", t.TempDir(), "--threads", "2", "--partitions", partitions)...)
	n.waitTopicsOf(t, ctx, c, 4)
	ids := n.produceOrders(t, ctx, c, "first", 20, nil)
	n.waitOutcomes(t, ctx, c, ids, running(b))

	b1 := startBinary(t, n.args(c, "b-1", t.TempDir(), "--partitions", partitions)...)
	if !b1.waitStderr(`"msg":"partition restored"`, 2*time.Minute) {
		t.Fatalf("b-1 got no partition:\n%s", b1.stderr.String())
	}
	ids = append(ids, n.produceOrders(t, ctx, c, "second", 40, nil)...)
	got := n.waitOutcomes(t, ctx, c, ids, running(b, b1))
	onceEach(t, got, ids)
	for _, p := range []*process{b, b1} {
		p.stop(t)
		if p.code != 0 {
			t.Errorf("exit code %d after SIGTERM:\n%s", p.code, p.stderr.String())
		}
	}
}
