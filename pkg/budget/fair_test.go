package budget

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/deployq/deployq/internal/fair"
	"github.com/deployq/deployq/pkg/vercel"
)

// queued waits until n callers stand in ep's line of b.
func queued(t *testing.T, b *Budget, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln := b.line(ep)
		ln.mu.Lock()
		got := ln.q.Len()
		ln.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers in line, want %d", got, n)
		}
		time.Sleep(time.Millisecond) // polling the line with a deadline
	}
}

// grants records the order in which callers were let through.
type grants struct {
	mu    sync.Mutex
	order []string
	wg    sync.WaitGroup
}

func (g *grants) wait(t *testing.T, b *Budget, tenant string, class fair.Class) {
	g.wg.Go(func() {
		ctx := fair.WithShare(context.Background(), fair.Share{Tenant: tenant, Class: class})
		if err := b.Wait(ctx, ep); err != nil {
			t.Error(err)
			return
		}
		g.mu.Lock()
		g.order = append(g.order, tenant)
		g.mu.Unlock()
	})
}

// served is how many callers were let through so far.
func (g *grants) served() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.order)
}

func (g *grants) position(tenant string) int {
	g.wg.Wait()
	for i, who := range g.order {
		if who == tenant {
			return i
		}
	}
	return -1
}

// burstThenSingle queues a burst of tenant big's calls on bigs, then one
// of tenant small on smalls (the same budget, or another process's), and
// fails unless small's call goes within two slots of arriving.
func burstThenSingle(t *testing.T, bigs, smalls *Budget) {
	t.Helper()
	var g grants
	for range 12 {
		g.wait(t, bigs, "big", fair.Interactive)
	}
	queued(t, bigs, 8)
	before := g.served()
	g.wait(t, smalls, "small", fair.Interactive)
	if pos := g.position("small"); pos < 0 || pos-before > 2 {
		t.Fatalf("small went %d-th, %d of big's calls having gone before it came: %v", pos+1, before, g.order)
	}
}

// One tenant's burst of calls does not hold up another tenant's single
// call in the same process: it goes within two slots of arriving.
func TestWaitingLineIsFairAcrossTenants(t *testing.T) {
	t.Parallel()
	b, err := New(NewMemoryStore(), Config{Limits: map[vercel.Endpoint]Limit{ep: {Requests: 10, Window: time.Second}}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	burstThenSingle(t, b, b)
}

// Two processes sharing a bucket: one holds a tenant's burst, the other a
// single call of another tenant, which goes within two slots instead of
// after the whole burst (each process reserves one slot at a time).
func TestSharedBucketIsFairAcrossProcesses(t *testing.T) {
	t.Parallel()
	stores := kvStores(t, 2)
	limits := map[vercel.Endpoint]Limit{ep: {Requests: 10, Window: time.Second}}
	a, err := New(stores[0], Config{Limits: limits, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(stores[1], Config{Limits: limits, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	burstThenSingle(t, a, b)
}

// A caller that stops waiting leaves the line; its slot goes to the next.
func TestCallerLeavingTheLineHandsOnItsSlot(t *testing.T) {
	t.Parallel()
	b, err := New(NewMemoryStore(), Config{Limits: map[vercel.Endpoint]Limit{ep: {Requests: 1, Window: time.Hour}}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(context.Background(), ep); err != nil { // spends the hour's only call at once
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() { errs <- b.Wait(ctx, ep) }()
	queued(t, b, 0)
	cancel()
	if err := <-errs; err == nil {
		t.Fatal("a cancelled caller was let through")
	}
	// The line is served by nobody once empty: a new caller starts it again.
	short, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	if err := b.Wait(short, ep); err == nil {
		t.Fatal("a second call within the hour was let through")
	}
}
