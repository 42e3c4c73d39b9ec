package avro

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	hamba "github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/orderflow/orderflow/topology"
)

var testTopics = Topics{Events: "orders.events", Status: "orders.status", Rejections: "orders.rejections", Changelog: "app-state-changelog"}

// newRegistry starts an in-process schema registry and counts the schema
// lookups by ID it serves.
func newRegistry(t *testing.T) (*srfake.Registry, *sr.Client, *atomic.Int64) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	var byID atomic.Int64
	reg.Intercept(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			byID.Add(1)
		}
		return false
	})
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return reg, cl, &byID
}

func newConfluent(t *testing.T, cl *sr.Client, topics Topics) *Codec {
	t.Helper()
	c, err := NewConfluentCodec(context.Background(), cl, topics)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfluentRoundTrip(t *testing.T) {
	reg, cl, byID := newRegistry(t)
	c := newConfluent(t, cl, testTopics)
	byID.Store(0) // registration may look IDs up; decoding must not
	payloads := roundTrip(t, c, confluentMagic)

	// Each record's schema is registered under <topic>-value, and the
	// payload names its ID.
	for name, subject := range map[string]string{
		"event": "orders.events-value", "status": "orders.status-value",
		"rejection": "orders.rejections-value", "state": "app-state-changelog-value",
	} {
		ss, ok := reg.GetSchema(subject, 1)
		if !ok {
			t.Fatalf("%s: nothing registered under %s", name, subject)
		}
		if id := int(binary.BigEndian.Uint32(payloads[name][1:5])); id != ss.ID {
			t.Fatalf("%s: payload names schema id %d, registry has %d", name, id, ss.ID)
		}
	}
	if n := byID.Load(); n != 0 {
		t.Fatalf("decoding our own records asked the registry %d times", n)
	}

	// A second instance registers the same schemas (same IDs) and reads the
	// first one's records.
	c2 := newConfluent(t, cl, testTopics)
	var ev topology.Event
	if err := c2.DecodeEvent(payloads["event"], &ev); err != nil {
		t.Fatal(err)
	}
	if want := sampleEvent(); !reflect.DeepEqual(ev, want) {
		t.Fatalf("got %#v, want %#v", ev, want)
	}

	// A Confluent codec also reads single-object payloads.
	sev := sampleEvent()
	soe, _ := newTestCodec(t).EncodeEvent(nil, &sev)
	if err := c.DecodeEvent(soe, &ev); err != nil {
		t.Fatalf("single-object payload: %v", err)
	}
}

// A record type without a topic is written in single-object encoding.
func TestConfluentTopicless(t *testing.T) {
	reg, cl, _ := newRegistry(t)
	c := newConfluent(t, cl, Topics{Events: "orders.events"})
	st := sampleState()
	b, err := c.EncodeState(nil, &st)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != soeMagic0 {
		t.Fatalf("state framed with %#x, want single-object", b[0])
	}
	if reg.SubjectExists("app-state-changelog-value") || !reg.SubjectExists("orders.events-value") {
		t.Fatal("wrong subjects registered")
	}
}

// Unknown IDs are fetched on demand, once; writer schemas resolve to the
// reader's.
func TestConfluentFetchesWriterSchemas(t *testing.T) {
	reg, cl, byID := newRegistry(t)
	c := newConfluent(t, cl, testTopics)
	byID.Store(0)

	// A foreign producer writes OrderEvent v2 with its own registration.
	v2text := readFile(t, "testdata/order_event.v2.avsc")
	id, _, err := reg.RegisterSchema("orders.events-value", sr.Schema{Schema: v2text, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := hamba.Parse(v2text)
	if err != nil {
		t.Fatal(err)
	}
	ev := sampleEvent()
	body, err := hamba.Marshal(v2, orderEventV2{ev.EventID, ev.OrderID, ev.Type, ev.OccurredAt, ev.Sequence, ev.Attributes, ptr("kiosk")})
	if err != nil {
		t.Fatal(err)
	}
	in := binary.BigEndian.AppendUint32([]byte{confluentMagic}, uint32(id))
	in = append(in, body...)
	for range 3 {
		var got topology.Event
		if err := c.DecodeEvent(in, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Fatalf("got %#v, want %#v", got, ev)
		}
	}
	if n := byID.Load(); n != 1 {
		t.Fatalf("registry asked %d times for one new id, want 1", n)
	}

	// An ID the registry does not have: malformed, asked once.
	byID.Store(0)
	bogus := binary.BigEndian.AppendUint32([]byte{confluentMagic}, 99999)
	bogus = append(bogus, body...)
	for range 3 {
		var got topology.Event
		err := c.DecodeEvent(bogus, &got)
		checkDecodeErr(t, err, ErrUnknownSchemaID)
	}
	if n := byID.Load(); n != 1 {
		t.Fatalf("registry asked %d times for one unknown id, want 1", n)
	}

	// A registered schema of another record: incompatible writer, malformed.
	sc := sampleStatus()
	statusBytes, _ := c.EncodeStatusChange(nil, &sc)
	var got topology.Event
	checkDecodeErr(t, c.DecodeEvent(statusBytes, &got), ErrIncompatibleWriter)

	// An incompatible OrderEvent from a registry that does not check.
	if err := reg.SetCompat("orders.events-value", sr.CompatNone); err != nil {
		t.Fatal(err)
	}
	badID, _, err := reg.RegisterSchema("orders.events-value", sr.Schema{Schema: readFile(t, "testdata/order_event.incompatible.avsc"), Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	bad := binary.BigEndian.AppendUint32([]byte{confluentMagic}, uint32(badID))
	checkDecodeErr(t, c.DecodeEvent(append(bad, body...), &got), ErrIncompatibleWriter)

	// Header cut short.
	checkDecodeErr(t, c.DecodeEvent(in[:3], &got), ErrTruncated)
}

// A registry that cannot be reached is not the record's fault.
func TestConfluentRegistryDown(t *testing.T) {
	reg, cl, _ := newRegistry(t)
	c := newConfluent(t, cl, testTopics)
	reg.Close()
	in := binary.BigEndian.AppendUint32([]byte{confluentMagic}, 4242)
	in = append(in, 0)
	var got topology.Event
	err := c.DecodeEvent(in, &got)
	if !errors.Is(err, ErrRegistry) || errors.Is(err, ErrMalformed) {
		t.Fatalf("err %v, want ErrRegistry and not ErrMalformed", err)
	}
	// Our own records still decode: their IDs are known.
	ev := sampleEvent()
	b, err := c.EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DecodeEvent(b, &got); err != nil {
		t.Fatal(err)
	}
	// And registration fails clearly.
	if _, err := NewConfluentCodec(context.Background(), cl, testTopics); !errors.Is(err, ErrRegistry) {
		t.Fatalf("register against a closed registry: err %v", err)
	}
}

// A registry that refuses the registration (as a real one does for an
// incompatible change; srfake does not check compatibility, so the refusal
// is injected) makes construction fail, naming the subject.
func TestConfluentRegistrationRefused(t *testing.T) {
	reg, cl, _ := newRegistry(t)
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Path == "/subjects/orders.status-value/versions" {
			w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error_code":409,"message":"Schema being registered is incompatible with an earlier schema"}`))
			return true
		}
		return false
	})
	_, err := NewConfluentCodec(context.Background(), cl, testTopics)
	if !errors.Is(err, ErrRegistry) || !strings.Contains(err.Error(), "orders.status-value") || !strings.Contains(err.Error(), "incompatible") {
		t.Fatalf("err %v, want a registration error naming the subject", err)
	}
}

// refusePOST makes reg answer every POST with 403, as a registry whose ACLs
// let the caller read but not register, and counts the refusals.
func refusePOST(reg *srfake.Registry) *atomic.Int64 {
	var posts atomic.Int64
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet {
			posts.Add(1)
			w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error_code":40301,"message":"User is denied operation Write on Subject"}`))
			return true
		}
		return false
	})
	return &posts
}

// Lookup-only: against a registry that refuses every POST, the codec finds
// the schemas registered beforehand (also when a newer version came after
// them) and frames records with their IDs; without lookup-only it fails;
// with a schema missing, it says which.
func TestConfluentLookupOnly(t *testing.T) {
	reg, cl, _ := newRegistry(t)
	ids := map[string]int{}
	for subject, record := range map[string]string{
		"orders.events-value": RecordOrderEvent, "orders.status-value": RecordStatusChange,
		"orders.rejections-value": RecordRejection, "app-state-changelog-value": RecordOrderState,
	} {
		text, err := Schema(record)
		if err != nil {
			t.Fatal(err)
		}
		// The registry keeps its own rendering of the text; only the
		// schema has to be the same.
		text = strings.Join(strings.Fields(text), " ")
		if ids[subject], _, err = reg.RegisterSchema(subject, sr.Schema{Schema: text, Type: sr.TypeAvro}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := reg.RegisterSchema("orders.events-value", sr.Schema{Schema: readFile(t, "testdata/order_event.v2.avsc"), Type: sr.TypeAvro}); err != nil {
		t.Fatal(err)
	}
	posts := refusePOST(reg)

	if _, err := NewConfluentCodec(context.Background(), cl, testTopics); !errors.Is(err, ErrRegistry) || !strings.Contains(err.Error(), "denied") {
		t.Fatalf("registering against a registry that refuses it: err %v", err)
	}
	posts.Store(0)
	c, err := NewConfluentCodec(context.Background(), cl, testTopics, WithRegistryLookupOnly())
	if err != nil {
		t.Fatal(err)
	}
	if n := posts.Load(); n != 0 {
		t.Fatalf("lookup-only sent %d POST requests", n)
	}
	payloads := roundTrip(t, c, confluentMagic)
	for name, subject := range map[string]string{"event": "orders.events-value", "status": "orders.status-value", "state": "app-state-changelog-value"} {
		if got := int(binary.BigEndian.Uint32(payloads[name][1:5])); got != ids[subject] {
			t.Errorf("%s: payload names schema id %d, want %d (registered under %s)", name, got, ids[subject], subject)
		}
	}

	// A subject without our schema, or no subject at all.
	_, err = NewConfluentCodec(context.Background(), cl, Topics{Events: "other.events"}, WithRegistryLookupOnly())
	if !errors.Is(err, ErrNotRegistered) || !strings.Contains(err.Error(), "other.events-value") {
		t.Fatalf("missing subject: err %v, want ErrNotRegistered naming the subject", err)
	}
	if _, _, err := reg.RegisterSchema("v2only-value", sr.Schema{Schema: readFile(t, "testdata/order_event.v2.avsc"), Type: sr.TypeAvro}); err != nil {
		t.Fatal(err)
	}
	_, err = NewConfluentCodec(context.Background(), cl, Topics{Events: "v2only"}, WithRegistryLookupOnly())
	if !errors.Is(err, ErrNotRegistered) || !strings.Contains(err.Error(), "OrderEvent") {
		t.Fatalf("subject without the schema: err %v, want ErrNotRegistered", err)
	}
}

// WithRegistryTimeout bounds the requests of construction too: a registry
// that never answers fails it with ErrRegistry rather than hang.
func TestConfluentRegistryTimeout(t *testing.T) {
	reg, cl, _ := newRegistry(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the registry closes
	reg.Intercept(func(_ http.ResponseWriter, r *http.Request) bool {
		select { // no answer while the client waits
		case <-r.Context().Done():
		case <-release:
		}
		return true
	})
	_, err := NewConfluentCodec(context.Background(), cl, testTopics, WithRegistryTimeout(100*time.Millisecond))
	if !errors.Is(err, ErrRegistry) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want ErrRegistry from the deadline", err)
	}
}
