// Command natscheck proves deploy/nats and deploy/k8s against a live
// cluster booted from deploy/nats/nats-*.conf (deploy/lint.sh does that):
//
//	natscheck cluster -monitor URL,URL,URL
//	    every node answers /healthz, and JetStream has a meta leader over
//	    all the nodes (/jsz) with distinct server names (/varz);
//	natscheck tenant -servers URLS -tenant T -password P -other O -source DIR -failing DIR
//	    with a tenant's credentials, pkg/jobs.Client can submit and follow
//	    its own deploys to their end (a worker must be running), and every
//	    way to reach another tenant's subjects, the workers' queue or the
//	    checkpoints is refused;
//	natscheck keda -metrics FILE -scaledobject FILE
//	    every series the prometheus trigger's query reads is one the
//	    worker exposes (FILE: a scrape of its /metrics), and the lag KEDA
//	    would compute from them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/tarball"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "cluster":
		err = runCluster(os.Args[2:])
	case "tenant":
		err = runTenant(os.Args[2:])
	case "keda":
		err = runKEDA(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "natscheck:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: natscheck cluster|tenant|keda [flags]")
	os.Exit(2)
}

// ---- cluster ---------------------------------------------------------------

func runCluster(args []string) error {
	fs := flag.NewFlagSet("cluster", flag.ExitOnError)
	monitors := fs.String("monitor", "", "monitoring base URLs of every node, comma-separated")
	wait := fs.Duration("wait", 30*time.Second, "how long the cluster may take to form")
	_ = fs.Parse(args)
	urls := split(*monitors)
	if len(urls) == 0 {
		return errors.New("cluster: -monitor is required")
	}
	deadline := time.Now().Add(*wait)
	for {
		err := clusterOnce(urls)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func clusterOnce(urls []string) error {
	names := map[string]bool{}
	leaders := map[string]bool{}
	for _, base := range urls {
		if code, body, err := get(base + "/healthz"); err != nil || code != http.StatusOK {
			return fmt.Errorf("%s/healthz: %d %s %v", base, code, strings.TrimSpace(body), err)
		}
		var varz struct {
			ServerName string `json:"server_name"`
			Routes     int    `json:"routes"`
			Cluster    struct {
				Name string `json:"name"`
			} `json:"cluster"`
		}
		if err := getJSON(base+"/varz", &varz); err != nil {
			return err
		}
		if names[varz.ServerName] {
			return fmt.Errorf("server_name %q is used twice", varz.ServerName)
		}
		names[varz.ServerName] = true
		var jsz struct {
			Meta struct {
				Name        string `json:"name"`
				Leader      string `json:"leader"`
				ClusterSize int    `json:"cluster_size"`
			} `json:"meta_cluster"`
		}
		if err := getJSON(base+"/jsz", &jsz); err != nil {
			return err
		}
		if jsz.Meta.Leader == "" {
			return fmt.Errorf("%s/jsz: no JetStream meta leader yet", base)
		}
		if jsz.Meta.ClusterSize != len(urls) {
			return fmt.Errorf("%s/jsz: meta cluster of %d, want %d", base, jsz.Meta.ClusterSize, len(urls))
		}
		leaders[jsz.Meta.Leader] = true
		fmt.Printf("  %s: server %s, cluster %s, %d routes, healthz ok, meta leader %s (cluster size %d)\n",
			base, varz.ServerName, varz.Cluster.Name, varz.Routes, jsz.Meta.Leader, jsz.Meta.ClusterSize)
	}
	if len(leaders) != 1 {
		return fmt.Errorf("nodes disagree on the meta leader: %v", leaders)
	}
	return nil
}

// ---- tenant ----------------------------------------------------------------

// violations collects the permission errors the server reports.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if err == nil {
		return
	}
	v.mu.Lock()
	v.errs = append(v.errs, err.Error())
	v.mu.Unlock()
}

// mark returns a position in the errors received so far.
func (v *violations) mark() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.errs)
}

// waitFor reports whether a permissions violation mentioning every one of
// parts arrives, after position from, within d.
func (v *violations) waitFor(from int, d time.Duration, parts ...string) bool {
	deadline := time.Now().Add(d)
	for {
		v.mu.Lock()
		for _, e := range v.errs[from:] {
			if !strings.Contains(strings.ToLower(e), "permissions violation") {
				continue
			}
			all := true
			for _, p := range parts {
				if !strings.Contains(e, p) {
					all = false
					break
				}
			}
			if all {
				v.mu.Unlock()
				return true
			}
		}
		v.mu.Unlock()
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func runTenant(args []string) error {
	fs := flag.NewFlagSet("tenant", flag.ExitOnError)
	servers := fs.String("servers", "", "NATS URLs, comma-separated, without credentials")
	tenant := fs.String("tenant", "acme", "tenant whose user connects")
	password := fs.String("password", "", "password of the user tenant-<tenant>")
	other := fs.String("other", "globex", "another tenant, whose subjects must stay out of reach")
	source := fs.String("source", "examples/nextjs-prisma", "app directory that builds")
	failing := fs.String("failing", "examples/failing-build", "app directory whose build fails")
	timeout := fs.Duration("timeout", 90*time.Second, "how long the deploys may take")
	_ = fs.Parse(args)
	if *servers == "" || *password == "" {
		return errors.New("tenant: -servers and -password are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	var v violations
	user := "tenant-" + *tenant
	nc, err := nats.Connect(withUser(*servers, user, *password),
		nats.Name("natscheck-"+*tenant),
		// Replies come to this tenant's own inbox prefix, the only one
		// its user may subscribe to.
		nats.CustomInboxPrefix("_INBOX_"+*tenant),
		nats.ErrorHandler(v.handler),
	)
	if err != nil {
		return fmt.Errorf("connect as %s: %w", user, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	client, err := jobs.NewClient(ctx, js, jobs.ClientConfig{Tenant: *tenant})
	if err != nil {
		return fmt.Errorf("allowed: jobs.NewClient for tenant %s: %w", *tenant, err)
	}
	ok("jobs.NewClient for the tenant (binds nothing, lists nothing)")

	// Allowed: submit and follow deploys of our own: one that builds, one
	// that fails (the worker's path to the DLQ), and the first again
	// through a client whose tiny SourceGrace makes it store the tarball
	// again (in place: each subject keeps its last message).
	var failed []string
	regrace, err := jobs.NewClient(ctx, js, jobs.ClientConfig{Tenant: *tenant, SourceGrace: time.Millisecond})
	if err != nil {
		return err
	}
	for _, c := range []struct {
		client *jobs.Client
		dir    string
		want   jobs.EventType
		note   string
	}{
		{client, *source, jobs.TypeSucceeded, ""},
		{client, *failing, jobs.TypeFailed, ""},
		{regrace, *source, jobs.TypeSucceeded, ", its stored tarball written again"},
	} {
		if err := submitAndFollow(ctx, c.client, *tenant, c.dir, c.want, c.note); err != nil {
			v.mu.Lock()
			defer v.mu.Unlock()
			return fmt.Errorf("%w (connection errors: %q)", err, v.errs)
		}
	}
	if err := submitBatchAndFollow(ctx, client, *tenant, *source, 3); err != nil {
		v.mu.Lock()
		defer v.mu.Unlock()
		return fmt.Errorf("%w (connection errors: %q)", err, v.errs)
	}
	if err := firstViolation(&v); err != nil {
		return fmt.Errorf("allowed operations caused %w", err)
	}

	// Refused: every other way in.
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Second) }
	raw := func(subject, body string) func() {
		return func() { _ = nc.PublishRequest(subject, nc.NewInbox(), []byte(body)); _ = nc.Flush() }
	}
	pub := func(subject string) func() {
		return func() { _ = nc.Publish(subject, []byte("{}")); _ = nc.Flush() }
	}
	sub := func(subject string) func() {
		return func() {
			if s, err := nc.SubscribeSync(subject); err == nil {
				_ = nc.Flush()
				time.AfterFunc(3*time.Second, func() { _ = s.Unsubscribe() })
			}
		}
	}
	sha := strings.Repeat("ab", 20)
	denied := []struct {
		what  string
		op    func()
		parts []string
	}{
		{"publish a request for " + *other, pub(jobs.RequestSubject(*other, "x")), []string{`"deploy.requests.` + *other + `.x"`}},
		{"publish a batch request for " + *other, pub(jobs.BatchRequestSubject(*other, "x")), []string{`"deploy.requests.` + *other + `.batch.x"`}},
		{"record a source reference for " + *other, pub("$KV.DEPLOY_SOURCE_REFS." + sha + "." + *other + ".x"),
			[]string{"$KV.DEPLOY_SOURCE_REFS.", "." + *other + ".x"}},
		{"overwrite " + *other + "'s tarball", pub("deploy.sources." + *other + "." + sha + ".0"), []string{`"deploy.sources.` + *other + "."}},
		{"read " + *other + "'s tarball", raw("$JS.API.DIRECT.GET.DEPLOY_SOURCES.deploy.sources."+*other+"."+sha+".meta", ""),
			[]string{"$JS.API.DIRECT.GET.DEPLOY_SOURCES.deploy.sources." + *other}},
		{"purge the tarballs", raw("$JS.API.STREAM.PURGE.DEPLOY_SOURCES", `{"filter":"deploy.sources.`+*other+`.>"}`), []string{"$JS.API.STREAM.PURGE.DEPLOY_SOURCES"}},
		{"delete a tarball chunk", raw("$JS.API.STREAM.MSG.DELETE.DEPLOY_SOURCES", `{"seq":1}`), []string{"$JS.API.STREAM.MSG.DELETE.DEPLOY_SOURCES"}},
		{"forge an event", pub(jobs.EventSubject(*tenant, "forged")), []string{`"deploy.events.` + *tenant + `.forged"`}},
		{"publish a cancel notice", pub("deploy.cancel." + *other + ".x"), []string{"deploy.cancel." + *other}},
		{"write a checkpoint", pub("$KV.DEPLOY_JOBS." + *tenant + ".forged"), []string{"$KV.DEPLOY_JOBS." + *tenant + ".forged"}},
		{"subscribe to " + *other + "'s events", sub("deploy.events." + *other + ".>"), []string{"deploy.events." + *other + ".>"}},
		{"subscribe to every event", sub("deploy.events.>"), []string{`"deploy.events.>"`}},
		{"subscribe to the shared inbox", sub("_INBOX.>"), []string{`"_INBOX.>"`}},
		{"subscribe to requests", sub("deploy.requests.>"), []string{`"deploy.requests.>"`}},
		{"subscribe to cancel notices", sub("deploy.cancel.>"), []string{`"deploy.cancel.>"`}},
		{"read " + *other + "'s checkpoint", raw("$JS.API.DIRECT.GET.KV_DEPLOY_JOBS.$KV.DEPLOY_JOBS."+*other+".some-id", ""),
			[]string{"$JS.API.DIRECT.GET.KV_DEPLOY_JOBS.$KV.DEPLOY_JOBS." + *other}},
		{"read " + *other + "'s last event", raw("$JS.API.DIRECT.GET.DEPLOY_EVENTS.deploy.events."+*other+".x", ""),
			[]string{"$JS.API.DIRECT.GET.DEPLOY_EVENTS.deploy.events." + *other}},
		{"a pull consumer on its own events", raw("$JS.API.CONSUMER.CREATE.DEPLOY_EVENTS.mine.deploy.events."+*tenant+".>",
			`{"stream_name":"DEPLOY_EVENTS","config":{"name":"mine","filter_subject":"deploy.events.`+*tenant+`.>","ack_policy":"none"}}`),
			[]string{"$JS.API.CONSUMER.CREATE.DEPLOY_EVENTS."}},
		{"a push consumer delivering into " + *other + "'s lane", raw("$JS.API.CONSUMER.CREATE.DEPLOY_EVENTS.push.deploy.events."+*tenant+".>",
			`{"stream_name":"DEPLOY_EVENTS","config":{"name":"push","filter_subject":"deploy.events.`+*tenant+`.>","deliver_subject":"deploy.requests.`+*other+`.x","ack_policy":"none"}}`),
			[]string{"$JS.API.CONSUMER.CREATE.DEPLOY_EVENTS."}},
		{"an admin's client (binds every stream)", func() {
			c, done := short()
			defer done()
			_, _ = jobs.NewClient(c, js, jobs.ClientConfig{})
		}, []string{"$JS.API.STREAM.INFO."}},
		{"MSG.GET on the events stream (any subject)", raw("$JS.API.STREAM.MSG.GET.DEPLOY_EVENTS", `{"seq":1}`), []string{"$JS.API.STREAM.MSG.GET.DEPLOY_EVENTS"}},
		{"pull from the workers' consumer", raw("$JS.API.CONSUMER.MSG.NEXT.DEPLOY_REQUESTS.deploy-workers", `{"batch":1}`), []string{"$JS.API.CONSUMER.MSG.NEXT.DEPLOY_REQUESTS"}},
		{"read the DLQ", raw("$JS.API.CONSUMER.CREATE.DEPLOY_DLQ.x.deploy.dlq."+*tenant, `{}`), []string{"$JS.API.CONSUMER.CREATE.DEPLOY_DLQ"}},
		{"purge the events stream", raw("$JS.API.STREAM.PURGE.DEPLOY_EVENTS", `{}`), []string{"$JS.API.STREAM.PURGE.DEPLOY_EVENTS"}},
		{"purge the checkpoints", raw("$JS.API.STREAM.PURGE.KV_DEPLOY_JOBS", `{}`), []string{"$JS.API.STREAM.PURGE.KV_DEPLOY_JOBS"}},
		{"delete the events stream", raw("$JS.API.STREAM.DELETE.DEPLOY_EVENTS", ""), []string{"$JS.API.STREAM.DELETE.DEPLOY_EVENTS"}},
		{"delete a consumer", raw("$JS.API.CONSUMER.DELETE.DEPLOY_EVENTS.x", ""), []string{"$JS.API.CONSUMER.DELETE.DEPLOY_EVENTS"}},
		{"list accounts' streams", raw("$JS.API.STREAM.NAMES", ""), []string{"$JS.API.STREAM.NAMES"}},
		{"list the consumers", raw("$JS.API.CONSUMER.LIST.DEPLOY_REQUESTS", ""), []string{"$JS.API.CONSUMER.LIST.DEPLOY_REQUESTS"}},
	}
	for _, stream := range []string{jobs.StreamRequests, jobs.StreamEvents, jobs.StreamDLQ, jobs.StreamSources,
		"KV_" + jobs.BucketJobs, "KV_" + jobs.BucketSourceRefs, "KV_" + jobs.BucketUploads} {
		subj := "$JS.API.STREAM.INFO." + stream
		denied = append(denied, struct {
			what  string
			op    func()
			parts []string
		}{"list " + stream + "'s subjects", raw(subj, `{"subjects_filter":">"}`), []string{subj}})
	}
	for _, d := range denied {
		from := v.mark()
		// The violation arrives within milliseconds; a refused request
		// would only time out, so it runs on in the background.
		go d.op()
		if v.waitFor(from, 3*time.Second, d.parts...) {
			ok("refused: " + d.what)
		} else {
			failed = append(failed, d.what)
			fmt.Printf("  FAIL   not refused: %s\n", d.what)
		}
	}

	// Client.Status reads the checkpoint and the last event with direct
	// gets, which name the tenant in their subject: an id never seen is
	// unknown, not refused.
	{
		c, done := short()
		_, err := client.Status(c, *tenant, "natscheck-status-probe")
		done()
		if err == nil || errors.Is(err, jobs.ErrUnknownRequest) {
			ok("Client.Status of an unknown id: unknown, not refused")
		} else {
			failed = append(failed, "Client.Status for the tenant: "+err.Error())
			fmt.Printf("  FAIL   Client.Status for the tenant: %v\n", err)
		}
	}

	if len(failed) > 0 {
		return fmt.Errorf("%d checks failed: %s", len(failed), strings.Join(failed, "; "))
	}
	return nil
}

// submitBatchAndFollow submits n requests of one source in one SubmitBatch
// call, which publishes the source references itself (to the refs
// bucket's subjects), and follows their terminal events only.
func submitBatchAndFollow(ctx context.Context, client *jobs.Client, tenant, dir string, n int) error {
	start := time.Now()
	archive, err := tarball.Pack(dir)
	if err != nil {
		return fmt.Errorf("pack %s: %w", dir, err)
	}
	w, err := client.Watch(ctx, jobs.WatchFilter{Tenant: tenant, TerminalOnly: true})
	if err != nil {
		return fmt.Errorf("allowed: Client.Watch own terminal events: %w", err)
	}
	defer w.Stop()
	reqs := make([]jobs.Request, n)
	want := make(map[string]bool, n)
	for i := range reqs {
		reqs[i] = jobs.Request{ID: jobs.NewID(), Tenant: tenant, Name: "natscheck", Framework: "nextjs"}
		want[reqs[i].ID] = true
	}
	// One on the batch subject: the tenant's grant covers it too.
	reqs[n-1].Priority = jobs.PriorityBatch
	if _, err := client.SubmitBatch(ctx, reqs, archive.Data); err != nil {
		return fmt.Errorf("allowed: Client.SubmitBatch for %s: %w", tenant, err)
	}
	for ev, err := range w.Events() {
		if err != nil {
			return fmt.Errorf("allowed: following the batch: %w", err)
		}
		if !want[ev.Data.RequestID] {
			continue
		}
		if ev.Type != jobs.TypeSucceeded {
			return fmt.Errorf("batch request %s ended %s", ev.Data.RequestID, ev.Type)
		}
		delete(want, ev.Data.RequestID)
		if len(want) == 0 {
			ok(fmt.Sprintf("Client.SubmitBatch of %d requests + a terminal-only Client.Watch: all succeeded in %s",
				n, time.Since(start).Round(10*time.Millisecond)))
			return nil
		}
	}
	return fmt.Errorf("following the batch: %d of %d requests without a terminal event: %w", len(want), n, ctx.Err())
}

func submitAndFollow(ctx context.Context, client *jobs.Client, tenant, dir string, want jobs.EventType, note string) error {
	start := time.Now()
	archive, err := tarball.Pack(dir)
	if err != nil {
		return fmt.Errorf("pack %s: %w", dir, err)
	}
	req := jobs.Request{ID: jobs.NewID(), Tenant: tenant, Name: "natscheck", Framework: "nextjs",
		ReturnURL: "https://platform.example/back"}
	w, err := client.Watch(ctx, jobs.WatchFilter{Tenant: tenant, ID: req.ID, FromStart: true})
	if err != nil {
		return fmt.Errorf("allowed: Client.Watch own request: %w", err)
	}
	defer w.Stop()
	sub, err := client.Submit(ctx, req, archive.Data)
	if err != nil {
		return fmt.Errorf("allowed: Client.Submit for %s: %w", tenant, err)
	}
	steps := 0
	for ev, err := range w.Events() {
		if err != nil {
			return fmt.Errorf("allowed: following %s: %w", sub.ID, err)
		}
		if !ev.Terminal() {
			steps++
			continue
		}
		if ev.Type != want {
			return fmt.Errorf("request %s (%s) ended %s, want %s", sub.ID, dir, ev.Type, want)
		}
		ok(fmt.Sprintf("Client.Submit + Client.Watch: %s %s after %d steps in %s%s",
			dir, strings.TrimPrefix(string(ev.Type), "dev.deployq.deploy."), steps, time.Since(start).Round(10*time.Millisecond), note))
		status, err := client.Status(ctx, tenant, sub.ID)
		if err != nil || status.State == nil || status.Last == nil {
			return fmt.Errorf("allowed: Client.Status of own request %s: %+v %v", sub.ID, status, err)
		}
		ok(fmt.Sprintf("Client.Status of own request: %s, last event %s", status.State.Status,
			strings.TrimPrefix(string(status.Last.Type), "dev.deployq.deploy.")))
		return nil
	}
	return fmt.Errorf("request %s (%s): no terminal event before the timeout", sub.ID, dir)
}

func firstViolation(v *violations) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.errs {
		if strings.Contains(strings.ToLower(e), "permissions violation") {
			return errors.New(e)
		}
	}
	return nil
}

func ok(what string) { fmt.Printf("  ok     %s\n", what) }

// withUser puts credentials into every URL of a comma-separated list.
func withUser(servers, user, password string) string {
	var out []string
	for _, s := range split(servers) {
		u, err := url.Parse(s)
		if err != nil {
			out = append(out, s)
			continue
		}
		u.User = url.UserPassword(user, password)
		out = append(out, u.String())
	}
	return strings.Join(out, ",")
}

// ---- keda ------------------------------------------------------------------

func runKEDA(args []string) error {
	fs := flag.NewFlagSet("keda", flag.ExitOnError)
	scrape := fs.String("metrics", "", "a scrape of a worker's /metrics")
	file := fs.String("scaledobject", "deploy/k8s/scaledobject.yaml", "the ScaledObject manifest")
	_ = fs.Parse(args)
	meta, err := triggerMetadata(*file)
	if err != nil {
		return err
	}
	for _, k := range []string{"serverAddress", "query", "threshold"} {
		if meta[k] == "" {
			return fmt.Errorf("%s: trigger metadata %s is empty", *file, k)
		}
	}
	raw, err := os.ReadFile(*scrape)
	if err != nil {
		return err
	}
	// Every series the query reads is one the worker exposes, with the
	// job label the scrape configuration gives (deploy/prometheus): the
	// lag KEDA computes is that sum.
	names := metricName.FindAllString(meta["query"], -1)
	if len(names) == 0 {
		return fmt.Errorf("%s: the trigger's query names no deployq metric", *file)
	}
	var parts []string
	lag := 0.0
	for _, name := range names {
		v, found := sample(string(raw), name)
		if !found {
			return fmt.Errorf("the trigger's query reads %s, which the worker does not expose", name)
		}
		lag += v
		parts = append(parts, fmt.Sprintf("%s %g", name, v))
	}
	ok(fmt.Sprintf("KEDA trigger's query reads series the worker exposes: %s; lag now %g (threshold %s)",
		strings.Join(parts, " + "), lag, meta["threshold"]))
	return nil
}

var metricName = regexp.MustCompile(`deployq_[a-z_]+`)

// sample is the value of an unlabelled sample of name in an exposition.
func sample(exposition, name string) (float64, bool) {
	for _, line := range strings.Split(exposition, "\n") {
		if v, found := strings.CutPrefix(line, name+" "); found {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// triggerMetadata reads the "key: value" lines of the prometheus
// trigger's metadata block. The manifest's structure is kubeconform's to
// check; this only needs the values, which sit one level below
// "metadata:" after "type: prometheus".
func triggerMetadata(file string) (map[string]string, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	meta := map[string]string{}
	inTrigger, inMeta, metaIndent := false, false, 0
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case strings.TrimPrefix(trimmed, "- ") == "type: prometheus":
			inTrigger = true
		case inTrigger && trimmed == "metadata:":
			inMeta, metaIndent = true, indent
		case inMeta && indent > metaIndent:
			k, v, found := strings.Cut(trimmed, ":")
			if found {
				v = strings.TrimSpace(v)
				if uq, err := strconv.Unquote(v); err == nil {
					v = uq
				}
				meta[strings.TrimSpace(k)] = strings.Trim(v, `'`)
			}
		case inMeta:
			inTrigger, inMeta = false, false
		}
	}
	if len(meta) == 0 {
		return nil, fmt.Errorf("%s: no prometheus trigger metadata", file)
	}
	return meta, nil
}

// ---- helpers ---------------------------------------------------------------

var httpClient = &http.Client{Timeout: 5 * time.Second}

func get(u string) (int, string, error) {
	resp, err := httpClient.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func getJSON(u string, v any) error {
	code, body, err := get(u)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("%s: %d %s", u, code, strings.TrimSpace(body))
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	return nil
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
