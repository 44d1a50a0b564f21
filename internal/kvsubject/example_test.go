package kvsubject_test

import (
	"fmt"

	"github.com/deployq/deployq/internal/kvsubject"
	"github.com/nats-io/nats.go/jetstream"
)

// A bucket takes its puts on $KV.<bucket>.<key>; a mirror on its
// origin's subjects.
func ExamplePutPrefix() {
	var opts jetstream.JetStreamOptions
	fmt.Println(kvsubject.PutPrefix(opts, jetstream.StreamConfig{Name: "KV_REFS"}) + "key")
	fmt.Println(kvsubject.PutPrefix(opts, jetstream.StreamConfig{Name: "KV_COPY",
		Mirror: &jetstream.StreamSource{Name: "KV_ORIGIN"}}) + "key")
	// Output:
	// $KV.REFS.key
	// $KV.ORIGIN.key
}
