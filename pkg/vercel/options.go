package vercel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of the options.
const (
	DefaultBaseURL            = "https://api.vercel.com"
	DefaultRequestTimeout     = 30 * time.Second
	DefaultStreamIdleTimeout  = 2 * time.Minute
	DefaultProjectsAPIVersion = 11
	DefaultUserAgent          = "deployq-vercel-client/1"
)

// Option configures a Client. Options are checked by New, which returns the
// first error, so a bad flag or environment value fails at start-up instead
// of on the first job.
type Option func(*config) error

// ConnectPathForm selects the route of ConnectStore. It is a string so that
// a flag value can be passed through as is; New rejects unknown values.
type ConnectPathForm string

// The two routes that connect a store to a project.
const (
	// ConnectPathDocumented is Vercel's documented route:
	// /v1/integrations/installations/{configId}/resources/{storeId}/connections.
	ConnectPathDocumented ConnectPathForm = "documented"
	// ConnectPathWithProduct is the route of Prisma's guide:
	// /v1/integrations/installations/{configId}/products/{productId}/resources/{storeId}/connections.
	ConnectPathWithProduct ConnectPathForm = "with_product"
)

// Limiter sits in front of every request: it is the hook of the shared
// budget. Wait blocks until the endpoint may be called or ctx ends; an error
// from Wait is returned to the caller and no request is sent. Observe is told
// what each answer said (status, parsed rate-limit info, and the typed error
// if any) so the budget can learn from 429s, 402s and X-RateLimit-* headers.
//
// Observe is called exactly once after every Wait that returned nil, so a
// budget that counts requests in flight stays balanced; status is 0 when no
// answer arrived (network error, timeout, cancellation).
type Limiter interface {
	Wait(ctx context.Context, ep Endpoint) error
	Observe(ep Endpoint, status int, rl RateLimit, err error)
}

// RequestObserver receives one record per HTTP attempt, for metrics.
type RequestObserver interface {
	// ObserveRequest is called once per HTTP attempt. status is 0 when no
	// answer arrived. d covers sending the request and reading the answer.
	ObserveRequest(ep Endpoint, status int, d time.Duration)
}

// config is the validated result of the options. It is never modified after
// New returns, which is what makes Client safe for concurrent use.
type config struct {
	baseURL         *url.URL
	token           string
	teamID          string
	httpClient      *http.Client
	timeout         time.Duration
	streamIdle      time.Duration
	projectsVersion int
	connectPath     ConnectPathForm
	limiter         Limiter
	observer        RequestObserver
	userAgent       string
	now             func() time.Time
}

func defaultConfig() *config {
	u, _ := url.Parse(DefaultBaseURL) // a constant known to parse
	return &config{
		baseURL:         u,
		httpClient:      defaultHTTPClient(),
		timeout:         DefaultRequestTimeout,
		streamIdle:      DefaultStreamIdleTimeout,
		projectsVersion: DefaultProjectsAPIVersion,
		connectPath:     ConnectPathDocumented,
		userAgent:       DefaultUserAgent,
		now:             time.Now,
	}
}

// maxConnsPerHost caps and keeps the default client's connections.
const maxConnsPerHost = 512

// defaultHTTPClient has no overall Timeout: the per-request timeout is a
// context deadline, so that it can be told apart from the caller's own
// deadline. The transport bounds the phases that a context does not make
// visible in errors (dial, TLS).
//
// Every call goes to one host, and one worker may have thousands of jobs
// calling at once, so the connections to it are capped and kept: without
// a cap, a worker starting 10 000 jobs opened 42 000 connections, up to
// 4 400 at once, and closed all but 32 after each burst (its peak memory
// was 339 MB); with 512 kept, it opens under 2 000 and peaks at 296 MB,
// spending a third less CPU. Over HTTP/2, which the API speaks, each
// connection carries many calls at once. The cap stays above the
// pipeline's default bound on open event streams (256), so streams never
// hold every connection.
func defaultHTTPClient() *http.Client {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment}
	}
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.MaxConnsPerHost = maxConnsPerHost
	t.MaxIdleConnsPerHost = maxConnsPerHost
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: t}
}

// WithBaseURL sets the API root. A path prefix is kept (a proxy or a test
// server may mount the API under one). It must be an absolute http or https
// URL without user info, query or fragment: credentials belong in WithToken,
// and a query would be lost. Defaults to https://api.vercel.com.
func WithBaseURL(u string) Option {
	return func(c *config) error {
		p, err := url.Parse(u)
		if err != nil {
			return fmt.Errorf("base URL: %w", err)
		}
		switch {
		case p.Scheme != "http" && p.Scheme != "https":
			return fmt.Errorf("base URL %q: scheme must be http or https", p.Redacted())
		case p.Host == "":
			return fmt.Errorf("base URL %q: no host", p.Redacted())
		case p.User != nil:
			return errors.New("base URL: must not contain user info; use WithToken")
		case p.RawQuery != "" || p.ForceQuery || p.Fragment != "":
			return fmt.Errorf("base URL %q: must not have a query or fragment", p.Redacted())
		}
		p.Path = strings.TrimRight(p.Path, "/")
		p.RawPath = strings.TrimRight(p.RawPath, "/")
		c.baseURL = p
		return nil
	}
}

// WithToken sets the bearer token. It is never printed: not by the Client's
// String, GoString or Format, and not in errors. Defaults to none (no
// Authorization header), which only a simulator accepts.
func WithToken(token string) Option {
	return func(c *config) error {
		if token == "" {
			return errors.New("token is empty")
		}
		if strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return errors.New("token contains spaces or control characters")
		}
		c.token = token
		return nil
	}
}

// WithTeamID sets the team every request acts for; it is added as the
// teamId query parameter of every request. An empty id means the token's
// personal account. Defaults to none.
func WithTeamID(id string) Option {
	return func(c *config) error {
		c.teamID = id
		return nil
	}
}

// WithHTTPClient sets the HTTP client. Its Timeout, if any, applies on top
// of the per-request timeout. Defaults to a client whose transport bounds
// dialing and TLS handshakes to 10 s.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return errors.New("HTTP client is nil")
		}
		c.httpClient = hc
		return nil
	}
}

// WithRequestTimeout bounds each HTTP attempt, from sending the request to
// reading the whole answer; 0 means no bound other than the caller's
// context. Defaults to 30 s.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("request timeout %s is negative", d)
		}
		c.timeout = d
		return nil
	}
}

// WithStreamIdleTimeout bounds the silence of a streamed answer (the
// deployment events that FollowDeploymentEvents reads): no byte for d
// ends the stream with a *NetworkError whose Err is a *StreamIdleError.
// A stream lasts as long as a build, minutes, so the per-request timeout
// bounds only its start (until the answer's headers) and this bounds each
// gap after it; the caller's context bounds the whole. 0 means no bound
// other than the context. Defaults to 2 min: a build can stay quiet for a
// minute or more (installing dependencies), and a stream cut too eagerly
// costs status polls.
func WithStreamIdleTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("stream idle timeout %s is negative", d)
		}
		c.streamIdle = d
		return nil
	}
}

// WithProjectsAPIVersion selects the route of CreateProject: 11 for
// POST /v11/projects (Vercel's reference) or 10 for POST /v10/projects
// (Prisma's guide). Defaults to 11.
func WithProjectsAPIVersion(v int) Option {
	return func(c *config) error {
		if v != 10 && v != 11 {
			return fmt.Errorf("projects API version %d: want 10 or 11", v)
		}
		c.projectsVersion = v
		return nil
	}
}

// WithConnectPath selects the route of ConnectStore. Defaults to
// ConnectPathDocumented.
func WithConnectPath(form ConnectPathForm) Option {
	return func(c *config) error {
		switch form {
		case ConnectPathDocumented, ConnectPathWithProduct:
			c.connectPath = form
			return nil
		}
		return fmt.Errorf("connect path form %q: want %q or %q", string(form), ConnectPathDocumented, ConnectPathWithProduct)
	}
}

// WithLimiter sets the budget consulted before every request. Defaults to
// none: every request is sent at once.
func WithLimiter(l Limiter) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("limiter is nil")
		}
		c.limiter = l
		return nil
	}
}

// WithRequestObserver sets the metrics hook told about every HTTP attempt.
// Defaults to none.
func WithRequestObserver(o RequestObserver) Option {
	return func(c *config) error {
		if o == nil {
			return errors.New("request observer is nil")
		}
		c.observer = o
		return nil
	}
}

// WithUserAgent sets the User-Agent header, which Vercel's support can use
// to find a client's requests. Defaults to DefaultUserAgent.
func WithUserAgent(ua string) Option {
	return func(c *config) error {
		if strings.TrimSpace(ua) == "" {
			return errors.New("user agent is empty")
		}
		if strings.ContainsFunc(ua, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return errors.New("user agent contains control characters")
		}
		c.userAgent = ua
		return nil
	}
}

// WithClock sets the clock used to turn Retry-After dates and reset
// instants into durations when an answer has no Date header; tests use it
// to get exact values without waiting. Defaults to time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("clock is nil")
		}
		c.now = now
		return nil
	}
}

// redactedToken is what printing shows instead of the token.
func redactedToken(token string) string {
	if token == "" {
		return "<none>"
	}
	return "[REDACTED]"
}

// String describes the configuration without the token.
func (c config) String() string {
	base := ""
	if c.baseURL != nil {
		base = c.baseURL.Redacted()
	}
	return fmt.Sprintf("vercel.config{baseURL: %s, teamID: %q, token: %s, timeout: %s, streamIdle: %s, projectsVersion: %d, connectPath: %s, userAgent: %q, limiter: %t, observer: %t}",
		base, c.teamID, redactedToken(c.token), c.timeout, c.streamIdle, c.projectsVersion, c.connectPath, c.userAgent, c.limiter != nil, c.observer != nil)
}

// GoString keeps %#v from printing the fields, the token among them.
func (c config) GoString() string { return c.String() }

// Format makes every verb, %+v and %#v included, print String: without it
// fmt would print the unexported fields, the token among them.
func (c config) Format(f fmt.State, verb rune) { formatRedacted(f, verb, c.String()) }

func formatRedacted(f fmt.State, verb rune, s string) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s)
		return
	}
	fmt.Fprint(f, s)
}
