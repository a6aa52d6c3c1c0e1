package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/certplan/certplan/internal/atomicfile"
	"github.com/certplan/certplan/model"
)

// The inventory of a large host is hundreds of megabytes of JSON:
// model.Marshal's document, its indented copy and the output's buffer
// were each a copy of it (931 MB peak RSS for 100,000 domains). It is
// written instead as it is encoded, name by name and domain by domain,
// straight to the output file, byte for byte what model.Marshal gives
// (TestInventoryJSONStreamed).

// writeInventoryJSON writes inv as model.Marshal would, one name and one
// domain at a time.
func writeInventoryJSON(w io.Writer, inv *model.Inventory) error {
	shell := *inv
	shell.Names, shell.Domains = []model.Name{}, []model.Domain{}
	return writeInventoryJSONFrom(w, &shell,
		func(put func(*model.Name) error) error {
			for i := range inv.Names {
				if err := put(&inv.Names[i]); err != nil {
					return err
				}
			}
			return nil
		},
		func(put func(*model.Domain) error) error {
			for i := range inv.Domains {
				if err := put(&inv.Domains[i]); err != nil {
					return err
				}
			}
			return nil
		})
}

// writeInventoryJSONFrom writes the inventory whose fields but Names and
// Domains are in shell, and whose names and domains eachName and
// eachDomain give in order (a dnscheck.Spill's).
func writeInventoryJSONFrom(w io.Writer, shell *model.Inventory, eachName func(func(*model.Name) error) error, eachDomain func(func(*model.Domain) error) error) error {
	b, err := model.Marshal(shell)
	if err != nil {
		return err
	}
	// The two lists are top-level fields, emptied in the shell: their
	// "[]" are spliced open and the elements written between, indented
	// as json.MarshalIndent indents the elements of a top-level array.
	bw := bufio.NewWriterSize(w, 64<<10)
	rest := b
	for _, f := range []struct {
		key  string
		each func(func(any) error) error
	}{
		{"names", func(put func(any) error) error {
			return eachName(func(n *model.Name) error { return put(n) })
		}},
		{"domains", func(put func(any) error) error {
			return eachDomain(func(d *model.Domain) error { return put(d) })
		}},
	} {
		marker := []byte("\n  \"" + f.key + "\": []")
		before, after, ok := bytes.Cut(rest, marker)
		if !ok {
			return fmt.Errorf("inventory json: no %q in the document", f.key)
		}
		bw.Write(before)
		bw.Write(marker[:len(marker)-1]) // up to and with '['
		n := 0
		err := f.each(func(v any) error {
			e, err := json.MarshalIndent(v, "    ", "  ")
			if err != nil {
				return err
			}
			if n > 0 {
				bw.WriteByte(',')
			}
			n++
			bw.WriteString("\n    ")
			_, err = bw.Write(e)
			return err
		})
		if err != nil {
			return err
		}
		if n > 0 {
			bw.WriteString("\n  ")
		}
		bw.WriteByte(']')
		rest = after
	}
	bw.Write(rest)
	return bw.Flush()
}

// streamOutput opens where a command's output goes as it is written:
// stdout, or, for -o FILE, a temporary file in FILE's directory renamed
// over FILE by commit (atomicfile: a reader never sees half a document).
// abort removes the temporary file; after commit it does nothing.
func (g *globals) streamOutput() (w io.Writer, commit func() error, abort func(), err error) {
	if g.Output == "" || g.Output == "-" {
		return g.Stdout, func() error { return nil }, func() {}, nil
	}
	if err := checkOutputPath("--output", g.Output); err != nil {
		return nil, nil, nil, err
	}
	if inPlace(g.Output) {
		f, err := openInPlace(g.Output)
		if err != nil {
			return nil, nil, nil, outputFileError(g.Output, err)
		}
		return f, f.Close, func() { f.Close() }, nil
	}
	f, err := atomicfile.Create(g.Output, 0o644)
	if err != nil {
		return nil, nil, nil, outputFileError(g.Output, err)
	}
	commit = func() error {
		if err := f.Commit(); err != nil {
			return outputFileError(g.Output, err)
		}
		return nil
	}
	return f, commit, f.Abort, nil
}

func outputFileError(path string, err error) error {
	if pe, ok := err.(*os.PathError); ok {
		err = pe.Err
	}
	return fmt.Errorf("--output %s: %w", path, err)
}

// loadAndWriteInventory runs the inventory (or reads --inventory) and
// writes it. JSON from DNS goes through a dnscheck.Spill next to the
// output file, so that neither the inventory nor its document is ever
// whole in memory; done is called when the lookups are over. The
// inventory returned has the counts, but for JSON from DNS no Names and
// Domains.
func loadAndWriteInventory(ctx context.Context, g *globals, in *inventoryInput, args []string, done func()) (*model.Inventory, error) {
	if g.Format == "jsonl" {
		return writeInventoryJSONL(ctx, g, in, args, done)
	}
	if g.Format != "json" || in.InventoryFile != "" {
		inv, err := in.load(ctx, g, args)
		done()
		if err != nil {
			return nil, err
		}
		return inv, writeInventory(g, inv)
	}
	dir := "" // the system's temporary directory
	if g.Output != "" && g.Output != "-" && !inPlace(g.Output) {
		dir = filepath.Dir(g.Output)
	}
	inv, sp, err := in.loadSpilled(ctx, g, args, dir)
	done()
	if err != nil {
		return nil, err
	}
	defer sp.Close()
	w, commit, abort, err := g.streamOutput()
	if err != nil {
		return nil, err
	}
	defer abort()
	if err := writeInventoryJSONFrom(w, inv, sp.EachName, sp.EachDomain); err != nil {
		return nil, fmt.Errorf("write the inventory: %w", err)
	}
	return inv, commit()
}

// writeInventory writes inv in g.Format to the output, as it is encoded.
func writeInventory(g *globals, inv *model.Inventory) error {
	w, commit, abort, err := g.streamOutput()
	if err != nil {
		return err
	}
	defer abort()
	if g.Format == "json" {
		err = writeInventoryJSON(w, inv)
	} else {
		bw := bufio.NewWriter(w)
		writeInventoryText(bw, inv)
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("write the inventory: %w", err)
	}
	return commit()
}
