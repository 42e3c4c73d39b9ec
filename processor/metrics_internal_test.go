package processor

import (
	"context"
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestBatchHistogram checks that batchHistogram gives the count, sum and
// buckets a prometheus.Histogram with the same buckets gives for the same
// latencies: on and between the bounds, beyond the last, zero, and a
// timestamp after now.
func TestBatchHistogram(t *testing.T) {
	opts := prometheus.HistogramOpts{Name: "h", Help: "h", Buckets: prometheus.ExponentialBuckets(0.001, 2, 18)}
	got, want := newBatchHistogram(opts), prometheus.NewHistogram(opts)
	const now = int64(1_800_000_000_000)
	var ts []int64
	for _, d := range []int64{0, 1, 2, 3, 4, 5, 7, 8, 9, 100, 1000, 1023, 1024, 1025, 65536, 131072, 131073, 10_000_000, -5} {
		for range d%3 + 1 { // some values more than once
			ts = append(ts, now-d)
			want.Observe(float64(max(d, 0)) / 1000)
		}
	}
	got.observeLatencies(now, ts[:7])
	got.observeLatencies(now, ts[7:]) // in two batches
	got.observeLatencies(now, nil)

	read := func(c prometheus.Collector) *dto.Histogram {
		ch := make(chan prometheus.Metric, 1)
		c.Collect(ch)
		var m dto.Metric
		if err := (<-ch).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.Histogram
	}
	g, w := read(got), read(want)
	if g.GetSampleCount() != w.GetSampleCount() || math.Abs(g.GetSampleSum()-w.GetSampleSum()) > 1e-9 {
		t.Errorf("count %d sum %v, want %d %v", g.GetSampleCount(), g.GetSampleSum(), w.GetSampleCount(), w.GetSampleSum())
	}
	if len(g.Bucket) != len(w.Bucket) {
		t.Fatalf("%d buckets, want %d", len(g.Bucket), len(w.Bucket))
	}
	for i := range g.Bucket {
		if g.Bucket[i].GetUpperBound() != w.Bucket[i].GetUpperBound() || g.Bucket[i].GetCumulativeCount() != w.Bucket[i].GetCumulativeCount() {
			t.Errorf("bucket %d: le %v count %d, want le %v count %d", i,
				g.Bucket[i].GetUpperBound(), g.Bucket[i].GetCumulativeCount(), w.Bucket[i].GetUpperBound(), w.Bucket[i].GetCumulativeCount())
		}
	}
}

// TestKafkaMetricsAcrossClients makes, uses and closes clients one after
// another with the hooks each session's client gets, as sessions restart
// after a failed batch, and produces with each. The client reports
// produced batches to its hooks from goroutines that can outlive Close; a
// kprom shared by one client and the next raced with the next one's
// OnNewClient (the race detector fails this test then). It also checks
// that each client's metrics are registered while it is open.
func TestKafkaMetricsAcrossClients(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := &metrics{reg: prometheus.NewRegistry()}
	ctx := context.Background()
	for i := range 30 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("t"),
			kgo.WithHooks(m.kafkaHooks()))
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			cl.Produce(ctx, &kgo.Record{Value: []byte("v")}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		families, err := m.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range families {
			found = found || f.GetName() == MetricsNamespace+"_kafka_connects_total"
		}
		if !found {
			t.Fatalf("client %d: %s_kafka_connects_total not registered", i, MetricsNamespace)
		}
		cl.Close()
	}
}

// TestLatencyBuckets checks that the latency histograms can tell the
// milliseconds apart where low-latency settings aim: bounds at most 1 ms
// apart up to 10 ms and at most 5 ms apart up to 50 ms, ascending, and
// reaching a minute.
func TestLatencyBuckets(t *testing.T) {
	prev := 0.0
	for _, b := range latencyBuckets {
		gap := b - prev
		switch {
		case b <= prev:
			t.Fatalf("bounds not ascending at %v", b)
		case b <= 0.010 && gap > 0.001+1e-12:
			t.Errorf("bound %v is %v past the last: want at most 1 ms up to 10 ms", b, gap)
		case b <= 0.050 && gap > 0.005+1e-12:
			t.Errorf("bound %v is %v past the last: want at most 5 ms up to 50 ms", b, gap)
		}
		prev = b
	}
	if prev < 60 {
		t.Errorf("the last bound is %v s, want a minute at least", prev)
	}
	m := newMetrics(&Processor{})
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == MetricsNamespace+"_end_to_end_latency_seconds" {
			if n := len(mf.GetMetric()[0].GetHistogram().GetBucket()); n != len(latencyBuckets) {
				t.Fatalf("end_to_end_latency_seconds has %d buckets, want the %d latency buckets", n, len(latencyBuckets))
			}
			return
		}
	}
	t.Fatal("no end_to_end_latency_seconds")
}
