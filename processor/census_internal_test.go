package processor

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/topology"
)

// TestCensusMinutes: an order counts as older than a cutoff once the whole
// minute it entered its state in is before the cutoff (never early, at
// most a minute late, also before 1970), a move takes it out of its old
// state, and a closed order is not counted.
func TestCensusMinutes(t *testing.T) {
	c := newCensus()
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	st := func(leaf, entered string) *topology.State {
		return &topology.State{State: leaf, UpdatedAt: at(entered)}
	}
	older := func(cutoff string) map[string][2]int64 {
		got := map[string][2]int64{}
		add := func(leaf string, _ int, n int64) { g := got[leaf]; g[1] += n; got[leaf] = g }
		all := map[string]*StateCount{}
		c.count(all, []int64{at(cutoff).UnixMilli()}, add)
		for leaf, sc := range all {
			g := got[leaf]
			g[0] = sc.Orders
			got[leaf] = g
		}
		return got
	}
	a := st("placed", "2026-05-01T10:00:30Z")
	b := st("placed", "1969-12-31T23:59:30Z")
	c.move(censusKey{}, censusKeyOf(a))
	c.move(censusKey{}, censusKeyOf(b))
	for cutoff, want := range map[string]int64{
		"2026-05-01T10:00:30Z":     1, // a entered at the cutoff: not older
		"2026-05-01T10:00:59.999Z": 1, // a's minute is not over
		"2026-05-01T10:01:00Z":     2,
		"1970-01-01T00:00:00Z":     1, // b's minute (before 1970) is over
		"1969-12-31T23:59:59Z":     0,
	} {
		if got := older(cutoff)["placed"]; got != [2]int64{2, want} {
			t.Errorf("cutoff %s: placed %v, want 2 orders, %d older", cutoff, got, want)
		}
	}
	paid := st("confirmed", "2026-05-01T11:00:00Z")
	c.move(censusKeyOf(a), censusKeyOf(paid))
	closed := *b
	closed.State, closed.ClosedAt = "cancelled", &closed.UpdatedAt
	c.move(censusKeyOf(b), censusKeyOf(&closed))
	got := older("2026-05-01T12:00:00Z")
	if len(got) != 1 || got["confirmed"] != [2]int64{1, 1} {
		t.Errorf("after the moves: %v, want only confirmed: 1 order, 1 older", got)
	}
	if len(c.leaves) != 1 || len(c.leaves["confirmed"].minutes) != 1 {
		t.Errorf("empty states and minutes are kept: %+v", c.leaves)
	}
}
