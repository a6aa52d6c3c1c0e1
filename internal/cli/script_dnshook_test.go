package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dnshookMain is what an admin's DNS-01 script for the exec provider does,
// as a program scripts can name in EXEC_PATH: "dnshook present|cleanup
// FQDN VALUE" adds or removes the TXT record with an RFC 2136 update to the
// server at $DNSHOOK_SERVER, in the zone $DNSHOOK_ZONE names for FQDN (the
// last two labels by default), and says what it did.
func dnshookMain() {
	if err := dnshook(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "dnshook:", err)
		os.Exit(1)
	}
}

func dnshook(args []string) error {
	if len(args) != 3 || (args[0] != "present" && args[0] != "cleanup") {
		return fmt.Errorf("usage: dnshook present|cleanup FQDN VALUE, got %q", args)
	}
	server := os.Getenv("DNSHOOK_SERVER")
	if server == "" {
		return fmt.Errorf("DNSHOOK_SERVER is not set")
	}
	fqdn := dns.Fqdn(args[1])
	labels := dns.SplitDomainName(fqdn)
	if len(labels) < 2 {
		return fmt.Errorf("%s: no zone", fqdn)
	}
	zone := dns.Fqdn(strings.Join(labels[len(labels)-2:], "."))
	rr, err := dns.NewRR(fmt.Sprintf("%s 60 IN TXT %q", fqdn, args[2]))
	if err != nil {
		return err
	}
	m := new(dns.Msg)
	m.SetUpdate(zone)
	if args[0] == "present" {
		m.Insert([]dns.RR{rr})
	} else {
		m.Remove([]dns.RR{rr})
	}
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 5 * time.Second}).Exchange(m, server)
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("update of %s: %s", zone, dns.RcodeToString[r.Rcode])
	}
	fmt.Printf("%s TXT %s\n", args[0], fqdn)
	return nil
}
