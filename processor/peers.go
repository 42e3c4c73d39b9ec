package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// InstancesTopic is the compacted topic in which the instances of an
// application advertise their HTTP address: key = instance id, value =
// Advert as JSON.
func InstancesTopic(appID string) string { return appID + "-instances" }

// Advert is an instance's record in the instances topic.
type Advert struct {
	Instance string    `json:"instance"`
	URL      string    `json:"url"` // base URL of the instance's HTTP API, e.g. http://orderflow-0.orderflow:8080
	Since    time.Time `json:"since"`
}

// Peer is the instance that owns a partition.
type Peer struct {
	Instance string
	URL      string // "" when the instance has not advertised an address
	Self     bool   // this instance
}

// Errors of Peers.Owner.
var (
	// ErrNoOwner: no group member is assigned the partition (a rebalance
	// is moving it, or no instance runs).
	ErrNoOwner = errors.New("no instance owns the partition")
	// ErrNoAddress: the owner has not advertised an HTTP address.
	ErrNoAddress = errors.New("the owning instance advertises no HTTP address")
)

// Peers is an instance's view of the other instances of its application,
// for answering order queries anywhere (see the package httpapi):
//
//   - who owns a partition: the consumer group's current assignment, from
//     the group coordinator (DescribeGroups; a member's client id is
//     "<app-id>-<instance-id>"), cached for PeersConfig.OwnersTTL. The coordinator is the
//     authority on ownership, so a crashed instance's partitions are never
//     attributed to it once the group has moved them.
//   - where an instance serves HTTP: the compacted topic
//     InstancesTopic(app id), in which every instance writes its advertised
//     URL under its instance id when Run starts, and which every instance
//     reads from the start. Records are never deleted: an instance id's
//     latest record wins, and an address of an instance that is gone is
//     harmless because the group assigns it nothing.
//
// It also exports the number of peers it knows as a Prometheus collector
// (orderflow_peers).
//
// Make it with NewPeers and call Run once: Run closes its Kafka clients when
// it returns.
type Peers struct {
	p     *Processor
	url   string
	topic string
	log   *slog.Logger
	admCl *kgo.Client
	adm   *kadm.Client
	ttl   time.Duration // PeersConfig.OwnersTTL

	mu struct {
		sync.Mutex
		urls         map[string]string  // instance -> URL
		owners       map[int32]string   // partition -> instance
		standbys     map[int32][]string // partition -> instances holding a standby copy
		ownersAt     time.Time
		partitions   int
		partitionsAt time.Time
	}
}

// PeersConfig configures a Peers.
type PeersConfig struct {
	// AdvertiseURL is the base of this instance's HTTP API as the other
	// instances reach it: an absolute http or https URL. Required.
	AdvertiseURL string
	// OwnersTTL is how long a group assignment read from the coordinator
	// answers Owner before the coordinator is asked again: shorter finds a
	// moved partition sooner, for a DescribeGroups request per period of
	// queries. Default (0) 1 s.
	OwnersTTL time.Duration
}

// defaultOwnersTTL is the default PeersConfig.OwnersTTL.
const defaultOwnersTTL = time.Second

// NewPeers returns the peers view of instance p.
func NewPeers(p *Processor, c PeersConfig) (*Peers, error) {
	advertiseURL := c.AdvertiseURL
	u, err := url.Parse(advertiseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: PeersConfig.AdvertiseURL %q: want http://HOST:PORT (as the other instances reach this one)", ErrConfig, advertiseURL)
	}
	if c.OwnersTTL < 0 {
		return nil, fmt.Errorf("%w: PeersConfig.OwnersTTL %v is negative", ErrConfig, c.OwnersTTL)
	}
	if c.OwnersTTL == 0 {
		c.OwnersTTL = defaultOwnersTTL
	}
	cl, err := kgo.NewClient(p.connOpts()...)
	if err != nil {
		return nil, fmt.Errorf("%w: kafka client: %w", ErrConfig, err)
	}
	ps := &Peers{
		p:     p,
		url:   strings.TrimRight(advertiseURL, "/"),
		topic: InstancesTopic(p.cfg.AppID),
		log:   p.log.With("component", "peers"),
		admCl: cl,
		adm:   kadm.NewClient(cl),
		ttl:   c.OwnersTTL,
	}
	ps.mu.urls = map[string]string{p.cfg.InstanceID: ps.url}
	return ps, nil
}

// URL is this instance's advertised URL.
func (ps *Peers) URL() string { return ps.url }

// Run advertises this instance's URL and follows the other instances'
// until ctx is done. It returns nil then, or an error if the instances
// topic cannot be read at all.
func (ps *Peers) Run(ctx context.Context) error {
	defer ps.admCl.Close()
	ps.ensureTopic(ctx)
	cl, err := kgo.NewClient(append(ps.p.connOpts(),
		kgo.ConsumeTopics(ps.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(time.Second),
	)...)
	if err != nil {
		return fmt.Errorf("%w: kafka client: %w", ErrConfig, err)
	}
	defer cl.Close()

	advertised := make(chan struct{})
	go func() {
		defer close(advertised)
		ps.advertise(ctx, cl)
	}()
	defer func() { <-advertised }()

	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, part int32, err error) {
			if !errors.Is(err, context.Canceled) {
				ps.log.Warn("reading the instances topic", "topic", t, "partition", part, "err", err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			id := string(r.Key)
			ps.mu.Lock()
			defer ps.mu.Unlock()
			if r.Value == nil {
				delete(ps.mu.urls, id)
				return
			}
			var a Advert
			if err := json.Unmarshal(r.Value, &a); err != nil || a.URL == "" {
				ps.log.Warn("ignoring a bad record in the instances topic", "instance", id, "offset", r.Offset, "err", err)
				return
			}
			if id == ps.p.cfg.InstanceID && a.URL != ps.url {
				return // an older record of ours; ours is on its way
			}
			ps.mu.urls[id] = a.URL
		})
	}
}

// ensureTopic creates the instances topic (one partition, compacted) if it
// is missing. A failure is logged, not fatal: the topic may exist and the
// instance may just lack the right to create topics.
func (ps *Peers) ensureTopic(ctx context.Context) {
	rf := int16(1)
	if md, err := ps.adm.BrokerMetadata(ctx); err == nil {
		rf = int16(min(3, len(md.Brokers)))
	}
	if ps.p.cfg.ReplicationFactor > 0 {
		rf = ps.p.cfg.ReplicationFactor
	}
	compact := "compact"
	resp, err := ps.adm.CreateTopic(ctx, 1, rf, map[string]*string{"cleanup.policy": &compact}, ps.topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		ps.log.Info("created topic", "topic", ps.topic, "partitions", 1, "replication_factor", rf)
	case errors.Is(err, kerr.TopicAlreadyExists), ctx.Err() != nil:
	default:
		ps.log.Warn("cannot create the instances topic; queries for orders owned by other instances will fail unless it exists",
			"topic", ps.topic, "err", err)
	}
}

// advertise writes this instance's record, retrying until it is written or
// ctx is done.
func (ps *Peers) advertise(ctx context.Context, cl *kgo.Client) {
	val, _ := json.Marshal(Advert{Instance: ps.p.cfg.InstanceID, URL: ps.url, Since: time.Now().UTC()})
	for backoff := 500 * time.Millisecond; ; backoff = min(2*backoff, 15*time.Second) {
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: ps.topic, Key: []byte(ps.p.cfg.InstanceID), Value: val}).FirstErr()
		if err == nil {
			ps.log.Info("advertised the HTTP address", "url", ps.url, "topic", ps.topic)
			return
		}
		if ctx.Err() != nil {
			return
		}
		ps.log.Warn("advertising the HTTP address failed; retrying", "topic", ps.topic, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// Partitions returns the input partitions an order's events may be in, the
// likeliest first (Processor.Partitions with the events topic's partition
// count, read from the cluster and cached for a minute).
func (ps *Peers) Partitions(ctx context.Context, orderID string) ([]int32, error) {
	ps.mu.Lock()
	n, at := ps.mu.partitions, ps.mu.partitionsAt
	ps.mu.Unlock()
	if n == 0 || time.Since(at) > time.Minute {
		td, err := ps.adm.ListTopics(ctx, ps.p.cfg.Topics.Events)
		if err == nil {
			err = td.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("reading the partition count of %s: %w", ps.p.cfg.Topics.Events, err)
		}
		n = len(td[ps.p.cfg.Topics.Events].Partitions)
		if n == 0 {
			return nil, fmt.Errorf("topic %s has no partitions", ps.p.cfg.Topics.Events)
		}
		ps.mu.Lock()
		ps.mu.partitions, ps.mu.partitionsAt = n, time.Now()
		ps.mu.Unlock()
	}
	return ps.p.Partitions(orderID, n), nil
}

// Owner returns the instance the group assigned input partition part to.
// Errors: ErrNoOwner, ErrNoAddress (with the Peer's Instance set), or a
// failure to ask the group coordinator.
func (ps *Peers) Owner(ctx context.Context, part int32) (Peer, error) {
	ps.mu.Lock()
	fresh := ps.mu.owners != nil && time.Since(ps.mu.ownersAt) < ps.ttl
	ps.mu.Unlock()
	if !fresh {
		if err := ps.refresh(ctx); err != nil {
			return Peer{}, err
		}
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	inst, ok := ps.mu.owners[part]
	if !ok {
		return Peer{}, fmt.Errorf("%w: partition %d of %s", ErrNoOwner, part, ps.p.cfg.Topics.Events)
	}
	peer := Peer{Instance: inst, URL: ps.mu.urls[inst], Self: inst == ps.p.cfg.InstanceID}
	if peer.URL == "" {
		return peer, fmt.Errorf("%w: instance %s (partition %d)", ErrNoAddress, inst, part)
	}
	return peer, nil
}

// refresh reads the group's assignment from the coordinator.
func (ps *Peers) refresh(ctx context.Context) error {
	owners, standbys, err := ps.describeOwners(ctx)
	if err != nil {
		return err
	}
	ps.mu.Lock()
	ps.mu.owners, ps.mu.standbys, ps.mu.ownersAt = owners, standbys, time.Now()
	ps.mu.Unlock()
	return nil
}

// Standbys returns the other instances that hold a standby copy of input
// partition part (Config.StandbyReplicas) and advertise an address, from
// the group's assignment (cached as Owner's).
func (ps *Peers) Standbys(ctx context.Context, part int32) ([]Peer, error) {
	ps.mu.Lock()
	fresh := ps.mu.owners != nil && time.Since(ps.mu.ownersAt) < ps.ttl
	ps.mu.Unlock()
	if !fresh {
		if err := ps.refresh(ctx); err != nil {
			return nil, err
		}
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var out []Peer
	for _, inst := range ps.mu.standbys[part] {
		if u := ps.mu.urls[inst]; u != "" && inst != ps.p.cfg.InstanceID {
			out = append(out, Peer{Instance: inst, URL: u})
		}
	}
	return out, nil
}

// Forget drops the cached group assignment, so the next Owner asks the
// coordinator (after an owner answered that it does not own a partition).
func (ps *Peers) Forget() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.mu.owners = nil
}

// describeOwners returns the owner of each input partition and the
// instances holding standby copies of it (from the standby protocol's
// assignment data, balancer.go), as the group coordinator has them.
func (ps *Peers) describeOwners(ctx context.Context) (map[int32]string, map[int32][]string, error) {
	group := ps.p.cfg.AppID
	gs, err := ps.adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, nil, fmt.Errorf("describing group %s: %w", group, err)
	}
	g, ok := gs[group]
	if !ok {
		return nil, nil, fmt.Errorf("describing group %s: not in the response", group)
	}
	if g.Err != nil {
		return nil, nil, fmt.Errorf("describing group %s: %w", group, g.Err)
	}
	owners := map[int32]string{}
	standbys := map[int32][]string{}
	for _, m := range g.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		inst := instanceOfClientID(group, m.ClientID)
		var ad assignmentData
		if g.Protocol == StandbyProtocol && json.Unmarshal(a.UserData, &ad) == nil {
			for _, part := range ad.Standby {
				if !slices.Contains(standbys[part], inst) {
					standbys[part] = append(standbys[part], inst)
				}
			}
		}
		for _, t := range a.Topics {
			if t.Topic != ps.p.cfg.Topics.Events {
				continue
			}
			for _, part := range t.Partitions {
				owners[part] = inst
			}
		}
	}
	return owners, standbys, nil
}

var descPeers = desc("peers", "Instances with an advertised HTTP address (this one included).")

// Describe implements prometheus.Collector.
func (ps *Peers) Describe(ch chan<- *prometheus.Desc) { ch <- descPeers }

// Collect implements prometheus.Collector: the number of known peers.
func (ps *Peers) Collect(ch chan<- prometheus.Metric) {
	ps.mu.Lock()
	n := len(ps.mu.urls)
	ps.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, float64(n))
}
