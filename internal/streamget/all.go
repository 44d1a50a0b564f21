package streamget

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// All reads every message of a limits-retention stream on subject stored
// now, oldest first, with an ordered consumer. In a cluster a consumer
// just created may not answer its first pull yet ("no responders"): the
// read then starts again, a few times, a little later each time.
func All(ctx context.Context, s jetstream.Stream, subject string) ([]Msg, error) {
	return retried(ctx, func() ([]Msg, error) { return readAll(ctx, s, subject) })
}

func readAll(ctx context.Context, s jetstream.Stream, subject string) ([]Msg, error) {
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, err
	}
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	if total == 0 {
		return nil, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return nil, err
	}
	out := make([]Msg, 0, total)
	for uint64(len(out)) < total {
		batch, err := cons.Fetch(int(min(total-uint64(len(out)), 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			out = append(out, Msg{Data: m.Data(), Header: m.Headers(), Seq: meta.Sequence.Stream, Time: meta.Timestamp})
			got++
		}
		if got == 0 {
			if err := batch.Error(); err != nil {
				return nil, err
			}
			break // messages expired or were purged meanwhile
		}
	}
	return out, nil
}
