package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestDemoShort is the demo's short mode as CI runs it: `orderflow demo
// --events 5000` in-process, on its embedded kfake. It must exit 0, and its
// summary (read from the topics) must add up: events = transitions +
// rejections + dlq = 5000.
func TestDemoShort(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	out, err, code := runCmd(t, "", "demo", "--events", "5000")
	t.Log("\n" + out)
	if err != nil || code != 0 {
		t.Fatalf("orderflow demo --events 5000: exit %d: %v", code, err)
	}
	m := regexp.MustCompile(`check: events (\d+) = transitions (\d+) \+ rejections (\d+) \+ dlq (\d+): OK`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no passing events = transitions + rejections + dlq check in the output")
	}
	n := make([]int, 4)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	if n[0] != 5000 || n[0] != n[1]+n[2]+n[3] {
		t.Errorf("events %d, transitions %d, rejections %d, dlq %d: want 5000 events, all accounted for", n[0], n[1], n[2], n[3])
	}
	for _, want := range []string{
		"events           5000   orders.events (5000 produced)",
		"check: every produced record is in orders.events: OK",
		"check: every event has exactly one outcome (by event id): OK",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	goleak.VerifyNone(t, ignore)
}

// TestDemoTimers: `orderflow demo --timers` shows timers firing: the
// summary lists fired timers of the shortened default machine ("placed
// after 2s" at least: a fifth of the orders are abandoned, many of them
// unpaid) beside the checks, which still hold (a fired timer is a status
// change of its own, not an event's outcome), and final states include
// orders the timers closed.
func TestDemoTimers(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	out, err, code := runCmd(t, "", "demo", "--timers", "--events", "3000", "--rate", "1500")
	t.Log("\n" + out)
	if err != nil || code != 0 {
		t.Fatalf("orderflow demo --timers: exit %d: %v", code, err)
	}
	m := regexp.MustCompile(`timers fired +(\d+) `).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no timers line in the summary")
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Errorf("no timer fired")
	}
	for _, want := range []string{
		"placed after 2s",
		"waiting for the abandoned orders' timers",
		"check: every event has exactly one outcome (by event id): OK",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "still have a pending timer") {
		t.Errorf("the demo ended with timers pending")
	}
	goleak.VerifyNone(t, ignore)
}

func TestDemoBadFlagsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "--instances", "0"},
		{"demo", "--partitions", "0"},
		{"demo", "--events", "0"},
		{"demo", "--chaos", "--instances", "1"},
		{"demo", "--rate", "-1"},
	} {
		_, err, code := runCmd(t, "", args...)
		if code != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, code, err)
		}
	}
}
