package processor_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
)

// The crash and rebalance tests run processors as child processes (so they
// can be SIGKILLed): the test binary re-executes itself with childEnv set to
// a JSON childConfig, and runChild runs one processor until SIGTERM.
const childEnv = "ORDERFLOW_TEST_CHILD"

type childConfig struct {
	Brokers    []string
	AppID      string
	Instance   string
	StateDir   string
	Topics     processor.Topics
	Guarantee  processor.Guarantee
	Partitions int32
	Threads    int
	Machine    string // a machine file's YAML; "" for the default machine
	Standby    int    // Config.StandbyReplicas
	// RecoveryLag is Config.AcceptableRecoveryLag (0: the default).
	RecoveryLag int64
}

// childReady is the line a child prints once SIGTERM stops it cleanly: a
// SIGTERM sent before that (a child still starting on a slow machine)
// would kill it like SIGKILL.
const childReady = "child: handling SIGTERM"

func runChild(js string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fmt.Fprintln(os.Stderr, childReady)
	var cc childConfig
	if err := json.Unmarshal([]byte(js), &cc); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	cfg := processor.DefaultConfig()
	cfg.Brokers = cc.Brokers
	cfg.AppID = cc.AppID
	cfg.InstanceID = cc.Instance
	cfg.StateDir = cc.StateDir
	cfg.Topics = cc.Topics
	cfg.Guarantee = cc.Guarantee
	cfg.Partitions = cc.Partitions
	cfg.Threads = cc.Threads
	cfg.StandbyReplicas = cc.Standby
	cfg.AcceptableRecoveryLag = cc.RecoveryLag
	if cc.Machine != "" {
		m, err := topology.Parse([]byte(cc.Machine))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		cfg.Machine = m
	}
	cfg.SessionTimeout = 6 * time.Second
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	p, err := processor.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := p.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		return 1
	}
	return 0
}

// child is a processor running in a child process.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (e *env) startChild(t *testing.T, name, stateDir string, g processor.Guarantee) *child {
	t.Helper()
	js, err := json.Marshal(childConfig{
		Brokers: e.c.Brokers, AppID: e.cfg.AppID, Instance: name, StateDir: stateDir,
		Topics: e.cfg.Topics, Guarantee: g, Partitions: e.cfg.Partitions, Threads: e.cfg.Threads,
		Machine: e.machine, Standby: e.standby, RecoveryLag: e.recoveryLag,
	})
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(c.done) }()
	t.Cleanup(func() { c.kill() })
	return c
}

// dump makes a running child print its goroutines to its log (SIGQUIT).
func (c *child) dump() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}

func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// term stops the child cleanly and fails the test if it does not exit 0.
func (c *child) term(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(c.log); strings.Contains(string(b), childReady) {
			break
		}
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(90 * time.Second):
		c.kill()
		t.Fatalf("%s did not stop within 90s of SIGTERM", c.name)
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("%s exited %d after SIGTERM; log:\n%s", c.name, code, tail(c.log, 20))
	}
}

// logLines returns the child's JSON log lines.
func (c *child) logLines(t *testing.T) []map[string]any {
	t.Helper()
	f, err := os.Open(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
