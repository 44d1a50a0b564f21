package worker

import (
	"context"
	"sync"

	"github.com/deployq/deployq/internal/clock"
	"github.com/deployq/deployq/pkg/vercel"
)

// credentialGate stops the whole worker from taking work while the API
// refuses its token (401/403): dead-lettering every queued request for a
// problem of the worker's own would be far worse than waiting.
type credentialGate struct {
	mu     sync.Mutex
	bad    bool
	okCh   chan struct{} // closed while credentials are fine
	failCh chan struct{} // closed while credentials are refused
}

func (g *credentialGate) init() {
	g.okCh = make(chan struct{})
	close(g.okCh)
	g.failCh = make(chan struct{})
}

func (g *credentialGate) ok() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.bad
}

func (g *credentialGate) fail() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.bad {
		g.bad = true
		g.okCh = make(chan struct{})
		close(g.failCh)
	}
}

func (g *credentialGate) recover() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.bad {
		g.bad = false
		close(g.okCh)
		g.failCh = make(chan struct{})
	}
}

func (g *credentialGate) channels() (ok, fail <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.okCh, g.failCh
}

// waitOK blocks while credentials are refused; false when ctx ended first.
func (g *credentialGate) waitOK(ctx context.Context) bool {
	ok, _ := g.channels()
	select {
	case <-ok:
		return true
	case <-ctx.Done():
		return false
	}
}

// credentialsProbeName is looked up to test the token: only the status
// code matters, and 404 (or 200) means the API accepts the token.
const credentialsProbeName = "deployq-credentials-probe"

// checkCredentials asks the API once, at start, whether it accepts the
// token: a worker with a bad token must not report ready and take jobs
// only to pause on the first call, and deployq_vercel_credentials_ok must
// read 1 on a healthy worker before its first job. An answer that proves
// nothing either way (network trouble, a 5xx) leaves the question to the
// first job's calls.
func (w *Worker) checkCredentials(ctx context.Context) {
	_, _, err := w.pipeline.api.GetProject(ctx, credentialsProbeName)
	switch {
	case err == nil || isNotFound(err):
		w.m.SetCredentialsOK(true)
	case classify(err).Class == vercel.Fatal:
		w.log.Error("API refuses the worker's credentials: taking no work until it accepts them", "err", err)
		w.creds.fail()
	default:
		w.log.Warn("could not check the API credentials at start; the first job will", "err", err)
	}
}

// probeAnswer is what the credentials probe said.
type probeAnswer int

const (
	probeAccepted     probeAnswer = iota // the API accepts the token
	probeRefused                         // the API refuses it (401/403)
	probeInconclusive                    // no answer that tells (network, 5xx, 429)
)

// credentialsRefused asks the probe, a call any valid token may make,
// whether the API refuses the worker's token.
func (w *Worker) credentialsRefused(ctx context.Context) probeAnswer {
	_, _, err := w.pipeline.api.GetProject(ctx, credentialsProbeName)
	switch {
	case err == nil || isNotFound(err):
		return probeAccepted
	case classify(err).Class == vercel.Fatal:
		return probeRefused
	}
	return probeInconclusive
}

// probeCredentials runs for the life of the worker: while the token is
// refused it asks the API, every probe interval, whether it works again.
func (w *Worker) probeCredentials(ctx context.Context) {
	for {
		_, fail := w.creds.channels()
		select {
		case <-ctx.Done():
			return
		case <-fail:
		}
		w.m.SetCredentialsOK(false)
		w.m.SetReady(false)
		for !w.creds.ok() {
			if clock.Sleep(ctx, w.cfg.CredentialsProbeInterval) != nil {
				return
			}
			_, _, err := w.pipeline.api.GetProject(ctx, credentialsProbeName)
			if err == nil || isNotFound(err) {
				w.log.Info("API accepts the worker's credentials again: resuming")
				w.creds.recover()
			} else {
				w.log.Error("API still refuses the worker's credentials", "err", err)
			}
		}
		w.m.SetCredentialsOK(true)
		w.m.SetReady(w.Ready())
	}
}
