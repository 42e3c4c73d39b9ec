package avro

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/orderflow/orderflow/topology"
)

// fastStates are OrderStates covering every branch of the hand-written
// encoder: nil and set unions, empty and full collections, zero, negative
// and far-future times, large and negative numbers.
func fastStates() []topology.State {
	full := sampleState()
	neg := time.Date(1960, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	return []topology.State{
		full,
		{State: "placed", Version: 1},
		{State: "placed", Version: 1, CreatedAt: t0, UpdatedAt: t0},
		{State: "x", Version: -1 << 62, CreatedAt: neg, UpdatedAt: time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
			LastSequence: ptr(int64(-5)), ClosedAt: ptr(neg)},
		{State: "delivered", Version: 1 << 40, LastSequence: ptr(int64(0)), RecentEventIDs: []string{""},
			Marks: map[string]int64{"": -1}, History: map[string]string{"a": ""}, ClosedAt: ptr(time.Time{})},
	}
}

// TestEncodeStateFast checks the hand-written OrderState encoder against
// hamba's: the same bytes (maps of at most one entry, whose order is fixed),
// and the same value after decoding with either decoder.
func TestEncodeStateFast(t *testing.T) {
	fast := newTestCodec(t)
	slow := newTestCodec(t)
	slow.noFast = true
	for i, st := range fastStates() {
		fb, err := fast.EncodeState(nil, &st)
		if err != nil {
			t.Fatalf("state %d: fast encode: %v", i, err)
		}
		sb, err := slow.EncodeState(nil, &st)
		if err != nil {
			t.Fatalf("state %d: hamba encode: %v", i, err)
		}
		if !bytes.Equal(fb, sb) {
			t.Errorf("state %d: fast encoder wrote\n%x\nhamba wrote\n%x", i, fb, sb)
		}
		for _, c := range []*Codec{fast, slow} {
			var got topology.State
			if err := c.DecodeState(fb, &got); err != nil {
				t.Fatalf("state %d: decode: %v", i, err)
			}
			want := st
			want.CreatedAt, want.UpdatedAt = want.CreatedAt.Truncate(time.Millisecond), want.UpdatedAt.Truncate(time.Millisecond)
			if !reflect.DeepEqual(normalized(got), normalized(want)) {
				t.Errorf("state %d (noFast=%v): decoded\n%#v\nwant\n%#v", i, c.noFast, got, want)
			}
		}
	}
	// A state that does not fit is refused, and dst is left as it was.
	small := newTestCodec(t, WithMaxRecordSize(64))
	st := sampleState()
	dst := []byte("keep")
	out, err := small.EncodeState(dst, &st)
	if !errorsIs(err, ErrOversize) || string(out) != "keep" {
		t.Errorf("oversize state: %q, %v", out, err)
	}
	if _, err := fast.EncodeState(nil, &topology.State{}); !errorsIs(err, ErrMissingField) {
		t.Errorf("state without a state: %v", err)
	}
}

// normalized makes times comparable with reflect.DeepEqual (UTC, the
// monotonic reading dropped).
func normalized(s topology.State) topology.State {
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC().Round(0), s.UpdatedAt.UTC().Round(0)
	if s.ClosedAt != nil {
		c := s.ClosedAt.UTC().Round(0)
		s.ClosedAt = &c
	}
	return s
}

// TestStateClosedAt checks StateClosedAt against a full decode, on both
// decoder paths, and that it refuses a state cut short.
func TestStateClosedAt(t *testing.T) {
	fast := newTestCodec(t)
	slow := newTestCodec(t)
	slow.noFast = true
	for i, st := range fastStates() {
		b, err := fast.EncodeState(nil, &st)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []*Codec{fast, slow} {
			ms, closed, err := c.StateClosedAt(b)
			if err != nil {
				t.Fatalf("state %d: %v", i, err)
			}
			if closed != (st.ClosedAt != nil) || (closed && ms != st.ClosedAt.UnixMilli()) {
				t.Errorf("state %d (noFast=%v): closed at %d %v, want %v", i, c.noFast, ms, closed, st.ClosedAt)
			}
		}
		for n := 0; n < len(b); n++ {
			if _, _, err := fast.StateClosedAt(b[:n]); !errorsIs(err, ErrMalformed) {
				t.Fatalf("state %d cut at %d: %v", i, n, err)
			}
		}
		if _, _, err := fast.StateClosedAt(append(b[:len(b):len(b)], 0)); !errorsIs(err, ErrMalformed) {
			t.Fatalf("state %d with a trailing byte: %v", i, err)
		}
	}
}

func BenchmarkStateClosedAt(b *testing.B) {
	c := newTestCodec(b)
	st := sampleState()
	buf, err := c.EncodeState(nil, &st)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.StateClosedAt(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeStateHamba is BenchmarkEncodeState through hamba's
// reflective encoder, for comparison with the hand-written one.
func BenchmarkEncodeStateHamba(b *testing.B) {
	c := newTestCodec(b)
	c.noFast = true
	st := sampleState()
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.report(b)
	for b.Loop() {
		var err error
		if buf, err = c.EncodeState(buf[:0], &st); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}
