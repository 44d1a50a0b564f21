package worker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/deployq/deployq/internal/clip"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go"
)

// A build's log (jobs/logs.go): the lines a followed event stream brings
// are published on the request's log subject, on core NATS, and the last
// ones kept for the failed event. A job whose build nobody follows polls
// as usual; one whose log someone follows streams, so that the lines
// exist; a failed build's last lines are read once (one call) when the
// job did not stream.

// buildLog is a job's build log: the lines published and the last ones.
type buildLog struct {
	mu   sync.Mutex
	sent int
	last []string // at most jobs.FailedLogLines, oldest first
}

// logWatchTimeout bounds the ask whether anyone follows a build's log. A
// follower answers within a round trip; without one the server says so
// at once (no responders).
const logWatchTimeout = 250 * time.Millisecond

// logsWanted reports whether anyone follows the job's build log now.
func (j *job) logsWanted(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, logWatchTimeout)
	defer cancel()
	_, err := j.w.js.Conn().RequestWithContext(ctx, jobs.LogWatchSubject(j.req.Tenant, j.req.ID), nil)
	return err == nil
}

// logEvent publishes a build event that is a log line, and keeps it.
func (j *job) logEvent(e vercel.DeploymentEvent) {
	switch e.Type {
	case vercel.EventStdout, vercel.EventStderr, vercel.EventCommand:
	default:
		return
	}
	if e.Text == "" {
		return
	}
	text := clip.String(e.Text, jobs.MaxLogLineBytes)
	l := j.buildLog()
	l.mu.Lock()
	l.keep(text)
	seq := l.sent + 1
	send := l.sent < jobs.MaxLogLines
	if send {
		l.sent++
	}
	l.mu.Unlock()
	if !send {
		return
	}
	at := j.now()
	if e.Created > 0 {
		at = time.UnixMilli(e.Created)
	}
	level := e.Level
	if level == "" && e.Type == vercel.EventStderr {
		level = "error"
	}
	data, _ := json.Marshal(jobs.LogLine{RequestID: j.req.ID, Tenant: j.req.Tenant, Seq: seq, At: at.UTC(), Text: text, Level: level})
	// Core NATS: fire and forget, nothing stored.
	_ = j.w.js.Conn().Publish(jobs.LogSubject(j.req.Tenant, j.req.ID), data)
}

func (l *buildLog) keep(text string) {
	if len(l.last) == jobs.FailedLogLines {
		l.last = slices.Delete(l.last, 0, 1)
	}
	l.last = append(l.last, text)
}

// buildLog is the job's log, made on first use (most jobs poll).
func (j *job) buildLog() *buildLog {
	j.logOnce.Do(func() { j.logs = &buildLog{} })
	return j.logs
}

// failedLog is the last lines of a failed build: those the stream brought,
// or, when the job did not stream, read once from the deployment's
// events (a finished build's stream sends them all and ends).
func (j *job) failedLog(ctx context.Context, deploymentID string) []string {
	l := j.buildLog()
	l.mu.Lock()
	have := slices.Clone(l.last)
	l.mu.Unlock()
	if len(have) > 0 {
		return have
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, _ = j.p.api.FollowDeploymentEvents(ctx, deploymentID, func(e vercel.DeploymentEvent) bool {
		j.logEvent(e)
		return e.TerminalState() != ""
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.last)
}

// subscribeLogFollows hears followers that arrive while a build runs
// (jobs.FollowLogs says so on jobs.LogFollowSubject). The job waiting for
// that build, if it runs here, stops polling and follows the build's
// stream. (Not on the log watch subject: a subscriber there would answer
// nothing yet keep every worker's ask waiting for its timeout.)
func (w *Worker) subscribeLogFollows() (*nats.Subscription, error) {
	return w.js.Conn().Subscribe(jobs.AllLogFollows, func(m *nats.Msg) {
		tenant, id, ok := jobs.LogFollowKey(m.Subject)
		if !ok {
			return
		}
		if t := w.inflight.lookup(jobs.CancelSubject(tenant, id)); t != nil && t.logs != nil {
			select {
			case t.logs <- struct{}{}:
			default: // already told
			}
		}
	})
}

// errFollowAsked ends a wait for a build when someone starts following
// its log: the job follows the build's stream instead.
var errFollowAsked = errors.New("a follower of the build log arrived")

// sleepOrFollow sleeps d, or less if someone starts following the build's
// log (errFollowAsked) or ctx ends.
func (j *job) sleepOrFollow(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-j.logsAsked: // nil outside a tracked job: never ready
		return errFollowAsked
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
