package fair

import "context"

// Share names whose work a call belongs to, for the schedulers it passes
// on its way (the API budget's waiting line): the tenant, its weight
// (DefaultWeight when not positive) and the work's class.
type Share struct {
	Tenant string
	Weight float64
	Class  Class
}

type shareKey struct{}

// WithShare returns ctx carrying s.
func WithShare(ctx context.Context, s Share) context.Context {
	return context.WithValue(ctx, shareKey{}, s)
}

// ShareOf returns the share ctx carries; work that names none shares one
// anonymous tenant's turn.
func ShareOf(ctx context.Context) Share {
	s, _ := ctx.Value(shareKey{}).(Share)
	return s
}

// Jain is Jain's fairness index of what each of n parties got: 1 when
// all got the same, 1/n when one got everything (and 1 when nobody got
// anything).
func Jain(got []float64) float64 {
	var sum, sq float64
	for _, x := range got {
		sum += x
		sq += x * x
	}
	if sq == 0 {
		return 1
	}
	return sum * sum / (float64(len(got)) * sq)
}
