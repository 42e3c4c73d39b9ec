package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/topology"
)

func newReplayCmd() *cobra.Command {
	var machineFile, nowText string
	cmd := &cobra.Command{
		Use:   "replay [--machine FILE] [--now RFC3339] [EVENTS.jsonl | -]",
		Short: "Run JSON-lines events through the state machine offline and print the outcomes",
		Long: `Replay reads order events as JSON lines (from a file, or stdin when the
argument is omitted or "-"), applies each to an in-memory store with the same
Apply the processor uses, and prints one JSON line per input line, in input
order: a transition, a rejection, or, for a line that is not a valid event,
{"kind":"dlq","line":N,"error":"..."}. Blank lines are skipped. Replay has no
clock, so processed_at is omitted. It exits non-zero only on I/O errors (or
an invalid --machine file or --now time).

Timers fire as the processor fires them: before an event, every timer of its
order due strictly before the event's occurred_at fires first, each printed
as a transition with "timer" set. Without a clock replay fires only the timers
events reveal; --now fires, after the last line, every timer due at or before
that time (in due order), as a processor whose clock reads it would.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var now time.Time
			if nowText != "" {
				var err error
				if now, err = time.Parse(time.RFC3339Nano, nowText); err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--now: want an RFC 3339 time such as 2026-01-02T15:04:05Z: %w", err)}
				}
			}
			m := topology.Default()
			if machineFile != "" {
				var err error
				if m, err = topology.LoadFile(machineFile); err != nil {
					return &exitError{code: 1, err: err}
				}
			}
			in := cmd.InOrStdin()
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				defer f.Close()
				in = f
			}
			if err := replay(m, in, cmd.OutOrStdout(), now); err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&machineFile, "machine", "", "machine file (YAML); the default machine when empty")
	cmd.Flags().StringVar(&nowText, "now", "", "fire, at the end of the input, every timer due by this RFC 3339 time")
	return cmd
}

// dlqLine is printed for an input line that is not a valid event.
type dlqLine struct {
	Kind  string `json:"kind"`
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// replay applies every event line of r to an in-memory store and writes one
// outcome line per event line to w, preceded by a line per timer of the
// event's order that fires before it; then, unless now is zero, a line per
// timer due by now. Only read and write errors are returned.
func replay(m *topology.Machine, r io.Reader, w io.Writer, now time.Time) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	orders := map[string]*topology.State{}
	var fired []avro.StatusChange
	collect := func(id string) func(*topology.Timer, *topology.Outcome) {
		return func(tm *topology.Timer, out *topology.Outcome) {
			fired = append(fired, avro.StatusChangeFromTimer(id, tm, out, time.Time{}))
		}
	}
	for n := 1; ; n++ {
		line, rerr := br.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			bw.Flush() // keep the outcomes of the lines read so far
			return fmt.Errorf("read events: %w", rerr)
		}
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			var out any
			if ev, err := avro.EventFromJSON(trimmed); err != nil {
				out = dlqLine{Kind: avro.KindDLQ, Line: n, Error: err.Error()}
			} else {
				fired = fired[:0]
				if st := orders[ev.OrderID]; st != nil {
					orders[ev.OrderID] = topology.FireDue(m, st, ev.OccurredAt, false, collect(ev.OrderID))
				}
				for i := range fired {
					if err := enc.Encode(fired[i]); err != nil {
						return fmt.Errorf("write outcomes: %w", err)
					}
				}
				res := topology.Apply(m, orders[ev.OrderID], &ev)
				if res.Accepted {
					next := res.Next
					orders[ev.OrderID] = &next
				}
				out = avro.FromOutcome(&ev, &res, time.Time{})
			}
			if err := enc.Encode(out); err != nil {
				return fmt.Errorf("write outcomes: %w", err)
			}
		}
		if rerr != nil { // io.EOF
			break
		}
	}
	if !now.IsZero() {
		fired = fired[:0]
		for id, st := range orders {
			topology.FireDue(m, st, now, true, collect(id))
		}
		// In due order across orders, as they would have fired; an
		// order's own firings keep their order (their versions grow).
		slices.SortFunc(fired, func(a, b avro.StatusChange) int {
			return cmp.Or(a.OccurredAt.Compare(b.OccurredAt), cmp.Compare(a.OrderID, b.OrderID), cmp.Compare(a.Version, b.Version))
		})
		for i := range fired {
			if err := enc.Encode(fired[i]); err != nil {
				return fmt.Errorf("write outcomes: %w", err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write outcomes: %w", err)
	}
	return nil
}
