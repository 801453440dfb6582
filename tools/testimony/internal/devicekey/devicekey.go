// Package devicekey keeps the caseworker device's Ed25519 signing key, with
// which the client signs the manifest inside every envelope it builds. The
// signature travels inside the ciphertext: the server never sees it, and
// the reviewer can tell which device packed a testimony and that nothing in
// it changed since.
//
// The key file is "testimony-device-key-v1\n" followed by the standard
// base64 of the 32-byte Ed25519 seed and a newline. It is created with
// O_EXCL and mode 0600 and never overwritten.
package devicekey

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
)

// FileName is the key's name inside the state directory.
const FileName = "device.key"

const header = "testimony-device-key-v1\n"

// fileSize is the exact size of a key file.
var fileSize = len(header) + base64.StdEncoding.EncodedLen(ed25519.SeedSize) + 1

// ErrMalformed means the file is not a device key.
var ErrMalformed = errors.New("not a testimony device key file")

// ErrExposed means the key file can be read by other users of the machine.
var ErrExposed = errors.New("device key file can be read by other users")

// Create generates a new key and writes it to name, which must not exist
// (the error then wraps fs.ErrExist).
func Create(name string) (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("failed to generate device key: %w", err)
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to create device key: %w", err)
	}
	data := header + encodeSeed(priv.Seed()) + "\n"
	if _, err := io.WriteString(f, data); err != nil {
		f.Close()
		os.Remove(name)
		return nil, fmt.Errorf("failed to write device key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(name)
		return nil, fmt.Errorf("failed to write device key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return nil, fmt.Errorf("failed to write device key: %w", err)
	}
	return priv, nil
}

// Load reads the key in name. A missing file wraps fs.ErrNotExist. If the
// file is readable by others the key is returned together with an error
// wrapping ErrExposed, so the caller can warn and go on.
func Load(name string) (ed25519.PrivateKey, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("failed to read device key: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(fileSize)+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read device key: %w", err)
	}
	priv, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("failed to read device key %s: %w", name, err)
	}
	if fi, err := f.Stat(); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return priv, fmt.Errorf("%w: %s has mode %v", ErrExposed, name, fi.Mode().Perm())
	}
	return priv, nil
}

// Parse decodes the content of a key file, strictly.
func Parse(data []byte) (ed25519.PrivateKey, error) {
	if len(data) != fileSize || string(data[:len(header)]) != header || data[len(data)-1] != '\n' {
		return nil, ErrMalformed
	}
	b64 := string(data[len(header) : len(data)-1])
	seed, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(seed) != ed25519.SeedSize || base64.StdEncoding.EncodeToString(seed) != b64 {
		return nil, ErrMalformed
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// LoadOrCreate loads the key in name, creating it first if it does not
// exist. created reports whether it did.
func LoadOrCreate(name string) (priv ed25519.PrivateKey, created bool, err error) {
	priv, err = Load(name)
	if errors.Is(err, fs.ErrNotExist) {
		priv, err = Create(name)
		if errors.Is(err, fs.ErrExist) {
			// Another process made it between the two calls.
			priv, err = Load(name)
			return priv, false, err
		}
		return priv, err == nil, err
	}
	return priv, false, err
}

func encodeSeed(seed []byte) string { return base64.StdEncoding.EncodeToString(seed) }
