package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orderflow/orderflow/statestore"
	"github.com/prometheus/client_golang/prometheus"
)

// Run runs the processor until ctx is cancelled (a clean shutdown: the
// current batch is committed, the group left, the store closed; Run returns
// nil) or a fatal error. Transient failures (a broker restart, an aborted
// transaction that cannot be ended) rebuild the Kafka client and go on.
//
// A corrupt state store (a file that fails Pebble's checksums), found when
// the store opens, while a partition is restored or its orders are loaded,
// or by a later read, stops the threads, moves the store's directory aside
// (<state-dir>.corrupt-<time>, kept for inspection), and starts again on a
// fresh store, which restores every partition from the changelog: the
// store is a cache of the changelog. This is logged at error level and
// counted in orderflow_store_corruptions_total. No batch acts on a state
// read from a corrupt store: a failed read aborts the batch, and the
// threads stop before the next one. A store found corrupt again in the
// same Run (a failing disk) is a fatal error; the next start rebuilds it.
//
// A full disk (ENOSPC) is a fatal error naming the state directory: the
// store takes no more writes, closes without its flush (Pebble would
// retry it without end), and the next start, once space is freed,
// restores from the changelog what the store had not flushed.
func (p *Processor) Run(ctx context.Context) error {
	for rebuilt := false; ; rebuilt = true {
		err := p.run(ctx)
		if !errors.Is(err, statestore.ErrCorrupt) || ctx.Err() != nil {
			return err
		}
		p.m.corruptions.Inc()
		if rebuilt {
			return fmt.Errorf("%w: the state store in %s is corrupt again after it was rebuilt (is the disk failing?): %w",
				ErrFatal, p.cfg.StateDir, err)
		}
		aside, merr := statestore.MoveAside(p.cfg.StateDir, time.Now())
		if merr != nil {
			return fmt.Errorf("%w: the state store in %s is corrupt (%w), and %w", ErrFatal, p.cfg.StateDir, err, merr)
		}
		p.log.Error("the state store is corrupt: moved it aside, rebuilding every partition from the changelog in a fresh store (delete the old one once inspected)",
			"state_dir", p.cfg.StateDir, "moved_to", aside, "err", err)
		select { // the error that stopped the threads
		case <-p.fatal:
		default:
		}
	}
}

// storeFailed stops the processor if err is a failure of the store
// (corruption or a full disk) rather than of one read: retrying the batch
// would fail again, without end.
func (p *Processor) storeFailed(err error) {
	if isStoreFailure(err) {
		p.fail(fmt.Errorf("%w: reading the state store: %w", ErrFatal, err))
	}
}

// closeStore closes the store at the end of run. A failure that only Close
// finds (a flush on a full disk) becomes run's error when it has none: an
// instance whose last batches never reached the disk does not exit 0.
func (p *Processor) closeStore(store *statestore.Store, err *error) {
	cerr := store.Close()
	switch {
	case cerr == nil:
	case isStoreFailure(cerr) && *err == nil:
		*err = fmt.Errorf("%w: closing the state store in %s: %w", ErrFatal, p.cfg.StateDir, cerr)
	case isStoreFailure(cerr):
		// The store logged its failure when it failed, and err says why run
		// stopped.
	default:
		p.log.Error("closing the state store", "err", cerr)
	}
}

func isStoreFailure(err error) bool {
	return errors.Is(err, statestore.ErrCorrupt) || statestore.IsDiskFull(err)
}

func newCorruptionsCounter() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: MetricsNamespace, Name: "store_corruptions_total",
		Help: "Times the state store was found corrupt, moved aside and rebuilt from the changelog.",
	})
}
