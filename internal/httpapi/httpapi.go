// Package httpapi serves an orderflow instance's operations API over HTTP:
//
//	GET /metrics          Prometheus metrics (orderflow_*, the Kafka client's orderflow_kafka_*, Go and process)
//	GET /healthz          200 while the process serves HTTP (liveness)
//	GET /readyz           200 when every assigned partition is restored and consuming, else 503 (readiness)
//	GET /orders/{id}      the order's committed state as JSON (avro.StateRecord, with its
//	                      pending timer due first as next_timer, if any), from this
//	                      instance's store when it owns the order's partition, otherwise
//	                      forwarded to the owner; 404 unknown order, 503 while the owning
//	                      partition restores or moves. The order is looked up where the
//	                      producers' partitioner puts it (processor.Processor.Partitions)
//	                      and, if not found there, where the other one would. When the
//	                      owner cannot answer (unreachable, restoring, none yet) and an
//	                      instance holds a standby copy of the partition
//	                      (--standby-replicas), that copy answers, marked stale.
//	GET /states?older_than=D
//	                      this instance's open orders by leaf state (stuck orders):
//	                      for each open leaf state of the machine, how many orders
//	                      of its restored partitions are in it and how many entered
//	                      it more than D ago (a Go duration or days, 30d; default 0),
//	                      to the minute, from counts kept per state and minute of
//	                      entry (processor.Processor.StatesCount). Per instance, as
//	                      /metrics: sum over the instances for the whole group.
//
// Answers to /orders carry the headers X-Orderflow-Instance (the instance
// that answered from its store) and X-Orderflow-Partition; an answer from a
// standby copy also X-Orderflow-Stale: true, and its JSON the members
// "stale": true, "lag_records" (changelog offsets the copy was behind when
// last listed, -1 if not known yet) and "lag_ms" (how long ago the copy was
// last applied a record or was seen level with the changelog, whichever is
// later; -1 if neither).
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
)

// Paths of the API.
const (
	PathMetrics = "/metrics"
	PathHealth  = "/healthz"
	PathReady   = "/readyz"
	PathOrders  = "/orders/"
	PathStates  = "/states"
)

// Headers of order answers.
const (
	HeaderInstance  = "X-Orderflow-Instance"
	HeaderPartition = "X-Orderflow-Partition"
	// HeaderForwarded marks a query forwarded by another instance: it is
	// answered from the local store only, never forwarded again.
	HeaderForwarded = "X-Orderflow-Forwarded-By"
	// HeaderStale marks an answer from a standby copy ("true").
	HeaderStale = "X-Orderflow-Stale"
	// HeaderStandbyRead asks the receiving instance to answer from its
	// standby copy of the partition (set on queries forwarded to a standby
	// because the owner cannot answer).
	HeaderStandbyRead = "X-Orderflow-Standby-Read"
)

// Options configure a Server.
type Options struct {
	// Processor is the instance. Required.
	Processor *processor.Processor
	// Peers finds the owners of other partitions. Required.
	Peers *processor.Peers
	// Logger receives request failures. Default slog.Default().
	Logger *slog.Logger
	// Client forwards queries. Default: an http.Client with a 10 s timeout.
	Client *http.Client
	// Collectors are more metrics for /metrics (the binary's build info).
	Collectors []prometheus.Collector
}

// Server is the HTTP API of one instance.
type Server struct {
	o       Options
	handler http.Handler
}

// New returns a server for o.
func New(o Options) (*Server, error) {
	if o.Processor == nil || o.Peers == nil {
		return nil, errors.New("httpapi: Processor and Peers are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	s := &Server{o: o}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		o.Peers,
	)
	reg.MustRegister(o.Collectors...)
	gather := prometheus.Gatherers{o.Processor.Gatherer(), reg}
	mux := http.NewServeMux()
	mux.Handle("GET "+PathMetrics, promhttp.HandlerFor(gather, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, _ *http.Request) { text(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET "+PathReady, s.ready)
	mux.HandleFunc("GET "+PathOrders+"{id}", s.order)
	mux.HandleFunc("GET "+PathStates, s.states)
	s.handler = mux
	return s, nil
}

// Serve serves the API on ln, and runs the peers view behind /orders, until
// ctx is done; it then shuts the server down, letting requests in flight
// finish for up to 5 seconds. It returns nil then, or the error that made
// the server fail. Serve does not run the processor: its owner runs both,
// and cancels Serve's context only once the processor's Run has returned,
// so that the API answers through the processor's whole shutdown (/readyz
// turns 503 as partitions are revoked).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Requests are not cancelled with ctx: Shutdown lets them finish.
	bg, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBg()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.o.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return bg },
	}
	peersDone := make(chan error, 1)
	go func() { peersDone <- s.o.Peers.Run(bg) }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	s.o.Logger.Info("serving HTTP", "addr", ln.Addr().String(), "advertised", s.o.Peers.URL())

	var err error
	select {
	case <-ctx.Done():
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutCtx)
		<-serveErr // http.ErrServerClosed
	case err = <-serveErr:
		s.o.Logger.Error("HTTP server failed; stopping", "err", err)
		err = fmt.Errorf("HTTP server: %w", err)
	}
	stopBg()
	if perr := <-peersDone; perr != nil {
		s.o.Logger.Warn("peers view stopped", "err", perr)
	}
	return err
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	if s.o.Processor.Ready() {
		text(w, http.StatusOK, "ready")
		return
	}
	text(w, http.StatusServiceUnavailable, "not ready: partitions are being assigned or restored")
}

func (s *Server) order(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" {
		text(w, http.StatusBadRequest, "no order id: GET /orders/{order_id}")
		return
	}
	parts, err := s.o.Peers.Partitions(r.Context(), id)
	if err != nil {
		unavailable(w, err)
		return
	}
	if r.Header.Get(HeaderForwarded) != "" && r.Header.Get(HeaderPartition) != "" {
		// The sender chose the partition: its guess of the producers'
		// partitioner may differ from ours, and it asks the next
		// partition itself.
		part, err := strconv.ParseInt(r.Header.Get(HeaderPartition), 10, 32)
		if err != nil {
			text(w, http.StatusBadRequest, fmt.Sprintf("bad %s header: %v", HeaderPartition, err))
			return
		}
		parts = []int32{int32(part)}
	}
	// The order is in the first partition unless producers partition
	// otherwise than the processor thinks: an order not found there is
	// looked up in the next before the answer is "unknown order".
	for i, part := range parts {
		if s.orderIn(w, r, id, part, i == len(parts)-1) {
			return
		}
	}
}

// orderIn answers a query for order id from input partition part, from the
// local store or the partition's owner. If the order is unknown there and
// this is not the last partition to ask, it writes nothing and returns
// false.
func (s *Server) orderIn(w http.ResponseWriter, r *http.Request, id string, part int32, last bool) bool {
	p := s.o.Processor
	if r.Header.Get(HeaderStandbyRead) != "" {
		return s.standbyAnswer(w, id, part, last, errors.New("the owner cannot answer"))
	}
	st, err := p.Order(part, id)
	switch {
	case err == nil:
		s.writeState(w, id, part, st, nil)
	case errors.Is(err, processor.ErrRestoring) && r.Header.Get(HeaderForwarded) == "":
		return s.stale(w, r, id, part, last, err)
	case errors.Is(err, processor.ErrUnknownOrder):
		if !last {
			return false
		}
		w.Header().Set(HeaderInstance, p.InstanceID())
		w.Header().Set(HeaderPartition, strconv.Itoa(int(part)))
		text(w, http.StatusNotFound, fmt.Sprintf("unknown order %q", id))
	case errors.Is(err, processor.ErrRestoring), errors.Is(err, processor.ErrNotRunning):
		w.Header().Set(HeaderInstance, p.InstanceID())
		unavailable(w, err)
	case errors.Is(err, processor.ErrNotOwner):
		if by := r.Header.Get(HeaderForwarded); by != "" {
			// The sender's view of the group is older than ours: do not
			// bounce the query around; the client retries.
			unavailable(w, fmt.Errorf("forwarded by %s, but %w (the partition is moving)", by, err))
			return true
		}
		return s.forward(w, r, id, part, last)
	default:
		s.o.Logger.Error("order query failed", "order", id, "partition", part, "err", err)
		text(w, http.StatusInternalServerError, err.Error())
	}
	return true
}

// writeState writes an order's state as JSON; stale, if not nil, marks it
// as read from a standby copy.
func (s *Server) writeState(w http.ResponseWriter, id string, part int32, st *topology.State, stale *processor.Staleness) {
	p := s.o.Processor
	w.Header().Set(HeaderInstance, p.InstanceID())
	w.Header().Set(HeaderPartition, strconv.Itoa(int(part)))
	rec := avro.StateRecord{OrderID: id, State: st}
	if tm, ok := topology.NextTimer(p.Machine(), st); ok {
		rec.NextTimer = &tm
	}
	body, err := json.Marshal(rec)
	if err != nil {
		text(w, http.StatusInternalServerError, err.Error())
		return
	}
	if stale != nil {
		w.Header().Set(HeaderStale, "true")
		body = appendStaleness(body, *stale)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
}

// appendStaleness adds "stale", "lag_records" and "lag_ms" to a JSON
// object (never empty: a state record has an order_id).
func appendStaleness(obj []byte, st processor.Staleness) []byte {
	ms := int64(-1)
	if st.Age >= 0 {
		ms = st.Age.Milliseconds()
	}
	end := bytes.LastIndexByte(obj, '}')
	if end < 0 {
		return obj
	}
	out := append([]byte(nil), obj[:end]...)
	return fmt.Appendf(out, `,"stale":true,"lag_records":%d,"lag_ms":%d}`, st.Records, ms)
}

// standbyAnswer answers from this instance's standby copy of part: the
// order marked stale, a 404 if the copy does not hold it and is close to
// the changelog (or, if not last, nothing and false), or 503 with cause if
// the instance holds no copy or one still catching up.
func (s *Server) standbyAnswer(w http.ResponseWriter, id string, part int32, last bool, cause error) bool {
	p := s.o.Processor
	st, stale, err := p.StandbyOrder(part, id)
	switch {
	case err == nil:
		s.writeState(w, id, part, st, &stale)
	case errors.Is(err, processor.ErrUnknownOrder):
		if !last {
			return false
		}
		w.Header().Set(HeaderInstance, p.InstanceID())
		w.Header().Set(HeaderPartition, strconv.Itoa(int(part)))
		w.Header().Set(HeaderStale, "true")
		text(w, http.StatusNotFound, fmt.Sprintf("unknown order %q (in a standby copy, which may be behind)", id))
	case errors.Is(err, processor.ErrNoStandby), errors.Is(err, processor.ErrStandbyBehind), errors.Is(err, processor.ErrNotRunning):
		unavailable(w, fmt.Errorf("%w, and %w", cause, err))
	default:
		s.o.Logger.Error("standby order query failed", "order", id, "partition", part, "err", err)
		text(w, http.StatusInternalServerError, err.Error())
	}
	return true
}

// stale answers a query the owner of part cannot (cause): from this
// instance's standby copy, else from another instance's, else 503.
func (s *Server) stale(w http.ResponseWriter, r *http.Request, id string, part int32, last bool, cause error) bool {
	if _, _, err := s.o.Processor.StandbyOrder(part, id); !errors.Is(err, processor.ErrNoStandby) && !errors.Is(err, processor.ErrStandbyBehind) {
		return s.standbyAnswer(w, id, part, last, cause)
	}
	peers, err := s.o.Peers.Standbys(r.Context(), part)
	if err != nil || len(peers) == 0 {
		unavailable(w, cause)
		return true
	}
	for _, peer := range peers {
		resp, err := s.ask(r.Context(), peer, id, part, true)
		if err != nil {
			continue
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			continue
		}
		defer resp.Body.Close()
		return s.relay(w, resp, last)
	}
	unavailable(w, cause)
	return true
}

// ask sends a query for order id of partition part to peer; standby asks
// for an answer from its standby copy.
func (s *Server) ask(ctx context.Context, peer processor.Peer, id string, part int32, standby bool) (*http.Response, error) {
	target := peer.URL + PathOrders + url.PathEscape(id)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(HeaderForwarded, s.o.Processor.InstanceID())
	req.Header.Set(HeaderPartition, strconv.Itoa(int(part)))
	if standby {
		req.Header.Set(HeaderStandbyRead, "1")
	}
	return s.o.Client.Do(req)
}

// forward asks the owner of part and relays its answer; as orderIn, it
// writes nothing and returns false for an unknown order if not last. If
// the owner cannot answer, a standby copy may (stale).
func (s *Server) forward(w http.ResponseWriter, r *http.Request, id string, part int32, last bool) bool {
	peer, err := s.o.Peers.Owner(r.Context(), part)
	if err == nil && peer.Self {
		// The group says we own it but the assignment has not reached us
		// yet (or was revoked a moment ago).
		err = fmt.Errorf("partition %d is being assigned to this instance", part)
		s.o.Peers.Forget()
	}
	if err != nil {
		return s.stale(w, r, id, part, last, err)
	}
	resp, err := s.ask(r.Context(), peer, id, part, false)
	if err != nil {
		s.o.Peers.Forget()
		return s.stale(w, r, id, part, last, fmt.Errorf("forwarding to instance %s at %s: %w", peer.Instance, peer.URL, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		s.o.Peers.Forget()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return s.stale(w, r, id, part, last, fmt.Errorf("instance %s: %s", peer.Instance, bytes.TrimSpace(msg)))
	}
	return s.relay(w, resp, last)
}

// relay writes another instance's answer; as orderIn, it writes nothing
// and returns false for an unknown order if not last.
func (s *Server) relay(w http.ResponseWriter, resp *http.Response, last bool) bool {
	if resp.StatusCode == http.StatusNotFound && !last {
		_, _ = io.Copy(io.Discard, resp.Body)
		return false
	}
	for _, h := range []string{"Content-Type", HeaderInstance, HeaderPartition, HeaderStale, "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return true
}

func text(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

func unavailable(w http.ResponseWriter, err error) {
	w.Header().Set("Retry-After", "1")
	text(w, http.StatusServiceUnavailable, err.Error())
}

// StatesAnswer is the answer of GET /states.
type StatesAnswer struct {
	Instance string `json:"instance"`
	// AsOf is the processor's clock, OlderThan the age asked for (Go
	// duration syntax) and Cutoff AsOf minus OlderThan.
	AsOf      time.Time `json:"as_of"`
	OlderThan string    `json:"older_than"`
	Cutoff    time.Time `json:"cutoff"`
	// Partitions are the restored partitions counted.
	Partitions []int32                `json:"partitions"`
	States     []processor.StateCount `json:"states"`
}

func (s *Server) states(w http.ResponseWriter, r *http.Request) {
	var d time.Duration
	if q := r.URL.Query().Get("older_than"); q != "" {
		var err error
		d, err = topology.ParseDuration(q)
		if err != nil || d < 0 {
			text(w, http.StatusBadRequest, fmt.Sprintf("older_than=%q: want a duration >= 0 such as 90m, 24h or 7d", q))
			return
		}
	}
	p := s.o.Processor
	now, parts, counts := p.StatesCountAt(d)
	ans := StatesAnswer{
		Instance: p.InstanceID(), AsOf: now.UTC(), OlderThan: d.String(), Cutoff: now.Add(-d).UTC(),
		Partitions: parts, States: counts,
	}
	body, err := json.Marshal(ans)
	if err != nil {
		text(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(HeaderInstance, p.InstanceID())
	_, _ = w.Write(append(body, '\n'))
}
