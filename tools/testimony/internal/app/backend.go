package app

import (
	"context"
	"time"

	"github.com/testimony-ngo/testimony/crypto/envelope"
)

// Backend is what the app needs from the caseworker's client: the same
// submit, resume, status, receipt and enrolment logic the command line
// runs, so the app is not a second copy of it. Package main wires it to
// its commands; every method may be called from any goroutine, but the
// app never calls two of them at once.
type Backend interface {
	// Setup reports what this device is set up with, for server. It does not touch
	// the network.
	Setup(server string) (Setup, error)
	// Enrol pins the organisation's and the log's keys, keeps the server
	// address, its certificate pin and the access token, creates the device
	// key if there is none and checks the server, as 'testimony init
	// -server' does. It returns one Check per step, in order; it stops at
	// the first that fails.
	Enrol(ctx context.Context, e Enrolment) []Check
	// Submit encrypts the envelope of meta and sources into the outbox
	// and sends it to server; it returns the submission id. ev.Encrypted is
	// called once the ciphertext is safe in the outbox: an error after it
	// leaves the entry there for Resume.
	Submit(ctx context.Context, server string, meta envelope.Meta, sources []envelope.Source, ev Events) (string, error)
	// Resume sends every entry waiting in the outbox.
	Resume(ctx context.Context, ev Events) error
	// Outbox lists what waits in the outbox and the saved receipts.
	Outbox() (Outbox, error)
	// VerifyReceipts re-checks every saved receipt of server's log against
	// its newest checkpoint, as 'testimony receipts verify' does.
	VerifyReceipts(ctx context.Context, server string) (Verification, error)
	// RemoveSent deletes outbox ciphertext whose receipt is already saved
	// (left behind by a crash between the two) and returns how many.
	RemoveSent() (int, error)
}

// Events follow a Submit or Resume; any may be nil.
type Events struct {
	// Progress: label is "encrypting" or "uploading"; total < 0 is unknown.
	Progress func(label string, done, total int64)
	// Encrypted: outbox entry name was written.
	Encrypted func(name string)
	// Sending: outbox entry name is being uploaded.
	Sending func(name string)
	// Retrying: a network failure that will be retried after wait.
	Retrying func(err error, wait time.Duration)
	// Sent: name's receipt was verified and saved as id.
	Sent func(name, id string)
}

// Setup is this device's configuration, as far as the app shows it.
type Setup struct {
	Server    string // the intake server, https://host:port; "" before enrolment
	TLSPin    string // the remembered certificate SHA-256, or ""
	TLSCA     bool   // a CA certificate is remembered instead of a pin
	OrgKey    string
	LogKey    string
	DeviceKey string // tdk1…, "" before it exists
	HasToken  bool
}

// Enrolment is what the operator and the organisation give a caseworker.
type Enrolment struct {
	Server, Pin, Token, OrgKey, LogKey string
	// CA is a PEM CA certificate from an enrolment file, instead of Pin.
	CA string
}

// Check is one step of enrolment.
type Check struct {
	Step   string // one of the Step… constants
	OK     bool
	Detail string // the client's message when it failed (English)
}

// Enrolment steps, in order.
const (
	StepInput     = "input"
	StepOrgKey    = "org-key"
	StepLogKey    = "log-key"
	StepDeviceKey = "device-key"
	StepServer    = "server"
)

// Outbox is the outbox and the receipts.
type Outbox struct {
	Pending []Pending
	Sent    []Sent
}

// Pending is an outbox entry.
type Pending struct {
	Name          string // local name, 16 hex digits
	Created       string // YYYY-MM-DD
	Size          int64
	UploadStarted bool
}

// Sent is a saved receipt.
type Sent struct {
	ID         string
	Received   string // as the receipt says
	Size       int64
	Index      int64
	Checkpoint string // the checkpoint note of the receipt
}

// Verification is the outcome of VerifyReceipts.
type Verification struct {
	OK     []string // ids the log still proves
	Failed []string // ids it does not
	Err    error    // why the check could not run or failed
}
