// Package testutil holds the helpers that tests of several packages share,
// so that each is written once: a buffer for concurrent writers, a logger on
// the test's output, the configuration of a processor application with
// topics of its own on a test cluster, and a goroutine a test stops and
// waits for. Only tests import it.
package testutil

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/processor"
)

// SyncBuffer is a bytes.Buffer safe for concurrent writers (loggers, a
// command's output and its goroutines). The zero SyncBuffer is empty and
// ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WarnLogger logs warnings and errors to the test's output (shown with -v
// or when the test fails).
func WarnLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// AppConfig is the base config of a new processor application on c: a
// unique application id and topics (kafkatest.Name), the given partitions,
// a 6 s session timeout, so that a stopped member leaves the group soon,
// and WarnLogger. It creates nothing; see EnsureTopics.
func AppConfig(t testing.TB, c *kafkatest.Cluster, partitions int32) processor.Config {
	cfg := processor.DefaultConfig()
	cfg.Brokers = c.Brokers
	cfg.AppID = kafkatest.Name(t, "app")
	cfg.Topics = processor.Topics{
		Events:     kafkatest.Name(t, "events"),
		Status:     kafkatest.Name(t, "status"),
		Rejections: kafkatest.Name(t, "rejections"),
		DLQ:        kafkatest.Name(t, "dlq"),
	}
	cfg.Partitions = partitions
	cfg.SessionTimeout = 6 * time.Second
	cfg.Logger = WarnLogger(t)
	return cfg
}

// EnsureTopics creates cfg's topics on c (processor.EnsureTopics) within a
// minute, failing the test if it cannot.
func EnsureTopics(t testing.TB, c *kafkatest.Cluster, cfg processor.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := processor.EnsureTopics(ctx, c.Admin(t), cfg); err != nil {
		t.Fatal(err)
	}
}

// Background runs run in a goroutine with a context of its own, and returns
// stop, which cancels that context and returns run's error, or an error
// naming what if run has not returned within 2 minutes. stop may be called
// more than once (it returns the same error); the test's cleanup calls it.
func Background(t testing.TB, what string, run func(context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(2 * time.Minute):
				runErr = fmt.Errorf("%s did not stop within 2 minutes", what)
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}
