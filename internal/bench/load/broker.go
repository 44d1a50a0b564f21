package load

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// brokerRun is one measurement of item 2: what the embedded JetStream
// does with no deployq code in the way.
type brokerRun struct {
	Messages int `json:"messages"`
	// PublishAsync is async publishes per second, from the first publish
	// to the last acknowledgement.
	PublishAsync float64 `json:"publishAsyncPerSecond"`
	// ConsumeAck is messages fetched and acked per second, from the first
	// fetch to the server having every ack.
	ConsumeAck float64 `json:"consumeAckPerSecond"`
	// PublishSync is synchronous publishes per second from one goroutine:
	// one round trip each, what every step of Submit pays.
	PublishSync float64 `json:"publishSyncPerSecond"`
}

// The raw stream mirrors DEPLOY_REQUESTS (work queue, file storage, one
// replica), without deduplication ids, which is the broker's best case.
const (
	rawStream  = "LOADBENCH_RAW"
	rawSubject = "loadbench.raw.bench"
)

// runBroker measures item 2 on a fresh server set up as the others are.
func runBroker(ctx context.Context, b *runner) (brokerRun, error) {
	r := brokerRun{Messages: b.o.rawN}
	e, err := newEnv(ctx, b.tmp, b.o.keep, envConfig{name: "broker"})
	if err != nil {
		return r, err
	}
	defer e.close()
	var pubErrs atomic.Int64
	js, err := jetstream.New(e.producer,
		jetstream.WithPublishAsyncMaxPending(b.o.rawPending),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { pubErrs.Add(1) }))
	if err != nil {
		return r, err
	}
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	stream, err := js.CreateStream(sctx, jetstream.StreamConfig{
		Name: rawStream, Subjects: []string{rawSubject}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Replicas: 1,
	})
	if err != nil {
		return r, err
	}
	cons, err := e.workerJS.CreateOrUpdateConsumer(sctx, rawStream, jetstream.ConsumerConfig{
		Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute, MaxAckPending: 10000,
	})
	if err != nil {
		return r, err
	}
	payload := make([]byte, rawPayloadBytes)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}

	// A tenth of the load first, untimed: connections, file blocks and
	// the consumer's state are warm when the clock starts.
	warm := max(b.o.rawN/10, 1)
	if _, err := publishAsync(ctx, js, payload, warm, b.o.timeout); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	if _, err := consumeAck(ctx, cons, e, warm, b.o.rawBatch, b.o.timeout); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}

	d, err := publishAsync(ctx, js, payload, b.o.rawN, b.o.timeout)
	if err != nil {
		return r, err
	}
	r.PublishAsync = rate(b.o.rawN, d)
	if n := pubErrs.Load(); n > 0 {
		return r, fmt.Errorf("%d async publishes failed", n)
	}
	if d, err = consumeAck(ctx, cons, e, b.o.rawN, b.o.rawBatch, b.o.timeout); err != nil {
		return r, err
	}
	r.ConsumeAck = rate(b.o.rawN, d)

	n1 := max(b.o.rawN/100, 100)
	t0 := time.Now()
	for range n1 {
		pctx, pcancel := context.WithTimeout(ctx, setupTimeout)
		_, err := js.Publish(pctx, rawSubject, payload)
		pcancel()
		if err != nil {
			return r, fmt.Errorf("sync publish: %w", err)
		}
	}
	r.PublishSync = rate(n1, time.Since(t0))
	return r, checkDrained(sctx, stream, uint64(n1))
}

// checkDrained makes sure every acked message left the work queue, so the
// consume figure counted acks that took effect. The server applies acks
// a moment after receiving them, hence the short, bounded wait.
func checkDrained(ctx context.Context, s jetstream.Stream, want uint64) error {
	var msgs uint64
	for range 100 {
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if msgs = info.State.Msgs; msgs == want {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("stream holds %d messages after the runs, want %d (the sync publishes)", msgs, want)
}

// rawPayloadBytes is about a deploy request's size (a request of this
// benchmark is about 230 bytes of JSON).
const rawPayloadBytes = 128

// publishAsync publishes n messages without waiting for each ack and
// returns the time until the last ack came back.
func publishAsync(ctx context.Context, js jetstream.JetStream, payload []byte, n int, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	for range n {
		if _, err := js.PublishAsync(rawSubject, payload); err != nil {
			return 0, fmt.Errorf("async publish: %w", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(timeout):
		return 0, fmt.Errorf("async publishes not acknowledged after %s", timeout)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return time.Since(t0), nil
}

// consumeAck fetches n messages in batches and acks each, then flushes
// the connection so the time includes the server receiving every ack.
func consumeAck(ctx context.Context, cons jetstream.Consumer, e *env, n, batch int, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	t0 := time.Now()
	got := 0
	for got < n {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("consumed %d of %d messages before the timeout", got, n)
		}
		msgs, err := cons.Fetch(min(batch, n-got), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return 0, fmt.Errorf("fetch: %w", err)
		}
		for m := range msgs.Messages() {
			if err := m.Ack(); err != nil {
				return 0, fmt.Errorf("ack: %w", err)
			}
			got++
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("fetch: %w", err)
		}
	}
	if err := e.worker.FlushTimeout(timeout); err != nil {
		return 0, fmt.Errorf("flush acks: %w", err)
	}
	return time.Since(t0), nil
}
