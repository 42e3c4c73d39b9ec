package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// FailoverReport is the result of RunFailover.
type FailoverReport struct {
	Date    time.Time `json:"date"`
	Tiny    bool      `json:"tiny"`
	Machine Machine   `json:"machine"`
	// Orderflow is the binary's `orderflow version`.
	Orderflow string `json:"orderflow"`
	// Note is the operator's note on the run (FailoverOptions.Note).
	Note string `json:"note,omitempty"`
	// UptimeBefore and UptimeAfter are `uptime` at the start and the end.
	UptimeBefore string           `json:"uptime_before"`
	UptimeAfter  string           `json:"uptime_after"`
	Settings     FailoverSettings `json:"settings"`
	// StandbyFlag is why runs with standbys are not available with this
	// binary ("" if it has --standby-replicas).
	StandbyFlag string        `json:"standby_flag_missing,omitempty"`
	Runs        []FailoverRun `json:"runs"`
	Checks      []string      `json:"checks"`
	Seconds     float64       `json:"seconds"`
}

// FailoverSettings are what every run of a failover report shares.
type FailoverSettings struct {
	Partitions     int32   `json:"partitions"`
	Instances      int     `json:"instances"`
	Threads        int     `json:"threads_per_instance"`
	Rate           float64 `json:"load_records_per_s"`
	WorkloadOrders int     `json:"workload_orders"`
	Settle         float64 `json:"settle_s"`
	After          float64 `json:"after_s"`
	CommitInterval string  `json:"commit_interval"`
	Guarantee      string  `json:"guarantee"`
	// orderflow's defaults, which the instances run with.
	SessionTimeout     string `json:"session_timeout"`
	TransactionTimeout string `json:"transaction_timeout"`
	RestoreConcurrency int    `json:"restore_concurrency"`
}

// Markdown renders the report: the runs side by side, each run's
// partitions, and how it was measured.
func (r *FailoverReport) Markdown() string {
	var b strings.Builder
	m, s := r.Machine, r.Settings
	fmt.Fprintf(&b, "# orderflow failover bench, %s on %s\n\n", r.Date.UTC().Format("2006-01-02 15:04 MST"), m.Host)
	if r.Tiny {
		b.WriteString("**Tiny mode** (CI smoke run): the figures mean nothing.\n\n")
	}
	fmt.Fprintf(&b, "Machine: %d cores (%s), %.1f GiB memory, %s, %s, Apache Kafka %s (single local KRaft broker).  \n",
		m.Cores, m.CPU, m.MemoryGiB, m.OS, m.Go, m.KafkaVersion)
	if m.BrokerJVM != "" {
		fmt.Fprintf(&b, "Broker JVM: %s.  \n", m.BrokerJVM)
	}
	fmt.Fprintf(&b, "orderflow: %s.  \n", r.Orderflow)
	if r.Note != "" {
		fmt.Fprintf(&b, "Note: %s  \n", r.Note)
	}
	fmt.Fprintf(&b, "`uptime` before: %s  \n`uptime` after: %s  \nRun took %.0f s.\n\n", r.UptimeBefore, r.UptimeAfter, r.Seconds)
	fmt.Fprintf(&b, "Setup: %d `orderflow run` instances (%d thread(s) each), %s, %d partitions, commit interval %s; "+
		"session timeout %s and transaction timeout %s (orderflow's defaults, --session-timeout and --transaction-timeout), "+
		"restore concurrency %d; a steady load of %.0f input records/s (the workload of %d orders replayed under new ids), "+
		"%.0f s of it on both instances before the kill; latency window: from the kill to %.0f s after the last partition recovered.\n\n",
		s.Instances, s.Threads, s.Guarantee, s.Partitions, s.CommitInterval, s.SessionTimeout, s.TransactionTimeout,
		s.RestoreConcurrency, s.Rate, s.WorkloadOrders, s.Settle, s.After)
	if r.StandbyFlag != "" {
		fmt.Fprintf(&b, "Standbys: not available (%s).\n\n", r.StandbyFlag)
	}
	b.WriteString(r.table())
	for _, run := range r.Runs {
		if run.Unavailable != "" || len(run.Partitions) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n### %d orders, %d standby: the killed instance's partitions\n\n", run.StoreOrders, run.Standbys)
		b.WriteString("Seconds after the kill; records and time of each partition's restore from the survivor's log.\n\n")
		b.WriteString("| partition | assigned (s) | restored (s) | restored records | restore took (s) | recovered (s) |\n|---:|---:|---:|---:|---:|---:|\n")
		for _, p := range run.Partitions {
			fmt.Fprintf(&b, "| %d | %.2f | %.2f | %d | %.2f | %.2f |\n", p.Partition, p.Assigned, p.Restored, p.Records, p.Restore, p.Recovered)
		}
	}
	writeChecks(&b, r.Checks)
	b.WriteString("\n" + failoverMethod)
	return b.String()
}

// table is the runs side by side.
func (r *FailoverReport) table() string {
	var b strings.Builder
	b.WriteString("| store (orders) | standbys | failover max (s) | failover median (s) | changelog end offsets of the killed partitions | restored by the new owner (records) | p99 in the window (ms) | p99, killed partitions (ms) | max (ms) | p99 before the kill (ms, 11 s to 1 s) |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, run := range r.Runs {
		if run.Unavailable != "" {
			fmt.Fprintf(&b, "| %d | %d | not available: %s | | | | | | | |\n", run.StoreOrders, run.Standbys, run.Unavailable)
			continue
		}
		restored := "unknown"
		if run.Restored >= 0 {
			restored = fmt.Sprint(run.Restored)
		}
		fmt.Fprintf(&b, "| %d | %d | %.2f | %.2f | %d | %s | %.0f | %.0f | %.0f | %.0f |\n", run.StoreOrders, run.Standbys,
			run.FailoverMax, run.FailoverMedian, run.ChangelogAtKill, restored, run.Latency.P99, run.LatencyKilled.P99,
			run.Latency.Max, run.LatencyBefore.P99)
	}
	return b.String()
}

// WriteFiles writes <dir>/<date>-<host>-failover.md and .json and returns
// their paths.
func (r *FailoverReport) WriteFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	host := regexp.MustCompile(`[^a-zA-Z0-9._-]+`).ReplaceAllString(r.Machine.Host, "_")
	base := filepath.Join(dir, r.Date.UTC().Format("2006-01-02")+"-"+host+"-failover")
	if err := writeReport(base, r, r.Markdown()); err != nil {
		return nil, err
	}
	return []string{base + ".md", base + ".json"}, nil
}

// failoverMethod is the report's last section.
const failoverMethod = `## How it is measured

- Each run has an app id, topics and state dirs of its own. Its changelog is first written with the
  store's orders (the workload's final states under new ids, keyed as orderflow's changelog), so
  that the instances start on a store of that size.
- The instance to be killed starts alone and restores every partition; the survivor then joins and
  the group's cooperative-sticky balancer moves half of the partitions to it. So the survivor never
  held the killed instance's partitions: with no standby, taking them over is a full restore of
  their changelog partitions. A steady load (records produced every millisecond at the rate, each
  stamped with its produce time) runs from before the survivor joins to the end of the window.
- Kill: SIGKILL of the instance's process once both own their half and the load has run the
  settle time. Its partitions are those the group's description assigns to its members.
- Failover time of a partition: from the kill until a read_committed consumer of the status,
  rejections and dead-letter topics sees the first outcome of an input record produced after the
  kill (timestamp, ms, later than the kill's) on that partition. orderflow writes outcomes keyed
  by order id into topics with the input's partition count, so an outcome's partition is its
  input's (keyless dead letters are left out of this). Per partition, the survivor's log gives
  when it was assigned the partition and when its restore ended.
- What it is made of: the group notices the dead member after the session timeout and assigns its
  partitions to the survivor ("assigned"); the survivor restores each from its changelog
  partition, RestoreConcurrency at a time ("restored"; a restore first waits until the changelog
  partition has no open transaction, such as the killed instance's last one, which the broker
  aborts after the transaction timeout, checking every 10 s by default: orderflow's client holds a
  batch's outputs until the batch ends, so a transaction is open on the broker only while a batch
  commits, and a kill seldom leaves one); then it processes the input the partition has waited
  with, and its first transaction commits ("recovered"). With --standby-replicas 1 the survivor
  already holds a standby copy of each of the killed instance's partitions, kept current through
  the settle time, and restores only what the copy lacks.
- Latency: produce time to the outcome's arrival at that consumer, of every input record produced
  from the kill to the window's end (all partitions; and the killed instance's partitions alone),
  and, for comparison, of those produced from 11 s to 1 s before the kill (the last second's input
  of the killed partitions waits for the failover).
  Other work on the machine moves every figure: see uptime above.
- Restored records: the survivor's orderflow_restored_records_total after the window less before
  the kill (its /metrics); the per-partition table sums the same from its log. The changelog
  records of the killed partitions (the table's "changelog end offsets") are their end offsets at the
  kill, which count transaction markers too: a full restore applies fewer records than that.
`
