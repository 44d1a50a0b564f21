package vercel

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	httpDate := func(tm time.Time) string { return tm.UTC().Format(http.TimeFormat) }
	skewed := testNow.Add(-time.Hour) // the server's clock, an hour behind ours
	in := func(d time.Duration) time.Time { return testNow.Add(d) }
	type kind int
	const (
		kindAPI kind = iota
		kindRate
		kindPlan
		kindMissing
	)
	tests := []struct {
		name   string
		status int
		header map[string]string // Date is left out unless given here
		body   string

		kind        kind
		code        string
		message     string // substring of Message
		retryAfter  time.Duration
		reset       time.Time
		rl          RateLimit // Response.RateLimit, and RateLimitError.Limit
		class       Class
		reason      string
		rateLimited bool
	}{
		{
			name: "429 Retry-After in seconds", status: 429,
			header: map[string]string{"Retry-After": "30"},
			body:   `{"error":{"code":"rate_limited","message":"Too many requests"}}`,
			kind:   kindRate, code: "rate_limited", message: "Too many requests",
			retryAfter: 30 * time.Second, reset: in(30 * time.Second),
			class: Transient, reason: ReasonRateLimited, rateLimited: true,
		},
		{
			name: "429 Retry-After as an HTTP date, measured from the Date header", status: 429,
			header: map[string]string{"Date": httpDate(skewed), "Retry-After": httpDate(skewed.Add(90 * time.Second))},
			body:   `{"error":{"code":"rate_limited","message":"slow down"}}`,
			kind:   kindRate, code: "rate_limited",
			retryAfter: 90 * time.Second, reset: skewed.Add(90 * time.Second),
			class: Transient, reason: ReasonRateLimited, rateLimited: true,
		},
		{
			name: "429 Retry-After as an HTTP date, no Date header", status: 429,
			header: map[string]string{"Retry-After": httpDate(in(2 * time.Minute))},
			body:   `{"error":{"code":"rate_limited","message":"slow down"}}`,
			kind:   kindRate, code: "rate_limited",
			retryAfter: 2 * time.Minute, reset: in(2 * time.Minute),
			class: Transient, reason: ReasonRateLimited, rateLimited: true,
		},
		{
			name: "429 Retry-After date in the past", status: 429,
			header: map[string]string{"Retry-After": httpDate(in(-time.Minute))},
			body:   `{"error":{"code":"rate_limited","message":"slow down"}}`,
			kind:   kindRate, code: "rate_limited",
			retryAfter: 0, reset: testNow,
			class: Transient, reason: ReasonRateLimited, rateLimited: true,
		},
		{
			name: "429 body limit.reset in seconds", status: 429,
			body: fmt.Sprintf(`{"error":{"code":"rate_limited","message":"Rate limit exceeded","limit":{"remaining":0,"reset":%d,"total":100}}}`, in(45*time.Second).Unix()),
			kind: kindRate, code: "rate_limited",
			retryAfter: 45 * time.Second, reset: in(45 * time.Second),
			rl:    RateLimit{Limit: 100, Remaining: 0, Known: true, Reset: in(45 * time.Second)},
			class: Transient, reason: ReasonRateLimited, rateLimited: true,
		},
		{
			name: "429 body limit.reset in milliseconds", status: 429,
			body: fmt.Sprintf(`{"error":{"code":"rate_limited","message":"x","limit":{"remaining":0,"reset":%d,"total":100}}}`, in(45500*time.Millisecond).UnixMilli()),
			kind: kindRate, code: "rate_limited",
			retryAfter: 45500 * time.Millisecond, reset: in(45500 * time.Millisecond),
			rl:    RateLimit{Limit: 100, Remaining: 0, Known: true, Reset: in(45500 * time.Millisecond)},
			class: Transient, reason: ReasonRateLimited, rateLimited: true,
		},
		{
			name: "429 body limit.resetMs only", status: 429,
			body: fmt.Sprintf(`{"error":{"code":"rate_limited","message":"x","limit":{"remaining":0,"resetMs":%d}}}`, in(1500*time.Millisecond).UnixMilli()),
			kind: kindRate, code: "rate_limited",
			retryAfter: 1500 * time.Millisecond, reset: in(1500 * time.Millisecond),
			rl:    RateLimit{Remaining: 0, Known: true, Reset: in(1500 * time.Millisecond)},
			class: Transient, reason: ReasonRateLimited, rateLimited: true,
		},
		{
			name: "429 body resetMs preferred to reset", status: 429,
			body: fmt.Sprintf(`{"error":{"code":"rate_limited","message":"x","limit":{"remaining":0,"reset":%d,"resetMs":%d,"total":10}}}`,
				in(10*time.Second).Unix(), in(10250*time.Millisecond).UnixMilli()),
			kind:       kindRate,
			code:       "rate_limited",
			retryAfter: 10250 * time.Millisecond, reset: in(10250 * time.Millisecond),
			rl:    RateLimit{Limit: 10, Remaining: 0, Known: true, Reset: in(10250 * time.Millisecond)},
			class: Transient, reason: ReasonRateLimited, rateLimited: true,
		},
		{
			name: "429 X-RateLimit headers only", status: 429,
			header: map[string]string{"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": fmt.Sprint(in(20 * time.Second).Unix())},
			body:   `{"error":{"code":"rate_limited","message":"x"}}`,
			kind:   kindRate, code: "rate_limited",
			retryAfter: 20 * time.Second, reset: in(20 * time.Second),
			rl:    RateLimit{Limit: 50, Remaining: 0, Known: true, Reset: in(20 * time.Second)},
			class: Transient, reason: ReasonRateLimited, rateLimited: true,
		},
		{
			name: "429 Retry-After wins over the body's reset; the body's limit wins over headers", status: 429,
			header: map[string]string{"Retry-After": "5", "X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "3"},
			body:   fmt.Sprintf(`{"error":{"code":"rate_limited","message":"x","limit":{"remaining":0,"reset":%d,"total":20}}}`, in(time.Minute).Unix()),
			kind:   kindRate, code: "rate_limited",
			retryAfter: 5 * time.Second, reset: in(time.Minute),
			rl:    RateLimit{Limit: 20, Remaining: 0, Known: true, Reset: in(time.Minute)},
			class: Transient, reason: ReasonRateLimited, rateLimited: true,
		},
		{
			name: "429 that says nothing about when", status: 429,
			body: `{"error":{"code":"rate_limited","message":"x"}}`,
			kind: kindRate, code: "rate_limited",
			class: Transient, reason: ReasonRateLimited, rateLimited: true,
		},
		{
			name: "429 from a proxy, not JSON", status: 429,
			header: map[string]string{"Retry-After": "7", "Content-Type": "text/plain"},
			body:   "Too Many Requests\n",
			kind:   kindRate, message: "Too Many Requests",
			retryAfter: 7 * time.Second, reset: in(7 * time.Second),
			class: Transient, reason: ReasonRateLimited, rateLimited: true,
		},
		{
			name: "402 daily cap, reset in milliseconds", status: 402,
			body: fmt.Sprintf(`{"error":{"code":"payment_required","message":"Resource is limited - try again in 24 hours (more than 100, code: \"api-deployments-free-per-day\").","limit":{"total":100,"remaining":0,"reset":%d},"resource":"api-deployments-free-per-day"}}`,
				in(23*time.Hour).UnixMilli()),
			kind: kindPlan, code: "payment_required", message: "Resource is limited",
			retryAfter: 23 * time.Hour, reset: in(23 * time.Hour),
			rl:    RateLimit{Limit: 100, Remaining: 0, Known: true, Reset: in(23 * time.Hour)},
			class: Transient, reason: ReasonPlanLimit, rateLimited: true,
		},
		{
			name: "402 cap without a reset: the message says how long", status: 402,
			body: `{"error":{"code":"payment_required","message":"Resource is limited - try again in 24 hours (more than 100).","resource":"api-deployments-free-per-day"}}`,
			kind: kindPlan, code: "payment_required",
			retryAfter: 24 * time.Hour, reset: in(24 * time.Hour),
			class: Transient, reason: ReasonPlanLimit, rateLimited: true,
		},
		{
			name: "402 without a limit: the account is blocked", status: 402,
			body: `{"error":{"code":"payment_required","message":"The account is missing a payment"}}`,
			kind: kindAPI, code: "payment_required", message: "missing a payment",
			class: Fatal, reason: ReasonPaymentRequired,
		},
		{
			name: "400 missing_files", status: 400,
			body: `{"error":{"code":"missing_files","message":"Missing files","missing":["a","b"]}}`,
			kind: kindMissing, code: "missing_files", message: "Missing files",
			class: Permanent, reason: ReasonMissingFiles,
		},
		{
			name: "401", status: 401,
			body: `{"error":{"code":"forbidden","message":"Not authorized"}}`,
			kind: kindAPI, code: "forbidden", message: "Not authorized",
			class: Fatal, reason: ReasonUnauthorized,
		},
		{
			name: "403", status: 403,
			body: `{"error":{"code":"forbidden","message":"You don't have permission"}}`,
			kind: kindAPI, code: "forbidden",
			class: Fatal, reason: ReasonForbidden,
		},
		{
			name: "400", status: 400,
			body: `{"error":{"code":"bad_request","message":"Invalid request: name"}}`,
			kind: kindAPI, code: "bad_request", message: "Invalid request",
			class: Permanent, reason: ReasonBadRequest,
		},
		{
			name: "404", status: 404,
			body: `{"error":{"code":"not_found","message":"The deployment was not found"}}`,
			kind: kindAPI, code: "not_found",
			class: Permanent, reason: ReasonNotFound,
		},
		{
			name: "409", status: 409, body: `{"error":{"code":"conflict","message":"exists"}}`,
			kind: kindAPI, code: "conflict", class: Permanent, reason: ReasonConflict,
		},
		{
			name: "410", status: 410, body: `{"error":{"code":"gone","message":"gone"}}`,
			kind: kindAPI, code: "gone", class: Permanent, reason: ReasonGone,
		},
		{
			name: "422", status: 422, body: `{"error":{"code":"invalid","message":"bad"}}`,
			kind: kindAPI, code: "invalid", class: Permanent, reason: ReasonUnprocessable,
		},
		{
			name: "428", status: 428, body: `{"error":{"code":"precondition","message":"protection add-on"}}`,
			kind: kindAPI, code: "precondition", class: Permanent, reason: ReasonClientError,
		},
		{
			name: "408", status: 408, body: ``,
			kind: kindAPI, message: "", class: Transient, reason: ReasonTimeout,
		},
		{
			name: "500", status: 500, body: `{"error":{"code":"internal_server_error","message":"An unexpected error occurred"}}`,
			kind: kindAPI, code: "internal_server_error", class: Transient, reason: ReasonServerError,
		},
		{
			name: "503 empty body", status: 503, body: ``,
			kind: kindAPI, class: Transient, reason: ReasonServerError,
		},
		{
			name: "502 HTML from a proxy", status: 502,
			header: map[string]string{"Content-Type": "text/html"},
			body: "<html>\n<head><title>502 Bad Gateway</title><style>body{x:y}</style></head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n" +
				"<hr><center>nginx</center>\n</body>\n</html>\n",
			kind: kindAPI, message: "502 Bad Gateway nginx",
			class: Transient, reason: ReasonServerError,
		},
		{
			name: "error as a bare string", status: 404, body: `{"error":"Not Found"}`,
			kind: kindAPI, message: "Not Found", class: Permanent, reason: ReasonNotFound,
		},
		{
			name: "error fields at the top level", status: 400, body: `{"code":"bad_request","message":"flat"}`,
			kind: kindAPI, code: "bad_request", message: "flat", class: Permanent, reason: ReasonBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.mux.HandleFunc("GET /v13/deployments/{id}", func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Date"] = nil
				w.Header().Set("X-Vercel-Id", "iad1::req-1")
				w.Header().Set("Content-Type", "application/json")
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			})
			d, resp, err := b.client.GetDeployment(t.Context(), "dpl_1")
			if err == nil || d != nil {
				t.Fatalf("GetDeployment = %v, %v; want an error", d, err)
			}
			if resp == nil || resp.StatusCode != tt.status || resp.RequestID != "iad1::req-1" {
				t.Fatalf("Response = %+v, want status %d and the request id", resp, tt.status)
			}

			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("errors.As(%T, *APIError) = false", err)
			}
			if ae.StatusCode != tt.status || ae.Code != tt.code || ae.RequestID != "iad1::req-1" || ae.Endpoint != EndpointGetDeployment {
				t.Errorf("APIError = %+v, want status %d code %q", ae, tt.status, tt.code)
			}
			if !strings.Contains(ae.Message, tt.message) {
				t.Errorf("Message = %q, want it to contain %q", ae.Message, tt.message)
			}
			if strings.ContainsAny(ae.Message, "<>\n") {
				t.Errorf("Message = %q: want one line without markup", ae.Message)
			}
			if msg := err.Error(); !strings.Contains(msg, "iad1::req-1") || !strings.Contains(msg, fmt.Sprint(tt.status)) {
				t.Errorf("Error() = %q, want the status and request id", msg)
			}

			var (
				rl *RateLimitError
				pl *PlanLimitError
				mf *MissingFilesError
			)
			gotKind := kindAPI
			switch {
			case errors.As(err, &rl):
				gotKind = kindRate
				if rl.RetryAfter != tt.retryAfter || !rl.Reset.Equal(tt.reset) {
					t.Errorf("RetryAfter, Reset = %s, %s; want %s, %s", rl.RetryAfter, rl.Reset, tt.retryAfter, tt.reset)
				}
				if !sameRateLimit(rl.Limit, tt.rl) {
					t.Errorf("Limit = %+v, want %+v", rl.Limit, tt.rl)
				}
			case errors.As(err, &pl):
				gotKind = kindPlan
				if pl.RetryAfter != tt.retryAfter || !pl.Reset.Equal(tt.reset) || pl.Resource != "api-deployments-free-per-day" || pl.Total != tt.rl.Limit {
					t.Errorf("PlanLimitError = %+v, want RetryAfter %s, Reset %s, Total %d", pl, tt.retryAfter, tt.reset, tt.rl.Limit)
				}
			case errors.As(err, &mf):
				gotKind = kindMissing
				if strings.Join(mf.Missing, ",") != "a,b" {
					t.Errorf("Missing = %v", mf.Missing)
				}
			}
			if gotKind != tt.kind {
				t.Errorf("error type %T, want kind %d", err, tt.kind)
			}
			if tt.rl != (RateLimit{}) && !sameRateLimit(resp.RateLimit, tt.rl) {
				t.Errorf("Response.RateLimit = %+v, want %+v", resp.RateLimit, tt.rl)
			}

			want := Decision{Class: tt.class, Reason: tt.reason, RetryAfter: tt.retryAfter, RateLimited: tt.rateLimited}
			if got := Classify(err); got != want {
				t.Errorf("Classify = %+v, want %+v", got, want)
			}
		})
	}
}

func TestSpecialisedErrorsUnwrapToAPIError(t *testing.T) {
	t.Parallel()
	base := APIError{Endpoint: EndpointCreateDeployment, StatusCode: 429, Code: "rate_limited", Message: "m", RequestID: "r"}
	errs := []error{
		&RateLimitError{APIError: base, RetryAfter: time.Second},
		&PlanLimitError{APIError: base, Resource: "x"},
		&MissingFilesError{APIError: base, Missing: []string{"a"}},
	}
	for _, err := range errs {
		wrapped := fmt.Errorf("step create deployment: %w", err)
		var ae *APIError
		if !errors.As(wrapped, &ae) || *ae != base {
			t.Errorf("errors.As(%T, *APIError) = %+v, want %+v", err, ae, base)
		}
		if !strings.HasPrefix(err.Error(), base.Error()) {
			t.Errorf("%T.Error() = %q, want it to start with %q", err, err.Error(), base.Error())
		}
	}
}

func TestErrorStrings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{&APIError{Endpoint: EndpointGetProject, StatusCode: 404, Code: "not_found", Message: "no such project", RequestID: "iad1::x"},
			"vercel: projects.get: 404 not_found: no such project (request id iad1::x)"},
		{&APIError{StatusCode: 503}, "vercel: 503: Service Unavailable"},
		{&RateLimitError{APIError: APIError{Endpoint: EndpointCreateDeployment, StatusCode: 429, Code: "rate_limited", Message: "slow"}, RetryAfter: 30 * time.Second},
			"vercel: deployments.create: 429 rate_limited: slow; retry after 30s"},
		{&PlanLimitError{APIError: APIError{Endpoint: EndpointCreateDeployment, StatusCode: 402, Code: "payment_required", Message: "cap"}, RetryAfter: time.Hour},
			"vercel: deployments.create: 402 payment_required: cap; retry after 1h0m0s"},
		{&MissingFilesError{APIError: APIError{Endpoint: EndpointCreateDeployment, StatusCode: 400, Code: "missing_files", Message: "Missing files"}, Missing: []string{"a", "b"}},
			"vercel: deployments.create: 400 missing_files: Missing files; 2 missing files"},
		{&NetworkError{Endpoint: EndpointGetDeployment, Method: "GET", Path: "/v13/deployments/dpl_1", RequestTimeout: time.Second, Err: errors.New("context deadline exceeded")},
			"vercel: deployments.get: GET /v13/deployments/dpl_1: no answer within 1s: context deadline exceeded"},
		{&DecodeError{Endpoint: EndpointGetProject, StatusCode: 200, Err: errors.New("empty body")},
			"vercel: projects.get: decoding 200 answer: empty body"},
		{&InvalidArgumentError{Endpoint: EndpointGetProject, Argument: "idOrName", Reason: "must not be empty"},
			"vercel: projects.get: invalid argument idOrName: must not be empty"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q\nwant      %q", got, tt.want)
		}
	}
}

func TestSnippet(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("word ", 100)
	tests := []struct {
		body, want string
	}{
		{"  plain   text\n\twith space ", "plain text with space"},
		{"<html><head><title>T</title></head><body><script>var a = '<b>';</script><p>Hello <b>there</b></p></body></html>", "Hello there"},
		{"bad \xff utf8", "bad utf8"},
		{long, strings.TrimSpace(long)[:snippetLen] + "…"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := snippet([]byte(tt.body)); got != tt.want {
			t.Errorf("snippet(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestRetryAfterFromMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		msg  string
		want time.Duration
	}{
		{`Resource is limited - try again in 24 hours (more than 100, code: "api-deployments-free-per-day").`, 24 * time.Hour},
		{"Try again in 1 hour.", time.Hour},
		{"try again in 30 minutes", 30 * time.Minute},
		{"try again in 10 seconds", 10 * time.Second},
		{"try again in 2 days", 48 * time.Hour},
		{"try again in a while", 0},
		{"try again in 5 fortnights", 0},
		{"try again in", 0},
		{"no hint", 0},
	}
	for _, tt := range tests {
		if got := retryAfterFromMessage(tt.msg); got != tt.want {
			t.Errorf("retryAfterFromMessage(%q) = %s, want %s", tt.msg, got, tt.want)
		}
	}
}
