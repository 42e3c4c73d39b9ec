package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/topology"
)

func newMachineCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "machine",
		Short: "Validate and draw order state machines",
		Long: "Validate and draw order state machines (YAML, see topology/README.md).\n" +
			"Without FILE the commands use the built-in default machine.",
	}
	cmd.AddCommand(newMachineValidateCmd(), newMachineGraphCmd())
	return cmd
}

func newMachineValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check a machine file and print OK or every problem (exit 1 on problems)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := loadMachine(args)
			var le *topology.LoadError
			if errors.As(err, &le) {
				w := cmd.OutOrStdout()
				src := le.Source
				for _, p := range le.Problems {
					if p.Line > 0 {
						fmt.Fprintf(w, "%s:%d: ", src, p.Line)
					} else {
						fmt.Fprintf(w, "%s: ", src)
					}
					p.Line = 0 // already in the prefix
					fmt.Fprintf(w, "%s [%s]\n", p, p.Kind)
				}
				return &exitError{code: 1, err: fmt.Errorf("%s: %d problem(s)", src, len(le.Problems))}
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK %s\n", machineSource(args))
			return nil
		},
	}
}

func newMachineGraphCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "graph [--format dot|mermaid] [FILE]",
		Short: "Draw a machine as Graphviz DOT or a Mermaid stateDiagram-v2",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var write func(*topology.Machine, io.Writer) error
			switch format {
			case "dot":
				write = (*topology.Machine).WriteDOT
			case "mermaid":
				write = (*topology.Machine).WriteMermaid
			default:
				return &exitError{code: 2, err: fmt.Errorf("unknown --format %q (want dot or mermaid)", format)}
			}
			m, err := loadMachine(args)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			return write(m, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&format, "format", "dot", "output format: dot or mermaid")
	return cmd
}

// loadMachine loads the machine file named by args[0], or returns the
// default machine when args is empty.
func loadMachine(args []string) (*topology.Machine, error) {
	if len(args) == 0 || args[0] == "" {
		return topology.Default(), nil
	}
	return topology.LoadFile(args[0])
}

func machineSource(args []string) string {
	if len(args) == 0 || args[0] == "" {
		return "(default machine)"
	}
	return args[0]
}
