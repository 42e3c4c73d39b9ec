package processor

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// StandbyProtocol is the name of the group protocol (the balancer) of
// instances run with standby replicas.
const StandbyProtocol = "orderflow-standby"

// memberData is what a member of the standby protocol tells the group
// leader in its JoinGroup metadata (ConsumerMemberMetadata.UserData), as
// Kafka Streams members report their task offsets: its instance, the next
// changelog offset its store holds for each partition (how warm its copy
// is), and the partitions its instance holds as standby now.
type memberData struct {
	Version  int             `json:"v"`
	Instance string          `json:"instance"`
	Offsets  map[int32]int64 `json:"offsets,omitempty"`
	Standby  []int32         `json:"standby,omitempty"`
	// Sticky is the wrapped cooperative-sticky balancer's own UserData.
	Sticky []byte `json:"sticky,omitempty"`
}

// assignmentData is what the leader adds to each member's assignment
// (ConsumerMemberAssignment.UserData): the partitions the member's
// instance holds as standby, as of group generation Generation.
type assignmentData struct {
	Version    int     `json:"v"`
	Generation int32   `json:"gen"`
	Standby    []int32 `json:"standby,omitempty"`
	// WarmUp are the partitions the instance is to own once its copy
	// has caught up (also in Standby): it follows them, and rejoins the
	// group when they are within Config.AcceptableRecoveryLag of the
	// changelog.
	WarmUp []int32 `json:"warmup,omitempty"`
}

// standbyBalancer is the group balancer of instances with standby
// replicas: franz-go's cooperative-sticky balancer places the owners, then
// (1) a partition no member owns (its owner left or died) goes, among the
// members the sticky plan gives such partitions, to the one whose instance
// holds the most caught-up copy of it, (2) a partition the plan moves from
// a live owner to a copy further behind than warmLag stays with its owner
// while the destination warms up (warmUp), and (3) each partition gets up
// to replicas standby instances, never the instance that owns it, written
// in the assignments' UserData. Every thread of an instance is a member; a
// standby belongs to the instance (its store), so all its members get the
// same standby list.
type standbyBalancer struct {
	inner    kgo.GroupBalancer // cooperative-sticky
	topic    string            // the input topic, whose partitions get standbys
	replicas int
	// warmLag is Config.AcceptableRecoveryLag.
	warmLag int64
	// member returns this member's data for a JoinGroup.
	member func() memberData
	// synced takes the standby partitions of a sync (nil standby: none,
	// also from a sync under another protocol).
	synced func(assignmentData)
}

func (b *standbyBalancer) ProtocolName() string { return StandbyProtocol }
func (b *standbyBalancer) IsCooperative() bool  { return true }

func (b *standbyBalancer) JoinGroupMetadata(topics []string, current map[string][]int32, gen int32) []byte {
	raw := b.inner.JoinGroupMetadata(topics, current, gen)
	var meta kmsg.ConsumerMemberMetadata
	if err := meta.ReadFrom(raw); err != nil {
		return raw // cannot happen: franz-go wrote it
	}
	md := b.member()
	md.Version, md.Sticky = 1, meta.UserData
	meta.UserData, _ = json.Marshal(md)
	return meta.AppendTo(nil)
}

func (b *standbyBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(assignment); err != nil {
		return nil, fmt.Errorf("sync assignment parse failed: %w", err)
	}
	var ad assignmentData
	if len(a.UserData) > 0 {
		if err := json.Unmarshal(a.UserData, &ad); err != nil {
			return nil, fmt.Errorf("standby assignment parse failed: %w", err)
		}
	}
	b.synced(ad)
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b *standbyBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	data := make(map[string]memberData, len(members))
	owned := map[int32]string{} // partition -> member
	inner := make([]kmsg.JoinGroupResponseMember, len(members))
	for i, m := range members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.ProtocolMetadata); err != nil {
			return nil, nil, fmt.Errorf("member %s: unable to read member metadata: %w", m.MemberID, err)
		}
		var md memberData
		if err := json.Unmarshal(meta.UserData, &md); err != nil {
			return nil, nil, fmt.Errorf("member %s: unable to read standby metadata: %w", m.MemberID, err)
		}
		data[m.MemberID] = md
		for _, t := range meta.OwnedPartitions {
			if t.Topic == b.topic {
				for _, p := range t.Partitions {
					owned[p] = m.MemberID
				}
			}
		}
		meta.UserData = md.Sticky
		inner[i] = m
		inner[i].ProtocolMetadata = meta.AppendTo(nil)
	}
	mb, topics, err := b.inner.MemberBalancer(inner)
	if err != nil {
		return nil, nil, err
	}
	return &standbyMemberBalancer{b: b, inner: mb, members: inner, data: data, owned: owned}, topics, nil
}

// standbyMemberBalancer balances one generation (see standbyBalancer).
type standbyMemberBalancer struct {
	b       *standbyBalancer
	inner   kgo.GroupMemberBalancer
	members []kmsg.JoinGroupResponseMember // as the wrapped balancer reads them
	data    map[string]memberData          // by member ID
	owned   map[int32]string               // input partition -> member that owns it now
	gen     int32
}

func (mb *standbyMemberBalancer) SetBalanceInfo(info kgo.BalanceInfo) {
	mb.gen = info.Generation
	if i, ok := mb.inner.(kgo.GroupMemberBalancerInfo); ok {
		i.SetBalanceInfo(info)
	}
}

func (mb *standbyMemberBalancer) Balance(topics map[string]int32) kgo.IntoSyncAssignment {
	a, _ := mb.BalanceOrError(topics)
	return a
}

func (mb *standbyMemberBalancer) BalanceOrError(topics map[string]int32) (kgo.IntoSyncAssignment, error) {
	into, err := balance(mb.inner, topics)
	if err != nil {
		return nil, err
	}
	sync := into.IntoSyncAssignment()
	plan := make(map[string]*kmsg.ConsumerMemberAssignment, len(sync))
	for _, s := range sync {
		a := new(kmsg.ConsumerMemberAssignment)
		if err := a.ReadFrom(s.MemberAssignment); err != nil {
			return nil, fmt.Errorf("reading the sticky plan of member %s: %w", s.MemberID, err)
		}
		plan[s.MemberID] = a
	}
	warm := mb.warmUp(topics, plan)
	owners := placeOwners(mb.b.topic, plan, mb.owned, mb.data)
	standby := placeStandbys(topics[mb.b.topic], mb.b.replicas, owners, mb.owned, mb.data)
	for inst, ps := range warm {
		for _, p := range ps {
			if !slices.Contains(standby[inst], p) {
				standby[inst] = append(standby[inst], p)
			}
		}
		slices.Sort(standby[inst])
	}
	out := make(syncAssignments, 0, len(sync))
	for _, s := range sync {
		a := plan[s.MemberID]
		inst := mb.data[s.MemberID].Instance
		a.UserData, _ = json.Marshal(assignmentData{Version: 1, Generation: mb.gen, Standby: standby[inst], WarmUp: warm[inst]})
		s.MemberAssignment = a.AppendTo(nil)
		out = append(out, s)
	}
	return out, nil
}

// warmUp keeps on its owner each partition the plan takes from it (a
// cooperative move: revoked now, assigned next round) whose destination's
// instance holds no copy within AcceptableRecoveryLag of the owner's, and returns those
// partitions by destination instance: that instance follows them as
// warm-up standbys and rejoins once caught up, and the next balance lets
// the move go ahead (KIP-441's warm-up replicas). The destination is where
// the sticky balancer without the cooperative adjustment puts the
// partition.
func (mb *standbyMemberBalancer) warmUp(topics map[string]int32, plan map[string]*kmsg.ConsumerMemberAssignment) map[string][]int32 {
	topic := mb.b.topic
	type move struct {
		p     int32
		owner string // member
	}
	var moves []move
	for p, owner := range mb.owned {
		kept := false
		if a := plan[owner]; a != nil {
			for _, t := range a.Topics {
				kept = kept || (t.Topic == topic && slices.Contains(t.Partitions, p))
			}
		}
		if !kept {
			moves = append(moves, move{p, owner})
		}
	}
	if len(moves) == 0 {
		return nil
	}
	eager, _, err := kgo.StickyBalancer().MemberBalancer(mb.members)
	if err != nil {
		return nil
	}
	into, err := balance(eager, topics)
	if err != nil {
		return nil
	}
	dest := map[int32]string{}
	for _, s := range into.IntoSyncAssignment() {
		var a kmsg.ConsumerMemberAssignment
		if a.ReadFrom(s.MemberAssignment) != nil {
			return nil
		}
		for _, t := range a.Topics {
			if t.Topic == topic {
				for _, p := range t.Partitions {
					dest[p] = s.MemberID
				}
			}
		}
	}
	warm := map[string][]int32{}
	slices.SortFunc(moves, func(x, y move) int { return cmp.Compare(x.p, y.p) })
	for _, mv := range moves {
		to, ok := dest[mv.p]
		if !ok || mb.data[to].Instance == mb.data[mv.owner].Instance {
			continue
		}
		ownerOff, ok := mb.data[mv.owner].Offsets[mv.p]
		if !ok {
			continue // the owner's own copy is not known: nothing to wait for
		}
		toOff, ok := mb.data[to].Offsets[mv.p]
		if ok && toOff >= ownerOff-mb.b.warmLag {
			continue // warm enough: the move goes ahead
		}
		a := plan[mv.owner]
		if a == nil {
			continue
		}
		i := slices.IndexFunc(a.Topics, func(t kmsg.ConsumerMemberAssignmentTopic) bool { return t.Topic == topic })
		if i < 0 {
			a.Topics = append(a.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: topic})
			i = len(a.Topics) - 1
		}
		a.Topics[i].Partitions = append(a.Topics[i].Partitions, mv.p)
		slices.Sort(a.Topics[i].Partitions)
		inst := mb.data[to].Instance
		warm[inst] = append(warm[inst], mv.p)
	}
	return warm
}

// balance runs a member balancer, through BalanceOrError where it has one
// (franz-go's ConsumerBalancer panics in Balance).
func balance(mb kgo.GroupMemberBalancer, topics map[string]int32) (kgo.IntoSyncAssignment, error) {
	if e, ok := mb.(kgo.GroupMemberBalancerOrError); ok {
		return e.BalanceOrError(topics)
	}
	return mb.Balance(topics), nil
}

type syncAssignments []kmsg.SyncGroupRequestGroupAssignment

func (s syncAssignments) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment { return s }

// placeOwners gives each partition of topic that no member owns now (its
// owner left or died) to the most caught-up copy among the members the
// sticky plan gives such partitions, keeping how many each gets (the plan's
// balance). A partition nobody owns has nobody to revoke it, so moving it
// between those members keeps the cooperative rules. It returns the planned
// owner instance of every partition the plan assigns.
func placeOwners(topic string, plan map[string]*kmsg.ConsumerMemberAssignment, owned map[int32]string, data map[string]memberData) map[int32]string {
	slots := map[string]int{} // member -> free partitions it gets
	var free []int32
	for member, a := range plan {
		for i := range a.Topics {
			t := &a.Topics[i]
			if t.Topic != topic {
				continue
			}
			kept := t.Partitions[:0]
			for _, p := range t.Partitions {
				if _, ok := owned[p]; ok {
					kept = append(kept, p)
					continue
				}
				free = append(free, p)
				slots[member]++
			}
			t.Partitions = kept
		}
	}
	// The warmest copies first: every (partition, member) pair by the
	// member's stored offset, highest first; ties keep a stable order.
	type pair struct {
		p      int32
		member string
		offset int64
	}
	var pairs []pair
	for _, p := range free {
		for member := range slots {
			off, ok := data[member].Offsets[p]
			if !ok {
				off = -1
			}
			pairs = append(pairs, pair{p, member, off})
		}
	}
	slices.SortFunc(pairs, func(x, y pair) int {
		return cmp.Or(cmp.Compare(y.offset, x.offset), cmp.Compare(x.p, y.p), cmp.Compare(x.member, y.member))
	})
	given := map[int32]bool{}
	add := func(member string, p int32) {
		a := plan[member]
		for i := range a.Topics {
			if a.Topics[i].Topic == topic {
				a.Topics[i].Partitions = append(a.Topics[i].Partitions, p)
				slices.Sort(a.Topics[i].Partitions)
				return
			}
		}
		a.Topics = append(a.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: topic, Partitions: []int32{p}})
	}
	for _, pr := range pairs {
		if given[pr.p] || slots[pr.member] == 0 {
			continue
		}
		given[pr.p] = true
		slots[pr.member]--
		add(pr.member, pr.p)
	}
	owners := map[int32]string{}
	for member, a := range plan {
		for _, t := range a.Topics {
			if t.Topic == topic {
				for _, p := range t.Partitions {
					owners[p] = data[member].Instance
				}
			}
		}
	}
	return owners
}

// placeStandbys chooses up to replicas standby instances for each of the
// partitions of the input topic, never the instance that owns it (planned,
// or still owning it while it moves). First every standby stays where it
// is if its instance may hold it and is below its fair share (no churn: a
// moved standby starts again from whatever copy its new store holds); then
// the places left go, taking partitions one owner at a time in turn, to the
// candidate with the fewest standbys, the most caught-up copy, the first
// name; last, standbys move from the most loaded instance to the least
// while the two differ by more than one. It returns the standby partitions
// of each instance, sorted.
func placeStandbys(partitions int32, replicas int, owners map[int32]string, owned map[int32]string, data map[string]memberData) map[string][]int32 {
	if replicas <= 0 || partitions <= 0 {
		return nil
	}
	type instance struct {
		name    string
		offsets map[int32]int64
		prior   map[int32]bool
		load    int
	}
	byName := map[string]*instance{}
	for _, md := range data {
		in := byName[md.Instance]
		if in == nil {
			in = &instance{name: md.Instance, offsets: md.Offsets, prior: map[int32]bool{}}
			byName[md.Instance] = in
		}
		for _, p := range md.Standby {
			in.prior[p] = true
		}
	}
	instances := make([]*instance, 0, len(byName))
	for _, in := range byName {
		instances = append(instances, in)
	}
	slices.SortFunc(instances, func(x, y *instance) int { return cmp.Compare(x.name, y.name) })
	perPartition := min(replicas, len(instances)-1)
	if perPartition <= 0 {
		return nil
	}
	fair := (int(partitions)*perPartition + len(instances) - 1) / len(instances)
	offset := func(in *instance, p int32) int64 {
		if off, ok := in.offsets[p]; ok {
			return off
		}
		return -1
	}
	chosen := make([][]*instance, partitions)
	may := func(in *instance, p int32) bool {
		if in.name == owners[p] || slices.Contains(chosen[p], in) {
			return false
		}
		if m, ok := owned[p]; ok && data[m].Instance == in.name {
			return false
		}
		return true
	}
	choose := func(in *instance, p int32) {
		chosen[p] = append(chosen[p], in)
		in.load++
	}
	for p := range partitions {
		for _, in := range instances {
			if len(chosen[p]) < perPartition && in.prior[p] && in.load < fair && may(in, p) {
				choose(in, p)
			}
		}
	}
	// One partition of each owner in turn: taking an owner's partitions
	// in a row would give them all to the same few instances.
	byOwner := map[string][]int32{}
	var ownerNames []string
	for p := range partitions {
		o := owners[p]
		if _, ok := byOwner[o]; !ok {
			ownerNames = append(ownerNames, o)
		}
		byOwner[o] = append(byOwner[o], p)
	}
	slices.Sort(ownerNames)
	var order []int32
	for i := 0; len(order) < int(partitions); i++ {
		for _, o := range ownerNames {
			if i < len(byOwner[o]) {
				order = append(order, byOwner[o][i])
			}
		}
	}
	for _, p := range order {
		for len(chosen[p]) < perPartition {
			var best *instance
			for _, in := range instances {
				if !may(in, p) {
					continue
				}
				if best == nil || in.load < best.load || (in.load == best.load && offset(in, p) > offset(best, p)) {
					best = in
				}
			}
			if best == nil {
				break
			}
			choose(best, p)
		}
	}
	// Kept standbys can leave the instances unbalanced (a new instance
	// whose owned partitions the others' kept standbys do not cover):
	// move standbys from the most loaded instance to the least while one
	// may take one.
	for range int(partitions) * perPartition {
		lo := slices.MinFunc(instances, func(x, y *instance) int { return cmp.Compare(x.load, y.load) })
		hi := slices.MaxFunc(instances, func(x, y *instance) int { return cmp.Compare(x.load, y.load) })
		if hi.load-lo.load <= 1 {
			break
		}
		moved := false
		for p := range partitions {
			if i := slices.Index(chosen[p], hi); i >= 0 && may(lo, p) {
				chosen[p][i] = lo
				hi.load--
				lo.load++
				moved = true
				break
			}
		}
		if !moved {
			break
		}
	}
	out := map[string][]int32{}
	for p, ins := range chosen {
		for _, in := range ins {
			out[in.name] = append(out[in.name], int32(p))
		}
	}
	return out
}

// plainBalancer is cooperative-sticky, offered after the standby protocol
// so that a group with members run without standbys (or by an older
// version) still agrees on a protocol; a sync under it means no standbys.
type plainBalancer struct {
	kgo.GroupBalancer
	synced func(assignmentData)
}

func (b plainBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	b.synced(assignmentData{})
	return b.GroupBalancer.ParseSyncAssignment(assignment)
}
