package topology

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Graph node IDs. State names are lower_snake_case, so IDs with a leading
// underscore (DOT) or an upper-case letter (Mermaid) never collide with them.

// WriteDOT writes the machine as a Graphviz digraph: superstates are
// clusters, terminal leaves have a double border, guards are written in
// brackets after the event, explicit rejections lead to red octagons, and
// shallow history is an "H" node inside its superstate. Transitions are drawn
// where they are declared (an edge from a cluster applies to every state in
// it).
func (m *Machine) WriteDOT(w io.Writer) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "digraph %q {\n", m.graphName())
	b.WriteString("\tcompound=true;\n\trankdir=LR;\n")
	b.WriteString("\tnode [shape=box, style=rounded, fontname=\"Helvetica\"];\n")
	b.WriteString("\tedge [fontname=\"Helvetica\", fontsize=10];\n")
	b.WriteString("\t\"__start\" [shape=point, width=0.15];\n")
	for i := range m.nodes {
		if m.nodes[i].parent < 0 {
			m.dotState(b, int32(i), 1)
		}
	}
	m.dotEdge(b, "\"__start\"", -1, m.initial, m.events[m.creating].name, "")
	for i := range m.transitions {
		t := &m.transitions[i]
		label := m.edgeLabel(t)
		switch t.kind {
		case toState:
			m.dotEdge(b, "", t.source, t.target, label, "")
		case toHistory:
			fmt.Fprintf(b, "\t%s -> \"__history_%s\" [%s];\n", m.dotTail(t.source), m.nodes[t.target].name, dotAttrs(label, m.dotLtail(t.source), ""))
		case toReject:
			id := fmt.Sprintf("\"__reject_%d\"", i)
			fmt.Fprintf(b, "\t%s [shape=octagon, color=red, fontcolor=red, label=%q];\n", id, "rejected:\n"+t.reason)
			fmt.Fprintf(b, "\t%s -> %s [%s];\n", m.dotTail(t.source), id, dotAttrs(label, m.dotLtail(t.source), "style=dashed, color=red, fontcolor=red"))
		}
	}
	b.WriteString("}\n")
	return b.Flush()
}

func (m *Machine) dotState(b *bufio.Writer, i int32, depth int) {
	n := &m.nodes[i]
	ind := strings.Repeat("\t", depth)
	if n.leaf() {
		attrs := ""
		if n.terminal {
			attrs = " [peripheries=2]"
		}
		fmt.Fprintf(b, "%s%q%s;\n", ind, n.name, attrs)
		return
	}
	fmt.Fprintf(b, "%ssubgraph %q {\n", ind, "cluster_"+n.name)
	label := n.name
	if n.terminal {
		label += " (terminal)"
	}
	fmt.Fprintf(b, "%s\tlabel=%q;\n", ind, label)
	if n.initial >= 0 {
		fmt.Fprintf(b, "%s\t\"__initial_%s\" [shape=point, width=0.1];\n", ind, n.name)
	}
	if n.historyTarget {
		fmt.Fprintf(b, "%s\t\"__history_%s\" [shape=circle, label=\"H\", width=0.3];\n", ind, n.name)
	}
	for _, c := range n.children {
		m.dotState(b, c, depth+1)
	}
	fmt.Fprintf(b, "%s}\n", ind)
	if n.initial >= 0 {
		m.dotEdge(b, fmt.Sprintf("\"__initial_%s\"", n.name), -1, n.initial, "", "")
	}
}

// dotEdge draws an edge from state src (or from the node tail when src < 0)
// to state dst; a superstate end is drawn from/to a leaf inside its cluster
// with ltail/lhead.
func (m *Machine) dotEdge(b *bufio.Writer, tail string, src, dst int32, label, extra string) {
	ltail := ""
	if src >= 0 {
		tail, ltail = m.dotTail(src), m.dotLtail(src)
	}
	head := m.nodes[dst].initialLeaf
	if head < 0 {
		head = m.firstLeaf(dst)
	}
	attrs := dotAttrs(label, ltail, extra)
	if !m.nodes[dst].leaf() {
		if attrs != "" {
			attrs += ", "
		}
		attrs += fmt.Sprintf("lhead=%q", "cluster_"+m.nodes[dst].name)
	}
	if attrs != "" {
		attrs = " [" + attrs + "]"
	}
	fmt.Fprintf(b, "\t%s -> %q%s;\n", tail, m.nodes[head].name, attrs)
}

func (m *Machine) dotTail(src int32) string {
	return fmt.Sprintf("%q", m.nodes[m.firstLeaf(src)].name)
}

func (m *Machine) dotLtail(src int32) string {
	if m.nodes[src].leaf() {
		return ""
	}
	return fmt.Sprintf("ltail=%q", "cluster_"+m.nodes[src].name)
}

func dotAttrs(label, ltail, extra string) string {
	var parts []string
	if label != "" {
		parts = append(parts, fmt.Sprintf("label=%q", label))
	}
	if ltail != "" {
		parts = append(parts, ltail)
	}
	if extra != "" {
		parts = append(parts, extra)
	}
	return strings.Join(parts, ", ")
}

func (m *Machine) firstLeaf(i int32) int32 {
	for !m.nodes[i].leaf() {
		i = m.nodes[i].children[0]
	}
	return i
}

// edgeLabel is the event, with the guard in brackets.
func (m *Machine) edgeLabel(t *transition) string {
	if t.event < 0 {
		return "after " + t.afterText
	}
	ev := m.events[t.event].name
	switch t.guard.kind {
	case guardAttributePresent:
		return fmt.Sprintf("%s [attribute_present %s]", ev, t.guard.attr)
	case guardWithin:
		return fmt.Sprintf("%s [within %s since %s]", ev, t.guard.withinText, m.events[t.guard.since].name)
	}
	return ev
}

func (m *Machine) graphName() string {
	if m.name != "" {
		return m.name
	}
	return "orderflow"
}

// WriteMermaid writes the machine as a Mermaid stateDiagram-v2: superstates
// are composite states, terminal states have the class "terminal", guards
// are written in brackets after the event, explicit rejections lead to states
// of class "rejection", and shallow history is an "H" state inside its
// superstate. Each transition is written inside the innermost composite
// state that contains both of its ends, as Mermaid wants.
func (m *Machine) WriteMermaid(w io.Writer) error {
	b := bufio.NewWriter(w)
	b.WriteString("stateDiagram-v2\n")
	fmt.Fprintf(b, "    %%%% machine %s\n", m.graphName())
	// Group the transitions by the composite state they are written in
	// (-1: the top level).
	inside := map[int32][]int{}
	for i := range m.transitions {
		c := m.mermaidContainer(&m.transitions[i])
		inside[c] = append(inside[c], i)
	}
	for i := range m.nodes {
		if m.nodes[i].parent < 0 {
			m.mermaidState(b, int32(i), 1, inside)
		}
	}
	fmt.Fprintf(b, "    [*] --> %s : %s\n", m.nodes[m.initial].name, m.events[m.creating].name)
	var rejects []string
	for _, ti := range inside[-1] {
		if id := m.mermaidEdge(b, ti, "    "); id != "" {
			rejects = append(rejects, id)
		}
	}
	b.WriteString("    classDef terminal fill:#eee,stroke:#333,stroke-width:3px\n")
	b.WriteString("    classDef rejection fill:#fdd,stroke:#c00,color:#c00\n")
	var terminals []string
	for i := range m.nodes {
		if n := &m.nodes[i]; n.leaf() && n.terminal {
			terminals = append(terminals, n.name)
		}
	}
	if len(terminals) > 0 {
		fmt.Fprintf(b, "    class %s terminal\n", strings.Join(terminals, ","))
	}
	if len(rejects) > 0 {
		fmt.Fprintf(b, "    class %s rejection\n", strings.Join(rejects, ","))
	}
	return b.Flush()
}

// mermaidContainer returns the innermost superstate strictly containing
// both ends of transition t, -1 for the top level. Rejection states are
// drawn at the top level; a history state lives inside its superstate.
func (m *Machine) mermaidContainer(t *transition) int32 {
	if t.kind == toReject {
		return -1
	}
	for c := m.nodes[t.source].parent; c >= 0; c = m.nodes[c].parent {
		if t.kind == toHistory && c == t.target {
			return c
		}
		if c != t.target && m.isAncestor(c, t.target) {
			return c
		}
	}
	return -1
}

// mermaidEdge writes transition ti; for an explicit rejection it also
// declares the rejection state and returns its ID.
func (m *Machine) mermaidEdge(b *bufio.Writer, ti int, ind string) (rejectID string) {
	t := &m.transitions[ti]
	src, label := m.nodes[t.source].name, m.edgeLabel(t)
	switch t.kind {
	case toState:
		fmt.Fprintf(b, "%s%s --> %s : %s\n", ind, src, m.nodes[t.target].name, label)
	case toHistory:
		fmt.Fprintf(b, "%s%s --> H_%s : %s\n", ind, src, m.nodes[t.target].name, label)
	case toReject:
		rejectID = fmt.Sprintf("R%d", ti)
		fmt.Fprintf(b, "%sstate \"rejected: %s\" as %s\n", ind, t.reason, rejectID)
		fmt.Fprintf(b, "%s%s --> %s : %s\n", ind, src, rejectID, label)
	}
	return rejectID
}

func (m *Machine) mermaidState(b *bufio.Writer, i int32, depth int, inside map[int32][]int) {
	n := &m.nodes[i]
	ind := strings.Repeat("    ", depth)
	if n.leaf() {
		fmt.Fprintf(b, "%s%s\n", ind, n.name)
		return
	}
	fmt.Fprintf(b, "%sstate %s {\n", ind, n.name)
	if n.initial >= 0 {
		fmt.Fprintf(b, "%s    [*] --> %s\n", ind, m.nodes[n.initial].name)
	}
	if n.historyTarget {
		fmt.Fprintf(b, "%s    state \"H\" as H_%s\n", ind, n.name)
	}
	for _, c := range n.children {
		m.mermaidState(b, c, depth+1, inside)
	}
	for _, ti := range inside[i] {
		m.mermaidEdge(b, ti, ind+"    ") // never a rejection: those are top level
	}
	fmt.Fprintf(b, "%s}\n", ind)
}
