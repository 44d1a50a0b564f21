package budget

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The benchmarks below measure what one permit costs under each way of
// sharing a bucket that was considered (docs/ARCHITECTURE.md, "API
// budget"). The rate is set so high that nobody waits: they measure
// coordination, not the limit. Three connections stand for three worker
// processes; RunParallel adds goroutines on each.
//
//	go test -run '^$' -bench 'Permit' -benchtime 3000x ./pkg/budget/

const benchConns = 3

func BenchmarkPermitLocalMemory(b *testing.B) {
	s := NewMemoryStore()
	r := newRule(Limit{Requests: 1 << 30, Window: time.Second}, 0, 1)
	b.SetParallelism(8) // 16 goroutines on 2 cores: one worker's concurrency
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = s.Update(context.Background(), "t.e", func(st *State) { reserve(st, time.Now().UnixNano(), r) })
		}
	})
}

// BenchmarkPermitSharedKV is the chosen design: one compare-and-set of the
// bucket's GCRA state per permit, retried on conflict.
func BenchmarkPermitSharedKV(b *testing.B) {
	stores := kvStores(b, benchConns)
	r := newRule(Limit{Requests: 1 << 30, Window: time.Second}, 0, 1)
	var next atomic.Int64
	b.ResetTimer()
	b.SetParallelism(8) // 16 goroutines on 2 cores: one worker's concurrency
	b.RunParallel(func(pb *testing.PB) {
		s := stores[next.Add(1)%benchConns]
		for pb.Next() {
			if _, err := s.Update(context.Background(), "t.e", func(st *State) { reserve(st, time.Now().UnixNano(), r) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	var conflicts int64
	for _, s := range stores {
		conflicts += s.Conflicts()
	}
	b.ReportMetric(float64(conflicts)/float64(b.N), "conflicts/op")
}

// BenchmarkPermitWindowCounter is the alternative of atomic counters per
// fixed window: a JetStream counter (Nats-Incr) per (bucket, window); a
// permit is granted when the incremented value is within the limit. One
// round trip and no conflicts, but no order among callers, bursts at
// every window start, and windows that need not line up with the API's.
func BenchmarkPermitWindowCounter(b *testing.B) {
	jses := natsConns(b, benchConns)
	ctx := context.Background()
	if _, err := jses[0].CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: "BUDGET_COUNTERS", Subjects: []string{"budgetctr.>"}, AllowMsgCounter: true, AllowDirect: true,
		Storage: jetstream.FileStorage,
	}); err != nil {
		b.Fatalf("counter stream: %v", err)
	}
	var next atomic.Int64
	b.ResetTimer()
	b.SetParallelism(8) // 16 goroutines on 2 cores: one worker's concurrency
	b.RunParallel(func(pb *testing.PB) {
		js := jses[next.Add(1)%benchConns]
		for pb.Next() {
			msg := nats.NewMsg("budgetctr.t.e." + strconv.FormatInt(time.Now().Unix(), 10))
			msg.Header.Set("Nats-Incr", "1")
			ack, err := js.PublishMsg(ctx, msg)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := strconv.ParseInt(ack.Value, 10, 64); err != nil {
				b.Errorf("counter value %q: %v", ack.Value, err)
				return
			}
		}
	})
}
