package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/httpapi"
	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/partitioner"
	"github.com/orderflow/orderflow/internal/testutil"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is one test's topics on one cluster.
type env struct {
	c   *kafkatest.Cluster
	cfg processor.Config
}

func newEnv(t *testing.T, c *kafkatest.Cluster, partitions int32) *env {
	t.Helper()
	cfg := testutil.AppConfig(t, c, partitions)
	testutil.EnsureTopics(t, c, cfg)
	return &env{c: c, cfg: cfg}
}

func (e *env) produce(t *testing.T, items []workload.Item) {
	t.Helper()
	e.produceWith(t, items, partitioner.Murmur2)
}

// produceWith produces items as a producer partitioning by part does.
func (e *env) produceWith(t *testing.T, items []workload.Item, part partitioner.Name) {
	t.Helper()
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	cl := e.c.Client(t, kgo.DefaultProduceTopic(e.cfg.Topics.Events), kgo.RecordPartitioner(part.Kgo()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs := make([]*kgo.Record, len(items))
	for i := range items {
		val := items[i].Malformed
		if val == nil {
			if val, err = codec.EncodeEvent(nil, &items[i].Event); err != nil {
				t.Fatal(err)
			}
		}
		rs[i] = &kgo.Record{Key: []byte(items[i].Key), Value: val}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The records are where the partitioner puts them: for murmur2,
	// Kafka's default, which the API computes first (the processor's
	// tests check that it does).
	n := int(e.cfg.Partitions)
	for _, r := range rs {
		want := part.Partition(r.Key, n)
		if part == partitioner.Murmur2 {
			want = kafkatest.PartitionOf(string(r.Key), n)
		}
		if want != r.Partition {
			t.Fatalf("key %q: produced to partition %d, %v says %d", r.Key, r.Partition, part, want)
		}
	}
}

// instance is a processor with its HTTP API on a local port.
type instance struct {
	p    *processor.Processor
	url  string
	stop func() error
}

func (e *env) start(t *testing.T, name, stateDir string, tweak func(*processor.Config)) *instance {
	t.Helper()
	return e.startAdvertising(t, name, stateDir, "", tweak)
}

// startAdvertising is start with the instance advertising advertise
// instead of its address ("": its address).
func (e *env) startAdvertising(t *testing.T, name, stateDir, advertise string, tweak func(*processor.Config)) *instance {
	t.Helper()
	cfg := e.cfg
	cfg.InstanceID = name
	cfg.StateDir = stateDir
	if tweak != nil {
		tweak(&cfg)
	}
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	if advertise == "" {
		advertise = url
	}
	peers, err := processor.NewPeers(p, processor.PeersConfig{AdvertiseURL: advertise})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Options{Processor: p, Peers: peers, Logger: cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	stop := testutil.Background(t, "instance", func(ctx context.Context) error {
		// As orderflow run does: the API serves until the processor has
		// stopped.
		apiCtx, stopAPI := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- api.Serve(apiCtx, ln) }()
		err := p.Run(ctx)
		stopAPI()
		if serr := <-served; err == nil {
			err = serr
		}
		return err
	})
	return &instance{p: p, url: url, stop: stop}
}

// get returns the status, headers and body of GET url.
func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// scrape returns the samples of /metrics: "name{labels}" -> value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	code, _, body := get(t, base+httpapi.PathMetrics)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// sum adds the samples whose name (before any labels) is name.
func sum(m map[string]float64, name string) (float64, int) {
	var s float64
	n := 0
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
			n++
		}
	}
	return s, n
}

// eventually polls cond until it holds; the test fails after timeout (a
// bound on a hang, not a timed assertion).
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// finalStates replays the items: the final state of every order.
func finalStates(items []workload.Item) map[string]*topology.State {
	m := topology.Default()
	states := map[string]*topology.State{}
	for i := range items {
		if items[i].Malformed != nil {
			continue
		}
		ev := items[i].Event
		if out := topology.Apply(m, states[ev.OrderID], &ev); out.Accepted {
			next := out.Next
			states[ev.OrderID] = &next
		}
	}
	return states
}

func TestMetricsMoveWhenEventsFlow(t *testing.T) {
	e := newEnv(t, kafkatest.Fake(t), 3)
	a := e.start(t, "a", t.TempDir(), nil)
	// Ready is also true before the first assignment (no partition is
	// waiting for a restore): wait for the partitions too.
	eventually(t, time.Minute, "instance ready with its 3 partitions", func() bool {
		return a.p.Ready() && len(a.p.Assigned()) == 3
	})

	before := scrape(t, a.url)
	if v := before["orderflow_events_consumed_total"]; v != 0 {
		t.Fatalf("events consumed before any event: %v", v)
	}
	if v := before["orderflow_owned_partitions"]; v != 3 {
		t.Fatalf("owned partitions %v, want 3", v)
	}
	if v := before["orderflow_ready"]; v != 1 {
		t.Fatalf("orderflow_ready %v, want 1", v)
	}

	items := workload.Generate(workload.Options{Seed: 5, Orders: 300, Malformed: 0.02})
	malformed := 0
	for _, it := range items {
		if it.Malformed != nil {
			malformed++
		}
	}
	e.produce(t, items)
	eventually(t, 2*time.Minute, "all events processed", func() bool { return a.p.Stats().Events == int64(len(items)) })

	m := scrape(t, a.url)
	st := a.p.Stats()
	for name, want := range map[string]float64{
		"orderflow_events_consumed_total":             float64(len(items)),
		"orderflow_dlq_records_total":                 float64(malformed),
		"orderflow_end_to_end_latency_seconds_count":  float64(len(items)),
		"orderflow_batch_records_sum":                 float64(len(items)),
		`orderflow_batches_total{result="committed"}`: float64(st.Batches),
	} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
	if malformed == 0 {
		t.Fatal("the workload has no malformed records; the DLQ check proves nothing")
	}
	if s, n := sum(m, "orderflow_transitions_total"); s != float64(st.Transitions) || n < 3 {
		t.Errorf("transitions_total: %v over %d series, want %d over several (from,to) pairs", s, n, st.Transitions)
	}
	if _, ok := m[`orderflow_transitions_total{from="none",to="placed"}`]; !ok {
		t.Errorf("no transitions_total series for new orders (from=\"none\"): %v", keys(m, "orderflow_transitions_total"))
	}
	if s, n := sum(m, "orderflow_rejections_total"); s != float64(st.Rejections) || n < 2 {
		t.Errorf("rejections_total: %v over %d reasons, want %d over several", s, n, st.Rejections)
	}
	for _, name := range []string{"orderflow_commit_seconds_count", "orderflow_store_disk_bytes", "orderflow_kafka_fetch_records_total"} {
		if s, _ := sum(m, name); s <= 0 {
			t.Errorf("%s = %v, want > 0", name, s)
		}
	}
	// The store's flush and compaction counters are exported, as
	// counters that start at 0 (the test's store may not flush).
	for _, name := range []string{"orderflow_store_flushes_total", "orderflow_store_flushed_bytes_total", "orderflow_store_compacted_bytes_total"} {
		if _, n := sum(m, name); n != 1 {
			t.Errorf("%s: %d series, want 1", name, n)
		}
	}
	if _, n := sum(m, "orderflow_restore_remaining_records"); n != 3 {
		t.Errorf("restore progress for %d partitions, want 3", n)
	}
	// Every metric of the Grafana dashboard exists (the connection error
	// counter has series only after an error).
	dash, err := os.ReadFile("../../deploy/grafana/dashboards/orderflow.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile(`orderflow_[a-z_]+`).FindAllString(string(dash), -1) {
		if name == "orderflow_kafka_connect_errors_total" {
			continue
		}
		// (The lag is checked below: it is computed on scrape.)
		if _, n := sum(m, name); n == 0 && name != "orderflow_consumer_lag" {
			t.Errorf("the dashboard uses %s, which /metrics does not have", name)
		}
	}
	// Every metric deploy/README.md's table promises exists (build_info
	// is the binary's, added by `orderflow run`).
	readme, err := os.ReadFile("../../deploy/README.md")
	if err != nil {
		t.Fatal(err)
	}
	promised := 0
	for _, row := range regexp.MustCompile("(?m)^\\| (`[a-z_*]+`(?:, `[a-z_*]+`)*) \\|").FindAllStringSubmatch(string(readme), -1) {
		for _, name := range regexp.MustCompile("`([a-z_*]+)`").FindAllStringSubmatch(row[1], -1) {
			promised++
			full := "orderflow_" + name[1]
			switch {
			case name[1] == "build_info", name[1] == "consumer_lag": // the lag: checked below
				continue
			case name[1] == "standby_lag_records": // by standby partition: none here (TestStandbyAnswersForUnreachableOwner checks it)
				continue
			case strings.HasSuffix(full, "*"):
				if len(keys(m, strings.TrimSuffix(full, "*"))) == 0 {
					t.Errorf("deploy/README.md promises %s, which /metrics does not have", full)
				}
				continue
			}
			if _, n := sum(m, full); n == 0 {
				if _, h := sum(m, full+"_count"); h == 0 {
					t.Errorf("deploy/README.md promises %s, which /metrics does not have", full)
				}
			}
		}
	}
	if promised < 20 {
		t.Errorf("found %d metric names in deploy/README.md's table: is the table still there?", promised)
	}
	// The lag is computed on scrape; it reaches 0 once the offsets are
	// committed.
	eventually(t, time.Minute, "consumer lag 0 on 3 partitions", func() bool {
		s, n := sum(scrape(t, a.url), "orderflow_consumer_lag")
		return n == 3 && s == 0
	})
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
}

func keys(m map[string]float64, prefix string) []string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

// TestReadyOnlyAfterRestore holds an instance's restore (an open transaction
// on the changelog, which a restore waits for) and checks that /readyz and
// the order queries say 503 until the restore is released, and that the
// restored state answers afterwards.
func TestReadyOnlyAfterRestore(t *testing.T) {
	e := newEnv(t, kafkatest.Fake(t), 2)
	items := workload.Generate(workload.Options{Seed: 7, Orders: 200})
	e.produce(t, items)
	a := e.start(t, "a", t.TempDir(), nil)
	eventually(t, 2*time.Minute, "all events processed", func() bool { return a.p.Stats().Events == int64(len(items)) })
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}

	// Hold every changelog partition with an open transaction.
	changelog := processor.ChangelogTopic(e.cfg.AppID)
	holder := e.c.Client(t, kgo.TransactionalID(kafkatest.Name(t, "holder")), kgo.TransactionTimeout(5*time.Minute),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := holder.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for part := int32(0); part < e.cfg.Partitions; part++ {
		if err := holder.ProduceSync(ctx, &kgo.Record{Topic: changelog, Partition: part, Key: []byte("held"), Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// A new instance with an empty store must restore everything.
	b := e.start(t, "b", t.TempDir(), func(c *processor.Config) { c.TransactionTimeout = time.Minute })
	eventually(t, time.Minute, "partitions assigned to b", func() bool { return len(b.p.Assigned()) == int(e.cfg.Partitions) })
	var known string
	for id := range finalStates(items) {
		known = id
		break
	}
	if code, _, body := get(t, b.url+httpapi.PathReady); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while restoring: %d %s", code, body)
	}
	if code, _, body := get(t, b.url+httpapi.PathOrders+known); code != http.StatusServiceUnavailable {
		t.Fatalf("/orders/%s while restoring: %d %s", known, code, body)
	}
	if code, _, _ := get(t, b.url+httpapi.PathHealth); code != http.StatusOK {
		t.Fatalf("/healthz while restoring: %d", code)
	}
	m := scrape(t, b.url)
	if m["orderflow_ready"] != 0 || m["orderflow_restoring_partitions"] != float64(e.cfg.Partitions) {
		t.Fatalf("while restoring: ready %v, restoring partitions %v", m["orderflow_ready"], m["orderflow_restoring_partitions"])
	}

	if err := holder.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "/readyz 200 after the restore", func() bool {
		code, _, _ := get(t, b.url+httpapi.PathReady)
		return code == http.StatusOK
	})
	// Ready means restored: every order's state is there at once.
	states := finalStates(items)
	for id, want := range states {
		code, _, body := get(t, b.url+httpapi.PathOrders+id)
		if code != http.StatusOK {
			t.Fatalf("/orders/%s after ready: %d %s", id, code, body)
		}
		checkState(t, id, body, want)
	}
	m = scrape(t, b.url)
	if s, _ := sum(m, "orderflow_restore_restored_records"); s < float64(len(states)) {
		t.Errorf("restore_restored_records total %v, want at least the %d orders", s, len(states))
	}
	if s, _ := sum(m, "orderflow_restore_remaining_records"); s != 0 {
		t.Errorf("restore_remaining_records total %v after ready, want 0", s)
	}
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
}

func checkState(t *testing.T, id, body string, want *topology.State) {
	t.Helper()
	var got avro.StateRecord
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("order %s: %v in %s", id, err, body)
	}
	if got.OrderID != id || got.State == nil || got.State.State != want.State || got.State.Version != want.Version ||
		!got.State.UpdatedAt.Equal(want.UpdatedAt) || fmt.Sprint(got.State.RecentEventIDs) != fmt.Sprint(want.RecentEventIDs) {
		t.Fatalf("order %s: got %s, want state %s version %d events %v", id, body, want.State, want.Version, want.RecentEventIDs)
	}
}

// TestQueryForwardedToOwner sends every order query to the instance that
// does not own the order's partition: the answer is the owner's.
func TestQueryForwardedToOwner(t *testing.T) {
	e := newEnv(t, kafkatest.Fake(t), 4)
	items := workload.Generate(workload.Options{Seed: 9, Orders: 200})
	e.produce(t, items)
	a := e.start(t, "a", t.TempDir(), nil)
	b := e.start(t, "b", t.TempDir(), nil)
	eventually(t, 2*time.Minute, "all events processed and both instances own partitions", func() bool {
		return a.p.Stats().Events+b.p.Stats().Events >= int64(len(items)) &&
			len(a.p.Assigned()) > 0 && len(b.p.Assigned()) > 0 && a.p.Ready() && b.p.Ready()
	})
	owner := map[int32]*instance{}
	for _, in := range []*instance{a, b} {
		for _, part := range in.p.Assigned() {
			owner[part] = in
		}
	}
	if len(owner) != int(e.cfg.Partitions) {
		t.Fatalf("owners of %d partitions, want %d", len(owner), e.cfg.Partitions)
	}
	other := map[*instance]*instance{a: b, b: a}
	name := map[*instance]string{a: "a", b: "b"}

	forwarded := map[string]int{}
	for id, want := range finalStates(items) {
		own := owner[kafkatest.PartitionOf(id, int(e.cfg.Partitions))]
		url := other[own].url + httpapi.PathOrders + id
		var code int
		var h http.Header
		var body string
		// 503 is a legal answer while the peers view catches up (the
		// owner's advertisement, the group's assignment); 200 must follow.
		eventually(t, time.Minute, "a 200 for "+url, func() bool {
			code, h, body = get(t, url)
			return code != http.StatusServiceUnavailable
		})
		if code != http.StatusOK {
			t.Fatalf("GET %s (owner %s): %d %s", url, name[own], code, body)
		}
		if got := h.Get(httpapi.HeaderInstance); got != name[own] {
			t.Fatalf("GET %s answered by %q, want the owner %s", url, got, name[own])
		}
		checkState(t, id, body, want)
		forwarded[name[own]]++
	}
	if forwarded["a"] == 0 || forwarded["b"] == 0 {
		t.Fatalf("queries forwarded to a: %d, to b: %d; want both", forwarded["a"], forwarded["b"])
	}
	// An unknown order: the owner's 404, through either instance.
	for _, in := range []*instance{a, b} {
		if code, _, body := get(t, in.url+httpapi.PathOrders+"no-such-order"); code != http.StatusNotFound {
			t.Fatalf("unknown order via %s: %d %s", name[in], code, body)
		}
	}
	for _, in := range []*instance{a, b} {
		if err := in.stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQueriesFindCRC32PartitionedOrders: events produced as librdkafka
// clients do by default (CRC32 of the key) are processed as any others, the
// instances report that the records are not where murmur2 puts them, and
// every order is found through either instance: a, left to detect the
// partitioner, and b, told the wrong one (--partitioner murmur2).
func TestQueriesFindCRC32PartitionedOrders(t *testing.T) {
	e := newEnv(t, kafkatest.Real(t), 6)
	items := workload.Generate(workload.Options{Seed: 30, Orders: 120})
	e.produceWith(t, items, partitioner.CRC32)
	a := e.start(t, "a", t.TempDir(), nil)
	b := e.start(t, "b", t.TempDir(), func(c *processor.Config) { c.Partitioner = partitioner.Murmur2 })
	eventually(t, 2*time.Minute, "all events processed and both instances own partitions", func() bool {
		return a.p.Stats().Events+b.p.Stats().Events >= int64(len(items)) &&
			len(a.p.Assigned()) > 0 && len(b.p.Assigned()) > 0 && a.p.Ready() && b.p.Ready()
	})
	if got := a.p.Stats().Events + b.p.Stats().Events; got != int64(len(items)) {
		t.Fatalf("processed %d events, produced %d", got, len(items))
	}
	if got := a.p.Partitioner(); got != partitioner.CRC32 {
		t.Errorf("instance a (detecting) uses %v, want crc32", got)
	}
	if got := b.p.Partitioner(); got != partitioner.Murmur2 {
		t.Errorf("instance b (--partitioner murmur2) uses %v, want murmur2", got)
	}
	for name, in := range map[string]*instance{"a": a, "b": b} {
		m := scrape(t, in.url)
		if v := m[`orderflow_partitioner_records_total{partitioner="crc32"}`]; v == 0 {
			t.Errorf("instance %s: no record counted as crc32-placed", name)
		}
		if v, _ := sum(m, "orderflow_partitioner_mismatches_total"); name == "b" && v == 0 {
			t.Errorf("instance %s (murmur2 configured): no mismatch counted", name)
		}
	}
	want := finalStates(items)
	if len(want) < 100 {
		t.Fatalf("only %d orders", len(want))
	}
	for id, st := range want {
		for _, in := range []*instance{a, b} {
			url := in.url + httpapi.PathOrders + id
			var (
				code int
				body string
			)
			// 503 while the peers view catches up; then 200, never 404.
			eventually(t, time.Minute, "an answer other than 503 for "+url, func() bool {
				code, _, body = get(t, url)
				return code != http.StatusServiceUnavailable
			})
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", url, code, body)
			}
			checkState(t, id, body, st)
		}
	}
	for _, in := range []*instance{a, b} {
		if code, _, body := get(t, in.url+httpapi.PathOrders+"no-such-order"); code != http.StatusNotFound {
			t.Fatalf("unknown order: %d %s", code, body)
		}
	}
	for _, in := range []*instance{a, b} {
		if err := in.stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStates: GET /states?older_than=D lists every open leaf state of the
// machine with the instance's open orders in it (those of the replayed
// workload), the orders older than D among them, and the instance and
// partitions it counted; a bad older_than is a 400.
func TestStates(t *testing.T) {
	e := newEnv(t, kafkatest.Fake(t), 2)
	items := workload.Generate(workload.Options{Seed: 11, Orders: 300})
	e.produce(t, items)
	a := e.start(t, "a", t.TempDir(), nil)
	eventually(t, 2*time.Minute, "all events processed", func() bool { return a.p.Stats().Events == int64(len(items)) })

	m := topology.Default()
	want := map[string]int64{}
	for _, leaf := range m.Leaves() {
		if !m.IsTerminal(leaf) {
			want[leaf] = 0
		}
	}
	for _, st := range finalStates(items) {
		if !m.IsTerminal(st.State) {
			want[st.State]++
		}
	}
	ask := func(q string) httpapi.StatesAnswer {
		t.Helper()
		code, hdr, body := get(t, a.url+httpapi.PathStates+q)
		if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("GET /states%s: %d %s", q, code, body)
		}
		var ans httpapi.StatesAnswer
		if err := json.Unmarshal([]byte(body), &ans); err != nil {
			t.Fatal(err)
		}
		if ans.Instance != "a" || len(ans.Partitions) != 2 {
			t.Errorf("GET /states%s: instance %q, partitions %v", q, ans.Instance, ans.Partitions)
		}
		got := map[string]int64{}
		for _, sc := range ans.States {
			got[sc.State] = sc.Orders
			if sc.Older < 0 || sc.Older > sc.Orders {
				t.Errorf("GET /states%s: %+v", q, sc)
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("GET /states%s: orders by state %v, want %v", q, got, want)
		}
		return ans
	}
	ans := ask("")
	if ans.OlderThan != "0s" || !ans.Cutoff.Equal(ans.AsOf) {
		t.Errorf("no older_than: %+v", ans)
	}
	ans = ask("?older_than=60000d")
	for _, sc := range ans.States {
		if sc.Older != 0 {
			t.Errorf("older than 60000 days: %+v", sc)
		}
	}
	if ans.OlderThan != (60000 * 24 * time.Hour).String() {
		t.Errorf("older_than %q", ans.OlderThan)
	}
	for _, bad := range []string{"soon", "-1h", "1x"} {
		if code, _, body := get(t, a.url+httpapi.PathStates+"?older_than="+bad); code != http.StatusBadRequest || !strings.Contains(body, "older_than") {
			t.Errorf("older_than=%s: %d %s, want 400 naming older_than", bad, code, body)
		}
	}
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
}
