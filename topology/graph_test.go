package topology

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden graph files under testdata/graph")

func TestGraphGolden(t *testing.T) {
	for _, tc := range []struct {
		file  string
		write func(*Machine, *bytes.Buffer) error
	}{
		{"default.dot", func(m *Machine, b *bytes.Buffer) error { return m.WriteDOT(b) }},
		{"default.mmd", func(m *Machine, b *bytes.Buffer) error { return m.WriteMermaid(b) }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(Default(), &b); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "graph", tc.file)
			if *updateGolden {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s differs from the golden file (rerun with -update and review the diff):\n%s", tc.file, b.String())
			}
		})
	}
}

// TestDOTStructure checks the DOT output against the machine, independently
// of the golden file: a cluster per superstate, a node per leaf (terminal
// leaves double-bordered), an edge per declared transition with its label.
func TestDOTStructure(t *testing.T) {
	m := Default()
	var b bytes.Buffer
	if err := m.WriteDOT(&b); err != nil {
		t.Fatal(err)
	}
	dot := b.String()
	for _, s := range m.States() {
		if m.IsLeaf(s) {
			node := regexp.MustCompile(`(?m)^\t+"` + s + `"( \[peripheries=2\])?;$`).FindStringSubmatch(dot)
			if node == nil {
				t.Errorf("no node for leaf %s", s)
			} else if (node[1] != "") != m.IsTerminal(s) {
				t.Errorf("leaf %s: terminal %v but node %q", s, m.IsTerminal(s), node[0])
			}
		} else if !strings.Contains(dot, `subgraph "cluster_`+s+`" {`) {
			t.Errorf("no cluster for superstate %s", s)
		}
	}
	for _, tr := range m.transitions {
		label := m.edgeLabel(&tr)
		if !strings.Contains(dot, `[label="`+label+`"`) {
			t.Errorf("no edge labelled %q", label)
		}
	}
	for _, want := range []string{
		`"placed" -> "cancelled" [label="cancel_order", ltail="cluster_open"]`,
		`"on_hold" -> "__history_open" [label="release_hold"]`,
		`label="rejected:\ncancel_after_shipment"`,
		`[label="ship_order [attribute_present tracking_number]"]`,
		`[label="request_return [within 720h since deliver_order]"]`,
		`"__start" -> "placed" [label="place_order", lhead="cluster_open"]`,
	} {
		if !strings.Contains(dot, want) {
			t.Errorf("DOT lacks %s", want)
		}
	}
	if strings.Count(dot, "{") != strings.Count(dot, "}") {
		t.Errorf("unbalanced braces")
	}
	if dotBin, err := exec.LookPath("dot"); err == nil {
		cmd := exec.Command(dotBin, "-Tsvg", "-o", os.DevNull)
		cmd.Stdin = &b
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("graphviz refuses the output: %v\n%s", err, out)
		}
	}
}

func TestMermaidStructure(t *testing.T) {
	m := Default()
	var b bytes.Buffer
	if err := m.WriteMermaid(&b); err != nil {
		t.Fatal(err)
	}
	mmd := b.String()
	if !strings.HasPrefix(mmd, "stateDiagram-v2\n") {
		t.Fatalf("not a stateDiagram-v2:\n%s", mmd)
	}
	for _, s := range m.States() {
		if !m.IsLeaf(s) && !strings.Contains(mmd, "state "+s+" {") {
			t.Errorf("no composite state for %s", s)
		}
	}
	for _, tr := range m.transitions {
		if tr.kind != toState {
			continue
		}
		line := m.nodes[tr.source].name + " --> " + m.nodes[tr.target].name + " : " + m.edgeLabel(&tr) + "\n"
		if !strings.Contains(mmd, line) {
			t.Errorf("no line %q", line)
		}
	}
	for _, want := range []string{
		"open --> cancelled : cancel_order\n",
		"on_hold --> H_open : release_hold\n",
		`state "rejected: cancel_after_shipment" as R`,
		"in_transit --> R",
		"post_delivery --> R",
		"class completed,cancelled,refunded,returned_to_sender,lost terminal\n",
		"[*] --> open : place_order\n",
	} {
		if !strings.Contains(mmd, want) {
			t.Errorf("Mermaid lacks %q", want)
		}
	}
	if strings.Count(mmd, "{") != strings.Count(mmd, "}") {
		t.Errorf("unbalanced braces")
	}
	// Transitions between children of one composite state are written
	// inside it; transitions between composites at the top level.
	_, open, _ := strings.Cut(mmd, "    state open {\n")
	open, _, _ = strings.Cut(open, "\n    }\n")
	for _, want := range []string{"placed --> confirmed : confirm_payment", "on_hold --> H_open : release_hold"} {
		if !strings.Contains(open, want) {
			t.Errorf("composite open lacks %q:\n%s", want, open)
		}
	}
	if strings.Contains(open, "confirmed --> shipped") || !strings.Contains(mmd, "\n    confirmed --> shipped : ") {
		t.Errorf("confirmed --> shipped should be a top-level transition")
	}
}

// Timed transitions are drawn like event transitions, labelled with their
// delay, from the state that declares them (a superstate's from its cluster).
func TestGraphTimers(t *testing.T) {
	m, err := Parse([]byte(`
initial: s
events: [{name: create, creates: true}, go]
states:
  - name: s
    initial: a
    transitions: [{after: 14d, to: lost}]
    states:
      - name: a
        transitions: [{after: 24h, to: b}, {event: go, to: b}]
      - name: b
        transitions: [{after: 1h, history: s}, {event: go, to: lost}]
  - name: done
    terminal: true
    states: [lost]
`))
	if err != nil {
		t.Fatal(err)
	}
	var dot, mmd bytes.Buffer
	if err := m.WriteDOT(&dot); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteMermaid(&mmd); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"a" -> "b" [label="after 24h"]`,
		`"a" -> "lost" [label="after 14d", ltail="cluster_s"]`,
		`"b" -> "__history_s" [label="after 1h"]`,
	} {
		if !strings.Contains(dot.String(), want) {
			t.Errorf("DOT lacks %s:\n%s", want, dot.String())
		}
	}
	for _, want := range []string{"a --> b : after 24h", "s --> lost : after 14d", "b --> "} {
		if !strings.Contains(mmd.String(), want) {
			t.Errorf("Mermaid lacks %s:\n%s", want, mmd.String())
		}
	}
}
