package vercel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	c, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	cfg := c.cfg
	if got := cfg.baseURL.String(); got != DefaultBaseURL {
		t.Errorf("base URL = %s, want %s", got, DefaultBaseURL)
	}
	if cfg.timeout != DefaultRequestTimeout {
		t.Errorf("timeout = %s, want %s", cfg.timeout, DefaultRequestTimeout)
	}
	if cfg.projectsVersion != 11 {
		t.Errorf("projects version = %d, want 11", cfg.projectsVersion)
	}
	if cfg.connectPath != ConnectPathDocumented {
		t.Errorf("connect path = %s, want %s", cfg.connectPath, ConnectPathDocumented)
	}
	if cfg.userAgent != DefaultUserAgent || cfg.httpClient == nil || cfg.limiter != nil || cfg.observer != nil {
		t.Errorf("unexpected defaults: %v", cfg)
	}
	if c.TeamID() != "" {
		t.Errorf("TeamID = %q, want none", c.TeamID())
	}
}

func TestNewInvalidOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opt  Option
	}{
		{"relative base URL", WithBaseURL("/v1")},
		{"base URL without scheme", WithBaseURL("api.vercel.com")},
		{"ftp base URL", WithBaseURL("ftp://api.vercel.com")},
		{"base URL with query", WithBaseURL("https://api.vercel.com/?teamId=x")},
		{"base URL with fragment", WithBaseURL("https://api.vercel.com/#x")},
		{"base URL with user info", WithBaseURL("https://user:pw@api.vercel.com")},
		{"unparsable base URL", WithBaseURL("https://api vercel com/%zz")},
		{"empty base URL", WithBaseURL("")},
		{"empty token", WithToken("")},
		{"token with newline", WithToken("abc\ndef")},
		{"token with space", WithToken("abc def")},
		{"nil HTTP client", WithHTTPClient(nil)},
		{"negative timeout", WithRequestTimeout(-time.Second)},
		{"projects version 9", WithProjectsAPIVersion(9)},
		{"projects version 12", WithProjectsAPIVersion(12)},
		{"unknown connect path", WithConnectPath("sideways")},
		{"empty connect path", WithConnectPath("")},
		{"nil limiter", WithLimiter(nil)},
		{"nil observer", WithRequestObserver(nil)},
		{"empty user agent", WithUserAgent(" ")},
		{"user agent with newline", WithUserAgent("a\r\nX-Evil: 1")},
		{"nil clock", WithClock(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.opt)
			if err == nil {
				t.Fatalf("New = %v, want an error", c)
			}
			if !strings.HasPrefix(err.Error(), "vercel: invalid option: ") {
				t.Errorf("error %q does not say it is an option error", err)
			}
		})
	}
}

func TestNewValidOptions(t *testing.T) {
	t.Parallel()
	hc := &http.Client{}
	rec := &recorder{}
	c, err := New(
		WithBaseURL("http://127.0.0.1:1234/prefix/"),
		WithToken(testToken),
		WithTeamID(testTeam),
		WithHTTPClient(hc),
		WithRequestTimeout(0),
		WithProjectsAPIVersion(10),
		WithConnectPath(ConnectPathWithProduct),
		WithLimiter(rec),
		WithRequestObserver(rec),
		WithUserAgent("deployq/test"),
		nil, // ignored
	)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	cfg := c.cfg
	if cfg.baseURL.String() != "http://127.0.0.1:1234/prefix" || cfg.token != testToken || c.TeamID() != testTeam ||
		cfg.httpClient != hc || cfg.timeout != 0 || cfg.projectsVersion != 10 || cfg.connectPath != ConnectPathWithProduct ||
		cfg.limiter != rec || cfg.observer != rec || cfg.userAgent != "deployq/test" {
		t.Errorf("options not applied: %v", cfg)
	}
}

func TestRequestCommonParts(t *testing.T) {
	t.Parallel()
	t.Run("team", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.mux.HandleFunc("GET /v9/projects/{id}", func(w http.ResponseWriter, r *http.Request) {
			checkRequest(t, r, http.MethodGet, "/v9/projects/prj_1", nil)
			if r.Header.Get("Content-Type") != "" {
				t.Errorf("Content-Type %q on a request without a body", r.Header.Get("Content-Type"))
			}
			writeJSON(w, http.StatusOK, `{"id":"prj_1"}`)
		})
		if _, _, err := b.client.GetProject(t.Context(), "prj_1"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no team, custom user agent", func(t *testing.T) {
		t.Parallel()
		b := setup(t, WithTeamID(""), WithUserAgent("deployq/test"))
		b.mux.HandleFunc("GET /v9/projects/{id}", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.RawQuery != "" {
				t.Errorf("query = %q, want none without a team", r.URL.RawQuery)
			}
			if got := r.Header.Get("User-Agent"); got != "deployq/test" {
				t.Errorf("User-Agent = %q", got)
			}
			writeJSON(w, http.StatusOK, `{"id":"prj_1"}`)
		})
		if _, _, err := b.client.GetProject(t.Context(), "prj_1"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no token", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c, err := New(WithBaseURL(b.url))
		if err != nil {
			t.Fatal(err)
		}
		b.mux.HandleFunc("GET /v9/projects/{id}", func(w http.ResponseWriter, r *http.Request) {
			if _, ok := r.Header["Authorization"]; ok {
				t.Errorf("Authorization sent without a token")
			}
			writeJSON(w, http.StatusOK, `{"id":"prj_1"}`)
		})
		if _, _, err := c.GetProject(t.Context(), "prj_1"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestResponseFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reset := testNow.Add(time.Minute).Unix()
	b.mux.HandleFunc("GET /v9/projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Vercel-Id", "iad1::abcde-123")
		w.Header().Set("X-RateLimit-Limit", "100")
		w.Header().Set("X-RateLimit-Remaining", "42")
		w.Header().Set("X-RateLimit-Reset", fmt.Sprint(reset))
		writeJSON(w, http.StatusOK, `{"id":"prj_1"}`)
	})
	_, resp, err := b.client.GetProject(t.Context(), "prj_1")
	if err != nil {
		t.Fatal(err)
	}
	want := RateLimit{Limit: 100, Remaining: 42, Reset: time.Unix(reset, 0), Known: true}
	if resp.StatusCode != 200 || resp.RequestID != "iad1::abcde-123" || !sameRateLimit(resp.RateLimit, want) {
		t.Errorf("Response = %+v, want status 200, request id and rate limit %+v", resp, want)
	}
	if resp.Header.Get("X-RateLimit-Limit") != "100" {
		t.Errorf("Response.Header lacks the answer's headers")
	}
}

func TestLimiterAndObserver(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	b := setup(t, WithLimiter(rec), WithRequestObserver(rec))
	reset := testNow.Add(30 * time.Second)
	b.mux.HandleFunc("GET /v9/projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		rec.log("server %s", r.URL.EscapedPath())
		w.Header().Set("X-RateLimit-Remaining", "7")
		writeJSON(w, http.StatusOK, `{"id":"prj_1"}`)
	})
	b.mux.HandleFunc("POST /v13/deployments", func(w http.ResponseWriter, r *http.Request) {
		rec.log("server %s", r.URL.EscapedPath())
		w.Header()["Date"] = nil
		w.Header().Set("X-RateLimit-Limit", "60")
		writeJSON(w, http.StatusTooManyRequests, fmt.Sprintf(`{"error":{"code":"rate_limited","message":"slow down","limit":{"remaining":0,"reset":%d,"total":60}}}`, reset.Unix()))
	})

	if _, _, err := b.client.GetProject(t.Context(), "prj_1"); err != nil {
		t.Fatal(err)
	}
	_, _, err := b.client.CreateDeployment(t.Context(), CreateDeploymentRequest{Name: "app"})
	var rlErr *RateLimitError
	if !errors.As(err, &rlErr) {
		t.Fatalf("err = %v, want *RateLimitError", err)
	}

	events, obs, reqs := rec.snapshot()
	wantEvents := []string{
		"wait projects.get", "server /v9/projects/prj_1", "request projects.get 200", "observe projects.get 200",
		"wait deployments.create", "server /v13/deployments", "request deployments.create 429", "observe deployments.create 429",
	}
	if !reflect.DeepEqual(events, wantEvents) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(events, "\n"), strings.Join(wantEvents, "\n"))
	}
	if len(obs) != 2 {
		t.Fatalf("%d observations, want 2", len(obs))
	}
	if want := (RateLimit{Remaining: 7, Known: true}); obs[0].err != nil || !sameRateLimit(obs[0].rl, want) {
		t.Errorf("first observation = %+v, want rate limit %+v and no error", obs[0], want)
	}
	if want := (RateLimit{Limit: 60, Remaining: 0, Known: true, Reset: reset}); !sameRateLimit(obs[1].rl, want) {
		t.Errorf("second observation rate limit = %+v, want %+v", obs[1].rl, want)
	}
	if obs[1].err != err {
		t.Errorf("second observation err = %v, want the returned error", obs[1].err)
	}
	for _, r := range reqs {
		if r.d < 0 {
			t.Errorf("negative duration %s", r.d)
		}
	}
}

func TestLimiterWaitError(t *testing.T) {
	t.Parallel()
	waitErr := errors.New("budget closed")
	rec := &recorder{waitErr: waitErr}
	b := setup(t, WithLimiter(rec), WithRequestObserver(rec))
	// No handler: setup's catch-all fails the test on any request.
	_, resp, err := b.client.GetProject(t.Context(), "prj_1")
	if !errors.Is(err, waitErr) {
		t.Fatalf("err = %v, want the limiter's error", err)
	}
	if resp != nil {
		t.Errorf("Response = %+v, want nil without an answer", resp)
	}
	events, _, _ := rec.snapshot()
	if want := []string{"wait projects.get"}; !reflect.DeepEqual(events, want) {
		t.Errorf("events = %v, want %v (no Observe without a request)", events, want)
	}
}

func TestPerRequestTimeout(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	const timeout = 50 * time.Millisecond
	b := setup(t, WithRequestTimeout(timeout), WithLimiter(rec), WithRequestObserver(rec))
	b.mux.HandleFunc("GET /v13/deployments/{id}", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-b.done:
		}
	})

	start := time.Now()
	_, resp, err := b.client.GetDeployment(t.Context(), "dpl_1")
	if elapsed := time.Since(start); elapsed < timeout {
		t.Errorf("returned after %s, before the %s timeout", elapsed, timeout)
	}
	if resp != nil {
		t.Errorf("Response = %+v, want nil", resp)
	}
	var ne *NetworkError
	if !errors.As(err, &ne) || ne.RequestTimeout != timeout || !ne.Timeout() {
		t.Fatalf("err = %#v, want *NetworkError with RequestTimeout %s", err, timeout)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(err, context.DeadlineExceeded) = false for %v", err)
	}
	if d := Classify(err); d.Class != Transient || d.Reason != ReasonTimeout {
		t.Errorf("Classify = %+v, want transient timeout", d)
	}
	if strings.Contains(err.Error(), "teamId") || strings.Contains(err.Error(), "?") {
		t.Errorf("error %q shows the query", err)
	}
	_, obs, reqs := rec.snapshot()
	if len(obs) != 1 || obs[0].status != 0 || obs[0].err != err {
		t.Errorf("observations = %+v, want one with status 0 and the error", obs)
	}
	if len(reqs) != 1 || reqs[0].status != 0 {
		t.Errorf("request records = %+v, want one with status 0", reqs)
	}
}

func TestPerRequestTimeoutWhileReadingBody(t *testing.T) {
	t.Parallel()
	// Long enough that the headers, sent at once, arrive within it on a
	// loaded machine: the timeout must fall while the body is read.
	b := setup(t, WithRequestTimeout(time.Second))
	b.mux.HandleFunc("GET /v13/deployments/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"id":"dpl_1",`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-b.done:
		}
	})
	_, resp, err := b.client.GetDeployment(t.Context(), "dpl_1")
	var ne *NetworkError
	if !errors.As(err, &ne) || ne.RequestTimeout == 0 {
		t.Fatalf("err = %v, want *NetworkError from the request timeout", err)
	}
	if resp == nil || resp.StatusCode != http.StatusOK {
		t.Errorf("Response = %+v, want the status that arrived", resp)
	}
	if d := Classify(err); d.Class != Transient || d.Reason != ReasonTimeout {
		t.Errorf("Classify = %+v, want transient timeout", d)
	}
}

func TestCallerCancellation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started := make(chan struct{})
	b.mux.HandleFunc("GET /v13/deployments/{id}", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
		case <-b.done:
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		<-started
		cancel()
	}()
	_, _, err := b.client.GetDeployment(ctx, "dpl_1")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	var ne *NetworkError
	if !errors.As(err, &ne) || ne.RequestTimeout != 0 {
		t.Errorf("err = %#v, want *NetworkError not blamed on the request timeout", err)
	}
	if d := Classify(err); d.Class != Permanent || d.Reason != ReasonCancelled {
		t.Errorf("Classify = %+v, want permanent cancelled", d)
	}
}

func TestConnectionDropped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("POST /v13/deployments", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
	})
	_, resp, err := b.client.CreateDeployment(t.Context(), CreateDeploymentRequest{Name: "app"})
	var ne *NetworkError
	if !errors.As(err, &ne) {
		t.Fatalf("err = %v, want *NetworkError", err)
	}
	if resp != nil {
		t.Errorf("Response = %+v, want nil", resp)
	}
	if ne.Endpoint != EndpointCreateDeployment || ne.Method != http.MethodPost || ne.Path != "/v13/deployments" {
		t.Errorf("NetworkError = %+v", ne)
	}
	msg := err.Error()
	if strings.Contains(msg, "teamId") || strings.Contains(msg, testTeam) || strings.Contains(msg, "?") || strings.Contains(msg, "http://") {
		t.Errorf("error %q shows the URL", msg)
	}
	if d := Classify(err); d.Class != Transient || d.Reason != ReasonNetwork {
		t.Errorf("Classify = %+v, want transient network", d)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
	}{
		{"not JSON", `<html>ok</html>`},
		{"empty body", ``},
		{"wrong type", `{"id": 12}`},
		{"no id", `{"name":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.mux.HandleFunc("GET /v9/projects/{id}", func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, http.StatusOK, tt.body)
			})
			p, resp, err := b.client.GetProject(t.Context(), "prj_1")
			var de *DecodeError
			if !errors.As(err, &de) || de.StatusCode != http.StatusOK || de.Endpoint != EndpointGetProject {
				t.Fatalf("err = %v, want *DecodeError", err)
			}
			if p != nil || resp == nil {
				t.Errorf("project = %v, response = %v; want nil project and a response", p, resp)
			}
			if d := Classify(err); d.Class != Permanent || d.Reason != ReasonDecode {
				t.Errorf("Classify = %+v, want permanent decode", d)
			}
		})
	}
}

func TestTokenNeverPrinted(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	c, err := New(WithToken(testToken), WithTeamID(testTeam), WithLimiter(rec))
	if err != nil {
		t.Fatal(err)
	}
	type holder struct {
		c  Client
		pc *Client
		C  Client
		PC *Client
	}
	h := holder{*c, c, *c, c}
	var slogText, slogJSON bytes.Buffer
	slog.New(slog.NewTextHandler(&slogText, nil)).Info("client", "c", c, "v", *c)
	slog.New(slog.NewJSONHandler(&slogJSON, nil)).Info("client", "c", c, "v", *c)

	outputs := map[string]string{
		"%v ptr":        fmt.Sprintf("%v", c),
		"%+v ptr":       fmt.Sprintf("%+v", c),
		"%#v ptr":       fmt.Sprintf("%#v", c),
		"%v value":      fmt.Sprintf("%v", *c),
		"%+v value":     fmt.Sprintf("%+v", *c),
		"%#v value":     fmt.Sprintf("%#v", *c),
		"%s":            fmt.Sprintf("%s", c),
		"%q":            fmt.Sprintf("%q", c),
		"%x":            fmt.Sprintf("%x", c),
		"%d":            fmt.Sprintf("%d", *c),
		"Sprint":        fmt.Sprint(c),
		"Println":       fmt.Sprintln(c, *c),
		"nested %+v":    fmt.Sprintf("%+v", h),
		"nested %#v":    fmt.Sprintf("%#v", h),
		"slice %#v":     fmt.Sprintf("%#v", []*Client{c}),
		"config %v":     fmt.Sprintf("%v", *c.cfg),
		"config %+v":    fmt.Sprintf("%+v", *c.cfg),
		"config %#v":    fmt.Sprintf("%#v", *c.cfg),
		"config ptr %v": fmt.Sprintf("%+v", c.cfg),
		"config %s":     c.cfg.String(),
		"slog text":     slogText.String(),
		"slog json":     slogJSON.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, testToken) || strings.Contains(out, "Sup3rS3cret") {
			t.Errorf("%s shows the token: %s", name, out)
		}
	}
	if !strings.Contains(outputs["%v ptr"], "[REDACTED]") || !strings.Contains(outputs["%v ptr"], testTeam) {
		t.Errorf("String() = %q, want the team and a redaction mark", outputs["%v ptr"])
	}
	if got := fmt.Sprint(Client{}); got != "vercel.Client{}" {
		t.Errorf("zero Client prints %q", got)
	}
}

func TestTokenNotInErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A misbehaving proxy that echoes the request's headers.
	b.mux.HandleFunc("GET /v9/projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, "<html><body><h1>502</h1><p>Authorization: %s</p></body></html>", r.Header.Get("Authorization"))
	})
	b.mux.HandleFunc("GET /v13/deployments/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusBadRequest, fmt.Sprintf(`{"error":{"code":"bad_request","message":"bad header %s"}}`, r.Header.Get("Authorization")))
	})
	_, _, err1 := b.client.GetProject(t.Context(), "prj_1")
	_, _, err2 := b.client.GetDeployment(t.Context(), "dpl_1")
	for _, err := range []error{err1, err2} {
		if err == nil {
			t.Fatal("want an error")
		}
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			if strings.Contains(s, testToken) {
				t.Errorf("error shows the token: %s", s)
			}
			if strings.Contains(s, "teamId=") {
				t.Errorf("error shows the query: %s", s)
			}
		}
		if !strings.Contains(err.Error(), "[REDACTED]") {
			t.Errorf("error %q: want the echoed token replaced by a mark", err)
		}
	}
}

func TestUnknownFieldsIgnored(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("GET /v9/projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, `{"id":"prj_1","name":"app","accountId":"acc_1","framework":null,
			"brandNew":{"nested":[1,2,{"x":true}]},"createdAt":1730000000000,"env":[],"latestDeployments":[{"id":"dpl_0"}]}`)
	})
	p, _, err := b.client.GetProject(t.Context(), "prj_1")
	if err != nil {
		t.Fatal(err)
	}
	want := &Project{ID: "prj_1", Name: "app", AccountID: "acc_1", CreatedAt: 1730000000000}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("project = %+v, want %+v", p, want)
	}
}

func TestBaseURLWithoutPrefixIsUsedAsIs(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.EscapedPath() != "/v9/projects/prj_1" {
			t.Errorf("path = %s", r.URL.EscapedPath())
		}
		writeJSON(w, http.StatusOK, `{"id":"prj_1"}`)
	}))
	t.Cleanup(srv.Close)
	for _, base := range []string{srv.URL, srv.URL + "/"} {
		c, err := New(WithBaseURL(base), WithToken(testToken))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.GetProject(t.Context(), "prj_1"); err != nil {
			t.Errorf("base %s: %v", base, err)
		}
	}
}

func TestGoStringHasNoToken(t *testing.T) {
	t.Parallel()
	c, err := New(WithToken(testToken))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{c.GoString(), c.cfg.GoString()} {
		if strings.Contains(s, testToken) || !strings.Contains(s, "[REDACTED]") {
			t.Errorf("GoString() = %q", s)
		}
	}
	if s := fmt.Sprint(*defaultConfig()); !strings.Contains(s, "token: <none>") {
		t.Errorf("config without a token prints %q", s)
	}
}

func TestAnswerTooLarge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.HandleFunc("GET /v6/deployments", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		chunk := bytes.Repeat([]byte(" "), 1<<20)
		for range maxBodySize>>20 + 1 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	_, resp, err := b.client.ListDeployments(t.Context(), ListDeploymentsOptions{})
	var de *DecodeError
	if !errors.As(err, &de) || resp == nil {
		t.Fatalf("err = %v, response = %v; want *DecodeError with the response", err, resp)
	}
}
