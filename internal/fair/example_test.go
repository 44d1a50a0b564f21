package fair_test

import (
	"fmt"

	"github.com/deployq/deployq/internal/fair"
)

// A platform's burst does not hold up another's single deploy, and a
// tenant's interactive deploy overtakes its own batch.
func ExampleQueue() {
	q := fair.NewQueue[string]()
	for i := range 4 {
		q.Push("big", 0, fair.Interactive, fmt.Sprint("big-", i))
	}
	q.Push("small", 0, fair.Interactive, "small-0")
	q.Push("school", 0, fair.Batch, "starter-app-0")
	q.Push("school", 0, fair.Interactive, "publish")
	for q.Len() > 0 {
		v, _, _ := q.Pop()
		fmt.Println(v)
	}
	// Output:
	// big-0
	// small-0
	// publish
	// big-1
	// starter-app-0
	// big-2
	// big-3
}
