package console

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/deployq/deployq/pkg/budget"
	"github.com/deployq/deployq/pkg/jobs"
)

func (s *server) overview(w http.ResponseWriter, r *http.Request) {
	o, err := s.cfg.Client.Overview(r.Context())
	phases := map[jobs.Step]string{"": jobs.PhaseAfter("")}
	for _, st := range jobs.Steps() {
		phases[st] = jobs.PhaseAfter(st)
	}
	s.reply(w, struct {
		*jobs.Overview
		Actions bool `json:"actions"`
		// Phases names, for each step done, what a running job does
		// next (jobs.PhaseAfter), for the live rows.
		Phases map[jobs.Step]string `json:"phases"`
	}{o, s.cfg.Token != "", phases}, err)
}

// jobRow is a job as the console lists it.
type jobRow struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Status    string    `json:"status"`
	Step      string    `json:"step,omitempty"`
	Code      string    `json:"code,omitempty"`
	URL       string    `json:"url,omitempty"`
	App       string    `json:"app,omitempty"`
	Updated   time.Time `json:"updated"`
	Attempts  int       `json:"attempts"`
	Submitted time.Time `json:"submitted"`
}

func rowOf(st *jobs.JobState) jobRow {
	row := jobRow{ID: st.ID, Tenant: st.Tenant, Status: string(st.Status), Step: string(st.Step), URL: st.PublicURL(),
		App: st.App, Updated: st.UpdatedAt, Attempts: st.Attempts, Submitted: st.SubmittedAt}
	if st.Terminal != nil && st.Terminal.Data.Error != nil {
		row.Code = st.Terminal.Data.Error.Code
	}
	return row
}

// maxRows bounds what one answer lists (jobs, dead letters, apps): the
// page renders what it gets at once; filters narrow the rest down.
const maxRows = 200

func (s *server) jobs(w http.ResponseWriter, r *http.Request) {
	tenant, ok := tenantParam(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 || limit > maxRows {
		limit = maxRows
	}
	list, err := s.cfg.Client.Jobs(r.Context(), jobs.JobQuery{Tenant: tenant, Status: jobs.Status(q.Get("status")),
		Code: q.Get("code"), Search: q.Get("q"), Limit: limit})
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	out := struct {
		*jobs.JobList
		Jobs []jobRow `json:"jobs"`
	}{JobList: list, Jobs: make([]jobRow, 0, len(list.Jobs))}
	for i := range list.Jobs {
		out.Jobs = append(out.Jobs, rowOf(&list.Jobs[i]))
	}
	s.reply(w, out, nil)
}

// jobView is one job as its page shows it: the checkpoint and every
// stored event, claim codes left out.
type jobView struct {
	State      *jobs.JobState        `json:"state"`
	Events     []jobs.Event          `json:"events"`
	DeadLetter *jobs.DeadLetterEntry `json:"deadLetter,omitempty"`
	Queued     *jobs.QueuedRequest   `json:"queued,omitempty"`
	Request    *requestSummary       `json:"request,omitempty"`
}

func (s *server) job(w http.ResponseWriter, r *http.Request) {
	tenant, id, ok := requestKey(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	st, err := s.cfg.Client.Status(ctx, tenant, id)
	if errors.Is(err, jobs.ErrUnknownRequest) {
		fail(w, http.StatusNotFound, "no job, event or queued request "+tenant+"/"+id)
		return
	}
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	v := jobView{State: st.State, Queued: st.Queued}
	if v.Events, err = s.cfg.Client.History(ctx, tenant, id); err != nil {
		s.reply(w, nil, err)
		return
	}
	for i := range v.Events {
		v.Events[i] = redactEvent(v.Events[i])
	}
	if v.State != nil {
		c := *v.State
		c.ClaimCode = ""
		if c.Terminal != nil {
			t := redactEvent(*c.Terminal)
			c.Terminal = &t
		}
		v.State = &c
	}
	if dl, err := s.cfg.Client.DeadLetter(ctx, tenant, id); err == nil {
		v.Request = summarize(dl.Request)
		dl.Request, dl.RequestRaw = nil, nil
		v.DeadLetter = dl
	}
	s.reply(w, v, nil)
}

// redactEvent leaves out what hands the project over.
func redactEvent(ev jobs.Event) jobs.Event {
	ev.Data.ClaimCode, ev.Data.ClaimURL = "", ""
	return ev
}

// requestSummary is a dead-lettered request without what it may keep
// secret: its environment's values.
type requestSummary struct {
	Name      string   `json:"name,omitempty"`
	App       string   `json:"app,omitempty"`
	Framework string   `json:"framework,omitempty"`
	Source    string   `json:"source,omitempty"`
	EnvKeys   []string `json:"envKeys,omitempty"`
	Priority  string   `json:"priority,omitempty"`
}

func summarize(raw []byte) *requestSummary {
	if raw == nil {
		return nil
	}
	req, err := jobs.DecodeRequest(raw, jobs.Limits{})
	if err != nil {
		return nil
	}
	sum := &requestSummary{Name: req.Name, App: req.App, Framework: req.Framework, Source: req.Source.SHA1, Priority: string(req.Priority)}
	for k := range req.Env {
		sum.EnvKeys = append(sum.EnvKeys, k)
	}
	slices.Sort(sum.EnvKeys)
	return sum
}

// letterRow is a dead letter as the console lists it.
type letterRow struct {
	Seq      uint64           `json:"seq"`
	ID       string           `json:"id"`
	Tenant   string           `json:"tenant"`
	Reason   jobs.DLQReason   `json:"reason"`
	Error    *jobs.EventError `json:"error,omitempty"`
	Attempts int              `json:"attempts"`
	At       time.Time        `json:"at"`
	Request  *requestSummary  `json:"request,omitempty"`
}

func (s *server) deadLetters(w http.ResponseWriter, r *http.Request) {
	tenant, ok := tenantParam(w, r)
	if !ok {
		return
	}
	all, err := s.cfg.Client.DeadLetters(r.Context(), tenant)
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	out := struct {
		Total   int         `json:"total"`
		Letters []letterRow `json:"letters"`
	}{Total: len(all)}
	for i := len(all) - 1; i >= 0 && len(out.Letters) < maxRows; i-- {
		e := all[i]
		out.Letters = append(out.Letters, letterRow{Seq: e.Seq, ID: e.ID, Tenant: e.Tenant, Reason: e.Reason, Error: e.Error,
			Attempts: len(e.Attempts), At: e.At, Request: summarize(e.Request)})
	}
	s.reply(w, out, nil)
}

func (s *server) budget(w http.ResponseWriter, _ *http.Request) {
	out := struct {
		Buckets []budget.Bucket `json:"buckets"`
	}{Buckets: []budget.Bucket{}}
	if s.cfg.Budget != nil {
		out.Buckets = s.cfg.Budget.Snapshot()
	}
	s.reply(w, out, nil)
}

// appRow is an app as the console lists it.
type appRow struct {
	Tenant        string        `json:"tenant"`
	ID            string        `json:"id"`
	State         jobs.AppState `json:"state"`
	Versions      int           `json:"versions"`
	ProjectName   string        `json:"projectName,omitempty"`
	URL           string        `json:"url,omitempty"`
	LastRequest   string        `json:"lastRequest,omitempty"`
	LastVersionAt time.Time     `json:"lastVersionAt,omitzero"`
	ClaimExpires  time.Time     `json:"claimExpires,omitzero"`
	ClaimedAt     time.Time     `json:"claimedAt,omitzero"`
	ClaimedVia    string        `json:"claimedVia,omitempty"`
	ExpiresAt     time.Time     `json:"expiresAt,omitzero"`
	ExpiredAt     time.Time     `json:"expiredAt,omitzero"`
	Busy          string        `json:"busy,omitempty"`
}

func (s *server) apps(w http.ResponseWriter, r *http.Request) {
	tenant, ok := tenantParam(w, r)
	if !ok {
		return
	}
	state := jobs.AppState(r.URL.Query().Get("state"))
	all, err := s.cfg.Client.Apps(r.Context(), tenant)
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	out := struct {
		Total  int                   `json:"total"`
		States map[jobs.AppState]int `json:"states"`
		Apps   []appRow              `json:"apps"`
	}{Total: len(all), States: map[jobs.AppState]int{}, Apps: []appRow{}}
	slices.SortFunc(all, func(a, b jobs.App) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	for _, a := range all {
		out.States[a.State]++
		if (state != "" && a.State != state) || len(out.Apps) >= maxRows {
			continue
		}
		row := appRow{Tenant: a.Tenant, ID: a.ID, State: a.State, Versions: a.Versions, ProjectName: a.ProjectName, URL: a.URL,
			LastRequest: a.LastRequest, LastVersionAt: a.LastVersionAt, ClaimedAt: a.ClaimedAt, ClaimedVia: a.ClaimedVia,
			ExpiredAt: a.ExpiredAt, Busy: a.Busy}
		if a.Claim != nil {
			row.ClaimExpires = a.Claim.ExpiresAt
		}
		if s.cfg.AppTTL > 0 && a.State == jobs.AppLive && !a.LastVersionAt.IsZero() {
			row.ExpiresAt = a.LastVersionAt.Add(s.cfg.AppTTL)
		}
		out.Apps = append(out.Apps, row)
	}
	s.reply(w, out, nil)
}
