package worker

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/deployq/deployq/internal/buildtime"
	"github.com/deployq/deployq/pkg/metrics"
	"github.com/deployq/deployq/pkg/vercel"
)

// Waiting for a build costs API calls, and the budget caps how many
// deploys finish per minute, so waitReady spends as few as it can. Its
// tools: a status poll (GET /v13/deployments/{id}, one call, tells where
// the build stands now) and the deployment's event stream (one call that
// lasts until the build ends, plus one poll to confirm the outcome with
// the URL and timestamps). A poll is cheaper when it lands after the
// build's end; the stream is cheaper when nobody knows when that is.
//
//   - The estimate is known (a build was observed, here or by another
//     worker of the team, or an expectation was configured): poll at the
//     expected end (mean + dev after the deployment's creation). If the
//     build still runs, poll once more where nearly every build has ended
//     (mean + 3·dev, and at least mean + mean/8: tailMargin): a build a
//     little slower than average costs one call more. If it still runs,
//     this build is not like the others:
//     follow its stream instead of guessing again.
//   - The estimate is cold (nothing observed, nothing configured): a few
//     jobs (ColdStreams, the scouts) follow their streams; the others
//     wait until the first scout's build has ended and taught the
//     estimate, then poll once at their own expected end. A cohort of
//     jobs started together thus costs one extra call per scout, not a
//     stream per job.
//   - A stream that ends without a final state, breaks or is refused: the
//     confirming poll tells where the build stands, and polls follow at a
//     quarter of the time elapsed (bounded by PollMin and PollMax), a
//     schedule that spends a number of calls growing with the logarithm
//     of the build's length, not with its length.
//   - At most MaxStreams streams are open at once per pipeline; a job that
//     finds none free polls on that schedule, taking a stream when one
//     frees up.
//
// Every time counts from the deployment's creation (JobState.DeployedAt),
// so a job resumed after a crash polls at once when its expected end has
// passed. Every wait ends with ctx.

// waitReady waits until the deployment is READY (the step succeeds) or
// has failed (a *BuildError), spending as few API calls as it can.
func (j *job) waitReady(ctx context.Context) error {
	j.startClaim()
	started := j.st.DeployedAt
	if started.IsZero() {
		started = j.now()
	}
	if j.logsWanted(ctx) {
		// Someone follows the build's log: the stream brings its lines.
		return j.follow(ctx, started)
	}
	err := j.waitByEstimate(ctx, started)
	if errors.Is(err, errFollowAsked) {
		// Someone started following the log meanwhile.
		return j.follow(ctx, started)
	}
	return err
}

// waitByEstimate waits as the estimate says, then follows the build; it
// returns errFollowAsked when a follower of the build log arrives first.
func (j *job) waitByEstimate(ctx context.Context, started time.Time) error {
	est := j.p.builds.Current(ctx)
	j.p.recordEstimate(est)
	if est.Cold() {
		done, err := j.waitCold(ctx, started)
		if done || err != nil {
			return err
		}
		est = j.p.builds.Current(ctx)
	}
	if done, err := j.pollAt(ctx, started.Add(est.Mean+est.Dev)); done || err != nil {
		return err
	}
	if tail := started.Add(est.Mean + tailMargin(est)); tail.Sub(j.now()) >= j.p.cfg.PollMin {
		if done, err := j.pollAt(ctx, tail); done || err != nil {
			return err
		}
	}
	return j.follow(ctx, started)
}

// waitCold waits while the estimate is cold: as a scout, following this
// deployment to its end (done), or until a scout has taught the estimate
// (not done: the caller polls). The estimate is looked at again whenever
// it changes or a scout leaves, and at least every buildtime.Refresh,
// when another worker may have shared what it learned.
func (j *job) waitCold(ctx context.Context, started time.Time) (done bool, err error) {
	m := j.p.cfg.Metrics
	waiting := false
	defer func() {
		if waiting {
			m.BuildWaitEnded(metrics.BuildWaitCold)
		}
	}()
	for {
		changed := j.p.builds.Changes()
		if !j.p.builds.Current(ctx).Cold() {
			return false, nil
		}
		select {
		case j.p.scouts <- struct{}{}:
			if waiting {
				m.BuildWaitEnded(metrics.BuildWaitCold)
				waiting = false
			}
			err := j.follow(ctx, started)
			<-j.p.scouts
			// If this build taught nothing (it failed, or the job was
			// cancelled), another waiting job takes over.
			j.p.builds.Notify()
			return true, err
		default:
		}
		if !waiting {
			m.BuildWaitStarted(metrics.BuildWaitCold)
			waiting = true
		}
		t := time.NewTimer(buildtime.Refresh)
		select {
		case <-changed:
		case <-t.C:
		case <-j.logsAsked:
			t.Stop()
			return false, errFollowAsked
		case <-ctx.Done():
			t.Stop()
			return false, context.Cause(ctx)
		}
		t.Stop()
	}
}

// follow waits for a build that is running later than expected, or whose
// length nobody knows: by its event stream when one is free, else by polls
// spaced by a quarter of the time elapsed, taking a stream when one frees
// up. A stream is tried once; if it ends without the build's end, polls
// take over.
func (j *job) follow(ctx context.Context, started time.Time) error {
	streamed := false
	for {
		if !streamed && j.p.streamsServed(j.now()) {
			select {
			case j.p.streams <- struct{}{}:
				streamed = true
				done, err := j.streamAndPoll(ctx)
				<-j.p.streams
				if done || err != nil {
					return err
				}
				continue
			default:
			}
		}
		wait := min(max(j.now().Sub(started)/4, j.p.cfg.PollMin), j.p.cfg.PollMax)
		done, err := j.pollAt(ctx, j.now().Add(wait))
		if errors.Is(err, errFollowAsked) {
			streamed = false // someone follows the log now: stream again
			continue
		}
		if done || err != nil {
			return err
		}
	}
}

// streamAndPoll follows the deployment's event stream and, meanwhile,
// polls its status StreamPoll after the stream opened, then at doubling
// intervals: the stream is an optimisation, not a promise. It may stay
// open after the build ended (Vercel's own CLI polls while it streams for
// this reason), say nothing, be cut by a proxy, or not be served at all;
// none of that fails or stalls the job. When the stream ends, one poll
// confirms the outcome, with the deployment's URL and timestamps for the
// estimate; done is false when the build still runs, and polls go on.
func (j *job) streamAndPoll(ctx context.Context) (done bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		j.followStream(sctx)
	}()
	defer func() { cancel(); <-ended }()
	wait := j.p.cfg.StreamPoll
	for {
		t := time.NewTimer(wait)
		wait *= 2
		select {
		case <-ended:
			t.Stop()
			if ctx.Err() != nil {
				return false, context.Cause(ctx)
			}
			return j.pollAt(ctx, j.now())
		case <-t.C:
			if done, err := j.pollAt(ctx, j.now()); done || err != nil {
				return done, err
			}
		case <-ctx.Done():
			t.Stop()
			return false, context.Cause(ctx)
		}
	}
}

// followStream follows the deployment's events until one announces the
// final state, the stream ends or ctx ends. Whatever goes wrong with the
// stream is not the job's error: the polls of streamAndPoll tell where
// the build stands. A stream the API does not serve (404, 405, 410,
// 501) is not tried again by this pipeline for streamRetry.
func (j *job) followStream(ctx context.Context) {
	j.p.cfg.Metrics.BuildWaitStarted(metrics.BuildWaitStream)
	defer j.p.cfg.Metrics.BuildWaitEnded(metrics.BuildWaitStream)
	_, err := j.p.api.FollowDeploymentEvents(ctx, j.st.DeploymentID, func(e vercel.DeploymentEvent) bool {
		j.logEvent(e)
		return e.TerminalState() != ""
	})
	if err == nil || ctx.Err() != nil {
		return
	}
	var apiErr *vercel.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.StatusCode {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusGone, http.StatusNotImplemented:
			if now := j.now(); j.p.noStreamsUntil(now, now.Add(streamRetry)) {
				j.logger().Warn("the API does not serve deployment event streams; waiting for builds by polling", "status", apiErr.StatusCode, "retry_in", streamRetry)
			}
			return
		}
	}
	j.logger().Debug("deployment event stream ended early; polling instead", "err", err)
}

// streamRetry is how long a pipeline goes without event streams after the
// API refused to serve one.
const streamRetry = 10 * time.Minute

// pollAt reads the deployment at the instant at (at once if it has
// passed); done when the build has ended: READY recorded, or its failure
// returned.
func (j *job) pollAt(ctx context.Context, at time.Time) (done bool, err error) {
	if d := at.Sub(j.now()); d > 0 {
		j.p.cfg.Metrics.BuildWaitStarted(metrics.BuildWaitPoll)
		err := j.sleepOrFollow(ctx, d)
		j.p.cfg.Metrics.BuildWaitEnded(metrics.BuildWaitPoll)
		if err != nil {
			return false, err
		}
	}
	return j.readDeployment(ctx)
}

// readDeployment reads the deployment once; done when the build has
// ended. It is a function of its own, kept from being inlined, so that
// its frame is off the stack while pollAt sleeps: ten thousand waiting
// jobs are ten thousand stacks (TestWaitingJobStackStaysSmall).
//
//go:noinline
func (j *job) readDeployment(ctx context.Context) (done bool, err error) {
	d, _, err := j.p.api.GetDeployment(ctx, j.st.DeploymentID)
	if err != nil {
		return false, err
	}
	switch d.ReadyState {
	case vercel.StateReady:
		if !j.builtSeen && d.Ready > 0 && d.CreatedAt > 0 && d.Ready >= d.CreatedAt {
			// The API's own timestamps: the build time exactly.
			j.builtSeen = true
			j.p.builds.Observe(ctx, time.Duration(d.Ready-d.CreatedAt)*time.Millisecond)
			j.p.recordEstimate(j.p.builds.Snapshot())
		}
		if d.AliasError != nil {
			return true, &BuildError{DeploymentID: d.ID, State: "ALIAS_ERROR", Code: cmp.Or(d.AliasError.Code, "ALIAS_FAILED"), Message: d.AliasError.Message}
		}
		if !d.AliasAssigned {
			// Built, but its domains do not point at it yet: under
			// Vercel's Standard Protection only the production domain is
			// public, so the wait goes on until it is assigned, as
			// Vercel's own client waits.
			return false, nil
		}
		j.st.URL, j.st.DeploymentURL = publicURL(d, j.st.ProjectName, j.st.Domain), httpsURL(d.URL)
		return true, nil
	case vercel.StateError, vercel.StateCanceled:
		be := &BuildError{DeploymentID: d.ID, State: d.ReadyState, Code: cmp.Or(d.ErrorCode, "BUILD_FAILED"), Message: d.ErrorMessage}
		if d.ReadyState == vercel.StateError {
			be.Logs = j.failedLog(ctx, d.ID)
		}
		return true, be
	case vercel.StateBlocked:
		// Vercel holds the deployment back (a team's protection or
		// check, an author without access): it will not build by
		// itself, so waiting until the job's deadline helps nobody.
		return true, &BuildError{DeploymentID: d.ID, State: d.ReadyState, Code: cmp.Or(d.ErrorCode, "DEPLOYMENT_BLOCKED"),
			Message: cmp.Or(d.ErrorMessage, "Vercel blocked the deployment; the team's settings or checks must let it through")}
	}
	return false, nil
}

// publicURL is the URL to hand an end user: the app's domain under the
// platform's suffix once the deployment is served on it, else the
// project's production domain. Vercel's Standard Protection (the default) puts every
// deployment's generated URL behind Vercel's login; the production
// domain stays public. It is the alias named after the project
// (<project>.vercel.app) when there is one, else the shortest alias, else
// (no alias at all) the generated URL.
func publicURL(d *vercel.Deployment, project, domain string) string {
	if domain != "" && slices.Contains(d.Alias, domain) {
		return httpsURL(domain)
	}
	best := ""
	for _, a := range d.Alias {
		if project != "" && a == project+".vercel.app" {
			return httpsURL(a)
		}
		if best == "" || len(a) < len(best) {
			best = a
		}
	}
	return httpsURL(cmp.Or(best, d.URL))
}

func httpsURL(host string) string {
	if host == "" || strings.HasPrefix(host, "https://") {
		return host
	}
	return "https://" + host
}

// recordEstimate shows the expected build time in the metrics; a cold
// estimate (nothing observed or configured) leaves them at 0.
func (p *Pipeline) recordEstimate(e buildtime.Estimate) {
	if !e.Cold() {
		p.cfg.Metrics.SetBuildEstimate(e.Mean, e.Dev)
	}
}

// tailMargin is how far past the mean the second poll comes: three mean
// deviations, where nearly every build has ended, but at least an eighth
// of the mean. A run of near-identical builds shrinks the deviation to
// almost nothing, and a margin that thin would send every build a little
// slower than the run to its stream: two calls where one poll would do.
func tailMargin(e buildtime.Estimate) time.Duration {
	return max(3*e.Dev, e.Mean/8)
}
