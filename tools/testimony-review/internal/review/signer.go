package review

import "github.com/testimony-ngo/testimony/crypto/envelope"

// SignerStatus says who signed a submission's manifest. A bad signature
// has no status: the submission fails to open.
type SignerStatus int

const (
	// Unsigned means the envelope had no manifest.sig (an older client, a
	// plain tar, or a caseworker without a device key).
	Unsigned SignerStatus = iota
	// Known means a valid signature by a key on the caseworkers list.
	Known
	// Unknown means a valid signature by a key not on the list.
	Unknown
)

// The status names in custody.json.
const (
	statusUnsigned = "unsigned"
	statusKnown    = "known"
	statusUnknown  = "unknown"
)

func (s SignerStatus) String() string {
	switch s {
	case Known:
		return statusKnown
	case Unknown:
		return statusUnknown
	}
	return statusUnsigned
}

// Signer is the caseworker signature over a submission's manifest.
type Signer struct {
	Status SignerStatus
	// Name is the known caseworker's name.
	Name string
	// Key is the device public key ("tdk1…") and Fingerprint its short
	// form; both empty when unsigned.
	Key, Fingerprint string
	// Signature is the signature, base64, as in manifest.sig.
	Signature string
}

// signer describes the signature Extract verified.
func (o *opener) signer(ext *envelope.Result) Signer {
	if ext.Signature == nil {
		return Signer{Status: Unsigned}
	}
	s := Signer{Status: Unknown, Key: ext.Signature.Key, Signature: ext.Signature.Signature}
	if pub, err := envelope.ParseDeviceKey(s.Key); err == nil {
		// Extract verified the signature with this key, so it parses; the
		// canonical form is what the caseworkers list holds.
		s.Key, s.Fingerprint = envelope.DeviceKeyString(pub), envelope.Fingerprint(pub)
	}
	if name, ok := o.opt.Caseworkers[s.Key]; ok {
		s.Status, s.Name = Known, name
	}
	return s
}
