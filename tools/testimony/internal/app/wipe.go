package app

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// WipeReport says what Wipe removed.
type WipeReport struct {
	Files int // files overwritten and removed
}

// Wipe removes the state directory dir: every regular file is overwritten
// with random bytes and synced before it is unlinked, then the directories
// go. Overwriting helps on a hard disk; on an SSD or a journaling or
// copy-on-write file system old blocks may survive, which the app says.
// Symbolic links are removed, never followed.
func Wipe(dir string) (WipeReport, error) {
	var rep WipeReport
	var files, dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		} else {
			files = append(files, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("failed to list %s: %w", dir, err)
	}
	var errs []error
	for _, p := range files {
		if err := overwrite(p); err != nil {
			errs = append(errs, err)
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("failed to remove %s: %w", p, err))
			continue
		}
		rep.Files++
	}
	slices.Reverse(dirs)
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("failed to remove %s: %w", d, err))
		}
	}
	return rep, errors.Join(errs...)
}

// overwrite writes random bytes over a regular file's length.
func overwrite(p string) error {
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("failed to overwrite %s: %w", p, err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, fi.Size()); err != nil {
		return fmt.Errorf("failed to overwrite %s: %w", p, err)
	}
	return f.Sync()
}

// wipeWord is what the caseworker types to confirm, in their language.
func wipeWord(lang string) string {
	if lang == "ko" {
		return "삭제"
	}
	return "WIPE"
}

type wipeData struct {
	Word  string
	Files int
	Dir   string
}

func (a *App) handleWipePage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "wipe", view{Nav: "settings", Title: "Wipe this laptop", Data: wipeData{Word: wipeWord(a.lang(r))}})
}

func (a *App) handleWipe(w http.ResponseWriter, r *http.Request) {
	p := a.printer(r)
	lang := a.lang(r)
	word := wipeWord(lang)
	if strings.TrimSpace(r.PostFormValue("confirm")) != word {
		a.render(w, r, http.StatusBadRequest, "wipe", view{Nav: "settings", Title: "Wipe this laptop",
			Error: tr(p, "Nothing was removed: the word you typed is not the one asked for."), Data: wipeData{Word: word}})
		return
	}
	if a.cfg.Wipe == nil {
		a.notFound(w, r)
		return
	}
	csrf, _ := a.sessions.csrf(r)
	a.mu.Lock()
	a.wiped = true
	for _, j := range a.jobs {
		j.dropSpool()
	}
	a.jobs = nil
	stop := a.stopSending
	a.mu.Unlock()
	if stop != nil {
		stop() // an upload in progress ends now; its ciphertext is wiped
	}
	a.state.kill()
	a.work.Lock()
	rep, err := a.cfg.Wipe()
	a.work.Unlock()
	v := view{Title: "Wiped", CSRF: csrf, Data: wipeData{Files: rep.Files, Dir: a.cfg.StateDir}}
	if err != nil {
		v.Error = tr(p, "Some files could not be removed.") + " " + errorText(err)
	}
	// The language chosen must not be written back: render with the one
	// in memory, then stop.
	a.render(w, r, http.StatusOK, "wiped", v)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	// The app stops once the browser had time to load the stylesheet of
	// this last page.
	if a.shutdown != nil {
		go func() {
			time.Sleep(2 * time.Second)
			a.shutdown()
		}()
	}
}
