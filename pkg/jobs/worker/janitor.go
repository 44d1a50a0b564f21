package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/deployq/deployq/internal/clock"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/nats-io/nats.go/jetstream"
)

// The janitor deletes the source tarballs no request references any more
// (pkg/jobs/sources.go explains why the grace period makes that safe).

// JanitorConfig configures tarball clean-up.
type JanitorConfig struct {
	// Grace is the minimum age of an unreferenced tarball before it is
	// deleted; it also absorbs clock skew between producers and workers.
	// Defaults to 10 min.
	Grace time.Duration
	// Interval between sweeps. Defaults to 1 min.
	Interval time.Duration
}

func (c JanitorConfig) withDefaults() JanitorConfig {
	if c.Grace <= 0 {
		c.Grace = jobs.DefaultSourceGrace
	}
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	return c
}

// releaseSource drops the job's reference to its tarball.
func (w *Worker) releaseSource(ctx context.Context, r *jobs.Request, log *slog.Logger) {
	if err := w.assets.SourceRefs.Delete(ctx, jobs.SourceRefKey(r)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		log.Warn("source reference not released; the bucket's max age removes it later", "err", err)
	}
}

func (w *Worker) runSourceJanitor(ctx context.Context) {
	cfg := w.cfg.Sources.withDefaults()
	for clock.Sleep(ctx, cfg.Interval) == nil {
		n, err := sweepSources(ctx, w.assets.Sources, w.assets.SourceRefs, cfg.Grace, w.now())
		if err != nil && ctx.Err() == nil {
			w.log.Warn("source sweep incomplete", "err", err)
		}
		if n > 0 {
			w.log.Debug("deleted unreferenced source tarballs", "count", n)
		}
	}
}

// sweepSources deletes tarballs older than grace that no request
// references, and returns how many it deleted. A tarball is deleted up to
// the meta it judged: one written again meanwhile survives.
func sweepSources(ctx context.Context, store *jobs.SourceStore, refs jetstream.KeyValue, grace time.Duration, now time.Time) (int, error) {
	list, err := store.List(ctx)
	if err != nil {
		return 0, err
	}
	deleted := 0
	for _, info := range list {
		if now.Sub(info.Stored) < grace {
			continue
		}
		referenced, err := hasRefs(ctx, refs, info.SHA1+"."+info.Tenant)
		if err != nil {
			return deleted, err
		}
		if referenced {
			continue
		}
		if err := store.Delete(ctx, info.Tenant, info.SHA1, info.Seq); err != nil {
			return deleted, err
		}
		deleted++
	}
	return deleted, nil
}

// hasRefs reports whether any reference key starts with prefix
// (<sha1>.<tenant>).
func hasRefs(ctx context.Context, refs jetstream.KeyValue, prefix string) (bool, error) {
	lister, err := refs.ListKeysFiltered(ctx, prefix+".>")
	if err != nil {
		return false, err
	}
	// Drain the whole listing: stopping early would strand the lister's
	// goroutine on a full channel once more than its buffer of keys match.
	n := 0
	for range lister.Keys() {
		n++
	}
	return n > 0, ctx.Err()
}
