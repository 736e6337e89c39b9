//! The krew manifest (krew/prism.yaml) renders, as krew-release-bot renders it at a release, to a
//! Plugin that krew accepts: the plugin `prism` running this package's `kubectl-prism` binary on
//! every platform, at the crate's version.

use serde_json::Value;

/// What the bot puts in place of `{{addURIAndSha "<uri>" .TagName}}`: the archive and its digest.
fn render(template: &str, tag: &str) -> String {
    let with_tag = template.replace("{{ .TagName }}", tag);
    with_tag
        .lines()
        .map(|line| match line.trim_start().strip_prefix("{{addURIAndSha \"") {
            Some(rest) => {
                let indent = &line[..line.len() - line.trim_start().len()];
                let uri = rest.split('"').next().unwrap_or_default();
                format!("{indent}uri: {uri}\n{indent}sha256: {}", "ab".repeat(32))
            }
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_krew_manifest_renders_to_a_plugin_for_every_platform() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/krew/prism.yaml");
    let template = std::fs::read_to_string(path).expect("krew/prism.yaml");
    let tag = format!("v{}", env!("CARGO_PKG_VERSION"));
    let plugin: Value = serde_saphyr::from_str(&render(&template, &tag)).expect("the rendered manifest is YAML");
    assert_eq!(plugin["kind"], "Plugin");
    assert_eq!(plugin["metadata"]["name"], "prism", "krew runs it as kubectl prism");
    assert_eq!(plugin["spec"]["version"], tag.as_str());
    let short = plugin["spec"]["shortDescription"].as_str().expect("shortDescription");
    assert!(short.len() <= 50, "krew-index limits shortDescription: {short:?}");
    let platforms = plugin["spec"]["platforms"].as_array().expect("platforms");
    let mut targets = Vec::new();
    for platform in platforms {
        assert_eq!(platform["bin"], "kubectl-prism", "{platform}");
        let uri = platform["uri"].as_str().expect("uri");
        assert!(uri.ends_with(".tar.gz") && uri.contains(&tag), "{uri}");
        assert_eq!(platform["sha256"].as_str().map(str::len), Some(64));
        let labels = &platform["selector"]["matchLabels"];
        targets.push(format!("{}/{}", labels["os"].as_str().unwrap_or("?"), labels["arch"].as_str().unwrap_or("?")));
    }
    assert_eq!(targets, ["linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"]);
}
