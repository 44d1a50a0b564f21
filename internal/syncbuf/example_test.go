package syncbuf_test

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/deployq/deployq/internal/syncbuf"
)

// Loggers on many goroutines write one buffer; it is read meanwhile.
func ExampleBuffer() {
	var buf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { log.Info("step", "n", i) })
	}
	wg.Wait()
	fmt.Println(strings.Count(buf.String(), "msg=step"))
	// Output: 4
}
