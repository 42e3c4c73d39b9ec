package statestore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchValue returns a value of about n bytes that compresses like an
// encoded state (some structure, some entropy).
func benchValue(rng *rand.Rand, seq, n int) []byte {
	v := make([]byte, 0, n)
	v = append(v, "open:"...)
	v = strconv.AppendInt(v, int64(seq), 10)
	for len(v) < n {
		v = append(v, "abcdefghijklmnop"[rng.IntN(16)])
	}
	return v
}

// BenchmarkBatchCommit measures Pebble batch commits of 500 states over 4
// partitions (one op = one batch of 500 states and 4 offsets, NoSync) on
// disk, with and without the read of each state before its write that the
// processor does.
func BenchmarkBatchCommit(b *testing.B) {
	const (
		perBatch = 500
		orders   = 200_000
		parts    = 4
	)
	for _, readFirst := range []bool{false, true} {
		name := "put"
		if readFirst {
			name = "get-put"
		}
		b.Run(name, func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir(), ClosedAt: testClosedAt, Logger: testLogger(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			rng := rand.New(rand.NewPCG(1, 1))
			// Preload so reads and writes hit a populated store.
			for i := 0; i < orders; i += 10_000 {
				bt := s.NewBatch()
				for j := i; j < i+10_000; j++ {
					must(b, bt.Put(int32(j%parts), []byte(fmt.Sprintf("order-%08d", j)), benchValue(rng, j, 200)))
				}
				must(b, bt.Commit())
			}
			ids := make([][]byte, orders)
			for i := range ids {
				ids[i] = []byte(fmt.Sprintf("order-%08d", i))
			}
			vals := make([][]byte, 64)
			for i := range vals {
				vals[i] = benchValue(rng, i, 200)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for n := 0; n < b.N; n++ {
				bt := s.NewBatch()
				for i := 0; i < perBatch; i++ {
					k := rng.IntN(orders)
					p := int32(k % parts)
					if readFirst {
						if _, _, err := bt.Get(p, ids[k]); err != nil {
							b.Fatal(err)
						}
					}
					if err := bt.Put(p, ids[k], vals[i%len(vals)]); err != nil {
						b.Fatal(err)
					}
				}
				for p := int32(0); p < parts; p++ {
					must(b, bt.SetChangelogOffset(p, int64(n)))
				}
				if err := bt.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start)
			b.ReportMetric(float64(b.N*perBatch)/el.Seconds(), "states/s")
			b.ReportMetric(float64(b.N)/el.Seconds(), "batches/s")
			m, err := s.Metrics()
			must(b, err)
			b.Logf("pebble: %d compactions, %d write stalls (%v), disk %d MiB, read amp %d",
				m.Compactions, m.WriteStalls, m.WriteStallTime, m.DiskSpaceUsage>>20, m.ReadAmp)
		})
	}
}

// BenchmarkRestore preloads a changelog partition on the real broker
// (STATESTORE_BENCH_RECORDS records, default 1,000,000, random 33-byte keys,
// ~200-byte values, in transactions of 10,000) and restores it into an empty store on disk; it
// reports records/s. Run it with the broker beside it:
//
//	deploy/kafka/with-broker.sh go test -run '^$' -bench Restore -benchtime 3x ./statestore/
func BenchmarkRestore(b *testing.B) {
	c := kafkatest.Real(b)
	n := 1_000_000
	if v := os.Getenv("STATESTORE_BENCH_RECORDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("STATESTORE_BENCH_RECORDS: %v", err)
		}
	}
	topic := kafkatest.Name(b, "bench-changelog")
	c.CreateTopic(b, topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cl := c.Client(b,
		kgo.TransactionalID(kafkatest.Name(b, "bench-txn")),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerLinger(10*time.Millisecond),
	)
	rng := rand.New(rand.NewPCG(2, 2))
	start := time.Now()
	for i := 0; i < n; {
		must(b, cl.BeginTransaction())
		for j := 0; j < 10_000 && i < n; j, i = j+1, i+1 {
			// Order IDs are UUID-like: restore writes them in random
			// key order, as a real changelog does.
			id := fmt.Sprintf("%016x-%016x", rng.Uint64(), rng.Uint64())
			cl.Produce(ctx, &kgo.Record{Key: []byte(id), Value: benchValue(rng, i, 200)},
				func(_ *kgo.Record, err error) {
					if err != nil {
						b.Errorf("produce: %v", err)
					}
				})
		}
		must(b, cl.Flush(ctx))
		must(b, cl.EndTransaction(ctx, kgo.TryCommit))
	}
	b.Logf("preloaded %d records in %v", n, time.Since(start).Round(time.Millisecond))

	b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
		var total int64
		var elapsed time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			s, err := Open(Options{Dir: b.TempDir(), FS: vfs.Default, ClosedAt: testClosedAt, Logger: testLogger(b)})
			must(b, err)
			b.StartTimer()
			t0 := time.Now()
			res, err := s.Restore(ctx, 0, RestoreOptions{Topic: topic, ClientOpts: []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}})
			elapsed += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			m, _ := s.Metrics()
			b.Logf("restored %d records in %v: %d write stalls (%v), %d compactions, disk %d MiB",
				res.Records, time.Since(t0).Round(time.Millisecond), m.WriteStalls, m.WriteStallTime, m.Compactions, m.DiskSpaceUsage>>20)
			if res.Records != int64(n) {
				b.Fatalf("restored %d records, want %d", res.Records, n)
			}
			total += res.Records
			b.StopTimer()
			must(b, s.Close())
			b.StartTimer()
		}
		b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
		b.ReportMetric(0, "ns/op")
	})
}
