package processor

import (
	"hash/maphash"
)

// knownOrders is the set of orders that may exist in one owned partition's
// store, by 64-bit hash of the order id. An order not in the set does not
// exist, so the loop skips the store read (a Pebble Get that finds nothing
// still searches every memtable and consults the bloom filters of the
// files that may hold the key, the largest part of a new order's first
// event). An order in the set may not exist (a hash
// collision, or an order deleted by retention, which stays in the set); the
// loop then reads the store as before. The set is built from the store when
// the partition's restore ends, and the owning thread adds every order it
// creates. About 10-20 bytes per order.
type knownOrders struct {
	seed maphash.Seed
	m    map[uint64]struct{}
}

func newKnownOrders(n int) *knownOrders {
	return &knownOrders{seed: maphash.MakeSeed(), m: make(map[uint64]struct{}, n)}
}

// add records that order id may exist.
func (k *knownOrders) add(id string) {
	if k == nil {
		return
	}
	k.m[maphash.String(k.seed, id)] = struct{}{}
}

// addBytes is add for an id held in bytes.
func (k *knownOrders) addBytes(id []byte) {
	k.m[maphash.Bytes(k.seed, id)] = struct{}{}
}

// mayExist reports whether order id may exist; false means it does not.
// Without a set (nil), every order may exist.
func (k *knownOrders) mayExist(id string) bool {
	if k == nil {
		return true
	}
	_, ok := k.m[maphash.String(k.seed, id)]
	return ok
}

// loadKnownOrders reads the IDs of every order of partition part from the
// store.
func (p *Processor) loadKnownOrders(part int32) (*knownOrders, error) {
	k := newKnownOrders(0)
	err := p.store.EachOrder(part, k.addBytes)
	return k, err
}
