package store

import (
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"fmt"
	"hash"

	bolt "go.etcd.io/bbolt"
)

// bucketHashes holds, for each unfinished upload, the SHA-256 state of the
// longest run of its bytes stored contiguously from the start. Every
// transaction that stores a chunk or a piece advances it over the bytes that
// became contiguous, so the state always agrees with what is committed, also
// after a crash, and finishing an upload stored in order reads nothing back
// (UploadSHA256). A file written before this bucket existed simply has no
// state: UploadSHA256 then reads and hashes the whole upload.
var bucketHashes = []byte("hashes")

// maxHashAdvance is the most bytes one transaction hashes of chunks that
// were stored earlier, out of order, and became contiguous when a gap
// closed. It keeps such a transaction short; UploadSHA256 hashes the rest.
const maxHashAdvance = 8 * ChunkSize

// hashRecord is the stored form of a running hash.
type hashRecord struct {
	// Off is how many bytes from the upload's start have been hashed.
	Off int64 `json:"off"`
	// State is the SHA-256 state after Off bytes (MarshalBinary).
	State []byte `json:"state"`
	// ChunkState is the state at the start of the chunk holding byte Off:
	// ResetChunk drops that chunk's pieces, and the hash goes back to it.
	ChunkState []byte `json:"chunk_state"`
}

// runningHash is a hashRecord being advanced.
type runningHash struct {
	off        int64
	h          hash.Hash
	chunkState []byte
}

func marshalHash(h hash.Hash) ([]byte, error) {
	return h.(encoding.BinaryMarshaler).MarshalBinary()
}

func unmarshalHash(state []byte) (hash.Hash, error) {
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("stored hash state: %v: %w", err, ErrCorrupt)
	}
	return h, nil
}

// loadHash returns the running hash of the upload id, a new one when none
// is stored.
func loadHash(tx *bolt.Tx, id string) (*runningHash, error) {
	rh := &runningHash{h: sha256.New()}
	b := tx.Bucket(bucketHashes)
	if b == nil {
		return rh, nil
	}
	v := b.Get([]byte(id))
	if v == nil {
		return rh, nil
	}
	var rec hashRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("failed to decode hash state: %v: %w", err, ErrCorrupt)
	}
	if rec.Off < 0 || len(rec.ChunkState) == 0 {
		return nil, fmt.Errorf("malformed hash state: %w", ErrCorrupt)
	}
	h, err := unmarshalHash(rec.State)
	if err != nil {
		return nil, err
	}
	rh.off, rh.h, rh.chunkState = rec.Off, h, rec.ChunkState
	return rh, nil
}

func (rh *runningHash) save(tx *bolt.Tx, id string) error {
	state, err := marshalHash(rh.h)
	if err != nil {
		return err
	}
	v, err := json.Marshal(&hashRecord{Off: rh.off, State: state, ChunkState: rh.chunkState})
	if err != nil {
		return err
	}
	return tx.Bucket(bucketHashes).Put([]byte(id), v)
}

// write hashes p, the bytes at rh.off, keeping the state at each chunk
// start it passes.
func (rh *runningHash) write(p []byte) error {
	for len(p) > 0 {
		if rh.off%ChunkSize == 0 {
			s, err := marshalHash(rh.h)
			if err != nil {
				return err
			}
			rh.chunkState = s
		}
		n := min(len(p), int(ChunkSize-rh.off%ChunkSize))
		rh.h.Write(p[:n])
		rh.off += int64(n)
		p = p[n:]
	}
	return nil
}

// advanceHash hashes the bytes of the upload id (raw) that are stored
// contiguously after its running hash, within the transaction that just
// stored some of them, and saves the state. Chunks that were stored out of
// order are read back only up to maxHashAdvance bytes per call: the pages
// a write transaction reads stay resident. The piece that would complete a
// chunk is left for the chunk itself (PutChunkUntil), so the hash never
// passes a chunk that ResetChunk could still drop.
func advanceHash(tx *bolt.Tx, id string, raw [16]byte) error {
	rh, err := loadHash(tx, id)
	if err != nil {
		return err
	}
	start := rh.off
	chunks := tx.Bucket(bucketChunks)
	for rh.off-start < maxHashAdvance {
		idx := rh.off / ChunkSize
		within := int(rh.off % ChunkSize)
		if idx >= maxChunks {
			break
		}
		cb := chunks.Bucket(chunkKey(raw, uint32(idx)))
		if cb == nil {
			break
		}
		if v := cb.Get(chunkData); v != nil {
			if within >= len(v) {
				// The last chunk, already hashed whole.
				break
			}
			if err := rh.write(v[within:]); err != nil {
				return err
			}
			if len(v) < ChunkSize {
				break
			}
			continue
		}
		// A chunk still arriving: its pieces from the one at within on.
		c := cb.Cursor()
		for k, _ := c.Seek(pieceKey(within)); k != nil && string(k) == string(pieceKey(int(rh.off%ChunkSize))); k, _ = c.Next() {
			data := cb.Bucket(k).Get(pieceData)
			if len(data) == 0 || rh.off%ChunkSize+int64(len(data)) >= ChunkSize {
				break
			}
			if err := rh.write(data); err != nil {
				return err
			}
		}
		break
	}
	if rh.off == start {
		return nil
	}
	return rh.save(tx, id)
}

// rewindHash takes the running hash of the upload id back to the start of
// chunk index if it had hashed some of that chunk's pieces, which are being
// dropped.
func rewindHash(tx *bolt.Tx, id string, index int) error {
	rh, err := loadHash(tx, id)
	if err != nil {
		return err
	}
	chunkStart := int64(index) * ChunkSize
	if rh.off <= chunkStart || rh.off >= chunkStart+ChunkSize {
		return nil
	}
	h, err := unmarshalHash(rh.chunkState)
	if err != nil {
		return err
	}
	rh.off, rh.h = chunkStart, h
	return rh.save(tx, id)
}

// deleteHash removes the running hash of the upload id.
func deleteHash(tx *bolt.Tx, id string) error {
	if b := tx.Bucket(bucketHashes); b != nil {
		return b.Delete([]byte(id))
	}
	return nil
}

// UploadSHA256 returns the SHA-256 of the first size bytes of the upload
// id, and how many bytes it read from the store to compute it. The running
// hash kept as chunks arrive covers everything stored in order, so for an
// upload stored in order it reads nothing; otherwise it hashes what follows
// the running hash one chunk at a time, in short read transactions. The
// chunks must all be stored (ErrIncomplete otherwise).
func (db *DB) UploadSHA256(id string, size int64) (sum [32]byte, read int64, err error) {
	raw, err := parseID(id)
	if err != nil {
		return sum, 0, fmt.Errorf("failed to hash upload: %w", err)
	}
	var rh *runningHash
	err = db.bolt.View(func(tx *bolt.Tx) error {
		if _, err := loadUpload(tx, id); err != nil {
			return err
		}
		rh, err = loadHash(tx, id)
		return err
	})
	if err != nil {
		return sum, 0, fmt.Errorf("failed to hash upload %s: %w", id, err)
	}
	if rh.off > size {
		return sum, 0, fmt.Errorf("failed to hash upload %s: %d bytes hashed, more than its %d: %w", id, rh.off, size, ErrIncomplete)
	}
	for rh.off < size {
		idx := rh.off / ChunkSize
		within := int(rh.off % ChunkSize)
		err := db.bolt.View(func(tx *bolt.Tx) error {
			v := chunkValue(tx.Bucket(bucketChunks), chunkKey(raw, uint32(idx)))
			if v == nil || len(v) <= within {
				return fmt.Errorf("chunk %d is missing: %w", idx, ErrIncomplete)
			}
			v = v[within:min(len(v), within+int(size-rh.off))]
			read += int64(len(v))
			err := rh.write(v)
			release(v)
			return err
		})
		if err != nil {
			return sum, read, fmt.Errorf("failed to hash upload %s: %w", id, err)
		}
	}
	return [32]byte(rh.h.Sum(nil)), read, nil
}
