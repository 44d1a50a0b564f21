// Package vercelsim is a simulator of the part of Vercel's REST API that
// the deploy pipeline uses: projects, the Prisma Postgres integration
// (authorization, store, connection, resources), file uploads, deployments
// and their build events, and transfer codes. It keeps real state, so a retry that creates a second
// project gets a 409 and a retry that creates a second database shows up in
// Stats. Tests, the demo and benchmarks run against it; the real API is
// one base URL away.
//
// # Use
//
// A Server is an http.Handler; mount it at the root of any server and
// point the client's base URL at it:
//
//	sim := vercelsim.New(vercelsim.Config{Token: "t", BuildTime: 30 * time.Second})
//	ts := httptest.NewServer(sim)
//	defer ts.Close()
//	defer sim.Close() // releases requests held by hang faults
//
// cmd/vercelsim serves one on its own, with a flag for each Config knob.
//
// # What it checks and answers
//
// Every answer carries an x-vercel-id header. Bodies are Vercel's: the
// documented operations' answers validate against Vercel's OpenAPI schemas
// (testdata/openapi-subset.json; a test checks each one), the
// undocumented ones (billing authorization, stores, the connect path with
// /products/{productId}) are shaped as Vercel's Prisma guide and CLI show
// them. Errors are {"error":{"code","message"}}. Among the checks:
// project names (400), taken names (409 conflict), the upload's SHA-1
// against x-vercel-digest (400), files a deployment names but nobody
// uploaded (400 missing_files, listing them), a first deployment without
// projectSettings (400 missing_project_settings), unknown ids (404), the
// bearer token (401) and the team (403).
//
// # Limits and faults
//
// Config.RateLimits limits each endpoint per team in fixed windows and
// answers 429 exactly as Vercel does: a Retry-After header in seconds and
// a body whose limit object has reset in seconds and resetMs in
// milliseconds; X-RateLimit-Limit, -Remaining and -Reset (epoch seconds)
// come with every answer of a limited endpoint once the token is accepted.
// A refused request does not count against the window. A Limit's Caps are
// further windows of the same endpoint, all counted at once (Vercel counts
// deployments per 5 minutes, per hour and per day): the answer's headers
// describe the window with the fewest calls left, and a 429's reset is
// when every full window has room again. Config.DailyDeploymentCap
// answers 402 payment_required with reset in milliseconds, as Vercel's
// daily cap does. Config.Faults injects 5xx before the side effect (nothing
// created), 5xx after it (created, but the caller is told it failed),
// hangs before or after it (the handler blocks until the request's context
// ends, so no goroutine outlives its request) and latency.
//
// # Builds
//
// A deployment's build is a schedule fixed at creation and read off
// Config.Clock: QUEUED, INITIALIZING, BUILDING, then READY over
// Config.BuildTime (plus jitter, plus waiting for a slot when
// Config.ConcurrentBuilds is set). No goroutine runs per build, so ten
// thousand builds in flight are cheap, and a test with a fake clock moves
// them by moving the clock.
//
// GET /v3/deployments/{idOrUrl}/events reads the same schedule: a few
// build log lines (stdout; stderr for a failing build) while the build
// runs, then a deployment-state event whose payload.info.readyState is
// READY, ERROR, or CANCELED for a deployment deleted mid-build. With
// follow=1 the answer streams them as they happen, one JSON object per
// line, and ends after the deployment-state event; without it, it is a
// JSON array of the events so far. A stream reads the clock at least every
// 100 ms, so a fake clock moves it too (events.go).
//
// # Making a build fail
//
// A deployment ends in ERROR, with errorCode BUILD_FAILED, when its source
// tarball (an uploaded gzip'd tar, like .vercel/source.tgz) contains a
// regular file named .vercelsim/fail-build (FailBuildPath), at its root or
// below one directory or more. The file's content, trimmed, becomes the
// deployment's errorMessage. A deployment that lists a file at that path
// itself (uploaded or inlined) fails the same way. So whoever builds a
// deploy request chooses its fate, with no side channel to the simulator;
// Tarball builds such archives.
//
// # Inspecting
//
// Stats returns counters (requests, answers per status, 429s, 402s,
// faults, resources created per name, uploads, successes per second);
// Projects, Deployments, Stores, Connections, Authorizations and
// TransferCodes return copies of the state. SetFault and SetLimit change
// an endpoint's behaviour mid-test.
package vercelsim
