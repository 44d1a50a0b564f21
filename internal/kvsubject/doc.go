// Package kvsubject names the subjects a JetStream key-value bucket takes
// its writes on, as nats.go's own KeyValue does (domains, API prefixes,
// mirrors), so that a producer can write keys with asynchronous
// publishes, which the KeyValue interface cannot make.
package kvsubject
