package streamget

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reading the last message on a subject, without a stream handle (which
// costs a STREAM.INFO that a tenant's user may not make): from the
// stream's leader for workers, which must see every acknowledged write,
// or with a direct get, whose request subject names the subject read and
// so can be granted per tenant.

// Msg is one message read back by subject.
type Msg struct {
	Data   []byte
	Header nats.Header
	Seq    uint64
	Time   time.Time
}

// msgGetResponse is the JetStream API's answer to STREAM.MSG.GET.
type msgGetResponse struct {
	Message *struct {
		Subject  string    `json:"subject"`
		Sequence uint64    `json:"seq"`
		Header   []byte    `json:"hdrs,omitempty"`
		Data     []byte    `json:"data,omitempty"`
		Time     time.Time `json:"time"`
	} `json:"message"`
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// errCodeMessageNotFound is JetStream's error code for "no message found".
const errCodeMessageNotFound = 10037

// Last reads the last message on subject from the stream's leader
// ($JS.API.STREAM.MSG.GET): it has every acknowledged write. notFound is
// returned when there is none.
func Last(ctx context.Context, nc *nats.Conn, stream, subject string, notFound error) (*Msg, error) {
	return leaderGet(ctx, nc, stream, subject, map[string]any{"last_by_subj": subject}, notFound)
}

// First reads the first message on subject still in the stream,
// from its leader.
func First(ctx context.Context, nc *nats.Conn, stream, subject string, notFound error) (*Msg, error) {
	return leaderGet(ctx, nc, stream, subject, map[string]any{"seq": 1, "next_by_subj": subject}, notFound)
}

func leaderGet(ctx context.Context, nc *nats.Conn, stream, subject string, req map[string]any, notFound error) (*Msg, error) {
	body, _ := json.Marshal(req)
	msg, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", subject, err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("read %s: %w", subject, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == errCodeMessageNotFound:
		return nil, notFound
	case resp.Error != nil:
		return nil, fmt.Errorf("read %s: %s (%d/%d)", subject, resp.Error.Description, resp.Error.Code, resp.Error.ErrCode)
	case resp.Message == nil:
		return nil, fmt.Errorf("read %s: %w", subject, jetstream.ErrInvalidJetStreamResponse)
	}
	m := &Msg{Data: resp.Message.Data, Header: nats.Header{}, Seq: resp.Message.Sequence, Time: resp.Message.Time}
	if len(resp.Message.Header) > 0 {
		if m.Header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return nil, fmt.Errorf("read %s: %w", subject, err)
		}
	}
	return m, nil
}

// Direct reads the last message on subject with a direct get, whose
// request subject names the subject read
// ($JS.API.DIRECT.GET.<stream>.<subject>), so a permission can allow it
// per tenant. Any replica may answer.
func Direct(ctx context.Context, nc *nats.Conn, stream, subject string, notFound error) (*Msg, error) {
	msg, err := nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+stream+"."+subject, nil)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", subject, err)
	}
	if status := msg.Header.Get("Status"); status != "" {
		if status == "404" {
			return nil, notFound
		}
		return nil, fmt.Errorf("read %s: status %s %s", subject, status, msg.Header.Get("Description"))
	}
	seq, _ := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	at, _ := time.Parse(time.RFC3339Nano, msg.Header.Get(jetstream.TimeStampHeaer))
	return &Msg{Data: msg.Data, Header: msg.Header, Seq: seq, Time: at}, nil
}
