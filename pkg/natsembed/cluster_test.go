package natsembed

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestClusterFailover(t *testing.T) {
	t.Parallel()
	c, err := StartCluster(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)

	urls := c.ClientURLs()
	if len(urls) != 3 || c.Size() != 3 {
		t.Fatalf("ClientURLs = %v, Size = %d", urls, c.Size())
	}
	for _, u := range urls {
		if !strings.HasPrefix(u, "nats://127.0.0.1:") {
			t.Errorf("client URL %q is not on 127.0.0.1", u)
		}
	}

	nc, err := c.Connect(nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     "EVENTS",
		Subjects: []string{"events.>"},
		Replicas: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	const before = 5
	for range before {
		if _, err := js.Publish(ctx, "events.a", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}

	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := nodeIndex(t, c, info.Cluster.Leader)
	c.StopNode(leader)
	c.StopNode(leader) // a second stop is harmless

	// The remaining two nodes elect a new stream leader; until then
	// publishes fail fast on their short contexts and are retried.
	publishUntil(t, js, 10*time.Second)
	total := uint64(before + 1)

	if err := c.RestartNode(leader); err != nil {
		t.Fatal(err)
	}
	waitLocalMsgs(t, c.Node(leader).NATS(), total, 10*time.Second)

	// The restarted node takes part again: a further publish reaches all
	// three replicas.
	publishUntil(t, js, 5*time.Second)
	total++
	for i := range c.Size() {
		waitLocalMsgs(t, c.Node(i).NATS(), total, 5*time.Second)
	}
}

func TestClusterRestartRunningNode(t *testing.T) {
	t.Parallel()
	c, err := StartCluster(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	before := c.Node(1)
	if err := c.RestartNode(1); err != nil {
		t.Fatal(err)
	}
	after := c.Node(1)
	if before == after {
		t.Fatal("RestartNode kept the old server")
	}
	if before.ClientURL() != after.ClientURL() {
		t.Errorf("client URL changed from %s to %s", before.ClientURL(), after.ClientURL())
	}
	if got := after.NATS().Name(); got != "n2" {
		t.Errorf("restarted node is named %q, want n2", got)
	}
}

func TestStartClusterErrors(t *testing.T) {
	t.Parallel()
	if _, err := StartCluster(t.TempDir(), 1); err == nil {
		t.Error("StartCluster with one node succeeded")
	}
	if _, err := StartCluster("", 3); err == nil {
		t.Error("StartCluster without a directory succeeded")
	}
}

func TestPortPool(t *testing.T) {
	t.Parallel()
	lo, hi := portPool()
	elo, ehi := ephemeralRange()
	if hi <= lo {
		t.Skipf("no room outside the ephemeral range %d-%d", elo, ehi)
	}
	if lo <= ehi && hi > elo {
		t.Errorf("pool %d-%d overlaps the ephemeral range %d-%d", lo, hi, elo, ehi)
	}
	ports, err := freePorts("127.0.0.1", 6)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p < lo || p >= hi || seen[p] {
			t.Errorf("port %d: outside %d-%d or repeated in %v", p, lo, hi, ports)
		}
		seen[p] = true
	}
}

func nodeIndex(t *testing.T, c *Cluster, name string) int {
	t.Helper()
	for i := range c.Size() {
		if c.Node(i).NATS().Name() == name {
			return i
		}
	}
	t.Fatalf("no node named %q", name)
	return -1
}

// publishUntil publishes one message, retrying with a short context per
// attempt until it is acknowledged or the deadline passes.
func publishUntil(t *testing.T, js jetstream.JetStream, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		// A message id makes a retry after a lost ack a duplicate, not
		// a second message, so counts stay exact.
		_, err := js.Publish(ctx, "events.a", []byte("y"), jetstream.WithMsgID(t.Name()+deadline.String()))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish did not succeed within %s: %v", within, err)
		}
	}
}

// waitLocalMsgs polls the messages ns itself stores until there are want.
func waitLocalMsgs(t *testing.T, ns *server.Server, want uint64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := ns.Jsz(&server.JSzOptions{})
		if err == nil && info.Messages == want {
			return
		}
		if time.Now().After(deadline) {
			var got uint64
			if info != nil {
				got = info.Messages
			}
			t.Fatalf("node %s stores %d messages after %s, want %d (err %v)", ns.Name(), got, within, want, err)
		}
		<-tick.C
	}
}
