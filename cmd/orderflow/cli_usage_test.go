package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestUsageErrorsExit2 runs the binary with command lines it cannot parse:
// each is a configuration error, exit code 2, and says what is wrong.
func TestUsageErrorsExit2(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--bogus"}, []string{"unknown flag: --bogus", "orderflow run --help"}},
		{[]string{"run", "--commit-interval", "soon"}, []string{`invalid argument "soon" for "--commit-interval"`}},
		{[]string{"run", "--retention", "7days"}, []string{`"--retention"`}},
		{[]string{"run", "--threads", "two"}, []string{`invalid argument "two" for "--threads"`}},
		{[]string{"run", "--brokers"}, []string{"flag needs an argument: --brokers"}},
		{[]string{"run", "extra"}, []string{`unknown command "extra" for "orderflow run"`}},
		{[]string{"rnu"}, []string{`unknown command "rnu" for "orderflow"`, `did you mean "run"?`}},
		{[]string{"machine", "draw"}, []string{`unknown command "draw" for "orderflow machine"`}},
		{[]string{"machine", "validate", "a.yaml", "b.yaml"}, []string{"accepts at most 1 arg"}},
		{[]string{"tail", "--from-beginning=maybe"}, []string{`"--from-beginning"`}},
		{[]string{"produce", "--buffer", "1k"}, []string{`"--buffer"`}},
		{[]string{"demo", "--events", "-x"}, []string{"--events"}},
	} {
		code, stderr := runBinary(t, tc.args...)
		if code != 2 {
			t.Errorf("orderflow %s: exit code %d, want 2\n%s", strings.Join(tc.args, " "), code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("orderflow %s: stderr lacks %q:\n%s", strings.Join(tc.args, " "), w, stderr)
			}
		}
	}
	// Help is not an error.
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {}, {"machine"}} {
		if code, stderr := runBinary(t, args...); code != 0 {
			t.Errorf("orderflow %s: exit code %d, want 0\n%s", strings.Join(args, " "), code, stderr)
		}
	}
}

// zeroMeans are the numeric flags of run whose zero is meaningful, and
// what it means (as their help says).
var zeroMeans = map[string]string{
	"replication-factor": "min(3, brokers)",
	"retention":          "keeps orders forever",
	"standby-replicas":   "0: none",
}

// TestRunNumericFlagRanges goes through every numeric flag of run: a
// negative value, and zero unless zero means something (zeroMeans), is a
// configuration error (exit 2) that names the flag, its value and what it
// must be; so is a value from the environment, which the message names.
// Nothing is refused that the processor would take as it says: the
// defaults run.
func TestRunNumericFlagRanges(t *testing.T) {
	clearEnv(t)
	numeric := 0
	newRunCmd().Flags().VisitAll(func(f *pflag.Flag) {
		var bad []string
		switch f.Value.Type() {
		case "int", "int16", "int32", "int64":
			bad = []string{"-1", "0"}
		case "duration":
			bad = []string{"-1s", "0s"}
		default:
			return
		}
		numeric++
		if _, ok := zeroMeans[f.Name]; ok {
			if !strings.Contains(f.Usage, zeroMeans[f.Name]) {
				t.Errorf("--%s: its help %q does not say what 0 means (%s)", f.Name, f.Usage, zeroMeans[f.Name])
			}
			bad = bad[:1]
		}
		for _, v := range bad {
			r := runBriefly(t, "--"+f.Name, v)
			if r.code != 2 || r.err == nil || !strings.Contains(r.err.Error(), "--"+f.Name+" ") || !strings.Contains(r.err.Error(), ": must be ") {
				t.Errorf("--%s %s: code %d, err %v; want code 2 and an error naming --%s and its range", f.Name, v, r.code, r.err, f.Name)
			}
		}
	})
	if numeric < 12 {
		t.Fatalf("found %d numeric flags of run; the test looks for int and duration flags", numeric)
	}

	t.Setenv("ORDERFLOW_MAX_BATCH_RECORDS", "-5")
	r := runBriefly(t, "--threads", "0")
	for _, w := range []string{"--max-batch-records -5: must be at least 1 (set by env ORDERFLOW_MAX_BATCH_RECORDS)", "--threads 0: must be at least 1"} {
		if r.code != 2 || r.err == nil || !strings.Contains(r.err.Error(), w) {
			t.Errorf("code %d, err %v; want code 2 and %q", r.code, r.err, w)
		}
	}
	t.Setenv("ORDERFLOW_MAX_BATCH_RECORDS", "")

	// A transaction must be able to outlast a batch.
	r = runBriefly(t, "--commit-interval", "20s")
	if r.code != 2 || r.err == nil || !strings.Contains(r.err.Error(), "--transaction-timeout 10s: must be longer than --commit-interval") {
		t.Errorf("--commit-interval 20s with the default transaction timeout: code %d, err %v", r.code, r.err)
	}
	// The zeros that mean something, and the defaults, pass the checks:
	// run starts, and fails to reach the broker (exit 1).
	if r := runBriefly(t, "--replication-factor", "0", "--retention", "0", "--standby-replicas", "0"); r.code != 1 || !strings.Contains(r.err.Error(), "127.0.0.1:1") {
		t.Errorf("defaults with --replication-factor 0 --retention 0 --standby-replicas 0: code %d, err %v; want 1 and no broker", r.code, r.err)
	}
}

// runBriefly runs `run` in-process with args against a broker address
// nothing listens on, for at most two seconds: a configuration error
// returns at once with code 2; a valid configuration fails to connect
// (code 1) or runs until the context ends (nil).
func runBriefly(t *testing.T, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	base := []string{"run", "--brokers", "127.0.0.1:1", "--state-dir", t.TempDir(), "--http-addr", "", "--log-level", "error"}
	return cli(ctx, nil, append(base, args...)...)
}

// TestRunInTestsNeverListensOnTheDefaultPort: a test's `run` that forgets
// --http-addr fails saying so, instead of binding 127.0.0.1:8080, which
// fails whenever another process on the machine holds that port.
func TestRunInTestsNeverListensOnTheDefaultPort(t *testing.T) {
	clearEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r := cli(ctx, nil, "run", "--brokers", "127.0.0.1:1", "--state-dir", t.TempDir(), "--log-level", "error")
	if r.err == nil || !strings.Contains(r.err.Error(), "fixed port of --http-addr "+defaultHTTPAddr) {
		t.Fatalf("run without --http-addr in a test: %v, want the refusal of the fixed port", r)
	}
}

// TestCLIResultPrintsTheError: a failing test that prints a cliResult
// shows the error's text, not a pointer.
func TestCLIResultPrintsTheError(t *testing.T) {
	r := cli(context.Background(), nil, "run", "--bogus")
	for _, f := range []string{"%v", "%+v"} {
		if s := fmt.Sprintf(f, r); !strings.Contains(s, "unknown flag: --bogus") {
			t.Errorf("%s of a cliResult: %q, want the error's text", f, s)
		}
	}
}
