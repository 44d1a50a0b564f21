// Package appday is `bench apps`: a day of a platform's traffic,
// compressed, against a team whose database (and project) cap is below
// the day's total of new apps. Requests arrive evenly over the day; a
// share of them deploy a new version of a recent app, the others make a
// new app; a share of the apps are claimed by their users (the transfer
// accepted, Vercel's callback reaching the worker) a while after their
// first version; the rest expire APP_TTL after their last version. Every
// request succeeds only if expiry frees room in time; the benchmark
// reports that, the most projects and databases held at once against the
// cap, and the API calls spent per app on claims and on expiry.
//
// Run it with:
//
//	go run ./cmd/bench apps
//
// docs/BENCHMARKS.md records a run and how to read it.
package appday
