// Package natsembed runs a NATS server with JetStream inside the current
// process.
//
// The worker uses it in its default mode, so one binary runs without
// installing anything; tests, the demo and benchmarks use it so they run
// against a real JetStream rather than a mock.
//
// Start runs a single server and Server.Connect opens an in-process client
// connection to it, with no TCP in between. StartCluster runs a JetStream
// cluster of several servers on 127.0.0.1, whose nodes can be stopped and
// restarted with their stores and ports intact; it exists for failover and
// chaos tests.
//
// The server is silent unless given a *slog.Logger, and never installs
// signal handlers: the host program owns its signals and its shutdown.
package natsembed
