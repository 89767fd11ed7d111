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
			b := newBackoff(time.Second, 8*time.Second, false)
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
	b := newBackoff(time.Second, time.Minute, false)
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
	b := newBackoff(time.Second, time.Minute, false)
	b.attempt = 1 << 40
	if d := b.next(); d < 30*time.Second || d >= time.Minute {
		t.Fatalf("delay after very many attempts = %v, want within the cap", d)
	}
}

// However large a cap a Config asks for, doubling must not overflow into
// a zero or negative wait, which would make the client spin.
func TestBackoffHugeCapNeverSpins(t *testing.T) {
	for _, max := range []time.Duration{math.MaxInt64, math.MaxInt64/2 + 1, 3 << 61} {
		b := newBackoff(time.Second, max, false)
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
	b := newBackoff(1, 1, false) // the smallest Config allows: 1ns
	if d := b.next(); d != 1 {
		t.Fatalf("1ns back-off gave %v", d)
	}
}

// A refused login waits at least the step, never less: jitter only adds.
func TestBackoffWithFloorNeverUndercutsTheStep(t *testing.T) {
	for _, rnd := range []func(int64) int64{func(int64) int64 { return 0 }, func(n int64) int64 { return n - 1 }} {
		b := newBackoff(time.Minute, 15*time.Minute, true)
		b.int64N = rnd
		for i, step := range []time.Duration{1, 2, 4, 8, 15, 15} {
			step *= time.Minute
			if d := b.next(); d < step || d >= step+step/4 {
				t.Fatalf("delay %d = %v, want in [%v, %v)", i, d, step, step+step/4)
			}
		}
	}
	b := newBackoff(time.Minute, math.MaxInt64, true)
	for i := range 80 {
		if d := b.next(); d < time.Minute {
			t.Fatalf("delay %d = %v overflowed", i, d)
		}
	}
}
