package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryDependencies keeps the packages out of the binary whose code
// would be resident in every sidecar for nothing: on Linux the whole loaded
// image of the binary ends up in RSS. They are used by tests and tools, and
// each took the binary's image up by a megabyte or more (go-redis 1.8 MB,
// client_golang with protobuf 2.3 MB, net/http 2.1 MB).
func TestBinaryDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 20 {
		t.Fatalf("go list -deps listed only %d packages: %q", len(deps), out)
	}
	banned := []string{"net/http", "github.com/redis/go-redis/", "github.com/prometheus/", "google.golang.org/protobuf/", "crypto/tls"}
	for _, d := range deps {
		for _, b := range banned {
			if d == b || strings.HasPrefix(d, b) {
				t.Errorf("the slotproxy binary links %s", d)
			}
		}
	}
}
