// Package streamget reads stored messages back by subject, without a
// stream handle (whose STREAM.INFO a tenant's NATS user may not make):
// from the stream's leader, which has every acknowledged write (Last,
// First and a LeaderKV whose Get reads the leader), for workers that
// compare-and-set on what they read; or with a direct get (Direct),
// whose request subject names the subject read and so can be granted
// per tenant, for producers.
package streamget
