package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/natsembed"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Settings the stack gives the worker side unless told otherwise.
const (
	// IntegrationConfigID is the Prisma integration configuration the
	// simulator accepts.
	IntegrationConfigID = "icfg_stack"
	// Token is the Vercel token the simulator is called with.
	Token = "stack-token"
	// setupTimeout bounds starting the server and creating the assets.
	setupTimeout = 30 * time.Second
)

// Config says what to start.
type Config struct {
	// Dir holds the NATS store. Required.
	Dir string
	// Name labels the NATS connections ("<name>-<role>").
	Name string
	// Role names the stack's own connection, which runs Setup and which
	// workers started without one of their own use. Defaults to "admin".
	Role string
	// Bare starts the server alone: no deployq assets (a measurement of
	// the raw broker).
	Bare bool
	// Setup configures the streams and buckets.
	Setup jobs.SetupConfig
	// Sim, when set, starts the Vercel simulator with this config, served
	// on 127.0.0.1.
	Sim *vercelsim.Config
	// WrapSim, when set, is put in front of the simulator's handler (a
	// recorder, a gauge of open streams).
	WrapSim func(http.Handler) http.Handler
}

// Stack is a running deployq on this machine: an embedded nats-server on
// loopback TCP with deployq's assets, and optionally the simulator.
type Stack struct {
	NATS *natsembed.Server
	// NC and JS are the stack's own connection, which Setup ran on.
	NC     *nats.Conn
	JS     jetstream.JetStream
	Assets *jobs.Assets
	// Sim and SimURL are the simulator, when Config.Sim was set.
	Sim    *vercelsim.Server
	SimURL string

	name    string
	closers []func()
}

// Start starts what cfg asks for. Close stops it; on an error, what was
// started is stopped already.
func Start(ctx context.Context, cfg Config) (s *Stack, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("stack: Config.Dir is required")
	}
	s = &Stack{name: cfg.Name}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.NATS, err = natsembed.Start(natsembed.Options{Dir: filepath.Join(cfg.Dir, "nats"), Host: "127.0.0.1", Port: -1}); err != nil {
		return nil, fmt.Errorf("start NATS: %w", err)
	}
	s.closers = append(s.closers, s.NATS.Shutdown)
	if s.NC, s.JS, err = s.Connect(cmp.Or(cfg.Role, "admin")); err != nil {
		return nil, err
	}
	if cfg.Bare {
		return s, nil
	}
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if s.Assets, err = jobs.Setup(sctx, s.JS, cfg.Setup); err != nil {
		return nil, fmt.Errorf("set up assets: %w", err)
	}
	if cfg.Sim == nil {
		return s, nil
	}
	s.Sim = vercelsim.New(*cfg.Sim)
	s.closers = append(s.closers, s.Sim.Close)
	var h http.Handler = s.Sim
	if cfg.WrapSim != nil {
		h = cfg.WrapSim(h)
	}
	url, stop, err := ServeLoopback(h, nil)
	if err != nil {
		return nil, err
	}
	s.SimURL = url
	s.closers = append(s.closers, stop)
	return s, nil
}

// Connect opens another connection to the server, named for role, as a
// separate process would have (one connection's single reader would
// otherwise serialize every role); Close closes it.
func (s *Stack) Connect(role string) (*nats.Conn, jetstream.JetStream, error) {
	name := role
	if s.name != "" {
		name = s.name + "-" + role
	}
	nc, err := nats.Connect(s.NATS.ClientURL(), nats.Name(name))
	if err != nil {
		return nil, nil, fmt.Errorf("connect NATS (%s): %w", role, err)
	}
	s.closers = append(s.closers, nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, err
	}
	return nc, js, nil
}

// API returns a Vercel client for the simulator (or url, when not
// empty), with opts after the stack's own.
func (s *Stack) API(url string, opts ...vercel.Option) (*vercel.Client, error) {
	if url == "" {
		url = s.SimURL
	}
	return vercel.New(append([]vercel.Option{vercel.WithBaseURL(url), vercel.WithToken(Token)}, opts...)...)
}

// Pipeline returns a pipeline over api and the stack's assets;
// IntegrationConfigID defaults to the stack's.
func (s *Stack) Pipeline(api *vercel.Client, cfg worker.PipelineConfig) (*worker.Pipeline, error) {
	if cfg.IntegrationConfigID == "" {
		cfg.IntegrationConfigID = IntegrationConfigID
	}
	return worker.NewPipeline(api, s.Assets.Sources, s.Assets.Uploads, cfg)
}

// RunWorker runs a worker pool over p on js (the stack's connection when
// nil) until stop is called or ctx ends; stop waits for Run to return,
// at most the shutdown grace and a minute, and reports its error (the
// same on every call).
func (s *Stack) RunWorker(ctx context.Context, js jetstream.JetStream, p *worker.Pipeline, cfg worker.Config) (w *worker.Worker, stop func() error, err error) {
	if js == nil {
		js = s.JS
	}
	if w, err = worker.New(js, s.Assets, p, cfg); err != nil {
		return nil, nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	grace := cfg.ShutdownGrace
	if grace <= 0 {
		grace = 30 * time.Second
	}
	var once sync.Once
	var result error
	return w, func() error {
		once.Do(func() {
			cancel()
			t := time.NewTimer(grace + time.Minute)
			defer t.Stop()
			select {
			case result = <-done:
			case <-t.C:
				result = errors.New("worker did not stop in time")
			}
		})
		return result
	}, nil
}

// Close stops everything, in the reverse order of starting.
func (s *Stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}
