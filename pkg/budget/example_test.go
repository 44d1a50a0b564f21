package budget_test

import (
	"context"
	"fmt"
	"time"

	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/vercel"
)

// Vercel counts deployments per 5 minutes, per hour and per day at once:
// one limit with two caps. A plan presets every endpoint.
func ExampleParseLimits() {
	limits, err := budget.ParseLimits("deployments.create=120/5m+450/1h+6000/24h")
	if err != nil {
		panic(err)
	}
	l := limits[vercel.EndpointCreateDeployment]
	fmt.Println(l, "paced at", l.Requests, "per", l.Window, "with", len(l.Caps), "caps")
	fmt.Println(budget.PlanLimits(budget.PlanHobby)[vercel.EndpointCreateDeployment])
	// Output:
	// 120/5m+450/1h+6000/24h paced at 120 per 5m0s with 2 caps
	// 60/5m+100/1h+100/24h
}

// Every API call waits for its endpoint's budget. A MemoryStore keeps the
// buckets in this process; a KVStore shares them with the fleet.
func ExampleBudget_Wait() {
	b, err := budget.New(budget.NewMemoryStore(), budget.Config{
		Limits: map[vercel.Endpoint]budget.Limit{vercel.EndpointCreateProject: {Requests: 100, Window: time.Second}},
	})
	if err != nil {
		panic(err)
	}
	if err := b.Wait(context.Background(), vercel.EndpointCreateProject); err != nil {
		panic(err)
	}
	fmt.Println("the call may go")
	// Output: the call may go
}

// A tenant's quota admits its deploys until a window is spent, then says
// when it has room again: a day after the first, and one to two slots of
// 1/120 of the day (here two, 24 min) more, so no window of 24 hours,
// wherever it starts, holds three.
func ExampleQuotas_Take() {
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	caps, _ := budget.ParseQuota("2/24h")
	q, err := budget.NewQuotas(budget.NewMemoryStore(), map[string][]budget.Cap{"trial": caps}, func() time.Time { return now })
	if err != nil {
		panic(err)
	}
	for range 3 {
		a, _ := q.Take(context.Background(), "trial")
		if a.OK {
			fmt.Println("admitted; used", a.Use[0])
		} else {
			fmt.Println("quota spent until", a.Until.Format(time.Kitchen), "the next day")
		}
	}
	// Output:
	// admitted; used 1
	// admitted; used 2
	// quota spent until 9:24AM the next day
}
