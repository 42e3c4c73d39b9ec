package processor

import (
	"github.com/orderflow/orderflow/avro"
	"github.com/twmb/franz-go/pkg/kgo"
)

// outputMemory is a thread's memory for the records a batch produces and
// their values, handed out from slabs and reused batch after batch: a batch
// produces two records per event, and allocating each record and value
// would put four allocations per event, and the garbage collector's work
// for them, on the loop's path. A committed batch's records and values are
// no longer referenced once its store batch is written (the client is done
// with them, the store copied the states), so recycle then makes its slabs
// the next batch's; after an abort or a failure the slabs are left to the
// garbage collector (drop).
type outputMemory struct {
	recs slab[kgo.Record]
	hdrs slab[kgo.RecordHeader]
	vals slab[byte]
	// hist remembers the encodings of the History maps of the states the
	// thread encodes (EncodeStateCached): the states Apply builds never
	// change their maps.
	hist avro.HistoryCache
}

const (
	recordSlab = 256
	valueSlab  = 64 << 10
	minValue   = 1 << 10 // a value slab with less room left is replaced
)

func newOutputMemory() *outputMemory {
	return &outputMemory{recs: slab[kgo.Record]{size: recordSlab}, hdrs: slab[kgo.RecordHeader]{size: recordSlab}, vals: slab[byte]{size: valueSlab}}
}

// record returns a copy of r, for the client to produce.
func (m *outputMemory) record(r kgo.Record) *kgo.Record {
	p := &m.recs.take(1)[0]
	*p = r
	return p
}

// header returns a one-element header slice.
func (m *outputMemory) header(key string, value []byte) []kgo.RecordHeader {
	h := m.hdrs.take(1)
	h[0] = kgo.RecordHeader{Key: key, Value: value}
	return h
}

// space returns an empty slice to append one value to; keep hands the
// result back.
func (m *outputMemory) space() []byte {
	if cap(m.vals.cur) < minValue {
		m.vals.next()
	}
	return m.vals.cur[:0]
}

// keep takes back a value appended to the slice space returned: the value's
// bytes are used up from the slab, unless appending outgrew it (the value
// then has memory of its own). The result's capacity is its length, so
// appending to it cannot touch the next value.
func (m *outputMemory) keep(v []byte) []byte {
	if len(v) > 0 && cap(m.vals.cur) > 0 && &v[0] == &m.vals.cur[:1][0] {
		m.vals.cur = m.vals.cur[len(v):len(v)]
	}
	return v[:len(v):len(v)]
}

// recycle makes every slab handed out free for reuse.
func (m *outputMemory) recycle() {
	m.recs.recycle()
	m.hdrs.recycle()
	m.vals.recycle()
}

// drop forgets the slabs handed out: the garbage collector frees them once
// nothing references them.
func (m *outputMemory) drop() {
	m.recs.drop()
	m.hdrs.drop()
	m.vals.drop()
}

// slab hands out elements from chunks of size.
type slab[T any] struct {
	size int
	cur  []T   // unused part of the current chunk (length 0 for bytes)
	used [][]T // chunks handed out since the last recycle or drop
	free [][]T // chunks to hand out (not zeroed: take zeroes; byte chunks are appended to)
}

// next starts a new chunk: a free one, or a new one.
func (s *slab[T]) next() {
	var c []T
	if n := len(s.free); n > 0 {
		c, s.free = s.free[n-1], s.free[:n-1]
	} else {
		c = make([]T, s.size)
	}
	s.used = append(s.used, c)
	s.cur = c
	if _, bytes := any(c).([]byte); bytes {
		s.cur = c[:0] // values are appended
	}
}

// take returns n (<= size) elements, holding whatever they last held: the
// caller overwrites them whole. Nothing zeroes a recycled chunk: its memory
// has left the CPU's caches by the time it is reused, and zeroing it then
// (or in take) and filling it after would fetch it twice, for no gain: no
// reader looks at a field the caller has not written.
func (s *slab[T]) take(n int) []T {
	if len(s.cur) < n {
		s.next()
	}
	t := s.cur[:n:n]
	s.cur = s.cur[n:]
	return t
}

// recycle makes the chunks handed out free for reuse. Their elements keep
// what they point to until take hands them out again: at most the memory
// of one batch (its records' keys and values) stays reachable a batch
// longer.
func (s *slab[T]) recycle() {
	s.free = append(s.free, s.used...)
	s.drop()
}

func (s *slab[T]) drop() {
	clear(s.used)
	s.used, s.cur = s.used[:0], nil
}
