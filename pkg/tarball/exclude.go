package tarball

import (
	"path"
	"strings"
)

// matcher applies exclude patterns. Patterns are split once so the walk does
// not re-inspect them for every path.
type matcher struct {
	// anyDepth patterns hold no slash and match a path's last element.
	anyDepth []string
	// rooted patterns hold a slash and match the whole relative path.
	rooted []string
}

func newMatcher(patterns []string) matcher {
	var m matcher
	for _, p := range patterns {
		if strings.Contains(p, "/") {
			m.rooted = append(m.rooted, p)
		} else {
			m.anyDepth = append(m.anyDepth, p)
		}
	}
	return m
}

// excluded reports whether name, a slash-separated relative path, matches.
// Checking only the last element suffices for anyDepth patterns because the
// walk skips an excluded directory and never sees what is under it.
func (m matcher) excluded(name string) bool {
	base := path.Base(name)
	for _, p := range m.anyDepth {
		// Patterns were validated by WithExclude, so Match cannot fail.
		if ok, _ := path.Match(p, base); ok {
			return true
		}
	}
	for _, p := range m.rooted {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
