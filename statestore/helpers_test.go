package statestore

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Test values are "open:<payload>" or "closed:<unix ms>:<payload>"; a real
// store holds Avro, which the store never decodes either.
func testClosedAt(v []byte) (int64, bool) {
	rest, ok := bytes.CutPrefix(v, []byte("closed:"))
	if !ok {
		return 0, false
	}
	ms, _, _ := bytes.Cut(rest, []byte(":"))
	n, err := strconv.ParseInt(string(ms), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

func openValue(payload string) []byte { return []byte("open:" + payload) }

func closedValue(ms int64, payload string) []byte {
	return []byte(fmt.Sprintf("closed:%d:%s", ms, payload))
}

// backend is a place a store can live.
type backend struct {
	name string
	fs   func(t testing.TB) (vfs.FS, string)
}

var backends = []backend{
	{"disk", func(t testing.TB) (vfs.FS, string) { return vfs.Default, t.TempDir() }},
	{"mem", func(t testing.TB) (vfs.FS, string) { return vfs.NewMem(), "/store" }},
}

// forEachBackend runs fn once per backend: the store contract holds on disk
// and in memory alike.
func forEachBackend(t *testing.T, fn func(t *testing.T, fs vfs.FS, dir string)) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			fs, dir := be.fs(t)
			fn(t, fs, dir)
		})
	}
}

func openStore(t testing.TB, fs vfs.FS, dir string) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir, FS: fs, ClosedAt: testClosedAt, CacheSize: 8 << 20, MemTableSize: 4 << 20, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testLogger logs to the test's output (shown with -v or on failure).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// state is what a store holds for one partition: order ID -> value.
type state map[string]string

// dump reads every key of the store, by keyspace.
type dumpResult struct {
	orders  map[int32]state
	index   map[int32][]string // "closedAt/id" of every index entry, stale ones included, sorted
	offsets map[int32]int64
}

func dump(t testing.TB, s *Store) dumpResult {
	t.Helper()
	it, err := s.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	d := dumpResult{orders: map[int32]state{}, index: map[int32][]string{}, offsets: map[int32]int64{}}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		top := binary.BigEndian.Uint32(k)
		switch {
		case top == indexPrefix:
			p := int32(binary.BigEndian.Uint32(k[4:]))
			at, id, ok := parseIndexKey(k)
			if !ok {
				t.Fatalf("bad index key %x", k)
			}
			if len(id) > 0 { // format 1
				d.index[p] = append(d.index[p], fmt.Sprintf("%d/%s", at, id))
				continue
			}
			es, err := parseBucket(nil, at, it.Value())
			if err != nil {
				t.Fatalf("index bucket %x: %v", k, err)
			}
			for _, e := range es {
				d.index[p] = append(d.index[p], fmt.Sprintf("%d/%s", e.at, e.id))
			}
		case top == metaPrefix:
			if bytes.Equal(k, formatKey()) {
				continue
			}
			p := int32(binary.BigEndian.Uint32(k[4:]))
			off, err := decodeOffset(it.Value())
			if err != nil {
				t.Fatal(err)
			}
			d.offsets[p] = off
		default:
			p := int32(top)
			if d.orders[p] == nil {
				d.orders[p] = state{}
			}
			d.orders[p][string(k[4:])] = string(it.Value())
		}
	}
	for p := range d.index {
		slices.SortFunc(d.index[p], compareIndexEntries)
	}
	return d
}

// compareIndexEntries orders "closedAt/id" strings by time, then ID.
func compareIndexEntries(a, b string) int {
	as, aid, _ := strings.Cut(a, "/")
	bs, bid, _ := strings.Cut(b, "/")
	at, _ := strconv.ParseInt(as, 10, 64)
	bt, _ := strconv.ParseInt(bs, 10, 64)
	if c := cmp.Compare(at, bt); c != 0 {
		return c
	}
	return strings.Compare(aid, bid)
}

// liveIndex is the index entries of partition p that match their order's
// value (what Expired may return), each once.
func (d dumpResult) liveIndex(p int32) []string {
	var out []string
	for _, e := range d.index[p] {
		as, id, _ := strings.Cut(e, "/")
		at, _ := strconv.ParseInt(as, 10, 64)
		if cur, ok := testClosedAt([]byte(d.orders[p][id])); ok && cur == at {
			out = append(out, e)
		}
	}
	return slices.Compact(out)
}

// wantIndex is the index a partition state implies.
func wantIndex(st state) []string {
	type e struct {
		at int64
		id string
	}
	var es []e
	for id, v := range st {
		if at, ok := testClosedAt([]byte(v)); ok {
			es = append(es, e{at, id})
		}
	}
	slices.SortFunc(es, func(a, b e) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return strings.Compare(a.id, b.id)
	})
	out := make([]string, 0, len(es))
	for _, x := range es {
		out = append(out, fmt.Sprintf("%d/%s", x.at, x.id))
	}
	return out
}

func diffState(got, want state) string {
	var b strings.Builder
	n := 0
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[k]; !ok || g != want[k] {
			if n < 5 {
				fmt.Fprintf(&b, "  %s: got %q (present %v), want %q\n", k, g, ok, want[k])
			}
			n++
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			if n < 5 {
				fmt.Fprintf(&b, "  %s: got %q, want absent\n", k, got[k])
			}
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d keys differ (got %d, want %d):\n%s", n, len(got), len(want), b.String())
}
