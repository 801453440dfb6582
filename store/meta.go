package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// GetMeta returns a copy of the meta value stored at key, or ErrNotFound.
func (db *DB) GetMeta(key string) ([]byte, error) {
	if err := checkMetaKey(key); err != nil {
		return nil, err
	}
	var val []byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v, ok := get(tx.Bucket(bucketMeta), []byte(key))
		if !ok {
			return ErrNotFound
		}
		val = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to get meta %q: %w", key, err)
	}
	return val, nil
}

// PutMeta stores val at key, replacing any previous value.
func (db *DB) PutMeta(key string, val []byte) error {
	if err := checkMetaKey(key); err != nil {
		return err
	}
	if err := checkMetaValue(val); err != nil {
		return err
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte(key), nonNil(val))
	})
	if err != nil {
		return fmt.Errorf("failed to put meta %q: %w", key, err)
	}
	return nil
}

// PutMetaIfAbsent stores val at key only if key has no value yet, and
// returns ErrExists otherwise. It lets the server generate a key on first
// start without ever replacing one that a previous start generated.
func (db *DB) PutMetaIfAbsent(key string, val []byte) error {
	if err := checkMetaKey(key); err != nil {
		return err
	}
	if err := checkMetaValue(val); err != nil {
		return err
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if has(b, []byte(key)) {
			return ErrExists
		}
		return b.Put([]byte(key), nonNil(val))
	})
	if err != nil {
		return fmt.Errorf("failed to put meta %q: %w", key, err)
	}
	return nil
}

func checkMetaKey(key string) error {
	if key == "" || len(key) > maxMetaKey {
		return fmt.Errorf("meta key must be 1 to %d bytes: %w", maxMetaKey, ErrInvalid)
	}
	return nil
}

// checkMetaValue keeps meta values small: they are read whole into memory
// and bbolt buffers them whole at commit.
func checkMetaValue(val []byte) error {
	if len(val) > ChunkSize {
		return fmt.Errorf("meta value must be at most %d bytes: %w", ChunkSize, ErrInvalid)
	}
	return nil
}

// nonNil makes an empty value distinguishable from a missing key within the
// transaction that writes it.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
