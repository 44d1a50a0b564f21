package vercelsim

import (
	"maps"
	"slices"
	"time"
)

// The types below are read-only copies of the Server's state, for tests to
// look at what exists without going through the API (and its limits).

// Project is a project as the simulator holds it.
type Project struct {
	ID        string
	Name      string
	AccountID string
	Framework string // "" when not chosen yet
	CreatedAt time.Time
	Env       []string // variable names, in creation order
	// Deployments is the number of live deployments.
	Deployments int
	// Domains are the project's own domains.
	Domains []string
}

// Deployment is a deployment with its state at the time of the call.
type Deployment struct {
	ID           string
	URL          string
	Name         string
	ProjectID    string
	ProjectName  string
	Target       string // production, staging, or "" for preview
	ReadyState   string
	Meta         map[string]string
	CreatedAt    time.Time
	ReadyAt      time.Time // when the build ends (READY or ERROR), past or future
	ErrorCode    string
	ErrorMessage string
}

// Authorization is an integration billing authorization.
type Authorization struct {
	ID                         string
	IntegrationConfigurationID string
	ProductID                  string
	BillingPlanID              string
	Metadata                   string
	Status                     string
	CreatedAt                  time.Time
}

// Store is a database created through the integration.
type Store struct {
	ID                         string
	Name                       string
	IntegrationConfigurationID string
	ProductID                  string
	AuthorizationID            string
	CreatedAt                  time.Time
	// Projects are the ids of the connected projects.
	Projects []string
	// Owner is the account the store belongs to: the team that made it,
	// or the one a transfer moved it to.
	Owner string
}

// Connection is a store connected to a project.
type Connection struct {
	StoreID   string
	ProjectID string
	CreatedAt time.Time
}

// TransferCode is a code from a transfer request.
type TransferCode struct {
	Code        string
	ProjectID   string
	CallbackURL string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Projects returns every project, oldest first.
func (s *Server) Projects() []Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := slices.Collect(maps.Values(s.st.projects))
	slices.SortFunc(ps, func(a, b *project) int { return int(a.seq - b.seq) })
	out := make([]Project, len(ps))
	for i, p := range ps {
		out[i] = p.view()
	}
	return out
}

// Project returns a project by id or name.
func (s *Server) Project(idOrName string) (Project, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.st.anyProject(idOrName)
	if p == nil {
		return Project{}, false
	}
	return p.view(), true
}

func (p *project) view() Project {
	v := Project{
		ID: p.id, Name: p.name, AccountID: p.accountID, Framework: p.framework,
		CreatedAt: p.createdAt, Deployments: len(p.deployments), Domains: slices.Clone(p.domains),
	}
	for _, e := range p.env {
		v.Env = append(v.Env, e.key)
	}
	return v
}

// Deployments returns every live deployment, oldest first, with its state
// now.
func (s *Server) Deployments() []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []Deployment
	for _, d := range s.st.deployments {
		if d.deletedAt.IsZero() {
			out = append(out, d.view(now))
		}
	}
	return out
}

// Deployment returns a live deployment by id or URL, with its state now.
func (s *Server) Deployment(idOrURL string) (Deployment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.st.deploymentsByID[idOrURL]
	if d == nil {
		d = s.st.deploymentsByURL[idOrURL]
	}
	if d == nil {
		return Deployment{}, false
	}
	return d.view(s.now()), true
}

func (d *deployment) view(now time.Time) Deployment {
	v := Deployment{
		ID: d.id, URL: d.url, Name: d.name, ProjectID: d.projectID, ProjectName: d.projectName,
		Target: d.target, ReadyState: d.stateAt(now), Meta: maps.Clone(d.meta),
		CreatedAt: d.createdAt, ReadyAt: d.doneAt,
	}
	if v.ReadyState == stateError {
		v.ErrorCode, v.ErrorMessage = BuildFailedCode, d.errorMessage
	}
	return v
}

// Authorizations returns every authorization, oldest first.
func (s *Server) Authorizations() []Authorization {
	s.mu.Lock()
	defer s.mu.Unlock()
	as := slices.Collect(maps.Values(s.st.authorizations))
	slices.SortFunc(as, func(a, b *authorization) int { return int(a.seq - b.seq) })
	out := make([]Authorization, 0, len(as))
	for _, a := range as {
		out = append(out, Authorization{
			ID: a.id, IntegrationConfigurationID: a.configID, ProductID: a.productID,
			BillingPlanID: a.billingPlanID, Metadata: a.metadata, Status: a.status, CreatedAt: a.createdAt,
		})
	}
	return out
}

// Stores returns every store, oldest first.
func (s *Server) Stores() []Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	sts := slices.Collect(maps.Values(s.st.stores))
	slices.SortFunc(sts, func(a, b *store) int { return int(a.seq - b.seq) })
	out := make([]Store, len(sts))
	for i, st := range sts {
		out[i] = Store{
			ID: st.id, Name: st.name, IntegrationConfigurationID: st.configID, ProductID: st.productID,
			AuthorizationID: st.authorizationID, CreatedAt: st.createdAt, Projects: slices.Clone(st.projects), Owner: st.owner,
		}
	}
	return out
}

// Connections returns every connection, oldest first.
func (s *Server) Connections() []Connection {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := slices.Collect(maps.Values(s.st.connections))
	slices.SortFunc(cs, func(a, b *connection) int { return int(a.seq - b.seq) })
	out := make([]Connection, len(cs))
	for i, c := range cs {
		out[i] = Connection{StoreID: c.storeID, ProjectID: c.projectID, CreatedAt: c.createdAt}
	}
	return out
}

// TransferCodes returns the transfer codes not yet expired, oldest first.
func (s *Server) TransferCodes() []TransferCode {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	ts := slices.Collect(maps.Values(s.st.transfers))
	slices.SortFunc(ts, func(a, b *transfer) int { return int(a.seq - b.seq) })
	var out []TransferCode
	for _, t := range ts {
		if now.Before(t.expiresAt) {
			out = append(out, TransferCode{
				Code: t.code, ProjectID: t.projectID, CallbackURL: t.callbackURL,
				CreatedAt: t.createdAt, ExpiresAt: t.expiresAt,
			})
		}
	}
	return out
}
