package caseworker

import (
	"strings"

	"github.com/testimony-ngo/testimony/internal/cmdline"
)

// Message is err with its hints, one per line, as the app shows it: the
// lines "testimony: error: …" and "testimony: hint: …" of the CLI without
// their prefixes.
func Message(err error) string {
	lines := append([]string{err.Error()}, cmdline.Hints("testimony", "", err)...)
	return strings.TrimSpace(strings.Join(lines, "\n"))
}
