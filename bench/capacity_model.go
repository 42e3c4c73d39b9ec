package bench

import (
	"fmt"
	"math"
)

// The capacity model's assumptions: what it does not measure. The
// document generated from a capacity run states each.
const (
	// modelTransitionsPerOrder: every order makes about two transitions
	// (input events) per second of order rate.
	modelTransitionsPerOrder = 2
	// modelUtilisation is the share of a core the model plans to use: the
	// rest absorbs a failed instance's partitions and the catch-up after a
	// restore.
	modelUtilisation = 0.5
	// modelMaxThreads is the largest instance (--threads, one core each).
	modelMaxThreads = 4
	// modelMinInstances: two instances, so that a crash leaves one running.
	modelMinInstances = 2
	// modelRestoreTarget bounds the time to restore one instance's state
	// after its disk is lost; the model adds instances (less state each)
	// until it holds.
	modelRestoreTarget = 300.0 // seconds
	// modelReplication is the topics' replication factor.
	modelReplication = 3
	// modelBrokerWriteMBps is the log writes one broker sustains, its
	// replicas included: a common sizing figure for brokers on network
	// SSDs, to be replaced by a measurement of the operator's brokers.
	modelBrokerWriteMBps = 100.0
	// modelPartitionsPerBroker is a common guideline for the partition
	// replicas one broker leads and follows.
	modelPartitionsPerBroker = 4000
	// modelTopics are orderflow's topics with the input's partition count:
	// events, status, rejections, dead letters, changelog.
	modelTopics = 5
	// modelMinPartitions is orderflow's default partition count.
	modelMinPartitions = 12
)

// Tier is one step of growth: orders per second and the order state held.
type Tier struct {
	Name        string  `json:"name"`
	OrdersPerS  float64 `json:"orders_per_s"`
	StateBytes  float64 `json:"state_bytes"`
	StateString string  `json:"state"`
}

// Tiers are the four steps of growth the model sizes.
var Tiers = []Tier{
	{"1", 10, 10e6, "10 MB"},
	{"2", 1_000, 1e9, "1 GB"},
	{"3", 100_000, 100e9, "100 GB"},
	{"4", 10_000_000, 10e12, "10 TB"},
}

// TierPlan is the model's deployment for one tier.
type TierPlan struct {
	Tier
	EventsPerS float64 `json:"events_per_s"`
	// CPUCores are the cores the events need at modelUtilisation.
	CPUCores float64 `json:"cpu_cores"`
	// Orders held in the state; Residence is how long an order stays in
	// it (Orders / OrdersPerS): its life plus the retention after it
	// closed.
	Orders    float64 `json:"orders"`
	Residence float64 `json:"residence_seconds"`
	// Threads per instance, Instances, and what drove the count
	// ("cpu", "restore" or "minimum").
	Threads   int    `json:"threads"`
	Instances int    `json:"instances"`
	DrivenBy  string `json:"driven_by"`
	Cores     int    `json:"cores"`
	// Partitions of the input (and of every topic orderflow writes).
	Partitions int `json:"partitions"`
	// BrokerWriteMBps is the log writes of the events with their
	// outputs, replicas included; Brokers how many brokers that takes at
	// modelBrokerWriteMBps; PartitionReplicas the partition replicas of
	// orderflow's topics, and per broker.
	BrokerWriteMBps   float64 `json:"broker_write_mb_per_s"`
	BrokerCores       float64 `json:"broker_cores"`
	Brokers           int     `json:"brokers"`
	PartitionReplicas int     `json:"partition_replicas"`
	ReplicasPerBroker float64 `json:"partition_replicas_per_broker"`
	// DiskPerInstance is the store's bytes per instance; ChangelogBytes
	// the compacted changelog (one replica).
	DiskPerInstance float64 `json:"disk_per_instance_bytes"`
	ChangelogBytes  float64 `json:"changelog_bytes"`
	// RestoreSeconds is one instance's state restored from the changelog
	// into an empty store.
	RestoreSeconds float64 `json:"restore_seconds"`
}

// plan sizes tier t from the measured inputs.
func (in CapacityInput) plan(t Tier) TierPlan {
	p := TierPlan{Tier: t, EventsPerS: t.OrdersPerS * modelTransitionsPerOrder}
	if in.EOS.PerCore <= 0 || in.ChangelogBytesPerOrder <= 0 || in.RestorePerCore <= 0 {
		return p
	}
	p.CPUCores = p.EventsPerS / (in.EOS.PerCore * modelUtilisation)
	p.Orders = t.StateBytes / in.ChangelogBytesPerOrder
	p.Residence = p.Orders / t.OrdersPerS
	p.Threads = min(modelMaxThreads, max(1, int(math.Ceil(p.CPUCores/modelMinInstances))))
	byCPU := int(math.Ceil(p.CPUCores / float64(p.Threads)))
	// A restore runs --restore-concurrency partitions at once; set to
	// twice the threads it keeps every core of the instance busy.
	restorePerInstance := in.RestorePerCore * float64(p.Threads)
	byRestore := int(math.Ceil(p.Orders / (restorePerInstance * modelRestoreTarget)))
	p.Instances, p.DrivenBy = modelMinInstances, "minimum"
	if byCPU > p.Instances {
		p.Instances, p.DrivenBy = byCPU, "cpu"
	}
	if byRestore > p.Instances {
		p.Instances, p.DrivenBy = byRestore, "restore"
	}
	p.Cores = p.Instances * p.Threads
	// Twice the threads, so the deployment can double before it must
	// repartition; a multiple of 12.
	p.Partitions = max(modelMinPartitions, 12*int(math.Ceil(float64(2*p.Cores)/12)))
	p.BrokerWriteMBps = p.EventsPerS * in.BrokerBytesPerEvent * modelReplication / 1e6
	p.BrokerCores = p.EventsPerS * in.EOS.BrokerUsPerEvent / 1e6
	p.PartitionReplicas = modelTopics * p.Partitions * modelReplication
	p.Brokers = max(modelReplication, int(math.Ceil(p.BrokerWriteMBps/modelBrokerWriteMBps)))
	p.ReplicasPerBroker = float64(p.PartitionReplicas) / float64(p.Brokers)
	p.DiskPerInstance = p.Orders * in.StoreBytesPerOrder / float64(p.Instances)
	p.ChangelogBytes = t.StateBytes
	p.RestoreSeconds = p.Orders / float64(p.Instances) / restorePerInstance
	return p
}

// predictScaling sets the model's prediction beside each scaling run: n
// instances pinned to one core each make n times one core's rate, until
// the machine's free cores are busy with them, the broker and the kernel's
// networking: rate(n) = min(n * R, Cfree / (u_of + u_broker + u_irq)),
// with R = 1/u_of the exactly_once rate per core, u the CPU per event of
// each, Cfree the cores other processes left (during the exactly_once
// measurement); unpinned, R is the in-process instance's rate instead.
func predictScaling(c *Capacity) {
	e := c.Inputs.EOS
	if e.PerCore <= 0 || len(c.Scaling) == 0 {
		return
	}
	uOF := 1e6 / e.PerCore
	free := float64(c.Machine.Cores)
	if e.OtherCores != nil {
		free -= max(0, *e.OtherCores)
	}
	machineBound := free * 1e6 / (uOF + e.BrokerUsPerEvent + e.IRQUsPerEvent)
	var base, pbase float64
	for i := range c.Scaling {
		r := &c.Scaling[i]
		// Pinned, an instance has one core at most, and two on one core
		// share it; unpinned, it makes the in-process instance's rate.
		r.Predicted = min(float64(r.Instances)*e.Rate, machineBound)
		if c.Pinned {
			r.Predicted = min(float64(min(r.Instances, c.Machine.Cores))*e.PerCore, machineBound)
		}
		if i == 0 {
			base, pbase = r.Rate, r.Predicted
		}
		if base > 0 {
			r.Ratio = r.Rate / base
		}
		if pbase > 0 {
			r.PredictedRatio = r.Predicted / pbase
		}
	}
}

// human formats bytes with a decimal unit.
func human(b float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	i := 0
	for b >= 1000 && i < len(units)-1 {
		b /= 1000
		i++
	}
	if b >= 100 || i == 0 {
		return fmt.Sprintf("%.0f %s", b, units[i])
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}

// duration formats seconds for the tables.
func duration(s float64) string {
	switch {
	case s < 1:
		return fmt.Sprintf("%.0f ms", s*1000)
	case s < 120:
		return fmt.Sprintf("%.1f s", s)
	case s < 7200:
		return fmt.Sprintf("%.0f min", s/60)
	case s < 3*86400:
		return fmt.Sprintf("%.1f h", s/3600)
	default:
		return fmt.Sprintf("%.0f days", s/86400)
	}
}

// count formats a large count with a metric suffix.
func count(v float64) string {
	switch {
	case v >= 1e12:
		return fmt.Sprintf("%.1f T", v/1e12)
	case v >= 1e9:
		return fmt.Sprintf("%.1f G", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1f M", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0f k", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}
