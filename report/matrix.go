package report

// This file draws the name-by-port matrix of probe and verification
// results.

import (
	"cmp"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// MatrixCell is one (name, IP, port) of a name-by-port matrix: its two
// marks, with SNI then without.
type MatrixCell struct {
	Name, IP string
	// Extra is an optional column after the IP (the certificate id).
	Extra string
	Port  int
	Mark  string
}

// WriteMatrix prints one row per name and IP (cells sorted by name, IP,
// port) and one column per port, then the legend. extra is the header of
// the Extra column, "" for none. A port a row has no cell for shows ".".
func WriteMatrix(w io.Writer, extra string, cells []MatrixCell, legend string) {
	if len(cells) == 0 {
		return
	}
	var ports []int
	seen := map[int]bool{}
	for _, c := range cells {
		if !seen[c.Port] {
			seen[c.Port] = true
			ports = append(ports, c.Port)
		}
	}
	sort.Ints(ports)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"NAME", "IP"}
	if extra != "" {
		head = append(head, extra)
	}
	fmt.Fprint(tw, strings.Join(head, "\t"))
	for _, p := range ports {
		fmt.Fprintf(tw, "\t%d", p)
	}
	fmt.Fprintln(tw)
	for i := 0; i < len(cells); {
		j := i
		marks := map[int]string{}
		for ; j < len(cells) && cells[j].Name == cells[i].Name && cells[j].IP == cells[i].IP; j++ {
			marks[cells[j].Port] = cells[j].Mark
		}
		fmt.Fprintf(tw, "%s\t%s", cells[i].Name, cells[i].IP)
		if extra != "" {
			fmt.Fprintf(tw, "\t%s", cells[i].Extra)
		}
		for _, p := range ports {
			fmt.Fprintf(tw, "\t%s", cmp.Or(marks[p], "."))
		}
		fmt.Fprintln(tw)
		i = j
	}
	tw.Flush()
	fmt.Fprintln(w, legend)
}
