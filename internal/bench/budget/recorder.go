package budget

import (
	"net/http"
	"sync"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

// simRoutes maps the simulator's route patterns to their endpoints, as
// vercelsim registers them. The simulator counts successes per second but
// neither 429s per second nor when an endpoint was first and last called,
// which the plot and the utilization need; the recorder sees each request on
// its way in. The run compares the recorder's counts with the simulator's
// and reports any difference, so this table cannot drift unnoticed.
func simRoutes() map[string]vercel.Endpoint {
	return map[string]vercel.Endpoint{
		"POST /v11/projects":                                                                        vercel.EndpointCreateProject,
		"POST /v10/projects":                                                                        vercel.EndpointCreateProject,
		"GET /v9/projects/{idOrName}":                                                               vercel.EndpointGetProject,
		"DELETE /v9/projects/{idOrName}":                                                            vercel.EndpointDeleteProject,
		"POST /projects/{idOrName}/transfer-request":                                                vercel.EndpointTransferRequest,
		"POST /v9/projects/{idOrName}/transfer-request":                                             vercel.EndpointTransferRequest,
		"POST /v1/integrations/billing/authorization":                                               vercel.EndpointAuthorize,
		"GET /v1/integrations/billing/authorization/{id}":                                           vercel.EndpointAuthorize,
		"POST /v1/storage/stores/integration":                                                       vercel.EndpointCreateStore,
		"DELETE /v1/storage/stores/integration/{storeId}":                                           vercel.EndpointDeleteStore,
		"POST /v1/integrations/installations/{configId}/resources/{storeId}/connections":            vercel.EndpointConnectStore,
		"POST /v1/integrations/installations/{configId}/products/{pid}/resources/{sid}/connections": vercel.EndpointConnectStore,
		"GET /v1/installations/{configId}/resources":                                                vercel.EndpointListResources,
		"GET /v1/storage/stores":                                                                    vercel.EndpointListStores,
		"POST /v2/files":                                                                            vercel.EndpointUploadFile,
		"POST /v13/deployments":                                                                     vercel.EndpointCreateDeployment,
		"GET /v13/deployments/{idOrUrl}":                                                            vercel.EndpointGetDeployment,
		"GET /v6/deployments":                                                                       vercel.EndpointListDeployments,
		"GET /v3/deployments/{idOrUrl}/events":                                                      vercel.EndpointDeploymentEvents,
	}
}

// recorder is an http.Handler in front of the simulator that counts, per
// endpoint and per second, requests, successes and 429s, and remembers the
// first and last request of each endpoint.
type recorder struct {
	next      http.Handler
	routes    *http.ServeMux
	endpoints map[string]vercel.Endpoint // by route pattern
	now       func() time.Time
	// stripHeaders removes X-RateLimit-* from every answer: Vercel does not
	// document them, so a client must cope with 429s and Retry-After alone.
	stripHeaders bool

	mu  sync.Mutex
	eps map[vercel.Endpoint]*endpointLog
}

// endpointLog is what the recorder knows of one endpoint.
type endpointLog struct {
	first, last time.Time // arrival of the first and last request
	seconds     map[int64]*secondLog
}

// secondLog counts one second's answers, by the second they were given.
type secondLog struct {
	requests, succeeded, rateLimited int
}

func newRecorder(next http.Handler, now func() time.Time, stripHeaders bool) *recorder {
	endpoints := simRoutes()
	mux := http.NewServeMux()
	for pattern := range endpoints {
		mux.HandleFunc(pattern, func(http.ResponseWriter, *http.Request) {})
	}
	return &recorder{next: next, routes: mux, endpoints: endpoints, now: now, stripHeaders: stripHeaders,
		eps: map[vercel.Endpoint]*endpointLog{}}
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := rec.routes.Handler(r)
	ep, known := rec.endpoints[pattern]
	if known {
		rec.arrived(ep, rec.now())
	}
	sw := &statusWriter{ResponseWriter: w, strip: rec.stripHeaders}
	rec.next.ServeHTTP(sw, r)
	if known {
		rec.answered(ep, sw.status, rec.now())
	}
}

func (rec *recorder) arrived(ep vercel.Endpoint, at time.Time) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	l := rec.eps[ep]
	if l == nil {
		l = &endpointLog{first: at, seconds: map[int64]*secondLog{}}
		rec.eps[ep] = l
	}
	l.last = at
}

func (rec *recorder) answered(ep vercel.Endpoint, status int, at time.Time) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	l := rec.eps[ep]
	s := l.seconds[at.Unix()]
	if s == nil {
		s = &secondLog{}
		l.seconds[at.Unix()] = s
	}
	s.requests++
	switch {
	case status >= 200 && status < 300:
		s.succeeded++
	case status == http.StatusTooManyRequests:
		s.rateLimited++
	}
}

// endpointTrace is a copy of one endpoint's log.
type endpointTrace struct {
	First, Last time.Time
	// Seconds maps a Unix second to that second's counts.
	Seconds map[int64]secondLog
	// Requests, Succeeded and RateLimited are totals over the run.
	Requests, Succeeded, RateLimited int
}

// snapshot copies what the recorder has seen.
func (rec *recorder) snapshot() map[vercel.Endpoint]endpointTrace {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make(map[vercel.Endpoint]endpointTrace, len(rec.eps))
	for ep, l := range rec.eps {
		t := endpointTrace{First: l.first, Last: l.last, Seconds: make(map[int64]secondLog, len(l.seconds))}
		for sec, s := range l.seconds {
			t.Seconds[sec] = *s
			t.Requests += s.requests
			t.Succeeded += s.succeeded
			t.RateLimited += s.rateLimited
		}
		out[ep] = t
	}
	return out
}

// statusWriter remembers the status code an answer was given with; 0 means
// none was (the client left before the simulator answered).
type statusWriter struct {
	http.ResponseWriter
	status int
	strip  bool
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
		if w.strip {
			h := w.ResponseWriter.Header()
			h.Del("X-RateLimit-Limit")
			h.Del("X-RateLimit-Remaining")
			h.Del("X-RateLimit-Reset")
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}
