package processor

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// producer takes the records a batch produces: the thread's *kgo.Client.
// It is an interface only so that BenchmarkProcess can measure the
// per-record work without a broker; every test runs the real client.
type producer interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
}

// outputs are a batch's records on their way to the client, and what their
// promises tell: the changelog offsets they got and the first produce
// error.
type outputs struct {
	// pending are the records built and not yet handed to the client
	// (produce, flush).
	pending   []*kgo.Record
	produced  sync.WaitGroup // the batch's records the client has not answered yet
	mu        sync.Mutex
	offsets   map[int32]int64 // next changelog offset per partition
	err       error           // first produce error
	changelog string
	// The promises of the batch's changelog records and of its other
	// records, bound once (a method value allocates).
	changelogPromise, outputPromise func(*kgo.Record, error)
}

// init makes o ready for the records of a batch; o must not move after.
func (o *outputs) init(changelog string) {
	o.changelog = changelog
	o.offsets = make(map[int32]int64)
	o.changelogPromise, o.outputPromise = o.onChangelog, o.onOutput
}

// produce queues r for the client: flush hands it over.
func (o *outputs) produce(r *kgo.Record) {
	o.pending = append(o.pending, r)
}

// flush hands the queued records to the client, in the order they were
// queued; the batch's promises get their outcomes.
func (o *outputs) flush(cl producer) {
	o.produced.Add(len(o.pending))
	for _, r := range o.pending {
		promise := o.outputPromise
		if r.Topic == o.changelog {
			promise = o.changelogPromise
		}
		cl.Produce(context.Background(), r, promise)
	}
	clear(o.pending)
	o.pending = o.pending[:0]
}

// onChangelog is the promise of a changelog record: it keeps the
// partition's next changelog offset.
func (o *outputs) onChangelog(r *kgo.Record, err error) {
	defer o.produced.Done()
	if err != nil {
		o.fail(r, err)
		return
	}
	o.mu.Lock()
	if r.Offset+1 > o.offsets[r.Partition] {
		o.offsets[r.Partition] = r.Offset + 1
	}
	o.mu.Unlock()
}

// onOutput is the promise of every other record: on success there is
// nothing to keep, so it takes no lock (half the batch's records).
func (o *outputs) onOutput(r *kgo.Record, err error) {
	if err != nil {
		o.fail(r, err)
	}
	o.produced.Done()
}

// fail keeps the first produce error.
func (o *outputs) fail(r *kgo.Record, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil {
		o.err = fmt.Errorf("producing to %s: %w", r.Topic, err)
	}
}

func (o *outputs) produceErr() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}
