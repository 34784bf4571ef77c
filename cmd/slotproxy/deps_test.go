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
//
// crypto/tls is in, for the tls and backend_tls keys, and every sidecar
// pays for it whether it uses TLS or not. Measured with CGO_ENABLED=0, go
// 1.26, a proxy idle in front of 3 masters after start-up, three runs
// each: the binary went from 7.4 to 10.8 MB (text 4.9 to 7.2 MB); VmRSS
// from 7.6 to 9.3 MiB with TLS off, almost all of it RssFile (4.9 to
// 6.4 MiB, RssAnon +0.1 MiB), and 10.0 MiB with clients' TLS on (RssFile
// 7.0, RssAnon 3.0 MiB). The bans below stand: none of them is needed
// for TLS, and each would come on top.
func TestBinaryDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 20 {
		t.Fatalf("go list -deps listed only %d packages: %q", len(deps), out)
	}
	banned := []string{"net/http", "github.com/redis/go-redis/", "github.com/prometheus/", "google.golang.org/protobuf/"}
	for _, d := range deps {
		for _, b := range banned {
			if d == b || strings.HasPrefix(d, b) {
				t.Errorf("the slotproxy binary links %s", d)
			}
		}
	}
}
