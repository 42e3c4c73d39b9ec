package demo

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/orderflow/orderflow/topology"
)

// Timers in the demo (Options.Timers). The default machine's timers take a
// day and more; the demo runs the same machine with its delays in seconds
// (timerDelays), dates every event when it is sent, and abandons a share
// of the orders (workload.Options.Abandon), so that the processors' clocks
// fire their timers a few seconds later. The demo waits for them before it
// reads the topics (waitTimers), and the summary lists the fired timers.

// timerDelays maps the default machine's delays onto the demo's.
var timerDelays = []struct{ from, to string }{
	{"after: 24h,", "after: 2s,"},  // placed -> cancelled
	{"after: 14d,", "after: 4s,"},  // in_transit -> lost
	{"after: 720h,", "after: 3s,"}, // delivered -> completed
}

// timerAbandon is the share of orders the timers demo abandons.
const timerAbandon = 0.2

// timerGap is the workload's longest time between two events of an order
// in the timers demo: far under its timers, so that the workload's own
// lifecycles do not time out (the demo dates events when it sends them).
const timerGap = 50 * time.Millisecond

// timersMachine returns the default machine with the demo's delays.
func timersMachine() (*topology.Machine, error) {
	y := topology.DefaultYAML()
	for _, d := range timerDelays {
		if !bytes.Contains(y, []byte(d.from)) {
			return nil, fmt.Errorf("demo: the default machine has no %q timer to shorten", d.from)
		}
		y = bytes.Replace(y, []byte(d.from), []byte(d.to), 1)
	}
	y = bytes.Replace(y, []byte("name: default"), []byte("name: default-demo-timers"), 1)
	return topology.Parse(y)
}

// waitTimers waits until no order of the running instances has a pending
// timer (each fires on an instance's clock), at most timeout.
func (f *fleet) waitTimers(ctx context.Context, timeout time.Duration) (pending int64, err error) {
	deadline := time.Now().Add(timeout)
	for {
		pending = 0
		f.mu.Lock()
		for _, in := range f.mu.running {
			for _, sc := range in.p.StatesCount(0) {
				if sc.Timer {
					pending += sc.Orders
				}
			}
		}
		f.mu.Unlock()
		if pending == 0 || time.Now().After(deadline) {
			return pending, nil
		}
		select {
		case <-ctx.Done():
			return pending, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
