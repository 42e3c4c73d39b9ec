package processor_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/processor"
)

// TestNewRefusesBadConfig: every problem is reported, saying what to fix.
func TestNewRefusesBadConfig(t *testing.T) {
	cfg := processor.DefaultConfig()
	cfg.Threads = -1
	cfg.RestoreConcurrency = -2
	cfg.SweepLimit = -3
	cfg.MaxBatchRecords = -4
	cfg.SweepInterval = -time.Second
	cfg.SessionTimeout = time.Millisecond
	cfg.CommitInterval = 20 * time.Second // longer than the transaction timeout
	cfg.Guarantee = "twice"
	cfg.Topics.Status = cfg.Topics.Events
	_, err := processor.New(cfg)
	if !errors.Is(err, processor.ErrConfig) {
		t.Fatalf("New = %v, want ErrConfig", err)
	}
	for _, want := range []string{"no brokers", "no state dir", "threads -1", "restore concurrency -2", "sweep limit -3", `guarantee "twice"`, "both named",
		"max batch records -4", "sweep interval -1s", "session timeout 1ms: must be at least 100ms",
		"transaction timeout 10s: must be longer than the commit interval 20s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestNewAcceptsDefaults(t *testing.T) {
	cfg := processor.DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:9092"}
	cfg.StateDir = t.TempDir()
	if _, err := processor.New(cfg); err != nil {
		t.Fatalf("New with the defaults: %v", err)
	}
}
