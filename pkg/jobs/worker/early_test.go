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
