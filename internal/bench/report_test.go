package bench

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain prints the table of figures after the benchmarks ran. Without
// -bench no benchmark runs, nothing is recorded and nothing is printed, so
// a plain `go test` of this package stays fast.
func TestMain(m *testing.M) {
	code := m.Run()
	results.print(os.Stdout)
	os.Exit(code)
}

// kind says how a figure compares with its floor.
type kind int

const (
	// cost: lower is better (latency, bytes); ratio = measured / floor.
	cost kind = iota
	// rate: higher is better (throughput); ratio = floor / measured, so that
	// every ratio reads "times the cost of the floor".
	rate
)

// row is one line of the final table.
type row struct {
	order     int
	figure    string
	measured  float64
	floor     float64
	unit      string
	floorWhat string
	kind      kind
}

// ratio is the measured cost in units of the floor's cost.
func (r row) ratio() float64 {
	if r.measured == 0 || r.floor == 0 {
		return math.NaN()
	}
	if r.kind == rate {
		return r.floor / r.measured
	}
	return r.measured / r.floor
}

// registry collects the rows, notes and durations the benchmarks record.
// A benchmark that runs more than once (-count, or b.Loop running the
// experiment again) overwrites its rows with the latest figures.
type registry struct {
	mu    sync.Mutex
	rows  map[string]row
	notes map[string][]string // by benchmark
	took  map[string]time.Duration
	env   []string
	skips map[string]string // why a benchmark was skipped
}

var results = &registry{rows: map[string]row{}, notes: map[string][]string{}, took: map[string]time.Duration{}, skips: map[string]string{}}

// skip records why a benchmark did not run.
func (g *registry) skip(bench, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.skips[bench] = why
}

// environment records a line describing the services, printed once above
// the table.
func (g *registry) environment(line string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !slices.Contains(g.env, line) {
		g.env = append(g.env, line)
	}
}

// add records a row; the figure's text is its key.
func (g *registry) add(r row) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rows[r.figure] = r
}

// note records an explanatory line printed under the table for the
// benchmark.
func (g *registry) note(bench, text string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.notes[bench] = append(g.notes[bench], text)
}

// resetNotes forgets a benchmark's notes before it records new ones.
func (g *registry) resetNotes(bench string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.notes, bench)
}

// timeIt records how long a benchmark took, setup included, and the
// machine's load average before and after (other work on the machine shows
// in the figures); use as `defer results.timeIt(b)()`.
func (g *registry) timeIt(b *testing.B) func() {
	start := time.Now()
	name := b.Name()
	g.resetNotes(name)
	load := loadAverage()
	return func() {
		g.note(name, fmt.Sprintf("1-minute load average %s before, %s after (%d CPUs)", load, loadAverage(), runtime.NumCPU()))
		g.mu.Lock()
		defer g.mu.Unlock()
		g.took[name] = time.Since(start)
	}
}

// loadAverage is the 1-minute load average, or "?" where there is none.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func (g *registry) print(w io.Writer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.skips) > 0 {
		names := make([]string, 0, len(g.skips))
		for name := range g.skips {
			names = append(names, name)
		}
		sort.Strings(names)
		fmt.Fprintln(w)
		for _, name := range names {
			fmt.Fprintf(w, "%s skipped: %s\n", name, g.skips[name])
		}
	}
	if len(g.rows) == 0 {
		return
	}
	rows := make([]row, 0, len(g.rows))
	for _, r := range g.rows {
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].order != rows[j].order {
			return rows[i].order < rows[j].order
		}
		return rows[i].figure < rows[j].figure
	})
	head := []string{"figure", "measured", "floor", "ratio"}
	cells := [][]string{head}
	for _, r := range rows {
		ratio := "n/a"
		if x := r.ratio(); !math.IsNaN(x) {
			ratio = fmt.Sprintf("%.1fx", x)
			if x < 10 {
				ratio = fmt.Sprintf("%.2fx", x)
			}
		}
		cells = append(cells, []string{r.figure, format(r.measured, r.unit), format(r.floor, r.unit) + "  " + r.floorWhat, ratio})
	}
	width := make([]int, len(head))
	for _, c := range cells {
		for i, s := range c {
			width[i] = max(width[i], len([]rune(s)))
		}
	}
	line := func(c []string) {
		parts := make([]string, len(c))
		for i, s := range c {
			pad := width[i] - len([]rune(s))
			if i == 1 || i == 3 {
				parts[i] = strings.Repeat(" ", pad) + s
			} else {
				parts[i] = s + strings.Repeat(" ", pad)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(strings.Join(parts, " | "), " "))
	}
	fmt.Fprintf(w, "\nParley benchmarks on PostgreSQL + Redis (%s, GOMAXPROCS=%d, %s/%s)\n", runtime.Version(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
	for _, e := range g.env {
		fmt.Fprintln(w, e)
	}
	fmt.Fprintln(w, "ratio = measured cost / floor cost (for throughput: floor rate / measured rate); figures, not pass/fail")
	fmt.Fprintln(w)
	line(cells[0])
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	fmt.Fprintln(w, strings.Join(sep, "-+-"))
	for _, c := range cells[1:] {
		line(c)
	}
	benches := make([]string, 0, len(g.took)+len(g.notes))
	for name := range g.took {
		if _, skipped := g.skips[name]; !skipped {
			benches = append(benches, name)
		}
	}
	for name := range g.notes {
		if _, skipped := g.skips[name]; !skipped && !slices.Contains(benches, name) {
			benches = append(benches, name)
		}
	}
	sort.Strings(benches)
	for _, name := range benches {
		fmt.Fprintf(w, "\n%s", name)
		if d, ok := g.took[name]; ok {
			fmt.Fprintf(w, " (took %s, setup included)", d.Round(100*time.Millisecond))
		}
		fmt.Fprintln(w, ":")
		for _, n := range g.notes[name] {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	fmt.Fprintln(w)
}

// format prints a value with its unit, at a precision that suits it.
func format(v float64, unit string) string {
	switch {
	case v == 0:
		return "0 " + unit
	case math.Abs(v) >= 1000:
		return thousands(v) + " " + unit
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f %s", v, unit)
	default:
		return fmt.Sprintf("%.3f %s", v, unit)
	}
}

// thousands formats a large value as an integer with thousands separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", math.Abs(v))
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// percentile returns the nearest-rank q-quantile (0 < q <= 1) of sorted
// durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// dist summarises latency samples.
type dist struct {
	n             int
	p50, p99, max time.Duration
}

// summarize sorts samples in place and returns their distribution.
func summarize(samples []time.Duration) dist {
	slices.Sort(samples)
	if len(samples) == 0 {
		return dist{}
	}
	return dist{n: len(samples), p50: percentile(samples, 0.50), p99: percentile(samples, 0.99), max: samples[len(samples)-1]}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (d dist) String() string {
	return fmt.Sprintf("n=%d p50=%.3fms p99=%.3fms max=%.3fms", d.n, ms(d.p50), ms(d.p99), ms(d.max))
}

// TestReportHelpers checks the percentile and formatting helpers; it needs
// no services and takes microseconds.
func TestReportHelpers(t *testing.T) {
	var s []time.Duration
	for i := 100; i >= 1; i-- {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	d := summarize(s)
	if d.p50 != 50*time.Millisecond || d.p99 != 99*time.Millisecond || d.max != 100*time.Millisecond {
		t.Fatalf("summarize: %v", d)
	}
	for v, want := range map[float64]string{1234567: "1,234,567 x", 12.34: "12.3 x", 0.5: "0.500 x", 250: "250 x"} {
		if got := format(v, "x"); got != want {
			t.Errorf("format(%v) = %q, want %q", v, got, want)
		}
	}
	if r := (row{measured: 100, floor: 1000, kind: rate}).ratio(); r != 10 {
		t.Errorf("rate ratio %v", r)
	}
}
