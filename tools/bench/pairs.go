package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// smallClients is how many clients send small submissions at once.
const smallClients = 64

// smallPlaintext makes a ciphertext of about 10 KiB with a hybrid header.
const smallPlaintext = 8 << 10

// bench holds what the pairs share: one deployment, one sink, the input
// files, and a bundle collected once for open.
type bench struct {
	cfg      config
	dir, bin string
	d        *deployment
	sink     *sink
	plain    string // dir holding the plaintext file
	oneShot  string // an age file of it
	small    []byte // a small age file
	bundle   string
	bundleCT string // the ciphertext in the bundle
	rss      peakRSS
}

type peakRSS struct{ server, submit, open int64 }

func newBench(dir, bin string, cfg config) (*bench, error) {
	b := &bench{cfg: cfg, dir: dir, bin: bin, plain: filepath.Join(dir, "plain"), oneShot: filepath.Join(dir, "oneshot.age"),
		bundle: filepath.Join(dir, "bundle")}
	var err error
	if b.d, err = newDeployment(bin, filepath.Join(dir, "deploy"), []string{"-max-open-uploads", fmt.Sprint(2 * smallClients)}); err != nil {
		return nil, err
	}
	sinkDir := filepath.Join(dir, "sink")
	if err := os.Mkdir(sinkDir, 0o700); err != nil {
		return nil, err
	}
	if b.sink, err = startSink(sinkDir); err != nil {
		return nil, err
	}
	if err := os.Mkdir(b.plain, 0o700); err != nil {
		return nil, err
	}
	if err := writeRandom(filepath.Join(b.plain, "recording.bin"), cfg.size, 1); err != nil {
		return nil, err
	}
	if err := b.sh("age -R %q -o %q %q", b.d.recips, b.oneShot, filepath.Join(b.plain, "recording.bin")); err != nil {
		return nil, err
	}
	smallIn := filepath.Join(dir, "small.bin")
	if err := writeRandom(smallIn, smallPlaintext, 2); err != nil {
		return nil, err
	}
	if err := b.sh("age -R %q -o %q.age %q", b.d.recips, smallIn, smallIn); err != nil {
		return nil, err
	}
	if b.small, err = os.ReadFile(smallIn + ".age"); err != nil {
		return nil, err
	}
	// The bundle that open reads every round: one submission made by
	// testimony submit, collected before any other submission exists.
	if err := b.submit(-1); err != nil {
		return nil, err
	}
	home := []string{"TESTIMONY_HOME=" + filepath.Join(dir, "collector"), "TESTIMONY_TOKEN=" + b.d.collTok}
	if _, err := b.d.run(home, "testimony", "collect", "-server", b.d.url(), "-ca", b.d.certFile(), "-o", b.bundle); err != nil {
		return nil, err
	}
	cts, err := filepath.Glob(filepath.Join(b.bundle, "*.age"))
	if err != nil || len(cts) != 1 {
		return nil, fmt.Errorf("want one ciphertext in the bundle, found %v", cts)
	}
	b.bundleCT = cts[0]
	return b, nil
}

func (b *bench) close() {
	b.d.stop()
	b.sink.close()
}

func (b *bench) stop() peakRSS {
	b.rss.server = b.d.stop()
	return b.rss
}

func (b *bench) pairs() []*pair {
	return []*pair{
		{name: "intake", what: "intake, one-shot POST", baseline: "HTTPS sink", goal: 0.8, floor: 0.25,
			testimony: func(int) error { return post(b.d.client, b.d.url()+"/v1/submissions", b.d.submitTok, b.oneShot, nil) },
			base:      func(int) error { return post(poolClient(b.sink.pool), b.sink.url, "", b.oneShot, nil) }},
		{name: "chunked", what: "intake, chunked upload", baseline: "HTTPS sink", goal: 0.8, floor: 0.2,
			testimony: func(int) error { return uploadChunked(b.d.client, b.d.url(), b.d.submitTok, b.oneShot) },
			base:      func(int) error { return post(poolClient(b.sink.pool), b.sink.url, "", b.oneShot, nil) }},
		{name: "submit", what: "`testimony submit`", baseline: "`tar | age -R`, POST to sink", goal: 1 / 1.3, floor: 0.2,
			testimony: b.submit, base: b.submitBaseline},
		{name: "open", what: "`testimony-review open`", baseline: "`age -d | tar -x`, fsync", goal: 1 / 1.1, floor: 0.4,
			testimony: b.open, base: b.openBaseline},
		{name: "small", what: fmt.Sprintf("%d B one-shot, %d clients", len(b.small), smallClients), baseline: "bbolt DB.Batch", goal: 0.5, floor: 0.15,
			count: b.cfg.small, testimony: b.smallSubmissions, base: b.smallBatch},
	}
}

// submit runs testimony submit with a new home, so no outbox is shared.
func (b *bench) submit(round int) error {
	home := filepath.Join(b.dir, fmt.Sprintf("home%d", round))
	defer os.RemoveAll(home)
	cmd := exec.Command(filepath.Join(b.bin, "testimony"), "submit", "-server", b.d.url(), "-ca", b.d.certFile(), filepath.Join(b.plain, "recording.bin"))
	cmd.Env = append(os.Environ(), "TESTIMONY_HOME="+home, "TESTIMONY_TOKEN="+b.d.submitTok)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	rss, err := runPeak(cmd)
	if err != nil {
		return fmt.Errorf("testimony submit: %w\n%s", err, out.Bytes())
	}
	b.rss.submit = max(b.rss.submit, rss)
	return nil
}

func (b *bench) submitBaseline(int) error {
	out := filepath.Join(b.dir, "baseline.age")
	defer os.Remove(out)
	if err := b.sh("tar -cf - -C %q recording.bin | age -R %q -o %q", b.plain, b.d.recips, out); err != nil {
		return err
	}
	return post(poolClient(b.sink.pool), b.sink.url, "", out, nil)
}

func (b *bench) open(round int) error {
	out := filepath.Join(b.dir, "open")
	home := filepath.Join(b.dir, fmt.Sprintf("review%d", round))
	defer os.RemoveAll(out)
	defer os.RemoveAll(home)
	cmd := exec.Command(filepath.Join(b.bin, "testimony-review"), "open", "-log-key", b.d.logKey, "-i", b.d.identity, "-o", out, b.bundle)
	cmd.Env = append(os.Environ(), "TESTIMONY_REVIEW_HOME="+home)
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	rss, err := runPeak(cmd)
	if err != nil {
		return fmt.Errorf("testimony-review open: %w\n%s", err, msg.Bytes())
	}
	b.rss.open = max(b.rss.open, rss)
	return nil
}

func (b *bench) openBaseline(int) error {
	out := filepath.Join(b.dir, "open-baseline")
	defer os.RemoveAll(out)
	if err := os.Mkdir(out, 0o700); err != nil {
		return err
	}
	if err := b.sh("age -d -i %q %q | tar -xf - -C %q", b.d.identity, b.bundleCT, out); err != nil {
		return err
	}
	return filepath.WalkDir(out, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}

func (b *bench) smallSubmissions(int) error {
	// Each client has a connection of its own, as separate caseworkers do.
	clients := make([]*http.Client, smallClients)
	for i := range clients {
		clients[i] = httpsClient(b.d.certFile())
	}
	return parallel(b.cfg.small, func(client int) error {
		return post(clients[client], b.d.url()+"/v1/submissions", b.d.submitTok, "", b.small)
	})
}

func (b *bench) smallBatch(round int) error {
	path := filepath.Join(b.dir, fmt.Sprintf("batch%d.db", round))
	defer os.Remove(path)
	db, err := bolt.Open(path, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return err
	}
	defer db.Close()
	bucket := []byte("records")
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucket); return err }); err != nil {
		return err
	}
	return parallel(b.cfg.small, func(int) error {
		var key [16]byte
		for i := range key {
			key[i] = byte(rand.Uint32())
		}
		return db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key[:], b.small) })
	})
}

// parallel calls f n times from smallClients goroutines, each passing its
// number.
func parallel(n int, f func(client int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, smallClients)
	for c := range smallClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := f(c); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// sh runs a shell pipeline with the built age first on PATH.
func (b *bench) sh(format string, args ...any) error {
	cmd := exec.Command("sh", "-c", fmt.Sprintf(format, args...))
	cmd.Env = append(os.Environ(), "PATH="+b.bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", cmd.Args[2], err, out)
	}
	return nil
}

// writeRandom writes size pseudo-random bytes to path.
func writeRandom(path string, size int64, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	r := rand.NewChaCha8([32]byte{byte(seed)})
	buf := make([]byte, 1<<20)
	for size > 0 {
		n := min(size, int64(len(buf)))
		r.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		size -= n
	}
	return f.Close()
}
