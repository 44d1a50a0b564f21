// Command vercelsim serves the Vercel API simulator (package
// pkg/vercel/vercelsim) on its own, for demos, benchmarks and clients in
// other languages:
//
//	go run ./cmd/vercelsim --addr 127.0.0.1:8787 --build-time 15s \
//	    --limit deployments.create=5/1s --daily-cap 100 --fault stores.create=after:0.1
//
// It listens on loopback only unless --allow-remote is given, prints the
// address it listens on, and shuts down gracefully on SIGINT or SIGTERM.
// A deployment whose source tarball holds .vercelsim/fail-build fails its
// build with that file's content as the error message.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if err != nil && exitCode(err) != 0 && !reported(err) {
		fmt.Fprintf(os.Stderr, "vercelsim: %v\n", err)
	}
	os.Exit(exitCode(err))
}

// shutdownTimeout bounds how long in-flight requests may take to finish.
const shutdownTimeout = 10 * time.Second

// run serves until ctx ends. It writes the listening address to stdout as
// "vercelsim listening on http://host:port", so a script can wait for it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, getenv)
	if err != nil {
		return err
	}
	if !opts.allowRemote {
		if err := checkLoopback(ctx, opts.addr); err != nil {
			return usageError(err)
		}
	}
	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return err
	}
	// The name checked above might have resolved differently for Listen.
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !opts.allowRemote && !tcp.IP.IsLoopback() {
		ln.Close()
		return usageError(errRemote)
	}

	sim := vercelsim.New(opts.sim)
	var handler http.Handler = sim
	if opts.logRequests {
		handler = logRequests(sim, slog.New(slog.NewTextHandler(stderr, nil)))
	}
	fmt.Fprintf(stdout, "vercelsim listening on http://%s (seed %d, build time %v)\n", ln.Addr(), sim.Seed(), opts.sim.BuildTime)
	return serve(ctx, ln, sim, handler)
}

// serve answers on ln until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, ln net.Listener, sim *vercelsim.Server, handler http.Handler) error {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Requests held by hang faults would keep Shutdown waiting until its
	// deadline; Close drops them first.
	sim.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// logRequests logs one line per request: enough to follow a demo.
func logRequests(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
				"duration", time.Since(start).Round(time.Microsecond), "id", w.Header().Get("x-vercel-id"))
		}()
		next.ServeHTTP(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}
