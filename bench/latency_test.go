package bench

import (
	"bytes"
	"testing"
	"time"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/topology"
)

// TestLatencyInputPasses checks the latency input's later passes over the
// workload: new order ids, valid events carrying them, and the same
// outcome for every record as in the first pass (the sizes the ceiling
// produces and the harness expects).
func TestLatencyInputPasses(t *testing.T) {
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	m := topology.Default()
	enc, err := encodeWorkload(workload.Options{Seed: 1, Orders: 300}, codec, m, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	in := newLatencyInput(enc, 3*enc.len())
	for i := 0; i < enc.len(); i++ {
		k, v, s := in.record(i)
		if !bytes.Equal(k, enc.keys.at(i)) || !bytes.Equal(v, enc.values.at(i)) || s != enc.sizes[i] {
			t.Fatalf("pass 0, record %d differs from the workload", i)
		}
	}
	seen := map[string]int{} // key -> pass
	// Later passes' records are copies sharing slabs: one must not change
	// when the next ones are made.
	var kept [][2][]byte
	var keptWant [][2]string
	for pass := 0; pass < 3; pass++ {
		states := map[string]*topology.State{}
		for j := 0; j < enc.len(); j++ {
			k, v, s := in.record(pass*enc.len() + j)
			if len(k) != len(enc.keys.at(j)) || len(v) != len(enc.values.at(j)) || s != enc.sizes[j] {
				t.Fatalf("pass %d, record %d: lengths or sizes changed", pass, j)
			}
			if p, ok := seen[string(k)]; ok && p != pass {
				t.Fatalf("key %q in passes %d and %d", k, p, pass)
			}
			seen[string(k)] = pass
			if j%50 == 0 {
				kept = append(kept, [2][]byte{k, v})
				keptWant = append(keptWant, [2]string{string(k), string(v)})
			}
			var ev topology.Event
			err := codec.DecodeEvent(v, &ev)
			if s.kind == kindDLQ {
				if err == nil {
					t.Fatalf("pass %d, record %d: an undecodable record decodes", pass, j)
				}
				continue
			}
			if err != nil {
				t.Fatalf("pass %d, record %d: %v", pass, j, err)
			}
			if ev.OrderID != string(k) {
				t.Fatalf("pass %d, record %d: order_id %q under key %q", pass, j, ev.OrderID, k)
			}
			out := topology.Apply(m, states[ev.OrderID], &ev)
			if got := out.Accepted; got != (s.kind == kindAccepted) {
				t.Fatalf("pass %d, record %d (%s %s): accepted %v, the workload's kind %d", pass, j, ev.OrderID, ev.Type, got, s.kind)
			}
			if out.Accepted {
				next := out.Next
				states[ev.OrderID] = &next
			}
		}
	}
	for i, kv := range kept {
		if string(kv[0]) != keptWant[i][0] || string(kv[1]) != keptWant[i][1] {
			t.Fatalf("record %q changed after later records were made: now %q", keptWant[i][0], kv[0])
		}
	}
	// Short keys without a place for the pass letter stay as they are.
	short := &encoded{sizes: []outSizes{{kind: kindDLQ}}}
	short.keys.add([]byte("x"))
	short.values.add([]byte("junk"))
	if k, v, _ := newLatencyInput(short, 2).record(1); string(k) != "x" || string(v) != "junk" {
		t.Errorf("short key: %q %q", k, v)
	}
}
