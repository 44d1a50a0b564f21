package natsembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deployq/deployq/internal/syncbuf"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type bundle struct {
	srv *Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

func setup(t *testing.T) bundle {
	t.Helper()
	srv, err := Start(Options{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, js, err := srv.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return bundle{srv: srv, nc: nc, js: js}
}

func TestStartPublishConsume(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()

	stream, err := b.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:      "REQUESTS",
		Subjects:  []string{"deploy.requests.>"},
		Retention: jetstream.WorkQueuePolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := b.js.Publish(ctx, "deploy.requests.t1", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:   "workers",
		AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(3, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for msg := range batch.Messages() {
		got = append(got, string(msg.Data()))
		if err := msg.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Error(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "0,1,2" {
		t.Fatalf("consumed %v, want 0,1,2", got)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("work queue holds %d messages after acks, want 0", info.State.Msgs)
	}
}

func TestClientURLOverTCP(t *testing.T) {
	t.Parallel()
	b := setup(t)
	url := b.srv.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":-1") {
		t.Fatalf("ClientURL = %q, want nats://127.0.0.1:<port>", url)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := b.nc.SubscribeSync("ping")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("ping", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(2 * time.Second); err != nil {
		t.Fatalf("message over TCP did not reach the in-process client: %v", err)
	}
}

func TestPortTaken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	start := time.Now()
	srv, err := Start(Options{Dir: t.TempDir(), Port: port})
	if err == nil {
		srv.Shutdown()
		t.Fatal("Start on a taken port succeeded")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name %s", err, addr)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %q is not EADDRINUSE", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("failing took %s; want it to fail fast", d)
	}
}

func TestOptionsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no dir", Options{Port: -1}, "Dir"},
		{"bad port", Options{Dir: t.TempDir(), Port: 70000}, "70000"},
	}
	for _, tt := range tests {
		srv, err := Start(tt.opts)
		if err == nil {
			srv.Shutdown()
			t.Errorf("%s: Start succeeded", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q does not mention %q", tt.name, err, tt.want)
		}
	}
}

func TestShutdownIdempotent(t *testing.T) {
	t.Parallel()
	srv, err := Start(Options{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	srv.Shutdown()
	if _, err := srv.Connect(nats.NoReconnect()); err == nil {
		t.Error("Connect after Shutdown succeeded")
	}
	var nilServer *Server
	nilServer.Shutdown()
}

func TestLogging(t *testing.T) {
	t.Parallel()
	for _, noLog := range []bool{false, true} {
		var buf syncbuf.Buffer
		logger := slog.New(slog.NewTextHandler(&buf, nil))
		srv, err := Start(Options{Dir: t.TempDir(), Port: -1, Logger: logger, NoLog: noLog})
		if err != nil {
			t.Fatal(err)
		}
		srv.Shutdown()
		logged := strings.Contains(buf.String(), "component=nats-server")
		if logged == noLog {
			t.Errorf("NoLog=%v: logged=%v:\n%s", noLog, logged, buf.String())
		}
	}
}
