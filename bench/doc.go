// Package bench is orderflow's benchmark harness (`make bench`). Against a
// real Kafka broker it preloads a deterministic workload and measures, in one
// run, the broker's own ceiling (a minimal franz-go consume->produce program
// with the same guarantee, commit interval and output sizes as orderflow, but
// no decoding, state or logic), orderflow exactly_once and at_least_once,
// scaling over 1, 2 and 4 instances, a latency curve (exactly_once at four
// commit intervals, at_least_once and the low-latency settings, at 10, 30
// and 50% of the transactional ceiling's rate, each beside the ceiling with
// the same settings), restore of a 1,000,000-order store, and the peak RSS
// of an `orderflow run` child process holding that store. The ceilings,
// exactly_once and at_least_once run in interleaved rounds (Options.Rounds);
// each figure is its median round and the verdict takes the median of each
// round's ratio to the ceiling's round beside it, with the best round in the
// note. Run returns a Report; WriteFiles writes it as Markdown and JSON, and
// the curve as a PNG chart.
//
// RunFailover (`make bench-failover`) is a run of its own: two `orderflow
// run` child processes on a store of a given size under a steady load, one
// SIGKILLed; it measures the time until each of the killed instance's
// partitions processes new input, the latency over that window and the
// changelog records the new owner restored, for each store size and
// --standby-replicas count.
//
// Tiny mode (Options.Tiny) runs every measurement on a few thousand records
// in seconds, so CI exercises the whole harness; nothing here asserts a
// timing.
package bench
