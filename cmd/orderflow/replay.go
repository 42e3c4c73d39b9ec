package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/topology"
)

func newReplayCmd() *cobra.Command {
	var machineFile string
	cmd := &cobra.Command{
		Use:   "replay [--machine FILE] [EVENTS.jsonl | -]",
		Short: "Run JSON-lines events through the state machine offline and print the outcomes",
		Long: `Replay reads order events as JSON lines (from a file, or stdin when the
argument is omitted or "-"), applies each to an in-memory store with the same
Apply the processor uses, and prints one JSON line per input line, in input
order: a transition, a rejection, or, for a line that is not a valid event,
{"kind":"dlq","line":N,"error":"..."}. Blank lines are skipped. Replay has no
clock, so processed_at is omitted. It exits non-zero only on I/O errors (or
an invalid --machine file).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			if err := replay(m, in, cmd.OutOrStdout()); err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&machineFile, "machine", "", "machine file (YAML); the default machine when empty")
	return cmd
}

// dlqLine is printed for an input line that is not a valid event.
type dlqLine struct {
	Kind  string `json:"kind"`
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// replay applies every event line of r to an in-memory store and writes one
// outcome line per event line to w. Only read and write errors are returned.
func replay(m *topology.Machine, r io.Reader, w io.Writer) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	orders := map[string]*topology.State{}
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
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write outcomes: %w", err)
	}
	return nil
}
