package processor

import (
	"errors"
	"fmt"

	"github.com/orderflow/orderflow/statestore"
	"github.com/orderflow/orderflow/topology"
)

// Errors of Order.
var (
	// ErrNotOwner: this instance does not own the order's partition (ask
	// the owner: Peers.Owner).
	ErrNotOwner = errors.New("partition not owned by this instance")
	// ErrRestoring: this instance owns the partition but is still restoring
	// it from the changelog; ask again later.
	ErrRestoring = errors.New("partition is restoring")
	// ErrUnknownOrder: the owner's store has no such order (never created,
	// or deleted by retention).
	ErrUnknownOrder = errors.New("unknown order")
	// ErrNotRunning: the processor's store is not open (before Run, after
	// it returned).
	ErrNotRunning = errors.New("processor is not running")
)

// Order returns the committed state of an order of input partition part
// from this instance's store. Errors: ErrNotOwner, ErrRestoring,
// ErrUnknownOrder, ErrNotRunning, or a store or decoding failure.
//
// The answer is what the last committed batch left: never a state of a
// batch whose transaction has not committed.
func (p *Processor) Order(part int32, orderID string) (*topology.State, error) {
	p.mu.Lock()
	ps, owned := p.mu.parts[part]
	ready := owned && ps.ready
	p.mu.Unlock()
	switch {
	case !owned:
		return nil, fmt.Errorf("%w: partition %d", ErrNotOwner, part)
	case !ready:
		return nil, fmt.Errorf("%w: partition %d", ErrRestoring, part)
	}
	return p.storedOrder(part, orderID)
}

// storedOrder reads and decodes an order of partition part from the store.
func (p *Processor) storedOrder(part int32, orderID string) (*topology.State, error) {
	var (
		v   []byte
		ok  bool
		err error
	)
	if !p.m.store.with(func(s *statestore.Store) { v, ok, err = s.Get(part, []byte(orderID)) }) {
		return nil, ErrNotRunning
	}
	if err != nil {
		return nil, fmt.Errorf("reading order %q of partition %d: %w", orderID, part, err)
	}
	if !ok {
		return nil, ErrUnknownOrder
	}
	var st topology.State
	if err := p.stateCodec.DecodeState(v, &st); err != nil {
		return nil, fmt.Errorf("decoding the stored state of order %q: %w", orderID, err)
	}
	return &st, nil
}

// InstanceID is this instance's id.
func (p *Processor) InstanceID() string { return p.cfg.InstanceID }

// Machine returns the state machine the processor runs.
func (p *Processor) Machine() *topology.Machine { return p.cfg.Machine }
