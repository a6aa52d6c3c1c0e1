package cli

// The work of `certplan rollover begin|status|finish` (rollover.go).

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/apply"
	"github.com/certplan/certplan/dane"
	"github.com/certplan/certplan/rollover"
	"github.com/certplan/certplan/store"
)

// rolloverRun is what begin and finish work with: the DNS observer, the
// publisher (nil without --dane-publish), the open store (closed by the
// caller) and the certificate IDs (args, or every certificate).
type rolloverRun struct {
	obs *rollover.Observer
	pub *rollover.Publisher
	st  *store.Store
	ids []string
}

// setup checks the output format and opens what begin and finish need.
func (o *rolloverOptions) setup(g *globals, args []string) (*rolloverRun, error) {
	if err := g.checkFormat("text", "json"); err != nil {
		return nil, err
	}
	obs, err := rolloverObserver(g)
	if err != nil {
		return nil, err
	}
	pub, err := o.publisher(g)
	if err != nil {
		return nil, err
	}
	st, err := o.open()
	if err != nil {
		return nil, err
	}
	ids, err := rolloverIDs(st, args)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &rolloverRun{obs: obs, pub: pub, st: st, ids: ids}, nil
}

func (o *rolloverOptions) begin(ctx context.Context, g *globals, args []string) error {
	return o.each(g, args, "; no certificate has a name whose TLSA records pin its key: no rollover needed",
		func(rs *rolloverRun, id string, named bool) (*stepOut, error) {
			return o.beginOne(ctx, g, rs.st, rs.obs, rs.pub, id, named)
		})
}

// stepOut is what begin or finish did for one certificate: the records
// to publish or remove, printed as zone-file lines with ";" comments, or
// as JSON with --format json.
type stepOut struct {
	ID   string `json:"id"`
	Step string `json:"step"` // "begin" or "finish"
	// Note, alone, says why nothing was done for a certificate named on
	// the command line.
	Note       string    `json:"note,omitempty"`
	KeyType    string    `json:"key_type,omitempty"`
	StagedAt   time.Time `json:"staged_at,omitzero"`
	SwitchedAt time.Time `json:"switched_at,omitzero"`
	// Published is the RFC 2136 server that took the records (added by
	// begin, removed by finish) with --dane-publish.
	Published string       `json:"rfc2136_server,omitempty"`
	Records   []stepRecord `json:"records,omitempty"`
	Warnings  []string     `json:"warnings,omitempty"`
	// TTL is the records' TTL; begin's switch waits two of them.
	TTL uint32 `json:"ttl,omitempty"`
	// Over: finish found no old record on any authoritative server.
	Over bool `json:"over,omitempty"`
}

// stepRecord is one TLSA record and what to do with it.
type stepRecord struct {
	rollover.Record
	Owner  string `json:"owner"`
	Text   string `json:"record"` // zone-file syntax
	Key    string `json:"key"`    // "current", "next" or "old"
	Action string `json:"action"` // "keep", "add" or "remove"
}

func (out *stepOut) add(rs []rollover.Record, key, action string) {
	for _, r := range rs {
		out.Records = append(out.Records, stepRecord{Record: r, Owner: r.Owner(), Text: r.String(), Key: key, Action: action})
	}
}

// each runs one (beginOne, finishOne) for every certificate of args,
// under one setup and one output, and prints none when no certificate
// was asked for by ID and one did nothing.
func (o *rolloverOptions) each(g *globals, args []string, none string, one func(rs *rolloverRun, id string, named bool) (*stepOut, error)) error {
	rs, err := o.setup(g, args)
	if err != nil {
		return err
	}
	defer rs.st.Close()
	outs := []*stepOut{}
	for _, id := range rs.ids {
		out, err := one(rs, id, len(args) > 0)
		if err != nil {
			return err
		}
		if out != nil {
			outs = append(outs, out)
		}
	}
	if g.Format == "json" {
		return writeRollovers(g, outs)
	}
	w, commit := g.output()
	did := 0
	for _, out := range outs {
		if out.Note == "" {
			did++
		}
		writeStep(w, out)
	}
	if did == 0 && len(args) == 0 {
		fmt.Fprintln(w, none)
	}
	return commit()
}

// writeStep prints out as zone-file lines with ";" comments.
func writeStep(w io.Writer, out *stepOut) {
	if out.Note != "" {
		fmt.Fprintf(w, "; %s: %s\n", out.ID, out.Note)
		return
	}
	if out.Step == "finish" {
		writeFinish(w, out)
		return
	}
	fmt.Fprintf(w, "; %s: next key (%s) staged at %s\n", out.ID, out.KeyType, fmtTime(out.StagedAt))
	if out.Published != "" {
		fmt.Fprintf(w, "; published the next key's records through RFC 2136 at %s:\n", out.Published)
	} else {
		fmt.Fprintln(w, "; publish the next key's records beside the current ones (keep those):")
	}
	writeRecords(w, out.Records)
	for _, warn := range out.Warnings {
		fmt.Fprintf(w, "; warning: %s\n", warn)
	}
	fmt.Fprintf(w, "; then \"certplan rollover status %s\" says when they are validated, on every authoritative\n", out.ID)
	fmt.Fprintf(w, "; server and two TTLs (%s) old; \"certplan renew\" then switches to the next key\n", 2*time.Duration(out.TTL)*time.Second)
}

// writeFinish prints finish's out.
func writeFinish(w io.Writer, out *stepOut) {
	fmt.Fprintf(w, "; %s: switched to the next key at %s\n", out.ID, fmtTime(out.SwitchedAt))
	if out.Published != "" {
		fmt.Fprintf(w, "; removed the old key's records through RFC 2136 at %s:\n", out.Published)
	} else {
		fmt.Fprintln(w, "; remove the old key's records:")
	}
	var remove, keep []stepRecord
	for _, r := range out.Records {
		if r.Action == "remove" {
			remove = append(remove, r)
		} else {
			keep = append(keep, r)
		}
	}
	writeRecords(w, remove)
	fmt.Fprintln(w, "; keep the current key's records:")
	writeRecords(w, keep)
	if out.Over {
		fmt.Fprintln(w, "; no authoritative server serves an old record any more: the rollover is over")
	} else {
		fmt.Fprintf(w, "; an authoritative server still serves an old record: run \"certplan rollover finish %s\" again once they are removed\n", out.ID)
	}
}

// beginOne stages id's next key and says which records to publish; a
// certificate that nothing pins is skipped (with a note when it was
// named).
func (o *rolloverOptions) beginOne(ctx context.Context, g *globals, st *store.Store, obs *rollover.Observer, pub *rollover.Publisher, id string, named bool) (*stepOut, error) {
	cur, err := st.LoadCert(id)
	if err != nil {
		return nil, withHint(fmt.Errorf("certificate %s: %w", id, err), `"certplan certificates" lists the certificates issued`)
	}
	nk, err := o.stage(ctx, st, obs, cur, g.Now())
	if errors.Is(err, errNothingPinned) {
		if named {
			return &stepOut{ID: id, Step: "begin", Note: fmt.Sprintf("no name carries TLSA records that pin its key (%s): its key may change without a rollover", strings.Join(cur.Meta.Names, ", "))}, nil
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ttl := cmpTTL(nk.TTL)
	next := rollover.Records(nk.Names, ttl, nk.SPKISHA256)
	out := &stepOut{ID: id, Step: "begin", KeyType: nk.KeyType, StagedAt: nk.CreatedAt.UTC(), TTL: ttl}
	if pub != nil {
		if err := publish(ctx, obs, pub, next, false); err != nil {
			return nil, fmt.Errorf("certificate %s: publish: %w", id, err)
		}
		if nk.PublishedAt.IsZero() {
			nk.PublishedAt = g.Now().UTC()
			if err := st.SaveNextKey(id, nk); err != nil {
				return nil, err
			}
		}
		out.Published = pub.Server
	}
	out.add(rollover.Records(nk.Names, ttl, cur.Meta.SPKISHA256), "current", "keep")
	out.add(next, "next", "add")
	out.Warnings = untrusted(ctx, obs, nk.Names, cur, g.Now())
	return out, nil
}

var errNothingPinned = errors.New("nothing pinned")

// untrusted says, for each of the pinned entries (hosts, or
// _465._tcp.<host> owners) whose TLSA records the resolver returns, when
// none of them matches the certificate served now (RFC 6698 and RFC 7671
// rules, package dane): DANE senders fail on it already, and the
// "current key: keep" records above are not published yet (or the name's
// records pin a key that is not certplan's).
func untrusted(ctx context.Context, obs *rollover.Observer, entries []string, cur *store.Cert, now time.Time) []string {
	chain, err := apply.ParseChain(append(append([]byte{}, cur.CertPEM...), cur.ChainPEM...))
	if err != nil {
		return []string{fmt.Sprintf("%s: the current certificate could not be read (%v): its records were not checked", cur.ID, err)}
	}
	var out []string
	for _, e := range entries {
		l := obs.LookupTLSA(ctx, e)
		if l.Err != "" || len(l.Records) == 0 {
			continue
		}
		host := rollover.Host(e)
		if ok, detail := dane.Match(chain, l.Records, host, now); !ok {
			out = append(out, fmt.Sprintf("%s: its records trust nothing of %s's current certificate (%s): DANE senders fail on %s today; publish the current key's record above as well, or find which key the records pin",
				strings.TrimSuffix(rollover.Owner(e), "."), cur.ID, detail, host))
		}
	}
	return out
}

// stage returns cur's staged next key, making it (for the names whose
// TLSA records pin cur's key) when none is; errNothingPinned when no name
// is pinned. A key staged without names (by revoke) gets them here, and
// a key without a TTL the one its zone gives the current records.
func (o *rolloverOptions) stage(ctx context.Context, st *store.Store, obs *rollover.Observer, cur *store.Cert, now time.Time) (*store.NextKey, error) {
	nk, err := st.LoadNextKey(cur.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if nk == nil || len(nk.Names) == 0 {
		pinned, _ := obs.PinnedNames(ctx, cur.Meta.Names)
		if len(pinned) == 0 {
			return nil, errNothingPinned
		}
		kt, err := keyTypeOr(o.keyType, cur.Meta.KeyType)
		if err != nil {
			return nil, err
		}
		if nk, _, err = rollover.Stage(st, cur.ID, string(kt), func() (crypto.Signer, error) { return acme.GenerateKey(kt) }, now); err != nil {
			return nil, err
		}
		nk.Names = pinned
	}
	if nk.TTL == 0 {
		for _, s := range obs.Observe(ctx, nk.Names, cur.Meta.SPKISHA256) {
			nk.TTL = max(nk.TTL, s.TTL)
		}
	}
	if err := st.SaveNextKey(cur.ID, nk); err != nil {
		return nil, err
	}
	return nk, nil
}

func cmpTTL(ttl uint32) uint32 {
	if ttl == 0 {
		return rollover.DefaultTTL
	}
	return ttl
}

func (o *rolloverOptions) status(ctx context.Context, g *globals, args []string) error {
	if err := g.checkFormat("text", "json"); err != nil {
		return err
	}
	obs, err := rolloverObserver(g)
	if err != nil {
		return err
	}
	// Recording what was seen needs the lock; without it (renew is
	// running, or a reader's view) status only shows.
	st, err := o.open()
	save := err == nil
	if err != nil {
		if st, err = store.OpenReadOnly(o.stateDir); err != nil {
			return withHint(err, "--state-dir must be readable")
		}
	}
	defer st.Close()
	ids, err := rolloverIDs(st, args)
	if err != nil {
		return err
	}
	all := []rollover.Status{} // [] in JSON, not null
	for _, id := range ids {
		s, err := rollover.StatusOf(ctx, obs, st, id, g.Now(), save)
		if err != nil {
			return fmt.Errorf("certificate %s: %w", id, err)
		}
		all = append(all, s)
	}
	return writeRolloverStatus(g, all)
}

// writeRollovers writes {"rollovers": list} as indented JSON: the
// output of begin, status and finish with --format json.
func writeRollovers(g *globals, list any) error {
	w, commit := g.output()
	b, err := json.MarshalIndent(map[string]any{"rollovers": list}, "", "  ")
	if err != nil {
		return err
	}
	w.Write(append(b, '\n'))
	return commit()
}

func writeRolloverStatus(g *globals, all []rollover.Status) error {
	if g.Format == "json" {
		return writeRollovers(g, all)
	}
	w, commit := g.output()
	if len(all) == 0 {
		fmt.Fprintln(w, "no certificate in the state directory")
	}
	for _, s := range all {
		fmt.Fprintf(w, "%s: %s\n", s.ID, statusLine(s))
	}
	return commit()
}

// statusLine says where s stands, for people.
func statusLine(s rollover.Status) string {
	switch s.State {
	case rollover.StateNone:
		return "no rollover"
	case rollover.StateSwitched:
		return fmt.Sprintf("switched to the next key at %s: remove the old key's records (certplan rollover finish %s)", fmtTime(s.SwitchedAt), s.ID)
	case rollover.StateReady:
		return fmt.Sprintf("ready: the next key's records are validated, on every authoritative server, and two TTLs old since %s; the next \"certplan renew\" switches to it", fmtTime(s.ReadyAt))
	case rollover.StateWaiting:
		return fmt.Sprintf("waiting until %s (two TTLs of %ds): the next key's records are validated and on %s since %s",
			fmtTime(s.ReadyAt), s.TTL, servers(s.Seen), fmtTime(s.FirstSeen))
	}
	return fmt.Sprintf("next key staged since %s; waiting for its records: %s", fmtTime(s.StagedAt), s.Waits)
}

// servers says on how many authoritative servers the records are.
func servers(seen []rollover.Seen) string {
	n, of := 0, 0
	for _, s := range seen {
		a, b := s.OnServers()
		n, of = n+a, of+b
	}
	return fmt.Sprintf("%d of %d authoritative servers", n, of)
}

func (o *rolloverOptions) finish(ctx context.Context, g *globals, args []string) error {
	return o.each(g, args, "; no certificate switched keys: nothing to finish",
		func(rs *rolloverRun, id string, named bool) (*stepOut, error) {
			return finishOne(ctx, rs.st, rs.obs, rs.pub, id, named)
		})
}

// finishOne says id's records to remove and keep (removing them with
// pub); a certificate without a switch is an error when named.
func finishOne(ctx context.Context, st *store.Store, obs *rollover.Observer, pub *rollover.Publisher, id string, named bool) (*stepOut, error) {
	rk, err := st.LoadRolledKey(id)
	if errors.Is(err, store.ErrNotFound) {
		if !named {
			return nil, nil
		}
		if _, nerr := st.LoadNextKey(id); nerr == nil {
			return nil, withHint(fmt.Errorf("certificate %s has not switched to its next key yet: the old key's records must stay", id),
				"\"certplan rollover status "+id+"\" says what the switch waits for; \"certplan renew\" switches once it is ready")
		}
		return nil, withHint(fmt.Errorf("certificate %s: no key rollover to finish", id), "\"certplan rollover begin "+id+"\" starts one")
	}
	if err != nil {
		return nil, err
	}
	out := &stepOut{ID: id, Step: "finish"}
	if pub != nil {
		if err := publish(ctx, obs, pub, rollover.Records(rk.Names, cmpTTL(rk.TTL), rk.OldSPKISHA256), true); err != nil {
			return nil, fmt.Errorf("certificate %s: remove: %w", id, err)
		}
		out.Published = pub.Server
	}
	f, err := rollover.Finish(ctx, obs, st, id, true)
	if err != nil {
		return nil, err
	}
	out.SwitchedAt, out.Over = f.SwitchedAt.UTC(), f.Gone
	out.add(f.Remove, "old", "remove")
	out.add(f.Keep, "current", "keep")
	return out, nil
}
