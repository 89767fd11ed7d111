package wsi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzDecode holds Decode to encoding/json: it never accepts what
// json.Valid rejects, never calls a JSON object malformed, and agrees on
// the event_type and tenant_id it reads.
func FuzzDecode(f *testing.F) {
	err := filepath.WalkDir("testdata", func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || filepath.Ext(path) != ".json" {
			return err
		}
		f.Add(readTestdata(f, path[len("testdata/"):]))
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, rep, err := Decode(data)
		n := 0
		for _, nonNil := range []bool{ev != nil, rep != nil, err != nil} {
			if nonNil {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("Decode(%q) = %v, %v, %v: want exactly one non-nil", data, ev, rep, err)
		}
		valid := json.Valid(data)
		if !valid {
			if err == nil {
				t.Fatalf("Decode(%q) accepted what encoding/json calls invalid", data)
			}
			return
		}
		var de *DecodeError
		if err != nil && !errors.As(err, &de) {
			t.Fatalf("Decode(%q): error %T, want *DecodeError", data, err)
		}
		isObject := bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{"))
		if isObject && de != nil && de.Reason != ReasonInvalidEvent {
			t.Fatalf("Decode(%q) = %v: a JSON object is never malformed", data, err)
		}
		if !isObject && de == nil {
			t.Fatalf("Decode(%q) accepted a JSON value that is not an object", data)
		}

		ev2, rep2, err2 := Decode(data)
		if !reflect.DeepEqual(ev, ev2) || !reflect.DeepEqual(rep, rep2) || !reflect.DeepEqual(err, err2) {
			t.Fatalf("Decode(%q) is not deterministic", data)
		}
		// The client's reader agrees with Decode on every single value.
		ev3, rep3, rest, err3 := decodeNext(data)
		if !reflect.DeepEqual(ev, ev3) || !reflect.DeepEqual(rep, rep3) || !reflect.DeepEqual(err, err3) || len(rest) != 0 {
			t.Fatalf("decodeNext(%q) = %v, %v, %q, %v; Decode gives %v, %v, %v", data, ev3, rep3, rest, err3, ev, rep, err)
		}
		if ev == nil {
			return
		}
		// Numbers as their literal text, as Decode reads them into ids.
		var m map[string]any
		jd := json.NewDecoder(bytes.NewReader(data))
		jd.UseNumber()
		if err := jd.Decode(&m); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if h := ev.Head(); m["event_type"] != h.EventType {
			t.Fatalf("Decode(%q): event_type %q, encoding/json reads %q", data, h.EventType, m["event_type"])
		}
		var tenant string
		switch v := m["tenant_id"].(type) {
		case string:
			tenant = v
		case json.Number:
			tenant = v.String()
		}
		if tenant != ev.Head().TenantID {
			t.Fatalf("Decode(%q): tenant_id %q, encoding/json reads %q", data, ev.Head().TenantID, tenant)
		}
	})
}
