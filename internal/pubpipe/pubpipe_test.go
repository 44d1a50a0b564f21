package pubpipe

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestMayBeStored(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum messages exceeded"}, false},
		{fmt.Errorf("nats: %w", &jetstream.APIError{Code: 400, ErrorCode: 10071}), false},
		{jetstream.ErrNoStreamResponse, false},
		{nats.ErrNoResponders, false},
		{fmt.Errorf("%w: %w", ErrNotSent, nats.ErrConnectionClosed), false},
		{context.DeadlineExceeded, true},
		{context.Canceled, true},
		{jetstream.ErrAsyncPublishTimeout, true},
		{nats.ErrDisconnected, true},
		{nats.ErrTimeout, true},
		{errors.New("something else"), true},
	} {
		if got := MayBeStored(tc.err); got != tc.want {
			t.Errorf("MayBeStored(%v) = %t, want %t", tc.err, got, tc.want)
		}
	}
}
