package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
)

// submitRun is one measurement of item 3: requests per second that the
// producer accepts with no worker running, through jobs.Client.Submit and
// through jobs.Client.SubmitBatch, from the same number of goroutines.
type submitRun struct {
	Goroutines int     `json:"goroutines"`
	Requests   int     `json:"requests"`
	PerSecond  float64 `json:"perSecond"`
	// BatchPerSecond is SubmitBatch's rate, measured on a server of its
	// own right after PerSecond's, with at most BatchSize requests a call.
	BatchPerSecond float64 `json:"batchPerSecond"`
	BatchSize      int     `json:"batchRequestsPerCall"`
}

// runSubmit measures Submit, then SubmitBatch, from g goroutines, each on
// a fresh server (the reset between measurements: nothing queued before,
// nothing consumed during). Every request shares one tarball, so after
// the first (untimed) ones the producer only checks it is there.
func runSubmit(ctx context.Context, b *runner, g, n int) (submitRun, error) {
	r := submitRun{Goroutines: g, Requests: n, BatchSize: batchSize(n, g, b.o.submitBatch)}
	var err error
	if r.PerSecond, err = timeSubmit(ctx, b, g, n, fmt.Sprintf("submit%d", g), submitAll); err != nil {
		return r, err
	}
	batched := func(ctx context.Context, c *jobs.Client, ids []string, g int, tgz []byte) error {
		return submitBatches(ctx, c, ids, g, r.BatchSize, tgz)
	}
	if r.BatchPerSecond, err = timeSubmit(ctx, b, g, n, fmt.Sprintf("batch%d", g), batched); err != nil {
		return r, fmt.Errorf("batch: %w", err)
	}
	return r, nil
}

// submitter submits one request per id from g goroutines.
type submitter func(ctx context.Context, c *jobs.Client, ids []string, g int, tgz []byte) error

// timeSubmit times n requests through submit on a fresh server, after a
// tenth as many untimed ones (at least g) through the same path.
func timeSubmit(ctx context.Context, b *runner, g, n int, name string, submit submitter) (float64, error) {
	e, err := newEnv(ctx, b.tmp, b.o.keep, envConfig{name: name, assets: true})
	if err != nil {
		return 0, err
	}
	defer e.close()
	warmIDs, _ := idSet("warm", max(n/10, g))
	if err := submit(ctx, e.client, warmIDs, g, b.tgz); err != nil {
		return 0, fmt.Errorf("warm-up: %w", err)
	}
	ids, _ := idSet("job", n)
	t0 := time.Now()
	if err := submit(ctx, e.client, ids, g, b.tgz); err != nil {
		return 0, err
	}
	return rate(n, time.Since(t0)), nil
}

// batchSize is how many requests one SubmitBatch call gets: at most
// limit, and few enough that all g goroutines have a call.
func batchSize(n, g, limit int) int {
	return max(min(limit, (n+g-1)/g), 1)
}

// submitBatches submits one request per id through SubmitBatch calls of
// at most size requests, from g goroutines, each taking the next call's
// requests as it finishes one. It stops at the first failed request.
func submitBatches(ctx context.Context, c *jobs.Client, ids []string, g, size int, tgz []byte) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	calls := (len(ids) + size - 1) / size
	var wg sync.WaitGroup
	for range min(g, calls) {
		wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= calls || ctx.Err() != nil {
					return
				}
				part := ids[k*size : min((k+1)*size, len(ids))]
				reqs := make([]jobs.Request, len(part))
				for i, id := range part {
					reqs[i] = request(id)
				}
				sctx, scancel := context.WithTimeout(ctx, setupTimeout)
				res, err := c.SubmitBatch(sctx, reqs, tgz)
				scancel()
				if err == nil {
					err = allNew(res)
				}
				if err != nil {
					once.Do(func() { first = fmt.Errorf("submit batch of %s…: %w", part[0], err) })
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// allNew makes sure a batch's requests were all published, none found a
// duplicate: every id of a run is fresh, so a duplicate would mean the
// rate counted requests that were not stored.
func allNew(res []jobs.BatchResult) error {
	for _, r := range res {
		if r.Duplicate || r.Sequence == 0 {
			return fmt.Errorf("request %s: %w", r.ID, errNotStored)
		}
	}
	return nil
}

var errNotStored = errors.New("not stored as a new request")
