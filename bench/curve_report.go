package bench

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// lowLatencyTargets are the low-latency settings' targets: p99 at a load
// (a share of the transactional ceiling's median rate) at most so many ms.
var lowLatencyTargets = []struct {
	key, setting string
	load, maxMs  float64
}{
	{"lowlat_eos_p99_10", "eos-low-latency", 0.10, 35},
	{"lowlat_alos_p99_10", "alos-low-latency", 0.10, 15},
	{"lowlat_eos_p99_30", "eos-low-latency", 0.30, 60},
}

// point returns the curve's point of setting at load, if it ran.
func (r *Report) point(setting string, load float64) *CurvePoint {
	for i := range r.Curve {
		if p := &r.Curve[i]; p.Setting.Name == setting && math.Abs(p.Load-load) < 1e-9 {
			return p
		}
	}
	return nil
}

// setLowLatency sets the low-latency figures from the curve.
func (r *Report) setLowLatency() {
	for _, t := range lowLatencyTargets {
		p := r.point(t.setting, t.load)
		if p == nil {
			continue
		}
		r.set(Figure{
			Key: t.key, Name: fmt.Sprintf("orderflow %s p99 at %.0f%% of the transactional ceiling's rate", t.setting, 100*t.load),
			Value: p.Orderflow.P99, Unit: "ms",
			Note: fmt.Sprintf("%.0f records/s; p50 %.1f ms, p999 %.1f ms; the ceiling with the same settings: p50 %.1f ms, p99 %.1f ms; load average %.2f at the point's end",
				p.Rate, p.Orderflow.P50, p.Orderflow.P999, p.Ceiling.P50, p.Ceiling.P99, p.Uptime[0]),
		})
		f := r.figures[t.key]
		f.Target = fmt.Sprintf("<= %.0f ms", t.maxMs)
		met := f.Value <= t.maxMs
		f.Met = &met
		if p.Ceiling.P99 > 0 {
			f.Baseline, f.BaselineValue, f.Ratio = "ceiling p99, same settings", p.Ceiling.P99, f.Value/p.Ceiling.P99
		}
	}
}

// curveTable is the report's table of the latency curve.
func (r *Report) curveTable() string {
	if len(r.Curve) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| setting | load | records/s | p50 | p99 | p999 | ceiling p50 | ceiling p99 | ceiling p999 | GC pauses (max) | load avg |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.Curve {
		o, c := p.Orderflow, p.Ceiling
		fmt.Fprintf(&b, "| %s | %.0f%% | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %d (%.1f ms) | %.2f |\n",
			p.Setting.Name, 100*p.Load, p.Rate, o.P50, o.P99, o.P999, c.P50, c.P99, c.P999, o.GCPauses, o.GCPauseMax, p.Uptime[0])
	}
	b.WriteString("\nWhere orderflow's time went (mean/p99 ms, after the warm-up; p99 is a histogram bucket's bound): " +
		"fetch = first record's timestamp to orderflow taking the partition's records up; fill, flush, end, store = a batch's phases; " +
		"committed = a record's timestamp to its batch's commit; after = the reader's mean less committed's mean (markers, last stable offset, the read): " +
		"approximate, as committed counts the batches committed after the warm-up, whose first records may be older; " +
		"negative when a backlog at the warm-up's end (a loaded machine) outweighs it.\n\n")
	b.WriteString("| setting | load | batches | records/batch | fetch | fill | flush | end | store | committed | after |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.Curve {
		d := p.Breakdown
		if d == nil {
			continue
		}
		fmt.Fprintf(&b, "| %s | %.0f%% | %d | %.0f | %s | %s | %s | %s | %s | %s | %.1f |\n",
			p.Setting.Name, 100*p.Load, d.Batches, d.RecordsPerBatch, d.Fetch, d.Fill, d.Flush, d.End, d.Store, d.Committed, d.AfterCommitMean)
	}
	return b.String()
}

// curveColors are the settings' colours in the chart, in curve order.
var curveColors = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
}

// WriteChart draws the latency curve to a PNG file: p50, p99 and p999
// against the load, one line per setting, orderflow solid and the ceiling
// with the same settings dashed. It writes nothing if there is no curve.
func (r *Report) WriteChart(path string) (bool, error) {
	if len(r.Curve) == 0 {
		return false, nil
	}
	var settings []string
	for _, p := range r.Curve {
		if !slices.Contains(settings, p.Setting.Name) {
			settings = append(settings, p.Setting.Name)
		}
	}
	qs := []struct {
		name string
		of   func(LatencyStats) float64
	}{
		{"p50", func(s LatencyStats) float64 { return s.P50 }},
		{"p99", func(s LatencyStats) float64 { return s.P99 }},
		{"p999", func(s LatencyStats) float64 { return s.P999 }},
	}
	row := make([]*plot.Plot, len(qs))
	for i, q := range qs {
		p := plot.New()
		p.Title.Text = "end-to-end " + q.name + " (read_committed)"
		p.X.Label.Text = "load, % of the transactional ceiling's rate"
		p.Y.Label.Text = "ms"
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = msTicks{}
		p.Add(plotter.NewGrid())
		for si, name := range settings {
			col := curveColors[si%len(curveColors)]
			for _, ceiling := range []bool{false, true} {
				var xys plotter.XYs
				for _, pt := range r.Curve {
					if pt.Setting.Name != name {
						continue
					}
					s := pt.Orderflow
					if ceiling {
						s = pt.Ceiling
					}
					if v := q.of(s); v > 0 {
						xys = append(xys, plotter.XY{X: 100 * pt.Load, Y: v})
					}
				}
				if len(xys) == 0 {
					continue
				}
				l, pts, err := plotter.NewLinePoints(xys)
				if err != nil {
					return false, err
				}
				l.Color, pts.Color = col, col
				l.Width = vg.Points(1.5)
				if ceiling {
					l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
					pts.Shape = draw.RingGlyph{}
				}
				p.Add(l, pts)
				if i == 0 {
					label := name
					if ceiling {
						label += " (ceiling)"
					}
					p.Legend.Add(label, l, pts)
				}
			}
		}
		p.Legend.Top, p.Legend.Left = true, true
		row[i] = p
	}
	img := vgimg.New(vg.Points(1350), vg.Points(500))
	dc := draw.New(img)
	t := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Points(20), PadTop: vg.Points(10), PadBottom: vg.Points(10), PadLeft: vg.Points(10), PadRight: vg.Points(10)}
	canvases := plot.Align([][]*plot.Plot{row}, t, dc)
	for i, p := range row {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return false, err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return false, err
	}
	return true, f.Close()
}

// msTicks marks a log axis of milliseconds at 1, 2 and 5 times each power
// of ten, where plot.LogTicks labels the powers of ten only.
type msTicks struct{}

func (msTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for p := math.Floor(math.Log10(lo)); p <= math.Ceil(math.Log10(hi)); p++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, p)
			if v < lo || v > hi {
				continue
			}
			ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
		}
	}
	return ts
}
