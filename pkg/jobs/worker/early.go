package worker

import (
	"context"
	"sync"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/vercel"
)

// Calls that depend on nothing before them in the pipeline go out ahead
// of their step, so that the time from submit to claim URL is the longest
// chain of dependent calls and the build, not the sum of every call:
//   - the billing authorization, while the project is created;
//   - the source upload, while the project, the authorization and the
//     database are made;
//   - the claim code, while the deployment builds: at READY the result
//     goes out with no further call.
//
// None of them writes the checkpoint. Each step takes its early result
// when it runs, or makes the call itself when the early one failed, so
// saves, fences and the exactly-once guarantees stay the steps' own. And
// none makes what those guarantees count (projects, databases,
// deployments): an authorization made again after a crash, an upload the
// API deduplicates by SHA-1 (and deployq once per team), a project's
// second claim code all cost one call and nothing else. They are not
// fenced for the same reason: a worker that lost the job makes nothing
// that matters. PipelineConfig.Sequential turns them off.

// early is one call made ahead of its step.
type early[T any] struct {
	done chan struct{}
	v    T
	err  error
}

// goEarly runs f on its own goroutine; wg counts it.
func goEarly[T any](wg *sync.WaitGroup, f func() (T, error)) *early[T] {
	e := &early[T]{done: make(chan struct{})}
	wg.Go(func() {
		defer close(e.done)
		e.v, e.err = f()
	})
	return e
}

// take waits for the early call; ok is false when it failed or ctx ended
// first: the step makes the call itself.
func (e *early[T]) take(ctx context.Context) (v T, ok bool) {
	if e == nil {
		return v, false
	}
	select {
	case <-e.done:
		return e.v, e.err == nil
	case <-ctx.Done():
		return v, false
	}
}

// earlyCalls are a job's calls made ahead of their steps.
type earlyCalls struct {
	wg     sync.WaitGroup
	ctx    context.Context // the calls' context, ended by stop
	cancel context.CancelFunc
	auth   *early[*vercel.Authorization]
	upload *early[struct{}]
	claim  *early[string]
}

// startEarly sends ahead the calls of the steps after last that depend on
// nothing before them. The calls end with the returned stop, which waits
// for them.
func (j *job) startEarly(ctx context.Context, last jobs.Step) (stop func()) {
	if j.p.cfg.Sequential {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	e := &j.early
	e.ctx, e.cancel = ctx, cancel
	before := func(step jobs.Step) bool { return j.p.next(last) <= j.p.index(step) }
	if before(jobs.StepAuthorize) && j.st.AuthorizationID == "" && !j.p.api.StoreRouteDirect() {
		e.auth = goEarly(&e.wg, func() (*vercel.Authorization, error) { return j.authorization(ctx) })
	}
	if before(jobs.StepUploadSource) {
		e.upload = goEarly(&e.wg, func() (struct{}, error) { return struct{}{}, j.uploadSource(ctx) })
	}
	return func() { cancel(); e.wg.Wait() }
}

// startClaim asks for the claim code while the deployment builds.
func (j *job) startClaim() {
	e := &j.early
	if j.p.cfg.Sequential || e.cancel == nil || e.claim != nil || j.st.ClaimCode != "" || j.st.ProjectID == "" {
		return
	}
	project, body := j.st.ProjectID, j.w.transferRequest(j.req.Tenant, j.req.AppID())
	e.claim = goEarly(&e.wg, func() (string, error) {
		tc, _, err := j.p.api.CreateTransferRequest(e.ctx, project, body)
		if err != nil {
			return "", err
		}
		return tc.Code, nil
	})
}
