package worker

import (
	"context"
	"time"

	"github.com/deployq/deployq/internal/clock"
)

// watchBacklog keeps the backlog metrics fresh: requests waiting, in
// progress, and the age of the oldest one. SREs page on that age, which a
// count alone hides: ten requests stuck for an hour look like ten requests.
func (w *Worker) watchBacklog(ctx context.Context) {
	if w.m == nil {
		return
	}
	for {
		w.refreshBacklog(ctx)
		if clock.Sleep(ctx, w.cfg.BacklogInterval) != nil {
			return
		}
	}
}

func (w *Worker) refreshBacklog(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, natsOpTimeout)
	defer cancel()
	ci, err := w.assets.Consumer.Info(ctx)
	if err != nil {
		return
	}
	si, err := w.assets.Requests.Info(ctx)
	if err != nil {
		return
	}
	var oldest time.Duration
	// A work queue keeps only unsettled requests: its first message is the
	// oldest one waiting or in progress.
	if si.State.Msgs > 0 && !si.State.FirstTime.IsZero() {
		oldest = max(w.now().Sub(si.State.FirstTime), 0)
	}
	w.m.SetBacklog(ci.NumPending, uint64(ci.NumAckPending), oldest)
}
