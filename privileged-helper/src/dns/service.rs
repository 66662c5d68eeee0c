//! The DNS server and the host's resolver as one thing the daemon starts with the tunnel and
//! stops with it: listen on the link address, point the host at it for our zones, follow
//! `set_names`, report status and counters; stop undoes the resolver first, then closes.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use dockroute_api::{DnsCounters, DnsStatus};

use super::names::NameSpec;
use super::resolver::HostResolver;
use super::server::DnsServer;
use super::table::NameTable;

/// DNS's port: the one every resolver asks (macOS's resolver files could name another, but
/// systemd-resolved's per-link servers and glibc's resolv.conf cannot).
pub const PORT: u16 = 53;

pub struct DnsService {
    /// None when it could not listen (the problem says why).
    server: Option<DnsServer>,
    resolver: Box<dyn HostResolver>,
    address: IpAddr,
    ifname: String,
    suffix: String,
    zones: Vec<String>,
    names: usize,
    serial: u32,
    resolver_text: String,
    listen_problem: Option<String>,
    resolver_problems: Vec<String>,
}

impl DnsService {
    /// Answers `spec`'s names below `suffix` on `address`:53 and points the host's resolver
    /// there. A failure is reported in the status, never fatal: the tunnel works without names.
    pub async fn start(
        suffix: &str,
        address: IpAddr,
        ifname: &str,
        spec: &NameSpec,
        resolver: Box<dyn HostResolver>,
    ) -> DnsService {
        let table = NameTable::new(suffix, spec, 1);
        let listen = SocketAddr::new(address, PORT);
        let (zones, names) = (table.zones().to_vec(), table.len());
        let (server, listen_problem) = match DnsServer::start(listen, table).await {
            Ok(s) => {
                tracing::info!("dns: answering for {} on {listen} (udp, tcp)", zones.join(", "));
                (Some(s), None)
            }
            Err(e) => {
                let why = format!("cannot listen on {listen}: {e}");
                tracing::error!("dns: {why}");
                (None, Some(why))
            }
        };
        let mut me = DnsService {
            server,
            resolver,
            address,
            ifname: ifname.to_string(),
            suffix: suffix.to_string(),
            zones: Vec::new(),
            names,
            serial: 1,
            resolver_text: "not configured".into(),
            listen_problem,
            resolver_problems: Vec::new(),
        };
        me.point_resolver(zones);
        me
    }

    /// Answers `spec` from now on (the table is swapped whole; queries in flight finish on
    /// the old one). Resolver changes only when the zones do.
    pub fn set_names(&mut self, spec: &NameSpec) {
        self.serial = self.serial.wrapping_add(1);
        let table = NameTable::new(&self.suffix, spec, self.serial);
        let zones = table.zones().to_vec();
        self.names = table.len();
        if let Some(s) = &self.server {
            s.set_table(table);
        }
        if zones != self.zones {
            self.point_resolver(zones);
        }
    }

    fn point_resolver(&mut self, zones: Vec<String>) {
        // A host pointed at a server that does not listen would lose these names for nothing.
        if self.server.is_some() {
            let set: BTreeSet<String> = zones.iter().cloned().collect();
            let applied = tokio::task::block_in_place(|| self.resolver.apply(self.address, &self.ifname, &set));
            for p in &applied.problems {
                tracing::warn!("dns: {p}");
            }
            self.resolver_text = applied.description;
            self.resolver_problems = applied.problems;
        }
        self.zones = zones;
    }

    pub fn status(&self) -> DnsStatus {
        DnsStatus {
            listen: self.server.as_ref().map(|s| s.listen),
            suffix: self.suffix.clone(),
            zones: self.zones.clone(),
            names: self.names,
            resolver: self.resolver_text.clone(),
            problems: self.listen_problem.iter().chain(&self.resolver_problems).cloned().collect(),
        }
    }

    pub fn counters(&self) -> Option<DnsCounters> {
        self.server.as_ref().map(DnsServer::counters)
    }

    /// Undoes the resolver's settings, then stops answering.
    pub async fn stop(mut self) {
        for p in tokio::task::block_in_place(|| self.resolver.revert()) {
            tracing::warn!("dns: {p}");
        }
        if let Some(s) = self.server.take() {
            s.stop().await;
            tracing::info!("dns: stopped");
        }
    }
}
