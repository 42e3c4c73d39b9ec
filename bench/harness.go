package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/bench/internal/machine"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/topology"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// harness is one run's shared state.
type harness struct {
	o       Options
	cl      *kgo.Client
	adm     *kadm.Client
	codec   *avro.Codec
	machine *topology.Machine
	work    string       // this run's scratch dir
	plog    *slog.Logger // processors' and stores' logs (logFile, in work)
	logFile *os.File
	enc     *encoded
	input   *preloaded
	rep     *Report
	cpu     *machine.Sampler // CPU of the throughput measurements
	// fastest is the highest rate a ceiling reached in the warm-up (0
	// without one), which sizes the throughput rounds' input.
	fastest float64
	// leftovers are the measurements' topics, deleted when the run ends.
	leftovers []string
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.o.Log, "%s bench: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// name returns a topic, group or app id unique to this run.
func (h *harness) name(s string) string { return h.o.TopicPrefix + "-" + s }

// Run runs every measurement once and returns the report. Its topics,
// under Options.TopicPrefix, are deleted when it ends.
func Run(ctx context.Context, o Options) (*Report, error) {
	h, err := newHarness(ctx, o)
	if err != nil {
		return nil, err
	}
	defer h.close()
	o = h.o
	steps := []step{
		{"preload", h.preload, true},
		{"warmup", h.warmup, o.runs("warmup")},
		{"throughput", h.throughputs, o.runs("ceiling") || o.runs("eos") || o.runs("alos")},
		{"scaling", h.scaling, o.runs("scaling")},
		{"latency", h.latency, o.runs("latency")},
		{"restore", h.restore, o.runs("restore")},
		{"rss", h.rss, o.runs("rss")},
	}
	if err := h.runSteps(ctx, "bench", steps); err != nil {
		return h.rep, err
	}
	h.rep.finish()
	return h.rep, nil
}

// step is one step of a run: a measurement, or the work before them.
type step struct {
	name string
	fn   func(context.Context) error
	runs bool
}

// runSteps runs the steps that run, in order, each within the step
// timeout; errors name the run (what) and the step.
func (h *harness) runSteps(ctx context.Context, what string, steps []step) error {
	for _, s := range steps {
		if !s.runs {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		runtime.GC()
		timeout := h.o.timeout
		if s.name == "latency" {
			// Some 40 runs, each with its start-up and end.
			timeout += time.Duration(len(curveLoads)*len(h.curveSettings())*2) * (h.o.LatencyDuration + 30*time.Second)
		}
		sctx, cancel := context.WithTimeout(ctx, timeout)
		start := time.Now()
		err := s.fn(sctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", what, s.name, err)
		}
		h.logf("%s done in %v", s.name, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// newHarness makes the run's work dir, processor log, admin client and CPU
// sampler, for o with its defaults.
func newHarness(ctx context.Context, o Options) (*harness, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	h := &harness{o: o, machine: topology.Default(), rep: newReport(o)}
	var err error
	if h.codec, err = avro.NewCodec(); err != nil {
		return nil, err
	}
	if h.work, err = filepath.Abs(filepath.Join(o.WorkDir, o.TopicPrefix)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(h.work, 0o755); err != nil {
		return nil, err
	}
	if h.logFile, err = os.Create(filepath.Join(h.work, "processor.log")); err != nil {
		return nil, err
	}
	h.plog = slog.New(slog.NewTextHandler(h.logFile, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// A short metadata age: kadm answers ListTopics from the cached
	// metadata, which would keep a new topic unknown for 5 s.
	if h.cl, err = kgo.NewClient(kgo.SeedBrokers(o.Brokers...), kgo.MetadataMinAge(50*time.Millisecond)); err != nil {
		h.logFile.Close()
		return nil, err
	}
	h.adm = kadm.NewClient(h.cl)
	h.logf("work dir %s; topics prefixed %s; machine: %d cores, %s, load %v", h.work, o.TopicPrefix,
		h.rep.Machine.Cores, h.rep.Machine.CPU, h.rep.LoadBefore)
	h.cpu = machine.NewSampler(ctx, h.brokerAddrs(ctx))
	h.logf("cpu: %s", h.cpu)
	h.rep.Machine.BrokerJVM = h.cpu.HeapFlags()
	return h, nil
}

// close deletes the run's topics and closes its clients.
func (h *harness) close() {
	if h.input != nil {
		h.deleteAtEnd(h.input.topic)
	}
	h.deleteLeftovers()
	h.cl.Close()
	h.logFile.Close()
}

func (h *harness) preload(ctx context.Context) error {
	start := time.Now()
	enc, err := encodeWorkload(workload.Options{Seed: h.o.seed, Orders: h.o.orders}, h.codec, h.machine, time.Now())
	if err != nil {
		return err
	}
	h.enc = enc
	h.logf("workload: %d records, %d orders, %.1f MiB, generated in %v", enc.len(), enc.orders,
		float64(enc.bytes)/(1<<20), time.Since(start).Round(time.Millisecond))
	topic := h.name("events")
	if err := h.createTopic(ctx, topic, nil); err != nil {
		return err
	}
	start = time.Now()
	if h.input, err = preload(ctx, h.o.Brokers, topic, h.o.partitions, enc); err != nil {
		return err
	}
	took := time.Since(start)
	h.logf("preloaded %d records into %s in %v", h.input.records, topic, took.Round(time.Millisecond))
	h.rep.Workload = WorkloadInfo{
		Seed: h.o.seed, Orders: enc.orders, Records: h.input.records, Bytes: enc.bytes, Partitions: h.o.partitions,
		Accepted: enc.expect.transitions, Rejected: enc.expect.rejections, DLQ: enc.expect.dlq,
		StoreOrders: h.o.storeOrders, CommitInterval: h.o.commitInterval.String(), MaxBatchRecords: h.o.maxBatchRecords, Threads: h.o.Threads, Rounds: h.o.Rounds,
		PreloadSeconds: took.Seconds(),
	}
	return nil
}

// settle runs right before each measurement (not before the unmeasured
// work a step does first, which dirties pages again): it writes the page
// cache's dirty pages back to disk (sync(2)) and collects the bench
// process's garbage. Each measurement writes hundreds of MiB into the
// broker's logs, which the kernel otherwise writes back in bursts, inside
// whichever measurement runs then.
func (h *harness) settle() {
	start := time.Now()
	syscall.Sync()
	if d := time.Since(start); d > time.Second {
		h.logf("settle: writing the page cache back took %v", d.Round(time.Millisecond))
	}
	runtime.GC()
}

// brokerAddrs are the seed brokers and every broker the cluster's metadata
// lists (host:port), where the CPU sampler looks for the broker processes.
func (h *harness) brokerAddrs(ctx context.Context) []string {
	addrs := slices.Clone(h.o.Brokers)
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if m, err := h.adm.BrokerMetadata(mctx); err == nil {
		for _, b := range m.Brokers {
			a := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
			if !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
	} else {
		h.logf("cpu: broker metadata: %v (looking for the seed brokers only)", err)
	}
	return addrs
}

// createTopic creates a topic with the run's partition count.
func (h *harness) createTopic(ctx context.Context, topic string, configs map[string]*string) error {
	resp, err := h.adm.CreateTopic(ctx, h.o.partitions, -1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	return h.waitTopic(ctx, topic)
}

// waitTopic waits until every partition of topic has a leader.
func (h *harness) waitTopic(ctx context.Context, topic string) error {
	for {
		td, err := h.adm.ListTopics(ctx, topic)
		if err == nil {
			d := td[topic]
			ready := d.Err == nil && int32(len(d.Partitions)) == h.o.partitions
			for _, p := range d.Partitions {
				ready = ready && p.Err == nil && p.Leader >= 0
			}
			if ready {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s not ready: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// deleteAtEnd marks a measurement's topics for deletion when the run
// ends (deleteLeftovers). Deleting them at once would put the broker's
// work of deleting them into a later measurement: the broker removes a
// deleted topic's files log.segment.delete.delay.ms (60 s by default)
// later.
func (h *harness) deleteAtEnd(topics ...string) {
	h.leftovers = append(h.leftovers, topics...)
}

// deleteLeftovers deletes the topics deleteAtEnd was given; failures
// are only logged.
func (h *harness) deleteLeftovers() {
	if len(h.leftovers) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.adm.DeleteTopics(ctx, h.leftovers...); err != nil {
		h.logf("deleting topics %v: %v", h.leftovers, err)
	}
	h.leftovers = nil
}
