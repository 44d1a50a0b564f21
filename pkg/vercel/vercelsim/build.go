package vercelsim

import (
	"container/heap"
	"time"
)

// Ready states, as Vercel spells them.
const (
	stateQueued       = "QUEUED"
	stateInitializing = "INITIALIZING"
	stateBuilding     = "BUILDING"
	stateReady        = "READY"
	stateError        = "ERROR"
	stateBlocked      = "BLOCKED"
)

// BuildFailedCode is the errorCode of a deployment failed by the fail-build
// marker.
const BuildFailedCode = "BUILD_FAILED"

// A build is not a goroutine: its whole schedule is fixed when the
// deployment is created, and its state is read off the clock. Ten thousand
// builds in flight cost ten thousand small structs.

// stateAt is the deployment's ready state at t.
func (d *deployment) stateAt(t time.Time) string {
	switch {
	case d.blocked:
		return stateBlocked
	case !t.Before(d.doneAt):
		if d.failed {
			return stateError
		}
		return stateReady
	case t.Before(d.initAt):
		return stateQueued
	case t.Before(d.buildAt):
		return stateInitializing
	default:
		return stateBuilding
	}
}

// schedule fixes a build's timeline: it starts when a build slot frees up
// (at once without a concurrency limit), queues for a tenth of its time,
// initializes for another tenth, builds for the rest.
func (d *deployment) schedule(start time.Time, dur time.Duration) {
	d.startAt = start
	d.initAt = start.Add(dur / 10)
	d.buildAt = start.Add(dur / 5)
	d.doneAt = start.Add(dur)
	d.aliasAt = d.doneAt
}

// buildSlots models Vercel's concurrent-build limit: a min-heap of the times
// at which each busy slot frees up. A deployment takes the slot that frees
// first. A deleted deployment keeps its slot until its build would have
// ended, which errs on the side of slower builds.
type buildSlots struct {
	n    int
	busy timeHeap
}

// start reserves a slot for a build of dur requested at now and returns when
// the build starts.
// full reports whether every slot is busy at now.
func (b *buildSlots) full(now time.Time) bool {
	if b.n == 0 || b.busy.Len() < b.n {
		return false
	}
	busy := 0
	for _, free := range b.busy {
		if free.After(now) {
			busy++
		}
	}
	return busy >= b.n
}

func (b *buildSlots) start(now time.Time, dur time.Duration) time.Time {
	if b.n == 0 {
		return now
	}
	start := now
	if b.busy.Len() >= b.n {
		if free := heap.Pop(&b.busy).(time.Time); free.After(now) {
			start = free
		}
	}
	heap.Push(&b.busy, start.Add(dur))
	return start
}

type timeHeap []time.Time

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *timeHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
