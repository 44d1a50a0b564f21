package buildtime_test

import (
	"context"
	"fmt"
	"time"

	"github.com/deployq/deployq/internal/buildtime"
)

// Without a bucket, a Learner learns from this process's builds alone:
// each observed build moves the mean a quarter of the way.
func ExampleLearner() {
	l := buildtime.New(nil, "team_example", 0, false, time.Now)
	fmt.Println(l.Snapshot().Cold())
	l.Observe(context.Background(), 40*time.Second)
	l.Observe(context.Background(), 20*time.Second)
	e := l.Snapshot()
	fmt.Println(e.Cold(), e.Mean, e.Samples)
	// Output:
	// true
	// false 35s 2
}
