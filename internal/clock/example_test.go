package clock_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deployq/deployq/internal/clock"
)

// A wait cut short reports why its context ended.
func ExampleSleep() {
	shutdown := errors.New("worker shutting down")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(shutdown)
	err := clock.Sleep(ctx, time.Hour)
	fmt.Println(errors.Is(err, shutdown))
	fmt.Println(clock.Sleep(context.Background(), time.Millisecond))
	// Output:
	// true
	// <nil>
}
