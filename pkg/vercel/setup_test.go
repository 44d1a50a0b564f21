package vercel

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync"
	"testing"
	"time"
)

const (
	testToken  = "tok_Sup3rS3cret-0123456789"
	testTeam   = "team_abc"
	basePrefix = "/api-prefix"
)

// testNow is the clock of every test client: answers without a Date header
// measure Retry-After dates and reset instants from it.
var testNow = time.Date(2025, 10, 29, 12, 0, 0, 0, time.UTC)

// bundle is what setup gives a test: a client pointed at a test server that
// serves mux under basePrefix, so a route built without the base URL's
// path fails.
type bundle struct {
	client *Client
	mux    *http.ServeMux
	url    string          // server URL including basePrefix
	done   <-chan struct{} // closed when the test ends, so hanging handlers return
}

func setup(t *testing.T, opts ...Option) *bundle {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL.EscapedPath())
		http.Error(w, "unexpected request", http.StatusTeapot)
	})
	root := http.NewServeMux()
	root.Handle(basePrefix+"/", http.StripPrefix(basePrefix, mux))
	root.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request outside the base URL's path: %s %s", r.Method, r.URL.EscapedPath())
		http.Error(w, "outside the prefix", http.StatusTeapot)
	})
	srv := httptest.NewServer(root)
	done := make(chan struct{})
	// Cleanups run last-in first-out: release hanging handlers, then close.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) })

	base := []Option{
		WithBaseURL(srv.URL + basePrefix + "/"),
		WithToken(testToken),
		WithTeamID(testTeam),
		WithClock(func() time.Time { return testNow }),
	}
	c, err := New(append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &bundle{client: c, mux: mux, url: srv.URL + basePrefix, done: done}
}

// checkRequest asserts what every request of the client carries, and the
// route: method, escaped path and exact query (teamId plus extra).
func checkRequest(t *testing.T, r *http.Request, method, path string, extra url.Values) {
	t.Helper()
	if r.Method != method {
		t.Errorf("method = %s, want %s", r.Method, method)
	}
	if got := r.URL.EscapedPath(); got != path {
		t.Errorf("path = %s, want %s", got, path)
	}
	want := url.Values{"teamId": {testTeam}}
	for k, v := range extra {
		want[k] = v
	}
	if got := r.URL.Query(); !reflect.DeepEqual(got, want) {
		t.Errorf("query = %v, want %v", got, want)
	}
	if got, want := r.Header.Get("Authorization"), "Bearer "+testToken; got != want {
		t.Errorf("Authorization = %q, want the bearer token", got)
	}
	if got := r.Header.Get("User-Agent"); got != DefaultUserAgent {
		t.Errorf("User-Agent = %q, want %q", got, DefaultUserAgent)
	}
	if got := r.Header.Get("Accept"); got != "application/json" {
		t.Errorf("Accept = %q, want application/json", got)
	}
}

// checkJSONBody asserts a JSON body with Content-Type application/json,
// equal to want as JSON values (key order and spacing do not matter).
func checkJSONBody(t *testing.T, r *http.Request, want string) {
	t.Helper()
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	var got, exp any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("bad expected JSON %q: %v", want, err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("body = %s\nwant   %s", body, want)
	}
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// recorder is a Limiter and a RequestObserver that logs every call, and
// lets handlers log into the same sequence so order can be asserted.
type recorder struct {
	mu           sync.Mutex
	events       []string
	observations []observation
	requests     []requestRecord
	waitErr      error
}

type observation struct {
	ep     Endpoint
	status int
	rl     RateLimit
	err    error
}

type requestRecord struct {
	ep     Endpoint
	status int
	d      time.Duration
}

func (r *recorder) log(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

func (r *recorder) Wait(_ context.Context, ep Endpoint) error {
	r.log("wait %s", ep)
	return r.waitErr
}

func (r *recorder) Observe(ep Endpoint, status int, rl RateLimit, err error) {
	r.log("observe %s %d", ep, status)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observations = append(r.observations, observation{ep, status, rl, err})
}

func (r *recorder) ObserveRequest(ep Endpoint, status int, d time.Duration) {
	r.log("request %s %d", ep, status)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, requestRecord{ep, status, d})
}

func (r *recorder) snapshot() ([]string, []observation, []requestRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...), append([]observation(nil), r.observations...), append([]requestRecord(nil), r.requests...)
}

// sameRateLimit compares RateLimits with time.Time.Equal: the package
// does not promise a time zone.
func sameRateLimit(a, b RateLimit) bool {
	return a.Limit == b.Limit && a.Remaining == b.Remaining && a.Known == b.Known && a.Reset.Equal(b.Reset)
}
