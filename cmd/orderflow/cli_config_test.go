package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/testutil"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"
)

// cliResult is what one in-process run of the orderflow command gave.
type cliResult struct {
	stdout, stderr string
	err            error
	code           int // the exit code main would use
}

// String makes a failing test print the error's text (fmt prints an
// unexported error field of a struct as a pointer).
func (r cliResult) String() string {
	return fmt.Sprintf("exit code %d, err: %v\nstdout:\n%s\nstderr:\n%s", r.code, r.err, r.stdout, r.stderr)
}

// cli runs the orderflow root command in-process with ctx, stdin and args.
func cli(ctx context.Context, stdin io.Reader, args ...string) cliResult {
	root := newRootCmd()
	var out, errOut testutil.SyncBuffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	root.SetIn(stdin)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	r := cliResult{stdout: out.String(), stderr: errOut.String(), err: err}
	if err != nil {
		r.code = exitCode(err)
	}
	return r
}

// checkLeaks fails the test if it leaves goroutines behind: every client
// the commands made must be closed when they return. Call it before making
// clients, so its cleanup runs after theirs. With an in-process kfake
// cluster, the cluster is closed first (its connection goroutines end with
// it).
func checkLeaks(t *testing.T, c ...*kafkatest.Cluster) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		for _, c := range c {
			if c.Fake != nil {
				c.Fake.Close() // idempotent; kafkatest.Fake's cleanup closes it again
			}
		}
		goleak.VerifyNone(t, ignore)
	})
}

// clearEnv unsets the ORDERFLOW_* variables for the test, so the caller's
// environment cannot change its outcome.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, envPrefix) {
			t.Setenv(name, "") // restored after the test; empty counts as unset
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// printedConfig runs `run --print-config` and parses its YAML.
func printedConfig(t *testing.T, args ...string) (map[string]any, string) {
	t.Helper()
	r := cli(context.Background(), nil, append([]string{"run", "--print-config"}, args...)...)
	if r.err != nil {
		t.Fatalf("run --print-config: code %d: %v", r.code, r.err)
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("--print-config output is not YAML: %v\n%s", err, r.stdout)
	}
	return m, r.stdout
}

func TestConfigPrecedenceFlagEnvFileDefault(t *testing.T) {
	clearEnv(t)
	file := writeFile(t, "orderflow.yaml", `# every level sets some keys
brokers: [file-a:9092, file-b:9092]
commit-interval: 250ms     # also in env and flag
session-timeout: 7s        # also in env
max-batch-records: 500     # only here
tls: true
retention: 30d
state-dir: ~               # null: not set
`)
	t.Setenv("ORDERFLOW_COMMIT_INTERVAL", "300ms")
	t.Setenv("ORDERFLOW_SESSION_TIMEOUT", "8s")
	t.Setenv("ORDERFLOW_APP_ID", "env-app")
	t.Setenv("ORDERFLOW_SASL_PASSWORD", "pa55-from-env")

	m, out := printedConfig(t, "--config", file, "--commit-interval", "400ms", "--partitions", "3")
	for key, want := range map[string]any{
		"commit-interval":     "400ms",   // flag > env > file
		"session-timeout":     "8s",      // env > file
		"app-id":              "env-app", // env > default
		"max-batch-records":   "500",     // file > default
		"tls":                 "true",    // file
		"retention":           "30d",     // file, in days
		"partitions":          "3",       // flag
		"transaction-timeout": "10s",     // default
		"state-dir":           "",        // null in the file: the default
		"events-topic":        "orders.events",
	} {
		if got := m[key]; got != want {
			t.Errorf("%s = %v (%T), want %v", key, got, got, want)
		}
	}
	if got, ok := m["brokers"].([]any); !ok || len(got) != 2 || got[0] != "file-a:9092" || got[1] != "file-b:9092" {
		t.Errorf("brokers = %#v, want the file's list", m["brokers"])
	}
	for _, line := range []string{
		"commit-interval: 400ms # flag",
		"session-timeout: 8s # env ORDERFLOW_SESSION_TIMEOUT",
		"max-batch-records: \"500\" # file " + file,
		"transaction-timeout: 10s # default",
		"# sasl-password: (set, redacted) # env ORDERFLOW_SASL_PASSWORD",
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("--print-config lacks the line %q:\n%s", line, out)
		}
	}
	if strings.Contains(out, "pa55-from-env") {
		t.Errorf("--print-config printed the password:\n%s", out)
	}

	// The printed configuration is a config file that gives the same
	// configuration (without the environment, which it captured).
	clearEnv(t)
	printed := writeFile(t, "printed.yaml", out)
	m2, _ := printedConfig(t, "--config", printed)
	for k, v := range m {
		if k == "sasl-password" {
			continue
		}
		if got := m2[k]; !equalYAML(got, v) {
			t.Errorf("reloaded %s = %v, want %v", k, got, v)
		}
	}
}

func equalYAML(a, b any) bool {
	x, _ := yaml.Marshal(a)
	y, _ := yaml.Marshal(b)
	return bytes.Equal(x, y)
}

func TestConfigFileFromEnvironment(t *testing.T) {
	clearEnv(t)
	file := writeFile(t, "of.yaml", "guarantee: at_least_once\nbrokers: b1:9092,b2:9092\n")
	t.Setenv("ORDERFLOW_CONFIG", file)
	m, _ := printedConfig(t)
	if m["guarantee"] != "at_least_once" {
		t.Errorf("ORDERFLOW_CONFIG file not read: guarantee = %v", m["guarantee"])
	}
	if b, _ := m["brokers"].([]any); len(b) != 2 {
		t.Errorf("a comma-separated string for a list flag: brokers = %v", m["brokers"])
	}
	// --config beats ORDERFLOW_CONFIG.
	other := writeFile(t, "other.yaml", "guarantee: exactly_once\n")
	if m, _ := printedConfig(t, "--config", other); m["guarantee"] != "exactly_once" {
		t.Errorf("--config did not win over ORDERFLOW_CONFIG: guarantee = %v", m["guarantee"])
	}
}

func TestConfigFileErrorsExit2(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct {
		name, content string
		want          []string
	}{
		{"unknown key", "brokers: a:1\ncomit-interval: 1s\n", []string{"of.yaml:2", `unknown key "comit-interval"`, `did you mean "commit-interval"?`}},
		{"far-off key", "zzzzzzzzzzzzzz: 1\n", []string{`unknown key "zzzzzzzzzzzzzz"`, "flag names"}},
		{"config key", "config: other.yaml\n", []string{`unknown key "config"`}},
		{"bad value", "brokers: a:1\ncommit-interval: soon\n", []string{"of.yaml:2: commit-interval", `"soon"`, "invalid"}},
		{"list for a scalar", "app-id: [a, b]\n", []string{"of.yaml:1: app-id: is a list, but --app-id takes one value"}},
		{"mapping value", "app-id: {a: b}\n", []string{"app-id: must be a value or a list"}},
		{"twice", "app-id: a\napp-id: b\n", []string{`"app-id" is set twice`}},
		{"not a mapping", "- a\n- b\n", []string{"want a mapping of flag names to values"}},
		{"not YAML", "a: [\n", []string{"of.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, "of.yaml", tc.content)
			r := cli(context.Background(), nil, "run", "--config", file)
			if r.code != 2 {
				t.Fatalf("exit code %d, want 2 (err %v)", r.code, r.err)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("error %q lacks %q", r.err, w)
				}
			}
		})
	}
	r := cli(context.Background(), nil, "run", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if r.code != 2 || !errors.Is(r.err, os.ErrNotExist) {
		t.Errorf("missing config file: code %d err %v", r.code, r.err)
	}
	// An empty file (or only comments) is fine.
	if r := cli(context.Background(), nil, "run", "--print-config", "--config", writeFile(t, "empty.yaml", "# nothing\n")); r.err != nil {
		t.Errorf("empty config file: %v", r.err)
	}
}

func TestConfigEnvErrorsNameTheVariable(t *testing.T) {
	clearEnv(t)
	t.Setenv("ORDERFLOW_MAX_BATCH_RECORDS", "many")
	r := cli(context.Background(), nil, "run", "--print-config")
	if r.code != 2 || !strings.Contains(r.err.Error(), `environment ORDERFLOW_MAX_BATCH_RECORDS="many"`) || !strings.Contains(r.err.Error(), "--max-batch-records") {
		t.Errorf("code %d err %v", r.code, r.err)
	}
}

// TestApplyConfigGeneric checks applyConfig on a flag set of its own: every
// flag type, and that a secret value never shows in an error.
func TestApplyConfigGeneric(t *testing.T) {
	newFS := func() (*pflag.FlagSet, *struct {
		n    int
		d    time.Duration
		s    string
		list []string
		b    bool
		pw   string
		cfg  string
	}) {
		v := &struct {
			n    int
			d    time.Duration
			s    string
			list []string
			b    bool
			pw   string
			cfg  string
		}{}
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		fs.IntVar(&v.n, "num", 1, "")
		fs.DurationVar(&v.d, "wait-for", time.Second, "")
		fs.StringVar(&v.s, "name", "def", "")
		fs.StringSliceVar(&v.list, "items", []string{"x"}, "")
		fs.BoolVar(&v.b, "on", false, "")
		fs.StringVar(&v.pw, "secret", "", "")
		markSecret(fs, "secret")
		fs.StringVar(&v.cfg, configFlag, "", "")
		return fs, v
	}
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}

	file := writeFile(t, "c.yaml", "num: 7\nwait-for: 2m\nname: from-file\nitems: [p, q]\non: true\n")
	fs, v := newFS()
	if err := fs.Parse([]string{"--config", file, "--num", "9"}); err != nil {
		t.Fatal(err)
	}
	src, err := applyConfig(fs, env(map[string]string{"ORDERFLOW_WAIT_FOR": "3s", "ORDERFLOW_NAME": "", "ORDERFLOW_NUM": "8"}))
	if err != nil {
		t.Fatal(err)
	}
	if v.n != 9 || v.d != 3*time.Second || v.s != "from-file" || strings.Join(v.list, ",") != "p,q" || !v.b {
		t.Errorf("values %+v: want num 9 (flag), wait-for 3s (env), name from-file (empty env is unset), items p,q and on (file)", *v)
	}
	if src["num"] != fromFlag || src["wait-for"] != "env ORDERFLOW_WAIT_FOR" || src["name"] != source("file "+file) || src["secret"] != fromDefault {
		t.Errorf("sources %v", src)
	}

	// "maybe" is not a bool: the error names file, line and key.
	fs, _ = newFS()
	bad := writeFile(t, "bad.yaml", "on: maybe\nsecret: [a]\n")
	_ = fs.Parse([]string{"--config", bad})
	_, err = applyConfig(fs, env(map[string]string{"ORDERFLOW_NUM": "x1"}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"bad.yaml:1: on", `environment ORDERFLOW_NUM="x1"`, "bad.yaml:2: secret: is a list"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}

	// A secret's bad value is not echoed.
	fs = pflag.NewFlagSet("y", pflag.ContinueOnError)
	var n int
	fs.IntVar(&n, "pin", 0, "")
	markSecret(fs, "pin")
	_, err = applyConfig(fs, env(map[string]string{"ORDERFLOW_PIN": "12x34-secret"}))
	if err == nil || strings.Contains(err.Error(), "12x34-secret") || !strings.Contains(err.Error(), "(redacted)") {
		t.Errorf("secret error %v", err)
	}
}

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{
		"commit-interval":          "ORDERFLOW_COMMIT_INTERVAL",
		"brokers":                  "ORDERFLOW_BROKERS",
		"tls-insecure-skip-verify": "ORDERFLOW_TLS_INSECURE_SKIP_VERIFY",
	} {
		if got := envName(flag); got != want {
			t.Errorf("envName(%q) = %q, want %q", flag, got, want)
		}
	}
}

func TestParseDays(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "36h": 36 * time.Hour, "0": 0, "90m": 90 * time.Minute, "0d": 0,
	} {
		if got, err := parseDays(in); err != nil || got != want {
			t.Errorf("parseDays(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"d", "xd", "-1d", "7d-1h", "1.5d", "7dd", "seven"} {
		if got, err := parseDays(in); err == nil {
			t.Errorf("parseDays(%q) = %v, want an error", in, got)
		}
	}
}

func TestRunConfigErrorsExit2(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no brokers", []string{"run"}, "give --brokers"},
		{"guarantee", []string{"run", "--brokers", "x:1", "--guarantee", "twice", "--state-dir", dir}, "use exactly_once or at_least_once"},
		{"sasl mechanism", []string{"run", "--brokers", "x:1", "--sasl-mechanism", "KERBEROS"}, "--sasl-mechanism must be"},
		{"sasl password", []string{"run", "--brokers", "x:1", "--sasl-mechanism", "PLAIN", "--sasl-user", "u"}, "ORDERFLOW_SASL_PASSWORD"},
		{"tls ca", []string{"run", "--brokers", "x:1", "--tls-ca", filepath.Join(dir, "nope.pem")}, "--tls-ca"},
		{"machine", []string{"run", "--brokers", "x:1", "--machine", "testdata/machine_broken.yaml"}, "--machine"},
		{"log format", []string{"run", "--brokers", "x:1", "--log-format", "xml"}, "--log-format"},
		{"log level", []string{"run", "--brokers", "x:1", "--log-level", "loud"}, "--log-level"},
		{"shutdown timeout", []string{"run", "--brokers", "x:1", "--shutdown-timeout", "0s"}, "--shutdown-timeout"},
		{"same topics", []string{"run", "--brokers", "x:1", "--status-topic", "orders.events", "--state-dir", dir}, "both named"},
		{"produce no brokers", []string{"produce"}, "give --brokers"},
		{"tail no topic", []string{"tail", "--brokers", "x:1"}, "give --topic"},
		{"tail kind", []string{"tail", "--brokers", "x:1", "--topic", "t", "--kind", "xml"}, "--kind"},
		{"produce buffer", []string{"produce", "--brokers", "x:1", "--buffer", "0"}, "--buffer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(context.Background(), nil, tc.args...)
			if r.code != 2 || r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
				t.Errorf("code %d, err %v; want code 2 and %q", r.code, r.err, tc.want)
			}
		})
	}
}

func TestNewLoggerFormats(t *testing.T) {
	var b bytes.Buffer
	l, err := newLogger(&b, "auto", "warn")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	if strings.Contains(b.String(), "hidden") || !strings.HasPrefix(b.String(), "{") {
		t.Errorf("auto on a non-terminal must be JSON at level warn: %q", b.String())
	}
	b.Reset()
	l, _ = newLogger(&b, "text", "debug")
	l.Debug("dbg")
	if !strings.Contains(b.String(), "level=DEBUG msg=dbg") {
		t.Errorf("text debug: %q", b.String())
	}
}
