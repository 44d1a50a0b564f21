package kvsubject

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/natsembed"
	"github.com/nats-io/nats.go/jetstream"
)

func TestKVPutPrefix(t *testing.T) {
	t.Parallel()
	bucket := jetstream.StreamConfig{Name: "KV_REFS"}
	mirror := jetstream.StreamConfig{Name: "KV_COPY", Mirror: &jetstream.StreamSource{Name: "KV_ORIGIN"}}
	remote := jetstream.StreamConfig{Name: "KV_COPY", Mirror: &jetstream.StreamSource{Name: "KV_ORIGIN",
		External: &jetstream.ExternalStream{APIPrefix: "$JS.hub.API"}}}
	for _, tc := range []struct {
		name string
		opts jetstream.JetStreamOptions
		cfg  jetstream.StreamConfig
		want string
	}{
		{"default", jetstream.JetStreamOptions{}, bucket, "$KV.REFS."},
		{"default prefix given", jetstream.JetStreamOptions{APIPrefix: "$JS.API"}, bucket, "$KV.REFS."},
		{"domain", jetstream.JetStreamOptions{Domain: "hub"}, bucket, "$JS.hub.API.$KV.REFS."},
		{"API prefix", jetstream.JetStreamOptions{APIPrefix: "$JS.acct.API"}, bucket, "$JS.acct.API.$KV.REFS."},
		{"API prefix with its dot", jetstream.JetStreamOptions{APIPrefix: "$JS.acct.API."}, bucket, "$JS.acct.API.$KV.REFS."},
		{"mirror", jetstream.JetStreamOptions{}, mirror, "$KV.ORIGIN."},
		{"mirror through a domain", jetstream.JetStreamOptions{Domain: "leaf"}, mirror, "$JS.leaf.API.$KV.ORIGIN."},
		{"mirror of another domain", jetstream.JetStreamOptions{Domain: "leaf"}, remote, "$JS.hub.API.$KV.ORIGIN."},
	} {
		if got := PutPrefix(tc.opts, tc.cfg); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The prefix names the subject nats.go's own KeyValue.Put publishes to,
// for a plain bucket and for a mirror (which takes writes for its origin).
func TestKVPutPrefixMatchesNATS(t *testing.T) {
	t.Parallel()
	srv, err := natsembed.Start(natsembed.Options{Dir: filepath.Join(t.TempDir(), "nats"), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, js, err := srv.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	spy, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(spy.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ORIGIN"}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "COPY", Mirror: &jetstream.StreamSource{Name: "KV_ORIGIN"}}); err != nil {
		t.Fatal(err)
	}
	seen, err := spy.SubscribeSync("$KV.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	for i, bucket := range []string{"ORIGIN", "COPY"} {
		kv, err := js.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		s, err := js.Stream(ctx, "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("k%d", i)
		if _, err := kv.Put(ctx, key, []byte("v")); err != nil {
			t.Fatalf("%s: put: %v", bucket, err)
		}
		msg, err := seen.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("%s: the put was not seen: %v", bucket, err)
		}
		if want := PutPrefix(js.Options(), s.CachedInfo().Config) + key; msg.Subject != want {
			t.Errorf("%s: nats.go put to %q, the prefix gives %q", bucket, msg.Subject, want)
		}
	}
}
