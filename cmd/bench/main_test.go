package main

import (
	"bytes"
	"strings"
	"testing"
)

// Each benchmark is reached by its name and answers -h with its flags;
// anything else is a usage error.
func TestDispatch(t *testing.T) {
	t.Parallel()
	// A flag only that benchmark has: the right one answered.
	for name, flag := range map[string]string{"load": "-concurrency", "scale": "-builds", "budget": "-bottleneck"} {
		var out, errOut bytes.Buffer
		if code := run([]string{name, "-h"}, &out, &errOut); code != 0 {
			t.Errorf("bench %s -h: exit %d (%s)", name, code, errOut.String())
		}
		if !strings.Contains(out.String()+errOut.String(), "  "+flag) {
			t.Errorf("bench %s -h does not list %s", name, flag)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"nope"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "unknown benchmark") {
		t.Errorf("unknown benchmark: exit %d, %q", code, errOut.String())
	}
	if code := run(nil, &out, &errOut); code != 2 {
		t.Errorf("no benchmark: exit %d", code)
	}
}
