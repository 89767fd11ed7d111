package wsi

import (
	"math"
	"testing"
	"time"
)

func TestBackoffDoublesToMaxWithEqualJitter(t *testing.T) {
	for _, tc := range []struct {
		name string
		rnd  func(n int64) int64
		want []time.Duration
	}{
		// The lowest draw is half of each step, the highest just under it.
		{"low", func(int64) int64 { return 0 }, []time.Duration{500, 1000, 2000, 4000, 4000, 4000}},
		{"high", func(n int64) int64 { return n - 1 }, []time.Duration{1000, 2000, 4000, 8000, 8000, 8000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackoff(time.Second, 8*time.Second)
			b.int64N = tc.rnd
			for i, want := range tc.want {
				want *= time.Millisecond
				if tc.name == "high" {
					want-- // the draw is below d, never d itself
				}
				if got := b.next(); got != want {
					t.Fatalf("delay %d = %v, want %v", i, got, want)
				}
			}
			b.reset()
			if got := b.next(); got < 500*time.Millisecond || got >= time.Second {
				t.Fatalf("after reset: %v, want the first step again, in [500ms, 1s)", got)
			}
		})
	}
}

func TestBackoffRandomStaysInBounds(t *testing.T) {
	b := newBackoff(time.Second, time.Minute)
	step := time.Second
	for i := range 20 {
		d := b.next()
		if d < step/2 || d >= step {
			t.Fatalf("delay %d = %v, want in [%v, %v)", i, d, step/2, step)
		}
		step = min(step*2, time.Minute)
	}
}

func TestBackoffManyAttemptsDoNotOverflow(t *testing.T) {
	b := newBackoff(time.Second, time.Minute)
	b.attempt = 1 << 40
	if d := b.next(); d < 30*time.Second || d >= time.Minute {
		t.Fatalf("delay after very many attempts = %v, want within the cap", d)
	}
}

// However large a cap a Config asks for, doubling must not overflow into
// a zero or negative wait, which would make the client spin.
func TestBackoffHugeCapNeverSpins(t *testing.T) {
	for _, max := range []time.Duration{math.MaxInt64, math.MaxInt64/2 + 1, 3 << 61} {
		b := newBackoff(time.Second, max)
		prev := time.Duration(0)
		for i := range 80 {
			d := b.next()
			if d <= 0 || d > max {
				t.Fatalf("max %v: delay %d = %v, want in (0, max]", max, i, d)
			}
			if i > 0 && d < prev/2 {
				t.Fatalf("max %v: delay %d = %v shrank from %v", max, i, d, prev)
			}
			prev = d
		}
	}
	b := newBackoff(1, 1) // the smallest Config allows: 1ns
	if d := b.next(); d != 1 {
		t.Fatalf("1ns back-off gave %v", d)
	}
}
