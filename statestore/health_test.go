package statestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orderflow/orderflow/internal/disktest"
)

// countingHandler counts the records logged at error level and passes every
// record to the test's log.
type countingHandler struct {
	slog.Handler
	errors *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.errors.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return countingHandler{h.Handler.WithAttrs(a), h.errors}
}

func (h countingHandler) WithGroup(n string) slog.Handler {
	return countingHandler{h.Handler.WithGroup(n), h.errors}
}

func countingLogger(t testing.TB) (*slog.Logger, *atomic.Int64) {
	n := new(atomic.Int64)
	return slog.New(countingHandler{slog.NewTextHandler(t.Output(), nil), n}), n
}

// fillPartitions commits n orders to each of partitions 0 and 1.
func fillPartitions(t testing.TB, s *Store, n int) {
	t.Helper()
	b := s.NewBatch()
	for p := int32(0); p < 2; p++ {
		for i := range n {
			if err := b.Put(p, fmt.Appendf(nil, "order-%06d", i), openValue(fmt.Sprintf("%d-%d-%s", p, i, strings.Repeat("x", 40)))); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.SetChangelogOffset(p, int64(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptTableIsAnError flips a bit inside a data block of a table
// (the file keeps its size): Pebble's checksums find it, and the store
// reports ErrCorrupt, from Open or from the first read of the block, and
// from every call after that, instead of panicking (Pebble's default
// DataCorruption handler called Logger.Fatalf, which panicked, from a
// goroutine of Pebble's own). MoveAside then makes room for a fresh store.
func TestCorruptTableIsAnError(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, FS: vfs.Default, ClosedAt: testClosedAt, CacheSize: 8 << 20, MemTableSize: 4 << 20, Logger: testLogger(t)}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	fillPartitions(t, s, 20000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	table := disktest.FlipTableByte(t, dir)

	s, err = Open(opts)
	if err == nil {
		defer s.Close()
		// Keys sort by partition: the first data block holds partition 0's.
		err = s.EachOrder(0, func([]byte) {})
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open and read of a store with a flipped bit in %s: %v, want ErrCorrupt", table, err)
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("the error names neither the store nor the checksum: %v", err)
	}
	if s != nil {
		// The store takes no more reads or writes once it found corruption.
		if _, _, err := s.Get(1, []byte("order-000001")); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Get after the corruption: %v, want ErrCorrupt", err)
		}
		b := s.NewWriteBatch()
		if err := b.Put(1, []byte("x"), openValue("x")); err == nil {
			err = b.Commit()
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("a write after the corruption: %v, want ErrCorrupt", err)
		}
		if err := s.Close(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Close: %v, want ErrCorrupt", err)
		}
	}

	aside, err := MoveAside(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aside, dir+".corrupt-") {
		t.Errorf("moved to %s", aside)
	}
	if _, err := os.Stat(filepath.Join(aside, filepath.Base(table))); err != nil {
		t.Errorf("the corrupt table is not kept aside: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(aside) })
	s = openStore(t, vfs.Default, dir)
	if next, ok, err := s.ChangelogOffset(0); err != nil || ok {
		t.Errorf("fresh store: offset %d %v %v, want none", next, ok, err)
	}
}

// TestDiskFull fills the disk under an open store: Close fails at once with
// ErrDiskFull, logging one error (Pebble retries a failed flush without
// end: Close waited forever, logging an error per attempt); Open while the
// disk is full fails with ErrDiskFull (Pebble's MANIFEST write failure
// called Logger.Fatalf, which panicked); once space is freed, the store
// opens and holds what it held before the disk filled.
func TestDiskFull(t *testing.T) {
	mnt := disktest.Tmpfs(t, "2m")
	dir := filepath.Join(mnt, "store")
	log, errorsLogged := countingLogger(t)
	opts := Options{Dir: dir, ClosedAt: testClosedAt, CacheSize: 1 << 20, MemTableSize: 4 << 20, Logger: log}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	fillPartitions(t, s, 1000)
	if err := s.Close(); err != nil { // on disk: 1000 orders a partition
		t.Fatal(err)
	}
	if s, err = Open(opts); err != nil {
		t.Fatal(err)
	}
	fillPartitions(t, s, 5000) // in the memtable
	free := disktest.Fill(t, mnt)

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err = <-closed:
	case <-time.After(time.Minute):
		t.Fatalf("Close on a full disk has not returned after a minute (%d errors logged)", errorsLogged.Load())
	}
	if !errors.Is(err, ErrDiskFull) || !IsDiskFull(err) || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), dir) {
		t.Errorf("Close on a full disk: %v, want ErrDiskFull naming %s and ENOSPC", err, dir)
	}
	if n := errorsLogged.Load(); n != 1 {
		t.Errorf("%d errors logged, want 1", n)
	}

	for _, d := range []string{dir, filepath.Join(mnt, "new")} {
		o := opts
		o.Dir = d
		s, err := Open(o)
		if err == nil {
			_ = s.Close()
		}
		if !IsDiskFull(err) {
			t.Errorf("Open(%s) on a full disk: %v, want a full disk error", d, err)
		}
	}

	free()
	s = openStore(t, vfs.Default, dir)
	got, ok, err := s.Get(1, []byte("order-000999"))
	if err != nil || !ok || !strings.HasPrefix(string(got), "open:1-999-") {
		t.Errorf("after freeing space: %q %v %v", got, ok, err)
	}
	if next, ok, err := s.ChangelogOffset(1); err != nil || !ok || next != 1000 {
		t.Errorf("after freeing space: offset %d %v %v, want 1000 (the unflushed batch is lost; the changelog has it)", next, ok, err)
	}
}
