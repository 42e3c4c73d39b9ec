// Package demo runs the whole of orderflow in one process, for `orderflow
// demo`: an embedded Kafka (franz-go's kfake: the real protocol, with
// transactions and compaction) unless brokers are given, the topics, K
// processor instances sharing the input in one consumer group, generated
// traffic (package workload), live progress, optional chaos (an instance
// stopped and restarted mid-run, so a rebalance and a restore happen), and a
// summary computed from the output topics read with read_committed.
//
// The summary's check is the one a downstream consumer could make:
// every input record has exactly one outcome,
//
//	events = transitions + rejections + dlq
//
// counted on the topics themselves, not from the processors' own counters.
//
// # Order of work in Run
//
//	cluster (kfake or --brokers) -> topics -> K instances, wait until every
//	partition is owned and restored -> traffic (and chaos) -> drain: wait
//	until the group's committed offsets reach the input's end -> stop the
//	instances -> read the topics -> summary
//
// Every goroutine Run starts is stopped and waited for before it returns;
// the temporary state directories are removed.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
)

// Defaults of Options (zero fields take them).
const (
	DefaultEvents       = 20000
	DefaultInstances    = 2
	DefaultPartitions   = 6
	DefaultSeed         = 1
	DefaultRate         = 2500
	defaultDrainTimeout = 2 * time.Minute
)

// Options configure a demo run. The zero value is a valid default run.
type Options struct {
	// Brokers are the seed brokers of an existing cluster. Empty (the
	// default): an embedded kfake cluster, gone when Run returns. With
	// brokers, every name (application id, topics) gets a unique run
	// suffix, so runs never collide, and the topics are left in place.
	Brokers []string
	// KafkaOpts are connection options (TLS, SASL) for Brokers.
	KafkaOpts []kgo.Opt
	// Events is how many records to produce. Default DefaultEvents; with
	// Duration set, 0 means no limit (produce until Duration is up).
	Events int
	// Orders is how many distinct orders the traffic has. 0 (the default)
	// means as many as Events needs (about 6.5 events per order). With a
	// fixed count, traffic ends when their lifecycles end, even if that is
	// short of Events.
	Orders int
	// Rate is the produce rate in records per second; 0 is as fast as
	// possible. The zero value means 0: the cmd defaults to DefaultRate,
	// which makes the default run last long enough to watch.
	Rate float64
	// Instances is the number of processor instances. Default 2.
	Instances int
	// Partitions of the topics. Default 6.
	Partitions int32
	// Chaos stops one instance mid-run and starts it again with an empty
	// state directory, so its partitions move to the others and back.
	Chaos bool
	// Duration, when positive, ends the traffic after this long (or at
	// Events, if that comes first). Default 0: traffic ends at Events.
	Duration time.Duration
	// Seed makes the traffic deterministic. Default 1.
	Seed uint64
	// Timers runs the default machine with its timers shortened to
	// seconds (unpaid placed orders are cancelled after 2s, delivered ones
	// completed after 3s, parcels lost after 4s in transit), dates every
	// event when it is sent and abandons a fifth of the orders, so that
	// the instances' clocks fire timers during the run; the demo waits for
	// the last of them before its summary, which lists them.
	Timers bool
	timers *topology.Machine // the machine of Timers, set by Run
	// Stop, when closed, ends the traffic early; the demo then drains and
	// prints its summary as usual. (Cancelling Run's context aborts.)
	Stop <-chan struct{}
	// Out receives the progress and the summary. Default os.Stdout.
	Out io.Writer
	// Terminal redraws a status block in place (ANSI escapes); otherwise
	// progress is a plain line per Interval. Default false.
	Terminal bool
	// Interval is how often progress is shown. Default 200 ms on a
	// terminal, 1 s otherwise.
	Interval time.Duration
	// DrainTimeout bounds the wait for the processors to catch up once the
	// traffic ended. Default 2 minutes.
	DrainTimeout time.Duration
	// Logger receives diagnostics not shown in the progress (franz-go and
	// processor debug lines). Default: discarded.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Events == 0 && o.Duration <= 0 {
		o.Events = DefaultEvents
	}
	if o.Instances == 0 {
		o.Instances = DefaultInstances
	}
	if o.Partitions == 0 {
		o.Partitions = DefaultPartitions
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
		if o.Terminal {
			o.Interval = 200 * time.Millisecond
		}
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = defaultDrainTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// ErrOptions is matched by errors about invalid Options.
var ErrOptions = errors.New("invalid demo options")

func (o Options) validate() error {
	switch {
	case o.Events < 0:
		return fmt.Errorf("%w: Options.Events %d is negative", ErrOptions, o.Events)
	case o.Orders < 0:
		return fmt.Errorf("%w: Options.Orders %d is negative", ErrOptions, o.Orders)
	case o.Rate < 0:
		return fmt.Errorf("%w: Options.Rate %v is negative (0 is as fast as possible)", ErrOptions, o.Rate)
	case o.Instances < 1:
		return fmt.Errorf("%w: Options.Instances %d: at least 1", ErrOptions, o.Instances)
	case o.Instances > 26:
		return fmt.Errorf("%w: Options.Instances %d: at most 26", ErrOptions, o.Instances)
	case o.Partitions < 1:
		return fmt.Errorf("%w: Options.Partitions %d: at least 1", ErrOptions, o.Partitions)
	case o.Chaos && o.Instances < 2:
		return fmt.Errorf("%w: Options.Chaos needs at least 2 instances (another must take over the stopped one's partitions)", ErrOptions)
	case o.Duration < 0:
		return fmt.Errorf("%w: Options.Duration %v is negative", ErrOptions, o.Duration)
	}
	return nil
}

// runNames are the application id and topics of one run.
type runNames struct {
	AppID  string
	Topics processor.Topics
}

// Changelog is the run's changelog topic.
func (n runNames) Changelog() string { return processor.ChangelogTopic(n.AppID) }

// names returns the default names on a private (embedded) cluster, and names
// with a unique run suffix on a shared one.
func names(shared bool) runNames {
	n := runNames{AppID: "orderflow-demo", Topics: processor.DefaultConfig().Topics}
	if !shared {
		return n
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	run := time.Now().UTC().Format("20060102t150405") + "-" + hex.EncodeToString(b[:])
	n.AppID += "-" + run
	for _, t := range []*string{&n.Topics.Events, &n.Topics.Status, &n.Topics.Rejections, &n.Topics.DLQ} {
		*t = "orderflow-demo-" + run + "." + *t
	}
	return n
}

// Run runs the demo and returns its summary. The error is about the run
// itself (no cluster, a processor that failed); whether the outputs add up
// is Summary.OK. Cancelling ctx aborts the run.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	out := newConsole(o.Out, o.Terminal)

	brokers := o.Brokers
	where := "brokers " + fmt.Sprint(brokers)
	if len(brokers) == 0 {
		c, err := kfake.NewCluster(
			kfake.NumBrokers(1),
			kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "1000"}),
		)
		if err != nil {
			return nil, fmt.Errorf("starting the embedded Kafka (kfake): %w", err)
		}
		defer c.Close()
		brokers = c.ListenAddrs()
		where = "embedded Kafka (kfake, " + brokers[0] + ")"
	}
	n := names(len(o.Brokers) > 0)

	dir, err := os.MkdirTemp("", "orderflow-demo-")
	if err != nil {
		return nil, fmt.Errorf("making the state directory: %w", err)
	}
	defer os.RemoveAll(dir)

	// kadm answers ListTopics from the client's metadata cache, which is
	// kept for MetadataMinAge (5 s by default): EnsureTopics would wait that
	// long to see the topics it created.
	admCl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.MetadataMinAge(100 * time.Millisecond),
	}, o.KafkaOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)

	base := processor.DefaultConfig()
	base.Brokers = brokers
	base.KafkaOpts = o.KafkaOpts
	base.AppID = n.AppID
	base.Topics = n.Topics
	base.Partitions = o.Partitions
	base.SessionTimeout = 6 * time.Second
	base.Logger = o.Logger
	if o.Timers {
		if base.Machine, err = timersMachine(); err != nil {
			return nil, err
		}
		o.timers = base.Machine
	}

	out.printf("orderflow demo: %s, %d instances, %d partitions, seed %d\n", where, o.Instances, o.Partitions, o.Seed)
	out.printf("  topics: %s -> %s, %s, %s; changelog %s; group %s\n",
		n.Topics.Events, n.Topics.Status, n.Topics.Rejections, n.Topics.DLQ, n.Changelog(), n.AppID)
	out.printf("  state:  %s (removed at exit)\n", dir)

	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = processor.EnsureTopics(tctx, adm, base)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("creating the topics: %w", err)
	}

	f := newFleet(base, dir, out, o.Logger)
	defer f.stopAll()
	runErr := run(ctx, o, f, adm, n, brokers, out)
	f.stopAll()
	if err := f.err(); err != nil && runErr == nil {
		runErr = err
	}
	out.finish()
	if runErr != nil {
		return nil, runErr
	}

	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s, err := summarize(rctx, brokers, o.KafkaOpts, n)
	if err != nil {
		return nil, fmt.Errorf("reading the output topics: %w", err)
	}
	s.Produced = f.producedCount()
	s.Elapsed = time.Since(start)
	s.Names = n
	s.print(o.Out)
	return s, nil
}

// run is the part of Run between the topics and the summary: instances,
// traffic, chaos, drain.
func run(ctx context.Context, o Options, f *fleet, adm *kadm.Client, n runNames, brokers []string, out *console) error {
	// The instances start together; the group first gives every partition
	// to the first to join, then rebalances: the first rebalance happens
	// before the traffic starts. (Starting them one at a time, each once the
	// previous ones settled, left a partition owned by two instances for
	// over a minute when the third joined an idle group on kfake.)
	for i := range o.Instances {
		if err := f.start(ctx, instanceName(i)); err != nil {
			return err
		}
	}
	if err := f.waitReady(ctx, o.Partitions, time.Minute); err != nil {
		return err
	}
	out.notef("%d instances own the %d partitions: %s", o.Instances, o.Partitions, f.ownership())

	p, err := newProducer(brokers, o, n.Topics.Events)
	if err != nil {
		return err
	}
	defer p.close()
	f.produced = p.acked

	mon := newMonitor(adm, n, f, p, o, out)
	mctx, stopMon := context.WithCancel(ctx)
	monDone := make(chan struct{})
	go func() { defer close(monDone); mon.loop(mctx) }()
	defer func() { stopMon(); <-monDone }()

	var ch *chaos
	if o.Chaos {
		ch = newChaos(f, instanceName(o.Instances-1), o, p)
		chDone := make(chan struct{})
		cctx, stopChaos := context.WithCancel(ctx)
		go func() { defer close(chDone); ch.loop(cctx) }()
		defer func() { stopChaos(); <-chDone }()
	}

	if err := p.run(ctx, o.Stop, f.failed()); err != nil {
		return err
	}
	if err := f.err(); err != nil {
		return err
	}
	out.notef("traffic done: %d records produced in %v", p.acked(), p.elapsed().Round(time.Millisecond))
	if ch != nil {
		if err := ch.wait(ctx, f.failed()); err != nil {
			return err
		}
	}
	if err := mon.drain(ctx, o.DrainTimeout, f.failed()); err != nil {
		return err
	}
	if o.Timers {
		out.notef("all %d records processed; waiting for the abandoned orders' timers", p.acked())
		pending, err := f.waitTimers(ctx, 30*time.Second)
		if err != nil {
			return err
		}
		if pending > 0 {
			out.notef("%d orders still have a pending timer", pending)
		}
	}
	out.notef("all %d records processed; stopping the instances", p.acked())
	return nil
}

func instanceName(i int) string { return string(rune('a' + i)) }
