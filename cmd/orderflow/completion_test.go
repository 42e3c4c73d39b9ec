package main

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// TestCompletionOffersFlagValues: shell completion (cobra's __complete,
// which the completion scripts call) offers the values of --guarantee,
// --log-format, --kind and --format, and no file names for them.
func TestCompletionOffersFlagValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--guarantee", ""}, []string{"exactly_once", "at_least_once"}},
		{[]string{"run", "--log-format", ""}, []string{"auto", "text", "json"}},
		{[]string{"tail", "--kind", ""}, tailKinds},
		{[]string{"machine", "graph", "--format", ""}, []string{"dot", "mermaid"}},
	} {
		r := cli(context.Background(), nil, append([]string{"__complete"}, tc.args...)...)
		if r.err != nil {
			t.Fatalf("%v: %v", tc.args, r)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		got, directive := lines[:len(lines)-1], lines[len(lines)-1]
		if !slices.Equal(got, tc.want) {
			t.Errorf("completion of %v: %q, want %q", tc.args, got, tc.want)
		}
		if directive != ":4" { // ShellCompDirectiveNoFileComp
			t.Errorf("completion of %v: directive %s, want :4 (no file names)", tc.args, directive)
		}
	}
}
