package processor

import (
	"time"

	"github.com/orderflow/orderflow/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// batch is the work of one transaction (or one at_least_once commit). Its
// concerns live in their own types: the order states it read and wrote
// (states, overlay.go), its records on their way to the client (outputs,
// produce.go), the memory of those records (outputMemory, outmem.go) and
// its counts (counts, stats.go), which reach the processor's stats only
// once the batch is committed (commit.go).
type batch struct {
	states
	outputs
	mem    *outputMemory // the thread's memory for output records and values
	counts counts
	limits recordLimits // the output topics' record size limits

	records   int // input records in the batch
	abort     bool
	abortWhy  string // why abort is set (abortFor): the first reason
	misrouted bool   // a record's key hashes to another partition (layout.go)
	stored    bool   // committed to Kafka and written to the store

	// next is the next input offset of each partition the batch read
	// (at_least_once commits them once the batch is stored).
	next map[int32]kgo.EpochOffset

	ev  topology.Event   // the event being processed, reused
	out topology.Outcome // its outcome, reused
	// closedAt is the ClosedAt of the orders the batch closes at one
	// processing time: states are immutable, so they share it.
	closedAt *time.Time
}

// newBatch returns an empty batch, which reads the states of warm (the
// last batch's overlay, or nil) before the store's.
// abortFor marks the batch to be aborted (exactly_once) or abandoned
// (at_least_once), and why, for the log line that reports it.
func (b *batch) abortFor(why string) {
	if !b.abort {
		b.abort, b.abortWhy = true, why
	}
}

func newBatch(changelog string, mem *outputMemory, leaves []string, warm overlay) *batch {
	b := &batch{
		states: states{overlay: make(overlay), warm: warm},
		mem:    mem,
		next:   make(map[int32]kgo.EpochOffset),
		counts: newCounts(leaves),
	}
	b.outputs.init(changelog)
	return b
}

// closedAtPtr returns a pointer to now for the ClosedAt of an order the
// batch closes, shared by every order closed at that time: only a new time
// allocates (taking the address of now itself would move the parameter to
// the heap on every call, one allocation per closed order).
func (b *batch) closedAtPtr(now time.Time) *time.Time {
	if b.closedAt == nil || !b.closedAt.Equal(now) {
		at := now
		b.closedAt = &at
	}
	return b.closedAt
}
