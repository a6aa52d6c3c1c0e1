package cli

import (
	"strconv"
	"time"

	"github.com/certplan/certplan/internal/pebbletest"
	"github.com/certplan/certplan/store"
	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	scriptCmds["acmecount"] = scriptACMECount
	scriptCmds["acmefail"] = scriptACMEFail
}

// labCA is the Pebble that labenv started for ts.
func labCA(ts *testscript.TestScript, cmd string) *pebbletest.CA {
	scriptStartMu.Lock()
	defer scriptStartMu.Unlock()
	ca, ok := scriptPebble[ts]
	if !ok {
		ts.Fatalf("%s: run labenv first", cmd)
	}
	return ca
}

// scriptACMECount checks how many requests of a kind labenv's Pebble has
// received so far:
//
//	acmecount accounts N    newAccount requests (registrations)
//	acmecount orders N      newOrder requests
func scriptACMECount(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: acmecount accounts|orders N")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	ca := labCA(ts, "acmecount")
	var got int
	switch args[0] {
	case "accounts":
		got = ca.NewAccounts()
	case "orders":
		got = len(ca.Orders())
	default:
		ts.Fatalf("usage: acmecount accounts|orders N")
	}
	if got != want {
		ts.Fatalf("acmecount: Pebble received %d %s requests, want %d", got, args[0], want)
	}
}

// scriptACMEFail makes labenv's Pebble answer the next N newOrder requests
// with a problem of TYPE (such as rateLimited), with Retry-After when a
// duration is given:
//
//	acmefail N TYPE [RETRY-AFTER]
func scriptACMEFail(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: acmefail N TYPE [RETRY-AFTER]")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	f := pebbletest.OrderFault{Type: args[1], Detail: "injected by the test: " + args[1]}
	if len(args) == 3 {
		f.RetryAfter, err = time.ParseDuration(args[2])
		ts.Check(err)
	}
	labCA(ts, "acmefail").FailOrders(n, f)
}

func init() {
	scriptCmds["acmerevoked"] = scriptACMERevoked
}

// scriptACMERevoked checks at labenv's Pebble that the certificate in a PEM
// file is revoked, with the reason code when given (! : not revoked):
//
//	acmerevoked CERT.pem [REASON-CODE]
func scriptACMERevoked(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 || neg && len(args) > 1 {
		ts.Fatalf("usage: [!] acmerevoked CERT.pem [REASON-CODE]")
	}
	leaf, err := store.ParseLeaf([]byte(ts.ReadFile(args[0])))
	ts.Check(err)
	revoked, reason := labCA(ts, "acmerevoked").Revoked(leaf.SerialNumber)
	switch {
	case neg && revoked:
		ts.Fatalf("acmerevoked: serial %x is revoked at Pebble", leaf.SerialNumber)
	case neg:
		return
	case !revoked:
		ts.Fatalf("acmerevoked: serial %x is not revoked at Pebble", leaf.SerialNumber)
	}
	if len(args) == 2 {
		want, err := strconv.Atoi(args[1])
		ts.Check(err)
		if reason != want {
			ts.Fatalf("acmerevoked: serial %x revoked with reason %d, want %d", leaf.SerialNumber, reason, want)
		}
	}
}
