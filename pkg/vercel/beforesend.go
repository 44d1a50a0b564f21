package vercel

import "context"

// beforeSendKey carries a WithBeforeSend check in a context.
type beforeSendKey struct{}

// WithBeforeSend returns a context whose calls run check after their
// budget wait, right before the request is sent; an error from check is
// returned (wrapped) and nothing is sent. A caller whose right to act can
// lapse while it waits, such as a queue worker whose lease another worker
// may take over during a long budget wait, checks it there, where the
// wait can no longer hide a change.
func WithBeforeSend(ctx context.Context, check func(context.Context) error) context.Context {
	return context.WithValue(ctx, beforeSendKey{}, check)
}

func beforeSend(ctx context.Context) error {
	if check, ok := ctx.Value(beforeSendKey{}).(func(context.Context) error); ok && check != nil {
		return check(ctx)
	}
	return nil
}
