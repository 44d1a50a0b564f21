package worker

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// leaseKeeper extends the lease of every message the worker holds, from
// one goroutine: each tick sends InProgress for all of them. A goroutine
// and a ticker per job would do the same for ten thousand times the
// goroutines and timers when ten thousand builds are in flight. A message
// held just after a tick gets its first heartbeat at the next one, so no
// message goes longer than one interval without.
type leaseKeeper struct {
	mu   sync.Mutex
	msgs map[*heldMsg]struct{}
}

type heldMsg struct{ msg jetstream.Msg }

// hold keeps msg's lease alive until release is called.
func (k *leaseKeeper) hold(msg jetstream.Msg) (release func()) {
	h := &heldMsg{msg: msg}
	k.mu.Lock()
	if k.msgs == nil {
		k.msgs = make(map[*heldMsg]struct{})
	}
	k.msgs[h] = struct{}{}
	k.mu.Unlock()
	return func() {
		k.mu.Lock()
		delete(k.msgs, h)
		k.mu.Unlock()
	}
}

// run sends the heartbeats every interval until ctx ends.
func (k *leaseKeeper) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var batch []jetstream.Msg
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		k.mu.Lock()
		batch = batch[:0]
		for h := range k.msgs {
			batch = append(batch, h.msg)
		}
		k.mu.Unlock()
		// Outside the lock: InProgress writes to the connection, and a
		// slow write must not hold up jobs starting or ending.
		for _, m := range batch {
			_ = m.InProgress()
		}
		clear(batch)
	}
}
