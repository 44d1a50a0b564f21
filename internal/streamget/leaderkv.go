package streamget

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// LeaderKV is a KeyValue whose Get always reads from the stream leader.
//
// KV buckets answer reads from any replica ("direct get"), and in a
// cluster a replica may not have applied the latest write yet. Workers
// read a checkpoint or an upload claim right before a compare-and-set, and
// a stale checkpoint looks like another worker's takeover, so their reads
// must see every acknowledged write. Turning direct gets off for the
// bucket would do that too, but then producers could not read at all with
// per-tenant credentials: the leader read ($JS.API.STREAM.MSG.GET) names
// the subject in its body, where a permission cannot reach, whereas the
// direct get names it in the request subject
// ($JS.API.DIRECT.GET.KV_DEPLOY_JOBS.$KV.DEPLOY_JOBS.<tenant>.>). So the
// buckets keep direct gets for producers, and workers read through this.
// Writes, watches and the rest go to the embedded KeyValue unchanged.
type LeaderKV struct {
	jetstream.KeyValue
	nc      *nats.Conn
	prefix  string // $KV.<bucket>.
	timeout time.Duration
}

// NewLeaderKV wraps kv, whose bucket is the one named.
func NewLeaderKV(js jetstream.JetStream, kv jetstream.KeyValue) *LeaderKV {
	return &LeaderKV{
		KeyValue: kv,
		nc:       js.Conn(),
		prefix:   "$KV." + kv.Bucket() + ".",
		// nats.go's own default for API requests without a deadline.
		timeout: 5 * time.Second,
	}
}

// Get returns the key's latest value as the stream leader has it. A
// deleted or purged key is jetstream.ErrKeyNotFound, as with KeyValue.Get.
func (kv *LeaderKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, kv.timeout)
		defer cancel()
	}
	m, err := Last(ctx, kv.nc, "KV_"+kv.Bucket(), kv.prefix+key, jetstream.ErrKeyNotFound)
	if err != nil {
		return nil, err
	}
	e := &leaderEntry{bucket: kv.Bucket(), key: key, value: m.Data,
		revision: m.Seq, created: m.Time, op: jetstream.KeyValuePut}
	// A delete or purge leaves a marker message; a message removed by the
	// bucket's TTL leaves one with a reason instead.
	switch {
	case m.Header.Get("KV-Operation") == "DEL" || m.Header.Get(jetstream.MarkerReasonHeader) == "Remove":
		e.op = jetstream.KeyValueDelete
	case m.Header.Get("KV-Operation") == "PURGE" || m.Header.Get(jetstream.MarkerReasonHeader) != "":
		e.op = jetstream.KeyValuePurge
	}
	if e.op != jetstream.KeyValuePut {
		return nil, jetstream.ErrKeyNotFound
	}
	return e, nil
}

// leaderEntry is one value read by LeaderKV.Get.
type leaderEntry struct {
	bucket, key string
	value       []byte
	revision    uint64
	created     time.Time
	op          jetstream.KeyValueOp
}

func (e *leaderEntry) Bucket() string                  { return e.bucket }
func (e *leaderEntry) Key() string                     { return e.key }
func (e *leaderEntry) Value() []byte                   { return e.value }
func (e *leaderEntry) Revision() uint64                { return e.revision }
func (e *leaderEntry) Created() time.Time              { return e.created }
func (e *leaderEntry) Delta() uint64                   { return 0 }
func (e *leaderEntry) Operation() jetstream.KeyValueOp { return e.op }
