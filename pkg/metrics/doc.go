// Package metrics holds the Prometheus collectors a deployq worker exports.
//
// New registers every collector on the registry it is given, never on the
// default one, so tests and embedders get isolated registries and nothing is
// registered at import time. The worker serves that registry on /metrics.
//
// The collectors follow the RED method for jobs and Vercel calls (rate,
// errors, duration) plus the saturation gauges an SRE pages on: jobs in
// flight against the configured concurrency, readiness and whether Vercel
// still accepts the credentials.
//
// Every label takes values from a bounded set: outcomes and endpoints are
// fixed lists, anything unknown is counted as "other", and free-form names
// (pipeline steps, dead-letter reasons) are capped in number. A bug that
// passes an id or an error string as a label therefore costs one extra
// series, not an unbounded number of them.
//
// All methods are safe on a nil *Metrics and then record nothing, so
// libraries can take a *Metrics without forcing their callers to build one.
// *Metrics also satisfies the Vercel client's RequestObserver interface.
package metrics
