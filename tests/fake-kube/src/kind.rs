//! The resource kinds the fake serves and their URL coordinates.

/// A resource kind stored by the fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `batch/v1` Job (namespaced).
    Job,
    /// `v1` Pod (namespaced).
    Pod,
    /// `v1` Secret (namespaced).
    Secret,
    /// `v1` PersistentVolumeClaim (namespaced).
    PersistentVolumeClaim,
    /// `node.k8s.io/v1` RuntimeClass (cluster-scoped).
    RuntimeClass,
    /// `v1` Node (cluster-scoped; plain stored objects, no kubelet behind them).
    Node,
    /// `v1` Namespace (cluster-scoped; plain stored objects: namespaced objects do not need one, and
    /// deleting one does not delete its contents).
    Namespace,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 7] = [
        Kind::Job,
        Kind::Pod,
        Kind::Secret,
        Kind::PersistentVolumeClaim,
        Kind::RuntimeClass,
        Kind::Node,
        Kind::Namespace,
    ];

    /// API group (`""` for the core group).
    pub fn group(self) -> &'static str {
        match self {
            Kind::Job => "batch",
            Kind::RuntimeClass => "node.k8s.io",
            Kind::Pod | Kind::Secret | Kind::PersistentVolumeClaim | Kind::Node | Kind::Namespace => "",
        }
    }

    /// `apiVersion`, e.g. `batch/v1`.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Job => "batch/v1",
            Kind::RuntimeClass => "node.k8s.io/v1",
            Kind::Pod | Kind::Secret | Kind::PersistentVolumeClaim | Kind::Node | Kind::Namespace => "v1",
        }
    }

    /// `kind`, e.g. `Job`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Job => "Job",
            Kind::Pod => "Pod",
            Kind::Secret => "Secret",
            Kind::PersistentVolumeClaim => "PersistentVolumeClaim",
            Kind::RuntimeClass => "RuntimeClass",
            Kind::Node => "Node",
            Kind::Namespace => "Namespace",
        }
    }

    /// URL plural, e.g. `jobs`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Job => "jobs",
            Kind::Pod => "pods",
            Kind::Secret => "secrets",
            Kind::PersistentVolumeClaim => "persistentvolumeclaims",
            Kind::RuntimeClass => "runtimeclasses",
            Kind::Node => "nodes",
            Kind::Namespace => "namespaces",
        }
    }

    /// Whether objects live in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::RuntimeClass | Kind::Node | Kind::Namespace)
    }

    /// `plural.group` as used in error messages (`jobs.batch`, `pods`).
    pub(crate) fn qualified(self) -> String {
        if self.group().is_empty() {
            self.plural().to_owned()
        } else {
            format!("{}.{}", self.plural(), self.group())
        }
    }

    /// The kind served at `/api[s]/{group}/{version}/{plural}`.
    pub(crate) fn from_url(group: &str, version: &str, plural: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.group() == group && version == "v1" && kind.plural() == plural)
    }

    /// The kind of an object by its `apiVersion` and `kind`.
    pub(crate) fn from_type(api_version: &str, kind: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|candidate| candidate.api_version() == api_version && candidate.name() == kind)
    }
}
