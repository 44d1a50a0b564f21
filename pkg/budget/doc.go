// Package budget spends the Vercel API's rate limits for the whole worker
// fleet. It sits in front of every API call (it implements
// vercel.Limiter) and keeps one bucket per (team, endpoint class), shared
// by every worker process through a NATS KV bucket, so twenty processes
// together send what one well-behaved client would.
//
// # Buckets
//
// Each bucket is a generic cell rate algorithm (GCRA), the arithmetic of
// a token bucket kept as one number: the theoretical arrival time (TAT)
// of the next request. A slot is reserved with one compare-and-set of
// that number, then slept until, so slots are granted in the order their
// reservations landed (no thundering herd after a wait) and each call
// costs one KV round trip (two when another process wrote the bucket
// meanwhile). A worker that dies holding a reservation only wastes that
// slot: nothing needs to be given back and nothing stays locked.
//
// The rate is Requests/Window × Headroom. Headroom below 1 absorbs the
// jitter between when a slot is granted and when the API counts the call,
// so fixed windows on the API's side never see one call too many.
//
// # Whose call goes next
//
// Within a process the callers of one endpoint wait in one line, ordered
// by fair share across tenants (internal/fair: the share the caller's
// context carries, its weight and its class), and only the caller at the
// head reserves, once the slot before has come. So a tenant's burst does
// not hold up another tenant's single call, and every process with
// callers waiting takes the next slot in turn rather than one process
// reserving a slot for each of its callers ahead of everyone else.
//
// # Longer windows
//
// A Limit may carry Caps: longer windows counted at once (Vercel counts
// deployments per 5 minutes, per hour and per day). The Limit's own window
// paces the calls; each cap counts the fleet's calls per slot of 1/120 of
// its window in the same shared state, and while one is spent the callers
// are parked until it has room, without holding a reservation.
// PlanLimits presets every endpoint from a Vercel plan's published
// limits; ParseLimits reads "endpoint=N/window+N/window".
//
// # Tenants' quotas
//
// Quotas count each tenant's deploys against the quota its operator set
// ("20/24h", several windows joined by "+"), with the same per-slot
// arithmetic as a Limit's caps, in the same Store under the key
// "tenant-quota.<tenant>": Take admits a deploy or says when the quota
// has room again. A quota paces nothing; the worker decides what a
// request past it does (pkg/jobs/worker, quota.go).
//
// # Learning from the API
//
// Observe reads every answer:
//   - a 429 pauses the bucket for every process until the reset it
//     announces (Retry-After in seconds or as a date, the body's
//     limit.reset in seconds or milliseconds, resetMs);
//   - a 402 plan cap pauses that endpoint (deployment creation) the same
//     way, while other endpoints go on;
//   - X-RateLimit-Limit replaces the configured Requests of the bucket;
//     X-RateLimit-Remaining 0 with a reset beyond the next slot pauses
//     until that reset (someone else spends this token's budget);
//   - an announced pause longer than MaxPause is capped, logged and
//     counted: after the cap one call probes the API again.
//
// Pauses are pushed to every process through a KV watch, so waiters in
// other processes that hold slots inside a new pause re-reserve after it
// instead of spending their calls on certain 429s.
//
// Waiting for budget is not failing: Wait only returns an error when its
// context ends or NATS is unreachable.
package budget
