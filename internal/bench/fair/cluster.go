package fair

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/deployq/deployq/internal/bench"
	"github.com/deployq/deployq/internal/clock"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/natsembed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The cluster part: what tenants' lanes cost a 3-node NATS cluster. A
// work queue's consumers have the stream's replicas, so on a cluster
// each lane is a Raft group on every node: the part makes that many,
// then reads what they took. The three servers run in this process, so
// memory and CPU are the three nodes' together (plus this small client).

// clusterResult is what the cluster part measured.
type clusterResult struct {
	Lanes          int     `json:"lanes"`
	CreateSeconds  float64 `json:"createSeconds"`
	CreateP50      float64 `json:"createP50Seconds"`
	CreateP99      float64 `json:"createP99Seconds"`
	HeapBeforeMB   float64 `json:"heapBeforeMB"`
	HeapAfterMB    float64 `json:"heapAfterMB"`
	RSSBeforeMB    float64 `json:"rssBeforeMB"`
	RSSAfterMB     float64 `json:"rssAfterMB"`
	IdleCPUBefore  float64 `json:"idleCPUBefore"` // CPU seconds per second, the three nodes idle
	IdleCPUAfter   float64 `json:"idleCPUAfter"`
	FetchP50       float64 `json:"fetchP50Seconds"` // a no_wait fetch of one request from a lane
	FetchP99       float64 `json:"fetchP99Seconds"`
	DeletedSeconds float64 `json:"deleteSeconds"`
}

// clusterIdle is how long idle CPU is read over.
const clusterIdle = 10 * time.Second

func (o options) cluster(ctx context.Context, dir string, stderr io.Writer) (*clusterResult, error) {
	fmt.Fprintf(stderr, "fairbench: cluster: %d lanes on a 3-node cluster\n", o.clusterLanes)
	c, err := natsembed.StartCluster(dir, 3)
	if err != nil {
		return nil, err
	}
	defer c.Shutdown()
	nc, err := c.Connect(nats.Name("fairbench-cluster"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	var assets *jobs.Assets
	for attempt := 0; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		assets, err = jobs.Setup(sctx, js, jobs.SetupConfig{Replicas: 3, MaxLanes: o.clusterLanes + 10})
		cancel()
		if err == nil {
			break
		}
		if attempt == 20 {
			return nil, err
		}
		// A cluster that has just formed may refuse R3 placement a moment.
		if err := clock.Sleep(ctx, 250*time.Millisecond); err != nil {
			return nil, err
		}
	}
	r := &clusterResult{Lanes: o.clusterLanes}
	r.HeapBeforeMB, r.RSSBeforeMB = memoryNow()
	if r.IdleCPUBefore, err = idleCPU(ctx); err != nil {
		return nil, err
	}

	// Every lane has one request waiting, as a tenant with work has.
	for i := range o.clusterLanes {
		if _, err := js.PublishAsync(jobs.RequestSubject(laneTenant(i), "r1"), []byte(`{}`)); err != nil {
			return nil, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("requests not stored within a minute")
	}

	// Made as workers make them: on demand, a few at once.
	began := time.Now()
	took := make([]time.Duration, o.clusterLanes)
	consumers := make([]jetstream.Consumer, o.clusterLanes)
	errs := make([]error, o.clusterLanes)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range o.clusterLanes {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			t0 := time.Now()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			consumers[i], errs[i] = assets.TenantConsumer(cctx, js, laneTenant(i), 0)
			took[i] = time.Since(t0)
		})
	}
	wg.Wait()
	r.CreateSeconds = time.Since(began).Seconds()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("make a lane: %w", err)
		}
	}
	r.CreateP50, r.CreateP99 = quantiles(took)
	r.HeapAfterMB, r.RSSAfterMB = memoryNow()
	if r.IdleCPUAfter, err = idleCPU(ctx); err != nil {
		return nil, err
	}

	// A worker's turn at a lane: a no_wait fetch of its request.
	fetches := make([]time.Duration, 0, o.clusterLanes)
	for _, cons := range consumers {
		t0 := time.Now()
		batch, err := cons.FetchNoWait(1)
		if err != nil {
			return nil, err
		}
		for m := range batch.Messages() {
			_ = m.Ack()
		}
		fetches = append(fetches, time.Since(t0))
	}
	r.FetchP50, r.FetchP99 = quantiles(fetches)

	began = time.Now()
	for i := range o.clusterLanes {
		if err := js.DeleteConsumer(ctx, jobs.StreamRequests, jobs.TenantConsumer(laneTenant(i))); err != nil {
			return nil, err
		}
	}
	r.DeletedSeconds = time.Since(began).Seconds()
	return r, nil
}

func laneTenant(i int) string { return fmt.Sprintf("lane-%05d", i) }

// memoryNow is this process's Go heap in use after two collections, and
// its RSS, in MB.
func memoryNow() (heap, rss float64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		if kb, ok := bench.StatusKB(status, "VmRSS"); ok {
			rss = float64(kb) / 1024
		}
	}
	return float64(ms.HeapInuse) / (1 << 20), rss
}

// idleCPU is the CPU this process spends per second over clusterIdle
// while nothing is asked of it: the nodes' heartbeats.
func idleCPU(ctx context.Context) (float64, error) {
	before, err := cpuTime()
	if err != nil {
		return 0, err
	}
	t := time.NewTimer(clusterIdle)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	after, err := cpuTime()
	if err != nil {
		return 0, err
	}
	return (after - before).Seconds() / clusterIdle.Seconds(), nil
}

func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// quantiles returns the median and the 99th percentile of ds, in seconds.
func quantiles(ds []time.Duration) (p50, p99 float64) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) float64 { return s[min(len(s)-1, int(q*float64(len(s))))].Seconds() }
	return at(0.5), at(0.99)
}
