package nats_test

import (
	"context"
	"encoding/json"
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

// Tenant acme's credentials submit, watch and read the status of acme's
// requests through a tenant's jobs.Client, and nothing else: every way
// one tenant could reach another (publishing in its lane, reading its
// events, tarballs or checkpoints, listing streams, creating consumers,
// purging or overwriting tarballs) is refused by the server.
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
	// One event and one tarball for each tenant, as workers and producers
	// leave them.
	admin := connect(t, s, "deployq-admin")
	ajs, _ := jetstream.New(admin)
	for _, tenant := range []string{"acme", "globex"} {
		data := fmt.Sprintf(`{"specversion":"1.0","id":"%s.%s-1.terminal","source":"deployq","type":"dev.deployq.deploy.succeeded","data":{"requestId":"%s-1","tenant":"%s"}}`, tenant, tenant, tenant, tenant)
		if _, err := wjs.Publish(ctx, jobs.EventSubject(tenant, tenant+"-1"), []byte(data)); err != nil {
			t.Fatalf("worker publishes %s's event: %v", tenant, err)
		}
		if err := jobs.NewSourceStore(ajs).Put(ctx, tenant, sha(tenant), []byte(tenant+"'s tarball")); err != nil {
			t.Fatal(err)
		}
	}

	// Each tenant has an app, and a worker answers claim refreshes (as
	// its user may: allow_responses), here with a fixed answer.
	for _, tenant := range []string{"acme", "globex"} {
		app, _ := json.Marshal(jobs.App{Tenant: tenant, ID: "site", State: jobs.AppLive})
		if _, err := assets.Apps.Put(ctx, jobs.AppKey(tenant, "site"), app); err != nil {
			t.Fatalf("worker writes %s's app: %v", tenant, err)
		}
	}
	if _, err := worker.QueueSubscribe(jobs.AllClaims, jobs.ClaimQueue, func(m *nats.Msg) {
		_ = m.Respond([]byte(`{"code":"c0de","claimUrl":"https://vercel.com/claim-deployment?code=c0de"}`))
	}); err != nil {
		t.Fatalf("worker answers claim refreshes: %v", err)
	}

	var r refusals
	r.seen = make(chan struct{}, 1)
	acme := connect(t, s, "tenant-acme", nats.CustomInboxPrefix("_INBOX_acme"), nats.ErrorHandler(r.handler))
	js, _ := jetstream.New(acme)

	// Allowed: its own request, its own events, its own tarballs, a
	// tenant's client's Submit, SubmitBatch, Watch, Status and LastEvent.
	if _, err := js.Publish(ctx, jobs.RequestSubject("acme", "own-1"), []byte(`{}`)); err != nil {
		t.Fatalf("acme cannot publish its own request: %v", err)
	}
	if _, err := js.Publish(ctx, jobs.BatchRequestSubject("acme", "own-2"), []byte(`{}`)); err != nil {
		t.Fatalf("acme cannot publish its own batch request: %v", err)
	}
	client, err := jobs.NewClient(ctx, js, jobs.ClientConfig{Tenant: "acme"})
	if err != nil {
		t.Fatalf("acme cannot start a tenant's client: %v", err)
	}
	if ev, err := client.LastEvent(ctx, "acme", "acme-1"); err != nil || ev == nil || ev.Data.RequestID != "acme-1" {
		t.Fatalf("acme cannot read its own event: %+v, %v", ev, err)
	}
	w, err := client.Watch(ctx, jobs.WatchFilter{Tenant: "acme", ID: "acme-1", FromStart: true})
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
	sub, err := client.Submit(ctx, jobs.Request{Name: "single"}, []byte("acme's tarball"))
	if err != nil || sub.Tenant != "acme" {
		t.Fatalf("acme cannot submit: %+v, %v", sub, err)
	}
	batch := []jobs.Request{{Tenant: "acme", Name: "batch-a"}, {Tenant: "acme", Name: "batch-b"}}
	if res, err := client.SubmitBatch(ctx, batch, []byte("acme's other tarball")); err != nil {
		t.Fatalf("acme cannot submit a batch of its own requests: %v (%+v)", err, res)
	}
	if _, err := client.Status(ctx, "acme", sub.ID); err != nil && !errors.Is(err, jobs.ErrUnknownRequest) {
		t.Fatalf("acme cannot read its own status: %v", err)
	}
	if a, err := client.App(ctx, "acme", "site"); err != nil || a == nil || a.ID != "site" {
		t.Fatalf("acme cannot read its own app: %+v, %v", a, err)
	}
	if ans, err := client.RefreshClaim(ctx, "acme", "site", jobs.ClaimAsk{}); err != nil || ans.Code != "c0de" {
		t.Fatalf("acme cannot ask for its own app's claim URL: %+v, %v", ans, err)
	}
	// Build logs: acme follows its own, the worker hears it (asking, and
	// told of a follower that comes during the build) and publishes.
	hello, err := worker.SubscribeSync(jobs.LogFollowSubject("acme", "built-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.Flush(); err != nil {
		t.Fatal(err)
	}
	logs, err := client.FollowLogs(ctx, "acme", "built-1")
	if err != nil {
		t.Fatalf("acme cannot follow its own build log: %v", err)
	}
	if _, err := hello.NextMsg(2 * time.Second); err != nil {
		t.Fatalf("the worker is not told that acme follows its log: %v", err)
	}
	_ = hello.Unsubscribe()
	if _, err := worker.Request(jobs.LogWatchSubject("acme", "built-1"), nil, 2*time.Second); err != nil {
		t.Fatalf("the worker does not hear acme following its log: %v", err)
	}
	if err := worker.Publish(jobs.LogSubject("acme", "built-1"), []byte(`{"requestId":"built-1","tenant":"acme","seq":1,"text":"hello"}`)); err != nil {
		t.Fatal(err)
	}
	for l := range logs.Lines() {
		if l.Text != "hello" {
			t.Fatalf("acme's log line %+v", l)
		}
		break
	}
	logs.Stop()
	if r.waitFor("", 0) {
		t.Fatalf("allowed operations were refused: %q", r.errs)
	}
	// The client itself keeps to its tenant.
	if _, err := client.Submit(ctx, jobs.Request{Tenant: "globex", Name: "x"}, []byte("x")); err == nil {
		t.Fatal("acme's client submitted for globex")
	}

	// Refused: publishing for globex, in either subject form. Nothing
	// reaches the stream.
	for _, subj := range []string{jobs.RequestSubject("globex", "g-1"), jobs.BatchRequestSubject("globex", "g-1"), "deploy.requests.globex"} {
		if err := acme.Publish(subj, []byte(`{"tenant":"globex"}`)); err != nil {
			t.Fatal(err)
		}
		if err := acme.Flush(); err != nil {
			t.Fatal(err)
		}
		if !r.waitFor(`Publish to "`+subj+`"`, 5*time.Second) {
			t.Fatalf("publishing globex's request on %s was not refused: %q", subj, r.errs)
		}
	}
	info, err := assets.Requests.Info(ctx, jetstream.WithSubjectFilter("deploy.requests.globex.>"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(info.State.Subjects); n != 0 {
		t.Fatalf("requests for globex reached the stream from acme's credentials: %v", info.State.Subjects)
	}

	// request asks the JetStream API as acme and fails the test if it answers.
	request := func(subject, body string) func() error {
		return func() error {
			// A refused request gets no answer at all; an allowed one
			// would come in milliseconds.
			c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			if m, err := acme.RequestWithContext(c, subject, []byte(body)); err == nil {
				return fmt.Errorf("answered: %.200s", m.Data)
			}
			return nil
		}
	}
	publish := func(subject string) func() error {
		return func() error {
			if err := acme.Publish(subject, []byte("x")); err != nil {
				return err
			}
			return acme.Flush()
		}
	}
	subscribe := func(subject string) func() error {
		return func() error {
			_, err := acme.SubscribeSync(subject)
			_ = acme.Flush()
			return err
		}
	}
	cases := []struct {
		what, refusal string
		try           func() error
	}{
		{"subscribe to globex's events", `Subscription to "deploy.events.globex.>"`, subscribe("deploy.events.globex.>")},
		{"subscribe to every event", `Subscription to "deploy.events.>"`, subscribe("deploy.events.>")},
		{"subscribe to cancel notices", `Subscription to "deploy.cancel.>"`, subscribe("deploy.cancel.>")},
		{"subscribe to globex's build logs", `Subscription to "deploy.logs.globex.>"`, subscribe("deploy.logs.globex.>")},
		{"publish a build log line", `Publish to "deploy.logs.acme.x"`, publish("deploy.logs.acme.x")},
		{"direct get of globex's event", "$JS.API.DIRECT.GET.DEPLOY_EVENTS.deploy.events.globex.globex-1",
			request("$JS.API.DIRECT.GET.DEPLOY_EVENTS.deploy.events.globex.globex-1", "")},
		{"direct get of globex's checkpoint", "$JS.API.DIRECT.GET.KV_DEPLOY_JOBS.$KV.DEPLOY_JOBS.globex.globex-1",
			request("$JS.API.DIRECT.GET.KV_DEPLOY_JOBS.$KV.DEPLOY_JOBS.globex.globex-1", "")},
		{"direct get of globex's tarball", "$JS.API.DIRECT.GET.DEPLOY_SOURCES.deploy.sources.globex.",
			request("$JS.API.DIRECT.GET.DEPLOY_SOURCES."+"deploy.sources.globex."+sha("globex")+".0", "")},
		{"overwrite globex's tarball", `Publish to "deploy.sources.globex.`, publish("deploy.sources.globex." + sha("globex") + ".0")},
		{"purge the tarballs", "$JS.API.STREAM.PURGE.DEPLOY_SOURCES",
			request("$JS.API.STREAM.PURGE.DEPLOY_SOURCES", `{"filter":"deploy.sources.globex.>"}`)},
		{"delete a tarball chunk", "$JS.API.STREAM.MSG.DELETE.DEPLOY_SOURCES",
			request("$JS.API.STREAM.MSG.DELETE.DEPLOY_SOURCES", `{"seq":1}`)},
		{"leader read (MSG.GET) of globex's event", "$JS.API.STREAM.MSG.GET.DEPLOY_EVENTS",
			request("$JS.API.STREAM.MSG.GET.DEPLOY_EVENTS", `{"last_by_subj":"deploy.events.globex.globex-1"}`)},
		{"list the streams", "$JS.API.STREAM.LIST", request("$JS.API.STREAM.LIST", "")},
		{"list the stream names", "$JS.API.STREAM.NAMES", request("$JS.API.STREAM.NAMES", "")},
		{"list the consumers", "$JS.API.CONSUMER.LIST.DEPLOY_REQUESTS", request("$JS.API.CONSUMER.LIST.DEPLOY_REQUESTS", "")},
		{"a push consumer delivering into globex's lane", "$JS.API.CONSUMER.CREATE.DEPLOY_EVENTS",
			request("$JS.API.CONSUMER.CREATE.DEPLOY_EVENTS.sneaky.deploy.events.acme.>",
				`{"stream_name":"DEPLOY_EVENTS","config":{"name":"sneaky","filter_subject":"deploy.events.acme.>","deliver_subject":"deploy.requests.globex.g-2","ack_policy":"none"}}`)},
		{"a pull consumer on its own events", "$JS.API.CONSUMER.CREATE.DEPLOY_EVENTS",
			request("$JS.API.CONSUMER.CREATE.DEPLOY_EVENTS.mine.deploy.events.acme.>",
				`{"stream_name":"DEPLOY_EVENTS","config":{"name":"mine","filter_subject":"deploy.events.acme.>","ack_policy":"none"}}`)},
		{"write a checkpoint", `Publish to "$KV.DEPLOY_JOBS.acme.forged"`, publish("$KV.DEPLOY_JOBS.acme.forged")},
		{"direct get of globex's app", "$JS.API.DIRECT.GET.KV_DEPLOY_APPS.$KV.DEPLOY_APPS.globex.site",
			request("$JS.API.DIRECT.GET.KV_DEPLOY_APPS.$KV.DEPLOY_APPS.globex.site", "")},
		{"write its own app's record", `Publish to "$KV.DEPLOY_APPS.acme.site"`, publish("$KV.DEPLOY_APPS.acme.site")},
		{"ask for globex's claim URL", `Publish to "deploy.apps.claim.globex.site"`, request("deploy.apps.claim.globex.site", "{}")},
		{"record a source reference for globex", `Publish to "$KV.DEPLOY_SOURCE_REFS.`, publish("$KV.DEPLOY_SOURCE_REFS." + sha("x") + ".globex.x")},
		{"an admin's client", "$JS.API.STREAM.INFO.", func() error {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if _, err := jobs.NewClient(c, js, jobs.ClientConfig{}); err == nil {
				return errors.New("bound every stream")
			}
			return nil
		}},
	}
	for _, stream := range []string{jobs.StreamRequests, jobs.StreamEvents, jobs.StreamDLQ, jobs.StreamSources,
		"KV_" + jobs.BucketJobs, "KV_" + jobs.BucketSourceRefs, "KV_" + jobs.BucketUploads, "KV_" + jobs.BucketApps} {
		subj := "$JS.API.STREAM.INFO." + stream
		cases = append(cases, struct {
			what, refusal string
			try           func() error
		}{"list " + stream + "'s subjects", subj, request(subj, `{"subjects_filter":">"}`)})
	}
	for _, c := range cases {
		if err := c.try(); err != nil {
			t.Errorf("%s: %v", c.what, err)
			continue
		}
		if !r.waitFor(c.refusal, 5*time.Second) {
			t.Errorf("%s: no permission refusal mentioning %s; refusals so far: %q", c.what, c.refusal, r.errs)
		}
	}
	if info, err := assets.Requests.Info(ctx, jetstream.WithSubjectFilter("deploy.requests.globex.>")); err != nil || len(info.State.Subjects) != 0 {
		t.Fatalf("something reached globex's lane: %v, %v", info.State.Subjects, err)
	}
}

// sha is a stand-in SHA-1 for a tarball name.
func sha(s string) string {
	return fmt.Sprintf("%040x", []byte(s))[:40]
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
