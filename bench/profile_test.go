package bench

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// burn spins for d; each caller is its own function, so that a CPU profile
// names which one ran.
func burn(d time.Duration) int {
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
	}
	return n
}

//go:noinline
func burnBeforeWindow() int { return burn(300 * time.Millisecond) }

//go:noinline
func burnInWindow() int { return burn(300 * time.Millisecond) }

//go:noinline
func burnAfterWindow() int { return burn(300 * time.Millisecond) }

// TestProfileWindow checks that a throughput measurement's CPU profile
// holds the work of its window only, and the whole run's when the window
// never starts.
func TestProfileWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("burns about 1.5 s of CPU")
	}
	names := func(dir string) []byte {
		t.Helper()
		f, err := os.Open(filepath.Join(dir, "cpu.pprof"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr) // the profile's string table holds the sampled functions' names
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	dir := t.TempDir()
	p, err := startProfile(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	burnBeforeWindow()
	p.window(false)
	burnInWindow()
	p.window(true)
	burnAfterWindow()
	p.stop()
	b := names(dir)
	if !bytes.Contains(b, []byte("burnInWindow")) || bytes.Contains(b, []byte("burnBeforeWindow")) || bytes.Contains(b, []byte("burnAfterWindow")) {
		t.Errorf("windowed profile: in window %v, before %v, after %v; want only the window's work",
			bytes.Contains(b, []byte("burnInWindow")), bytes.Contains(b, []byte("burnBeforeWindow")), bytes.Contains(b, []byte("burnAfterWindow")))
	}
	for _, f := range []string{"allocs-before.pprof", "allocs.pprof"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}

	dir = t.TempDir()
	if p, err = startProfile(dir, ""); err != nil {
		t.Fatal(err)
	}
	burnBeforeWindow()
	p.window(true) // the run ended in its first batch: no window
	p.stop()
	if b := names(dir); !bytes.Contains(b, []byte("burnBeforeWindow")) {
		t.Error("a run whose window never started has no profile of its work")
	}
}
