package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/orderflow/orderflow/topology"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the generated blocks of README.md")

// TestREADME keeps the README's generated blocks in step with the code: the
// default machine as `orderflow machine graph --format mermaid` draws it, and
// the flag tables of `run` and `demo`. Run with -update-readme to rewrite
// them.
func TestREADME(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)

	var graph bytes.Buffer
	if err := topology.Default().WriteMermaid(&graph); err != nil {
		t.Fatal(err)
	}
	// The command's own output, not only the library's.
	out, err, _ := runCmd(t, "", "machine", "graph", "--format", "mermaid")
	if err != nil || out != graph.String() {
		t.Fatalf("machine graph --format mermaid: %v, output differs from WriteMermaid", err)
	}
	blocks := []struct{ name, body string }{
		{"machine", "```mermaid\n" + out + "```\n"},
		{"demo flags", flagTable(newDemoCmd(), false)},
		{"run flags", flagTable(newRunCmd(), true)},
	}
	want := got
	for _, bl := range blocks {
		want = replaceBlock(t, want, bl.name, bl.body)
	}
	if *updateREADME {
		if want != got {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Log("README.md rewritten")
		}
		return
	}
	for _, bl := range blocks {
		if block(t, got, bl.name) != bl.body {
			t.Errorf("README.md: the %q block is out of date; run go test ./cmd/orderflow -run TestREADME -update-readme\nwant:\n%s", bl.name, bl.body)
		}
	}

	// The README's example commands parse.
	for _, line := range strings.Split(got, "\n") {
		rest, ok := strings.CutPrefix(line, "./bin/orderflow ")
		if !ok {
			continue
		}
		args := strings.Fields(rest)
		c, flags, err := newRootCmd().Find(args)
		if err == nil {
			err = c.ParseFlags(flags)
		}
		if err != nil {
			t.Errorf("README.md: %q: %v", line, err)
		}
	}

	// Every flag of run and demo is documented (the tables above), and
	// so is every flag of the commands that read and write topics.
	for _, c := range []*cobra.Command{newRunCmd(), newDemoCmd(), newProduceCmd(), newTailCmd(), newGenerateCmd()} {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			named := regexp.MustCompile(`--` + regexp.QuoteMeta(f.Name) + `([^a-z-]|$)`)
			if f.Name != "help" && !named.MatchString(got) {
				t.Errorf("README.md does not mention %s --%s", c.Name(), f.Name)
			}
		})
	}
}

// block returns the text between "<!-- BEGIN name" (to the end of its
// line) and "<!-- END name -->".
func block(t *testing.T, s, name string) string {
	t.Helper()
	begin := strings.Index(s, "<!-- BEGIN "+name)
	end := strings.Index(s, "<!-- END "+name+" -->")
	if begin < 0 || end < begin {
		t.Fatalf("README.md has no <!-- BEGIN %s ... --> ... <!-- END %s --> block", name, name)
	}
	begin += strings.Index(s[begin:], "\n") + 1
	return s[begin:end]
}

func replaceBlock(t *testing.T, s, name, body string) string {
	t.Helper()
	old := block(t, s, name)
	i := strings.Index(s, "<!-- BEGIN "+name)
	i += strings.Index(s[i:], "\n") + 1
	return s[:i] + body + s[i+len(old):]
}

// flagTable renders a command's flags as a Markdown table, with their
// environment variables when the command reads them.
func flagTable(c *cobra.Command, env bool) string {
	var b strings.Builder
	if env {
		b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	} else {
		b.WriteString("| flag | default | meaning |\n|---|---|---|\n")
	}
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		typ, usage := pflag.UnquoteUsage(f)
		name := "`--" + f.Name
		if typ != "" {
			name += " " + typ
		}
		name += "`"
		def := ""
		if f.DefValue != "" && f.DefValue != "[]" && !isSecret(f) {
			def = "`" + f.DefValue + "`"
		}
		// Markdown: a | ends the cell, a <word> is an HTML tag.
		cell := strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace
		if env {
			e := ""
			if !notConfigurable[f.Name] || f.Name == configFlag {
				e = "`" + envName(f.Name) + "`"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, e, def, cell(usage))
		} else {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", name, def, cell(usage))
		}
	})
	return b.String()
}
