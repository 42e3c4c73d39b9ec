package processor

import (
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
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
