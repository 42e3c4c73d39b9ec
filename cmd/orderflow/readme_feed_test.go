package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestREADMEFeedsTheLinesItShows: the README's example shows the first
// lines of the replay test data and feeds produce those lines only, with
// head, not the whole file.
func TestREADMEFeedsTheLinesItShows(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	const file = "cmd/orderflow/testdata/replay_events.jsonl"
	shown := regexp.MustCompile("(?s)Feed it events as JSON lines.*?```json\n(.*?)```").FindStringSubmatch(readme)
	if shown == nil {
		t.Fatal("README has no example of events to feed")
	}
	lines := strings.Split(strings.TrimSpace(shown[1]), "\n")
	data, err := os.ReadFile(filepath.Join("testdata", "replay_events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	first := strings.Split(string(data), "\n")
	for i, l := range lines {
		if i >= len(first) || first[i] != l {
			t.Fatalf("README's line %d of the example is not line %d of %s: %q", i+1, i+1, file, l)
		}
	}
	feed := regexp.MustCompile(`(?m)^(.*)\| \./bin/orderflow produce .* -$`).FindStringSubmatch(readme)
	if feed == nil {
		t.Fatalf("README does not feed the example to produce through a pipe")
	}
	if want := "head -n " + strconv.Itoa(len(lines)) + " " + file + " "; feed[1] != want {
		t.Errorf("README feeds produce with %q, want %q (the %d lines it shows)", feed[1], want, len(lines))
	}
	if strings.Contains(readme, "produce --brokers 127.0.0.1:19092 "+file) {
		t.Errorf("README feeds the whole of %s", file)
	}
}
