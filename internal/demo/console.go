package demo

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// console is the demo's output. Notices (rebalances, restores, chaos) are
// lines that scroll; on a terminal a status block is redrawn in place below
// them, elsewhere the status is a plain line each time it is shown.
//
// Restores of one instance arrive one partition at a time; the console
// collects them and shows one line per instance and rebalance.
type console struct {
	w        io.Writer
	terminal bool
	start    time.Time

	mu struct {
		sync.Mutex
		block    []string // status block shown now (terminal)
		restores map[string]*restoreGroup
		done     bool
	}
}

type restoreGroup struct {
	parts   []int32
	records int64
	took    time.Duration
	first   time.Time
}

func newConsole(w io.Writer, terminal bool) *console {
	c := &console{w: w, terminal: terminal, start: time.Now()}
	c.mu.restores = map[string]*restoreGroup{}
	return c
}

// printf writes text above the status block.
func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
	fmt.Fprintf(c.w, format, args...)
	c.drawLocked()
}

// notef writes a timestamped notice line.
func (c *console) notef(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushRestoresLocked(0)
	c.noteLocked(fmt.Sprintf(format, args...))
}

func (c *console) noteLocked(s string) {
	c.clearLocked()
	fmt.Fprintf(c.w, "%6.1fs  %s\n", time.Since(c.start).Seconds(), s)
	c.drawLocked()
}

// restored records that instance who restored partition part.
func (c *console) restored(who string, part int32, records int64, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.mu.restores[who]
	if g == nil {
		g = &restoreGroup{first: time.Now()}
		c.mu.restores[who] = g
	}
	g.parts = append(g.parts, part)
	g.records += records
	g.took = max(g.took, took)
}

// flushRestoresLocked shows the restore groups older than age.
func (c *console) flushRestoresLocked(age time.Duration) {
	var who []string
	for w, g := range c.mu.restores {
		if time.Since(g.first) >= age {
			who = append(who, w)
		}
	}
	slices.Sort(who)
	for _, w := range who {
		g := c.mu.restores[w]
		delete(c.mu.restores, w)
		slices.Sort(g.parts)
		noun := "partitions"
		if len(g.parts) == 1 {
			noun = "partition"
		}
		c.noteLocked(fmt.Sprintf("%s: restored %s %s from the changelog: %d records (longest %v)",
			w, noun, partList(g.parts), g.records, g.took.Round(time.Millisecond)))
	}
}

// status shows the status: redrawn in place on a terminal, a line
// otherwise. Restore groups older than 300 ms are shown first.
func (c *console) status(block []string, line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.done {
		return
	}
	c.flushRestoresLocked(300 * time.Millisecond)
	if !c.terminal {
		fmt.Fprintf(c.w, "%6.1fs  %s\n", time.Since(c.start).Seconds(), line)
		return
	}
	c.clearLocked()
	c.mu.block = block
	c.drawLocked()
}

// finish shows what is pending and erases the status block (the summary
// that follows says it all); later output is plain.
func (c *console) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushRestoresLocked(0)
	c.clearLocked()
	c.mu.block = nil
	c.mu.done = true
}

// clearLocked erases the status block (the cursor is just below it).
func (c *console) clearLocked() {
	if n := len(c.mu.block); c.terminal && n > 0 {
		fmt.Fprintf(c.w, "\x1b[%dA\x1b[J", n)
	}
}

func (c *console) drawLocked() {
	if !c.terminal || len(c.mu.block) == 0 {
		return
	}
	fmt.Fprint(c.w, strings.Join(c.mu.block, "\n")+"\n")
}
