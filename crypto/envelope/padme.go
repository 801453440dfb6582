package envelope

import "math/bits"

// Padme returns the padded length for a plaintext of n bytes, using the
// Padmé scheme from "Reducing Metadata Leakage from Encrypted Files and
// Communication with PURBs" (Nikitin et al., PETS 2019).
//
// With E = ⌊log₂ n⌋ and S = ⌊log₂ E⌋ + 1, the length is rounded up to a
// multiple of 2^(E−S): the padded length reveals only O(log log n) bits,
// and the overhead is at most about 12%. Lengths below 2 are returned
// unchanged (there is nothing to round), as are lengths so close to the
// int64 limit that rounding would overflow.
func Padme(n int64) int64 {
	if n < 2 {
		return n
	}
	e := bits.Len64(uint64(n)) - 1 // ⌊log₂ n⌋
	s := bits.Len64(uint64(e))     // ⌊log₂ e⌋ + 1, and 0 when e = 0
	mask := int64(1)<<(e-s) - 1
	if n > (1<<63-1)-mask {
		return n
	}
	return (n + mask) &^ mask
}
