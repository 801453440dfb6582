package server

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/testimony-ngo/testimony/crypto/receipt"
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
	metaRecipients    = "recipients"     // canonical recipients, one per line
	metaRecipientType = "recipient_type" // recipients.TypeHybrid or TypeX25519
	metaReceiptSeed   = "receipt_key_seed"
	metaCreated       = "created" // UTC date of init
)

// dbLockTimeout is how long opening the store waits for its file lock. A
// second process never needs to wait: if a server holds the lock, the admin
// commands talk to it over the socket instead.
const dbLockTimeout = time.Second

// Errors the command line turns into hints.
var (
	// ErrAlreadyInitialized means init found a deployment in the data
	// directory; init never replaces recipients or the receipt key.
	ErrAlreadyInitialized = errors.New("data directory is already initialized")
	// ErrNotInitialized means the data directory holds no deployment.
	ErrNotInitialized = errors.New("data directory is not initialized")
	// ErrLocked means another process has the store open.
	ErrLocked = errors.New("the database is in use by another process")
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

// InitResult is what init reports to the operator.
type InitResult struct {
	RecipientType string
	Recipients    []string
	ReceiptKey    string // base64 Ed25519 public key, as in receipts
}

// Init creates a deployment in dataDir from an age recipients file. The
// recipients are checked before anything is written, so a file holding a
// private key leaves no trace. Only the recipients themselves are kept, one
// per line: comments in the file may name reviewers, and a seized server
// should not tell who they are.
func Init(dataDir string, recipientsFile io.Reader) (*InitResult, error) {
	set, err := recipients.Parse(recipientsFile)
	if err != nil {
		return nil, err
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

	// An init that died half way may have left a seed; it was never shown
	// to anyone, so reusing it is as good as making a new one.
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	if err := db.PutMetaIfAbsent(metaReceiptSeed, seed); err != nil && !errors.Is(err, store.ErrExists) {
		return nil, err
	}
	key, err := loadReceiptKey(db)
	if err != nil {
		return nil, err
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
		ReceiptKey:    receipt.KeyString(key.Public().(ed25519.PublicKey)),
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

// deployment is what a data directory fixes once, at init.
type deployment struct {
	recipients *recipients.Set
	receiptKey ed25519.PrivateKey
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
	if string(typ) != set.Type {
		return nil, fmt.Errorf("failed to load the deployment: stored recipient type %q does not match the recipients (%q)", typ, set.Type)
	}
	key, err := loadReceiptKey(db)
	if err != nil {
		return nil, err
	}
	return &deployment{recipients: set, receiptKey: key}, nil
}

func loadReceiptKey(db *store.DB) (ed25519.PrivateKey, error) {
	seed, err := db.GetMeta(metaReceiptSeed)
	if err != nil {
		return nil, fmt.Errorf("failed to read the receipt key: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("failed to read the receipt key: stored seed has %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// info is what GET /v1/recipients and recipients show tell about a
// deployment: public keys only.
func (d *deployment) info() *RecipientsInfo {
	return &RecipientsInfo{
		Type:       d.recipients.Type,
		Recipients: d.recipients.Strings,
		ReceiptKey: receipt.KeyString(d.receiptKey.Public().(ed25519.PublicKey)),
	}
}

// RecipientsInfo describes a deployment's public keys; it is also the body
// of GET /v1/recipients.
type RecipientsInfo struct {
	Type       string   `json:"type"`
	Recipients []string `json:"recipients"`
	ReceiptKey string   `json:"receipt_key"`
}
