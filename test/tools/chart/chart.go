package main

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The chart is 16x7 inches at 100 dots per inch: 1600x700 pixels.
const (
	width   = 16 * vg.Inch
	height  = 7 * vg.Inch
	dpi     = 100
	caption = 0.45 * vg.Inch // room for the caption line at the top
)

var (
	sans   = font.Font{Typeface: "Liberation", Variant: "Sans"}
	shapes = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}}
)

// render draws the latency panel and the repository-size panel side by side; a panel
// without data gives its room to the other.
func render(r *report) (image.Image, error) {
	var panels []func(draw.Canvas)
	if len(r.Latency) > 0 {
		p, err := latencyPlot(r.Latency)
		if err != nil {
			return nil, err
		}
		panels = append(panels, func(c draw.Canvas) { drawLegendBelow(p, c) })
	}
	if len(r.RepoSize) > 0 {
		ps, err := repoSizePlots(r.RepoSize)
		if err != nil {
			return nil, err
		}
		panels = append(panels, func(c draw.Canvas) { drawColumn(ps, c) })
	}

	c := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(dpi))
	dc := draw.New(c)
	drawCaption(dc, r)
	body := draw.Crop(dc, 0, 0, 0, -caption)
	cols := draw.Tiles{Cols: len(panels), Rows: 1, PadLeft: vg.Points(6), PadRight: vg.Points(12), PadBottom: vg.Points(6), PadX: vg.Points(36)}
	for i, panel := range panels {
		panel(cols.At(body, i, 0))
	}
	return c.Image(), nil
}

// drawColumn stacks plots with their axes aligned.
func drawColumn(ps []*plot.Plot, c draw.Canvas) {
	rows := make([][]*plot.Plot, len(ps))
	for i, p := range ps {
		rows[i] = []*plot.Plot{p}
	}
	canvases := plot.Align(rows, draw.Tiles{Cols: 1, Rows: len(ps), PadY: vg.Points(12)}, c)
	for i, p := range ps {
		p.Draw(canvases[i][0])
	}
}

// drawLegendBelow draws p with its legend in a strip under it, where no line can cross it.
func drawLegendBelow(p *plot.Plot, c draw.Canvas) {
	leg := p.Legend
	p.Legend = plot.NewLegend()
	leg.Top, leg.Left = true, true
	r := leg.Rectangle(c)
	h := r.Max.Y - r.Min.Y + vg.Points(12)
	area := draw.Crop(c, 0, 0, h, 0)
	p.Draw(area)
	strip := draw.Crop(c, p.DataCanvas(area).Min.X-c.Min.X, 0, 0, h-(c.Max.Y-c.Min.Y))
	leg.Draw(strip)
}

// drawCaption writes the machine and the date of the run across the top.
func drawCaption(dc draw.Canvas, r *report) {
	cpu := r.Machine.CPU
	if cpu == "" {
		cpu = "unknown CPU"
	}
	line := "GitOps Reverser benchmark  ·  " + cpu
	if r.Machine.Cores > 0 {
		line += fmt.Sprintf(", %d cores", r.Machine.Cores)
	}
	if !r.Started.IsZero() {
		line += "  ·  " + r.Started.Format("2006-01-02 15:04 MST")
	}
	sty := text.Style{Color: color.Black, Font: font.From(sans, 15), XAlign: draw.XCenter, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
	dc.FillText(sty, vg.Point{X: dc.Center().X, Y: dc.Max.Y - vg.Points(8)}, line)
}

// latencyPlot draws each series' empirical CDF on a log axis, with its p50 and p99 marked.
func latencyPlot(ss []series) (*plot.Plot, error) {
	p := newPlot("Latency distribution", "latency (ms)", "fraction of samples at or below")
	p.Y.Min, p.Y.Max = 0, 1
	p.Y.Tick.Marker = plot.ConstantTicks{
		{Value: 0, Label: "0"}, {Value: 0.25, Label: "0.25"}, {Value: 0.5, Label: "p50  0.5"},
		{Value: 0.75, Label: "0.75"}, {Value: 0.9, Label: "0.9"}, {Value: 0.99, Label: "p99  0.99"}, {Value: 1},
	}
	for _, q := range []float64{0.5, 0.99} {
		f := plotter.NewFunction(func(float64) float64 { return q })
		f.Samples = 2
		f.Color, f.Width, f.Dashes = color.Gray{Y: 110}, vg.Points(1), []vg.Length{vg.Points(5), vg.Points(3)}
		p.Add(f)
	}
	for i, s := range ss {
		ms := slices.Sorted(slices.Values(s.MS))
		xys := plotter.XYs{{X: ms[0], Y: 0}} // the first step rises from zero
		for j, v := range ms {
			xys = append(xys, plotter.XY{X: v, Y: float64(j+1) / float64(len(ms))})
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("latency series %q: %w", s.Name, err)
		}
		l.StepStyle = plotter.PostStep
		l.Color, l.Width = plotutil.Color(i), vg.Points(2)
		p50, p99 := quantile(ms, 0.5), quantile(ms, 0.99)
		marks, err := plotter.NewScatter(plotter.XYs{{X: p50, Y: 0.5}, {X: p99, Y: 0.99}})
		if err != nil {
			return nil, fmt.Errorf("latency series %q: %w", s.Name, err)
		}
		marks.Color, marks.Shape, marks.Radius = plotutil.Color(i), draw.CircleGlyph{}, vg.Points(4)
		p.Add(l, marks)
		p.Legend.Add(fmt.Sprintf("%s  (p50 %s ms, p99 %s ms, n=%d)", s.Name, number(p50), number(p99), len(ms)), l, marks)
	}
	logAxis(&p.X)
	p.Y.Min, p.Y.Max = 0, 1
	return p, nil
}

// repoSizePlots draws one plot per unit, each with one line per curve against the number of
// files in the repository on a log axis.
func repoSizePlots(cs []curve) ([]*plot.Plot, error) {
	var units []string
	for _, c := range cs {
		if !slices.Contains(units, c.Unit) {
			units = append(units, c.Unit)
		}
	}
	var ps []*plot.Plot
	for k, unit := range units {
		title := ""
		if k == 0 {
			title = "Against repository size"
		}
		p := newPlot(title, "files in repository", unit)
		for i, c := range cs {
			if c.Unit != unit {
				continue
			}
			xys := make(plotter.XYs, len(c.Files))
			for j := range c.Files {
				xys[j] = plotter.XY{X: c.Files[j], Y: c.Value[j]}
			}
			l, pts, err := plotter.NewLinePoints(xys)
			if err != nil {
				return nil, fmt.Errorf("repository-size curve %q: %w", c.Name, err)
			}
			l.Color, l.Width = plotutil.Color(i), vg.Points(2)
			pts.Color, pts.Shape, pts.Radius = plotutil.Color(i), shapes[i%len(shapes)], vg.Points(4)
			p.Add(l, pts)
			p.Legend.Add(fmt.Sprintf("%s (%s)", c.Name, c.Unit), l, pts)
		}
		logAxis(&p.X)
		if p.Y.Min > 0 && p.Y.Max/p.Y.Min > 20 {
			// Values apart by orders of magnitude (our commit against git's): on a linear
			// axis the small curve would lie flat on zero.
			logAxis(&p.Y)
			p.Y.Max *= 10 // room for the legend
		} else {
			p.Y.Min = math.Min(0, p.Y.Min) // start at zero, so growth reads true
			if p.Y.Max <= p.Y.Min {
				p.Y.Max = p.Y.Min + 1
			}
			p.Y.Max += (p.Y.Max - p.Y.Min) * 0.2 // room for the legend
		}
		p.Legend.Top, p.Legend.Left = true, true
		p.Legend.XOffs = vg.Points(8)
		ps = append(ps, p)
	}
	return ps, nil
}

// newPlot returns a plot with a grid and fonts sized for a 1600-pixel-wide chart.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, x, y
	p.Title.TextStyle.Font = font.From(sans, 15)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, 12)
		a.Tick.Label.Font = font.From(sans, 11)
	}
	p.Legend.TextStyle.Font = font.From(sans, 11)
	p.Legend.ThumbnailWidth = vg.Points(24)
	p.Legend.Padding = vg.Points(2)
	p.Add(plotter.NewGrid())
	return p
}

// logAxis makes a log axis of a, whose ends are 1, 2 or 5 times a power of ten.
func logAxis(a *plot.Axis) {
	a.Scale, a.Tick.Marker = plot.LogScale{}, logTicks{}
	a.Min, a.Max = niceFloor(a.Min), niceCeil(a.Max)
	if a.Max <= a.Min { // a single value
		a.Min, a.Max = niceFloor(a.Min/1.5), niceCeil(a.Max*1.5)
	}
}

// logTicks labels 1, 2 and 5 times each power of ten and marks the other digits.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for d := 1.0; d < 10; d++ {
			v := d * math.Pow(10, e)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if d == 1 || d == 2 || d == 5 {
				t.Label = number(v)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// niceFloor returns the largest 1, 2 or 5 times a power of ten at or below v.
func niceFloor(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, d := range []float64{5, 2, 1} {
		if d*p <= v*(1+1e-9) {
			return d * p
		}
	}
	return p
}

// niceCeil returns the smallest 1, 2 or 5 times a power of ten at or above v.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, d := range []float64{1, 2, 5, 10} {
		if d*p >= v*(1-1e-9) {
			return d * p
		}
	}
	return 10 * p
}

// quantile returns the q-quantile of sorted values, nearest rank (as test/bench computes it).
func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// number prints a value compactly: 12.5, 340, 2000, 50k.
func number(v float64) string {
	switch {
	case v >= 10000:
		return strconv.FormatFloat(math.Round(v/100)/10, 'f', -1, 64) + "k"
	case v >= 100:
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	case v >= 10:
		return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
	default:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
}
