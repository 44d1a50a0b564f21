package clock

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx ends. It returns nil when d elapsed, and
// the context's cause otherwise: callers tell a cancel from a shutdown
// by the cause their context was cancelled with, so the cause, not
// ctx.Err(), is what a cut-short wait reports. A d of zero or less does
// not wait, and reports whether ctx has already ended.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
