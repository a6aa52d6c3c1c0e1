package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/certplan/certplan/internal/cli"
	"github.com/certplan/certplan/internal/lab"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/monitor"
)

// daneCert is the certificate served on the signed domain's MX (IP1's
// default certificate: mail.dane-lab.test points at IP1).
const daneCert = "default-" + lab.IP1

var nextKeyRecord = regexp.MustCompile(`(?m)TLSA 3 1 1 ([0-9a-f]{64}) ; next key: add$`)

// runDANE is the lab's DANE part (issue 18): a signed client domain whose
// MX key gets a "3 1 1" TLSA record, a renewal that keeps the pinned key,
// and a staged rollover from begin to finish, the clock moved with
// CERTPLAN_NOW over the two TTLs a rollover waits. Without nsd, unbound
// and ldnsutils it says so in one line and returns.
func (p *pipeline) runDANE() error {
	l := p.lab
	if l.DANE == nil {
		fmt.Fprintf(p.out, "\n-- DANE part skipped: %v; apt-get install nsd unbound ldnsutils to see a signed zone and a key rollover\n", l.DANESkipped)
		return nil
	}
	t0 := time.Now().UTC().Truncate(time.Second)
	p.at(t0)
	fmt.Fprintf(p.out, "\n-- DANE (RFC 7672): a customer whose zone is signed signs up: %s, served by NSD (signed with\n"+
		"   ldns-signzone, TTL %ds); certplan and the CA ask a validating unbound (%s) that answers for every lab zone\n",
		lab.DANEDomain, lab.DANETTL, l.DANE.Resolver)
	if err := l.AddDANEClient(); err != nil {
		return err
	}
	p.certplan("renew: "+lab.DANEMX+" joins "+daneCert+"; no TLSA record yet, so no key is pinned", p.applyArgs("renew", "--no-jitter")...)
	cur, err := p.publish("the customer publishes a \"3 1 1\" record of the key served on " + lab.DANEMX)
	if err != nil {
		return err
	}
	if err := p.tlsaState("inventory: the MX's TLSA record, validated by the resolver"); err != nil {
		return err
	}
	// A forced renewal: the plan keeps the key ("key": "keep"), which a
	// plan without the state (certplan plan) cannot show, as it holds
	// no key: it leaves the pinned name out.
	p.certplan("issue --force: a renewal keeps the key the TLSA record pins", p.applyArgs("issue", "--force")...)
	if err := p.servedKey("after the forced renewal", cur); err != nil {
		return err
	}
	rollover := []string{"--state-dir", p.path("state"), "--resolver", l.Resolver()}
	p.certplan("rollover begin: the next key, and the records to publish (zone-file syntax)", append([]string{"rollover", "begin", daneCert}, rollover...)...)
	m := nextKeyRecord.FindStringSubmatch(p.last)
	if m == nil {
		return fmt.Errorf("rollover begin printed no next-key record")
	}
	if _, err := p.publish("the customer publishes the next key's record beside the current one", cur, m[1]); err != nil {
		return err
	}
	return p.daneSwitch(t0, cur, m[1], rollover)
}

// daneSwitch is the rollover's second half: status and a renewal while
// the two TTLs run (the key stays), the renewal after them (the switch),
// finish, and check's DANE verdict.
func (p *pipeline) daneSwitch(t0 time.Time, cur, next string, rollover []string) error {
	t1 := t0.Add(time.Minute)
	p.at(t1)
	fmt.Fprintf(p.out, "\n-- a minute later (CERTPLAN_NOW=%s)\n", t1.Format(time.RFC3339))
	p.certplan("rollover status: the next key's record is seen; the switch waits two TTLs", append([]string{"rollover", "status"}, rollover...)...)
	p.certplan("renew (from cron) before two TTLs: nothing is due, the key stays", p.applyArgs("renew", "--no-jitter")...)
	if err := p.servedKey("before two TTLs", cur); err != nil {
		return err
	}
	t2 := t1.Add(2 * lab.DANETTL * time.Second)
	p.at(t2)
	fmt.Fprintf(p.out, "\n-- two TTLs later (CERTPLAN_NOW=%s)\n", t2.Format(time.RFC3339))
	p.certplan("renew (from cron): the next key's record has been validated for two TTLs: switch", p.applyArgs("renew", "--no-jitter")...)
	if err := p.servedKey("after the switch", next); err != nil {
		return err
	}
	p.certplan("rollover finish: the records to remove", append([]string{"rollover", "finish"}, rollover...)...)
	if _, err := p.publish("the customer removes the old key's record", next); err != nil {
		return err
	}
	if err := p.tlsaState("inventory again, for check"); err != nil {
		return err
	}
	check := []string{"check", "--state-dir", p.path("state"), "--inventory", p.path("inventory-dane.json"),
		"--ports", p.lab.Mail.PortsFlag(), "--ca-file", p.lab.TrustFile}
	p.certplan("check --inventory: the served key against the validated TLSA records (DANE) of the MX", check...)
	return p.daneVerdicts(append(check, "--format", "json", "-o", p.path("check-dane.json")))
}

// tlsaState runs the inventory of the signed domain as a stage, saves it
// as JSON (check --inventory reads it) and prints what the JSON says of
// the MX's TLSA records, which the text output leaves out.
func (p *pipeline) tlsaState(title string) error {
	inv := p.path("inventory-dane.json")
	p.certplan(title, append([]string{"inventory", lab.DANEDomain}, p.common()...)...)
	if err := p.save(append([]string{"inventory", lab.DANEDomain, "--format", "json", "-o", inv}, p.common()...)...); err != nil {
		return err
	}
	var doc model.Inventory
	if err := readJSON(inv, &doc); err != nil {
		return err
	}
	for _, n := range doc.Names {
		if n.Name != lab.DANEMX {
			continue
		}
		var recs []string
		for _, r := range n.TLSA {
			recs = append(recs, fmt.Sprintf("%d %d %d %.16s…", r.Usage, r.Selector, r.MatchingType, r.Data))
		}
		fmt.Fprintf(p.out, "-- its JSON (--format json): resolver_dnssec %s; %s: tlsa [%s], tlsa_dnssec %s, tlsa_ttl %d\n",
			doc.Resolver, n.Name, strings.Join(recs, ", "), n.TLSADNSSEC, n.TLSATTL)
	}
	return nil
}

// daneVerdicts runs check again as JSON and prints its DANE verdict of
// each MX endpoint (the text shows only the failures).
func (p *pipeline) daneVerdicts(args []string) error {
	var errw bytes.Buffer
	if code := cli.Run(p.ctx, args, strings.NewReader(""), io.Discard, &errw, p.getenv); code > int(monitor.Warning) {
		return fmt.Errorf("certplan check --format json: exit %d: %s", code, errw.String())
	}
	var r struct {
		Coverage []model.Coverage `json:"coverage"` // monitor.Result's
	}
	if err := readJSON(args[len(args)-1], &r); err != nil {
		return err
	}
	for _, c := range r.Coverage {
		if c.DANE != "" && c.DANE != "none" {
			fmt.Fprintf(p.out, "-- check's DANE verdict (JSON): %s on %s:%d (%s): dane %s (%s)\n", c.Name, c.IP, c.Port, c.Protocol, c.DANE, c.DANEDetail)
		}
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// at runs the following certplan commands at time t (CERTPLAN_NOW), with
// the signed zone's NSD as the authoritative server rollovers ask.
func (p *pipeline) at(t time.Time) {
	p.env = map[string]string{"CERTPLAN_NOW": t.Format(time.RFC3339), "CERTPLAN_AUTH_PORT": p.lab.DANEAuthPort()}
}

// publish makes the TLSA set at _25._tcp of the MX exactly hexes (the
// served key's when none is given) and prints it; it returns the served
// key.
func (p *pipeline) publish(what string, hexes ...string) (string, error) {
	served, err := p.lab.Mail.ServedSPKI(lab.IP1, lab.DANEMX)
	if err != nil {
		return "", err
	}
	if len(hexes) == 0 {
		hexes = []string{served}
	}
	if err := p.lab.PublishTLSA(hexes...); err != nil {
		return "", err
	}
	fmt.Fprintf(p.out, "\n-- %s; %s now has (signed):\n", what, lab.DANEDomain)
	for _, h := range hexes {
		fmt.Fprintf(p.out, "_25._tcp.%s. %d IN TLSA 3 1 1 %s\n", lab.DANEMX, lab.DANETTL, h)
	}
	return served, nil
}

// servedKey fails the lab when the key served on the MX is not want.
func (p *pipeline) servedKey(when, want string) error {
	got, err := p.lab.Mail.ServedSPKI(lab.IP1, lab.DANEMX)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%s: %s serves key %s, want %s", when, lab.DANEMX, got, want)
	}
	fmt.Fprintf(p.out, "-- %s, %s serves key %s…\n", when, lab.DANEMX, got[:16])
	return nil
}
