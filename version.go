package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// Set at build time:
//
//	go build -ldflags "-X main.version=1.2.3 -X main.revision=$(git rev-parse HEAD)"
//
// Without them the module version and VCS revision recorded by the Go
// toolchain are used.
var (
	version  string
	revision string
)

type buildInfo struct {
	Version, Revision, GoVersion string
}

var getBuildInfo = sync.OnceValue(func() buildInfo {
	b := buildInfo{Version: version, Revision: revision, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		if b.Revision == "" {
			var modified bool
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					b.Revision = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if b.Revision != "" && modified {
				b.Revision += "-dirty"
			}
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	if b.Revision == "" {
		b.Revision = "unknown"
	}
	return b
})

func versionString() string {
	b := getBuildInfo()
	return fmt.Sprintf("%s, version %s (revision: %s)\n  go version: %s\n  platform: %s/%s",
		programName, b.Version, b.Revision, b.GoVersion, runtime.GOOS, runtime.GOARCH)
}
