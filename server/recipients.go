package server

import (
	"errors"
	"fmt"

	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/store"
)

// maxAdminNoteBody bounds the body of POST /admin/recipients: the note
// itself, sent as it is.
const maxAdminNoteBody = recipients.MaxNoteSize

// Errors of Admin.SetRecipients. The command line turns them into hints.
var (
	// ErrRecipientsNote means the file is not a well-formed signed
	// recipients note (it may also wrap recipients.ErrPrivateKey and the
	// like).
	ErrRecipientsNote = errors.New("not a valid signed recipients note")
	// ErrRecipientsVersion means the note's version is not above the
	// version being served: replaying an old note could undo a key
	// rotation.
	ErrRecipientsVersion = errors.New("recipients note version must increase")
	// ErrRecipientsType means the note lists recipients of another type
	// than the deployment's; ciphertext already stored would no longer
	// match, so the type never changes.
	ErrRecipientsType = errors.New("recipients note has a different recipient type than this deployment")
	// ErrRecipientsSignature means init -org-key was given and the note is
	// not signed by that key. It is recipients.ErrNoteSignature itself,
	// whose message already says so and names the key: a sentinel of its
	// own would only repeat that text.
	ErrRecipientsSignature = recipients.ErrNoteSignature
)

// setRecipients replaces the served recipients with those of a signed
// recipients note and stores the note. srv is the running server whose
// recipients change with it, or nil when the command opened the database
// itself (then no server can be running: it would hold the file's lock).
//
// The server cannot forge a note, so without an organisation key it only
// checks the form, the type and the version; clients that pin the
// organisation key check the signature themselves. With one (init
// -org-key) it refuses notes the key does not verify, so an operator cannot
// serve a note that every pinned client would refuse.
func setRecipients(db *store.DB, srv *Server, msg []byte) (*DeploymentInfo, error) {
	if srv != nil {
		srv.setMu.Lock()
		defer srv.setMu.Unlock()
	}
	dep, err := loadDeployment(db)
	if err != nil {
		return nil, err
	}
	ss, err := recipients.ParseNoteUnverified(msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRecipientsNote, err)
	}
	if dep.orgKey != "" {
		if _, err := recipients.VerifyNote(msg, dep.orgKey); errors.Is(err, ErrRecipientsSignature) {
			return nil, err
		} else if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRecipientsNote, err)
		}
	}
	if ss.Set.Type != dep.recipients.Type {
		return nil, fmt.Errorf("%w: the note lists %s recipients, this deployment uses %s", ErrRecipientsType, ss.Set.Type, dep.recipients.Type)
	}
	if ss.Version <= dep.version {
		return nil, fmt.Errorf("%w: the note has version %d, the server already serves version %d", ErrRecipientsVersion, ss.Version, dep.version)
	}
	if err := db.PutMeta(metaRecipientsNote, ss.Note); err != nil {
		return nil, err
	}
	next := *dep
	next.recipients, next.note, next.version = ss.Set, ss.Note, ss.Version
	if srv != nil {
		srv.dep.Store(&next)
	}
	return next.adminInfo(), nil
}
