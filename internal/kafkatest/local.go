package kafkatest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// LocalCluster is a real Kafka cluster of one or three KRaft nodes that a
// test starts for itself with deploy/kafka/start.sh, in its own run dir and
// on its own ports, so it can stop, kill and restart nodes without disturbing
// other tests. It is stopped (no process left) when the test ends.
type LocalCluster struct {
	Cluster
	// SecureBrokers are the SASL_SSL listeners of a cluster started with
	// StartLocalSecure (nil otherwise). Brokers stay plaintext.
	SecureBrokers []string
	runDir        string
	basePort      int
	nodes         int
	root          string
	sec           *Security
}

// Security is the SASL_SSL listener of StartLocalSecure
// (deploy/kafka/start.sh with KAFKA_SECURITY=sasl_ssl).
type Security struct {
	// CertFile and KeyFile are the broker's PEM certificate (valid for
	// 127.0.0.1) and its unencrypted PKCS#8 key (NewTestCA makes both).
	CertFile, KeyFile string
	// User and Password are the one SASL user, for PLAIN, SCRAM-SHA-256
	// and SCRAM-SHA-512.
	User, Password string
}

// StartLocalSecure is StartLocal with, on every node, a SASL_SSL client
// listener (LocalCluster.SecureBrokers) besides the plaintext ones.
func StartLocalSecure(t testing.TB, n int, sec Security) *LocalCluster {
	t.Helper()
	return startLocal(t, n, &sec)
}

// StartLocal starts a fresh local cluster of n nodes (1 or 3). It needs java
// and the jars (deploy/kafka/fetch.sh); without java the test fails in CI and
// skips elsewhere. Skipped in -short mode.
func StartLocal(t testing.TB, n int) *LocalCluster {
	t.Helper()
	return startLocal(t, n, nil)
}

func startLocal(t testing.TB, n int, sec *Security) *LocalCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts its own Kafka cluster; skipped in -short mode")
	}
	if _, err := exec.LookPath("java"); err != nil {
		requireReal(t, "java is not installed")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	for attempt := 1; attempt <= 3; attempt++ {
		base := 30000 + 2*rand.IntN(10000)
		if !portsFree(base, 2*n) || (sec != nil && !portsFree(base+securePortOffset, n)) {
			continue
		}
		// A run dir of its own: a node of a failed attempt that outlives
		// stop.sh must not make the next attempt's start.sh refuse.
		runDir := filepath.Join(t.TempDir(), "kafka")
		c := &LocalCluster{runDir: runDir, basePort: base, nodes: n, root: root, sec: sec}
		start := time.Now()
		out, err := c.script("start.sh", strconv.Itoa(n))
		if err != nil {
			errs = append(errs, fmt.Errorf("attempt %d: %w", attempt, err))
			c.stopAll()
			continue
		}
		t.Logf("local Kafka (%d nodes) at %s ready in %v", n, out, time.Since(start).Round(time.Millisecond))
		c.Brokers = strings.Split(out, ",")
		c.Real = true
		if sec != nil {
			for i := 0; i < n; i++ {
				c.SecureBrokers = append(c.SecureBrokers, "127.0.0.1:"+strconv.Itoa(base+securePortOffset+i))
			}
		}
		t.Cleanup(c.stopAll)
		return c
	}
	t.Fatalf("starting a local Kafka cluster: %v", errors.Join(errs...))
	return nil
}

func (c *LocalCluster) script(name string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(c.root, "deploy", "kafka", name), args...)
	cmd.Env = append(os.Environ(),
		"KAFKA_RUN_DIR="+c.runDir,
		"KAFKA_BASE_PORT="+strconv.Itoa(c.basePort),
	)
	if c.sec != nil {
		cmd.Env = append(cmd.Env,
			"KAFKA_SECURITY=sasl_ssl",
			"KAFKA_SECURE_BASE_PORT="+strconv.Itoa(c.basePort+securePortOffset),
			"KAFKA_TLS_CERT="+c.sec.CertFile,
			"KAFKA_TLS_KEY="+c.sec.KeyFile,
			"KAFKA_SASL_USER="+c.sec.User,
			"KAFKA_SASL_PASSWORD="+c.sec.Password,
		)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", name, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

func (c *LocalCluster) stopAll() {
	if _, err := c.script("stop.sh"); err != nil {
		fmt.Fprintln(os.Stderr, "kafkatest:", err)
	}
}

// Addr is the client address of node i (1-based).
func (c *LocalCluster) Addr(i int) string {
	return "127.0.0.1:" + strconv.Itoa(c.basePort+2*(i-1))
}

func (c *LocalCluster) pid(i int) (int, error) {
	b, err := os.ReadFile(filepath.Join(c.runDir, fmt.Sprintf("node-%d", i), "pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// Kill SIGKILLs node i (a crash) and waits until the process is gone.
func (c *LocalCluster) Kill(t testing.TB, i int) { t.Helper(); c.signal(t, i, syscall.SIGKILL) }

// Stop SIGTERMs node i (a controlled shutdown) and waits until it has exited.
func (c *LocalCluster) Stop(t testing.TB, i int) { t.Helper(); c.signal(t, i, syscall.SIGTERM) }

func (c *LocalCluster) signal(t testing.TB, i int, sig syscall.Signal) {
	t.Helper()
	pid, err := c.pid(i)
	if err != nil {
		t.Fatalf("node %d: %v", i, err)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("signal node %d (pid %d): %v", i, pid, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("node %d (pid %d) still running 60s after %v", i, pid, sig)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Start starts node i again on its existing data (after Stop or Kill) and
// waits until it accepts connections.
func (c *LocalCluster) Start(t testing.TB, i int) {
	t.Helper()
	dir := filepath.Join(c.runDir, fmt.Sprintf("node-%d", i))
	cmd := exec.Command("bash", filepath.Join(dir, "run.sh"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %d: %v", i, err)
	}
	go func() { _ = cmd.Wait() }() // reap it when it exits
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(120 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", c.Addr(i), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d not accepting connections at %s after 120s", i, c.Addr(i))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// securePortOffset puts the SASL_SSL listeners above the plaintext ports:
// node i on base+securePortOffset+(i-1) (start.sh's default is the same).
const securePortOffset = 1000

func portsFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// repoRoot finds the module root (the directory holding go.mod) above the
// working directory of the test.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
