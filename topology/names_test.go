package topology

import "testing"

// TestNames checks the name index Apply uses: every name is found with its
// index, including names that share a slot, and nothing else is found.
func TestNames(t *testing.T) {
	m := map[string]int32{
		"placed": 0, "paid": 1, "shipped": 2, "x": 3,
		// The same length and first and last eight bytes: always one slot.
		"receive_1_the_return": 4, "receive_2_the_return": 5,
	}
	x := newNames(m)
	for name, want := range m {
		if got, ok := x.index(name); !ok || got != want {
			t.Errorf("index(%q) = %d, %v; want %d, true", name, got, ok, want)
		}
	}
	for _, s := range []string{"", "receive_3_the_return", "placed ", "Paid", "shipper", "y", "xx"} {
		if got, ok := x.index(s); ok {
			t.Errorf("index(%q) = %d, true; want not found", s, got)
		}
	}
	shared := 0
	for _, sl := range x.slots {
		if sl.shared {
			shared++
		}
	}
	if shared != 1 {
		t.Errorf("%d shared slots, want 1 (receive_1_the_return and receive_2_the_return)", shared)
	}

	// The default machine's names each get a slot of their own: no lookup
	// in Apply falls back to the map.
	d := Default()
	for what, ix := range map[string]*names{"states": &d.stateIx, "events": &d.eventIx} {
		for _, sl := range ix.slots {
			if sl.shared {
				t.Errorf("default machine: two %s share a slot", what)
			}
		}
	}
}
