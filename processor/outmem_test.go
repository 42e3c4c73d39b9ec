package processor

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestOutputMemory checks the slab memory of output records: records are
// distinct and hold exactly what they were given, also after a recycle, and each kept value keeps its
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
		r := b.record(kgo.Record{Topic: "t", Partition: 3})
		if seen[r] {
			t.Fatalf("record %d handed out twice", i)
		}
		seen[r] = true
		if r.Topic != "t" || r.Partition != 3 || r.Value != nil || r.Headers != nil || r.Offset != 0 {
			t.Fatalf("record %d is not the record given: %+v", i, r)
		}
		// As the client and the batch leave a record.
		r.Topic, r.Value, r.Offset, r.ProducerID = "used", []byte("v"), 5, 7
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
