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
	cfg.StandbyReplicas = -5
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
	for _, want := range []string{"Config.Brokers is empty", "Config.StateDir is empty", "Config.Threads -1", "Config.RestoreConcurrency -2", "Config.StandbyReplicas -5 is negative",
		"Config.SweepLimit -3", `Config.Guarantee "twice"`, "Config.Topics.Events and Config.Topics.Status are both named",
		"Config.MaxBatchRecords -4", "Config.SweepInterval -1s", "Config.SessionTimeout 1ms: must be at least 100ms",
		"Config.TransactionTimeout 10s: must be longer than Config.CommitInterval 20s"} {
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
