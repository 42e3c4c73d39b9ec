package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/orderflow/orderflow/bench/internal/machine"
	"github.com/orderflow/orderflow/processor"
)

// rss runs `orderflow run` as a child process on the big app: it restores
// the store's orders of the big changelog into an empty state dir, then
// processes the preloaded input (creating the workload's orders too). The
// peak RSS is the child's VmHWM when it is done.
func (h *harness) rss(ctx context.Context) error {
	app := h.bigApp()
	changelog := processor.ChangelogTopic(app)
	if td, err := h.adm.ListTopics(ctx, changelog); err != nil || td[changelog].Err != nil {
		if _, err := h.writeStore(ctx); err != nil {
			return err
		}
	}
	h.deleteAtEnd(changelog, app+".status", app+".rejections", app+".dlq")
	bin, err := h.orderflowBinary(ctx)
	if err != nil {
		return err
	}
	h.settle()
	start := time.Now()
	c, err := h.startChild(bin, app)
	if err != nil {
		return err
	}
	defer c.close()
	restoreTook, hwmAfterRestore, err := h.waitChild(ctx, c, app, start)
	if err != nil {
		_ = c.stop()
		return err
	}
	took := time.Since(start)
	hwm, err := machine.PeakRSS(c.cmd.Process.Pid)
	if err != nil {
		_ = c.stop()
		return err
	}
	if err := c.stop(); err != nil {
		if !errors.As(err, new(*exec.ExitError)) {
			return err
		}
		h.rep.Checks = append(h.rep.Checks, fmt.Sprintf("rss: orderflow run exited with %v", err))
	}
	h.logf("rss: peak %d MiB (after restore %d MiB); restored in %v, input done after %v", hwm>>20, hwmAfterRestore>>20,
		restoreTook.Round(time.Millisecond), took.Round(time.Millisecond))
	h.rep.setRSS(hwm, hwmAfterRestore, restoreTook, int64(h.o.storeOrders)+int64(h.enc.orders))
	return nil
}

// child is the `orderflow run` child process.
type child struct {
	cmd      *exec.Cmd
	log      *os.File
	stateDir string
	exited   chan struct{} // closed when it has exited, with waitErr
	waitErr  error
	restored atomic.Int32 // partitions restored, from its log
	mu       sync.Mutex
	events   []childLogLine // its partition events, from its log
}

// partitionEvents are the log lines the child keeps.
var partitionEvents = []string{"partitions assigned", "partitions revoked", "partition restored"}

// logEvents returns the partition events the child has logged so far.
func (c *child) logEvents() []childLogLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// childLogLine is what the harness reads of a line of the child's JSON
// log: the partition events of package processor's rebalance.go.
type childLogLine struct {
	Time       time.Time `json:"time"`
	Msg        string    `json:"msg"`
	Partition  int32     `json:"partition"`  // partition restored
	Partitions []int32   `json:"partitions"` // partitions assigned, revoked
	Records    int64     `json:"records"`    // partition restored
	Took       any       `json:"took"`       // partition restored: slog's Duration, in ns
}

// took is the line's took field ("partition restored"), or 0.
func (l childLogLine) took() time.Duration {
	switch v := l.Took.(type) {
	case float64:
		return time.Duration(v)
	case string:
		d, _ := time.ParseDuration(v)
		return d
	}
	return 0
}

// startChild starts `orderflow run` on app, reading the preloaded input,
// with its log in the work dir.
func (h *harness) startChild(bin, app string) (*child, error) {
	return h.startInstance(bin, app, "rss", h.o.Threads, "")
}

// startInstance starts `orderflow run` as instance of app with threads
// threads, its state dir and log named after the instance in the work dir;
// a cpu list (taskset -c syntax) pins it to those CPUs. extra flags follow
// the harness's (a flag given again takes the later value).
func (h *harness) startInstance(bin, app, instance string, threads int, cpus string, extra ...string) (*child, error) {
	c := &child{stateDir: filepath.Join(h.work, instance), exited: make(chan struct{})}
	logPath := filepath.Join(h.work, instance+"-child.log")
	var err error
	if c.log, err = os.Create(logPath); err != nil {
		return nil, err
	}
	args := []string{bin, "run",
		"--brokers", strings.Join(h.o.Brokers, ","),
		"--app-id", app,
		"--instance-id", instance,
		"--state-dir", c.stateDir,
		"--events-topic", h.input.topic,
		"--status-topic", app + ".status",
		"--rejections-topic", app + ".rejections",
		"--dlq-topic", app + ".dlq",
		"--partitions", strconv.Itoa(int(h.o.partitions)),
		"--commit-interval", h.o.commitInterval.String(),
		"--max-batch-records", strconv.Itoa(h.o.maxBatchRecords),
		"--threads", strconv.Itoa(threads),
		"--log-format", "json",
		"--log-level", "info",
		"--http-addr", "127.0.0.1:0", // instances side by side: no fixed port
	}
	args = append(args, extra...)
	if cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	c.cmd = exec.Command(args[0], args[1:]...)
	c.cmd.Stdout = c.log
	stderr, err := c.cmd.StderrPipe()
	if err == nil {
		err = c.cmd.Start()
	}
	if err != nil {
		c.close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	h.logf("%s: started %s run (pid %d; cpus %q), log %s", instance, bin, c.cmd.Process.Pid, cpus, logPath)
	go c.readLog(stderr)
	return c, nil
}

// readLog copies the child's log into its file, counting the partitions
// it restored, until it exits.
func (c *child) readLog(stderr io.Reader) {
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		fmt.Fprintf(c.log, "%s\n", line)
		var l childLogLine
		if json.Unmarshal(line, &l) != nil {
			continue
		}
		if l.Msg == "partition restored" {
			c.restored.Add(1)
		}
		if slices.Contains(partitionEvents, l.Msg) {
			c.mu.Lock()
			c.events = append(c.events, l)
			c.mu.Unlock()
		}
	}
	_, _ = io.Copy(io.Discard, stderr)
	c.waitErr = c.cmd.Wait()
	close(c.exited)
}

// stop ends the child as an orchestrator would (SIGTERM), killing it if it
// takes over a minute.
func (c *child) stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return c.waitErr
	case <-time.After(time.Minute):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("no clean shutdown within a minute; killed: %v", c.waitErr)
	}
}

func (c *child) close() {
	c.log.Close()
	os.RemoveAll(c.stateDir)
}

// waitChild waits until the child has restored every partition, and then
// until its group has committed the end of the input; it returns the time
// the restore took from start and the peak RSS then.
func (h *harness) waitChild(ctx context.Context, c *child, app string, start time.Time) (restoreTook time.Duration, hwm int64, err error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-c.exited:
			return 0, 0, fmt.Errorf("orderflow run exited early (%v); see %s", c.waitErr, c.log.Name())
		case <-tick.C:
		}
		if restoreTook == 0 && c.restored.Load() >= h.o.partitions {
			restoreTook = time.Since(start)
			hwm, _ = machine.PeakRSS(c.cmd.Process.Pid)
			h.logf("rss: the child restored its %d partitions in %v; VmHWM %d MiB", h.o.partitions, restoreTook.Round(time.Millisecond), hwm>>20)
		}
		if restoreTook == 0 {
			continue
		}
		done, err := h.groupDone(ctx, app)
		if err != nil {
			h.logf("rss: reading the group's offsets: %v", err)
		}
		if done {
			return restoreTook, hwm, nil
		}
	}
}

// groupDone reports whether group has committed the end of every input
// partition.
func (h *harness) groupDone(ctx context.Context, group string) (bool, error) {
	offs, err := h.adm.FetchOffsets(ctx, group)
	if err != nil {
		return false, err
	}
	var sum int64
	for _, o := range offs[h.input.topic] {
		if o.Err == nil {
			sum += o.At
		}
	}
	return sum >= h.input.records, nil
}

// orderflowBinary returns Options.OrderflowBin, or builds ./cmd/orderflow.
func (h *harness) orderflowBinary(ctx context.Context) (string, error) {
	if h.o.OrderflowBin != "" {
		return filepath.Abs(h.o.OrderflowBin)
	}
	bin := filepath.Join(h.work, "orderflow")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/orderflow/orderflow/cmd/orderflow").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/orderflow: %w\n%s", err, out)
	}
	return bin, nil
}
