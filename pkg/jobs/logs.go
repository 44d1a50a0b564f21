package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Build logs. While a worker follows a build's event stream it publishes
// each log line on the request's log subject, deploy.logs.<tenant>.<id>,
// on core NATS: nothing is stored, so a line reaches whoever listens at
// that moment and is gone with the job. A worker sends at most
// MaxLogLines lines a job, each cut to MaxLogLineBytes. Whether anyone
// listens decides how the worker waits for the build: a listener (a
// LogFollow) answers on deploy.logwatch.<tenant>.<id>, and a worker that
// hears an answer follows the build's stream (one API call, like a
// poll) instead of polling, so that the lines exist. A listener that
// comes while the build already runs says so on
// deploy.logfollow.<tenant>.<id>: the worker waiting for that build stops
// polling and follows the stream, which starts with the build's first
// line. A failed build's
// last FailedLogLines lines also travel in its failed event
// (EventError.Logs), so a platform can show its user why the build broke
// without listening.

// Bounds of the build logs.
const (
	MaxLogLines     = 2000
	MaxLogLineBytes = 1024
	FailedLogLines  = 20
)

// LogLine is one line of a build's log on the log subject.
type LogLine struct {
	RequestID string    `json:"requestId"`
	Tenant    string    `json:"tenant"`
	Seq       int       `json:"seq"`
	At        time.Time `json:"at"`
	Text      string    `json:"text"`
	// Level is "error" or "warning" when the build said so.
	Level string `json:"level,omitempty"`
}

// LogSubject is where a request's build log lines are published.
func LogSubject(tenant, id string) string { return logsPrefix + tenant + "." + id }

// LogWatchSubject is where a worker asks whether anyone follows a
// request's build log.
func LogWatchSubject(tenant, id string) string { return logWatchPrefix + tenant + "." + id }

// LogFollowSubject is where a follower that starts while the build runs
// tells the worker waiting for it.
func LogFollowSubject(tenant, id string) string { return logFollowPrefix + tenant + "." + id }

// AllLogFollows matches every request's LogFollowSubject.
const AllLogFollows = logFollowPrefix + ">"

const (
	logsPrefix      = "deploy.logs."
	logWatchPrefix  = "deploy.logwatch."
	logFollowPrefix = "deploy.logfollow."
)

// LogFollowKey reads the tenant and request id of a LogFollowSubject.
func LogFollowKey(subject string) (tenant, id string, ok bool) {
	rest, found := strings.CutPrefix(subject, logFollowPrefix)
	if !found {
		return "", "", false
	}
	tenant, id, ok = strings.Cut(rest, ".")
	return tenant, id, ok && ValidAppKey(tenant, id)
}

// LogFollow follows one request's build log lines as they are published.
type LogFollow struct {
	lines  *nats.Subscription
	answer *nats.Subscription
	ch     chan *nats.Msg
	ctx    context.Context
}

// FollowLogs subscribes to a request's build log and says so to the
// worker that waits for its build, which then follows the build's event
// stream. Start it before the build runs to see every line; lines
// published before it started are not kept anywhere.
func (c *Client) FollowLogs(ctx context.Context, tenant, id string) (*LogFollow, error) {
	if err := c.forTenant(&tenant); err != nil {
		return nil, err
	}
	if !ValidAppKey(tenant, id) {
		return nil, fmt.Errorf("follow logs: %q/%q is not a tenant and request id", tenant, id)
	}
	nc := c.js.Conn()
	f := &LogFollow{ch: make(chan *nats.Msg, 256), ctx: ctx}
	var err error
	if f.lines, err = nc.ChanSubscribe(LogSubject(tenant, id), f.ch); err != nil {
		return nil, fmt.Errorf("follow logs: %w", err)
	}
	if f.answer, err = nc.Subscribe(LogWatchSubject(tenant, id), func(m *nats.Msg) { _ = m.Respond(nil) }); err != nil {
		_ = f.lines.Unsubscribe()
		return nil, fmt.Errorf("follow logs: %w", err)
	}
	// A build already running learns of the follower now; one not yet
	// running asks when it starts, and is answered.
	if err := nc.Publish(LogFollowSubject(tenant, id), nil); err != nil {
		f.Stop()
		return nil, fmt.Errorf("follow logs: %w", err)
	}
	fctx, cancel := c.apiCtx(ctx)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		f.Stop()
		return nil, fmt.Errorf("follow logs: %w", err)
	}
	return f, nil
}

// Lines yields the log lines as they come, until ctx ends or Stop.
func (f *LogFollow) Lines() iter.Seq[LogLine] {
	return func(yield func(LogLine) bool) {
		for {
			select {
			case m, ok := <-f.ch:
				if !ok {
					return
				}
				var l LogLine
				if json.Unmarshal(m.Data, &l) != nil {
					continue
				}
				if !yield(l) {
					return
				}
			case <-f.ctx.Done():
				return
			}
		}
	}
}

// Stop ends the following.
func (f *LogFollow) Stop() {
	if f.answer != nil {
		_ = f.answer.Unsubscribe()
	}
	if f.lines != nil {
		_ = f.lines.Unsubscribe()
	}
}
