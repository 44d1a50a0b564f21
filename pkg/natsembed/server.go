package natsembed

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readyTimeout bounds how long Start waits for the server to accept clients.
const readyTimeout = 10 * time.Second

// Options configures a server started by Start.
type Options struct {
	// Dir is the JetStream store directory. Required.
	Dir string
	// Host is the interface clients connect on. Defaults to 127.0.0.1.
	Host string
	// Port is the client port. -1 picks a free port (see
	// Server.ClientURL). Defaults to 4222.
	Port int
	// ServerName names the server in JetStream cluster and advisory
	// messages. Defaults to the server's generated id.
	ServerName string
	// MaxMemory caps JetStream memory storage in bytes. Defaults to the
	// server's default (75% of system memory).
	MaxMemory int64
	// MaxStore caps JetStream file storage in bytes. Defaults to the
	// server's default (1 TB, or less when the disk is smaller).
	MaxStore int64
	// NoLog silences the server even when Logger is set.
	NoLog bool
	// Logger receives the server's log lines, at its own levels (notices
	// at Info). Defaults to none: the server is silent.
	Logger *slog.Logger

	// cluster and routes are set by StartCluster only.
	cluster server.ClusterOpts
	routes  []string
}

// Server is a running embedded NATS server.
type Server struct {
	ns       *server.Server
	opts     Options
	shutdown sync.Once
}

// Start starts a NATS server with JetStream enabled and waits until it
// accepts clients. If the client port is taken, the error names the address
// and matches errors.Is(err, syscall.EADDRINUSE).
func Start(opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("natsembed: Options.Dir (the JetStream store directory) is required")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	switch {
	case opts.Port == 0:
		opts.Port = server.DEFAULT_PORT
	case opts.Port < server.RANDOM_PORT || opts.Port > 65535:
		return nil, fmt.Errorf("natsembed: port %d is not from 1 to 65535, or -1 for a free one", opts.Port)
	}
	addr := net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))

	// The server reports a taken port only through its logger and then
	// waits out readyTimeout; probing first fails fast with an error
	// that callers can test for.
	if opts.Port > 0 {
		if err := probe(addr); err != nil {
			return nil, err
		}
	}
	if opts.cluster.Port > 0 {
		routeAddr := net.JoinHostPort(opts.cluster.Host, strconv.Itoa(opts.cluster.Port))
		if err := probe(routeAddr); err != nil {
			return nil, err
		}
	}

	so := &server.Options{
		ServerName:         opts.ServerName,
		Host:               opts.Host,
		Port:               opts.Port,
		JetStream:          true,
		StoreDir:           opts.Dir,
		JetStreamMaxMemory: opts.MaxMemory,
		JetStreamMaxStore:  opts.MaxStore,
		// The host program handles SIGINT and SIGTERM itself; a server
		// that also did would exit under its feet.
		NoSigs:  true,
		NoLog:   true,
		Cluster: opts.cluster,
	}
	if len(opts.routes) > 0 {
		so.Routes = server.RoutesFromStr(strings.Join(opts.routes, ","))
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("natsembed: configure server on %s: %w", addr, err)
	}
	logger := &logAdapter{fatal: make(chan string, 1)}
	if !opts.NoLog && opts.Logger != nil {
		logger.l = opts.Logger.With("component", "nats-server")
	}
	// The adapter is installed even when silent: it is how Start learns
	// about fatal startup errors, which the server only logs.
	ns.SetLoggerV2(logger, logger.debugEnabled(), false, false)

	ns.Start()
	if err := waitReady(ns, logger.fatal, readyTimeout); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		if isAddrInUse(err) {
			// Another process took a port between probe and start; the
			// server's message names which one.
			return nil, fmt.Errorf("natsembed: start server on %s: %v: %w", addr, err, syscall.EADDRINUSE)
		}
		return nil, fmt.Errorf("natsembed: start server on %s: %w", addr, err)
	}
	return &Server{ns: ns, opts: opts}, nil
}

// probe checks that addr can be listened on, then releases it.
func probe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("natsembed: address %s is already in use (another NATS server?): %w", addr, err)
		}
		return fmt.Errorf("natsembed: cannot listen on %s: %w", addr, err)
	}
	return ln.Close()
}

// waitReady waits until ns accepts clients (and routes, in a cluster), a
// fatal error is logged, or timeout passes. It polls in short slices because
// the server's own wait ignores fatal errors and runs out the full timeout.
func waitReady(ns *server.Server, fatal <-chan string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case msg := <-fatal:
			return errors.New(msg)
		default:
		}
		if ns.ReadyForConnections(50 * time.Millisecond) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready for connections after %s", timeout)
		}
	}
}

func isAddrInUse(err error) bool {
	// The server's fatal message is text only; this is the errno's text.
	return err != nil && (errors.Is(err, syscall.EADDRINUSE) ||
		strings.Contains(err.Error(), syscall.EADDRINUSE.Error()))
}

// ClientURL is the URL clients connect to over TCP, such as
// nats://127.0.0.1:4222.
func (s *Server) ClientURL() string {
	return s.ns.ClientURL()
}

// Connect opens an in-process client connection, which skips TCP entirely.
// opts are applied after the in-process option, so they can add a name,
// handlers or credentials.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{nats.InProcessServer(s.ns)}, opts...)
	nc, err := nats.Connect(s.ns.ClientURL(), all...)
	if err != nil {
		return nil, fmt.Errorf("natsembed: connect in-process: %w", err)
	}
	return nc, nil
}

// JetStream opens an in-process connection (Connect) and a JetStream
// context over it; closing the connection is the caller's.
func (s *Server) JetStream(opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := s.Connect(opts...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("natsembed: jetstream: %w", err)
	}
	return nc, js, nil
}

// Shutdown stops the server and waits until it has stopped. It may be
// called more than once.
func (s *Server) Shutdown() {
	if s == nil {
		return
	}
	s.shutdown.Do(func() {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	})
}

// NATS returns the underlying server, for what this package does not wrap
// (monitoring data, lame-duck shutdown, stepping down leaders).
func (s *Server) NATS() *server.Server {
	return s.ns
}
