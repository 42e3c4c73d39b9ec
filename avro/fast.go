package avro

import (
	"slices"
	"time"
	"unsafe"
)

// Hand-written decoders for the current OrderEvent and OrderState schemas,
// the two records the processor decodes per event. hamba's reflective
// decoders (still used for every other writer version, and cross-checked
// against these by the tests and fuzz targets) spend most of a microsecond
// on an event. These run only on bodies the scanner has accepted for
// exactly the reader schema, so they do no validation of their own beyond
// Go's bounds checks (a panic would still be recovered by decodeRecord).
//
// Every string of one record is a substring of one copy of the body: one
// allocation instead of one per string.

type fastReader struct {
	s   string
	off int
}

func (r *fastReader) long() int64 {
	var u uint64
	for shift := uint(0); ; shift += 7 {
		c := r.s[r.off]
		r.off++
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1)
		}
	}
}

func (r *fastReader) str() string {
	n := int(r.long())
	s := r.s[r.off : r.off+n]
	r.off += n
	return s
}

// blockCount reads an array or map block header and returns its item count
// (0 ends the list).
func (r *fastReader) blockCount() int {
	n := r.long()
	if n < 0 {
		n = -n
		r.long() // byte size of the block; the scanner has checked it
	}
	return int(n)
}

// millis converts timestamp-millis as hamba does.
func millis(i int64) time.Time {
	sec := i / 1e3
	return time.Unix(sec, (i-sec*1e3)*1e6).UTC()
}

// bodyString copies body into a string that all decoded strings share.
func bodyString(body []byte) string {
	b := make([]byte, len(body))
	copy(b, body)
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// decodeEventFast decodes an orderflow.v1.OrderEvent (version 1) body into
// a zeroed e.
func decodeEventFast(body []byte, e *OrderEvent) {
	r := fastReader{s: bodyString(body)}
	e.EventID = r.str()
	e.OrderID = r.str()
	e.Type = r.str()
	e.OccurredAt = millis(r.long())
	if r.long() == 1 {
		seq := r.long()
		e.Sequence = &seq
	}
	for n := r.blockCount(); n != 0; n = r.blockCount() {
		if e.Attributes == nil {
			e.Attributes = make(map[string]string, n)
		}
		for range n {
			k := r.str()
			e.Attributes[k] = r.str()
		}
	}
}

// decodeStateFast decodes an orderflow.v1.OrderState (version 1) body into
// a zeroed s.
func decodeStateFast(body []byte, s *OrderState) {
	r := fastReader{s: bodyString(body)}
	s.State = r.str()
	s.Version = r.long()
	s.CreatedAt = millis(r.long())
	s.UpdatedAt = millis(r.long())
	if r.long() == 1 {
		seq := r.long()
		s.LastSequence = &seq
	}
	for n := r.blockCount(); n != 0; n = r.blockCount() {
		if s.RecentEventIDs == nil {
			s.RecentEventIDs = make([]string, 0, n)
		}
		for range n {
			s.RecentEventIDs = append(s.RecentEventIDs, r.str())
		}
	}
	for n := r.blockCount(); n != 0; n = r.blockCount() {
		if s.Marks == nil {
			s.Marks = make(map[string]int64, n)
		}
		for range n {
			k := r.str()
			s.Marks[k] = r.long()
		}
	}
	for n := r.blockCount(); n != 0; n = r.blockCount() {
		if s.History == nil {
			s.History = make(map[string]string, n)
		}
		for range n {
			k := r.str()
			s.History[k] = r.str()
		}
	}
	if r.long() == 1 {
		t := millis(r.long())
		s.ClosedAt = &t
	}
}

// Hand-written encoder for the current OrderState schema, the record the
// processor encodes per accepted event (hamba's reflective encoder spends
// about a microsecond on it). It writes what hamba writes with this
// package's configuration: zig-zag varints, each array or map as one block
// with a positive count and no byte size (DisableBlockSizeHeader), then 0;
// map entries in Go's iteration order, as hamba does.

func appendLong(b []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

func appendStr(b []byte, s string) []byte {
	b = appendLong(b, int64(len(s)))
	return append(b, s...)
}

// appendMillis writes a timestamp-millis as hamba does.
func appendMillis(b []byte, t time.Time) []byte {
	return appendLong(b, t.Unix()*1e3+int64(t.Nanosecond()/1e6))
}

// encodeStateFast appends the body of an orderflow.v1.OrderState (version
// 1) to b.
func encodeStateFast(b []byte, s *OrderState) []byte {
	b = slices.Grow(b, stateSizeHint(s)) // one allocation, not one per growth
	b = appendStr(b, s.State)
	b = appendLong(b, s.Version)
	b = appendMillis(b, s.CreatedAt)
	b = appendMillis(b, s.UpdatedAt)
	if s.LastSequence == nil {
		b = append(b, 0)
	} else {
		b = append(b, 2) // union branch 1
		b = appendLong(b, *s.LastSequence)
	}
	if n := len(s.RecentEventIDs); n > 0 {
		b = appendLong(b, int64(n))
		for _, id := range s.RecentEventIDs {
			b = appendStr(b, id)
		}
	}
	b = append(b, 0)
	if n := len(s.Marks); n > 0 {
		b = appendLong(b, int64(n))
		for k, v := range s.Marks {
			b = appendStr(b, k)
			b = appendLong(b, v)
		}
	}
	b = append(b, 0)
	if n := len(s.History); n > 0 {
		b = appendLong(b, int64(n))
		for k, v := range s.History {
			b = appendStr(b, k)
			b = appendStr(b, v)
		}
	}
	b = append(b, 0)
	if s.ClosedAt == nil {
		b = append(b, 0)
	} else {
		b = append(b, 2)
		b = appendMillis(b, *s.ClosedAt)
	}
	return b
}

// stateSizeHint is an upper bound of the encoded size of s, short of
// extreme numbers of map entries.
func stateSizeHint(s *OrderState) int {
	n := 64 + len(s.State)
	for _, id := range s.RecentEventIDs {
		n += len(id) + 2
	}
	for k := range s.Marks {
		n += len(k) + 12
	}
	for k, v := range s.History {
		n += len(k) + len(v) + 4
	}
	return n
}

// stateClosedAt reads closed_at, the last field, off an OrderState
// (version 1) body without decoding the rest: it skips the fields before
// it. ok is false if the body ends early, has bytes after closed_at, or
// holds a negative length or count.
func stateClosedAt(body []byte) (ms int64, closed, ok bool) {
	defer func() {
		if recover() != nil { // out of bounds: the body is cut short
			ms, closed, ok = 0, false, false
		}
	}()
	r := fastReader{s: unsafe.String(unsafe.SliceData(body), len(body))}
	r.skipStr()        // state
	r.long()           // version
	r.long()           // created_at
	r.long()           // updated_at
	if r.long() == 1 { // last_sequence
		r.long()
	}
	for n := r.blockCount(); n != 0; n = r.blockCount() { // recent_event_ids
		for range n {
			r.skipStr()
		}
	}
	for n := r.blockCount(); n != 0; n = r.blockCount() { // marks
		for range n {
			r.skipStr()
			r.long()
		}
	}
	for n := r.blockCount(); n != 0; n = r.blockCount() { // history
		for range n {
			r.skipStr()
			r.skipStr()
		}
	}
	if r.long() == 1 {
		ms, closed = r.long(), true
	}
	return ms, closed, r.off == len(body)
}

func (r *fastReader) skipStr() {
	n := int(r.long())
	if n < 0 {
		panic("negative length")
	}
	r.off += n
	_ = r.s[r.off-n : r.off] // bounds check
}
