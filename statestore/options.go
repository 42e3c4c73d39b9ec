package statestore

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// The defaults are sized so that a processor holding 1,000,000 orders stays
// under 512 MiB of RSS, the target make bench checks (bench/results/ has the
// peaks): Pebble can hold two memtables at once, and the processor reads
// every key of a partition when it restores it (to learn which orders
// exist), which fills the block cache. Larger memtables would mean fewer
// flushes, but two of them and a full cache would leave no room under that
// target for the rest of the process.
const (
	defaultCacheSize    = 32 << 20
	defaultMemTableSize = 32 << 20
)

// Options configures a Store. The zero value is not usable: Dir is required.
// Open never mutates the caller's
// Options.
type Options struct {
	// Dir is the directory of the Pebble database. Required, also with an
	// in-memory FS.
	Dir string

	// FS is the filesystem the database lives on. Default (nil): the local
	// disk (vfs.Default). Tests use vfs.NewMem().
	FS vfs.FS

	// ClosedAt reports whether an order value is closed (the order reached
	// a terminal state) and when, in Unix milliseconds on the processor's
	// clock. It is called on every value written, from many goroutines, and
	// must not retain the slice. Default (nil): no retention index is kept
	// and Expired returns ErrRetentionDisabled.
	ClosedAt func(value []byte) (closedAtUnixMs int64, closed bool)

	// DueAt reports whether an order value has a pending timer and when
	// the first is due (Unix milliseconds). A restore calls it on every
	// value it writes, to rebuild the due-time index; a Batch indexes what
	// its caller passes to IndexDue. Default (nil): no due-time index is
	// kept and Due returns ErrTimersDisabled.
	DueAt func(value []byte) (dueUnixMs int64, pending bool)

	// Logger receives Pebble's log lines (its informational ones at debug
	// level), write stalls and restore summaries. Default: slog.Default().
	Logger *slog.Logger

	// CacheSize is the size in bytes of Pebble's block cache. Default 32 MiB.
	CacheSize int64

	// MemTableSize is the size in bytes of a Pebble memtable; larger
	// memtables mean fewer flushes during restore. Default 32 MiB.
	MemTableSize uint64
}

// ensureDefaults returns a copy of o with every unset field set to its
// default: the one place the defaults are defined. o itself is not modified.
func (o Options) ensureDefaults() Options {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CacheSize == 0 {
		o.CacheSize = defaultCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = defaultMemTableSize
	}
	return o
}

// validate reports whether o (after ensureDefaults) can open a store.
func (o Options) validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("Dir is required"))
	}
	if o.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("CacheSize %d is negative", o.CacheSize))
	}
	if o.MemTableSize > 0 && o.MemTableSize < 1<<20 {
		errs = append(errs, fmt.Errorf("MemTableSize %d is below 1 MiB", o.MemTableSize))
	}
	if o.MemTableSize >= 4<<30 {
		errs = append(errs, fmt.Errorf("MemTableSize %d is 4 GiB or more", o.MemTableSize))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("statestore: invalid options: %w", err)
	}
	return nil
}

// pebbleLogger adapts slog to pebble.Logger, for store s.
type pebbleLogger struct {
	l *slog.Logger
	s *Store
}

// Infof logs at debug level: Pebble's informational lines (WAL replay,
// file counts) are routine.
func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by Pebble on errors it does not continue from. A full
// disk (a MANIFEST write failing with ENOSPC, at Open or after a flush) and
// a corruption become the store's failure, logged once, and Fatalf returns:
// Pebble then returns the error to its caller, every later call of the
// store fails with it, and the store's owner closes it (a full disk) or
// moves it aside (a corruption). A panic there killed the process from one
// of Pebble's goroutines, with no chance of a clean exit. Anything else is
// an invariant violation, a bug: a library must not exit the process, so
// it panics.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	for _, a := range args {
		if err, ok := a.(error); ok && p.s != nil && p.s.classify(err) != err {
			return
		}
	}
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble", "fatal", true)
	panic("pebble: " + msg)
}
