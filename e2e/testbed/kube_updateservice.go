package testbed

import "slices"

// crdKind is one kind InstallOpenShiftCRDs installs (the element type of
// openShiftCRDs).
type crdKind = struct {
	group, version, kind, plural string
	namespaced                   bool
}

// updateServiceCRDs are the kinds of the OpenShift Update Service's
// operator that ferry applies, installed like openShiftCRDs: any spec and
// status.
var updateServiceCRDs = []crdKind{
	{"updateservice.operator.openshift.io", "v1", "UpdateService", "updateservices", true},
}

// testBedCRDs are every kind InstallOpenShiftCRDs installs.
func testBedCRDs() []crdKind {
	return slices.Concat(openShiftCRDs, updateServiceCRDs)
}
