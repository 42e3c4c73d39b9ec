// Package disktest breaks disks for tests: a small tmpfs that fills up, and
// a flipped bit in a Pebble table.
package disktest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Tmpfs mounts a tmpfs of size (mount's syntax: "2m") on a new directory
// and returns it; it is unmounted when the test ends. It skips the test
// where mounting is impossible (not root, no mount command, a sandbox
// without the permission).
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// Fill writes a file in dir until the file system has no space left, and
// returns a function that removes it.
func Fill(t testing.TB, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("fill %s: %v", dir, err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err = f.Write(buf); err != nil {
			break
		}
	}
	_ = f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("fill %s: %v, want ENOSPC", dir, err)
	}
	return func() {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("free %s: %v", dir, err)
		}
	}
}

// FlipTableByte flips one bit of the largest Pebble table (.sst) in dir, at
// offset 64: inside the table's first data block, so its size is unchanged
// and only the block's checksum can tell. It returns the table's path.
func FlipTableByte(t testing.TB, dir string) string {
	t.Helper()
	tables, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil || len(tables) == 0 {
		t.Fatalf("no table in %s (%v)", dir, err)
	}
	var path string
	var data []byte
	for _, tbl := range tables {
		b, err := os.ReadFile(tbl)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > len(data) {
			path, data = tbl, b
		}
	}
	if len(data) < 4096 {
		t.Fatalf("largest table %s has %d bytes: too small to hold a data block and its index", path, len(data))
	}
	data[64] ^= 0x04
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
