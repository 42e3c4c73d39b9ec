package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/topology"
)

// silentListener accepts connections on a free port and never answers: a
// host that is up, but no broker.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestNoBrokerFailsFast: with no broker at the address (nothing
// listening, or a host that never answers), produce and tail exit 1 by
// themselves, naming the address, instead of waiting for a broker. The
// test's own deadline is far beyond --timeout; before, they only ended when
// that deadline cancelled them.
func TestNoBrokerFailsFast(t *testing.T) {
	clearEnv(t)
	for name, addr := range map[string]string{"refused": closedPort(t), "silent": silentListener(t)} {
		for _, cmd := range [][]string{{"produce"}, {"tail", "--exit-at-end"}} {
			t.Run(cmd[0]+"/"+name, func(t *testing.T) {
				checkLeaks(t)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				r := cli(ctx, strings.NewReader(eventLine("e1", "o1", "place_order", 1)+"\n"),
					append(cmd, "--brokers", addr, "--topic", "t", "--timeout", "1s")...)
				if ctx.Err() != nil {
					t.Fatalf("%s did not give up by itself: code %d err %v\n%s", cmd[0], r.code, r.err, r.stderr)
				}
				if r.code != 1 || r.err == nil {
					t.Fatalf("exit code %d, err %v; want 1", r.code, r.err)
				}
				for _, w := range []string{"no broker answered at " + addr, "within 1s"} {
					if !strings.Contains(r.err.Error(), w) {
						t.Errorf("error lacks %q: %v", w, r.err)
					}
				}
			})
		}
	}
}

func TestProduceFlagErrors(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	for _, args := range [][]string{
		{"--header", "novalue"},
		{"--header", "=v"},
		{"--timeout", "0s"},
		{"--schema-registry-timeout", "0s"}, // as run refuses it
	} {
		r := cli(ctx, nil, append([]string{"produce", "--brokers", "127.0.0.1:1"}, args...)...)
		if r.code != 2 || !strings.Contains(r.err.Error(), args[0]) {
			t.Errorf("%v: exit code %d err %v, want 2 naming %s", args, r.code, r.err, args[0])
		}
	}
}

// TestProduceHeadersEpochMillisAndFieldErrors: --header adds headers (in
// order, repeats kept) to every record; occurred_at may be epoch
// milliseconds; a bad line's error names the field in JSON terms.
func TestProduceHeadersEpochMillisAndFieldErrors(t *testing.T) {
	clearEnv(t)
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		checkLeaks(t, c)
		topic := kafkatest.Name(t, "events")
		c.CreateTopic(t, topic, 2, nil)
		in := strings.Join([]string{
			`{"event_id":"e1","order_id":"o1","type":"place_order","occurred_at":1767225600123}`,
			`{"event_id":"e2","order_id":"o1","type":"place_order","occurred_at":"2026-01-01T00:00:00Z","sequence":"7"}`,
			`{"event_id":"e3","order_id":"o2","type":"place_order","occurred_at":"1767225600456"}`,
		}, "\n")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r := cli(ctx, strings.NewReader(in), "produce", "--brokers", brokersArg(c), "--topic", topic,
			"--header", "trace=t-1", "--header", "src=a=b", "--header", "trace=t-2", "--header", "empty=")
		if r.code != 1 {
			t.Fatalf("exit code %d, want 1 (one bad line): %v\n%s", r.code, r.err, r.stderr)
		}
		if !strings.Contains(r.stderr, "line 2: ") || !strings.Contains(r.stderr, "sequence must be an integer, not a JSON string") ||
			strings.Contains(r.stderr, "Go ") || strings.Contains(r.stderr, "int64") {
			t.Errorf("the bad line's error does not name the field in JSON terms:\n%s", r.stderr)
		}
		codec, err := avro.NewCodec()
		if err != nil {
			t.Fatal(err)
		}
		recs := c.ReadCommitted(t, topic)
		if len(recs) != 2 {
			t.Fatalf("%d records, want 2", len(recs))
		}
		want := map[string]time.Time{
			"e1": time.Date(2026, 1, 1, 0, 0, 0, 123e6, time.UTC),
			"e3": time.Date(2026, 1, 1, 0, 0, 0, 456e6, time.UTC),
		}
		for _, rec := range recs {
			var ev topology.Event
			if err := codec.DecodeEvent(rec.Value, &ev); err != nil {
				t.Fatal(err)
			}
			if !ev.OccurredAt.Equal(want[ev.EventID]) {
				t.Errorf("%s: occurred_at %v, want %v", ev.EventID, ev.OccurredAt, want[ev.EventID])
			}
			var hs []string
			for _, h := range rec.Headers {
				hs = append(hs, h.Key+"="+string(h.Value))
			}
			if got := strings.Join(hs, " "); got != "trace=t-1 src=a=b trace=t-2 empty=" {
				t.Errorf("%s: headers %q", ev.EventID, got)
			}
		}
	})
}
