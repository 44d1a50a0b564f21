package budget

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Layout of the plot, in SVG user units (pixels at 100 %).
const (
	plotWidth    = 960
	marginLeft   = 64
	marginRight  = 24
	headerHeight = 108
	panelTitle   = 40
	panelHeight  = 170
	panelGap     = 20
	footerHeight = 72
	// clipFactor bounds the y axis at this multiple of the limit, so a
	// storm of 429s does not flatten the lines that matter; clipped peaks
	// are named in the panel.
	clipFactor = 5
)

// Colours of the series, readable on white and for common colour-vision
// deficiencies (blue against vermilion).
const (
	colourOK     = "#0072b2"
	colourRaw    = "#9ecae1"
	colourLimit  = "#222222"
	colour429    = "#d55e00"
	colourGrid   = "#e5e5e5"
	colourAxis   = "#555555"
	colourMuted  = "#666666"
	colourBorder = "#bbbbbb"
)

// plot draws, for each strategy, the bottleneck endpoint's successful calls
// per second and its 429s per second, both smoothed by a centred moving
// average of smooth seconds, against the limit. Panels share both axes so
// they compare at a glance.
func plot(rep report, smooth int) []byte {
	var b bytes.Buffer
	n := len(rep.Results)
	height := headerHeight + n*(panelTitle+panelHeight+panelGap) + footerHeight
	innerW := float64(plotWidth - marginLeft - marginRight)

	var limitRate float64
	var maxT int
	var peakOK, peak429 float64
	oks := make([][]float64, n)
	lims := make([][]float64, n)
	for i, r := range rep.Results {
		if r.Bottleneck.WindowSeconds > 0 {
			limitRate = float64(r.Bottleneck.Limit) / r.Bottleneck.WindowSeconds
		}
		maxT = max(maxT, len(r.Series.Succeeded))
		oks[i] = movingAverage(r.Series.Succeeded, smooth)
		lims[i] = movingAverage(r.Series.RateLimited, smooth)
		peakOK = max(peakOK, maxOf(oks[i]))
		peak429 = max(peak429, maxOf(lims[i]))
	}
	top := max(limitRate*1.25, peakOK, peak429)
	if limitRate > 0 && top > clipFactor*limitRate {
		top = max(clipFactor*limitRate, peakOK)
	}
	yStep := niceStep(top, 5)
	yMax := math.Ceil(top/yStep) * yStep
	if yMax <= 0 {
		yMax, yStep = 1, 0.25
	}
	xStep := niceStep(float64(max(maxT, 1)), 10)
	xMax := math.Ceil(float64(max(maxT, 1))/xStep) * xStep
	xOf := func(t float64) float64 { return marginLeft + t/xMax*innerW }

	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">`+"\n",
		plotWidth, height, plotWidth, height)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", plotWidth, height)
	text(&b, marginLeft, 26, "start", 17, "bold", "#000000",
		fmt.Sprintf("%s: calls per second by rate-limit strategy", rep.Settings.Bottleneck))
	text(&b, marginLeft, 46, "start", 12, "normal", colourMuted,
		fmt.Sprintf("%d deploys each, %d worker processes × %d jobs at once, builds %s + up to %s",
			rep.Settings.Requests, rep.Settings.Processes, rep.Settings.Concurrency,
			rep.Settings.BuildTime, rep.Settings.BuildJitter))
	text(&b, marginLeft, 62, "start", 12, "normal", colourMuted,
		fmt.Sprintf("limits: %s%s", limitsText(rep.Settings.Limits), headersNote(rep.Settings)))
	legend(&b, 88, smooth, rep.Settings.Bottleneck, limitRate)

	for i, r := range rep.Results {
		y0 := float64(headerHeight + i*(panelTitle+panelHeight+panelGap))
		text(&b, marginLeft, y0+15, "start", 13, "bold", "#000000", fmt.Sprintf("%s — %s", r.Strategy, r.Description))
		text(&b, marginLeft, y0+32, "start", 12, "normal", colourMuted,
			fmt.Sprintf("%d/%d succeeded · utilization %s over the active span, %s over the run · 429s %s of API requests · wall time %.0f s",
				r.Succeeded, r.Submitted, pct(r.Bottleneck.UtilizationActive, 1), pct(r.Bottleneck.UtilizationRun, 1),
				pct(r.RateLimitedShare, 1), r.WallSeconds))
		top := y0 + panelTitle
		bottom := top + panelHeight
		yOf := func(v float64) float64 { return bottom - math.Min(v, yMax)/yMax*panelHeight }

		// Grid and axes.
		for v := 0.0; v <= yMax+yStep/2; v += yStep {
			y := yOf(v)
			line(&b, marginLeft, y, float64(plotWidth-marginRight), y, colourGrid, 1, "")
			text(&b, marginLeft-6, y+4, "end", 11, "normal", colourAxis, trimFloat(v))
		}
		for t := 0.0; t <= xMax+xStep/2; t += xStep {
			x := xOf(t)
			line(&b, x, top, x, bottom, colourGrid, 1, "")
			text(&b, x, bottom+14, "middle", 11, "normal", colourAxis, trimFloat(t))
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="none" stroke="%s"/>`+"\n",
			marginLeft, top, innerW, panelHeight, colourBorder)

		// Raw successes per second, faint, under the smoothed line: they
		// show how calls bunch within each window.
		barW := innerW / xMax
		for t, c := range r.Series.Succeeded {
			if c == 0 {
				continue
			}
			y := yOf(float64(c))
			fmt.Fprintf(&b, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"/>`+"\n",
				xOf(float64(t)), y, math.Max(barW-0.3, 0.5), bottom-y, colourRaw)
		}
		polyline(&b, lims[i], xOf, yOf, colour429, 1.8)
		polyline(&b, oks[i], xOf, yOf, colourOK, 2.2)
		// The limit goes on top: a strategy that meets it exactly would
		// otherwise hide it.
		if limitRate > 0 {
			line(&b, marginLeft, yOf(limitRate), float64(plotWidth-marginRight), yOf(limitRate), colourLimit, 1.5, "6 4")
		}
		var clipped []string
		if p := maxOf(lims[i]); p > yMax {
			clipped = append(clipped, fmt.Sprintf("429s/s peak %.1f", p))
		}
		if p := slices.Max(append([]int{0}, r.Series.Succeeded...)); float64(p) > yMax {
			clipped = append(clipped, fmt.Sprintf("calls in one second peak %d", p))
		}
		if len(clipped) > 0 {
			text(&b, float64(plotWidth-marginRight), y0+15, "end", 11, "normal", colour429,
				"clipped: "+strings.Join(clipped, ", "))
		}
	}

	yLabel := float64(headerHeight) + float64(n*(panelTitle+panelHeight+panelGap))/2
	fmt.Fprintf(&b, `<text x="16" y="%.1f" text-anchor="middle" font-size="12" fill="%s" transform="rotate(-90 16 %.1f)">calls per second</text>`+"\n",
		yLabel, colourAxis, yLabel)
	foot := float64(height - footerHeight)
	text(&b, marginLeft+innerW/2, foot+14, "middle", 12, "normal", colourAxis, "seconds since the first submit")
	m := rep.Machine
	text(&b, marginLeft, foot+40, "start", 11, "normal", colourMuted,
		fmt.Sprintf("measured %s on %d CPUs (%s), %s %s/%s", m.Date, m.NProc, m.CPUModel, m.GoVersion, m.OS, m.Arch))
	text(&b, marginLeft, foot+56, "start", 11, "normal", colourMuted, rep.Settings.Command)
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// legend draws the key at height y.
func legend(b *bytes.Buffer, y float64, smooth int, endpoint string, limitRate float64) {
	x := float64(marginLeft)
	item := func(colour, dash string, width float64, label string, raw bool) {
		if raw {
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="22" height="9" fill="%s"/>`+"\n", x, y-8, colour)
		} else {
			line(b, x, y-4, x+22, y-4, colour, width, dash)
		}
		text(b, x+28, y, "start", 12, "normal", "#000000", label)
		x += 28 + float64(len([]rune(label)))*6.3 + 22
	}
	item(colourOK, "", 2.2, fmt.Sprintf("successful %s calls/s (%d s average)", endpoint, smooth), false)
	item(colourRaw, "", 0, "successful calls in each second", true)
	item(colour429, "", 1.8, fmt.Sprintf("429s/s (%d s average)", smooth), false)
	item(colourLimit, "6 4", 1.5, fmt.Sprintf("limit %s/s", trimFloat(limitRate)), false)
}

// movingAverage is the centred moving average over window samples; near
// the ends it averages the samples that exist.
func movingAverage(xs []int, window int) []float64 {
	out := make([]float64, len(xs))
	window = max(window, 1)
	half := window / 2
	for i := range xs {
		lo, hi := max(i-half, 0), min(i+window-half-1, len(xs)-1)
		sum := 0
		for _, v := range xs[lo : hi+1] {
			sum += v
		}
		out[i] = float64(sum) / float64(hi-lo+1)
	}
	return out
}

// niceStep is a round step (1, 2 or 5 × 10^k) that cuts span into about
// parts pieces.
func niceStep(span float64, parts int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(parts)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func polyline(b *bytes.Buffer, vs []float64, xOf, yOf func(float64) float64, colour string, width float64) {
	if len(vs) == 0 {
		return
	}
	var pts strings.Builder
	for t, v := range vs {
		// A sample is the second that starts at t: draw it at its middle.
		fmt.Fprintf(&pts, "%.2f,%.2f ", xOf(float64(t)+0.5), yOf(v))
	}
	fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="%.1f" stroke-linejoin="round"/>`+"\n",
		strings.TrimSpace(pts.String()), colour, width)
}

func line(b *bytes.Buffer, x1, y1, x2, y2 float64, colour string, width float64, dash string) {
	extra := ""
	if dash != "" {
		extra = fmt.Sprintf(` stroke-dasharray="%s"`, dash)
	}
	fmt.Fprintf(b, `<line x1="%.2f" y1="%.2f" x2="%.2f" y2="%.2f" stroke="%s" stroke-width="%.1f"%s/>`+"\n",
		x1, y1, x2, y2, colour, width, extra)
}

func text(b *bytes.Buffer, x, y float64, anchor string, size int, weight, colour, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d" font-weight="%s" fill="%s">`,
		x, y, anchor, size, weight, colour)
	_ = xml.EscapeText(b, []byte(s))
	b.WriteString("</text>\n")
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
