package processor

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"
)

// TestOutputMemory checks the slab memory of output records: records are
// distinct and zeroed, also after a recycle, and each kept value keeps its
// bytes whatever is appended after it, to the slab or to the value itself.
func TestOutputMemory(t *testing.T) {
	b := newOutputMemory()
	for round := range 3 {
		t.Run(strconv.Itoa(round), func(t *testing.T) { checkOutputMemory(t, b) })
		switch round {
		case 0:
			b.recycle()
			if len(b.recs.free) != 3 || len(b.hdrs.free) != 3 || len(b.vals.free) == 0 {
				t.Errorf("recycle freed %d record, %d header and %d value slabs", len(b.recs.free), len(b.hdrs.free), len(b.vals.free))
			}
		case 1:
			if len(b.recs.free) != 0 {
				t.Errorf("%d record slabs left unused after a recycle", len(b.recs.free))
			}
			b.drop()
		}
	}
}

func checkOutputMemory(t *testing.T, b *outputMemory) {
	seen := map[any]bool{}
	for i := range 3 * recordSlab {
		r := b.record()
		if seen[r] {
			t.Fatalf("record %d handed out twice", i)
		}
		seen[r] = true
		if r.Topic != "" || r.Value != nil || r.Headers != nil {
			t.Fatalf("record %d is not zeroed: %+v", i, r)
		}
		r.Topic = "used"
		h := b.header("k", []byte(strconv.Itoa(i)))
		if len(h) != 1 || cap(h) != 1 || string(h[0].Value) != strconv.Itoa(i) {
			t.Fatalf("header %d = %+v (cap %d)", i, h, cap(h))
		}
	}

	var kept [][]byte
	var want []string
	for i := range 5000 {
		// Values of growing size, some larger than a slab's free space
		// and one larger than a slab.
		n := 1 + i%700
		if i == 2500 {
			n = 2 * valueSlab
		}
		v := append(b.space(), bytes.Repeat([]byte{byte(i)}, n)...)
		v = append(v, fmt.Sprintf("#%d", i)...)
		v = b.keep(v)
		if cap(v) != len(v) {
			t.Fatalf("value %d: capacity %d beyond its length %d", i, cap(v), len(v))
		}
		kept = append(kept, v)
		want = append(want, string(v))
		// Appending to a kept value must not write into the slab.
		_ = append(v, "clobber"...)
	}
	for i, v := range kept {
		if string(v) != want[i] {
			t.Fatalf("value %d changed after later values were kept", i)
		}
	}
}

// TestCountsMoves checks that a batch's moves, counted by leaf index, reach
// the stats by leaf name, with "" as the source of a new order, add up over
// batches, and that released counts go back zeroed.
func TestCountsMoves(t *testing.T) {
	leaves := []string{"a", "b", "c"}
	var st stats
	for range 2 {
		c := newCounts(leaves)
		c.moved(-1, 0)
		c.moved(0, 2)
		c.moved(0, 2)
		c.moved(2, 1)
		st.add(&c)
		m := c.moves
		c.release()
		// Back in the pool for the next batch: zeroed.
		if len(m.touched) != 0 || slices.ContainsFunc(m.n, func(n int64) bool { return n != 0 }) {
			t.Fatalf("released move counts not zeroed: %v, touched %v", m.n, m.touched)
		}
	}
	want := map[move]int64{{"", "a"}: 2, {"a", "c"}: 4, {"c", "b"}: 2}
	if got := st.movesSnapshot(); !maps.Equal(got, want) {
		t.Fatalf("moves %v, want %v", got, want)
	}
	if got := st.snapshot().Transitions; got != 8 {
		t.Fatalf("transitions %d, want 8", got)
	}
}
