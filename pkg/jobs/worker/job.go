package worker

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/deployq/deployq/internal/clock"
	"github.com/deployq/deployq/internal/fair"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go/jetstream"
)

// One delivery of a request, from the message to its settlement, reads
// top to bottom in this file: handle → start (decode, validate, open the
// checkpoint) → begin (duplicate? ended? claim, vet the source) →
// runSteps (the steps of Pipeline.steps, each fenced, saved and
// announced) → succeed, or end (decide, clean up, record) → finish (dead
// letter, terminal event, settle the message). Every change of the job's state
// is a transition of its jobs.Checkpoint.

// natsOpTimeout bounds one acknowledgement or publish made after a job's
// own context ended (hand-back, final events).
const natsOpTimeout = 10 * time.Second

// outcome is how one delivery of a request ended.
type outcome int

const (
	// handedBack: not settled; another delivery takes the job on from its
	// checkpoint (lease lost, shutdown, a transient NATS failure).
	handedBack outcome = iota
	succeeded
	failed
	rejected
	cancelled
	// duplicate: a second message of an id that has its job.
	duplicate
)

// metric is the outcome's label in deployq_jobs_total.
func (o outcome) metric() string {
	switch o {
	case succeeded:
		return metrics.OutcomeSuccess
	case rejected:
		return metrics.OutcomeRejected
	case cancelled:
		return metrics.OutcomeCancelled
	case duplicate:
		return metrics.OutcomeDuplicate
	}
	return metrics.OutcomeFailure
}

// outcomeOf is the outcome a job's final status stands for.
func outcomeOf(s jobs.Status) outcome {
	switch s {
	case jobs.StatusSucceeded:
		return succeeded
	case jobs.StatusCancelled:
		return cancelled
	case jobs.StatusRejected:
		return rejected
	}
	return failed
}

// Where a job is, besides its pipeline steps, in the "step" of its log
// lines: a request being validated (one that fails never becomes a job),
// before the first step (claiming it, spotting a duplicate), after the
// last (the terminal event, settling the message), and a request moved to
// the DLQ after its last delivery when it never reached a step.
const (
	phaseValidate = "validate"
	phaseStart    = "start"
	phaseFinish   = "finish"
)

// job is one delivery of a request being worked on.
type job struct {
	w    *Worker
	p    *Pipeline
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata
	d    jobs.Delivery // what the checkpoint knows of msg
	req  *jobs.Request
	cp   *jobs.Checkpoint
	st   *jobs.JobState // &cp.State: what the steps read and record
	// created: this delivery created the checkpoint, already claimed.
	created bool
	// asked is when the pull request that brought msg went out.
	asked time.Time
	base  *slog.Logger // names the request and its tenant
	phase string       // where the job is: phaseStart, a pipeline step, phaseFinish
	// uncertain marks that an earlier attempt of the current step may
	// have had its effect without us seeing the answer (lost response,
	// crash, takeover), so the step looks its resource up before creating
	// it.
	uncertain bool
	// progress holds the progress events awaiting their acknowledgement.
	progress []progressEvent
	// releaseLease stops the heartbeats of msg.
	releaseLease func()
	// builtSeen: the deployment's build time was observed once (a READY
	// deployment may be read again while its domains are assigned).
	builtSeen bool
	// early holds the calls sent ahead of their steps (early.go).
	early earlyCalls
	// app is the job's app as this delivery last wrote it (apps.go).
	app jobs.AppRef
	// logsAsked hears that someone started following the build's log
	// while the job waits for the build (buildlog.go).
	logsAsked chan struct{}
	// logs is the build's log (buildlog.go), made once a line comes.
	logs    *buildLog
	logOnce sync.Once
	// busyWaited is the time this delivery waited for the team's
	// concurrent builds (Config.MaxBuildsFullWait).
	busyWaited time.Duration
}

// handle runs one delivered request to an end: acked with a terminal
// event, terminated into the DLQ, or handed back for another delivery.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg, asked time.Time, s *seat) {
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
	out, attempts := failed, 0
	defer func() {
		if out == handedBack {
			w.m.JobHandedBack()
			return
		}
		w.m.JobFinished(out.metric(), attempts, w.now().Sub(meta.Timestamp))
	}()

	j, early := w.start(ctx, msg, meta, asked, s)
	if j == nil {
		out = early
		return
	}
	defer j.releaseLease()
	out = j.work(ctx)
	attempts = j.st.Attempts + 1
}

// start turns a delivered message into a job: decoded, validated and its
// checkpoint opened. It returns nil and the outcome when there is no job
// to run. It is a function of its own so that its large frame is gone
// from the stack while the job waits for its build: the runtime halves an
// idle goroutine's stack only when a quarter of it holds the frames, and
// ten thousand waiting jobs are ten thousand stacks. The functions kept
// off the waiting path this way are too large for the compiler to inline;
// TestWaitingJobStackStaysSmall fails if the waiting stack grows.
func (w *Worker) start(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, asked time.Time, s *seat) (*job, outcome) {
	req, err := jobs.DecodeRequest(msg.Data(), w.cfg.Limits)
	if err == nil {
		err = req.CheckSubject(msg.Subject())
	}
	var verr *jobs.ValidationError
	if errors.As(err, &verr) {
		w.reject(ctx, msg, meta, verr)
		return nil, rejected
	}
	w.m.QueueWait(w.now().Sub(meta.Timestamp))

	base := w.log.With("request_id", req.ID, "tenant", req.Tenant, "delivery", meta.NumDelivered)
	release := w.leases.hold(msg)
	var admitted time.Time
	if w.cfg.Quotas.Limited(req.Tenant) {
		at, out, ok := w.admit(ctx, msg, meta, &req, s, base.With("step", phaseStart))
		if !ok {
			release()
			return nil, out
		}
		admitted = at
	}
	d := delivery(msg, meta)
	cp, created, err := jobs.StartJob(ctx, w.assets.Jobs, req.Tenant, req.ID, d, w.cfg.Owner, w.now())
	if !created && !admitted.IsZero() {
		// Another message of the id opened the job meanwhile: this one
		// runs no new deploy, so the quota takes it back.
		if qerr := w.cfg.Quotas.Return(ctx, req.Tenant, admitted); qerr != nil {
			base.Warn("quota not given back for a request that did not start", "err", qerr)
		}
	}
	if err != nil {
		log := base.With("step", phaseStart)
		log.Warn("job state unavailable; handing the request back", "err", err)
		release()
		w.handBack(msg, log, w.cfg.PullWait)
		return nil, handedBack
	}
	return &job{w: w, p: w.pipeline, msg: msg, meta: meta, d: d, req: &req, cp: cp, st: &cp.State, created: created,
		asked: asked, base: base, phase: phaseStart, releaseLease: release}, handedBack
}

// delivery is what the checkpoint needs to know of a request message.
func delivery(msg jetstream.Msg, meta *jetstream.MsgMetadata) jobs.Delivery {
	runNo := 1
	if n, err := strconv.Atoi(msg.Headers().Get(jobs.HeaderRun)); err == nil && n > 1 {
		runNo = n // a replay's message
	}
	return jobs.Delivery{Seq: meta.Sequence.Stream, Submitted: meta.Timestamp, Run: runNo, First: meta.NumDelivered == 1}
}

// now is the worker's clock (a test may set it).
func (j *job) now() time.Time { return j.w.now() }

// logger is the job's logger: every line names the request, its tenant
// and the step the job is at, so one grep follows a job across workers.
func (j *job) logger() *slog.Logger { return j.base.With("step", j.phase) }

// work takes the job from its opened checkpoint to an outcome.
func (j *job) work(ctx context.Context) outcome {
	// The API budget serves the job's calls in its tenant's turn.
	ctx = fair.WithShare(ctx, fair.Share{Tenant: j.req.Tenant, Weight: j.w.cfg.TenantWeights[j.req.Tenant], Class: classOf(j.req.Priority)})
	ctx, takeover, release, out := j.begin(ctx)
	if release == nil {
		return out
	}
	defer release()
	return j.runSteps(ctx, takeover)
}

// classOf is the scheduling class of a request's priority.
func classOf(p jobs.Priority) fair.Class {
	if p.Batch() {
		return fair.Batch
	}
	return fair.Interactive
}

// begin settles what this delivery is: a duplicate, a job already ended,
// or one to run (claimed, tracked for cancels, its source vetted). For a
// job to run it returns its context, whether it was taken over from
// another delivery, and the release of its tracking; otherwise a nil
// release and the outcome. Like start, its frame is off the stack during
// the steps.
func (j *job) begin(ctx context.Context) (context.Context, bool, func(), outcome) {
	if !j.cp.Carries(j.d) {
		return ctx, false, nil, j.duplicate(ctx)
	}
	if j.st.Done() {
		// A crash came after the outcome was recorded: finish publishing it.
		j.phase = phaseFinish
		return ctx, false, nil, j.finish(ctx)
	}
	takeover := false
	if !j.created {
		takeover = j.st.Owner != "" // an earlier delivery may have left effects unseen
		if err := j.cp.Claim(ctx, j.w.cfg.Owner, j.d, j.now()); err != nil {
			return ctx, false, nil, j.abandon(err)
		}
	}
	j.logsAsked = make(chan struct{}, 1)
	ctx, release := j.w.inflight.track(ctx, j.req.Tenant, j.req.ID, j.logsAsked)
	if j.cp.Decided() {
		// An earlier delivery decided the outcome and died cleaning up.
		defer release()
		j.phase = cmp.Or(string(j.st.Terminal.Data.Step), phaseFinish)
		return ctx, false, nil, j.cleanUpAndEnd(ctx)
	}
	if takeover && j.st.Step != "" {
		// The last step's event may have died with the earlier delivery;
		// its dedup id makes publishing it again free.
		j.publishStep(ctx, j.st.Step)
	}
	if j.st.Step == "" {
		// Here rather than in runSteps, whose frame stays on the stack
		// through the build wait.
		if out, stop := j.vetSource(ctx); stop {
			release()
			return ctx, false, nil, out
		}
		if out, stop := j.bindApp(ctx); stop {
			release()
			return ctx, false, nil, out
		}
	}
	return ctx, takeover, release, handedBack
}

// runSteps runs the pipeline from the step after the checkpoint's last.
// Everything but the loop lives in functions of their own, so that a job
// waiting for its build keeps a shallow stack (see start).
func (j *job) runSteps(ctx context.Context, takeover bool) outcome {
	// After a takeover, every step up to the next one that is saved may
	// have run already: the earlier delivery may have gone on past the
	// checkpoint through the steps that ride along with a save and into
	// the creating step after them, and died before that step's save. So
	// the uncertainty lasts until a saved step, not the first success.
	resumed := takeover
	j.uncertain = takeover
	bo := j.w.cfg.NewBackOff()
	steps := j.p.steps
	early := false
	for i := j.p.next(j.st.Step); i < len(steps); {
		s := &steps[i]
		if out, stop := j.beforeStep(ctx, s.name); stop {
			return out
		}
		if !early {
			// Once the job is sure to run (fenced, not cancelled).
			early = true
			defer j.startEarly(ctx, j.st.Step)()
		}
		t0 := j.now()
		err := s.do(j, j.stepCtx(ctx, s.name))
		if err == nil {
			if out, stop := j.stepDone(ctx, s, t0); stop {
				return out
			}
			if s.save {
				resumed = false
			}
			j.uncertain = resumed
			bo.Reset()
			i++
			continue
		}
		if out, stop := j.stepFailed(ctx, s.name, t0, err, bo); stop {
			return out
		}
		// The error may have come after the effect (a lost answer): the next
		// attempt looks its resource up before creating one.
		j.uncertain = true
	}
	j.phase = phaseFinish
	return j.succeed(ctx)
}

// vetSource checks the request's tarball before the first step creates
// anything (sourcecheck.go): a tarball refused for good rejects the
// request; a store that cannot be read hands it back.
func (j *job) vetSource(ctx context.Context) (outcome, bool) {
	err := j.p.checkSource(ctx, j.req.Tenant, j.req.Source)
	var se *jobs.SourceError
	switch {
	case err == nil:
		return handedBack, false
	case errors.As(err, &se):
		return j.end(ctx, jobs.TypeRejected, &jobs.EventError{Code: se.Code, Field: "source", Message: err.Error()}), true
	case ctx.Err() != nil:
		return j.interrupted(ctx, ""), true
	}
	j.logger().Warn("source tarball unreadable; handing the request back", "err", err)
	return j.handBackLater(), true
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
	return j.now().Sub(j.asked) < j.w.assets.Config.AckWait/2
}

// fence is the check before a side effect: nothing to read while the
// lease is fresh, else the checkpoint must still be this delivery's. It
// runs before each step and, for the steps that create something, again
// right before the creating call is sent, after any budget wait.
func (j *job) fence(ctx context.Context) error {
	if j.leaseFresh() {
		return nil
	}
	return j.cp.Verify(ctx)
}

// beforeStep runs the fence and the checks before a step; stop means the
// job ends here with the outcome.
func (j *job) beforeStep(ctx context.Context, step jobs.Step) (outcome, bool) {
	j.phase = string(step)
	// The fence: no side effect for a job another worker took over.
	if err := j.fence(ctx); err != nil {
		return j.abandon(err), true
	}
	if j.st.CancelRequested {
		return j.cancel(ctx, step), true
	}
	if step == jobs.StepWaitReady {
		// The build takes a while: settle the progress events now
		// rather than hold them through the wait.
		actx, cancel := context.WithTimeout(ctx, natsOpTimeout)
		j.awaitProgress(actx)
		cancel()
	}
	return handedBack, false
}

// stepDone records a step's success.
func (j *job) stepDone(ctx context.Context, s *step, t0 time.Time) (outcome, bool) {
	if err := j.cp.SaveStep(ctx, s.name, s.save, j.now()); err != nil {
		if errors.Is(context.Cause(ctx), errCancelled) {
			// A cancel cut the save short: end the job here, its clean-up
			// covering what the step made (the project goes with it),
			// rather than hand it back for another delivery to cancel.
			return j.cancel(ctx, s.name), true
		}
		return j.abandon(err), true
	}
	j.w.m.StepFinished(string(s.name), "success", j.now().Sub(t0))
	j.publishStep(ctx, s.name)
	j.logger().Debug("step completed", "duration", j.now().Sub(t0))
	return handedBack, false
}

// stepFailed decides what a step's error means: the job ends (stop), or
// the step runs again after the wait it chose (spent here).
func (j *job) stepFailed(ctx context.Context, step jobs.Step, t0 time.Time, err error, bo backoff.BackOff) (outcome, bool) {
	log := j.logger()
	if ctx.Err() != nil {
		return j.interrupted(ctx, step), true
	}
	if errors.Is(err, jobs.ErrLeaseLost) {
		// The fence before a creating call: another worker has the job.
		return j.abandon(err), true
	}
	d := classify(err)
	if d.Class == vercel.Fatal && (d.Reason == vercel.ReasonForbidden || d.Reason == vercel.ReasonUnauthorized) {
		// A token is bad only when a call any valid token may make says
		// so: one endpoint refusing this team's token (an integration's
		// resources, say) must fail this job, not stop the fleet.
		switch j.w.credentialsRefused(ctx) {
		case probeAccepted:
			log.Warn("the API refused this call but accepts the worker's token: failing the job", "reason", d.Reason, "err", err)
			d.Class = vercel.Permanent
		case probeInconclusive:
			d.Class = vercel.Transient
		}
	}
	switch d.Class {
	case vercel.Fatal:
		j.w.m.StepFinished(string(step), "retry", j.now().Sub(t0))
		log.Error("API refused the worker's credentials: pausing all work", "reason", d.Reason, "err", err)
		j.w.creds.fail()
		if !j.w.creds.waitOK(ctx) {
			return j.interrupted(ctx, step), true
		}
		return handedBack, false
	case vercel.Permanent:
		j.w.m.StepFinished(string(step), "failure", j.now().Sub(t0))
		return j.fail(ctx, step, errorCode(err, d), err), true
	}
	j.w.m.StepFinished(string(step), "retry", j.now().Sub(t0))
	now := j.now()
	exhausted, serr := j.cp.AttemptFailed(ctx, jobs.AttemptError{At: now, Step: step, Class: d.Class.String(), Reason: d.Reason, Message: err.Error()},
		!d.RateLimited && !d.Busy, j.w.cfg.MaxAttempts, now)
	switch {
	case exhausted:
		return j.fail(ctx, step, "retries_exhausted", err), true
	case serr != nil:
		return j.abandon(serr), true
	}
	wait, capped := retryWait(d, j.w.cfg.MaxRateLimitWait, bo)
	if d.Busy {
		if j.busyWaited == 0 {
			j.waitingFor(step, jobs.WaitingBuildSlot)
		}
		if j.busyWaited += wait; j.busyWaited > j.w.cfg.MaxBuildsFullWait {
			return j.fail(ctx, step, errorCode(err, d), err), true
		}
	}
	if capped {
		log.Warn("capping an absurd rate-limit wait", "announced", d.RetryAfter, "cap", wait)
	}
	log.Info("step will be retried", "reason", d.Reason, "wait", wait, "attempts", j.st.Attempts, "err", err)
	if err := clock.Sleep(ctx, wait); err != nil {
		return j.interrupted(ctx, step), true
	}
	return handedBack, false
}

// retryWait is the wait before a failed step runs again: the API's
// Retry-After or the backoff, whichever is longer; for a rate-limit
// refusal the announced wait alone, capped at maxRateLimitWait (capped
// reports the cut).
func retryWait(d vercel.Decision, maxRateLimitWait time.Duration, bo backoff.BackOff) (wait time.Duration, capped bool) {
	if d.RateLimited {
		if d.RetryAfter > maxRateLimitWait {
			return maxRateLimitWait, true
		}
		return d.RetryAfter, false
	}
	return max(d.RetryAfter, bo.NextBackOff()), false
}

// interrupted ends a wait cut short: by a cancel, or by shutdown.
func (j *job) interrupted(ctx context.Context, step jobs.Step) outcome {
	if errors.Is(context.Cause(ctx), errCancelled) {
		return j.cancel(ctx, step)
	}
	return j.abandon(context.Cause(ctx))
}

// classify extends the client's classification with the pipeline's own
// errors; anything else from NATS (the source store, KV) is transient.
func classify(err error) vercel.Decision {
	var be *BuildError
	var se *StepError
	var src *jobs.SourceError
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

// publishStep announces a step's success. Progress events are
// informative; the terminal event is the contract, and its publication is
// retried until it lands. So they are published without waiting for the
// stream's answer, which costs the job no round trip; awaitProgress
// collects the answers before the terminal event goes out.
func (j *job) publishStep(ctx context.Context, step jobs.Step) {
	if j.w.cfg.NoProgressEvents {
		return
	}
	ev := j.st.Event(jobs.TypeStepCompleted, step, int(j.meta.NumDelivered), j.now())
	j.reapProgress()
	m, err := ev.Msg()
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

// progressEvent is a progress event published and not yet acknowledged.
type progressEvent struct {
	step jobs.Step
	ack  jetstream.PubAckFuture
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

// succeed records the success and its terminal event, then finishes.
func (j *job) succeed(ctx context.Context) outcome {
	ev := j.st.Event(jobs.TypeSucceeded, "", int(j.meta.NumDelivered), j.now())
	ev.Data.ClaimURL = vercel.ClaimURLAt(j.w.cfg.ClaimPage, j.st.ClaimCode, j.req.ReturnURL)
	if err := j.cp.Succeed(ctx, ev, j.now()); err != nil {
		return j.abandon(err)
	}
	j.logger().Info("deploy succeeded", "url", j.st.PublicURL(), "project_id", j.st.ProjectID)
	return j.finish(ctx)
}

// fail ends the job failed at step: see end.
func (j *job) fail(ctx context.Context, step jobs.Step, code string, cause error) outcome {
	e := &jobs.EventError{Step: step, Code: code, Message: cause.Error()}
	var be *BuildError
	if errors.As(cause, &be) {
		e.Logs = be.Logs
	}
	return j.end(ctx, jobs.TypeFailed, e)
}

// cancel ends a cancelled job: see end. It runs on a context of its own:
// the job's was cancelled.
func (j *job) cancel(ctx context.Context, step jobs.Step) outcome {
	if step != "" {
		j.phase = string(step)
	}
	return j.end(ctx, jobs.TypeCancelled, &jobs.EventError{Step: step})
}

// end decides a failure, rejection or cancel (typ) with its error
// (Checkpoint.Decide explains why before the clean-up), then cleans up
// and ends the job.
func (j *job) end(ctx context.Context, typ jobs.EventType, e *jobs.EventError) outcome {
	ev := j.st.Event(typ, e.Step, int(j.meta.NumDelivered), j.now())
	if typ != jobs.TypeCancelled {
		ev.Data.Error = e
	}
	if err := j.cp.Decide(context.WithoutCancel(ctx), ev, j.now()); err != nil {
		return j.abandon(err)
	}
	switch typ {
	case jobs.TypeRejected:
		j.logger().Warn("request rejected", "field", e.Field, "code", e.Code, "reason", e.Message)
	case jobs.TypeCancelled:
		j.logger().Info("deploy cancelled")
	default:
		j.logger().Warn("deploy failed", "code", e.Code, "err", e.Message)
	}
	return j.cleanUpAndEnd(ctx)
}

// cleanUpAndEnd deletes what a failed or cancelled job created, then
// records its end and publishes its terminal event. Deleting what is
// already gone counts as done, so it can run again after a crash.
func (j *job) cleanUpAndEnd(ctx context.Context) outcome {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	cleaned, cerrs := j.p.compensate(cctx, j.st)
	for _, e := range cerrs {
		j.logger().Warn("clean-up incomplete", "err", e)
	}
	if err := j.cp.End(cctx, cleaned, j.now()); err != nil {
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
func (j *job) finish(ctx context.Context) outcome {
	st := j.st
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), natsOpTimeout)
	defer cancel()
	j.awaitProgress(ctx)
	dead := st.Status == jobs.StatusFailed || (st.Status == jobs.StatusRejected && !refusedByApp(st))
	if dead {
		reason := jobs.DLQReasonFailed
		if st.Status == jobs.StatusRejected {
			reason = jobs.DLQReasonRejected
		}
		if err := j.w.deadLetter(ctx, letterOf(j.msg, j.meta, j.req.Tenant, j.req.ID, reason, st.Terminal.Data.Error, st.Errors)); err != nil {
			j.logger().Warn("dead letter not written; handing back", "err", err)
			return j.handBackLater()
		}
	}
	if err := j.settleApp(ctx); err != nil {
		j.logger().Warn("app not updated with the version's outcome; handing back", "app", st.App, "err", err)
		return j.handBackLater()
	}
	published := st.Published
	if !published {
		if err := j.w.publishEvent(ctx, *st.Terminal); err != nil {
			j.logger().Warn("terminal event not published; handing back", "err", err)
			return j.handBackLater()
		}
	}
	var err error
	if st.Status == jobs.StatusRejected {
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
			if err := j.cp.MarkPublished(ctx, j.now()); err != nil && !errors.Is(err, jobs.ErrLeaseLost) {
				j.logger().Warn("checkpoint not updated after the terminal event", "err", err)
			}
		}
	}
	return outcomeOf(st.Status)
}

// refusedByApp reports a version its app refused (claimed or expired):
// nothing was wrong with the request, and a replay would be refused
// again, so it gets its event but no dead letter, as a quota's refusal.
func refusedByApp(st *jobs.JobState) bool {
	if st.Terminal == nil || st.Terminal.Data.Error == nil {
		return false
	}
	code := st.Terminal.Data.Error.Code
	return code == jobs.CodeAppClaimed || code == jobs.CodeAppExpired
}

// duplicate handles a second message for a request id that has a job
// already (a client's retry after the dedup window): it never deploys
// twice. The existing outcome stays in the events stream.
func (j *job) duplicate(ctx context.Context) outcome {
	j.logger().Info("duplicate request for an existing job; not deploying again", "status", j.st.Status, "job_seq", j.st.Seq)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), natsOpTimeout)
	defer cancel()
	if err := j.msg.DoubleAck(ctx); err != nil {
		j.logger().Warn("ack of duplicate failed", "err", err)
	}
	return duplicate
}

// abandon stops work on the job without settling it when the lease was
// lost (another worker owns it) or the worker is shutting down (hand back).
func (j *job) abandon(err error) outcome {
	if errors.Is(err, jobs.ErrLeaseLost) {
		j.logger().Warn("another worker took this job over; stopping without acting further")
		return handedBack
	}
	if errors.Is(err, errShutdown) {
		j.logger().Info("handing the job back at shutdown", "step_done", j.st.Step)
		j.w.handBack(j.msg, j.logger(), 0)
		return handedBack
	}
	j.logger().Warn("job interrupted; handing it back", "err", err)
	return j.handBackLater()
}

// handBackLater hands the message back for a redelivery after PullWait.
func (j *job) handBackLater() outcome {
	j.w.handBack(j.msg, j.logger(), j.w.cfg.PullWait)
	return handedBack
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
		return
	}
	// Tell the fleet when the request can be taken again: nothing else
	// will (lanes.go). A moment after the nak, which the server may still
	// be processing when the hint reaches another worker: a fetch that
	// came too early would take the lane for dry until the next rescan.
	subject := msg.Subject()
	time.AfterFunc(delay+handBackHintDelay, func() { _ = w.js.Conn().Publish(jobs.LaneHints, []byte(subject)) })
}

// handBackHintDelay is how long after a nak the hint of a handed-back
// request goes out.
const handBackHintDelay = 100 * time.Millisecond

// publishEvent publishes ev and waits for the stream to store it.
func (w *Worker) publishEvent(ctx context.Context, ev jobs.Event) error {
	m, err := ev.Msg()
	if err != nil {
		return err
	}
	_, err = w.js.PublishMsg(ctx, m)
	return err
}
