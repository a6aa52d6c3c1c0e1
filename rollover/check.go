package rollover

// This file ties the observation and the state machine to the store:
// staging a key, checking it, and what a finished switch leaves.

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/certplan/certplan/model"
	certnames "github.com/certplan/certplan/names"
	"github.com/certplan/certplan/store"
)

// Stage returns certificate id's staged next key, making one with
// newKey (of type keyType, such as acme.GenerateKey's) and storing it,
// under the caller's lock, when none is staged: a key is made once, so
// that its records stay the same from run to run.
func Stage(st *store.Store, id, keyType string, newKey func() (crypto.Signer, error), now time.Time) (nk *store.NextKey, made bool, err error) {
	nk, err = st.LoadNextKey(id)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return nk, false, err
	}
	key, err := newKey()
	if err != nil {
		return nil, false, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, err
	}
	spki, err := SPKIHash(key.Public())
	if err != nil {
		return nil, false, err
	}
	nk = &store.NextKey{KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), KeyType: keyType, SPKISHA256: spki, CreatedAt: now.UTC()}
	if err := st.SaveNextKey(id, nk); err != nil {
		return nil, false, fmt.Errorf("stage next key: %w", err)
	}
	return nk, true, nil
}

// PinnedNames are the entries of names ([Entries]: the host for port 25,
// "_465._tcp.<host>" and "_587._tcp.<host>" for the submission ports)
// whose TLSA records pin the key, or whose TLSA state cannot be known
// ([model.Name.DANEPin]), with why. Wildcard
// names are no SMTP server's name (an MX target is a host name).
func (o *Observer) PinnedNames(ctx context.Context, names []string) (pinned, why []string) {
	for _, n := range names {
		if certnames.IsWildcard(n) {
			continue
		}
		for _, e := range Entries(n) {
			l := o.LookupTLSA(ctx, e)
			if pin, reason := l.DANEPin(); pin == model.PinKey || pin == model.PinUnknown {
				pinned, why = append(pinned, l.Name), append(why, reason)
			}
		}
	}
	return pinned, why
}

// Check observes the records of certificate id's staged next key and
// steps the rollover ([Step]). A key staged without names (by `certplan
// revoke`) takes the certificate's pinned names first. With save, the
// key's new state is stored (the caller holds the lock). Without a staged
// key it returns store.ErrNotFound.
func Check(ctx context.Context, o *Observer, st *store.Store, id string, now time.Time, save bool) (Status, error) {
	nk, err := st.LoadNextKey(id)
	if err != nil {
		return Status{ID: id, State: StateNone}, err
	}
	cur, err := st.LoadCert(id)
	if err != nil {
		return Status{ID: id}, err
	}
	before := *nk
	if len(nk.Names) == 0 {
		nk.Names, _ = o.PinnedNames(ctx, cur.Meta.Names)
	}
	s, next := Step(*nk, o.Observe(ctx, nk.Names, nk.SPKISHA256), now)
	s.ID = id
	ttl := cmpTTL(next.TTL)
	s.Current, s.Next = Records(next.Names, ttl, cur.Meta.SPKISHA256), Records(next.Names, ttl, next.SPKISHA256)
	if save && changed(before, next) {
		if err := st.SaveNextKey(id, &next); err != nil {
			return s, fmt.Errorf("rollover %s: %w", id, err)
		}
	}
	return s, nil
}

func changed(a, b store.NextKey) bool {
	return !a.FirstSeenAt.Equal(b.FirstSeenAt) || a.TTL != b.TTL || len(a.Names) != len(b.Names)
}

func cmpTTL(ttl uint32) uint32 {
	if ttl == 0 {
		return DefaultTTL
	}
	return ttl
}

// StatusOf is where certificate id's rollover stands: [Check] when a key
// is staged, StateSwitched when a switch's old records are still to be
// removed, StateNone otherwise.
func StatusOf(ctx context.Context, o *Observer, st *store.Store, id string, now time.Time, save bool) (Status, error) {
	s, err := Check(ctx, o, st, id, now, save)
	if !errors.Is(err, store.ErrNotFound) {
		return s, err
	}
	rk, err := st.LoadRolledKey(id)
	if errors.Is(err, store.ErrNotFound) {
		return Status{ID: id, State: StateNone}, nil
	}
	if err != nil {
		return Status{ID: id}, err
	}
	f := finishOf(id, rk)
	return Status{ID: id, State: StateSwitched, SwitchedAt: rk.SwitchedAt, TTL: rk.TTL, Current: f.Keep,
		Waits: "the old key's records are still to be removed: certplan rollover finish " + id}, nil
}

// Finished is what a switch leaves to do: the old key's records to remove
// and the current key's to keep.
type Finished struct {
	ID         string    `json:"id"`
	SwitchedAt time.Time `json:"switched_at"`
	Remove     []Record  `json:"remove"`
	Keep       []Record  `json:"keep"`
	// Gone: no authoritative server serves an old record any more; the
	// rollover is over (the store forgets it).
	Gone bool `json:"gone"`
}

func finishOf(id string, rk *store.RolledKey) Finished {
	ttl := cmpTTL(rk.TTL)
	return Finished{ID: id, SwitchedAt: rk.SwitchedAt,
		Remove: Records(rk.Names, ttl, rk.OldSPKISHA256), Keep: Records(rk.Names, ttl, rk.NewSPKISHA256)}
}

// Finish is what certificate id's switch leaves to do: store.ErrNotFound
// when none was recorded. When no authoritative server serves an old
// record any more, the rollover is over: with save, the store forgets it.
func Finish(ctx context.Context, o *Observer, st *store.Store, id string, save bool) (Finished, error) {
	rk, err := st.LoadRolledKey(id)
	if err != nil {
		return Finished{ID: id}, err
	}
	f := finishOf(id, rk)
	f.Gone = true
	for _, s := range o.Observe(ctx, rk.Names, rk.OldSPKISHA256) {
		f.Gone = f.Gone && s.Nowhere()
	}
	if f.Gone && save {
		if err := st.DropRolledKey(id); err != nil {
			return f, fmt.Errorf("rollover %s: %w", id, err)
		}
	}
	return f, nil
}

// Switched records that certificate id's next key nk became current in
// place of the key whose "3 1 1" value is oldSPKI, and drops the next-key
// slot: [Finish] then names the records to remove.
func Switched(st *store.Store, id string, nk *store.NextKey, oldSPKI string, now time.Time) error {
	if oldSPKI != "" && len(nk.Names) > 0 {
		rk := &store.RolledKey{OldSPKISHA256: oldSPKI, NewSPKISHA256: nk.SPKISHA256, Names: nk.Names, TTL: nk.TTL, SwitchedAt: now.UTC()}
		if err := st.SaveRolledKey(id, rk); err != nil {
			return err
		}
	}
	return st.DropNextKey(id)
}
