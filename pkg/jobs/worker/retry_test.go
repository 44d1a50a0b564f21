package worker

import (
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// constantBackOff always answers d.
type constantBackOff time.Duration

func (c constantBackOff) NextBackOff() time.Duration { return time.Duration(c) }
func (constantBackOff) Reset()                       {}

// The wait before a step runs again: the longer of Retry-After and the
// backoff; a rate limit's announced wait alone, capped.
func TestRetryWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		d          vercel.Decision
		wantWait   time.Duration
		wantCapped bool
	}{
		{"backoff longer than Retry-After", vercel.Decision{Class: vercel.Transient, RetryAfter: time.Second}, 3 * time.Second, false},
		{"Retry-After longer than backoff", vercel.Decision{Class: vercel.Transient, RetryAfter: 9 * time.Second}, 9 * time.Second, false},
		{"a rate limit waits what it announced", vercel.Decision{Class: vercel.Transient, RateLimited: true, RetryAfter: 20 * time.Second}, 20 * time.Second, false},
		{"an absurd wait is capped", vercel.Decision{Class: vercel.Transient, RateLimited: true, RetryAfter: 5 * time.Hour}, time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wait, capped := retryWait(tt.d, time.Minute, constantBackOff(3*time.Second))
			if wait != tt.wantWait || capped != tt.wantCapped {
				t.Fatalf("wait %s capped %t, want %s %t", wait, capped, tt.wantWait, tt.wantCapped)
			}
		})
	}
}
