package main

import (
	"errors"
	"fmt"

	"github.com/testimony-ngo/testimony/internal/cmdline"
	"github.com/testimony-ngo/testimony/server"
)

const compactUsage = `Usage: testimony-server compact -data DIR

Rewrites DIR/testimony.db without its free pages, so that the bytes of
deleted uploads are no longer in the file: copies the database into a new
file, fsyncs it, renames it over the old one, then overwrites the old file
with zeros and removes it. The server must be stopped. Overwriting cannot
reach copies the storage keeps on its own (SSD wear levelling, file system
snapshots, copy-on-write file systems) or backups: see docs/operator.md.
serve -compact-at-start does the same at start when it is worth it.

Example:
    testimony-server compact -data /var/lib/testimony
`

const backupUsage = `Usage: testimony-server backup -data DIR -o FILE

Writes a consistent copy of DIR/testimony.db to FILE (mode 0600; an
existing FILE is refused), while testimony-server serve runs (through
DIR/admin.sock) or not, and prints what it holds. The copy is the whole
database: it holds the log key, the token hashes and the ciphertext. Keep
it as carefully as the server, and read docs/operator.md before restoring
one: an older backup rolls the intake log back.

Example:
    testimony-server backup -data /var/lib/testimony -o /backup/testimony-2026-12-03.db
`

const checkUsage = `Usage: testimony-server check (-data DIR | -file BACKUP)

Checks a database (the server stopped) or a backup without changing it:
the consistency of every page of the file, and the intake log's tree
recomputed from its leaves. Prints what it holds and the signed checkpoint
of its log, to compare with a checkpoint a client saved.

Example:
    testimony-server check -file /backup/testimony-2026-12-03.db
`

func (c *cli) compact(args []string) error {
	data, _, err := c.dataFlag("compact", compactUsage, args, false)
	if err != nil {
		return err
	}
	res, err := server.Compact(data)
	if errors.Is(err, server.ErrServerRunning) {
		return cmdline.Errorf("%w", err).Hint("stop testimony-server serve, run compact, then start it again (or use serve -compact-at-start)")
	}
	if err != nil {
		return explain(err, data)
	}
	fmt.Fprintf(c.stdout, "compacted %s: %d bytes before, %d after\n", server.DBPath(data), res.Before, res.After)
	return nil
}

func (c *cli) backup(args []string) error {
	fs := cmdline.NewFlagSet("backup")
	data := fs.String("data", "", "")
	out := fs.String("o", "", "")
	rest, err := c.parseFlags(fs, backupUsage, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	if err := required(fs, "data", "o"); err != nil {
		return err
	}
	sum, err := server.Backup(*data, *out)
	if err != nil {
		return explain(err, *data)
	}
	fmt.Fprintf(c.stdout, "wrote %s: %d bytes\n", *out, sum.FileSize)
	printSummary(c, sum)
	return nil
}

func printSummary(c *cli, sum server.BackupSummary) {
	fmt.Fprintf(c.stdout, "log size: %d\nsubmissions: %d (%d bytes of ciphertext)\nunfinished uploads: %d\n",
		sum.LogSize, sum.Submissions, sum.Bytes, sum.Uploads)
}

func (c *cli) check(args []string) error {
	fs := cmdline.NewFlagSet("check")
	data := fs.String("data", "", "")
	file := fs.String("file", "", "")
	rest, err := c.parseFlags(fs, checkUsage, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	if (*data == "") == (*file == "") {
		return cmdline.Errorf("give either -data or -file").Hint("check a data directory with -data DIR, a backup with -file FILE")
	}
	path := *file
	if *data != "" {
		path = server.DBPath(*data)
	}
	res, err := server.Check(path)
	if errors.Is(err, server.ErrCheckFailed) {
		return cmdline.Errorf("%w", err).Hint("do not serve from this file; restore the newest backup that passes check (docs/operator.md)")
	}
	if err != nil {
		return explain(err, *data)
	}
	fmt.Fprintf(c.stdout, "%s: ok\n", path)
	printSummary(c, res.Summary)
	fmt.Fprintf(c.stdout, "checkpoint:\n%s", res.Checkpoint)
	return nil
}
