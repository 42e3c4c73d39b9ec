package processor

import (
	"bytes"
	"reflect"
	"testing"
	"unsafe"

	"github.com/orderflow/orderflow/topology"
)

// TestOwn checks that own leaves a warm state equal but sharing none of
// the last batch's memory: its event IDs' bytes, their slice and its
// sequence are new.
func TestOwn(t *testing.T) {
	b := &batch{}
	in := b.keepInput([]byte("e1e22e333"))
	seq := int64(7)
	ids := []string{unsafe.String(&in[0], 2), "", unsafe.String(&in[2], 3), unsafe.String(&in[5], 4)}
	st := topology.State{State: "paid", RecentEventIDs: ids, LastSequence: &seq}
	old := st
	own(&st)
	if !reflect.DeepEqual(st.RecentEventIDs, old.RecentEventIDs) || *st.LastSequence != 7 {
		t.Fatalf("own changed the state: %+v, was %+v", st, old)
	}
	if &st.RecentEventIDs[0] == &ids[0] || st.LastSequence == &seq {
		t.Error("own kept the old IDs slice or sequence")
	}
	lo, hi := uintptr(unsafe.Pointer(&in[0])), uintptr(unsafe.Pointer(&in[len(in)-1]))
	for _, id := range st.RecentEventIDs {
		if p := uintptr(unsafe.Pointer(unsafe.StringData(id))); id != "" && p >= lo && p <= hi {
			t.Errorf("ID %q still points into the last batch's input", id)
		}
	}
	own(&topology.State{}) // no IDs, no sequence: nothing to copy
}

// TestKeepInput checks the batch's copies of input values: equal to the
// value when kept, not following it after, with no spare capacity, and
// unchanged by later copies (a value larger than a chunk's eighth too).
func TestKeepInput(t *testing.T) {
	b := &batch{}
	var kept, want [][]byte
	for i := range 2000 {
		v := bytes.Repeat([]byte{byte(i)}, i%50+1)
		if i == 1000 {
			v = bytes.Repeat([]byte{'L'}, inputChunk)
		}
		orig := bytes.Clone(v)
		k := b.keepInput(v)
		v[0]++
		if !bytes.Equal(k, orig) {
			t.Fatalf("value %d: kept %q, want %q", i, k, orig)
		}
		if len(k) != cap(k) {
			t.Fatalf("value %d: capacity %d for %d bytes", i, cap(k), len(k))
		}
		kept, want = append(kept, k), append(want, orig)
	}
	for i := range kept {
		if !bytes.Equal(kept[i], want[i]) {
			t.Fatalf("value %d changed after later copies: %q", i, kept[i])
		}
	}
}
