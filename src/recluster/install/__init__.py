"""How users install the operator: the bundle generated from deploy/, and the admission manifests."""
