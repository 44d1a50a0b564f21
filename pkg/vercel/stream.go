package vercel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync/atomic"
	"time"
)

// StreamIdleError is the cause of a stream that went silent for longer
// than the client's stream idle timeout (WithStreamIdleTimeout). It comes
// wrapped in a *NetworkError, and Classify sorts it as a transient
// timeout: the stream may be reopened, or the state read another way.
type StreamIdleError struct {
	Idle time.Duration
}

func (e *StreamIdleError) Error() string {
	return fmt.Sprintf("stream silent for %s", e.Idle)
}

// Timeout reports true, as net.Error does for a deadline.
func (e *StreamIdleError) Timeout() bool { return true }

// stream is the body of a 2xx answer being read as it arrives. A timer
// bounds first the wait for the answer's headers (the per-request timeout)
// and then every silence of the body (the idle timeout); it cancels the
// attempt's context with the matching cause.
type stream struct {
	c       *Client
	r       request
	parent  context.Context // the caller's
	attempt context.Context
	cancel  context.CancelCauseFunc
	timer   *time.Timer // nil when neither bound is set
	idle    time.Duration
	body    io.ReadCloser
}

// Causes of a cancelled attempt, told apart by networkErrorOf.
var (
	errHeaderTimeout = errors.New("vercel: no answer within the request timeout")
	errStreamIdle    = errors.New("vercel: stream idle")
)

// openStream sends one request through the limiter, as do does, and
// returns the body of a 2xx answer unread. The Limiter and the
// RequestObserver hear about the answer when its headers arrive: the
// budget learns from them, and the latency metric measures the wait for
// an answer, not the minutes a stream lasts. Any other answer is read
// whole and turned into a typed error, exactly as for every other call.
func (c *Client) openStream(ctx context.Context, r request) (*stream, *Response, error) {
	var s *stream
	resp, err := c.budgeted(ctx, r.ep, func() (resp *Response, err error) {
		s, resp, err = c.sendStream(ctx, r)
		return resp, err
	})
	return s, resp, err
}

func (c *Client) sendStream(ctx context.Context, r request) (*stream, *Response, error) {
	attempt, cancel := context.WithCancelCause(ctx)
	s := &stream{c: c, r: r, parent: ctx, attempt: attempt, cancel: cancel, idle: c.cfg.streamIdle}
	// The timer's function reads which phase the stream is in, so one
	// timer serves both bounds.
	var headersIn atomic.Bool
	if c.cfg.timeout > 0 || s.idle > 0 {
		first := c.cfg.timeout
		if first <= 0 {
			first = s.idle
		}
		s.timer = time.AfterFunc(first, func() {
			if headersIn.Load() {
				cancel(errStreamIdle)
				return
			}
			if c.cfg.timeout > 0 {
				cancel(errHeaderTimeout)
			}
		})
	}

	req, err := c.newHTTPRequest(attempt, r)
	if err != nil {
		s.close()
		return nil, nil, err
	}
	start := time.Now()
	hresp, err := c.cfg.httpClient.Do(req)
	if err != nil {
		c.observe(r.ep, 0, time.Since(start))
		err = s.networkError(err)
		s.close()
		return nil, nil, err
	}
	resp, ref := c.newResponse(hresp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _, readErr := readBody(hresp.Body)
		c.observe(r.ep, resp.StatusCode, time.Since(start))
		defer s.close()
		if readErr != nil {
			return nil, resp, s.networkError(readErr)
		}
		return nil, resp, c.errorFromAnswer(r.ep, resp, data, ref)
	}
	c.observe(r.ep, resp.StatusCode, time.Since(start))
	headersIn.Store(true)
	s.body = hresp.Body
	s.touch()
	return s, resp, nil
}

// touch restarts the idle bound: a byte arrived.
func (s *stream) touch() {
	if s.timer == nil {
		return
	}
	if s.idle > 0 {
		s.timer.Reset(s.idle)
		return
	}
	s.timer.Stop() // only the header phase was bounded
}

// Read reads the body and restarts the idle bound whenever bytes arrive.
// Errors of the connection come back as readError, so the decoder's own
// errors (malformed JSON) can be told from them.
func (s *stream) Read(p []byte) (int, error) {
	n, err := s.body.Read(p)
	if n > 0 {
		s.touch()
	}
	if err != nil && err != io.EOF {
		return n, &readError{err: err}
	}
	return n, err
}

// close releases the connection and the timer. Closing a body that was
// not read to its end drops the connection rather than reusing it, which
// is what ending a stream early has to do.
func (s *stream) close() {
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.body != nil {
		_ = s.body.Close()
	}
	s.cancel(nil)
}

// readError marks an error of the connection under a decoder.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// networkError describes a stream that broke, saying which bound ended it:
// the caller's context, the per-request timeout before the headers, or the
// idle timeout after them. Like networkError, it leaves out the URL and
// its query.
func (s *stream) networkError(err error) error {
	ne := &NetworkError{Endpoint: s.r.ep, Method: s.r.method, Path: s.r.path, Err: err}
	var re *readError
	if errors.As(err, &re) {
		ne.Err = re.err
	}
	var ue *url.Error
	if errors.As(ne.Err, &ue) {
		ne.Err = ue.Err
	}
	switch cause := context.Cause(s.attempt); {
	case s.parent.Err() != nil:
		ne.Err = s.parent.Err()
	case errors.Is(cause, errHeaderTimeout):
		ne.Err = context.DeadlineExceeded
		ne.RequestTimeout = s.c.cfg.timeout
	case errors.Is(cause, errStreamIdle):
		ne.Err = &StreamIdleError{Idle: s.idle}
	}
	return ne
}
