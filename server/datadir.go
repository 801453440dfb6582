package server

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/store"
)

// Names inside the data directory.
const (
	dbFileName      = "testimony.db"
	adminSocketName = "admin.sock"
	tlsDirName      = "tls"
	certFileName    = "cert.pem"
	keyFileName     = "key.pem"
)

// Keys of the store's meta bucket.
const (
	metaRecipients     = "recipients"      // recipients given to init, canonical, one per line
	metaRecipientType  = "recipient_type"  // recipients.TypeHybrid or TypeX25519
	metaRecipientsNote = "recipients_note" // the latest signed recipients note; replaces metaRecipients when present
	metaLogSigner      = "log_signer"      // note signer key of the intake log ("PRIVATE+KEY+…")
	metaLogVerifier    = "log_verifier"    // its verifier key, given to clients and reviewers
	metaOrgKey         = "org_key"         // organisation verifier key (optional, init -org-key)
	metaCreated        = "created"         // UTC date of init
)

// dbLockTimeout is how long opening the store waits for its file lock. A
// second process never needs to wait: if a server holds the lock, the admin
// commands talk to it over the socket instead.
const dbLockTimeout = time.Second

// Errors the command line turns into hints.
var (
	// ErrAlreadyInitialized means init found a deployment in the data
	// directory; init never replaces recipients or the log key.
	ErrAlreadyInitialized = errors.New("data directory is already initialized")
	// ErrNotInitialized means the data directory holds no deployment.
	ErrNotInitialized = errors.New("data directory is not initialized")
	// ErrLocked means another process has the store open.
	ErrLocked = errors.New("the database is in use by another process")
	// ErrBadOrgKey means init was given an organisation key that is not a
	// note verifier key.
	ErrBadOrgKey = errors.New("the organisation key is not a verifier key")
	// ErrBadOrigin means init was given a log origin that cannot name a
	// note key.
	ErrBadOrigin = errors.New("invalid log origin")
)

// DBPath returns the path of the store in dataDir.
func DBPath(dataDir string) string { return filepath.Join(dataDir, dbFileName) }

// AdminSocketPath returns the path of the admin socket in dataDir.
func AdminSocketPath(dataDir string) string { return filepath.Join(dataDir, adminSocketName) }

// SelfSignedCertPath returns where -tls-self-signed keeps its certificate;
// clients use it with -ca.
func SelfSignedCertPath(dataDir string) string {
	return filepath.Join(dataDir, tlsDirName, certFileName)
}

func selfSignedKeyPath(dataDir string) string {
	return filepath.Join(dataDir, tlsDirName, keyFileName)
}

// InitOptions are the optional settings of Init. The zero value is ready
// to use.
type InitOptions struct {
	// Origin names the intake log: it is the first line of every
	// checkpoint and the name of the log key. Empty means
	// "testimony-log-" followed by 8 random hex digits.
	Origin string
	// OrgKey is the organisation's note verifier key. When set, recipients
	// set accepts only notes that it verifies; without it the server
	// checks a note's form but cannot check who signed it (clients that
	// pin the organisation key check that themselves).
	OrgKey string
}

// InitResult is what init reports to the operator.
type InitResult struct {
	RecipientType string
	Recipients    []string
	// LogKey is the intake log's note verifier key; clients and reviewers
	// pin it to check receipts and checkpoints.
	LogKey string
	// OrgKey is InitOptions.OrgKey, if given.
	OrgKey string
}

// Init creates a deployment in dataDir from an age recipients file, with a
// new intake log key. The recipients and options are checked before
// anything is written, so a file holding a private key leaves no trace.
// Only the recipients themselves are kept, one per line: comments in the
// file may name reviewers, and a seized server should not tell who they are.
func Init(dataDir string, recipientsFile io.Reader, opt InitOptions) (*InitResult, error) {
	set, err := recipients.Parse(recipientsFile)
	if err != nil {
		return nil, err
	}
	if opt.OrgKey != "" {
		if _, err := note.NewVerifier(opt.OrgKey); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadOrgKey, err)
		}
	}
	origin := opt.Origin
	if origin == "" {
		b := make([]byte, 4)
		rand.Read(b)
		origin = "testimony-log-" + hex.EncodeToString(b)
	}
	signer, verifier, err := intakelog.NewLogKey(origin)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrBadOrigin, origin, err)
	}
	if err := ensureDataDir(dataDir); err != nil {
		return nil, err
	}
	db, err := openStore(dataDir, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.GetMeta(metaRecipients); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrAlreadyInitialized, dataDir)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}

	// An init that died half way may have left a log key; it was never
	// shown to anyone, and this process holds the file's lock, so
	// replacing it cannot hurt.
	if err := db.PutMeta(metaLogSigner, []byte(signer)); err != nil {
		return nil, err
	}
	if err := db.PutMeta(metaLogVerifier, []byte(verifier)); err != nil {
		return nil, err
	}
	if opt.OrgKey != "" {
		if err := db.PutMeta(metaOrgKey, []byte(opt.OrgKey)); err != nil {
			return nil, err
		}
	}
	if err := db.PutMeta(metaRecipientType, []byte(set.Type)); err != nil {
		return nil, err
	}
	if err := db.PutMeta(metaCreated, []byte(time.Now().UTC().Format(time.DateOnly))); err != nil {
		return nil, err
	}
	// The recipients go last: their presence is what marks the data
	// directory as initialized.
	if err := db.PutMetaIfAbsent(metaRecipients, []byte(set.String())); errors.Is(err, store.ErrExists) {
		return nil, fmt.Errorf("%w: %s", ErrAlreadyInitialized, dataDir)
	} else if err != nil {
		return nil, err
	}
	return &InitResult{
		RecipientType: set.Type,
		Recipients:    set.Strings,
		LogKey:        verifier,
		OrgKey:        opt.OrgKey,
	}, nil
}

// ensureDataDir creates dataDir with mode 0700, or tightens an existing one
// to 0700: the directory is what protects the admin socket.
func ensureDataDir(dataDir string) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("failed to create the data directory: %w", err)
	}
	fi, err := os.Stat(dataDir)
	if err != nil {
		return fmt.Errorf("failed to create the data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("failed to use %s as the data directory: not a directory", dataDir)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dataDir, 0o700); err != nil {
			return fmt.Errorf("failed to restrict the data directory to mode 0700: %w", err)
		}
	}
	return nil
}

// openStore opens the store of dataDir. Unless create is set it never
// creates a file: an admin command pointed at the wrong directory should say
// so, not leave an empty database behind.
func openStore(dataDir string, create bool) (*store.DB, error) {
	path := DBPath(dataDir)
	if !create {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s has no %s", ErrNotInitialized, dataDir, dbFileName)
		}
	}
	db, err := store.Open(path, store.Options{Timeout: dbLockTimeout})
	if errors.Is(err, store.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	return db, err
}

// deployment is what a data directory fixes at init: the recipient type,
// the log key and the organisation key, and the recipients, which a signed
// note may later replace (recipients set).
type deployment struct {
	recipients *recipients.Set
	// note is the signed recipients note the recipients come from, and
	// version its version; nil and 0 while the recipients are those given
	// to init.
	note    []byte
	version uint64
	// logSigner signs checkpoints; logKey is its verifier key.
	logSigner note.Signer
	logKey    string
	orgKey    string // empty unless init -org-key
}

func loadDeployment(db *store.DB) (*deployment, error) {
	text, err := db.GetMeta(metaRecipients)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotInitialized
	} else if err != nil {
		return nil, err
	}
	set, err := recipients.Parse(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("failed to parse the stored recipients: %w", err)
	}
	typ, err := db.GetMeta(metaRecipientType)
	if err != nil {
		return nil, fmt.Errorf("failed to read the recipient type: %w", err)
	}
	dep := &deployment{recipients: set}
	if msg, err := db.GetMeta(metaRecipientsNote); err == nil {
		ss, err := recipients.ParseNoteUnverified(msg)
		if err != nil {
			return nil, fmt.Errorf("failed to parse the stored recipients note: %w", err)
		}
		dep.recipients, dep.note, dep.version = ss.Set, ss.Note, ss.Version
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if string(typ) != dep.recipients.Type {
		return nil, fmt.Errorf("failed to load the deployment: stored recipient type %q does not match the recipients (%q)", typ, dep.recipients.Type)
	}
	skey, err := db.GetMeta(metaLogSigner)
	if err != nil {
		return nil, fmt.Errorf("failed to read the log key: %w", err)
	}
	if dep.logSigner, err = note.NewSigner(string(skey)); err != nil {
		return nil, fmt.Errorf("failed to read the log key: %w", err)
	}
	vkey, err := db.GetMeta(metaLogVerifier)
	if err != nil {
		return nil, fmt.Errorf("failed to read the log verifier key: %w", err)
	}
	dep.logKey = string(vkey)
	if v, err := note.NewVerifier(dep.logKey); err != nil || v.Name() != dep.logSigner.Name() || v.KeyHash() != dep.logSigner.KeyHash() {
		return nil, fmt.Errorf("failed to load the deployment: the stored log verifier key does not belong to the log key")
	}
	if org, err := db.GetMeta(metaOrgKey); err == nil {
		dep.orgKey = string(org)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return dep, nil
}

// info is what GET /v1/recipients tells about a deployment: public keys
// only.
func (d *deployment) info() *RecipientsInfo {
	return &RecipientsInfo{
		Type:             d.recipients.Type,
		Recipients:       d.recipients.Strings,
		LogKey:           d.logKey,
		SignedRecipients: string(d.note),
	}
}

// adminInfo is what recipients show tells the operator.
func (d *deployment) adminInfo() *DeploymentInfo {
	return &DeploymentInfo{RecipientsInfo: *d.info(), Version: d.version, OrgKey: d.orgKey}
}

// RecipientsInfo describes a deployment's public keys; it is also the body
// of GET /v1/recipients.
type RecipientsInfo struct {
	Type       string   `json:"type"`
	Recipients []string `json:"recipients"`
	// LogKey is the intake log's note verifier key.
	LogKey string `json:"log_key"`
	// SignedRecipients is the organisation-signed recipients note the
	// recipients come from, or empty if none has been set.
	SignedRecipients string `json:"signed_recipients"`
}

// DeploymentInfo is what the operator's recipients commands see: the
// public information plus the note's version (0 without a note) and the
// organisation key the server checks notes with (empty if none).
type DeploymentInfo struct {
	RecipientsInfo
	Version uint64 `json:"version"`
	OrgKey  string `json:"org_key"`
}
