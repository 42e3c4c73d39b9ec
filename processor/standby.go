package processor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/statestore"
	"github.com/orderflow/orderflow/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Errors of StandbyOrder.
var (
	// ErrNoStandby: this instance holds no standby copy of the partition.
	ErrNoStandby = errors.New("no standby copy of the partition on this instance")
	// ErrStandbyBehind: the standby copy does not hold the order, and is
	// not known to be close enough to the changelog for that to mean the
	// order is unknown.
	ErrStandbyBehind = errors.New("the standby copy does not hold the order and is still catching up")
)

// standbys keeps the instance's standby copies (Config.StandbyReplicas):
// the partitions the group leader's balancer (balancer.go) gives the
// instance as standby are followed by one statestore.Tailer, off the
// processing threads, and let go of when the instance comes to own one.
type standbys struct {
	p *Processor

	mu     sync.Mutex
	gen    int32   // generation of want
	want   []int32 // the standby partitions of the last sync
	synced bool    // a sync has set want
	// syncedAt is when want last changed: a standby partition the sync
	// took away is usually the instance's to own a moment later, and its
	// restore takes it over from the tailer (release); reconcile drops
	// it only if it is still unowned a while later.
	syncedAt time.Time
	warm     []int32 // the warm-up partitions of the last sync (also in want)
	tailer   *statestore.Tailer
	kick     chan struct{}
	// client is the first thread's client while its session runs: a
	// rejoin through it (ForceRebalance) makes the leader balance again
	// once a warm-up copy has caught up (a probing rebalance).
	client    *kgo.Client
	lastProbe time.Time
	changes   sync.Mutex // serialises adding and removing partitions of tailer

	promotions atomic.Int64 // standby copies that became owned partitions
}

func newStandbys(p *Processor) *standbys {
	return &standbys{p: p, kick: make(chan struct{}, 1)}
}

// balancers are the group balancers of the instance's threads: the
// standby protocol first, cooperative-sticky as the fallback a group with
// members without standbys agrees on.
func (s *standbys) balancers() []kgo.GroupBalancer {
	return []kgo.GroupBalancer{
		&standbyBalancer{
			inner: kgo.CooperativeStickyBalancer(), topic: s.p.cfg.Topics.Events, replicas: s.p.cfg.StandbyReplicas,
			warmLag: s.p.cfg.AcceptableRecoveryLag,
			member:  s.member, synced: s.syncedAssignment,
		},
		plainBalancer{GroupBalancer: kgo.CooperativeStickyBalancer(), synced: s.syncedAssignment},
	}
}

// member is this member's data for a JoinGroup: its instance, how far its
// store has each partition, and its standby partitions.
func (s *standbys) member() memberData {
	md := memberData{Instance: s.p.cfg.InstanceID, Offsets: map[int32]int64{}}
	n := 0
	if s.p.layout != nil {
		n = s.p.layout.partitions
	}
	s.p.m.store.with(func(st *statestore.Store) {
		for part := range int32(n) {
			if off, ok, err := st.ChangelogOffset(part); err == nil && ok {
				md.Offsets[part] = off
			}
		}
	})
	if t := s.tailerNow(); t != nil {
		md.Standby = t.Partitions()
	}
	return md
}

// synced takes the standby partitions of a thread's sync. Every thread of
// the instance gets the same list in a generation; the newest wins.
func (s *standbys) syncedAssignment(ad assignmentData) {
	s.mu.Lock()
	if len(ad.WarmUp) > 0 {
		s.p.log.Info("warming up partitions before owning them", "partitions", ad.WarmUp, "generation", ad.Generation)
	}
	if !s.synced || ad.Generation >= s.gen || ad.Version == 0 {
		if !slices.Equal(s.want, ad.Standby) {
			s.syncedAt = time.Now()
		}
		s.gen, s.want, s.synced = ad.Generation, slices.Clone(ad.Standby), true
		s.warm = slices.Clone(ad.WarmUp)
	}
	s.mu.Unlock()
	s.poke()
}

func (s *standbys) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *standbys) tailerNow() *statestore.Tailer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tailer
}

// run follows the standby partitions with a tailer until ctx is done.
func (s *standbys) run(ctx context.Context, store *statestore.Store) error {
	t, err := store.NewTailer(statestore.TailOptions{
		Topic:      s.p.changelog,
		ClientOpts: s.p.connOptsAs(s.p.cfg.AppID + "-" + s.p.cfg.InstanceID + "/standby"),
	})
	if err != nil {
		return fmt.Errorf("%w: standby tailer: %w", ErrFatal, err)
	}
	s.mu.Lock()
	s.tailer = t
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.tailer = nil
		s.mu.Unlock()
	}()
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	tailed := make(chan error, 1)
	go func() { tailed <- t.Run(tctx) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			stop()
			<-tailed
			return nil
		case err := <-tailed:
			if ctx.Err() == nil && err != nil {
				return fmt.Errorf("%w: following the standby partitions: %w", ErrFatal, err)
			}
			return nil
		case <-s.kick:
		case <-tick.C:
		}
		s.reconcile(ctx, t)
		s.probe(t)
	}
}

// probeInterval is the shortest time between two probing rebalances.
const probeInterval = 10 * time.Second

// setClient records the first thread's client (nil: its session ended).
func (s *standbys) setClient(cl *kgo.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.client = cl
}

// probe makes the group balance again (at most every probeInterval) once a
// warm-up copy is within Config.AcceptableRecoveryLag of the changelog: its members rejoin
// with their stores' offsets, and the leader moves the partitions whose
// copies are warm enough.
func (s *standbys) probe(t *statestore.Tailer) {
	s.mu.Lock()
	warm, cl, last := slices.Clone(s.warm), s.client, s.lastProbe
	s.mu.Unlock()
	if len(warm) == 0 || cl == nil || time.Since(last) < probeInterval {
		return
	}
	var ready []int32
	for _, part := range warm {
		if l, ok := t.Lag(part); ok && l.Records >= 0 && l.Records <= s.p.cfg.AcceptableRecoveryLag {
			ready = append(ready, part)
		}
	}
	if len(ready) == 0 {
		return
	}
	s.mu.Lock()
	s.lastProbe = time.Now()
	s.mu.Unlock()
	s.p.log.Info("warm-up copies caught up; rejoining the group so that they move here", "partitions", ready)
	cl.ForceRebalance()
}

// dropAfter is how long a standby partition the group took away is still
// followed (see standbys.syncedAt).
const dropAfter = 2 * time.Second

// reconcile makes the tailer follow the standby partitions the instance
// does not own, and only those. A followed partition the instance comes to
// own is left to its restore, which takes it over (release).
func (s *standbys) reconcile(ctx context.Context, t *statestore.Tailer) {
	s.mu.Lock()
	want := slices.Clone(s.want)
	settled := time.Since(s.syncedAt) >= dropAfter
	s.mu.Unlock()
	for _, part := range t.Partitions() {
		if settled && !slices.Contains(want, part) && !s.p.owns(part) {
			s.changes.Lock()
			t.Remove(part)
			s.changes.Unlock()
			s.p.log.Info("standby partition dropped", "partition", part)
		}
	}
	following := t.Partitions()
	for _, part := range want {
		if slices.Contains(following, part) || s.p.owns(part) {
			continue
		}
		// A batch of a partition this instance owned a moment ago may
		// still be on its way to the store: let it land first.
		if s.p.awaitStoreWrites(ctx) != nil {
			return
		}
		s.changes.Lock()
		var err error
		if !s.p.owns(part) {
			err = t.Add(ctx, part)
		}
		s.changes.Unlock()
		if err != nil {
			if ctx.Err() == nil {
				s.p.log.Warn("cannot follow a standby partition; retrying", "partition", part, "err", err)
				s.p.storeFailed(err)
			}
			continue
		}
		if !s.p.owns(part) {
			s.p.log.Info("standby partition added", "partition", part)
		}
	}
}

// release stops following part before this instance restores it as its
// owner (the restore then reads only what the copy lacks), and reports
// whether the instance held it as standby.
func (s *standbys) release(part int32) bool {
	if s == nil {
		return false
	}
	t := s.tailerNow()
	if t == nil {
		return false
	}
	s.changes.Lock()
	defer s.changes.Unlock()
	if !slices.Contains(t.Partitions(), part) {
		return false
	}
	t.Remove(part)
	s.promotions.Add(1)
	return true
}

// owns reports whether the instance owns input partition part (restored or
// not).
func (p *Processor) owns(part int32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.mu.parts[part]
	return ok
}

// Staleness says how current a standby copy is.
type Staleness struct {
	// Records is how many changelog offsets the copy was behind the
	// changelog's last stable offset when last listed (-1: not known yet).
	Records int64
	// Age is how long ago the copy last applied a record or was last
	// known level with the changelog, whichever is later; -1 if neither.
	Age time.Duration
}

// Standbys returns the partitions this instance holds as standby copies
// now, in order.
func (p *Processor) Standbys() []int32 {
	if p.sb == nil {
		return nil
	}
	if t := p.sb.tailerNow(); t != nil {
		return t.Partitions()
	}
	return nil
}

// StandbyOrder returns the state of an order of input partition part from
// this instance's standby copy of the partition, and how stale the copy
// is. Errors: ErrNoStandby, ErrUnknownOrder, ErrNotRunning, or a store or
// decoding failure. The copy holds committed states only, as of its lag.
// An order the copy does not hold is ErrUnknownOrder only if the copy is
// known to be within Config.AcceptableRecoveryLag of the changelog; a copy
// still catching up (one just placed, say) answers ErrStandbyBehind
// instead, as the order may be in what it has not read yet.
func (p *Processor) StandbyOrder(part int32, orderID string) (*topology.State, Staleness, error) {
	var t *statestore.Tailer
	if p.sb != nil {
		t = p.sb.tailerNow()
	}
	if t == nil {
		return nil, Staleness{}, fmt.Errorf("%w: partition %d", ErrNoStandby, part)
	}
	lag, ok := t.Lag(part)
	if !ok {
		return nil, Staleness{}, fmt.Errorf("%w: partition %d", ErrNoStandby, part)
	}
	st, err := p.storedOrder(part, orderID)
	if errors.Is(err, ErrUnknownOrder) && (lag.Records < 0 || lag.Records > p.cfg.AcceptableRecoveryLag) {
		return nil, Staleness{}, fmt.Errorf("%w: partition %d, %d offsets behind", ErrStandbyBehind, part, lag.Records)
	}
	if err != nil {
		return nil, Staleness{}, err
	}
	stale := Staleness{Records: lag.Records, Age: -1}
	last := lag.Current
	if lag.Applied.After(last) {
		last = lag.Applied
	}
	if !last.IsZero() {
		stale.Age = time.Since(last)
	}
	return st, stale, nil
}
