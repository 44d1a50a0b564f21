package vercelsim_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
	"github.com/deployq/deployq/pkg/vercel/vercelsim"
)

func TestRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{RateLimits: map[vercel.Endpoint]vercelsim.Limit{
		vercel.EndpointGetProject: {Requests: 2, Window: 10 * time.Second},
	}})
	b.createProject(t, "rl")
	// Start the window half-way through a second, to check rounding.
	b.clock.Advance(500 * time.Millisecond)
	resetS := epoch.Unix() + 11 // 10.5 s later, rounded up
	resetMs := epoch.UnixMilli() + 10_500

	headers := func(r response, remaining int) {
		t.Helper()
		h := r.header
		if h.Get("X-RateLimit-Limit") != "2" || h.Get("X-RateLimit-Remaining") != fmt.Sprint(remaining) ||
			h.Get("X-RateLimit-Reset") != fmt.Sprint(resetS) {
			t.Errorf("X-RateLimit headers: limit %q remaining %q reset %q, want 2 %d %d",
				h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Reset"), remaining, resetS)
		}
	}
	r := b.do(t, "GET", "/v9/projects/rl", nil)
	want(t, r, 200)
	headers(r, 1)
	r = b.do(t, "GET", "/v9/projects/rl", nil)
	want(t, r, 200)
	headers(r, 0)

	r = b.do(t, "GET", "/v9/projects/rl", nil)
	want(t, r, 429)
	headers(r, 0)
	wantBody := fmt.Sprintf(`{"error":{"code":"rate_limited","message":"Rate limit exceeded","limit":{"remaining":0,"reset":%d,"resetMs":%d,"total":2}}}`, resetS, resetMs)
	if string(r.body) != wantBody {
		t.Errorf("429 body\n got %s\nwant %s", r.body, wantBody)
	}
	if got := r.header.Get("Retry-After"); got != "10" {
		t.Errorf("Retry-After = %q, want 10", got)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}

	// Limits are per endpoint and per team.
	r = b.do(t, "POST", "/v11/projects", map[string]any{"name": "other"})
	want(t, r, 200)
	if r.header.Get("X-RateLimit-Limit") != "" {
		t.Error("an unlimited endpoint sends X-RateLimit headers")
	}
	// Another team's call is not limited (its answer is a 404: the
	// project is the first team's).
	want(t, b.do(t, "GET", "/v9/projects/rl?teamId=team_b", nil), 404)

	// Retry-After counts down, never to 0, and the window ends on time.
	b.clock.Advance(9500 * time.Millisecond)
	r = b.do(t, "GET", "/v9/projects/rl", nil)
	want(t, r, 429)
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After half a second before the reset = %q, want 1", got)
	}
	b.clock.Advance(500 * time.Millisecond)
	r = b.do(t, "GET", "/v9/projects/rl", nil)
	want(t, r, 200)
	if r.header.Get("X-RateLimit-Remaining") != "1" {
		t.Errorf("new window: remaining %q", r.header.Get("X-RateLimit-Remaining"))
	}

	st := b.sim.Stats()
	if st.RateLimited[vercel.EndpointGetProject] != 2 || st.Responses[vercel.EndpointGetProject][429] != 2 {
		t.Errorf("RateLimited = %v", st.RateLimited)
	}

	// SetLimit changes the budget mid-test; the zero Limit lifts it.
	b.sim.SetLimit(vercel.EndpointGetProject, vercelsim.Limit{})
	for range 5 {
		want(t, b.do(t, "GET", "/v9/projects/rl", nil), 200)
	}
}

func TestDailyDeploymentCap(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{DailyDeploymentCap: 2})
	b.createProject(t, "capped")
	sha := b.upload(t, source("x"))
	b.clock.Advance(1500 * time.Millisecond)
	for range 2 {
		want(t, b.do(t, "POST", "/v13/deployments", deploymentBody("capped", sha, 1)), 200)
	}
	// Refused and invalid requests do not use up the cap.
	want(t, b.do(t, "POST", "/v13/deployments", deploymentBody("capped", sha1hex([]byte("nope")), 1)), 400)

	r := b.do(t, "POST", "/v13/deployments", deploymentBody("capped", sha, 1))
	want(t, r, http.StatusPaymentRequired)
	reset := epoch.Add(1500*time.Millisecond + 24*time.Hour).UnixMilli()
	wantBody := fmt.Sprintf(`{"error":{"code":"payment_required","message":"Resource is limited - try again in 24 hours (more than 2, code: \"api-deployments-free-per-day\").","limit":{"total":2,"remaining":0,"reset":%d},"resource":"api-deployments-free-per-day"}}`, reset)
	if string(r.body) != wantBody {
		t.Errorf("402 body\n got %s\nwant %s", r.body, wantBody)
	}
	if n := len(b.sim.Deployments()); n != 2 {
		t.Errorf("%d deployments, want 2", n)
	}
	// The cap is per team.
	want(t, b.do(t, "POST", "/v11/projects?teamId=team_other", map[string]any{"name": "capped"}), 200)
	want(t, b.do(t, "POST", "/v13/deployments?teamId=team_other", deploymentBody("capped", sha, 1)), 200)

	b.clock.Advance(24*time.Hour - time.Millisecond)
	want(t, b.do(t, "POST", "/v13/deployments", deploymentBody("capped", sha, 1)), 402)
	b.clock.Advance(time.Millisecond)
	want(t, b.do(t, "POST", "/v13/deployments", deploymentBody("capped", sha, 1)), 200)

	if st := b.sim.Stats(); st.PaymentRequired != 2 || st.DeploymentsCreated["capped"] != 4 {
		t.Errorf("PaymentRequired %d DeploymentsCreated %v", st.PaymentRequired, st.DeploymentsCreated)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{TeamID: "team_a"})
	for _, tc := range []struct {
		desc   string
		header string
		query  string
		status int
		body   string
	}{
		{"no token", "", "?teamId=team_a", 401, `{"error":{"code":"forbidden","message":"The request is missing an authentication token","missingToken":true}}`},
		{"not bearer", "Basic abc", "?teamId=team_a", 401, `{"error":{"code":"forbidden","message":"The request is missing an authentication token","missingToken":true}}`},
		{"wrong token", "Bearer nope", "?teamId=team_a", 401, `{"error":{"code":"forbidden","message":"Not authorized","invalidToken":true}}`},
		{"other team", "Bearer " + testToken, "?teamId=team_b", 403, `{"error":{"code":"forbidden","message":"You do not have permission to access this resource."}}`},
		{"no team", "Bearer " + testToken, "", 403, `{"error":{"code":"forbidden","message":"You do not have permission to access this resource."}}`},
		{"right", "Bearer " + testToken, "?teamId=team_a", 404, `{"error":{"code":"not_found","message":"Project not found"}}`},
	} {
		req := b.request(t, "GET", "/v9/projects/x"+tc.query, nil)
		req.Header.Del("Authorization")
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		r := b.send(t, req)
		if r.status != tc.status || string(r.body) != tc.body {
			t.Errorf("%s: %d %s, want %d %s", tc.desc, r.status, r.body, tc.status, tc.body)
		}
	}
}

func TestUnknownRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t, vercelsim.Config{})
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/nothing"},
		{"PUT", "/v9/projects/x"},
		{"GET", "/v11/projects"},
		{"GET", "/"},
	} {
		r := b.do(t, tc.method, tc.path, nil)
		want(t, r, 404)
		if r.errorCode(t) != "not_found" {
			t.Errorf("%s %s: code %q", tc.method, tc.path, r.errorCode(t))
		}
	}
	if n := b.sim.Stats().UnknownRoutes; n != 4 {
		t.Errorf("UnknownRoutes = %d", n)
	}
}

func TestRateLimitWindowsCountAtOnce(t *testing.T) {
	t.Parallel()
	// 2 per 10 s and 3 per minute: the minute binds after the third call,
	// the 10 s window before it.
	b := setup(t, vercelsim.Config{RateLimits: map[vercel.Endpoint]vercelsim.Limit{
		vercel.EndpointGetProject: {Requests: 2, Window: 10 * time.Second, Caps: []vercelsim.Limit{{Requests: 3, Window: time.Minute}}},
	}})
	b.createProject(t, "mw")
	get := func(code int, limit, remaining string) response {
		t.Helper()
		r := b.do(t, "GET", "/v9/projects/mw", nil)
		want(t, r, code)
		if h := r.header; h.Get("X-RateLimit-Limit") != limit || h.Get("X-RateLimit-Remaining") != remaining {
			t.Errorf("headers: limit %q remaining %q, want %s %s", h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), limit, remaining)
		}
		return r
	}
	get(200, "2", "1") // 10 s: 1 left, minute: 2 left
	get(200, "2", "0") // 10 s: 0 left, minute: 1 left
	r := get(429, "2", "0")
	if got := r.header.Get("Retry-After"); got != "10" {
		t.Errorf("Retry-After in the full 10 s window = %q, want 10", got)
	}
	b.clock.Advance(10 * time.Second)
	get(200, "3", "0") // 10 s: 1 left, minute: 0 left (the fewest)
	r = get(429, "3", "0")
	if got := r.header.Get("Retry-After"); got != "50" {
		t.Errorf("Retry-After in the full minute = %q, want 50", got)
	}
	// Once the minute turns both windows start afresh, and the two
	// refused calls were counted in neither.
	b.clock.Advance(50 * time.Second)
	get(200, "2", "1")
	if st := b.sim.Stats(); st.RateLimited[vercel.EndpointGetProject] != 2 {
		t.Errorf("RateLimited = %v, want 2", st.RateLimited)
	}
}
