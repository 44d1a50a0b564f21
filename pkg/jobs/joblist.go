package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/deployq/deployq/internal/streamget"
	"github.com/nats-io/nats.go/jetstream"
)

// JobQuery selects checkpoints for Client.Jobs. Empty fields select
// everything.
type JobQuery struct {
	Tenant string
	Status Status
	// Code keeps the jobs that ended with this error code.
	Code string
	// Search keeps the jobs whose id, app or project name contains it.
	Search string
	// Limit bounds the jobs returned (the most recently updated first);
	// 0 returns every match.
	Limit int
}

func (q JobQuery) match(st *JobState) bool {
	if q.Status != "" && st.Status != q.Status {
		return false
	}
	if q.Code != "" && (st.Terminal == nil || st.Terminal.Data.Error == nil || st.Terminal.Data.Error.Code != q.Code) {
		return false
	}
	if q.Search != "" {
		s := strings.ToLower(q.Search)
		if !strings.Contains(strings.ToLower(st.ID), s) && !strings.Contains(strings.ToLower(st.App), s) &&
			!strings.Contains(strings.ToLower(st.ProjectName), s) {
			return false
		}
	}
	return true
}

// JobList is what Client.Jobs found: the jobs matching the query, and
// counts over every job of the tenant read, so a page of jobs comes with
// the picture around it.
type JobList struct {
	Jobs []JobState `json:"jobs"`
	// Matched counts the jobs matching the query (Jobs holds at most
	// Limit of them); Total every checkpoint read.
	Matched int `json:"matched"`
	Total   int `json:"total"`
	// ByStatus counts the checkpoints read by status.
	ByStatus map[Status]int `json:"byStatus"`
	// Codes counts the error codes of the jobs that ended with one.
	Codes map[string]int `json:"codes"`
	// Ended counts the jobs that ended in the last 5 minutes and the
	// last hour, by status: the throughput.
	Ended5m map[Status]int `json:"ended5m"`
	Ended1h map[Status]int `json:"ended1h"`
}

// Jobs lists checkpoints matching q, the most recently updated first. It
// reads every checkpoint of q.Tenant ("" every tenant's) from the jobs
// bucket: an admin's read, for the console, whose cost grows with the
// jobs kept (JOB_TTL); docs/BENCHMARKS.md has its measure.
func (c *Client) Jobs(ctx context.Context, q JobQuery) (*JobList, error) {
	if err := c.adminOnly("list jobs"); err != nil {
		return nil, err
	}
	filter := ">"
	if q.Tenant != "" {
		filter = q.Tenant + ".>"
	}
	w, err := c.jobs.WatchFiltered(ctx, []string{filter}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer func() { _ = w.Stop() }()
	now := c.now()
	out := &JobList{ByStatus: map[Status]int{}, Codes: map[string]int{}, Ended5m: map[Status]int{}, Ended1h: map[Status]int{}}
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				slices.SortFunc(out.Jobs, func(a, b JobState) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
				if q.Limit > 0 && len(out.Jobs) > q.Limit {
					out.Jobs = slices.Clip(out.Jobs[:q.Limit])
				}
				return out, nil
			}
			var st JobState
			if jsonUnmarshal(e.Value(), &st) != nil {
				continue
			}
			out.Total++
			out.ByStatus[st.Status]++
			if st.Done() {
				if st.Terminal != nil && st.Terminal.Data.Error != nil {
					out.Codes[st.Terminal.Data.Error.Code]++
				}
				if age := now.Sub(st.UpdatedAt); age <= time.Hour {
					out.Ended1h[st.Status]++
					if age <= 5*time.Minute {
						out.Ended5m[st.Status]++
					}
				}
			}
			if q.match(&st) {
				out.Matched++
				out.Jobs = append(out.Jobs, st)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("list jobs: %w", context.Cause(ctx))
		}
	}
}

// History returns every stored event of a request, oldest first: its
// steps, waits and outcome, each run's (an admin's read; the events
// stream keeps them for its max age).
func (c *Client) History(ctx context.Context, tenant, id string) ([]Event, error) {
	if err := c.adminOnly("read a request's history"); err != nil {
		return nil, err
	}
	msgs, err := streamget.All(ctx, c.events, EventSubject(tenant, id))
	if err != nil {
		return nil, fmt.Errorf("history of %s.%s: %w", tenant, id, err)
	}
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		if ev, err := DecodeEvent(m.Data); err == nil {
			out = append(out, ev)
		}
	}
	return out, nil
}
