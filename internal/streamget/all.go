package streamget

import (
	"context"
	"math"

	"github.com/nats-io/nats.go/jetstream"
)

// All reads every message of a stream on subject stored now, oldest
// first: Range over every sequence.
func All(ctx context.Context, s jetstream.Stream, subject string) ([]Msg, error) {
	return Range(ctx, s, subject, 1, math.MaxUint64)
}
