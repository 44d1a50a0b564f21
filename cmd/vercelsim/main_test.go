package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

func TestParseLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		eps  int
		want vercelsim.Limit
		err  bool
	}{
		{in: "deployments.create=5/1s", eps: 1, want: vercelsim.Limit{Requests: 5, Window: time.Second}},
		{in: "projects.get=100/m", eps: 1, want: vercelsim.Limit{Requests: 100, Window: time.Minute}},
		{in: "projects.get=100/min", eps: 1, want: vercelsim.Limit{Requests: 100, Window: time.Minute}},
		{in: "all=20/10s", eps: len(vercel.Endpoints()), want: vercelsim.Limit{Requests: 20, Window: 10 * time.Second}},
		{in: "deployments.create=10/1m+4/10s", eps: 1, want: vercelsim.Limit{Requests: 4, Window: 10 * time.Second,
			Caps: []vercelsim.Limit{{Requests: 10, Window: time.Minute}}}},
		{in: "deployments.create=4/10s+", err: true},
		{in: "deployments.create", err: true},
		{in: "deployments.create=5", err: true},
		{in: "deployments.create=0/1s", err: true},
		{in: "deployments.create=5/0s", err: true},
		{in: "deployments.create=5/fortnight", err: true},
		{in: "nope=5/1s", err: true},
	} {
		eps, got, err := parseLimit(tc.in)
		if tc.err {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil || len(eps) != tc.eps || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %v %+v %v, want %d endpoints %+v", tc.in, eps, got, err, tc.eps, tc.want)
		}
	}
}

func TestParseFault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want vercelsim.Fault
		err  bool
	}{
		{in: "stores.create=after:0.1", want: vercelsim.Fault{ErrorAfter: 0.1}},
		{in: "deployments.get=before:0.2,hang:0.01,hang-after:0.02,latency:150ms",
			want: vercelsim.Fault{ErrorBefore: 0.2, Hang: 0.01, HangAfter: 0.02, Latency: 150 * time.Millisecond}},
		{in: "stores.create=", err: true},
		{in: "stores.create=after", err: true},
		{in: "stores.create=after:lots", err: true},
		{in: "stores.create=explode:0.1", err: true},
		{in: "stores.create=latency:soon", err: true},
		{in: "nope=after:0.1", err: true},
	} {
		_, got, err := parseFault(tc.in)
		if tc.err {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	env := func(k string) string {
		if k == "VERCELSIM_TOKEN" {
			return "from-env"
		}
		return ""
	}
	o, err := parseFlags([]string{
		"--addr", "127.0.0.1:0", "--build-time", "5s", "--daily-cap", "100", "--seed", "7",
		"--limit", "deployments.create=5/1s", "--limit", "projects.get=10/1m",
		"--fault", "stores.create=after:0.5",
	}, env)
	if err != nil {
		t.Fatal(err)
	}
	c := o.sim
	if c.Token != "from-env" || c.BuildTime != 5*time.Second || c.DailyDeploymentCap != 100 || c.Seed != 7 ||
		len(c.RateLimits) != 2 || c.Faults[vercel.EndpointCreateStore].ErrorAfter != 0.5 {
		t.Errorf("config = %+v", c)
	}
	if o, _ := parseFlags([]string{"--token", "flag"}, env); o.sim.Token != "flag" {
		t.Errorf("--token lost to the environment: %q", o.sim.Token)
	}
	for _, args := range [][]string{
		{"--fault", "stores.create=before:0.6,after:0.6"},
		{"--build-jitter", "-1s"},
		{"stray"},
	} {
		_, err := parseFlags(args, env)
		if exitCode(err) != 2 {
			t.Errorf("%q: err %v, exit code %d, want 2", args, err, exitCode(err))
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8787", true},
		{"[::1]:0", true},
		{"localhost:0", true},
		{":8787", false},
		{"0.0.0.0:8787", false},
		{"[::]:8787", false},
		{"192.0.2.1:8787", false},
		{"no-port", false},
	} {
		err := checkLoopback(t.Context(), tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"--addr", "127.0.0.1:0", "--token", "tok", "--build-time", "-1s", "--log-requests"},
			func(string) string { return "" }, outW, io.Discard)
		outW.Close()
		done <- err
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the address: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	base, _, ok := strings.Cut(strings.TrimPrefix(line, "vercelsim listening on "), " ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("first line %q", line)
	}

	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v11/projects", strings.NewReader(`{"name":"cli"}`))
	req.Header.Set("Authorization", "Bearer tok")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("x-vercel-id") == "" {
		t.Fatalf("create project: %d", res.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

// TestServeDropsHungRequests checks that a request held by a hang fault
// does not hold up the shutdown.
func TestServeDropsHungRequests(t *testing.T) {
	t.Parallel()
	sim := vercelsim.New(vercelsim.Config{Faults: map[vercel.Endpoint]vercelsim.Fault{vercel.EndpointGetProject: {Hang: 1}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, sim, sim) }()

	hung := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/v9/projects/x", nil)
		req.Header.Set("Authorization", "Bearer t")
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		hung <- err
	}()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for sim.Stats().Faults[vercel.EndpointGetProject].Hang == 0 {
		select {
		case <-deadline:
			t.Fatal("the request never reached the handler")
		case <-tick.C:
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve waited for the hung request")
	}
	if err := <-hung; err == nil {
		t.Error("the hung request got an answer")
	}
}

func TestRunRefusesRemote(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), []string{"--addr", "0.0.0.0:0"}, func(string) string { return "" }, io.Discard, io.Discard)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "--allow-remote") {
		t.Errorf("err = %v", err)
	}
}
