package budget

import (
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// A snapshot shows what the bucket spent: tokens, the caps' counts, a
// pause, the next slot when calls are booked ahead.
func TestSnapshotShowsTokensWindowsAndPauses(t *testing.T) {
	t.Parallel()
	b := setup(t, map[vercel.Endpoint]Limit{ep: {Requests: 10, Window: time.Second, Burst: 3, Caps: []Cap{{Requests: 100, Window: time.Hour}}}})
	first := b.budget.Snapshot()
	if len(first) != 1 || first[0].Endpoint != ep || first[0].Tokens != 3 || first[0].Burst != 3 || first[0].Limit != "10/1s+100/1h" ||
		len(first[0].Windows) != 1 || first[0].Windows[0].Used != 0 || first[0].Windows[0].Requests != 100 || first[0].Windows[0].Window != "1h" {
		t.Fatalf("unused bucket: %+v", first)
	}
	b.waits(t, 3) // the burst, at once
	got := b.budget.Snapshot()[0]
	if got.Tokens != 0 || got.Windows[0].Used != 3 || got.NextSlot.IsZero() || !got.PausedUntil.IsZero() {
		t.Fatalf("after the burst: %+v", got)
	}
	b.budget.Observe(ep, 429, vercel.RateLimit{}, &vercel.RateLimitError{APIError: vercel.APIError{StatusCode: 429}, RetryAfter: 30 * time.Second})
	got = b.budget.Snapshot()[0]
	if want := b.clock.Now().Add(30 * time.Second); !got.PausedUntil.Equal(want) || got.Tokens != 0 {
		t.Fatalf("paused: %+v, want paused until %v", got, want)
	}
	b.clock.Advance(time.Minute)
	if got = b.budget.Snapshot()[0]; got.Tokens != 3 || !got.PausedUntil.IsZero() || !got.NextSlot.IsZero() || got.Windows[0].Used != 3 {
		t.Fatalf("a minute later: %+v", got)
	}
}
