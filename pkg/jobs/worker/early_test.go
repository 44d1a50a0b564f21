package worker_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/jobs/jobstest"
	"github.com/deployq/deployq/pkg/jobs/worker"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

// callLog records when each API call started and ended.
type callLog struct {
	mu    sync.Mutex
	calls []call
	next  http.RoundTripper
}

type call struct {
	what       string // "POST /v11/projects"
	start, end time.Time
}

func (l *callLog) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := l.next.RoundTrip(r)
	l.mu.Lock()
	l.calls = append(l.calls, call{what: r.Method + " " + r.URL.Path, start: start, end: time.Now()})
	l.mu.Unlock()
	return resp, err
}

// find returns the calls whose method and path start with prefix.
func (l *callLog) find(prefix string) []call {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []call
	for _, c := range l.calls {
		if strings.HasPrefix(c.what, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// The calls that depend on nothing before them go out ahead of their
// steps: the authorization while the project is created, the upload while
// the database is, the claim code while the deployment builds. Each is
// still made once.
func TestIndependentCallsGoOutEarly(t *testing.T) {
	t.Parallel()
	log := &callLog{next: http.DefaultTransport}
	slow := func(d time.Duration) vercelsim.Fault { return vercelsim.Fault{Latency: d} }
	h := jobstest.Start(t, jobstest.Config{
		Sim: vercelsim.Config{BuildTime: 400 * time.Millisecond, Faults: map[vercel.Endpoint]vercelsim.Fault{
			vercel.EndpointCreateProject: slow(200 * time.Millisecond),
			vercel.EndpointCreateStore:   slow(300 * time.Millisecond),
		}},
		ClientOptions: []vercel.Option{vercel.WithHTTPClient(&http.Client{Transport: log})},
		Pipeline:      worker.PipelineConfig{ExpectedBuild: 400 * time.Millisecond},
	})
	id := h.Submit(t, jobstest.Request("acme", "early"), h.Tarball(t, nil)).ID
	if ev := h.WaitTerminal(t, "acme", waitLong, id)[id]; ev.Type != jobs.TypeSucceeded || ev.Data.ClaimCode == "" {
		t.Fatalf("%s %+v", ev.Type, ev.Data)
	}
	one := func(prefix string) call {
		t.Helper()
		cs := log.find(prefix)
		if len(cs) != 1 {
			t.Fatalf("%d calls %s, want 1", len(cs), prefix)
		}
		return cs[0]
	}
	project, auth := one("POST /v11/projects"), one("POST /v1/integrations/billing/authorization")
	store, upload := one("POST /v1/storage/stores/integration"), one("POST /v2/files")
	claim := one("POST /projects/")
	if !auth.start.Before(project.end) {
		t.Error("the authorization waited for the project")
	}
	if !upload.start.Before(store.end) {
		t.Error("the upload waited for the database")
	}
	polls := log.find("GET /v13/deployments/")
	if len(polls) == 0 || !claim.start.Before(polls[len(polls)-1].start) {
		t.Error("the claim code waited for the build's end")
	}
}

// loseFirst forwards every request, but answers the first one whose
// method and path start with prefix with a 502 after the API acted on it:
// a lost answer.
type loseFirst struct {
	prefix string
	mu     sync.Mutex
	lost   bool
	next   http.RoundTripper
}

func (l *loseFirst) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && !l.lost && strings.HasPrefix(r.Method+" "+r.URL.Path, l.prefix) {
		l.lost = true
		resp.Body.Close()
		return &http.Response{StatusCode: http.StatusBadGateway, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	}
	return resp, err
}

// A database whose creation's answer was lost is found again by its name
// in the team's stores (the listing Vercel's CLI uses), or, when that
// listing is refused to this token, in the integration's resources: one
// database either way.
func TestLostStoreAnswerIsFoundAgain(t *testing.T) {
	t.Parallel()
	for _, forbidden := range []vercel.Endpoint{vercel.EndpointListResources, vercel.EndpointListStores} {
		t.Run(string(forbidden), func(t *testing.T) {
			t.Parallel()
			lostStoreAnswer(t, forbidden)
		})
	}
}

func lostStoreAnswer(t *testing.T, forbidden vercel.Endpoint) {
	lose := &loseFirst{prefix: "POST /v1/storage/stores/integration", next: http.DefaultTransport}
	h := jobstest.Start(t, jobstest.Config{
		Sim:           vercelsim.Config{Quirks: vercelsim.Quirks{Forbidden: []vercel.Endpoint{forbidden}}},
		ClientOptions: []vercel.Option{vercel.WithHTTPClient(&http.Client{Transport: lose})},
	})
	req := jobstest.Request("acme", "lost-store")
	id := h.Submit(t, req, h.Tarball(t, nil)).ID
	if ev := h.WaitTerminal(t, "acme", waitLong, id)[id]; ev.Type != jobs.TypeSucceeded {
		t.Fatalf("%s %+v", ev.Type, ev.Data.Error)
	}
	req.ID = id
	if n := h.Sim.Stats().StoresCreated[jobs.StoreName(&req)]; n != 1 {
		t.Fatalf("%d databases created, want 1", n)
	}
	if !lose.lost {
		t.Fatal("no answer was lost: the test did not test")
	}
}
