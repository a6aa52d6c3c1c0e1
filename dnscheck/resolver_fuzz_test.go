package dnscheck

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"strings"
	"testing"

	"github.com/certplan/certplan/examples/lab/zones"
	"github.com/miekg/dns"
)

// The fuzz targets of the resolver's own packet code: the query it writes
// (packQuery, packName) and the replies it reads (sameQuestion,
// parseReply, unpackAddr, skipRR), checked against miekg/dns.
//
//	go test -run XXX -fuzz FuzzParseReply -fuzztime 150s -parallel 1 ./dnscheck/

// labReply is a seed: a reply of the lab's DNS without its question, which
// the fuzz function writes back from the query (the question is what
// matchReply checks before parsing).
type labReply struct {
	qname string
	qtype uint16
	rest  []byte // header, then the sections after the question
}

// labReplies builds, from the lab's zone files, the reply to every name and
// type they hold, as a server writes it (compressed, EDNS0 OPT in the
// additional section), and a few shapes the parser must handle: an error
// rcode with a SOA in the authority section, an extended rcode, the TC bit,
// fewer records than counted.
func labReplies(tb testing.TB) []labReply {
	type key struct {
		name string
		typ  uint16
	}
	sets := map[key][]dns.RR{}
	var order []key
	files, err := fs.Glob(zones.FS, "*.db")
	if err != nil {
		tb.Fatal(err)
	}
	for _, file := range files {
		b, err := fs.ReadFile(zones.FS, file)
		if err != nil {
			tb.Fatal(err)
		}
		zp := dns.NewZoneParser(bytes.NewReader(b), "", file)
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			k := key{strings.ToLower(rr.Header().Name), rr.Header().Rrtype}
			if sets[k] == nil {
				order = append(order, k)
			}
			sets[k] = append(sets[k], rr)
		}
		if err := zp.Err(); err != nil {
			tb.Fatalf("%s: %v", file, err)
		}
	}
	var out []labReply
	add := func(m *dns.Msg) {
		w, err := m.Pack()
		if err != nil {
			tb.Fatal(err)
		}
		q := m.Question[0]
		qlen := dns.Len(&dns.RR_Header{Name: q.Name}) - 10 + 4 // name, type, class
		rest := append(append([]byte{}, w[:12]...), w[12+qlen:]...)
		out = append(out, labReply{q.Name, q.Qtype, rest})
	}
	reply := func(name string, qtype uint16, rrs []dns.RR) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Response, m.RecursionAvailable, m.Compress = true, true, true
		m.Answer = rrs
		m.SetEdns0(1232, false)
		return m
	}
	for _, k := range order {
		add(reply(k.name, k.typ, sets[k]))
	}
	// A CNAME and its target's addresses, as a recursive resolver answers.
	for _, k := range order {
		if k.typ != dns.TypeCNAME {
			continue
		}
		rrs := append([]dns.RR{}, sets[k]...)
		target := strings.ToLower(rrs[0].(*dns.CNAME).Target)
		rrs = append(rrs, sets[key{target, dns.TypeA}]...)
		add(reply(k.name, dns.TypeA, rrs))
	}
	m := reply("nothing.domain2.test.", dns.TypeA, nil)
	m.Rcode = dns.RcodeNameError
	m.Ns = sets[key{"domain2.test.", dns.TypeSOA}]
	add(m)
	// A validated NODATA for a TLSA question: AD set, the SOA's TTL read
	// (the DO bit's question); and a validated TLSA answer.
	m = reply("_25._tcp.mail.domain2.test.", dns.TypeTLSA, nil)
	m.AuthenticatedData = true
	m.Ns = sets[key{"domain2.test.", dns.TypeSOA}]
	add(m)
	tlsa, err := dns.NewRR("_25._tcp.mail.domain2.test. 300 IN TLSA 3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6")
	if err != nil {
		tb.Fatal(err)
	}
	m = reply("_25._tcp.mail.domain2.test.", dns.TypeTLSA, []dns.RR{tlsa})
	m.AuthenticatedData = true
	add(m)
	m = reply("domain2.test.", dns.TypeMX, nil)
	m.Rcode = dns.RcodeBadVers // 16: the high bits in the OPT record
	add(m)
	m = reply("domain2.test.", dns.TypeMX, nil)
	m.Truncated = true
	add(m)
	m = reply("mail.domain2.test.", dns.TypeA, sets[key{"mail.domain2.test.", dns.TypeA}])
	add(m)
	short := out[len(out)-1]
	short.rest = append([]byte{}, short.rest...)
	binary.BigEndian.PutUint16(short.rest[6:], 3) // three counted, one there
	out = append(out, short)
	return out
}

// withQuestion writes the question of the query q (ending at qend) into
// rest, a reply's header and sections after its question, and marks it a
// reply to a standard query with one question, so that it gets past
// sameQuestion as a server's reply to q would.
func withQuestion(q []byte, qend int, rest []byte) []byte {
	if len(rest) < 12 {
		return nil
	}
	m := make([]byte, 0, len(rest)+qend)
	m = append(m, rest[:12]...)
	m[2] = m[2]&^0x78 | 0x80 // QR, opcode QUERY
	binary.BigEndian.PutUint16(m[4:], 1)
	m = append(m, q[12:qend]...)
	return append(m, rest[12:]...)
}

func FuzzParseReply(f *testing.F) {
	for _, s := range labReplies(f) {
		f.Add(s.qname, s.qtype, s.rest)
	}
	wbuf := make([]byte, 512)
	f.Fuzz(func(t *testing.T, qname string, qtype uint16, rest []byte) {
		fqdn := canonical(qname)
		q, qend, err := packQuery(wbuf, fqdn, qtype, 1232)
		if err != nil {
			return
		}
		// The owner unpackAddr gives A and AAAA records is fqdn as asked;
		// miekg/dns gives the name in the reply. They agree (without
		// regard to case) for names in the presentation form that
		// miekg/dns writes, which canonical names from package names are.
		if got, _, err := dns.UnpackDomainName(q, 12); err != nil || !strings.EqualFold(got, fqdn) {
			return
		}
		// rest as a whole message: the question check must not panic, and
		// a message that passes it is parsed as one.
		if len(rest) >= 12 && sameQuestion(q, rest) {
			checkReply(t, rest, qend, fqdn, dnssecOK(qtype))
		}
		if msg := withQuestion(q, qend, rest); msg != nil {
			if !sameQuestion(q, msg) {
				t.Fatalf("sameQuestion rejects the query's own question in %x", msg)
			}
			checkReply(t, msg, qend, fqdn, dnssecOK(qtype))
		}
	})
}

// checkReply parses msg as parseReply does for Query (the answer section
// only) and for Exchange (the whole message), and compares both with
// miekg/dns.
func checkReply(t *testing.T, msg []byte, qend int, fqdn string, dnssec bool) {
	rep := parseReply(msg, qend, fqdn, false, dnssec)
	whole := parseReply(msg, qend, fqdn, true, dnssec)
	if rep.tc != (msg[2]&0x02 != 0) || whole.tc != rep.tc {
		t.Fatalf("TC bit: parsed %v and %v, header says %v", rep.tc, whole.tc, msg[2]&0x02 != 0)
	}
	if rep.ad != (msg[3]&0x20 != 0) && !rep.malformed {
		t.Fatalf("AD bit: parsed %v, header says %v", rep.ad, msg[3]&0x20 != 0)
	}
	if rep.tc {
		return // the caller asks again over TCP; nothing else is read
	}
	var m dns.Msg
	uerr := m.Unpack(msg)
	if (uerr != nil) != whole.malformed {
		t.Fatalf("whole message: malformed=%v, miekg/dns says %v", whole.malformed, uerr)
	}
	if rep.err != nil && !rep.malformed {
		t.Fatalf("parse error %v not marked malformed", rep.err)
	}
	if !rep.malformed {
		// Every answer parseReply returns is the record miekg/dns reads
		// there, the A/AAAA shortcut included.
		want, err := answerSection(msg, qend)
		if err != nil {
			t.Fatalf("parseReply read the answer section that miekg/dns rejects: %v", err)
		}
		sameRRs(t, "answer section", rep.answer, want)
	}
	if uerr != nil {
		return
	}
	if rep.malformed {
		t.Fatalf("parseReply: %v; miekg/dns unpacks the message", rep.err)
	}
	sameRRs(t, "Msg.Answer", rep.answer, m.Answer)
	if rep.ad != m.AuthenticatedData || whole.ad != m.AuthenticatedData {
		t.Fatalf("AD bit: parsed %v and %v, miekg/dns %v", rep.ad, whole.ad, m.AuthenticatedData)
	}
	if want := soaTTL(&m, dnssec); rep.negTTL != want || whole.negTTL != want {
		t.Fatalf("SOA TTL: parsed %d and %d, miekg/dns %d", rep.negTTL, whole.negTTL, want)
	}
	if whole.rcode != m.Rcode {
		t.Fatalf("whole message: rcode %d, miekg/dns %d", whole.rcode, m.Rcode)
	}
	// RFC 6891 §6.1.1: one OPT record, its owner the root (written as a
	// zero byte). miekg/dns takes the extended rcode from any OPT record;
	// parseReply only from those, so the header's four bits are all that
	// is compared for other messages.
	if rep.rcode&0xf != m.Rcode&0xf || wellFormedOPT(msg, qend) && rep.rcode != m.Rcode {
		t.Fatalf("rcode %d, miekg/dns %d", rep.rcode, m.Rcode)
	}
}

// wellFormedOPT reports whether the message holds at most one OPT record,
// owned by the root written out, the only form servers send.
func wellFormedOPT(msg []byte, qend int) bool {
	n := 0
	for off := qend; off < len(msg); {
		rr, next, err := dns.UnpackRR(msg, off)
		if err != nil || next <= off {
			break
		}
		if rr.Header().Rrtype == dns.TypeOPT {
			if n++; msg[off] != 0 {
				return false
			}
		}
		off = next
	}
	return n <= 1
}

// answerSection reads the answer section with dns.UnpackRR the way
// miekg/dns does: stopping early at the end of the message.
func answerSection(msg []byte, qend int) ([]dns.RR, error) {
	an := int(binary.BigEndian.Uint16(msg[6:]))
	off := qend
	var out []dns.RR
	for range an {
		if off == len(msg) {
			break
		}
		rr, next, err := dns.UnpackRR(msg, off)
		if err != nil {
			return nil, err
		}
		off = next
		out = append(out, rr)
	}
	return out, nil
}

func sameRRs(t *testing.T, what string, got, want []dns.RR) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, miekg/dns %d", what, len(got), len(want))
	}
	for i := range got {
		if g, w := got[i].String(), want[i].String(); !strings.EqualFold(g, w) {
			t.Fatalf("%s record %d:\n got %s\nwant %s", what, i, g, w)
		}
		if g, w := got[i].Header().Rdlength, want[i].Header().Rdlength; g != w {
			t.Fatalf("%s record %d: rdlength %d, miekg/dns %d", what, i, g, w)
		}
	}
}

// FuzzPackQuery checks the query the resolver writes: packName's fast path
// writes what dns.PackDomainName writes, and miekg/dns reads the query back
// as one question for the name and type, RD set, with an OPT record
// advertising the buffer size.
func FuzzPackQuery(f *testing.F) {
	for _, s := range labReplies(f) {
		f.Add(s.qname, s.qtype, uint16(1232))
	}
	f.Add("xn--bcher-kva.test.", dns.TypeMX, uint16(512))
	f.Add(`a\.b.example.test.`, dns.TypeTXT, uint16(4096))
	f.Add(strings.Repeat("a", 63)+"."+strings.Repeat("b", 63)+"."+strings.Repeat("c", 63)+"."+strings.Repeat("d", 61)+".", dns.TypeA, uint16(1232))
	wbuf := make([]byte, 512)
	f.Fuzz(func(t *testing.T, name string, qtype, size uint16) {
		fqdn := canonical(name) // as Query and Exchange pass it
		ref := make([]byte, 512)
		if off, ok := packName(wbuf, 12, fqdn); ok {
			roff, err := dns.PackDomainName(fqdn, ref, 12, nil, false)
			if err != nil {
				t.Fatalf("packName wrote %q, dns.PackDomainName rejects it: %v", fqdn, err)
			}
			if !bytes.Equal(wbuf[12:off], ref[12:roff]) {
				t.Fatalf("packName(%q) = %x, dns.PackDomainName %x", fqdn, wbuf[12:off], ref[12:roff])
			}
		}
		q, qend, err := packQuery(wbuf, fqdn, qtype, size)
		if err != nil {
			return
		}
		var m dns.Msg
		if err := m.Unpack(q); err != nil {
			t.Fatalf("query for %q: miekg/dns: %v", fqdn, err)
		}
		if len(m.Question) != 1 || m.Question[0].Qtype != qtype || m.Question[0].Qclass != dns.ClassINET ||
			!m.RecursionDesired || m.Response || len(m.Answer)+len(m.Ns) != 0 {
			t.Fatalf("query for %q %d: %v", fqdn, qtype, &m)
		}
		roff, err := dns.PackDomainName(fqdn, ref, 12, nil, false)
		if err != nil {
			t.Fatalf("query for %q written; dns.PackDomainName: %v", fqdn, err)
		}
		if !bytes.Equal(q[12:qend-4], ref[12:roff]) {
			t.Fatalf("query for %q: name %x, dns.PackDomainName %x", fqdn, q[12:qend-4], ref[12:roff])
		}
		opt := m.IsEdns0()
		if opt == nil || len(m.Extra) != 1 || opt.UDPSize() != size || opt.Header().Name != "." {
			t.Fatalf("query for %q: additional section %v, want one OPT with size %d", fqdn, m.Extra, size)
		}
		// RFC 3225: DO for the DNSSEC questions alone, no other flag, EDNS version 0.
		if opt.Do() != dnssecOK(qtype) || opt.Version() != 0 || opt.ExtendedRcode() != 0 || opt.Hdr.Ttl&0x7fff != 0 {
			t.Fatalf("query for %q %d: OPT %v, want DO %v alone", fqdn, qtype, opt, dnssecOK(qtype))
		}
	})
}

// TestPackQueryNameTooLong: a name of more than 255 octets on the wire
// (RFC 1035 §3.1), such as _submissions._tcp under a 253-character domain,
// is not sent: dns.PackDomainName writes it, and no server can read it.
func TestPackQueryNameTooLong(t *testing.T) {
	l := strings.Repeat("a", 63)
	for _, tc := range []struct {
		fqdn string
		ok   bool
	}{
		{l + "." + l + "." + l + "." + strings.Repeat("a", 61) + ".", true}, // 255 octets
		{l + "." + l + "." + l + "." + l + ".", false},                      // 257
		{"_submissions._tcp." + l + "." + l + "." + l + "." + strings.Repeat("a", 57) + ".", false},
	} {
		_, _, err := packQuery(make([]byte, 512), tc.fqdn, dns.TypeSRV, 1232)
		if (err == nil) != tc.ok {
			t.Errorf("packQuery(%d characters): %v, want ok %v", len(tc.fqdn), err, tc.ok)
		}
	}
}
