//! The two systems the suite measures.

use serde::{Deserialize, Serialize};

/// Which store a cluster, a driver or a result belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Tern,
    Etcd,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Tern => "tern",
            System::Etcd => "etcd",
        }
    }
}

impl std::fmt::Display for System {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}
