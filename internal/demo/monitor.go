package demo

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// monitor shows the progress and tells when the processors caught up.
type monitor struct {
	adm   *kadm.Client
	names runNames
	f     *fleet
	p     *producer
	o     Options
	out   *console

	samples []sample // the last second, for the rates
}

type sample struct {
	at                  time.Time
	produced, processed int64
}

func newMonitor(adm *kadm.Client, n runNames, f *fleet, p *producer, o Options, out *console) *monitor {
	return &monitor{adm: adm, names: n, f: f, p: p, o: o, out: out, samples: []sample{{at: time.Now()}}}
}

// loop shows the progress every Interval until ctx is done.
func (m *monitor) loop(ctx context.Context) {
	t := time.NewTicker(m.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.show(ctx)
	}
}

// lag is the group's lag on the events topic: end offsets minus committed
// offsets (an uncommitted partition counts from its start), and the sum of
// the end offsets.
func (m *monitor) lag(ctx context.Context) (lag, end int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	topic := m.names.Topics.Events
	ends, err := m.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, 0, err
	}
	starts, err := m.adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, 0, err
	}
	committed, err := m.adm.FetchOffsets(ctx, m.names.AppID)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return 0, 0, err
	}
	ends.Each(func(e kadm.ListedOffset) {
		end += e.Offset
		from := int64(0)
		if s, ok := starts.Lookup(topic, e.Partition); ok {
			from = s.Offset
		}
		if c, ok := committed.Lookup(topic, e.Partition); ok && c.At >= 0 {
			from = c.At
		}
		lag += max(0, e.Offset-from)
	})
	return lag, end, nil
}

func (m *monitor) show(ctx context.Context) {
	total, st := m.f.stats()
	produced := m.p.acked()
	lag, _, lagErr := m.lag(ctx)

	now := time.Now()
	m.samples = append(m.samples, sample{now, produced, total.Events})
	for len(m.samples) > 2 && now.Sub(m.samples[1].at) >= time.Second {
		// Keep the newest sample at least a second old.
		m.samples = m.samples[1:]
	}
	var inRate, outRate float64
	if first := m.samples[0]; now.Sub(first.at) > 0 {
		dt := now.Sub(first.at).Seconds()
		inRate = float64(produced-first.produced) / dt
		outRate = float64(total.Events-first.processed) / dt
	}
	lagS := fmt.Sprint(lag)
	if lagErr != nil {
		lagS = "?"
	}
	target := "unbounded"
	if m.o.Events > 0 {
		target = fmt.Sprint(m.o.Events)
	}
	reasons := byCount(total.Rejected)

	var inst []string
	for _, s := range st {
		state := ""
		if !s.ready {
			state = " restoring"
		}
		inst = append(inst, fmt.Sprintf("%s %s%s", s.name, partList(s.parts), state))
	}

	block := []string{
		fmt.Sprintf("  produced     %8d / %-9s %7.0f/s", produced, target, inRate),
		fmt.Sprintf("  processed    %8d             %7.0f/s   lag %s", total.Events, outRate, lagS),
		fmt.Sprintf("  transitions  %8d", total.Transitions),
		fmt.Sprintf("  rejections   %8d", total.Rejections),
	}
	for i := 0; i < len(reasons); i += 2 {
		var cols []string
		for _, r := range reasons[i:min(i+2, len(reasons))] {
			cols = append(cols, fmt.Sprintf("%-22s %6d", r.name, r.n))
		}
		block = append(block, "    "+strings.Join(cols, "  "))
	}
	block = append(block,
		fmt.Sprintf("  dlq          %8d", total.DLQ),
		fmt.Sprintf("  instances    %s", strings.Join(inst, " · ")),
		fmt.Sprintf("  elapsed      %8.1fs", time.Since(m.out.start).Seconds()),
	)

	var rs []string
	for _, r := range reasons {
		rs = append(rs, fmt.Sprintf("%s=%d", r.name, r.n))
	}
	line := fmt.Sprintf("produced=%d/%s (%.0f/s) processed=%d (%.0f/s) lag=%s transitions=%d rejections=%d [%s] dlq=%d instances=[%s]",
		produced, target, inRate, total.Events, outRate, lagS, total.Transitions, total.Rejections,
		strings.Join(rs, " "), total.DLQ, strings.Join(inst, " "))
	m.out.status(block, line)
}

// drain waits until the group's committed offsets reach the end of the
// events topic and the topic holds every acknowledged record: then every
// outcome is committed.
func (m *monitor) drain(ctx context.Context, timeout time.Duration, failed <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	var lag, end int64
	var err error
	for {
		lag, end, err = m.lag(ctx)
		if err == nil && lag == 0 && end >= m.p.acked() {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("the processors did not catch up within %v (lag unknown: %w)", timeout, err)
			}
			return fmt.Errorf("the processors did not catch up within %v: %d records not processed", timeout, lag)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-failed:
			return m.f.err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type count struct {
	name string
	n    int64
}

// byCount sorts a histogram by count, largest first, then by name.
func byCount(h map[string]int64) []count {
	var cs []count
	for k, v := range h {
		cs = append(cs, count{k, v})
	}
	slices.SortFunc(cs, func(a, b count) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	return cs
}
