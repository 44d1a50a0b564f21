package fair

import "container/heap"

// DefaultWeight is a tenant's weight when none is configured.
const DefaultWeight = 1.0

// Flows keeps the virtual time of every tenant with work waiting and
// says whose turn it is. It is not safe for concurrent use: its owner
// serialises calls (a dispatcher goroutine, or a mutex).
type Flows struct {
	flows map[string]*flow
	ready flowHeap // the backlogged flows, by tag
	// vtime is the tag of the flow served last: where a flow that was idle
	// starts again.
	vtime float64
	// seq orders flows with equal tags by when they became backlogged.
	seq uint64
}

type flow struct {
	key    string
	weight float64
	tag    float64
	seq    uint64
	index  int // in ready; -1 while idle
}

// NewFlows returns an empty set of flows.
func NewFlows() *Flows { return &Flows{flows: map[string]*flow{}} }

// Activate marks key's tenant as having work waiting, with the given
// weight (DefaultWeight when not positive). Activating a waiting tenant
// only updates its weight.
func (f *Flows) Activate(key string, weight float64) {
	if weight <= 0 {
		weight = DefaultWeight
	}
	fl := f.flows[key]
	if fl == nil {
		fl = &flow{key: key, index: -1}
		f.flows[key] = fl
	}
	fl.weight = weight
	if fl.index >= 0 {
		return
	}
	fl.tag = max(fl.tag, f.vtime)
	f.seq++
	fl.seq = f.seq
	heap.Push(&f.ready, fl)
}

// Next names the waiting tenant whose turn it is, without charging it.
func (f *Flows) Next() (key string, ok bool) {
	if len(f.ready) == 0 {
		return "", false
	}
	return f.ready[0].key, true
}

// Charge records that key's tenant was served cost units (one job, one
// call), moving its tag on by cost/weight. A tenant that is not waiting
// is charged too (work it took without asking its turn), which only
// delays its next turn.
func (f *Flows) Charge(key string, cost float64) {
	fl := f.flows[key]
	if fl == nil {
		fl = &flow{key: key, weight: DefaultWeight, index: -1, tag: f.vtime}
		f.flows[key] = fl
	}
	f.vtime = max(f.vtime, fl.tag)
	fl.tag += cost / fl.weight
	if fl.index >= 0 {
		heap.Fix(&f.ready, fl.index)
	}
}

// Deactivate marks key's tenant as having nothing waiting. Its tag is
// kept while it is ahead of the virtual time (it was served more than its
// share lately and must not come back ahead of the others: a burst that
// runs dry for a moment comes back behind a newcomer), and dropped once
// the virtual time has passed it.
func (f *Flows) Deactivate(key string) {
	fl := f.flows[key]
	if fl == nil {
		return
	}
	if fl.index >= 0 {
		heap.Remove(&f.ready, fl.index)
	}
	f.forget(fl)
	// Idle flows still ahead of the virtual time when they left are
	// dropped once it has passed them: swept when they outnumber the
	// waiting ones, so the sweep's cost is spread over as many calls.
	if len(f.flows) > 2*len(f.ready)+64 {
		f.sweep()
	}
}

func (f *Flows) sweep() {
	for _, fl := range f.flows {
		f.forget(fl)
	}
}

// forget drops an idle flow whose tag no longer matters.
func (f *Flows) forget(fl *flow) {
	if fl.index < 0 && fl.tag <= f.vtime {
		delete(f.flows, fl.key)
	}
}

// Waiting is how many tenants have work waiting.
func (f *Flows) Waiting() int { return len(f.ready) }

// Tracked is how many tenants the flows keep state for: the waiting ones
// and the idle ones still ahead of the virtual time.
func (f *Flows) Tracked() int {
	f.sweep()
	return len(f.flows)
}

type flowHeap []*flow

func (h flowHeap) Len() int { return len(h) }
func (h flowHeap) Less(i, j int) bool {
	if h[i].tag != h[j].tag {
		return h[i].tag < h[j].tag
	}
	return h[i].seq < h[j].seq
}
func (h flowHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *flowHeap) Push(x any) {
	fl := x.(*flow)
	fl.index = len(*h)
	*h = append(*h, fl)
}
func (h *flowHeap) Pop() any {
	old := *h
	fl := old[len(old)-1]
	old[len(old)-1] = nil
	fl.index = -1
	*h = old[:len(old)-1]
	return fl
}
