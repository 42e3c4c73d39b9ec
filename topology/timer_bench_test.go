package topology

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// defaultWithTimers is the default machine with the timers a shop would
// give it: unpaid orders cancelled after a day, parcels lost after 14 days
// in transit, delivered orders completed after the 30-day return window.
func defaultWithTimers(tb testing.TB) *Machine {
	tb.Helper()
	y := string(defaultYAML)
	for _, r := range [][2]string{
		{"          - {event: confirm_payment, to: confirmed}\n", "          - {after: 24h, to: cancelled}\n          - {event: confirm_payment, to: confirmed}\n"},
		{"      - {event: report_lost, to: lost}\n", "      - {event: report_lost, to: lost}\n      - {after: 14d, to: lost}\n"},
		{"          - {event: complete_order, to: completed}\n", "          - {event: complete_order, to: completed}\n          - {after: 720h, to: completed}\n"},
	} {
		if !strings.Contains(y, r[0]) {
			tb.Fatalf("default.yaml has no %q", r[0])
		}
		y = strings.Replace(y, r[0], r[1], 1)
	}
	m, err := Parse([]byte(y))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// BenchmarkApplyLifecycleTimers is BenchmarkApplyLifecycle's per-event path
// as a processor runs it, with and without timers in the machine: before
// each event the order's next timer is looked up (none is due: the events
// are an hour apart), then the event is applied.
func BenchmarkApplyLifecycleTimers(b *testing.B) {
	for _, c := range []struct {
		name string
		m    *Machine
	}{{"without", Default()}, {"with", defaultWithTimers(b)}} {
		b.Run(c.name, func(b *testing.B) {
			runLifecycle(b, c.m, func(st *State, ev *Event) {
				if tm, ok := NextTimer(c.m, st); ok && tm.FiresBefore(ev.OccurredAt) {
					b.Fatalf("timer %s fired", tm)
				}
			})
		})
	}
}

// BenchmarkFireTimers fires 100,000 due timers (unpaid orders cancelled
// after a day) with the machine alone: NextTimer and Fire per order.
func BenchmarkFireTimers(b *testing.B) {
	m := defaultWithTimers(b)
	const orders = 100_000
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	states := make([]*State, orders)
	for i := range states {
		ev := Event{EventID: "p", OrderID: fmt.Sprint(i), Type: "place_order", OccurredAt: at.Add(time.Duration(i) * time.Millisecond)}
		out := Apply(m, nil, &ev)
		states[i] = &out.Next
	}
	now := at.Add(48 * time.Hour)
	b.ReportAllocs()
	fired := 0
	for b.Loop() {
		for _, st := range states {
			tm, ok := NextTimer(m, st)
			if !ok || tm.Due.After(now) {
				b.Fatal("not due")
			}
			if out := Fire(m, st, tm); out.To != "cancelled" {
				b.Fatalf("fired to %s", out.To)
			}
			fired++
		}
	}
	b.ReportMetric(float64(fired)/b.Elapsed().Seconds(), "timers/s")
}
