package main

import (
	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/processor"
)

// flagValues are the values shell completion offers for the flags that
// take one of a few words, by command path and flag name.
var flagValues = map[string]map[string][]string{
	"orderflow run": {
		"guarantee":  {string(processor.ExactlyOnce), string(processor.AtLeastOnce)},
		"log-format": {"auto", "text", "json"},
	},
	"orderflow tail":          {"kind": tailKinds},
	"orderflow machine graph": {"format": {"dot", "mermaid"}},
}

// registerCompletions makes cobra's completion (orderflow completion bash,
// zsh, fish, powershell) offer flagValues.
func registerCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for name, values := range flagValues[c.CommandPath()] {
			if c.Flags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
