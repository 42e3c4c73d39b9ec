package topology

import "math/bits"

// names is a read-only index of a machine's names (its states, or its event
// types) for Apply: a lookup in a map[string]int32 hashes the whole string,
// and Apply makes two such lookups for every event while doing little else,
// so they would weigh on it. Here a slot is picked from the length and the
// first and last eight bytes of the name, and one comparison confirms it;
// names that share a slot with another are looked up in the map.
type names struct {
	slots []nameSlot
	mul   uint64
	shift uint64           // 64 - log2(len(slots))
	m     map[string]int32 // every name
}

type nameSlot struct {
	name   string // "" when no name has the slot to itself
	idx    int32
	shared bool // two or more names have the slot: look them up in m
}

// newNames indexes m. It tries a few table sizes and multipliers for one
// that gives every name a slot of its own, and keeps the best it found.
func newNames(m map[string]int32) names {
	best := names{m: m}
	bestShared := -1
	seed := uint64(0x9E3779B97F4A7C15)
	for bits := uint64(4); bits <= 10 && bestShared != 0; bits++ {
		if 1<<bits < 2*len(m) {
			continue
		}
		for try := 0; try < 64 && bestShared != 0; try++ {
			seed = seed*6364136223846793005 + 1442695040888963407
			x := names{slots: make([]nameSlot, 1<<bits), mul: seed | 1, shift: 64 - bits, m: m}
			shared := 0
			for name, idx := range m {
				if name == "" {
					continue
				}
				sl := &x.slots[x.slot(name)]
				switch {
				case sl.shared:
				case sl.name != "":
					sl.name, sl.shared = "", true
					shared++
				default:
					sl.name, sl.idx = name, idx
				}
			}
			if bestShared < 0 || shared < bestShared {
				best, bestShared = x, shared
			}
		}
	}
	return best
}

func (x *names) slot(s string) uint64 {
	var h uint64
	if n := len(s); n >= 8 {
		h = le64(s) ^ bits.RotateLeft64(le64(s[n-8:]), 29)
	} else {
		for i := range n {
			h = h<<8 | uint64(s[i])
		}
	}
	return ((h ^ uint64(len(s))) * x.mul) >> x.shift
}

// le64 reads the first eight bytes of s.
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// index returns the index of name s.
func (x *names) index(s string) (int32, bool) {
	if len(s) > 0 && x.slots != nil {
		sl := &x.slots[x.slot(s)]
		if sl.name == s {
			return sl.idx, true
		}
		if !sl.shared {
			return -1, false
		}
	}
	i, ok := x.m[s]
	return i, ok
}
