// Command enqueue is the producer side of deployq: it packs source
// directories into deterministic tarballs, publishes deploy requests to NATS
// JetStream through jobs.Client, and follows their events until each one
// succeeds, fails or is rejected.
//
//	enqueue submit --tenant acme --source ./app --wait
//	enqueue submit --file examples/requests.jsonl --repeat 7 --wait
//	enqueue status 3f0c…
//	enqueue watch --tenant acme
//	enqueue cancel 3f0c… --tenant acme --wait
//	enqueue dlq list
//	enqueue dlq replay 3f0c… --wait
//
// Run `enqueue help` for every subcommand, flag and environment variable,
// and the exit codes scripts can rely on.
//
// The pieces: main.go wires flags and subcommands; nats.go connects;
// submit.go plans and validates requests, source.go packs their sources and
// jsonl.go reads request files; wait.go publishes a batch (consecutive
// requests of one tarball in one jobs.Client.SubmitBatch call) and tracks
// it to the end, with follow.go replaying its events and progress.go showing
// them; status.go and watch.go are the read-only subcommands; format.go
// holds the text forms of events they share. dlq.go lists, shows and
// purges dead letters, and replay.go runs them again through the same
// batch tracking as submit, following only the new run; cancel.go stops a
// request and can wait for its cancelled event.
package main
