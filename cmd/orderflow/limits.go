package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/orderflow/orderflow/processor"
)

// flagLimit is the range of one numeric flag of `run`: ok reports whether
// its value is in it, want says what it must be.
type flagLimit struct {
	flag string
	ok   bool
	want string
}

// runLimits are the ranges of run's numeric flags. processor.Config takes a
// zero for "the default", but a flag's default is already its value: an
// explicit 0 (from a flag, the environment or the file) is refused where it
// would not mean what it says. Zero is meaningful for two flags only:
// --replication-factor 0 (min(3, brokers)) and --retention 0 (keep closed
// orders forever).
func runLimits(cfg *processor.Config, retention, shutdownTimeout time.Duration) []flagLimit {
	return []flagLimit{
		{"commit-interval", cfg.CommitInterval > 0, "a positive duration (e.g. 100ms)"},
		{"max-batch-records", cfg.MaxBatchRecords >= 1, "at least 1"},
		{"restore-concurrency", cfg.RestoreConcurrency >= 1, "at least 1"},
		{"threads", cfg.Threads >= 1, "at least 1"},
		{"standby-replicas", cfg.StandbyReplicas >= 0, "0 (no standby copies) or more"},
		{"acceptable-recovery-lag", cfg.AcceptableRecoveryLag >= 1, "at least 1"},
		{"partitions", cfg.Partitions >= 1, "at least 1"},
		{"replication-factor", cfg.ReplicationFactor >= 0, "0 (min(3, brokers)) or more"},
		{"retention", retention >= 0, "0 (keep closed orders forever) or a positive duration"},
		{"sweep-interval", cfg.SweepInterval > 0, "a positive duration (e.g. 1m)"},
		{"sweep-limit", cfg.SweepLimit >= 1, "at least 1"},
		{"session-timeout", cfg.SessionTimeout >= processor.MinSessionTimeout,
			fmt.Sprintf("at least %v, and within the brokers' group.min.session.timeout.ms and group.max.session.timeout.ms (6s and 30m by default)", processor.MinSessionTimeout)},
		{"transaction-timeout", cfg.TransactionTimeout > cfg.CommitInterval,
			"longer than --commit-interval (a batch's transaction lasts about that long), and at most the brokers' transaction.max.timeout.ms (15m by default)"},
		{"shutdown-timeout", shutdownTimeout > 0, "a positive duration (e.g. 30s)"},
		{"schema-registry-timeout", cfg.SchemaRegistry.Timeout > 0, "a positive duration (e.g. 10s)"},
	}
}

// checkLimits returns a configuration error naming every flag out of its
// range, its value and where the value came from.
func checkLimits(fs *pflag.FlagSet, sources map[string]source, limits []flagLimit) error {
	var problems []string
	for _, l := range limits {
		if l.ok {
			continue
		}
		f := fs.Lookup(l.flag)
		if f == nil {
			panic("checkLimits: no flag --" + l.flag) // a programming error
		}
		msg := fmt.Sprintf("--%s %s: must be %s", l.flag, f.Value.String(), l.want)
		if src := sources[l.flag]; src != "" && src != fromFlag {
			msg += fmt.Sprintf(" (set by %s)", src)
		}
		problems = append(problems, msg)
	}
	if len(problems) > 0 {
		return configError(errors.New(strings.Join(problems, "; ")))
	}
	return nil
}
