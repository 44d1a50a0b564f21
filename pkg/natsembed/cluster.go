package natsembed

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

const (
	clusterHost = "127.0.0.1"
	clusterName = "deployq"
	// formTimeout bounds the wait for a meta leader. Measured formation
	// takes well under a second on loopback; elections after a restart take
	// a few seconds at most.
	formTimeout = 15 * time.Second
	// startAttempts covers the rare case of another process taking a
	// chosen port between choosing it and the node binding it.
	startAttempts = 3
)

// Cluster is a JetStream cluster of servers in this process, all on
// 127.0.0.1, fully meshed by routes. Its nodes keep their names, ports and
// store directories across StopNode and RestartNode, as real servers would.
// Its methods are safe for concurrent use.
type Cluster struct {
	opts []Options // per node; fixed once started
	urls []string

	mu      sync.Mutex
	nodes   []*Server
	running []bool
}

// StartCluster starts an n-node JetStream cluster (n at least 2; 3 is the
// usual size, the smallest that survives losing a node). Node i is named
// "n<i+1>" and stores its data in dir/n<i+1>. StartCluster returns once the
// nodes have elected a JetStream meta leader and all of them follow it.
func StartCluster(dir string, n int) (*Cluster, error) {
	if dir == "" {
		return nil, errors.New("natsembed: StartCluster needs a store directory")
	}
	if n < 2 {
		return nil, fmt.Errorf("natsembed: a cluster needs at least 2 nodes, not %d (use Start for one)", n)
	}
	var err error
	for range startAttempts {
		var c *Cluster
		c, err = startCluster(dir, n)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
	}
	return nil, err
}

func startCluster(dir string, n int) (*Cluster, error) {
	ports, err := freePorts(clusterHost, 2*n)
	if err != nil {
		return nil, err
	}
	clientPorts, routePorts := ports[:n], ports[n:]
	routes := make([]string, n)
	for i, p := range routePorts {
		routes[i] = "nats://" + clusterHost + ":" + strconv.Itoa(p)
	}
	c := &Cluster{
		opts:    make([]Options, n),
		urls:    make([]string, n),
		nodes:   make([]*Server, n),
		running: make([]bool, n),
	}
	for i := range n {
		name := "n" + strconv.Itoa(i+1)
		c.opts[i] = Options{
			Dir:        filepath.Join(dir, name),
			Host:       clusterHost,
			Port:       clientPorts[i],
			ServerName: name,
			NoLog:      true,
			cluster: server.ClusterOpts{
				Name: clusterName,
				Host: clusterHost,
				Port: routePorts[i],
			},
			// A route to itself is ignored by the server; listing all
			// keeps every node's configuration the same.
			routes: routes,
		}
		c.urls[i] = "nats://" + clusterHost + ":" + strconv.Itoa(clientPorts[i])
	}
	for i := range n {
		s, err := Start(c.opts[i])
		if err != nil {
			c.Shutdown()
			return nil, fmt.Errorf("natsembed: start cluster node %s: %w", c.opts[i].ServerName, err)
		}
		c.mu.Lock()
		c.nodes[i], c.running[i] = s, true
		c.mu.Unlock()
	}
	if err := c.waitFormed(-1); err != nil {
		c.Shutdown()
		return nil, err
	}
	return c, nil
}

// ClientURLs returns every node's client URL, including stopped ones, in
// node order. strings.Join(urls, ",") is a valid nats.Connect URL that
// fails over between nodes.
func (c *Cluster) ClientURLs() []string {
	return append([]string(nil), c.urls...)
}

// Connect opens a TCP connection that knows every node, so the client
// reconnects to a surviving node when its current one stops.
func (c *Cluster) Connect(opts ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(strings.Join(c.urls, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("natsembed: connect to cluster: %w", err)
	}
	return nc, nil
}

// Size is the number of nodes, running or not.
func (c *Cluster) Size() int {
	return len(c.opts)
}

// Node returns node i (0 ≤ i < Size). After StopNode it is the stopped
// server; after RestartNode, the new one.
func (c *Cluster) Node(i int) *Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// StopNode shuts node i down and waits until it has stopped. Stopping a
// stopped node does nothing.
func (c *Cluster) StopNode(i int) {
	c.mu.Lock()
	s, running := c.nodes[i], c.running[i]
	c.running[i] = false
	c.mu.Unlock()
	if running {
		s.Shutdown()
	}
}

// RestartNode starts node i again with the same name, ports and store
// directory, stopping it first if it runs. When a majority of nodes then
// runs, it also waits until the node is healthy: it follows the JetStream
// meta leader and its stream and consumer replicas have caught up. Stopping
// another node right after it returns therefore does not cost a quorum.
func (c *Cluster) RestartNode(i int) error {
	c.StopNode(i)
	s, err := Start(c.opts[i])
	if err != nil {
		return fmt.Errorf("natsembed: restart cluster node %s: %w", c.opts[i].ServerName, err)
	}
	c.mu.Lock()
	c.nodes[i], c.running[i] = s, true
	c.mu.Unlock()
	return c.waitFormed(i)
}

// Shutdown stops every node and waits until all have stopped.
func (c *Cluster) Shutdown() {
	c.mu.Lock()
	var stop []*Server
	for i, s := range c.nodes {
		if c.running[i] {
			stop = append(stop, s)
		}
		c.running[i] = false
	}
	c.mu.Unlock()
	// In parallel: each node's JetStream shutdown takes a while, and
	// nodes going down one by one trigger needless elections.
	var wg sync.WaitGroup
	for _, s := range stop {
		wg.Go(s.Shutdown)
	}
	wg.Wait()
}

// waitFormed waits until a running node is the JetStream meta leader and
// the running nodes are healthy: every one of them, or only node `only` when
// it is not -1. Without a majority running no leader can exist, so it does
// not wait at all.
func (c *Cluster) waitFormed(only int) error {
	deadline := time.Now().Add(formTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		nodes, quorum := c.snapshot()
		if !quorum {
			return nil
		}
		if formed(nodes, only) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("natsembed: no JetStream meta leader after %s", formTimeout)
		}
		<-tick.C
	}
}

// snapshot returns the running nodes by index (nil when stopped) and
// whether they are a majority.
func (c *Cluster) snapshot() ([]*server.Server, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	nodes := make([]*server.Server, len(c.nodes))
	var up int
	for i, s := range c.nodes {
		if c.running[i] {
			nodes[i] = s.ns
			up++
		}
	}
	return nodes, up > len(c.nodes)/2
}

func formed(nodes []*server.Server, only int) bool {
	var leader bool
	for i, ns := range nodes {
		if ns == nil {
			continue
		}
		if ns.JetStreamIsLeader() {
			leader = true
		}
		if (only < 0 || only == i) && !healthy(ns) {
			return false
		}
	}
	return leader
}

// healthy reports whether ns follows the meta leader and every stream and
// consumer replica it holds has caught up: what the server's /healthz
// endpoint checks before a load balancer or orchestrator sends it work.
func healthy(ns *server.Server) bool {
	return ns.JetStreamIsCurrent() && ns.Healthz(nil).StatusCode == http.StatusOK
}
