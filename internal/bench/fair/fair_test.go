package fair

import (
	"io"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"-tenants", "1"}, {"-skew-n", "5"}, {"-noisy-limits", "nope=1/s"}, {"-burst", "0"}, {"-parts", "noisy,bogus"}, {"-crowd-queued", "5", "-crowd-tenants", "10"}} {
		if code := Main(args, io.Discard, io.Discard); code != 2 {
			t.Errorf("Main(%v) = %d, want 2", args, code)
		}
	}
}
