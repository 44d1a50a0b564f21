package vercelsim

import (
	"io"
	"net/http"
	"time"

	"github.com/deployq/deployq/pkg/vercel"
)

type faultOutcome int

const (
	faultNone faultOutcome = iota
	faultErrorBefore
	faultErrorAfter
	faultHang
	faultHangAfter
)

// drawFaultLocked picks this request's fate with one draw, so the
// configured probabilities are exactly those of disjoint outcomes.
func (s *Server) drawFaultLocked(f Fault) faultOutcome {
	if f.total() == 0 {
		return faultNone
	}
	u := s.rng.Float64()
	for _, o := range []struct {
		p       float64
		outcome faultOutcome
	}{
		{f.ErrorBefore, faultErrorBefore},
		{f.ErrorAfter, faultErrorAfter},
		{f.Hang, faultHang},
		{f.HangAfter, faultHangAfter},
	} {
		if u < o.p {
			return o.outcome
		}
		u -= o.p
	}
	return faultNone
}

func (s *Server) latencyLocked(f Fault) time.Duration {
	d := s.cfg.Latency + f.Latency
	if s.cfg.LatencyJitter > 0 {
		d += time.Duration(s.rng.Int64N(int64(s.cfg.LatencyJitter)))
	}
	return d
}

// hang blocks until the client gives up or the Server is closed. It never
// outlives the request: the request's context ends when its connection
// does. net/http notices a closed connection only once the request body
// has been read, so hang reads what the handler did not.
func (s *Server) hang(r *http.Request, ep vercel.Endpoint) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, s.cfg.MaxFileSize+maxJSONBody))
	select {
	case <-r.Context().Done():
		s.abandoned(ep)
	case <-s.closed:
		s.abandoned(ep)
		// Dropping the connection is what a lost answer looks like to the
		// client; net/http recovers this panic without logging it.
		panic(http.ErrAbortHandler)
	}
}

// serverError is an injected 5xx. Before the side effect it is a 500 or a
// 503; after it a 500 or a 502, and the 502 is a gateway's plain-text page,
// not JSON, because that is what a client meets when Vercel's edge loses
// the origin's answer.
func (s *Server) serverError(after bool) reply {
	s.mu.Lock()
	coin := s.rng.IntN(2)
	s.mu.Unlock()
	switch {
	case coin == 0:
		return errorReply(http.StatusInternalServerError, apiError{
			Code: "internal_server_error", Message: "An unexpected internal error occurred",
		})
	case after:
		return reply{
			status:      http.StatusBadGateway,
			raw:         []byte("502 Bad Gateway: the origin's answer was lost\n"),
			contentType: "text/plain; charset=utf-8",
		}
	default:
		return errorReply(http.StatusServiceUnavailable, apiError{
			Code: "service_unavailable", Message: "The service is temporarily unavailable",
		})
	}
}

func (s *Server) faulted(ep vercel.Endpoint, o faultOutcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fc := s.stats.faults[ep]
	switch o {
	case faultErrorBefore:
		fc.ErrorBefore++
	case faultErrorAfter:
		fc.ErrorAfter++
	case faultHang:
		fc.Hang++
	case faultHangAfter:
		fc.HangAfter++
	}
	s.stats.faults[ep] = fc
}
