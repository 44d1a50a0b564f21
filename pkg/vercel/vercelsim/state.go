package vercelsim

import "time"

// state is every resource the simulator holds. The Server's mutex guards
// it. The simulator models one account: whatever teamId a request names,
// it sees the same projects (set Config.TeamID to insist on one team).
type state struct {
	seq int64 // orders resources of one kind by creation

	projects map[string]*project // by id
	// projectsByName is keyed by account and name: a name is unique
	// within its team, and a claimed project keeps its name in its new
	// team while the old team may make another of that name.
	projectsByName map[string]*project
	// domains maps a domain to the project it is on.
	domains map[string]*project

	// deployments holds every deployment ever created, deleted ones too
	// (flagged), so Stats can still count what they became.
	deployments      []*deployment
	deploymentsByID  map[string]*deployment // live ones only
	deploymentsByURL map[string]*deployment // live ones only
	slots            buildSlots

	authorizations map[string]*authorization
	stores         map[string]*store
	connections    map[connKey]*connection
	files          map[string]*file // by SHA-1
	transfers      map[string]*transfer
}

func newState(concurrentBuilds int) state {
	return state{
		projects:         map[string]*project{},
		projectsByName:   map[string]*project{},
		domains:          map[string]*project{},
		deploymentsByID:  map[string]*deployment{},
		deploymentsByURL: map[string]*deployment{},
		slots:            buildSlots{n: concurrentBuilds},
		authorizations:   map[string]*authorization{},
		stores:           map[string]*store{},
		connections:      map[connKey]*connection{},
		files:            map[string]*file{},
		transfers:        map[string]*transfer{},
	}
}

func (st *state) next() int64 {
	st.seq++
	return st.seq
}

type project struct {
	seq       int64
	id        string
	name      string
	accountID string
	framework string // "" is null: not chosen yet
	createdAt time.Time
	updatedAt time.Time
	env       []envVar
	// deployments are the live deployments, oldest first.
	deployments []*deployment
	// deployed is set by the first deployment and never cleared: Vercel
	// asks for projectSettings only on a project's first deployment.
	deployed bool
	// domains are the project's own domains, added by
	// POST /v10/projects/{id}/domains; production deployments are
	// aliased to them.
	domains []string
}

// nameKey is a project's key in projectsByName.
func nameKey(account, name string) string { return account + "/" + name }

type envVar struct {
	id              string
	key             string
	value           string
	typ             string
	target          []string
	configurationID string // the integration that injected it, if any
	storeID         string // the store whose connection injected it, if any
	createdAt       time.Time
}

type deployment struct {
	seq         int64
	id          string
	url         string
	name        string
	projectID   string
	projectName string
	ownerID     string
	team        string
	target      string // production, staging, or "" (preview)
	framework   string
	meta        map[string]string
	env         []string
	createdAt   time.Time
	deletedAt   time.Time // zero while live

	// The build's schedule, fixed at creation; see build.go.
	startAt time.Time
	initAt  time.Time
	buildAt time.Time
	doneAt  time.Time

	failed       bool
	errorMessage string
	// blocked deployments stay BLOCKED (Quirks.BlockDeployments); aliasAt
	// is when the domains point at a READY deployment (Quirks.AliasDelay).
	blocked bool
	aliasAt time.Time
}

type authorization struct {
	seq           int64
	id            string
	configID      string
	integration   string
	productID     string
	billingPlanID string
	metadata      string
	createdAt     time.Time
	status        string
	pendingReads  int // reads left before a pending authorization succeeds
}

type store struct {
	seq             int64
	id              string
	name            string
	configID        string
	productID       string // as given: an id or a slug
	billingPlanID   string
	authorizationID string
	externalID      string
	metadata        map[string]any
	owner           string
	password        string // part of the injected connection strings
	createdAt       time.Time
	projects        []string // connected project ids, in connection order
}

type connKey struct {
	storeID   string
	projectID string
}

type connection struct {
	seq       int64
	storeID   string
	projectID string
	configID  string
	createdAt time.Time
}

type transfer struct {
	seq            int64
	code           string
	projectID      string
	callbackURL    string
	callbackSecret string
	createdAt      time.Time
	expiresAt      time.Time
}

// lookupProject finds a live project of account by id or name, as
// Vercel's {idOrName} parameters do: a project of another account (one
// claimed away, say) is not found.
func (st *state) lookupProject(account, idOrName string) *project {
	if p := st.projects[idOrName]; p != nil {
		if p.accountID == account {
			return p
		}
		return nil
	}
	return st.projectsByName[nameKey(account, idOrName)]
}

// anyProject finds a live project by id or name in any account, for the
// simulator's own views.
func (st *state) anyProject(idOrName string) *project {
	if p := st.projects[idOrName]; p != nil {
		return p
	}
	for _, p := range st.projects {
		if p.name == idOrName {
			return p
		}
	}
	return nil
}
