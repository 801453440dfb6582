package review

import "io"

// ProgressFunc receives the progress of reading one submission's
// ciphertext: its id, the bytes read so far and its size. Verify and Open
// each read every ciphertext once, which on a large bundle from a USB stick
// is a long wait the reviewer should see.
type ProgressFunc func(id string, done, total int64)

// progressReader reports every read of s's ciphertext to fn; with a nil fn
// it is r itself.
func progressReader(r io.Reader, s Submission, fn ProgressFunc) io.Reader {
	if fn == nil {
		return r
	}
	return &progressingReader{r: r, id: s.ID, total: s.Leaf.Size, fn: fn}
}

type progressingReader struct {
	r     io.Reader
	id    string
	done  int64
	total int64
	fn    ProgressFunc
}

func (p *progressingReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.done += int64(n)
		p.fn(p.id, p.done, p.total)
	}
	return n, err
}
