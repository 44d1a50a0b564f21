package pubpipe_test

import (
	"fmt"
	"sync/atomic"

	"github.com/deployq/deployq/internal/pubpipe"
)

// ForEach runs every call, at most limit at once, and returns when all
// have returned.
func ExampleForEach() {
	var sum atomic.Int64
	pubpipe.ForEach(100, 8, func(i int) { sum.Add(int64(i)) })
	fmt.Println(sum.Load())
	// Output: 4950
}
