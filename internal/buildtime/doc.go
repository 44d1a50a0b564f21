// Package buildtime learns how long a Vercel team's builds take, so that
// a job waiting for its build polls once, at its expected end, instead
// of every few seconds. A Learner keeps the moving mean and mean
// deviation of the builds seen to end and shares them with every worker
// of the team through the DEPLOY_BUILDTIMES bucket; an Estimate that
// rests on nothing yet is Cold, and the worker then lets a few jobs
// follow their build's event stream to teach it (pkg/jobs/worker,
// waitready.go).
package buildtime
