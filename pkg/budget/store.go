package budget

import (
	"context"
	"sync"
)

// Store keeps bucket states. The budget is shared exactly as widely as
// its Store: a MemoryStore within one process, a KVStore across every
// process connected to the same NATS.
type Store interface {
	// Update applies fn to the state of key atomically and returns the
	// state written. fn may run more than once (compare-and-set retries),
	// so it must only compute from its argument.
	Update(ctx context.Context, key string, fn func(*State)) (State, error)
	// Cached returns the latest state of key this process has seen, with
	// no round trip.
	Cached(key string) (State, bool)
}

// MemoryStore keeps buckets in this process only: every process that
// uses one believes it owns the whole budget.
type MemoryStore struct {
	mu     sync.Mutex
	states map[string]State
}

// NewMemoryStore returns an empty in-process store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{states: map[string]State{}} }

// Update implements Store.
func (m *MemoryStore) Update(_ context.Context, key string, fn func(*State)) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.states[key]
	fn(&s)
	m.states[key] = s
	return s, nil
}

// Cached implements Store.
func (m *MemoryStore) Cached(key string) (State, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.states[key]
	return s, ok
}
