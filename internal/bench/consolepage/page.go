package consolepage

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/deployq/deployq/internal/bench"
	"github.com/deployq/deployq/internal/stack"
	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/console"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/tarball"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
	"github.com/nats-io/nats.go/jetstream"
)

type options struct {
	jobs        int
	month       int
	queued      int
	loads       int
	screenshots string
	json        string
	seed        int64
	keep        bool
}

// The tenants and their shares of the traffic.
var tenants = []struct {
	name  string
	share float64
}{{"acme", 0.5}, {"globex", 0.2}, {"initech", 0.15}, {"hooli", 0.1}, {"umbrella", 0.05}}

// Results is what a run measured.
type Results struct {
	Machine bench.Machine `json:"machine"`
	Code    string        `json:"code"`
	Seed    int64         `json:"seed"`
	// Jobs ended and requests queued when the page was measured.
	Jobs   int `json:"jobsKept"`
	Month  int `json:"jobsOfTheMonthBefore"`
	Queued int `json:"requestsQueued"`
	// The jobs view's read (Client.Jobs with the page's limit: the newest,
	// back an hour) against a read of every checkpoint kept, side by side:
	// medians of Loads each, and the checkpoints the page's read took.
	JobsPageMs   float64 `json:"jobsPageReadMedianMs"`
	JobsPageRead int     `json:"jobsPageReadCheckpoints"`
	JobsEveryMs  float64 `json:"jobsEveryCheckpointMedianMs"`
	Loads        int     `json:"loads"`
	// First render: from navigation start until the jobs table holds its
	// rows and the header its counts; medians and worst of Loads.
	FirstRenderMs    float64 `json:"firstRenderMedianMs"`
	FirstRenderMaxMs float64 `json:"firstRenderMaxMs"`
	// What the first render transferred: the page, and the API answers
	// it read, in bytes (uncompressed: the console serves no gzip).
	PageBytes    int                `json:"pageBytes"`
	APIBytes     map[string]int     `json:"apiBytes"`
	TotalBytes   int                `json:"totalBytes"`
	RowsRendered int                `json:"rowsRendered"`
	ServerMs     map[string]float64 `json:"serverMedianMs"`
	Screenshots  []string           `json:"screenshots,omitempty"`
}

// Main parses args (what follows "bench console") and runs the
// benchmark; it returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var o options
	fs := flag.NewFlagSet("bench console", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.jobs, "jobs", 10000, "deploys run to their end before the page is measured")
	fs.IntVar(&o.month, "month", 50000, "checkpoints of jobs that ended over the 30 days before, kept as the jobs bucket keeps them")
	fs.IntVar(&o.queued, "queued", 10000, "requests left waiting in the queue")
	fs.IntVar(&o.loads, "loads", 7, "page loads measured")
	fs.StringVar(&o.screenshots, "screenshots", "", "write a PNG of each view into this directory")
	fs.StringVar(&o.json, "json", "docs/benchmarks/console.json", "write the results here; empty skips")
	fs.Int64Var(&o.seed, "seed", 0, "seed of the traffic and the simulator (0: random, recorded)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary NATS store")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.jobs < 1 || o.queued < 0 || o.month < 0 || o.loads < 1 {
		fmt.Fprintln(stderr, "bench console: want -jobs and -loads positive, -queued and -month not negative")
		return 2
	}
	o.seed = bench.Seed(o.seed)
	dir, err := os.MkdirTemp("", "consolebench-")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	res, err := o.run(ctx, dir, stderr)
	failed := err != nil
	if err != nil {
		fmt.Fprintf(stderr, "consolebench: %v\n", err)
	} else {
		res.print(stdout)
		if o.json != "" {
			if err := bench.WriteJSON(o.json, res); err != nil {
				fmt.Fprintln(stderr, err)
				failed = true
			}
		}
	}
	return bench.Finish(stderr, "consolebench", dir, failed, o.keep)
}

// limits are Vercel's Pro limits a hundredfold: the seed's ten thousand
// deploys fit, and the budget view has windows to show.
func limits() map[vercel.Endpoint]budget.Limit {
	out := budget.PlanLimits(budget.PlanPro)
	for ep, l := range out {
		l.Requests *= 100
		for i := range l.Caps {
			l.Caps[i].Requests *= 100
		}
		out[ep] = l
	}
	return out
}

func (o options) run(ctx context.Context, dir string, stderr io.Writer) (*Results, error) {
	res := &Results{Machine: bench.DescribeMachine(time.Now()), Code: bench.CodeVersion(), Seed: o.seed, Loads: o.loads,
		APIBytes: map[string]int{}, ServerMs: map[string]float64{}}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		return nil, errors.New("chromium is needed: apt-get install chromium")
	}
	s, err := stack.Start(ctx, stack.Config{Dir: filepath.Join(dir, "nats"), Name: "consolebench", Sim: &vercelsim.Config{
		BuildTime: 300 * time.Millisecond, Seed: o.seed,
	}})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	quiet := slog.New(slog.DiscardHandler)
	fleet, err := budget.New(budget.NewMemoryStore(), budget.Config{Limits: limits(), Logger: quiet})
	if err != nil {
		return nil, err
	}
	startWorker := func(concurrency int) (func() error, error) {
		api, err := s.API("", vercel.WithLimiter(fleet))
		if err != nil {
			return nil, err
		}
		p, err := s.Pipeline(api, worker.PipelineConfig{ExpectedBuild: 300 * time.Millisecond, BuildTimes: s.Assets.BuildTimes})
		if err != nil {
			return nil, err
		}
		_, stop, err := s.RunWorker(ctx, nil, p, worker.Config{Concurrency: concurrency, ShutdownGrace: time.Second, Logger: quiet,
			Apps: worker.AppsConfig{TTL: 7 * 24 * time.Hour}})
		return stop, err
	}
	client, err := jobs.NewClient(ctx, s.JS, jobs.ClientConfig{})
	if err != nil {
		return nil, err
	}
	good, bad, err := tarballs(dir)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(o.seed), 1))

	// The month before: jobs long ended, kept as the bucket keeps them.
	if o.month > 0 {
		fmt.Fprintf(stderr, "consolebench: writing %d checkpoints of the month before\n", o.month)
		if err := month(ctx, s.Assets.Jobs, rng, o.month); err != nil {
			return nil, err
		}
	}
	res.Month = o.month

	// The seed: every deploy run to its end.
	stopSeed, err := startWorker(256)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "consolebench: running %d deploys of %d tenants to their end\n", o.jobs, len(tenants))
	if err := submit(ctx, client, rng, o.jobs, "done", good, bad); err != nil {
		return nil, err
	}
	if err := drain(ctx, client); err != nil {
		return nil, err
	}
	if err := stopSeed(); err != nil {
		return nil, err
	}
	// The queue: requests no worker takes.
	fmt.Fprintf(stderr, "consolebench: queueing %d requests\n", o.queued)
	if err := submit(ctx, client, rng, o.queued, "waiting", good, nil); err != nil {
		return nil, err
	}
	handler, err := console.Handler(console.Config{Client: client, Budget: fleet, AppTTL: 7 * 24 * time.Hour, Token: "consolebench-token", Logger: quiet})
	if err != nil {
		return nil, err
	}
	url, stopHTTP, err := stack.ServeLoopback(handler, nil)
	if err != nil {
		return nil, err
	}
	defer stopHTTP()
	ov, err := client.Overview(ctx)
	if err != nil {
		return nil, err
	}
	list, err := client.Jobs(ctx, jobs.JobQuery{Limit: 1})
	if err != nil {
		return nil, err
	}
	res.Jobs, res.Queued = list.Total, ov.Queued
	if err := res.readsSideBySide(ctx, client, o.loads); err != nil {
		return nil, err
	}

	for _, path := range []string{"/api/overview", "/api/jobs?limit=200", "/api/dlq", "/api/apps", "/api/budget"} {
		ms, size, err := serverTime(ctx, url+path, o.loads)
		if err != nil {
			return nil, err
		}
		res.ServerMs[path] = ms
		res.APIBytes[path] = size
	}

	bctx, cancel, errs, err := browser(ctx, chromium)
	if err != nil {
		return nil, err
	}
	defer cancel()
	fmt.Fprintf(stderr, "consolebench: loading the page %d times with %d jobs kept and %d queued\n", o.loads, res.Jobs, res.Queued)
	var renders []float64
	for range o.loads {
		l, err := measureLoad(bctx, url)
		if err != nil {
			return nil, err
		}
		renders = append(renders, l.renderMs)
		res.PageBytes, res.TotalBytes, res.RowsRendered = l.pageBytes, l.totalBytes, l.rows
	}
	slices.Sort(renders)
	res.FirstRenderMs, res.FirstRenderMaxMs = renders[len(renders)/2], renders[len(renders)-1]
	if len(*errs) > 0 {
		return nil, fmt.Errorf("the page logged errors: %q", *errs)
	}
	if o.screenshots != "" {
		stopLive, err := startWorker(6)
		if err != nil {
			return nil, err
		}
		defer func() { _ = stopLive() }()
		if res.Screenshots, err = screenshots(bctx, url, o.screenshots, client); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// readsSideBySide times the jobs view's read against a read of every
// checkpoint, alternately, n times each.
func (r *Results) readsSideBySide(ctx context.Context, c *jobs.Client, n int) error {
	var page, every []float64
	for range n {
		for _, q := range []jobs.JobQuery{{Limit: maxRows}, {}} {
			start := time.Now()
			list, err := c.Jobs(ctx, q)
			if err != nil {
				return err
			}
			ms := float64(time.Since(start).Microseconds()) / 1000
			if q.Limit == 0 {
				every = append(every, ms)
				continue
			}
			page, r.JobsPageRead = append(page, ms), list.Read
		}
	}
	slices.Sort(page)
	slices.Sort(every)
	r.JobsPageMs, r.JobsEveryMs = page[len(page)/2], every[len(every)/2]
	return nil
}

// maxRows is the console's page of jobs.
const maxRows = 200

// month writes n checkpoints of jobs that ended over the 30 days before
// the run, oldest first, shaped as a worker leaves them (ids, URLs, the
// terminal event; 3 % failed builds).
func month(ctx context.Context, kv jetstream.KeyValue, rng *rand.Rand, n int) error {
	now := time.Now()
	id := func(prefix string) string { return fmt.Sprintf("%s_%016x%08x", prefix, rng.Uint64(), rng.Uint32()) }
	for i := range n {
		at := now.Add(-30*24*time.Hour + time.Duration(i)*(29*24*time.Hour/time.Duration(n)))
		t := tenants[i%len(tenants)].name
		name := fmt.Sprintf("site-%012x", rng.Uint64()>>16)
		st := jobs.JobState{
			Version: 1, ID: fmt.Sprintf("month-%06d", i), Tenant: t, Status: jobs.StatusSucceeded, Step: jobs.StepCreateClaim,
			ProjectID: id("prj"), ProjectName: name, AuthorizationID: id("authz"), StoreID: id("store"), StoreName: "deployq-db-" + name[5:],
			DeploymentID: id("dpl"), DeploymentURL: name + "-" + id("x")[2:11] + ".vercel.app", URL: name + ".vercel.app",
			DeployedAt: at.Add(-time.Second), ClaimIssuedAt: at, App: fmt.Sprintf("month-%06d", i), AppVersion: 1,
			Owner: "worker-" + id("w")[2:10], Lease: 1, Attempts: 1, Seq: uint64(i + 1),
			SubmittedAt: at.Add(-40 * time.Second), StartedAt: at.Add(-39 * time.Second), UpdatedAt: at, Published: true,
		}
		ev := &jobs.Event{Type: jobs.TypeSucceeded, Time: at, Data: jobs.EventData{RequestID: st.ID, Tenant: t, URL: "https://" + st.URL}}
		if rng.Float64() < 0.03 {
			st.Status, st.Step = jobs.StatusFailed, jobs.StepCreateDeployment
			ev.Type = jobs.TypeFailed
			ev.Data.Error = &jobs.EventError{Code: "BUILD_FAILED", Message: "deployment " + st.DeploymentID + " ended ERROR (BUILD_FAILED): Type error: Property 'title' does not exist on type '{}'."}
		}
		st.Terminal = ev
		data, err := json.Marshal(st)
		if err != nil {
			return err
		}
		if _, err := kv.Put(ctx, t+"."+st.ID, data); err != nil {
			return err
		}
	}
	return nil
}

// tarballs packs the source every deploy uploads, and one whose build
// the simulator fails.
func tarballs(dir string) (good, bad []byte, err error) {
	pack := func(name string, files map[string]string) ([]byte, error) {
		d := filepath.Join(dir, name)
		for f, body := range files {
			p := filepath.Join(d, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				return nil, err
			}
		}
		a, err := tarball.Pack(d)
		if err != nil {
			return nil, err
		}
		return a.Data, nil
	}
	if good, err = pack("good", map[string]string{"package.json": `{"name":"site"}`, "app/page.tsx": "export default () => 'hi'\n"}); err != nil {
		return nil, nil, err
	}
	bad, err = pack("bad", map[string]string{"package.json": `{"name":"broken"}`,
		".vercelsim/fail-build": "Type error: Property 'title' does not exist on type '{}'.\n  at app/page.tsx:4:17"})
	return good, bad, err
}

// submit publishes n requests: tenants by their shares, a third of them
// versions of an app, and (when bad is given) 3 % with a failing build.
func submit(ctx context.Context, c *jobs.Client, rng *rand.Rand, n int, prefix string, good, bad []byte) error {
	var ok, failing []jobs.Request
	for i := range n {
		r, t := rng.Float64(), tenants[len(tenants)-1].name
		for _, tn := range tenants {
			if r < tn.share {
				t = tn.name
				break
			}
			r -= tn.share
		}
		req := jobs.Request{Tenant: t, ID: fmt.Sprintf("%s-%05d", prefix, i), Name: "site", Framework: "nextjs"}
		if rng.Float64() < 0.33 {
			req.App = fmt.Sprintf("chat-%d", rng.IntN(max(n/8, 1)))
		}
		if bad != nil && rng.Float64() < 0.03 {
			req.App = ""
			failing = append(failing, req)
			continue
		}
		ok = append(ok, req)
	}
	for _, batch := range []struct {
		reqs []jobs.Request
		tgz  []byte
	}{{ok, good}, {failing, bad}} {
		if len(batch.reqs) == 0 {
			continue
		}
		if _, err := c.SubmitBatch(ctx, batch.reqs, batch.tgz); err != nil {
			return err
		}
	}
	return nil
}

// drain waits until the queue is empty: every request ended.
func drain(ctx context.Context, c *jobs.Client) error {
	deadline := time.Now().Add(15 * time.Minute)
	for time.Now().Before(deadline) {
		o, err := c.Overview(ctx)
		if err != nil {
			return err
		}
		if o.Queued == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return errors.New("the seed's deploys did not end within 15 minutes")
}

// serverTime is the median time of n GETs of url, and the answer's size.
func serverTime(ctx context.Context, url string, n int) (ms float64, size int, err error) {
	var times []float64
	for range n {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, 0, err
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("GET %s: %d %v", url, resp.StatusCode, err)
		}
		times = append(times, float64(time.Since(start).Microseconds())/1000)
		size = len(body)
	}
	slices.Sort(times)
	return times[len(times)/2], size, nil
}

// browser starts a headless Chromium collecting the page's errors.
func browser(ctx context.Context, path string) (context.Context, func(), *[]string, error) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Flag("headless", true),
		chromedp.WindowSize(1280, 860))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelCtx := chromedp.NewContext(actx)
	errs := new([]string)
	if err := chromedp.Listen(bctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			*errs = append(*errs, e.ExceptionDetails.Text)
		}
	}); err != nil {
		cancelCtx()
		cancelAlloc()
		return nil, nil, nil, err
	}
	return bctx, func() { cancelCtx(); cancelAlloc() }, errs, nil
}

type load struct {
	renderMs              float64
	pageBytes, totalBytes int
	rows                  int
}

// firstRender is true once the jobs table has its rows and the header
// its counts; it then gives the time since navigation started, what was
// transferred, and the rows.
const firstRender = `(() => {
  const rows = document.querySelectorAll("#jobs tbody tr").length;
  if (!rows || document.getElementById("queued").textContent === "–") return null;
  const nav = performance.getEntriesByType("navigation")[0];
  let total = nav.transferSize || nav.encodedBodySize;
  for (const r of performance.getEntriesByType("resource")) total += r.transferSize || r.encodedBodySize;
  return { ms: performance.now(), page: nav.encodedBodySize, total, rows };
})()`

func measureLoad(ctx context.Context, url string) (load, error) {
	// A new tab each time, with the cache off: nothing is reused.
	ctx, closeTab := chromedp.NewContext(ctx)
	defer closeTab()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, noCache, chromedp.Navigate(url+"/")); err != nil {
		return load{}, err
	}
	v, err := chromedp.Run(ctx, chromedp.Poll[struct {
		MS    float64 `json:"ms"`
		Page  int     `json:"page"`
		Total int     `json:"total"`
		Rows  int     `json:"rows"`
	}](firstRender, chromedp.WithPollingMutation()))
	if err != nil {
		return load{}, fmt.Errorf("first render: %w", err)
	}
	return load{renderMs: v.MS, pageBytes: v.Page, totalBytes: v.Total, rows: v.Rows}, nil
}

// noCache turns the browser's cache off for the tab.
func noCache(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
	_, err := cdp.Call(ctx, t, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true})
	return chromedp.Void{}, err
}

func (r *Results) print(w io.Writer) {
	fmt.Fprintf(w, "console with %d jobs kept and %d requests queued (%s)\n", r.Jobs, r.Queued, r.Machine)
	fmt.Fprintf(w, "  first render: median %.0f ms, worst %.0f ms of %d loads; %d rows\n", r.FirstRenderMs, r.FirstRenderMaxMs, r.Loads, r.RowsRendered)
	fmt.Fprintf(w, "  transferred: %.1f KB (page %.1f KB)\n", float64(r.TotalBytes)/1024, float64(r.PageBytes)/1024)
	fmt.Fprintf(w, "  jobs read for a page of 200: %.1f ms median (%d checkpoints read); every checkpoint: %.1f ms (%d); %.1f× less\n",
		r.JobsPageMs, r.JobsPageRead, r.JobsEveryMs, r.Jobs, r.JobsEveryMs/r.JobsPageMs)
	paths := slices.Sorted(func(yield func(string) bool) {
		for p := range r.ServerMs {
			if !yield(p) {
				return
			}
		}
	})
	for _, p := range paths {
		fmt.Fprintf(w, "  %-22s server %7.1f ms median, %7.1f KB\n", p, r.ServerMs[p], float64(r.APIBytes[p])/1024)
	}
	for _, s := range r.Screenshots {
		fmt.Fprintf(w, "  wrote %s\n", s)
	}
}
