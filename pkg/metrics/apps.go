package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// appMetrics describe the apps deployq leaves in each Vercel team: how
// many in each state, what they hold against the plan's caps, and what
// their upkeep (claim checks, expiry) costs. The inventory gauges are set
// by the one worker that runs the upkeep; the others leave them absent,
// so a max across instances reads the fleet's.
type appMetrics struct {
	apps          *prometheus.GaugeVec
	inUse         *prometheus.GaugeVec
	caps          *prometheus.GaugeVec
	oldest        *prometheus.GaugeVec
	candidates    *prometheus.GaugeVec
	claimed       *prometheus.CounterVec
	expired       *prometheus.CounterVec
	upkeepCalls   *prometheus.CounterVec
	upkeepRunning prometheus.Gauge
}

func newAppMetrics(f promauto.Factory) appMetrics {
	return appMetrics{
		apps: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "apps",
			Help: "Apps by state (creating, live, claimed, expiring, expired, failed), as of the upkeep's last pass.",
		}, []string{"team", "state"}),
		inUse: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "inventory_in_use",
			Help: "Projects and databases deployq's apps hold in the team (resource=projects|databases), as of the upkeep's last pass.",
		}, []string{"team", "resource"}),
		caps: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "inventory_cap",
			Help: "The plan's cap on the resource (PROJECT_CAP, DATABASE_CAP); absent when not configured.",
		}, []string{"team", "resource"}),
		oldest: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "app_oldest_unclaimed_seconds",
			Help: "Age of the oldest live, unclaimed app's last version.",
		}, []string{"team"}),
		candidates: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "apps_expiry_due",
			Help: "Live apps past APP_TTL at the upkeep's last pass (in dry-run mode, those it would delete).",
		}, []string{"team"}),
		claimed: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "apps_claimed_total",
			Help: "Apps found claimed by their user, by how (callback, check).",
		}, []string{"via"}),
		expired: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "apps_expired_total",
			Help: "Apps deleted after going unclaimed past APP_TTL.",
		}, []string{"team"}),
		upkeepCalls: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "app_upkeep_calls_total",
			Help: "API calls spent on apps after their versions, by kind (claim_code, claim_check, expiry).",
		}, []string{"kind"}),
		upkeepRunning: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "app_upkeep_leader",
			Help: "1 while this process runs the fleet's app upkeep (claim checks, expiry, inventory).",
		}),
	}
}

// AppInventory records one team's apps by state, the projects and
// databases they hold, and the oldest unclaimed app's age in seconds
// (negative: none).
func (m *Metrics) AppInventory(team string, byState map[string]int, projects, databases int, oldest float64, due int) {
	if m == nil {
		return
	}
	for state, n := range byState {
		m.apps.apps.WithLabelValues(team, state).Set(float64(n))
	}
	m.apps.inUse.WithLabelValues(team, "projects").Set(float64(projects))
	m.apps.inUse.WithLabelValues(team, "databases").Set(float64(databases))
	if oldest >= 0 {
		m.apps.oldest.WithLabelValues(team).Set(oldest)
	} else {
		m.apps.oldest.DeleteLabelValues(team)
	}
	m.apps.candidates.WithLabelValues(team).Set(float64(due))
}

// InventoryCap records the plan's caps of a team; 0 leaves a cap absent.
func (m *Metrics) InventoryCap(team string, projects, databases int) {
	if m == nil {
		return
	}
	if projects > 0 {
		m.apps.caps.WithLabelValues(team, "projects").Set(float64(projects))
	}
	if databases > 0 {
		m.apps.caps.WithLabelValues(team, "databases").Set(float64(databases))
	}
}

// AppClaimed counts an app found claimed, by how.
func (m *Metrics) AppClaimed(via string) {
	if m == nil {
		return
	}
	m.apps.claimed.WithLabelValues(via).Inc()
}

// AppExpired counts an app deleted for its TTL.
func (m *Metrics) AppExpired(team string) {
	if m == nil {
		return
	}
	m.apps.expired.WithLabelValues(team).Inc()
}

// UpkeepCall counts an API call spent on an app's upkeep.
func (m *Metrics) UpkeepCall(kind string) {
	if m == nil {
		return
	}
	m.apps.upkeepCalls.WithLabelValues(kind).Inc()
}

// UpkeepLeader records whether this process runs the app upkeep.
func (m *Metrics) UpkeepLeader(on bool) {
	if m == nil {
		return
	}
	v := 0.0
	if on {
		v = 1
	}
	m.apps.upkeepRunning.Set(v)
}
