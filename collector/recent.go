package collector

import (
	"hash/maphash"
	"math/bits"
)

// The same event may arrive twice and events may arrive out of order (the
// vendor says so of the webhook delivery of these events). To count each
// once, the Collector remembers what it counted last: recent is a ring of
// the last keys (hashes) seen, each with a value, of a fixed size: what is
// older is forgotten, so a hostile PBX can make it hold no more.
type recent struct {
	size  int
	keys  []uint64 // 0: empty
	vals  []int64
	next  int
	index map[uint64]int // by key, for sets too large to scan
}

// Sizes of the recent sets: the last callers who left each queue (a busy
// queue's last minute or more), the last call_cdr of all tenants (minutes
// of a large PBX's calls).
const (
	recentLeavers = 64
	recentCDRs    = 16384
	recentScanMax = 64 // a larger set keeps an index
)

func (r *recent) find(key uint64) int {
	if r.index != nil {
		if i, ok := r.index[key]; ok {
			return i
		}
		return -1
	}
	for i, k := range r.keys {
		if k == key {
			return i
		}
	}
	return -1
}

func (r *recent) has(key uint64) bool { return r.find(key) >= 0 }

// add remembers key with v, forgetting the oldest when full.
func (r *recent) add(key uint64, v int64) {
	if i := r.find(key); i >= 0 {
		r.vals[i] = v
		return
	}
	r.addNew(key, v)
}

// addNew is add of a key known not to be there.
func (r *recent) addNew(key uint64, v int64) {
	if r.keys == nil {
		r.keys, r.vals = make([]uint64, r.size), make([]int64, r.size)
		if r.size > recentScanMax {
			r.index = make(map[uint64]int, r.size)
		}
	}
	if old := r.keys[r.next]; old != 0 && r.index != nil {
		delete(r.index, old)
	}
	r.keys[r.next], r.vals[r.next] = key, v
	if r.index != nil {
		r.index[key] = r.next
	}
	r.next = (r.next + 1) % r.size
}

// forget drops key.
func (r *recent) forget(key uint64) {
	if i := r.find(key); i >= 0 {
		r.drop(i)
	}
}

// drop forgets the key at index i (from find).
func (r *recent) drop(i int) {
	if r.index != nil {
		delete(r.index, r.keys[i])
	}
	r.keys[i] = 0
}

// merge remembers what o remembers too.
func (r *recent) merge(o *recent) {
	for j := range o.keys { // oldest first
		i := (o.next + j) % len(o.keys)
		if k := o.keys[i]; k != 0 {
			r.add(k, o.vals[i])
		}
	}
}

// hash is the key of a string in a recent set; never 0. The seed is the
// process's own, so a PBX cannot choose keys that collide.
func (c *Collector) hash(s string) uint64 { return maphash.String(c.seed, s) | 1 }

// hash3 is the key of three strings together.
func (c *Collector) hash3(a, b, d string) uint64 {
	return (maphash.String(c.seed, a) ^ bits.RotateLeft64(maphash.String(c.seed, b), 21) ^
		bits.RotateLeft64(maphash.String(c.seed, d), 42)) | 1
}
