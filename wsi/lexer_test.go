package wsi

import (
	"math/rand/v2"
	"testing"
)

// plainUntil finds what a byte-by-byte scan finds, for every byte in every
// position of a word, and next to every other.
func TestPlainUntil(t *testing.T) {
	slow := func(data []byte, i int) int {
		for i < len(data) && plain[data[i]] {
			i++
		}
		return i
	}
	check := func(data []byte, from int) {
		t.Helper()
		if got, want := plainUntil(data, from), slow(data, from); got != want {
			t.Fatalf("plainUntil(%q, %d) = %d, want %d", data, from, got, want)
		}
	}
	for c := range 256 {
		for at := range 20 {
			data := []byte("abcdefghijklmnopqrst")
			data[at] = byte(c)
			for from := range 3 {
				check(data, from)
			}
			for c2 := range 256 { // a second byte after the first
				if at+1 < len(data) {
					data[at+1] = byte(c2)
					check(data, 0)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		data := make([]byte, r.IntN(40))
		for i := range data {
			data[i] = byte(0x20 + r.IntN(0x60))
			if r.IntN(30) == 0 {
				data[i] = byte(r.IntN(256))
			}
		}
		check(data, 0)
	}
}
