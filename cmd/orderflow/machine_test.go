package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// runCmd runs the root command in-process with args and stdin, and returns
// stdout, the error and the exit code main would use (0 without error).
func runCmd(t *testing.T, stdin string, args ...string) (string, error, int) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.Execute()
	code := 0
	if err != nil {
		code = exitCode(err)
	}
	return out.String(), err, code
}

func TestMachineValidateDefault(t *testing.T) {
	out, err, code := runCmd(t, "", "machine", "validate")
	if err != nil || code != 0 || out != "OK (default machine)\n" {
		t.Fatalf("out %q err %v code %d", out, err, code)
	}
}

func TestMachineValidateFileOK(t *testing.T) {
	out, err, code := runCmd(t, "", "machine", "validate", "testdata/machine_small.yaml")
	if err != nil || code != 0 || out != "OK testdata/machine_small.yaml\n" {
		t.Fatalf("out %q err %v code %d", out, err, code)
	}
}

func TestMachineValidateReportsEveryProblem(t *testing.T) {
	out, err, code := runCmd(t, "", "machine", "validate", "testdata/machine_broken.yaml")
	if code != 1 {
		t.Fatalf("exit code %d, want 1 (err %v)", code, err)
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		t.Fatalf("want an *exitError, got %T %v", err, err)
	}
	want := []string{
		`testdata/machine_broken.yaml:9: state open: event go: unknown target state "nowhere" [unknown_target]`,
		`testdata/machine_broken.yaml:10: state open: event go: second transition for this event on this state (first on line 9); declare it once, or on a deeper state [duplicate_transition]`,
		`testdata/machine_broken.yaml:10: state open: event go: unknown guard kind "sunny" (want attribute_present or within) [unknown_guard]`,
	}
	if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	if !strings.Contains(err.Error(), "3 problem(s)") {
		t.Errorf("error %q does not count the problems", err)
	}
}

func TestMachineValidateMissingFile(t *testing.T) {
	_, err, code := runCmd(t, "", "machine", "validate", "testdata/no_such_machine.yaml")
	if code != 1 || err == nil {
		t.Fatalf("code %d err %v, want exit 1", code, err)
	}
}

func TestMachineGraphDOTDefault(t *testing.T) {
	out, err, code := runCmd(t, "", "machine", "graph")
	if err != nil || code != 0 {
		t.Fatalf("err %v code %d", err, code)
	}
	for _, want := range []string{
		`digraph "default" {`,
		`subgraph "cluster_in_transit" {`,
		`"placed" -> "confirmed" [label="confirm_payment"];`,
		`label="rejected:\ncancel_after_shipment"`,
		`"on_hold" -> "__history_open" [label="release_hold"];`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("DOT output lacks %s", want)
		}
	}
}

func TestMachineGraphMermaidFile(t *testing.T) {
	out, err, code := runCmd(t, "", "machine", "graph", "--format", "mermaid", "testdata/machine_small.yaml")
	if err != nil || code != 0 {
		t.Fatalf("err %v code %d", err, code)
	}
	for _, want := range []string{
		"stateDiagram-v2\n",
		"    state active {\n        [*] --> working\n",
		"    active --> closed : close\n",
		"    paused --> H_active : resume\n",
		"    class closed terminal\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Mermaid output lacks %q:\n%s", want, out)
		}
	}
}

func TestMachineGraphErrors(t *testing.T) {
	if _, err, code := runCmd(t, "", "machine", "graph", "--format", "png"); code != 2 || err == nil {
		t.Errorf("--format png: code %d err %v, want exit 2", code, err)
	}
	if _, err, code := runCmd(t, "", "machine", "graph", "testdata/machine_broken.yaml"); code != 1 || err == nil {
		t.Errorf("broken machine: code %d err %v, want exit 1", code, err)
	}
}
