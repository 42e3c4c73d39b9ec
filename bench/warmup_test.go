package bench

import (
	"strings"
	"testing"
)

func TestWarmupSettled(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, c := range []struct {
		jit, free *float64
		settled   bool
	}{
		{f(0.05), f(0.01), true},
		{f(0.05), f(0.30), false}, // the page cache has not filled the memory yet
		{f(0.20), f(0.01), false}, // the JIT has not settled
		{f(0.05), nil, true},      // memory unknown: the JIT decides
		{nil, f(0.01), false},     // JIT unknown: every pass
	} {
		p := WarmupPass{JITShare: c.jit, FreeShare: c.free}
		if got := p.settled(); got != c.settled {
			t.Errorf("JIT %s, free %s: settled %v, want %v", p.share(), p.free(), got, c.settled)
		}
	}
	md := describeWarmup([]WarmupPass{{Seconds: 10, JITShare: f(0.4), FreeShare: f(0.5)}, {Seconds: 11, JITShare: f(0.05), FreeShare: f(0.01)}})
	if !strings.Contains(md, "JIT share by pass: 40%, 5%; memory free after each: 50%, 1%.") {
		t.Errorf("report line: %s", md)
	}
}
