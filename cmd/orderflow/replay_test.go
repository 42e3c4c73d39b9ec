package main

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/orderflow/orderflow/topology"
)

var updateReplay = flag.Bool("update-replay", false, "rewrite testdata/replay_expected.jsonl")

// TestReplayGolden replays testdata/replay_events.jsonl and compares with
// testdata/replay_expected.jsonl, which covers every rejection reason, a
// transition of each kind and every kind of bad line.
func TestReplayGolden(t *testing.T) {
	out, err, code := runCmd(t, "", "replay", "testdata/replay_events.jsonl")
	if err != nil || code != 0 {
		t.Fatalf("err %v code %d", err, code)
	}
	if *updateReplay {
		if err := os.WriteFile("testdata/replay_expected.jsonl", []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/replay_expected.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Fatalf("replay output differs from the golden file (rerun with -update-replay and review):\n%s", out)
	}

	// The golden file must keep covering what it claims to cover: one output
	// line per non-blank input line (and one per fired timer: the return
	// window of o1 passes before e8), every rejection reason, bad lines.
	in, err := os.ReadFile("testdata/replay_events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	nonBlank := 0
	for _, l := range strings.Split(string(in), "\n") {
		if strings.TrimSpace(l) != "" {
			nonBlank++
		}
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	timers := strings.Count(out, `"event_type":"timer"`) // fired timers: a line of their own
	if len(lines)-timers != nonBlank || timers == 0 {
		t.Errorf("%d output lines, %d of them fired timers, for %d event lines; want one per event line and a timer", len(lines), timers, nonBlank)
	}
	kinds, reasons := map[string]int{}, map[string]bool{}
	for _, l := range lines {
		var v struct {
			Kind   string `json:"kind"`
			Reason string `json:"reason"`
			From   any    `json:"from"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("output line is not JSON: %s", l)
		}
		if strings.Contains(l, "processed_at") {
			t.Errorf("replay has no clock, but printed processed_at: %s", l)
		}
		kinds[v.Kind]++
		reasons[v.Reason] = true
	}
	for _, r := range []string{
		topology.ReasonUnknownEventType, topology.ReasonDuplicateEvent, topology.ReasonUnknownOrder,
		topology.ReasonOrderExists, topology.ReasonTerminalState, topology.ReasonStaleEvent,
		topology.ReasonInvalidTransition, topology.ReasonGuardFailed, "cancel_after_shipment",
	} {
		if !reasons[r] {
			t.Errorf("golden output has no %s rejection", r)
		}
	}
	if kinds["transition"] == 0 || kinds["rejection"] == 0 || kinds["dlq"] < 5 {
		t.Errorf("kinds %v: want transitions, rejections and at least 5 dlq lines", kinds)
	}
}

func TestReplayStdinAndDash(t *testing.T) {
	in := `{"event_id":"e1","order_id":"o1","type":"place_order","occurred_at":"2026-01-01T00:00:00Z"}
{"event_id":"e2","order_id":"o1","type":"pack_order","occurred_at":"2026-01-01T00:00:01Z"}`
	want := `{"kind":"transition","order_id":"o1","event_id":"e1","event_type":"place_order","from":null,"to":"placed","version":1,"occurred_at":"2026-01-01T00:00:00Z"}
{"kind":"rejection","order_id":"o1","event_id":"e2","event_type":"pack_order","state":"placed","reason":"invalid_transition","detail":"no transition for pack_order from state placed (it accepts cancel_order, confirm_payment, hold_order)","occurred_at":"2026-01-01T00:00:01Z"}
`
	for _, args := range [][]string{{"replay"}, {"replay", "-"}} {
		out, err, code := runCmd(t, in, args...)
		if err != nil || code != 0 || out != want {
			t.Errorf("%v: code %d err %v\n got %s\nwant %s", args, code, err, out, want)
		}
	}
}

func TestReplayWithMachineFile(t *testing.T) {
	in := `{"event_id":"1","order_id":"t","type":"open_ticket","occurred_at":"2026-01-01T00:00:00Z"}
{"event_id":"2","order_id":"t","type":"pause","occurred_at":"2026-01-01T00:00:01Z"}
{"event_id":"3","order_id":"t","type":"resume","occurred_at":"2026-01-01T00:00:02Z"}
{"event_id":"4","order_id":"t","type":"place_order","occurred_at":"2026-01-01T00:00:03Z"}
`
	out, err, code := runCmd(t, in, "replay", "--machine", "testdata/machine_small.yaml")
	if err != nil || code != 0 {
		t.Fatalf("err %v code %d", err, code)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for i, want := range []string{`"to":"working"`, `"to":"paused"`, `"from":"paused","to":"working"`, `"reason":"unknown_event_type"`} {
		if i >= len(lines) || !strings.Contains(lines[i], want) {
			t.Errorf("line %d lacks %s:\n%s", i+1, want, out)
		}
	}
}

func TestReplayErrors(t *testing.T) {
	if _, err, code := runCmd(t, "", "replay", "testdata/no_such_events.jsonl"); code != 1 || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing input: code %d err %v", code, err)
	}
	if _, err, code := runCmd(t, "", "replay", "--machine", "testdata/machine_broken.yaml"); code != 1 || err == nil {
		t.Errorf("broken machine: code %d err %v", code, err)
	}
	// An empty input is not an error and prints nothing.
	if out, err, code := runCmd(t, "\n\n", "replay"); code != 0 || err != nil || out != "" {
		t.Errorf("empty input: out %q code %d err %v", out, code, err)
	}
}

// failingWriter fails every write, to check replay reports output errors.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestReplayWriteError(t *testing.T) {
	in := strings.NewReader(`{"event_id":"e1","order_id":"o1","type":"place_order","occurred_at":"2026-01-01T00:00:00Z"}` + "\n")
	err := replay(topology.Default(), in, failingWriter{}, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("want the write error, got %v", err)
	}
}

func TestReplayReadError(t *testing.T) {
	in := io.MultiReader(strings.NewReader(`{"event_id":"e1","order_id":"o1","type":"place_order","occurred_at":"2026-01-01T00:00:00Z"}`+"\n"), iotest.ErrReader(errors.New("connection reset")))
	var out strings.Builder
	err := replay(topology.Default(), in, &out, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("want the read error, got %v", err)
	}
}

// Timers fire before the event that reveals them; --now fires the rest at
// the end, in due order; without it, replay fires only what events reveal.
func TestReplayTimers(t *testing.T) {
	in := `{"event_id":"a1","order_id":"a","type":"place_order","occurred_at":"2026-01-01T00:00:00Z"}
{"event_id":"b1","order_id":"b","type":"place_order","occurred_at":"2026-01-01T01:00:00Z"}
{"event_id":"b2","order_id":"b","type":"confirm_payment","occurred_at":"2026-01-02T01:00:00.001Z"}
{"event_id":"c1","order_id":"c","type":"place_order","occurred_at":"2026-01-01T00:30:00Z"}
{"event_id":"c2","order_id":"c","type":"confirm_payment","occurred_at":"2026-01-02T00:30:00Z"}
`
	events := `{"kind":"transition","order_id":"a","event_id":"a1","event_type":"place_order","from":null,"to":"placed","version":1,"occurred_at":"2026-01-01T00:00:00Z"}
{"kind":"transition","order_id":"b","event_id":"b1","event_type":"place_order","from":null,"to":"placed","version":1,"occurred_at":"2026-01-01T01:00:00Z"}
{"kind":"transition","order_id":"b","event_id":"timer:placed:24h:1767229200000","event_type":"timer","from":"placed","to":"cancelled","version":2,"occurred_at":"2026-01-02T01:00:00Z","timer":"placed after 24h"}
{"kind":"rejection","order_id":"b","event_id":"b2","event_type":"confirm_payment","state":"cancelled","reason":"terminal_state","detail":"state cancelled is terminal: the order accepts no further events","occurred_at":"2026-01-02T01:00:00.001Z"}
{"kind":"transition","order_id":"c","event_id":"c1","event_type":"place_order","from":null,"to":"placed","version":1,"occurred_at":"2026-01-01T00:30:00Z"}
{"kind":"transition","order_id":"c","event_id":"c2","event_type":"confirm_payment","from":"placed","to":"confirmed","version":2,"occurred_at":"2026-01-02T00:30:00Z"}
`
	atEnd := `{"kind":"transition","order_id":"a","event_id":"timer:placed:24h:1767225600000","event_type":"timer","from":"placed","to":"cancelled","version":2,"occurred_at":"2026-01-02T00:00:00Z","timer":"placed after 24h"}
`
	for _, tc := range []struct {
		now, want string
	}{
		{"", events},
		{"2026-01-01T23:59:59.999Z", events},
		{"2026-01-02T00:00:00Z", events + atEnd},
	} {
		args := []string{"replay", "--machine", "testdata/machine_timers.yaml"}
		if tc.now != "" {
			args = append(args, "--now", tc.now)
		}
		out, err, code := runCmd(t, in, args...)
		if err != nil || code != 0 || out != tc.want {
			t.Errorf("--now %q: code %d err %v\n got %s\nwant %s", tc.now, code, err, out, tc.want)
		}
	}
	if _, err, code := runCmd(t, in, "replay", "--now", "tomorrow"); code != 2 || err == nil || !strings.Contains(err.Error(), "--now") {
		t.Errorf("bad --now: code %d err %v", code, err)
	}
}
