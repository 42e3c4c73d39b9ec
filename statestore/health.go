package statestore

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

var (
	// ErrCorrupt is wrapped by every error of a store whose files fail
	// Pebble's checksums or cannot be read back as written (a flipped bit,
	// a truncated table, a damaged MANIFEST). Once a store has reported it,
	// every later call returns it too: the store is a cache of the
	// changelog, so the remedy is to close it, move its directory aside
	// (MoveAside) and restore into a fresh one, never to read on.
	ErrCorrupt = errors.New("statestore: the store is corrupt")
	// ErrDiskFull is wrapped by the errors of a store that could not write
	// its files for want of space (with the ENOSPC error itself, so the
	// message says "no space left on device"). Once reported, every later
	// call returns it: the store stops rather than retry without end.
	// Free space and open the store again; nothing needs deleting.
	ErrDiskFull = errors.New("statestore: the disk is full")
)

// IsDiskFull reports whether err is a write that failed for want of space.
func IsDiskFull(err error) bool {
	return errors.Is(err, ErrDiskFull) || errors.Is(err, syscall.ENOSPC)
}

// health is a store's sticky failure: the first corruption or full disk
// found, by a call or by Pebble in the background. Pebble checks a block's
// checksum on every read, so a damaged table is found whenever a read,
// a compaction or Pebble's table statistics touch the damaged block.
type health struct {
	mu     sync.Mutex
	err    error // the store's failure, or nil
	repeat int   // background errors not logged since the failure (Pebble retries a failed flush at once)
}

// failure returns the store's failure, or nil.
func (s *Store) failure() error {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return s.health.err
}

// usable returns ErrClosed after Close, the store's failure if it has one,
// or nil.
func (s *Store) usable() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.failure()
}

// classify returns err wrapped with ErrCorrupt or ErrDiskFull if it is
// either, and makes that the store's failure; other errors are returned
// as they are.
func (s *Store) classify(err error) error {
	var kind error
	switch {
	case err == nil || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrDiskFull):
		return err
	case pebble.IsCorruptionError(err):
		kind = ErrCorrupt
	case errors.Is(err, syscall.ENOSPC):
		kind = ErrDiskFull
	default:
		return err
	}
	err = fmt.Errorf("%w in %s: %w", kind, s.dir, err)
	s.setFailure(err)
	return err
}

// setFailure records err as the store's failure unless it has one, and logs
// it once, at error level.
func (s *Store) setFailure(err error) {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	if s.health.err != nil {
		return
	}
	s.health.err = err
	if s.failed != nil {
		close(s.failed)
	}
	s.log.Error("state store failed; it takes no more writes", "component", "pebble", "dir", s.dir, "err", err)
}

// backgroundError is Pebble's BackgroundError: a failed flush or compaction.
// A full disk or a corruption becomes the store's failure; as Pebble
// retries a failed flush at once and without end, only the first error
// after a failure is logged (the rest are counted, and summed up by Close).
func (s *Store) backgroundError(err error) {
	if s.failure() == nil {
		if s.classify(err) == err { // else logged as the failure
			s.log.Error("pebble background error", "component", "pebble", "err", err)
		}
		return
	}
	s.health.mu.Lock()
	s.health.repeat++
	s.health.mu.Unlock()
}

// dataCorruption is Pebble's DataCorruption event. Pebble's default handler
// calls Logger.Fatalf, which panicked: a flipped bit in one table made
// every start of the processor panic. The error that Pebble returns to the
// reader carries the corruption too; this records it for the calls that
// did not read the damaged block (Pebble also finds it in the background,
// loading table statistics or compacting).
func (s *Store) dataCorruption(info pebble.DataCorruptionInfo) {
	s.setFailure(fmt.Errorf("%w in %s: %s: %w", ErrCorrupt, s.dir, info.Path, info.Details))
}

// minFreeBytes is the free space Open asks for. Opening writes a new
// MANIFEST and OPTIONS file (a few KiB), and flushes an empty memtable;
// Pebble retries a failed flush without end, so an Open short of space
// would never return. A margin above that keeps a start on a nearly full
// disk from failing a moment later.
const minFreeBytes = 1 << 20

// checkSpace returns an ErrDiskFull error if the file system of dir (or of
// its nearest existing parent) has less than minFreeBytes free. File
// systems that cannot tell (vfs.NewMem) pass.
func checkSpace(fs vfs.FS, dir string) error {
	for d := dir; ; d = fs.PathDir(d) {
		u, err := fs.GetDiskUsage(d)
		if err == nil {
			if u.AvailBytes < minFreeBytes {
				return fmt.Errorf("%w in %s: %d KiB free, a store needs at least %d KiB to open: %w",
					ErrDiskFull, dir, u.AvailBytes>>10, minFreeBytes>>10, syscall.ENOSPC)
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) || fs.PathDir(d) == d {
			return nil // cannot tell: Open finds out
		}
	}
}

// openPebble opens the database, or returns the store's failure if it
// fails first: space can still run out between checkSpace and the flush
// that Open waits for, which Pebble would retry without end. The database,
// should Open still return one, is closed.
func (s *Store) openPebble(po *pebble.Options) (*pebble.DB, error) {
	type opened struct {
		db  *pebble.DB
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		db, err := pebble.Open(s.dir, po)
		ch <- opened{db, err}
	}()
	select {
	case r := <-ch:
		return r.db, r.err
	case <-s.failed:
		go func() {
			if r := <-ch; r.db != nil {
				_ = r.db.Close()
			}
		}()
		return nil, s.failure()
	}
}

// MoveAside renames the store directory dir (closed) to
// "<dir>.corrupt-<UTC time>" and returns the new name, so that a fresh
// store can be opened at dir. The old directory is kept for inspection,
// never deleted: remove it once it is no longer wanted.
func MoveAside(dir string, now time.Time) (string, error) {
	to := dir + ".corrupt-" + now.UTC().Format("20060102T150405.000Z")
	if err := os.Rename(dir, to); err != nil {
		return "", fmt.Errorf("statestore: moving the corrupt store aside: %w", err)
	}
	return to, nil
}
