// Package bench is orderflow's benchmark harness (`make bench`). Against a
// real Kafka broker it preloads a deterministic workload and measures, in one
// run, the broker's own ceiling (a minimal franz-go consume->produce program
// with the same guarantee, commit interval and output sizes as orderflow, but
// no decoding, state or logic), orderflow exactly_once and at_least_once,
// scaling over 1, 2 and 4 instances, end-to-end latency at half the measured
// exactly-once maximum, restore of a 1,000,000-order store, and the peak RSS
// of an `orderflow run` child process holding that store. The ceilings,
// exactly_once and at_least_once run in interleaved rounds (Options.Rounds)
// and the report keeps each one's best round (noise here only slows a
// round down), with the median beside it. Run returns a Report;
// WriteFiles writes it as Markdown and JSON.
//
// Tiny mode (Options.Tiny) runs every measurement on a few thousand records
// in seconds, so CI exercises the whole harness; nothing here asserts a
// timing.
package bench
