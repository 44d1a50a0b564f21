package vercelsim

import (
	"crypto/rand"
	"encoding/binary"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/deployq/deployq/internal/clock"
	"github.com/deployq/deployq/pkg/vercel"
)

// Server is the simulated Vercel API. It is an http.Handler: mount it on an
// httptest.Server or an http.Server. All its state lives in memory behind
// one mutex; it is safe for concurrent use.
type Server struct {
	cfg    Config
	seed   int64
	userID string // the simulated user: creator of every deployment
	mux    *http.ServeMux

	closed    chan struct{}
	closeOnce sync.Once

	// mu guards everything below. One lock keeps every answer consistent
	// with every other (a 409 and the project it conflicts with are never
	// out of step); the work done under it is small map operations.
	mu     sync.Mutex
	rng    *mrand.Rand
	st     state
	limits limiter
	faults map[vercel.Endpoint]Fault
	stats  counters
	token  string // the accepted token, Config.Token until SetToken
}

// New returns a Server configured by cfg. It panics if cfg.Validate fails,
// as a misconfigured simulator is a bug in the test that built it.
func New(cfg Config) *Server {
	if err := cfg.Validate(); err != nil {
		panic("vercelsim: invalid Config: " + err.Error())
	}
	cfg = cfg.withDefaults()
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = int64(binary.LittleEndian.Uint64(b[:]) >> 1)
		if seed == 0 {
			seed = 1
		}
	}
	s := &Server{
		cfg:    cfg,
		seed:   seed,
		closed: make(chan struct{}),
		rng:    mrand.New(mrand.NewPCG(uint64(seed), 0x76657263656c73)),
		limits: newLimiter(cfg.RateLimits, cfg.DailyDeploymentCap),
		faults: cfg.Faults,
		token:  cfg.Token,
		stats:  newCounters(),
	}
	s.st = newState(cfg.ConcurrentBuilds)
	s.userID = s.randLocked(alphaNum, 24)
	s.routes()
	return s
}

// routes registers every endpoint. Both forms of a path that Vercel's
// clients use in the wild (the documented one and the Prisma guide's) map
// to the same Endpoint, so limits and counters see one endpoint.
func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.handle("POST /v11/projects", vercel.EndpointCreateProject, s.createProject)
	s.handle("POST /v10/projects", vercel.EndpointCreateProject, s.createProject)
	s.handle("GET /v9/projects/{idOrName}", vercel.EndpointGetProject, s.getProject)
	s.handle("DELETE /v9/projects/{idOrName}", vercel.EndpointDeleteProject, s.deleteProject)
	s.handle("POST /projects/{idOrName}/transfer-request", vercel.EndpointTransferRequest, s.createTransferRequest)
	s.handle("POST /v9/projects/{idOrName}/transfer-request", vercel.EndpointTransferRequest, s.createTransferRequest)
	s.handle("PUT /projects/transfer-request/{code}", vercel.EndpointAcceptTransfer, s.acceptTransfer)
	s.handle("PUT /v9/projects/transfer-request/{code}", vercel.EndpointAcceptTransfer, s.acceptTransfer)
	s.handle("POST /v10/projects/{idOrName}/domains", vercel.EndpointAddDomain, s.addDomain)
	s.mux.HandleFunc("GET "+ClaimPagePath, s.claimPage)
	s.mux.HandleFunc("POST "+ClaimPagePath, s.claimPage)
	s.handle("GET /v9/projects/{idOrName}/domains/{domain}", vercel.EndpointGetDomain, s.getDomain)

	s.handle("POST /v1/integrations/billing/authorization", vercel.EndpointAuthorize, s.createAuthorization)
	// Polling an authorization has no Endpoint of its own in the client;
	// it shares the authorize bucket, as it is the same flow.
	s.handle("GET /v1/integrations/billing/authorization/{id}", vercel.EndpointAuthorize, s.getAuthorization)
	s.handle("POST /v1/storage/stores/integration", vercel.EndpointCreateStore, s.createStore)
	s.handle("POST /v1/storage/stores/integration/direct", vercel.EndpointCreateStore, s.createStoreDirect)
	// DELETE …/stores/integration/{storeId} deletes a store, DELETE
	// …/stores/{storeId}/connections disconnects one; the two patterns
	// overlap (…/stores/integration/connections), so one route tells them
	// apart.
	s.mux.HandleFunc("DELETE /v1/storage/stores/{first}/{second}", func(w http.ResponseWriter, r *http.Request) {
		switch first, second := r.PathValue("first"), r.PathValue("second"); {
		case first == "integration":
			r.SetPathValue("storeId", second)
			s.serve(w, r, vercel.EndpointDeleteStore, s.deleteStore)
		case second == "connections":
			r.SetPathValue("storeId", first)
			s.serve(w, r, vercel.EndpointConnectStore, s.disconnectStore)
		default:
			http.NotFound(w, r)
		}
	})
	s.handle("POST /v1/integrations/installations/{configId}/resources/{storeId}/connections", vercel.EndpointConnectStore, s.connectStore)
	s.handle("POST /v1/integrations/installations/{configId}/products/{productId}/resources/{storeId}/connections", vercel.EndpointConnectStore, s.connectStore)
	s.handle("GET /v1/installations/{configId}/resources", vercel.EndpointListResources, s.listResources)
	s.handle("GET /v1/storage/stores", vercel.EndpointListStores, s.listStores)

	s.handle("POST /v2/files", vercel.EndpointUploadFile, s.uploadFile)
	s.handle("POST /v13/deployments", vercel.EndpointCreateDeployment, s.createDeployment)
	s.handle("GET /v13/deployments/{idOrUrl}", vercel.EndpointGetDeployment, s.getDeployment)
	s.handle("GET /v3/deployments/{idOrUrl}/events", vercel.EndpointDeploymentEvents, s.getDeploymentEvents)
	s.handle("GET /v6/deployments", vercel.EndpointListDeployments, s.listDeployments)
	s.handle("GET /v7/deployments", vercel.EndpointListDeployments, s.listDeployments) // @vercel/sdk's version

	// The catch-all also takes wrong methods on known paths, so they get
	// Vercel's JSON 404 rather than the mux's plain-text 405.
	s.mux.HandleFunc("/", s.unknownRoute)
}

// ServeHTTP answers one API request. Every answer, even the mux's own
// redirects, carries an x-vercel-id, as Vercel's do.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	id := s.requestIDLocked(s.now())
	s.mu.Unlock()
	w.Header().Set("x-vercel-id", id)
	s.mux.ServeHTTP(w, r)
}

// Seed is the seed of the Server's random source, the configured one or the
// one drawn when Config.Seed was 0.
func (s *Server) Seed() int64 { return s.seed }

// Close releases every request blocked by a Hang or HangAfter fault (their
// connections are dropped, as a lost answer would be) and makes later hangs
// return at once. An http.Server's Shutdown waits for active requests, so a
// command calls Close before Shutdown. The Server still answers after Close.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// SetFault replaces the fault injection of one endpoint from now on, so a
// test can break an endpoint half-way through a scenario. The zero Fault
// removes it. It panics on an invalid Fault or an unknown endpoint.
func (s *Server) SetFault(ep vercel.Endpoint, f Fault) {
	if err := (Config{Faults: map[vercel.Endpoint]Fault{ep: f}}).Validate(); err != nil {
		panic("vercelsim: SetFault: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == (Fault{}) {
		delete(s.faults, ep)
		return
	}
	s.faults[ep] = f
}

// SetToken replaces the one accepted token from now on ("" accepts any),
// as revoking or rotating a token on Vercel would: the next requests with
// the old one get 401.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// SetLimit replaces the rate limit of one endpoint from now on; the zero
// Limit removes it. Windows already open keep their count. It panics on an
// invalid Limit or an unknown endpoint.
func (s *Server) SetLimit(ep vercel.Endpoint, l Limit) {
	if !l.none() {
		if err := (Config{RateLimits: map[vercel.Endpoint]Limit{ep: l}}).Validate(); err != nil {
			panic("vercelsim: SetLimit: " + err.Error())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits.set(ep, l)
}

func (s *Server) now() time.Time { return s.cfg.Clock() }

// account is the account a call acts for: its team, or the user.
func (s *Server) account(c *call) string {
	if c.team != "" {
		return c.team
	}
	return s.userID
}

// call is one request as a handler sees it.
type call struct {
	r    *http.Request
	team string // the teamId query parameter, "" for a personal account
}

type handlerFunc func(c *call) reply

func (s *Server) handle(pattern string, ep vercel.Endpoint, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, ep, h)
	})
}

// serve runs the steps every request goes through, in the order Vercel's
// edge seems to apply them: latency, authentication, rate limit, injected
// faults, the handler itself, then faults that strike after it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, ep vercel.Endpoint, h handlerFunc) {
	ctx := r.Context()
	s.mu.Lock()
	s.stats.request(ep)
	fault := s.faults[ep]
	outcome := s.drawFaultLocked(fault)
	delay := s.latencyLocked(fault)
	s.mu.Unlock()

	if clock.Sleep(ctx, delay) != nil {
		s.abandoned(ep)
		return
	}
	if rep, ok := s.authenticate(r); !ok {
		s.write(w, ep, rep)
		return
	}
	team := r.URL.Query().Get("teamId")
	if slices.Contains(s.cfg.Quirks.Forbidden, ep) {
		// Refused to this token, as an endpoint Vercel documents for
		// integration providers may refuse a team's token; other calls
		// go on.
		s.write(w, ep, errorReply(http.StatusForbidden, apiError{Code: "forbidden", Message: "You don't have permission to access this resource."}))
		return
	}

	s.mu.Lock()
	lim := s.limits.take(ep, team, s.now())
	s.mu.Unlock()
	lim.setHeaders(w.Header())
	if lim.exceeded {
		s.write(w, ep, lim.reply(s.now()))
		return
	}

	switch outcome {
	case faultErrorBefore:
		s.faulted(ep, outcome)
		s.write(w, ep, s.serverError(false))
		return
	case faultHang:
		s.faulted(ep, outcome)
		s.hang(r, ep)
		return
	}

	rep := h(&call{r: r, team: team})

	if rep.stream != nil {
		s.serveStream(w, r, ep, rep, outcome)
		return
	}
	if rep.status >= 200 && rep.status < 300 {
		switch outcome {
		case faultErrorAfter:
			s.faulted(ep, outcome)
			rep = s.serverError(true)
		case faultHangAfter:
			s.faulted(ep, outcome)
			s.hang(r, ep)
			return
		}
	}
	s.write(w, ep, rep)
}

// authenticate checks the bearer token and the team the way Vercel does:
// a missing or wrong token is 401 with code "forbidden"; a token used for a
// team it does not belong to is 403.
func (s *Server) authenticate(r *http.Request) (reply, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		return errorReply(http.StatusUnauthorized, apiError{
			Code: "forbidden", Message: "The request is missing an authentication token", MissingToken: true,
		}), false
	}
	s.mu.Lock()
	want := s.token
	s.mu.Unlock()
	if want != "" && token != want {
		return errorReply(http.StatusUnauthorized, apiError{
			Code: "forbidden", Message: "Not authorized", InvalidToken: true,
		}), false
	}
	if team := r.URL.Query().Get("teamId"); s.cfg.TeamID != "" && team != s.cfg.TeamID && team != s.cfg.ClaimTeam {
		return errorReply(http.StatusForbidden, apiError{
			Code: "forbidden", Message: "You do not have permission to access this resource.",
		}), false
	}
	return reply{}, true
}

func (s *Server) unknownRoute(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.unknownRoutes++
	s.mu.Unlock()
	writeReply(w, errorReply(http.StatusNotFound, apiError{
		Code: "not_found", Message: "The requested API endpoint was not found.",
	}))
}

// write sends rep and counts it.
func (s *Server) write(w http.ResponseWriter, ep vercel.Endpoint, rep reply) {
	s.mu.Lock()
	s.stats.response(ep, rep.status, s.now())
	s.mu.Unlock()
	writeReply(w, rep)
}

func (s *Server) abandoned(ep vercel.Endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.abandoned[ep]++
}
