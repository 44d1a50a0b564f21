package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/deployq/deployq/internal/clock"
	"github.com/deployq/deployq/pkg/vercel"
)

// DeployConfig shapes the retries of Pipeline.Deploy. The zero value
// retries as a worker does with its defaults.
type DeployConfig struct {
	// MaxAttempts caps failed attempts of each step; rate-limit waits do
	// not count. Defaults to 5, as WorkerConfig.MaxAttempts.
	MaxAttempts int
	// NewBackOff returns the retry schedule of transient errors. Defaults
	// to the worker's: exponential from 1 s to 1 min with ±50 % jitter.
	NewBackOff func() backoff.BackOff
	// MaxRateLimitWait caps one wait on a Retry-After or reset. Defaults
	// to 15 min, as WorkerConfig.MaxRateLimitWait.
	MaxRateLimitWait time.Duration
	// Limits bound the request. Defaults to DefaultLimits().
	Limits Limits
}

func (c DeployConfig) withDefaults() DeployConfig {
	// The worker's defaults, so that a direct run and a queued one retry
	// alike; the AckWait it takes only shapes heartbeats, unused here.
	w := WorkerConfig{MaxAttempts: c.MaxAttempts, NewBackOff: c.NewBackOff,
		MaxRateLimitWait: c.MaxRateLimitWait, Owner: "direct"}.withDefaults(time.Minute)
	c.MaxAttempts, c.NewBackOff, c.MaxRateLimitWait = w.MaxAttempts, w.NewBackOff, w.MaxRateLimitWait
	return c
}

// Deploy runs req through every pipeline step in this process and returns
// the job's state: the ids of what it created and, after success, the
// deployment's URL and claim code, with Status StatusSucceeded.
//
// It exists so that the pipeline can be measured and used without the
// queue: benchmarks (cmd/loadbench) run the same requests through Deploy
// and through a Worker to tell what queueing, checkpoints and events cost,
// and a program may embed the pipeline without a worker fleet. The steps
// are the worker's own code; what Deploy leaves out is everything the
// queue adds: no message, lease or heartbeat, no checkpoint (a crash
// forgets what was created; a second call with the same id may create a
// second database and deployment), no events, no cancel notices other
// than ctx, and no pause on refused credentials.
//
// Retries follow the worker's rules: a transient error is retried after
// the backoff (or the API's Retry-After), at most cfg.MaxAttempts failed
// attempts per step, rate-limit waits not counted, and a retried step
// first looks up what a lost answer may have created. A permanent error,
// refused credentials or too many attempts fail the job at once: what it
// created is deleted (unless PipelineConfig.KeepFailedResources), Status
// is StatusFailed and the error is a *StepError naming the step (joined
// with the clean-up's errors when that failed too: use errors.As). When
// ctx ends, Deploy returns its cause and the state as it stood, nothing
// cleaned up.
//
// req's tarball must already be in the sources object store (Client.Submit
// puts it there); Version 0 stands for RequestVersion. req is not changed.
func (p *Pipeline) Deploy(ctx context.Context, req *Request, cfg DeployConfig) (*JobState, error) {
	if req == nil {
		return nil, errors.New("jobs: Deploy needs a request")
	}
	cfg = cfg.withDefaults()
	r := *req
	if r.Version == 0 {
		r.Version = RequestVersion
	}
	if err := r.Validate(cfg.Limits); err != nil {
		return nil, err
	}
	now := time.Now()
	st := &JobState{
		Version: stateVersion, ID: r.ID, Tenant: r.Tenant, Status: StatusRunning,
		Run: 1, SubmittedAt: now, StartedAt: now, UpdatedAt: now,
	}
	run := &jobRun{p: p, req: &r, st: st, sleep: clock.Sleep, now: time.Now}
	bo := cfg.NewBackOff()
	for _, step := range Steps() {
		if err := p.deployStep(ctx, run, step, cfg, bo); err != nil {
			st.UpdatedAt = time.Now()
			if ctx.Err() != nil {
				return st, context.Cause(ctx)
			}
			return st, p.failDirect(ctx, st, step, err)
		}
		st.Step, st.Attempts, st.UpdatedAt = step, 0, time.Now()
		run.uncertain = false
		bo.Reset()
	}
	st.Status = StatusSucceeded
	return st, nil
}

// deployStep runs one step until it succeeds, fails for good or ctx ends,
// following the worker's retry rules (see job.run in handle.go).
func (p *Pipeline) deployStep(ctx context.Context, run *jobRun, step Step, cfg DeployConfig, bo backoff.BackOff) error {
	st := run.st
	for {
		err := run.runStep(ctx, step)
		if err == nil || ctx.Err() != nil {
			return err
		}
		d := classify(err)
		if d.Class != vercel.Transient {
			return err
		}
		wait, exhausted, _ := failedAttempt(st, step, err, d, cfg.MaxAttempts, cfg.MaxRateLimitWait, bo, time.Now())
		if exhausted {
			return &StepError{Step: step, Code: "retries_exhausted", Err: err}
		}
		// The error may have come after the effect (a lost answer).
		run.uncertain = true
		if err := clock.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// failDirect cleans up after a failed direct run, as a worker does after a
// failed job, and returns the failure as a *StepError.
func (p *Pipeline) failDirect(ctx context.Context, st *JobState, step Step, err error) error {
	var se *StepError
	if !errors.As(err, &se) || se.Step != step {
		se = &StepError{Step: step, Code: errorCode(err, classify(err)), Err: err}
	}
	st.Status = StatusFailed
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_, cerrs := p.compensate(cctx, st)
	st.UpdatedAt = time.Now()
	if len(cerrs) > 0 {
		return errors.Join(append([]error{se}, cerrs...)...)
	}
	return se
}
