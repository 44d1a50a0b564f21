package worker

import (
	"context"
	"time"

	"github.com/deployq/deployq/internal/clock"
)

// watchBacklog rescans the lanes every BacklogInterval (rescan in
// lanes.go) and keeps the backlog metrics fresh: requests waiting, in
// progress, the age of the oldest one, and each tenant's. SREs page on
// that age, which a count alone hides: ten requests stuck for an hour
// look like ten requests.
func (w *Worker) watchBacklog(ctx context.Context, ls *lanes) {
	for clock.Sleep(ctx, w.cfg.BacklogInterval) == nil {
		w.rescan(ctx, ls)
	}
}

func (w *Worker) rescan(ctx context.Context, ls *lanes) {
	ctx, cancel := context.WithTimeout(ctx, natsOpTimeout)
	defer cancel()
	b, err := ls.rescan(ctx)
	if err != nil {
		if ctx.Err() == nil {
			// The stream or its consumers cannot be read: not ready until
			// a rescan or a fetch succeeds again.
			w.log.Warn("rescan of the requests stream failed", "err", err)
			w.pulling.Store(false)
			w.m.SetReady(false)
		}
		return
	}
	w.pulling.Store(true)
	w.m.SetReady(w.Ready())
	var oldest time.Duration
	// A work queue keeps only unsettled requests: its first message is the
	// oldest one waiting or in progress.
	if b.stored > 0 && !b.first.IsZero() {
		oldest = max(w.now().Sub(b.first), 0)
	}
	w.m.SetBacklog(b.pending, b.inFlight, oldest)
	if w.m != nil {
		tenants := make(map[string][2]uint64, len(b.tenants))
		for t, tb := range b.tenants {
			tenants[t] = [2]uint64{tb.waiting, tb.running}
		}
		w.m.SetTenantBacklog(tenants)
	}
}
