package wsitest_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi"
	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

// The simulator speaks what the wsi package understands: every frame of
// the traffic decodes to a known event type, nothing is rejected.
func TestFramesDecode(t *testing.T) {
	frames := wsitest.Frames(wsitest.TrafficConfig{Seed: 2, Start: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}, 3000)
	seen := map[string]int{}
	for i, f := range frames {
		ev, reply, err := wsi.Decode(f)
		if err != nil || reply != nil {
			t.Fatalf("frame %d %s: reply %v, error %v", i, f, reply, err)
		}
		if _, unknown := ev.(*wsi.Unknown); unknown {
			t.Fatalf("frame %d %s decoded as unknown", i, f)
		}
		seen[ev.Head().EventType]++
		switch e := ev.(type) {
		case *wsi.QueueCallerStatus:
			if e.QueueID == "" || len(e.Callers) != 1 || e.Callers[0].Timestamp == 0 {
				t.Fatalf("frame %d %s decoded as %+v", i, f, e)
			}
		case *wsi.CDRTarget: // the ids are not decoded: nothing reads them
			for _, key := range []string{`"session_id":"`, `"cdr_id":"`, `"call_id":"`} {
				if !bytes.Contains(f, []byte(key)) {
					t.Fatalf("frame %d %s has no %s", i, f, key)
				}
			}
		case *wsi.CallCDR:
			if e.TenantName == "" || e.CallStatus == "" || !e.TalkDuration.Set || !e.RingDuration.Set || e.EndedTime == 0 {
				t.Fatalf("frame %d %s decoded as %+v", i, f, e)
			}
		}
	}
	for _, typ := range wsi.KnownEventTypes {
		if seen[typ] == 0 && typ != wsi.TypeQueueDestroy && typ != wsi.TypeExtensionDestroyed {
			t.Errorf("no %s among %d frames", typ, len(frames))
		}
	}
	t.Log(seen)
}
