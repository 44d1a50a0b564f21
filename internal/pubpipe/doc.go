// Package pubpipe publishes many messages with their round trips
// pipelined (PublishAll, a bounded window of unanswered publishes), tells
// whether a failed publish may have been stored all the same
// (MayBeStored), and runs calls with bounded concurrency (ForEach). The
// producer's SubmitBatch and the source store are built on it.
package pubpipe
