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
// Run `enqueue --help` for the commands, the connection flags and their
// environment variables, and the exit codes scripts can rely on;
// `enqueue <command> --help` for a command's flags; `enqueue completion
// bash|zsh|fish|powershell` for a shell's completion script.
//
// The pieces: main.go builds the command tree (github.com/spf13/cobra:
// per-command help and completion scripts) and maps each command's result
// to its exit status; each command's file declares its flags beside the
// function that runs it. nats.go connects; submit.go plans and validates
// requests, source.go packs their sources and jsonl.go reads request
// files; wait.go publishes a batch (consecutive requests of one tarball in
// one jobs.Client.SubmitBatch call) and tracks it to the end, with
// follow.go replaying its events and progress.go showing them; status.go,
// watch.go and stats.go are the read-only commands; format.go holds the
// text forms of events they share. dlq.go lists, shows and purges dead
// letters, and replay.go runs them again through the same batch tracking
// as submit, following only the new run; cancel.go stops a request and can
// wait for its cancelled event; apps.go lists and shows apps and issues
// claim URLs.
package main
