package demo

import (
	"context"
	"time"
)

// chaos stops one instance mid-run and starts it again, so a rebalance and
// a restore happen while the traffic flows.
//
// In one process there is no SIGKILL: the instance is stopped by cancelling
// its Run context (it ends its open batch, leaves the group and closes its
// store), and it comes back under the same instance id with a new, empty
// state directory (a replacement machine without the old disk), so it
// rebuilds its partitions' state from the changelog alone. The processor's
// crash tests SIGKILL real processes against a real broker.
type chaos struct {
	f        *fleet
	victim   string
	o        Options
	p        *producer
	parts    int32
	done     chan struct{}
	err      error
	started  time.Time
	stopAt   float64 // share of the traffic processed when the victim stops
	pauseFor time.Duration
}

func newChaos(f *fleet, victim string, o Options, p *producer) *chaos {
	return &chaos{f: f, victim: victim, o: o, p: p, parts: o.Partitions, done: make(chan struct{}),
		started: time.Now(), stopAt: 0.3, pauseFor: time.Second}
}

// due reports whether it is time to stop the victim: a share stopAt of the
// traffic is processed (of Events; of the elapsed Duration; or of what was
// produced, when the traffic ended early).
func (c *chaos) due(processed int64) bool {
	switch {
	case c.o.Events > 0 && float64(processed) >= c.stopAt*float64(c.o.Events):
		return true
	case c.o.Duration > 0 && time.Since(c.started) >= time.Duration(c.stopAt*float64(c.o.Duration)):
		return true
	}
	acked := c.p.acked()
	return c.p.finished() && float64(processed) >= c.stopAt*float64(acked)
}

func (c *chaos) loop(ctx context.Context) {
	defer close(c.done)
	c.err = c.run(ctx)
}

func (c *chaos) run(ctx context.Context) error {
	for {
		if total, _ := c.f.stats(); c.due(total.Events) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.f.failed():
			return c.f.err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	out := c.f.out
	out.notef("chaos: stopping instance %s (its Run context is cancelled: in one process there is no SIGKILL); its partitions move to the others", c.victim)
	c.f.stop(c.victim)
	if err := c.f.waitReady(ctx, c.parts, time.Minute); err != nil {
		return err
	}
	out.notef("rebalanced without %s: %s", c.victim, c.f.ownership())
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(c.pauseFor):
	}
	out.notef("chaos: starting instance %s again with an empty state directory: it restores what it gets from the changelog", c.victim)
	if err := c.f.start(ctx, c.victim); err != nil {
		return err
	}
	if err := c.f.waitReady(ctx, c.parts, time.Minute); err != nil {
		return err
	}
	out.notef("rebalanced with %s back: %s", c.victim, c.f.ownership())
	return nil
}

// wait waits for the chaos to be over.
func (c *chaos) wait(ctx context.Context, failed <-chan struct{}) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-failed:
		return c.f.err()
	case <-c.done:
		return c.err
	}
}
