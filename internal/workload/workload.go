// Package workload generates deterministic order-event traffic for a state
// machine: mostly valid lifecycles, with a share of invalid transitions,
// guard failures, duplicates, stale sequences, unknown orders and malformed
// records. The demo, the benchmarks and the end-to-end tests share it, so
// they all exercise the same mix.
package workload

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/orderflow/orderflow/topology"
)

// Options shapes a workload. Zero fields take the defaults in brackets.
type Options struct {
	Seed   uint64 // random seed [1]
	Orders int    // orders to create [1000]
	Events int    // events to emit in all; 0 = as many as the lifecycles take
	// Invalid is the share of events that are random (mostly invalid)
	// transitions [0.05]; GuardMiss the share of guarded events sent so the
	// guard fails [0.3 of guarded events]; Unknown the share of events for
	// orders that were never placed [0.01]; Duplicate the share of events
	// sent twice [0.01]; Malformed the share of undecodable records [0.005].
	Invalid, GuardMiss, Unknown, Duplicate, Malformed float64
	// Start is the occurred_at of the first event [DefaultStart].
	Start time.Time
	// MaxGap is the longest time between two events of an order [12h:
	// under the default machine's shortest timer]. A machine with shorter
	// timers needs a shorter gap for its lifecycles not to time out.
	MaxGap time.Duration
	// Abandon is the share of orders whose lifecycle stops early, in a
	// state that is not terminal (a customer who never pays, a parcel
	// nobody delivers): their timers, if their state has any, are left to
	// a processor's clock [0].
	Abandon float64
	// Machine is the state machine [topology.Default()].
	Machine *topology.Machine
	// Weights are the relative chances of the accepted events at each step
	// of a lifecycle, by event type; a type not listed weighs 10
	// [defaultWeights: the default machine's lifecycles, as a shop's].
	Weights map[string]int
}

// DefaultStart is the default Options.Start: 2100-01-01T00:00:00Z, after
// the wall clock of any processor the workload meets. Timers of orders
// (the default machine's: placed 24h, in_transit 14d, delivered 720h) are
// due after their events, so no processor fires one on its own clock: each
// fires only when a later event of its order reveals it, in the same place
// for every run, whatever the batch boundaries, and the outcome equals
// `orderflow replay` without --now. A workload dated in the past would meet
// processors that time its orders out on their clock between its events.
var DefaultStart = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

// defaultMaxGap is the longest time between two events of an order: under
// the shortest timer of the default machine (24h), so that most lifecycles
// run as a shop's do; an order whose timers fall due between its events (a
// parcel two weeks in transit) is timed out where they do.
const defaultMaxGap = 12 * time.Hour

// defaultWeights make lifecycles of the default machine look like a shop's:
// most orders are paid, shipped, delivered and completed; some are held,
// cancelled, fail delivery, get lost or come back.
var defaultWeights = map[string]int{
	"hold_order":       1,
	"cancel_order":     1,
	"fail_delivery":    2,
	"report_lost":      1,
	"return_to_sender": 3,
	"request_return":   2,
}

// Item is one record of the workload: an event, or (Malformed) bytes that
// are not a valid record, for the order in Key.
type Item struct {
	Event     topology.Event
	Malformed []byte
	Key       string
}

func (o Options) withDefaults() Options {
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Orders == 0 {
		o.Orders = 1000
	}
	if o.Invalid == 0 {
		o.Invalid = 0.05
	}
	if o.GuardMiss == 0 {
		o.GuardMiss = 0.3
	}
	if o.Unknown == 0 {
		o.Unknown = 0.01
	}
	if o.Duplicate == 0 {
		o.Duplicate = 0.01
	}
	if o.Malformed == 0 {
		o.Malformed = 0.005
	}
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	if o.MaxGap <= 0 {
		o.MaxGap = defaultMaxGap
	}
	if o.Machine == nil {
		o.Machine = topology.Default()
	}
	if o.Weights == nil {
		o.Weights = defaultWeights
	}
	return o
}

// Generate returns the workload's items in the order to produce them. The
// events of one order keep their relative order; orders are interleaved.
// The same Options always give the same items.
func Generate(opts Options) []Item {
	o := opts.withDefaults()
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	g := &gen{o: o, rng: rng, types: o.Machine.EventTypes()}

	// Each order's lifecycle, generated independently.
	lives := make([][]Item, o.Orders)
	total := 0
	for i := range lives {
		lives[i] = g.lifecycle(fmt.Sprintf("o-%d-%06d", o.Seed, i))
		total += len(lives[i])
	}
	// Interleave: repeatedly take the next event of a random order that
	// has events left, so orders progress concurrently.
	out := make([]Item, 0, total)
	live := make([]int, len(lives))
	for i := range live {
		live[i] = i
	}
	pos := make([]int, len(lives))
	// A window of active orders keeps lifecycles spread over time.
	window := min(len(live), 64)
	for len(live) > 0 && (o.Events == 0 || len(out) < o.Events) {
		j := rng.IntN(min(window, len(live)))
		i := live[j]
		out = append(out, lives[i][pos[i]])
		pos[i]++
		if pos[i] == len(lives[i]) {
			live[j] = live[len(live)-1]
			live = live[:len(live)-1]
		}
		if rng.Float64() < o.Unknown {
			out = append(out, g.unknown())
		}
		if rng.Float64() < o.Malformed {
			out = append(out, g.malformed())
		}
	}
	if o.Events > 0 && len(out) > o.Events {
		out = out[:o.Events]
	}
	return out
}

type gen struct {
	o      Options
	rng    *rand.Rand
	types  []string
	nextID int
}

func (g *gen) eventID() string {
	g.nextID++
	return fmt.Sprintf("e-%d-%08d", g.o.Seed, g.nextID)
}

// lifecycle walks one order through the machine, choosing among the
// accepted events at each step, with the configured share of mistakes.
func (g *gen) lifecycle(orderID string) []Item {
	m := g.o.Machine
	at := g.o.Start.Add(time.Duration(g.rng.IntN(3600)) * time.Second)
	var st *topology.State
	var items []Item
	seq := int64(0)
	emit := func(ev topology.Event) {
		items = append(items, Item{Event: ev, Key: orderID})
	}
	// mk makes the next event, at the time of the next step (step).
	unit := min(time.Minute, g.o.MaxGap)
	step := func() { at = at.Add(time.Duration(1+g.rng.IntN(int(g.o.MaxGap/unit))) * unit) }
	abandonAt := -1 // the step at which the order is abandoned, if it is
	if g.o.Abandon > 0 && g.rng.Float64() < g.o.Abandon {
		abandonAt = 1 + g.rng.IntN(8)
	}
	mk := func(typ string) topology.Event {
		seq++
		s := seq
		return topology.Event{
			EventID: g.eventID(), OrderID: orderID, Type: typ, OccurredAt: at,
			Sequence: &s, Attributes: map[string]string{"tracking_number": fmt.Sprintf("1Z%09d", g.rng.IntN(1e9))},
		}
	}
	// apply is the processor's rule: the order's timers due strictly
	// before the event fire first (topology.FireDue), then the event.
	none := func(*topology.Timer, *topology.Outcome) {}
	apply := func(st *topology.State, ev *topology.Event) (*topology.State, topology.Outcome) {
		if st != nil {
			st = topology.FireDue(m, st, ev.OccurredAt, false, none)
		}
		return st, topology.Apply(m, st, ev)
	}
	for n := 0; n < 40; n++ {
		step()
		if st != nil {
			// Timers due by this step have fired (an event now would
			// reveal them).
			st = topology.FireDue(m, st, at, false, none)
		}
		if n == abandonAt && st != nil && !m.IsTerminal(st.State) {
			break
		}
		if st != nil && m.IsTerminal(st.State) {
			// Occasionally poke a closed order.
			if g.rng.Float64() < g.o.Invalid {
				emit(mk(g.types[g.rng.IntN(len(g.types))]))
			}
			break
		}
		if st != nil && g.rng.Float64() < g.o.Invalid {
			ev := mk(g.types[g.rng.IntN(len(g.types))])
			_, out := apply(st, &ev)
			emit(ev)
			if out.Accepted {
				st = &out.Next
			}
			continue
		}
		// Candidates the machine accepts now.
		// Events are picked by weight (Options.Weights): the happy path is
		// more likely than holds, cancellations, failures and returns.
		var ok []topology.Event
		var weights []int
		total := 0
		for _, typ := range g.types {
			ev := mk(typ)
			seq-- // mk advanced it; only an emitted event keeps it
			if out := topology.Apply(m, st, &ev); out.Accepted {
				w, found := g.o.Weights[typ]
				if !found {
					w = 10
				}
				ok = append(ok, ev)
				weights = append(weights, w)
				total += w
			}
		}
		if len(ok) == 0 {
			break
		}
		pick := g.rng.IntN(total)
		i := 0
		for pick >= weights[i] {
			pick -= weights[i]
			i++
		}
		ev := ok[i]
		seq++
		if g.rng.Float64() < g.o.GuardMiss {
			// Try to break a guard of this event: no attributes, or too
			// late. If that fails a guard, send the broken event first
			// (refused), then the good one; not one so late that timers
			// fire before it.
			bad := ev
			bad.EventID = g.eventID()
			if g.rng.IntN(2) == 0 {
				bad.Attributes = nil
			} else {
				bad.OccurredAt = bad.OccurredAt.Add(45 * 24 * time.Hour)
			}
			if fired, out := apply(st, &bad); fired == st && out.Reason == topology.ReasonGuardFailed {
				emit(bad)
			}
		}
		out := topology.Apply(m, st, &ev)
		emit(ev)
		if out.Accepted {
			st = &out.Next
		}
		if g.rng.Float64() < g.o.Duplicate {
			emit(ev) // the same event again: duplicate_event
		}
		if ev.Sequence != nil && *ev.Sequence > 1 && g.rng.Float64() < g.o.Duplicate {
			// A late event from the producer's past: stale_event.
			step()
			late := mk(g.types[g.rng.IntN(len(g.types))])
			seq--
			old := int64(1)
			late.Sequence = &old
			emit(late)
		}
	}
	return items
}

func (g *gen) unknown() Item {
	id := fmt.Sprintf("ghost-%d-%06d", g.o.Seed, g.rng.IntN(1e6))
	typ := g.types[g.rng.IntN(len(g.types))]
	if typ == g.o.Machine.CreatingEvent() {
		typ = g.types[(g.rng.IntN(len(g.types)-1)+1)%len(g.types)]
	}
	if typ == g.o.Machine.CreatingEvent() {
		typ = "ship_order"
	}
	return Item{Key: id, Event: topology.Event{
		EventID: g.eventID(), OrderID: id, Type: typ, OccurredAt: g.o.Start,
	}}
}

func (g *gen) malformed() Item {
	b := make([]byte, 1+g.rng.IntN(40))
	for i := range b {
		b[i] = byte(g.rng.IntN(256))
	}
	return Item{Key: fmt.Sprintf("bad-%d", g.rng.IntN(1e6)), Malformed: b}
}
