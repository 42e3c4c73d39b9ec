package processor

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupSim runs the standby balancer as franz-go does: each member writes
// its JoinGroup metadata, the leader balances, each member parses its
// assignment.
type groupSim struct {
	t        *testing.T
	topic    string
	parts    int32
	replicas int
	gen      int32
	members  map[string]*simMember // by member id
}

type simMember struct {
	instance string
	owned    []int32
	offsets  map[int32]int64
	standby  []int32 // of the last sync
	warm     []int32 // warm-ups of the last sync
}

func (g *groupSim) balancer(m *simMember) *standbyBalancer {
	return &standbyBalancer{
		inner: kgo.CooperativeStickyBalancer(), topic: g.topic, replicas: g.replicas, warmLag: DefaultAcceptableRecoveryLag,
		member: func() memberData {
			return memberData{Instance: m.instance, Offsets: m.offsets, Standby: m.standby}
		},
		synced: func(a assignmentData) { m.standby, m.warm = a.Standby, a.WarmUp },
	}
}

// round runs one join and sync, and returns the plan (member -> partitions).
func (g *groupSim) round() map[string][]int32 {
	g.t.Helper()
	g.gen++
	var ids []string
	for id := range g.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var join []kmsg.JoinGroupResponseMember
	for _, id := range ids {
		m := g.members[id]
		cur := map[string][]int32{}
		if len(m.owned) > 0 {
			cur[g.topic] = slices.Clone(m.owned)
		}
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = id
		jm.ProtocolMetadata = g.balancer(m).JoinGroupMetadata([]string{g.topic}, cur, g.gen-1)
		join = append(join, jm)
	}
	leader := g.balancer(g.members[ids[0]])
	mb, _, err := leader.MemberBalancer(join)
	if err != nil {
		g.t.Fatal(err)
	}
	mb.(kgo.GroupMemberBalancerInfo).SetBalanceInfo(kgo.BalanceInfo{Generation: g.gen})
	into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(map[string]int32{g.topic: g.parts})
	if err != nil {
		g.t.Fatal(err)
	}
	plan := map[string][]int32{}
	for _, s := range into.IntoSyncAssignment() {
		m := g.members[s.MemberID]
		a, err := g.balancer(m).ParseSyncAssignment(s.MemberAssignment)
		if err != nil {
			g.t.Fatal(err)
		}
		plan[s.MemberID] = a[g.topic]
		m.owned = a[g.topic] // cooperative: what it keeps and gets
	}
	return plan
}

// settle runs rounds until the plan stops changing (cooperative moves
// take two).
func (g *groupSim) settle() map[string][]int32 {
	g.t.Helper()
	var last map[string][]int32
	for range 5 {
		plan := g.round()
		if fmt.Sprint(plan) == fmt.Sprint(last) {
			return plan
		}
		last = plan
	}
	return last
}

func (g *groupSim) ownerInstances() map[int32]string {
	out := map[int32]string{}
	for _, m := range g.members {
		for _, p := range m.owned {
			if prev, ok := out[p]; ok {
				g.t.Fatalf("partition %d owned by %s and %s", p, prev, m.instance)
			}
			out[p] = m.instance
		}
	}
	return out
}

func (g *groupSim) checkStandbys(want int) {
	g.t.Helper()
	owners := g.ownerInstances()
	if len(owners) != int(g.parts) {
		g.t.Fatalf("%d partitions owned, want %d: %v", len(owners), g.parts, owners)
	}
	byInstance := map[string][]int32{}
	for _, m := range g.members {
		if prev, ok := byInstance[m.instance]; ok && fmt.Sprint(prev) != fmt.Sprint(m.standby) {
			g.t.Fatalf("members of instance %s got different standbys: %v and %v", m.instance, prev, m.standby)
		}
		byInstance[m.instance] = m.standby
	}
	count := map[int32]int{}
	load := map[string]int{}
	for inst, ps := range byInstance {
		for _, p := range ps {
			if owners[p] == inst {
				g.t.Fatalf("instance %s is standby of partition %d, which it owns", inst, p)
			}
			count[p]++
			load[inst]++
		}
	}
	for p := range g.parts {
		if count[p] != want {
			g.t.Fatalf("partition %d has %d standbys, want %d (%v)", p, count[p], want, byInstance)
		}
	}
	lo, hi := int(g.parts), 0
	for _, n := range load {
		lo, hi = min(lo, n), max(hi, n)
	}
	if len(load) == len(byInstance) && hi-lo > 1 {
		g.t.Fatalf("standbys unbalanced: %v", load)
	}
}

// TestStandbyBalancerPlacesStandbys: every partition gets its standby on
// another instance than its owner, spread evenly; threads of one instance
// get the same list; owners are spread as cooperative-sticky spreads them.
func TestStandbyBalancerPlacesStandbys(t *testing.T) {
	for _, tc := range []struct {
		instances, threads, replicas, want int
	}{
		{3, 1, 1, 1}, {3, 2, 1, 1}, {3, 1, 2, 2}, {2, 1, 3, 1}, {1, 1, 1, 0},
	} {
		t.Run(fmt.Sprintf("%d instances x %d threads, %d replicas", tc.instances, tc.threads, tc.replicas), func(t *testing.T) {
			g := &groupSim{t: t, topic: "in", parts: 12, replicas: tc.replicas, members: map[string]*simMember{}}
			for i := range tc.instances {
				for th := range tc.threads {
					g.members[fmt.Sprintf("m-%c-%d", 'a'+i, th)] = &simMember{instance: string(rune('a' + i))}
				}
			}
			plan := g.settle()
			for id, ps := range plan {
				if n := len(ps); n < 12/(tc.instances*tc.threads) || n > 12/(tc.instances*tc.threads)+1 {
					t.Fatalf("member %s owns %v: unbalanced %v", id, ps, plan)
				}
			}
			g.checkStandbys(tc.want)
		})
	}
}

// TestStandbyBalancerPrefersWarmCopies: when an owner leaves, each of its
// partitions goes to the surviving instance whose store holds the most
// caught-up copy (its standby), not where the sticky plan alone puts it.
func TestStandbyBalancerPrefersWarmCopies(t *testing.T) {
	g := &groupSim{t: t, topic: "in", parts: 12, replicas: 1, members: map[string]*simMember{}}
	for _, inst := range []string{"a", "b", "c"} {
		g.members["m-"+inst] = &simMember{instance: inst, offsets: map[int32]int64{}}
	}
	g.settle()
	g.checkStandbys(1)
	// The stores: an owner and its standby hold a partition at 1000 and
	// 990; nobody else holds it.
	owners := g.ownerInstances()
	for _, m := range g.members {
		for p := range g.parts {
			switch {
			case owners[p] == m.instance:
				m.offsets[p] = 1000
			case slices.Contains(m.standby, p):
				m.offsets[p] = 990
			}
		}
	}
	standbyOf := map[int32]string{}
	for _, m := range g.members {
		for _, p := range m.standby {
			standbyOf[p] = m.instance
		}
	}
	gone := g.members["m-c"]
	delete(g.members, "m-c")
	g.settle()
	owners = g.ownerInstances()
	for _, p := range gone.owned {
		if owners[p] != standbyOf[p] {
			t.Errorf("partition %d of the departed instance went to %s, its warm standby is on %s", p, owners[p], standbyOf[p])
		}
	}
	g.checkStandbys(1)
}

// TestStandbyBalancerKeepsStandbys: a rebalance that moves nothing keeps
// every standby where it was (a standby that moved would follow the
// changelog from where another instance's copy is, or from the start).
func TestStandbyBalancerKeepsStandbys(t *testing.T) {
	g := &groupSim{t: t, topic: "in", parts: 12, replicas: 1, members: map[string]*simMember{}}
	for _, inst := range []string{"a", "b", "c"} {
		g.members["m-"+inst] = &simMember{instance: inst}
	}
	g.settle()
	before := map[string][]int32{}
	for id, m := range g.members {
		before[id] = m.standby
	}
	g.round()
	for id, m := range g.members {
		if fmt.Sprint(before[id]) != fmt.Sprint(m.standby) {
			t.Errorf("member %s: standbys %v became %v with nothing moving", id, before[id], m.standby)
		}
	}
}

// TestStandbyBalancerWarmsUpNewInstances: a new instance with an empty
// store gets no partition at first: the partitions the sticky plan would
// move to it stay with their owners, and it follows them as warm-up
// standbys; once its copies are within DefaultAcceptableRecoveryLag of the owners', the moves
// go ahead, to it.
func TestStandbyBalancerWarmsUpNewInstances(t *testing.T) {
	g := &groupSim{t: t, topic: "in", parts: 12, replicas: 1, members: map[string]*simMember{}}
	for _, inst := range []string{"a", "b"} {
		g.members["m-"+inst] = &simMember{instance: inst, offsets: map[int32]int64{}}
	}
	g.settle()
	for _, m := range g.members {
		for p := range g.parts {
			m.offsets[p] = 50_000 // owners and standbys alike: warm
		}
	}
	before := g.ownerInstances()
	c := &simMember{instance: "c", offsets: map[int32]int64{}}
	g.members["m-c"] = c
	g.settle()
	if len(c.owned) != 0 {
		t.Fatalf("the new instance got partitions %v with an empty store", c.owned)
	}
	if fmt.Sprint(g.ownerInstances()) != fmt.Sprint(before) {
		t.Fatalf("owners moved to a cold copy: %v, were %v", g.ownerInstances(), before)
	}
	if len(c.warm) != 4 {
		t.Fatalf("the new instance warms up %v, want the 4 partitions it is to own", c.warm)
	}
	for _, p := range c.warm {
		if !slices.Contains(c.standby, p) {
			t.Fatalf("warm-up %d is not among the standbys %v it follows", p, c.standby)
		}
	}
	// Not yet close enough: still nothing moves.
	for _, p := range c.warm {
		c.offsets[p] = 50_000 - DefaultAcceptableRecoveryLag - 1
	}
	g.settle()
	if len(c.owned) != 0 {
		t.Fatalf("partitions %v moved to copies more than DefaultAcceptableRecoveryLag behind", c.owned)
	}
	warm := slices.Clone(c.warm)
	for _, p := range warm {
		c.offsets[p] = 50_000 - DefaultAcceptableRecoveryLag
	}
	g.settle()
	if fmt.Sprint(c.owned) != fmt.Sprint(warm) {
		t.Fatalf("after warming up %v the new instance owns %v", warm, c.owned)
	}
	if len(c.warm) != 0 {
		t.Fatalf("warm-ups left after the moves: %v", c.warm)
	}
	g.checkStandbys(1)
}

// TestPlainProtocolMeansNoStandbys: a group that agreed on plain
// cooperative-sticky (a member runs without standbys, or an older version)
// gives no standbys: the fallback balancer's sync says so, and the instance
// stops following its copies.
func TestPlainProtocolMeansNoStandbys(t *testing.T) {
	p := &Processor{}
	sb := newStandbys(p)
	sb.syncedAssignment(assignmentData{Version: 1, Generation: 4, Standby: []int32{1, 2}})
	if fmt.Sprint(sb.want) != "[1 2]" {
		t.Fatalf("want %v after a standby sync", sb.want)
	}
	var a kmsg.ConsumerMemberAssignment
	a.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "in", Partitions: []int32{0}}}
	plain := plainBalancer{GroupBalancer: kgo.CooperativeStickyBalancer(), synced: sb.syncedAssignment}
	got, err := plain.ParseSyncAssignment(a.AppendTo(nil))
	if err != nil || fmt.Sprint(got["in"]) != "[0]" {
		t.Fatalf("plain sync: %v, %v", got, err)
	}
	if len(sb.want) != 0 {
		t.Fatalf("standbys %v after a sync under plain cooperative-sticky, want none", sb.want)
	}
	if plain.ProtocolName() != "cooperative-sticky" || !plain.IsCooperative() {
		t.Fatalf("fallback protocol %q", plain.ProtocolName())
	}
}
