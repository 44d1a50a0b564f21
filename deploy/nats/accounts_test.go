package nats_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The passwords accounts.conf reads from the environment.
var passwords = map[string]string{
	"DEPLOYQ_WORKER_PASSWORD": "worker-pw",
	"DEPLOYQ_ADMIN_PASSWORD":  "admin-pw",
	"TENANT_ACME_PASSWORD":    "acme-pw",
	"TENANT_GLOBEX_PASSWORD":  "globex-pw",
	"NATS_SYS_PASSWORD":       "sys-pw",
}

// startFromConfig runs nats-0.conf, as shipped, as one embedded server:
// only what cannot work in a test changes (loopback and a free port, no
// cluster routes to the other nodes, no monitoring port, a scratch store).
func startFromConfig(t *testing.T) *server.Server {
	t.Helper()
	for k, v := range passwords {
		t.Setenv(k, v)
	}
	opts, err := server.ProcessConfigFile("nats-0.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Users) < 4 || opts.SystemAccount != "SYS" {
		t.Fatalf("accounts.conf not loaded: %d users, system account %q", len(opts.Users), opts.SystemAccount)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPPort = 0
	opts.Cluster = server.ClusterOpts{}
	opts.Routes = nil
	opts.StoreDir = filepath.Join(t.TempDir(), "jetstream")
	opts.NoSigs = true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// refusals collects the server's permission errors for one connection.
type refusals struct {
	mu   sync.Mutex
	errs []string
	seen chan struct{}
}

func (r *refusals) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err.Error())
	select {
	case r.seen <- struct{}{}:
	default:
	}
}

// waitFor reports whether a refusal mentioning want arrives in time.
func (r *refusals) waitFor(want string, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		for _, e := range r.errs {
			if strings.Contains(e, "Permissions Violation") && strings.Contains(e, want) {
				r.mu.Unlock()
				return true
			}
		}
		r.mu.Unlock()
		select {
		case <-r.seen:
		case <-deadline:
			return false
		}
	}
}

func connect(t *testing.T, s *server.Server, user string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.UserInfo(user, passwordOf(user))}, opts...)
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func passwordOf(user string) string {
	switch user {
	case "deployq-worker":
		return passwords["DEPLOYQ_WORKER_PASSWORD"]
	case "deployq-admin":
		return passwords["DEPLOYQ_ADMIN_PASSWORD"]
	}
	return passwords["TENANT_"+strings.ToUpper(strings.TrimPrefix(user, "tenant-"))+"_PASSWORD"]
}

// Tenant acme's credentials publish acme's requests and read acme's
// events; they can neither publish a request for globex nor read any of
// globex's events, by subscription, consumer, direct get or Client.Watch.
func TestTenantCredentialsStayInTheirLane(t *testing.T) {
	s := startFromConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The worker's user creates every stream and bucket, as at start.
	worker := connect(t, s, "deployq-worker")
	wjs, _ := jetstream.New(worker)
	assets, err := jobs.Setup(ctx, wjs, jobs.SetupConfig{})
	if err != nil {
		t.Fatalf("Setup as deployq-worker: %v", err)
	}
	// One event for each tenant, as a worker publishes them.
	for _, tenant := range []string{"acme", "globex"} {
		data := fmt.Sprintf(`{"specversion":"1.0","id":"%s-1.terminal","source":"deployq","type":"dev.deployq.deploy.succeeded","data":{"requestId":"%s-1","tenant":"%s"}}`, tenant, tenant, tenant)
		if _, err := wjs.Publish(ctx, jobs.EventSubject(tenant, tenant+"-1"), []byte(data)); err != nil {
			t.Fatalf("worker publishes %s's event: %v", tenant, err)
		}
	}

	var r refusals
	r.seen = make(chan struct{}, 1)
	acme := connect(t, s, "tenant-acme", nats.CustomInboxPrefix("_INBOX_acme"), nats.ErrorHandler(r.handler))
	js, _ := jetstream.New(acme)

	// Allowed: its own request, its own event.
	if _, err := js.Publish(ctx, jobs.RequestSubject("acme", "own-1"), []byte(`{}`)); err != nil {
		t.Fatalf("acme cannot publish its own request: %v", err)
	}
	events, err := js.Stream(ctx, jobs.StreamEvents)
	if err != nil {
		t.Fatalf("acme cannot bind the events stream: %v", err)
	}
	if m, err := events.GetLastMsgForSubject(ctx, jobs.EventSubject("acme", "acme-1")); err != nil || !strings.Contains(string(m.Data), `"acme-1"`) {
		t.Fatalf("acme cannot read its own event: %v", err)
	}
	client, err := jobs.NewClient(ctx, js, jobs.ClientConfig{})
	if err != nil {
		t.Fatalf("acme cannot bind the producer client: %v", err)
	}
	w, err := client.Watch(ctx, jobs.WatchFilter{Tenant: "acme", FromStart: true})
	if err != nil {
		t.Fatalf("acme cannot follow its own events: %v", err)
	}
	for ev, err := range w.Events() {
		if err != nil || ev.Data.RequestID != "acme-1" {
			t.Fatalf("acme's watch gave %+v, %v", ev, err)
		}
		break
	}
	w.Stop()
	// A batch: its references are asynchronous KV puts on the subjects a
	// tenant may write, its answers come to acme's inbox prefix, its
	// duplicate checks are per-key direct gets.
	batch := []jobs.Request{{Tenant: "acme", Name: "batch-a"}, {Tenant: "acme", Name: "batch-b"}}
	if res, err := client.SubmitBatch(ctx, batch, []byte("acme's tarball")); err != nil {
		t.Fatalf("acme cannot submit a batch of its own requests: %v (%+v)", err, res)
	}
	if r.waitFor("", 0) {
		t.Fatalf("allowed operations were refused: %q", r.errs)
	}

	// Refused: publishing for globex, in either subject form. Nothing
	// reaches the stream.
	for _, subj := range []string{jobs.RequestSubject("globex", "g-1"), "deploy.requests.globex"} {
		if err := acme.Publish(subj, []byte(`{"tenant":"globex"}`)); err != nil {
			t.Fatal(err)
		}
		if err := acme.Flush(); err != nil {
			t.Fatal(err)
		}
		if !r.waitFor(`Publish to "`+subj+`"`, 5*time.Second) {
			t.Fatalf("publishing globex's request on %s was not refused: %q", subj, r.errs)
		}
		pubCtx, pubCancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = js.Publish(pubCtx, subj, []byte(`{"tenant":"globex"}`))
		pubCancel()
		if err == nil {
			t.Fatalf("a JetStream publish of globex's request on %s was acknowledged", subj)
		}
	}
	info, err := assets.Requests.Info(ctx, jetstream.WithSubjectFilter("deploy.requests.globex.>"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(info.State.Subjects); n != 0 {
		t.Fatalf("requests for globex reached the stream from acme's credentials: %v", info.State.Subjects)
	}

	// Refused: reading globex's events, every way.
	for _, c := range []struct {
		what, refusal string
		try           func() error
	}{
		{"subscribe to globex's events", `Subscription to "deploy.events.globex.>"`, func() error {
			_, err := acme.SubscribeSync("deploy.events.globex.>")
			_ = acme.Flush()
			return err
		}},
		{"subscribe to every event", `Subscription to "deploy.events.>"`, func() error {
			_, err := acme.SubscribeSync("deploy.events.>")
			_ = acme.Flush()
			return err
		}},
		{"direct get of globex's event", `$JS.API.DIRECT.GET.DEPLOY_EVENTS.deploy.events.globex.globex-1`, func() error {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if m, err := events.GetLastMsgForSubject(c, jobs.EventSubject("globex", "globex-1")); err == nil {
				return fmt.Errorf("read it: %s", m.Data)
			}
			return nil
		}},
		{"a consumer on globex's events", `$JS.API.CONSUMER.CREATE.DEPLOY_EVENTS`, func() error {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if _, err := js.CreateConsumer(c, jobs.StreamEvents, jetstream.ConsumerConfig{FilterSubject: "deploy.events.globex.>"}); err == nil {
				return errors.New("created it")
			}
			return nil
		}},
		{"leader read (MSG.GET) of globex's event", `$JS.API.STREAM.MSG.GET.DEPLOY_EVENTS`, func() error {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if m, err := acme.RequestWithContext(c, "$JS.API.STREAM.MSG.GET.DEPLOY_EVENTS",
				[]byte(`{"last_by_subj":"deploy.events.globex.globex-1"}`)); err == nil {
				return fmt.Errorf("answered: %s", m.Data)
			}
			return nil
		}},
		{"Client.Watch of globex", `$JS.API.CONSUMER.CREATE.DEPLOY_EVENTS`, func() error {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			w, err := client.Watch(c, jobs.WatchFilter{Tenant: "globex", FromStart: true})
			if err != nil {
				return nil
			}
			defer w.Stop()
			for ev, err := range w.Events() {
				if err == nil {
					return fmt.Errorf("read %s", ev.Data.RequestID)
				}
				break
			}
			return nil
		}},
		{"read globex's checkpoint", `$JS.API.DIRECT.GET.KV_DEPLOY_JOBS.$KV.DEPLOY_JOBS.globex.`, func() error {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if st, err := client.Status(c, "globex", "globex-1"); err == nil {
				return fmt.Errorf("read it: %+v", st)
			}
			return nil
		}},
	} {
		if err := c.try(); err != nil {
			t.Errorf("%s: %v", c.what, err)
			continue
		}
		if !r.waitFor(c.refusal, 5*time.Second) {
			t.Errorf("%s: no permission refusal mentioning %s; refusals so far: %q", c.what, c.refusal, r.errs)
		}
	}
}

// Workers share what they learned of build times through
// DEPLOY_BUILDTIMES: the worker's user may write and read it, a tenant's
// may not write it.
func TestWorkersShareBuildTimes(t *testing.T) {
	s := startFromConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	worker := connect(t, s, "deployq-worker")
	wjs, _ := jetstream.New(worker)
	assets, err := jobs.Setup(ctx, wjs, jobs.SetupConfig{})
	if err != nil {
		t.Fatalf("Setup as deployq-worker: %v", err)
	}
	putCtx, putCancel := context.WithTimeout(ctx, 5*time.Second)
	defer putCancel()
	if _, err := assets.BuildTimes.Put(putCtx, "team_acme", []byte(`{"meanMs":60000,"devMs":6000,"samples":3}`)); err != nil {
		t.Fatalf("the worker cannot write %s: %v", jobs.BucketBuildTimes, err)
	}
	if e, err := assets.BuildTimes.Get(ctx, "team_acme"); err != nil || !strings.Contains(string(e.Value()), `"samples":3`) {
		t.Fatalf("the worker cannot read %s back: %v", jobs.BucketBuildTimes, err)
	}

	var r refusals
	r.seen = make(chan struct{}, 1)
	acme := connect(t, s, "tenant-acme", nats.CustomInboxPrefix("_INBOX_acme"), nats.ErrorHandler(r.handler))
	if err := acme.Publish("$KV."+jobs.BucketBuildTimes+".team_acme", []byte(`{"meanMs":1,"devMs":0,"samples":1000}`)); err != nil {
		t.Fatal(err)
	}
	if err := acme.Flush(); err != nil {
		t.Fatal(err)
	}
	if !r.waitFor(`Publish to "$KV.`+jobs.BucketBuildTimes+`.team_acme"`, 5*time.Second) {
		t.Fatalf("a tenant wrote the fleet's build times: refusals %q", r.errs)
	}
}
