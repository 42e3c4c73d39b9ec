package topology

// Slab hands out the memory of the states ApplyWith builds that every
// accepted event needs, the RecentEventIDs slice, (when the event has a
// sequence) the LastSequence int64 and (when the order enters a state with
// timers) the Timers slice, from chunks: one allocation per many
// states instead of one or two per state: the processor builds a state for
// most records it reads, and small allocations at that rate cost it both the
// allocation and the garbage collector's work.
//
// A chunk stays reachable as long as any state built from it, so a Slab
// suits states that are all dropped after a while, as the processor's
// batches are (it takes a new Slab for each batch, and copies a state that
// outlives its batch). The zero Slab is ready to use; a nil *Slab
// allocates each slice and int64 on its own.
type Slab struct {
	ids  []string
	seqs []int64
	clks []Clock
}

const (
	slabIDs    = 1024 // strings per chunk: 16 KiB
	slabSeqs   = 512  // int64s per chunk: 4 KiB
	slabClocks = 512  // clocks per chunk: 12 KiB
)

// strings returns a zeroed slice of n strings with no spare capacity.
func (s *Slab) strings(n int) []string {
	if s == nil {
		return make([]string, n)
	}
	return take(&s.ids, n, slabIDs)
}

// take cuts a zeroed slice of n elements with no spare capacity from
// *chunk, starting a new chunk of size elements when it has too few; n over
// an eighth of a chunk gets its own allocation.
func take[T any](chunk *[]T, n, size int) []T {
	if n > size/8 {
		return make([]T, n)
	}
	if len(*chunk) < n {
		*chunk = make([]T, size)
	}
	t := (*chunk)[:n:n]
	*chunk = (*chunk)[n:]
	return t
}

// int64 returns a pointer to a new int64 holding v.
func (s *Slab) int64(v int64) *int64 {
	if s == nil {
		p := new(int64) // not &v: that would move v to the heap on every call
		*p = v
		return p
	}
	if len(s.seqs) == 0 {
		s.seqs = make([]int64, slabSeqs)
	}
	p := &s.seqs[0]
	s.seqs = s.seqs[1:]
	*p = v
	return p
}

// clocks returns a zeroed slice of n clocks with no spare capacity.
func (s *Slab) clocks(n int) []Clock {
	if s == nil {
		return make([]Clock, n)
	}
	return take(&s.clks, n, slabClocks)
}
