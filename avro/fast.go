package avro

import (
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
