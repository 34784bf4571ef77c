package oplog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLimiter drives a limiter through periods with a clock of its own:
// lines past the burst are held back, counted, and the count is told by
// the next line let through; keys do not share their budgets; a disabled
// level costs nothing from the budget.
func TestLimiter(t *testing.T) {
	var out bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	clock := time.Unix(1000, 0)
	l := NewLimiter(10*time.Second, 2)
	l.now = func() time.Time { return clock }
	lines := func() []string {
		s := strings.TrimSpace(out.String())
		out.Reset()
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}

	for i := range 1000 {
		l.Log(logger, slog.LevelWarn, "dial 10.0.0.1:7000", "backend dial failed", "node", "10.0.0.1:7000", "i", i)
	}
	got := lines()
	if len(got) != 2 || !strings.Contains(got[0], "i=0") || !strings.Contains(got[1], "i=1") {
		t.Fatalf("1000 lines in one period let through %d, want the first 2:\n%s", len(got), strings.Join(got, "\n"))
	}
	for _, g := range got {
		if strings.Contains(g, "suppressed") {
			t.Errorf("a line of the first period says something was suppressed: %s", g)
		}
	}

	// Another key has its own budget.
	l.Log(logger, slog.LevelWarn, "dial 10.0.0.2:7000", "backend dial failed", "node", "10.0.0.2:7000")
	if got := lines(); len(got) != 1 {
		t.Errorf("another key's first line: %q", got)
	}
	// A disabled level is not counted.
	for range 10 {
		l.Log(logger, slog.LevelDebug, "dial 10.0.0.3:7000", "backend connected")
	}
	l.Log(logger, slog.LevelWarn, "dial 10.0.0.3:7000", "backend dial failed")
	if got := lines(); len(got) != 1 || strings.Contains(got[0], "suppressed") {
		t.Errorf("after 10 debug lines (disabled) and one warning: %q", got)
	}

	clock = clock.Add(9 * time.Second)
	l.Log(logger, slog.LevelWarn, "dial 10.0.0.1:7000", "backend dial failed", "i", "late")
	if got := lines(); len(got) != 0 {
		t.Errorf("a line before the period ended was let through: %q", got)
	}
	clock = clock.Add(time.Second)
	l.Log(logger, slog.LevelWarn, "dial 10.0.0.1:7000", "backend dial failed", "i", "next")
	got = lines()
	if len(got) != 1 || !strings.Contains(got[0], "i=next") || !strings.HasSuffix(got[0], " suppressed=999") {
		t.Errorf("the first line of the next period: %q, want it to say suppressed=999", got)
	}
	l.Log(logger, slog.LevelWarn, "dial 10.0.0.1:7000", "backend dial failed", "i", "again")
	if got := lines(); len(got) != 1 || strings.Contains(got[0], "suppressed") {
		t.Errorf("the second line of the period: %q, want it let through without a count", got)
	}
}

// TestLimiterForgets: keys are bounded; quiet ones go first.
func TestLimiterForgets(t *testing.T) {
	clock := time.Unix(1000, 0)
	l := NewLimiter(time.Second, 1)
	l.now = func() time.Time { return clock }
	for i := range maxKeys {
		l.allow(string(rune('a'+i%26)) + strings.Repeat("x", i/26))
	}
	if len(l.keys) != maxKeys {
		t.Fatalf("%d keys, want %d", len(l.keys), maxKeys)
	}
	clock = clock.Add(2 * time.Second)
	l.allow("new")
	if len(l.keys) != 1 {
		t.Errorf("after a period with only new keys: %d keys remembered, want 1", len(l.keys))
	}
}
