package demo

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// noticeHandler is the log handler of the demo's processor instances. The
// lines a newcomer should see (partitions assigned, revoked, restored;
// warnings and errors) become console notices; every record also goes to
// next (the demo's diagnostics logger, discarded by default).
//
// It needs no hook in the processor: the processor already says all of this
// in its logs.
type noticeHandler struct {
	out   *console
	next  slog.Handler
	attrs []slog.Attr
}

func (h *noticeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *noticeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &noticeHandler{out: h.out, next: h.next.WithAttrs(as), attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

func (h *noticeHandler) WithGroup(name string) slog.Handler {
	return &noticeHandler{out: h.out, next: h.next.WithGroup(name), attrs: h.attrs}
}

func (h *noticeHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.next.Enabled(ctx, r.Level) {
		_ = h.next.Handle(ctx, r.Clone())
	}
	a := map[string]slog.Value{}
	for _, at := range h.attrs {
		a[at.Key] = at.Value.Resolve()
	}
	r.Attrs(func(at slog.Attr) bool {
		a[at.Key] = at.Value.Resolve()
		return true
	})
	who := a["instance"].String()
	if r.Message == "partition restored" {
		var took time.Duration
		if d, ok := a["took"]; ok && d.Kind() == slog.KindDuration {
			took = d.Duration()
		}
		h.out.restored(who, int32(intAttr(a["partition"])), intAttr(a["records"]), took)
		return nil
	}
	if msg := notice(r, a); msg != "" {
		h.out.notef("%s: %s", who, msg)
	}
	return nil
}

// notice turns a processor log record into a line for the console, or ""
// for records the demo does not show.
func notice(r slog.Record, a map[string]slog.Value) string {
	switch r.Message {
	case "partitions assigned":
		return "assigned partitions " + partsAttr(a["partitions"])
	case "partitions revoked":
		return "gave up partitions " + partsAttr(a["partitions"])
	case "transaction aborted; the batch will be processed again":
		return fmt.Sprintf("transaction aborted: its %s records are discarded and processed again", a["records"])
	}
	if r.Level < slog.LevelWarn {
		return ""
	}
	var b strings.Builder
	b.WriteString(strings.ToLower(r.Level.String()))
	b.WriteString(": ")
	b.WriteString(r.Message)
	if e, ok := a["err"]; ok {
		b.WriteString(": ")
		b.WriteString(e.String())
	}
	return b.String()
}

func intAttr(v slog.Value) int64 {
	switch v.Kind() {
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return int64(v.Uint64())
	}
	return 0
}

func partsAttr(v slog.Value) string {
	if v.Kind() == slog.KindAny {
		if ps, ok := v.Any().([]int32); ok {
			ps = slices.Clone(ps)
			slices.Sort(ps)
			return partList(ps)
		}
	}
	return v.String()
}
