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
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/orderflow/orderflow/bench/internal/machine"
	"github.com/orderflow/orderflow/processor"
)

// rss runs `orderflow run` as a child process on the big app: it restores
// the StoreOrders orders of the big changelog into an empty state dir, then
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
	defer h.deleteAtEnd(changelog, app+".status", app+".rejections", app+".dlq")
	bin, err := h.orderflowBinary(ctx)
	if err != nil {
		return err
	}
	stateDir := filepath.Join(h.work, "rss")
	defer os.RemoveAll(stateDir)
	logPath := filepath.Join(h.work, "rss-child.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	cmd := exec.Command(bin, "run",
		"--brokers", strings.Join(h.o.Brokers, ","),
		"--app-id", app,
		"--instance-id", "rss",
		"--state-dir", stateDir,
		"--events-topic", h.input.topic,
		"--status-topic", app+".status",
		"--rejections-topic", app+".rejections",
		"--dlq-topic", app+".dlq",
		"--partitions", strconv.Itoa(int(h.o.Partitions)),
		"--commit-interval", h.o.CommitInterval.String(),
		"--max-batch-records", strconv.Itoa(h.o.MaxBatchRecords),
		"--threads", strconv.Itoa(h.o.Threads),
		"--log-format", "json",
		"--log-level", "info",
	)
	cmd.Stdout = logFile
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	h.settle()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	pid := cmd.Process.Pid
	h.logf("rss: started %s run (pid %d), log %s", bin, pid, logPath)
	exited := make(chan error, 1)
	var restored atomic.Int32
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			fmt.Fprintf(logFile, "%s\n", line)
			var l struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal(line, &l) == nil && l.Msg == "partition restored" {
				restored.Add(1)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		exited <- cmd.Wait()
	}()
	stop := func() (err error) {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-exited:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			err = fmt.Errorf("no clean shutdown within a minute; killed: %v", <-exited)
		}
		return err
	}

	var (
		restoreTook    time.Duration
		hwmAfterRestor int64
	)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = stop()
			return ctx.Err()
		case err := <-exited:
			return fmt.Errorf("orderflow run exited early (%v); see %s", err, logPath)
		case <-tick.C:
		}
		if restoreTook == 0 && restored.Load() >= h.o.Partitions {
			restoreTook = time.Since(start)
			hwmAfterRestor, _ = machine.PeakRSS(pid)
			h.logf("rss: the child restored its %d partitions in %v; VmHWM %d MiB", h.o.Partitions, restoreTook.Round(time.Millisecond), hwmAfterRestor>>20)
		}
		if restoreTook == 0 {
			continue
		}
		done, err := h.groupDone(ctx, app)
		if err != nil {
			h.logf("rss: reading the group's offsets: %v", err)
		}
		if done {
			break
		}
	}
	took := time.Since(start)
	hwm, err := machine.PeakRSS(pid)
	if err != nil {
		_ = stop()
		return err
	}
	if err := stop(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return err
		}
		h.rep.Checks = append(h.rep.Checks, fmt.Sprintf("rss: orderflow run exited with %v", err))
	}
	h.logf("rss: peak %d MiB (after restore %d MiB); restored in %v, input done after %v", hwm>>20, hwmAfterRestor>>20,
		restoreTook.Round(time.Millisecond), took.Round(time.Millisecond))
	h.rep.setRSS(hwm, hwmAfterRestor, restoreTook, int64(h.o.StoreOrders)+int64(h.enc.orders))
	return nil
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
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/orderflow/orderflow/cmd/orderflow")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/orderflow: %w\n%s", err, out)
	}
	return bin, nil
}
