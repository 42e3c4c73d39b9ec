package processor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoLogEvery is how often the same franz-go warning (message and error) is
// logged at most: while brokers are down the client repeats its errors for
// every request and connection attempt, which once wrote hundreds of
// megabytes of identical lines in seconds.
const kgoLogEvery = 10 * time.Second

// kgoLogger sends franz-go's warnings and errors to slog; its info and debug
// lines are too chatty for an operator's log. A line whose message and
// error repeat one logged less than kgoLogEvery ago is dropped; the next one
// logged carries "suppressed", the count dropped since. One kgoLogger is
// shared by all the clients of a processor.
type kgoLogger struct {
	l   *slog.Logger
	lim *logLimiter
}

func newKgoLogger(l *slog.Logger) kgoLogger {
	return kgoLogger{l: l, lim: newLogLimiter(kgoLogEvery, time.Now)}
}

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelWarn
	if level == kgo.LogLevelError {
		lvl = slog.LevelError
	}
	ok, suppressed := k.lim.allow(logKey(msg, keyvals))
	if !ok {
		return
	}
	if suppressed > 0 {
		keyvals = append(keyvals[:len(keyvals):len(keyvals)], "suppressed", suppressed)
	}
	k.l.Log(context.Background(), lvl, "kafka: "+msg, keyvals...)
}

// logKey identifies a repeated line: its message and the value of its "err"
// key, if any (other values, such as the broker, vary between repeats of
// one failure).
func logKey(msg string, keyvals []any) string {
	for i := 0; i+1 < len(keyvals); i += 2 {
		if k, _ := keyvals[i].(string); k == "err" {
			return msg + "\x00" + fmt.Sprint(keyvals[i+1])
		}
	}
	return msg
}

// logLimiterKeys bounds the keys a logLimiter remembers.
const logLimiterKeys = 1024

// logLimiter lets a line of each key through at most once per interval, and
// counts the lines it held back.
type logLimiter struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	seen map[string]*logSeen
}

type logSeen struct {
	last       time.Time // when a line of the key was last let through
	suppressed int       // lines held back since
}

func newLogLimiter(every time.Duration, now func() time.Time) *logLimiter {
	return &logLimiter{every: every, now: now, seen: make(map[string]*logSeen)}
}

// allow reports whether a line of key may be logged now and, if so, how many
// lines of the key it held back since the last one logged.
func (l *logLimiter) allow(key string) (ok bool, suppressed int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s, found := l.seen[key]
	if found && now.Sub(s.last) < l.every {
		s.suppressed++
		return false, 0
	}
	if !found {
		if len(l.seen) >= logLimiterKeys {
			l.forget(now)
		}
		s = &logSeen{}
		l.seen[key] = s
	}
	suppressed = s.suppressed
	s.last, s.suppressed = now, 0
	return true, suppressed
}

// forget drops the keys last logged an interval ago or more (their next
// line would be let through anyway; its count of held-back lines is lost),
// and every key if that is not enough.
func (l *logLimiter) forget(now time.Time) {
	for k, s := range l.seen {
		if now.Sub(s.last) >= l.every {
			delete(l.seen, k)
		}
	}
	if len(l.seen) >= logLimiterKeys {
		clear(l.seen)
	}
}
