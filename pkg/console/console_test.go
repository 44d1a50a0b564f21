package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/console"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

const token = "console-token-for-tests"

// start serves the console of a running deployq on loopback, with an
// API budget of its own (in memory).
func start(t *testing.T, cfgs ...jobstest.Config) (*jobstest.Harness, string) {
	t.Helper()
	cfg := jobstest.Config{}
	if len(cfgs) > 0 {
		cfg = cfgs[0]
	}
	h := jobstest.Start(t, cfg)
	b, err := budget.New(budget.NewMemoryStore(), budget.Config{})
	if err != nil {
		t.Fatal(err)
	}
	handler, err := console.Handler(console.Config{Client: h.Client, Budget: b, AppTTL: 7 * 24 * time.Hour, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler) // 127.0.0.1
	t.Cleanup(srv.Close)
	return h, srv.URL
}

// browser is a headless Chromium (Debian's /usr/bin/chromium, which
// .ci/run installs), with the page's JavaScript errors collected.
func browser(t *testing.T) (context.Context, *[]string) {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is needed for the console's browser test: apt-get install chromium (.ci/run installs it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Flag("headless", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	var mu sync.Mutex
	var errs []string
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			errs = append(errs, msg)
		case *runtime.EventConsoleAPICalled:
			if e.Type == "error" {
				errs = append(errs, "console.error")
			}
		}
	}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx, &errs
}

// The page loads without errors, lists a submitted job by id, and follows
// it live to its terminal state without a reload.
func TestConsoleFollowsAJobLive(t *testing.T) {
	t.Parallel()
	h, url := start(t)
	ctx, errs := browser(t)
	done := h.Submit(t, jobstest.Request("acme", "before"), h.Tarball(t, nil)).ID
	h.WaitTerminal(t, "acme", time.Minute, done)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-id="`+done+`"][data-status="succeeded"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#live.on`)),
	); err != nil {
		t.Fatalf("the page did not show the finished job: %v", err)
	}
	// A job submitted now appears and reaches its end on the open page.
	live := h.Submit(t, jobstest.Request("acme", "live"), h.Tarball(t, nil)).ID
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`tr[data-id="`+live+`"][data-status="succeeded"]`))); err != nil {
		t.Fatalf("the page did not follow the new job live: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr[data-id="`+live+`"]`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "acme") {
		t.Errorf("row %q", text)
	}
	if len(*errs) > 0 {
		t.Errorf("the page logged errors: %q", *errs)
	}
}

// Actions need the token; the page and API never show it.
func TestConsoleActionsNeedTheToken(t *testing.T) {
	t.Parallel()
	h, url := start(t)
	// A request no worker will see in time: its cancel is recorded.
	h.Stop()
	post := func(auth string) int {
		req, _ := http.NewRequest(http.MethodPost, url+"/api/jobs/acme/queued-1/cancel", nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(""); code != http.StatusUnauthorized {
		t.Errorf("cancel without the token: %d, want 401", code)
	}
	if code := post("wrong"); code != http.StatusUnauthorized {
		t.Errorf("cancel with a wrong token: %d, want 401", code)
	}
	if code := post(token); code != http.StatusOK {
		t.Errorf("cancel with the token: %d, want 200", code)
	}
	st, err := h.Client.Status(context.Background(), "acme", "queued-1")
	if err != nil || st.State == nil || !st.State.CancelRequested {
		t.Errorf("the cancel was not recorded: %+v %v", st, err)
	}
	neverShowsSecrets(t, url, "/", "/api/overview", "/api/jobs", "/api/jobs/acme/queued-1")
	// The documents are compressed for a browser, the event stream is
	// not: a compressor would hold its lines back.
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for path, want := range map[string]string{"/": "gzip", "/api/jobs": "gzip", "/api/events": ""} {
		req, _ := http.NewRequest(http.MethodGet, url+path, nil)
		req.Header.Set("Accept-Encoding", "gzip, deflate, br")
		resp, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if got := resp.Header.Get("Content-Encoding"); got != want {
			t.Errorf("GET %s: Content-Encoding %q, want %q", path, got, want)
		}
	}
	// A read-only console refuses every action.
	ro, err := console.Handler(console.Config{Client: h.Client})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	ro.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/jobs/acme/x/cancel", nil))
	if rec.Code != http.StatusForbidden {
		t.Errorf("read-only console: %d, want 403", rec.Code)
	}
}

// click clicks the element sel names once it is enabled, through the
// page: a table redrawn between finding a node and clicking it would
// leave a driver's click on a node gone.
func click(sel string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		q := strconv.Quote(sel)
		_, err := chromedp.Poll[bool](`(() => { const b = document.querySelector(`+q+`); if (!b || b.disabled) return false; b.click(); return true; })()`)(ctx, t)
		return chromedp.Void{}, err
	}
}

// show switches the open page to another view (a change of its
// address's fragment, which loads nothing).
func show(hash string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[string](`location.hash = `+strconv.Quote(hash))(ctx, t)
		return chromedp.Void{}, err
	}
}

// flashSays waits until the page's status line contains text.
func flashSays(text string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](`document.getElementById("flash").textContent.includes(`+strconv.Quote(text)+`)`)(ctx, t)
		return chromedp.Void{}, err
	}
}

// A failed job's page shows its timeline and the build's last lines; its
// dead letter is replayed from the page with the token, and refused
// without it or with a wrong one.
func TestConsoleReplaysADeadLetterOnlyWithTheToken(t *testing.T) {
	t.Parallel()
	h, url := start(t)
	ctx, errs := browser(t)
	id := h.Submit(t, jobstest.Request("acme", "broken"), jobstest.FailingTarball(t, "Type error: boom in app/page.tsx")).ID
	h.WaitTerminal(t, "acme", time.Minute, id)

	if err := chromedp.Do(ctx,
		chromedp.Navigate(url+"/#/job/acme/"+id),
		chromedp.WaitVisible(chromedp.CSS(`#timeline tr[data-type="failed"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline tr[data-type="step_completed"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#letterBox`)),
	); err != nil {
		t.Fatalf("the job's page did not show its timeline and dead letter: %v", err)
	}
	log, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#buildLog`)))
	if err != nil || !strings.Contains(log, "boom in app/page.tsx") {
		t.Errorf("build log %q, %v: want the failed build's last lines", log, err)
	}
	facts, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#jobFacts`)))
	if err != nil || !strings.Contains(facts, "prj_") || !strings.Contains(facts, "dpl_") {
		t.Errorf("job facts %q, %v: want the Vercel ids", facts, err)
	}

	replay := `#letters tr[data-id="` + id + `"] button.replay`
	if err := chromedp.Do(ctx,
		show("#/dlq"),
		click(replay),
		flashSays("enter the console token"),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), "not-the-token"),
		click(`#tokenForm button`),
		click(replay),
		flashSays("a valid console token is required"),
	); err != nil {
		t.Fatalf("replay without a valid token: %v", err)
	}
	if runs := replays(t, h, id); runs != 0 {
		t.Fatalf("replayed %d times without a valid token", runs)
	}
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), token),
		click(`#tokenForm button`),
		click(replay),
		flashSays("replay "+id+": done"),
	); err != nil {
		t.Fatalf("replay with the token: %v", err)
	}
	jobstest.Eventually(t, time.Minute, "the replay never ran", func() bool { return replays(t, h, id) > 0 })
	// Every view of a job that made API calls and failed, with the token
	// in use in the page: neither the console token nor the Vercel token
	// is in any answer.
	neverShowsSecrets(t, url, "/", "/api/overview", "/api/jobs", "/api/jobs/acme/"+id, "/api/dlq", "/api/apps", "/api/budget")
	if len(*errs) > 0 {
		t.Errorf("the page logged errors: %q", *errs)
	}
}

// neverShowsSecrets reads each path and fails the test if an answer holds
// the console token or the harness's Vercel token.
func neverShowsSecrets(t *testing.T, url string, paths ...string) {
	t.Helper()
	for _, path := range paths {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d, %v", path, resp.StatusCode, err)
		}
		for _, secret := range []string{token, jobstest.VercelToken} {
			if strings.Contains(string(body), secret) {
				t.Errorf("GET %s shows a secret (%d bytes read)", path, len(body))
			}
		}
	}
}

// replays counts the events of id's second run.
func replays(t *testing.T, h *jobstest.Harness, id string) int {
	t.Helper()
	evs, err := h.Client.History(context.Background(), "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Data.Run == 2 {
			n++
		}
	}
	return n
}

// The budget and apps views show what the worker and the bucket hold.
func TestConsoleShowsBudgetAndApps(t *testing.T) {
	t.Parallel()
	h, url := start(t)
	ctx, errs := browser(t)
	req := jobstest.Request("acme", "site")
	req.App = "chat-1"
	id := h.Submit(t, req, h.Tarball(t, nil)).ID
	h.WaitTerminal(t, "acme", time.Minute, id)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url+"/#/budget"),
		chromedp.WaitVisible(chromedp.CSS(`#buckets tr[data-endpoint="deployments.create"]`)),
	); err != nil {
		t.Fatalf("the budget view: %v", err)
	}
	row, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#buckets tr[data-endpoint="deployments.create"]`)))
	if err != nil || !strings.Contains(row, "per 24h") || !strings.Contains(row, "120/5m") {
		t.Errorf("deployments.create row %q, %v: want its limit and daily window", row, err)
	}
	if err := chromedp.Do(ctx,
		show("#/apps"),
		chromedp.WaitVisible(chromedp.CSS(`#apps tr[data-app="chat-1"]`)),
	); err != nil {
		t.Fatalf("the apps view: %v", err)
	}
	row, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#apps tr[data-app="chat-1"]`)))
	if err != nil || !strings.Contains(row, "live") || !strings.Contains(row, "in 6d") {
		t.Errorf("app row %q, %v: want live, expiring in 6 days and some hours", row, err)
	}
	if len(*errs) > 0 {
		t.Errorf("the page logged errors: %q", *errs)
	}
}

// A job's page opened during its build shows the build's log live, from
// its first line, and then the job's end.
func TestConsoleShowsABuildLogLive(t *testing.T) {
	t.Parallel()
	h, url := start(t, jobstest.Config{Sim: vercelsim.Config{BuildTime: 2 * time.Second}})
	ctx, errs := browser(t)
	id := h.Submit(t, jobstest.Request("acme", "building"), h.Tarball(t, nil)).ID
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url+"/#/job/acme/"+id),
		chromedp.WaitVisible(chromedp.CSS(`#timeline tr[data-type="step_completed"]`)),
	); err != nil {
		t.Fatalf("the job's page: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("buildLog").textContent.startsWith("Running build in")`)); err != nil {
		t.Fatalf("no build log on the page: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#timeline tr[data-type="succeeded"]`))); err != nil {
		t.Fatalf("the page did not follow the job to its end: %v", err)
	}
	if len(*errs) > 0 {
		t.Errorf("the page logged errors: %q", *errs)
	}
}
