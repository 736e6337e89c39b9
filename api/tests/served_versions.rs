//! `prism_api::serves` says what the CRDs serve: owner references written by an earlier release
//! are kept only while their version resolves.

#[test]
fn serves_agrees_with_the_crds() {
    for crd in prism_api::crds() {
        let (group, kind) = (&crd.spec.group, &crd.spec.names.kind);
        for version in &crd.spec.versions {
            let api_version = format!("{group}/{}", version.name);
            assert_eq!(prism_api::serves(&api_version, kind), version.served, "{kind} {api_version}");
        }
        assert!(!prism_api::serves(&format!("{group}/v1"), kind), "{kind} is not served at v1");
    }
    assert!(!prism_api::serves("apps/v1", "Deployment"), "only the kinds of prism.io");
}
