package processor

import (
	"slices"
	"sync"
	"time"

	"github.com/orderflow/orderflow/topology"
)

// The census: how many open orders each owned partition holds in each leaf
// state, and since when (to the minute), so that "how many orders are in
// state S, and how many have been there longer than D" (stuck orders) and
// "how many orders have a pending timer" cost per state and minute, not per
// order, whenever they are asked. It is built once per restored partition
// from the store (censusOf) and then kept by the commits: every state a
// batch stores moves its order from where the batch found it (entry.was) to
// where it leaves it (commitStore). Closed orders are not counted (they
// wait only for retention), so retention's deletes do not touch it.
//
// An order's time in its state is measured from its last transition (the
// event time, UpdatedAt, of the event or timer that moved it there; an
// event self-loop counts as a transition here, though it restarts no
// timer's clock), against the processor's clock.

// OpenOrderAges are the ages of the open_orders_older gauges (label
// older_than): fixed, so that the series are few and always there; ask
// Processor.StatesCount (GET /states?older_than=D) for any other.
var OpenOrderAges = []struct {
	Label string
	Age   time.Duration
}{{"1h", time.Hour}, {"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}}

// censusMinute is the granularity of the census's entry times.
const censusMinute = int64(time.Minute / time.Millisecond)

// census counts one partition's open orders by leaf state and entry minute.
type census struct {
	mu     sync.Mutex
	leaves map[string]*leafCensus
}

type leafCensus struct {
	n       int64
	minutes map[int64]int64 // entry minute (Unix ms / censusMinute) -> orders
}

func newCensus() *census { return &census{leaves: map[string]*leafCensus{}} }

// censusKey is where an order stands in the census: its leaf state and
// when it entered it (Unix ms). ok is false for an order not counted (it
// does not exist, or it is closed).
type censusKey struct {
	leaf string
	at   int64
	ok   bool
}

// censusKeyOf returns where st stands (st nil: the order does not exist).
func censusKeyOf(st *topology.State) censusKey {
	if st == nil || st.ClosedAt != nil {
		return censusKey{}
	}
	return censusKey{leaf: st.State, at: st.UpdatedAt.UnixMilli(), ok: true}
}

// move takes an order out of from and puts it into to (either may be not
// ok). The caller holds c.mu.
func (c *census) move(from, to censusKey) {
	if from == to {
		return
	}
	if from.ok {
		c.add(from, -1)
	}
	if to.ok {
		c.add(to, 1)
	}
}

func (c *census) add(k censusKey, d int64) {
	l := c.leaves[k.leaf]
	if l == nil {
		l = &leafCensus{minutes: map[int64]int64{}}
		c.leaves[k.leaf] = l
	}
	m := floorDiv(k.at, censusMinute)
	l.n += d
	if n := l.minutes[m] + d; n == 0 {
		delete(l.minutes, m)
	} else {
		l.minutes[m] = n
	}
	if l.n == 0 {
		delete(c.leaves, k.leaf)
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// StateCount is the census of one leaf state.
type StateCount struct {
	// State is the leaf state.
	State string `json:"state"`
	// Orders is how many open orders are in it.
	Orders int64 `json:"orders"`
	// Older is how many of them entered it before the cutoff asked for
	// (now minus older_than), counted to the minute: an order counts once
	// the whole minute it entered in is before the cutoff, so it may count
	// up to a minute late, never early.
	Older int64 `json:"older"`
	// Timer reports whether an order in this state has a pending timer.
	Timer bool `json:"timer"`
}

// count adds the orders of each leaf, and those that entered before cutoff
// (Unix ms) to the minute, to out.
func (c *census) count(out map[string]*StateCount, cutoffs []int64, older func(leaf string, i int, n int64)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for leaf, l := range c.leaves {
		sc := out[leaf]
		if sc == nil {
			sc = &StateCount{State: leaf}
			out[leaf] = sc
		}
		sc.Orders += l.n
		for m, n := range l.minutes {
			end := (m + 1) * censusMinute // the minute's entries are all before end
			for i, cut := range cutoffs {
				if end <= cut {
					older(leaf, i, n)
				}
			}
		}
	}
}

// countPartition counts the orders of restored partition part from the
// store. It decodes every state once: a restore's cost, not a query's.
func (p *Processor) countPartition(part int32) (*census, error) {
	c := newCensus()
	var st topology.State
	err := p.store.EachState(part, func(_, v []byte) error {
		st = topology.State{}
		if err := p.stateCodec.DecodeState(v, &st); err != nil {
			return err
		}
		c.move(censusKey{}, censusKeyOf(&st))
		return nil
	})
	return c, err
}

// StatesCount answers, for this instance's restored partitions, how many
// open orders each leaf state of the machine holds, and how many of them
// entered it more than olderThan ago by the processor's clock (to the
// minute, see StateCount.Older). Every open leaf state of the machine is
// listed, in the machine's order, with zeros where none is. Its cost is per
// partition, state and minute of entry, not per order.
func (p *Processor) StatesCount(olderThan time.Duration) []StateCount {
	_, _, out := p.StatesCountAt(olderThan)
	return out
}

// StatesCountAt is StatesCount with the processor's clock it counted at and
// the restored partitions it counted, in order.
func (p *Processor) StatesCountAt(olderThan time.Duration) (now time.Time, parts []int32, counts []StateCount) {
	now = p.clock()
	cs, parts := p.readyCensus()
	for _, sc := range p.censusOf(cs, []int64{now.Add(-olderThan).UnixMilli()}) {
		counts = append(counts, *sc.StateCount)
	}
	return now, parts, counts
}

// stateCounts is a StateCount with the older counts of several cutoffs.
type stateCounts struct {
	*StateCount
	older []int64
}

// census sums the census of the restored partitions with older counts for
// each cutoff (Unix ms); StateCount.Older is the first cutoff's.
func (p *Processor) census(cutoffs []int64) []stateCounts {
	cs, _ := p.readyCensus()
	return p.censusOf(cs, cutoffs)
}

// readyCensus returns the census of each restored partition, and the partitions.
func (p *Processor) readyCensus() ([]*census, []int32) {
	p.mu.Lock()
	var (
		cs    []*census
		parts []int32
	)
	for part, ps := range p.mu.parts {
		if ps.ready && ps.census != nil {
			cs = append(cs, ps.census)
			parts = append(parts, part)
		}
	}
	p.mu.Unlock()
	slices.Sort(parts)
	return cs, parts
}

// censusOf sums cs (see census).
func (p *Processor) censusOf(cs []*census, cutoffs []int64) []stateCounts {
	m := p.cfg.Machine
	all := map[string]*StateCount{}
	older := map[string][]int64{}
	add := func(leaf string, i int, n int64) {
		o := older[leaf]
		if o == nil {
			o = make([]int64, len(cutoffs))
			older[leaf] = o
		}
		o[i] += n
	}
	for _, c := range cs {
		c.count(all, cutoffs, add)
	}
	var order []string
	for _, leaf := range p.leavesOpen() {
		order = append(order, leaf)
		if all[leaf] == nil {
			all[leaf] = &StateCount{State: leaf}
		}
	}
	// States the machine no longer has (a store written with another
	// machine) come last, by name.
	var extra []string
	for leaf := range all {
		if !slices.Contains(order, leaf) {
			extra = append(extra, leaf)
		}
	}
	slices.Sort(extra)
	order = append(order, extra...)
	out := make([]stateCounts, 0, len(order))
	for _, leaf := range order {
		sc := all[leaf]
		o := older[leaf]
		if o == nil {
			o = make([]int64, len(cutoffs))
		}
		if len(o) > 0 {
			sc.Older = o[0]
		}
		if m != nil {
			_, sc.Timer = topology.NextTimer(m, &topology.State{State: leaf})
		}
		out = append(out, stateCounts{StateCount: sc, older: o})
	}
	return out
}

// leavesOpen returns the machine's leaf states that are not terminal, in the
// machine's order.
func (p *Processor) leavesOpen() []string {
	if p.cfg.Machine == nil {
		return nil
	}
	var out []string
	for i, leaf := range p.leaves {
		if !p.terminal[i] {
			out = append(out, leaf)
		}
	}
	return out
}

// clock is the processor's clock (Config.Now; the wall clock for a
// processor some test built without New).
func (p *Processor) clock() time.Time {
	if p.cfg.Now == nil {
		return time.Now()
	}
	return p.cfg.Now()
}
