// Command bench measures testimony against what the machine can do: it
// builds testimony-server, testimony, testimony-review and age into a
// temporary directory, runs each path and its baseline interleaved over
// several rounds, and prints a table of medians and ratios, the figures of
// docs/benchmarks.md.
//
// Pairs (testimony against baseline):
//
//	intake      one-shot POST of a ready age file to testimony-server,
//	            against the same POST to a bare HTTPS sink that reads,
//	            SHA-256s, writes and fsyncs the body
//	chunked     the same file sent with the chunked protocol (create,
//	            PUT each 1 MiB chunk, finish), against the same POST to
//	            the sink
//	submit      testimony submit (envelope, encrypt, chunked upload),
//	            against tar | age -R to a file, then the POST to the sink
//	open        testimony-review open of a collected bundle, against
//	            age -d | tar -x and an fsync of every file
//	small       one-shot submissions of about 10 KiB from 64 concurrent
//	            clients, against a bbolt program committing records of
//	            the same size with DB.Batch from 64 goroutines
//
// A ratio is the baseline's time over testimony's (1 = as fast as the
// baseline; for small, submissions per second over records per second).
//
// Usage:
//
//	go run ./tools/bench [-quick] [-size BYTES] [-rounds N] [-small N]
//
// With -quick (small sizes, one round, as .ci/run runs it) the command
// exits 1 when a ratio is below its floor: half of its goal, or half of
// what quick mode measures for the path today where that is lower, so that
// a regression of 2× fails without the noise of a shared machine failing a
// path that is still short of its goal. Run it from the module root; it
// needs tar and sh.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const usage = `Usage: go run ./tools/bench [-quick] [-size BYTES] [-rounds N] [-small N]

Builds the binaries, runs each path of testimony and its baseline
interleaved, and prints medians and ratios (baseline time / testimony
time). With -quick, exits 1 when a ratio is below its floor (half of
its goal, or half of today's figure where that is lower).

    -quick      small sizes and one round, for CI (-size 64MiB -small 1920)
    -size N     plaintext bytes of the file submitted and opened
                (default 1GiB; suffixes KiB, MiB, GiB)
    -rounds N   rounds of every pair (default 3)
    -small N    submissions of about 10 KiB per round (default 6400)
    -only LIST  comma-separated pairs to run: intake,chunked,submit,open,small

Example:
    go run ./tools/bench -size 2GiB -rounds 3
`

func main() {
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	quick := flag.Bool("quick", false, "")
	sizeFlag := flag.String("size", "1GiB", "")
	rounds := flag.Int("rounds", 3, "")
	small := flag.Int("small", 6400, "")
	only := flag.String("only", "intake,chunked,submit,open,small", "")
	flag.Parse()
	size, err := parseSize(*sizeFlag)
	if err != nil || *rounds < 1 || *small < smallClients || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *quick {
		size, *rounds, *small = 64<<20, 1, 1920
	}
	cfg := config{size: size, rounds: *rounds, small: *small, only: strings.Split(*only, ",")}
	failed, err := run(cfg, *quick)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: error: %v\n", err)
		os.Exit(1)
	}
	if failed {
		fmt.Fprintln(os.Stderr, "bench: error: a ratio is below its floor: a large regression (see docs/benchmarks.md)")
		os.Exit(1)
	}
}

type config struct {
	size   int64
	rounds int
	small  int
	only   []string
}

// pair is one path of testimony and its baseline. goal is the least ratio
// (baseline time over testimony time) the project aims for; floor is the
// least quick mode accepts: half of goal, or half of today's quick figure
// where that is lower (raise it as the path gets faster).
type pair struct {
	name, what, baseline string
	goal, floor          float64
	count                int // items per run, to print a rate; 0 for none
	testimony, base      func(round int) error
	tTimes, bTimes       []time.Duration
}

func run(cfg config, quick bool) (failed bool, err error) {
	dir, err := os.MkdirTemp("", "testimony-bench-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "bin")
	if err := build(bin); err != nil {
		return false, err
	}
	b, err := newBench(dir, bin, cfg)
	if err != nil {
		return false, err
	}
	defer b.close()
	var pairs []*pair
	for _, p := range b.pairs() {
		if slices.Contains(cfg.only, p.name) {
			pairs = append(pairs, p)
		}
	}
	for r := range cfg.rounds {
		for _, p := range pairs {
			// Alternating which side goes first spreads the effect of the
			// page cache and of other load over both.
			first, second := p.testimony, p.base
			ft, st := &p.tTimes, &p.bTimes
			if r%2 == 1 {
				first, second, ft, st = second, first, st, ft
			}
			for _, step := range []struct {
				f func(int) error
				t *[]time.Duration
			}{{first, ft}, {second, st}} {
				start := time.Now()
				if err := step.f(r); err != nil {
					return false, fmt.Errorf("%s, round %d: %w", p.name, r+1, err)
				}
				*step.t = append(*step.t, time.Since(start))
			}
			fmt.Fprintf(os.Stderr, "round %d %-7s testimony %v, baseline %v\n", r+1, p.name, p.tTimes[len(p.tTimes)-1].Round(time.Millisecond), p.bTimes[len(p.bTimes)-1].Round(time.Millisecond))
		}
	}
	rss := b.stop()
	fmt.Printf("%d rounds, %s plaintext, %d small submissions per round\n\n", cfg.rounds, formatSize(cfg.size), cfg.small)
	fmt.Println("| path | testimony | baseline | median baseline | ratio | goal |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, p := range pairs {
		t, base := median(p.tTimes), median(p.bTimes)
		ratio := base.Seconds() / t.Seconds()
		mark := ""
		if ratio < p.goal {
			mark = " (not met)"
		}
		if quick && ratio < p.floor {
			failed = true
			mark = fmt.Sprintf(" (below the floor %.2f)", p.floor)
		}
		fmt.Printf("| %s | %s | %s | %s | %.2f | ≥ %.2f%s |\n", p.what, p.show(t), p.baseline, p.show(base), ratio, p.goal, mark)
	}
	fmt.Printf("\npeak RSS: server %s, submit %s, open %s\n", formatSize(rss.server), formatSize(rss.submit), formatSize(rss.open))
	return failed, nil
}

func (p *pair) show(d time.Duration) string {
	if p.count > 0 {
		return fmt.Sprintf("%.0f/s", float64(p.count)/d.Seconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.m
			break
		}
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func formatSize(n int64) string {
	switch {
	case n <= 0:
		return "?"
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
