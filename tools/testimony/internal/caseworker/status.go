package caseworker

import (
	"github.com/testimony-ngo/testimony/crypto/receipt"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/outbox"
)

// Status is what the outbox holds and the saved receipts, as 'testimony
// status' lists them.
type Status struct {
	// Outbox is the outbox's listing: entries, partial and broken files.
	Outbox *outbox.Listing
	// Superseded maps the names of entries encrypted to a list of
	// reviewers' keys the organisation has since replaced to the version
	// now current; resume does not upload them.
	Superseded map[string]uint64
	// Receipts are the saved receipts, oldest first; BrokenReceipts the
	// unreadable receipt files, by name, with the reason.
	Receipts       []*receipt.Receipt
	BrokenReceipts map[string]error
}

// Status reads the outbox and the receipts. It does not contact any server.
func (c *Client) Status() (*Status, error) {
	h, err := c.openHome(false)
	if err != nil {
		return nil, err
	}
	l, err := h.outbox().List()
	if err != nil {
		return nil, err
	}
	receipts, broken, err := h.receipts()
	if err != nil {
		return nil, err
	}
	floors, _, err := h.pins().LoadFloors(h.floorsPath())
	if err != nil {
		return nil, cmdline.Errorf("%v", err).
			Hint("the file may be damaged or tampered with; restore it from a backup")
	}
	st := &Status{Outbox: l, Superseded: map[string]uint64{}, Receipts: receipts, BrokenReceipts: broken}
	for _, e := range l.Entries {
		if cur, ok := superseded(floors, e.Meta); ok {
			st.Superseded[e.Name] = cur
		}
	}
	return st, nil
}
