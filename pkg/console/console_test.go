package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/deployq/deployq/pkg/console"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
)

const token = "console-token-for-tests"

// start serves the console of a running deployq on loopback.
func start(t *testing.T) (*jobstest.Harness, string) {
	t.Helper()
	h := jobstest.Start(t, jobstest.Config{})
	handler, err := console.Handler(console.Config{Client: h.Client, Token: token})
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
			errs = append(errs, e.ExceptionDetails.Text)
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
	for _, path := range []string{"/", "/api/overview", "/api/jobs"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		buf := make([]byte, 1<<16)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		_ = resp.Body.Close()
		if strings.Contains(b.String(), token) {
			t.Errorf("%s shows the token", path)
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
