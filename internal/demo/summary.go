package demo

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/kread"
	"github.com/orderflow/orderflow/topology"
)

// Summary is what the topics say at the end of a run. Every count except
// Produced is read from the topics with read_committed, not taken from the
// processors' counters.
type Summary struct {
	Names runNames // the run's application id and topics
	// Produced is the number of records Kafka acknowledged to the demo's
	// producer.
	Produced int64
	// Events is the number of records in the events topic.
	Events int64
	// Transitions, Rejections and DLQ count the records of the status,
	// rejections and dead-letter topics; Rejected splits Rejections by
	// reason.
	// Timer status changes (fired timers: no input record is theirs) are
	// not in Transitions but in Timers, and in Fired by timer ("placed
	// after 24h").
	Transitions, Rejections, DLQ int64
	Rejected                     map[string]int64
	Timers                       int64
	Fired                        map[string]int64
	// States is the final state distribution: orders per leaf state, from
	// the changelog (the last record per order; a tombstone deletes).
	States map[string]int64
	// Orders is the number of orders in the changelog.
	Orders int64
	// Mismatched counts outcomes that do not pair up with an input record:
	// for every event id, |records in the events topic - outcomes in the
	// status and rejections topics|, plus |undecodable inputs - dlq
	// records|. 0 when every event has exactly one outcome.
	Mismatched int64
	// Elapsed is the run's wall time.
	Elapsed time.Duration
}

// adds reports whether events = transitions + rejections + dlq.
func (s *Summary) adds() bool { return s.Events == s.Transitions+s.Rejections+s.DLQ }

// OK reports whether every check holds: the outputs add up to the input,
// the input holds every produced record, and every event has exactly one
// outcome.
func (s *Summary) OK() bool { return s.adds() && s.Events == s.Produced && s.Mismatched == 0 }

// print writes the summary.
func (s *Summary) print(w io.Writer) {
	n := s.Names
	fmt.Fprintf(w, "\nsummary, read from the topics with read_committed:\n")
	fmt.Fprintf(w, "  events       %8d   %s (%d produced)\n", s.Events, n.Topics.Events, s.Produced)
	fmt.Fprintf(w, "  transitions  %8d   %s\n", s.Transitions, n.Topics.Status)
	fmt.Fprintf(w, "  rejections   %8d   %s\n", s.Rejections, n.Topics.Rejections)
	for _, r := range byCount(s.Rejected) {
		fmt.Fprintf(w, "    %-20s %6d\n", r.name, r.n)
	}
	fmt.Fprintf(w, "  dlq          %8d   %s\n", s.DLQ, n.Topics.DLQ)
	fmt.Fprintf(w, "  timers fired %8d   %s (after transitions, no input record)\n", s.Timers, n.Topics.Status)
	for _, r := range byCount(s.Fired) {
		fmt.Fprintf(w, "    %-20s %6d\n", r.name, r.n)
	}
	fmt.Fprintf(w, "  final states of %d orders (%s):\n", s.Orders, n.Changelog())
	for _, c := range byCount(s.States) {
		fmt.Fprintf(w, "    %-20s %6d  %5.1f%%\n", c.name, c.n, 100*float64(c.n)/float64(max(1, s.Orders)))
	}
	fmt.Fprintf(w, "  check: events %d = transitions %d + rejections %d + dlq %d: %s\n",
		s.Events, s.Transitions, s.Rejections, s.DLQ, okText(s.adds()))
	fmt.Fprintf(w, "  check: every produced record is in %s: %s\n", n.Topics.Events, okText(s.Events == s.Produced))
	fmt.Fprintf(w, "  check: every event has exactly one outcome (by event id): %s\n", okText(s.Mismatched == 0))
	fmt.Fprintf(w, "  took %v\n", s.Elapsed.Round(100*time.Millisecond))
}

func okText(ok bool) string {
	if ok {
		return "OK"
	}
	return "FAILED"
}

// summarize reads the run's topics to their ends.
func summarize(ctx context.Context, brokers []string, opts []kgo.Opt, n runNames) (*Summary, error) {
	codec, err := avro.NewCodec()
	if err != nil {
		return nil, err
	}
	s := &Summary{Rejected: map[string]int64{}, States: map[string]int64{}, Fired: map[string]int64{}}
	want := map[string]int64{} // event id -> inputs minus outcomes
	var undecodable int64

	err = kread.ReadCommitted(ctx, brokers, opts, n.Topics.Events, func(r *kgo.Record) error {
		s.Events++
		var ev topology.Event
		if codec.DecodeEvent(r.Value, &ev) != nil || ev.OrderID != string(r.Key) {
			undecodable++
			return nil
		}
		want[ev.EventID]++
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = kread.ReadCommitted(ctx, brokers, opts, n.Topics.Status, func(r *kgo.Record) error {
		var sc avro.StatusChange
		if err := codec.DecodeStatusChange(r.Value, &sc); err != nil {
			return fmt.Errorf("%s offset %d/%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		if sc.Timer != nil {
			s.Timers++
			s.Fired[*sc.Timer]++
			return nil
		}
		s.Transitions++
		want[sc.EventID]--
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = kread.ReadCommitted(ctx, brokers, opts, n.Topics.Rejections, func(r *kgo.Record) error {
		var rj avro.Rejection
		if err := codec.DecodeRejection(r.Value, &rj); err != nil {
			return fmt.Errorf("%s offset %d/%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		s.Rejections++
		s.Rejected[rj.Reason]++
		want[rj.EventID]--
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = kread.ReadCommitted(ctx, brokers, opts, n.Topics.DLQ, func(*kgo.Record) error {
		s.DLQ++
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, d := range want {
		s.Mismatched += abs(d)
	}
	s.Mismatched += abs(undecodable - s.DLQ)

	states := map[string]string{}
	err = kread.ReadCommitted(ctx, brokers, opts, n.Changelog(), func(r *kgo.Record) error {
		if r.Value == nil {
			delete(states, string(r.Key))
			return nil
		}
		var st topology.State
		if err := codec.DecodeState(r.Value, &st); err != nil {
			return fmt.Errorf("%s offset %d/%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		states[string(r.Key)] = st.State
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, st := range states {
		s.States[st]++
	}
	s.Orders = int64(len(states))
	return s, nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
