//! macOS: `/etc/resolver/<zone>` files (see `files.rs`), which mDNSResponder and so every
//! resolver on the Mac (libc, `dscacheutil`, browsers) honours.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use super::files::{record_beside, ResolverDir, MACOS_RESOLVER_DIR};
use super::{Applied, HostResolver};

pub struct ResolverFiles {
    dir: ResolverDir,
}

impl ResolverFiles {
    pub fn new(config: &Path) -> ResolverFiles {
        ResolverFiles { dir: ResolverDir::new(MACOS_RESOLVER_DIR, record_beside(config)) }
    }
}

impl HostResolver for ResolverFiles {
    fn apply(&mut self, server: IpAddr, _ifname: &str, zones: &BTreeSet<String>) -> Applied {
        let report = self.dir.sync(zones, server);
        for p in &report.written {
            tracing::info!("wrote {}", p.display());
        }
        let shown: Vec<String> = zones.iter().map(|z| self.dir.path_of(z).display().to_string()).collect();
        Applied { description: shown.join(", "), problems: report.problems }
    }

    fn revert(&mut self) -> Vec<String> {
        let report = self.dir.clear();
        for p in &report.removed {
            tracing::info!("removed {}", p.display());
        }
        report.problems
    }
}
