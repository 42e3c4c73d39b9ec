// Package processor is orderflow's engine: it consumes order events from
// Kafka in a consumer group, applies each to the order's state in the local
// Pebble store (package statestore) through the state machine (package
// topology), and emits accepted transitions, rejections and dead letters,
// exactly once by default.
//
// # Data flow of one batch (exactly_once)
//
//	poll (read_committed) -> Begin transaction
//	  per record: decode --fail--> DLQ
//	              state = batch overlay | last batch's overlay | (order known) store
//	              topology.Apply -> accepted: changelog + status | rejected: rejections
//	  ... more polls until CommitInterval or MaxBatchRecords
//	End transaction (outputs + changelog + input offsets commit together;
//	  the client holds the outputs until then: its linger, internal/ksession)
//	  committed: one Pebble batch (states + changelog offset per partition), no WAL
//	  aborted:   drop the overlay; the session rewinds to the committed offsets
//
// Pebble is written only after Kafka committed, so a crash anywhere leaves
// the store at or behind the changelog, never ahead; restore catches up.
//
// Every output record carries the input record's timestamp (Kafka Streams'
// rule); retention tombstones carry the processor's clock.
//
// # Per-record cost
//
// The loop is built to do little per record (make bench profiles it): the
// event is decoded into one reused Event; states are immutable values that
// topology.Apply builds copy-on-write; output records and their values come
// from slabs that a thread reuses once a batch is committed (outputMemory);
// each owned partition keeps the set of orders its store holds, by 64-bit
// hash (knownOrders), so a new order's first event skips the store read;
// the last committed batch's states serve the next batch before the
// store does; and output records go to the client a chunk of input records
// at a time (processRecords), so that its produce path stays in the CPU's
// caches across a run of calls.
//
// # Rebalancing
//
// The group uses the cooperative-sticky balancer. A newly assigned partition
// is paused in the assignment callback (before its first fetch), restored
// from its changelog partition in a goroutine outside the group protocol, and
// resumed when level. A revoked or lost partition's restore is cancelled; its
// data stays on disk, so a later re-assignment restores incrementally. A
// rebalance that revokes partitions during a transaction aborts it (the
// franz-go GroupTransactSession does this), which discards the batch.
//
// With Config.StandbyReplicas the group runs orderflow's own balancer
// (protocol "orderflow-standby", balancer.go): owners as cooperative-sticky
// places them, a departed owner's partitions to the warmest copy, a planned
// move to a cold copy held back while it warms up, and standby partitions
// in the assignments' UserData. Each instance follows its standby
// partitions' changelog into its store with one statestore.Tailer
// (standby.go), off the threads; a restore takes a standby partition over
// from where its copy is. StandbyOrder reads a copy for stale queries.
//
// # at_least_once
//
// No transactions: outputs and changelog records are produced; once all of
// the batch's are acknowledged, the Pebble batch is written, then the batch's
// input offsets are committed (those of partitions the thread still owns).
// That commit runs in the background (asyncCommitter) while the thread
// processes the next batch, which reads the last batch's states from its
// overlay (warm) and waits for the commit before it ends or, after a
// rebalance, before it reads the store; the two batches' records use
// alternate output memory. A crash between produce and offset commit reprocesses
// events; the order's duplicate window (its last 32 accepted event IDs) turns
// a replayed accepted event into a duplicate_event rejection instead of a
// second transition. Changelog records carry the source offset in the
// orderflow.source.offset header, so a reader can tell which input offset a
// state reflects. Restore does not drop states newer than the committed
// input offset: compaction may already have removed the older value of the
// same order, and dropping the newer one would lose the order's state; the
// duplicate window makes the replay safe instead.
package processor
