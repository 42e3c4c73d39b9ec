package processor

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKgoLoggerRateLimits: the same franz-go message with the same error is
// logged once per interval, the next line carries the count held back, and
// other messages or errors are not held back by it.
func TestKgoLoggerRateLimits(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1_800_000_000, 0)
	k := kgoLogger{
		l:   slog.New(slog.NewTextHandler(&buf, nil)),
		lim: newLogLimiter(10*time.Second, func() time.Time { return now }),
	}
	refused := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	for i := range 100_000 {
		k.Log(kgo.LogLevelWarn, "unable to open connection to broker", "broker", i%3, "err", refused)
	}
	k.Log(kgo.LogLevelWarn, "unable to open connection to broker", "broker", 1, "err", errors.New("i/o timeout"))
	k.Log(kgo.LogLevelError, "another message", "err", refused)
	now = now.Add(9 * time.Second)
	k.Log(kgo.LogLevelWarn, "unable to open connection to broker", "broker", 2, "err", refused)
	now = now.Add(time.Second)
	k.Log(kgo.LogLevelWarn, "unable to open connection to broker", "broker", 0, "err", refused)

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4 (the first, the other error, the other message, the one 10 s later):\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"connection refused", "i/o timeout", "another message", "suppressed=100000"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %s, want it to contain %q", i+1, lines[i], want)
		}
	}
	if strings.Contains(lines[0], "suppressed") {
		t.Errorf("first line counts suppressed lines: %s", lines[0])
	}
}

// TestLogLimiterBoundsKeys: a flood of distinct keys does not grow the
// limiter without bound.
func TestLogLimiterBoundsKeys(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := newLogLimiter(10*time.Second, func() time.Time { return now })
	for i := range 10 * logLimiterKeys {
		if ok, _ := l.allow(strings.Repeat("k", i%50) + string(rune(i))); !ok {
			t.Fatalf("a new key was held back")
		}
	}
	if n := len(l.seen); n > logLimiterKeys {
		t.Fatalf("limiter holds %d keys, want at most %d", n, logLimiterKeys)
	}
}
