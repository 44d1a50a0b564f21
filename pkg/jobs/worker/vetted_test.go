package worker

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// Jobs that need one tarball checked at once share one check; a check
// that failed is not remembered.
func TestVettedSetChecksOnce(t *testing.T) {
	t.Parallel()
	var v vettedSet
	var runs atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{})
	check := func() error {
		if runs.Add(1) == 1 {
			close(started)
			<-release
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	wg.Go(func() { errs <- v.do(t.Context(), "k", check) })
	<-started // the first check is running: the others must wait for it
	for range 9 {
		wg.Go(func() { errs <- v.do(t.Context(), "k", check) })
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("%d checks for one key", n)
	}

	bad := errors.New("refused")
	if err := v.do(t.Context(), "bad", func() error { return bad }); !errors.Is(err, bad) {
		t.Fatal(err)
	}
	again := false
	if err := v.do(t.Context(), "bad", func() error { again = true; return nil }); err != nil || !again {
		t.Fatalf("a failed check was remembered: %v, ran again %v", err, again)
	}

	ctx, cancel := context.WithCancel(t.Context())
	hold := make(chan struct{})
	go func() { _ = v.do(t.Context(), "slow", func() error { <-hold; return nil }) }()
	for {
		v.mu.Lock()
		_, busy := v.busy["slow"]
		v.mu.Unlock()
		if busy {
			break
		}
		runtime.Gosched() // until the goroutine above has started its check
	}
	cancel()
	if err := v.do(ctx, "slow", func() error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("a waiter whose job ended: %v", err)
	}
	close(hold)
}
