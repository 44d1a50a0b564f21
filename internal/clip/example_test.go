package clip_test

import (
	"fmt"

	"github.com/deployq/deployq/internal/clip"
)

// A cut never splits a rune, and says that it cut.
func ExampleString() {
	fmt.Println(clip.String("short", 10))
	fmt.Println(clip.String("déployé partout", 10))
	// Output:
	// short
	// déploy…
}
