package jobs

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/deployq/deployq/internal/clock"
	"github.com/nats-io/nats.go/jetstream"
)

// Source tarballs live in the DEPLOY_SOURCES stream (SourceStore), one
// copy per tenant and SHA-1, shared by every request of the tenant that
// deploys the same bytes. Each request that needs one holds a
// reference key <sha1>.<tenant>.<id> in the refs bucket from submit until
// its job ends. A janitor deletes a tarball once nobody references it and
// it is older than the grace period.
//
// Why the grace period makes deletion safe without locks: a producer puts
// its reference *before* checking whether the tarball exists, and skips
// the upload only if the tarball was written less than grace/2 ago. The
// janitor deletes only tarballs written more than grace ago, and lists
// references *after* checking the age. So if a producer skipped an upload,
// its reference was written before the janitor could list — and the
// janitor sees it and keeps the tarball. Ages are the stream's own
// timestamps, so the producers' clocks only matter for their half of the
// rule (grace absorbs their skew).

// SourceJanitorConfig configures tarball clean-up.
type SourceJanitorConfig struct {
	// Grace is the minimum age of an unreferenced tarball before it is
	// deleted; it also absorbs clock skew between producers and workers.
	// Defaults to 10 min.
	Grace time.Duration
	// Interval between sweeps. Defaults to 1 min.
	Interval time.Duration
}

func (c SourceJanitorConfig) withDefaults() SourceJanitorConfig {
	if c.Grace <= 0 {
		c.Grace = 10 * time.Minute
	}
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	return c
}

func refKey(r *Request) string { return r.Source.SHA1 + "." + r.Tenant + "." + r.ID }

// releaseSource drops the job's reference to its tarball.
func (w *Worker) releaseSource(ctx context.Context, r *Request, log *slog.Logger) {
	if err := w.assets.SourceRefs.Delete(ctx, refKey(r)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
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
func sweepSources(ctx context.Context, store *SourceStore, refs jetstream.KeyValue, grace time.Duration, now time.Time) (int, error) {
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
