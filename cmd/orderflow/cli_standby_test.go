package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/httpapi"
	"github.com/orderflow/orderflow/internal/kafkatest"
)

// freeAddr returns a local address no process listens on now, for an
// instance whose advertised URL must name its port (--http-addr with port
// 0 would advertise port 0).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// getOrder asks base for an order; standby asks for the answer of its
// standby copy.
func getOrder(t *testing.T, base, id string, standby bool) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+httpapi.PathOrders+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if standby {
		req.Header.Set(httpapi.HeaderStandbyRead, "1")
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return resp.StatusCode, resp.Header, m
}

// TestRunStandbyReads: two instances with --standby-replicas 1; each holds
// a standby copy of the other's partition. The owner of some orders is
// SIGKILLed: while the group still counts it as the owner (its session
// has not timed out), the other instance answers queries for its orders
// from its standby copy, marked stale (header and JSON, with the copy's
// lag); once the partition has moved to it, it answers them fresh.
func TestRunStandbyReads(t *testing.T) {
	clearEnv(t)
	c := kafkatest.Real(t)
	n := newRunNames(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	addrA, addrB := freeAddr(t), freeAddr(t)
	a := startBinary(t, n.args(c, "a", t.TempDir(), "--http-addr", addrA, "--standby-replicas", "1")...)
	n.waitTopics(t, ctx, c)
	b := startBinary(t, n.args(c, "b", t.TempDir(), "--http-addr", addrB, "--standby-replicas", "1")...)
	urlB := "http://" + addrB
	ids := n.produceOrders(t, ctx, c, "o", 20, nil)
	n.waitOutcomes(t, ctx, c, ids, running(a, b))

	// Who owns what, once each instance owns one partition.
	owner := map[string]string{}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		clear(owner)
		for _, id := range ids {
			if code, h, _ := getOrder(t, urlB, id, false); code == http.StatusOK && h.Get(httpapi.HeaderStale) == "" {
				owner[id] = h.Get(httpapi.HeaderInstance)
			}
		}
		byA := 0
		for _, o := range owner {
			if o == "a" {
				byA++
			}
		}
		if len(owner) == len(ids) && byA > 0 && byA < len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("owners %v: want every order answered, some by a and some by b\na:\n%s\nb:\n%s", owner, a.stderr.String(), b.stderr.String())
		}
	}
	var ofA []string
	for id, o := range owner {
		if o == "a" {
			ofA = append(ofA, id)
		}
	}
	// b's standby copy of a's partition holds a's orders.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		ok := 0
		for _, id := range ofA {
			if code, _, _ := getOrder(t, urlB, id, true); code == http.StatusOK {
				ok++
			}
		}
		if ok == len(ofA) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b's standby copy holds %d of a's %d orders\nb:\n%s", ok, len(ofA), b.stderr.String())
		}
	}

	_ = a.cmd.Process.Kill()
	a.wait(time.Minute)
	// Until a's session times out (6 s) the group says a owns them, and a
	// answers nothing: b answers from its copy, marked stale.
	stale := 0
	for _, id := range ofA {
		code, h, m := getOrder(t, urlB, id, false)
		if code != http.StatusOK {
			continue // already moving (a slow machine): checked below
		}
		if h.Get(httpapi.HeaderStale) != "true" {
			if h.Get(httpapi.HeaderInstance) == "b" && strings.Contains(b.stderr.String(), `"standby":true`) {
				continue // b owns it already
			}
			t.Fatalf("order %s of the killed owner: 200 without %s: %v", id, httpapi.HeaderStale, h)
		}
		if m["stale"] != true || m["order_id"] != id || m["state"] == nil {
			t.Fatalf("stale answer for %s: %v, want the order with \"stale\": true", id, m)
		}
		if lr, ok := m["lag_records"].(float64); !ok || lr < -1 {
			t.Fatalf("stale answer for %s: lag_records %v", id, m["lag_records"])
		}
		if ms, ok := m["lag_ms"].(float64); !ok || ms < -1 {
			t.Fatalf("stale answer for %s: lag_ms %v", id, m["lag_ms"])
		}
		stale++
	}
	if stale == 0 {
		t.Fatalf("no stale answer for a's %d orders while a was down\nb:\n%s", len(ofA), b.stderr.String())
	}
	t.Logf("%d of a's %d orders answered stale by b while a was down", stale, len(ofA))

	// After the failover, b owns the partition and answers fresh.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		fresh := 0
		for _, id := range ofA {
			if code, h, m := getOrder(t, urlB, id, false); code == http.StatusOK && h.Get(httpapi.HeaderStale) == "" && m["stale"] == nil && h.Get(httpapi.HeaderInstance) == "b" {
				fresh++
			}
		}
		if fresh == len(ofA) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of a's %d orders answered fresh by b a minute after the kill\nb:\n%s", fresh, len(ofA), b.stderr.String())
		}
	}
	if !strings.Contains(b.stderr.String(), `"standby":true`) {
		t.Errorf("b did not restore a's partition from its standby copy:\n%s", b.stderr.String())
	}
	// Events for a's orders are processed by b now.
	more := n.produceOrders(t, ctx, c, "after", 10, nil)
	onceEach(t, n.waitOutcomes(t, ctx, c, append(ids, more...), running(b)), append(ids, more...))
	b.stop(t)
}
