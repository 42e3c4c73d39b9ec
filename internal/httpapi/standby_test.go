package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/httpapi"
	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
)

// TestStandbyAnswersForUnreachableOwner: three instances with one standby
// copy of each partition; instance o owns a partition but cannot be
// reached (it advertises an address nobody listens on). Both other
// instances answer o's orders, marked stale: the one holding the standby
// copy from it, the other by forwarding to it. The standby metrics show
// the copies.
func TestStandbyAnswersForUnreachableOwner(t *testing.T) {
	e := newEnv(t, kafkatest.Fake(t), 3)
	items := workload.Generate(workload.Options{Seed: 5, Orders: 150})
	e.produce(t, items)
	standby := func(c *processor.Config) { c.StandbyReplicas = 1 }
	o := e.startAdvertising(t, "o", t.TempDir(), "http://127.0.0.1:1", standby)
	eventually(t, 2*time.Minute, "o processed every event", func() bool { return o.p.Stats().Events >= int64(len(items)) })
	b := e.start(t, "b", t.TempDir(), standby)
	c := e.start(t, "c", t.TempDir(), standby)
	eventually(t, 2*time.Minute, "each instance owns a partition and holds a standby copy", func() bool {
		for _, in := range []*instance{o, b, c} {
			if len(in.p.Assigned()) != 1 || !in.p.Ready() || len(in.p.Standbys()) != 1 {
				return false
			}
		}
		return true
	})
	part := o.p.Assigned()[0]
	holder, other := b, c
	if len(c.p.Standbys()) == 1 && c.p.Standbys()[0] == part {
		holder, other = c, b
	}
	if got := holder.p.Standbys(); len(got) != 1 || got[0] != part {
		t.Fatalf("standby copies: b %v, c %v; want one of them to hold o's partition %d", b.p.Standbys(), c.p.Standbys(), part)
	}
	holderName := map[*instance]string{b: "b", c: "c"}[holder]

	want := finalStates(items)
	checked := 0
	for id, st := range want {
		if kafkatest.PartitionOf(id, int(e.cfg.Partitions)) != part {
			continue
		}
		for _, via := range []*instance{holder, other} {
			var code int
			var h http.Header
			var body string
			// The copy catches up, and the peers view learns the
			// group's standbys: 503 until then.
			eventually(t, time.Minute, "a stale answer for "+id, func() bool {
				code, h, body = get(t, via.url+httpapi.PathOrders+id)
				return code == http.StatusOK
			})
			if h.Get(httpapi.HeaderStale) != "true" || h.Get(httpapi.HeaderInstance) != holderName {
				t.Fatalf("GET %s via %s: %s %q from %q, want a stale answer from %s's copy", id,
					map[*instance]string{b: "b", c: "c"}[via], httpapi.HeaderStale, h.Get(httpapi.HeaderStale), h.Get(httpapi.HeaderInstance), holderName)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				t.Fatal(err)
			}
			if m["stale"] != true || m["lag_records"] == nil || m["lag_ms"] == nil {
				t.Fatalf("stale answer %s: want stale, lag_records, lag_ms", body)
			}
			checkState(t, id, body, st)
		}
		if checked++; checked == 10 {
			break
		}
	}
	if checked == 0 {
		t.Fatalf("no order in o's partition %d", part)
	}

	m := scrape(t, holder.url)
	if m["orderflow_standby_partitions"] != 1 {
		t.Errorf("orderflow_standby_partitions = %v, want 1", m["orderflow_standby_partitions"])
	}
	if _, n := sum(m, "orderflow_standby_lag_records"); n != 1 {
		t.Errorf("orderflow_standby_lag_records: %d series, want 1 (the copy held)", n)
	}
	if _, n := sum(m, "orderflow_assignment_to_processing_seconds_count"); n != 1 {
		t.Errorf("orderflow_assignment_to_processing_seconds: %d series", n)
	}
	for _, in := range []*instance{o, b, c} {
		if err := in.stop(); err != nil {
			t.Fatal(err)
		}
	}
}
