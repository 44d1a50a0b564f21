package stack

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/tarball"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

func TestServeLoopback(t *testing.T) {
	t.Parallel()
	var states atomic.Int32
	url, stop, err := ServeLoopback(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "pong")
	}), func(net.Conn, http.ConnState) { states.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get(url + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "pong" || states.Load() == 0 {
		t.Fatalf("body %q, %d connection states seen", body, states.Load())
	}
}

// A stack with the simulator runs a deploy end to end: the assets, the
// simulator on loopback and a worker pool built from the stack's parts.
func TestStackDeploys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := Start(ctx, Config{Dir: t.TempDir(), Name: "stacktest", Sim: &vercelsim.Config{BuildTime: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.SimURL, "http://127.0.0.1:") || !strings.Contains(s.NATS.ClientURL(), "127.0.0.1") {
		t.Fatalf("not on loopback: simulator %s, NATS %s", s.SimURL, s.NATS.ClientURL())
	}
	api, err := s.API("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Pipeline(api, worker.PipelineConfig{ExpectedBuild: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, stop, err := s.RunWorker(ctx, nil, p, worker.Config{Concurrency: 2, ShutdownGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("worker: %v", err)
		}
	}()
	client, err := jobs.NewClient(ctx, s.JS, jobs.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := tarball.Pack(t.TempDir(), tarball.WithFile("index.html", []byte("<h1>hi</h1>")))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := client.Submit(ctx, jobs.Request{Tenant: "acme", Name: "stack", Framework: "nextjs"}, a.Data)
	if err != nil {
		t.Fatal(err)
	}
	w, err := client.Watch(ctx, jobs.WatchFilter{Tenant: "acme", ID: sub.ID, FromStart: true, TerminalOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev, err := range w.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type != jobs.TypeSucceeded || !strings.HasPrefix(ev.Data.URL, "https://") {
			t.Fatalf("%s: %+v", ev.Short(), ev.Data)
		}
		return
	}
}
