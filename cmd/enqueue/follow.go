package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/nats-io/nats.go/jetstream"
)

// received is one message from the events stream.
type received struct {
	ev  jobs.Event
	raw []byte
	err error
	// fatal marks an error after which no more events come.
	fatal bool
}

// maxFilters bounds the subjects of one consumer: its configuration
// travels in one API request, which must fit the server's max payload.
const maxFilters = 256

// follower streams the stored and future events of a set of requests.
// Client.Watch is not used: it filters on one id or one tenant, so a batch
// would need a consumer per request or a replay of whole tenants; and
// without replay it subscribes lazily, with no signal that it is ready
// before the requests are published.
type follower struct {
	events chan received
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// follow starts consumers of up to perConsumer subjects each, delivering
// the events stored on the subjects past stream sequence after (0: every
// one), then new ones as they come.
func follow(ctx context.Context, js jetstream.JetStream, subjects []string, perConsumer int, after uint64) (*follower, error) {
	ctx, cancel := context.WithCancel(ctx)
	f := &follower{events: make(chan received), cancel: cancel}
	for chunk := range slices.Chunk(subjects, perConsumer) {
		cfg := jetstream.OrderedConsumerConfig{FilterSubjects: chunk, DeliverPolicy: jetstream.DeliverAllPolicy}
		if after > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
		}
		cons, err := js.OrderedConsumer(ctx, jobs.StreamEvents, cfg)
		if err != nil {
			f.stop()
			return nil, fmt.Errorf("follow events: %w", err)
		}
		msgs, err := cons.Messages()
		if err != nil {
			f.stop()
			return nil, fmt.Errorf("follow events: %w", err)
		}
		f.wg.Go(func() { f.pump(ctx, msgs) })
	}
	return f, nil
}

// followTenant is follow for a tenant's user, which may create no
// consumer: it subscribes to the tenant's events, then reads each
// request's latest event (a duplicate's outcome, or what was published
// before the subscription), and passes each event on once, by id.
func followTenant(ctx context.Context, client *jobs.Client, tenant string, ids []string) (*follower, error) {
	ctx, cancel := context.WithCancel(ctx)
	f := &follower{events: make(chan received), cancel: cancel}
	w, err := client.Watch(ctx, jobs.WatchFilter{Tenant: tenant})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("follow events: %w", err)
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	f.wg.Go(func() {
		defer w.Stop()
		seen := map[string]bool{}
		pass := func(ev jobs.Event, err error) bool {
			if err != nil {
				return f.send(ctx, received{err: fmt.Errorf("follow events: %w", err)})
			}
			if !want[ev.Data.RequestID] || seen[ev.ID] {
				return true
			}
			seen[ev.ID] = true
			raw, _ := json.Marshal(ev)
			return f.send(ctx, received{ev: ev, raw: raw})
		}
		for _, id := range ids {
			ev, err := client.LastEvent(ctx, tenant, id)
			if ev == nil && err == nil {
				continue
			}
			if err != nil || !pass(*ev, nil) {
				if err != nil && ctx.Err() == nil {
					f.send(ctx, received{err: fmt.Errorf("follow events: %w", err), fatal: true})
				}
				return
			}
		}
		for ev, err := range w.Events() {
			if !pass(ev, err) {
				return
			}
		}
	})
	return f, nil
}

// lastEventSeq is the events stream's last sequence: following from past
// it shows only what happens from now on, not a request's earlier runs.
func lastEventSeq(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	s, err := js.Stream(ctx, jobs.StreamEvents)
	if err != nil {
		return 0, fmt.Errorf("events stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("events stream: %w", err)
	}
	return info.State.LastSeq, nil
}

func (f *follower) pump(ctx context.Context, msgs jetstream.MessagesContext) {
	stop := context.AfterFunc(ctx, msgs.Stop)
	defer stop()
	defer msgs.Stop()
	for {
		msg, err := msgs.Next()
		if err != nil {
			if ctx.Err() == nil {
				f.send(ctx, received{err: fmt.Errorf("follow events: %w", err), fatal: true})
			}
			return
		}
		ev, err := jobs.DecodeEvent(msg.Data())
		if err != nil {
			err = fmt.Errorf("event on %s skipped: %w", msg.Subject(), err)
		}
		if !f.send(ctx, received{ev: ev, raw: msg.Data(), err: err}) {
			return
		}
	}
}

func (f *follower) send(ctx context.Context, r received) bool {
	select {
	case f.events <- r:
		return true
	case <-ctx.Done():
		return false
	}
}

// stop ends the consumers and waits for their goroutines.
func (f *follower) stop() {
	f.cancel()
	f.wg.Wait()
}
