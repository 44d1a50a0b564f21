package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/deployq/deployq/pkg/jobs"
)

// sse starts a server-sent event stream, or says why it cannot.
func sse(w http.ResponseWriter) (http.Flusher, bool) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return nil, false
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, ": connected\n\n")
	flusher.Flush()
	return flusher, true
}

// send writes one server-sent event of v as JSON.
func send(w http.ResponseWriter, f http.Flusher, v any) bool {
	data, err := json.Marshal(v)
	if err != nil {
		return true
	}
	if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil {
		return false
	}
	f.Flush()
	return true
}

// events streams every new event, claim codes left out, until the
// client leaves.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	watch, err := s.cfg.Client.Watch(ctx, jobs.WatchFilter{})
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	defer watch.Stop()
	flusher, ok := sse(w)
	if !ok {
		return
	}
	for ev, err := range watch.Events() {
		if err != nil {
			continue
		}
		if !send(w, flusher, redactEvent(ev)) {
			return
		}
	}
}

// logs streams a request's build log lines as the worker publishes
// them, until the client leaves. Following says so to the worker, which
// then streams the build instead of polling it (jobs.FollowLogs).
func (s *server) logs(w http.ResponseWriter, r *http.Request) {
	tenant, id, ok := requestKey(w, r)
	if !ok {
		return
	}
	f, err := s.cfg.Client.FollowLogs(r.Context(), tenant, id)
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	defer f.Stop()
	flusher, ok := sse(w)
	if !ok {
		return
	}
	for line := range f.Lines() {
		if !send(w, flusher, line) {
			return
		}
	}
}
