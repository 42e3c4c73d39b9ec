package avro

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

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
			Marks: map[string]int64{"": -1}, History: map[string]string{"a": ""}, Timers: []topology.Clock{{State: "", Entered: math.MinInt64}}, ClosedAt: ptr(time.Time{})},
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

// fastStrings are strings for the encoder tests: empty, ASCII, multi-byte
// UTF-8, bytes that are not UTF-8 (encoders copy strings as they are;
// decoders refuse them), and lengths whose prefix takes one, two and three
// bytes.
var fastStrings = []string{
	"", "a", "placed", "ünïcødé ✓", "日本語", "🙂", "\xff", "ok\xc3", "\x00\x80",
	strings.Repeat("x", 63), strings.Repeat("y", 64), strings.Repeat("é", 4096), strings.Repeat("z", 8192),
}

// fastTimes are times for the encoder tests: zero, the epoch, before it
// with sub-millisecond digits, far future, another zone, a monotonic
// reading, and times whose milliseconds overflow int64 (both encoders wrap
// alike).
func fastTimes() []time.Time {
	return []time.Time{
		{}, t0, time.Unix(0, 0), time.Unix(0, -1), time.Unix(-1, 999_999), time.Unix(0, 999_999),
		time.Date(1960, 3, 4, 5, 6, 7, 891_234_567, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2026, 5, 6, 7, 8, 9, 123_456_789, time.FixedZone("x", -7*3600)),
		time.Now(),
		time.Unix(1<<62, 0), time.Unix(-1<<62, 5e8),
	}
}

// fastLongs are longs for the encoder tests, one for each varint length
// and the extremes.
var fastLongs = []int64{0, 1, -1, 63, -64, 64, 8191, -8192, 1 << 40, -1 << 40, math.MaxInt64, math.MinInt64}

// randString returns one of fastStrings or random runes and bytes.
func randString(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		return fastStrings[r.IntN(len(fastStrings))]
	}
	var b []byte
	for range r.IntN(40) {
		switch r.IntN(4) {
		case 0:
			b = utf8.AppendRune(b, rune(r.IntN(0x11_0000)))
		case 1:
			b = append(b, byte(r.IntN(256)))
		default:
			b = append(b, byte('a'+r.IntN(26)))
		}
	}
	return string(b)
}

// randOpt returns nil or a pointer to randString.
func randOpt(r *rand.Rand) *string {
	if r.IntN(3) == 0 {
		return nil
	}
	return ptr(randString(r))
}

func randLong(r *rand.Rand) int64 {
	if r.IntN(2) == 0 {
		return fastLongs[r.IntN(len(fastLongs))]
	}
	return int64(r.Uint64()) >> r.IntN(64)
}

func randTime(r *rand.Rand) time.Time {
	if r.IntN(2) == 0 {
		ts := fastTimes()
		return ts[r.IntN(len(ts))]
	}
	return time.Unix(r.Int64N(1<<36)-1<<35, r.Int64N(1e9)).In(time.FixedZone("z", 60*(r.IntN(1440)-720)))
}

// fastStatuses are StatusChanges covering the encoder's branches, then
// random ones (some with empty required fields, which both encoders
// refuse).
func fastStatuses() []StatusChange {
	vals := []StatusChange{
		sampleStatus(),
		{OrderID: "o", EventID: "e", EventType: "t", ToState: "s"},
		{OrderID: "o", EventID: "e", EventType: "t", FromState: ptr(""), ToState: "s", Version: -1},
		{OrderID: "ünï", EventID: "日本", EventType: "🙂", FromState: ptr("ø"), ToState: "✓", Version: math.MinInt64,
			OccurredAt: time.Date(1960, 3, 4, 5, 6, 7, 891_234_567, time.UTC), ProcessedAt: time.Unix(1<<62, 0)},
		{EventID: "e", EventType: "t", ToState: "s"}, // no order_id
	}
	for _, s := range fastStrings {
		vals = append(vals, StatusChange{OrderID: s, EventID: s, EventType: s, FromState: ptr(s), ToState: s})
	}
	for _, v := range fastLongs {
		vals = append(vals, StatusChange{OrderID: "o", EventID: "e", EventType: "t", ToState: "s", Version: v})
	}
	for _, ts := range fastTimes() {
		vals = append(vals, StatusChange{OrderID: "o", EventID: "e", EventType: "t", ToState: "s", OccurredAt: ts, ProcessedAt: ts})
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		vals = append(vals, StatusChange{
			OrderID: randString(r), EventID: randString(r), EventType: randString(r), FromState: randOpt(r),
			ToState: randString(r), Version: randLong(r), OccurredAt: randTime(r), ProcessedAt: randTime(r),
		})
	}
	return vals
}

// fastRejections are Rejections as fastStatuses are StatusChanges.
func fastRejections() []Rejection {
	vals := []Rejection{
		sampleRejection(),
		{OrderID: "o", EventID: "e", EventType: "t", Reason: "r"},
		{OrderID: "o", EventID: "e", EventType: "t", State: ptr(""), Reason: "r", Detail: "d"},
		{OrderID: "ünï", EventID: "日本", EventType: "🙂", State: ptr("ø"), Reason: "✓", Detail: strings.Repeat("é", 100),
			OccurredAt: time.Date(1960, 3, 4, 5, 6, 7, 891_234_567, time.UTC), ProcessedAt: time.Unix(-1<<62, 0)},
		{OrderID: "o", EventID: "e", EventType: "t"}, // no reason
	}
	for _, s := range fastStrings {
		vals = append(vals, Rejection{OrderID: s, EventID: s, EventType: s, State: ptr(s), Reason: s, Detail: s})
	}
	for _, ts := range fastTimes() {
		vals = append(vals, Rejection{OrderID: "o", EventID: "e", EventType: "t", Reason: "r", OccurredAt: ts, ProcessedAt: ts})
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		vals = append(vals, Rejection{
			OrderID: randString(r), EventID: randString(r), EventType: randString(r), State: randOpt(r),
			Reason: randString(r), Detail: randString(r), OccurredAt: randTime(r), ProcessedAt: randTime(r),
		})
	}
	return vals
}

// checkSameEncoding encodes v with the fast codec and with hamba's and
// fails unless both give the same bytes or the same error; size is the
// fast encoder's body size function, checked against what it wrote.
func checkSameEncoding[T any](t *testing.T, what string, fast, slow *Codec, v *T,
	encode func(*Codec, []byte, *T) ([]byte, error), size func(*T) int) []byte {
	t.Helper()
	dst := []byte("prefix")
	fb, ferr := encode(fast, dst[:len(dst):len(dst)], v)
	sb, serr := encode(slow, dst[:len(dst):len(dst)], v)
	if (ferr == nil) != (serr == nil) || (ferr != nil && ferr.Error() != serr.Error()) {
		t.Fatalf("%s %+v: fast encoder: %v, hamba: %v", what, v, ferr, serr)
	}
	if !bytes.Equal(fb, sb) {
		t.Fatalf("%s %+v: fast encoder wrote\n%x\nhamba wrote\n%x", what, v, fb, sb)
	}
	if ferr != nil {
		return nil
	}
	if n := len(fb) - len(dst) - soeHeaderLen; n != size(v) {
		t.Fatalf("%s %+v: body of %d bytes, size says %d", what, v, n, size(v))
	}
	return fb[len(dst):]
}

// wantDecoded is the value a decoder returns for encoded times t: UTC, to
// the millisecond (wrapped as the encoders wrap milliseconds that do not
// fit in 64 bits).
func wantDecoded(t time.Time) time.Time { return millis(unixMillis(t)) }

// TestEncodeStatusFast checks the hand-written StatusChange encoder against
// hamba's, byte for byte (errors included), and that what it writes decodes
// to the value, to the millisecond, or is refused if a string is not UTF-8.
func TestEncodeStatusFast(t *testing.T) {
	fast := newTestCodec(t)
	slow := newTestCodec(t)
	slow.noFast = true
	for i, v := range fastStatuses() {
		b := checkSameEncoding(t, fmt.Sprint("status ", i), fast, slow, &v, (*Codec).EncodeStatusChange, statusSize)
		if b == nil {
			continue
		}
		var got StatusChange
		err := fast.DecodeStatusChange(b, &got)
		valid := utf8.ValidString(v.OrderID + v.EventID + v.EventType + v.ToState)
		if v.FromState != nil {
			valid = valid && utf8.ValidString(*v.FromState)
		}
		if !valid {
			if !errorsIs(err, ErrInvalidValue) {
				t.Fatalf("status %d: a string that is not UTF-8 decoded: %v", i, err)
			}
			continue
		}
		want := v
		want.OccurredAt, want.ProcessedAt = wantDecoded(v.OccurredAt), wantDecoded(v.ProcessedAt)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("status %d: decoded %+v, %v\nwant %+v", i, got, err, want)
		}
	}
}

// TestEncodeRejectionFast is TestEncodeStatusFast for Rejection.
func TestEncodeRejectionFast(t *testing.T) {
	fast := newTestCodec(t)
	slow := newTestCodec(t)
	slow.noFast = true
	for i, v := range fastRejections() {
		b := checkSameEncoding(t, fmt.Sprint("rejection ", i), fast, slow, &v, (*Codec).EncodeRejection, rejectionSize)
		if b == nil {
			continue
		}
		var got Rejection
		err := fast.DecodeRejection(b, &got)
		valid := utf8.ValidString(v.OrderID + v.EventID + v.EventType + v.Reason + v.Detail)
		if v.State != nil {
			valid = valid && utf8.ValidString(*v.State)
		}
		if !valid {
			if !errorsIs(err, ErrInvalidValue) {
				t.Fatalf("rejection %d: a string that is not UTF-8 decoded: %v", i, err)
			}
			continue
		}
		want := v
		want.OccurredAt, want.ProcessedAt = wantDecoded(v.OccurredAt), wantDecoded(v.ProcessedAt)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("rejection %d: decoded %+v, %v\nwant %+v", i, got, err, want)
		}
	}
}

// TestEncodeFastOversize: a record over the max record size is refused by
// the fast encoders as by hamba's, and dst is left as it was.
func TestEncodeFastOversize(t *testing.T) {
	fast := newTestCodec(t, WithMaxRecordSize(64))
	slow := newTestCodec(t, WithMaxRecordSize(64))
	slow.noFast = true
	sc := sampleStatus()
	sc.EventType = strings.Repeat("x", 60)
	rj := sampleRejection()
	rj.Detail = strings.Repeat("x", 60)
	for _, c := range []*Codec{fast, slow} {
		dst := []byte("keep")
		if out, err := c.EncodeStatusChange(dst, &sc); !errorsIs(err, ErrOversize) || string(out) != "keep" {
			t.Errorf("noFast=%v: oversize status: %q, %v", c.noFast, out, err)
		}
		if out, err := c.EncodeRejection(dst, &rj); !errorsIs(err, ErrOversize) || string(out) != "keep" {
			t.Errorf("noFast=%v: oversize rejection: %q, %v", c.noFast, out, err)
		}
	}
}

// TestEncodeFastConfluent: a Confluent codec uses the fast encoders too,
// with its own framing, and writes what hamba writes.
func TestEncodeFastConfluent(t *testing.T) {
	_, cl, _ := newRegistry(t)
	fast := newConfluent(t, cl, testTopics)
	slow := newConfluent(t, cl, testTopics)
	slow.noFast = true
	sc, rj, st := sampleStatus(), sampleRejection(), sampleState()
	st.Marks, st.History = nil, nil // one encoding only: no maps of two entries
	for name, enc := range map[string]func(*Codec) ([]byte, error){
		"status":    func(c *Codec) ([]byte, error) { return c.EncodeStatusChange(nil, &sc) },
		"rejection": func(c *Codec) ([]byte, error) { return c.EncodeRejection(nil, &rj) },
		"state":     func(c *Codec) ([]byte, error) { return c.EncodeState(nil, &st) },
	} {
		fb, ferr := enc(fast)
		sb, serr := enc(slow)
		if ferr != nil || serr != nil || !bytes.Equal(fb, sb) || fb[0] != confluentMagic {
			t.Errorf("%s: fast encoder wrote %x, %v\nhamba wrote %x, %v", name, fb, ferr, sb, serr)
		}
	}
}

// TestEncodeFastAllocs: the fast encoders allocate nothing but dst's
// growth (once, however small dst is), and a record built on the stack
// stays there.
func TestEncodeFastAllocs(t *testing.T) {
	c := newTestCodec(t)
	// What a record points to may escape; the record may not.
	from, seq, ids, marks := "packed", int64(7), []string{"e-1", "e-2"}, map[string]int64{"pay_order": 1}
	buf := make([]byte, 0, 512)
	for name, enc := range map[string]func(dst []byte) ([]byte, error){
		"status": func(dst []byte) ([]byte, error) {
			sc := StatusChange{OrderID: "o-42", EventID: "e-0001", EventType: "ship_order", FromState: &from,
				ToState: "shipped", Version: 5, OccurredAt: t0, ProcessedAt: t0}
			return c.EncodeStatusChange(dst, &sc)
		},
		"rejection": func(dst []byte) ([]byte, error) {
			rj := Rejection{OrderID: "o-42", EventID: "e-0002", EventType: "cancel_order", State: &from,
				Reason: "cancel_after_shipment", Detail: "the order has shipped", OccurredAt: t0, ProcessedAt: t0}
			return c.EncodeRejection(dst, &rj)
		},
		"state": func(dst []byte) ([]byte, error) {
			st := topology.State{State: "shipped", Version: 5, CreatedAt: t0, UpdatedAt: t0, LastSequence: &seq,
				RecentEventIDs: ids, Marks: marks}
			return c.EncodeState(dst, &st)
		},
	} {
		if n := testing.AllocsPerRun(100, func() { buf, _ = enc(buf[:0]) }); n != 0 {
			t.Errorf("%s: %v allocations per encode into a buffer with room, want 0", name, n)
		}
		// The race detector's build of slices.Grow allocates twice.
		if n := testing.AllocsPerRun(100, func() { _, _ = enc(nil) }); n != 1 && !raceEnabled {
			t.Errorf("%s: %v allocations per encode into nil, want 1", name, n)
		}
	}
	st := sampleState()
	if n := testing.AllocsPerRun(100, func() { _, _ = c.EncodeState(nil, &st) }); n != 1 && !raceEnabled {
		t.Errorf("full state: %v allocations per encode into nil, want 1", n)
	}
}

// checkStrictEvent checks decodeEventStrict on body against the scanner
// (scan is the reader schema compiled for it) and decodeEventFast: what it
// takes, the scanner must take and decodeEventFast decode to the same
// value; what the scanner refuses, it must refuse. It returns whether it
// took body.
func checkStrictEvent(t testing.TB, scan *node, body []byte) bool {
	t.Helper()
	var strict, want orderEvent
	ok := decodeEventStrict(body, bodyOf(body, false), &strict)
	serr := scanBody(scan, body, DefaultMaxRecordSize)
	switch {
	case ok && serr != nil:
		t.Fatalf("one-pass decoder took %x, which the scanner refuses: %v", body, serr)
	case ok:
		decodeEventFast(body, bodyOf(body, false), &want)
		if !reflect.DeepEqual(strict, want) {
			t.Fatalf("%x: one-pass decoder\n%#v\nfast decoder\n%#v", body, strict, want)
		}
	}
	return ok
}

// randEvent returns an event of valid strings, with or without a sequence
// and from 0 to 99 attributes.
func randEvent(r *rand.Rand) topology.Event {
	str := func() string {
		for {
			if s := randString(r); utf8.ValidString(s) {
				return s
			}
		}
	}
	ev := topology.Event{EventID: str() + "e", OrderID: str() + "o", Type: str() + "t", OccurredAt: randTime(r)}
	if r.IntN(2) == 0 {
		ev.Sequence = ptr(randLong(r))
	}
	if n := r.IntN(4); n > 0 {
		ev.Attributes = map[string]string{}
		for range r.IntN(1 + []int{0, 2, 5, 99}[n]) {
			ev.Attributes[str()] = str()
		}
	}
	return ev
}

// TestDecodeEventStrict checks the one-pass OrderEvent decoder: it takes
// whatever the encoder writes; it leaves the valid forms this package does
// not write to the scanner, which decodes them as hamba does; and on bodies
// mangled at random it never takes what the scanner refuses, and a codec
// gives the same result and error as hamba's path (scanner, then hamba).
func TestDecodeEventStrict(t *testing.T) {
	fast := newTestCodec(t)
	slow := newTestCodec(t)
	slow.noFast = true
	scan, err := compile(fast.event.reader)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	var payloads [][]byte
	for i := range 1000 {
		ev := randEvent(r)
		if i == 0 {
			ev = sampleEvent()
		}
		b, err := fast.EncodeEvent(nil, &ev)
		if err != nil {
			t.Fatal(err)
		}
		if !checkStrictEvent(t, scan, b[soeHeaderLen:]) {
			t.Fatalf("event %d: one-pass decoder refused what the encoder wrote: %x", i, b)
		}
		payloads = append(payloads, b)
	}

	hdr := payloads[0][:soeHeaderLen]
	frame := func(body []byte) []byte { return append(append([]byte{}, hdr...), body...) }
	for name, body := range map[string][]byte{
		"null union index in two bytes": eventBody("e1", 0x80, 0x00, 0),
		"long union index in two bytes": eventBody("e1", 0x82, 0x00, 14, 0),
		"map block with a byte size":    eventBody("e1", 0, 1, 8, 2, 'k', 2, 'v', 0),
		"two map blocks":                eventBody("e1", 0, 2, 2, 'k', 2, 'v', 2, 2, 'k', 2, 'w', 0),
		"map block count in two bytes":  eventBody("e1", 0, 0x82, 0x00, 2, 'k', 2, 'v', 0),
	} {
		checkStrictEvent(t, scan, body)
		var got, want topology.Event
		if err := fast.DecodeEvent(frame(body), &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := slow.DecodeEvent(frame(body), &want); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: decoded\n%#v\nhamba decoded\n%#v, %v", name, got, want, err)
		}
	}

	// Bodies one step from valid, each refused by the scanner for one
	// reason: the one-pass decoder must refuse them too.
	strs := appendString(appendString(appendString(nil, "e1"), "o1"), "t")
	overflow := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}
	tooLong := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}
	for name, body := range map[string][]byte{
		"union index 2":                eventBody("e1", 4, 14, 0),
		"union index -1":               eventBody("e1", 1, 14, 0),
		"occurred_at over 64 bits":     append(append(slices.Clone(strs), overflow...), 0, 0),
		"occurred_at in 11 bytes":      append(append(slices.Clone(strs), tooLong...), 0, 0),
		"sequence over 64 bits":        append(eventBody("e1", 2), append(overflow, 0)...),
		"map count over 64 bits":       append(eventBody("e1", 0), overflow...),
		"map count over the bytes":     eventBody("e1", 0, 6, 2, 'k', 2, 'v', 0),
		"map count beyond the bytes":   eventBody("e1", 0, 8, 2, 'k', 2, 'v', 0),
		"string length over 64 bits":   append(overflow, 'e'),
		"string length negative":       eventBody("e1", 0, 2, 1, 'k', 2, 'v', 0),
		"string length beyond":         eventBody("e1", 0, 2, 2, 'k', 4, 'v', 0),
		"map key not UTF-8":            eventBody("e1", 0, 2, 2, 0xff, 2, 'v', 0),
		"map value not UTF-8":          eventBody("e1", 0, 2, 2, 'k', 4, 0xe6, 0x97, 0),
		"event_id not UTF-8":           eventBody("\xc3", 0, 0),
		"trailing byte":                eventBody("e1", 0, 0, 0),
		"no map end":                   eventBody("e1", 0, 2, 2, 'k', 2, 'v'),
		"nothing after occurred_at":    eventBody("e1"),
		"sequence cut":                 eventBody("e1", 2),
		"sequence varint cut":          eventBody("e1", 2, 0x80),
		"one entry of a block missing": eventBody("e1", 0, 4, 2, 'k', 2, 'v', 0, 0, 0, 0),
	} {
		if scanBody(scan, body, DefaultMaxRecordSize) == nil {
			t.Fatalf("%s: the scanner takes %x", name, body)
		}
		if checkStrictEvent(t, scan, body) {
			t.Fatalf("%s: the one-pass decoder takes %x", name, body)
		}
	}

	for range 20000 {
		b := append([]byte{}, payloads[r.IntN(len(payloads))]...)
		for range 1 + r.IntN(3) {
			switch i := soeHeaderLen + r.IntN(len(b)-soeHeaderLen); r.IntN(4) {
			case 0:
				b[i] = byte(r.IntN(256))
			case 1:
				b[i] ^= 0x80
			case 2:
				b = b[:i]
			default:
				b = slices.Insert(b, i, byte(r.IntN(256)))
			}
			if len(b) <= soeHeaderLen {
				break
			}
		}
		checkStrictEvent(t, scan, b[soeHeaderLen:])
		var got, want topology.Event
		ferr := fast.DecodeEvent(b, &got)
		serr := slow.DecodeEvent(b, &want)
		if (ferr == nil) != (serr == nil) || (ferr != nil && ferr.Error() != serr.Error()) {
			t.Fatalf("%x: decoder: %v, hamba's path: %v", b, ferr, serr)
		}
		if ferr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%x: decoded\n%#v\nhamba decoded\n%#v", b, got, want)
		}
	}
}

// TestValidUTF8 checks validUTF8 against utf8.Valid around its word
// boundaries.
func TestValidUTF8(t *testing.T) {
	for _, s := range []string{"é", "\xff", "\xc3", "\xe6\x97", "日", "🙂", "\xed\xa0\x80", "\xf4\x90\x80\x80"} {
		for pre := range 18 {
			for post := range 3 {
				b := []byte(strings.Repeat("a", pre) + s + strings.Repeat("b", post))
				if got, want := validUTF8(b), utf8.Valid(b); got != want {
					t.Fatalf("validUTF8(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
}

// TestDecodeEventReusesAttributes checks that decoding into one Event again
// and again reuses its attributes map, cleared: no key of an earlier event
// survives, an event without attributes leaves none, and a zeroed Event gets
// a map of its own.
func TestDecodeEventReusesAttributes(t *testing.T) {
	for _, noFast := range []bool{false, true} {
		c := newTestCodec(t)
		c.noFast = noFast
		encode := func(attrs map[string]string) []byte { return encodeWithAttributes(t, c, attrs) }
		a := encode(map[string]string{"a": "1", "b": "2"})
		b := encode(map[string]string{"c": "3"})
		none := encode(nil)

		var ev topology.Event
		if err := c.DecodeEvent(a, &ev); err != nil {
			t.Fatal(err)
		}
		first := ev.Attributes
		if !reflect.DeepEqual(first, map[string]string{"a": "1", "b": "2"}) {
			t.Fatalf("noFast=%v: attributes %v", noFast, first)
		}
		if err := c.DecodeEvent(b, &ev); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ev.Attributes, map[string]string{"c": "3"}) {
			t.Fatalf("noFast=%v: attributes after a second decode: %v", noFast, ev.Attributes)
		}
		if reused := reflect.ValueOf(ev.Attributes).Pointer() == reflect.ValueOf(first).Pointer(); reused == noFast {
			t.Errorf("noFast=%v: map reused = %v", noFast, reused)
		}
		if err := c.DecodeEvent(none, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Attributes != nil {
			t.Fatalf("noFast=%v: attributes of an event without any: %v", noFast, ev.Attributes)
		}
		var fresh topology.Event
		if err := c.DecodeEvent(b, &fresh); err != nil {
			t.Fatal(err)
		}
		if reflect.ValueOf(fresh.Attributes).Pointer() == reflect.ValueOf(first).Pointer() {
			t.Errorf("noFast=%v: a zeroed Event got an earlier event's map", noFast)
		}
	}
}

// TestDecodeEventKeptAttributes decodes a sequence of events into one Event,
// whose attributes map keeps an earlier event's entries until the decoder
// empties it (and whose sequence pointer it writes through), and checks each
// result against a decode into a zeroed Event: same key again, another key,
// no attributes, more entries, fewer, a body whose map comes in two blocks,
// and events without a sequence and with another one.
func TestDecodeEventKeptAttributes(t *testing.T) {
	c := newTestCodec(t)
	encode := func(attrs map[string]string) []byte { return encodeWithAttributes(t, c, attrs) }
	one := encode(map[string]string{"a": "1"})
	// The same event, its map in two blocks of one entry each ("b", "c").
	twoBlocks := append([]byte{}, one[:len(one)-len("a")-len("1")-4]...)
	for _, kv := range [][2]string{{"b", "2"}, {"c", "3"}} {
		twoBlocks = appendVarint(twoBlocks, 1)
		twoBlocks = appendString(appendString(twoBlocks, kv[0]), kv[1])
	}
	twoBlocks = append(twoBlocks, 0)
	withSeq := func(seq *int64) []byte {
		ev := sampleEvent()
		ev.Attributes, ev.Sequence = map[string]string{"a": "1"}, seq
		b, err := c.EncodeEvent(nil, &ev)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	noSeq, otherSeq := withSeq(nil), withSeq(new(int64(987654321)))
	seq := []struct {
		name string
		in   []byte
	}{
		{"one entry", one},
		{"same key again", encode(map[string]string{"a": "9"})},
		{"another key", encode(map[string]string{"z": "1"})},
		{"none", encode(nil)},
		{"one after none", one},
		{"two blocks after one", twoBlocks},
		{"one after two blocks", one},
		{"more entries after one", encode(map[string]string{"a": "1", "b": "2", "c": "3"})},
		{"one after more", encode(map[string]string{"c": "4"})},
		{"two blocks after one of their keys", twoBlocks},
		{"none after two", encode(nil)},
		{"no sequence", noSeq},
		{"a sequence after none", one},
		{"another sequence", otherSeq},
	}
	var ev topology.Event
	held := (*int64)(nil) // a sequence pointer an earlier decode returned
	for _, s := range seq {
		if held != nil && ev.Sequence != nil && ev.Sequence != held {
			t.Fatalf("%s: the sequence pointer was not reused", s.name)
		}
		held = ev.Sequence
		var want topology.Event
		if err := c.DecodeEvent(s.in, &want); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if err := c.DecodeEvent(s.in, &ev); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if !reflect.DeepEqual(ev, want) {
			t.Fatalf("%s: decoded into a used Event\n%#v\nwant\n%#v", s.name, ev, want)
		}
	}
	if want := map[string]string{"b": "2", "c": "3"}; true {
		var ev topology.Event
		if err := c.DecodeEvent(twoBlocks, &ev); err != nil || !reflect.DeepEqual(ev.Attributes, want) {
			t.Fatalf("two blocks: %v %v, want %v", ev.Attributes, err, want)
		}
	}
}

// encodeWithAttributes encodes the sample event with attrs as its
// attributes.
func encodeWithAttributes(t *testing.T, c *Codec, attrs map[string]string) []byte {
	t.Helper()
	ev := sampleEvent()
	ev.Attributes = attrs
	b, err := c.EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sharedSample returns a codec and an encoded event with one attribute.
func sharedSample(t *testing.T) (*Codec, []byte) {
	t.Helper()
	c := newTestCodec(t)
	ev := sampleEvent()
	ev.Attributes = map[string]string{"carrier": "dhl"}
	b, err := c.EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	return c, b
}

// TestDecodeEventShared checks that DecodeEventShared decodes what
// DecodeEvent does, with its strings in the input's bytes, and that
// DecodeEvent's strings do not point into its input.
func TestDecodeEventShared(t *testing.T) {
	c, b := sharedSample(t)
	var copied, shared topology.Event
	if err := c.DecodeEvent(b, &copied); err != nil {
		t.Fatal(err)
	}
	if err := c.DecodeEventShared(b, &shared); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(copied, shared) {
		t.Fatalf("DecodeEventShared = %#v, DecodeEvent = %#v", shared, copied)
	}
	in := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		return p >= start && p < start+uintptr(len(b))
	}
	for _, s := range []string{shared.EventID, shared.OrderID, shared.Type, shared.Attributes["carrier"]} {
		if !in(s) {
			t.Errorf("DecodeEventShared: %q is not in the input's bytes", s)
		}
	}
	for _, s := range []string{copied.EventID, copied.OrderID, copied.Type} {
		if in(s) {
			t.Errorf("DecodeEvent: %q points into the input", s)
		}
	}
}

// TestDecodeEventSharedAllocs checks that DecodeEventShared saves the
// copy's allocation. An allocation guard: it runs in every test run but
// -race's (make test runs the guards on their own).
func TestDecodeEventSharedAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	c, b := sharedSample(t)
	var shared topology.Event
	// Into a reused event: the copy is DecodeEvent's only allocation.
	allocs := func(decode func([]byte, *topology.Event) error) float64 {
		return testing.AllocsPerRun(100, func() {
			if err := decode(b, &shared); err != nil {
				t.Fatal(err)
			}
		})
	}
	if a, s := allocs(c.DecodeEvent), allocs(c.DecodeEventShared); s != a-1 {
		t.Errorf("allocations per event: DecodeEventShared %v, DecodeEvent %v; want one fewer", s, a)
	}
}

// TestEncodeStateCached checks that EncodeStateCached writes what
// EncodeState writes, for states sharing History maps and not, over more
// maps than the cache has slots, and that a cached map's encoding is used
// again (which is why the cache relies on maps never changing).
func TestEncodeStateCached(t *testing.T) {
	c := newTestCodec(t)
	var hc HistoryCache
	maps := make([]map[string]string, 3*len(hc.slots))
	for i := range maps {
		maps[i] = map[string]string{"open": fmt.Sprintf("child%d", i)}
		if i%3 == 0 {
			maps[i]["returns"] = "requested"
		}
	}
	maps = append(maps, nil)
	for round := range 3 {
		for i, h := range maps {
			st := sampleState()
			st.History = h
			want, err := c.EncodeState(nil, &st)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.EncodeStateCached([]byte("pre"), &st, &hc)
			if err != nil {
				t.Fatal(err)
			}
			// A map of two entries may come out in either order.
			var gotSt, wantSt topology.State
			if string(got[:3]) != "pre" || len(got[3:]) != len(want) ||
				c.DecodeState(got[3:], &gotSt) != nil || c.DecodeState(want, &wantSt) != nil ||
				!reflect.DeepEqual(gotSt, wantSt) || len(h) < 2 && !bytes.Equal(got[3:], want) {
				t.Fatalf("round %d, map %d: cached encoder wrote\n%x\nwant pre +\n%x", round, i, got, want)
			}
		}
	}
	// The same map again, changed against the contract: the cache still
	// holds its old encoding, so identity is what it goes by.
	h := map[string]string{"open": "packed"}
	st := sampleState()
	st.History = h
	before, _ := c.EncodeStateCached(nil, &st, &hc)
	h["open"] = "confirmed"
	after, _ := c.EncodeStateCached(nil, &st, &hc)
	fresh, _ := c.EncodeState(nil, &st)
	if !bytes.Equal(after, before) || bytes.Equal(after, fresh) {
		t.Errorf("a cached map was encoded again: the cache is not used")
	}
}

// TestStateTimersOrder: an OrderState's timers, a map<long> on the wire in
// whatever order its writer chose, decode into State.Timers' order (sorted
// by state) with both decoders, and a state written twice keeps its last
// entry, as a map would.
func TestStateTimersOrder(t *testing.T) {
	fast := newTestCodec(t)
	slow := newTestCodec(t)
	slow.noFast = true
	want := []topology.Clock{{State: "a", Entered: 1}, {State: "b", Entered: 2}, {State: "c", Entered: 3}}
	for _, tc := range []struct {
		name   string
		timers []topology.Clock
	}{
		{"reversed", []topology.Clock{{State: "c", Entered: 3}, {State: "b", Entered: 2}, {State: "a", Entered: 1}}},
		{"shuffled", []topology.Clock{{State: "b", Entered: 2}, {State: "c", Entered: 3}, {State: "a", Entered: 1}}},
		{"repeated", []topology.Clock{{State: "c", Entered: 9}, {State: "a", Entered: 1}, {State: "b", Entered: 2}, {State: "c", Entered: 3}}},
	} {
		st := topology.State{State: "placed", Version: 1, CreatedAt: t0, UpdatedAt: t0, Timers: tc.timers}
		b, err := fast.EncodeState(nil, &st) // writes the slice's order, repeats included
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []*Codec{fast, slow} {
			var got topology.State
			if err := c.DecodeState(b, &got); err != nil {
				t.Fatalf("%s (noFast=%v): %v", tc.name, c.noFast, err)
			}
			if !reflect.DeepEqual(got.Timers, want) {
				t.Errorf("%s (noFast=%v): timers %v, want %v", tc.name, c.noFast, got.Timers, want)
			}
		}
	}
}
