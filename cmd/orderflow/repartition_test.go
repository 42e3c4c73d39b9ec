package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/processor"
)

// killAt runs `orderflow repartition` with the test hook that halts it at
// stage, and SIGKILLs it there.
func killAt(t *testing.T, stage string, args []string) {
	t.Helper()
	t.Setenv(haltEnv, stage)
	p := startBinary(t, args...)
	if !p.waitStderr("halted at "+stage, 2*time.Minute) {
		t.Fatalf("repartition did not reach %s:\n%s", stage, p.stderr.String())
	}
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !p.wait(time.Minute) {
		t.Fatal("repartition still runs after SIGKILL")
	}
	t.Setenv(haltEnv, "")
}

// TestRepartitionSurvivesKills places orders on 6 partitions, then SIGKILLs
// `orderflow repartition --partitions 12` in the middle of its copy (the old
// layout stays in use) and again after it grew the input (instances refuse
// to start, saying to run it again); the third run finishes, and the orders'
// next events, produced by the new count, continue them: every one is a
// transition.
func TestRepartitionSurvivesKills(t *testing.T) {
	c := kafkatest.Real(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n := newRunNames(t)
	dir := t.TempDir()
	cfg := processor.DefaultConfig()
	cfg.Brokers, cfg.AppID, cfg.Topics.Events = c.Brokers, n.app, n.events
	current := func() string {
		t.Helper()
		cl, err := processor.CurrentChangelog(ctx, c.Admin(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	partitions := func() int {
		t.Helper()
		td, err := c.Admin(t).ListTopics(ctx, n.events)
		if err != nil {
			t.Fatal(err)
		}
		return len(td[n.events].Partitions)
	}

	a := startBinary(t, n.args(c, "a", dir, "--partitions", "6")...)
	n.waitTopicsOf(t, ctx, c, 6)
	ids := n.produceOrders(t, ctx, c, "o", 600, nil)
	n.waitOutcomes(t, ctx, c, ids, running(a))

	repartition := []string{"repartition", "--brokers", brokersArg(c), "--app-id", n.app, "--events-topic", n.events, "--partitions", "12", "--yes"}
	if r := cli(ctx, nil, repartition...); r.code != 1 || !strings.Contains(r.err.Error(), "stop every instance") {
		t.Fatalf("repartition while an instance runs: exit %d, %v; want 1 and a refusal naming the members", r.code, r.err)
	}
	a.stop(t)
	if r := cli(ctx, nil, append(repartition, "--partitions", "6")...); r.code != 2 || !strings.Contains(r.err.Error(), "--partitions 6 must be larger") {
		t.Fatalf("repartition --partitions 6: exit %d, %v; want 2 and a configuration error", r.code, r.err)
	}
	if r := cli(ctx, nil, repartition[:len(repartition)-1]...); r.code != 1 || !strings.Contains(r.stdout, "Type yes") || !strings.Contains(r.err.Error(), "not confirmed") {
		t.Fatalf("repartition without --yes and no answer: exit %d, %v; want 1 after asking", r.code, r.err)
	}
	old, next := processor.ChangelogTopic(n.app), processor.RepartitionedChangelogTopic(n.app, 12)

	killAt(t, "copy", repartition)
	if got := partitions(); got != 6 {
		t.Fatalf("input has %d partitions after a kill mid-copy, want 6", got)
	}
	if got := current(); got != old {
		t.Fatalf("after a kill mid-copy the changelog is %s, want the old %s", got, old)
	}

	killAt(t, "grown", repartition)
	if got := partitions(); got != 12 {
		t.Fatalf("input has %d partitions after a kill after growing it, want 12", got)
	}
	code, stderr := runBinary(t, n.args(c, "a", dir)...)
	if code != 2 || !strings.Contains(stderr, "has not finished") || !strings.Contains(stderr, "orderflow repartition") {
		t.Fatalf("run before the switch: exit %d, want 2 with a message to run repartition again:\n%s", code, stderr)
	}

	if code, stderr := runBinary(t, repartition...); code != 0 {
		t.Fatalf("repartition after the kills: exit %d:\n%s", code, stderr)
	}
	if got := current(); got != next {
		t.Fatalf("after repartition the changelog is %s, want %s", got, next)
	}

	var lines, next2 []string
	for i, id := range ids {
		e := id + "-paid"
		next2 = append(next2, e)
		lines = append(lines, eventLine(e, id, "confirm_payment", i%60))
	}
	if r := cli(ctx, strings.NewReader(strings.Join(lines, "\n")), "produce", "--brokers", brokersArg(c), "--topic", n.events); r.err != nil {
		t.Fatalf("produce: %v\n%s", r.err, r.stderr)
	}
	a = startBinary(t, n.args(c, "a", dir)...)
	n.waitOutcomes(t, ctx, c, next2, running(a))
	a.stop(t)
	r := cli(ctx, nil, "tail", "--brokers", brokersArg(c), "--topic", n.status, "--from-beginning", "--exit-at-end")
	if r.err != nil {
		t.Fatal(r.err)
	}
	transitions := map[string]bool{}
	for _, l := range jsonLines(t, r.stdout) {
		id, _ := l["event_id"].(string)
		transitions[id] = true
	}
	var refused []string
	for _, id := range next2 {
		if !transitions[id] {
			refused = append(refused, id)
		}
	}
	if len(refused) > 0 {
		t.Fatalf("%d of %d events of existing orders after the repartition are not transitions, e.g. %v", len(refused), len(next2), refused[:min(5, len(refused))])
	}
}
