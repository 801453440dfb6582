// Package caseworker is the logic of the caseworker's client, shared by
// the command line (package main) and the caseworker's app (package app):
// the state directory, the connection to an intake server (certificate
// check, token, proxy), the pinned keys, submit, resume, status, receipts,
// init and enrolment, and the collector's collect, which shares the
// connection setup.
//
// Nothing here prints. What a command has to tell while it runs (a key
// pinned on first use, a warning, progress, an upload that waits for the
// network, an outbox entry sent) is reported as an Event to the Client's
// Events callback; the CLI prints those events, the app shows them on its
// pages. Errors that need advice are *cmdline.Error values (the error type
// all of testimony's commands share), with hints that name the command that
// fixes the problem; Message renders them for the app.
package caseworker

import (
	"fmt"
	"time"

	"github.com/testimony-ngo/testimony/crypto/receipt"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/retry"
)

// Client runs the client's operations on one state directory. Its zero
// value is not usable: Getenv, Now, Retry and Sleep must be set. A Client
// is not changed by its methods; to follow one call with its own Events,
// use WithEvents.
type Client struct {
	// Getenv reads TESTIMONY_HOME (the state directory), TESTIMONY_TOKEN
	// and TESTIMONY_PROXY.
	Getenv func(string) string
	Now    func() time.Time
	// Retry and Sleep govern every network retry but uploads'.
	Retry retry.Policy
	Sleep retry.SleepFunc
	// UploadRetry is the backoff of uploads; zero means Retry.
	UploadRetry retry.Policy
	// GiveUpAfter stops an upload that made no progress for this long;
	// 0 keeps trying as long as the program runs.
	GiveUpAfter time.Duration
	// StallTimeout abandons and retries a chunk on which nothing moved
	// for this long; 0 is the upload package's default.
	StallTimeout time.Duration
	// OutboxHeld says this process already holds the outbox lock (the
	// app holds it while it runs), so operations must not take it again.
	OutboxHeld bool
	// Events, if set, is told what an operation is doing.
	Events func(Event)
}

// WithEvents returns a copy of c that reports to fn.
func (c *Client) WithEvents(fn func(Event)) *Client {
	cp := *c
	cp.Events = fn
	return &cp
}

func (c *Client) emit(e Event) {
	if c.Events != nil {
		c.Events(e)
	}
}

// Event is one of the types below.
type Event interface{ event() }

// Note is a line for the caseworker: something pinned or remembered, a
// warning (its text starts with "warning: "), an outbox entry skipped.
type Note struct{ Text string }

// Hint is advice that follows a Note: what to do about it.
type Hint struct{ Text string }

// Failure is an error that does not end the operation: resume reports
// each entry it leaves in the outbox, and goes on with the next one.
type Failure struct{ Err error }

// Progress is the progress of encrypting (Label "encrypting", Total < 0:
// unknown) or uploading ("uploading") one outbox entry, or of collecting
// one submission (Label is the first 8 digits of its id). When the upload
// overlaps the encryption, only the upload's progress, which trails the
// encryption, is reported once it began.
type Progress struct {
	Label       string
	Done, Total int64
}

// Encrypted says the outbox entry Name was written: an error after it
// leaves the entry in the outbox, for resume.
type Encrypted struct{ Name string }

// Sending says the outbox entry Name is being uploaded. For a submit whose
// upload overlaps the encryption, it comes before Encrypted.
type Sending struct{ Name string }

// UploadWait says an upload stopped on Err and tries again after Wait
// (0: at once); the server holds Held of Total bytes.
type UploadWait struct {
	Err         error
	Wait        time.Duration
	Held, Total int64
}

// Sent says the receipt of the outbox entry Name was verified and saved
// as submission ID, and the entry removed.
type Sent struct{ Name, ID string }

// ReceiptChecked is one saved receipt checked by VerifyReceipts: Err is
// nil if the log still proves it.
type ReceiptChecked struct {
	Receipt *receipt.Receipt
	Err     error
	// Review, for a receipt that verified, is whether a reviewer's
	// witness acknowledged the submission (see reviewed).
	Review Review
	// Reviewed is Review as the command line shows it: "" or a clause
	// such as "; reviewed (acknowledged by witness NAME on DATE)".
	Reviewed string
}

func (Note) event()           {}
func (Hint) event()           {}
func (Failure) event()        {}
func (Progress) event()       {}
func (Encrypted) event()      {}
func (Sending) event()        {}
func (UploadWait) event()     {}
func (Sent) event()           {}
func (ReceiptChecked) event() {}

func (c *Client) notef(format string, args ...any) {
	c.emit(Note{Text: fmt.Sprintf(format, args...)})
}

func (c *Client) hintf(format string, args ...any) {
	c.emit(Hint{Text: fmt.Sprintf(format, args...)})
}

func (c *Client) progress(label string, done, total int64) {
	c.emit(Progress{Label: label, Done: done, Total: total})
}
