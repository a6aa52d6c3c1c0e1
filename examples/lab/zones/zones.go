// Package zones holds the lab's DNS zones: a shared mail server
// (server.main-domain.test on 127.0.0.2 and 127.0.0.3) and its client domains,
// with the cases certplan must handle: the seed case (domain2.test), a CAA
// that forbids the CA (domain3.test), a null MX (nullmx.test), an IDN
// (bücher.test), a foreign autodiscover CNAME, a name partly elsewhere
// (client11), a name moved away (client13), a CNAME chain (client09), MTA-STS
// (client05), a wildcard record (client15), and a zone whose server fails
// (broken-dns.test). The zones are unsigned, so a TLSA record here would
// not be validated (with the lab DNS as resolver, of unknown DNSSEC status,
// which the planner treats as pinning the key: model.Name.DANEPin): none is
// published. The lab's signed zone, with TLSA, is internal/lab's
// DANEDomain, served by a dnssectest rig.
//
// Every file except foreign-provider.test.db is a hosted domain, as cPanel's
// /var/named/*.db would be.
package zones

import "embed"

// FS holds the zone files, named <origin>.db.
//
//go:embed *.db
var FS embed.FS

// Foreign lists zone files the lab serves that are not hosted domains.
var Foreign = []string{"foreign-provider.test.db"}

// Broken lists hosted domains whose DNS the lab makes fail (SERVFAIL).
var Broken = []string{"broken-dns.test"}
