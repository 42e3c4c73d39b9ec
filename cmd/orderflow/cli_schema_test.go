package main

import (
	"context"
	binenc "encoding/binary"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
)

// evolvedEventSchema is the current OrderEvent plus a field with a default:
// a compatible change a producer may make before the processor hears of it.
func evolvedEventSchema(t *testing.T) string {
	t.Helper()
	v1, err := avro.Schema(avro.RecordOrderEvent)
	if err != nil {
		t.Fatal(err)
	}
	v2 := strings.Replace(v1, `"default": {}}`, `"default": {}}, {"name": "channel", "type": "string", "default": "web"}`, 1)
	if v2 == v1 {
		t.Fatal("schema edit did not apply")
	}
	return v2
}

func writeSchemaFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// `schema fingerprint` prints the fingerprint in the wire's byte order:
// that of the Avro project's test data for "null" (Java's
// parsingFingerprint64 7195948357588979594, little-endian), and for
// orderflow's event schema the very bytes after C3 01 of an encoded event.
func TestSchemaFingerprintCLI(t *testing.T) {
	dir := t.TempDir()
	if out, err, code := runCmd(t, "", "schema", "fingerprint", writeSchemaFile(t, dir, "null.avsc", `"null"`)); err != nil || out != "8a8f25cce724dd63\n" {
		t.Fatalf("null: out %q err %v code %d", out, err, code)
	}
	text, err := avro.Schema(avro.RecordOrderEvent)
	if err != nil {
		t.Fatal(err)
	}
	c, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	ev := topology.Event{EventID: "e1", OrderID: "o1", Type: "place_order", OccurredAt: time.UnixMilli(1000).UTC()}
	b, err := c.EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	want := avro.Fingerprint(b[2:10]).String() + "\n"
	if out, err, _ := runCmd(t, text, "schema", "fingerprint", "-"); err != nil || out != want {
		t.Fatalf("OrderEvent from stdin: out %q err %v, want %q", out, err, want)
	}
	if _, err, code := runCmd(t, "", "schema", "fingerprint", writeSchemaFile(t, dir, "bad.avsc", `{"type":`)); err == nil || code != 1 || !strings.Contains(err.Error(), "bad.avsc") {
		t.Fatalf("bad schema: err %v code %d", err, code)
	}
}

// An incompatible writer schema stops `run` with exit 2, naming the file
// and the field, before it connects to anything.
func TestRunIncompatibleWriterSchema(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	writeSchemaFile(t, dir, "ok.avsc", evolvedEventSchema(t))
	v1, _ := avro.Schema(avro.RecordOrderEvent)
	// The reader cannot do without order_id, which has no default.
	bad := writeSchemaFile(t, dir, "no_order_id.avsc", strings.Replace(v1, `{"name": "order_id", "type": "string"},`, "", 1))
	r := cli(context.Background(), nil, "run", "--brokers", "127.0.0.1:1", "--state-dir", t.TempDir(), "--http-addr", "", "--writer-schemas", dir)
	if r.code != 2 || r.err == nil || !strings.Contains(r.err.Error(), bad) || !strings.Contains(r.err.Error(), `"order_id"`) ||
		!strings.Contains(r.err.Error(), "--writer-schemas") {
		t.Fatalf("code %d err %v, want exit 2 naming %s and order_id", r.code, r.err, bad)
	}
}

// A malformed --schema-registry-url is a configuration error: exit 2, and
// run creates no topic first.
func TestMalformedSchemaRegistryURL(t *testing.T) {
	clearEnv(t)
	c := kafkatest.Fake(t)
	for _, u := range []string{"http://[::1", "localhost:8081", "ftp://registry:8081", "http://user:secret@registry:8081", "http://"} {
		r := cli(context.Background(), nil, "run", "--brokers", brokersArg(c), "--state-dir", t.TempDir(), "--http-addr", "",
			"--events-topic", kafkatest.Name(t, "events"), "--schema-registry-url", u)
		if r.code != 2 || r.err == nil || !strings.Contains(r.err.Error(), "--schema-registry-url") || strings.Contains(r.err.Error(), "secret") {
			t.Errorf("run --schema-registry-url %q: code %d err %v, want exit 2 naming the flag (and no password)", u, r.code, r.err)
		}
		for _, cmd := range []string{"produce", "tail"} {
			r := cli(context.Background(), nil, cmd, "--brokers", brokersArg(c), "--topic", "t", "--schema-registry-url", u)
			if r.code != 2 || r.err == nil || !strings.Contains(r.err.Error(), "--schema-registry-url") {
				t.Errorf("%s --schema-registry-url %q: code %d err %v, want exit 2", cmd, u, r.code, r.err)
			}
		}
	}
	topics, err := c.Admin(t).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if names := topics.Names(); len(names) != 0 {
		t.Fatalf("run created topics before refusing its configuration: %v", names)
	}
}

// Events a producer wrote with an evolved schema (a field added with a
// default) are processed when run is given the schema with
// --writer-schemas, and dead-lettered, saying why, when it is not.
func TestRunWriterSchemas(t *testing.T) {
	clearEnv(t)
	c := kafkatest.Real(t)
	v2 := evolvedEventSchema(t)
	dir := t.TempDir()
	writeSchemaFile(t, dir, "order_event.v2.avsc", v2)
	fp, err := avro.SchemaFingerprint(v2)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	// An Avro record is its fields in order: the evolved event is the
	// current one's body, then the added string, framed with the evolved
	// schema's fingerprint.
	produceV2 := func(ctx context.Context, t *testing.T, topic string) int {
		var recs []*kgo.Record
		for i, o := range []string{"o1", "o2", "o3"} {
			ev := topology.Event{EventID: "e" + o, OrderID: o, Type: "place_order", OccurredAt: time.UnixMilli(int64(i+1) * 1000).UTC()}
			v1, err := codec.EncodeEvent(nil, &ev)
			if err != nil {
				t.Fatal(err)
			}
			value := append(append([]byte{0xC3, 0x01}, fp[:]...), v1[10:]...)
			value = append(append(value, byte(2*len("kiosk"))), "kiosk"...) // zigzag length, bytes
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(o), Value: value})
		}
		if err := c.Client(t).ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	// waitFor reads topic until it holds n records.
	waitFor := func(ctx context.Context, t *testing.T, ran <-chan cliResult, topic string, n int) []*kgo.Record {
		for {
			recs, err := kafkatest.ReadToEnd(ctx, c.Brokers, topic)
			if err != nil {
				t.Fatalf("reading %s: %v", topic, err)
			}
			if len(recs) >= n {
				return recs
			}
			select {
			case r := <-ran:
				t.Fatalf("run ended early: %+v", r)
			case <-ctx.Done():
				t.Fatalf("%s has %d records, want %d: %v", topic, len(recs), n, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	t.Run("given", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		names, ran, stop := runCLI(ctx, t, c, "--writer-schemas", dir)
		n := produceV2(ctx, t, names["events"])
		waitFor(ctx, t, ran, names["status"], n)
		// Every event made a transition, so none can be in the DLQ.
		if dl, err := kafkatest.ReadToEnd(ctx, c.Brokers, names["dlq"]); err != nil || len(dl) != 0 {
			t.Fatalf("dead letters %d (err %v), want none", len(dl), err)
		}
		if r := stop(); !strings.Contains(r.stderr, fp.String()) {
			t.Errorf("run's log does not show the writer schema's fingerprint %s:\n%s", fp, r.stderr)
		}
	})
	t.Run("not given", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		names, ran, stop := runCLI(ctx, t, c)
		n := produceV2(ctx, t, names["events"])
		for _, r := range waitFor(ctx, t, ran, names["dlq"], n) {
			var reason string
			for _, h := range r.Headers {
				if h.Key == processor.HeaderError {
					reason = string(h.Value)
				}
			}
			if !strings.Contains(reason, "unknown schema fingerprint") || !strings.Contains(reason, fp.String()) {
				t.Errorf("dead letter's reason %q does not name the unknown fingerprint %s", reason, fp)
			}
		}
		if st, err := kafkatest.ReadToEnd(ctx, c.Brokers, names["status"]); err != nil || len(st) != 0 {
			t.Errorf("transitions %d (err %v), want none", len(st), err)
		}
		stop()
	})
}

// produce and tail against a registry that refuses every POST (its ACLs
// allow reading only): with --schema-registry-lookup-only they use the
// schema registered beforehand, with its ID; without it, produce says to
// use the flag (exit 2). tail decodes what produce wrote.
func TestProduceTailRegistryLookupOnly(t *testing.T) {
	clearEnv(t)
	checkLeaks(t)
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "events")
	c.CreateTopic(t, topic, 1, nil)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	text, err := avro.Schema(avro.RecordOrderEvent)
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := reg.RegisterSchema(topic+"-value", sr.Schema{Schema: text, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet {
			return false
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error_code":40301,"message":"User is denied operation Write on Subject"}`))
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	line := eventLine("e1", "o1", "place_order", 1) + "\n"
	args := []string{"produce", "--brokers", brokersArg(c), "--topic", topic, "--schema-registry-url", reg.URL()}

	r := cli(ctx, strings.NewReader(line), args...)
	if r.code != 2 || r.err == nil || !strings.Contains(r.err.Error(), "--schema-registry-lookup-only") {
		t.Fatalf("produce, registration refused: code %d err %v, want exit 2 suggesting --schema-registry-lookup-only", r.code, r.err)
	}
	args = append(args, "--schema-registry-lookup-only")
	if r := cli(ctx, strings.NewReader(line), args...); r.err != nil {
		t.Fatalf("produce --schema-registry-lookup-only: %v\n%s", r.err, r.stderr)
	}
	recs := c.ReadCommitted(t, topic)
	if len(recs) != 1 || len(recs[0].Value) < 5 || recs[0].Value[0] != 0 || int(binenc.BigEndian.Uint32(recs[0].Value[1:5])) != id {
		t.Fatalf("records %v: want one framed with schema id %d", recs, id)
	}
	args[0] = "tail"
	r = cli(ctx, nil, append(args, "--from-beginning", "--exit-at-end", "--kind", "events")...)
	if r.err != nil || !strings.Contains(r.stdout, `"event_id":"e1"`) {
		t.Fatalf("tail: err %v out %q", r.err, r.stdout)
	}
}
