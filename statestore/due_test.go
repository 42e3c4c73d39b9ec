package statestore

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Test values with a pending timer are "due:<unix ms>:<payload>".
func testDueAt(v []byte) (int64, bool) {
	rest, ok := bytes.CutPrefix(v, []byte("due:"))
	if !ok {
		return 0, false
	}
	ms, _, _ := bytes.Cut(rest, []byte(":"))
	n, err := strconv.ParseInt(string(ms), 10, 64)
	return n, err == nil
}

// Due returns the orders whose timer is due at or before now, earliest
// first, and only while the entry matches the order's current value.
func TestDue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fs vfs.FS, dir string) {
		s, err := Open(Options{Dir: dir, FS: fs, DueAt: testDueAt, CacheSize: 8 << 20, MemTableSize: 4 << 20, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		put := func(id string, due int64) {
			t.Helper()
			b := s.NewWriteBatch()
			v := []byte("open:" + id)
			if due >= 0 {
				v = []byte(fmt.Sprintf("due:%d:%s", due, id))
			}
			if err := b.PutClosed(2, []byte(id), v, 0, false); err != nil {
				t.Fatal(err)
			}
			if due >= 0 {
				if err := b.IndexDue(2, []byte(id), due); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		due := func(now int64, limit int) []string {
			t.Helper()
			ids, err := s.Due(2, time.UnixMilli(now), limit)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, id := range ids {
				out = append(out, string(id))
			}
			return out
		}
		put("c", 3000)
		put("a", 1000)
		put("b", 2000)
		put("n", -1) // no timer
		for _, tc := range []struct {
			now   int64
			limit int
			want  []string
		}{
			{999, 0, nil},
			{1000, 0, []string{"a"}},
			{2000, 0, []string{"a", "b"}},
			{5000, 2, []string{"a", "b"}},
			{5000, 0, []string{"a", "b", "c"}},
		} {
			if got := due(tc.now, tc.limit); !slices.Equal(got, tc.want) {
				t.Errorf("Due(%d, %d) = %v, want %v", tc.now, tc.limit, got, tc.want)
			}
		}
		// a's timer fired: its next is due later; b has none left.
		put("a", 4000)
		put("b", -1)
		if got := due(3500, 0); !slices.Equal(got, []string{"c"}) {
			t.Errorf("after moves: Due = %v, want [c]", got)
		}
		if got := due(4000, 0); !slices.Equal(got, []string{"c", "a"}) {
			t.Errorf("after moves: Due = %v, want [c a]", got)
		}
		if other, err := s.Due(3, time.UnixMilli(5000), 0); err != nil || len(other) != 0 {
			t.Errorf("another partition: %v %v", other, err)
		}
		if ok, err := s.HoldsOrders(); !ok || err != nil {
			t.Errorf("HoldsOrders %v %v", ok, err)
		}
		if err := s.DropPartition(2); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.HoldsOrders(); ok || err != nil {
			t.Errorf("after drop: HoldsOrders %v %v (due-time index entries count as orders?)", ok, err)
		}
	})
	s := openStore(t, vfs.NewMem(), "/x")
	if _, err := s.Due(0, time.Now(), 0); !errors.Is(err, ErrTimersDisabled) {
		t.Errorf("without DueAt: %v", err)
	}
}
