package demo

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/topology"
)

// source is the demo's traffic: workload chunks, generated as they are
// needed. With a fixed order count it is one chunk of that many orders;
// otherwise chunks follow one another until the producer has enough. Chunk
// c has seed seed + c*chunkSeedStep, so order and event ids never repeat.
type source struct {
	timers *topology.Machine // Options.Timers: the machine, for the workload
	seed   uint64
	orders int // orders of the next chunk
	fixed  bool
	chunk  int
	buf    []workload.Item
	done   bool
}

const (
	chunkOrders   = 1000
	chunkSeedStep = 1_000_003
)

func newSource(o Options) *source {
	s := &source{seed: o.Seed, orders: o.Orders, fixed: o.Orders > 0, timers: o.timers}
	if !s.fixed {
		// The default machine's lifecycles (the workload's default weights)
		// average about 6.5 events; aim a little high so one chunk usually
		// suffices.
		s.orders = chunkOrders
		if o.Events > 0 {
			s.orders = o.Events*10/60 + 16
		}
	}
	return s
}

func (s *source) next() (workload.Item, bool) {
	for len(s.buf) == 0 {
		if s.done {
			return workload.Item{}, false
		}
		wo := workload.Options{
			Seed:   s.seed + uint64(s.chunk)*chunkSeedStep,
			Orders: s.orders,
		}
		if s.timers != nil {
			wo.Machine, wo.MaxGap, wo.Abandon = s.timers, timerGap, timerAbandon
		}
		s.buf = workload.Generate(wo)
		s.chunk++
		s.orders = chunkOrders
		s.done = s.fixed
	}
	it := s.buf[0]
	s.buf = s.buf[1:]
	return it, true
}

// producer writes the traffic to the events topic at the configured rate.
type producer struct {
	cl    *kgo.Client
	codec *avro.Codec
	src   *source
	o     Options

	sent, ok atomic.Int64 // records handed to the client; acknowledged
	mu       struct {
		sync.Mutex
		err        error // first produce error
		start, end time.Time
	}
}

func newProducer(brokers []string, o Options, topic string) (*producer, error) {
	codec, err := avro.NewCodec()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("orderflow-demo-producer"),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5 * time.Millisecond),
	}, o.KafkaOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &producer{cl: cl, codec: codec, src: newSource(o), o: o}, nil
}

func (p *producer) close() { p.cl.Close() }

// acked returns the records Kafka acknowledged.
func (p *producer) acked() int64 { return p.ok.Load() }

// elapsed is how long the traffic took (so far).
func (p *producer) elapsed() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.mu.start.IsZero():
		return 0
	case p.mu.end.IsZero():
		return time.Since(p.mu.start)
	}
	return p.mu.end.Sub(p.mu.start)
}

// finished reports whether the traffic ended.
func (p *producer) finished() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.mu.end.IsZero()
}

// run produces until the traffic ends (Events, Duration, the source's end,
// stop closed), then waits for every acknowledgement. It returns early with
// an error if an instance fails (failed closed) or a record cannot be
// produced.
func (p *producer) run(ctx context.Context, stop, failed <-chan struct{}) error {
	start := time.Now()
	p.mu.Lock()
	p.mu.start = start
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.mu.end = time.Now()
		p.mu.Unlock()
	}()
	var deadline <-chan time.Time
	if p.o.Duration > 0 {
		t := time.NewTimer(p.o.Duration)
		defer t.Stop()
		deadline = t.C
	}
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			p.mu.Lock()
			if p.mu.err == nil {
				p.mu.err = err
			}
			p.mu.Unlock()
			return
		}
		p.ok.Add(1)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
produce:
	for {
		// The records due now: all of them at rate 0.
		due := int64(1 << 62)
		if p.o.Rate > 0 {
			due = int64(p.o.Rate * time.Since(start).Seconds())
		}
		for n := p.sent.Load(); n < due; n++ {
			if p.o.Events > 0 && n >= int64(p.o.Events) {
				break produce
			}
			it, ok := p.src.next()
			if !ok {
				break produce
			}
			val := it.Malformed
			if val == nil {
				if p.o.Timers {
					// Dated when sent: the instances' clocks time out
					// what the traffic abandons.
					it.Event.OccurredAt = time.Now()
				}
				var err error
				if val, err = p.codec.EncodeEvent(nil, &it.Event); err != nil {
					return fmt.Errorf("encoding event %s: %w", it.Event.EventID, err)
				}
			}
			p.cl.Produce(ctx, &kgo.Record{Key: []byte(it.Key), Value: val}, promise)
			p.sent.Add(1)
			if n%256 == 0 && p.o.Rate == 0 {
				// Let the checks below run now and then at full speed.
				break
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-failed:
			return nil // the caller reports the instance's error
		case <-stop:
			break produce
		case <-deadline:
			break produce
		default:
		}
		if p.o.Rate > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.cl.Flush(fctx); err != nil {
		return fmt.Errorf("waiting for Kafka to acknowledge the traffic: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.err != nil {
		return fmt.Errorf("producing the traffic: %w", p.mu.err)
	}
	return nil
}
