// Command orderflow tracks the lifecycle of every order in a Kafka topic as a
// hierarchical state machine. This package is a thin CLI: each subcommand
// parses its flags and hands over to the library packages.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "orderflow:", err)
		os.Exit(exitCode(err))
	}
}

// exitError carries a specific exit code out of a subcommand.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 1
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "orderflow",
		Short:         "Kafka stream processor that tracks every order as a hierarchical state machine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Each subcommand lives in its own file and is registered here.
	root.AddCommand(
		newVersionCmd(),
		newMachineCmd(),
		newReplayCmd(),
		newRunCmd(), newProduceCmd(), newTailCmd(),
		newDemoCmd(),
	)
	return root
}
