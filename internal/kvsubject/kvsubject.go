package kvsubject

import (
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// PutPrefix is the subject prefix a KeyValue.Put of nats.go publishes
// to for the bucket whose stream is configured as cfg, seen through a
// JetStream context with options o: a key's put subject is the prefix and
// the key. SubmitBatch publishes source references asynchronously, which
// the KeyValue interface cannot do, so it names the subject itself; this
// follows nats.go's rules, so both write the same key:
//   - a bucket answers on $KV.<bucket>.<key>;
//   - through a context with a domain or a custom API prefix, nats.go puts
//     that prefix in front (what a leaf node's import maps back);
//   - a mirrored bucket takes its writes on its origin's subjects, behind
//     the origin's external API prefix when it lives in another domain or
//     account (the mirror then ignores the context's prefix).
//
// Setup creates no mirror and the clients in this repository use the
// default prefix; the other cases are followed so that a bucket mirrored
// into a leaf node still gets its references where its KeyValue would
// write them.
func PutPrefix(o jetstream.JetStreamOptions, cfg jetstream.StreamConfig) string {
	if m := cfg.Mirror; m != nil {
		origin := strings.TrimPrefix(m.Name, "KV_")
		if m.External != nil && m.External.APIPrefix != "" {
			return m.External.APIPrefix + ".$KV." + origin + "."
		}
		return apiPrefixOf(o) + "$KV." + origin + "."
	}
	return apiPrefixOf(o) + "$KV." + strings.TrimPrefix(cfg.Name, "KV_") + "."
}

// apiPrefixOf is what nats.go writes before a KV subject for a context
// with options o: nothing with the default API prefix, else the domain's
// or the custom API prefix, ending in a dot.
func apiPrefixOf(o jetstream.JetStreamOptions) string {
	var p string
	switch {
	case o.Domain != "":
		p = "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		p = o.APIPrefix
		if !strings.HasSuffix(p, ".") {
			p += "."
		}
	}
	if p == jetstream.DefaultAPIPrefix {
		return ""
	}
	return p
}
