package fair

// Class is an item's priority within its tenant's share.
type Class uint8

const (
	// Interactive work (a user waiting on "Publish") goes first.
	Interactive Class = iota
	// Batch work (a class's 300 starter apps) takes one turn in every
	// BatchEvery while interactive work of the same tenant waits.
	Batch
)

// BatchEvery is how often a tenant's turn goes to its batch work while
// interactive work waits too: one turn in BatchEvery.
const BatchEvery = 5

// Queue holds items of many tenants and gives them out in fair order:
// tenants by Flows, within a tenant interactive before batch (one batch
// item in every BatchEvery while both wait), and first in, first out
// within a class. It is not safe for concurrent use.
type Queue[T any] struct {
	flows   *Flows
	tenants map[string]*tenantItems[T]
	n       int
}

type tenantItems[T any] struct {
	classes [2]fifo[T]
	// sinceBatch counts the interactive items given out since the last
	// batch item while batch items waited.
	sinceBatch int
	weight     float64
}

// NewQueue returns an empty queue.
func NewQueue[T any]() *Queue[T] {
	return &Queue[T]{flows: NewFlows(), tenants: map[string]*tenantItems[T]{}}
}

// Push adds v to tenant's items of class c. weight is the tenant's
// weight (DefaultWeight when not positive); the latest given wins.
func (q *Queue[T]) Push(tenant string, weight float64, c Class, v T) {
	t := q.tenants[tenant]
	if t == nil {
		t = &tenantItems[T]{}
		q.tenants[tenant] = t
	}
	t.weight = weight
	t.classes[c&1].push(v)
	q.n++
	q.flows.Activate(tenant, weight)
}

// Pop removes and returns the item whose turn it is.
func (q *Queue[T]) Pop() (v T, tenant string, ok bool) {
	tenant, ok = q.flows.Next()
	if !ok {
		return v, "", false
	}
	t := q.tenants[tenant]
	inter, batch := &t.classes[Interactive], &t.classes[Batch]
	switch {
	case batch.len() > 0 && (inter.len() == 0 || t.sinceBatch >= BatchEvery-1):
		v = batch.pop()
		t.sinceBatch = 0
	default:
		v = inter.pop()
		if batch.len() > 0 {
			t.sinceBatch++
		}
	}
	q.n--
	q.flows.Charge(tenant, 1)
	if inter.len() == 0 && batch.len() == 0 {
		q.flows.Deactivate(tenant)
		delete(q.tenants, tenant)
	}
	return v, tenant, true
}

// Len is how many items wait.
func (q *Queue[T]) Len() int { return q.n }

// Tenants is how many tenants have items waiting.
func (q *Queue[T]) Tenants() int { return len(q.tenants) }

// Waiting is how many items of tenant wait, by class.
func (q *Queue[T]) Waiting(tenant string) (interactive, batch int) {
	t := q.tenants[tenant]
	if t == nil {
		return 0, 0
	}
	return t.classes[Interactive].len(), t.classes[Batch].len()
}

// Each calls fn for every tenant with items waiting.
func (q *Queue[T]) Each(fn func(tenant string, interactive, batch int)) {
	for k, t := range q.tenants {
		fn(k, t.classes[Interactive].len(), t.classes[Batch].len())
	}
}

// fifo is a queue on a slice that reuses its space: items are taken from
// head, and the slice is compacted once the taken part is half of it.
type fifo[T any] struct {
	items []T
	head  int
}

func (f *fifo[T]) len() int { return len(f.items) - f.head }

func (f *fifo[T]) push(v T) { f.items = append(f.items, v) }

func (f *fifo[T]) pop() T {
	var zero T
	v := f.items[f.head]
	f.items[f.head] = zero
	f.head++
	switch {
	case f.head == len(f.items):
		f.items, f.head = f.items[:0], 0
	case f.head > 32 && f.head*2 >= len(f.items):
		n := copy(f.items, f.items[f.head:])
		clear(f.items[n:])
		f.items, f.head = f.items[:n], 0
	}
	return v
}
