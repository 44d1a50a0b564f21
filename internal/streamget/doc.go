// Package streamget reads stored messages back by subject, without a
// stream handle (whose STREAM.INFO a tenant's NATS user may not make):
// from the stream's leader, which has every acknowledged write (Last,
// First and a LeaderKV whose Get reads the leader), for workers that
// compare-and-set on what they read; or with a direct get (Direct),
// whose request subject names the subject read and so can be granted
// per tenant, for producers. All, Range and Count read a stream through
// an ordered consumer, with a stream handle: the whole of a subject, a
// span of sequences (newest-first readers go back span by span), and how
// many messages a subject has.
package streamget
