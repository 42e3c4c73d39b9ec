package bench

import (
	"context"
	"fmt"
	"math"
	"runtime/metrics"
	"slices"
	"strings"
	"time"

	"github.com/orderflow/orderflow/bench/internal/machine"
	"github.com/orderflow/orderflow/processor"
	"github.com/prometheus/client_golang/prometheus"
)

// curveSetting is one configuration of the latency curve, which orderflow
// and the ceiling both run.
type curveSetting struct {
	Name           string              `json:"name"`
	Guarantee      processor.Guarantee `json:"guarantee"`
	CommitInterval time.Duration       `json:"commit_interval"`
	EndIdle        bool                `json:"end_idle_batches"`
}

// LowLatencyCommitInterval is the commit interval of the low-latency
// settings, with Config.EndIdleBatches: an upper bound on a batch under
// steady load, where the input is never idle.
const LowLatencyCommitInterval = 20 * time.Millisecond

// curveSettings are the curve's settings: exactly_once at four commit
// intervals, at_least_once at the default one, and the low-latency
// settings of each guarantee (README's "Latency"). Tiny mode runs the
// default and the low-latency ones.
func (h *harness) curveSettings() []curveSetting {
	eos := func(ci time.Duration) curveSetting {
		return curveSetting{Name: fmt.Sprintf("eos-%dms", ci.Milliseconds()), Guarantee: processor.ExactlyOnce, CommitInterval: ci}
	}
	ll := []curveSetting{
		{Name: "eos-low-latency", Guarantee: processor.ExactlyOnce, CommitInterval: LowLatencyCommitInterval, EndIdle: true},
		{Name: "alos-low-latency", Guarantee: processor.AtLeastOnce, CommitInterval: LowLatencyCommitInterval, EndIdle: true},
	}
	alos := curveSetting{Name: "alos", Guarantee: processor.AtLeastOnce, CommitInterval: h.o.commitInterval}
	all := append([]curveSetting{eos(10 * time.Millisecond), eos(20 * time.Millisecond), eos(50 * time.Millisecond), h.defaultSetting(), alos}, ll...)
	if h.o.Tiny {
		all = append([]curveSetting{h.defaultSetting()}, ll...)
	}
	if len(h.o.Curve) > 0 {
		all = slices.DeleteFunc(all, func(s curveSetting) bool { return !slices.Contains(h.o.Curve, s.Name) })
	}
	return all
}

// defaultSetting is orderflow's default: exactly_once at the harness's
// commit interval (processor's default).
func (h *harness) defaultSetting() curveSetting {
	return curveSetting{Name: fmt.Sprintf("eos-%dms", h.o.commitInterval.Milliseconds()), Guarantee: processor.ExactlyOnce, CommitInterval: h.o.commitInterval}
}

// curveLoads are the curve's loads, as shares of the transactional
// ceiling's median rate: fixed relative to the ceiling, so that they do
// not move when orderflow gets faster.
var curveLoads = []float64{0.10, 0.30, 0.50}

// CurvePoint is one point of the latency curve: one setting at one load,
// orderflow's and the ceiling's end-to-end latency.
type CurvePoint struct {
	Setting   curveSetting  `json:"setting"`
	Load      float64       `json:"load"` // share of the transactional ceiling's median rate
	Rate      float64       `json:"rate"` // records/s produced
	Orderflow LatencyStats  `json:"orderflow"`
	Ceiling   LatencyStats  `json:"ceiling"`
	Breakdown *Breakdown    `json:"breakdown,omitempty"`
	Uptime    [3]float64    `json:"load_average"` // when the point ended
	Took      time.Duration `json:"took"`
}

// LatencyStats are one program's end-to-end latencies at a point, in ms.
type LatencyStats struct {
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	P999    float64 `json:"p999_ms"`
	Max     float64 `json:"max_ms"`
	Mean    float64 `json:"mean_ms"`
	Samples int     `json:"samples"`
	// GCPauses and GCPauseMax are the bench process's stop-the-world GC
	// pauses after the warm-up (the process runs the program measured).
	GCPauses   uint64  `json:"gc_pauses"`
	GCPauseMax float64 `json:"gc_pause_max_ms"`
}

func latencyStats(r latencyResult) LatencyStats {
	return LatencyStats{P50: ms(r.p50), P99: ms(r.p99), P999: ms(r.p999), Max: ms(r.max), Mean: ms(r.mean), Samples: r.samples,
		GCPauses: r.gc.count, GCPauseMax: r.gc.max * 1000}
}

// Breakdown is where orderflow's milliseconds went at a point, from its
// metrics after the warm-up: means and p99s (the histograms' bucket
// bounds) in ms.
type Breakdown struct {
	// Fetch: from the timestamp of the first record of each partition's
	// fetched records to when orderflow takes them up (the input
	// producer's linger and request, the fetch, and the wait in the
	// client's buffer while the last batch ends).
	Fetch Quantiles `json:"fetch"`
	// Fill, Flush, End, Store: a batch's phases (processor's
	// batch_phase_seconds): processing and waiting for the batch to end,
	// until the broker has its records, ending the transaction (or
	// committing the offsets), writing the store.
	Fill  Quantiles `json:"fill"`
	Flush Quantiles `json:"flush"`
	End   Quantiles `json:"end"`
	Store Quantiles `json:"store"`
	// Committed: a record's timestamp to its batch's commit (processor's
	// end_to_end_latency_seconds). The reader's mean end-to-end latency
	// less Committed's mean is the time from the commit to the reader:
	// the markers' writing, the last stable offset moving and the read.
	Committed       Quantiles `json:"committed"`
	AfterCommitMean float64   `json:"after_commit_mean_ms"`
	Batches         uint64    `json:"batches"`
	RecordsPerBatch float64   `json:"records_per_batch"`
}

// Quantiles are a histogram's mean and p99, in ms.
type Quantiles struct {
	Mean float64 `json:"mean_ms"`
	P99  float64 `json:"p99_ms"`
}

func (q Quantiles) String() string { return fmt.Sprintf("%.1f/%.0f", q.Mean, q.P99) }

// latency runs the latency curve: every setting at every load, each
// orderflow run beside the ceiling's with the same setting; the default
// setting at half the ceiling's rate gives the latency figures.
func (h *harness) latency(ctx context.Context) error {
	ce, ok := h.rep.throughputs["ceiling_eos"]
	if !ok {
		return fmt.Errorf("needs the transactional ceiling's throughput (its median rate sets the loads)")
	}
	settings := h.curveSettings()
	h.logf("latency curve: %d settings at %v of the transactional ceiling's median rate %.0f/s, %v each (the first %v left out)",
		len(settings), curveLoads, ce.rate, h.o.LatencyDuration, h.o.LatencyWarmup)
	for _, load := range curveLoads {
		rate := load * ce.rate
		if h.o.Tiny {
			// Keep the tiny run small: slow down to the rate that
			// produces the tiny workload in three warm-ups. The tiny mode
			// checks that the harness works, not the figures.
			rate = min(rate, float64(h.enc.len())/(3*h.o.LatencyWarmup.Seconds()))
		}
		in, err := h.curveInput(rate)
		if err != nil {
			return err
		}
		for _, s := range settings {
			start := time.Now()
			pt := CurvePoint{Setting: s, Load: load}
			for _, target := range []string{"ceiling", "orderflow"} {
				h.settle()
				name := fmt.Sprintf("latency-%s-%s-%02.0f", target, s.Name, 100*load)
				r, err := h.latencyOf(ctx, name, target, s, in, rate, h.o.LatencyWarmup)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				h.logf("%s at %.0f/s: p50 %v p99 %v p999 %v max %v (%d samples); %s; %s", name, r.rate,
					r.p50.Round(time.Millisecond/10), r.p99.Round(time.Millisecond/10), r.p999.Round(time.Millisecond/10),
					r.max.Round(time.Millisecond), r.samples, r.cpu, r.batches)
				if target == "ceiling" {
					pt.Ceiling = latencyStats(r)
				} else {
					pt.Orderflow, pt.Rate, pt.Breakdown = latencyStats(r), r.rate, breakdownOf(r)
				}
				if s == h.defaultSetting() && load == 0.50 {
					h.rep.setLatency(target, r)
				}
			}
			pt.Took = time.Since(start)
			pt.Uptime = machine.LoadAvg()
			h.rep.Curve = append(h.rep.Curve, pt)
		}
	}
	return nil
}

// curveInput is the input of the curve's runs at rate: the workload, as
// much of it as LatencyDuration takes, more than once with new order ids
// in each pass if it is shorter.
func (h *harness) curveInput(rate float64) (*latencyInput, error) {
	n := int(rate * h.o.LatencyDuration.Seconds())
	if most := maxLatencyPasses * h.enc.len(); n > most {
		h.logf("latency: %d records at %.0f/s would take %d passes over the workload; producing %d passes (%d records)", n, rate, n/h.enc.len()+1, maxLatencyPasses, most)
		n = most
	}
	if time.Duration(float64(n)/rate*float64(time.Second)) <= h.o.LatencyWarmup {
		return nil, fmt.Errorf("%d records at %.0f/s last no longer than the warm-up %v", n, rate, h.o.LatencyWarmup)
	}
	return newLatencyInput(h.enc, n), nil
}

// breakdownOf reads where orderflow's time went off its histograms.
func breakdownOf(r latencyResult) *Breakdown {
	hs := r.breakdown
	if hs == nil {
		return nil
	}
	b := &Breakdown{
		Fetch:     hs.quantiles("orderflow_fetch_delay_seconds"),
		Fill:      hs.quantiles(`orderflow_batch_phase_seconds{phase="fill"}`),
		Flush:     hs.quantiles(`orderflow_batch_phase_seconds{phase="flush"}`),
		End:       hs.quantiles(`orderflow_batch_phase_seconds{phase="end"}`),
		Store:     hs.quantiles(`orderflow_batch_phase_seconds{phase="store"}`),
		Committed: hs.quantiles("orderflow_end_to_end_latency_seconds"),
	}
	b.AfterCommitMean = ms(r.mean) - b.Committed.Mean
	if recs := hs["orderflow_batch_records"]; recs.count > 0 {
		b.Batches, b.RecordsPerBatch = recs.count, recs.sum/float64(recs.count)
	}
	return b
}

// histogram is a Prometheus histogram's state: cumulative bucket counts by
// upper bound.
type histogram struct {
	count   uint64
	sum     float64
	bounds  []float64
	buckets []uint64 // cumulative
}

// histograms are a registry's histograms by name, with their labels in
// braces (`name{label="value"}`).
type histograms map[string]histogram

// gatherHistograms reads every histogram of g.
func gatherHistograms(g prometheus.Gatherer) histograms {
	mfs, err := g.Gather()
	if err != nil {
		return histograms{}
	}
	out := histograms{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			hist := m.GetHistogram()
			if hist == nil {
				continue
			}
			name := mf.GetName()
			if ls := m.GetLabel(); len(ls) > 0 {
				parts := make([]string, len(ls))
				for i, l := range ls {
					parts[i] = fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
				}
				name += "{" + strings.Join(parts, ",") + "}"
			}
			h := histogram{count: hist.GetSampleCount(), sum: hist.GetSampleSum()}
			for _, b := range hist.GetBucket() {
				h.bounds = append(h.bounds, b.GetUpperBound())
				h.buckets = append(h.buckets, b.GetCumulativeCount())
			}
			out[name] = h
		}
	}
	return out
}

// sub returns hs less an earlier snapshot of the same histograms.
func (hs histograms) sub(before histograms) histograms {
	out := histograms{}
	for name, h := range hs {
		b, ok := before[name]
		if !ok || len(b.buckets) != len(h.buckets) {
			out[name] = h
			continue
		}
		d := histogram{count: h.count - b.count, sum: h.sum - b.sum, bounds: h.bounds, buckets: make([]uint64, len(h.buckets))}
		for i := range h.buckets {
			d.buckets[i] = h.buckets[i] - b.buckets[i]
		}
		out[name] = d
	}
	return out
}

// quantiles returns the mean and the p99 (the upper bound of the bucket
// holding it; the last bound if it is past them) of histogram name, in ms.
func (hs histograms) quantiles(name string) Quantiles {
	h, ok := hs[name]
	if !ok || h.count == 0 {
		return Quantiles{}
	}
	q := Quantiles{Mean: 1000 * h.sum / float64(h.count)}
	want := uint64(math.Ceil(0.99 * float64(h.count)))
	q.P99 = math.Inf(1)
	for i, c := range h.buckets {
		if c >= want {
			q.P99 = 1000 * h.bounds[i]
			break
		}
	}
	if math.IsInf(q.P99, 1) && len(h.bounds) > 0 {
		q.P99 = 1000 * h.bounds[len(h.bounds)-1]
	}
	return q
}

// gcPauses counts the process's stop-the-world GC pauses.
type gcPauses struct {
	count uint64
	max   float64 // seconds: the upper bound of the longest pause's bucket
	hist  *metrics.Float64Histogram
}

const gcPauseMetric = "/sched/pauses/total/gc:seconds"

func readGCPauses() gcPauses {
	s := []metrics.Sample{{Name: gcPauseMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return gcPauses{}
	}
	h := s[0].Value.Float64Histogram()
	return gcPauses{hist: &metrics.Float64Histogram{Counts: slices.Clone(h.Counts), Buckets: h.Buckets}}
}

// sub returns the pauses since an earlier reading.
func (g gcPauses) sub(before gcPauses) gcPauses {
	if g.hist == nil {
		return gcPauses{}
	}
	out := gcPauses{}
	for i, c := range g.hist.Counts {
		if before.hist != nil && i < len(before.hist.Counts) {
			c -= before.hist.Counts[i]
		}
		if c > 0 {
			out.count += c
			out.max = g.hist.Buckets[i+1]
		}
	}
	return out
}
