package review

import (
	"encoding/base64"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
)

// SeenLeaf is the log leaf from which this machine opened a submission, or
// failed to.
type SeenLeaf struct {
	Index int64
	// Hash is the leaf's record hash, base64, as LeafHash makes it. It
	// is empty only for a submission recorded as opened before leaf
	// hashes were kept: its index alone cannot tell its leaf from another
	// logged under the same id (in a fork, or in another log), so such a
	// record never accounts for a leaf missing from a bundle.
	Hash string
}

// LeafHash returns a leaf's RFC 6962 record hash in base64, as custody.json
// and the reviewer's state files record it.
func LeafHash(l intakelog.Leaf) string {
	h := l.Hash()
	return base64.StdEncoding.EncodeToString(h[:])
}

// is reports whether s records the leaf at index with hash h; a record
// without a hash never matches.
func (s SeenLeaf) is(index int64, h string) bool {
	return s.Index == index && s.Hash != "" && s.Hash == h
}
