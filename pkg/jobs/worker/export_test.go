package worker

import "time"

// BuildEstimate is the build time the pipeline expects now (the moving
// mean and mean deviation of the builds seen to end, here or through
// PipelineConfig.BuildTimes, starting from PipelineConfig.ExpectedBuild),
// for the tests of how waits learn it.
func (p *Pipeline) BuildEstimate() (mean, dev time.Duration) {
	e := p.builds.Snapshot()
	return e.Mean, e.Dev
}
