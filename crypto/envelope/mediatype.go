package envelope

import (
	"bytes"
	"mime"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// sniffLen is how much of a file's start mediaType looks at.
const sniffLen = 512

// extensionTypes covers what caseworkers record and collect. It is checked
// before the system's MIME tables so the media type of common files does
// not depend on the machine that built the envelope.
var extensionTypes = map[string]string{
	".3gp":  "video/3gpp",
	".aac":  "audio/aac",
	".amr":  "audio/amr",
	".avi":  "video/x-msvideo",
	".csv":  "text/csv",
	".doc":  "application/msword",
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".flac": "audio/flac",
	".gif":  "image/gif",
	".heic": "image/heic",
	".heif": "image/heif",
	".htm":  "text/html",
	".html": "text/html",
	".hwp":  "application/x-hwp",
	".jpeg": "image/jpeg",
	".jpg":  "image/jpeg",
	".json": "application/json",
	".m4a":  "audio/mp4",
	".m4v":  "video/mp4",
	".md":   "text/markdown",
	".mkv":  "video/x-matroska",
	".mov":  "video/quicktime",
	".mp3":  "audio/mpeg",
	".mp4":  "video/mp4",
	".odt":  "application/vnd.oasis.opendocument.text",
	".oga":  "audio/ogg",
	".ogg":  "audio/ogg",
	".opus": "audio/ogg",
	".pdf":  "application/pdf",
	".png":  "image/png",
	".rtf":  "application/rtf",
	".tif":  "image/tiff",
	".tiff": "image/tiff",
	".txt":  "text/plain",
	".wav":  "audio/wav",
	".webm": "video/webm",
	".webp": "image/webp",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".xml":  "application/xml",
	".zip":  "application/zip",
}

// magic is a signature at the start of a file.
type magic struct {
	offset int
	prefix string
	typ    string
}

// magics are checked in order; the first match wins.
var magics = []magic{
	{0, "%PDF-", "application/pdf"},
	{0, "\x89PNG\r\n\x1a\n", "image/png"},
	{0, "\xff\xd8\xff", "image/jpeg"},
	{0, "GIF87a", "image/gif"},
	{0, "GIF89a", "image/gif"},
	{8, "WAVE", "audio/wav"},
	{8, "WEBP", "image/webp"},
	{8, "AVI ", "video/x-msvideo"},
	{0, "ID3", "audio/mpeg"},
	{0, "OggS", "audio/ogg"},
	{0, "fLaC", "audio/flac"},
	{0, "#!AMR", "audio/amr"},
	{4, "ftypM4A", "audio/mp4"},
	{4, "ftypqt", "video/quicktime"},
	{4, "ftypheic", "image/heic"},
	{4, "ftyp3gp", "video/3gpp"},
	{4, "ftyp", "video/mp4"},
	{0, "\x1a\x45\xdf\xa3", "video/webm"},
	{0, "PK\x03\x04", "application/zip"},
	{0, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"},
}

// mediaType guesses a media type from a file's name and its first bytes:
// the extension table, then the system MIME tables, then signatures, then
// a check for text. The result has no parameters.
func mediaType(name string, head []byte) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := extensionTypes[ext]; ok {
		return t
	}
	if ext != "" {
		if t, _, err := mime.ParseMediaType(mime.TypeByExtension(ext)); err == nil {
			return t
		}
	}
	return sniff(head)
}

func sniff(head []byte) string {
	for _, m := range magics {
		if len(head) >= m.offset && bytes.HasPrefix(head[m.offset:], []byte(m.prefix)) {
			if m.offset == 8 && !bytes.HasPrefix(head, []byte("RIFF")) {
				continue
			}
			return m.typ
		}
	}
	if len(head) > 0 && looksLikeText(head) {
		return "text/plain"
	}
	return "application/octet-stream"
}

// looksLikeText reports whether head is UTF-8 text, allowing the last
// character to be cut off by the sniffing limit.
func looksLikeText(head []byte) bool {
	for len(head) > 0 {
		r, size := utf8.DecodeRune(head)
		if r == utf8.RuneError && size <= 1 {
			return len(head) < utf8.UTFMax && !utf8.FullRune(head)
		}
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' && r != '\f' {
			return false
		}
		head = head[size:]
	}
	return true
}

// headBuffer keeps the first sniffLen bytes written to it.
type headBuffer struct{ b []byte }

func (h *headBuffer) Write(p []byte) (int, error) {
	if n := sniffLen - len(h.b); n > 0 {
		h.b = append(h.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}
