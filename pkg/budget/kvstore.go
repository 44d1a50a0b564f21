package budget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// BucketBudget is the KV bucket holding the fleet's shared buckets, keyed
// <team>.<endpoint>.
const BucketBudget = "DEPLOY_BUDGET"

// KVStoreConfig configures a KVStore.
type KVStoreConfig struct {
	// Replicas of the KV bucket: 1 on one server, 3 in a cluster.
	// Defaults to 1.
	Replicas int
	// MaxRetries bounds compare-and-set attempts of one update. Defaults to 100.
	MaxRetries int
}

// KVStore shares bucket states among processes through a NATS KV bucket,
// updated by compare-and-set. A watch keeps a local copy of every bucket
// fresh, so most updates land at the first try (one round trip) and
// pauses decided anywhere reach every process's waiters at once.
type KVStore struct {
	kv        jetstream.KeyValue
	retries   int
	conflicts atomic.Int64

	mu    sync.Mutex
	cache map[string]cached

	cancel context.CancelFunc
	done   chan struct{}
}

type cached struct {
	state State
	rev   uint64
}

// NewKVStore creates or binds the budget bucket and starts watching it.
// Close stops the watch.
func NewKVStore(ctx context.Context, js jetstream.JetStream, cfg KVStoreConfig) (*KVStore, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 100
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketBudget,
		Description: "deployq: the fleet's shared Vercel API budget",
		History:     1,
		Replicas:    cfg.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("budget bucket %s: %w", BucketBudget, err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch budget bucket: %w", err)
	}
	s := &KVStore{kv: kv, retries: cfg.MaxRetries, cache: map[string]cached{}, cancel: cancel, done: make(chan struct{})}
	go s.follow(wctx, w)
	return s, nil
}

// Close stops following the bucket.
func (s *KVStore) Close() {
	s.cancel()
	<-s.done
}

func (s *KVStore) follow(ctx context.Context, w jetstream.KeyWatcher) {
	defer close(s.done)
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil { // end of the initial values
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				s.forget(e.Key())
				continue
			}
			var st State
			if json.Unmarshal(e.Value(), &st) == nil {
				s.remember(e.Key(), st, e.Revision())
			}
		}
	}
}

func (s *KVStore) remember(key string, st State, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache[key]; !ok || rev > c.rev {
		s.cache[key] = cached{state: st, rev: rev}
	}
}

func (s *KVStore) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cache, key)
}

// Cached implements Store.
func (s *KVStore) Cached(key string) (State, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[key]
	return c.state, ok
}

// Conflicts counts compare-and-set races this store lost since it started.
func (s *KVStore) Conflicts() int64 { return s.conflicts.Load() }

// ErrContention means an update lost the compare-and-set race too often.
var ErrContention = errors.New("budget: too much contention on a shared bucket")

// Update implements Store with compare-and-set against the revision last
// seen, reading the bucket afresh only after losing a race.
func (s *KVStore) Update(ctx context.Context, key string, fn func(*State)) (State, error) {
	s.mu.Lock()
	c, known := s.cache[key]
	s.mu.Unlock()
	for range s.retries {
		st := c.state
		fn(&st)
		data, err := json.Marshal(st)
		if err != nil {
			return State{}, err
		}
		var rev uint64
		if !known {
			rev, err = s.kv.Create(ctx, key, data)
		} else {
			rev, err = s.kv.Update(ctx, key, data, c.rev)
		}
		if err == nil {
			s.remember(key, st, rev)
			return st, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return State{}, err
		}
		// Lost the race: read the winner's state and try again.
		s.conflicts.Add(1)
		e, gerr := s.kv.Get(ctx, key)
		switch {
		case errors.Is(gerr, jetstream.ErrKeyNotFound):
			c, known = cached{}, false
		case gerr != nil:
			return State{}, gerr
		default:
			c, known = cached{rev: e.Revision()}, true
			if err := json.Unmarshal(e.Value(), &c.state); err != nil {
				return State{}, fmt.Errorf("decode budget %s: %w", key, err)
			}
			s.remember(key, c.state, c.rev)
		}
	}
	return State{}, ErrContention
}
