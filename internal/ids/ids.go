// Package ids owns the spelling of the identifiers that testimony's
// programs pass to each other and use as file names: submission ids, token
// ids and SHA-256 digests, all lowercase hex of a fixed length.
//
// Uppercase is refused everywhere, so that one id has one spelling: the
// server, the store, the intake log, bundles and the caseworker's outbox all
// check an id here, and an id that passes is also a safe file name
// component on every system.
package ids

const (
	// SubmissionLen is the length of a submission (and upload) id: 128
	// random bits in lowercase hex.
	SubmissionLen = 32
	// TokenLen is the length of a token id: 64 random bits in lowercase
	// hex.
	TokenLen = 16
	// SHA256Len is the length of a SHA-256 digest in lowercase hex.
	SHA256Len = 64
)

// ValidSubmission reports whether s is a well-formed submission or upload
// id.
func ValidSubmission(s string) bool { return LowerHex(s, SubmissionLen) }

// ValidToken reports whether s is a well-formed token id.
func ValidToken(s string) bool { return LowerHex(s, TokenLen) }

// ValidSHA256 reports whether s is a SHA-256 digest in lowercase hex.
func ValidSHA256(s string) bool { return LowerHex(s, SHA256Len) }

// LowerHex reports whether s is exactly n characters of lowercase hex. It
// is for the few names another package owns in the same alphabet, such as
// the caseworker's outbox entries.
func LowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
