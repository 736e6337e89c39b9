//! An RBAC checker for the chart's rules: which recorded API requests the rules allow, and which
//! rules no request used. It reads `charts/prism-operator/files/rbac-rules.yaml`, the one place
//! the chart's rules are written, and grants them the way the templates do (ClusterRole or Role
//! for the watched resources, a Role in the release namespace for the Lease), then evaluates
//! requests like the Kubernetes RBAC authorizer: verb, API group, resource[/subresource],
//! resourceNames, and the namespace a Role is bound in.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the chart's rules live, relative to the repository root.
pub const RULES_FILE: &str = "charts/prism-operator/files/rbac-rules.yaml";

/// The template expressions the rules file may hold (values of the chart), with the values of
/// values.yaml the tests use.
const LEASE_NAME_PLACEHOLDER: &str = "{{ .Values.leaderElection.leaseName }}";
pub const WEBHOOK_SECRET_PLACEHOLDER: &str = "{{ .Values.webhook.secretName }}";
pub const WEBHOOK_CONFIGURATION_PLACEHOLDER: &str = "{{ .Values.webhook.configurationName }}";
/// values.yaml's webhook names (the flags' defaults too).
pub const WEBHOOK_SECRET: &str = "prism-operator-webhook-cert";
pub const WEBHOOK_CONFIGURATION: &str = "prism-operator";

/// The verbs a Kubernetes RBAC rule may name for resources.
pub const RESOURCE_VERBS: [&str; 8] =
    ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];

/// Paths every authenticated client may read through the default `system:discovery` and
/// `system:public-info-viewer` ClusterRoles: no chart rule is needed (or possible) for them.
const DISCOVERY_PATHS: [&str; 10] =
    ["/api", "/api/*", "/apis", "/apis/*", "/version", "/version/", "/healthz", "/livez", "/readyz", "/openapi/*"];

/// One PolicyRule, as written in the rules file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    #[serde(default)]
    pub resource_names: Vec<String>,
    pub verbs: Vec<String>,
}

/// The sections of the rules file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RulesFile {
    /// Granted where the custom resources live (ClusterRole, or Role in watchNamespace).
    pub watched: Vec<Rule>,
    /// Granted in the release namespace (Role), with leader election on.
    pub leader_election: Vec<Rule>,
    /// Granted in the release namespace (Role), with the webhook on: its certificate Secret.
    #[serde(default)]
    pub webhook: Vec<Rule>,
    /// Cluster-scoped objects (ClusterRole, in both scopes), with the webhook on: the CRDs'
    /// conversion and storage versions, the ValidatingWebhookConfiguration.
    #[serde(default)]
    pub cluster: Vec<Rule>,
    /// Cluster-scoped (ClusterRole), when watching all namespaces: the namespaces' labels that
    /// admit tenants.
    #[serde(default)]
    pub tenants: Vec<Rule>,
}

impl RulesFile {
    pub fn path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(RULES_FILE)
    }

    /// Reads the rules file with the Lease named `lease_name` (values.yaml's leaderElection.leaseName).
    pub fn load(lease_name: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(Self::path()).map_err(|e| format!("{RULES_FILE}: {e}"))?;
        Self::parse(&text, lease_name)
    }

    pub fn parse(text: &str, lease_name: &str) -> Result<Self, String> {
        let text = text
            .replace(LEASE_NAME_PLACEHOLDER, lease_name)
            .replace(WEBHOOK_SECRET_PLACEHOLDER, WEBHOOK_SECRET)
            .replace(WEBHOOK_CONFIGURATION_PLACEHOLDER, WEBHOOK_CONFIGURATION);
        if text.contains("{{") {
            return Err(format!(
                "{RULES_FILE}: only {LEASE_NAME_PLACEHOLDER}, {WEBHOOK_SECRET_PLACEHOLDER} and {WEBHOOK_CONFIGURATION_PLACEHOLDER} may be templated"
            ));
        }
        serde_saphyr::from_str(&text).map_err(|e| format!("{RULES_FILE}: {e}"))
    }

    /// What a rule must not be: wildcards, unknown verbs, empty lists, names on verbs that
    /// cannot be restricted by name. One line per problem.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (section, rules) in [
            ("watched", &self.watched),
            ("leaderElection", &self.leader_election),
            ("webhook", &self.webhook),
            ("cluster", &self.cluster),
            ("tenants", &self.tenants),
        ] {
            for (i, rule) in rules.iter().enumerate() {
                let at = format!("{section}[{i}]");
                let lists = [&rule.api_groups, &rule.resources, &rule.verbs, &rule.resource_names];
                if lists.iter().any(|l| l.iter().any(|v| v.contains('*'))) {
                    problems.push(format!("{at}: wildcard in {rule:?}"));
                }
                if rule.api_groups.is_empty() || rule.resources.is_empty() || rule.verbs.is_empty() {
                    problems.push(format!("{at}: apiGroups, resources and verbs must not be empty"));
                }
                for verb in &rule.verbs {
                    if !RESOURCE_VERBS.contains(&verb.as_str()) {
                        problems.push(format!("{at}: unknown verb {verb}"));
                    }
                    let unnamed = ["create", "list", "watch", "deletecollection"];
                    if !rule.resource_names.is_empty() && unnamed.contains(&verb.as_str()) {
                        problems.push(format!("{at}: resourceNames cannot restrict {verb}"));
                    }
                }
            }
        }
        problems
    }
}

/// A section of the rules file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Watched,
    LeaderElection,
    Webhook,
    Cluster,
    Tenants,
}

/// Where a rule stands in the rules file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleAt {
    pub section: Section,
    pub index: usize,
}

impl fmt::Display for RuleAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let section = match self.section {
            Section::Watched => "watched",
            Section::LeaderElection => "leaderElection",
            Section::Webhook => "webhook",
            Section::Cluster => "cluster",
            Section::Tenants => "tenants",
        };
        write!(f, "{section}[{}]", self.index)
    }
}

impl fmt::Display for Rule {
    /// `prism.io prismclusters,prismpatterns [get list]` (with `names: x` when restricted).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<&str> =
            self.api_groups.iter().map(|g| if g.is_empty() { "core" } else { g.as_str() }).collect();
        write!(f, "{} {} [{}]", groups.join(","), self.resources.join(","), self.verbs.join(" "))?;
        if !self.resource_names.is_empty() {
            write!(f, " names: {}", self.resource_names.join(","))?;
        }
        Ok(())
    }
}

impl RulesFile {
    /// Every rule, with where it stands.
    pub fn each_rule(&self) -> Vec<(RuleAt, Rule)> {
        let sections = [
            (Section::Watched, &self.watched),
            (Section::LeaderElection, &self.leader_election),
            (Section::Webhook, &self.webhook),
            (Section::Cluster, &self.cluster),
            (Section::Tenants, &self.tenants),
        ];
        sections
            .into_iter()
            .flat_map(|(section, rules)| {
                rules.iter().enumerate().map(move |(index, rule)| (RuleAt { section, index }, rule.clone()))
            })
            .collect()
    }

    /// The file without the rule at `at`.
    pub fn without(&self, at: RuleAt) -> RulesFile {
        let mut rules = self.clone();
        match at.section {
            Section::Watched => rules.watched.remove(at.index),
            Section::LeaderElection => rules.leader_election.remove(at.index),
            Section::Webhook => rules.webhook.remove(at.index),
            Section::Cluster => rules.cluster.remove(at.index),
            Section::Tenants => rules.tenants.remove(at.index),
        };
        rules
    }
}

/// Where a rule applies: every namespace and cluster-scoped requests (ClusterRole bound by a
/// ClusterRoleBinding), or one namespace (Role and RoleBinding).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Binding {
    Cluster,
    Namespace(String),
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Binding::Cluster => write!(f, "ClusterRole"),
            Binding::Namespace(ns) => write!(f, "Role in {ns}"),
        }
    }
}

/// A rule as granted by one of the chart's roles.
#[derive(Debug, Clone)]
pub struct Grant {
    pub binding: Binding,
    pub rule: Rule,
}

/// The chart's install options that decide the roles.
#[derive(Debug, Clone)]
pub struct Install {
    /// values.yaml's watchNamespace (None: all namespaces).
    pub watch_namespace: Option<String>,
    /// The release namespace, where the Lease lives.
    pub release_namespace: String,
    pub leader_election: bool,
    /// values.yaml's webhook.enabled.
    pub webhook: bool,
}

/// The grants of the chart's roles, as templates/rbac.yaml renders them.
pub fn grants(rules: &RulesFile, install: &Install) -> Vec<Grant> {
    let watched = match &install.watch_namespace {
        Some(ns) => Binding::Namespace(ns.clone()),
        None => Binding::Cluster,
    };
    let mut grants: Vec<Grant> =
        rules.watched.iter().map(|rule| Grant { binding: watched.clone(), rule: rule.clone() }).collect();
    if install.watch_namespace.is_none() {
        grants.extend(rules.tenants.iter().map(|rule| Grant { binding: Binding::Cluster, rule: rule.clone() }));
    }
    if install.leader_election {
        let binding = Binding::Namespace(install.release_namespace.clone());
        grants.extend(rules.leader_election.iter().map(|rule| Grant { binding: binding.clone(), rule: rule.clone() }));
    }
    if install.webhook {
        let binding = Binding::Namespace(install.release_namespace.clone());
        grants.extend(rules.webhook.iter().map(|rule| Grant { binding: binding.clone(), rule: rule.clone() }));
        grants.extend(rules.cluster.iter().map(|rule| Grant { binding: Binding::Cluster, rule: rule.clone() }));
    }
    grants
}

/// The chart's RBAC objects as templates/serviceaccount.yaml and templates/rbac.yaml render them
/// for the release `name` (whose fullname is `name`, as for the README's `prism-operator`): the
/// ServiceAccount, the watched rules as a ClusterRole or a Role in watchNamespace with its
/// binding, and the leader election Role and binding in the release namespace.
pub fn render(rules: &RulesFile, install: &Install, name: &str) -> Vec<serde_json::Value> {
    use serde_json::json;
    let release_ns = install.release_namespace.as_str();
    let group = "rbac.authorization.k8s.io";
    let subjects = json!([{"kind": "ServiceAccount", "name": name, "namespace": release_ns}]);
    let metadata = |name: &str, ns: Option<&str>| match ns {
        Some(ns) => json!({"name": name, "namespace": ns}),
        None => json!({"name": name}),
    };
    let pair = |role_kind: &str, binding_kind: &str, role_name: &str, ns: Option<&str>, rules: &[Rule]| {
        let rules: Vec<serde_json::Value> = rules
            .iter()
            .map(|r| {
                let mut rule = json!({"apiGroups": r.api_groups, "resources": r.resources, "verbs": r.verbs});
                if !r.resource_names.is_empty() {
                    rule["resourceNames"] = json!(r.resource_names);
                }
                rule
            })
            .collect();
        [
            json!({"apiVersion": format!("{group}/v1"), "kind": role_kind, "metadata": metadata(role_name, ns),
                   "rules": rules}),
            json!({"apiVersion": format!("{group}/v1"), "kind": binding_kind, "metadata": metadata(role_name, ns),
                   "roleRef": {"apiGroup": group, "kind": role_kind, "name": role_name}, "subjects": subjects}),
        ]
    };
    let mut objects =
        vec![json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(name, Some(release_ns))})];
    match &install.watch_namespace {
        Some(ns) => objects.extend(pair("Role", "RoleBinding", name, Some(ns), &rules.watched)),
        None => {
            objects.extend(pair("ClusterRole", "ClusterRoleBinding", name, None, &rules.watched));
            objects.extend(pair("ClusterRole", "ClusterRoleBinding", &format!("{name}-tenants"), None, &rules.tenants));
        }
    }
    if install.leader_election {
        let lease_role = format!("{name}-leader-election");
        objects.extend(pair("Role", "RoleBinding", &lease_role, Some(release_ns), &rules.leader_election));
    }
    if install.webhook {
        let webhook_role = format!("{name}-webhook");
        objects.extend(pair("Role", "RoleBinding", &webhook_role, Some(release_ns), &rules.webhook));
        objects.extend(pair("ClusterRole", "ClusterRoleBinding", &webhook_role, None, &rules.cluster));
    }
    objects
}

/// One API request in RBAC terms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Request {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    /// "" for cluster-scoped requests and lists or watches across all namespaces.
    pub namespace: String,
    /// "" when the request names no object (create, list, watch).
    pub name: String,
    /// Set for non-resource requests (discovery, /version): the path.
    pub non_resource_path: Option<String>,
}

impl Request {
    /// A resource request: `verb group resource[/subresource] namespace [name]`.
    pub fn resource(verb: &str, group: &str, resource: &str, namespace: &str, name: &str) -> Self {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        Request {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: name.into(),
            non_resource_path: None,
        }
    }

    pub fn non_resource(verb: &str, path: &str) -> Self {
        Request { verb: verb.into(), non_resource_path: Some(path.into()), ..Request::resource("", "", "", "", "") }
    }

    /// From the emulator's request accounting.
    pub fn from_info(info: &kube_emulator::request_info::RequestInfo) -> Self {
        if info.is_resource {
            let mut request = Request::resource(&info.verb, &info.group, &info.resource, &info.namespace, &info.name);
            request.subresource = info.subresource.clone();
            request
        } else {
            Request::non_resource(&info.verb, &info.path)
        }
    }

    fn resource_path(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.non_resource_path {
            return write!(f, "{} {path}", self.verb);
        }
        let group = if self.group.is_empty() { "core" } else { &self.group };
        write!(f, "{} {group}/{}", self.verb, self.resource_path())?;
        if !self.name.is_empty() {
            write!(f, " {}", self.name)?;
        }
        if self.namespace.is_empty() { write!(f, " (all namespaces)") } else { write!(f, " in {}", self.namespace) }
    }
}

/// One verb on one resource of one grant: the unit that must be used.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    pub binding: Binding,
    pub group: String,
    pub resource: String,
    pub verb: String,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() { "core" } else { &self.group };
        write!(f, "{} {group}/{} ({})", self.verb, self.resource, self.binding)
    }
}

/// What the rules allowed and what they granted in vain.
#[derive(Debug, Default)]
pub struct Report {
    /// Resource requests no grant allows (each distinct request once).
    pub denied: BTreeSet<Request>,
    /// Non-resource requests outside the default discovery paths.
    pub denied_non_resource: BTreeSet<Request>,
    /// Non-resource requests answered by the default discovery roles (for the record).
    pub discovery: BTreeSet<String>,
    /// Granted permissions no request used.
    pub unused: BTreeSet<Permission>,
    /// Granted permissions some request used.
    pub used: BTreeSet<Permission>,
}

impl Report {
    /// A readable account of what is wrong, or None.
    pub fn problems(&self, ignore_unused: &[(&str, &str, &str)]) -> Option<String> {
        let unused: Vec<&Permission> = self
            .unused
            .iter()
            .filter(|p| !ignore_unused.iter().any(|(v, g, r)| p.verb == *v && p.group == *g && p.resource == *r))
            .collect();
        if self.denied.is_empty() && self.denied_non_resource.is_empty() && unused.is_empty() {
            return None;
        }
        let mut out = String::new();
        if !self.denied.is_empty() || !self.denied_non_resource.is_empty() {
            out.push_str(&format!("requests the chart's rules do not allow (add them to {RULES_FILE}):\n"));
            for r in self.denied.iter().chain(&self.denied_non_resource) {
                out.push_str(&format!("  {r}\n"));
            }
        }
        if !unused.is_empty() {
            out.push_str(&format!("permissions no request used (remove them from {RULES_FILE}):\n"));
            for p in unused {
                out.push_str(&format!("  {p}\n"));
            }
        }
        Some(out)
    }
}

fn binding_covers(binding: &Binding, namespace: &str) -> bool {
    match binding {
        Binding::Cluster => true,
        Binding::Namespace(ns) => ns == namespace,
    }
}

fn rule_allows(rule: &Rule, request: &Request, resource: &str, verb: &str, group: &str) -> bool {
    request.verb == verb
        && request.group == group
        && request.resource_path() == resource
        && rule.api_groups.iter().any(|g| g == group)
        && (rule.resource_names.is_empty() || rule.resource_names.contains(&request.name))
}

fn discovery_path(path: &str) -> bool {
    DISCOVERY_PATHS.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => path == *p,
    })
}

/// Evaluates `requests` against `grants`, like the RBAC authorizer, and tallies which granted
/// permissions were used.
pub fn check<'a>(requests: impl IntoIterator<Item = &'a Request>, grants: &[Grant]) -> Report {
    let mut report = Report::default();
    let mut granted: Vec<(Permission, &Grant)> = Vec::new();
    for grant in grants {
        for group in &grant.rule.api_groups {
            for resource in &grant.rule.resources {
                for verb in &grant.rule.verbs {
                    let permission = Permission {
                        binding: grant.binding.clone(),
                        group: group.clone(),
                        resource: resource.clone(),
                        verb: verb.clone(),
                    };
                    granted.push((permission, grant));
                }
            }
        }
    }
    for request in requests {
        if let Some(path) = &request.non_resource_path {
            if discovery_path(path) && request.verb == "get" {
                report.discovery.insert(path.clone());
            } else {
                report.denied_non_resource.insert(request.clone());
            }
            continue;
        }
        let mut allowed = false;
        for (permission, grant) in &granted {
            if binding_covers(&grant.binding, &request.namespace)
                && rule_allows(&grant.rule, request, &permission.resource, &permission.verb, &permission.group)
            {
                allowed = true;
                report.used.insert(permission.clone());
            }
        }
        if !allowed {
            report.denied.insert(request.clone());
        }
    }
    report.unused = granted.into_iter().map(|(p, _)| p).filter(|p| !report.used.contains(p)).collect();
    report
}
