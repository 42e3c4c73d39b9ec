//go:build unix

package processor

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/partitioner"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/statestore"
	"github.com/orderflow/orderflow/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// processOrders is BenchmarkProcess's workload size: 20,000 orders by
// default, 200,000 for make bench's (go test -bench Process
// -process-orders 200000), where the store is ten times as large.
var processOrders = flag.Int("process-orders", 20000, "orders in BenchmarkProcess's workload")

// processTimers false runs BenchmarkProcess's processor on the default
// machine without its timers (the same workload): the difference is what
// the timers cost per record (go test -bench 'Process$' -process-timers=false).
var processTimers = flag.Bool("process-timers", true, "BenchmarkProcess: false runs the default machine without its timers")

// untimedDefault is the default machine without its timed transitions.
func untimedDefault(b *testing.B) *topology.Machine {
	var keep []string
	for _, l := range strings.Split(string(topology.DefaultYAML()), "\n") {
		if !strings.Contains(l, "after:") {
			keep = append(keep, l)
		}
	}
	m, err := topology.Parse([]byte(strings.Join(keep, "\n")))
	if err != nil || m.HasTimers() {
		b.Fatalf("the default machine without timers: %v", err)
	}
	return m
}

// BenchmarkProcess measures orderflow's own work per input record, the
// part of `make bench`'s at_least_once figure that is not franz-go's or the
// broker's: decoding, loading, applying, encoding, building the output
// records, and each batch's Pebble write (commitStore, and the flushes and
// compactions it causes while the pass runs). One op is a pass over the
// workload (by default 20,000 orders of the default mix, about 132,000
// records, 12 partitions; -process-orders sets the orders) in batches of
// 10,000 records, as one at_least_once thread takes them, into a new store.
// Records go to instantProducer instead of a client. It reports ns/record
// (wall), cpu-ns/record (the process's CPU time, Pebble's background work
// included) and allocs/record.
func BenchmarkProcess(b *testing.B) {
	const partitions, batchRecords = 12, 10000
	orders := *processOrders
	cfg := Config{Brokers: []string{"unused:9092"}, StateDir: b.TempDir(), Guarantee: AtLeastOnce}
	if !*processTimers {
		cfg.Machine = untimedDefault(b)
	}
	b.Logf("machine timers: %v", *processTimers)
	p, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	// The instance started with the topic's count: every record's
	// partition is checked against its key (routing.go).
	p.layout = newLayout(p.cfg.Topics.Events, partitions)
	// The workload's records, by partition (as the events topic holds
	// them): each partition's keys and values in one byte slice, and their
	// offsets in another slice without pointers, so that the garbage
	// collector has nothing to scan there (at 200,000 orders a slice of
	// key and value slices would be about 60 MiB to scan in every cycle);
	// each batch gets new kgo.Records, as from a fetch.
	type packed struct{ at, keyLen, valueLen int32 }
	byPart := make([][]packed, partitions)
	data := make([][]byte, partitions)
	records := 0
	for _, it := range workload.Generate(workload.Options{Orders: orders}) {
		v := it.Malformed
		if v == nil {
			if v, err = p.codec.EncodeEvent(nil, &it.Event); err != nil {
				b.Fatal(err)
			}
		}
		part := partitioner.Murmur2.Partition([]byte(it.Key), partitions) // as producers put them
		byPart[part] = append(byPart[part], packed{int32(len(data[part])), int32(len(it.Key)), int32(len(v))})
		data[part] = append(append(data[part], it.Key...), v...)
		records++
	}
	// fetch returns n records of partition part from its offset from, in
	// new memory as the client's decompression leaves them (and as warm in
	// the CPU's caches).
	fetch := func(part int32, from, n int) []*kgo.Record {
		rs := make([]*kgo.Record, n)
		var buf []byte
		keep := func(v []byte) []byte {
			buf = append(buf, v...)
			return buf[len(buf)-len(v) : len(buf) : len(buf)]
		}
		for i := range rs {
			pr := byPart[part][from+i]
			key := data[part][pr.at : pr.at+pr.keyLen]
			value := data[part][pr.at+pr.keyLen : pr.at+pr.keyLen+pr.valueLen]
			if cap(buf)-len(buf) < len(key)+len(value) {
				buf = make([]byte, 0, 64<<10)
			}
			rs[i] = &kgo.Record{Topic: p.cfg.Topics.Events, Partition: part, Offset: int64(from + i), Key: keep(key), Value: keep(value), Timestamp: time.Now()}
		}
		return rs
	}

	// make bench's process holds its preloaded workload, about 120 MiB
	// that needs no scanning, which paces the garbage collector: hold as
	// much here, or it runs ten times as often as there.
	ballast := make([]byte, 120<<20)
	defer runtime.KeepAlive(ballast)

	var cpu time.Duration
	var mallocs uint64
	var ms runtime.MemStats
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		// As run opens it: with the due-time index when the machine has
		// timers.
		so := statestore.Options{Dir: b.TempDir(), ClosedAt: p.closedAt}
		if p.timers {
			so.DueAt = p.dueAt
		}
		store, err := statestore.Open(so)
		if err != nil {
			b.Fatal(err)
		}
		p.store = store
		known := make([]*knownOrders, partitions)
		censuses := make([]*census, partitions)
		for i := range known {
			known[i], censuses[i] = newKnownOrders(0), newCensus()
		}
		cl := &instantProducer{next: make(map[string]map[int32]int64)}
		mems := [2]*outputMemory{newOutputMemory(), newOutputMemory()}
		var warm overlay
		read := make([]int, partitions) // records of each partition taken
		runtime.GC()

		for n, done := 0, 0; done < records; n++ {
			var fetched [partitions][]*kgo.Record
			for part := range partitions {
				take := min(batchRecords/partitions, len(byPart[part])-read[part])
				fetched[part] = fetch(int32(part), read[part], take)
				read[part] += take
				done += take
			}
			runtime.ReadMemStats(&ms)
			m0, c0 := ms.Mallocs, cpuClock()
			b.StartTimer()

			bt := newBatch(p.changelog, mems[n%2], p.leaves, warm)
			ts := p.cfg.Now()
			for part := range partitions {
				bt.setPartition(int32(part), known[part], censuses[part])
				p.processRecords(cl, bt, fetched[part], ts)
			}
			if bt.abort {
				b.Fatal("batch aborted")
			}
			if err := bt.commitStore(store); err != nil {
				b.Fatal(err)
			}
			warm = bt.overlay

			b.StopTimer()
			cpu += cpuClock() - c0
			runtime.ReadMemStats(&ms)
			mallocs += ms.Mallocs - m0
		}
		if err := store.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	n := float64(b.N) * float64(records)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/record")
	b.ReportMetric(float64(mallocs)/n, "allocs/record")
}

// cpuClock returns the process's user+system CPU time.
func cpuClock() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fireOrders is BenchmarkFireDue's number of due timers.
var fireOrders = flag.Int("fire-orders", 100000, "orders whose timer BenchmarkFireDue fires")

// BenchmarkFireDue measures the processor's clock pass firing many due
// timers at once: -fire-orders (100,000) unpaid orders of the default
// machine, placed a day and more before the clock, in 12 partitions, all of
// them due; one op fires every one of them (cancelled) through fireDue as
// the loop runs it, batch after batch (SweepLimit orders per partition and
// batch), each batch's states written to the store. It reports timers/s
// (wall) and cpu-ns/timer: the index read, the state's load, decode and
// encode, and the two output records of every fired timer.
func BenchmarkFireDue(b *testing.B) {
	const partitions = 12
	orders := *fireOrders
	p, err := New(Config{Brokers: []string{"unused:9092"}, StateDir: b.TempDir(), Guarantee: AtLeastOnce})
	if err != nil {
		b.Fatal(err)
	}
	p.layout = newLayout(p.cfg.Topics.Events, partitions)
	placed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	byPart := make([][]*kgo.Record, partitions)
	for i := range orders {
		id := fmt.Sprintf("unpaid-%07d", i)
		ev := topology.Event{EventID: "e-" + id, OrderID: id, Type: "place_order", OccurredAt: placed.Add(time.Duration(i) * time.Millisecond)}
		v, err := p.codec.EncodeEvent(nil, &ev)
		if err != nil {
			b.Fatal(err)
		}
		part := partitioner.Murmur2.Partition([]byte(id), partitions)
		byPart[part] = append(byPart[part], &kgo.Record{Topic: p.cfg.Topics.Events, Partition: part, Key: []byte(id), Value: v, Offset: int64(len(byPart[part]))})
	}
	var timers, cpu time.Duration
	for range b.N {
		b.StopTimer()
		store, err := statestore.Open(statestore.Options{Dir: b.TempDir(), ClosedAt: p.closedAt, DueAt: p.dueAt})
		if err != nil {
			b.Fatal(err)
		}
		p.store = store
		cl := &instantProducer{next: make(map[string]map[int32]int64)}
		mems := [2]*outputMemory{newOutputMemory(), newOutputMemory()}
		p.mu.Lock()
		p.mu.parts = map[int32]*partition{}
		for part := range partitions {
			p.mu.parts[int32(part)] = &partition{ready: true, known: newKnownOrders(0), census: newCensus()}
		}
		p.mu.Unlock()
		// Place every order (no timer is due before these events).
		bt := newBatch(p.changelog, mems[0], p.leaves, nil)
		for part := range partitions {
			ps := p.mu.parts[int32(part)]
			bt.setPartition(int32(part), ps.known, ps.census)
			p.processRecords(cl, bt, byPart[part], p.cfg.Now())
		}
		if err := bt.commitStore(store); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		c0, w0 := cpuClock(), time.Now()
		b.StartTimer()
		fired := int64(0)
		for n := 1; ; n++ {
			bt := newBatch(p.changelog, mems[n%2], p.leaves, nil)
			behind, err := p.fireDue(context.Background(), cl, 0, bt)
			if err != nil || bt.abort {
				b.Fatalf("fireDue: %v (abort %v)", err, bt.abort)
			}
			if err := bt.commitStore(store); err != nil {
				b.Fatal(err)
			}
			fired += bt.counts.transitions
			if !behind {
				break
			}
		}
		b.StopTimer()
		timers += time.Since(w0)
		cpu += cpuClock() - c0
		if fired != int64(orders) {
			b.Fatalf("fired %d timers, want %d", fired, orders)
		}
		if err := store.Close(); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(orders) * float64(b.N)
	b.ReportMetric(n/timers.Seconds(), "timers/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/timer")
}
