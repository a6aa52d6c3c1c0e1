// Package model holds the versioned JSON documents that certplan's stages
// read and write: the [Inventory] (names clients use, from DNS), the
// [ProbeReport] (what each IP, port and SNI serves), and the [Plan] (the
// certificates that make every name verify).
//
// Each stage can run alone and be inspected by a person, so these types are
// the contract between stages and with scripts: fields are only ever added,
// never renamed; a breaking change bumps the document's Version. Every slice
// is sorted by the stage that writes it so documents are byte-stable.
//
// The package has no logic beyond small helpers on the types; it performs no
// I/O except [ReadFile], [ReadInventory] (a large inventory a name at a
// time, see inventory_read.go) and [WriteFile], used by the commands.
package model

// Document kinds, written into every document's "kind" field.
const (
	KindInventory = "certplan.inventory"
	KindProbe     = "certplan.probe"
	KindPlan      = "certplan.plan"
)

// Version of every document written by this build.
const Version = 1

// Header starts every document.
type Header struct {
	Kind    string `json:"kind"`
	Version int    `json:"version"`
	// GeneratedAt is RFC 3339 UTC. Pure stages take it as an input.
	GeneratedAt string `json:"generated_at,omitempty"`
}

// Roles a name can have for a hosted domain. A name's roles are the union over
// every domain that uses it.
const (
	RoleMX           = "mx"
	RoleSubmission   = "submission"   // _submission._tcp SRV target (RFC 6186)
	RoleSubmissions  = "submissions"  // _submissions._tcp SRV target (RFC 8314)
	RoleIMAP         = "imap"         // _imap._tcp SRV target, or imap.D
	RoleIMAPS        = "imaps"        // _imaps._tcp SRV target
	RolePOP3         = "pop3"         // _pop3._tcp SRV target, or pop.D
	RolePOP3S        = "pop3s"        // _pop3s._tcp SRV target
	RoleAutodiscover = "autodiscover" // _autodiscover._tcp SRV target, or autodiscover.D
	RoleAutoconfig   = "autoconfig"   // autoconfig.D
	RoleMail         = "mail"         // mail.D
	RoleSMTP         = "smtp"         // smtp.D
	RoleMTASTS       = "mta-sts"      // mta-sts.D, when _mta-sts.D has a TXT record
	RoleServer       = "server"       // the server's own hostname (--include, --hostname)
)

// RolePriority orders roles by how much a client without SNI depends on the
// name: the planner fills an IP's default certificate in this order when not
// every name fits. Lower is more important.
var RolePriority = map[string]int{
	RoleServer:       0,
	RoleMX:           1,
	RoleSubmission:   2,
	RoleSubmissions:  2,
	RoleSMTP:         2,
	RoleIMAP:         3,
	RoleIMAPS:        3,
	RoleMail:         3,
	RolePOP3:         4,
	RolePOP3S:        4,
	RoleAutodiscover: 5,
	RoleAutoconfig:   5,
	RoleMTASTS:       6,
}

// Here says whether a name's addresses are this server's.
const (
	HereAll  = "all"  // every address is a server IP
	HereSome = "some" // some are, some are not (HTTP-01 may reach the other)
	HereNone = "none" // none are, or the name has no address
)
