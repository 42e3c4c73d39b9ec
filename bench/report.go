package bench

import (
	"cmp"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow/bench/internal/machine"
)

// method is the report's last section, how each figure is measured.
//
//go:embed method.md
var method string

// Report is the result of one harness run.
type Report struct {
	Date       time.Time    `json:"date"`
	Tiny       bool         `json:"tiny"`
	Machine    Machine      `json:"machine"`
	LoadBefore [3]float64   `json:"load_before"` // /proc/loadavg (1, 5, 15 min) at the start
	LoadAfter  [3]float64   `json:"load_after"`  // and at the end
	Workload   WorkloadInfo `json:"workload"`
	// Warmup are the broker warm-up's passes, before any measurement.
	Warmup  []WarmupPass `json:"warmup"`
	Figures []Figure     `json:"figures"`
	// Checks are the harness's consistency checks (counts as expected)
	// and anything odd it noticed.
	Checks []string `json:"checks"`
	// Curve is the latency curve: every setting at every load.
	Curve []CurvePoint `json:"curve"`

	commitInterval time.Duration
	throughputs    map[string]throughput // each figure's median round
	paired         map[string]float64    // notePaired's median ratios
	chart          string                // the curve's PNG, beside the report (WriteFiles)
	figures        map[string]*Figure
}

// Machine describes where the run ran.
type Machine struct {
	Host         string  `json:"host"`
	CPU          string  `json:"cpu"`
	Cores        int     `json:"cores"`
	MemoryGiB    float64 `json:"memory_gib"`
	OS           string  `json:"os"`
	Go           string  `json:"go"`
	KafkaVersion string  `json:"kafka_version"`
	// BrokerJVM are the local broker JVM's heap flags (-Xms/-Xmx), when
	// the CPU sampler found its process.
	BrokerJVM string `json:"broker_jvm,omitempty"`
}

// WorkloadInfo describes the preloaded input.
type WorkloadInfo struct {
	Seed            uint64 `json:"seed"`
	Orders          int    `json:"orders"`
	Records         int64  `json:"records"`
	Bytes           int64  `json:"bytes"`
	Partitions      int32  `json:"partitions"`
	Accepted        int64  `json:"accepted"`
	Rejected        int64  `json:"rejected"`
	DLQ             int64  `json:"dlq"`
	StoreOrders     int    `json:"store_orders"`
	CommitInterval  string `json:"commit_interval"`
	MaxBatchRecords int    `json:"max_batch_records"`
	Threads         int    `json:"threads"`
	Rounds          int    `json:"rounds"`
	// RoundRecords is the input of each throughput round, when it is not
	// the workload once (the rounds last minRoundSeconds at least).
	RoundRecords   int64   `json:"round_records,omitempty"`
	PreloadSeconds float64 `json:"preload_seconds"`
}

// Figure is one measured figure, as a ratio of its ceiling where it has
// one, and whether it meets its target where it has one.
type Figure struct {
	Key   string  `json:"key"`
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Baseline names the figure Ratio is taken against (a ceiling, or for
	// peak RSS the target); BaselineValue is its value.
	Baseline      string  `json:"baseline,omitempty"`
	BaselineValue float64 `json:"baseline_value,omitempty"`
	Ratio         float64 `json:"ratio,omitempty"`
	Target        string  `json:"target,omitempty"`
	Met           *bool   `json:"met,omitempty"`
	Note          string  `json:"note,omitempty"`
	// CPU is where the CPU went during a throughput figure's window (the
	// best round's).
	CPU *machine.CPUUse `json:"cpu,omitempty"`
}

// figureKeys are every figure of a complete report, in report order.
var figureKeys = []string{
	"ceiling_eos", "ceiling_plain", "orderflow_eos", "orderflow_alos",
	"scaling_1", "scaling_2", "scaling_4",
	"latency_rate", "latency_ceiling_p50", "latency_ceiling_p99", "latency_ceiling_p999",
	"latency_p50", "latency_p99", "latency_p999",
	"lowlat_eos_p99_10", "lowlat_alos_p99_10", "lowlat_eos_p99_30",
	"restore_ceiling", "restore", "restore_seconds",
	"rss_peak", "rss_after_restore", "rss_child_restore_seconds",
}

func newReport(o Options) *Report {
	r := &Report{
		Date:           time.Now(),
		Tiny:           o.Tiny,
		Machine:        machineInfo(o.KafkaVersion),
		LoadBefore:     machine.LoadAvg(),
		commitInterval: o.commitInterval,
		throughputs:    map[string]throughput{},
		paired:         map[string]float64{},
		figures:        map[string]*Figure{},
	}
	return r
}

func (r *Report) set(f Figure) { r.figures[f.Key] = &f }

// lowerMiddle is the median of sorted, a sorted non-empty slice: its lower
// middle element for an even count.
func lowerMiddle[T any](sorted []T) T { return sorted[(len(sorted)-1)/2] }

// setThroughput sets a throughput figure from its rounds: the median
// round (the lower middle one of an even count), with the best round and
// every round in the note, as information. The noise of this machine only
// ever slows a round down (a broker request stalling, page-cache reclaim,
// the JVM recompiling), so the best round is what the code can do, but
// the verdict takes the median of each round against the ceiling's round
// beside it (notePaired), which noise moves less than one best round.
func (r *Report) setThroughput(key string, rounds ...throughput) {
	sorted := slices.Clone(rounds)
	slices.SortFunc(sorted, func(a, b throughput) int { return cmp.Compare(a.rate, b.rate) })
	best, t := sorted[len(sorted)-1], lowerMiddle(sorted)
	r.throughputs[key] = t
	names := map[string]string{
		"ceiling_eos":    "transactional ceiling (consume -> produce, GroupTransactSession; as many sessions as orderflow has threads)",
		"ceiling_plain":  "plain ceiling (no transactions; as many sessions as orderflow has threads)",
		"orderflow_eos":  "orderflow exactly_once, 1 instance",
		"orderflow_alos": "orderflow at_least_once, 1 instance",
	}
	name := names[key]
	if n, ok := strings.CutPrefix(key, "scaling_"); ok {
		name = "orderflow exactly_once, " + n + " instance(s)"
	}
	note := fmt.Sprintf("%d records, %.1fs at that rate, wall %.1fs incl. start-up", t.records, t.seconds(), t.wall.Seconds())
	if t.store != nil {
		note += "; its state store in the measured window: " + t.store.String()
	}
	if len(rounds) > 1 {
		rates := make([]string, len(rounds))
		for i, t := range rounds {
			rates[i] = strconv.FormatFloat(t.rate, 'f', 0, 64)
		}
		note = fmt.Sprintf("median of %d rounds (%s records/s; best %.0f); median round: %s", len(rounds), strings.Join(rates, ", "), best.rate, note)
	}
	r.set(Figure{Key: key, Name: name, Value: t.rate, Unit: "records/s", Note: note, CPU: t.cpu})
}

// notePaired sets the ratio of throughput figure key to its baseline (a
// ceiling) to the median of its rounds' ratios, each against the
// baseline's round run beside it, and adds every round's ratio and the
// ratio of the best rounds to the note. Rounds are paired in order;
// nothing changes unless both have the same number of rounds, more than
// one.
func (r *Report) notePaired(key string, rounds, baseline []throughput) {
	f := r.figures[key]
	if f == nil || len(rounds) < 2 || len(rounds) != len(baseline) {
		return
	}
	ratios := make([]float64, len(rounds))
	strs := make([]string, len(rounds))
	bestOf, bestBase := 0.0, 0.0
	for i := range rounds {
		ratios[i] = rounds[i].rate / baseline[i].rate
		strs[i] = strconv.FormatFloat(ratios[i], 'f', 2, 64)
		bestOf, bestBase = max(bestOf, rounds[i].rate), max(bestBase, baseline[i].rate)
	}
	slices.Sort(ratios)
	r.paired[key] = lowerMiddle(ratios)
	f.Note += fmt.Sprintf("; each round against the ceiling's beside it: %s (median %.2f, the verdict's ratio); best round against the ceiling's best: %.2f",
		strings.Join(strs, ", "), lowerMiddle(ratios), bestOf/bestBase)
}

func (r *Report) setLatency(target string, l latencyResult) {
	prefix, who := "latency_", "orderflow"
	if target == "ceiling" {
		prefix, who = "latency_ceiling_", "transactional ceiling"
	}
	r.set(Figure{Key: "latency_rate", Name: "latency load: half the transactional ceiling's median rate (commit interval 100 ms)", Value: l.rate, Unit: "records/s",
		Note: fmt.Sprintf("%d records, %d samples after the warm-up", l.produced, l.samples)})
	for _, q := range []struct {
		k string
		d time.Duration
	}{{"p50", l.p50}, {"p99", l.p99}, {"p999", l.p999}} {
		f := Figure{Key: prefix + q.k, Name: who + " end-to-end latency " + q.k, Value: ms(q.d), Unit: "ms",
			Note: fmt.Sprintf("max %.1f ms", ms(l.max))}
		if q.k == "p99" {
			// The bench process here is the load generator, the outcome
			// consumer and what is measured.
			f.CPU = l.cpu
			f.Note += fmt.Sprintf("; whole run, warm-up included: p99 %.1f ms, max %.1f ms", ms(l.p99All), ms(l.maxAll))
			if l.batches != "" {
				f.Note += "; " + l.batches
			}
			if l.clients != "" {
				f.Note += "; its clients: " + l.clients
			}
		}
		r.set(f)
	}
}

func (r *Report) setRestore(key string, records int64, took time.Duration) {
	if key == "restore_ceiling" {
		r.set(Figure{Key: key, Name: "restore ceiling (read the changelog, no store)", Value: float64(records) / took.Seconds(),
			Unit: "records/s", Note: fmt.Sprintf("%d records in %.2fs", records, took.Seconds())})
		return
	}
	r.set(Figure{Key: key, Name: "restore into an empty store (statestore.Restore, all partitions)", Value: float64(records) / took.Seconds(),
		Unit: "records/s", Note: fmt.Sprintf("%d orders", records)})
	r.set(Figure{Key: "restore_seconds", Name: "restore time", Value: took.Seconds(), Unit: "s",
		Note: fmt.Sprintf("%d orders", records)})
}

func (r *Report) setRSS(peak, afterRestore int64, restoreTook time.Duration, orders int64) {
	r.set(Figure{Key: "rss_peak", Name: "peak RSS of `orderflow run` (VmHWM)", Value: float64(peak) / (1 << 20), Unit: "MiB",
		Note: fmt.Sprintf("restored the store, then processed the input: %d orders in the store at the end", orders)})
	r.set(Figure{Key: "rss_after_restore", Name: "peak RSS when the restore finished", Value: float64(afterRestore) / (1 << 20), Unit: "MiB"})
	r.set(Figure{Key: "rss_child_restore_seconds", Name: "`orderflow run` start to every partition restored", Value: restoreTook.Seconds(), Unit: "s"})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// finish computes ratios and targets and orders the figures.
func (r *Report) finish() {
	r.LoadAfter = machine.LoadAvg()
	ratio := func(key, base string) {
		f, b := r.figures[key], r.figures[base]
		if f == nil || b == nil || b.Value == 0 {
			return
		}
		f.Baseline, f.BaselineValue, f.Ratio = base, b.Value, f.Value/b.Value
	}
	// A ratio target is unknown (met nil) when a partial run lacks the
	// ceiling.
	target := func(key, text string, met func(f *Figure) bool) {
		if f := r.figures[key]; f != nil {
			f.Target = text
			if strings.Contains(text, "ceiling") && f.Baseline == "" {
				return
			}
			ok := met(f)
			f.Met = &ok
		}
	}
	ratio("ceiling_eos", "ceiling_eos")
	ratio("ceiling_plain", "ceiling_plain")
	ratio("orderflow_eos", "ceiling_eos")
	ratio("orderflow_alos", "ceiling_plain")
	for k, p := range r.paired {
		if f := r.figures[k]; f != nil && f.Baseline != "" {
			f.Ratio = p
		}
	}
	for _, k := range []string{"scaling_1", "scaling_2", "scaling_4"} {
		ratio(k, "ceiling_eos")
	}
	ratio("latency_rate", "ceiling_eos")
	r.setLowLatency()
	for _, q := range []string{"p50", "p99", "p999"} {
		ratio("latency_ceiling_"+q, "latency_ceiling_"+q)
		ratio("latency_"+q, "latency_ceiling_"+q)
	}
	ratio("restore_ceiling", "restore_ceiling")
	ratio("restore", "restore_ceiling")
	target("orderflow_eos", ">= 0.80 x transactional ceiling (median of paired rounds)", func(f *Figure) bool { return f.Ratio >= 0.80 })
	target("orderflow_alos", ">= 0.70 x plain ceiling (median of paired rounds)", func(f *Figure) bool { return f.Ratio >= 0.70 })
	limit := ms(2*r.commitInterval + 50*time.Millisecond)
	target("latency_p99", fmt.Sprintf("< %.0f ms (2 x commit interval + 50 ms)", limit), func(f *Figure) bool { return f.Value < limit })
	target("restore", ">= 200,000 records/s", func(f *Figure) bool { return f.Value >= 200_000 })
	if f := r.figures["rss_peak"]; f != nil {
		f.Baseline, f.BaselineValue, f.Ratio = "target", 512, f.Value/512
	}
	target("rss_peak", "<= 512 MiB", func(f *Figure) bool { return f.Value <= 512 })
	r.Figures = r.Figures[:0]
	for _, k := range figureKeys {
		if f := r.figures[k]; f != nil {
			r.Figures = append(r.Figures, *f)
		}
	}
}

// Missing lists the figures a complete report has that r lacks or holds
// as zero or less.
func (r *Report) Missing() []string {
	have := map[string]float64{}
	for _, f := range r.Figures {
		have[f.Key] = f.Value
	}
	var out []string
	for _, k := range figureKeys {
		if v, ok := have[k]; !ok || !(v > 0) || math.IsInf(v, 0) {
			out = append(out, k)
		}
	}
	return out
}

// WriteTable prints the figures as a table.
func (r *Report) WriteTable(w io.Writer) error {
	_, err := io.WriteString(w, r.table())
	return err
}

func (r *Report) table() string {
	var b strings.Builder
	b.WriteString("| figure | value | unit | ratio | of | target | met |\n|---|---:|---|---:|---|---|---|\n")
	for _, f := range r.Figures {
		ratio, met := "", ""
		if f.Baseline != "" {
			ratio = strconv.FormatFloat(f.Ratio, 'f', 2, 64)
		}
		if f.Met != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[*f.Met]
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", f.Key, num(f.Value), f.Unit, ratio, f.Baseline, f.Target, met)
	}
	return b.String()
}

func num(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// WriteFigures prints the figures one a line, with their notes and CPU
// use (the report's "Figures" section).
func (r *Report) WriteFigures(w io.Writer) error {
	_, err := io.WriteString(w, r.figureLines())
	return err
}

func (r *Report) figureLines() string {
	var b strings.Builder
	for _, f := range r.Figures {
		fmt.Fprintf(&b, "- `%s` — %s: %s %s", f.Key, f.Name, num(f.Value), f.Unit)
		if f.Note != "" {
			fmt.Fprintf(&b, " (%s)", f.Note)
		}
		if f.CPU != nil {
			fmt.Fprintf(&b, ". %s", f.CPU)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "# orderflow bench, %s on %s\n\n", r.Date.Format("2006-01-02 15:04 MST"), m.Host)
	if r.Tiny {
		b.WriteString("**Tiny mode** (CI smoke run): the figures mean nothing.\n\n")
	}
	if m := r.Missing(); len(m) > 0 {
		fmt.Fprintf(&b, "**Partial run**: missing %s.\n\n", strings.Join(m, ", "))
	}
	fmt.Fprintf(&b, "Machine: %d cores (%s), %.1f GiB memory, %s, %s, Apache Kafka %s (single local KRaft broker).  \n",
		m.Cores, m.CPU, m.MemoryGiB, m.OS, m.Go, m.KafkaVersion)
	if m.BrokerJVM != "" {
		fmt.Fprintf(&b, "Broker JVM: %s.  \n", m.BrokerJVM)
	}
	fmt.Fprintf(&b, "Load average (1/5/15 min): %.2f %.2f %.2f at the start, %.2f %.2f %.2f at the end.\n\n",
		r.LoadBefore[0], r.LoadBefore[1], r.LoadBefore[2], r.LoadAfter[0], r.LoadAfter[1], r.LoadAfter[2])
	w := r.Workload
	fmt.Fprintf(&b, "Workload: seed %d, %d orders, %d records (%.1f MiB) in %d partitions: %d accepted, %d rejected, %d undecodable. "+
		"Commit interval %s, at most %d records per batch, %d thread(s) per orderflow instance (--threads). "+
		"Throughput: the median of %d interleaved round(s)%s, the best in each figure's note; the verdict takes the median of each round's ratio to the ceiling's round beside it. Store of %d orders for restore and RSS.\n\n",
		w.Seed, w.Orders, w.Records, float64(w.Bytes)/(1<<20), w.Partitions, w.Accepted, w.Rejected, w.DLQ,
		w.CommitInterval, w.MaxBatchRecords, w.Threads, w.Rounds, roundInput(w), w.StoreOrders)
	b.WriteString(describeWarmup(r.Warmup) + "\n\n")
	b.WriteString(r.table())
	if len(r.Curve) > 0 {
		b.WriteString("\n## Latency curve\n\n")
		if r.chart != "" {
			fmt.Fprintf(&b, "![latency curve](%s)\n\n", r.chart)
		}
		b.WriteString(r.curveTable())
	}
	b.WriteString("\n## Figures\n\n")
	b.WriteString(r.figureLines())
	writeChecks(&b, r.Checks)
	b.WriteString("\n" + method)
	return b.String()
}

// writeChecks writes the Checks section, if there are checks.
func writeChecks(b *strings.Builder, checks []string) {
	if len(checks) == 0 {
		return
	}
	b.WriteString("\n## Checks\n\n")
	for _, c := range checks {
		fmt.Fprintf(b, "- %s\n", c)
	}
}

// roundInput describes the throughput rounds' input when it is not the
// workload once.
func roundInput(w WorkloadInfo) string {
	if w.RoundRecords == 0 || w.Records == 0 {
		return ""
	}
	return fmt.Sprintf(" of %d records each (the workload %.1f times over, each pass under new order ids)", w.RoundRecords, float64(w.RoundRecords)/float64(w.Records))
}

// LatestChart is the file name, in the results directory, of the latest
// complete run's latency chart.
const LatestChart = "latency-curve.png"

// WriteFiles writes <dir>/<date>-<host>.md and .json and returns their
// paths.
func (r *Report) WriteFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	host := regexp.MustCompile(`[^a-zA-Z0-9._-]+`).ReplaceAllString(r.Machine.Host, "_")
	base := filepath.Join(dir, r.Date.Format("2006-01-02")+"-"+host)
	files := []string{base + ".md", base + ".json"}
	if ok, err := r.WriteChart(base + "-latency.png"); err != nil {
		return nil, err
	} else if ok {
		r.chart = filepath.Base(base + "-latency.png")
		files = append(files, base+"-latency.png")
		if !r.Tiny && len(r.Missing()) == 0 {
			// The latest full run's chart, which README shows.
			if _, err := r.WriteChart(filepath.Join(dir, LatestChart)); err != nil {
				return nil, err
			}
			files = append(files, filepath.Join(dir, LatestChart))
		}
	}
	if err := writeReport(base, r, r.Markdown()); err != nil {
		return nil, err
	}
	return files, nil
}

// writeReport writes v as JSON to base.json and md to base.md.
func writeReport(base string, v any, md string) error {
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(base+".md", []byte(md), 0o644)
}

func machineInfo(kafkaVersion string) Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(), KafkaVersion: kafkaVersion}
	m.Host, _ = os.Hostname()
	m.CPU, m.MemoryGiB = machine.Info()
	if m.KafkaVersion == "" {
		m.KafkaVersion = "unknown"
	}
	return m
}

// KafkaVersionFromPom reads kafka.version from deploy/kafka/pom.xml under
// root ("" if it cannot).
func KafkaVersionFromPom(root string) string {
	b, err := os.ReadFile(filepath.Join(root, "deploy", "kafka", "pom.xml"))
	if err != nil {
		return ""
	}
	m := regexp.MustCompile(`<kafka\.version>([^<]+)</kafka\.version>`).FindSubmatch(b)
	if m == nil {
		return ""
	}
	return string(m[1])
}
