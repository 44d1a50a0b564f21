package scale

import (
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// recorder sits in front of a simulator and counts what its Stats do not
// break down: uploads per (team, file), and status polls and event streams
// per deployment.
// It also counts created deployments without taking the simulator's lock,
// so the scale part can watch 10 000 of them appear every second for free.
type recorder struct {
	next http.Handler

	requests atomic.Int64 // every request, to cross-check the simulator
	created  atomic.Int64 // 2xx answers to POST /v13/deployments

	mu      sync.Mutex
	uploads map[string]int // "<team>/<sha1>" → POST /v2/files requests
	polls   map[string]int // deployment id → GET /v13/deployments/{id} requests
	streams map[string]int // deployment id → GET /v3/deployments/{id}/events requests
}

func newRecorder(next http.Handler) *recorder {
	return &recorder{next: next, uploads: map[string]int{}, polls: map[string]int{}, streams: map[string]int{}}
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.requests.Add(1)
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPost && path == "/v2/files":
		key := r.URL.Query().Get("teamId") + "/" + strings.ToLower(r.Header.Get("x-vercel-digest"))
		rec.mu.Lock()
		rec.uploads[key]++
		rec.mu.Unlock()
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/v13/deployments/"):
		id := strings.TrimPrefix(path, "/v13/deployments/")
		rec.mu.Lock()
		rec.polls[id]++
		rec.mu.Unlock()
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/v3/deployments/") && strings.HasSuffix(path, "/events"):
		// Passed on with w itself: the stream needs its Flusher.
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/v3/deployments/"), "/events")
		rec.mu.Lock()
		rec.streams[id]++
		rec.mu.Unlock()
	case r.Method == http.MethodPost && path == "/v13/deployments":
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		rec.next.ServeHTTP(sw, r)
		if sw.status >= 200 && sw.status < 300 {
			rec.created.Add(1)
		}
		return
	}
	rec.next.ServeHTTP(w, r)
}

// recorded is a copy of a recorder's counts.
type recorded struct {
	Requests int64
	Uploads  map[string]int
	Polls    map[string]int
	Streams  map[string]int
}

func (rec *recorder) snapshot() recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return recorded{Requests: rec.requests.Load(), Uploads: maps.Clone(rec.uploads), Polls: maps.Clone(rec.polls), Streams: maps.Clone(rec.streams)}
}

// statusWriter remembers the status an answer was sent with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// connCounter counts the TCP connections a server accepted and the most
// that were open at once: every connection a client opens beyond the
// idle ones it keeps is a new handshake and, once closed, a port in
// TIME_WAIT on the client's side.
type connCounter struct {
	opened atomic.Int64
	open   atomic.Int64
	peak   atomic.Int64
}

func (c *connCounter) track(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		c.opened.Add(1)
		n := c.open.Add(1)
		for {
			p := c.peak.Load()
			if n <= p || c.peak.CompareAndSwap(p, n) {
				break
			}
		}
	case http.StateClosed, http.StateHijacked:
		c.open.Add(-1)
	}
}
