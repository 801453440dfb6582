package review

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/testimony-ngo/testimony/crypto/envelope"
)

// CustodyVersion is the version of the custody.json format.
const CustodyVersion = 1

// Custody is the chain-of-custody record written beside an opened
// submission's files as custody.json (and, readable, as custody.txt): what
// a lawyer needs to show the testimony was not altered between the
// interview and the review. Everything in it was verified before it was
// written.
type Custody struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	// Received is the UTC date the server logged the submission.
	Received string `json:"received"`
	// Opened is when this record was written, RFC 3339 UTC.
	Opened string `json:"opened"`
	// Tool is the program and version that verified and opened it.
	Tool       string            `json:"tool"`
	Ciphertext CustodyCiphertext `json:"ciphertext"`
	Log        CustodyLog        `json:"log"`
	Caseworker CustodySignature  `json:"caseworker"`
	// ManifestSHA256 is the SHA-256 of manifest.json as it was in the
	// envelope (and as written beside this record); empty without one.
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
	// Manifest is manifest.json's content; null for a plain tar.
	Manifest *envelope.Manifest `json:"manifest"`
	// Files are the files extracted, with the sizes and hashes computed
	// while extracting them.
	Files []envelope.File `json:"files"`
}

// CustodyCiphertext describes the age file as the server received it.
type CustodyCiphertext struct {
	File   string `json:"file"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// CustodyLog is the submission's place in the intake log, with the proof:
// the leaf, its inclusion proof at the checkpoint, and the signed checkpoint.
type CustodyLog struct {
	// Key is the log's note verifier key the checkpoint verified with.
	Key    string `json:"key"`
	Origin string `json:"origin"`
	Index  int64  `json:"index"`
	// Leaf is the exact leaf text hashed into the tree.
	Leaf string `json:"leaf"`
	// LeafHash is its RFC 6962 record hash, base64.
	LeafHash       string   `json:"leaf_hash"`
	InclusionProof []string `json:"inclusion_proof"`
	// Checkpoint is the signed checkpoint (note text) the proof is for.
	Checkpoint string `json:"checkpoint"`
	Size       int64  `json:"size"`
	Root       string `json:"root"`
}

// CustodySignature is the caseworker's signature status.
type CustodySignature struct {
	// Status is "known", "unknown" or "unsigned".
	Status string `json:"status"`
	// Name is the known caseworker's name, as the reviewers recorded it.
	Name        string `json:"name,omitempty"`
	Key         string `json:"key,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Signature is the Ed25519 signature (base64) over
	// "testimony manifest v1\n" followed by manifest.json's exact bytes.
	Signature string `json:"signature,omitempty"`
}

func newCustody(v *Verified, s Submission, ext *envelope.Result, signer Signer, opt Options) *Custody {
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	leafHash := s.Leaf.Hash()
	c := &Custody{
		Version:    CustodyVersion,
		ID:         s.ID,
		Received:   s.Leaf.Date,
		Opened:     now.UTC().Truncate(time.Second).Format(time.RFC3339),
		Tool:       opt.Tool,
		Ciphertext: CustodyCiphertext{File: s.File, Size: s.Leaf.Size, SHA256: s.Leaf.SHA256},
		Log: CustodyLog{
			Key:            v.LogKey,
			Origin:         v.Checkpoint.Origin,
			Index:          s.Index,
			Leaf:           string(s.Leaf.Bytes()),
			LeafHash:       base64.StdEncoding.EncodeToString(leafHash[:]),
			InclusionProof: s.Proof,
			Checkpoint:     string(v.CheckpointNote),
			Size:           v.Checkpoint.Size,
			Root:           base64.StdEncoding.EncodeToString(v.Checkpoint.Root[:]),
		},
		Caseworker: CustodySignature{
			Status:      signer.Status.String(),
			Name:        signer.Name,
			Key:         signer.Key,
			Fingerprint: signer.Fingerprint,
			Signature:   signer.Signature,
		},
		Manifest: ext.Manifest,
		Files:    ext.Files,
	}
	if c.Files == nil {
		c.Files = []envelope.File{}
	}
	if ext.ManifestJSON != nil {
		sum := sha256.Sum256(ext.ManifestJSON)
		c.ManifestSHA256 = hex.EncodeToString(sum[:])
	}
	return c
}

// write adds custody.json and custody.txt to dir. A file of either name
// already there came from the envelope: ErrReservedName.
func (c *Custody) write(dir string) error {
	js, err := json.MarshalIndent(c, "", "\t")
	if err != nil {
		return fmt.Errorf("failed to encode custody record: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{CustodyJSONName, append(js, '\n')}, {CustodyTextName, []byte(c.Text())}} {
		if err := createFile(filepath.Join(dir, f.name), f.data); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%w: %s", ErrReservedName, f.name)
			}
			return err
		}
	}
	return nil
}

// Text renders the record for people. Text that came from the caseworker
// (metadata, file names) is shown with control characters replaced, so the
// file prints and displays safely; custody.json has it exactly.
func (c *Custody) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CHAIN OF CUSTODY RECORD\ntestimony submission %s\n\n", c.ID)
	opened := strings.Replace(strings.TrimSuffix(c.Opened, "Z"), "T", " ", 1) + " UTC"
	fmt.Fprintf(&b, "Written by %s on the reviewer's offline machine\n", c.Tool)
	fmt.Fprintf(&b, "when the submission was opened (%s), after every check\n", opened)
	b.WriteString("below had passed. custody.json holds the same record in machine-readable\nform.\n")

	section(&b, "1. Received by the server")
	field(&b, "Received (UTC date)", c.Received)
	field(&b, "Ciphertext file", c.Ciphertext.File)
	field(&b, "Ciphertext size", fmt.Sprintf("%d bytes", c.Ciphertext.Size))
	field(&b, "Ciphertext SHA-256", c.Ciphertext.SHA256)

	section(&b, "2. Intake log")
	b.WriteString("The server's append-only log lists every submission it accepted. The leaf\n")
	b.WriteString("below is included in the signed checkpoint (inclusion proof), and the\n")
	b.WriteString("checkpoint extends every checkpoint this machine verified before it\n")
	b.WriteString("(consistency proof), so the server cannot later deny, alter or replace\n")
	b.WriteString("this ciphertext without being caught. The ciphertext's size and SHA-256\n")
	b.WriteString("equal the leaf's.\n\n")
	field(&b, "Log", c.Log.Origin)
	field(&b, "Log key", c.Log.Key)
	field(&b, "Leaf index", fmt.Sprint(c.Log.Index))
	field(&b, "Leaf hash", c.Log.LeafHash)
	block(&b, "Leaf", c.Log.Leaf)
	field(&b, "Checkpoint size", fmt.Sprint(c.Log.Size))
	field(&b, "Checkpoint root", c.Log.Root)
	block(&b, "Signed checkpoint", c.Log.Checkpoint)
	block(&b, "Inclusion proof", strings.Join(c.Log.InclusionProof, "\n"))

	section(&b, "3. Caseworker signature")
	switch c.Caseworker.Status {
	case statusKnown:
		field(&b, "Status", "signed by a known caseworker: "+safeText(c.Caseworker.Name))
	case statusUnknown:
		field(&b, "Status", "signed by a key not on the reviewers' list of caseworkers")
	default:
		field(&b, "Status", "unsigned")
	}
	if c.Caseworker.Key != "" {
		field(&b, "Device key", c.Caseworker.Key)
		field(&b, "Key fingerprint", c.Caseworker.Fingerprint)
		field(&b, "Signature", c.Caseworker.Signature)
		b.WriteString("\nThe signature was made on the caseworker's device and verified here. It\n")
		b.WriteString("covers manifest.json, which records the metadata and every file's\n")
		b.WriteString("SHA-256; the server never saw it (it travels inside the ciphertext).\n")
	}

	section(&b, "4. Testimony metadata (manifest.json, as entered by the caseworker)")
	if m := c.Manifest; m != nil {
		field(&b, "Case", safeText(m.Case))
		field(&b, "Interview date", safeText(m.InterviewDate))
		field(&b, "Language", safeText(m.Language))
		field(&b, "Consent", safeText(m.Consent))
		field(&b, "Created", safeText(m.Created))
		field(&b, "manifest.json SHA-256", c.ManifestSHA256)
	} else {
		b.WriteString("None: the submission is a plain tar archive without manifest.json.\n")
	}

	section(&b, "5. Files (SHA-256, size in bytes, name)")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, f := range c.Files {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", f.SHA256, f.Size, safeText(f.Name))
	}
	tw.Flush()
	b.WriteString("\nTo check a file later, compute its SHA-256 (for example with sha256sum)\n")
	b.WriteString("and compare it with the list above.\n")
	return b.String()
}

func section(b *strings.Builder, title string) {
	fmt.Fprintf(b, "\n%s\n%s\n", title, strings.Repeat("-", utf8.RuneCountInString(title)))
}

func field(b *strings.Builder, name, value string) {
	if value == "" {
		value = "-"
	}
	fmt.Fprintf(b, "%-22s %s\n", name, value)
}

// block writes a multi-line value indented under its name.
func block(b *strings.Builder, name, value string) {
	fmt.Fprintf(b, "%s:\n", name)
	for _, line := range strings.Split(strings.TrimSuffix(value, "\n"), "\n") {
		fmt.Fprintf(b, "    %s\n", safeText(line))
	}
}

// safeText replaces control and other non-printable characters (and
// invalid UTF-8) with '?', so text from the sender cannot move the cursor,
// hide lines or fake the layout of custody.txt.
func safeText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}
