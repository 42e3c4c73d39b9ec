package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/orderflow/orderflow/internal/kread"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/statestore"
	"github.com/twmb/franz-go/pkg/kgo"
)

// bigApp is the app id whose changelog holds the store of StoreOrders
// orders: the restore measurement reads it, the RSS child restores it.
func (h *harness) bigApp() string { return h.name("big") }

// writeStore writes StoreOrders order states to the big app's changelog
// (writeStoreOf).
func (h *harness) writeStore(ctx context.Context, opts ...kgo.Opt) (string, error) {
	return h.writeStoreOf(ctx, h.bigApp(), h.o.storeOrders, opts...)
}

// writeStoreOf writes orders order states to app's changelog, which it
// creates (compacted) if it is missing: the final states of the workload's
// orders, repeated under new order ids ("c<k>-<order id>") until there are
// enough. Records go to the partition of their key, as orderflow's
// changelog does; opts are added to the producer's options.
func (h *harness) writeStoreOf(ctx context.Context, app string, orders int, opts ...kgo.Opt) (string, error) {
	changelog := processor.ChangelogTopic(app)
	compact := "compact"
	if err := h.createTopic(ctx, changelog, map[string]*string{"cleanup.policy": &compact}); err != nil {
		return "", err
	}
	f := h.enc
	if f.finals.len() == 0 {
		return "", errors.New("the workload created no orders")
	}
	start := time.Now()
	var key []byte
	err := produceAll(ctx, h.o.Brokers, changelog, orders, func(i int) ([]byte, []byte) {
		j := i % f.finals.len()
		key = fmt.Appendf(key[len(key):], "c%d-%s", i/f.finals.len(), f.finalIDs.at(j))
		return key, f.finals.at(j)
	}, nil, opts...)
	if err != nil {
		return "", err
	}
	h.logf("wrote %d order states to %s in %v", orders, changelog, time.Since(start).Round(time.Millisecond))
	return changelog, nil
}

func (h *harness) restore(ctx context.Context) error {
	changelog, err := h.writeStore(ctx)
	if err != nil {
		return err
	}
	h.settle() // the store just written is dirty in the page cache
	// The ceiling: read the changelog to its end as the restore does
	// (read_committed, the same fetch sizes), without writing anything.
	start := time.Now()
	var n int64
	fetch := []kgo.Opt{kgo.FetchMaxBytes(statestore.DefaultRestoreFetchMaxBytes), kgo.FetchMaxPartitionBytes(statestore.DefaultRestoreFetchMaxBytes)}
	if err := kread.ReadCommitted(ctx, h.o.Brokers, fetch, changelog, func(*kgo.Record) error { n++; return nil }); err != nil {
		return err
	}
	took := time.Since(start)
	h.logf("restore ceiling: read %d records in %v", n, took.Round(time.Millisecond))
	h.rep.setRestore("restore_ceiling", n, took)

	// The restore: every partition into an empty store, as a processor
	// does on its first assignment (RestoreConcurrency at a time).
	store, _, done, err := h.emptyStore("restore")
	if err != nil {
		return err
	}
	defer done()
	start = time.Now()
	total, err := h.restoreAll(ctx, store, changelog)
	took = time.Since(start)
	if err != nil {
		return err
	}
	if total != int64(h.o.storeOrders) {
		return fmt.Errorf("restored %d records, want %d", total, h.o.storeOrders)
	}
	h.logf("restore: %d records into an empty store in %v", total, took.Round(time.Millisecond))
	h.rep.setRestore("restore", total, took)
	return nil
}

// restoreAll restores every partition of changelog into store, as a
// processor does on its first assignment (RestoreConcurrency at a time),
// and returns the records restored.
func (h *harness) restoreAll(ctx context.Context, store *statestore.Store, changelog string) (int64, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int64
		errs  []error
	)
	slots := make(chan struct{}, processor.DefaultConfig().RestoreConcurrency)
	for p := range h.o.partitions {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			res, err := store.Restore(ctx, p, statestore.RestoreOptions{
				Topic:      changelog,
				ClientOpts: []kgo.Opt{kgo.SeedBrokers(h.o.Brokers...)},
			})
			mu.Lock()
			defer mu.Unlock()
			total += res.Records
			errs = append(errs, err)
		})
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// emptyStore opens an empty store in the work dir's subdirectory name,
// with the processor's retention index; done closes it and removes it.
func (h *harness) emptyStore(name string) (store *statestore.Store, dir string, done func(), err error) {
	dir = filepath.Join(h.work, name)
	if err := os.RemoveAll(dir); err != nil {
		return nil, "", nil, err
	}
	if store, err = statestore.Open(statestore.Options{Dir: dir, ClosedAt: h.closedAt, Logger: h.plog}); err != nil {
		return nil, "", nil, err
	}
	return store, dir, func() { store.Close(); os.RemoveAll(dir) }, nil
}

// closedAt is what the processor gives statestore.Options.ClosedAt.
func (h *harness) closedAt(v []byte) (int64, bool) {
	ms, closed, err := h.codec.StateClosedAt(v)
	return ms, closed && err == nil
}
