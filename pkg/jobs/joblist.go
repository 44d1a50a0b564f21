package jobs

import (
	"context"
	"errors"
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

// jobFacts are the fields of a checkpoint that Jobs filters and counts
// on. Decoding only these skips the rest of each checkpoint (attempts,
// the terminal event's build log lines): most of the cost of a read that
// goes back far. Only the jobs returned are decoded whole.
type jobFacts struct {
	ID          string         `json:"id"`
	Status      Status         `json:"status"`
	App         string         `json:"app"`
	ProjectName string         `json:"projectName"`
	UpdatedAt   time.Time      `json:"updatedAt"`
	Terminal    *terminalFacts `json:"terminal"`
}

// terminalFacts is the part of a terminal event jobFacts decodes.
type terminalFacts struct {
	Data struct {
		Error *errorFacts `json:"error"`
	} `json:"data"`
}

// errorFacts is the part of an event's error jobFacts decodes.
type errorFacts struct {
	Code string `json:"code"`
}

// factsOf takes the facts from a checkpoint decoded whole.
func factsOf(st *JobState) jobFacts {
	f := jobFacts{ID: st.ID, Status: st.Status, App: st.App, ProjectName: st.ProjectName, UpdatedAt: st.UpdatedAt}
	if st.Terminal != nil && st.Terminal.Data.Error != nil {
		f.Terminal = &terminalFacts{}
		f.Terminal.Data.Error = &errorFacts{Code: st.Terminal.Data.Error.Code}
	}
	return f
}

// code is the error code the job ended with, if any.
func (f *jobFacts) code() string {
	if f.Terminal == nil || f.Terminal.Data.Error == nil {
		return ""
	}
	return f.Terminal.Data.Error.Code
}

func (q JobQuery) match(f *jobFacts) bool {
	if q.Status != "" && f.Status != q.Status {
		return false
	}
	if q.Code != "" && f.code() != q.Code {
		return false
	}
	if q.Search != "" {
		s := strings.ToLower(q.Search)
		if !strings.Contains(strings.ToLower(f.ID), s) && !strings.Contains(strings.ToLower(f.App), s) &&
			!strings.Contains(strings.ToLower(f.ProjectName), s) {
			return false
		}
	}
	return true
}

// JobList is what Client.Jobs found: the newest jobs matching the query,
// and counts over the jobs it read, so a page of jobs comes with the
// picture around it.
type JobList struct {
	Jobs []JobState `json:"jobs"`
	// Total counts the checkpoints kept (of the query's tenant); Read
	// those read to answer, the most recently updated, and Since is the
	// oldest update among them. Complete says Read is Total: Matched and
	// the counts below cover every job kept, not only the recent ones.
	Total    int       `json:"total"`
	Read     int       `json:"read"`
	Since    time.Time `json:"since,omitzero"`
	Complete bool      `json:"complete"`
	// Matched counts the jobs read that match the query (Jobs holds at
	// most Limit of them).
	Matched int `json:"matched"`
	// ByStatus counts the checkpoints read by status.
	ByStatus map[Status]int `json:"byStatus"`
	// Codes counts the error codes of the jobs read that ended with one.
	Codes map[string]int `json:"codes"`
	// Ended counts the jobs that ended in the last 5 minutes and the
	// last hour, by status: the throughput. Always exact: the read goes
	// back an hour at least.
	Ended5m map[Status]int `json:"ended5m"`
	Ended1h map[Status]int `json:"ended1h"`
}

// Jobs lists the checkpoints matching q, the most recently updated
// first: an admin's read, for the console.
//
// Reading every checkpoint kept (30 days of them) for a page of 200 would
// cost in proportion to the days kept. The jobs bucket keeps one message
// per job, its latest checkpoint, in the order of the jobs' last updates,
// so Jobs reads the last hour of its stream (the throughput's window),
// then on backwards in spans that double until it has q.Limit matches or
// has read everything; q.Limit 0 reads every checkpoint.
func (c *Client) Jobs(ctx context.Context, q JobQuery) (*JobList, error) {
	if err := c.adminOnly("list jobs"); err != nil {
		return nil, err
	}
	stream, err := c.js.Stream(ctx, "KV_"+BucketJobs)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	state := stream.CachedInfo().State
	subject := "$KV." + BucketJobs + ".>"
	total := state.Msgs
	if q.Tenant != "" {
		subject = "$KV." + BucketJobs + "." + q.Tenant + ".>"
		if total, err = streamget.Count(ctx, stream, subject); err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
	}
	now := c.now()
	out := &JobList{Total: int(total), ByStatus: map[Status]int{}, Codes: map[string]int{}, Ended5m: map[Status]int{}, Ended1h: map[Status]int{}}
	if total == 0 {
		out.Complete = true
		return out, nil
	}
	read := func(start, end uint64) error {
		msgs, err := streamget.Range(ctx, stream, subject, start, end)
		if err != nil {
			return fmt.Errorf("list jobs: %w", err)
		}
		for i := len(msgs) - 1; i >= 0; i-- {
			if msgs[i].Header.Get("KV-Operation") != "" {
				continue
			}
			// A match that would be returned is decoded whole, once;
			// the rest only for their facts.
			var st JobState
			var f jobFacts
			wanted := q.Limit == 0 || len(out.Jobs) < q.Limit
			if wanted {
				if jsonUnmarshal(msgs[i].Data, &st) != nil {
					continue
				}
				f = factsOf(&st)
			} else if jsonUnmarshal(msgs[i].Data, &f) != nil {
				continue
			}
			out.count(&f, now)
			if q.match(&f) {
				out.Matched++
				if wanted {
					out.Jobs = append(out.Jobs, st)
				}
			}
		}
		return nil
	}
	// The last hour, whole: the throughput counts every job in it.
	end := state.LastSeq + 1
	hour, err := firstSince(ctx, stream, subject, state.FirstSeq, end, now.Add(-time.Hour))
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	if err := read(hour, end); err != nil {
		return nil, err
	}
	end = hour
	// Then back, in spans that double, until a page of matches: the
	// first span holds about the jobs missing, at the stream's mean
	// density of kept messages per sequence.
	perSeq := float64(state.LastSeq-state.FirstSeq+1) / float64(state.Msgs)
	span := uint64(float64(max(q.Limit-out.Matched, 100))*perSeq) + 1
	for ; end > state.FirstSeq && (q.Limit == 0 || out.Matched < q.Limit); span *= 2 {
		start := state.FirstSeq
		if end-state.FirstSeq > span {
			start = end - span
		}
		if err := read(start, end); err != nil {
			return nil, err
		}
		end = start
	}
	out.Complete = end <= state.FirstSeq
	// The stream's order is the order of the writes; the workers' clocks
	// stamp UpdatedAt.
	slices.SortStableFunc(out.Jobs, func(a, b JobState) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	return out, nil
}

// firstSince finds, by bisection over [lo, hi), the sequence from which
// the checkpoints on subject were updated at t or later (hi when none
// was): the stream's order is the order of the updates, give or take the
// workers' clocks. Each step reads the first checkpoint at or after a
// sequence, about log2(hi-lo) reads in all.
func firstSince(ctx context.Context, s jetstream.Stream, subject string, lo, hi uint64, t time.Time) (uint64, error) {
	for lo < hi {
		mid := lo + (hi-lo)/2
		m, err := s.GetMsg(ctx, mid, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			hi = mid // nothing on subject from mid on
			continue
		}
		if err != nil {
			return 0, err
		}
		var st struct {
			UpdatedAt time.Time `json:"updatedAt"`
		}
		if jsonUnmarshal(m.Data, &st) == nil && st.UpdatedAt.Before(t) {
			lo = m.Sequence + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// count adds one checkpoint read to the counts.
func (l *JobList) count(f *jobFacts, now time.Time) {
	l.Read++
	if l.Since.IsZero() || f.UpdatedAt.Before(l.Since) {
		l.Since = f.UpdatedAt
	}
	l.ByStatus[f.Status]++
	if !f.Status.Done() {
		return
	}
	if code := f.code(); code != "" {
		l.Codes[code]++
	}
	if age := now.Sub(f.UpdatedAt); age <= time.Hour {
		l.Ended1h[f.Status]++
		if age <= 5*time.Minute {
			l.Ended5m[f.Status]++
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
