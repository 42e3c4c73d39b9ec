package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/testutil"
)

// The tests that need the process itself (its exit code as a shell sees it,
// its signals, two instances at once) run the orderflow binary, built once
// for the package.

var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	listen = hermeticListen
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// hermeticListen is listen for the tests: it refuses the default
// --http-addr, whose fixed port makes a test fail whenever another process
// on the machine holds it. A test that starts `run` passes --http-addr
// 127.0.0.1:0 (any free port) or --http-addr "" (no API).
func hermeticListen(network, addr string) (net.Listener, error) {
	if addr == defaultHTTPAddr {
		return nil, fmt.Errorf("a test listens on the fixed port of --http-addr %s: pass --http-addr 127.0.0.1:0 or --http-addr \"\"", addr)
	}
	return net.Listen(network, addr)
}

// orderflowBinary builds the orderflow command (once) and returns its path.
func orderflowBinary(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		if binary.dir, binary.err = os.MkdirTemp("", "orderflow-bin-"); binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "orderflow")
		out, err := exec.Command("go", "build", "-o", binary.path, ".").CombinedOutput()
		if err != nil {
			binary.err = &buildError{err, out}
		}
	})
	if binary.err != nil {
		t.Fatalf("building orderflow: %v", binary.err)
	}
	return binary.path
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.out) }

// process is a running orderflow binary.
type process struct {
	cmd    *exec.Cmd
	stderr testutil.SyncBuffer
	done   chan struct{} // closed when it exited; code is then set
	code   int
}

// startBinary starts the orderflow binary with args. The test's cleanup
// kills it if it still runs.
func startBinary(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(orderflowBinary(t), args...), done: make(chan struct{})}
	// The binary does not use hermeticListen: a `run` given no --http-addr
	// (a flag wins over the environment) gets any free port.
	if os.Getenv(envName("http-addr")) == "" {
		p.cmd.Env = append(os.Environ(), envName("http-addr")+"=127.0.0.1:0")
	}
	p.cmd.Stdout = &testutil.SyncBuffer{}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits up to d for the process to exit and reports whether it did.
func (p *process) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop ends the process with SIGTERM (a clean shutdown) and waits for it.
func (p *process) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if !p.wait(time.Minute) {
		t.Errorf("orderflow did not stop within a minute of SIGTERM:\n%s", p.stderr.String())
	}
}

// runBinary runs the orderflow binary to its end and returns its exit code
// and stderr.
func runBinary(t *testing.T, args ...string) (int, string) {
	t.Helper()
	p := startBinary(t, args...)
	if !p.wait(2 * time.Minute) {
		t.Fatalf("orderflow %s: still running after 2 minutes:\n%s", strings.Join(args, " "), p.stderr.String())
	}
	return p.code, p.stderr.String()
}

// waitStderr waits up to d for the process's stderr to contain s, and
// reports whether it did.
func (p *process) waitStderr(s string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !strings.Contains(p.stderr.String(), s) {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-p.done:
			return strings.Contains(p.stderr.String(), s)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}
