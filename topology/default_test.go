package topology

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// The default machine, written out by hand independently of default.yaml,
// so that an edit of the file that changes the lifecycle fails here.
var (
	lifecycleTree = map[string][]string{ // superstate -> children, in order
		"open":          {"placed", "confirmed", "packed", "on_hold"},
		"in_transit":    {"shipped", "out_for_delivery", "delivery_failed", "returning_to_sender"},
		"post_delivery": {"delivered", "return_requested", "return_in_transit", "returned"},
		"closed":        {"completed", "cancelled", "refunded", "returned_to_sender", "lost"},
	}
	lifecycleEvents = []string{
		"place_order", "confirm_payment", "pack_order", "ship_order", "hold_order", "release_hold",
		"cancel_order", "dispatch_order", "fail_delivery", "deliver_order", "return_to_sender",
		"confirm_returned_to_sender", "report_lost", "request_return", "decline_return",
		"ship_return", "receive_return", "refund_order", "complete_order",
	}
	// lifecycleTable: leaf -> event -> target leaf, or "!reason" for an
	// explicit rejection. Everything absent is invalid_transition.
	lifecycleTable = map[string]map[string]string{
		"placed":              {"confirm_payment": "confirmed", "hold_order": "on_hold", "cancel_order": "cancelled"},
		"confirmed":           {"pack_order": "packed", "ship_order": "shipped", "hold_order": "on_hold", "cancel_order": "cancelled"},
		"packed":              {"ship_order": "shipped", "hold_order": "on_hold", "cancel_order": "cancelled"},
		"on_hold":             {"release_hold": "confirmed" /* history, see below */, "cancel_order": "cancelled"},
		"shipped":             {"dispatch_order": "out_for_delivery", "deliver_order": "delivered", "cancel_order": "!cancel_after_shipment", "report_lost": "lost"},
		"out_for_delivery":    {"fail_delivery": "delivery_failed", "deliver_order": "delivered", "cancel_order": "!cancel_after_shipment", "report_lost": "lost"},
		"delivery_failed":     {"dispatch_order": "out_for_delivery", "return_to_sender": "returning_to_sender", "cancel_order": "!cancel_after_shipment", "report_lost": "lost"},
		"returning_to_sender": {"confirm_returned_to_sender": "returned_to_sender", "cancel_order": "!cancel_after_shipment", "report_lost": "lost"},
		"delivered":           {"request_return": "return_requested", "complete_order": "completed", "cancel_order": "!cancel_after_shipment"},
		"return_requested":    {"decline_return": "delivered", "ship_return": "return_in_transit", "cancel_order": "!cancel_after_shipment"},
		"return_in_transit":   {"receive_return": "returned", "cancel_order": "!cancel_after_shipment"},
		"returned":            {"refund_order": "refunded", "cancel_order": "!cancel_after_shipment"},
	}
	// lifecycleTimers: the state declaring each timer, its delay and its
	// target; every leaf of a superstate listed here has its timer.
	lifecycleTimers = map[string]struct {
		after time.Duration
		to    string
	}{
		"placed":     {24 * time.Hour, "cancelled"},
		"in_transit": {14 * 24 * time.Hour, "lost"},
		"delivered":  {720 * time.Hour, "completed"},
	}
)

// TestDefaultMachineTimers checks every leaf's pending timer against
// lifecycleTimers: which state declares it, when it is due and where it
// goes.
func TestDefaultMachineTimers(t *testing.T) {
	m := Default()
	if got, want := m.TimedStates(), []string{"placed", "in_transit", "delivered"}; !reflect.DeepEqual(got, want) {
		t.Errorf("TimedStates() = %v, want %v", got, want)
	}
	entered := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, leaf := range m.Leaves() {
		declaring := ""
		for s := leaf; s != ""; {
			if _, ok := lifecycleTimers[s]; ok {
				declaring = s
				break
			}
			s, _ = m.Parent(s)
		}
		st := &State{State: leaf, Version: 3, CreatedAt: entered, UpdatedAt: entered,
			Timers: []Clock{{State: declaring, Entered: entered.UnixMilli()}}}
		tm, ok := NextTimer(m, st)
		if declaring == "" {
			if ok {
				t.Errorf("%s: pending timer %s, want none", leaf, tm)
			}
			continue
		}
		want := lifecycleTimers[declaring]
		if !ok || tm.State != declaring || tm.After != want.after || !tm.Due.Equal(entered.Add(want.after)) {
			t.Errorf("%s: timer %+v (%v), want %s after %v", leaf, tm, ok, declaring, want.after)
			continue
		}
		if out := Fire(m, st, tm); !out.Accepted || out.Next.State != want.to || !out.Next.UpdatedAt.Equal(tm.Due) {
			t.Errorf("%s: firing %s gives %+v, want %s at %v", leaf, tm, out.Next, want.to, tm.Due)
		}
	}
}

func TestDefaultMachineShape(t *testing.T) {
	m := Default()
	var leaves []string
	for _, super := range []string{"open", "in_transit", "post_delivery", "closed"} {
		for _, c := range lifecycleTree[super] {
			leaves = append(leaves, c)
			if p, ok := m.Parent(c); !ok || p != super {
				t.Errorf("parent of %s = %q, want %s", c, p, super)
			}
			if got, want := m.IsTerminal(c), super == "closed"; got != want {
				t.Errorf("IsTerminal(%s) = %v, want %v", c, got, want)
			}
		}
		if m.IsLeaf(super) {
			t.Errorf("%s is a leaf, want a superstate", super)
		}
	}
	if !reflect.DeepEqual(m.Leaves(), leaves) {
		t.Errorf("Leaves() = %v\nwant %v", m.Leaves(), leaves)
	}
	if !reflect.DeepEqual(m.EventTypes(), lifecycleEvents) {
		t.Errorf("EventTypes() = %v\nwant %v", m.EventTypes(), lifecycleEvents)
	}
	if m.CreatingEvent() != "place_order" || m.InitialState() != "placed" || m.Name() != "default" {
		t.Errorf("creating %s, initial %s, name %s", m.CreatingEvent(), m.InitialState(), m.Name())
	}
	if Default() != m {
		t.Errorf("Default() loads more than once")
	}
	// Accessors hand out copies.
	m.Leaves()[0] = "mutated"
	m.EventTypes()[0] = "mutated"
	if m.Leaves()[0] != "placed" || m.EventTypes()[0] != "place_order" {
		t.Errorf("Leaves/EventTypes expose internal slices")
	}
}

// TestDefaultMachineMatrix applies every event to an order in every leaf
// (with guards satisfied) and compares with the table above.
func TestDefaultMachineMatrix(t *testing.T) {
	m := Default()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, leaf := range m.Leaves() {
		for _, evType := range lifecycleEvents {
			st := &State{
				State: leaf, Version: 7, CreatedAt: at.Add(-100 * time.Hour), UpdatedAt: at.Add(-time.Hour),
				RecentEventIDs: []string{"old"},
				Marks:          map[string]int64{"deliver_order": at.Add(-time.Hour).UnixMilli()},
				History:        map[string]string{"open": "confirmed"},
			}
			ev := &Event{EventID: "new", OrderID: "o", Type: evType, OccurredAt: at,
				Attributes: map[string]string{"tracking_number": "1Z"}}
			before := cloneState(st)
			out := Apply(m, st, ev)
			if err := checkOutcome(m, before, st, ev, out); err != nil {
				t.Fatalf("%s + %s: %v", leaf, evType, err)
			}
			want, ok := lifecycleTable[leaf][evType]
			switch {
			case m.IsTerminal(leaf):
				if evType == "place_order" {
					want = "!" + ReasonOrderExists
				} else {
					want = "!" + ReasonTerminalState
				}
			case evType == "place_order":
				want = "!" + ReasonOrderExists
			case !ok:
				want = "!" + ReasonInvalidTransition
			}
			got := out.To
			if !out.Accepted {
				got = "!" + out.Reason
			}
			if got != want {
				t.Errorf("%s + %s = %s (%s), want %s", leaf, evType, got, out.Detail, want)
			}
		}
	}
}

func TestDefaultMachineGuardsFail(t *testing.T) {
	m := Default()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, leaf := range []string{"confirmed", "packed"} {
		st := &State{State: leaf, Version: 3}
		out := Apply(m, st, &Event{EventID: "x", Type: "ship_order", OccurredAt: at})
		if out.Reason != ReasonGuardFailed || !strings.Contains(out.Detail, "attribute_present: tracking_number") {
			t.Errorf("ship_order from %s without tracking_number: %+v", leaf, out)
		}
	}
	st := &State{State: "delivered", Version: 5, Marks: map[string]int64{"deliver_order": at.UnixMilli()}}
	late := &Event{EventID: "x", Type: "request_return", OccurredAt: at.Add(720*time.Hour + time.Millisecond)}
	if out := Apply(m, st, late); out.Reason != ReasonGuardFailed || !strings.Contains(out.Detail, "within: 720h since deliver_order") {
		t.Errorf("late return request: %+v", out)
	}
	onTime := &Event{EventID: "x", Type: "request_return", OccurredAt: at.Add(720 * time.Hour)}
	if out := Apply(m, st, onTime); !out.Accepted {
		t.Errorf("return request at the bound: %+v", out)
	}
}

// TestApplyCopyOnWrite pins the sharing contract of Apply: Next shares
// Marks, History and LastSequence with the old state exactly when the event
// leaves them unchanged, clones Marks before writing a different value into
// it (History: see TestApplyHistoryShared), and always builds RecentEventIDs
// anew without reusing the old slice's spare capacity. The old state is
// never modified.
func TestApplyCopyOnWrite(t *testing.T) {
	m := Default()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name                 string
		leaf, event          string
		seq                  *int64
		marks                map[string]int64
		history              map[string]string
		shareMarks, shareHis bool
		wantMarks            map[string]int64
		wantHistory          map[string]string
	}{
		{"new mark clones marks", "shipped", "deliver_order", nil,
			map[string]int64{"other": 1}, map[string]string{"open": "packed"}, false, true,
			map[string]int64{"other": 1, "deliver_order": at.UnixMilli()}, map[string]string{"open": "packed"}},
		{"changed mark clones marks", "shipped", "deliver_order", nil,
			map[string]int64{"deliver_order": 1}, nil, false, true,
			map[string]int64{"deliver_order": at.UnixMilli()}, nil},
		{"same mark is shared", "shipped", "deliver_order", nil,
			map[string]int64{"deliver_order": at.UnixMilli()}, map[string]string{}, true, true,
			map[string]int64{"deliver_order": at.UnixMilli()}, map[string]string{}},
		{"first mark on nil marks", "out_for_delivery", "deliver_order", nil,
			nil, nil, false, true,
			map[string]int64{"deliver_order": at.UnixMilli()}, nil},
		{"changed history slot clones history", "packed", "hold_order", nil,
			map[string]int64{"deliver_order": 1}, map[string]string{"open": "confirmed", "x": "y"}, true, false,
			map[string]int64{"deliver_order": 1}, map[string]string{"open": "packed", "x": "y"}},
		{"new history slot on nil history", "packed", "hold_order", nil,
			nil, nil, true, false,
			nil, map[string]string{"open": "packed"}},
		{"same history slot is shared", "packed", "hold_order", nil,
			nil, map[string]string{"open": "packed"}, true, true,
			nil, map[string]string{"open": "packed"}},
		{"new sequence", "placed", "confirm_payment", func() *int64 { n := int64(9); return &n }(),
			nil, map[string]string{"open": "placed"}, true, true, nil, map[string]string{"open": "placed"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			seq := int64(4)
			st := &State{
				State: c.leaf, Version: 3, LastSequence: &seq,
				RecentEventIDs: make([]string, 3, 64), // spare capacity must not be reused
				Marks:          c.marks,
				History:        c.history,
			}
			copy(st.RecentEventIDs, []string{"a", "b", "c"})
			before := cloneState(st)
			ev := &Event{EventID: "d", Type: c.event, OccurredAt: at, Sequence: c.seq}
			out := Apply(m, st, ev)
			if !out.Accepted {
				t.Fatalf("rejected: %+v", out)
			}
			if err := checkOutcome(m, before, st, ev, out); err != nil {
				t.Fatal(err)
			}
			n := out.Next
			if got := sameMap(st.Marks, n.Marks); got != c.shareMarks {
				t.Errorf("marks shared = %v, want %v", got, c.shareMarks)
			}
			if got := sameMap(st.History, n.History); got != c.shareHis {
				t.Errorf("history shared = %v, want %v", got, c.shareHis)
			}
			if !reflect.DeepEqual(n.Marks, c.wantMarks) || !reflect.DeepEqual(n.History, c.wantHistory) {
				t.Errorf("marks %v history %v, want %v %v", n.Marks, n.History, c.wantMarks, c.wantHistory)
			}
			if wantShared := c.seq == nil; (n.LastSequence == st.LastSequence) != wantShared {
				t.Errorf("last sequence shared = %v, want %v", !wantShared, wantShared)
			}
			// What Next owns may be written without reaching the old state.
			n.RecentEventIDs[0] = "zzz"
			n.RecentEventIDs = append(n.RecentEventIDs, "more")
			if !c.shareMarks {
				n.Marks["other"] = 2
			}
			if c.seq != nil {
				*n.LastSequence = 99
			}
			if !reflect.DeepEqual(before, st) {
				t.Fatalf("old state changed through Next:\n%+v\n%+v", before, st)
			}
			if st.RecentEventIDs[:4][3] == "more" {
				t.Fatalf("Next appended into the old state's spare capacity")
			}
		})
	}
}

// TestApplyHistoryShared pins how a move that changes a history slot builds
// the next History: when the order's History has no slot the move does not
// set, every such order gets the machine's one precomputed map of the move's
// slots (no allocation); otherwise a new map with the other slots kept. No
// old state's map changes either way.
func TestApplyHistoryShared(t *testing.T) {
	m := Default()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	apply := func(history map[string]string) (*State, State) {
		t.Helper()
		st := &State{State: "packed", Version: 3, RecentEventIDs: []string{"a"}, History: history}
		out := Apply(m, st, &Event{EventID: "b", Type: "hold_order", OccurredAt: at})
		if !out.Accepted || out.To != "on_hold" {
			t.Fatalf("outcome %+v, want accepted into on_hold", out)
		}
		return st, out.Next
	}
	st1, n1 := apply(map[string]string{"open": "confirmed"})
	_, n2 := apply(nil)
	st3, n3 := apply(map[string]string{"open": "confirmed", "x": "y"})
	want := map[string]string{"open": "packed"}
	if !reflect.DeepEqual(n1.History, want) || !reflect.DeepEqual(n2.History, want) {
		t.Fatalf("history %v and %v, want %v", n1.History, n2.History, want)
	}
	if !sameMap(n1.History, n2.History) {
		t.Errorf("two orders making the same move got different maps, want the shared one")
	}
	if sameMap(n1.History, st1.History) || !reflect.DeepEqual(st1.History, map[string]string{"open": "confirmed"}) {
		t.Errorf("old history %v changed or shared", st1.History)
	}
	if !reflect.DeepEqual(n3.History, map[string]string{"open": "packed", "x": "y"}) {
		t.Errorf("history with another slot: %v", n3.History)
	}
	if sameMap(n3.History, n1.History) || sameMap(n3.History, st3.History) {
		t.Errorf("history with another slot must be a new map")
	}
	if !reflect.DeepEqual(st3.History, map[string]string{"open": "confirmed", "x": "y"}) {
		t.Errorf("old history %v changed", st3.History)
	}
}
