package statestore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// changelog writes order states to a changelog topic in transactions, some
// of them aborted, and keeps the source of truth: the committed state of
// every partition.
type changelog struct {
	t      testing.TB
	c      *kafkatest.Cluster
	topic  string
	parts  int32
	cl     *kgo.Client
	rng    *rand.Rand
	truth  map[int32]state
	seq    int
	ctx    context.Context
	orders int // distinct order IDs per partition
}

func newChangelog(t testing.TB, c *kafkatest.Cluster, parts int32, configs map[string]*string) *changelog {
	t.Helper()
	topic := kafkatest.Name(t, "changelog")
	c.CreateTopic(t, topic, parts, configs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return &changelog{
		t: t, c: c, topic: topic, parts: parts, ctx: ctx, orders: 20000,
		cl: c.Client(t,
			kgo.TransactionalID(kafkatest.Name(t, "txn")),
			kgo.DefaultProduceTopic(topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerLinger(5*time.Millisecond),
		),
		rng:   rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)),
		truth: map[int32]state{},
	}
}

// record makes a random changelog record: mostly open states, some closed
// ones, some tombstones. value nil = tombstone.
func (w *changelog) record(aborted bool) (int32, string, []byte) {
	w.seq++
	p := int32(w.rng.IntN(int(w.parts)))
	id := fmt.Sprintf("order-%06d", w.rng.IntN(w.orders))
	pad := strings.Repeat("x", 40+w.rng.IntN(80))
	switch r := w.rng.IntN(100); {
	case aborted:
		return p, id, []byte(fmt.Sprintf("open:ABORTED-%d:%s", w.seq, pad))
	case r < 5:
		return p, id, nil
	case r < 25:
		return p, id, closedValue(int64(w.rng.IntN(1_000_000)), fmt.Sprint(w.seq))
	default:
		return p, id, openValue(fmt.Sprintf("%d:%s", w.seq, pad))
	}
}

// txn writes n records in one transaction and commits or aborts it. It
// returns the next offset after the last record of each partition written.
func (w *changelog) txn(n int, commit bool) map[int32]int64 {
	t := w.t
	t.Helper()
	if err := w.cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	pending := map[int32]state{}
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		p, id, v := w.record(!commit)
		recs = append(recs, &kgo.Record{Partition: p, Key: []byte(id), Value: v})
		if pending[p] == nil {
			pending[p] = state{}
		}
		if v == nil {
			pending[p][id] = "\x00tombstone"
		} else {
			pending[p][id] = string(v)
		}
	}
	if err := w.cl.ProduceSync(w.ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	next := map[int32]int64{}
	for _, r := range recs {
		next[r.Partition] = max(next[r.Partition], r.Offset+1)
	}
	try := kgo.TryAbort
	if commit {
		try = kgo.TryCommit
	}
	if err := w.cl.EndTransaction(w.ctx, try); err != nil {
		t.Fatalf("end transaction: %v", err)
	}
	if commit {
		for p, st := range pending {
			if w.truth[p] == nil {
				w.truth[p] = state{}
			}
			for id, v := range st {
				if v == "\x00tombstone" {
					delete(w.truth[p], id)
				} else {
					w.truth[p][id] = v
				}
			}
		}
	}
	return next
}

// write writes n committed records in transactions of txnSize, with an
// aborted transaction after every abortEvery committed ones.
func (w *changelog) write(n, txnSize, abortEvery int) {
	w.t.Helper()
	if !w.c.Real {
		// kfake's compaction ignores the last stable offset: a pass that
		// runs while an aborted transaction is still open treats its
		// records as the newest values and drops the committed ones they
		// shadow, which the abort then leaves with no value (seen in CI:
		// TestRestore/kfake, 98 keys missing). Kafka never cleans past the
		// LSO, so aborted transactions are written on the real broker only.
		abortEvery = 0
	}
	for i := 0; n > 0; i++ {
		k := min(n, txnSize)
		w.txn(k, true)
		n -= k
		if abortEvery > 0 && i%abortEvery == abortEvery-1 {
			w.txn(txnSize/2, false)
		}
	}
	w.offsets() // wait for the last markers
}

func (w *changelog) clientOpts() []kgo.Opt { return []kgo.Opt{kgo.SeedBrokers(w.c.Brokers...)} }

// offsets lists the log-start and last stable offsets of every partition,
// once the last stable offset has reached the high watermark: the broker
// writes a transaction's markers after EndTransaction returns, so until then
// the last stable offset still stops at the transaction's first record.
func (w *changelog) offsets() (start, end map[int32]int64) {
	w.t.Helper()
	adm := kadm.NewClient(w.cl)
	for {
		s, err := adm.ListStartOffsets(w.ctx, w.topic)
		if err != nil {
			w.t.Fatal(err)
		}
		e, err := adm.ListCommittedOffsets(w.ctx, w.topic)
		if err != nil {
			w.t.Fatal(err)
		}
		h, err := adm.ListEndOffsets(w.ctx, w.topic)
		if err != nil {
			w.t.Fatal(err)
		}
		start, end = map[int32]int64{}, map[int32]int64{}
		s.Each(func(o kadm.ListedOffset) { start[o.Partition] = o.Offset })
		e.Each(func(o kadm.ListedOffset) { end[o.Partition] = o.Offset })
		stable := true
		h.Each(func(o kadm.ListedOffset) { stable = stable && end[o.Partition] == o.Offset })
		if stable {
			return start, end
		}
		select {
		case <-w.ctx.Done():
			w.t.Fatalf("last stable offsets %v never reached the high watermarks", end)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// awaitCompaction rolls the active segment (a segment rolls on an append
// after segment.ms) and waits, for a bounded time, until the cleaner has
// removed records. Compaction timing is the broker's business: the test
// only logs whether it happened before the restore.
func (w *changelog) awaitCompaction(written int) {
	w.t.Helper()
	time.Sleep(1200 * time.Millisecond)
	w.txn(1, true) // rolls the segment holding everything written so far
	w.offsets()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := len(w.c.ReadCommitted(w.t, w.topic))
		if n < written {
			w.t.Logf("compaction ran: %d committed records written, %d left in the log", written, n)
			return
		}
		if time.Now().After(deadline) {
			w.t.Logf("compaction has not removed records yet (%d in the log); restoring anyway", n)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// keepTombstones raises delete.retention.ms so that the cleaner removes no
// more tombstones. Kafka keeps a tombstone that long after cleaning it so
// that a reader that started at the log start sees it: a restore that takes
// longer than delete.retention.ms can miss a delete (the value it read
// earlier stays). Tests call it before restoring from a topic whose cleaner
// runs every second.
func (w *changelog) keepTombstones() {
	w.t.Helper()
	v := "3600000"
	resp, err := kadm.NewClient(w.cl).AlterTopicConfigs(w.ctx,
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "delete.retention.ms", Value: &v}}, w.topic)
	if err == nil {
		for _, r := range resp {
			if r.Err != nil {
				err = r.Err
			}
		}
	}
	if err != nil {
		w.t.Fatalf("alter delete.retention.ms of %s: %v", w.topic, err)
	}
}

// slowTombstones are CompactConfigs that keep tombstones for an hour.
func slowTombstones() map[string]*string {
	c := kafkatest.CompactConfigs()
	v := "3600000"
	c["delete.retention.ms"] = &v
	return c
}

// checkLevel asserts that the store holds exactly the truth, with an index
// that Expired reads back as the truth's closed orders, and the end offsets.
func checkLevel(t *testing.T, s *Store, truth map[int32]state, end map[int32]int64) {
	t.Helper()
	d := dump(t, s)
	for p, want := range end {
		if diff := diffState(d.orders[p], truth[p]); diff != "" {
			t.Fatalf("partition %d differs from the source of truth: %s", p, diff)
		}
		if d.offsets[p] != want {
			t.Fatalf("partition %d offset = %d, want %d", p, d.offsets[p], want)
		}
		ids, err := s.Expired(p, time.UnixMilli(1<<50), 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, id := range ids {
			got = append(got, string(id))
		}
		var want []string
		for _, e := range wantIndex(truth[p]) {
			_, id, _ := strings.Cut(e, "/")
			want = append(want, id)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("partition %d: Expired returns %d orders, want the %d closed ones", p, len(got), len(want))
		}
	}
}

func restoreAll(t *testing.T, s *Store, w *changelog) map[int32]RestoreResult {
	t.Helper()
	out := map[int32]RestoreResult{}
	for p := int32(0); p < w.parts; p++ {
		var prog Progress
		var seen []int64
		res, err := s.Restore(w.ctx, p, RestoreOptions{
			Topic: w.topic, ClientOpts: w.clientOpts(), Progress: &prog,
			filter: func(*kgo.Record) bool { seen = append(seen, prog.Remaining()); return true },
		})
		if err != nil {
			t.Fatalf("restore partition %d: %v", p, err)
		}
		if prog.Restored() != res.Records || prog.Remaining() != 0 {
			t.Fatalf("progress after restore: restored %d remaining %d, result %+v", prog.Restored(), prog.Remaining(), res)
		}
		for i := 1; i < len(seen); i++ {
			if seen[i] > seen[i-1] {
				t.Fatalf("remaining went up during restore: %d then %d", seen[i-1], seen[i])
			}
		}
		if len(seen) > 0 && seen[0] != res.To-res.From {
			// The first record sees the remaining offsets set at the start.
			t.Fatalf("remaining at the first record = %d, want %d", seen[0], res.To-res.From)
		}
		out[p] = res
	}
	return out
}

// TestRestore writes 100,000 states to a changelog in transactions with
// aborted ones interleaved, lets compaction run, and restores into an empty
// store; then writes more and restores incrementally.
func TestRestore(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		// Tombstones and abort markers are kept for an hour from the start:
		// with delete.retention.ms at 1 s the cleaner can drop an abort
		// marker while a read_committed reader is between the aborted
		// records and the marker, and that reader then also drops later
		// committed records of the same producer (seen once in CI on a
		// loaded machine: two keys missing). Compaction of superseded values
		// still runs and is awaited.
		w := newChangelog(t, c, 3, slowTombstones())
		w.write(100_000, 1000, 3)
		w.awaitCompaction(100_000)
		_, end := w.offsets()

		s := openStore(t, vfs.NewMem(), "/restore")
		res := restoreAll(t, s, w)
		checkLevel(t, s, w.truth, end)
		var total int64
		for p, r := range res {
			if r.From != 0 || r.To != end[p] || r.Wiped {
				t.Fatalf("partition %d: %+v, want from 0 to %d, not wiped", p, r, end[p])
			}
			total += r.Records
		}
		t.Logf("full restore: %d records applied for %d orders", total, len(w.truth[0])+len(w.truth[1])+len(w.truth[2]))

		// Incremental: only what was written since is read.
		w.write(5000, 500, 2)
		_, end2 := w.offsets()
		res2 := restoreAll(t, s, w)
		checkLevel(t, s, w.truth, end2)
		var inc int64
		for p, r := range res2 {
			if r.From != end[p] || r.To != end2[p] || r.Wiped {
				t.Fatalf("incremental partition %d: %+v, want from %d to %d", p, r, end[p], end2[p])
			}
			inc += r.Records
		}
		if inc == 0 || inc > 5000+1 {
			t.Fatalf("incremental restore applied %d records, want 1..5001 (5000 new committed)", inc)
		}

		// Level already: nothing to read.
		res3 := restoreAll(t, s, w)
		for p, r := range res3 {
			if r.Records != 0 || r.From != end2[p] {
				t.Fatalf("restore of a level partition %d: %+v", p, r)
			}
		}
	})
}

// TestRestoreWipesBelowLogStart moves the log start past the stored offset
// (DeleteRecords): the local copy is wiped and restored from the log start.
func TestRestoreWipesBelowLogStart(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		s := func(v string) *string { return &v }
		// DeleteRecords needs the delete policy; compaction is kept.
		cfg := slowTombstones()
		cfg["cleanup.policy"] = s("compact,delete")
		cfg["retention.ms"] = s("-1")
		w := newChangelog(t, c, 1, cfg)
		w.orders = 500
		w.write(3000, 500, 2)
		st := openStore(t, vfs.NewMem(), "/wipe")
		restoreAll(t, st, w)
		_, end := w.offsets()
		checkLevel(t, st, w.truth, end)

		// More records, then delete everything written so far: the
		// store's offset is now below the log start.
		w.write(1000, 500, 0)
		_, cut := w.offsets()
		resp, err := kadm.NewClient(w.cl).DeleteRecords(w.ctx, kadm.Offsets{w.topic: {0: {Topic: w.topic, Partition: 0, At: cut[0]}}})
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("delete records: %v", err)
		}
		w.truth = map[int32]state{}
		w.write(2000, 500, 2)
		start, end := w.offsets()
		if start[0] != cut[0] {
			t.Fatalf("log start = %d, want %d after DeleteRecords", start[0], cut[0])
		}
		res := restoreAll(t, st, w)[0]
		if !res.Wiped || res.From != cut[0] || res.To != end[0] {
			t.Fatalf("restore below log start: %+v, want wiped, from %d to %d", res, cut[0], end[0])
		}
		checkLevel(t, st, w.truth, end)
	})
}

// TestRestoreWipesAboveHighWatermark: a stored offset the log never reached
// (the topic was recreated) also means the local copy is unusable.
func TestRestoreWipesAboveHighWatermark(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		big := newChangelog(t, c, 1, slowTombstones())
		big.orders = 300
		big.write(2000, 500, 0)
		st := openStore(t, vfs.NewMem(), "/recreated")
		restoreAll(t, st, big)

		small := newChangelog(t, c, 1, slowTombstones())
		small.orders = 300
		// An aborted transaction after every committed one: the log ends
		// with aborted records and an abort marker, so the end is seen
		// only by position (never by a record at high watermark - 1).
		small.write(100, 50, 1)
		res := restoreAll(t, st, small)[0]
		if !res.Wiped || res.From != 0 {
			t.Fatalf("restore with an offset above the high watermark: %+v, want wiped from 0", res)
		}
		_, end := small.offsets()
		checkLevel(t, st, small.truth, end)
	})
}

// TestRestoreFilter: records the filter refuses are not applied, and the
// offset still moves past them.
func TestRestoreFilter(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		w := newChangelog(t, c, 1, nil)
		w.orders = 200
		w.write(2000, 400, 2)
		st := openStore(t, vfs.NewMem(), "/filter")
		skip := func(id string) bool { return strings.HasSuffix(id, "7") }
		res, err := st.Restore(w.ctx, 0, RestoreOptions{
			Topic: w.topic, ClientOpts: w.clientOpts(), BatchRecords: 100,
			filter: func(r *kgo.Record) bool { return !skip(string(r.Key)) },
		})
		if err != nil {
			t.Fatal(err)
		}
		want := state{}
		for id, v := range w.truth[0] {
			if !skip(id) {
				want[id] = v
			}
		}
		_, end := w.offsets()
		checkLevel(t, st, map[int32]state{0: want}, end)
		if res.Skipped == 0 || res.Records+res.Skipped != 2000 {
			t.Fatalf("filter: %+v, want applied+skipped = 2000 committed records", res)
		}
	})
}

// TestRestoreRefusesGroupOptions: the restore client must stay outside any
// group and must not take over the processor's transactional ID.
func TestRestoreRefusesGroupOptions(t *testing.T) {
	c := kafkatest.Fake(t)
	st := openStore(t, vfs.NewMem(), "/opts")
	ctx := context.Background()
	for name, opt := range map[string]kgo.Opt{
		"group":         kgo.ConsumerGroup("g"),
		"transactional": kgo.TransactionalID("tx"),
		"topics":        kgo.ConsumeTopics("x"),
	} {
		_, err := st.Restore(ctx, 0, RestoreOptions{Topic: "t", ClientOpts: []kgo.Opt{kgo.SeedBrokers(c.Brokers...), opt}})
		if !errors.Is(err, ErrClientOptions) {
			t.Errorf("%s: %v, want ErrClientOptions", name, err)
		}
	}
	if _, err := st.Restore(ctx, 0, RestoreOptions{ClientOpts: []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}}); err == nil {
		t.Error("restore without a topic succeeded")
	}
}

// TestRestoreCancelKeepsProgress: a cancelled restore keeps what it applied,
// consistent with its offset, and a second restore finishes the job.
func TestRestoreCancelKeepsProgress(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		w := newChangelog(t, c, 1, nil)
		w.orders = 1000
		w.write(5000, 1000, 2)
		st := openStore(t, vfs.NewMem(), "/cancel")
		ctx, cancel := context.WithCancel(w.ctx)
		n := 0
		res, err := st.Restore(ctx, 0, RestoreOptions{
			Topic: w.topic, ClientOpts: w.clientOpts(), BatchRecords: 300,
			filter: func(*kgo.Record) bool {
				if n++; n == 1500 {
					cancel()
				}
				return true
			},
		})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled restore: %v", err)
		}
		off, ok, err2 := st.ChangelogOffset(0)
		if err2 != nil || !ok || off != res.To || off <= 0 {
			t.Fatalf("offset after cancel = %d %v %v, result %+v", off, ok, err2, res)
		}
		// What was kept is exactly the fold of the log below the offset.
		checkPrefix(t, st, w, 0, off)
		restoreAll(t, st, w)
		_, end := w.offsets()
		checkLevel(t, st, w.truth, end)
	})
}

// checkPrefix asserts that partition p of the store equals the committed
// changelog records below offset off, applied in order. The topic must not
// be compacted.
func checkPrefix(t *testing.T, s *Store, w *changelog, p int32, off int64) {
	t.Helper()
	want := state{}
	for _, r := range w.c.ReadCommitted(t, w.topic) {
		if r.Partition != p || r.Offset >= off {
			continue
		}
		if r.Value == nil {
			delete(want, string(r.Key))
		} else {
			want[string(r.Key)] = string(r.Value)
		}
	}
	if diff := diffState(dump(t, s).orders[p], want); diff != "" {
		t.Fatalf("partition %d at offset %d is not the changelog below it: %s", p, off, diff)
	}
}

// TestCrashBetweenKafkaAndPebbleCommit simulates the processor dying after
// its Kafka transaction committed and before (or right after) its NoSync
// Pebble commit, on a filesystem that loses unsynced writes: reopened, the
// store is behind the changelog or level with it, never ahead, and its data
// is exactly the changelog below its offset; restore brings it level.
func TestCrashBetweenKafkaAndPebbleCommit(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		// Not compacted: checkPrefix folds the log below an offset, which
		// compaction would thin out once newer records supersede them.
		w := newChangelog(t, c, 2, nil)
		w.orders = 2000
		w.write(10_000, 1000, 3)
		fs := vfs.NewCrashableMem()
		st, err := Open(Options{Dir: "/crash", FS: fs, ClosedAt: testClosedAt, Logger: testLogger(t)})
		must(t, err)
		restoreAll(t, st, w)
		must(t, st.db.Flush()) // the restored state is durable
		_, level := w.offsets()

		// A processor step: the transaction commits in Kafka, then the
		// same states go into one Pebble batch with the new offsets.
		prev := map[int32]state{}
		for p, s := range w.truth {
			prev[p] = maps.Clone(s)
		}
		next := w.txn(2000, true)
		b := st.NewBatch()
		for p := range w.parts {
			for id, v := range w.truth[p] {
				if prev[p][id] != v {
					must(t, b.Put(p, []byte(id), []byte(v)))
				}
			}
			for id := range prev[p] {
				if _, ok := w.truth[p][id]; !ok {
					must(t, b.Delete(p, []byte(id)))
				}
			}
			must(t, b.SetChangelogOffset(p, next[p]))
		}

		rng := rand.New(rand.NewPCG(3, 4))
		clone := func(pct int) *vfs.MemFS {
			return fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rng})
		}
		type crash struct {
			name string
			fs   *vfs.MemFS
			want func(p int32, off int64) bool
		}
		isLevel := func(p int32, off int64) bool { return off == level[p] }
		crashes := []crash{
			// The process dies before the Pebble commit; the OS keeps
			// every write: the store is exactly where it was.
			{"before-pebble-commit", clone(100), isLevel},
		}
		must(t, b.Commit())
		crashes = append(crashes,
			// The machine dies right after the NoSync commit.
			crash{"after-commit-unsynced-lost", clone(0), isLevel},
		)
		// The OS keeps some or all unsynced writes. Even "all" may miss the
		// batch: a NoSync commit returns before Pebble's WAL writer has
		// handed the bytes to the file (seen in CI). Either way the store is
		// at the old or the new offset, never ahead, and its data matches.
		for _, pct := range []int{30, 70, 100} {
			crashes = append(crashes, crash{fmt.Sprintf("after-commit-unsynced-%d%%-kept", pct), clone(pct),
				func(p int32, off int64) bool { return off == level[p] || off == next[p] }})
		}
		must(t, st.Close())

		_, end := w.offsets() // also waits for the markers: checkPrefix reads to the end
		for _, cr := range crashes {
			t.Run(cr.name, func(t *testing.T) {
				s2 := openStore(t, cr.fs, "/crash")
				for p := range w.parts {
					off, ok, err := s2.ChangelogOffset(p)
					must(t, err)
					if !ok || off > end[p] || !cr.want(p, off) {
						t.Fatalf("partition %d: offset %d (present %v); before the step %d, after %d, changelog end %d",
							p, off, ok, level[p], next[p], end[p])
					}
					checkPrefix(t, s2, w, p, off)
				}
				restoreAll(t, s2, w)
				checkLevel(t, s2, w.truth, end)
			})
		}
	})
}
