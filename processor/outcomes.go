package processor

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Every input record gets exactly one outcome, and an outcome that does
// not fit its topic is replaced by a smaller one, never dropped and never
// retried without end: a transition whose state or status change is too
// large becomes a rejection (state_too_large, status_too_large); a
// rejection too large for the rejections topic becomes a dead letter; and a
// dead letter too large for the dead-letter topic loses, in turn, the
// input's value, its headers and its key, which stay readable in the input
// topic at the offset the dead letter's headers give.

// HeaderOmitted on a dead letter lists what of the input record it leaves
// out to fit the dead-letter topic ("value", "headers", "key"), with their
// sizes.
const HeaderOmitted = "orderflow.omitted"

// maxErrorHeader bounds the error text of a dead letter that had to shrink.
const maxErrorHeader = 512

// detail explains that r does not fit its topic.
func (l recordLimits) detail(what string, r *kgo.Record) string {
	return fmt.Sprintf("%s takes %d bytes on topic %s, whose max.message.bytes is %d", what, framedSize(r), r.Topic, l.of(r.Topic))
}

// reject produces the rejection of an event (out is refused); a rejection
// that does not fit its topic dead-letters the input record instead.
func (p *Processor) reject(b *batch, r *kgo.Record, ev *topology.Event, out *topology.Outcome, now time.Time) {
	rj := avro.RejectionFromOutcome(ev, out, now)
	val, err := p.codec.EncodeRejection(b.mem.space(), &rj)
	if err != nil && !errors.Is(err, avro.ErrOversize) {
		p.log.Error("encoding a rejection", "err", err)
		b.abortFor("encoding a rejection failed: " + err.Error())
		return
	}
	var rec *kgo.Record
	if err == nil {
		rec = b.mem.record(kgo.Record{Topic: p.cfg.Topics.Rejections, Key: r.Key, Value: b.mem.keep(val), Timestamp: r.Timestamp})
	}
	switch {
	case err != nil:
		p.deadLetter(b, r, fmt.Errorf("its rejection (%s) does not encode: %w", out.Reason, err))
	case !b.limits.fits(rec):
		p.deadLetter(b, r, fmt.Errorf("its rejection (%s: %s) does not fit: %s", out.Reason, out.Detail, b.limits.detail("the rejection", rec)))
	default:
		b.counts.rejections++
		b.counts.rejected[out.Reason]++
		b.produce(rec)
	}
}

// rejectTooLarge refuses an event the machine accepted (out) because one of
// its records does not fit: the order keeps its state.
func (p *Processor) rejectTooLarge(b *batch, r *kgo.Record, ev *topology.Event, out *topology.Outcome, reason, detail string, now time.Time) {
	p.log.Warn("an accepted event's records do not fit their topics; rejecting it", "reason", reason,
		"partition", r.Partition, "offset", r.Offset, "order", ev.OrderID, "detail", detail)
	refused := topology.Outcome{From: out.From, Reason: reason, Detail: detail}
	p.reject(b, r, ev, &refused, now)
}

// deadLetter produces the input record r to the dead-letter topic, with
// the cause and r's source in headers, shrunk as needed to fit the topic.
func (p *Processor) deadLetter(b *batch, r *kgo.Record, cause error) {
	b.counts.dlq++
	source := []kgo.RecordHeader{
		{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
		{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
		{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
	}
	errText := []byte(cause.Error())
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+len(source)+1)
	headers = append(headers, r.Headers...)
	headers = append(headers, kgo.RecordHeader{Key: HeaderError, Value: errText})
	headers = append(headers, source...)
	dl := &kgo.Record{Topic: p.cfg.Topics.DLQ, Key: r.Key, Value: r.Value, Headers: headers, Timestamp: r.Timestamp}
	if b.limits.fits(dl) {
		b.produce(dl)
		return
	}
	// Too large: leave out the value, then the input's headers, then the
	// key, and say so.
	limit := b.limits.of(dl.Topic)
	omitted := fmt.Sprintf("value (%d bytes)", len(r.Value))
	if len(errText) > maxErrorHeader {
		errText = append(errText[:maxErrorHeader:maxErrorHeader], "..."...)
	}
	build := func(key []byte, inputHeaders []kgo.RecordHeader) *kgo.Record {
		hs := make([]kgo.RecordHeader, 0, len(inputHeaders)+len(source)+2)
		hs = append(hs, inputHeaders...)
		hs = append(hs,
			kgo.RecordHeader{Key: HeaderError, Value: errText},
			kgo.RecordHeader{Key: HeaderOmitted, Value: []byte(fmt.Sprintf(
				"%s: over the dead-letter topic's max.message.bytes (%d); the input record is at the source topic, partition and offset of these headers",
				omitted, limit))})
		hs = append(hs, source...)
		return &kgo.Record{Topic: p.cfg.Topics.DLQ, Key: key, Headers: hs, Timestamp: r.Timestamp}
	}
	dl = build(r.Key, r.Headers)
	if !b.limits.fits(dl) {
		omitted += fmt.Sprintf(", headers (%d)", len(r.Headers))
		dl = build(r.Key, nil)
	}
	if !b.limits.fits(dl) {
		omitted += fmt.Sprintf(", key (%d bytes)", len(r.Key))
		dl = build(nil, nil)
	}
	p.log.Warn("a dead letter does not fit the dead-letter topic whole; leaving out what does not fit",
		"partition", r.Partition, "offset", r.Offset, "omitted", omitted)
	b.produce(dl)
}
