package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Parse parses and validates a machine file (YAML, see README.md). On any
// problem it returns a *LoadError listing every problem it found.
func Parse(data []byte) (*Machine, error) {
	var p parser
	f := p.parse(data)
	var m *Machine
	if f != nil {
		m = p.build(f)
	}
	if len(p.problems) > 0 {
		sort.SliceStable(p.problems, func(i, j int) bool { return p.problems[i].Line < p.problems[j].Line })
		return nil, &LoadError{Problems: p.problems}
	}
	return m, nil
}

// Load reads a machine file from r and parses it (see Parse). Exported
// with Parse and LoadFile for programs that load machines from elsewhere
// than a file (an embedded file system, a request body).
func Load(r io.Reader) (*Machine, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("topology: read machine: %w", err)
	}
	return Parse(data)
}

// LoadFile reads and parses the machine file at path (see Parse). A
// *LoadError it returns has Source set to path.
func LoadFile(path string) (*Machine, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	m, err := Parse(data)
	var le *LoadError
	if errors.As(err, &le) {
		le.Source = path
	}
	return m, err
}

// The raw file, as parsed, before validation.
type rawFile struct {
	name        string
	initial     string
	initialLine int
	events      []*rawEvent
	states      []*rawState
	line        int
}

type rawEvent struct {
	name        string
	description string
	creates     bool
	line        int
}

type rawState struct {
	name        string
	description string
	initial     string
	initialLine int
	terminal    bool
	children    []*rawState
	transitions []*rawTransition
	line        int
}

type rawTransition struct {
	event       string
	after       string // a timed transition: its delay as written
	afterLine   int
	to          string
	history     string
	reject      string
	targets     int // how many of to/history/reject are set
	guard       *rawGuard
	line        int
	description string
}

type rawGuard struct {
	kind  string
	value string
	line  int
}

// parser collects problems while parsing and validating.
type parser struct {
	problems []Problem
	broken   []int32 // states declaring a transition dropped for a problem
	// brokenEdges are the resolvable targets of dropped transitions: they
	// still count for reachability, so one mistake is reported once.
	brokenEdges []brokenEdge
}

type brokenEdge struct{ source, target int32 }

func (p *parser) add(kind ProblemKind, line int, state, event, format string, args ...any) {
	p.problems = append(p.problems, Problem{
		Kind: kind, Line: line, State: state, Event: event, Msg: fmt.Sprintf(format, args...),
	})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *parser) parse(data []byte) *rawFile {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.add(ProblemSyntax, 0, "", "", "empty machine file")
			return nil
		}
		msg := err.Error()
		line := 0
		if sm := yamlLine.FindStringSubmatch(msg); sm != nil {
			fmt.Sscan(sm[1], &line)
			msg = sm[2]
			// yaml.v3 reports parser (not scanner) errors with a 0-based
			// line: that of the collection being parsed.
			if strings.HasPrefix(msg, "did not find expected") || strings.HasPrefix(msg, "found undefined tag handle") {
				line++
			}
		}
		p.add(ProblemSyntax, line, "", "", "%s", strings.TrimPrefix(msg, "yaml: "))
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.add(ProblemSyntax, extra.Line, "", "", "more than one YAML document; a machine file holds one")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		p.add(ProblemSyntax, root.Line, "", "", "a machine file is a mapping with name, initial, events and states")
		return nil
	}
	f := &rawFile{line: root.Line}
	p.fields(root, "machine", func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			f.name = p.str(v, "", "", "name")
		case "description":
			p.str(v, "", "", "description")
		case "initial":
			f.initial, f.initialLine = p.str(v, "", "", "initial"), v.Line
		case "events":
			p.seq(v, "events", func(n *yaml.Node) { f.events = append(f.events, p.event(n)) })
		case "states":
			p.seq(v, "states", func(n *yaml.Node) {
				if s := p.state(n); s != nil {
					f.states = append(f.states, s)
				}
			})
		default:
			p.unknownField(k, "", "", key, "name, description, initial, events, states")
		}
	})
	return f
}

// fields calls fn for every key of the mapping n, reporting keys that
// appear twice.
func (p *parser) fields(n *yaml.Node, what string, fn func(key string, k, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.add(ProblemSyntax, k.Line, "", "", "%s: keys must be plain strings", what)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.add(ProblemSyntax, k.Line, "", "", "%s: field %q given twice (first on line %d)", what, k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		fn(k.Value, k, v)
	}
}

func (p *parser) unknownField(k *yaml.Node, state, event, key, want string) {
	p.add(ProblemSyntax, k.Line, state, event, "unknown field %q (want %s)", key, want)
}

func (p *parser) seq(n *yaml.Node, what string, fn func(*yaml.Node)) {
	if n.Kind != yaml.SequenceNode {
		p.add(ProblemSyntax, n.Line, "", "", "%s must be a list", what)
		return
	}
	for _, c := range n.Content {
		fn(c)
	}
}

func (p *parser) str(n *yaml.Node, state, event, what string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.add(ProblemSyntax, n.Line, state, event, "%s must be a string", what)
		return ""
	}
	return n.Value
}

func (p *parser) boolean(n *yaml.Node, state, event, what string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		p.add(ProblemSyntax, n.Line, state, event, "%s must be true or false", what)
	}
	return b
}

func (p *parser) event(n *yaml.Node) *rawEvent {
	e := &rawEvent{line: n.Line}
	switch n.Kind {
	case yaml.ScalarNode:
		e.name = n.Value
	case yaml.MappingNode:
		p.fields(n, "event", func(key string, k, v *yaml.Node) {
			switch key {
			case "name":
				e.name = p.str(v, "", "", "event name")
			case "creates":
				e.creates = p.boolean(v, "", e.name, "creates")
			case "description":
				e.description = p.str(v, "", e.name, "description")
			default:
				p.unknownField(k, "", e.name, key, "name, creates, description")
			}
		})
	default:
		p.add(ProblemSyntax, n.Line, "", "", "an event is a name or a mapping with name, creates, description")
	}
	return e
}

func (p *parser) state(n *yaml.Node) *rawState {
	s := &rawState{line: n.Line}
	switch n.Kind {
	case yaml.ScalarNode:
		s.name = n.Value
		return s
	case yaml.MappingNode:
	default:
		p.add(ProblemSyntax, n.Line, "", "", "a state is a name or a mapping with name, initial, terminal, transitions, states")
		return nil
	}
	// Read the name first so every later problem can name the state.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" {
			s.name = p.str(n.Content[i+1], "", "", "state name")
		}
	}
	p.fields(n, "state "+s.name, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
		case "description":
			s.description = p.str(v, s.name, "", "description")
		case "initial":
			s.initial, s.initialLine = p.str(v, s.name, "", "initial"), v.Line
		case "terminal":
			s.terminal = p.boolean(v, s.name, "", "terminal")
		case "states":
			p.seq(v, "states", func(c *yaml.Node) {
				if cs := p.state(c); cs != nil {
					s.children = append(s.children, cs)
				}
			})
		case "transitions":
			p.seq(v, "transitions", func(c *yaml.Node) {
				if t := p.transition(s.name, c); t != nil {
					s.transitions = append(s.transitions, t)
				}
			})
		default:
			p.unknownField(k, s.name, "", key, "name, description, initial, terminal, transitions, states")
		}
	})
	return s
}

func (p *parser) transition(state string, n *yaml.Node) *rawTransition {
	if n.Kind != yaml.MappingNode {
		p.add(ProblemSyntax, n.Line, state, "", "a transition is a mapping with event and one of to, history, reject")
		return nil
	}
	t := &rawTransition{line: n.Line}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "event":
			t.event = p.str(n.Content[i+1], state, "", "event")
		case "after":
			t.after, t.afterLine = p.str(n.Content[i+1], state, "", "after"), n.Content[i+1].Line
		}
	}
	p.fields(n, "transition", func(key string, k, v *yaml.Node) {
		switch key {
		case "event", "after":
		case "to":
			t.to = p.str(v, state, t.event, "to")
			t.targets++
		case "history":
			t.history = p.str(v, state, t.event, "history")
			t.targets++
		case "reject":
			t.reject = p.str(v, state, t.event, "reject")
			t.targets++
		case "description":
			t.description = p.str(v, state, t.event, "description")
		case "guard":
			t.guard = p.guard(state, t.event, v)
		default:
			p.unknownField(k, state, t.event, key, "event or after, to, history, reject, guard, description")
		}
	})
	switch {
	case t.event != "" && t.after != "":
		p.add(ProblemSyntax, n.Line, state, t.event, "a transition has an event or an after delay, not both")
	case t.event == "" && t.after == "":
		p.add(ProblemSyntax, n.Line, state, "", "transition has no event (or after, for a timed one)")
	}
	if t.targets != 1 {
		p.add(ProblemSyntax, n.Line, state, t.event, "a transition needs exactly one of to, history, reject (has %d)", t.targets)
	}
	return t
}

func (p *parser) guard(state, ev string, n *yaml.Node) *rawGuard {
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		p.add(ProblemSyntax, n.Line, state, ev, "a guard is a mapping with exactly one kind: attribute_present: NAME or within: DURATION since EVENT")
		return nil
	}
	k, v := n.Content[0], n.Content[1]
	g := &rawGuard{kind: k.Value, line: k.Line}
	g.value = p.str(v, state, ev, "guard "+k.Value)
	return g
}

// ParseDuration parses a delay as machine files write it: a Go duration
// ("36h", "90m") optionally preceded by a whole number of days ("30d",
// "1d12h"), as the CLI's --retention takes it.
func ParseDuration(s string) (time.Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseUint(days, 10, 16)
	if err != nil || (rest != "" && rest[0] == '-') {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 30d, 1d12h or 36h)", s)
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, err
		}
		d += r
	}
	return d, nil
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// withinRE matches the argument of a within guard: "DURATION since EVENT".
var withinRE = regexp.MustCompile(`^\s*(\S+)\s+since\s+(\S+)\s*$`)

func parseWithin(s string) (d time.Duration, text, since string, err error) {
	sm := withinRE.FindStringSubmatch(s)
	if sm == nil {
		return 0, "", "", fmt.Errorf("within %q: want DURATION since EVENT (e.g. 720h since deliver_order)", s)
	}
	d, err = time.ParseDuration(sm[1])
	if err != nil {
		return 0, "", "", fmt.Errorf("within %q: bad duration: %w", s, err)
	}
	if d <= 0 || d%time.Millisecond != 0 {
		return 0, "", "", fmt.Errorf("within %q: duration must be positive and a whole number of milliseconds", s)
	}
	return d, sm[1], sm[2], nil
}
