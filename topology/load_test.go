package topology

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// want is one problem a broken file must produce.
type want struct {
	kind  ProblemKind
	line  int
	state string
	event string
	msg   string // a substring of the message
}

// TestLoadBrokenFiles loads one broken file per validation rule (under
// testdata/broken) and checks that exactly the expected problems are
// reported, each naming its line, state and event.
func TestLoadBrokenFiles(t *testing.T) {
	cases := map[string][]want{
		"unknown_target.yaml": {
			{ProblemUnknownTarget, 10, "open", "go", `unknown target state "nowhere"`},
			{ProblemUnknownTarget, 11, "open", "back", "only a superstate has a history"},
		},
		"bad_initial.yaml": {
			{ProblemUnknownTarget, 1, "", "", `machine initial: unknown state "limbo"`},
			{ProblemUnknownTarget, 7, "group", "", `"elsewhere" is not a child of group`},
			{ProblemUnknownTarget, 10, "inner", "", "a leaf state has no children"},
		},
		"missing_initial.yaml": {
			{ProblemMissingInitial, 6, "work", "", "superstate has no initial child"},
			{ProblemMissingInitial, 12, "ended", "", "terminal superstate is entered directly"},
		},
		"unreachable.yaml": {
			{ProblemUnreachable, 9, "island", "", "unreachable"},
			{ProblemUnreachable, 12, "group", "", "unreachable"}, // the subtree, once
		},
		"no_way_out.yaml": {
			{ProblemNoWayOut, 13, "stuck", "", "no way out"},
		},
		"duplicate_transition.yaml": {
			{ProblemDuplicateTransition, 9, "a", "go", "first on line 8"},
		},
		"unknown_guard.yaml": {
			{ProblemUnknownGuard, 11, "a", "go", `unknown guard kind "amount_above"`},
		},
		"bad_guard.yaml": {
			{ProblemBadGuard, 10, "a", "go", "want DURATION since EVENT"},
			{ProblemBadGuard, 11, "a", "skip", "duration must be positive"},
			{ProblemBadGuard, 12, "a", "hop", "an explicit rejection takes no guard"},
		},
		"missing_creating_event.yaml": {
			{ProblemCreatingEvent, 0, "", "", "no creating event"},
		},
		"second_creating_event.yaml": {
			{ProblemCreatingEvent, 4, "", "import", "second creating event (create already creates orders)"},
			{ProblemCreatingEvent, 10, "a", "create", "refuses it with order_exists"},
		},
		"unknown_event.yaml": {
			{ProblemUnknownEvent, 8, "a", "gone", "unknown event"},
			{ProblemUnknownEvent, 9, "a", "go", `within guard: unknown event "teleport"`},
		},
		"terminal_transition.yaml": {
			{ProblemTerminalTransition, 14, "closed", "revive", "terminal states accept no events"},
		},
		"names.yaml": {
			{ProblemName, 4, "", "Go", "lower_snake_case"},
			{ProblemName, 5, "", "create", "event declared twice (first on line 3)"},
			{ProblemCreatingEvent, 9, "a", "create", "never taken"},
			{ProblemUnknownEvent, 10, "a", "Go", "unknown event"},
			{ProblemName, 10, "a", "Go", `"invalid_transition" is a built-in reason`},
			{ProblemName, 13, "a", "", "state declared twice (first on line 7)"},
		},
		"syntax.yaml": {
			{ProblemSyntax, 7, "a", "", `unknown field "colour"`},
			{ProblemSyntax, 9, "a", "go", "exactly one of to, history, reject (has 0)"},
			{ProblemSyntax, 10, "a", "go", "exactly one of to, history, reject (has 2)"},
			{ProblemDuplicateTransition, 10, "a", "go", "first on line 9"},
			{ProblemNoWayOut, 11, "b", "", "no way out"}, // terminal: maybe is not true
			{ProblemSyntax, 12, "b", "", "terminal must be true or false"},
		},
		"yaml_error.yaml": {
			{ProblemSyntax, 3, "", "", "did not find expected ',' or '}'"},
		},
		"many.yaml": {
			{ProblemCreatingEvent, 0, "", "", "no creating event"},
			{ProblemMissingInitial, 0, "", "", "machine has no initial state"},
			{ProblemDuplicateTransition, 9, "open", "go", "first on line 8"},
			{ProblemUnknownTarget, 9, "open", "go", `"nowhere"`},
			{ProblemUnknownGuard, 10, "open", "halt", `"sunny"`},
			{ProblemNoWayOut, 11, "b", "", "no way out"},
		},
	}
	files, err := filepath.Glob("testdata/broken/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(cases) {
		t.Errorf("%d files under testdata/broken, %d cases: give every file a case", len(files), len(cases))
	}
	for name, wants := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", "broken", name)
			m, err := LoadFile(path)
			if m != nil {
				t.Errorf("got a machine from a broken file")
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("want a *LoadError, got %v", err)
			}
			if le.Source != path {
				t.Errorf("Source = %q, want %q", le.Source, path)
			}
			got := le.Problems
			if len(got) != len(wants) {
				t.Errorf("got %d problems, want %d:\n%s", len(got), len(wants), err)
			}
			for i := 0; i < len(got) && i < len(wants); i++ {
				g, w := got[i], wants[i]
				if g.Kind != w.kind || g.Line != w.line || g.State != w.state || g.Event != w.event || !strings.Contains(g.Msg, w.msg) {
					t.Errorf("problem %d:\n got %s %q\nwant %s line %d state %q event %q msg ~%q", i, g.Kind, g, w.kind, w.line, w.state, w.event, w.msg)
				}
			}
			// Every problem shows up in the error text, with file and line.
			for _, p := range got {
				if !strings.Contains(err.Error(), p.String()) {
					t.Errorf("error text lacks %q:\n%s", p, err)
				}
			}
			if !strings.HasPrefix(err.Error(), path+": ") {
				t.Errorf("error text does not start with the file name: %s", err)
			}
		})
	}
}

func TestLoadEmptyAndNonMapping(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "- a\n- b\n", "just a string\n"} {
		_, err := Parse([]byte(src))
		var le *LoadError
		if !errors.As(err, &le) || len(le.Problems) != 1 || le.Problems[0].Kind != ProblemSyntax {
			t.Errorf("Parse(%q) = %v, want one syntax problem", src, err)
		}
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("want an error wrapping os.ErrNotExist, got %v", err)
	}
}

func TestLoadReaderMatchesParse(t *testing.T) {
	m, err := Load(strings.NewReader(string(defaultYAML)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(m.Leaves(), ",") != strings.Join(Default().Leaves(), ",") {
		t.Fatalf("Load and Default disagree: %v vs %v", m.Leaves(), Default().Leaves())
	}
}

// TestLoadAcceptsMinimalMachine: the smallest valid machine, with scalar
// shorthand for events and states.
func TestLoadAcceptsMinimalMachine(t *testing.T) {
	m, err := Parse([]byte(`
initial: new
events:
  - {name: create, creates: true}
  - finish
states:
  - name: new
    transitions:
      - {event: finish, to: done}
  - name: done
    terminal: true
`))
	if err != nil {
		t.Fatal(err)
	}
	if m.InitialState() != "new" || m.CreatingEvent() != "create" || !m.IsTerminal("done") || m.IsTerminal("new") {
		t.Fatalf("unexpected machine: initial %s creating %s", m.InitialState(), m.CreatingEvent())
	}
}

// TestReadmeExampleLoads keeps the example of README.md valid.
func TestReadmeExampleLoads(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```yaml\n")
	if !ok {
		t.Fatal("README.md has no yaml example")
	}
	example, _, _ := strings.Cut(rest, "```")
	m, err := Parse([]byte(example))
	if err != nil {
		t.Fatalf("README example: %v", err)
	}
	if m.Name() != "example" || len(m.Leaves()) != 8 {
		t.Fatalf("README example: name %q, leaves %v", m.Name(), m.Leaves())
	}
}

// TestLoadRefusesEventNamesTheDecodersRefuse: an event type longer than
// the decoders take (MaxEventNameBytes) could never be processed (every
// event of it would be dead-lettered), so the loader refuses its name; one
// of exactly the limit loads.
func TestLoadRefusesEventNamesTheDecodersRefuse(t *testing.T) {
	machine := func(name string) string {
		return `
initial: new
events:
  - {name: create, creates: true}
  - ` + name + `
states:
  - name: new
    transitions:
      - {event: ` + name + `, to: done}
  - name: done
    terminal: true
`
	}
	if _, err := Parse([]byte(machine(strings.Repeat("a", MaxEventNameBytes)))); err != nil {
		t.Fatalf("a name of %d bytes: %v", MaxEventNameBytes, err)
	}
	_, err := Parse([]byte(machine(strings.Repeat("a", MaxEventNameBytes+1))))
	var le *LoadError
	if !errors.As(err, &le) || le.Problems[0].Kind != ProblemName || le.Problems[0].Line != 5 ||
		!strings.Contains(le.Problems[0].Msg, "257 bytes, more than the 256") {
		t.Fatalf("a name of %d bytes: got %v, want a name problem on line 5", MaxEventNameBytes+1, err)
	}
}
