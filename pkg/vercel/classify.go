package vercel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// Class says what a caller should do after an error.
type Class int

const (
	// Transient errors may succeed later: wait (Decision.RetryAfter when
	// set, else the caller's backoff) and try again.
	Transient Class = iota + 1
	// Permanent errors will fail the same way again: fail the job.
	Permanent
	// Fatal errors will fail every job the same way (a rejected token):
	// stop taking work instead of failing the whole queue.
	Fatal
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	case Fatal:
		return "fatal"
	}
	return "none"
}

// Reasons: short fixed strings, usable as metric labels.
const (
	ReasonNone             = "none"
	ReasonRateLimited      = "rate_limited"
	ReasonPlanLimit        = "plan_limit"
	ReasonPaymentRequired  = "payment_required"
	ReasonServerError      = "server_error"
	ReasonNetwork          = "network"
	ReasonTimeout          = "timeout"
	ReasonTooEarly         = "too_early"
	ReasonUnauthorized     = "unauthorized"
	ReasonForbidden        = "forbidden"
	ReasonBadRequest       = "bad_request"
	ReasonMissingFiles     = "missing_files"
	ReasonNotFound         = "not_found"
	ReasonConflict         = "conflict"
	ReasonGone             = "gone"
	ReasonUnprocessable    = "unprocessable"
	ReasonClientError      = "client_error"
	ReasonUnexpectedStatus = "unexpected_status"
	ReasonInvalidArgument  = "invalid_argument"
	ReasonDecode           = "decode"
	ReasonCancelled        = "cancelled"
	ReasonNoAuthorization  = "no_authorization"
	ReasonBuildsFull       = "builds_full"
	ReasonCapReached       = "cap_reached"
	ReasonUnknown          = "unknown"
)

// Reasons lists every Reason Classify can return, so that metrics can
// pre-create their series.
func Reasons() []string {
	return []string{
		ReasonNone, ReasonRateLimited, ReasonPlanLimit, ReasonPaymentRequired,
		ReasonServerError, ReasonNetwork, ReasonTimeout, ReasonTooEarly,
		ReasonUnauthorized, ReasonForbidden, ReasonBadRequest, ReasonMissingFiles,
		ReasonNotFound, ReasonConflict, ReasonGone, ReasonUnprocessable,
		ReasonClientError, ReasonUnexpectedStatus, ReasonInvalidArgument,
		ReasonDecode, ReasonCancelled, ReasonNoAuthorization, ReasonBuildsFull, ReasonUnknown,
	}
}

// Decision is what Classify makes of an error.
type Decision struct {
	Class  Class
	Reason string // one of the Reason constants
	// RetryAfter is how long the API asked to wait; 0 when it did not say.
	RetryAfter time.Duration
	// RateLimited marks waits imposed by the API's limits (429, plan cap):
	// they are not failures and should not use up the job's attempts.
	RateLimited bool
	// Busy marks a capacity that is full for now (the team's concurrent
	// builds): not a failure either, but with no announced end, so it is
	// waited on with the caller's backoff rather than a reset.
	Busy bool
}

// Classify tells the caller whether an error from this package is worth a
// retry. The retry policy itself (backoff, attempt counts) belongs to the
// caller.
//
// A cancelled context is Permanent with reason "cancelled": the caller gave
// up, and knows better than this package whether the work should be handed
// back. Any deadline (the per-request timeout or the caller's) is Transient
// with reason "timeout". A 402 is Fatal unless it carries a limit, as it
// then means the account itself is blocked. Errors this package does not
// know are Transient with reason "unknown", so that a bounded retry policy
// rather than a guess decides.
func Classify(err error) Decision {
	if err == nil {
		return Decision{Reason: ReasonNone}
	}
	var (
		ce  *CapError
		bf  *BuildsFullError
		mf  *MissingFilesError
		rl  *RateLimitError
		pl  *PlanLimitError
		ae  *APIError
		ia  *InvalidArgumentError
		de  *DecodeError
		ne  *NetworkError
		nte net.Error
	)
	switch {
	case errors.As(err, &ce):
		return Decision{Class: Permanent, Reason: ReasonCapReached}
	case errors.As(err, &bf):
		return Decision{Class: Transient, Reason: ReasonBuildsFull, RetryAfter: bf.RetryAfter, Busy: true}
	case errors.As(err, &mf):
		return Decision{Class: Permanent, Reason: ReasonMissingFiles}
	case errors.As(err, &rl):
		return Decision{Class: Transient, Reason: ReasonRateLimited, RetryAfter: rl.RetryAfter, RateLimited: true}
	case errors.As(err, &pl):
		return Decision{Class: Transient, Reason: ReasonPlanLimit, RetryAfter: pl.RetryAfter, RateLimited: true}
	case errors.Is(err, ErrNoAuthorization):
		return Decision{Class: Transient, Reason: ReasonNoAuthorization}
	case errors.As(err, &ae):
		return classifyStatus(ae.StatusCode)
	case errors.As(err, &ia):
		return Decision{Class: Permanent, Reason: ReasonInvalidArgument}
	case errors.As(err, &de):
		return Decision{Class: Permanent, Reason: ReasonDecode}
	case errors.Is(err, context.Canceled):
		return Decision{Class: Permanent, Reason: ReasonCancelled}
	case errors.Is(err, context.DeadlineExceeded):
		return Decision{Class: Transient, Reason: ReasonTimeout}
	case errors.As(err, &ne):
		if ne.Timeout() {
			return Decision{Class: Transient, Reason: ReasonTimeout}
		}
		return Decision{Class: Transient, Reason: ReasonNetwork}
	case errors.As(err, &nte):
		if nte.Timeout() {
			return Decision{Class: Transient, Reason: ReasonTimeout}
		}
		return Decision{Class: Transient, Reason: ReasonNetwork}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return Decision{Class: Transient, Reason: ReasonNetwork}
	}
	return Decision{Class: Transient, Reason: ReasonUnknown}
}

// classifyStatus decides for an answer that has no more specific error type.
func classifyStatus(status int) Decision {
	switch {
	case status == http.StatusUnauthorized:
		return Decision{Class: Fatal, Reason: ReasonUnauthorized}
	case status == http.StatusForbidden:
		return Decision{Class: Fatal, Reason: ReasonForbidden}
	case status == http.StatusPaymentRequired:
		return Decision{Class: Fatal, Reason: ReasonPaymentRequired}
	case status == http.StatusTooManyRequests:
		return Decision{Class: Transient, Reason: ReasonRateLimited, RateLimited: true}
	case status == http.StatusRequestTimeout:
		return Decision{Class: Transient, Reason: ReasonTimeout}
	case status == http.StatusTooEarly:
		return Decision{Class: Transient, Reason: ReasonTooEarly}
	case status >= 500 && status <= 599:
		return Decision{Class: Transient, Reason: ReasonServerError}
	case status == http.StatusBadRequest:
		return Decision{Class: Permanent, Reason: ReasonBadRequest}
	case status == http.StatusNotFound:
		return Decision{Class: Permanent, Reason: ReasonNotFound}
	case status == http.StatusConflict:
		return Decision{Class: Permanent, Reason: ReasonConflict}
	case status == http.StatusGone:
		return Decision{Class: Permanent, Reason: ReasonGone}
	case status == http.StatusUnprocessableEntity:
		return Decision{Class: Permanent, Reason: ReasonUnprocessable}
	case status >= 400 && status <= 499:
		return Decision{Class: Permanent, Reason: ReasonClientError}
	}
	return Decision{Class: Permanent, Reason: ReasonUnexpectedStatus}
}
