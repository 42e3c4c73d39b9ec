// Command orderflow tracks the lifecycle of every order in a Kafka topic as a
// hierarchical state machine. This package is a thin CLI: each subcommand
// parses its flags and hands over to the library packages.
package main

import (
	"errors"
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

// exitError carries a specific exit code out of a subcommand. Its message
// names flags where the library's names fields (fields.go).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return withFlagNames(e.err.Error()) }
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
		Version:       buildVersion().Version,
	}
	// --version prints what `orderflow version` prints.
	root.SetVersionTemplate(buildVersion().String() + "\n")
	// Each subcommand lives in its own file and is registered here.
	root.AddCommand(
		newVersionCmd(),
		newMachineCmd(),
		newReplayCmd(),
		newRunCmd(), newProduceCmd(), newTailCmd(),
		newRepartitionCmd(),
		newDemoCmd(), newGenerateCmd(),
		newSchemaCmd(),
		newResetCmd(),
	)
	usageErrorsExit2(root)
	registerCompletions(root)
	return root
}

// usageErrorsExit2 makes the errors of command-line parsing configuration
// errors (exit 2), like the other configuration errors: an unknown flag, a
// value its flag cannot parse (a bad duration or number), a missing flag
// value, an unknown subcommand and arguments a command does not take. The
// flag error function is inherited by every subcommand; the argument checks
// are wrapped one by one. A command that only groups subcommands (the root,
// machine) gets an argument check and prints its help when run alone, as
// cobra does for it otherwise: cobra's own check of its arguments returns
// an error that cannot be told from others.
func usageErrorsExit2(root *cobra.Command) {
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return configError(fmt.Errorf("%w (see %s --help)", err, c.CommandPath()))
	})
	var wrap func(c *cobra.Command)
	wrap = func(c *cobra.Command) {
		if c.HasSubCommands() && !c.Runnable() {
			if c.SuggestionsMinimumDistance <= 0 {
				c.SuggestionsMinimumDistance = 2 // cobra's default, which SuggestionsFor does not apply
			}
			c.Args = func(c *cobra.Command, a []string) error {
				if len(a) > 0 {
					msg := fmt.Sprintf("unknown command %q for %q", a[0], c.CommandPath())
					if s := c.SuggestionsFor(a[0]); len(s) > 0 {
						msg += fmt.Sprintf(" (did you mean %q?)", s[0])
					}
					return errors.New(msg)
				}
				return nil
			}
			c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		}
		if args := c.Args; args != nil {
			c.Args = func(c *cobra.Command, a []string) error {
				if err := args(c, a); err != nil {
					return configError(fmt.Errorf("%w (see %s --help)", err, c.CommandPath()))
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			wrap(sub)
		}
	}
	wrap(root)
}
