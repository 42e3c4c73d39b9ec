package processor

import (
	"maps"
	"sync"
	"time"
)

// Stats are a processor's running totals of committed work.
type Stats struct {
	Events      int64            // input records processed (committed)
	Transitions int64            // accepted events
	Rejections  int64            // refused events
	Rejected    map[string]int64 // refused events by reason
	DLQ         int64            // undecodable records sent to the dead-letter topic
	Batches     int64            // committed batches
	Aborts      int64            // aborted batches
	Restores    int64            // partition restores completed
	Restored    int64            // changelog records applied by restores
}

type counts struct {
	events, transitions, rejections, dlq int64
	rejected                             map[string]int64
	moves                                map[move]int64 // accepted events by (from, to)
	eventTimes                           []int64        // Kafka timestamps (Unix ms) of the input records, for the end-to-end latency
}

// move is a transition's source and target leaf state ("" from: a new order).
type move struct{ from, to string }

// eventTimesPool recycles counts.eventTimes between batches.
var eventTimesPool = sync.Pool{New: func() any { s := make([]int64, 0, 1024); return &s }}

func newCounts() counts {
	return counts{
		rejected:   make(map[string]int64),
		moves:      make(map[move]int64),
		eventTimes: (*eventTimesPool.Get().(*[]int64))[:0],
	}
}

// event counts an input record with its Kafka timestamp.
func (c *counts) event(ts time.Time) {
	c.events++
	c.eventTimes = append(c.eventTimes, ts.UnixMilli())
}

// moved counts an accepted event that moved an order from one state to
// another.
func (c *counts) moved(from, to string) {
	c.transitions++
	c.moves[move{from, to}]++
}

// release gives eventTimes back to the pool; c must not be used after.
func (c *counts) release() {
	ts := c.eventTimes[:0]
	c.eventTimes = nil
	eventTimesPool.Put(&ts)
}

type stats struct {
	mu    sync.Mutex // guards s and moves
	s     Stats
	moves map[move]int64
}

func (st *stats) add(c *counts) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.Events += c.events
	st.s.Transitions += c.transitions
	st.s.Rejections += c.rejections
	st.s.DLQ += c.dlq
	st.s.Batches++
	if st.s.Rejected == nil {
		st.s.Rejected = make(map[string]int64)
	}
	if st.moves == nil {
		st.moves = make(map[move]int64)
	}
	for mv, n := range c.moves {
		st.moves[mv] += n
	}
	for r, n := range c.rejected {
		st.s.Rejected[r] += n
	}
}

func (st *stats) update(fn func(s *Stats)) {
	st.mu.Lock()
	defer st.mu.Unlock()
	fn(&st.s)
}

func (st *stats) snapshot() Stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.s
	s.Rejected = maps.Clone(st.s.Rejected)
	return s
}

// movesSnapshot returns the committed transitions by (from, to).
func (st *stats) movesSnapshot() map[move]int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return maps.Clone(st.moves)
}
