package buildtime

import (
	"regexp"
	"testing"
	"time"
)

func TestBuildTimesKey(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	for _, tt := range []struct{ team, want string }{
		{"", "personal"},
		{"team_abc123", "team_abc123"},
		{"my-team", "my-team"},
		{"team.with.dots", ""},
		{"team with spaces", ""},
		{"team/>*", ""},
	} {
		got := Key(tt.team)
		if !valid.MatchString(got) {
			t.Errorf("Key(%q) = %q: not a safe key token", tt.team, got)
		}
		if tt.want != "" && got != tt.want {
			t.Errorf("Key(%q) = %q, want %q", tt.team, got, tt.want)
		}
		if tt.want == "" && (got == tt.team || got == Key(tt.team+"x")) {
			t.Errorf("Key(%q) = %q: want a hash distinct per team", tt.team, got)
		}
	}
}

func TestBuildTimesObserve(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		configured bool
		builds     []time.Duration
		mean, dev  time.Duration
	}{
		// Nothing configured: the first build replaces the guess, with a
		// wide deviation; later ones move it a quarter of the way.
		{"cold, one build", false, []time.Duration{60 * time.Second}, 60 * time.Second, 15 * time.Second},
		{"cold, two builds", false, []time.Duration{60 * time.Second, 100 * time.Second}, 70 * time.Second, 21250 * time.Millisecond},
		// Configured: the operator's value is a prior the first build moves.
		{"configured", true, []time.Duration{60 * time.Second}, 37500 * time.Millisecond, 9750 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := New(nil, "", 30*time.Second, tt.configured, time.Now)
			if got := b.Snapshot().Cold(); got == tt.configured {
				t.Fatalf("cold() = %v before any build, configured %v", got, tt.configured)
			}
			changed := b.Changes()
			for _, d := range tt.builds {
				b.Observe(t.Context(), d)
			}
			e := b.Snapshot()
			if e.Mean != tt.mean || e.Dev != tt.dev || e.Samples != int64(len(tt.builds)) || e.Cold() {
				t.Errorf("Estimate %+v, want mean %s dev %s after %d builds", e, tt.mean, tt.dev, len(tt.builds))
			}
			select {
			case <-changed:
				if tt.configured {
					t.Error("waiters woken although the Estimate was never cold")
				}
			default:
				if !tt.configured {
					t.Error("the first build did not wake the waiters")
				}
			}
		})
	}
}
