package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// There is no Docker engine in CI, so the Dockerfile's promises are checked
// as text: what matters is that it cannot drift from the code.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)

	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, found %d FROM lines", len(froms))
	}
	if !strings.HasPrefix(froms[0][1], "golang:1.26") {
		t.Errorf("builder image = %s, want golang:1.26 (go.mod's version)", froms[0][1])
	}

	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "-X main.revision=${REVISION}", "ARG VERSION", "ARG REVISION"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}

	// The runtime stage runs as a non-root user.
	users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(users) == 0 {
		t.Fatal("no USER: the container would run as root")
	}
	user := users[len(users)-1][1]
	if name, _, _ := strings.Cut(user, ":"); name == "root" || name == "0" {
		t.Errorf("USER %s is root", user)
	}

	expose := regexp.MustCompile(`(?m)^EXPOSE\s+(\d+)`).FindStringSubmatch(df)
	if expose == nil || expose[1] != defaultPort {
		t.Errorf("EXPOSE = %v, want the default listen port %s", expose, defaultPort)
	}
	if !regexp.MustCompile(`(?m)^ENTRYPOINT\s+\["/bin/portsip_exporter"\]`).MatchString(df) {
		t.Error(`ENTRYPOINT is not ["/bin/portsip_exporter"]`)
	}
}
