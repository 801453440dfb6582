package caseworker

import (
	"strings"

	"github.com/testimony-ngo/testimony/crypto/recipients"
	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/tools/testimony/internal/api"
)

// Organisation keys and log keys are both note verifier keys of the same
// algorithm; only their names tell them apart. "testimony-review org init"
// names an organisation key testimony-org unless told otherwise, and
// "testimony-server init" names the log key testimony-log-<8 hex digits>.
// Swapping the two at init used to pass silently and surface later as a
// "possible server compromise", which sends people on the wrong chase.
const (
	orgKeyDefaultName = "testimony-org"
	logKeyNamePrefix  = "testimony-log-"
)

// keyName returns the name part of a note verifier key.
func keyName(vkey string) string {
	name, _, _ := strings.Cut(vkey, "+")
	return name
}

// looksLikeLogKey and looksLikeOrgKey recognise keys by the names the
// tools give them by default. A custom name is neither, and passes.
func looksLikeLogKey(vkey string) bool { return strings.HasPrefix(keyName(vkey), logKeyNamePrefix) }
func looksLikeOrgKey(vkey string) bool { return keyName(vkey) == orgKeyDefaultName }

// checkKeyKinds refuses an -org-key that is a log key and a -log-key that
// is an organisation key, as far as their names or the keys already
// pinned tell. pinnedOrg and pinnedLog are what trust.json holds.
func checkKeyKinds(orgKey, logKey, pinnedOrg, pinnedLog string) error {
	orgIsLog := orgKey != "" && (looksLikeLogKey(orgKey) || orgKey == pinnedLog || orgKey == logKey)
	logIsOrg := logKey != "" && (looksLikeOrgKey(logKey) || logKey == pinnedOrg)
	swapHint := `the organisation key comes from "testimony-review org init" (by default it starts with ` + orgKeyDefaultName + `+), the log key from "testimony-server init" (it starts with ` + logKeyNamePrefix + "…)"
	switch {
	case orgKey != "" && orgKey == logKey:
		return cmdline.Errorf("-org-key and -log-key are the same key %s; they are two different keys", keyID(orgKey)).Usage("").
			Hint("%s", swapHint)
	case orgIsLog && logIsOrg:
		return cmdline.Errorf("-org-key %s is the intake log's key and -log-key %s is the organisation's: swap -org-key and -log-key", keyID(orgKey), keyID(logKey)).Usage("").
			Hint("%s", swapHint)
	case orgIsLog:
		return cmdline.Errorf("-org-key %s is the intake log's key, not the organisation's: swap -org-key and -log-key", keyID(orgKey)).Usage("").
			Hint("%s", swapHint)
	case logIsOrg:
		return cmdline.Errorf("-log-key %s is the organisation's key, not the intake log's: swap -org-key and -log-key", keyID(logKey)).Usage("").
			Hint("%s", swapHint)
	}
	return nil
}

// swappedWithServer recognises swapped keys from what the server
// publishes, for keys with custom names: the server's log key pinned as the
// organisation key, or the key that signs the server's recipients note
// pinned as the log key. It returns nil if neither is the case.
func swappedWithServer(orgKey, logKey string, got *api.Recipients) *cmdline.Error {
	orgIsLog := orgKey != "" && orgKey == got.LogKey
	logIsOrg := logKey != "" && got.SignedRecipients != "" && signsNote(logKey, got.SignedRecipients)
	if !orgIsLog && !logIsOrg {
		return nil
	}
	var e *cmdline.Error
	switch {
	case orgIsLog && logIsOrg:
		e = cmdline.Errorf("the organisation key %s pinned in trust.json is the intake log's key, and the log key %s is the organisation's: the two were swapped", keyID(orgKey), keyID(logKey))
	case orgIsLog:
		e = cmdline.Errorf("the organisation key %s pinned in trust.json is this server's intake log key, not the organisation's: the organisation key and the log key were swapped", keyID(orgKey))
	default:
		e = cmdline.Errorf("the log key %s pinned in trust.json is the organisation's key (it signs the server's recipients), not the intake log's: the organisation key and the log key were swapped", keyID(logKey))
	}
	return e.Hint(`run "testimony init -replace -org-key ORGKEY -log-key LOGKEY" with each key in its place, as your organisation gave them`)
}

func signsNote(vkey, msg string) bool {
	_, err := recipients.VerifyNote([]byte(msg), vkey)
	return err == nil
}
