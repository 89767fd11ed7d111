package collector

import "hash/maphash"

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

// get returns the value remembered with key.
func (r *recent) get(key uint64) (int64, bool) {
	if i := r.find(key); i >= 0 {
		return r.vals[i], true
	}
	return 0, false
}

// add remembers key with v, forgetting the oldest when full.
func (r *recent) add(key uint64, v int64) {
	if i := r.find(key); i >= 0 {
		r.vals[i] = v
		return
	}
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
		r.keys[i] = 0
		if r.index != nil {
			delete(r.index, key)
		}
	}
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

// hash is the key of strings in a recent set; never 0. The seed is the
// process's own, so a PBX cannot choose keys that collide.
func (c *Collector) hash(parts ...string) uint64 {
	c.hasher.Reset()
	for _, p := range parts {
		c.hasher.WriteString(p)
		c.hasher.WriteByte(0)
	}
	return c.hasher.Sum64() | 1
}

func newHasher() maphash.Hash {
	var h maphash.Hash
	h.SetSeed(maphash.MakeSeed())
	return h
}
