package vercel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// maxBodySize bounds how much of an answer is read. The largest answers of
// the pipeline (a project, a deployment) are tens of kilobytes; the bound
// only stops a misbehaving proxy from filling memory.
const maxBodySize = 16 << 20

// Client calls the Vercel REST API. It is safe for concurrent use: its
// configuration is fixed by New. Printing a Client, with any verb, never
// shows the token.
//
// A Client sends each call once. It never retries or sleeps on its own:
// Classify tells the caller whether and when to try again. The only
// exception is CreateDeploymentUploading, whose second request is part of
// the protocol rather than a retry.
type Client struct {
	// cfg is a pointer so that a Client nested in another value prints as
	// an address rather than as fields.
	cfg *config
	// learned is what the client learned of the API as it went.
	learned *learned
}

// learned is what a Client learns of the API from its answers.
type learned struct {
	// storeDirect: the guide's store route was refused (CreateStore).
	storeDirect atomic.Bool
}

// New returns a Client configured by opts, or the first option error.
func New(opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(cfg); err != nil {
			return nil, fmt.Errorf("vercel: invalid option: %w", err)
		}
	}
	return &Client{cfg: cfg, learned: &learned{}}, nil
}

// TeamID returns the team the client acts for ("" for a personal account).
// The budget keys its buckets by it.
func (c *Client) TeamID() string { return c.cfg.teamID }

// String describes the client without the token.
func (c Client) String() string {
	if c.cfg == nil {
		return "vercel.Client{}"
	}
	base := ""
	if c.cfg.baseURL != nil {
		base = c.cfg.baseURL.Redacted()
	}
	return fmt.Sprintf("vercel.Client{baseURL: %s, teamID: %q, token: %s}", base, c.cfg.teamID, redactedToken(c.cfg.token))
}

// GoString keeps %#v from printing the configuration, the token among it.
func (c Client) GoString() string { return c.String() }

// Format makes every verb print String, so that no formatting directive
// reaches the token.
func (c Client) Format(f fmt.State, verb rune) { formatRedacted(f, verb, c.String()) }

// Response is returned by every call, even on error when an HTTP answer
// arrived (nil otherwise).
type Response struct {
	StatusCode int
	RequestID  string    // x-vercel-id header: what Vercel's support asks for
	RateLimit  RateLimit // X-RateLimit-* headers, completed by an error body's limit object
	Header     http.Header
}

// request is one call, described before the limiter and the HTTP client
// see it.
type request struct {
	ep     Endpoint
	method string
	path   string // already escaped; starts with "/"
	query  url.Values
	body   []byte
	ctype  string
	header http.Header
}

// jsonRequest builds a request whose body is v in JSON.
func jsonRequest(ep Endpoint, method, path string, v any) (request, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return request{}, fmt.Errorf("vercel: %s: encoding request: %w", ep, err)
	}
	return request{ep: ep, method: method, path: path, body: b, ctype: "application/json"}, nil
}

// requestURL is the only place where teamId is added, so that no route
// can forget it and none adds it twice.
func (c *Client) requestURL(r request) string {
	q := url.Values{}
	for k, vs := range r.query {
		q[k] = append([]string(nil), vs...)
	}
	if c.cfg.teamID != "" {
		q.Set("teamId", c.cfg.teamID)
	}
	u := c.cfg.baseURL.Scheme + "://" + c.cfg.baseURL.Host + c.cfg.baseURL.EscapedPath() + r.path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// do sends one request through the limiter and decodes a 2xx answer into
// out (when out is not nil). Any other answer becomes a typed error.
func (c *Client) do(ctx context.Context, r request, out any) (*Response, error) {
	return c.budgeted(ctx, r.ep, func() (*Response, error) { return c.send(ctx, r, out) })
}

// newResponse is what every answer tells besides its body: status, the
// request id and the rate-limit headers, read against the answer's own
// clock where it gives one; ref is that instant, for the error's times.
func (c *Client) newResponse(hresp *http.Response) (resp *Response, ref time.Time) {
	ref = referenceTime(hresp.Header, c.cfg.now())
	return &Response{
		StatusCode: hresp.StatusCode,
		RequestID:  hresp.Header.Get(headerRequestID),
		RateLimit:  parseRateLimitHeaders(hresp.Header, ref),
		Header:     hresp.Header,
	}, ref
}

// budgeted runs one attempt at endpoint ep under the limiter, if any:
// it waits for budget first and reports the answer after, for plain calls
// and streams alike.
func (c *Client) budgeted(ctx context.Context, ep Endpoint, attempt func() (*Response, error)) (*Response, error) {
	l := c.cfg.limiter
	if l == nil {
		if err := beforeSend(ctx); err != nil {
			return nil, fmt.Errorf("vercel: %s: %w", ep, err)
		}
		return attempt()
	}
	disarm := noticeWait(ctx, ep)
	err := l.Wait(ctx, ep)
	disarm()
	if err != nil {
		return nil, fmt.Errorf("vercel: %s: waiting for budget: %w", ep, err)
	}
	if err := beforeSend(ctx); err != nil {
		l.Observe(ep, 0, RateLimit{}, err) // nothing sent: the slot goes unused
		return nil, fmt.Errorf("vercel: %s: %w", ep, err)
	}
	resp, err := attempt()
	var (
		status int
		rl     RateLimit
	)
	if resp != nil {
		status, rl = resp.StatusCode, resp.RateLimit
	}
	l.Observe(ep, status, rl, err)
	return resp, err
}

// send performs one HTTP attempt under the per-request timeout.
func (c *Client) send(ctx context.Context, r request, out any) (*Response, error) {
	actx, cancel := ctx, context.CancelFunc(func() {})
	if c.cfg.timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, c.cfg.timeout)
	}
	defer cancel()

	req, err := c.newHTTPRequest(actx, r)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	hresp, err := c.cfg.httpClient.Do(req)
	if err != nil {
		c.observe(r.ep, 0, time.Since(start))
		return nil, c.networkError(ctx, actx, r, err)
	}
	data, tooLarge, readErr := readBody(hresp.Body)
	c.observe(r.ep, hresp.StatusCode, time.Since(start))

	resp, ref := c.newResponse(hresp)
	if readErr != nil {
		return resp, c.networkError(ctx, actx, r, readErr)
	}
	if tooLarge {
		return resp, &DecodeError{Endpoint: r.ep, StatusCode: resp.StatusCode, Err: fmt.Errorf("answer larger than %d bytes", maxBodySize)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, c.errorFromAnswer(r.ep, resp, data, ref)
	}
	if out == nil {
		return resp, nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return resp, &DecodeError{Endpoint: r.ep, StatusCode: resp.StatusCode, Err: errors.New("empty body")}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp, &DecodeError{Endpoint: r.ep, StatusCode: resp.StatusCode, Err: err}
	}
	return resp, nil
}

// newHTTPRequest builds the HTTP request of r: the one place where the
// token and the common headers are set.
func (c *Client) newHTTPRequest(ctx context.Context, r request) (*http.Request, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.requestURL(r), body)
	if err != nil {
		// Only a path built from unescaped input could get here; the
		// message leaves the URL out because it carries the query.
		return nil, &InvalidArgumentError{Endpoint: r.ep, Argument: "path", Reason: "does not form a valid URL"}
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", c.cfg.userAgent)
	if c.cfg.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.token)
	}
	return req, nil
}

func (c *Client) observe(ep Endpoint, status int, d time.Duration) {
	if c.cfg.observer != nil {
		c.cfg.observer.ObserveRequest(ep, status, d)
	}
}

// readBody reads the whole answer so that the connection can be reused, and
// reads it under the attempt's context so that a stalled body also times out.
func readBody(rc io.ReadCloser) (data []byte, tooLarge bool, err error) {
	defer rc.Close()
	data, err = io.ReadAll(io.LimitReader(rc, maxBodySize+1))
	if err != nil {
		return nil, false, err
	}
	if len(data) > maxBodySize {
		return nil, true, nil
	}
	return data, false, nil
}

// networkError replaces net/http's *url.Error, whose message holds the full
// URL with its query, and says which deadline ended the attempt: the
// caller's (parent) or the client's per-request timeout.
func (c *Client) networkError(parent, attempt context.Context, r request, err error) error {
	ne := &NetworkError{Endpoint: r.ep, Method: r.method, Path: r.path, Err: err}
	var ue *url.Error
	if errors.As(err, &ue) {
		ne.Err = ue.Err
	}
	switch {
	case parent.Err() != nil:
		ne.Err = parent.Err()
	case errors.Is(attempt.Err(), context.DeadlineExceeded):
		ne.Err = context.DeadlineExceeded
		ne.RequestTimeout = c.cfg.timeout
	}
	return ne
}

// segment escapes one path segment. Empty and dot segments are refused:
// they would address another route (GET /v9/projects/ lists projects, and
// ".." climbs out of the route once a server cleans the path).
func segment(ep Endpoint, arg, v string) (string, error) {
	switch v {
	case "":
		return "", &InvalidArgumentError{Endpoint: ep, Argument: arg, Reason: "must not be empty"}
	case ".", "..":
		return "", &InvalidArgumentError{Endpoint: ep, Argument: arg, Reason: "must not be a dot segment"}
	}
	return url.PathEscape(v), nil
}
