package consolepage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/deployq/deployq/pkg/jobs"
)

// shot is one picture: the view's address, what shows it is drawn, the
// viewport.
type shot struct {
	name, hash, ready string
	width, height     int64
}

// screenshots writes a PNG of each view into dir, and returns their
// paths.
func screenshots(ctx context.Context, url, dir string, c *jobs.Client) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	letters, err := c.DeadLetters(ctx, "")
	if err != nil || len(letters) == 0 {
		return nil, fmt.Errorf("a dead letter to show: %d found, %v", len(letters), err)
	}
	failed := letters[len(letters)-1]
	shots := []shot{
		{"jobs", "#/", `#jobs tbody tr[data-id]`, 1280, 860},
		{"job", "#/job/" + failed.Tenant + "/" + failed.ID, `#timeline tr[data-type="failed"]`, 1280, 860},
		{"dead-letters", "#/dlq", `#letters tbody tr[data-id]`, 1280, 860},
		{"budget", "#/budget", `#buckets tbody tr[data-endpoint]`, 1280, 860},
		{"apps", "#/apps", `#apps tbody tr[data-app]`, 1280, 860},
		{"phone", "#/", `#jobs tbody tr[data-id]`, 390, 844},
	}
	var out []string
	for _, s := range shots {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		png, err := take(sctx, url, s)
		cancel()
		if err != nil {
			return out, fmt.Errorf("screenshot %s: %w", s.name, err)
		}
		path := filepath.Join(dir, s.name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			return out, err
		}
		out = append(out, path)
	}
	return out, nil
}

func take(ctx context.Context, url string, s shot) ([]byte, error) {
	// The tab lives as long as the context of its first action.
	ctx, closeTab := chromedp.NewContext(ctx)
	defer closeTab()
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(s.width, s.height),
		chromedp.Navigate(url+"/"+s.hash),
		visible(s.ready),
		visible(`#live.on`),
	); err != nil {
		return nil, err
	}
	// Let the live stream's first read land and paint.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`new Promise(r => setTimeout(() => r(true), 700))`)); err != nil {
		return nil, err
	}
	return chromedp.Run(ctx, chromedp.CaptureScreenshot())
}

// visible waits until an element sel names is on the page.
func visible(sel string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](`document.querySelector(`+strconv.Quote(sel)+`) !== null`)(ctx, t)
		return chromedp.Void{}, err
	}
}
