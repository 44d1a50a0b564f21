package streamget

import (
	"context"
	"errors"
	"time"

	"github.com/deployq/deployq/internal/clock"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Range reads the messages of a stream on subject whose sequence is in
// [from, to), oldest first: part of a stream, where All reads the whole
// of it. A reader that wants the newest messages first reads the ranges
// before the last one, going back.
//
// It reads through one ephemeral consumer that acknowledges nothing,
// pulled until the range ends: an ordered consumer would be made again
// on the server for every pull, and making a filtered consumer costs the
// server a count over the stream.
func Range(ctx context.Context, s jetstream.Stream, subject string, from, to uint64) ([]Msg, error) {
	if to <= from {
		return nil, nil
	}
	return retried(ctx, func() ([]Msg, error) { return readRange(ctx, s, subject, from, to) })
}

// Count is how many messages of a stream are on subject: what a consumer
// from the start would have to deliver, as the server counts it when the
// consumer is made; nothing is sent.
func Count(ctx context.Context, s jetstream.Stream, subject string) (uint64, error) {
	return retried(ctx, func() (uint64, error) {
		cons, done, err := reader(ctx, s, jetstream.ConsumerConfig{FilterSubject: subject})
		if err != nil {
			return 0, err
		}
		defer done()
		return cons.CachedInfo().NumPending, nil
	})
}

// reader makes an ephemeral consumer that reads without acknowledging,
// and returns the function that deletes it. Should the delete be lost,
// the server deletes it itself once idle.
func reader(ctx context.Context, s jetstream.Stream, cfg jetstream.ConsumerConfig) (jetstream.Consumer, func(), error) {
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.MemoryStorage = true
	cfg.InactiveThreshold = time.Minute
	cons, err := s.CreateConsumer(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return cons, func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.DeleteConsumer(ctx, cons.CachedInfo().Name)
	}, nil
}

func readRange(ctx context.Context, s jetstream.Stream, subject string, from, to uint64) ([]Msg, error) {
	cons, done, err := reader(ctx, s, jetstream.ConsumerConfig{
		FilterSubject: subject,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
	})
	if err != nil {
		return nil, err
	}
	defer done()
	var out []Msg
	for pending := cons.CachedInfo().NumPending; pending > 0 && from < to; {
		// Never more than are pending, so the pull is answered in full at
		// once (it waits only if messages expire meanwhile); and the span
		// bounds the messages left in it, so a pull rarely reads past to.
		batch, err := cons.Fetch(int(min(pending, to-from, 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			pending = meta.NumPending
			if meta.Sequence.Stream >= to {
				from = to
				continue
			}
			out = append(out, Msg{Data: m.Data(), Header: m.Headers(), Seq: meta.Sequence.Stream, Time: meta.Timestamp})
			from = meta.Sequence.Stream + 1
		}
		if err := ignoreNoMessages(batch.Error()); err != nil {
			return nil, err
		}
		if got == 0 {
			break // expired or purged meanwhile
		}
	}
	return out, nil
}

// ignoreNoMessages is a pull's answer when nothing (more) is there (the
// messages counted expired meanwhile): the end of what there is to read,
// not a failure.
func ignoreNoMessages(err error) error {
	if errors.Is(err, jetstream.ErrNoMessages) {
		return nil
	}
	return err
}

// retried runs read again, a few times and a little later each time,
// while it meets "no responders": in a cluster a consumer just created
// may not answer its first pull yet.
func retried[T any](ctx context.Context, read func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		out, err := read()
		if !errors.Is(err, nats.ErrNoResponders) || attempt == 5 {
			return out, err
		}
		if err := clock.Sleep(ctx, time.Duration(attempt)*100*time.Millisecond); err != nil {
			var zero T
			return zero, err
		}
	}
}
