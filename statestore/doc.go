// Package statestore is orderflow's local state: one Pebble (v2) database per
// instance holding the state of every order of the partitions the instance
// processes, kept atomic with the position reached in each partition's
// compacted changelog topic, and rebuilt from that changelog when it is lost,
// behind, or moved to another instance.
//
// # The store is a cache of the changelog
//
// The changelog topic is the durable copy; Pebble is a cache of it that may
// lag but never leads. Every write carries, in the same Pebble batch, the
// changelog offset it brings the partition to, so data and offset can never
// disagree. Pebble runs without a write-ahead log, as Kafka Streams runs
// RocksDB: batches live in memtables until Pebble flushes them (and Close
// flushes them), so a crash loses a suffix of recent batches, which
// [Store.Restore] reads again, and a commit never waits on the disk. The processor
// commits its Kafka transaction first and the Pebble batch after it: a crash
// between the two leaves the store behind the changelog, never ahead.
//
// # Values are opaque
//
// The value of an order is exactly the changelog record's value (the
// Avro-encoded OrderState written by the avro package); this package never
// decodes it, so restore copies bytes. The one fact the store needs about a
// value is when the order closed, for retention: [Options.ClosedAt] extracts
// it (nil disables retention indexing).
//
// # Keyspace
//
// All integers are big-endian, so keys sort by partition, then by time.
//
//	[partition u32][order_id]                        order state (value: changelog value)
//	[0xFFFFFFFE][partition u32][second ms u64]        retention index bucket (value: entries)
//	[0xFFFFFFFF][partition u32]'o'                   next changelog offset to read (u64)
//	[0xFFFFFFFF][0xFFFFFFFF]"format"                  keyspace format version ("2")
//
// A bucket holds the orders of one partition that closed within one second
// (its key is the second's first millisecond): its value is a list of
// entries, each the closing time after the second's start (uvarint) and
// the order ID (uvarint length, bytes). Batches add entries with Pebble
// Merge operations, which the default merger concatenates. Format 1 kept a
// key per closed order instead, [0xFFFFFFFE][partition][closed_at][order_id]
// with an empty value; this build still reads such keys (see Retention) and
// marks a format 1 store as format 2 when it opens it.
//
// Kafka partitions are non-negative int32s, so the two reserved top prefixes
// can never be order keys. closed_at is stored with its sign bit flipped so
// that negative times still sort first.
//
// # Writing: Batch
//
// [Store.NewWriteBatch] returns a write batch that may span several
// partitions (the processor commits one Kafka transaction per poll batch
// covering several partitions, then one Pebble batch). It does not read its
// own writes: the processor keeps the states of its current batch itself and
// writes each order once. States, changelog offsets and retention index
// entries go into the same Pebble batch; [Batch.Discard] leaves no trace.
//
// # Restore
//
// [Store.Restore] reads one changelog partition with its own franz-go client
// (built from the caller's connection options: seeds, TLS, SASL), assigned
// directly to the partition outside any consumer group, read_committed, from
// the stored offset to the last stable offset listed when it starts. The end
// is detected by position, not by "last record offset == high watermark - 1":
// transaction markers occupy offsets, so the client keeps control records and
// every record or marker it sees moves the position. A stored offset below
// the changelog's log-start offset (or above its high watermark, i.e. a
// recreated topic), or a partition with data but no offset, means the local
// copy cannot be trusted: the partition is wiped and restored from the log
// start. Progress (records restored, offsets remaining) is observable through
// [Progress] while it runs.
//
// A restore reading from the log start must finish within the changelog's
// delete.retention.ms (Kafka's default: one day): the cleaner keeps a
// tombstone that long after compacting it, and a reader slower than that can
// miss a delete whose earlier value it already read. Keep that setting well
// above the longest restore.
//
// # Retention of closed orders
//
// An order that reached a terminal state is deleted once a period has passed
// since it closed (the processor's Config.Retention, 7 days by default; 0
// disables), measured on the processor's clock from the moment the closing
// transition was processed (that time is kept in the order's state, and
// [Options.ClosedAt] reads it). The store keeps a secondary index by close
// time so that [Store.Expired] finds expired orders without scanning all
// states. The processor's periodic sweep calls Expired, produces a tombstone
// for each order to the changelog inside its transaction, and deletes the
// orders through a [Batch]; a late event for an expired order is then an
// unknown order. `orderflow replay` has no clock and never expires orders.
//
// The index is kept in buckets of one second per partition (see Keyspace),
// which a batch extends with one Merge per bucket it touches. A key per
// closed order, as format 1 kept, nearly doubled Pebble's cost of writing an
// order that closes: Pebble's cost is mostly per key, in the memtable and
// again in every flush and compaction. With buckets, the orders that close
// in the same second of one partition share a key, so closing an order adds
// next to nothing to the keys Pebble writes, flushes and compacts.
//
// Index entries are written without reading the previous value (restore
// stays a pure copy), and a delete does not touch them (a bucket cannot lose
// one entry without being read), so an entry can outlive its order (deleted
// by the sweep or by a tombstone restored from the changelog, or re-created
// under the same ID). Expired checks every entry it reads against the
// order's current value, and rewrites each bucket it reads to its end
// without the stale entries (or deletes it once none is left), so such an
// entry costs one read once its time has passed.
//
// # Concurrency
//
// A Store is safe for concurrent use. Writers of one partition (batches that
// touch it, Restore, Expired) must be serialised by the caller,
// as the processor does by owning each partition in one task; different
// partitions may be written concurrently. Close must not race other calls.
package statestore
