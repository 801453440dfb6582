package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/testimony-ngo/testimony/crypto/intakelog"
	"github.com/testimony-ngo/testimony/store"
)

// specTilePath encodes a tile path (after tile/) the way
// https://c2sp.org/tlog-tiles describes it. It is written from the spec,
// not from tlog, so that the server is checked against an independent
// encoder: N in zero-padded 3-digit elements, all but the last prefixed
// with x; .p/<W> only for partial tiles.
func specTilePath(level string, n int64, w int) string {
	elems := []string{fmt.Sprintf("%03d", n%1000)}
	for n >= 1000 {
		n /= 1000
		elems = append([]string{fmt.Sprintf("x%03d", n%1000)}, elems...)
	}
	p := level + "/" + strings.Join(elems, "/")
	if w < 256 {
		p += ".p/" + strconv.Itoa(w)
	}
	return p
}

func specHashTilePath(t tlog.Tile) string { return specTilePath(strconv.Itoa(t.L), t.N, t.W) }
func specBundlePath(t tlog.Tile) string   { return specTilePath("entries", t.N, t.W) }

// getTile fetches /v1/log/tile/<path> and checks the headers of a tile.
func (e *testEnv) getTile(path string) (*httptest.ResponseRecorder, []byte) {
	e.t.Helper()
	w := e.do(req{method: "GET", path: "/v1/log/tile/" + path, token: e.collect})
	if w.Code == http.StatusOK {
		if ct := w.Header().Get("Content-Type"); ct != "application/octet-stream" {
			e.t.Errorf("tile/%s: Content-Type %q", path, ct)
		}
		if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
			e.t.Errorf("tile/%s: Content-Length %s for %d bytes", path, cl, w.Body.Len())
		}
	}
	return w, w.Body.Bytes()
}

// httpTileReader is a tlog.TileReader over the tile route: what a monitor
// does, trusting nothing but a checkpoint. tamper flips a bit in every tile
// it returns.
type httpTileReader struct {
	e      *testEnv
	tamper bool
}

func (r *httpTileReader) Height() int { return tileHeight }

func (r *httpTileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		w, body := r.e.getTile(specHashTilePath(t))
		if w.Code != http.StatusOK {
			return nil, fmt.Errorf("tile/%s: status %d: %s", specHashTilePath(t), w.Code, body)
		}
		if r.tamper {
			body[len(body)-1] ^= 1
		}
		data[i] = body
	}
	return data, nil
}

func (r *httpTileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// splitBundle decodes an entry bundle: big-endian uint16 lengths, each
// followed by that many bytes, and nothing else.
func splitBundle(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var entries [][]byte
	for len(b) > 0 {
		if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
			t.Fatalf("entry bundle ends inside entry %d", len(entries))
		}
		n := int(binary.BigEndian.Uint16(b))
		entries = append(entries, b[2:2+n])
		b = b[2+n:]
	}
	return entries
}

// appendLeaves finishes n small submissions straight through the store, as
// Server.complete does, and returns their leaves. The tile tests need
// hundreds of leaves, not the upload checks (TestTileRoutes goes through
// them), and 600 age-encrypted uploads take most of a minute under -race.
func (e *testEnv) appendLeaves(n int) []intakelog.Leaf {
	e.t.Helper()
	var leaves []intakelog.Leaf
	for range n {
		id := newID()
		data := []byte("not really ciphertext " + id)
		now := e.clock.Now()
		if err := e.db.CreateUpload(store.Upload{ID: id, Size: int64(len(data)), Created: now, Expires: now.Add(time.Hour)}); err != nil {
			e.t.Fatal(err)
		}
		if err := e.db.PutChunk(id, 0, data); err != nil {
			e.t.Fatal(err)
		}
		sub := store.Submission{ID: id, Size: int64(len(data)), SHA256: sha(data), Chunks: 1, Received: now.UTC().Truncate(24 * time.Hour)}
		leaf := leafOf(sub)
		if _, err := e.db.FinishUpload(id, sub, leaf.Bytes()); err != nil {
			e.t.Fatal(err)
		}
		leaves = append(leaves, leaf)
	}
	return leaves
}

// TestTilesFollowLog grows the log through random sizes up to 600 and, at
// each, fetches every tile and entry bundle a client needs, checks them
// against a tree built from the receipts' leaves, and then uses the tiles
// as a monitor would: tlog.TileHashReader, which trusts only the signed
// checkpoint, yields its root and inclusion proofs of its leaves. After
// the log has grown, every earlier checkpoint can still be followed: its
// partial tiles are still served, and the tiles prove it consistent with
// the newest.
func TestTilesFollowLog(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	sizes := []int64{1, 256, 257, 512}
	for range 5 {
		sizes = append(sizes, 1+rng.Int64N(600))
	}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)

	e := newTestEnv(t)
	var leaves []intakelog.Leaf
	var cps []intakelog.Checkpoint
	for _, size := range sizes {
		leaves = append(leaves, e.appendLeaves(int(size)-len(leaves))...)
		cp, _ := e.checkpoint()
		if cp.Size != size {
			t.Fatalf("checkpoint has size %d, want %d", cp.Size, size)
		}
		checkTiles(t, rng, e, cp, leaves)
		cps = append(cps, cp)
	}

	final := cps[len(cps)-1]
	r := &httpTileReader{e: e}
	newest := tlog.TileHashReader(tlog.Tree{N: final.Size, Hash: final.Root}, r)
	for _, old := range cps[:len(cps)-1] {
		root, err := tlog.TreeHash(old.Size, tlog.TileHashReader(tlog.Tree{N: old.Size, Hash: old.Root}, r))
		if err != nil || root != old.Root {
			t.Errorf("tiles of the older checkpoint of size %d: root %x, %v; want %x", old.Size, root, err, old.Root)
		}
		proof, err := tlog.ProveTree(final.Size, old.Size, newest)
		if err != nil {
			t.Fatalf("consistency %d -> %d from tiles: %v", old.Size, final.Size, err)
		}
		if err := tlog.CheckTree(proof, final.Size, final.Root, old.Size, old.Root); err != nil {
			t.Errorf("consistency %d -> %d from tiles: %v", old.Size, final.Size, err)
		}
	}

	// The reader refuses tiles that do not match the checkpoint: altered
	// tiles, or a root the log never had.
	tree := tlog.Tree{N: final.Size, Hash: final.Root}
	if _, err := tlog.TreeHash(final.Size, tlog.TileHashReader(tree, &httpTileReader{e: e, tamper: true})); err == nil {
		t.Error("altered tiles verified against the checkpoint")
	}
	tree.Hash[0] ^= 1
	if _, err := tlog.TreeHash(final.Size, tlog.TileHashReader(tree, r)); err == nil {
		t.Error("tiles verified against a root the log never had")
	}
}

// checkTiles checks the tiles of the log as it is at checkpoint cp, whose
// leaves are given.
func checkTiles(t *testing.T, rng *rand.Rand, e *testEnv, cp intakelog.Checkpoint, leaves []intakelog.Leaf) {
	t.Helper()
	mem := buildTree(t, leaves)
	for _, tile := range tlog.NewTiles(tileHeight, 0, cp.Size) {
		w, got := e.getTile(specHashTilePath(tile))
		expect(t, w, http.StatusOK, "")
		want, err := tlog.ReadTileData(tile, mem)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d: tile/%s differs from the tree of the receipts' leaves", cp.Size, specHashTilePath(tile))
		}
		if tile.L == 1 {
			// The spec's definition: hash i of tile n at level 1 is
			// MTH(D[(n*256+i)*256 : (n*256+i+1)*256]).
			for i := range tile.W {
				start := (tile.N<<tileHeight + int64(i)) << tileHeight
				mth, err := tlog.TreeHash(256, buildTree(t, leaves[start:start+256]))
				if err != nil || !bytes.Equal(mth[:], got[i*tlog.HashSize:(i+1)*tlog.HashSize]) {
					t.Fatalf("size %d: hash %d of tile/%s is not the hash of leaves [%d, %d)", cp.Size, i, specHashTilePath(tile), start, start+256)
				}
			}
		}
		if tile.L != 0 {
			continue
		}
		w, bundle := e.getTile(specBundlePath(tile))
		expect(t, w, http.StatusOK, "")
		entries := splitBundle(t, bundle)
		if len(entries) != tile.W {
			t.Fatalf("size %d: tile/%s has %d entries, want %d", cp.Size, specBundlePath(tile), len(entries), tile.W)
		}
		for j, entry := range entries {
			i := tile.N<<tileHeight + int64(j)
			if !bytes.Equal(entry, leaves[i].Bytes()) {
				t.Fatalf("size %d: entry %d is %q, want leaf %q", cp.Size, i, entry, leaves[i].Bytes())
			}
			if h := tlog.RecordHash(entry); !bytes.Equal(h[:], got[j*tlog.HashSize:(j+1)*tlog.HashSize]) {
				t.Fatalf("size %d: entry %d does not hash to its level 0 tile hash", cp.Size, i)
			}
		}
	}
	// What a tree one leaf larger adds is not there yet.
	for _, tile := range tlog.NewTiles(tileHeight, cp.Size, cp.Size+1) {
		w, _ := e.getTile(specHashTilePath(tile))
		expect(t, w, http.StatusNotFound, "is beyond the log, which has "+strconv.FormatInt(cp.Size, 10)+" leaves")
		if tile.L == 0 {
			w, _ := e.getTile(specBundlePath(tile))
			expect(t, w, http.StatusNotFound, "is beyond the log")
		}
	}

	r := tlog.TileHashReader(tlog.Tree{N: cp.Size, Hash: cp.Root}, &httpTileReader{e: e})
	root, err := tlog.TreeHash(cp.Size, r)
	if err != nil || root != cp.Root {
		t.Fatalf("size %d: tree hash from tiles %x, %v; checkpoint has %x", cp.Size, root, err, cp.Root)
	}
	// Every leaf would take seconds under -race; the ends, both sides of
	// the first tile boundary and a random sample cover the cases.
	for _, i := range []int64{0, cp.Size - 1, 255, 256, rng.Int64N(cp.Size), rng.Int64N(cp.Size), rng.Int64N(cp.Size), rng.Int64N(cp.Size)} {
		if i >= cp.Size {
			continue
		}
		proof, err := tlog.ProveRecord(cp.Size, i, r)
		if err != nil {
			t.Fatalf("size %d: proving leaf %d from tiles: %v", cp.Size, i, err)
		}
		if err := tlog.CheckRecord(proof, cp.Size, cp.Root, i, leaves[i].Hash()); err != nil {
			t.Fatalf("size %d: inclusion of leaf %d proved from tiles: %v", cp.Size, i, err)
		}
	}
}

// TestTileSetMatchesSpec checks that tlog.NewTiles, which the tests use to
// decide which tiles exist, agrees with the spec's own examples.
func TestTileSetMatchesSpec(t *testing.T) {
	count := func(tiles []tlog.Tile) map[string]int {
		m := map[string]int{}
		for _, tile := range tiles {
			kind := "full"
			if tile.W < 256 {
				kind = "partial " + strconv.Itoa(tile.W)
			}
			m[fmt.Sprintf("level %d %s", tile.L, kind)]++
		}
		return m
	}
	// "a tree of size 70,000 will be represented by 273 full level 0 tiles,
	// one partial level 0 tile of width 112, one full level 1 tile, one
	// partial level 1 tile of width 17, and one partial level 2 tile of
	// width 1"
	want := map[string]int{"level 0 full": 273, "level 0 partial 112": 1, "level 1 full": 1, "level 1 partial 17": 1, "level 2 partial 1": 1}
	if got := count(tlog.NewTiles(tileHeight, 0, 70000)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tiles of size 70000: %v, want %v", got, want)
	}
	// "a tree of size 256 will be represented by a full level 0 tile and a
	// partial level 1 tile of width 1"
	want = map[string]int{"level 0 full": 1, "level 1 partial 1": 1}
	if got := count(tlog.NewTiles(tileHeight, 0, 256)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tiles of size 256: %v, want %v", got, want)
	}
}

func TestTilePath(t *testing.T) {
	valid := []struct {
		path string
		tile tlog.Tile
	}{
		{"0/000", tlog.Tile{H: 8, L: 0, N: 0, W: 256}},
		{"0/000.p/1", tlog.Tile{H: 8, L: 0, N: 0, W: 1}},
		{"0/000.p/255", tlog.Tile{H: 8, L: 0, N: 0, W: 255}},
		{"0/999", tlog.Tile{H: 8, L: 0, N: 999, W: 256}},
		{"0/x001/000", tlog.Tile{H: 8, L: 0, N: 1000, W: 256}},
		// The spec's example.
		{"0/x001/x234/067", tlog.Tile{H: 8, L: 0, N: 1234067, W: 256}},
		{"5/x001/x234/067.p/8", tlog.Tile{H: 8, L: 5, N: 1234067, W: 8}},
		{"63/000.p/1", tlog.Tile{H: 8, L: 63, N: 0, W: 1}},
		{"entries/000", tlog.Tile{H: 8, L: -1, N: 0, W: 256}},
		{"entries/x001/x234/067.p/112", tlog.Tile{H: 8, L: -1, N: 1234067, W: 112}},
		{"0/x009/x223/x372/x036/x854/x775/807", tlog.Tile{H: 8, L: 0, N: 1<<63 - 1, W: 256}},
	}
	for _, tt := range valid {
		got, err := parseTilePath(tt.path)
		if err != nil || got != tt.tile {
			t.Errorf("parseTilePath(%q) = %+v, %v; want %+v", tt.path, got, err, tt.tile)
		}
		if p := tilePath(tt.tile); p != tt.path {
			t.Errorf("tilePath(%+v) = %q, want %q", tt.tile, p, tt.path)
		}
		level := strconv.Itoa(tt.tile.L)
		if tt.tile.L == -1 {
			level = "entries"
		}
		if p := specTilePath(level, tt.tile.N, tt.tile.W); p != tt.path {
			t.Errorf("specTilePath(%+v) = %q, want %q", tt.tile, p, tt.path)
		}
	}

	invalid := []string{
		"", "0", "0/", "/0/000", "0//000", "0/000/", "0/000.p/5/",
		"00/000", "+0/000", "-1/000", "64/000", "100/000", "a/000", " 0/000",
		"data/000", "entries", "entries/", "entries/0/000", "tile/0/000", "8/0/000",
		"0/0", "0/00", "0/0000", "0/1000", "0/x000", "0/x001", "0/001/002", "0/x000/001", "0/X001/000", "0/x01/000", "0/-01",
		"0/000.p/0", "0/000.p/256", "0/000.p/05", "0/000.p/+5", "0/000.p", "0/000.p/", "0/000.P/5", "0/.p/5", "entries/000.p/256",
		"0/x009/x223/x372/x036/x854/x775/808", // 2^63 overflows
		"0/x999/x999/x999/x999/x999/x999/x999/999",
		"0/" + strings.Repeat("x000/", 13) + "000", // longer than maxTilePathLen
	}
	for _, p := range invalid {
		if tile, err := parseTilePath(p); err == nil || !errors.Is(err, errBadRequest) {
			t.Errorf("parseTilePath(%q) = %+v, %v; want a bad request", p, tile, err)
		}
	}
}

func TestTileRoutes(t *testing.T) {
	e := newTestEnv(t)
	rs := e.submitN(5)
	// The bundle holds the leaves of the receipts, in order.
	w, bundle := e.getTile("entries/000.p/5")
	expect(t, w, http.StatusOK, "")
	var want []byte
	for _, rc := range rs {
		leaf := rc.Leaf().Bytes()
		want = binary.BigEndian.AppendUint16(want, uint16(len(leaf)))
		want = append(want, leaf...)
	}
	if !bytes.Equal(bundle, want) {
		t.Errorf("entry bundle\n%q\nwant the receipts' leaves\n%q", bundle, want)
	}

	tests := []struct {
		name   string
		path   string
		status int
		msg    string
	}{
		{"partial tile at the current size", "0/000.p/5", 200, ""},
		{"partial tile of an older size", "0/000.p/1", 200, ""},
		{"entry bundle", "entries/000.p/5", 200, ""},
		{"full tile not there yet", "0/000", 404, "tile/0/000 is beyond the log, which has 5 leaves (at this size it is the partial tile/0/000.p/5); GET /v1/log/checkpoint gives the current size"},
		{"full bundle not there yet", "entries/000", 404, "(at this size it is the partial tile/entries/000.p/5)"},
		{"wider than the tree", "0/000.p/6", 404, "tile/0/000.p/6 is beyond the log, which has 5 leaves (at this size it is the partial tile/0/000.p/5)"},
		{"next tile", "0/001.p/1", 404, "tile/0/001.p/1 is beyond the log, which has 5 leaves;"},
		{"level 1", "1/000.p/1", 404, "beyond the log"},
		{"highest level", "63/000.p/1", 404, "beyond the log"},
		{"bundle beyond", "entries/x001/x234/067", 404, "beyond the log"},
		{"largest index", "0/x009/x223/x372/x036/x854/x775/807", 404, "beyond the log"},
		{"empty", "", 400, `malformed tile path "": want <L>/<N>[.p/<W>] or entries/<N>[.p/<W>]`},
		{"leading zero", "0/000.p/05", 400, `malformed tile path "0/000.p/05"`},
		{"level too high", "64/000", 400, "L from 0 to 63"},
		{"tlog's data level", "data/000.p/5", 400, "malformed tile path"},
		{"tlog's path with the height", "8/0/000.p/5", 400, "malformed tile path"},
		{"width 256", "0/000.p/256", 400, "W from 1 to 255"},
		{"index without groups", "0/1234067", 400, "3-digit groups such as x001/x234/067"},
		{"too long", strings.Repeat("x000/", 20) + "000", 400, "tile path is longer than 64 bytes"},
		{"query", "0/000.p/5?w=5", 400, "takes no query parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.in(t)
			w, _ := e.getTile(tt.path)
			expect(t, w, tt.status, tt.msg)
		})
	}

	// The same rule as the other log routes: any valid token, read-only.
	for _, path := range []string{"/v1/log/tile/0/000.p/5", "/v1/log/tile/entries/000.p/5", "/v1/log/tile/nonsense"} {
		expect(t, e.do(req{method: "GET", path: path}), 401, "missing Authorization")
		expect(t, e.do(req{method: "POST", path: path, token: e.collect}), 405, "method POST is not allowed")
	}
	expect(t, e.do(req{method: "GET", path: "/v1/log/tile/0/000.p/5", token: e.submit}), 200, "")
	if logs := e.logs.String(); !strings.Contains(logs, "route=/v1/log/tile/{path}") {
		t.Errorf("the request log does not name the tile route's template:\n%s", logs)
	}
}

// FuzzTilePath: the parser accepts exactly one spelling of each tile, the
// spec's, within its bounds; the route answers with a tile or a client
// error, never a server error, and agrees with the parser.
func FuzzTilePath(f *testing.F) {
	e := newTestEnv(f)
	e.submitN(3)
	for _, s := range []string{"0/000.p/3", "entries/000.p/3", "0/000", "0/x001/x234/067", "63/000.p/1", "64/000",
		"data/000", "8/0/000", "0/000.p/256", "0/000.p/05", "", "0/x009/x223/x372/x036/x854/x775/808", "0/../000.p/3", "0//000.p/3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		tile, err := parseTilePath(p)
		if err == nil {
			level := strconv.Itoa(tile.L)
			if tile.L == -1 {
				level = "entries"
			}
			if tile.H != tileHeight || tile.L < -1 || tile.L > maxTileLevel || tile.N < 0 || tile.W < 1 || tile.W > 256 {
				t.Fatalf("parseTilePath(%q) = %+v, outside the spec's bounds", p, tile)
			}
			if tilePath(tile) != p || specTilePath(level, tile.N, tile.W) != p {
				t.Fatalf("parseTilePath(%q) = %+v, whose path is %q", p, tile, specTilePath(level, tile.N, tile.W))
			}
		} else if !errors.Is(err, errBadRequest) {
			t.Fatalf("parseTilePath(%q): %v", p, err)
		}

		r := newRequest(req{method: "GET", path: "/v1/log/tile/", token: e.collect})
		r.URL.Path += p
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		switch {
		case err == nil && w.Code != 200 && w.Code != 404:
			t.Fatalf("tile/%s parses but the route answers %d %s", p, w.Code, w.Body.String())
		case err != nil && w.Code != 400 && w.Code != 404: // 404: no route matches (a newline)
			t.Fatalf("tile/%s does not parse but the route answers %d %s", p, w.Code, w.Body.String())
		}
	})
}
