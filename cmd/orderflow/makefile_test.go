package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const repoRoot = "../.."

// TestMakefilePhonyTargetsExist: every target .PHONY names has a rule
// (`make run` was listed but had none).
func TestMakefilePhonyTargetsExist(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	phony := regexp.MustCompile(`(?m)^\.PHONY:(.*)$`).FindSubmatch(b)
	if phony == nil {
		t.Fatal("Makefile has no .PHONY line")
	}
	for _, target := range strings.Fields(string(phony[1])) {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:`).Match(b) {
			t.Errorf(".PHONY names %q, which has no rule", target)
		}
	}
}

// TestMakeKafkaMetaHonoursRunDir: make kafka-meta reads the bootstrap
// address of the broker in KAFKA_RUN_DIR, as kafka-up and kafka-down use it.
func TestMakeKafkaMetaHonoursRunDir(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("192.0.2.7:9999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mk := exec.Command("make", "-s", "kafka-meta", "GO=echo")
	mk.Dir = repoRoot
	mk.Env = append(os.Environ(), "KAFKA_RUN_DIR="+dir)
	out, err := mk.CombinedOutput()
	if err != nil {
		t.Fatalf("make kafka-meta: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "-brokers 192.0.2.7:9999") {
		t.Errorf("make kafka-meta with KAFKA_RUN_DIR=%s ran %q, want the address of that run dir", dir, out)
	}
}

// TestDockerignoreKeepsTheContextSmall: the build context leaves out the
// Kafka jar cache, the broker run dirs, the build output and .git.
func TestDockerignoreKeepsTheContextSmall(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for _, want := range []string{".git", "bin", "deploy/kafka/.cache", "deploy/kafka/.run*", "bench/.work"} {
		found := false
		for _, l := range lines {
			found = found || strings.TrimSpace(l) == want
		}
		if !found {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
	for _, l := range lines {
		if l = strings.TrimSpace(l); l == "cmd" || l == "go.mod" || l == "*.go" {
			t.Errorf(".dockerignore leaves out %s, which the image builds from", l)
		}
	}
}
