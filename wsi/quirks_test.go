package wsi

import (
	"regexp"
	"slices"
	"testing"
)

func TestQuirkNames(t *testing.T) {
	if len(Quirks) != int(numQuirks) || numQuirks > 16 {
		t.Fatalf("%d names for %d quirks; a QuirkSet holds 16", len(Quirks), numQuirks)
	}
	label := regexp.MustCompile(`^[a-z][a-z_]*$`)
	for q := range numQuirks {
		if !label.MatchString(q.String()) || slices.Index(Quirks, q.String()) != int(q) {
			t.Errorf("quirk %d: name %q is not a unique label value", q, q.String())
		}
	}
}

func TestQuirkSet(t *testing.T) {
	var s QuirkSet
	if slices.Collect(s.All()) != nil {
		t.Fatal("empty set yields quirks")
	}
	s.Add(QuirkTopicsRefused)
	s.Add(QuirkDuplicateKey)
	s.Add(QuirkDuplicateKey)
	if !s.Has(QuirkDuplicateKey) || s.Has(QuirkVersionSpelling) {
		t.Errorf("Has is wrong for %b", s)
	}
	if got := slices.Collect(s.All()); !slices.Equal(got, []Quirk{QuirkDuplicateKey, QuirkTopicsRefused}) {
		t.Errorf("All() = %v", got)
	}
	for range s.All() {
		break // stopping early must not panic
	}
}
