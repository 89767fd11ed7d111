package main

import (
	"context"
	"sync"
	"time"

	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

// demoPBX is a running simulated PBX and the system administrator login
// the exporter uses against it.
type demoPBX struct {
	URL, Username, Password string
	Tenants                 []string
	Close                   func()
}

type demoOptions struct {
	seed     int64
	quirks   bool // every reading of wsitest.AllQuirks
	scenario wsitest.Scenario
}

// adminRefusedFor is how long the PBX of `demo --demo.quirks` refuses the
// system administrator every global topic but extension management (one
// of the readings) before it grants them and drops the session, so that
// the exporter subscribes again and the other quirks show. It is short so
// that the traffic's first campaign queue is created after the second
// subscribe (queue_id_only). Tests shorten it.
var adminRefusedFor = 5 * time.Second

// startDemoPBX starts the simulated PBX on loopback with its contact-centre
// traffic, which runs until Close.
func startDemoPBX(ctx context.Context, o demoOptions) (*demoPBX, error) {
	s := wsitest.NewUnstartedServer()
	cfg := wsitest.TrafficConfig{Seed: o.seed, Scenario: o.scenario}
	if o.quirks {
		cfg.Quirks = wsitest.AllQuirks()
	}
	// The traffic sets the server's clock and users: before Start.
	traffic := wsitest.NewTraffic(s, cfg)
	s.Start()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = traffic.Run(ctx) // returns nil once ctx is done
	}()
	if o.quirks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			grant := time.NewTimer(adminRefusedFor)
			defer grant.Stop()
			select {
			case <-ctx.Done():
				return
			case <-grant.C:
			}
			q := s.Quirks()
			q.AdminGlobalsRefused = false
			s.SetQuirks(q)
			s.DropSessions()
		}()
	}

	user, password := traffic.Credentials()
	return &demoPBX{
		URL:      s.URL,
		Username: user,
		Password: password,
		Tenants:  traffic.TenantIDs(),
		Close: func() {
			cancel()
			wg.Wait()
			s.Close()
		},
	}, nil
}
