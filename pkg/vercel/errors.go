package vercel

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// APIError is an HTTP answer outside 2xx. The specialised errors below embed
// it and unwrap to it, so errors.As(err, &apiErr) works for all of them.
// Its message never holds the token or the request's query.
type APIError struct {
	Endpoint   Endpoint
	StatusCode int
	Code       string // error.code of the body, e.g. "not_found"; "" when the body was not Vercel's
	Message    string // error.message, or a trimmed snippet of a body that was not JSON
	RequestID  string // x-vercel-id header
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("vercel: ")
	if e.Endpoint != "" {
		b.WriteString(string(e.Endpoint))
		b.WriteString(": ")
	}
	b.WriteString(strconv.Itoa(e.StatusCode))
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	if msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id ")
		b.WriteString(e.RequestID)
		b.WriteString(")")
	}
	return b.String()
}

// RateLimitError is a 429: the endpoint's budget is spent until Reset.
// RetryAfter comes from the Retry-After header (seconds or an HTTP date,
// measured from the answer's Date header, else from now), else from the
// body's limit.resetMs or limit.reset (seconds or milliseconds: values
// above 1e11 are milliseconds), else from X-RateLimit-Reset. It is 0 when
// the answer said nothing about when to come back.
type RateLimitError struct {
	APIError
	RetryAfter time.Duration
	Reset      time.Time // zero when unknown
	Limit      RateLimit
}

// BuildsFullError is a 429 with code builds_rate_limited: the team's
// concurrent builds are full. It is not a limit of the endpoint, so the
// budget does not pause for it (Vercel's CLI does not even retry it); a
// caller waits for a build to end and tries again.
type BuildsFullError struct {
	APIError
	RetryAfter time.Duration // 0 when the API did not say
}

// Unwrap gives errors.As access to the embedded *APIError.
func (e *BuildsFullError) Unwrap() error { return &e.APIError }

// CapError is a refusal because the team holds as many of a resource as
// its plan allows: projects (Hobby: 200, code too_many_projects, which
// Vercel's CLI reports as such) or databases (the Prisma workspace's cap;
// the real code is undocumented, the simulator's is too_many_stores).
// Nothing frees room but deleting resources or a bigger plan, so it is
// never retried, whatever its status.
type CapError struct {
	APIError
	// Resource is CapProjects or CapDatabases.
	Resource string
}

// Unwrap gives errors.As access to the embedded *APIError.
func (e *CapError) Unwrap() error { return &e.APIError }

// The resources a CapError names.
const (
	CapProjects  = "projects"
	CapDatabases = "databases"
)

// capOf names the capped resource an error code stands for.
func capOf(code string) (string, bool) {
	switch code {
	case "too_many_projects":
		return CapProjects, true
	case "too_many_stores", "too_many_databases", "store_limit_reached":
		return CapDatabases, true
	}
	return "", false
}

// CodeBuildsRateLimited is the error code of a BuildsFullError.
const CodeBuildsRateLimited = "builds_rate_limited"

func (e *RateLimitError) Error() string {
	s := e.APIError.Error()
	if e.RetryAfter > 0 {
		s += "; retry after " + e.RetryAfter.String()
	}
	return s
}

// Unwrap gives errors.As access to the embedded *APIError.
func (e *RateLimitError) Unwrap() error { return &e.APIError }

// PlanLimitError is a 402 payment_required that carries a limit: a plan cap
// such as the daily deployment count of the Hobby plan. The cap lifts at
// Reset, so waiting is the only remedy. A 402 without a limit (an account
// blocked for payment) is a plain *APIError.
type PlanLimitError struct {
	APIError
	Resource   string    // e.g. "api-deployments-free-per-day"
	Reset      time.Time // limit.reset (milliseconds in Vercel's example); zero when unknown
	Total      int       // limit.total: the cap
	RetryAfter time.Duration
}

func (e *PlanLimitError) Error() string {
	s := e.APIError.Error()
	if e.RetryAfter > 0 {
		s += "; retry after " + e.RetryAfter.String()
	}
	return s
}

// Unwrap gives errors.As access to the embedded *APIError.
func (e *PlanLimitError) Unwrap() error { return &e.APIError }

// MissingFilesError is the 400 missing_files answer of create deployment:
// the files with these SHA-1s must be uploaded before the deployment is
// posted again.
type MissingFilesError struct {
	APIError
	Missing []string
}

func (e *MissingFilesError) Error() string {
	return fmt.Sprintf("%s; %d missing files", e.APIError.Error(), len(e.Missing))
}

// Unwrap gives errors.As access to the embedded *APIError.
func (e *MissingFilesError) Unwrap() error { return &e.APIError }

// NetworkError is an attempt that got no usable HTTP answer: the connection
// failed, the per-request timeout or the caller's context ended it, or the
// body broke off. It stands in for net/http's *url.Error, whose message
// holds the URL with its query.
type NetworkError struct {
	Endpoint Endpoint
	Method   string
	Path     string // escaped path, without the query
	// RequestTimeout is the client's per-request timeout when that timeout
	// ended the attempt; 0 otherwise.
	RequestTimeout time.Duration
	Err            error
}

func (e *NetworkError) Error() string {
	if e.RequestTimeout > 0 {
		return fmt.Sprintf("vercel: %s: %s %s: no answer within %s: %v", e.Endpoint, e.Method, e.Path, e.RequestTimeout, e.Err)
	}
	return fmt.Sprintf("vercel: %s: %s %s: %v", e.Endpoint, e.Method, e.Path, e.Err)
}

func (e *NetworkError) Unwrap() error { return e.Err }

// Timeout reports whether a deadline ended the attempt, as net.Error does.
func (e *NetworkError) Timeout() bool {
	if e.RequestTimeout > 0 {
		return true
	}
	var t interface{ Timeout() bool }
	if errors.As(e.Err, &t) {
		return t.Timeout()
	}
	return false
}

// DecodeError is a 2xx answer whose body could not be read as the expected
// JSON, or lacked the field the call exists for (such as an id).
type DecodeError struct {
	Endpoint   Endpoint
	StatusCode int
	Err        error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("vercel: %s: decoding %d answer: %v", e.Endpoint, e.StatusCode, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// InvalidArgumentError is a call refused before any request was sent, such
// as an empty id that would turn GET /v9/projects/{id} into a listing.
type InvalidArgumentError struct {
	Endpoint Endpoint
	Argument string
	Reason   string
}

func (e *InvalidArgumentError) Error() string {
	return fmt.Sprintf("vercel: %s: invalid argument %s: %s", e.Endpoint, e.Argument, e.Reason)
}

// wireError is Vercel's error object. The same fields are also looked for
// at the top level of the body, for answers that do not nest them.
type wireError struct {
	Code     string     `json:"code"`
	Message  string     `json:"message"`
	Missing  []string   `json:"missing"`
	Limit    *wireLimit `json:"limit"`
	Resource string     `json:"resource"`
}

type wireErrorBody struct {
	Error json.RawMessage `json:"error"`
	wireError
}

// parseErrorBody reads {"error":{…}}; ok is false when the body is not a
// JSON object. An "error" that is a bare string is taken as the message.
func parseErrorBody(body []byte) (wireError, bool) {
	var b wireErrorBody
	if err := json.Unmarshal(body, &b); err != nil {
		return wireError{}, false
	}
	out := b.wireError
	if len(b.Error) == 0 {
		return out, true
	}
	var inner wireError
	if err := json.Unmarshal(b.Error, &inner); err != nil {
		var s string
		if json.Unmarshal(b.Error, &s) == nil && out.Message == "" {
			out.Message = s
		}
		return out, true
	}
	if inner.Code != "" {
		out.Code = inner.Code
	}
	if inner.Message != "" {
		out.Message = inner.Message
	}
	if inner.Missing != nil {
		out.Missing = inner.Missing
	}
	if inner.Limit != nil {
		out.Limit = inner.Limit
	}
	if inner.Resource != "" {
		out.Resource = inner.Resource
	}
	return out, true
}

// errorFromAnswer turns a non-2xx answer into the most specific typed
// error, and completes resp.RateLimit with the body's limit object.
func (c *Client) errorFromAnswer(ep Endpoint, resp *Response, body []byte, ref time.Time) error {
	apiErr := APIError{Endpoint: ep, StatusCode: resp.StatusCode, RequestID: resp.RequestID}
	wire, ok := parseErrorBody(body)
	if ok {
		apiErr.Code = wire.Code
		apiErr.Message = wire.Message
	} else {
		apiErr.Message = snippet(body)
	}
	if c.cfg.token != "" {
		// A proxy may echo request headers into its error page.
		apiErr.Message = strings.ReplaceAll(apiErr.Message, c.cfg.token, "[REDACTED]")
	}

	headerRL := resp.RateLimit
	var bodyRL RateLimit
	if wire.Limit != nil {
		bodyRL = wire.Limit.rateLimit(ref)
		resp.RateLimit = mergeRateLimit(headerRL, bodyRL)
	}

	if res, ok := capOf(wire.Code); ok {
		return &CapError{APIError: apiErr, Resource: res}
	}
	switch {
	case wire.Code == "missing_files":
		return &MissingFilesError{APIError: apiErr, Missing: wire.Missing}
	case resp.StatusCode == http.StatusTooManyRequests && wire.Code == CodeBuildsRateLimited:
		retryAfter, _ := parseRetryAfter(resp.Header, ref)
		return &BuildsFullError{APIError: apiErr, RetryAfter: retryAfter}
	case resp.StatusCode == http.StatusTooManyRequests:
		reset := bodyRL.Reset
		if reset.IsZero() {
			reset = headerRL.Reset
		}
		retryAfter, ok := parseRetryAfter(resp.Header, ref)
		switch {
		case ok && reset.IsZero():
			reset = ref.Add(retryAfter)
		case !ok && !reset.IsZero():
			retryAfter = max(reset.Sub(ref), 0)
		}
		return &RateLimitError{APIError: apiErr, RetryAfter: retryAfter, Reset: reset, Limit: resp.RateLimit}
	case resp.StatusCode == http.StatusPaymentRequired && (wire.Limit != nil || wire.Resource != ""):
		reset := bodyRL.Reset
		if reset.IsZero() {
			reset = headerRL.Reset
		}
		retryAfter, ok := parseRetryAfter(resp.Header, ref)
		switch {
		case ok:
		case !reset.IsZero():
			retryAfter = max(reset.Sub(ref), 0)
		default:
			retryAfter = retryAfterFromMessage(apiErr.Message)
		}
		if reset.IsZero() && retryAfter > 0 {
			reset = ref.Add(retryAfter)
		}
		return &PlanLimitError{APIError: apiErr, Resource: wire.Resource, Reset: reset, Total: bodyRL.Limit, RetryAfter: retryAfter}
	}
	return &apiErr
}

// snippetLen bounds the part of a foreign body kept in an error message:
// enough to recognise a proxy's page, short enough for a log line.
const snippetLen = 200

// snippet makes a readable one-line excerpt of a body that is not Vercel's
// JSON, such as a proxy's HTML error page.
func snippet(body []byte) string {
	s := strings.ToValidUTF8(string(body), "")
	if strings.HasPrefix(strings.TrimSpace(s), "<") {
		s = stripTags(s)
	}
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > snippetLen {
		r := []rune(s)
		s = string(r[:snippetLen]) + "…"
	}
	return s
}

// stripTags drops markup and the content of <head>, <script> and <style>,
// which hold no message.
func stripTags(s string) string {
	lower := strings.ToLower(s)
	for _, tag := range []string{"head", "script", "style"} {
		for {
			i := strings.Index(lower, "<"+tag)
			if i < 0 {
				break
			}
			j := strings.Index(lower[i:], "</"+tag+">")
			if j < 0 {
				break
			}
			end := i + j + len("</"+tag+">")
			s = s[:i] + " " + s[end:]
			lower = lower[:i] + " " + lower[end:]
		}
	}
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
			b.WriteRune(' ')
		case r == '>' && in:
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// retryAfterFromMessage reads "try again in 24 hours" from a 402 message:
// a plan cap answer may carry no reset instant, and the message is then the
// only statement of how long to wait.
func retryAfterFromMessage(msg string) time.Duration {
	const marker = "try again in "
	i := strings.Index(strings.ToLower(msg), marker)
	if i < 0 {
		return 0
	}
	fields := strings.Fields(msg[i+len(marker):])
	if len(fields) < 2 {
		return 0
	}
	n, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || n <= 0 {
		return 0
	}
	unit := strings.ToLower(strings.TrimRight(fields[1], ".,;:)"))
	var d time.Duration
	switch strings.TrimSuffix(unit, "s") {
	case "second", "sec":
		d = time.Second
	case "minute", "min":
		d = time.Minute
	case "hour", "hr", "h":
		d = time.Hour
	case "day":
		d = 24 * time.Hour
	default:
		return 0
	}
	return time.Duration(n * float64(d))
}
