package signature

import "github.com/opencontainers/go-digest"

// Accepted is a fetched signature that verified.
type Accepted struct {
	Fetched
	// Number is its place among the accepted signatures, 1..k without
	// gaps, in fetch order: write it as signature-<Number>, since the
	// cluster stops reading at the first missing number.
	Number int
	// Verified is what the signature says and who signed it.
	Verified *Verified
}

// Rejected is a fetched signature that did not verify, and why.
type Rejected struct {
	Fetched
	// Err is Verify's error.
	Err error
}

// VerifyAll verifies each of sigs against kr and want (see Verify) and
// splits them into the accepted, renumbered 1..k in their order, and the
// rejected with their reasons. Only accepted signatures should be written
// where a cluster will read them. Either result may be empty.
func VerifyAll(sigs []Fetched, kr *Keyring, want digest.Digest) (accepted []Accepted, rejected []Rejected) {
	for _, s := range sigs {
		v, err := Verify(s.Data, kr, want)
		if err != nil {
			rejected = append(rejected, Rejected{Fetched: s, Err: err})
			continue
		}
		accepted = append(accepted, Accepted{Fetched: s, Number: len(accepted) + 1, Verified: v})
	}
	return accepted, rejected
}
