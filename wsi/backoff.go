package wsi

import (
	"math"
	"math/rand/v2"
	"time"
)

// backoff is exponential back-off with equal jitter: the n-th delay is
// drawn from [d/2, d), where d = initial * 2^n capped at max, or from
// [d, 5d/4) with floor (ARCHITECTURE.md, The WSI session).
type backoff struct {
	initial, max time.Duration
	floor        bool
	attempt      int
	// int64N returns a random number in [0, n); rand.Int64N by default.
	int64N func(n int64) int64
}

func newBackoff(initial, max time.Duration, floor bool) *backoff {
	return &backoff{initial: initial, max: max, floor: floor, int64N: rand.Int64N}
}

// next returns the delay before the next attempt and advances the sequence.
func (b *backoff) next() time.Duration {
	d := b.initial
	for i := 0; i < b.attempt && d < b.max; i++ {
		if d > b.max/2 {
			// Doubling would pass the cap, or overflow a huge one into a
			// negative wait.
			d = b.max
			break
		}
		d *= 2
	}
	d = min(d, b.max)
	b.attempt++
	lo, span := d/2, d-d/2
	if b.floor {
		lo, span = d, min(d/4, math.MaxInt64-d)
	}
	if lo <= 0 || span <= 0 {
		return d
	}
	return lo + time.Duration(b.int64N(int64(span)))
}

// reset starts the sequence again from initial.
func (b *backoff) reset() { b.attempt = 0 }
