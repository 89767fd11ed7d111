package main

import (
	"context"
	"sync"

	"github.com/portsip-exporter/portsip_exporter/wsi/wsitest"
)

// demoPBX is a running simulated PBX and the system administrator login
// the exporter uses against it.
type demoPBX struct {
	URL, Username, Password string
	Tenants                 []string
	Close                   func()
}

// startDemoPBX starts the simulated PBX on loopback with its contact-centre
// traffic, which runs until Close.
func startDemoPBX(ctx context.Context, seed int64) (*demoPBX, error) {
	s := wsitest.NewUnstartedServer()
	// The traffic sets the server's clock and users: before Start.
	traffic := wsitest.NewTraffic(s, wsitest.TrafficConfig{Seed: seed})
	s.Start()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = traffic.Run(ctx) // returns nil once ctx is done
	}()

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
