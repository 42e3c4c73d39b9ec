package topology

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cockroachdb/datadriven"
)

// testEpoch is time zero of the data-driven tests: at=DURATION means this
// plus DURATION.
var testEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestApplyDataDriven runs the files under testdata/apply. Commands:
//
//	machine [default]        load the YAML input as the machine (or the
//	                         default machine) and forget every order
//	apply                    one event per input line:
//	                           ORDER TYPE [id=ID] [at=TIME] [seq=N] [NAME=VALUE...]
//	                         TIME is RFC 3339 or a duration after 2026-01-01T00:00:00Z;
//	                         without at= the clock advances one minute; without
//	                         id= the ID is e<N>, N counting events in the file
//	state order=ID           print the stored state of an order
//	setstate order=ID state=S [version=N] [seq=N] [ids=(a,b)] [history=(super:child,...)]
//	                         store a hand-made state (e.g. a leaf an older
//	                         machine had)
//
// Rewrite expected output with: go test ./topology -run DataDriven -rewrite
func TestApplyDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/apply", func(t *testing.T, path string) {
		h := newHarness(t)
		datadriven.RunTest(t, path, h.run)
	})
}

type harness struct {
	m      *Machine
	orders map[string]*State
	clock  time.Time
	n      int
	// frozen holds every state the file built, to check that no later
	// Apply wrote through memory an earlier state shares.
	frozen snapshots
}

func newHarness(t *testing.T) *harness {
	return &harness{m: Default(), orders: map[string]*State{}, clock: testEpoch}
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "machine":
		h.orders = map[string]*State{}
		if d.HasArg("default") {
			h.m = Default()
			return "ok"
		}
		m, err := Parse([]byte(d.Input))
		if err != nil {
			return err.Error()
		}
		h.m = m
		return "ok"
	case "apply":
		var out strings.Builder
		for _, line := range strings.Split(d.Input, "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			ev := h.parseEvent(t, d, line)
			h.fireTimers(t, ev.OrderID, ev.OccurredAt, false, &out)
			st := h.orders[ev.OrderID]
			out.WriteString(h.applyChecked(t, st, ev))
			out.WriteByte('\n')
		}
		if err := h.frozen.check(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	case "advance":
		// Fire every timer due at or before to=TIME, order by order, as
		// replay --now does at the end of its input.
		var to string
		d.ScanArgs(t, "to", &to)
		h.clock = h.parseTime(t, d, to)
		var out strings.Builder
		for _, order := range slices.Sorted(maps.Keys(h.orders)) {
			h.fireTimers(t, order, h.clock, true, &out)
		}
		if err := h.frozen.check(); err != nil {
			t.Fatal(err)
		}
		if out.Len() == 0 {
			return "no timer due"
		}
		return out.String()
	case "state":
		var order string
		d.ScanArgs(t, "order", &order)
		st, ok := h.orders[order]
		if !ok {
			return "no order"
		}
		return formatState(st)
	case "setstate":
		var order, state string
		d.ScanArgs(t, "order", &order)
		d.ScanArgs(t, "state", &state)
		st := &State{State: state, Version: 1, CreatedAt: h.clock, UpdatedAt: h.clock}
		d.MaybeScanArgs(t, "version", &st.Version)
		if d.HasArg("seq") {
			var seq int64
			d.ScanArgs(t, "seq", &seq)
			st.LastSequence = &seq
		}
		if arg, ok := d.Arg("ids"); ok {
			st.RecentEventIDs = append([]string(nil), arg.Vals...)
		}
		if arg, ok := d.Arg("history"); ok {
			st.History = map[string]string{}
			for _, v := range arg.Vals {
				super, child, _ := strings.Cut(v, ":")
				st.History[super] = child
			}
		}
		h.orders[order] = st
		h.frozen.add(st)
		return formatState(st)
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
		return ""
	}
}

func (h *harness) parseEvent(t *testing.T, d *datadriven.TestData, line string) *Event {
	f := strings.Fields(line)
	if len(f) < 2 {
		d.Fatalf(t, "want ORDER TYPE [k=v...], got %q", line)
	}
	h.n++
	ev := &Event{OrderID: f[0], Type: f[1], EventID: fmt.Sprintf("e%d", h.n)}
	at := h.clock.Add(time.Minute)
	for _, kv := range f[2:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			d.Fatalf(t, "bad argument %q in %q", kv, line)
		}
		switch k {
		case "id":
			ev.EventID = v
		case "at":
			at = h.parseTime(t, d, v)
		case "seq":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				d.Fatalf(t, "bad seq=%q", v)
			}
			ev.Sequence = &n
		default:
			if ev.Attributes == nil {
				ev.Attributes = map[string]string{}
			}
			ev.Attributes[k] = v
		}
	}
	ev.OccurredAt = at
	h.clock = at
	return ev
}

// parseTime parses a TIME argument: RFC 3339, or a duration (days allowed)
// after testEpoch.
func (h *harness) parseTime(t *testing.T, d *datadriven.TestData, v string) time.Time {
	if ts, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return ts
	}
	if dur, err := ParseDuration(v); err == nil {
		return testEpoch.Add(dur)
	}
	d.Fatalf(t, "bad time %q", v)
	return time.Time{}
}

// fireTimers fires the timers of order due before until (or at it, when
// inclusive), in due order, checking what Fire promises, and prints one
// line per timer: its ID, the order, the timer, the move and when it was due.
func (h *harness) fireTimers(t *testing.T, order string, until time.Time, inclusive bool, out *strings.Builder) {
	t.Helper()
	var last time.Time
	for {
		st := h.orders[order]
		tm, ok := NextTimer(h.m, st)
		if !ok || !tm.FiresBefore(until) && !(inclusive && tm.Due.Equal(until)) {
			return
		}
		if tm.Due.Before(last) {
			t.Fatalf("%s: timer %s due %v fired after one due %v", order, tm, tm.Due, last)
		}
		last = tm.Due
		before := cloneState(st)
		o := Fire(h.m, st, tm)
		if !reflect.DeepEqual(before, st) {
			t.Fatalf("%s: Fire modified the state", order)
		}
		if !o.Accepted || o.Next.Version != st.Version+1 || !o.Next.UpdatedAt.Equal(tm.Due) || o.To != o.Next.State {
			t.Fatalf("%s: Fire outcome %+v", order, o)
		}
		next := o.Next
		h.orders[order] = &next
		h.frozen.add(&next)
		fmt.Fprintf(out, "%s %s %s: accepted %s -> %s v%d at %s\n", tm.ID(), order, tm, o.From, o.To, next.Version, tm.Due.Format(time.RFC3339Nano))
	}
}

// applyChecked applies ev, checks the invariants every outcome must hold,
// stores an accepted state, and formats the outcome.
func (h *harness) applyChecked(t *testing.T, st *State, ev *Event) string {
	t.Helper()
	before := cloneState(st)
	out := Apply(h.m, st, ev)
	if err := checkOutcome(h.m, before, st, ev, out); err != nil {
		t.Fatalf("%s %s %s: %v", ev.OrderID, ev.Type, ev.EventID, err)
	}
	if out.Accepted {
		next := out.Next
		h.orders[ev.OrderID] = &next
		h.frozen.add(&next)
	}
	return formatOutcome(ev, out)
}

func formatOutcome(ev *Event, out Outcome) string {
	from := out.From
	if from == "" {
		from = "(none)"
	}
	if out.Accepted {
		return fmt.Sprintf("%s %s %s: accepted %s -> %s v%d", ev.EventID, ev.OrderID, ev.Type, from, out.To, out.Next.Version)
	}
	return fmt.Sprintf("%s %s %s: rejected %s in %s: %s", ev.EventID, ev.OrderID, ev.Type, out.Reason, from, out.Detail)
}

func formatState(st *State) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state: %s\nversion: %d\n", st.State, st.Version)
	fmt.Fprintf(&b, "created_at: %s\nupdated_at: %s\n", st.CreatedAt.Format(time.RFC3339Nano), st.UpdatedAt.Format(time.RFC3339Nano))
	if st.LastSequence != nil {
		fmt.Fprintf(&b, "last_sequence: %d\n", *st.LastSequence)
	} else {
		b.WriteString("last_sequence: none\n")
	}
	fmt.Fprintf(&b, "recent_event_ids: %s\n", strings.Join(st.RecentEventIDs, " "))
	fmt.Fprintf(&b, "marks:%s\n", formatMap(st.Marks, func(v int64) string { return time.UnixMilli(v).UTC().Format(time.RFC3339Nano) }))
	fmt.Fprintf(&b, "history:%s\n", formatMap(st.History, func(v string) string { return v }))
	if len(st.Timers) > 0 {
		b.WriteString("timers:") // in the slice's order, which is by name
		for _, c := range st.Timers {
			fmt.Fprintf(&b, " %s=%s", c.State, time.UnixMilli(c.Entered).UTC().Format(time.RFC3339Nano))
		}
		b.WriteString("\n")
	}
	if st.ClosedAt != nil {
		fmt.Fprintf(&b, "closed_at: %s\n", st.ClosedAt.Format(time.RFC3339Nano))
	}
	return b.String()
}

func formatMap[V any](m map[string]V, f func(V) string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, f(m[k]))
	}
	return b.String()
}

// checkOutcome verifies the contract of Apply that holds for every input:
// it is deterministic, leaves *st untouched (before is a deep copy of st
// taken before Apply ran, nil when st is), returns a zero Next on reject, and
// on accept a leaf state one version on (FromLeaf and ToLeaf index From and
// To in Leaves), built copy-on-write: it shares
// Marks, History and LastSequence with *st exactly when they are unchanged,
// and nothing with *ev; its RecentEventIDs is a new slice without spare
// capacity. It is used by the data-driven tests and the fuzz target.
func checkOutcome(m *Machine, before, st *State, ev *Event, out Outcome) error {
	if !reflect.DeepEqual(before, st) {
		return fmt.Errorf("state was modified")
	}
	again := Apply(m, st, ev)
	if !reflect.DeepEqual(out, again) {
		return fmt.Errorf("not deterministic: %+v then %+v", out, again)
	}
	if !reflect.DeepEqual(before, st) {
		return fmt.Errorf("state was modified by a second Apply")
	}
	wantFrom := ""
	if st != nil {
		wantFrom = st.State
	}
	if out.From != wantFrom {
		return fmt.Errorf("From = %q, want %q", out.From, wantFrom)
	}
	if !out.Accepted {
		if !reflect.DeepEqual(out.Next, State{}) || out.To != "" {
			return fmt.Errorf("rejected with non-zero Next or To: %+v", out)
		}
		if out.Reason == "" || out.Detail == "" {
			return fmt.Errorf("rejection without reason or detail: %+v", out)
		}
		return nil
	}
	next := &out.Next
	if out.Reason != "" || out.Detail != "" {
		return fmt.Errorf("accepted with a reason: %+v", out)
	}
	if !m.IsLeaf(next.State) || out.To != next.State {
		return fmt.Errorf("accepted into %q (To %q), not a leaf", next.State, out.To)
	}
	for i := 1; i < len(next.Timers); i++ {
		if next.Timers[i-1].State >= next.Timers[i].State {
			return fmt.Errorf("timers not sorted by state, or a state twice: %v", next.Timers)
		}
	}
	leaves := m.Leaves()
	if out.ToLeaf < 0 || out.ToLeaf >= len(leaves) || leaves[out.ToLeaf] != out.To {
		return fmt.Errorf("ToLeaf %d is not To %q in %v", out.ToLeaf, out.To, leaves)
	}
	if st == nil && out.FromLeaf != -1 || st != nil && (out.FromLeaf < 0 || out.FromLeaf >= len(leaves) || leaves[out.FromLeaf] != out.From) {
		return fmt.Errorf("FromLeaf %d is not From %q in %v", out.FromLeaf, out.From, leaves)
	}
	wantVersion := int64(1)
	if st != nil {
		wantVersion = st.Version + 1
	}
	if next.Version != wantVersion {
		return fmt.Errorf("version %d, want %d", next.Version, wantVersion)
	}
	if !next.UpdatedAt.Equal(ev.OccurredAt) {
		return fmt.Errorf("updated_at %v, want %v", next.UpdatedAt, ev.OccurredAt)
	}
	if st == nil && !next.CreatedAt.Equal(ev.OccurredAt) || st != nil && !next.CreatedAt.Equal(st.CreatedAt) {
		return fmt.Errorf("created_at %v wrong", next.CreatedAt)
	}
	if next.ClosedAt != nil {
		return fmt.Errorf("Apply set ClosedAt")
	}
	ids := next.RecentEventIDs
	if len(ids) == 0 || len(ids) > RecentEventIDs || ids[len(ids)-1] != ev.EventID {
		return fmt.Errorf("recent event IDs %v do not end in %q", ids, ev.EventID)
	}
	if cap(ids) != len(ids) {
		return fmt.Errorf("recent event IDs have spare capacity (len %d, cap %d): an append could write into shared memory", len(ids), cap(ids))
	}
	if st != nil {
		prev := st.RecentEventIDs
		keep := len(ids) - 1
		if keep != min(len(prev), RecentEventIDs-1) || !reflect.DeepEqual(ids[:keep], prev[len(prev)-keep:]) && keep > 0 {
			return fmt.Errorf("recent event IDs %v do not continue %v", ids, prev)
		}
		if sharesBacking(prev, ids) {
			return fmt.Errorf("recent event IDs share a backing array with the old ones")
		}
	}
	if ev.Sequence != nil {
		if next.LastSequence == nil || *next.LastSequence != *ev.Sequence {
			return fmt.Errorf("last sequence not updated")
		}
		if next.LastSequence == ev.Sequence {
			return fmt.Errorf("last sequence points into the event")
		}
	} else {
		var want *int64
		if st != nil {
			want = st.LastSequence
		}
		if next.LastSequence != want {
			return fmt.Errorf("last sequence %p, want the old state's %p (unchanged, shared)", next.LastSequence, want)
		}
	}
	if st != nil {
		// Copy-on-write: a map is shared exactly when its content is unchanged.
		if shared, same := sameMap(st.Marks, next.Marks), reflect.DeepEqual(st.Marks, next.Marks); shared != same {
			return fmt.Errorf("marks %v -> %v: shared %v, unchanged %v", st.Marks, next.Marks, shared, same)
		}
		if shared, same := sameMap(st.History, next.History), reflect.DeepEqual(st.History, next.History); shared != same {
			return fmt.Errorf("history %v -> %v: shared %v, unchanged %v", st.History, next.History, shared, same)
		}
	}
	return nil
}

// sharesBacking reports whether two slices share (part of) a backing array.
func sharesBacking(a, b []string) bool {
	if cap(a) == 0 || cap(b) == 0 {
		return false
	}
	size := unsafe.Sizeof("")
	a0 := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	b0 := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return a0 < b0+uintptr(cap(b))*size && b0 < a0+uintptr(cap(a))*size
}

// sameMap reports whether a and b are the same map (or both nil).
func sameMap[M ~map[K]V, K comparable, V any](a, b M) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// cloneState returns a deep copy of st (nil for nil), keeping nil and empty
// collections apart, so that reflect.DeepEqual(cloneState(st), st) holds
// until something writes into st or memory it points to.
func cloneState(st *State) *State {
	if st == nil {
		return nil
	}
	c := *st
	c.RecentEventIDs = slices.Clone(st.RecentEventIDs)
	c.Marks = maps.Clone(st.Marks)
	c.History = maps.Clone(st.History)
	c.Timers = slices.Clone(st.Timers)
	if st.LastSequence != nil {
		v := *st.LastSequence
		c.LastSequence = &v
	}
	if st.ClosedAt != nil {
		v := *st.ClosedAt
		c.ClosedAt = &v
	}
	return &c
}

// snapshots holds deep copies of states, to check later that none of them
// changed: with copy-on-write, a write through shared memory would show up
// in an older state, not only in the one passed to Apply.
type snapshots []struct{ st, copy *State }

func (s *snapshots) add(st *State) {
	*s = append(*s, struct{ st, copy *State }{st, cloneState(st)})
}

func (s snapshots) check() error {
	for i, f := range s {
		if !reflect.DeepEqual(f.copy, f.st) {
			return fmt.Errorf("state %d (%s v%d) changed after it was built: %+v, was %+v", i, f.copy.State, f.copy.Version, *f.st, *f.copy)
		}
	}
	return nil
}

// TestWithinGuardExtremeTimes holds the within guard (720h since
// deliver_order in the default machine) to its meaning for every int64
// mark and event time, where the difference of the two overflows int64,
// and for event times whose Unix milliseconds do not fit an int64.
func TestWithinGuardExtremeTimes(t *testing.T) {
	const windowMS = int64(720 * time.Hour / time.Millisecond)
	m := Default()
	for _, tc := range []struct {
		name   string
		mark   int64
		at     time.Time
		passes bool
	}{
		{"at the bound", 0, time.UnixMilli(windowMS), true},
		{"1 ms past the bound", 0, time.UnixMilli(windowMS + 1), false},
		{"before the mark", 0, time.UnixMilli(-1), true},
		{"2^63 ms after the mark", -1 << 62, time.UnixMilli(1 << 62), false},
		{"2^64-1 ms after the mark", math.MinInt64, time.UnixMilli(math.MaxInt64), false},
		{"2^63+1 ms before the mark", 1 << 62, time.UnixMilli(-1<<62 - 1), true},
		{"2^64-1 ms before the mark", math.MaxInt64, time.UnixMilli(math.MinInt64), true},
		{"beyond int64 milliseconds after", 0, time.Unix(1<<62, 0), false},
		{"beyond int64 milliseconds before", 0, time.Unix(-1<<62, 0), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &State{State: "delivered", Version: 4, Marks: map[string]int64{"deliver_order": tc.mark}}
			out := Apply(m, st, &Event{EventID: "r", OrderID: "o", Type: "request_return", OccurredAt: tc.at})
			if out.Accepted != tc.passes {
				t.Fatalf("mark %d, request_return at %v: accepted %v (%s: %s), want %v", tc.mark, tc.at, out.Accepted, out.Reason, out.Detail, tc.passes)
			}
			if !tc.passes && out.Reason != ReasonGuardFailed {
				t.Fatalf("reason %s, want %s", out.Reason, ReasonGuardFailed)
			}
		})
	}

	// A mark saturates rather than wraps, so the guard above sees the
	// delivery as late as it can be.
	for _, tc := range []struct {
		at   time.Time
		mark int64
	}{
		{time.Unix(1<<62, 0), math.MaxInt64},
		{time.Unix(-1<<62, 0), math.MinInt64},
		{time.UnixMilli(math.MaxInt64), math.MaxInt64},
		{time.UnixMilli(123), 123},
	} {
		st := &State{State: "shipped", Version: 3}
		out := Apply(m, st, &Event{EventID: "d", OrderID: "o", Type: "deliver_order", OccurredAt: tc.at})
		if !out.Accepted || out.Next.Marks["deliver_order"] != tc.mark {
			t.Fatalf("deliver_order at %v: accepted %v, mark %d, want %d", tc.at, out.Accepted, out.Next.Marks["deliver_order"], tc.mark)
		}
	}
}
