package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

// TestConfigGetHidesSecrets: CONFIG GET through the proxy answers as a
// master does, in both protocols, but never with the cluster's password.
func TestConfigGetHidesSecrets(t *testing.T) {
	const pw = "cfg-pw-Gh78"
	c := clustertest.New(t, clustertest.Options{Masters: 3, Password: pw})
	p := startProxy(t, c, Options{}, router.Options{})
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		cl := redis.NewClient(&redis.Options{Addr: p.Addr, Protocol: proto, MaxRetries: -1})
		defer cl.Close()
		got, err := cl.ConfigGet(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < 100 {
			t.Errorf("RESP%d: CONFIG GET * gave %d parameters", proto, len(got))
		}
		for k, v := range got {
			if strings.Contains(v, pw) {
				t.Errorf("RESP%d: CONFIG GET shows %s = %q", proto, k, v)
			}
		}
		for _, k := range []string{"requirepass", "masterauth"} {
			if got[k] != hiddenValue {
				t.Errorf("RESP%d: %s = %q, want %q", proto, k, got[k], hiddenValue)
			}
		}
		if got["maxmemory-policy"] != "noeviction" || got["masteruser"] != "" {
			t.Errorf("RESP%d: other values changed: %v", proto, fmt.Sprint(got["maxmemory-policy"], got["masteruser"]))
		}
		// An unset secret stays empty, as the master says.
		if v, err := cl.ConfigGet(ctx, "tls-key-file-pass").Result(); err != nil || v["tls-key-file-pass"] != "" {
			t.Errorf("RESP%d: tls-key-file-pass: %v %v", proto, v, err)
		}
	}
}
