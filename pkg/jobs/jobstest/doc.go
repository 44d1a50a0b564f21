// Package jobstest runs a complete deployq in one test process: an
// embedded nats-server with JetStream, the Vercel simulator over real
// HTTP on loopback, the real client, and one or more worker pools. Tests
// of other packages, examples and benchmarks build on it instead of
// mocking JetStream or the API.
//
//	h := jobstest.Start(t, jobstest.Config{})
//	sub := h.Submit(t, jobs.Request{Tenant: "acme", Name: "app"}, h.Tarball(t, nil))
//	ev := h.WaitTerminal(t, "acme", sub.ID)
package jobstest
