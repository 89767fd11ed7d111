package main

import (
	"context"
	"errors"
)

// demoPBX is a running simulated PBX and the system administrator login
// the exporter uses against it.
type demoPBX struct {
	URL, Username, Password string
	Tenants                 []string
	Close                   func()
}

// startDemoPBX starts the simulated PBX and its traffic until ctx is done.
//
// TODO: wire wsi/wsitest once its traffic model lands.
func startDemoPBX(ctx context.Context, seed int64) (*demoPBX, error) {
	return nil, errors.New("demo: the simulated PBX (wsi/wsitest) is not built yet")
}
