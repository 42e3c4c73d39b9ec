package processor

import (
	"context"
	"testing"
	"time"
)

// A revoke cancels the partition's restore and waits for it, from inside
// the GroupTransactSession's revoke callback; meanwhile a batch end
// read-holds commitMu and waits in GroupTransactSession.End for that
// callback. The restore, waiting for the batch's store write, must give up
// when it is cancelled, or the three wait on each other for ever.
func TestRestoreOfRevokedPartitionDoesNotWaitForBatchEnd(t *testing.T) {
	p := &Processor{}
	p.commitMu.RLock() // a batch end, stuck until the revoke returns
	defer p.commitMu.RUnlock()

	ctx, cancel := context.WithCancel(context.Background())
	ps := &partition{cancel: cancel, done: make(chan struct{})}
	p.restores.Add(1)
	go p.restore(ctx, nil, 0, ps)
	cancel() // the revoke
	select {
	case <-ps.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the restore of a revoked partition still waits for a batch end that waits for the revoke")
	}
}
