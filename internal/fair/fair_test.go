package fair

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestNewcomerIsServedAtOnce(t *testing.T) {
	t.Parallel()
	q := NewQueue[int]()
	for i := range 60 {
		q.Push("big", 0, Interactive, i)
	}
	// big has been served for a while before small arrives.
	for range 10 {
		if _, who, _ := q.Pop(); who != "big" {
			t.Fatalf("%s served while big is alone", who)
		}
	}
	q.Push("small", 0, Interactive, -1)
	for i := range 2 {
		if v, who, _ := q.Pop(); who == "small" {
			if v != -1 {
				t.Fatalf("small got %d", v)
			}
			return
		}
		_ = i
	}
	t.Fatal("small was not served within two turns of arriving")
}

func TestSharesFollowWeights(t *testing.T) {
	t.Parallel()
	q := NewQueue[int]()
	for i := range 300 {
		q.Push("a", 2, Interactive, i)
		q.Push("b", 1, Interactive, i)
	}
	got := map[string]int{}
	for range 90 {
		_, who, _ := q.Pop()
		got[who]++
	}
	if got["a"] < 59 || got["a"] > 61 {
		t.Fatalf("served %v in 90 turns, want a 60 ± 1 (weight 2 against 1)", got)
	}
}

func TestSkewedTenantsShareEqually(t *testing.T) {
	t.Parallel()
	// Ten tenants, one with half of all items, arriving in random order
	// while items are served: over the turns when all ten wait, each gets
	// the same share.
	rng := rand.New(rand.NewPCG(1, 2))
	q := NewQueue[int]()
	const total = 20000
	pushed := 0
	push := func() {
		tenant := "t0"
		if rng.IntN(2) == 1 {
			tenant = fmt.Sprintf("t%d", 1+rng.IntN(9))
		}
		q.Push(tenant, 0, Interactive, pushed)
		pushed++
	}
	for range 2000 {
		push()
	}
	served := make([]float64, 10)
	for pushed < total {
		push()
		push()
		all := q.Tenants() == 10
		_, who, _ := q.Pop()
		if all {
			var n int
			fmt.Sscanf(who, "t%d", &n)
			served[n]++
		}
	}
	if j := Jain(served); j < 0.99 {
		t.Fatalf("Jain's index %.3f over the turns when all waited, want ≥ 0.99: %v", j, served)
	}
}

func TestIdleTimeEarnsNoCredit(t *testing.T) {
	t.Parallel()
	q := NewQueue[int]()
	q.Push("a", 0, Interactive, 0)
	q.Pop() // a served once, then idle
	for i := range 100 {
		q.Push("b", 0, Interactive, i)
	}
	for range 50 {
		q.Pop() // b alone for 50 turns
	}
	for i := range 50 {
		q.Push("a", 0, Interactive, i)
	}
	// a comes back: turns alternate; a does not get 50 in a row.
	run := 0
	for range 20 {
		if _, who, _ := q.Pop(); who == "a" {
			run++
			if run > 1 {
				t.Fatal("a served twice in a row after idling: idle time earned credit")
			}
		} else {
			run = 0
		}
	}
}

func TestInteractiveFirstBatchNeverStarves(t *testing.T) {
	t.Parallel()
	q := NewQueue[string]()
	for i := range 20 {
		q.Push("class", 0, Batch, fmt.Sprint("b", i))
	}
	for i := range 20 {
		q.Push("class", 0, Interactive, fmt.Sprint("i", i))
	}
	var order []byte
	for q.Len() > 0 {
		v, _, _ := q.Pop()
		order = append(order, v[0])
	}
	// One batch item in every five turns while both wait, then the rest.
	want := "iiiib" + "iiiib" + "iiiib" + "iiiib" + "iiiib" + "bbbbbbbbbbbbbbb"
	if string(order) != want {
		t.Fatalf("order %s\n want %s", order, want)
	}
}

func TestIdleTenantsAreForgotten(t *testing.T) {
	t.Parallel()
	q := NewQueue[int]()
	for i := range 5000 {
		q.Push(fmt.Sprint("t", i), 0, Interactive, i)
	}
	for q.Len() > 0 {
		q.Pop()
	}
	if len(q.tenants) != 0 {
		t.Fatalf("%d tenants hold items", len(q.tenants))
	}
	// Their tags are forgotten once the virtual time passes them: after
	// two turns of whoever comes next.
	for i := range 3 {
		q.Push("next", 0, Interactive, i)
	}
	q.Pop()
	q.Pop()
	if n := q.flows.Tracked(); n > 1 {
		t.Fatalf("%d tenants tracked after every one left and another was served twice", n)
	}
}

func TestBurstThatRanDryComesBackBehindANewcomer(t *testing.T) {
	t.Parallel()
	q := NewQueue[int]()
	for i := range 4 {
		q.Push("big", 0, Interactive, i)
	}
	for q.Len() > 0 {
		q.Pop()
	}
	// big's next requests and small's first arrive while nothing waits.
	q.Push("big", 0, Interactive, 4)
	q.Push("small", 0, Interactive, 0)
	if _, who, _ := q.Pop(); who != "small" {
		t.Fatalf("%s went first: a tenant served four times came back even with a newcomer", who)
	}
}

func TestFIFOWithinAClass(t *testing.T) {
	t.Parallel()
	q := NewQueue[int]()
	for i := range 1000 {
		q.Push("a", 0, Interactive, i)
	}
	for i := range 1000 {
		if v, _, _ := q.Pop(); v != i {
			t.Fatalf("got %d, want %d", v, i)
		}
	}
	if _, _, ok := q.Pop(); ok {
		t.Fatal("an empty queue gave an item")
	}
}

// BenchmarkDecision measures one dispatch decision with 1 000 tenants
// and 100 000 items waiting: a Pop, and the Push that keeps the queue
// full.
func BenchmarkDecision(b *testing.B) {
	q := NewQueue[int]()
	rng := rand.New(rand.NewPCG(3, 4))
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprint("tenant-", i)
	}
	for i := range 100_000 {
		q.Push(names[rng.IntN(len(names))], 0, Class(rng.IntN(2)), i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		q.Pop()
		q.Push(names[rng.IntN(len(names))], 0, Class(i&1), i)
	}
}

func TestJain(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3, 3, 3}, 1},
		{[]float64{9, 0, 0}, 1.0 / 3},
		{[]float64{0, 0}, 1},
		// One tenant with half of ten tenants' deploys, the rest equal.
		{[]float64{9, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 18.0 * 18 / (10 * 90)},
	} {
		if got := Jain(tc.xs); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("Jain(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}
