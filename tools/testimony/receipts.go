package main

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/testimony-ngo/testimony/crypto/receipt"
	"github.com/testimony-ngo/testimony/tools/internal/bundle"
	"github.com/testimony-ngo/testimony/tools/internal/safefile"
)

// errBadReceipt wraps every way a receipt can fail to prove what the
// client sent.
var errBadReceipt = errors.New("the server's receipt does not prove this submission")

// verifyReceipt checks that raw is a receipt signed by key for exactly the
// ciphertext id, size and sha256Hex.
func verifyReceipt(raw []byte, key ed25519.PublicKey, id string, size int64, sha256Hex string) (*receipt.Receipt, error) {
	r, err := receipt.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadReceipt, err)
	}
	if err := r.Verify(key); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadReceipt, err)
	}
	switch {
	case r.ID != id:
		return nil, fmt.Errorf("%w: it names submission %s, not %s", errBadReceipt, r.ID, id)
	case r.Size != size:
		return nil, fmt.Errorf("%w: it says %d bytes, not %d", errBadReceipt, r.Size, size)
	case r.SHA256 != sha256Hex:
		return nil, fmt.Errorf("%w: it names ciphertext sha256 %s, not %s", errBadReceipt, r.SHA256, sha256Hex)
	}
	return r, nil
}

// saveReceipt writes receipts/<id>.json.
func (h *home) saveReceipt(r *receipt.Receipt) error {
	if !bundle.ValidID(r.ID) {
		return fmt.Errorf("%w: malformed id", errBadReceipt)
	}
	data, err := json.MarshalIndent(r, "", "\t")
	if err != nil {
		return fmt.Errorf("failed to encode receipt: %w", err)
	}
	if err := os.MkdirAll(h.receiptsDir(), 0o700); err != nil {
		return fmt.Errorf("failed to save receipt: %w", err)
	}
	return safefile.Write(filepath.Join(h.receiptsDir(), r.ID+".json"), append(data, '\n'), 0o600)
}

// receipts lists the saved receipts, oldest first; unreadable files are
// returned by name with the reason.
func (h *home) receipts() ([]*receipt.Receipt, map[string]error, error) {
	des, err := os.ReadDir(h.receiptsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("failed to read receipts: %w", err)
	}
	var list []*receipt.Receipt
	broken := map[string]error{}
	for _, de := range des {
		name := de.Name()
		if safefile.IsTemp(name) || !strings.HasSuffix(name, ".json") {
			continue
		}
		data, err := readSmall(filepath.Join(h.receiptsDir(), name), receipt.MaxSize)
		if err == nil {
			var r *receipt.Receipt
			if r, err = receipt.Parse(data); err == nil {
				list = append(list, r)
				continue
			}
		}
		broken[name] = err
	}
	slices.SortStableFunc(list, func(a, b *receipt.Receipt) int {
		if c := strings.Compare(a.Received, b.Received); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list, broken, nil
}

func readSmall(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, max)
	}
	return data, nil
}
