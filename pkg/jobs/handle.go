package jobs

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/deployq/deployq/internal/clock"
	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go/jetstream"
)

// natsOpTimeout bounds one acknowledgement or publish made after a job's
// own context ended (hand-back, final events).
const natsOpTimeout = 10 * time.Second

// handle runs one delivered request to an end: acked with a terminal
// event, terminated into the DLQ, or handed back for another delivery.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg, asked time.Time) {
	meta, err := msg.Metadata()
	if err != nil {
		w.log.Error("delivered message without metadata", "err", err)
		_ = msg.Nak()
		return
	}
	if meta.NumDelivered > 1 {
		w.m.Redelivered()
	}
	w.m.JobStarted()
	outcome, attempts := metrics.OutcomeFailure, 0
	defer func() {
		if outcome != "" {
			w.m.JobFinished(outcome, attempts, w.now().Sub(meta.Timestamp))
		} else {
			w.m.JobHandedBack()
		}
	}()

	j, early := w.start(ctx, msg, meta, asked)
	if j == nil {
		outcome = early
		return
	}
	defer j.releaseLease()
	outcome = j.run(ctx)
	attempts = j.cp.state.Attempts + 1
}

// start turns a delivered message into a job: decoded, validated and
// claimed. It returns nil and the outcome ("" for handed back) when there
// is no job to run. It is a function of its own, not inlined, so that its
// large frame is gone from the stack while the job waits for its build:
// the runtime halves an idle goroutine's stack only when a quarter of it
// holds the frames, and ten thousand waiting jobs are ten thousand stacks.
//
//go:noinline
func (w *Worker) start(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, asked time.Time) (*job, string) {
	req, err := DecodeRequest(msg.Data(), w.cfg.Limits)
	if err == nil {
		err = checkOrigin(originOf(msg.Subject()), msg.Subject(), &req)
	}
	var verr *ValidationError
	if errors.As(err, &verr) {
		w.reject(ctx, msg, meta, verr)
		return nil, metrics.OutcomeRejected
	}
	w.m.QueueWait(w.now().Sub(meta.Timestamp))

	base := w.log.With("request_id", req.ID, "tenant", req.Tenant, "delivery", meta.NumDelivered)
	log := base.With("step", stepStart)
	release := w.leases.hold(msg)

	// A job seen for the first time is created already claimed by this
	// worker: one write instead of a create and a claim.
	now := w.now()
	cp, created, err := loadOrCreate(ctx, w.assets.Jobs, JobState{
		Version: stateVersion, ID: req.ID, Tenant: req.Tenant, Status: StatusRunning,
		SubmittedAt: meta.Timestamp, Seq: meta.Sequence.Stream, Run: 1,
		Owner: w.cfg.Owner, Lease: 1, StartedAt: now, UpdatedAt: now,
	}, meta.NumDelivered == 1)
	if err != nil {
		log.Warn("job state unavailable; handing the request back", "err", err)
		release()
		w.handBack(msg, log, w.cfg.PullWait)
		return nil, ""
	}
	return &job{w: w, msg: msg, meta: meta, req: &req, cp: cp, created: created, asked: asked,
		base: base, step: stepStart, releaseLease: release}, ""
}

// job is one delivery of a request being worked on.
type job struct {
	w    *Worker
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata
	req  *Request
	cp   *checkpoint
	// created: this delivery created the checkpoint, already claimed.
	created bool
	// asked is when the pull request that brought msg went out.
	asked time.Time
	base  *slog.Logger // names the request and its tenant
	step  string       // where the job is: stepStart, a pipeline step, stepFinish
	// progress holds the progress events awaiting their acknowledgement.
	progress []progressEvent
	// releaseLease stops the heartbeats of msg.
	releaseLease func()
}

// leaseFresh reports whether no other worker can hold this job yet. The
// server redelivers a message only after AckWait without an ack or a
// heartbeat from its holder, counted from its delivery at the earliest,
// and every other way to take a job over (the max-deliveries clean-up)
// comes after a redelivery; cancels are merged, not taken for claims. So
// until half of AckWait after the pull request went out (half, for
// margin), the fence's read cannot find another owner and is skipped; a
// worker stalled past that reads again before its next side effect.
func (j *job) leaseFresh() bool {
	return j.w.now().Sub(j.asked) < j.w.assets.Config.AckWait/2
}

// Where a job is, besides its pipeline steps, in the "step" of its log
// lines: a request being validated (one that fails never becomes a job),
// before the first step (claiming it, spotting a duplicate), after the
// last (the terminal event, settling the message), and a request moved to
// the DLQ after its last delivery when it never reached a step.
const (
	stepValidate = "validate"
	stepStart    = "start"
	stepFinish   = "finish"
)

// logger is the job's logger: every line names the request, its tenant
// and the step the job is at, so one grep follows a job across workers.
func (j *job) logger() *slog.Logger { return j.base.With("step", j.step) }

// run returns the metrics outcome, or "" when the request was handed back.
func (j *job) run(ctx context.Context) string {
	ctx, takeover, release, outcome := j.begin(ctx)
	if release == nil {
		return outcome
	}
	defer release()
	return j.runSteps(ctx, takeover)
}

// begin settles what this delivery is: a duplicate, a job already ended,
// or one to run (claimed, tracked for cancels). For a job to run it
// returns its context, whether it was taken over from another delivery,
// and the release of its tracking; otherwise a nil release and the
// outcome. Like start, its frame is off the stack during the steps.
//
//go:noinline
func (j *job) begin(ctx context.Context) (context.Context, bool, func(), string) {
	st := &j.cp.state
	switch {
	case st.Seq == j.meta.Sequence.Stream:
	case st.Seq == 0 && !st.Done() && messageRun(j.msg) == st.run():
		// A checkpoint written before its message arrived (a replay, or a
		// cancel that came first): this message carries the job.
		st.Seq, st.SubmittedAt = j.meta.Sequence.Stream, j.meta.Timestamp
	default:
		return ctx, false, nil, j.duplicate(ctx)
	}
	if st.Done() {
		// A crash came after the outcome was recorded: finish publishing it.
		j.step = stepFinish
		return ctx, false, nil, j.finish(ctx)
	}
	takeover := false
	if !j.created {
		takeover = st.Owner != "" // an earlier delivery may have left effects unseen
		st.Status = StatusRunning
		if err := j.cp.claim(ctx, j.w.cfg.Owner, j.w.now()); err != nil {
			return ctx, false, nil, j.abandon(err)
		}
	}
	ctx, release := j.w.inflight.track(ctx, jobKey(j.req.Tenant, j.req.ID))
	if st.Terminal != nil {
		// An earlier delivery decided the outcome and died cleaning up.
		defer release()
		j.step = orDefault(string(st.Terminal.Data.Step), stepFinish)
		return ctx, false, nil, j.cleanUpAndEnd(ctx)
	}
	if takeover && st.Step != "" {
		// The last step's event may have died with the earlier delivery;
		// its dedup id makes publishing it again free.
		j.publishStep(ctx, st.Step)
	}
	if st.Step == "" {
		// Here rather than in runSteps, whose frame stays on the stack
		// through the build wait: a few bytes more there keep ten
		// thousand waiting stacks at 16 kB instead of 8 (cmd/scalebench).
		if outcome, stop := j.vetSource(ctx); stop {
			release()
			return ctx, false, nil, outcome
		}
	}
	return ctx, takeover, release, ""
}

// runSteps runs the pipeline from the step after the checkpoint's last.
// Everything but the loop lives in functions of their own, so that a job
// waiting for its build keeps a shallow stack (see start).
func (j *job) runSteps(ctx context.Context, takeover bool) string {
	st := &j.cp.state
	r := &jobRun{p: j.w.pipeline, req: j.req, st: st, uncertain: takeover, sleep: clock.Sleep, now: j.w.now, fence: j.fence}
	// After a takeover, every step up to the next one that is saved may
	// have run already: the earlier delivery may have gone on past the
	// checkpoint through the steps that ride along with a save and into
	// the creating step after them, and died before that step's save. So
	// the uncertainty lasts until a saved step, not the first success.
	resumed := takeover
	bo := j.w.cfg.NewBackOff()
	steps := Steps()
	for i := nextStep(st.Step); i < len(steps); {
		step := steps[i]
		if outcome, stop := j.beforeStep(ctx, step); stop {
			return outcome
		}
		t0 := j.w.now()
		err := r.runStep(ctx, step)
		if err == nil {
			if outcome, stop := j.stepDone(ctx, step, t0); stop {
				return outcome
			}
			if checkpointAfter(step) {
				resumed = false
			}
			r.uncertain = resumed
			bo.Reset()
			i++
			continue
		}
		if outcome, stop := j.stepFailed(ctx, step, t0, err, bo); stop {
			return outcome
		}
		// The error may have come after the effect (a lost answer): the next
		// attempt looks its resource up before creating one.
		r.uncertain = true
	}
	j.step = stepFinish
	return j.succeed(ctx)
}

// vetSource checks the request's tarball before the first step creates
// anything (sourcecheck.go): a tarball refused for good rejects the
// request; a store that cannot be read hands it back.
//
//go:noinline
func (j *job) vetSource(ctx context.Context) (outcome string, stop bool) {
	err := j.w.pipeline.checkSource(ctx, j.req.Tenant, j.req.Source)
	var se *SourceError
	switch {
	case err == nil:
		return "", false
	case errors.As(err, &se):
		return j.end(ctx, TypeRejected, &EventError{Code: se.Code, Field: "source", Message: err.Error()}), true
	case ctx.Err() != nil:
		return j.interrupted(ctx, stepStart), true
	}
	j.logger().Warn("source tarball unreadable; handing the request back", "err", err)
	return j.handBackErr(), true
}

// fence is the check before a side effect: nothing to read while the
// lease is fresh, else the checkpoint must still be this delivery's. It
// runs before each step and, for the steps that create something, again
// right before the creating call is sent, after any budget wait.
func (j *job) fence(ctx context.Context) error {
	if j.leaseFresh() {
		return nil
	}
	return j.cp.verify(ctx)
}

// beforeStep runs the fence and the checks before a step; stop means the
// job ends here with outcome.
//
//go:noinline
func (j *job) beforeStep(ctx context.Context, step Step) (outcome string, stop bool) {
	j.step = string(step)
	// The fence: no side effect for a job another worker took over.
	if err := j.fence(ctx); err != nil {
		return j.abandon(err), true
	}
	if j.cp.state.CancelRequested {
		return j.cancel(ctx, step), true
	}
	if step == StepWaitReady {
		// The build takes a while: settle the progress events now
		// rather than hold them through the wait.
		actx, cancel := context.WithTimeout(ctx, natsOpTimeout)
		j.awaitProgress(actx)
		cancel()
	}
	return "", false
}

// stepDone records a step's success.
//
//go:noinline
func (j *job) stepDone(ctx context.Context, step Step, t0 time.Time) (outcome string, stop bool) {
	st := &j.cp.state
	st.Step = step
	st.Attempts = 0 // attempts are capped per step
	if checkpointAfter(step) {
		if err := j.cp.save(ctx, j.w.now()); err != nil {
			return j.abandon(err), true
		}
	}
	j.w.m.StepFinished(string(step), "success", j.w.now().Sub(t0))
	j.publishStep(ctx, step)
	j.logger().Debug("step completed", "duration", j.w.now().Sub(t0))
	return "", false
}

// stepFailed decides what a step's error means: the job ends (stop), or
// the step runs again after the wait it chose (spent here).
//
//go:noinline
func (j *job) stepFailed(ctx context.Context, step Step, t0 time.Time, err error, bo backoff.BackOff) (outcome string, stop bool) {
	st := &j.cp.state
	log := j.logger()
	if ctx.Err() != nil {
		if errors.Is(context.Cause(ctx), errCancelled) {
			return j.cancel(ctx, step), true
		}
		return j.abandon(context.Cause(ctx)), true
	}
	if errors.Is(err, ErrLeaseLost) {
		// The fence before a creating call: another worker has the job.
		return j.abandon(err), true
	}
	d := classify(err)
	switch d.Class {
	case vercel.Fatal:
		j.w.m.StepFinished(string(step), "retry", j.w.now().Sub(t0))
		log.Error("API refused the worker's credentials: pausing all work", "reason", d.Reason, "err", err)
		j.w.creds.fail()
		if !j.w.creds.waitOK(ctx) {
			return j.interrupted(ctx, step), true
		}
		return "", false
	case vercel.Permanent:
		j.w.m.StepFinished(string(step), "failure", j.w.now().Sub(t0))
		return j.fail(ctx, step, errorCode(err, d), err), true
	}
	j.w.m.StepFinished(string(step), "retry", j.w.now().Sub(t0))
	wait, exhausted, capped := failedAttempt(st, step, err, d, j.w.cfg.MaxAttempts, j.w.cfg.MaxRateLimitWait, bo, j.w.now())
	if exhausted {
		return j.fail(ctx, step, "retries_exhausted", err), true
	}
	if err := j.cp.save(ctx, j.w.now()); err != nil {
		return j.abandon(err), true
	}
	if capped {
		log.Warn("capping an absurd rate-limit wait", "announced", d.RetryAfter, "cap", wait)
	}
	log.Info("step will be retried", "reason", d.Reason, "wait", wait, "attempts", st.Attempts, "err", err)
	if err := clock.Sleep(ctx, wait); err != nil {
		return j.interrupted(ctx, step), true
	}
	return "", false
}

// interrupted ends a wait cut short: by a cancel, or by shutdown.
func (j *job) interrupted(ctx context.Context, step Step) string {
	if errors.Is(context.Cause(ctx), errCancelled) {
		return j.cancel(ctx, step)
	}
	return j.abandon(context.Cause(ctx))
}

// messageRun is the run a request message starts: 1, or the run a replay
// wrote in its header.
func messageRun(msg jetstream.Msg) int {
	if n, err := strconv.Atoi(msg.Headers().Get(HeaderRun)); err == nil && n > 1 {
		return n
	}
	return 1
}

// classify extends the client's classification with the pipeline's own
// errors; anything else from NATS (object store, KV) is transient.
func classify(err error) vercel.Decision {
	var be *BuildError
	var se *StepError
	var src *SourceError
	switch {
	case errors.As(err, &be):
		return vercel.Decision{Class: vercel.Permanent, Reason: "build_failed"}
	case errors.As(err, &se):
		return vercel.Decision{Class: vercel.Permanent, Reason: se.Code}
	case errors.As(err, &src):
		return vercel.Decision{Class: vercel.Permanent, Reason: src.Code}
	}
	return vercel.Classify(err)
}

func errorCode(err error, d vercel.Decision) string {
	var be *BuildError
	var apiErr *vercel.APIError
	switch {
	case errors.As(err, &be):
		return be.Code
	case errors.As(err, &apiErr) && apiErr.Code != "":
		return apiErr.Code
	}
	return d.Reason
}

func (j *job) publishStep(ctx context.Context, step Step) {
	if j.w.cfg.NoProgressEvents {
		return
	}
	st := &j.cp.state
	ev := newEvent(TypeStepCompleted, stepEventID(j.req.Tenant, j.req.ID, st.Run, step), j.w.now(), EventData{
		RequestID: j.req.ID, Tenant: j.req.Tenant, Step: step, Attempt: int(j.meta.NumDelivered), Run: runField(st.Run),
		ProjectID: st.ProjectID, ProjectName: st.ProjectName, StoreID: st.StoreID,
		DeploymentID: st.DeploymentID, URL: st.DeploymentURL,
	})
	// Progress events are informative; the terminal event is the
	// contract, and its publication is retried until it lands. So they are
	// published without waiting for the stream's answer, which costs the
	// job no round trip; awaitProgress collects the answers before the
	// terminal event goes out.
	j.reapProgress()
	m, err := eventMsg(j.req.Tenant, &ev)
	if err == nil {
		var f jetstream.PubAckFuture
		f, err = j.w.js.PublishMsgAsync(m)
		switch {
		case err == nil:
			j.progress = append(j.progress, progressEvent{step: step, ack: f})
			return
		case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
			// The connection's window of unacknowledged publishes is
			// full (thousands of jobs stepping at once): wait for this
			// one's answer instead of dropping it.
			if _, err = j.w.js.PublishMsg(ctx, m); err == nil {
				return
			}
		}
	}
	j.logger().Warn("progress event not published", "event_step", step, "err", err)
}

// reapProgress forgets the progress events already acknowledged: each
// future holds its whole message, and a job waiting minutes for its build
// must not hold its earlier events with it.
func (j *job) reapProgress() {
	kept := j.progress[:0]
	for _, p := range j.progress {
		select {
		case <-p.ack.Ok():
		case err := <-p.ack.Err():
			j.logger().Warn("progress event not published", "event_step", p.step, "err", err)
		default:
			kept = append(kept, p)
		}
	}
	clear(j.progress[len(kept):])
	j.progress = kept
}

// progressEvent is a progress event published and not yet acknowledged.
type progressEvent struct {
	step Step
	ack  jetstream.PubAckFuture
}

// awaitProgress waits for the stream to acknowledge the job's progress
// events, so that they are stored before its terminal event, and logs
// those that were lost.
func (j *job) awaitProgress(ctx context.Context) {
	for _, p := range j.progress {
		select {
		case <-p.ack.Ok():
		case err := <-p.ack.Err():
			j.logger().Warn("progress event not published", "event_step", p.step, "err", err)
		case <-ctx.Done():
			j.logger().Warn("progress events unconfirmed", "err", context.Cause(ctx))
			j.progress = nil
			return
		}
	}
	j.progress = nil
}

func (j *job) succeed(ctx context.Context) string {
	st := &j.cp.state
	ev := newEvent(TypeSucceeded, terminalEventID(j.req.Tenant, j.req.ID, st.Run), j.w.now(), EventData{
		RequestID: j.req.ID, Tenant: j.req.Tenant, Attempt: int(j.meta.NumDelivered), Run: runField(st.Run),
		ProjectID: st.ProjectID, ProjectName: st.ProjectName, StoreID: st.StoreID,
		DeploymentID: st.DeploymentID, URL: st.DeploymentURL,
		ClaimCode: st.ClaimCode, ClaimURL: vercel.ClaimURL(st.ClaimCode, j.req.ReturnURL),
		DurationMs: j.w.now().Sub(st.SubmittedAt).Milliseconds(),
	})
	st.Status, st.Terminal = StatusSucceeded, &ev
	if err := j.cp.save(ctx, j.w.now()); err != nil {
		return j.abandon(err)
	}
	j.logger().Info("deploy succeeded", "url", st.DeploymentURL, "project_id", st.ProjectID)
	return j.finish(ctx)
}

// fail records the failure, compensates, dead-letters the request and
// publishes its failed event. The failure is recorded before the clean-up,
// so a worker dying mid-clean-up leaves a job that the next delivery
// finishes cleaning, with the same reason, instead of running it again
// against deleted resources.
func (j *job) fail(ctx context.Context, step Step, code string, cause error) string {
	return j.end(ctx, TypeFailed, &EventError{Step: step, Code: code, Message: cause.Error()})
}

// end records a failure or rejection (typ) with its error, then cleans
// up and ends the job as fail explains.
func (j *job) end(ctx context.Context, typ EventType, e *EventError) string {
	st := &j.cp.state
	ev := newEvent(typ, terminalEventID(j.req.Tenant, j.req.ID, st.Run), j.w.now(), EventData{
		RequestID: j.req.ID, Tenant: j.req.Tenant, Step: e.Step, Attempt: int(j.meta.NumDelivered), Run: runField(st.Run),
		ProjectID: st.ProjectID, ProjectName: st.ProjectName, StoreID: st.StoreID, DeploymentID: st.DeploymentID,
		Error:      e,
		DurationMs: j.w.now().Sub(st.SubmittedAt).Milliseconds(),
	})
	st.Terminal = &ev
	if err := j.cp.save(context.WithoutCancel(ctx), j.w.now()); err != nil {
		return j.abandon(err)
	}
	if typ == TypeRejected {
		j.logger().Warn("request rejected", "field", e.Field, "code", e.Code, "reason", e.Message)
	} else {
		j.logger().Warn("deploy failed", "code", e.Code, "err", e.Message)
	}
	return j.cleanUpAndEnd(ctx)
}

// cleanUpAndEnd deletes what a failed or cancelled job created, then
// records and publishes its recorded terminal event. Deleting what is
// already gone counts as done, so it can run again after a crash.
func (j *job) cleanUpAndEnd(ctx context.Context) string {
	st := &j.cp.state
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	cleaned, cerrs := j.w.pipeline.compensate(cctx, st)
	for _, e := range cerrs {
		j.logger().Warn("clean-up incomplete", "err", e)
	}
	st.Terminal.Data.Cleaned = cleaned
	switch st.Terminal.Type {
	case TypeCancelled:
		st.Status = StatusCancelled
	case TypeRejected:
		st.Status = StatusRejected
	default:
		st.Status = StatusFailed
	}
	if err := j.cp.save(cctx, j.w.now()); err != nil {
		return j.abandon(err)
	}
	if len(cleaned) > 0 {
		j.logger().Info("cleaned up after the job", "cleaned", strings.Join(cleaned, ","))
	}
	return j.finish(cctx)
}

// finish publishes the recorded terminal event (once) and settles the
// message: acked after success or cancel, terminated after a failure (its
// dead letter is written first). A failed job keeps its source tarball
// referenced, so a replay from the DLQ can deploy it; purging the dead
// letter releases it.
func (j *job) finish(ctx context.Context) string {
	st := &j.cp.state
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), natsOpTimeout)
	defer cancel()
	j.awaitProgress(ctx)
	dead := st.Status == StatusFailed || st.Status == StatusRejected
	if dead {
		reason := DLQReasonFailed
		if st.Status == StatusRejected {
			reason = DLQReasonRejected
		}
		if err := j.w.deadLetter(ctx, letterOf(j.msg, j.meta, j.req.Tenant, j.req.ID, reason, st.Terminal.Data.Error, st.Errors)); err != nil {
			j.logger().Warn("dead letter not written; handing back", "err", err)
			return j.handBackErr()
		}
	}
	published := st.Published
	if !published {
		if err := j.w.publishEvent(ctx, j.req.Tenant, *st.Terminal); err != nil {
			j.logger().Warn("terminal event not published; handing back", "err", err)
			return j.handBackErr()
		}
	}
	var err error
	if st.Status == StatusRejected {
		// A replay cannot mend the source: nothing keeps it.
		j.w.releaseSource(ctx, j.req, j.logger())
	}
	if dead {
		err = j.msg.TermWithReason(string(st.Status) + ": " + st.Terminal.Data.Error.Code)
	} else {
		j.w.releaseSource(ctx, j.req, j.logger())
		err = j.msg.DoubleAck(ctx)
	}
	if err != nil {
		j.logger().Warn("settling the request failed; a redelivery will find it finished", "err", err)
		// Only a redelivery reads Published: it then settles the message
		// without publishing the terminal event again, even after the
		// events stream's dedup window. A settled message has none, which
		// spares the save.
		if !published {
			st.Published = true
			if err := j.cp.save(ctx, j.w.now()); err != nil && !errors.Is(err, ErrLeaseLost) {
				j.logger().Warn("checkpoint not updated after the terminal event", "err", err)
			}
		}
	}
	switch st.Status {
	case StatusSucceeded:
		return metrics.OutcomeSuccess
	case StatusCancelled:
		return metrics.OutcomeCancelled
	case StatusRejected:
		return metrics.OutcomeRejected
	}
	return metrics.OutcomeFailure
}

// duplicate handles a second message for a request id that has a job
// already (a client's retry after the dedup window): it never deploys
// twice. The existing outcome stays in the events stream.
func (j *job) duplicate(ctx context.Context) string {
	st := &j.cp.state
	j.logger().Info("duplicate request for an existing job; not deploying again", "status", st.Status, "job_seq", st.Seq)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), natsOpTimeout)
	defer cancel()
	if err := j.msg.DoubleAck(ctx); err != nil {
		j.logger().Warn("ack of duplicate failed", "err", err)
	}
	return metrics.OutcomeDuplicate
}

// abandon stops work on the job without settling it when the lease was
// lost (another worker owns it) or the worker is shutting down (hand back).
func (j *job) abandon(err error) string {
	if errors.Is(err, ErrLeaseLost) {
		j.logger().Warn("another worker took this job over; stopping without acting further")
		return ""
	}
	if errors.Is(err, errShutdown) {
		j.logger().Info("handing the job back at shutdown", "step_done", j.cp.state.Step)
		j.w.handBack(j.msg, j.logger(), 0)
		return ""
	}
	j.logger().Warn("job interrupted; handing it back", "err", err)
	return j.handBackErr()
}

func (j *job) handBackErr() string {
	j.w.handBack(j.msg, j.logger(), j.w.cfg.PullWait)
	return ""
}

// handBack returns a message for redelivery; its checkpoint lets the next
// worker resume where this one stopped.
func (w *Worker) handBack(msg jetstream.Msg, log *slog.Logger, delay time.Duration) {
	var err error
	if delay > 0 {
		err = msg.NakWithDelay(delay)
	} else {
		err = msg.Nak()
	}
	if err != nil {
		log.Warn("hand-back failed; the request returns after its lease expires", "err", err)
	}
}

func (w *Worker) publishEvent(ctx context.Context, tenant string, ev Event) error {
	m, err := eventMsg(tenant, &ev)
	if err != nil {
		return err
	}
	_, err = w.js.PublishMsg(ctx, m)
	return err
}
