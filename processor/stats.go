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
	TimersFired map[string]int64 // fired timers by the state declaring them (also counted in Transitions)
	DLQ         int64            // undecodable records sent to the dead-letter topic
	Batches     int64            // committed batches
	Aborts      int64            // aborted batches
	Restores    int64            // partition restores completed
	Restored    int64            // changelog records applied by restores
}

type counts struct {
	events, transitions, rejections, dlq int64
	rejected                             map[string]int64
	timersFired                          map[string]int64 // nil until a timer fires
	// moves counts accepted events by (from, to) leaf, dense: index
	// (from+1)*leaves+to with the leaf indices of topology.Outcome (from -1:
	// a new order): the indices come with the outcome, so counting a move
	// is an increment, not a map lookup hashing two names for every
	// accepted event.
	moves      *moveCounts
	leaves     []string // the machine's leaves, which the move indices index
	eventTimes []int64  // Kafka timestamps (Unix ms) of the input records, for the end-to-end latency
	// placed counts keyed input records by the partitioner that put them
	// in their partition, indexed by partitioner.Name (None: neither).
	placed [3]int64
	// mismatched counts input records the partitioner in use did not put
	// in their partition.
	mismatched int64
}

// moveCounts is a batch's dense move counts and the indices it counted
// (a machine with many leaves has a large, mostly empty table: a batch
// reads and clears only what it counted). Recycled between batches, zeroed.
type moveCounts struct {
	n       []int64
	touched []int
}

var moveCountsPool = sync.Pool{New: func() any { return new(moveCounts) }}

// move is a transition's source and target leaf state ("" from: a new order).
type move struct{ from, to string }

// eventTimesPool recycles counts.eventTimes between batches.
var eventTimesPool = sync.Pool{New: func() any { s := make([]int64, 0, 1024); return &s }}

// newCounts returns empty counts for a machine with these leaves.
func newCounts(leaves []string) counts {
	return counts{
		rejected:   make(map[string]int64),
		moves:      newMoveCounts((len(leaves) + 1) * len(leaves)),
		leaves:     leaves,
		eventTimes: (*eventTimesPool.Get().(*[]int64))[:0],
	}
}

// newMoveCounts returns zeroed move counts of size n.
func newMoveCounts(n int) *moveCounts {
	m := moveCountsPool.Get().(*moveCounts)
	if cap(m.n) < n {
		m.n = make([]int64, n)
	}
	m.n = m.n[:n]
	return m
}

// timerFired counts a fired timer of state.
func (c *counts) timerFired(state string) {
	if c.timersFired == nil {
		c.timersFired = make(map[string]int64)
	}
	c.timersFired[state]++
}

// event counts an input record with its Kafka timestamp.
func (c *counts) event(ts time.Time) {
	c.events++
	c.eventTimes = append(c.eventTimes, ts.UnixMilli())
}

// moved counts an accepted event that moved an order from leaf from (-1: a
// new order) to leaf to, indices into the machine's leaves.
func (c *counts) moved(from, to int) {
	c.transitions++
	i := (from+1)*len(c.leaves) + to
	if c.moves.n[i] == 0 {
		c.moves.touched = append(c.moves.touched, i)
	}
	c.moves.n[i]++
}

// release gives eventTimes and the move counts back to their pools; c must
// not be used after.
func (c *counts) release() {
	ts := c.eventTimes[:0]
	c.eventTimes = nil
	eventTimesPool.Put(&ts)
	m := c.moves
	c.moves = nil
	for _, i := range m.touched {
		m.n[i] = 0
	}
	m.touched = m.touched[:0]
	moveCountsPool.Put(m)
}

type stats struct {
	mu    sync.Mutex // guards s and moves
	s     Stats
	moves map[move]int64
}

// add adds a committed batch's counts.
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
	for _, i := range c.moves.touched {
		n := c.moves.n[i]
		from, to := i/len(c.leaves)-1, i%len(c.leaves)
		mv := move{to: c.leaves[to]}
		if from >= 0 {
			mv.from = c.leaves[from]
		}
		st.moves[mv] += n
	}
	for r, n := range c.rejected {
		st.s.Rejected[r] += n
	}
	if len(c.timersFired) > 0 && st.s.TimersFired == nil {
		st.s.TimersFired = make(map[string]int64)
	}
	for s, n := range c.timersFired {
		st.s.TimersFired[s] += n
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
	s.TimersFired = maps.Clone(st.s.TimersFired)
	return s
}

// movesSnapshot returns the committed transitions by (from, to).
func (st *stats) movesSnapshot() map[move]int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return maps.Clone(st.moves)
}
