package statestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The store contract, run against Pebble on disk and on vfs.NewMem().

func TestContract(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, fs vfs.FS, dir string)
	}{
		{"GetMissing", testGetMissing},
		{"ReadYourWrites", testReadYourWrites},
		{"WriteOnlyBatch", testWriteOnlyBatch},
		{"DiscardLeavesNoTrace", testDiscardLeavesNoTrace},
		{"BatchAcrossPartitions", testBatchAcrossPartitions},
		{"PartitionsAreSeparate", testPartitionsAreSeparate},
		{"BatchFinishedOnce", testBatchFinishedOnce},
		{"DropPartition", testDropPartition},
		{"Expired", testExpired},
		{"ExpiredSkipsStaleEntries", testExpiredSkipsStaleEntries},
		{"ExpiredWithinBucket", testExpiredWithinBucket},
		{"Format1Index", testFormat1Index},
		{"Reopen", testReopen},
		{"InvalidPartition", testInvalidPartition},
		{"Closed", testClosed},
		{"RandomOpsMatchModel", testRandomOpsMatchModel},
	} {
		t.Run(tc.name, func(t *testing.T) { forEachBackend(t, tc.fn) })
	}
}

func mustGet(t *testing.T, s *Store, p int32, id string) (string, bool) {
	t.Helper()
	v, ok, err := s.Get(p, []byte(id))
	if err != nil {
		t.Fatalf("Get(%d, %s): %v", p, id, err)
	}
	return string(v), ok
}

func mustOffset(t *testing.T, s *Store, p int32) (int64, bool) {
	t.Helper()
	o, ok, err := s.ChangelogOffset(p)
	if err != nil {
		t.Fatalf("ChangelogOffset(%d): %v", p, err)
	}
	return o, ok
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testGetMissing(t *testing.T, fs vfs.FS, dir string) {
	s := openStore(t, fs, dir)
	if v, ok := mustGet(t, s, 0, "nope"); ok {
		t.Fatalf("Get of a missing order = %q, true", v)
	}
	if o, ok := mustOffset(t, s, 0); ok {
		t.Fatalf("offset of an empty partition = %d, true", o)
	}
}

func testReadYourWrites(t *testing.T, fs vfs.FS, dir string) {
	s := openStore(t, fs, dir)
	b0 := s.NewBatch()
	must(t, b0.Put(3, []byte("o1"), openValue("v0")))
	must(t, b0.Put(3, []byte("o2"), openValue("x")))
	must(t, b0.SetChangelogOffset(3, 10))
	must(t, b0.Commit())

	b := s.NewBatch()
	defer b.Discard()
	// The batch sees the committed value, then its own writes.
	if v, ok, err := b.Get(3, []byte("o1")); err != nil || !ok || string(v) != "open:v0" {
		t.Fatalf("batch Get before write = %q %v %v", v, ok, err)
	}
	must(t, b.Put(3, []byte("o1"), openValue("v1")))
	must(t, b.Put(3, []byte("o1"), openValue("v2")))
	must(t, b.Delete(3, []byte("o2")))
	must(t, b.Put(3, []byte("o3"), closedValue(5, "new")))
	for id, want := range map[string]string{"o1": "open:v2", "o3": "closed:5:new"} {
		if v, ok, err := b.Get(3, []byte(id)); err != nil || !ok || string(v) != want {
			t.Fatalf("batch Get(%s) = %q %v %v, want %q", id, v, ok, err, want)
		}
	}
	if v, ok, err := b.Get(3, []byte("o2")); err != nil || ok {
		t.Fatalf("batch Get of a key it deleted = %q %v %v", v, ok, err)
	}
	// Nothing is visible outside the batch before Commit.
	if v, _ := mustGet(t, s, 3, "o1"); v != "open:v0" {
		t.Fatalf("store sees uncommitted write: %q", v)
	}
	if _, ok := mustGet(t, s, 3, "o2"); !ok {
		t.Fatal("store sees uncommitted delete")
	}
	must(t, b.SetChangelogOffset(3, 17))
	if o, _ := mustOffset(t, s, 3); o != 10 {
		t.Fatalf("store sees uncommitted offset %d", o)
	}
	must(t, b.Commit())
	d := dump(t, s)
	want := state{"o1": "open:v2", "o3": "closed:5:new"}
	if diff := diffState(d.orders[3], want); diff != "" {
		t.Fatal(diff)
	}
	if d.offsets[3] != 17 {
		t.Fatalf("offset after commit = %d, want 17", d.offsets[3])
	}
	if !slices.Equal(d.index[3], []string{"5/o3"}) {
		t.Fatalf("index = %v, want [5/o3]", d.index[3])
	}
}

// A write-only batch writes states, index entries and offsets as a batch
// does; it cannot read, and Delete leaves the order's index entry to Expired.
func testWriteOnlyBatch(t *testing.T, fs vfs.FS, dir string) {
	s := openStore(t, fs, dir)
	b0 := s.NewWriteBatch()
	must(t, b0.Put(3, []byte("open"), openValue("v0")))
	must(t, b0.Put(3, []byte("closed"), closedValue(5, "x")))
	must(t, b0.SetChangelogOffset(3, 10))
	must(t, b0.Commit())

	b := s.NewWriteBatch()
	if _, _, err := b.Get(3, []byte("open")); !errors.Is(err, ErrWriteOnly) {
		t.Fatalf("Get on a write-only batch: %v, want ErrWriteOnly", err)
	}
	must(t, b.PutClosed(3, []byte("open"), closedValue(7, "y"), 7, true)) // as Put would
	must(t, b.Delete(3, []byte("closed")))
	must(t, b.PutClosed(3, []byte("new"), openValue("n"), 0, false))
	must(t, b.SetChangelogOffset(3, 17))
	if v, _ := mustGet(t, s, 3, "closed"); v != "closed:5:x" {
		t.Fatalf("store sees an uncommitted delete: %q", v)
	}
	must(t, b.Commit())
	d := dump(t, s)
	if diff := diffState(d.orders[3], state{"open": "closed:7:y", "new": "open:n"}); diff != "" {
		t.Fatal(diff)
	}
	if d.offsets[3] != 17 {
		t.Fatalf("offset after commit = %d, want 17", d.offsets[3])
	}
	if !slices.Equal(d.index[3], []string{"5/closed", "7/open"}) {
		t.Fatalf("index = %v, want [5/closed 7/open] (the deleted order's entry left to Expired)", d.index[3])
	}
	if live := d.liveIndex(3); !slices.Equal(live, []string{"7/open"}) {
		t.Fatalf("live index = %v, want [7/open]", live)
	}

	// A Put and a Delete of one order in one batch leave its index entry
	// behind too; Expired returns neither deleted order and drops both.
	b2 := s.NewWriteBatch()
	must(t, b2.Put(3, []byte("brief"), closedValue(6, "z")))
	must(t, b2.Delete(3, []byte("brief")))
	must(t, b2.Commit())
	ids, err := s.Expired(3, time.UnixMilli(100), 0)
	must(t, err)
	if len(ids) != 1 || string(ids[0]) != "open" {
		t.Fatalf("Expired = %q, want [open]", ids)
	}
	if d := dump(t, s); !slices.Equal(d.index[3], []string{"7/open"}) {
		t.Fatalf("index after Expired = %v, want [7/open]", d.index[3])
	}
}

func testDiscardLeavesNoTrace(t *testing.T, fs vfs.FS, dir string) {
	s := openStore(t, fs, dir)
	b0 := s.NewBatch()
	must(t, b0.Put(1, []byte("keep"), closedValue(1, "k")))
	must(t, b0.SetChangelogOffset(1, 4))
	must(t, b0.Commit())
	before := dump(t, s)

	b := s.NewBatch()
	must(t, b.Put(1, []byte("new"), closedValue(2, "n")))
	must(t, b.Put(2, []byte("new"), openValue("n")))
	must(t, b.Delete(1, []byte("keep")))
	must(t, b.SetChangelogOffset(1, 99))
	must(t, b.SetChangelogOffset(2, 99))
	if b.Len() == 0 {
		t.Fatal("batch with writes has Len 0")
	}
	b.Discard()
	after := dump(t, s)
	if diff := diffState(after.orders[1], before.orders[1]); diff != "" || len(after.orders) != len(before.orders) {
		t.Fatalf("discard changed orders: %s (partitions %d -> %d)", diff, len(before.orders), len(after.orders))
	}
	if fmt.Sprint(after.index) != fmt.Sprint(before.index) || fmt.Sprint(after.offsets) != fmt.Sprint(before.offsets) {
		t.Fatalf("discard changed index/offsets: %v %v -> %v %v", before.index, before.offsets, after.index, after.offsets)
	}
}

func testBatchAcrossPartitions(t *testing.T, fs vfs.FS, dir string) {
	s := openStore(t, fs, dir)
	b := s.NewBatch()
	for p := int32(0); p < 4; p++ {
		must(t, b.Put(p, []byte("o"), openValue(fmt.Sprint(p))))
		must(t, b.SetChangelogOffset(p, int64(100+p)))
	}
	must(t, b.Commit())
	for p := int32(0); p < 4; p++ {
		if v, _ := mustGet(t, s, p, "o"); v != fmt.Sprintf("open:%d", p) {
			t.Fatalf("partition %d: %q", p, v)
		}
		if o, ok := mustOffset(t, s, p); !ok || o != int64(100+p) {
			t.Fatalf("partition %d offset %d %v", p, o, ok)
		}
	}
}

func testPartitionsAreSeparate(t *testing.T, fs vfs.FS, dir string) {
	s := openStore(t, fs, dir)
	b := s.NewBatch()
	// Order IDs that would collide if the partition prefix were not fixed-width.
	must(t, b.Put(1, []byte("\x00\x00\x00\x02x"), openValue("a")))
	must(t, b.Put(2, []byte("x"), openValue("b")))
	must(t, b.Put(0x01000000, []byte(""), openValue("empty id")))
	must(t, b.Commit())
	if _, ok := mustGet(t, s, 2, "\x00\x00\x00\x02x"); ok {
		t.Fatal("partition 2 sees partition 1's key")
	}
	if v, _ := mustGet(t, s, 2, "x"); v != "open:b" {
		t.Fatalf("partition 2 x = %q", v)
	}
	if v, ok := mustGet(t, s, 0x01000000, ""); !ok || v != "open:empty id" {
		t.Fatalf("empty id = %q %v", v, ok)
	}
}

func testBatchFinishedOnce(t *testing.T, fs vfs.FS, dir string) {
	s := openStore(t, fs, dir)
	b := s.NewBatch()
	must(t, b.Put(0, []byte("a"), openValue("1")))
	must(t, b.Commit())
	for name, err := range map[string]error{
		"Commit":             b.Commit(),
		"Put":                b.Put(0, []byte("a"), openValue("2")),
		"Delete":             b.Delete(0, []byte("a")),
		"SetChangelogOffset": b.SetChangelogOffset(0, 1),
	} {
		if !errors.Is(err, ErrBatchDone) {
			t.Errorf("%s after Commit: %v, want ErrBatchDone", name, err)
		}
	}
	if _, _, err := b.Get(0, []byte("a")); !errors.Is(err, ErrBatchDone) {
		t.Errorf("Get after Commit: %v", err)
	}
	b.Discard() // no-op
	if v, _ := mustGet(t, s, 0, "a"); v != "open:1" {
		t.Fatalf("a = %q", v)
	}
	d := s.NewBatch()
	d.Discard()
	if err := d.Commit(); !errors.Is(err, ErrBatchDone) {
		t.Errorf("Commit after Discard: %v", err)
	}
	// An empty batch commits fine.
	must(t, s.NewBatch().Commit())
}

func testDropPartition(t *testing.T, fs vfs.FS, dir string) {
	s := openStore(t, fs, dir)
	b := s.NewBatch()
	for p := int32(0); p < 3; p++ {
		for i := 0; i < 50; i++ {
			id := []byte(fmt.Sprintf("o%d", i))
			if i%2 == 0 {
				must(t, b.Put(p, id, closedValue(int64(i), "c")))
			} else {
				must(t, b.Put(p, id, openValue("o")))
			}
		}
		must(t, b.SetChangelogOffset(p, 50))
	}
	must(t, b.Commit())
	must(t, s.DropPartition(1))
	d := dump(t, s)
	if len(d.orders[1]) != 0 || len(d.index[1]) != 0 {
		t.Fatalf("partition 1 after drop: %d orders, %d index entries", len(d.orders[1]), len(d.index[1]))
	}
	if _, ok := d.offsets[1]; ok {
		t.Fatal("partition 1 keeps its offset after drop")
	}
	for _, p := range []int32{0, 2} {
		if len(d.orders[p]) != 50 || len(d.index[p]) != 25 || d.offsets[p] != 50 {
			t.Fatalf("partition %d touched by drop of 1: %d orders, %d index, offset %d",
				p, len(d.orders[p]), len(d.index[p]), d.offsets[p])
		}
	}
}

func testExpired(t *testing.T, fs vfs.FS, dir string) {
	s := openStore(t, fs, dir)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
	b := s.NewBatch()
	must(t, b.Put(0, []byte("c3"), closedValue(ms(3*time.Hour), "")))
	must(t, b.Put(0, []byte("c1"), closedValue(ms(1*time.Hour), "")))
	must(t, b.Put(0, []byte("c2"), closedValue(ms(2*time.Hour), "")))
	must(t, b.Put(0, []byte("open"), openValue("")))
	must(t, b.Put(1, []byte("other"), closedValue(ms(0), "")))
	must(t, b.Put(0, []byte("old"), closedValue(-5, "before 1970")))
	must(t, b.Commit())

	got := func(cutoff time.Time, limit int) []string {
		t.Helper()
		ids, err := s.Expired(0, cutoff, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, id := range ids {
			out = append(out, string(id))
		}
		return out
	}
	if g := got(base.Add(2*time.Hour), 0); !slices.Equal(g, []string{"old", "c1"}) {
		t.Fatalf("closed strictly before +2h: %v, want [old c1]", g)
	}
	if g := got(base.Add(24*time.Hour), 2); !slices.Equal(g, []string{"old", "c1"}) {
		t.Fatalf("limit 2: %v", g)
	}
	if g := got(base.Add(24*time.Hour), 0); !slices.Equal(g, []string{"old", "c1", "c2", "c3"}) {
		t.Fatalf("all: %v", g)
	}
	// The sweep deletes them through a batch; the next Expired drops
	// their index entries.
	b = s.NewBatch()
	for _, id := range got(base.Add(150*time.Minute), 0) {
		must(t, b.Delete(0, []byte(id)))
	}
	must(t, b.Commit())
	d := dump(t, s)
	want := []string{fmt.Sprint(ms(3*time.Hour)) + "/c3"}
	if live := d.liveIndex(0); !slices.Equal(live, want) {
		t.Fatalf("live index after delete = %v, want %v", live, want)
	}
	if g := got(base.Add(150*time.Minute), 0); len(g) != 0 {
		t.Fatalf("Expired after the deletes = %v, want none", g)
	}
	d = dump(t, s)
	if !slices.Equal(d.index[0], want) {
		t.Fatalf("index after Expired = %v, want %v", d.index[0], want)
	}
	if diff := diffState(d.orders[0], state{"c3": string(closedValue(ms(3*time.Hour), "")), "open": "open:"}); diff != "" {
		t.Fatal(diff)
	}

	// Without ClosedAt there is no index.
	s2, err := Open(Options{Dir: dir + "-noidx", FS: fs, Logger: testLogger(t)})
	must(t, err)
	defer s2.Close()
	if _, err := s2.Expired(0, base, 0); !errors.Is(err, ErrRetentionDisabled) {
		t.Fatalf("Expired without ClosedAt: %v", err)
	}
}

// Index entries written without reading the previous value can outlive
// their order; Expired must not return such orders, and removes the entries.
func testExpiredSkipsStaleEntries(t *testing.T, fs vfs.FS, dir string) {
	s := openStore(t, fs, dir)
	b := s.NewBatch()
	must(t, b.Put(0, []byte("reopened"), closedValue(10, "")))
	must(t, b.Put(0, []byte("reclosed"), closedValue(20, "")))
	must(t, b.Put(0, []byte("gone"), closedValue(30, "")))
	must(t, b.Put(0, []byte("live"), closedValue(40, "")))
	must(t, b.Commit())
	// Simulate what restore does: overwrite and delete without the index.
	raw := s.db.NewBatch()
	must(t, raw.Set(appendOrderKey(nil, 0, []byte("reopened")), openValue("again"), nil))
	must(t, raw.Set(appendOrderKey(nil, 0, []byte("reclosed")), closedValue(1000, ""), nil))
	must(t, raw.Merge(appendIndexKey(nil, 0, 1000, nil), appendIndexEntry(nil, 1000, 1000, []byte("reclosed")), nil))
	must(t, raw.Delete(appendOrderKey(nil, 0, []byte("gone")), nil))
	must(t, raw.Commit(pebble.NoSync))
	must(t, raw.Close())

	ids, err := s.Expired(0, time.UnixMilli(100), 0)
	must(t, err)
	if len(ids) != 1 || string(ids[0]) != "live" {
		t.Fatalf("Expired = %q, want [live]", ids)
	}
	if d := dump(t, s); !slices.Equal(d.index[0], []string{"40/live", "1000/reclosed"}) {
		t.Fatalf("index after Expired = %v, want stale entries gone", d.index[0])
	}
}

// Orders that close in one second share an index bucket. A limit that ends
// inside the bucket leaves it as it is; each call returns the next oldest
// orders, and once the caller has deleted all of them, the bucket goes.
// An order written closed twice (at one time) comes back once.
func testExpiredWithinBucket(t *testing.T, fs vfs.FS, dir string) {
	s := openStore(t, fs, dir)
	for _, ids := range [][]string{{"e", "c", "a"}, {"d", "b", "c"}} {
		b := s.NewWriteBatch()
		for _, id := range ids {
			must(t, b.Put(0, []byte(id), closedValue(5000+int64(id[0]-'a'), "")))
		}
		must(t, b.Commit())
	}
	if d := dump(t, s); len(d.index[0]) != 6 || len(d.liveIndex(0)) != 5 {
		t.Fatalf("index = %v, want 6 entries (c twice), 5 live", d.index[0])
	}
	var order []string
	for round := 0; round < 10; round++ {
		ids, err := s.Expired(0, time.UnixMilli(6000), 2)
		must(t, err)
		if len(ids) == 0 {
			break
		}
		b := s.NewWriteBatch()
		for _, id := range ids {
			order = append(order, string(id))
			must(t, b.Delete(0, id))
		}
		must(t, b.Commit())
	}
	if want := []string{"a", "b", "c", "d", "e"}; !slices.Equal(order, want) {
		t.Fatalf("Expired in rounds of 2 returned %v, want %v", order, want)
	}
	if d := dump(t, s); len(d.index[0]) != 0 {
		t.Fatalf("index after all expired and deleted = %v, want empty", d.index[0])
	}

	// A bucket that straddles the cutoff: only the earlier orders expire,
	// and the later entry stays.
	b := s.NewWriteBatch()
	must(t, b.Put(0, []byte("early"), closedValue(7100, "")))
	must(t, b.Put(0, []byte("late"), closedValue(7900, "")))
	must(t, b.Commit())
	ids, err := s.Expired(0, time.UnixMilli(7500), 0)
	must(t, err)
	if len(ids) != 1 || string(ids[0]) != "early" {
		t.Fatalf("Expired before 7.5 s = %q, want [early]", ids)
	}
	b = s.NewWriteBatch()
	must(t, b.Delete(0, []byte("early")))
	must(t, b.Commit())
	if _, err := s.Expired(0, time.UnixMilli(7500), 0); err != nil {
		t.Fatal(err)
	}
	if d := dump(t, s); !slices.Equal(d.index[0], []string{"7900/late"}) {
		t.Fatalf("index = %v, want [7900/late]", d.index[0])
	}
}

// A store of format 1 kept one index key per closed order. This build
// marks it format 2 on open, reads those keys as index entries (dropping
// stale ones), and indexes new closes in buckets.
func testFormat1Index(t *testing.T, fs vfs.FS, dir string) {
	s := openStore(t, fs, dir)
	raw := s.db.NewBatch()
	must(t, raw.Set(formatKey(), []byte(formatVersion1), nil))
	for _, o := range []struct {
		id string
		at int64
	}{{"old1", 10}, {"old2", 20}, {"gone", 30}} {
		must(t, raw.Set(appendOrderKey(nil, 0, []byte(o.id)), closedValue(o.at, ""), nil))
		must(t, raw.Set(appendIndexKey(nil, 0, o.at, []byte(o.id)), nil, nil))
	}
	must(t, raw.Delete(appendOrderKey(nil, 0, []byte("gone")), nil))
	must(t, raw.Commit(pebble.NoSync))
	must(t, raw.Close())
	must(t, s.Close())

	s = openStore(t, fs, dir)
	v, closer, err := s.db.Get(formatKey())
	must(t, err)
	if string(v) != formatVersion {
		t.Fatalf("format after open = %q, want %q", v, formatVersion)
	}
	must(t, closer.Close())
	b := s.NewWriteBatch()
	must(t, b.Put(0, []byte("new"), closedValue(15, "")))
	must(t, b.Commit())
	ids, err := s.Expired(0, time.UnixMilli(100), 0)
	must(t, err)
	var got []string
	for _, id := range ids {
		got = append(got, string(id))
	}
	// Format 1 keys sort by their exact time, the bucket by its start (0).
	if want := []string{"new", "old1", "old2"}; !slices.Equal(got, want) {
		t.Fatalf("Expired = %v, want %v", got, want)
	}
	if d := dump(t, s); !slices.Equal(d.index[0], []string{"10/old1", "15/new", "20/old2"}) {
		t.Fatalf("index = %v, want the stale format 1 key gone", d.index[0])
	}
}

func testReopen(t *testing.T, fs vfs.FS, dir string) {
	s, err := Open(Options{Dir: dir, FS: fs, ClosedAt: testClosedAt, Logger: testLogger(t)})
	must(t, err)
	b := s.NewBatch()
	must(t, b.Put(7, []byte("o"), closedValue(9, "x")))
	must(t, b.SetChangelogOffset(7, 42))
	must(t, b.Commit())
	must(t, s.Close())
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	s = openStore(t, fs, dir)
	if v, _ := mustGet(t, s, 7, "o"); v != "closed:9:x" {
		t.Fatalf("after reopen: %q", v)
	}
	if o, _ := mustOffset(t, s, 7); o != 42 {
		t.Fatalf("offset after reopen: %d", o)
	}
}

func testInvalidPartition(t *testing.T, fs vfs.FS, dir string) {
	s := openStore(t, fs, dir)
	b := s.NewBatch()
	defer b.Discard()
	checks := map[string]error{
		"Batch.Put":        b.Put(-1, []byte("a"), nil),
		"Batch.Delete":     b.Delete(-1, []byte("a")),
		"Batch.SetOffset":  b.SetChangelogOffset(-1, 0),
		"DropPartition":    s.DropPartition(-1),
		"Batch.NegOffset?": nil,
	}
	_, _, checks["Get"] = s.Get(-1, []byte("a"))
	_, _, checks["ChangelogOffset"] = s.ChangelogOffset(-1)
	_, checks["Expired"] = s.Expired(-1, time.Now(), 1)
	delete(checks, "Batch.NegOffset?")
	for name, err := range checks {
		if !errors.Is(err, ErrInvalidPartition) {
			t.Errorf("%s(-1): %v, want ErrInvalidPartition", name, err)
		}
	}
	if err := b.SetChangelogOffset(0, -1); err == nil {
		t.Error("negative offset accepted")
	}
}

func testClosed(t *testing.T, fs vfs.FS, dir string) {
	s, err := Open(Options{Dir: dir, FS: fs, ClosedAt: testClosedAt, Logger: testLogger(t)})
	must(t, err)
	pending := s.NewBatch()
	must(t, pending.Put(0, []byte("a"), openValue("")))
	must(t, s.Close())
	if err := pending.Commit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close: %v", err)
	}
	if _, _, err := s.Get(0, []byte("a")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if err := s.DropPartition(0); !errors.Is(err, ErrClosed) {
		t.Errorf("DropPartition after Close: %v", err)
	}
	if err := s.EachOrder(0, func([]byte) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("EachOrder after Close: %v", err)
	}
	if _, err := s.Metrics(); !errors.Is(err, ErrClosed) {
		t.Errorf("Metrics after Close: %v", err)
	}
	if err := s.NewBatch().Put(0, []byte("a"), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Put on a batch of a closed store: %v", err)
	}
}

// testRandomOpsMatchModel applies random batches (puts, deletes, offsets,
// discards, drops) to the store and to a map model, then compares all
// keyspaces, including the retention index the model implies.
func testRandomOpsMatchModel(t *testing.T, fs vfs.FS, dir string) {
	s := openStore(t, fs, dir)
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[int32]state{}
	offsets := map[int32]int64{}
	for round := 0; round < 300; round++ {
		if rng.IntN(50) == 0 {
			p := int32(rng.IntN(3))
			must(t, s.DropPartition(p))
			delete(model, p)
			delete(offsets, p)
			continue
		}
		b := s.NewBatch()
		pending := map[int32]state{}
		pendingOff := map[int32]int64{}
		view := func(p int32, id string) (string, bool) {
			if st, ok := pending[p]; ok {
				if v, ok := st[id]; ok {
					if v == "\x00deleted" {
						return "", false
					}
					return v, true
				}
			}
			v, ok := model[p][id]
			return v, ok
		}
		for i := rng.IntN(40); i > 0; i-- {
			p := int32(rng.IntN(3))
			id := fmt.Sprintf("o%d", rng.IntN(60))
			if pending[p] == nil {
				pending[p] = state{}
			}
			got, ok, err := b.Get(p, []byte(id))
			must(t, err)
			if wv, wok := view(p, id); ok != wok || string(got) != wv {
				t.Fatalf("round %d: batch Get(%d,%s) = %q %v, model %q %v", round, p, id, got, ok, wv, wok)
			}
			switch rng.IntN(4) {
			case 0:
				must(t, b.Delete(p, []byte(id)))
				pending[p][id] = "\x00deleted"
			case 1:
				// Closed orders stay closed at one time, as in the
				// processor (terminal states accept no events).
				v := string(closedValue(int64(len(id)*1000+int(id[1])), fmt.Sprint(round)))
				must(t, b.Put(p, []byte(id), []byte(v)))
				pending[p][id] = v
			default:
				v := string(openValue(fmt.Sprint(round, i)))
				if old, ok := view(p, id); ok && old[0] == 'c' {
					continue
				}
				must(t, b.Put(p, []byte(id), []byte(v)))
				pending[p][id] = v
			}
			if rng.IntN(5) == 0 {
				off := int64(round*100 + i)
				must(t, b.SetChangelogOffset(p, off))
				pendingOff[p] = off
			}
		}
		if rng.IntN(4) == 0 {
			b.Discard()
			continue
		}
		must(t, b.Commit())
		for p, st := range pending {
			if model[p] == nil {
				model[p] = state{}
			}
			for id, v := range st {
				if v == "\x00deleted" {
					delete(model[p], id)
				} else {
					model[p][id] = v
				}
			}
		}
		for p, o := range pendingOff {
			offsets[p] = o
		}
	}
	d := dump(t, s)
	for p := int32(0); p < 3; p++ {
		if diff := diffState(d.orders[p], model[p]); diff != "" {
			t.Fatalf("partition %d: %s", p, diff)
		}
		var ids []string
		must(t, s.EachOrder(p, func(id []byte) { ids = append(ids, string(id)) }))
		want := slices.Sorted(maps.Keys(model[p]))
		if !slices.Equal(ids, want) {
			t.Fatalf("partition %d: EachOrder gave %v, want %v", p, ids, want)
		}
		w := wantIndex(model[p])
		if live := d.liveIndex(p); !slices.Equal(live, w) {
			t.Fatalf("partition %d live index = %v, want %v", p, live, w)
		}
		// Expired returns every closed order once, and drops the rest.
		expired, err := s.Expired(p, time.UnixMilli(1<<50), 0)
		must(t, err)
		var got []string
		for _, id := range expired {
			at, _ := testClosedAt([]byte(model[p][string(id)]))
			got = append(got, fmt.Sprintf("%d/%s", at, id))
		}
		if !slices.Equal(got, w) {
			t.Fatalf("partition %d: Expired = %v, want %v", p, got, w)
		}
		if d := dump(t, s); !slices.Equal(d.index[p], w) {
			t.Fatalf("partition %d index after Expired = %v, want %v", p, d.index[p], w)
		}
		if d.offsets[p] != offsets[p] {
			t.Fatalf("partition %d offset = %d, want %d", p, d.offsets[p], offsets[p])
		}
	}
}

func TestOptions(t *testing.T) {
	o := Options{Dir: "x"}
	d := o.ensureDefaults()
	if o.FS != nil || o.Logger != nil || o.CacheSize != 0 || o.MemTableSize != 0 {
		t.Fatalf("ensureDefaults mutated its receiver: %+v", o)
	}
	if d.FS != vfs.Default || d.Logger != slog.Default() || d.CacheSize != defaultCacheSize || d.MemTableSize != defaultMemTableSize {
		t.Fatalf("defaults not set: %+v", d)
	}
	if err := d.validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Options{{}, {Dir: "x", CacheSize: -1}, {Dir: "x", MemTableSize: 1}} {
		if err := bad.ensureDefaults().validate(); err == nil {
			t.Errorf("Validate(%+v) accepted", bad)
		}
	}
	if _, err := Open(Options{FS: vfs.NewMem()}); err == nil {
		t.Fatal("Open without Dir succeeded")
	}
}

func TestFormatVersionChecked(t *testing.T) {
	fs := vfs.NewMem()
	s := openStore(t, fs, "/db")
	must(t, s.db.Set(formatKey(), []byte("999"), pebble.NoSync))
	must(t, s.Close())
	if _, err := Open(Options{Dir: "/db", FS: fs, Logger: testLogger(t)}); !errors.Is(err, ErrFormat) {
		t.Fatalf("Open of an unknown format: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fs vfs.FS, dir string) {
		s := openStore(t, fs, dir)
		b := s.NewBatch()
		for i := 0; i < 1000; i++ {
			must(t, b.Put(0, []byte(fmt.Sprint(i)), openValue("payload")))
		}
		must(t, b.Commit())
		must(t, s.db.Flush())
		m, err := s.Metrics()
		must(t, err)
		if m.DiskSpaceUsage == 0 || m.Pebble == nil || m.Pebble.Flush.Count == 0 {
			t.Fatalf("metrics after a flush: %+v", m)
		}
		if m.Flushes != m.Pebble.Flush.Count || m.FlushedBytes == 0 || m.CompactedBytes != 0 {
			t.Fatalf("after a flush: %d flushes (Pebble's %d), %d bytes flushed, %d compacted; want Pebble's count, some bytes flushed, none compacted",
				m.Flushes, m.Pebble.Flush.Count, m.FlushedBytes, m.CompactedBytes)
		}
		// A second table over the same keys, then a compaction of both.
		b = s.NewBatch()
		for i := 0; i < 1000; i++ {
			must(t, b.Put(0, []byte(fmt.Sprint(i)), openValue("payload 2")))
		}
		must(t, b.Commit())
		must(t, s.db.Flush())
		must(t, s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, false))
		m2, err := s.Metrics()
		must(t, err)
		if m2.Flushes <= m.Flushes || m2.FlushedBytes <= m.FlushedBytes || m2.CompactedBytes == 0 {
			t.Fatalf("after a second flush and a compaction: %d flushes, %d bytes flushed, %d compacted; want more flushes and bytes than %d and %d, and some compacted",
				m2.Flushes, m2.FlushedBytes, m2.CompactedBytes, m.Flushes, m.FlushedBytes)
		}
	})
}
