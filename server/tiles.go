package server

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"golang.org/x/mod/sumdb/tlog"
)

// The intake log is also served as C2SP tlog-tiles
// (https://c2sp.org/tlog-tiles) with the prefix /v1/log: the checkpoint at
// /v1/log/checkpoint, hash tiles at /v1/log/tile/<L>/<N>[.p/<W>] and entry
// bundles at /v1/log/tile/entries/<N>[.p/<W>], so that standard witnesses
// and monitors can follow it.
//
// golang.org/x/mod/sumdb/tlog names tiles with the same <N> and .p/<W>
// encoding, but its paths also carry the tile height (tile/8/0/…, where
// C2SP fixes the height at 8 and leaves it out), call the entries level
// "data", and accept any level; parseTilePath and tilePath translate and
// enforce C2SP's bound on the level.
//
// Every tile whose hashes lie within the current tree is served, partial
// tiles of every width included: the spec requires partial tiles for every
// tree size a checkpoint was signed for, and every receipt carries one.
// Because the log only grows, a tile's content never changes.
const (
	// tileHeight is the tiles' height: a full tile holds 2^8 = 256 hashes
	// (8 KiB), a full entry bundle 256 leaves.
	tileHeight = 8
	// maxTileLevel is the highest level C2SP allows.
	maxTileLevel = 63
	// maxTilePathLen bounds a tile path (after /v1/log/tile/) before it is
	// parsed. The longest valid one, an entry bundle for the largest int64
	// index with a width, has 47 bytes.
	maxTilePathLen = 64
)

// tlogTilePrefix is what tlog's paths have and C2SP's do not.
var tlogTilePrefix = "tile/" + strconv.Itoa(tileHeight) + "/"

// parseTilePath parses a C2SP tile path without its tile/ prefix:
// "<L>/<N>[.p/<W>]" for a hash tile, "entries/<N>[.p/<W>]" for an entry
// bundle (returned as level -1, as tlog does). Every tile has exactly one
// path; any other spelling (leading zeros, a missing or extra x, a .p/256)
// is refused.
func parseTilePath(p string) (tlog.Tile, error) {
	if len(p) > maxTilePathLen {
		return tlog.Tile{}, fail(errBadRequest, "tile path is longer than %d bytes", maxTilePathLen)
	}
	level, rest, _ := strings.Cut(p, "/")
	tp := tlogTilePrefix + p
	switch level {
	case "entries":
		tp = tlogTilePrefix + "data/" + rest
	case "data": // tlog's name for the entries level, not C2SP's
		tp = ""
	}
	t, err := tlog.ParseTilePath(tp)
	if err != nil || t.L > maxTileLevel {
		return tlog.Tile{}, fail(errBadRequest, "malformed tile path %q: want <L>/<N>[.p/<W>] or entries/<N>[.p/<W>] as in https://c2sp.org/tlog-tiles "+
			"(L from 0 to 63, N in 3-digit groups such as x001/x234/067, W from 1 to 255, no leading zeros)", truncate(p, maxTilePathLen))
	}
	return t, nil
}

// tilePath is the C2SP path of t without its tile/ prefix, the inverse of
// parseTilePath.
func tilePath(t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), tlogTilePrefix)
	if t.L == -1 {
		p = "entries/" + strings.TrimPrefix(p, "data/")
	}
	return p
}

// tileAvailable reports how many hashes the tree of the given size has at
// the level of tile t (leaves for an entry bundle): the tile exists if it
// ends at or before that.
func tileAvailable(t tlog.Tile, size int64) int64 {
	level := max(t.L, 0)
	return size >> (tileHeight * level)
}

// checkTileInTree refuses a tile that reaches beyond the tree of the given
// size. A full tile asked for where only a partial one exists yet gets a
// hint with the partial tile's path.
func checkTileInTree(t tlog.Tile, size int64) error {
	avail := tileAvailable(t, size)
	// The first comparison keeps the shift of the second from overflowing.
	if t.N <= avail>>tileHeight && t.N<<tileHeight+int64(t.W) <= avail {
		return nil
	}
	hint := ""
	if t.N == avail>>tileHeight && avail%(1<<tileHeight) > 0 {
		partial := t
		partial.W = int(avail % (1 << tileHeight))
		hint = fmt.Sprintf(" (at this size it is the partial tile/%s)", tilePath(partial))
	}
	return fail(errNotFound, "tile/%s is beyond the log, which has %d leaves%s; GET /v1/log/checkpoint gives the current size",
		tilePath(t), size, hint)
}

// GET /v1/log/tile/{path}
func (s *Server) logTile(c *call) ([]byte, error) {
	if c.r.URL.RawQuery != "" {
		return nil, fail(errBadRequest, "GET /v1/log/tile/… takes no query parameters")
	}
	t, err := parseTilePath(c.vars()["path"])
	if err != nil {
		return nil, err
	}
	n, err := s.db.LogSize()
	if err != nil {
		return nil, err
	}
	if err := checkTileInTree(t, n); err != nil {
		return nil, err
	}
	// Both reads are bounded by the tile width: at most 256 hashes or
	// leaves, in one read transaction.
	if t.L == -1 {
		return s.entryBundle(t)
	}
	data, err := tlog.ReadTileData(t, s.db.LogHashReader())
	if err != nil {
		return nil, fmt.Errorf("failed to read tile/%s: %w", tilePath(t), err)
	}
	return data, nil
}

// entryBundle encodes the leaves of entry bundle t: each as a big-endian
// uint16 length followed by the leaf's bytes, exactly as hashed into the
// tree.
func (s *Server) entryBundle(t tlog.Tile) ([]byte, error) {
	start := t.N << tileHeight
	leaves, err := s.db.LogLeaves(start, start+int64(t.W))
	if err != nil {
		return nil, err
	}
	var size int
	for _, l := range leaves {
		size += 2 + len(l)
	}
	b := make([]byte, 0, size)
	for i, l := range leaves {
		// Cannot happen: the store bounds leaves at store.MaxLeafSize.
		if len(l) > math.MaxUint16 {
			return nil, fmt.Errorf("log leaf %d has %d bytes, too many for an entry bundle", start+int64(i), len(l))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(l)))
		b = append(b, l...)
	}
	return b, nil
}

// binaryFunc implements a route whose successful response is binary
// (application/octet-stream, status 200).
type binaryFunc func(c *call) ([]byte, error)

// binaryRoute is route for a binaryFunc. Authentication, body limits,
// errors and the request log are endpoint's, through s.call and
// s.writeError.
func (s *Server) binaryRoute(r *mux.Router, method, path, role string, fn binaryFunc) {
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		setRoute(req, path)
		var data []byte
		_, _, err := s.call(w, req, role, noBody, func(c *call) (any, int, error) {
			var err error
			data, err = fn(c)
			return nil, 0, err
		})
		if err != nil {
			s.writeError(w, req, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data)
	})
	r.Handle(pathVars.Replace(path), h).Methods(method)
}
