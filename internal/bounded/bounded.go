// Package bounded reads files, request and response bodies and standard
// input with a size cap, so that no input can make a program hold more
// than its format allows.
//
// The cap is checked by reading one byte more than allowed: a reader that
// stops at exactly max bytes could not tell a full file from a longer one.
package bounded

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge is wrapped by the error for an input longer than its cap.
var ErrTooLarge = errors.New("larger than the limit")

// ReadAll reads r to its end, but never more than max+1 bytes. An input of
// more than max bytes is an error wrapping ErrTooLarge.
func ReadAll(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w of %d bytes", ErrTooLarge, max)
	}
	return data, nil
}

// ReadFile reads the named file like ReadAll. A missing file is an error
// wrapping fs.ErrNotExist.
func ReadFile(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAll(f, max)
}
