package avro

import (
	"testing"

	"github.com/orderflow/orderflow/topology"
)

func BenchmarkEncodeEvent(b *testing.B) {
	c := newTestCodec(b)
	ev := sampleEvent()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.report(b)
	for b.Loop() {
		var err error
		if buf, err = c.EncodeEvent(buf[:0], &ev); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeEvent(b *testing.B) {
	c := newTestCodec(b)
	ev := sampleEvent()
	buf, err := c.EncodeEvent(nil, &ev)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.report(b)
	var got topology.Event
	for b.Loop() {
		if err := c.DecodeEvent(buf, &got); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeState(b *testing.B) {
	c := newTestCodec(b)
	st := sampleState()
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.report(b)
	for b.Loop() {
		var err error
		if buf, err = c.EncodeState(buf[:0], &st); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeState(b *testing.B) {
	c := newTestCodec(b)
	st := sampleState()
	buf, err := c.EncodeState(nil, &st)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.report(b)
	var got topology.State
	for b.Loop() {
		if err := c.DecodeState(buf, &got); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeStatusChange(b *testing.B) {
	c := newTestCodec(b)
	sc := sampleStatus()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.report(b)
	for b.Loop() {
		var err error
		if buf, err = c.EncodeStatusChange(buf[:0], &sc); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeStatusChange(b *testing.B) {
	c := newTestCodec(b)
	sc := sampleStatus()
	buf, err := c.EncodeStatusChange(nil, &sc)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.report(b)
	var got StatusChange
	for b.Loop() {
		if err := c.DecodeStatusChange(buf, &got); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeRejection(b *testing.B) {
	c := newTestCodec(b)
	r := sampleRejection()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.report(b)
	for b.Loop() {
		var err error
		if buf, err = c.EncodeRejection(buf[:0], &r); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeRejection(b *testing.B) {
	c := newTestCodec(b)
	r := sampleRejection()
	buf, err := c.EncodeRejection(nil, &r)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.report(b)
	var got Rejection
	for b.Loop() {
		if err := c.DecodeRejection(buf, &got); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHotPath is the processor's per-event work in this package: decode
// an OrderEvent, build its StatusChange and encode it.
func BenchmarkHotPath(b *testing.B) {
	c := newTestCodec(b)
	ev := sampleEvent()
	in, err := c.EncodeEvent(nil, &ev)
	if err != nil {
		b.Fatal(err)
	}
	out := topology.Outcome{Accepted: true, From: "packed", To: "shipped", Next: topology.State{Version: 5}}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.report(b)
	var got topology.Event
	for b.Loop() {
		if err := c.DecodeEvent(in, &got); err != nil {
			b.Fatal(err)
		}
		sc := StatusChangeFromOutcome(&got, &out, t0)
		if buf, err = c.EncodeStatusChange(buf[:0], &sc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanEvent is the validation pass alone.
func BenchmarkScanEvent(b *testing.B) {
	c := newTestCodec(b)
	ev := sampleEvent()
	buf, _ := c.EncodeEvent(nil, &ev)
	body := buf[soeHeaderLen:]
	s, err := compile(c.event.reader)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.report(b)
	for b.Loop() {
		if err := scanBody(s, body, c.maxRecordSize); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHotPathNewBuffers is BenchmarkHotPath as the processor calls
// the codec: the StatusChange built in the loop, each record encoded into a
// new buffer (the Kafka client keeps it), and the new OrderState encoded
// too.
func BenchmarkHotPathNewBuffers(b *testing.B) {
	c := newTestCodec(b)
	ev := sampleEvent()
	in, err := c.EncodeEvent(nil, &ev)
	if err != nil {
		b.Fatal(err)
	}
	out := topology.Outcome{Accepted: true, From: "packed", To: "shipped", Next: sampleState()}
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.report(b)
	var got topology.Event
	for b.Loop() {
		if err := c.DecodeEvent(in, &got); err != nil {
			b.Fatal(err)
		}
		if _, err := c.EncodeState(nil, &out.Next); err != nil {
			b.Fatal(err)
		}
		sc := StatusChangeFromOutcome(&got, &out, t0)
		if _, err := c.EncodeStatusChange(nil, &sc); err != nil {
			b.Fatal(err)
		}
	}
}
