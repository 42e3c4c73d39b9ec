package statestore

// Test-only entry points: the processor writes through NewWriteBatch and
// PutClosed and never drops a partition, but the contract tests model the
// store with a batch that reads its own writes.

// NewBatch returns a batch that reads its own writes.
func (s *Store) NewBatch() *Batch { return s.newBatch() }

// Get returns the value of order id in partition p as the batch would
// leave it.
func (b *Batch) Get(p int32, id []byte) ([]byte, bool, error) { return b.getOrder(p, id) }

// Put sets the value of order id in partition p, asking the store's
// ClosedAt whether it is closed.
func (b *Batch) Put(p int32, id, value []byte) error { return b.put(p, id, value) }

// Len returns the number of writes in the batch.
func (b *Batch) Len() int { return b.writes() }

// DropPartition deletes everything the store holds for partition p.
func (s *Store) DropPartition(p int32) error { return s.dropPartition(p) }

// ErrWriteOnly is returned by Get on a batch from NewWriteBatch.
var ErrWriteOnly = errWriteOnly
