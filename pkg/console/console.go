package console

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
)

//go:embed index.html
var page []byte

// Config configures the console.
type Config struct {
	// Client reads the queue; an admin's client (no Tenant). Required.
	Client *jobs.Client
	// Token, when set, allows actions (cancel) to callers that give it.
	// Unset, the console is read-only.
	Token string
	// Logger receives the console's errors. Defaults to slog.Default().
	Logger *slog.Logger
}

// Handler returns the console: GET / (the page), GET /api/overview,
// GET /api/jobs?tenant=&limit=, GET /api/events (server-sent events),
// POST /api/jobs/{tenant}/{id}/cancel (with the token).
func Handler(cfg Config) (http.Handler, error) {
	if cfg.Client == nil {
		return nil, errors.New("console: Config.Client is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &server{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /api/overview", s.overview)
	mux.HandleFunc("GET /api/jobs", s.jobs)
	mux.HandleFunc("GET /api/events", s.events)
	mux.HandleFunc("POST /api/jobs/{tenant}/{id}/cancel", s.cancel)
	return mux, nil
}

type server struct{ cfg Config }

func (s *server) index(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Everything the page needs is in it: nothing may load from elsewhere.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(page)
}

func (s *server) reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		s.cfg.Logger.Warn("console: read failed", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

func (s *server) overview(w http.ResponseWriter, r *http.Request) {
	o, err := s.cfg.Client.Overview(r.Context())
	s.reply(w, struct {
		*jobs.Overview
		Actions bool `json:"actions"`
	}{o, s.cfg.Token != ""}, err)
}

// jobRow is a job as the console lists it.
type jobRow struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Status    string    `json:"status"`
	Step      string    `json:"step,omitempty"`
	Code      string    `json:"code,omitempty"`
	URL       string    `json:"url,omitempty"`
	App       string    `json:"app,omitempty"`
	Updated   time.Time `json:"updated"`
	Attempts  int       `json:"attempts"`
	Submitted time.Time `json:"submitted"`
}

func (s *server) jobs(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 200
	}
	tenant := r.URL.Query().Get("tenant")
	if tenant != "" && !jobs.ValidAppKey(tenant, "x") {
		http.Error(w, "bad tenant", http.StatusBadRequest)
		return
	}
	list, err := s.cfg.Client.Jobs(r.Context(), tenant, limit)
	rows := make([]jobRow, 0, len(list))
	for _, st := range list {
		row := jobRow{ID: st.ID, Tenant: st.Tenant, Status: string(st.Status), Step: string(st.Step), URL: st.PublicURL(),
			App: st.App, Updated: st.UpdatedAt, Attempts: st.Attempts, Submitted: st.SubmittedAt}
		if st.Terminal != nil && st.Terminal.Data.Error != nil {
			row.Code = st.Terminal.Data.Error.Code
		}
		rows = append(rows, row)
	}
	s.reply(w, rows, err)
}

// events streams new events as server-sent events until the client
// leaves.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	watch, err := s.cfg.Client.Watch(ctx, jobs.WatchFilter{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer watch.Stop()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, ": connected\n\n")
	flusher.Flush()
	for ev, err := range watch.Events() {
		if err != nil {
			continue
		}
		data, _ := json.Marshal(ev)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil {
			return
		}
		flusher.Flush()
	}
}

// authorized reports whether r carries the console's token.
func (s *server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && s.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) == 1
}

func (s *server) cancel(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Token == "" {
		http.Error(w, "the console is read-only: set CONSOLE_TOKEN on the worker to allow actions", http.StatusForbidden)
		return
	}
	if !s.authorized(r) {
		http.Error(w, "a valid console token is required", http.StatusUnauthorized)
		return
	}
	tenant, id := r.PathValue("tenant"), r.PathValue("id")
	if !jobs.ValidAppKey(tenant, id) {
		http.Error(w, "bad tenant or id", http.StatusBadRequest)
		return
	}
	st, err := s.cfg.Client.Cancel(r.Context(), tenant, id)
	if errors.Is(err, jobs.ErrFinished) {
		http.Error(w, "already finished", http.StatusConflict)
		return
	}
	s.reply(w, map[string]string{"status": string(statusOf(st))}, err)
}

func statusOf(st *jobs.JobState) jobs.Status {
	if st == nil {
		return ""
	}
	return st.Status
}
