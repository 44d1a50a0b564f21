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
func Range(ctx context.Context, s jetstream.Stream, subject string, from, to uint64) ([]Msg, error) {
	if to <= from {
		return nil, nil
	}
	return retried(ctx, func() ([]Msg, error) { return readRange(ctx, s, subject, from, to) })
}

// Count is how many messages of a stream are on subject: what an ordered
// consumer from the start has to deliver, read from its first message,
// so the server counts and nothing else is sent.
func Count(ctx context.Context, s jetstream.Stream, subject string) (uint64, error) {
	return retried(ctx, func() (uint64, error) {
		cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
		if err != nil {
			return 0, err
		}
		batch, err := cons.FetchNoWait(1)
		if err != nil {
			return 0, err
		}
		m, ok := <-batch.Messages()
		if !ok {
			return 0, ignoreNoMessages(batch.Error())
		}
		meta, err := m.Metadata()
		if err != nil {
			return 0, err
		}
		return meta.NumPending + 1, nil // this message and those after it
	})
}

func readRange(ctx context.Context, s jetstream.Stream, subject string, from, to uint64) ([]Msg, error) {
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from,
	})
	if err != nil {
		return nil, err
	}
	var out []Msg
	for {
		// The span bounds the messages in it; a pull that asks for no
		// more than that rarely reads past to. No-wait: the range may
		// end at the stream's end, where a waiting pull would wait.
		batch, err := cons.FetchNoWait(int(min(to-from, 1000)))
		if err != nil {
			return nil, err
		}
		got, last := 0, false
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			if meta.Sequence.Stream >= to {
				last = true
				continue
			}
			out = append(out, Msg{Data: m.Data(), Header: m.Headers(), Seq: meta.Sequence.Stream, Time: meta.Timestamp})
			from = meta.Sequence.Stream + 1
			last = last || meta.NumPending == 0 || from >= to
		}
		if err := ignoreNoMessages(batch.Error()); err != nil {
			return nil, err
		}
		if got == 0 || last {
			return out, nil
		}
	}
}

// ignoreNoMessages is a no-wait pull's answer when nothing (more) is
// there: the end of what there is to read, not a failure.
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
