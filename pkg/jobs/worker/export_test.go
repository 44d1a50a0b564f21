package worker

import "time"

// BuildEstimate is the build time the pipeline expects now, and its mean
// deviation, for the tests of how waits learn it.
func (p *Pipeline) BuildEstimate() (mean, dev time.Duration) { return p.buildEstimate() }
