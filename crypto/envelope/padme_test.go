package envelope

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestPadme(t *testing.T) {
	tests := []struct{ n, want int64 }{
		{math.MinInt64, math.MinInt64},
		{-1, -1},
		{0, 0},
		{1, 1},
		{2, 2},
		{3, 3},
		{8, 8},
		{9, 10},
		{10, 10},
		{11, 12},
		{17, 18},
		{100, 104},
		{1000, 1024},
		{1025, 1088},
		{10_000, 10_240},
		{1 << 20, 1 << 20},
		{1<<20 + 1, 1<<20 + 1<<15},
		{1_000_000_000, 1_006_632_960},
		{math.MaxInt64, math.MaxInt64},
	}
	for _, tt := range tests {
		if got := Padme(tt.n); got != tt.want {
			t.Errorf("Padme(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

// checkPadme checks the properties that matter: never shorter, at most 12%
// longer, and a fixed point (so a reader can tell a padded length).
func checkPadme(t *testing.T, n int64) {
	p := Padme(n)
	if p < n {
		t.Fatalf("Padme(%d) = %d is shorter", n, p)
	}
	if float64(p-n) > 0.12*float64(n) {
		t.Fatalf("Padme(%d) = %d adds %.1f%%", n, p, 100*float64(p-n)/float64(n))
	}
	if Padme(p) != p {
		t.Fatalf("Padme(Padme(%d)) = %d, want %d", n, Padme(p), p)
	}
}

func TestPadmeProperties(t *testing.T) {
	for n := int64(1); n <= 1<<20; n++ {
		checkPadme(t, n)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		checkPadme(t, rng.Int64N(1<<62))
	}
	// The point of Padmé: few distinct lengths. Around a megabyte there are
	// only 2^S = 32 padded lengths per doubling (the multiples of 32 KiB).
	distinct := make(map[int64]bool)
	for n := int64(1<<20 + 1); n <= 1<<21; n++ {
		distinct[Padme(n)] = true
	}
	if len(distinct) != 32 {
		t.Errorf("%d padded lengths for (1 MiB, 2 MiB], want 32", len(distinct))
	}
}

func ExamplePadme() {
	for _, n := range []int64{100, 1500, 1_000_000, 1_000_000_000} {
		fmt.Printf("%d -> %d\n", n, Padme(n))
	}
	// Output:
	// 100 -> 104
	// 1500 -> 1536
	// 1000000 -> 1015808
	// 1000000000 -> 1006632960
}
