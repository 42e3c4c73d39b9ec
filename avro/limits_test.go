package avro

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/topology"
)

func TestOccurredAtRangeConstants(t *testing.T) {
	if got, want := MinOccurredAtMillis, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(); got != want {
		t.Errorf("MinOccurredAtMillis %d, want %d (0001-01-01T00:00:00Z)", got, want)
	}
	if got, want := MaxOccurredAtMillis, time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli(); got != want {
		t.Errorf("MaxOccurredAtMillis %d, want %d (9999-12-31T23:59:59.999Z)", got, want)
	}
	// Both ends print as RFC 3339 and read back as the same instant.
	for _, ms := range []int64{MinOccurredAtMillis, MaxOccurredAtMillis} {
		ev := sampleEvent()
		ev.OccurredAt = time.UnixMilli(ms).UTC()
		line, err := EventToJSON(&ev)
		if err != nil {
			t.Fatal(err)
		}
		back, err := EventFromJSON(line)
		if err != nil || !back.OccurredAt.Equal(ev.OccurredAt) {
			t.Errorf("%s: read back %v, %v", line, back.OccurredAt, err)
		}
	}
}

// limitCase is an event at or over one of the limits, and the verdict the
// decoders must give it.
type limitCase struct {
	name   string
	ev     topology.Event
	want   error  // nil: the event decodes
	detail string // in the error: names the field and the limit
}

func limitCases() []limitCase {
	ev := func(f func(*topology.Event)) topology.Event {
		e := sampleEvent()
		f(&e)
		return e
	}
	at := func(ms int64) topology.Event {
		return ev(func(e *topology.Event) { e.OccurredAt = time.UnixMilli(ms).UTC() })
	}
	attrs := func(n, keyLen, valueLen int) map[string]string {
		m := make(map[string]string, n)
		for i := range n {
			k := fmt.Sprintf("%03d", i)
			m[k+strings.Repeat("k", keyLen-len(k))] = strings.Repeat("v", valueLen)
		}
		return m
	}
	long := func(n int) string { return strings.Repeat("x", n) }
	return []limitCase{
		{"in limits", sampleEvent(), nil, ""},
		{"occurred_at lowest", at(MinOccurredAtMillis), nil, ""},
		{"occurred_at highest", at(MaxOccurredAtMillis), nil, ""},
		{"occurred_at 1 ms too early", at(MinOccurredAtMillis - 1), ErrTimeRange, "-62135596800001 ms since 1970) is outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999Z"},
		{"occurred_at 1 ms too late", at(MaxOccurredAtMillis + 1), ErrTimeRange, "253402300800000 ms since 1970) is outside"},
		{"occurred_at 2^62 ms", at(1 << 62), ErrTimeRange, "4611686018427387904 ms since 1970"},
		{"occurred_at -2^63 ms", at(-1 << 63), ErrTimeRange, "-9223372036854775808 ms since 1970"},
		{"zero occurred_at", ev(func(e *topology.Event) { e.OccurredAt = time.Time{} }), nil, ""},
		{"event_id at limit", ev(func(e *topology.Event) { e.EventID = long(MaxIDBytes) }), nil, ""},
		{"event_id over", ev(func(e *topology.Event) { e.EventID = long(MaxIDBytes + 1) }), ErrFieldLimit, "event_id is 257 bytes, max 256"},
		{"event_id 400000", ev(func(e *topology.Event) { e.EventID = long(400_000) }), ErrFieldLimit, "event_id is 400000 bytes, max 256"},
		{"order_id at limit", ev(func(e *topology.Event) { e.OrderID = long(MaxIDBytes) }), nil, ""},
		{"order_id over", ev(func(e *topology.Event) { e.OrderID = long(MaxIDBytes + 1) }), ErrFieldLimit, "order_id is 257 bytes, max 256"},
		{"type at limit", ev(func(e *topology.Event) { e.Type = long(MaxEventTypeBytes) }), nil, ""},
		{"type over", ev(func(e *topology.Event) { e.Type = long(MaxEventTypeBytes + 1) }), ErrFieldLimit, "type is 257 bytes, max 256"},
		{"attributes at count limit", ev(func(e *topology.Event) { e.Attributes = attrs(MaxAttributes, 3, 1) }), nil, ""},
		{"attributes over count", ev(func(e *topology.Event) { e.Attributes = attrs(MaxAttributes+1, 3, 1) }), ErrFieldLimit, "attributes has 65 entries, max 64"},
		{"attribute key at limit", ev(func(e *topology.Event) { e.Attributes = attrs(1, MaxAttributeKeyBytes, 1) }), nil, ""},
		{"attribute key over", ev(func(e *topology.Event) { e.Attributes = attrs(1, MaxAttributeKeyBytes+1, 1) }), ErrFieldLimit, "an attribute key is 257 bytes, max 256"},
		{"attributes at size limit", ev(func(e *topology.Event) { e.Attributes = attrs(4, 256, MaxAttributesBytes/4-256) }), nil, ""},
		{"attributes over size", ev(func(e *topology.Event) { e.Attributes = attrs(4, 256, MaxAttributesBytes/4-255) }), ErrFieldLimit, "attributes are 65540 bytes (keys and values), max 65536"},
	}
}

// TestDecodeEventLimits: every decoding path (the one-pass decoder, the
// scanner and fast decoder, hamba for the current and for another writer
// version, shared or copied bodies) and EventFromJSON give one verdict for
// each event at or over a limit.
func TestDecodeEventLimits(t *testing.T) {
	c := newTestCodec(t)
	c2, rec2 := v2Record(t) // knows the v2 writer schema too
	for _, tc := range limitCases() {
		t.Run(tc.name, func(t *testing.T) {
			b, err := c.EncodeEvent(nil, &tc.ev) // the encoder does not check the limits
			if err != nil {
				t.Fatal(err)
			}
			in := orderEventV2{tc.ev.EventID, tc.ev.OrderID, tc.ev.Type, tc.ev.OccurredAt, tc.ev.Sequence, tc.ev.Attributes, ptr("web")}
			b2, err := encodeRecord(c2, rec2, nil, &in)
			if err != nil {
				t.Fatal(err)
			}
			paths := map[string]func() error{}
			for _, fast := range []bool{true, false} {
				paths[fmt.Sprintf("fast=%v", fast)] = func() error {
					c.noFast = !fast
					defer func() { c.noFast = false }()
					var got topology.Event
					return c.DecodeEvent(b, &got)
				}
				paths[fmt.Sprintf("shared fast=%v", fast)] = func() error {
					c.noFast = !fast
					defer func() { c.noFast = false }()
					got := topology.Event{Attributes: map[string]string{"left": "over"}} // a reused event
					return c.DecodeEventShared(b, &got)
				}
			}
			paths["scanner"] = func() error { // the path of bodies the one-pass decoder leaves to it
				body := b[soeHeaderLen:]
				if err := scanBody(c.event.readerWS.scan, body, c.maxRecordSize); err != nil {
					return err
				}
				var got orderEvent
				decodeEventFast(body, bodyOf(body, false), &got)
				return decoded(c.event, &got, len(body))
			}
			paths["v2 writer"] = func() error {
				var got topology.Event
				return c2.DecodeEvent(b2, &got)
			}
			for name, decode := range paths {
				checkLimitErr(t, name, decode(), tc.want, tc.detail)
			}
			if err := CheckEvent(&tc.ev); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("CheckEvent: %v, want %v", err, tc.want)
			}

			line, err := EventToJSON(&tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			_, jerr := EventFromJSON(line)
			if y := tc.ev.OccurredAt.Year(); tc.want != nil && (y < 0 || y > 9999) {
				// JSON cannot write the time at all: a line can only say
				// so (RFC 3339 has four-digit years).
				if !errors.Is(jerr, ErrInvalidJSON) || !strings.Contains(jerr.Error(), "is not an RFC 3339 time") {
					t.Errorf("JSON: %v, want an RFC 3339 error", jerr)
				}
				return
			}
			checkLimitErr(t, "JSON", jerr, tc.want, tc.detail)
			if jerr != nil && !errors.Is(jerr, ErrInvalidJSON) {
				t.Errorf("JSON: %v does not match ErrInvalidJSON", jerr)
			}
		})
	}
}

func checkLimitErr(t *testing.T, path string, err, want error, detail string) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("%s: %v, want no error", path, err)
	case want == nil:
	case !errors.Is(err, want) || !errors.Is(err, ErrMalformed):
		t.Errorf("%s: %v, want %v (and ErrMalformed)", path, err, want)
	case !strings.Contains(err.Error(), want.Error()+": ") || !strings.Contains(err.Error(), detail):
		t.Errorf("%s: %q does not say %q and %q", path, err, want, detail)
	}
}

// JSON lines can name times outside the range that RFC 3339 can write in
// UTC: year 0, and offsets that cross a year's end.
func TestEventFromJSONTimeRange(t *testing.T) {
	for _, tc := range []struct {
		at   string
		want error
	}{
		{"0001-01-01T00:00:00Z", nil},
		{"0001-01-01T01:00:00+01:00", nil},
		{"0001-01-01T00:59:59+01:00", ErrTimeRange},
		{"0000-06-01T00:00:00Z", ErrTimeRange},
		{"9999-12-31T23:59:59.999Z", nil},
		{"9999-12-31T23:59:59.9999999Z", nil}, // truncated to the millisecond
		{"9999-12-31T23:59:59Z", nil},
		{"9999-12-31T23:00:00-01:00", ErrTimeRange},
	} {
		line := `{"event_id":"e1","order_id":"o1","type":"place_order","occurred_at":"` + tc.at + `"}`
		_, err := EventFromJSON([]byte(line))
		checkLimitErr(t, tc.at, err, tc.want, "is outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999Z")
	}
}

// TestMaxEncodedSizes drives orders through a machine with events at every
// limit (IDs and types as long as allowed, times at the ends of the range,
// sequences as large as they get) and checks that no state, status change or
// rejection the processor would write is larger than MaxEncodedSizes.
func TestMaxEncodedSizes(t *testing.T) {
	long := strings.Repeat("n", 200)
	longMachine := fmt.Sprintf(`
name: long
initial: s_%[1]s
events:
  - {name: c_%[1]s, creates: true}
  - name: a_%[1]s
  - name: b_%[1]s
  - name: h_%[1]s
  - name: r_%[1]s
  - name: x_%[1]s
states:
  - name: s_%[1]s
    initial: p_%[1]s
    transitions:
      - {event: h_%[1]s, to: held_%[1]s}
    states:
      - name: p_%[1]s
        transitions:
          - {event: a_%[1]s, to: q_%[1]s}
      - name: q_%[1]s
        transitions:
          - {event: b_%[1]s, to: p_%[1]s}
          - {event: x_%[1]s, reject: refused_%[1]s}
  - name: held_%[1]s
    transitions:
      - {event: r_%[1]s, history: s_%[1]s, guard: {within: 720h since a_%[1]s}}
      - {event: b_%[1]s, to: done_%[1]s, guard: {within: 1h since h_%[1]s}}
  - name: done_%[1]s
    terminal: true
`, long)
	m2, err := topology.Parse([]byte(longMachine))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*topology.Machine{topology.Default(), m2} {
		t.Run(m.Name(), func(t *testing.T) { checkMaxEncodedSizes(t, m) })
	}
}

func checkMaxEncodedSizes(t *testing.T, m *topology.Machine) {
	c := newTestCodec(t)
	bound := MaxEncodedSizes(m)
	var seen EncodedSizes
	types := append(m.EventTypes(), strings.Repeat("u", MaxEventTypeBytes))
	attrs := map[string]string{"tracking_number": "1Z"}
	id := func(prefix string, n int) string {
		s := fmt.Sprintf("%s%d", prefix, n)
		return s + strings.Repeat("i", MaxIDBytes-len(s))
	}
	rng := uint64(1)
	next := func(n int) int {
		rng = rng*6364136223846793005 + 1442695040888963407
		return int(rng>>33) % n
	}
	var st *topology.State
	fullIDs := false
	order, at, seq := 0, MaxOccurredAtMillis-1e12, int64(1<<62)
	for i := range 3000 {
		if st == nil {
			order++
		}
		at += int64(next(60_000))
		if at > MaxOccurredAtMillis || next(50) == 0 {
			at = MaxOccurredAtMillis - int64(next(1e9))
		}
		seq += int64(next(1000))
		ev := topology.Event{
			EventID: id("e", i), OrderID: id("o", order),
			OccurredAt: time.UnixMilli(at).UTC(), Sequence: &seq, Attributes: attrs,
		}
		// Mostly an event that moves the order, rarely to its end.
		var moves, ends []string
		for _, typ := range types {
			ev.Type = typ
			if o := topology.Apply(m, st, &ev); o.Accepted && m.IsTerminal(o.To) {
				ends = append(ends, typ)
			} else if o.Accepted {
				moves = append(moves, typ)
			}
		}
		switch {
		case next(4) == 0: // any event
			ev.Type = types[next(len(types))]
		case len(moves) > 0 && next(100) != 0:
			ev.Type = moves[next(len(moves))]
		case len(ends) > 0:
			ev.Type = ends[next(len(ends))]
		}
		if err := CheckEvent(&ev); err != nil {
			t.Fatal(err)
		}
		out := topology.Apply(m, st, &ev)
		now := time.UnixMilli(MinOccurredAtMillis) // the varint of the least time is the longest
		if !out.Accepted {
			r := RejectionFromOutcome(&ev, &out, now)
			b, err := c.EncodeRejection(nil, &r)
			if err != nil {
				t.Fatal(err)
			}
			seen.Rejection = max(seen.Rejection, len(b))
			continue
		}
		next := out.Next
		next.Version = 1<<63 - 1 // the longest varint
		if m.IsTerminal(next.State) {
			next.ClosedAt = &now
		}
		b, err := c.EncodeState(nil, &next)
		if err != nil {
			t.Fatal(err)
		}
		seen.State = max(seen.State, len(b))
		if len(next.RecentEventIDs) == topology.RecentEventIDs {
			fullIDs = true
		}
		s := StatusChangeFromOutcome(&ev, &out, now)
		if b, err = c.EncodeStatusChange(nil, &s); err != nil {
			t.Fatal(err)
		}
		seen.StatusChange = max(seen.StatusChange, len(b))
		st = &out.Next
		if m.IsTerminal(next.State) {
			st = nil
		}
	}
	t.Logf("largest seen %+v, bounds %+v", seen, bound)
	if seen.State > bound.State || seen.StatusChange > bound.StatusChange || seen.Rejection > bound.Rejection {
		t.Fatalf("largest records %+v are over the bounds %+v", seen, bound)
	}
	if !fullIDs || seen.State == 0 || seen.StatusChange == 0 || seen.Rejection == 0 {
		t.Fatalf("the walk did not fill an order's recent event IDs or did not write every kind of record: %+v", seen)
	}
	if bound.Max() != max(bound.State, bound.StatusChange, bound.Rejection) {
		t.Fatalf("Max %d of %+v", bound.Max(), bound)
	}
}
