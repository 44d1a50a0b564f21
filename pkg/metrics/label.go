package metrics

import "sync"

// Caps on distinct free-form label values. The pipeline has about a dozen
// steps and a handful of dead-letter reasons; the caps leave room for growth
// while bounding what a caller bug can cost.
const (
	maxSteps      = 32
	maxReasons    = 16
	maxLabelBytes = 48
)

// labelSet admits well-formed label values until it holds limit distinct
// ones; later newcomers are reported as "other". It guards labels whose
// values the caller names (steps, reasons) rather than this package.
type labelSet struct {
	mu    sync.Mutex
	seen  map[string]bool
	limit int
}

func newLabelSet(limit int) *labelSet {
	return &labelSet{seen: make(map[string]bool), limit: limit}
}

func (s *labelSet) value(v string) string {
	if !wellFormed(v) {
		return other
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[v] {
		return v
	}
	if len(s.seen) >= s.limit {
		return other
	}
	s.seen[v] = true
	return v
}

// wellFormed accepts short identifiers such as "create_project" or
// "max_deliveries". Anything else (an error message, a URL, an id with
// mixed case) is what a label must never hold, so it is rejected outright.
func wellFormed(v string) bool {
	if v == "" || len(v) > maxLabelBytes || v[0] < 'a' || v[0] > 'z' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}
