// Package sources reads the hosted domains from the files a mail or hosting
// server keeps for itself, so that an admin need not write a domain list.
//
// Each source is a function of a root directory ("/" on the server, a
// fixture tree in tests) returning a [Result]: the domains, each with the
// source that named it ("cpanel:/etc/userdomains"), the problems with the
// input as [InputError]s (file and line), the domains deliberately left
// out ([Skipped]), and, for cPanel, the document roots and their owners.
//
// # Errors cost only what is bad
//
// A source never fails as a whole because of one bad line: a line that
// does not parse is an InputError naming the file and line, and the next
// line is read. A missing or unreadable file is an InputError with line 0,
// and the source's other files are read. What the command does with the
// errors (warn, exit 3, record them in the inventory's input_errors) is up
// to it. At most [maxErrorsPerFile] errors are kept per file, then one
// that counts the rest.
//
// # Sources
//
//   - [Cpanel]: /etc/userdomains ("domain: user"; the "*: nobody" line is
//     cPanel's own and skipped), /etc/localdomains (mail delivered here),
//     /etc/secondarymx (this server is a backup MX) and /etc/remotedomains
//     (mail delivered elsewhere: those domains are left out, as [Skipped]).
//     Document roots come from the YAML files /var/cpanel/userdata/USER/DOMAIN
//     (documentroot, user, servername, serveralias), the owners' uids from
//     the root's /etc/passwd.
//   - [DirectAdmin]: /etc/virtual/domains, one domain a line.
//   - [Postfix]: mydestination, virtual_mailbox_domains,
//     virtual_alias_domains and relay_domains of /etc/postfix/main.cf,
//     with "$name" expansion, following "/file" lists and the source text
//     of hash:, texthash:, lmdb:, btree:, cdb: and dbm: tables (see
//     postfix.go); a database table (mysql:, pgsql:, ldap:, ...) cannot be
//     listed and is an InputError saying to export the list.
//   - [Exim]: Debian's /etc/exim4/update-exim4.conf.conf (dc_other_hostnames
//     and dc_relay_domains), following the domain list files they name.
//   - [DomainList] (--domains) and [Zones] (--zones, such as /var/named).
//
// # Merging
//
// [Merge] lists a domain once: the first source that named it (in the order
// the command read them) is its Source, the others are its AlsoIn.
package sources
