package console

import (
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/jobs"
)

//go:embed index.html
var page []byte

// Config configures the console.
type Config struct {
	// Client reads the queue; an admin's client (no Tenant). Required.
	Client *jobs.Client
	// Budget, when set, is the worker's API budget, shown per endpoint
	// (tokens, pauses, windows).
	Budget *budget.Budget
	// AppTTL is the worker's APP_TTL, to show when an unclaimed app
	// expires; 0 when apps never expire.
	AppTTL time.Duration
	// Token, when set, allows actions (cancel, replay, purge) to callers
	// that give it. Unset, the console is read-only.
	Token string
	// Logger receives the console's errors. Defaults to slog.Default().
	Logger *slog.Logger
}

// Handler returns the console: the page at GET /, and its API:
//
//	GET  /api/overview                    the queue per tenant, DLQ, apps
//	GET  /api/jobs?tenant=&status=&code=&q=&limit=
//	GET  /api/jobs/{tenant}/{id}          one job: checkpoint and events
//	GET  /api/jobs/{tenant}/{id}/logs     its build log, live (server-sent events)
//	POST /api/jobs/{tenant}/{id}/cancel   (token)
//	GET  /api/dlq?tenant=                 dead letters, newest first
//	POST /api/dlq/{tenant}/{id}/replay    (token)
//	POST /api/dlq/purge?tenant=           (token)
//	GET  /api/budget                      each endpoint's bucket
//	GET  /api/apps?tenant=&state=
//	GET  /api/events                      every new event (server-sent events)
//
// The page and the JSON reads are gzipped for callers that accept it;
// the event streams are not. Claim codes and URLs never leave it (they
// hand a project over), nor the environment values of requests.
func Handler(cfg Config) (http.Handler, error) {
	if cfg.Client == nil {
		return nil, errors.New("console: Config.Client is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &server{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", compressed(s.index))
	mux.HandleFunc("GET /api/overview", compressed(s.overview))
	mux.HandleFunc("GET /api/jobs", compressed(s.jobs))
	mux.HandleFunc("GET /api/jobs/{tenant}/{id}", compressed(s.job))
	mux.HandleFunc("GET /api/jobs/{tenant}/{id}/logs", s.logs)
	mux.HandleFunc("POST /api/jobs/{tenant}/{id}/cancel", s.action(s.cancel))
	mux.HandleFunc("GET /api/dlq", compressed(s.deadLetters))
	mux.HandleFunc("POST /api/dlq/{tenant}/{id}/replay", s.action(s.replay))
	mux.HandleFunc("POST /api/dlq/purge", s.action(s.purge))
	mux.HandleFunc("GET /api/budget", compressed(s.budget))
	mux.HandleFunc("GET /api/apps", compressed(s.apps))
	mux.HandleFunc("GET /api/events", s.events)
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

// reply writes v as JSON, or err as a 503 with its message.
func (s *server) reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		s.cfg.Logger.Warn("console: request failed", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

// fail writes a client error as JSON.
func fail(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// action wraps a handler that changes something: it runs only on a
// console with a token, for a caller that gives it.
func (s *server) action(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token == "" {
			fail(w, http.StatusForbidden, "the console is read-only: set CONSOLE_TOKEN on the worker to allow actions")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
			fail(w, http.StatusUnauthorized, "a valid console token is required")
			return
		}
		next(w, r)
	}
}

// requestKey reads and checks the {tenant}/{id} of a path.
func requestKey(w http.ResponseWriter, r *http.Request) (tenant, id string, ok bool) {
	tenant, id = r.PathValue("tenant"), r.PathValue("id")
	if !jobs.ValidAppKey(tenant, id) {
		fail(w, http.StatusBadRequest, "bad tenant or id")
		return "", "", false
	}
	return tenant, id, true
}

// tenantParam reads an optional ?tenant=.
func tenantParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	tenant := r.URL.Query().Get("tenant")
	if tenant != "" && !jobs.ValidAppKey(tenant, "x") {
		fail(w, http.StatusBadRequest, "bad tenant")
		return "", false
	}
	return tenant, true
}
