package jobstest

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// FastBackOff retries quickly, so tests of transient faults stay short.
func FastBackOff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 5 * time.Millisecond
	b.MaxInterval = 50 * time.Millisecond
	b.MaxElapsedTime = 0
	return b
}
