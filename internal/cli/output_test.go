package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certplan/certplan/model"
)

// TestOutputInPlace: -o onto a device, a named pipe or a symbolic link
// writes through it and leaves it what it was. The atomic write renames
// a new file over its target, which for these would replace the device,
// the pipe or the link itself: run as root, "-o /dev/null" once turned
// the machine's /dev/null into a regular file. The streamed output
// (inventory) and the buffered one (version) both.
func TestOutputInPlace(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.json")
	b, err := model.Marshal(&model.Inventory{Header: model.Header{Kind: model.KindInventory, Version: model.Version},
		ServerIPs: []string{"127.0.0.2"}, Names: []model.Name{}, Domains: []model.Domain{}})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(inv, b, 0o644)
	commands := map[string][]string{
		"version":   {"version", "--format", "json"},
		"inventory": {"inventory", "--inventory", inv, "--format", "json"},
	}
	run := func(t *testing.T, args []string, out string) {
		t.Helper()
		var errb bytes.Buffer
		if code := Run(context.Background(), append(args, "-o", out), strings.NewReader(""), io.Discard, &errb, func(string) string { return "" }); code != ExitOK {
			t.Fatalf("certplan %s -o %s: exit %d: %s", strings.Join(args, " "), out, code, errb.String())
		}
	}
	for name, args := range commands {
		t.Run(name+"/symlink", func(t *testing.T) {
			real, link := filepath.Join(dir, name+"-real.json"), filepath.Join(dir, name+"-link.json")
			os.WriteFile(real, []byte("old contents that are longer than what replaces them, to see the truncation\n"), 0o644)
			if err := os.Symlink(real, link); err != nil {
				t.Fatal(err)
			}
			run(t, args, link)
			if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("%s is no longer a symbolic link: %v %v", link, fi.Mode(), err)
			}
			got, _ := os.ReadFile(real)
			if !bytes.HasPrefix(got, []byte("{")) || bytes.Contains(got, []byte("old contents")) {
				t.Errorf("%s holds %q, want the output alone", real, got)
			}
		})
		t.Run(name+"/fifo", func(t *testing.T) {
			fifo := filepath.Join(dir, name+".fifo")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			read := make(chan []byte)
			go func() {
				f, err := os.Open(fifo)
				if err != nil {
					read <- nil
					return
				}
				b, _ := io.ReadAll(f)
				f.Close()
				read <- b
			}()
			run(t, args, fifo)
			select {
			case got := <-read:
				if !bytes.HasPrefix(got, []byte("{")) {
					t.Errorf("the pipe's reader got %q", got)
				}
			case <-time.After(10 * time.Second):
				// Its reader waits on a pipe no path leads to any more.
				t.Errorf("the pipe's reader got nothing in 10 s")
			}
			if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
				t.Errorf("%s is no longer a named pipe: %v %v", fifo, fi.Mode(), err)
			}
		})
		t.Run(name+"/device", func(t *testing.T) {
			null := filepath.Join(dir, name+".null")
			// A private null device (1, 3), so that a failure harms
			// nothing else; making one needs root.
			if err := syscall.Mknod(null, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
				t.Skipf("mknod (needs root): %v", err)
			}
			run(t, args, null)
			if fi, err := os.Lstat(null); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
				t.Errorf("%s is no longer a character device: %v %v", null, fi.Mode(), err)
			}
		})
	}
}
