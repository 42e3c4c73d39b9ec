package demo

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/orderflow/orderflow/processor"
)

// fleet owns the processor instances of a run: it starts them, stops them
// (one at a time for chaos, all at the end) and waits for their Run to
// return. The stats of stopped instances are kept, so totals survive a
// restart.
type fleet struct {
	base processor.Config
	dir  string // parent of the instances' state directories
	out  *console
	log  *slog.Logger

	produced func() int64 // records acknowledged by the producer (set by run)

	mu struct {
		sync.Mutex
		running map[string]*instance // by name
		gone    processor.Stats      // totals of stopped instances
		starts  map[string]int       // starts per name (state dir suffix)
		err     error                // first Run error
	}
	failCh chan struct{} // closed on the first Run error
	once   sync.Once
}

type instance struct {
	name   string
	dir    string
	p      *processor.Processor
	cancel context.CancelFunc
	done   chan struct{}
}

func newFleet(base processor.Config, dir string, out *console, log *slog.Logger) *fleet {
	f := &fleet{base: base, dir: dir, out: out, log: log, failCh: make(chan struct{})}
	f.mu.running = map[string]*instance{}
	f.mu.starts = map[string]int{}
	f.produced = func() int64 { return 0 }
	return f
}

// start starts instance name with a new, empty state directory.
func (f *fleet) start(ctx context.Context, name string) error {
	f.mu.Lock()
	f.mu.starts[name]++
	dir := filepath.Join(f.dir, fmt.Sprintf("%s.%d", name, f.mu.starts[name]))
	f.mu.Unlock()

	cfg := f.base
	cfg.InstanceID = name
	cfg.StateDir = dir
	cfg.Logger = slog.New(&noticeHandler{out: f.out, next: f.log.Handler()})
	p, err := processor.New(cfg)
	if err != nil {
		return fmt.Errorf("instance %s: %w", name, err)
	}
	// Run's context is not ctx: an instance stops only through stop, so the
	// shutdown order stays ours.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	in := &instance{name: name, dir: dir, p: p, cancel: cancel, done: make(chan struct{})}
	f.mu.Lock()
	f.mu.running[name] = in
	f.mu.Unlock()
	go func() {
		defer close(in.done)
		if err := p.Run(rctx); err != nil {
			f.fail(fmt.Errorf("instance %s: %w", name, err))
		}
	}()
	return nil
}

// stop stops instance name: its Run context is cancelled, so it commits or
// aborts its open batch, leaves the group and closes its store.
func (f *fleet) stop(name string) {
	f.mu.Lock()
	in := f.mu.running[name]
	f.mu.Unlock()
	if in == nil {
		return
	}
	in.cancel()
	<-in.done
	f.mu.Lock()
	delete(f.mu.running, name)
	addStats(&f.mu.gone, in.p.Stats())
	f.mu.Unlock()
}

// stopAll stops every running instance, concurrently. It is safe to call
// twice.
func (f *fleet) stopAll() {
	f.mu.Lock()
	var ns []string
	for n := range f.mu.running {
		ns = append(ns, n)
	}
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range ns {
		wg.Go(func() { f.stop(n) })
	}
	wg.Wait()
}

func (f *fleet) fail(err error) {
	f.mu.Lock()
	if f.mu.err == nil {
		f.mu.err = err
	}
	f.mu.Unlock()
	f.once.Do(func() { close(f.failCh) })
}

// failed is closed when an instance's Run failed.
func (f *fleet) failed() <-chan struct{} { return f.failCh }

func (f *fleet) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.err
}

func (f *fleet) producedCount() int64 { return f.produced() }

// stats returns the totals of every instance that ever ran, and a line per
// running instance.
func (f *fleet) stats() (processor.Stats, []instanceStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var total processor.Stats
	addStats(&total, f.mu.gone)
	var st []instanceStatus
	for _, in := range f.mu.running {
		s := in.p.Stats()
		addStats(&total, s)
		parts := in.p.Assigned()
		slices.Sort(parts)
		st = append(st, instanceStatus{name: in.name, parts: parts, ready: in.p.Ready(), events: s.Events, restored: s.Restored})
	}
	sort.Slice(st, func(i, j int) bool { return st[i].name < st[j].name })
	return total, st
}

type instanceStatus struct {
	name     string
	parts    []int32
	ready    bool
	events   int64 // processed by this run of the instance
	restored int64 // changelog records restored by this run of the instance
}

// balanced reports whether the running instances own every partition once,
// each has its fair share (when there are at least as many partitions as
// instances), and all are restored.
func balanced(st []instanceStatus, partitions int32) bool {
	seen := map[int32]bool{}
	for _, s := range st {
		if !s.ready || (len(s.parts) == 0 && int(partitions) >= len(st)) {
			return false
		}
		for _, p := range s.parts {
			if seen[p] {
				return false
			}
			seen[p] = true
		}
	}
	return int32(len(seen)) == partitions
}

// waitReady waits until the running instances are balanced.
func (f *fleet) waitReady(ctx context.Context, partitions int32, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, st := f.stats(); balanced(st, partitions) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the instances did not share the %d partitions within %v: %s", partitions, timeout, f.ownership())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.failCh:
			return f.err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ownership describes who owns which partitions: "a [0 1 2] · b [3 4 5]".
func (f *fleet) ownership() string {
	_, st := f.stats()
	var b strings.Builder
	for i, s := range st {
		if i > 0 {
			b.WriteString(" · ")
		}
		fmt.Fprintf(&b, "%s %s", s.name, partList(s.parts))
		if !s.ready {
			b.WriteString(" (restoring)")
		}
	}
	return b.String()
}

func partList(parts []int32) string {
	if len(parts) == 0 {
		return "[]"
	}
	return strings.ReplaceAll(fmt.Sprint(parts), " ", ",")
}

func addStats(dst *processor.Stats, s processor.Stats) {
	dst.Events += s.Events
	dst.Transitions += s.Transitions
	dst.Rejections += s.Rejections
	dst.DLQ += s.DLQ
	dst.Batches += s.Batches
	dst.Aborts += s.Aborts
	dst.Restores += s.Restores
	dst.Restored += s.Restored
	for r, n := range s.Rejected {
		if dst.Rejected == nil {
			dst.Rejected = map[string]int64{}
		}
		dst.Rejected[r] += n
	}
}
