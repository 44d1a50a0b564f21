package vercel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	api := func(status int) error { return &APIError{Endpoint: EndpointGetProject, StatusCode: status} }
	tests := []struct {
		name string
		err  error
		want Decision
	}{
		{"nil", nil, Decision{Reason: ReasonNone}},
		{"429", &RateLimitError{APIError: APIError{StatusCode: 429}, RetryAfter: 12 * time.Second},
			Decision{Class: Transient, Reason: ReasonRateLimited, RetryAfter: 12 * time.Second, RateLimited: true}},
		{"429 wrapped", fmt.Errorf("step: %w", &RateLimitError{APIError: APIError{StatusCode: 429}, RetryAfter: time.Second}),
			Decision{Class: Transient, Reason: ReasonRateLimited, RetryAfter: time.Second, RateLimited: true}},
		{"bare 429 APIError", api(429), Decision{Class: Transient, Reason: ReasonRateLimited, RateLimited: true}},
		{"builds full", &BuildsFullError{APIError: APIError{StatusCode: 429, Code: CodeBuildsRateLimited}}, Decision{Class: Transient, Reason: ReasonBuildsFull, Busy: true}},
		{"402 plan cap", &PlanLimitError{APIError: APIError{StatusCode: 402}, RetryAfter: 3 * time.Hour},
			Decision{Class: Transient, Reason: ReasonPlanLimit, RetryAfter: 3 * time.Hour, RateLimited: true}},
		{"402 blocked", api(402), Decision{Class: Fatal, Reason: ReasonPaymentRequired}},
		{"missing files", &MissingFilesError{APIError: APIError{StatusCode: 400}}, Decision{Class: Permanent, Reason: ReasonMissingFiles}},
		{"401", api(401), Decision{Class: Fatal, Reason: ReasonUnauthorized}},
		{"403", api(403), Decision{Class: Fatal, Reason: ReasonForbidden}},
		{"400", api(400), Decision{Class: Permanent, Reason: ReasonBadRequest}},
		{"404", api(404), Decision{Class: Permanent, Reason: ReasonNotFound}},
		{"409", api(409), Decision{Class: Permanent, Reason: ReasonConflict}},
		{"410", api(410), Decision{Class: Permanent, Reason: ReasonGone}},
		{"422", api(422), Decision{Class: Permanent, Reason: ReasonUnprocessable}},
		{"426", api(426), Decision{Class: Permanent, Reason: ReasonClientError}},
		{"428", api(428), Decision{Class: Permanent, Reason: ReasonClientError}},
		{"408", api(408), Decision{Class: Transient, Reason: ReasonTimeout}},
		{"425", api(425), Decision{Class: Transient, Reason: ReasonTooEarly}},
		{"500", api(500), Decision{Class: Transient, Reason: ReasonServerError}},
		{"502", api(502), Decision{Class: Transient, Reason: ReasonServerError}},
		{"503", api(503), Decision{Class: Transient, Reason: ReasonServerError}},
		{"304", api(304), Decision{Class: Permanent, Reason: ReasonUnexpectedStatus}},
		{"per-request timeout", &NetworkError{RequestTimeout: time.Second, Err: context.DeadlineExceeded},
			Decision{Class: Transient, Reason: ReasonTimeout}},
		{"caller's deadline", &NetworkError{Err: context.DeadlineExceeded}, Decision{Class: Transient, Reason: ReasonTimeout}},
		{"bare deadline", context.DeadlineExceeded, Decision{Class: Transient, Reason: ReasonTimeout}},
		{"caller cancelled", &NetworkError{Err: context.Canceled}, Decision{Class: Permanent, Reason: ReasonCancelled}},
		{"bare cancelled", fmt.Errorf("waiting: %w", context.Canceled), Decision{Class: Permanent, Reason: ReasonCancelled}},
		{"connection refused", &NetworkError{Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}},
			Decision{Class: Transient, Reason: ReasonNetwork}},
		{"connection reset, bare", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, Decision{Class: Transient, Reason: ReasonNetwork}},
		{"net timeout, bare", &net.DNSError{Err: "i/o timeout", IsTimeout: true}, Decision{Class: Transient, Reason: ReasonTimeout}},
		{"unexpected EOF", &NetworkError{Err: io.ErrUnexpectedEOF}, Decision{Class: Transient, Reason: ReasonNetwork}},
		{"bare unexpected EOF", io.ErrUnexpectedEOF, Decision{Class: Transient, Reason: ReasonNetwork}},
		{"EOF", fmt.Errorf("read: %w", io.EOF), Decision{Class: Transient, Reason: ReasonNetwork}},
		{"decode", &DecodeError{Err: errors.New("x")}, Decision{Class: Permanent, Reason: ReasonDecode}},
		{"invalid argument", &InvalidArgumentError{}, Decision{Class: Permanent, Reason: ReasonInvalidArgument}},
		{"unknown", errors.New("something else"), Decision{Class: Transient, Reason: ReasonUnknown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Classify(tt.err)
			if got != tt.want {
				t.Errorf("Classify(%v) = %+v, want %+v", tt.err, got, tt.want)
			}
			if !slices.Contains(Reasons(), got.Reason) {
				t.Errorf("reason %q is not listed by Reasons()", got.Reason)
			}
		})
	}
}

func TestClassString(t *testing.T) {
	t.Parallel()
	tests := map[Class]string{Transient: "transient", Permanent: "permanent", Fatal: "fatal", 0: "none", 99: "none"}
	for c, want := range tests {
		if got := c.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), got, want)
		}
	}
}

func TestReasonsAreDistinct(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, r := range Reasons() {
		if seen[r] || r == "" {
			t.Errorf("reason %q empty or listed twice", r)
		}
		seen[r] = true
	}
}
