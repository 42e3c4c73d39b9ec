package processor

import (
	"bytes"
	"slices"
	"unsafe"

	"github.com/orderflow/orderflow/topology"
)

// overlay holds a batch's entries by partition and order ID: a map per
// partition keyed by the ID alone, which hashes faster than a key of both,
// and lets commitStore write a partition's orders in ID order without
// comparing partitions.
type overlay map[int32]map[string]*entry

// of returns partition part's map, made with room for size orders if the
// overlay has none yet.
func (o overlay) of(part int32, size int) map[string]*entry {
	m := o[part]
	if m == nil {
		m = make(map[string]*entry, size)
		o[part] = m
	}
	return m
}

// entry is an order's state as the current batch leaves it.
type entry struct {
	state  topology.State // read only (topology.Apply's copy-on-write contract)
	exists bool           // false: the order does not exist (or was deleted)
	value  []byte         // the encoded state this batch wrote to the changelog, while dirty (slab memory)
	dirty  bool           // written by this batch
	was    censusKey      // where the committed state stands in the census
	// due is when the state's first pending timer is due (Unix ms), if
	// timed: topology.NextDue, kept with the state (setState) so that
	// neither the check before every event nor commitStore's index entry
	// looks for it again.
	due   int64
	timed bool
}

// setState sets the entry's state to st, an existing order's, and its
// first pending timer under machine m (nil: the processor has no timers).
func (e *entry) setState(st *topology.State, m *topology.Machine) {
	e.state, e.exists = *st, true
	e.due, e.timed = 0, false
	if m != nil {
		e.due, e.timed = topology.NextDue(m, st)
	}
}

// current returns the entry's state for topology.Apply: nil when the order
// does not exist.
func (e *entry) current() *topology.State {
	if !e.exists {
		return nil
	}
	return &e.state
}

// states are the order states a batch read and wrote: its overlay
// (read-your-writes for later events of the same order), the last batch's
// overlay it reads before the store, and the memory its states point into.
type states struct {
	overlay overlay
	warm    overlay // the last committed batch's overlay (read only)
	// The partition being processed (setPartition), its maps in overlay
	// and warm, and the orders it may hold.
	part      int32
	cur, prev map[string]*entry
	known     *knownOrders
	census    map[int32]*census // the census of each partition, kept at commitStore
	entries   []entry           // room for the overlay's next entries (newEntry)
	// input holds copies of the batch's input values, which its decoded
	// events' strings point into (avro's DecodeEventShared), and slab the
	// event IDs and sequences of the states it builds
	// (topology.ApplyWith): one allocation per many events for both. The
	// batch's states point into them, so they stay reachable while the
	// batch's overlay and then the next batch's warm states do; the next
	// batch copies a warm state it takes over (own), so that no memory
	// lives longer. Neither is ever reused.
	input []byte
	slab  topology.Slab
}

// setPartition makes part the partition whose records the batch processes
// next; known holds the orders it may have.
func (s *states) setPartition(part int32, known *knownOrders, cen *census) {
	s.part, s.known = part, known
	if cen != nil {
		if s.census == nil {
			s.census = map[int32]*census{}
		}
		s.census[part] = cen
	}
	// Room for as many orders as the last batch had: a map grown one
	// doubling at a time rehashes all its entries at each.
	s.cur, s.prev = s.overlay.of(part, len(s.warm[part])), s.warm[part]
}

// entryChunk is how many entries a chunk holds: 128 entries stay under
// 32 KiB, above which an allocation takes the runtime's slower path for
// large objects.
const entryChunk = 128

// newEntry returns a zeroed entry for the overlay. Entries come from chunks,
// one allocation per entryChunk orders: a chunk lives while the batch's
// overlay, or the next batch's warm states, point into it.
func (s *states) newEntry() *entry {
	if len(s.entries) == 0 {
		s.entries = make([]entry, entryChunk)
	}
	e := &s.entries[0]
	s.entries = s.entries[1:]
	return e
}

// inputChunk is the size of the chunks of states.input: under 32 KiB, the
// runtime's limit for small objects (a chunk of 32 KiB or more takes the
// slower path for large ones, which goes to the heap's central lock and
// zeroes the memory, on every chunk).
const inputChunk = 16 << 10

// keepInput returns a copy of an input record's value, in the batch's
// memory.
func (s *states) keepInput(v []byte) []byte {
	if len(v) > inputChunk/8 {
		return bytes.Clone(v)
	}
	if cap(s.input)-len(s.input) < len(v) {
		s.input = make([]byte, 0, inputChunk)
	}
	s.input = append(s.input, v...)
	return s.input[len(s.input)-len(v) : len(s.input) : len(s.input)]
}

// own makes st, a state of the last batch, independent of that batch's
// memory (see states.input): it copies st's event IDs into one new
// allocation, its sequence and its timers. Without it an order touched batch after
// batch would keep every one of those batches' memory reachable.
func own(st *topology.State) {
	if ids := st.RecentEventIDs; len(ids) > 0 {
		n := 0
		for _, id := range ids {
			n += len(id)
		}
		buf := make([]byte, 0, n)
		owned := make([]string, len(ids))
		for i, id := range ids {
			if id != "" {
				buf = append(buf, id...)
				owned[i] = unsafe.String(&buf[len(buf)-len(id)], len(id))
			}
		}
		st.RecentEventIDs = owned
	}
	if st.LastSequence != nil {
		seq := *st.LastSequence
		st.LastSequence = &seq
	}
	if len(st.Timers) > 0 {
		st.Timers = slices.Clone(st.Timers) // from the batch's slab
	}
}

// closedAtPtr returns a pointer to now for the ClosedAt of an order the
