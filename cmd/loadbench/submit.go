package main

import (
	"context"
	"fmt"
	"time"
)

// submitRun is one measurement of item 3: requests per second that
// jobs.Client.Submit accepts, with no worker running.
type submitRun struct {
	Goroutines int     `json:"goroutines"`
	Requests   int     `json:"requests"`
	PerSecond  float64 `json:"perSecond"`
}

// runSubmit measures Submit from g goroutines on a fresh server (the
// reset between measurements: nothing queued before, nothing consumed
// during). Every request shares one tarball, so after the first (untimed)
// ones Submit only checks it is there.
func runSubmit(ctx context.Context, b *runner, g, n int) (submitRun, error) {
	r := submitRun{Goroutines: g, Requests: n}
	e, err := newEnv(ctx, b.tmp, b.o.keep, envConfig{name: fmt.Sprintf("submit%d", g), assets: true})
	if err != nil {
		return r, err
	}
	defer e.close()
	warmIDs, _ := idSet("warm", max(n/10, g))
	if err := submitAll(ctx, e.client, warmIDs, g, b.tgz); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	ids, _ := idSet("job", n)
	t0 := time.Now()
	if err := submitAll(ctx, e.client, ids, g, b.tgz); err != nil {
		return r, err
	}
	r.PerSecond = rate(n, time.Since(t0))
	return r, nil
}
